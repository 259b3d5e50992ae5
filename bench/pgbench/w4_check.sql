-- After W4: no double credit. Every apply_recharge key of the W4 accounts (ids >= :acc0) names
-- exactly one payment and every payment has exactly one key, with the key's amount and method;
-- each payment is credited by exactly one ledger transfer; each account's balance equals the
-- sum of its succeeded recharges and of its wallet entries. The same for the baseline B4.
-- Variables: acc0, calls (W4 transactions run), bcalls (B4 transactions run). Prints two lines;
-- raises (exit 3 under ON_ERROR_STOP) if anything is off.
\set ON_ERROR_STOP on
SELECT count(*) AS w4_keys,
       count(*) FILTER (WHERE p.id IS NULL) AS w4_keys_without_payment,
       count(*) FILTER (WHERE p.id IS NOT NULL AND (p.amount <> (k.request->>'amount')::numeric
                         OR p.method <> k.request->>'method')) AS w4_keys_other_arguments
  FROM billing.idempotency_keys k
  LEFT JOIN billing.payment_records p ON p.account_id = k.account_id AND p.id = (k.result->>'id')::bigint
 WHERE k.operation = 'apply_recharge' AND k.account_id >= :acc0 \gset
SELECT count(*) AS w4_payments,
       count(*) FILTER (WHERE keys <> 1) AS w4_payments_not_one_key,
       count(*) FILTER (WHERE transfers <> 1) AS w4_payments_not_credited_once
  FROM (SELECT p.id, coalesce(k.keys, 0) AS keys, coalesce(e.transfers, 0) AS transfers
          FROM billing.payment_records p
          LEFT JOIN (SELECT (result->>'id')::bigint AS id, count(*) AS keys FROM billing.idempotency_keys
                      WHERE operation = 'apply_recharge' AND account_id >= :acc0 GROUP BY 1) k ON k.id = p.id
          LEFT JOIN (SELECT source_id AS id, count(DISTINCT transfer_id) AS transfers FROM billing.ledger_entries
                      WHERE source = 'payment' AND account_id >= :acc0 GROUP BY 1) e ON e.id = p.id
         WHERE p.account_id >= :acc0) x \gset
SELECT count(*) FILTER (WHERE a.balance <> coalesce(p.total, 0)) AS w4_balance_not_recharges,
       count(*) FILTER (WHERE a.balance <> coalesce(e.total, 0)) AS w4_balance_not_entries,
       coalesce(sum(a.balance), 0) AS w4_credited
  FROM billing.accounts a
  LEFT JOIN (SELECT account_id, sum(amount) AS total FROM billing.payment_records
              WHERE status = 'succeeded' AND kind = 'recharge' GROUP BY account_id) p ON p.account_id = a.id
  LEFT JOIN (SELECT account_id, sum(amount) AS total FROM billing.ledger_entries
              WHERE ledger_account = 'wallet' GROUP BY account_id) e ON e.account_id = a.id
 WHERE a.id >= :acc0 \gset
SELECT count(*) AS b4_payments,
       count(*) FILTER (WHERE legs <> 3) AS b4_payments_not_three_legs
  FROM (SELECT p.id, count(l.payment_id) AS legs
          FROM public.b4_payments p LEFT JOIN public.b4_ledger l ON l.payment_id = p.id
         GROUP BY p.id) x \gset
SELECT count(*) FILTER (WHERE a.balance <> coalesce(p.total, 0)) AS b4_balance_not_payments,
       count(*) FILTER (WHERE a.balance <> coalesce(l.total, 0)) AS b4_balance_not_entries
  FROM public.b4_accounts a
  LEFT JOIN (SELECT account_id, sum(amount) AS total FROM public.b4_payments GROUP BY account_id) p ON p.account_id = a.id
  LEFT JOIN (SELECT account_id, sum(amount) AS total FROM public.b4_ledger WHERE leg = 'wallet' GROUP BY account_id) l
         ON l.account_id = a.id \gset
\pset format unaligned
\pset tuples_only on
SELECT format('W4 check: %s apply_recharge calls, %s distinct keys (%s retries, %s%%), %s payments; '
              'keys without a payment %s, keys whose payment has other arguments %s, '
              'payments without exactly one key %s, payments not credited exactly once %s, '
              'balances <> sum of their recharges %s, balances <> wallet entries %s; %s INR credited',
              :calls, :w4_keys, :calls - :w4_keys, round(100.0 * (:calls - :w4_keys) / greatest(:calls, 1), 1),
              :w4_payments, :w4_keys_without_payment, :w4_keys_other_arguments,
              :w4_payments_not_one_key, :w4_payments_not_credited_once,
              :w4_balance_not_recharges, :w4_balance_not_entries, :w4_credited);
SELECT format('B4 check: %s baseline calls, %s payments (%s retries, %s%%); payments without 3 ledger legs %s, '
              'balances <> sum of their payments %s, balances <> wallet legs %s',
              :bcalls, :b4_payments, :bcalls - :b4_payments,
              round(100.0 * (:bcalls - :b4_payments) / greatest(:bcalls, 1), 1),
              :b4_payments_not_three_legs, :b4_balance_not_payments, :b4_balance_not_entries);
SELECT CASE WHEN :w4_keys = :w4_payments AND :w4_keys_without_payment = 0 AND :w4_keys_other_arguments = 0
             AND :w4_payments_not_one_key = 0 AND :w4_payments_not_credited_once = 0
             AND :w4_balance_not_recharges = 0 AND :w4_balance_not_entries = 0
             AND :b4_payments_not_three_legs = 0 AND :b4_balance_not_payments = 0 AND :b4_balance_not_entries = 0
            THEN 'W4 check: ok, no double credit'
            ELSE 'W4 check: FAILED' END AS verdict \gset
\echo :verdict
SELECT :'verdict' = 'W4 check: FAILED' AS failed \gset
\if :failed
SELECT 'W4 check failed: a double credit, a lost payment or a wrong balance (see above)'::int;
\endif
