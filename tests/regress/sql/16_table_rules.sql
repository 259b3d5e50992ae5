-- The database's own rules, for writes that bypass the API (as the owner can): the compiled
-- triggers refuse what the CHECK constraints and foreign keys they replace refused, with the same
-- names; and changes to seeded reference rows are recorded for pg_dump and applied on restore.
\i tests/regress/include/fresh.sql

SELECT billing.set_rate('INR', 'sms', 'promotional', 0.25);
SELECT billing.create_account('INR') AS a \gset
SELECT billing.apply_recharge(:a, 1000) IS NOT NULL AS recharged;
SELECT billing.reserve_credits(:a, 100) AS r \gset
SELECT billing.record_usage(:a, 'sms', 'promotional', 4) AS charged;

SELECT label, pg_temp.err(stmt) AS result
  FROM (VALUES
    ('accounts: reserved below 0',        'UPDATE billing.accounts SET reserved = -1 WHERE id = 1'),
    ('accounts: negative overdraft',      'UPDATE billing.accounts SET overdraft_limit = -1 WHERE id = 1'),
    ('accounts: negative threshold',      'UPDATE billing.accounts SET low_balance_threshold = -0.01 WHERE id = 1'),
    ('accounts: unknown billing mode',    'UPDATE billing.accounts SET billing_mode = ''monthly'' WHERE id = 1'),
    ('accounts: unknown auto-recharge',   'UPDATE billing.accounts SET auto_recharge = ''on'' WHERE id = 1'),
    ('accounts: negative AR threshold',   'UPDATE billing.accounts SET auto_recharge_threshold = -1 WHERE id = 1'),
    ('accounts: zero AR amount',          'UPDATE billing.accounts SET auto_recharge_amount = 0 WHERE id = 1'),
    ('accounts: overdrawn',               'UPDATE billing.accounts SET balance = -1 WHERE id = 1'),
    ('accounts: held beyond available',   'UPDATE billing.accounts SET reserved = balance + overdraft_limit + 0.000001 WHERE id = 1'),
    ('accounts: insert a bad row',        'INSERT INTO billing.accounts (currency, reserved) VALUES (''INR'', -5)'),
    ('holds: amount 0',                   'INSERT INTO billing.reservations (account_id, amount) VALUES (1, 0)'),
    ('holds: unknown status',             'INSERT INTO billing.reservations (account_id, amount, status) VALUES (1, 5, ''held'')'),
    ('holds: resolved yet pending',       'INSERT INTO billing.reservations (account_id, amount, resolved_at) VALUES (1, 5, now())'),
    ('holds: released, no resolved_at',   'INSERT INTO billing.reservations (account_id, amount, status) VALUES (1, 5, ''released'')'),
    ('holds: captured more than held',    'INSERT INTO billing.reservations (account_id, amount, status, captured, resolved_at) VALUES (1, 5, ''captured'', 6, now())'),
    ('holds: captured without amount',    'INSERT INTO billing.reservations (account_id, amount, status, resolved_at) VALUES (1, 5, ''captured'', now())'),
    ('holds: a captured amount, released','INSERT INTO billing.reservations (account_id, amount, status, captured, resolved_at) VALUES (1, 5, ''released'', 1, now())'),
    ('ledger: unknown ledger account',    'INSERT INTO billing.ledger_entries (account_id, transfer_id, ledger_account, currency, amount, kind, source, source_id) VALUES (1, 999, ''cash'', ''INR'', 1, ''x'', ''y'', 1)'),
    ('ledger: a zero leg',                'INSERT INTO billing.ledger_entries (account_id, transfer_id, ledger_account, currency, amount, kind, source, source_id) VALUES (1, 999, ''wallet'', ''INR'', 0, ''x'', ''y'', 1)'),
    ('usage: negative units',             'INSERT INTO billing.usage (account_id, channel, category, units, price, carrier_fee, occurred_at) VALUES (1, ''sms'', ''x'', -1, 0, 0, now())'),
    ('usage: negative price',             'UPDATE billing.usage SET price = -1'),
    ('usage: negative carrier fee',       'UPDATE billing.usage SET carrier_fee = -1'),
    ('holds: an unknown account',         'INSERT INTO billing.reservations (account_id, amount) VALUES (999, 5)'),
    ('usage: an unknown account',         'INSERT INTO billing.usage (account_id, channel, category, units, price, carrier_fee, occurred_at) VALUES (999, ''sms'', ''x'', 1, 0, 0, now())'),
    ('usage: an unknown channel',         'INSERT INTO billing.usage (account_id, channel, category, units, price, carrier_fee, occurred_at) VALUES (1, ''fax'', ''x'', 1, 0, 0, now())'),
    ('usage: moved to an unknown channel', 'UPDATE billing.usage SET channel = ''fax'''),
    ('channels: delete one in use',       'DELETE FROM billing.channels WHERE channel = ''sms'''),
    ('channels: rename one in use',       'UPDATE billing.channels SET channel = ''text'' WHERE channel = ''sms'''),
    ('a rule trigger called directly',    'SELECT billing.account_row_invariants()'),
    ('a valid direct write passes',       'UPDATE billing.accounts SET low_balance_threshold = 50 WHERE id = 1')
  ) AS t(label, stmt);
SELECT check_name, ok FROM billing.verify_ledger() WHERE NOT ok;

-- The spending limit holds in replica mode too (its trigger is ENABLE ALWAYS), where ordinary
-- triggers are quiet.
SET session_replication_role = replica;
SELECT pg_temp.err('UPDATE billing.accounts SET reserved = balance + 1 WHERE id = 1') AS overdrawn_in_replica_mode;
RESET session_replication_role;
SELECT balance - reserved + overdraft_limit AS available FROM billing.accounts WHERE id = 1;

-- Changes to seeded rows are recorded (the row as it now is; NULL when deleted); a changed key
-- counts as deleting the seeded row; rows administrators added are not recorded (pg_dump keeps
-- them by itself).
UPDATE billing.currencies SET recharge_max = 150000 WHERE code = 'INR';
UPDATE billing.currencies SET tax_rate = 0.12 WHERE code = 'INR';
INSERT INTO billing.payment_methods VALUES ('paypal', 'PayPal');
UPDATE billing.payment_methods SET description = 'PayPal account' WHERE code = 'paypal';
DELETE FROM billing.payment_methods WHERE code = 'wallet';
UPDATE billing.dunning_fees SET amount = 750 WHERE stage = 'archived' AND currency = 'INR';
UPDATE billing.channels SET channel = 'rcs' WHERE channel = 'whatsapp';
SELECT table_name, key, new_row ->> 'recharge_max' AS recharge_max, new_row ->> 'tax_rate' AS tax_rate,
       new_row ->> 'amount' AS fee, new_row IS NULL AS deleted
  FROM billing.seed_changes ORDER BY table_name, key::text;

-- On restore (replica mode) a restored change is applied to the freshly seeded row; otherwise
-- inserting into seed_changes changes nothing else.
UPDATE billing.currencies SET recharge_max = 100000, tax_rate = 0.18 WHERE code = 'INR';
DELETE FROM billing.seed_changes WHERE table_name = 'currencies';
INSERT INTO billing.seed_changes (table_name, key, new_row)
SELECT 'currencies', '{"code": "INR"}', to_jsonb(c) || '{"recharge_max": 99000}' FROM billing.currencies c WHERE code = 'INR';
SELECT recharge_max AS not_in_replica_mode FROM billing.currencies WHERE code = 'INR';
DELETE FROM billing.seed_changes WHERE table_name = 'currencies';
SET session_replication_role = replica;
INSERT INTO billing.seed_changes (table_name, key, new_row)
SELECT 'currencies', '{"code": "INR"}', to_jsonb(c) || '{"recharge_max": 99000}' FROM billing.currencies c WHERE code = 'INR';
INSERT INTO billing.seed_changes (table_name, key, new_row) VALUES ('payment_methods', '{"code": "upi"}', NULL);
RESET session_replication_role;
SELECT recharge_max AS applied_on_restore, tax_rate FROM billing.currencies WHERE code = 'INR';
SELECT count(*) AS upi_left FROM billing.payment_methods WHERE code = 'upi';

-- A hold's account may be one the same statement creates (as with the foreign key it replaces,
-- which checked after the statement); rolled back, since the account's reserved is not kept.
BEGIN;
SELECT pg_temp.err('WITH a AS (INSERT INTO billing.accounts (currency) VALUES (''INR'') RETURNING id)
                    INSERT INTO billing.reservations (account_id, amount) SELECT id, 1 FROM a') AS hold_of_a_new_account;
ROLLBACK;
-- A row breaking a rule and the spending limit reports the rule, as when the limit was a CHECK
-- (checked after the row's other rules).
SELECT pg_temp.err('UPDATE billing.accounts SET overdraft_limit = -1000000 WHERE id = 1') AS two_rules_broken;

-- The row triggers keep their columns' numbers per backend (transition::attnums); a column
-- renamed and added again under the same name is found again, not read at its old place. The
-- hold's rule reads resolved_at: at the old number it would find the renamed column, still NULL
-- for a released hold, and refuse the release (23514).
BEGIN;
SELECT billing.apply_recharge(:a, 500, idempotency_key => 'attnums') IS NOT NULL AS funded;
SELECT billing.reserve_credits(:a, 1) AS kept_hold \gset
ALTER TABLE billing.reservations RENAME COLUMN resolved_at TO resolved_at_before;
ALTER TABLE billing.reservations ADD COLUMN resolved_at timestamptz;
SELECT billing.release_reservation(:kept_hold) AS released_after_the_columns_moved;
ROLLBACK;

-- The rules read a numeric's sign from its stored header (invariants::numeric_sign): in every
-- stored form (short and long, special values, zero written in several ways) they agree with
-- SQL's own `v >= 0`. Rolled back: the accepted values are written.
BEGIN;
SELECT v, pg_temp.err(format('UPDATE billing.usage SET carrier_fee = %L::numeric', v)) = 'ok' AS accepted,
       v::numeric >= 0 AS sql_says_at_least_zero
  FROM unnest(ARRAY['0', '0.000000', '-0.0', '-0', '0e10', '1', '-1', '0.000001', '-0.000001',
                    '1e100', '-1e100', '1e-100', '-1e-100', '12345678901234567890.123456',
                    '-12345678901234567890.123456', 'NaN', 'Infinity', '-Infinity']) AS v;
ROLLBACK;

-- A user's BEFORE trigger named after row_invariants changes the account row after the rules
-- saw it: a one-statement hold then does not take the rules' word that no event is due
-- (events::Watch), and the low-balance crossing the final row makes is still recorded.
BEGIN;
SELECT billing.create_account('INR') AS late \gset
SELECT billing.apply_recharge(:late, 150) IS NOT NULL AS funded;      -- threshold: INR's 100
CREATE FUNCTION pg_temp.hold_more() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.reserved := NEW.reserved + 45; RETURN NEW; END $$;
CREATE TRIGGER zz_hold_more BEFORE UPDATE ON billing.accounts
    FOR EACH ROW EXECUTE FUNCTION pg_temp.hold_more();
SELECT billing.reserve_credits(:late, 10) IS NOT NULL AS held;         -- 150 - 10 - 45 = 95
SELECT kind, payload ->> 'available' AS available FROM billing.events
 WHERE account_id = :late AND kind = 'low_balance';
ROLLBACK;

-- A trigger that suppresses a hold's or a usage row (returns NULL) after the account was
-- updated: the call fails and changes nothing, rather than spending again on the locking path.
BEGIN;
SELECT billing.create_account('INR') AS sup \gset
SELECT billing.apply_recharge(:sup, 500) IS NOT NULL AS funded;
CREATE FUNCTION pg_temp.suppress() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE TRIGGER suppress BEFORE INSERT ON billing.reservations
    FOR EACH ROW EXECUTE FUNCTION pg_temp.suppress();
CREATE TRIGGER suppress BEFORE INSERT ON billing.usage
    FOR EACH ROW EXECUTE FUNCTION pg_temp.suppress();
SELECT pg_temp.err(format('SELECT billing.reserve_credits(%s, 10)', :sup)) AS hold_suppressed;
SELECT pg_temp.err(format('SELECT billing.record_usage(%s, ''sms'', ''promotional'', 4)', :sup)) AS usage_suppressed;
SELECT balance, reserved FROM billing.accounts WHERE id = :sup;
ROLLBACK;
