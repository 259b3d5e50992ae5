-- Dunning (seed 002): the day 0/7/15/30/60/90 ladder, counted from the oldest unpaid due date.
\i tests/regress/include/fresh.sql
\set VERBOSITY verbose

SELECT billing.set_rate('INR', 'voice', 'outbound', 1);
SELECT stage, day, reminders, event FROM billing.dunning_policy ORDER BY day;
SELECT billing.create_account('INR') AS a \gset
SELECT billing.apply_recharge(:a, 1000, as_of => '2026-01-01') IS NOT NULL AS recharged;
SELECT billing.create_invoice(:a, 2500, due_at => '2026-02-01 00:00+00', description => 'January calls',
                              as_of => '2026-01-25') AS inv \gset
SELECT kind, amount, status, due_at FROM billing.invoices;

-- Before the due date nothing happens.
SELECT * FROM billing.advance_dunning(as_of => '2026-01-31 23:59+00');

-- The whole timeline, each day called twice: the second call changes nothing.
SELECT day, (SELECT string_agg(account_id || ':' || stage, ',') FROM billing.advance_dunning(ts)) AS first_call,
       (SELECT count(*) FROM billing.advance_dunning(ts)) AS second_call,
       (SELECT dunning_stage || ' out=' || outbound_allowed || ' in=' || inbound_allowed || ' dash=' || dashboard_allowed
          FROM billing.account_state(:a, ts)) AS state
  FROM (VALUES (0), (6), (7), (15), (30), (59), (60), (89)) d(day),
       LATERAL (SELECT timestamptz '2026-02-01 00:00+00' + make_interval(hours => 24 * day) AS ts) t
 ORDER BY day;
SELECT status FROM billing.invoices WHERE id = :inv;
SELECT kind, payload - 'invoice_id' AS payload FROM billing.events
 WHERE kind IN ('dunning_reminder', 'service_restricted', 'service_suspended', 'account_archived')
 ORDER BY id;
-- The recovery fee is an invoice, never a debit of the prepaid balance, and charged once.
SELECT kind, amount, status FROM billing.invoices ORDER BY id;
SELECT balance FROM billing.account_balance(:a);
-- Spending is refused while outbound is blocked; campaigns fail blocked.
SELECT billing.reserve_credits(:a, 1);
SELECT billing.record_usage(:a, 'voice', 'outbound', 1);

-- Paying during the archive restores everything at once (both invoices are due).
SELECT billing.pay_invoice(:inv, method => 'netbanking', as_of => '2026-04-05');
SELECT dunning_stage FROM billing.account_state(:a);
SELECT billing.pay_invoice(id, as_of => '2026-04-05') FROM billing.invoices WHERE kind = 'recovery_fee';
SELECT * FROM billing.account_state(:a);
SELECT kind, payload ->> 'previous_stage' AS previous_stage FROM billing.events WHERE kind = 'service_restored';
SELECT billing.reserve_credits(:a, 1) IS NOT NULL AS may_spend_again;
SELECT billing.pay_invoice(:inv, as_of => '2026-04-06') AS paid_again;
SELECT count(*) AS invoice_payments FROM billing.payments WHERE kind = 'invoice';

-- A run after missed ones jumps straight to the stage due (one row), sends no late reminders,
-- and still charges the one-time fees of the stages it passed.
SELECT billing.create_account('USD') AS b \gset
SELECT billing.create_invoice(:b, 100, '2026-05-01', as_of => '2026-04-20') AS binv \gset
SELECT * FROM billing.advance_dunning('2026-05-01') WHERE account_id = :b;
SELECT * FROM billing.advance_dunning('2026-07-01') WHERE account_id = :b;   -- day 61
SELECT kind, amount, status FROM billing.invoices WHERE account_id = :b ORDER BY id;
-- The same as_of again changes nothing at all, the recovery fee's status included.
CREATE TEMP TABLE b_before AS SELECT * FROM billing.invoice_records WHERE account_id = :b;
SELECT count(*) AS again FROM billing.advance_dunning('2026-07-01') WHERE account_id = :b;
SELECT count(*) AS changed_invoices FROM (
    (SELECT * FROM billing.invoice_records WHERE account_id = :b EXCEPT SELECT * FROM b_before)
    UNION ALL (SELECT * FROM b_before EXCEPT SELECT * FROM billing.invoice_records WHERE account_id = :b)) d;
SELECT kind, count(*) FROM billing.events WHERE account_id = :b GROUP BY kind ORDER BY kind;

-- The issue's case: day 0, then nothing until day 31: straight to suspended, one row, the
-- suspension event only (no late reminders or restriction events), no fee (none before day 60).
SELECT billing.create_account('INR') AS j \gset
SELECT billing.create_invoice(:j, 250, '2026-05-01 00:00+00', as_of => '2026-04-20') AS jinv \gset
SELECT stage FROM billing.advance_dunning('2026-05-01 00:00+00') WHERE account_id = :j;
SELECT * FROM billing.advance_dunning('2026-06-01 00:00+00') WHERE account_id = :j;   -- day 31
SELECT kind, payload ->> 'stage' AS stage FROM billing.events
 WHERE account_id = :j AND kind NOT IN ('invoice_created') ORDER BY id;
SELECT count(*) AS fee_invoices FROM billing.invoices WHERE account_id = :j AND kind = 'recovery_fee';
SELECT dunning_stage, inbound_allowed, dashboard_allowed FROM billing.account_state(:j);

-- Payment at day 20 restores service.
SELECT billing.create_account('INR') AS c \gset
SELECT billing.create_invoice(:c, 300, '2026-06-01', as_of => '2026-05-25') AS cinv \gset
SELECT stage FROM billing.advance_dunning('2026-06-01') WHERE account_id = :c;
SELECT stage FROM billing.advance_dunning('2026-06-16') WHERE account_id = :c;  -- jump 0 -> 15
SELECT outbound_allowed, inbound_allowed FROM billing.account_state(:c);
SELECT billing.pay_invoice(:cinv, as_of => '2026-06-21', idempotency_key => 'neft-88');
SELECT billing.pay_invoice(:cinv, as_of => '2026-06-21', idempotency_key => 'neft-88') AS replayed;
SELECT billing.pay_invoice(:cinv, method => 'upi', idempotency_key => 'neft-88');
SELECT dunning_stage, outbound_allowed FROM billing.account_state(:c);
SELECT count(*) AS rows_after_payment FROM billing.advance_dunning('2026-06-22') WHERE account_id = :c;

-- A partial payment (the oldest of two invoices) neither skips nor repeats a stage: the account
-- stays where it is until the remaining invoice's own days reach the next stage.
SELECT billing.create_account('INR') AS d \gset
SELECT billing.create_invoice(:d, 200, '2026-06-01', as_of => '2026-05-20') AS d1 \gset
SELECT billing.create_invoice(:d, 200, '2026-06-10', as_of => '2026-05-20') AS d2 \gset
SELECT stage FROM billing.advance_dunning('2026-06-16') WHERE account_id = :d;   -- day 15 of d1
SELECT billing.pay_invoice(:d1, as_of => '2026-06-17');
SELECT dunning_stage FROM billing.account_state(:d);                              -- d2 still overdue
SELECT count(*) AS repeated FROM billing.advance_dunning('2026-06-20') WHERE account_id = :d;  -- d2 day 10
SELECT stage FROM billing.advance_dunning('2026-07-10') WHERE account_id = :d;   -- d2 day 30
SELECT count(*) FILTER (WHERE kind = 'dunning_reminder') AS reminders,
       count(*) FILTER (WHERE kind = 'service_restricted') AS restricted
  FROM billing.events WHERE account_id = :d;

-- Day 90: operational data deleted; ledger, invoices, payments and balance kept; no spending,
-- and paying no longer restores it.
SELECT billing.create_account('INR') AS e \gset
SELECT billing.apply_recharge(:e, 500, as_of => '2026-01-01') IS NOT NULL AS recharged;
SELECT billing.create_campaign(:e, 'voice', 'outbound', 10, as_of => '2026-01-02') AS ec \gset
SELECT billing.schedule_campaign(:ec, '2026-12-01', hold => true, as_of => '2026-01-02');
SELECT billing.reserve_credits(:e, 20) IS NOT NULL AS held;
SELECT billing.create_invoice(:e, 150, '2026-01-05', as_of => '2026-01-03') AS einv \gset
SELECT stage FROM billing.advance_dunning('2026-04-06') WHERE account_id = :e;   -- day 90 (and 23 hours: DST)
SELECT count(*) AS campaigns FROM billing.campaigns WHERE account_id = :e;
SELECT balance, reserved FROM billing.account_balance(:e);
SELECT count(*) AS invoices, (SELECT count(*) FROM billing.payments WHERE account_id = :e) AS payments
  FROM billing.invoices WHERE account_id = :e;
SELECT billing.reserve_credits(:e, 1);
SELECT billing.pay_invoice(:einv, as_of => '2026-04-07');
SELECT dunning_stage FROM billing.account_state(:e);

-- Bad input.
SELECT pg_temp.err('SELECT billing.create_invoice(999, 10, now())');
SELECT pg_temp.err(format('SELECT billing.create_invoice(%s, 0, now())', :a));
SELECT pg_temp.err(format('SELECT billing.create_invoice(%s, 10.001, now())', :a));
SELECT pg_temp.err(format('SELECT billing.create_invoice(%s, ''NaN'', now())', :a));
SELECT pg_temp.err(format('SELECT billing.create_invoice(%s, 10, NULL)', :a));
SELECT pg_temp.err('SELECT billing.pay_invoice(999)');
SELECT pg_temp.err('SELECT billing.pay_invoice(NULL)');
SELECT pg_temp.err(format('SELECT billing.pay_invoice(%s, ''cheque'')', :inv));
SELECT pg_temp.err('SELECT * FROM billing.advance_dunning(NULL)');
SELECT pg_temp.err('SELECT * FROM billing.advance_dunning(''infinity'')');
SELECT check_name, ok, detail FROM billing.verify_ledger() WHERE NOT ok;
