-- The one-statement hold and charge take the outbound stages and the currencies' default
-- low-balance thresholds, and a charge its rate, from a copy each backend keeps (src/policy.rs).
-- Every change to billing.dunning_stages, billing.currencies or billing.rates must reach it
-- before the next spend: in this
-- session at once, after a rollback back to what was committed, in replica mode, with the
-- trigger disabled, and across a DROP and CREATE EXTENSION. (Other sessions: isolation spec
-- policy-change.)
\i tests/regress/include/fresh.sql

SELECT billing.set_rate('INR', 'sms', 'promotional', 0.25);
SELECT billing.create_account('INR') AS a \gset
SELECT billing.apply_recharge(:a, 1000) IS NOT NULL AS recharged;
-- Warm the copy: both fast paths succeed.
SELECT billing.reserve_credits(:a, 1) > 0 AS held;
SELECT billing.record_usage(:a, 'sms', 'promotional', 1) AS charged;

-- A stage that stops allowing outbound: the next hold and charge are refused (BL004), from the
-- fast path's missing row through the locking path, which says why.
UPDATE billing.dunning_stages SET outbound_allowed = false WHERE stage = 'current';
SELECT pg_temp.err(format('SELECT billing.reserve_credits(%s, 1)', :a)) AS hold_blocked;
SELECT pg_temp.err(format('SELECT billing.record_usage(%s, ''sms'', ''promotional'', 1)', :a)) AS charge_blocked;
UPDATE billing.dunning_stages SET outbound_allowed = true WHERE stage = 'current';
SELECT billing.reserve_credits(:a, 1) > 0 AS held_again;

-- Changed and used inside a transaction that rolls back: afterwards the committed policy holds.
BEGIN;
UPDATE billing.dunning_stages SET outbound_allowed = false WHERE stage = 'current';
SELECT pg_temp.err(format('SELECT billing.reserve_credits(%s, 1)', :a)) AS blocked_inside;
ROLLBACK;
SELECT billing.reserve_credits(:a, 1) > 0 AS held_after_rollback;
-- The same with a savepoint rolled back, inside a transaction that goes on.
BEGIN;
SAVEPOINT s;
UPDATE billing.dunning_stages SET outbound_allowed = false WHERE stage = 'current';
SELECT pg_temp.err(format('SELECT billing.reserve_credits(%s, 1)', :a)) AS blocked_in_savepoint;
ROLLBACK TO SAVEPOINT s;
SELECT billing.reserve_credits(:a, 1) > 0 AS held_after_savepoint;
COMMIT;

-- The other direction: a blocked stage that starts to allow outbound lets the fast path hold.
UPDATE billing.accounts SET dunning_stage = 'outbound_blocked' WHERE id = :a;
SELECT pg_temp.err(format('SELECT billing.reserve_credits(%s, 1)', :a)) AS blocked_stage;
UPDATE billing.dunning_stages SET outbound_allowed = true WHERE stage = 'outbound_blocked';
SELECT billing.reserve_credits(:a, 1) > 0 AS held_in_unblocked_stage;
UPDATE billing.dunning_stages SET outbound_allowed = false WHERE stage = 'outbound_blocked';
UPDATE billing.accounts SET dunning_stage = 'current' WHERE id = :a;

-- In replica mode (a restore, a logical replica) the trigger fires too.
SET session_replication_role = replica;
UPDATE billing.dunning_stages SET outbound_allowed = false WHERE stage = 'current';
RESET session_replication_role;
SELECT pg_temp.err(format('SELECT billing.reserve_credits(%s, 1)', :a)) AS blocked_after_replica_write;
UPDATE billing.dunning_stages SET outbound_allowed = true WHERE stage = 'current';

-- With the trigger disabled by the owner, the copy serves one transaction at a time: a change
-- is still seen by the next transaction.
ALTER TABLE billing.dunning_stages DISABLE TRIGGER reference_changed;
SELECT billing.reserve_credits(:a, 1) > 0 AS held_untracked;
UPDATE billing.dunning_stages SET outbound_allowed = false WHERE stage = 'current';
SELECT pg_temp.err(format('SELECT billing.reserve_credits(%s, 1)', :a)) AS blocked_untracked;
UPDATE billing.dunning_stages SET outbound_allowed = true WHERE stage = 'current';
ALTER TABLE billing.dunning_stages ENABLE ALWAYS TRIGGER reference_changed;

-- The currency's default threshold: raised to just below available, the next hold crosses it
-- and records the low_balance event (the account has no threshold of its own).
SELECT available FROM billing.account_balance(:a);
SELECT billing.reserve_credits(:a, 1) > 0 AS held_above_old_threshold;
SELECT count(*) AS low_balance_events FROM billing.events WHERE account_id = :a AND kind = 'low_balance';
UPDATE billing.currencies SET low_balance_threshold = (SELECT available - 0.5 FROM billing.account_balance(:a))
 WHERE code = 'INR';
SELECT billing.reserve_credits(:a, 1) > 0 AS held_across_new_threshold;
SELECT billing.record_usage(:a, 'sms', 'promotional', 1) AS charged_below_it;
SELECT count(*) AS low_balance_events, max(payload->>'threshold') AS threshold,
       max(payload->>'available') AS available
  FROM billing.events WHERE account_id = :a AND kind = 'low_balance';
-- Lowered again: the charge path crosses it too.
UPDATE billing.currencies SET low_balance_threshold = (SELECT available - 0.1 FROM billing.account_balance(:a))
 WHERE code = 'INR';
SELECT billing.record_usage(:a, 'sms', 'promotional', 1) AS charged_across_it;
SELECT count(*) AS low_balance_events FROM billing.events WHERE account_id = :a AND kind = 'low_balance';

-- A new currency: a spend of its accounts records events at its default threshold.
INSERT INTO billing.currencies (code, minor_units, recharge_min, recharge_max, low_balance_threshold, tax_rate)
VALUES ('EUR', 2, 5, 2000, 50, 0);
SELECT billing.create_account('EUR') AS e \gset
SELECT billing.apply_recharge(:e, 60) IS NOT NULL AS recharged_eur;
SELECT billing.reserve_credits(:e, 20) > 0 AS held_eur;
SELECT count(*) AS eur_low_balance_events FROM billing.events WHERE account_id = :e AND kind = 'low_balance';

-- The rates: a one-statement charge takes its rate from the copy while one currency alone has a
-- rate for the channel and category. A change reaches the next charge, a rolled-back one never.
SELECT billing.set_rate('INR', 'sms', 'promotional', 0.5);
SELECT billing.record_usage(:a, 'sms', 'promotional', 2) AS charged_at_new_rate;
BEGIN;
SELECT billing.set_rate('INR', 'sms', 'promotional', 0.75);
SELECT billing.record_usage(:a, 'sms', 'promotional', 2) AS charged_inside;
ROLLBACK;
SELECT billing.record_usage(:a, 'sms', 'promotional', 2) AS charged_after_rollback;
-- A second currency with a rate for the same pair: each account is charged in its own.
SELECT billing.set_rate('EUR', 'sms', 'promotional', 0.02);
SELECT billing.record_usage(:e, 'sms', 'promotional', 2) AS charged_eur;
SELECT billing.record_usage(:a, 'sms', 'promotional', 2) AS charged_inr;
-- A pair only INR has a rate for: an EUR account's charge is refused (22023), not charged at
-- the INR rate, and changes nothing.
SELECT billing.set_rate('INR', 'sms', 'otp', 0.1);
SELECT billing.record_usage(:a, 'sms', 'otp', 1) AS charged_otp;
SELECT available AS eur_available FROM billing.account_balance(:e);
SELECT pg_temp.err(format('SELECT billing.record_usage(%s, ''sms'', ''otp'', 1)', :e)) AS eur_otp_refused;
SELECT available AS eur_available_after, (SELECT count(*) FROM billing.usage WHERE account_id = :e) AS eur_usage_rows
  FROM billing.account_balance(:e);
-- Written by the owner with the trigger disabled: the next transaction still sees the change.
ALTER TABLE billing.rates DISABLE TRIGGER reference_changed;
SELECT billing.record_usage(:a, 'sms', 'otp', 1) AS charged_untracked;
UPDATE billing.rates SET unit_price = 0.3 WHERE currency = 'INR' AND channel = 'sms' AND category = 'otp';
SELECT billing.record_usage(:a, 'sms', 'otp', 1) AS charged_after_untracked_change;
ALTER TABLE billing.rates ENABLE ALWAYS TRIGGER reference_changed;
SELECT billing.record_usage(:a, 'sms', 'otp', 1) AS charged_tracked_again;

-- DROP and CREATE EXTENSION in this session: the copy of the old tables is not used.
SET client_min_messages = warning;
DROP EXTENSION billing CASCADE;
CREATE EXTENSION billing;
RESET client_min_messages;
UPDATE billing.dunning_stages SET outbound_allowed = false WHERE stage = 'current';
SELECT billing.create_account('INR') AS a2 \gset
SELECT billing.apply_recharge(:a2, 1000) IS NOT NULL AS recharged;
SELECT pg_temp.err(format('SELECT billing.reserve_credits(%s, 1)', :a2)) AS blocked_after_recreate;
UPDATE billing.dunning_stages SET outbound_allowed = true WHERE stage = 'current';
SELECT billing.reserve_credits(:a2, 1) > 0 AS held_after_recreate;
SELECT check_name, ok FROM billing.verify_ledger() WHERE NOT ok;
