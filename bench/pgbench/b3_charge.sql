-- B3, the bare-SQL charge next to W3: what record_usage writes for 1 SMS at 0.01 (the balance,
-- the usage row, two ledger legs, the day's rollup row), in one statement, without the rules.
\set aid random(1, 100000)
WITH a AS (UPDATE public.b3_accounts SET balance = balance - 0.01
            WHERE id = :aid AND balance - reserved + overdraft_limit >= 0.01 RETURNING id),
     u AS (INSERT INTO public.b3_usage (account_id, channel, category, units, price, carrier_fee, occurred_at)
           SELECT id, 'sms', 'automation', 1, 0.01, 0, now() FROM a RETURNING account_id, id),
     l AS (INSERT INTO public.b3_ledger (account_id, transfer_id, ledger_account, currency, amount, kind, source, source_id)
           SELECT u.account_id, u.id, v.acct, 'INR', v.amount, 'usage', 'usage', u.id
             FROM u, (VALUES ('wallet', -0.01), ('revenue', 0.01)) v(acct, amount)),
     d AS (INSERT INTO public.b3_daily AS d (account_id, day, channel, category, units, amount)
           SELECT u.account_id, current_date, 'sms', 'automation', 1, 0.01 FROM u
           ON CONFLICT (account_id, day, channel, category)
           DO UPDATE SET units = d.units + EXCLUDED.units, amount = d.amount + EXCLUDED.amount)
SELECT id FROM u;
