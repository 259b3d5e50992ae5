-- The ledger cannot be bent, even by hand: append-only, balanced, limits held by the database.
\i tests/regress/include/fresh.sql


SELECT billing.create_account('INR') AS a \gset
SELECT billing.apply_recharge(:a, 1000, as_of => '2026-06-01') AS p \gset
SELECT billing.reserve_credits(:a, 100) AS r \gset
SELECT billing.capture_reservation(:r, 40) AS charged;

-- Every transfer is balanced, in one currency.
SELECT transfer_id, kind, source, ledger_account, amount
  FROM billing.ledger_entries ORDER BY transfer_id, id;

-- Immutable: no UPDATE, DELETE or TRUNCATE, not even by the superuser.
SELECT pg_temp.err('UPDATE billing.ledger_entries SET amount = amount * 2');
SELECT pg_temp.err('DELETE FROM billing.ledger_entries');
SELECT pg_temp.err('TRUNCATE billing.ledger_entries');
-- Unbalanced transfers are refused.
SELECT pg_temp.err(format($$INSERT INTO billing.ledger_entries
    (account_id, transfer_id, ledger_account, currency, amount, kind, source, source_id)
    VALUES (%s, 999, 'wallet', 'INR', 500, 'gift', 'manual', 0)$$, :a));
SELECT pg_temp.err(format($$INSERT INTO billing.ledger_entries
    (account_id, transfer_id, ledger_account, currency, amount, kind, source, source_id)
    VALUES (%1$s, 999, 'wallet', 'INR', 5, 'fx', 'manual', 0), (%1$s, 999, 'revenue', 'USD', -5, 'fx', 'manual', 0)$$, :a));
-- A leg belongs to an existing account, in the account's currency; one statement may post many
-- transfers, and the first bad one is named.
SELECT pg_temp.err($$INSERT INTO billing.ledger_entries
    (account_id, transfer_id, ledger_account, currency, amount, kind, source, source_id)
    VALUES (424242, 999, 'wallet', 'INR', 5, 'gift', 'manual', 0), (424242, 999, 'revenue', 'INR', -5, 'gift', 'manual', 0)$$);
SELECT pg_temp.err(format($$INSERT INTO billing.ledger_entries
    (account_id, transfer_id, ledger_account, currency, amount, kind, source, source_id)
    VALUES (%1$s, 999, 'wallet', 'USD', 5, 'fx', 'manual', 0), (%1$s, 999, 'revenue', 'USD', -5, 'fx', 'manual', 0)$$, :a));
SELECT pg_temp.err(format($$INSERT INTO billing.ledger_entries
    (account_id, transfer_id, ledger_account, currency, amount, kind, source, source_id)
    VALUES (%1$s, 998, 'wallet', 'INR', 5, 'gift', 'manual', 0), (%1$s, 998, 'revenue', 'INR', -5, 'gift', 'manual', 0),
           (%1$s, 997, 'wallet', 'INR', 5, 'gift', 'manual', 0), (%1$s, 997, 'revenue', 'INR', -4.99, 'gift', 'manual', 0)$$, :a));
-- A statement may post for many accounts at once (a bulk load): every leg is checked, in one
-- query for the statement.
SELECT billing.create_account('USD') AS u \gset
BEGIN;
SELECT pg_temp.err(format($$INSERT INTO billing.ledger_entries
    (account_id, transfer_id, ledger_account, currency, amount, kind, source, source_id)
    VALUES (%1$s, 996, 'revenue', 'INR', 5, 'fix', 'manual', 0), (%1$s, 996, 'payments_clearing', 'INR', -5, 'fix', 'manual', 0),
           (%2$s, 995, 'revenue', 'USD', 5, 'fix', 'manual', 0), (%2$s, 995, 'payments_clearing', 'USD', -5, 'fix', 'manual', 0)$$, :a, :u)) AS two_accounts;
ROLLBACK;
SELECT pg_temp.err(format($$INSERT INTO billing.ledger_entries
    (account_id, transfer_id, ledger_account, currency, amount, kind, source, source_id)
    VALUES (%1$s, 996, 'revenue', 'INR', 5, 'fix', 'manual', 0), (%1$s, 996, 'payments_clearing', 'INR', -5, 'fix', 'manual', 0),
           (%2$s, 995, 'revenue', 'INR', 5, 'fix', 'manual', 0), (%2$s, 995, 'payments_clearing', 'INR', -5, 'fix', 'manual', 0)$$, :a, :u)) AS second_in_wrong_currency;
SELECT pg_temp.err(format($$INSERT INTO billing.ledger_entries
    (account_id, transfer_id, ledger_account, currency, amount, kind, source, source_id)
    VALUES (%1$s, 996, 'revenue', 'INR', 5, 'fix', 'manual', 0), (%1$s, 996, 'payments_clearing', 'INR', -5, 'fix', 'manual', 0),
           (424242, 995, 'revenue', 'INR', 5, 'fix', 'manual', 0), (424242, 995, 'payments_clearing', 'INR', -5, 'fix', 'manual', 0)$$, :a)) AS second_unknown;
-- Nor can an account change currency or id under its ledger, or go away.
SELECT pg_temp.err(format('UPDATE billing.accounts SET currency = ''USD'' WHERE id = %s', :a));
SELECT pg_temp.err(format('UPDATE billing.accounts SET id = DEFAULT WHERE id = %s', :a));
SELECT pg_temp.err(format('DELETE FROM billing.accounts WHERE id = %s', :a));
SET client_min_messages = warning; -- not the list of tables CASCADE would empty
SELECT pg_temp.err('TRUNCATE billing.accounts CASCADE');
RESET client_min_messages;
-- The wallet cannot be overdrawn by hand either.
SELECT pg_temp.err(format('UPDATE billing.accounts SET balance = -1 WHERE id = %s', :a));
SELECT pg_temp.err(format('UPDATE billing.accounts SET reserved = 2000 WHERE id = %s', :a));
-- A resolved hold or payment is frozen.
SELECT pg_temp.err(format('UPDATE billing.reservations SET captured = 100 WHERE id = %s', :r));
SELECT pg_temp.err(format('UPDATE billing.reservations SET status = ''pending'', resolved_at = NULL, captured = NULL WHERE id = %s', :r));
SELECT pg_temp.err(format('UPDATE billing.payment_records SET amount = 5000 WHERE id = %s', :p));
SELECT pg_temp.err(format('UPDATE billing.payment_records SET status = ''failed'' WHERE id = %s', :p));
SELECT check_name, ok FROM billing.verify_ledger();

-- verify_ledger notices what bypasses the API: a cache moved without its entries.
BEGIN;
UPDATE billing.accounts SET balance = balance + 5 WHERE id = :a;
SELECT check_name, ok, detail FROM billing.verify_ledger() WHERE NOT ok;
ROLLBACK;
BEGIN;
UPDATE billing.accounts SET reserved = reserved + 1 WHERE id = :a;
SELECT check_name, ok, detail FROM billing.verify_ledger() WHERE NOT ok;
ROLLBACK;
BEGIN;
UPDATE billing.reservations SET status = 'released', resolved_at = now()
 WHERE status = 'pending';
INSERT INTO billing.reservations (account_id, amount, status, captured, resolved_at)
VALUES (:a, 10, 'captured', 10, now());
SELECT check_name, ok, detail FROM billing.verify_ledger() WHERE NOT ok;
ROLLBACK;
SELECT bool_and(ok) AS all_ok FROM billing.verify_ledger();
