-- tick(): every due step once, safe to repeat; the monthly close at the first tick of a month.
\i tests/regress/include/fresh.sql
\set VERBOSITY verbose

SELECT billing.set_rate('INR', 'sms', 'promotional', 0.25);
SELECT billing.create_account('INR', overdraft_limit => 100) AS a \gset
SELECT billing.apply_recharge(:a, 200, as_of => '2026-03-01') IS NOT NULL AS recharged;
SELECT billing.reserve_credits(:a, 10, expires_at => '2026-03-10 10:00+00') IS NOT NULL AS held;
SELECT billing.create_campaign(:a, 'sms', 'promotional', 400, as_of => '2026-03-01') AS c \gset
SELECT billing.schedule_campaign(:c, '2026-03-10 09:00+00', as_of => '2026-03-01');
SELECT billing.create_campaign(:a, 'sms', 'promotional', 10, as_of => '2026-01-01') AS stale \gset
SELECT billing.create_invoice(:a, 300, '2026-03-05 00:00+00', as_of => '2026-03-01') AS inv \gset

SELECT billing.tick(as_of => '2026-03-10 12:00+00') AS first_tick;
SELECT billing.tick('2026-03-10 12:00+00') AS same_time_again;
SELECT billing.campaign_status(:c), (SELECT status FROM billing.reservations WHERE reference IS NULL) AS hold,
       (SELECT dunning_stage FROM billing.account_state(:a)) AS stage,
       (SELECT count(*) FROM billing.campaigns WHERE id = :stale) AS stale_left;
SELECT billing.complete_campaign(:c) AS charged;
SELECT billing.record_usage(:a, 'sms', 'promotional', 700, '2026-03-20') AS spent;  -- balance -75
SELECT balance FROM billing.account_balance(:a);
-- The first tick in April closes March; later April ticks do not close again.
SELECT billing.tick('2026-04-01 00:01+00') -> 'period_close_invoices' AS april_first;
SELECT billing.tick('2026-04-15 00:00+00') -> 'period_close_invoices' AS april_again;
SELECT kind, amount, period FROM billing.invoices WHERE kind = 'period_close';
SELECT balance FROM billing.account_balance(:a);

-- Without pg_cron, schedule_jobs says what to do.
SELECT billing.schedule_jobs();
SELECT billing.tick(NULL);
SELECT check_name, ok FROM billing.verify_ledger() WHERE NOT ok;
