-- Privileges: writes only through the functions; roles get what they need, nothing more; no
-- function resolves a name through the caller's search_path.
\i tests/regress/include/fresh.sql
\set VERBOSITY default
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_billing_app;
DROP ROLE IF EXISTS regress_billing_report;
DROP ROLE IF EXISTS regress_billing_nobody;
RESET client_min_messages;
CREATE ROLE regress_billing_app;
CREATE ROLE regress_billing_report;
CREATE ROLE regress_billing_nobody;
SELECT billing.create_account('INR') AS a \gset
SELECT billing.apply_recharge(:a, 1000) IS NOT NULL AS recharged;

-- Every function pins its search_path and is not executable by PUBLIC; all but the grant
-- helpers (which act as their caller, the owner) are SECURITY DEFINER.
SELECT count(*) AS functions,
       count(*) FILTER (WHERE proconfig @> ARRAY['search_path=pg_catalog, pg_temp']) AS pinned,
       count(*) FILTER (WHERE has_function_privilege('regress_billing_nobody', oid, 'EXECUTE')) AS public_execute,
       string_agg(proname, ', ' ORDER BY proname) FILTER (WHERE NOT prosecdef) AS invoker_rights
  FROM pg_proc WHERE pronamespace = 'billing'::regnamespace AND prorettype <> 'trigger'::regtype;

-- A role with no grants can do nothing.
SET ROLE regress_billing_nobody;
SELECT pg_temp.err(format('UPDATE billing.accounts SET balance = 1e6 WHERE id = %s', :a));
SELECT pg_temp.err('SELECT billing.reserve_credits(1, 1)');
RESET ROLE;

-- An application role: the API, and no table writes.
SELECT billing.grant_usage('regress_billing_app');
SET ROLE regress_billing_app;
SELECT billing.reserve_credits(:a, 100) IS NOT NULL AS app_can_hold;
SELECT balance, reserved FROM billing.account_balance(:a);
SELECT count(*) >= 1 AS app_reads_payments FROM billing.payments;
SELECT pg_temp.err(format('UPDATE billing.accounts SET balance = 1e6 WHERE id = %s', :a));
SELECT pg_temp.err(format($$INSERT INTO billing.ledger_entries (account_id, transfer_id, ledger_account, currency, amount, kind, source, source_id)
                            VALUES (%s, 1, 'wallet', 'INR', 5, 'x', 'x', 0)$$, :a));
SELECT pg_temp.err('SELECT billing.set_rate(''INR'', ''sms'', ''promotional'', 0)');
SELECT pg_temp.err('SELECT billing.set_overdraft_limit(1, 1000000)');
SELECT pg_temp.err('SELECT billing.close_billing_period()');
SELECT pg_temp.err('SELECT billing.tick()');
SELECT pg_temp.err('SELECT billing.grant_usage(''regress_billing_nobody'')');

-- A hostile search_path: an operator the caller owns would hijack unqualified comparisons if
-- the functions resolved names through it. It raises if ever called; the API never calls it.
RESET ROLE;
CREATE SCHEMA regress_evil AUTHORIZATION regress_billing_app;
SET ROLE regress_billing_app;
CREATE FUNCTION regress_evil.hijack(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS
    $$ BEGIN RAISE EXCEPTION 'hijacked'; END $$;
CREATE OPERATOR regress_evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = regress_evil.hijack);
CREATE FUNCTION regress_evil.now() RETURNS timestamptz LANGUAGE sql AS $$ SELECT 'epoch'::timestamptz $$;
SET search_path = regress_evil, pg_catalog, public;
SELECT billing.reserve_credits(:a, 10) AS evil_hold \gset
SELECT billing.release_reservation(:evil_hold) AS released;
SELECT balance, reserved FROM billing.account_balance(:a);
RESET search_path;
RESET ROLE;
SELECT created_at > 'epoch' AS stamped_with_the_real_now FROM billing.reservations WHERE id = :evil_hold;

-- A reporting role reads everything and changes nothing.
SELECT billing.grant_reporting('regress_billing_report');
SET ROLE regress_billing_report;
SELECT bool_and(ok) AS ledger_ok FROM billing.verify_ledger();
SELECT count(*) > 0 AS reads_ledger FROM billing.ledger_entries;
SELECT pg_temp.err('SELECT billing.reserve_credits(1, 1)');
SELECT pg_temp.err('DELETE FROM billing.events');
RESET ROLE;
SELECT pg_temp.err('SELECT billing.grant_usage(''no_such_role'')');

SET client_min_messages = warning;
DROP SCHEMA regress_evil CASCADE;
DROP OWNED BY regress_billing_app, regress_billing_report, regress_billing_nobody;
DROP ROLE regress_billing_app;
DROP ROLE regress_billing_report;
DROP ROLE regress_billing_nobody;
