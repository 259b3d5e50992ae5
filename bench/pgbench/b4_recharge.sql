-- B4, the bare-SQL baseline of W4 (same requests as w4_recharge.sql): one statement that inserts
-- the payment (its unique (account_id, idempotency_key) makes a retry insert nothing), its three
-- ledger legs (wallet, tax_payable, payments_clearing) and adds the amount to the balance; a
-- retry returns the first payment's id when amount and method match. Not in it: the account
-- lock read and its checks (currency bounds, method, dunning stage), the event and its NOTIFY,
-- the idempotency table's request/result JSON, the ledger's balance trigger.
\set r random(1, 100)
\if :r <= :dup_pct and :cnt > 0
\set c random(0, :nclients - 1)
\set k random(1, :cnt)
\else
\set cnt :cnt + 1
\set c :client_id
\set k :cnt
\endif
\set n :run * 1000000000 + :c * 10000000 + :k
\set aid :acc0 + abs(hash(:n)) % :naccounts
\set amount 100 + abs(hash(:n + 1)) % 900
WITH p AS (INSERT INTO public.b4_payments (account_id, idempotency_key, amount, tax, method)
           VALUES (:aid, 'w4-' || :n::text, :amount, round(:amount * 0.18, 2), 'upi')
           ON CONFLICT (account_id, idempotency_key) DO NOTHING
           RETURNING account_id, id, amount, tax),
     l AS (INSERT INTO public.b4_ledger (account_id, payment_id, leg, amount)
           SELECT p.account_id, p.id, v.leg, v.amount
             FROM p, LATERAL (VALUES ('wallet', p.amount), ('tax_payable', p.tax),
                                     ('payments_clearing', -(p.amount + p.tax))) v(leg, amount)),
     a AS (UPDATE public.b4_accounts a SET balance = a.balance + p.amount FROM p WHERE a.id = p.account_id)
SELECT id FROM p
UNION ALL
SELECT id FROM public.b4_payments
 WHERE account_id = :aid AND idempotency_key = 'w4-' || :n::text AND amount = :amount AND method = 'upi'
   AND NOT EXISTS (SELECT 1 FROM p);
