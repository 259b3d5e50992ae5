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

-- Bounded batches: each step of one tick takes at most billing.batch_size accounts, and says
-- "more" when it filled its batch; CALL billing.run_tick() repeats ticks, committing after each.
SET billing.batch_size = 2;
SELECT count(*) AS accounts FROM (
    SELECT billing.reserve_credits(a, 10, expires_at => '2026-05-01 00:00+00')
      FROM (SELECT billing.create_account('INR') AS a FROM generate_series(1, 5)) n,
           LATERAL billing.apply_recharge(a, 100)) held;
SELECT t -> 'expired_holds' AS expired, t -> 'more' AS more
  FROM (SELECT billing.tick('2026-05-02 00:00+00') AS t FROM generate_series(1, 3)) ticks;
-- Dunning walks the accounts in id order across ticks (a cursor), so every account is reached.
SELECT count(billing.create_invoice(id, 10, '2026-05-01 00:00+00', as_of => '2026-04-20'))
  FROM billing.accounts WHERE id > :a;
SELECT t -> 'dunning_changes' AS changes, t -> 'more' AS more
  FROM (SELECT billing.tick('2026-05-02 00:00+00') AS t FROM generate_series(1, 4)) ticks;
SELECT dunning_stage, count(*) FROM billing.accounts WHERE id > :a GROUP BY 1;
-- run_tick drains a backlog in one call: the month's close over five negative balances.
SELECT count(*) AS limits FROM billing.accounts, LATERAL billing.set_overdraft_limit(id, 500) WHERE id > :a;
SELECT count(billing.record_usage(id, 'sms', 'promotional', 1000, '2026-05-03')) AS overdrawn
  FROM billing.accounts WHERE id > :a;
CALL billing.run_tick('2026-06-01 00:00+00');
SELECT count(*) AS closed FROM billing.invoices WHERE kind = 'period_close' AND period = '2026-05-01';
CALL billing.run_tick('2026-06-01 00:00+00');
RESET billing.batch_size;
SELECT check_name, ok FROM billing.verify_ledger() WHERE NOT ok;
