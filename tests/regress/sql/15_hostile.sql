-- Hostile-input sweep (issue 7): EVERY function of schema billing, read from pg_proc (so a
-- function added later is swept automatically), is called with generated arguments: each
-- argument position in turn takes each hostile value of its type (NULL, zero, extremes, huge
-- text, unicode, quotes, SQL injection, unknown names and ids, infinite and extreme timestamps,
-- huge intervals, ...) while every other argument takes a valid value. The valid values come in
-- five scenarios, so that the checks which only run once an id is known are reached with
-- objects in different states (a pending hold / a released one / a captured one, a draft /
-- running / scheduled campaign, a pending / succeeded / failed payment, an open / overdue /
-- paid invoice, a healthy INR account / a USD account whose outbound is blocked / a USD account
-- in overdraft with auto-recharge; then the largest valid magnitudes, and objects stamped at
-- the ends of time).
--
-- Each call runs in its own subtransaction and records its SQLSTATE, or 'ok'. A call that
-- succeeds is rolled back too (by a sentinel exception), so every call sees the same fixtures
-- and the order of the calls does not matter. Output (fails loudly on any of these):
--   * findings: XX000, a SQLSTATE outside the documented set, a NULL (or a row with a NULL)
--     where the contract promises a value;
--   * every call that succeeded with a hostile value, one line each, for a human to review;
--   * per function, the number of calls per SQLSTATE;
--   * nothing changed: every billing table (row count and md5 of its rows), what the read
--     functions say about every fixture, the session's settings, and no advisory lock left;
--     sequences only advanced (they are not transactional) and stay ahead of every table;
--     no NOTIFY survived (this session LISTENs during the sweep: psql would print any
--     notification, with a PID, and the diff would fail).
\i tests/regress/include/fresh.sql
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_hostile_role;
RESET client_min_messages;
CREATE ROLE regress_hostile_role;

-- Fixtures. Scenario 1: a healthy INR account with a recharge, a pending hold, a pending
-- payment, a draft campaign and an open invoice.
SELECT billing.set_rate('INR', 'sms', 'promotional', 0.25);
SELECT billing.set_rate('USD', 'sms', 'promotional', 1);
SELECT billing.create_account('INR', external_ref => 'hostile-a') AS a \gset
SELECT billing.apply_recharge(:a, 10000, as_of => '2026-05-01 00:00+00') AS p_ok \gset
SELECT billing.reserve_credits(:a, 100, reference => 'fixture', expires_at => '2999-01-01 00:00+00') AS r \gset
SELECT billing.create_payment(:a, 200, as_of => '2026-05-01 00:00+00') AS p_pending \gset
SELECT billing.create_campaign(:a, 'sms', 'promotional', 10, as_of => '2026-05-01 00:00+00') AS c_draft \gset
SELECT billing.create_invoice(:a, 100, due_at => '2026-06-15 00:00+00', as_of => '2026-05-01 00:00+00') AS inv_open \gset
-- Scenario 2: a USD account in dunning stage outbound_blocked with its overdue invoice, whose
-- idempotency key 'fixture-key' was used by each keyed operation (so the sweep reaches the
-- replay and BL006 paths), a running campaign, the succeeded payment, a released hold.
SELECT billing.create_account('USD') AS b \gset
SELECT billing.apply_recharge(:b, 100, idempotency_key => 'fixture-key', as_of => '2026-04-01 00:00+00') IS NOT NULL AS recharged;
SELECT billing.create_payment(:b, 5, idempotency_key => 'fixture-key', as_of => '2026-04-01 00:00+00') IS NOT NULL AS requested;
SELECT billing.reserve_credits(:b, 1, idempotency_key => 'fixture-key') IS NOT NULL AS held;
SELECT billing.record_usage(:b, 'sms', 'promotional', 1, occurred_at => '2026-04-02 00:00+00', idempotency_key => 'fixture-key');
SELECT billing.create_invoice(:b, 50, due_at => '2026-04-10 00:00+00', as_of => '2026-04-01 00:00+00') AS inv_overdue \gset
SELECT account_id = :b AS b_moved, stage FROM billing.advance_dunning('2026-04-30 00:00+00');
SELECT billing.create_campaign(:a, 'sms', 'promotional', 10, as_of => '2026-05-01 00:00+00') AS c_running \gset
SELECT billing.schedule_campaign(:c_running, send_at => '2026-05-02 00:00+00', as_of => '2026-05-01 00:00+00');
SELECT billing.execute_campaign(:c_running, as_of => '2026-05-02 00:00+00');
SELECT billing.reserve_credits(:a, 50) AS r_released \gset
SELECT billing.release_reservation(:r_released);
-- Scenario 3: a USD account in overdraft with auto-recharge enabled, a campaign scheduled with
-- a hold, a failed payment, a captured hold, a paid invoice.
SELECT billing.create_account('USD', overdraft_limit => 100) AS d \gset
SELECT billing.record_usage(:d, 'sms', 'promotional', 30, occurred_at => '2026-05-10 00:00+00');
SELECT billing.configure_auto_recharge(:d, threshold => 10, amount => 20);
SELECT billing.create_campaign(:a, 'sms', 'promotional', 4, as_of => '2026-05-01 00:00+00') AS c_scheduled \gset
SELECT billing.schedule_campaign(:c_scheduled, send_at => '2026-06-01 00:00+00', hold => true, as_of => '2026-05-01 00:00+00');
SELECT billing.create_payment(:a, 300, as_of => '2026-05-01 00:00+00') AS p_failed \gset
SELECT billing.fail_payment(:p_failed, reason => 'fixture', as_of => '2026-05-01 00:00+00');
SELECT billing.reserve_credits(:a, 20) AS r_captured \gset
SELECT billing.capture_reservation(:r_captured, 10);
SELECT billing.create_invoice(:a, 60, due_at => '2026-06-30 00:00+00', as_of => '2026-05-01 00:00+00') AS inv_paid \gset
SELECT billing.pay_invoice(:inv_paid, as_of => '2026-05-02 00:00+00');
-- Scenario 4, magnitudes: an INR account with the largest overdraft limit, a pending hold of
-- the largest amount, a draft campaign of 2^31-1 recipients x 2^31-1 units on the largest
-- rate, an invoice of the largest amount, a pending payment; the other arguments at their
-- largest valid values.
SELECT billing.set_rate('INR', 'voice', 'extreme', 999999999999999.999999, 999999999999999.999999);
SELECT billing.create_account('INR', overdraft_limit => 999999999999999.999999) AS e \gset
SELECT billing.apply_recharge(:e, 100000, as_of => '2026-05-01 00:00+00') IS NOT NULL AS recharged;
SELECT billing.create_campaign(:e, 'voice', 'extreme', 2147483647, 2147483647, as_of => '2026-05-01 00:00+00') AS c_huge \gset
SELECT billing.reserve_credits(:e, 999999999999999.999999) AS r_huge \gset
SELECT billing.create_payment(:e, 100000, as_of => '2026-05-01 00:00+00') AS p_huge \gset
SELECT billing.create_invoice(:e, 999999999999999.99, due_at => '2026-06-15 00:00+00', as_of => '2026-05-01 00:00+00') AS inv_huge \gset
-- Scenario 5, the ends of time: a USD account whose recharge and invoice are stamped (and the
-- invoice due) at the earliest timestamp, a hold expiring at the latest, a campaign created at
-- the earliest and scheduled for the latest, a pending payment created at the latest.
SELECT billing.create_account('USD') AS g \gset
SELECT billing.apply_recharge(:g, 2000, as_of => '4714-11-24 00:00:00+00 BC') IS NOT NULL AS recharged;
SELECT billing.create_invoice(:g, 10, due_at => '4714-11-24 00:00:00+00 BC', as_of => '4714-11-24 00:00:00+00 BC') AS inv_far \gset
SELECT billing.reserve_credits(:g, 5, expires_at => '294276-12-31 23:59:59.999999+00') AS r_far \gset
SELECT billing.create_campaign(:g, 'sms', 'promotional', 1, as_of => '4714-11-24 00:00:00+00 BC') AS c_far \gset
SELECT billing.schedule_campaign(:c_far, send_at => '294276-12-31 23:59:59.999999+00', as_of => '4714-11-24 00:00:00+00 BC');
SELECT billing.create_payment(:g, 10, as_of => '294276-12-31 23:59:59.999999+00') AS p_far \gset
SELECT dunning_stage, outbound_allowed FROM billing.account_state(:b);
SELECT balance, reserved, available, overdraft_limit FROM billing.account_balance(:e);
SELECT balance, reserved, available FROM billing.account_balance(:d);
SELECT check_name, ok FROM billing.verify_ledger() WHERE NOT ok;

-- Hostile values per type, as SQL expressions (typed, so 22P02 cannot come from a literal;
-- a few are of another type that SQL casts implicitly: integer or bigint for numeric, date
-- for timestamptz).
CREATE TEMP TABLE hostile (typ regtype, ord int, label text, expr text);
INSERT INTO hostile VALUES
    ('numeric', 1, 'NULL', 'NULL::numeric'),
    ('numeric', 2, '0', '0::numeric'),
    ('numeric', 3, '-1', '(-1)::numeric'),
    ('numeric', 4, '-0.0', '(-0.0)::numeric'),
    ('numeric', 5, '1e-7', '1e-7'),
    ('numeric', 6, '0.0000001', '0.0000001'),
    ('numeric', 7, '0.000001', '0.000001'),
    ('numeric', 8, '999999999999999.999999', '999999999999999.999999'),
    ('numeric', 9, '1e15', '1e15'),
    ('numeric', 10, '1e20', '1e20'),
    ('numeric', 11, '9.9e130000', '9.9e130000'),
    ('numeric', 12, '-9.9e130000', '-9.9e130000'),
    ('numeric', 13, '1e-16383', '1e-16383'),
    ('numeric', 14, 'NaN', '''NaN''::numeric'),
    ('numeric', 15, 'Infinity', '''Infinity''::numeric'),
    ('numeric', 16, '-Infinity', '''-Infinity''::numeric'),
    ('numeric', 17, 'integer -2147483648', '(-2147483648)::integer'),
    ('numeric', 18, 'bigint 2^63-1', '9223372036854775807::bigint'),
    ('integer', 1, 'NULL', 'NULL::integer'),
    ('integer', 2, '0', '0::integer'),
    ('integer', 3, '-1', '(-1)::integer'),
    ('integer', 4, '2^31-1', '2147483647::integer'),
    ('integer', 5, '-2^31', '(-2147483648)::integer'),
    ('bigint', 1, 'NULL', 'NULL::bigint'),
    ('bigint', 2, '0', '0::bigint'),
    ('bigint', 3, '-1', '(-1)::bigint'),
    ('bigint', 4, '2^31-1', '2147483647::bigint'),
    ('bigint', 5, '-2^31', '(-2147483648)::bigint'),
    ('bigint', 6, '2^63-1', '9223372036854775807::bigint'),
    ('bigint', 7, '-2^63', '(-9223372036854775808)::bigint'),
    ('bigint', 8, 'unknown id 999999', '999999::bigint'),
    ('text', 1, 'NULL', 'NULL::text'),
    ('text', 2, 'empty', '''''::text'),
    ('text', 3, 'blank', ''' ''::text'),
    ('text', 4, '1 MB ascii', 'repeat(''x'', 1048576)'),
    ('text', 5, '1 MB 4-byte unicode', 'repeat(''😀'', 262144)'),
    ('text', 6, 'unicode', 'E''ℹ️ ünïcödé 😀 日本語 عربي e\u0301 \u202e''::text'),
    ('text', 7, 'quotes and format', $q$$v$O'Brien "x" \ %s %I %L $$ $1$v$::text$q$),
    ('text', 8, 'sql injection', $q$'''; DROP TABLE billing.accounts; --'::text$q$),
    ('text', 9, 'control chars', $q$E'\x01\t\n\r\x7f'::text$q$),
    ('text', 10, 'unknown name', '''no_such_value''::text'),
    ('text', 11, 'padded INR', ''' INR ''::text'),
    ('timestamp with time zone', 1, 'NULL', 'NULL::timestamptz'),
    ('timestamp with time zone', 2, 'infinity', '''infinity''::timestamptz'),
    ('timestamp with time zone', 3, '-infinity', '''-infinity''::timestamptz'),
    ('timestamp with time zone', 4, '4713-01-01 BC', '''4713-01-01 BC''::timestamptz'),
    ('timestamp with time zone', 5, '294276-12-31', '''294276-12-31''::timestamptz'),
    ('timestamp with time zone', 6, 'minimum 4714-11-24 BC', '''4714-11-24 00:00:00+00 BC''::timestamptz'),
    ('timestamp with time zone', 7, 'maximum 294276-12-31 23:59:59.999999', '''294276-12-31 23:59:59.999999+00''::timestamptz'),
    ('timestamp with time zone', 8, 'epoch', '''epoch''::timestamptz'),
    ('timestamp with time zone', 9, 'date 2026-05-21', '''2026-05-21''::date'),
    ('interval', 1, 'NULL', 'NULL::interval'),
    ('interval', 2, '0', '''0''::interval'),
    ('interval', 3, '1 microsecond', '''1 microsecond''::interval'),
    ('interval', 4, '-1 day', '''-1 day''::interval'),
    ('interval', 5, '178000000 years', '''178000000 years''::interval'),
    ('interval', 6, '-178000000 years', '''-178000000 years''::interval'),
    ('interval', 7, 'max days and hours', '''2147483647 days 2562047788 hours''::interval'),
    ('interval', 8, '1 mon -40 days', '''1 mon -40 days''::interval'),
    ('boolean', 1, 'NULL', 'NULL::boolean'),
    ('boolean', 2, 'true', 'true'),
    ('boolean', 3, 'false', 'false'),
    ('name', 1, 'NULL', 'NULL::name'),
    ('name', 2, 'empty', '''''::name'),
    ('name', 3, '1 MB (truncated to 63 bytes)', 'repeat(''x'', 1048576)::name'),
    ('name', 4, 'unicode', '''ℹ️ ünïcödé 😀''::name'),
    ('name', 5, 'quotes', $q$$v$O'Brien "x" \ %I$v$::name$q$),
    ('name', 6, 'sql injection', $q$'"; DROP TABLE billing.accounts; --'::name$q$),
    ('name', 7, 'unknown role', '''no_such_role''::name'),
    ('name', 8, 'public', '''public''::name'),
    ('name', 9, 'superuser postgres', '''postgres''::name'),
    ('text[]', 1, 'NULL', 'NULL::text[]'),
    ('text[]', 2, 'empty array', '''{}''::text[]'),
    ('text[]', 3, 'array of NULL', 'ARRAY[NULL]::text[]'),
    ('text[]', 4, 'unknown function', 'ARRAY[''no_such_function'']'),
    ('text[]', 5, 'sql injection', $q$ARRAY['tick; DROP TABLE billing.accounts; --']$q$),
    ('text[]', 6, 'owner-only function', 'ARRAY[''tick'']'),
    ('text[]', 7, '1 MB name', 'ARRAY[repeat(''x'', 1048576)]'),
    ('jsonb', 1, 'NULL', 'NULL::jsonb'),
    ('jsonb', 2, 'json null', '''null''::jsonb'),
    ('jsonb', 3, 'empty object', '''{}''::jsonb'),
    ('jsonb', 4, 'array', '''[1, 2]''::jsonb'),
    ('jsonb', 5, 'string', '''"x"''::jsonb'),
    ('jsonb', 6, 'wrong types', $q$'{"expired_holds": "1", "more": "true", "ticks": [1]}'::jsonb$q$),
    ('jsonb', 7, 'huge numbers', $q$jsonb_build_object('expired_holds', 9.9e130000, 'dunning_changes', -9.9e130000)$q$),
    ('jsonb', 8, 'NaN-like text', $q$'{"expired_holds": "NaN"}'::jsonb$q$),
    ('jsonb', 9, '1 MB key', $q$jsonb_build_object(repeat('k', 1048576), 1)$q$);

-- Valid values per argument name and type. Scenario 1 is complete; scenarios 2 to 5 override
-- the ids, and scenario 4 the magnitudes (a function is swept again in a scenario only if it
-- takes an argument the scenario overrides). An argument not listed here takes a value of its
-- type and is reported below.
CREATE TEMP TABLE valid (scenario int, argname text, typ regtype, expr text);
INSERT INTO valid VALUES
    (1, 'account_id', 'bigint', :'a'),
    (1, 'reservation_id', 'bigint', :'r'),
    (1, 'payment_id', 'bigint', :'p_pending'),
    (1, 'campaign_id', 'bigint', :'c_draft'),
    (1, 'invoice_id', 'bigint', :'inv_open'),
    (2, 'account_id', 'bigint', :'b'),
    (2, 'reservation_id', 'bigint', :'r_released'),
    (2, 'payment_id', 'bigint', :'p_ok'),
    (2, 'campaign_id', 'bigint', :'c_running'),
    (2, 'invoice_id', 'bigint', :'inv_overdue'),
    (2, 'idempotency_key', 'text', '''fixture-key'''),
    (3, 'account_id', 'bigint', :'d'),
    (3, 'reservation_id', 'bigint', :'r_captured'),
    (3, 'payment_id', 'bigint', :'p_failed'),
    (3, 'campaign_id', 'bigint', :'c_scheduled'),
    (3, 'invoice_id', 'bigint', :'inv_paid'),
    (4, 'account_id', 'bigint', :'e'),
    (4, 'reservation_id', 'bigint', :'r_huge'),
    (4, 'payment_id', 'bigint', :'p_huge'),
    (4, 'campaign_id', 'bigint', :'c_huge'),
    (4, 'invoice_id', 'bigint', :'inv_huge'),
    (4, 'channel', 'text', '''voice'''),
    (4, 'category', 'text', '''extreme'''),
    (4, 'amount', 'numeric', '999999999999999.99'),
    (4, 'units', 'numeric', '999999999999999.999999'),
    (4, 'unit_price', 'numeric', '999999999999999.999999'),
    (4, 'carrier_fee', 'numeric', '999999999999999.999999'),
    (4, 'overdraft_limit', 'numeric', '999999999999999.999999'),
    (4, 'threshold', 'numeric', '999999999999999.999999'),
    (4, 'low_balance_threshold', 'numeric', '999999999999999.999999'),
    (4, 'credit_limit', 'numeric', '999999999999999.999999'),
    (4, 'audience_size', 'integer', '2147483647'),
    (4, 'units_per_recipient', 'integer', '2147483647'),
    (4, 'delivered_units', 'bigint', '4611686014132420609'),
    (5, 'account_id', 'bigint', :'g'),
    (5, 'reservation_id', 'bigint', :'r_far'),
    (5, 'payment_id', 'bigint', :'p_far'),
    (5, 'campaign_id', 'bigint', :'c_far'),
    (5, 'invoice_id', 'bigint', :'inv_far'),
    (1, 'amount', 'numeric', '100'),
    (1, 'currency', 'text', '''INR'''),
    (1, 'external_ref', 'text', '''ext-hostile'''),
    (1, 'overdraft_limit', 'numeric', '0'),
    (1, 'low_balance_threshold', 'numeric', '100'),
    (1, 'threshold', 'numeric', '100'),
    (1, 'reference', 'text', '''ref'''),
    (1, 'expires_at', 'timestamp with time zone', '''2999-01-01 00:00+00''::timestamptz'),
    (1, 'idempotency_key', 'text', '''hostile-key'''),
    (1, 'as_of', 'timestamp with time zone', '''2026-05-21 00:00+00''::timestamptz'),
    (1, 'method', 'text', '''card'''),
    (1, 'channel', 'text', '''sms'''),
    (1, 'category', 'text', '''promotional'''),
    (1, 'unit_price', 'numeric', '0.25'),
    (1, 'carrier_fee', 'numeric', '0'),
    (1, 'body', 'text', '''hello'''),
    (1, 'units', 'numeric', '10'),
    (1, 'occurred_at', 'timestamp with time zone', '''2026-05-20 00:00+00''::timestamptz'),
    (1, 'from_ts', 'timestamp with time zone', '''2026-05-01 00:00+00''::timestamptz'),
    (1, 'to_ts', 'timestamp with time zone', '''2026-06-01 00:00+00''::timestamptz'),
    (1, 'audience_size', 'integer', '10'),
    (1, 'units_per_recipient', 'integer', '1'),
    (1, 'name', 'text', '''campaign'''),
    (1, 'send_at', 'timestamp with time zone', '''2026-05-22 00:00+00''::timestamptz'),
    (1, 'hold', 'boolean', 'false'),
    (1, 'delivered_units', 'bigint', '5'),
    (1, 'reason', 'text', '''rejected'''),
    (1, 'max_age', 'interval', '''30 days''::interval'),
    (1, 'mode', 'text', '''prepaid'''),
    (1, 'credit_limit', 'numeric', 'NULL::numeric'),
    (1, 'due_at', 'timestamp with time zone', '''2026-06-15 00:00+00''::timestamptz'),
    (1, 'description', 'text', '''hostile invoice'''),
    (1, 'role_name', 'name', '''regress_hostile_role''::name'),
    (1, 'functions', 'text[]', 'ARRAY[''campaign_status'']'),
    (1, 'total', 'jsonb', $q$'{"expired_holds": 1, "dunning_changes": 0}'::jsonb$q$),
    (1, 'tick', 'jsonb', $q$'{"expired_holds": 2, "dunning_changes": 1, "more": false}'::jsonb$q$),
    (1, 'report', 'jsonb', 'NULL::jsonb');
-- Fallback values per type, for an argument name not listed above.
CREATE TEMP TABLE type_default (typ regtype, expr text);
INSERT INTO type_default VALUES
    ('bigint', :'a'), ('integer', '1'), ('numeric', '100'), ('text', '''valid'''),
    ('timestamp with time zone', '''2026-05-21 00:00+00''::timestamptz'),
    ('interval', '''30 days''::interval'), ('boolean', 'false'),
    ('name', '''regress_hostile_role''::name'), ('text[]', 'ARRAY[''campaign_status'']'),
    ('jsonb', '''{}''::jsonb');

-- Every routine of schema billing, with its input arguments.
CREATE TEMP TABLE funcs AS
SELECT p.oid, p.proname::text AS fn, p.prokind, p.proretset, p.prorettype::regtype AS rettype,
       CASE WHEN p.prorettype IN ('trigger'::regtype, 'event_trigger'::regtype) THEN 'trigger'
            WHEN p.prokind = 'p' THEN 'procedure'
            WHEN p.prokind <> 'f' THEN 'other'
            WHEN p.proretset THEN 'set'
            WHEN p.prorettype = 'void'::regtype THEN 'void'
            ELSE 'scalar' END AS kind
  FROM pg_proc p
 WHERE p.pronamespace = 'billing'::regnamespace;
CREATE TEMP TABLE args AS
SELECT f.oid, row_number() OVER (PARTITION BY f.oid ORDER BY u.o) AS pos, u.n AS argname, u.t::regtype AS typ
  FROM funcs f JOIN pg_proc p ON p.oid = f.oid,
       LATERAL unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]),
                      coalesce(p.proargmodes, array_fill('i'::"char", ARRAY[p.pronargs])),
                      coalesce(p.proargnames, array_fill(NULL::text, ARRAY[p.pronargs])))
               WITH ORDINALITY AS u(t, m, n, o)
 WHERE u.m IN ('i', 'b', 'v');

-- Nothing is excluded silently: routines that are not swept, and arguments for which there is
-- no valid value by name or no hostile value for their type, are listed here.
SELECT fn, kind,
       CASE kind WHEN 'other' THEN 'not swept: cannot be called as a function'
                 ELSE 'a procedure may COMMIT, which a subtransaction forbids: called at top level after the sweep, see below' END AS note
  FROM funcs WHERE kind IN ('other', 'procedure') ORDER BY fn;
SELECT f.fn, a.argname, a.typ,
       CASE WHEN NOT EXISTS (SELECT 1 FROM hostile h WHERE h.typ = a.typ) THEN 'no hostile values for this type'
            ELSE 'no valid value for this name: uses its type''s default' END AS note
  FROM args a JOIN funcs f USING (oid)
 WHERE NOT EXISTS (SELECT 1 FROM valid v WHERE v.scenario = 1 AND v.argname = a.argname AND v.typ = a.typ)
    OR NOT EXISTS (SELECT 1 FROM hostile h WHERE h.typ = a.typ)
 ORDER BY 1, 2;

-- The calls: per scenario, one with every argument valid (the baseline, showing how deep the
-- valid values reach), then each argument position with each hostile value of its type.
CREATE TEMP TABLE calls AS
WITH scen AS (
    SELECT f.oid, s.scenario
      FROM funcs f, (SELECT DISTINCT scenario FROM valid) s
     WHERE f.kind <> 'other'
       AND (s.scenario = 1 OR EXISTS (SELECT 1 FROM args a JOIN valid v ON v.argname = a.argname AND v.typ = a.typ
                                       WHERE a.oid = f.oid AND v.scenario = s.scenario))
), argval AS (
    SELECT s.oid, s.scenario, a.pos, a.argname, a.typ,
           coalesce((SELECT v.expr FROM valid v WHERE v.argname = a.argname AND v.typ = a.typ AND v.scenario = s.scenario),
                    (SELECT v.expr FROM valid v WHERE v.argname = a.argname AND v.typ = a.typ AND v.scenario = 1),
                    (SELECT t.expr FROM type_default t WHERE t.typ = a.typ),
                    format('NULL::%s', a.typ)) AS expr
      FROM scen s JOIN args a USING (oid)
), variants AS (
    SELECT oid, scenario, 0 AS pos, NULL::text AS argname, 0 AS ord, '(all valid)' AS label
      FROM scen
    UNION ALL
    SELECT av.oid, av.scenario, av.pos, av.argname, h.ord, h.label
      FROM argval av JOIN hostile h ON h.typ = av.typ
)
SELECT row_number() OVER (ORDER BY f.fn, v.scenario, v.pos, v.ord) AS id,
       f.fn, f.kind, f.rettype, v.scenario, v.pos, v.argname, v.label,
       format('billing.%I(%s)', f.fn,
              coalesce((SELECT string_agg(CASE WHEN bool_and_named THEN format('%I => ', av.argname) ELSE '' END
                                          || CASE WHEN av.pos = v.pos THEN h.expr ELSE av.expr END, ', ' ORDER BY av.pos)
                          FROM argval av
                          LEFT JOIN hostile h ON h.typ = av.typ AND h.ord = v.ord
                          CROSS JOIN (SELECT bool_and(a2.argname IS NOT NULL) AS bool_and_named
                                        FROM args a2 WHERE a2.oid = v.oid) nm
                         WHERE av.oid = v.oid AND av.scenario = v.scenario), '')) AS call
  FROM variants v JOIN funcs f USING (oid);
SELECT count(*) > 1000 AND count(*) < 6000 AS bounded_number_of_calls FROM calls;

CREATE TEMP TABLE results (id bigint PRIMARY KEY, code text, message text, result text, null_result boolean);

-- A fingerprint of everything a call could change: every table of schema billing, what the
-- read functions say about every fixture, and the session's settings.
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v text;
BEGIN
    EXECUTE stmt INTO v;
    RETURN v;
EXCEPTION WHEN OTHERS THEN
    RETURN 'ERROR ' || SQLSTATE;
END;
$$;
CREATE FUNCTION pg_temp.fingerprint() RETURNS TABLE (item text, n bigint, digest text)
LANGUAGE plpgsql AS $$
DECLARE
    rel regclass;
BEGIN
    FOR rel IN SELECT c.oid FROM pg_class c
                WHERE c.relnamespace = 'billing'::regnamespace AND c.relkind IN ('r', 'p')
                ORDER BY c.relname
    LOOP
        item := rel::text;
        EXECUTE format('SELECT count(*), md5(coalesce(string_agg(t::text, E''\n'' ORDER BY t::text), '''')) FROM %s t', rel)
           INTO n, digest;
        RETURN NEXT;
    END LOOP;
    item := 'read functions';
    SELECT count(*), md5(string_agg(x, E'\n' ORDER BY x)) INTO n, digest FROM (
        SELECT format('account %s: %s %s %s %s', id,
                      pg_temp.try(format('SELECT array_agg(t)::text FROM billing.account_balance(%s) t', id)),
                      pg_temp.try(format('SELECT array_agg(t)::text FROM billing.account_state(%s, ''2026-05-21 00:00+00'') t', id)),
                      pg_temp.try(format('SELECT billing.postpaid_eligible(%s, ''2026-05-21 00:00+00'')::text', id)),
                      pg_temp.try(format('SELECT array_agg(t)::text FROM billing.usage_report(%s, ''2026-01-01'', ''2027-01-01'') t', id)))
          FROM billing.accounts
        UNION ALL
        SELECT format('campaign %s: %s %s', id,
                      pg_temp.try(format('SELECT billing.campaign_status(%s)', id)),
                      pg_temp.try(format('SELECT billing.estimate_campaign(%s)::text', id)))
          FROM billing.campaigns
        UNION ALL
        SELECT format('segments %s', billing.sms_segments('hello €'))
        UNION ALL
        SELECT format('ledger %s', pg_temp.try('SELECT array_agg(t ORDER BY t.check_name)::text FROM billing.verify_ledger() t'))
    ) r(x);
    RETURN NEXT;
    item := 'session settings';
    SELECT 1, md5(string_agg(name || '=' || setting, ',' ORDER BY name)) INTO n, digest
      FROM pg_settings WHERE source IN ('session', 'client') OR name IN ('search_path', 'TimeZone', 'role', 'session_authorization');
    RETURN NEXT;
END;
$$;
CREATE TEMP TABLE fp_before AS SELECT * FROM pg_temp.fingerprint();
CREATE TEMP TABLE seq_before AS
SELECT c.oid::regclass::text AS seq, s.last_value FROM pg_class c, LATERAL pg_sequence_last_value(c.oid) s(last_value)
 WHERE c.relnamespace = 'billing'::regnamespace AND c.relkind = 'S';

-- The sweep. Any NOTIFY that survived a call would be printed by psql after this statement.
-- (To find a call that crashes the backend: PGOPTIONS='-c hostile.trace=on' logs each call to
-- the server log before it runs.)
LISTEN billing_events;
SET statement_timeout = '120s';
-- (A 1 MB identifier would be truncated with a NOTICE of 1 MB; warnings still show.)
SET client_min_messages = warning;
DO $$
DECLARE
    c record;
    v_code text;
    v_msg text;
    v_res text;
    v_null boolean;
BEGIN
    FOR c IN SELECT * FROM calls WHERE kind <> 'procedure' ORDER BY id LOOP
        v_code := NULL; v_msg := NULL; v_res := NULL; v_null := false;
        IF current_setting('hostile.trace', true) = 'on' THEN
            RAISE LOG 'hostile call %: %', c.id, left(c.call, 300);
        END IF;
        BEGIN
            IF c.kind = 'set' THEN
                EXECUTE format('SELECT format(''%%s rows'', count(*)), coalesce(bool_or(NOT (t IS NOT NULL)), false) FROM %s t', c.call)
                   INTO v_res, v_null;
            ELSIF c.kind = 'void' THEN
                EXECUTE format('SELECT %s', c.call);
                v_res := 'void';
            ELSE
                EXECUTE format('SELECT (%s)::text', c.call) INTO v_res;
                v_null := v_res IS NULL;
            END IF;
            v_code := 'ok';
            -- Roll the call back, so that every call sees the same fixtures.
            RAISE EXCEPTION 'roll back' USING ERRCODE = 'HZ999';
        EXCEPTION WHEN OTHERS THEN
            IF SQLSTATE <> 'HZ999' THEN
                v_code := SQLSTATE;
                v_msg := SQLERRM;
            END IF;
        END;
        INSERT INTO results VALUES (c.id, v_code, v_msg, v_res, v_null);
    END LOOP;
END;
$$;
RESET statement_timeout;
RESET client_min_messages;
UNLISTEN billing_events;
SELECT 1 AS backend_alive;

-- Classification. Documented: BL001..BL006, 22023, P0002, 55000 (schedule_jobs without pg_cron),
-- 42501. Accepted besides, each only where stated; all are PostgreSQL's own errors, passed
-- through unchanged as docs/sql-api.md says, and each call still changed nothing:
--   0A000 for a trigger function: PostgreSQL refuses to call one directly.
--   22008 (timestamp out of range) for a timestamp or interval argument at an extreme of its
--         range (4713 BC and earlier, 294276 AD, an interval of 178000000 years or the largest
--         one): date arithmetic on it leaves the range. (Doubt for the lead: 22023 would match
--         the rule for infinite timestamps.)
--   54000 (index row too large) for a 1 MB text that goes into an indexed column
--         (external_ref, category). (Doubt for the lead: a length limit with 22023.)
--   42883 (no such function) and 22004 (NULL array or element) for the functions argument of
--         grant_execute, the owner-only helper whose list normally comes from api_functions().
CREATE TEMP VIEW classified AS
SELECT c.*, r.code, r.message, r.result, r.null_result,
       CASE WHEN r.code = 'XX000' THEN 'BUG: XX000'
            WHEN r.code IN ('ok', 'BL001', 'BL002', 'BL003', 'BL004', 'BL005', 'BL006', '22023', 'P0002', '55000', '42501')
                 THEN NULL
            WHEN r.code = '0A000' AND c.kind = 'trigger' THEN NULL
            WHEN r.code = '22008' AND c.label IN ('4713-01-01 BC', 'minimum 4714-11-24 BC', '294276-12-31',
                                                  'maximum 294276-12-31 23:59:59.999999', '178000000 years',
                                                  '-178000000 years', 'max days and hours') THEN NULL
            WHEN r.code = '54000' AND c.label IN ('1 MB ascii', '1 MB 4-byte unicode') THEN NULL
            WHEN r.code IN ('42883', '22004') AND c.fn = 'grant_execute' AND c.argname = 'functions' THEN NULL
            ELSE 'UNDOCUMENTED SQLSTATE ' || r.code END AS finding
  FROM calls c JOIN results r USING (id);

SELECT count(*) AS calls, count(*) FILTER (WHERE code IS NULL) AS unrecorded FROM classified;
SELECT count(*) AS procedure_calls_left_for_later FROM calls WHERE kind = 'procedure';

-- Findings: each one is a bug to fix (this query must return no rows). Calls with a finding are
-- left out of the sections below, so that fixing one only adds lines there.
SELECT fn, scenario, coalesce(argname, '-') AS arg, label, finding, left(message, 200) AS message, call
  FROM classified
 WHERE finding IS NOT NULL
 ORDER BY id;
SELECT fn, scenario, coalesce(argname, '-') AS arg, label, 'NULL where the contract promises a value' AS finding, result, call
  FROM classified
 WHERE code = 'ok' AND null_result
 ORDER BY id;

-- The baseline calls (every argument valid), per scenario: how deep the valid values reach.
SELECT fn, scenario, code,
       CASE WHEN code <> 'ok' THEN left(message, 90)
            WHEN rettype = 'bigint'::regtype THEN '(an id)' ELSE left(result, 90) END AS outcome
  FROM classified
 WHERE label = '(all valid)' AND finding IS NULL
 ORDER BY fn, scenario;

-- Every call that succeeded with a hostile value, for a human to review: one line per
-- function, argument and hostile value, with the scenarios in which it succeeded. Ids are not
-- shown (they depend on the sequences), results are cut at 50 characters.
SELECT fn, argname, label, string_agg(scenario::text, ',' ORDER BY scenario) AS scenarios,
       CASE WHEN rettype = 'bigint'::regtype THEN '(an id)' ELSE left(result, 50) END AS result
  FROM classified
 WHERE code = 'ok' AND label <> '(all valid)'
 GROUP BY fn, pos, argname, label, 5
 ORDER BY fn, pos, min(id);

-- Per function: how many calls ended in each SQLSTATE.
SELECT fn, sum(n) AS calls,
       string_agg(code || ' x' || n, ', ' ORDER BY code) AS outcomes
  FROM (SELECT fn, code, count(*) AS n FROM classified WHERE finding IS NULL GROUP BY fn, code) s
 GROUP BY fn
 ORDER BY fn;

-- Nothing changed.
SELECT b.item, b.n = a.n AND b.digest = a.digest AS unchanged
  FROM fp_before b FULL JOIN pg_temp.fingerprint() a USING (item)
 ORDER BY 1;
-- Sequences are not transactional: rolled-back calls may only have advanced them, never moved
-- them back, and every table's ids stay below them (the next row cannot collide).
SELECT count(*) AS sequences,
       count(*) FILTER (WHERE coalesce(s.last_value, 0) >= coalesce(b.last_value, 0)) AS not_moved_back
  FROM seq_before b
  JOIN (SELECT c.oid::regclass::text AS seq, l.last_value FROM pg_class c, LATERAL pg_sequence_last_value(c.oid) l(last_value)
         WHERE c.relnamespace = 'billing'::regnamespace AND c.relkind = 'S') s USING (seq);
CREATE FUNCTION pg_temp.sequences_behind(OUT columns int, OUT behind int)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_max bigint;
    v_last bigint;
BEGIN
    columns := 0;
    behind := 0;
    FOR r IN SELECT d.refobjid::regclass AS tab, a.attname, d.objid::regclass AS seq
               FROM pg_depend d
               JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
               JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
              WHERE s.relnamespace = 'billing'::regnamespace AND d.deptype IN ('a', 'i')
    LOOP
        EXECUTE format('SELECT max(%I) FROM %s', r.attname, r.tab) INTO v_max;
        SELECT last_value INTO v_last FROM pg_sequence_last_value(r.seq) AS l(last_value);
        columns := columns + 1;
        IF v_max > coalesce(v_last, 0) THEN
            behind := behind + 1;
            RAISE WARNING 'sequence % is behind %.%: % < %', r.seq, r.tab, r.attname, v_last, v_max;
        END IF;
    END LOOP;
END;
$$;
SELECT columns > 0 AS checked, behind FROM pg_temp.sequences_behind();
SELECT count(*) AS advisory_locks_left FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid();
SELECT check_name, ok FROM billing.verify_ledger() WHERE NOT ok;

-- Procedures, last: one may COMMIT, so it cannot run in a subtransaction (or a transaction
-- block), and what it commits stays. Each call runs at top level; its result rows are not shown
-- (a report depends on the clock when as_of is NULL), its error is shown by SQLSTATE only.
\set VERBOSITY sqlstate
\o /dev/null
SELECT format('CALL %s', call) FROM calls WHERE kind = 'procedure' ORDER BY id \gexec
\o
\set VERBOSITY default
SELECT check_name, ok FROM billing.verify_ledger() WHERE NOT ok;
SELECT 1 AS backend_alive;
DROP ROLE regress_hostile_role;
