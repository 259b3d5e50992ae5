-- W5: the set-based jobs, timed as single calls next to a bare-SQL baseline of the same shape.
--
--   run_due_campaigns  :campaigns due campaigns (one per account; 85% run, 10% fail for balance,
--                      5% blocked) and :campaigns/10 scheduled later, among :accounts accounts
--   advance_dunning    :invoices unpaid manual invoices, one per account, 0..99 days past due,
--                      among the same :accounts accounts: every account moves, 40% pass the
--                      archived fee, 10% reach deleted; then again at the same as_of, when
--                      nothing is due to change (the daily steady state)
--   usage_export       six months of the account with 1,000,000 usage rows: the data of
--                      bench/usage_report.sql, loaded from it (-v usage=0 skips it)
--
-- Each run is one EXPLAIN (ANALYZE, FORMAT JSON) of the call inside a subtransaction that is
-- then rolled back, so every run starts from the same data; VACUUM between runs. The time is
-- the server's Execution Time (triggers included, planning of the top statement not); the best
-- of :runs is kept. Each run's outcome (statuses, holds, invoices, events, ledger; md5s of the
-- rows) is recorded, and the script fails unless the extension and the baseline left the same
-- outcome in every run. ratio = bare_ms / extension_ms: above 1, the extension is faster.
--
-- It recreates the extension (all billing data in this database is lost), unless -v fresh=0:
-- then it adds its data to what bench/usage_report.sql has just loaded (as ./run bench does, so
-- the usage data is loaded once). Sizes are psql variables (defaults: the issue's sizes, for
-- the release build):
--   psql -X -v campaigns=10000 -v accounts=100000 -v invoices=10000 -v runs=2 -v usage=0 -f bench/w5.sql
-- -v verify=1 runs verify_ledger() on the generated data first; -v history=0 leaves out the
-- released holds that stand for a live system's history (see below); -v steady=0 skips the
-- steady-state dunning runs (and so leaves the generated data unchanged).
-- Runtime, release build on 2 cores: ~1 min at the sizes above; at the defaults, ~30 s a
-- run_due_campaigns and ~45 s an advance_dunning call, so ~10 min with runs=5.
\set ON_ERROR_STOP on
\if :{?campaigns}
\else
\set campaigns 100000
\endif
\if :{?accounts}
\else
\set accounts 1000000
\endif
\if :{?invoices}
\else
\set invoices 100000
\endif
\if :{?runs}
\else
\set runs 5
\endif
\if :{?usage}
\else
\set usage 1
\endif
\if :{?verify}
\else
\set verify 0
\endif
\if :{?history}
\else
\set history 1
\endif
\set as_of '2026-06-01 00:00:00+00'
\if :{?fresh}
\else
\set fresh 1
\endif
\if :{?steady}
\else
\set steady 1
\endif
SET client_min_messages = warning;
\if :fresh
\if :usage
\o /dev/null
\ir usage_report.sql
\o
\else
DROP EXTENSION IF EXISTS billing CASCADE;
CREATE EXTENSION billing;
\endif
\else
-- -v fresh=0: the database holds what bench/usage_report.sql just loaded (./run bench times it
-- first) and nothing else; W5's data goes on top, and usage_export is timed when it is there.
SELECT NOT EXISTS (SELECT 1 FROM billing.campaigns) AND NOT EXISTS (SELECT 1 FROM billing.invoice_records)
       AND NOT EXISTS (SELECT 1 FROM billing.reservations) AS clean,
       EXISTS (SELECT 1 FROM billing.usage WHERE account_id = 1) AS usage \gset
\if :clean
\else
SELECT 'w5.sql -v fresh=0: the database already has campaigns, invoices or holds; load bench/usage_report.sql first'::int;
\endif
\endif
SELECT :campaigns + :invoices <= :accounts AS sizes_ok \gset
\if :sizes_ok
\else
\echo 'w5.sql: campaigns + invoices must not exceed accounts'
SELECT 'w5.sql: campaigns + invoices must not exceed accounts'::int;
\endif
DROP SCHEMA IF EXISTS w5 CASCADE;
CREATE SCHEMA w5;

-- Data, set-based ------------------------------------------------------------------------------

SELECT coalesce(max(id), 0) AS a0 FROM billing.accounts \gset
SELECT billing.set_rate('INR', 'sms', 'promotional', 0.25, 0.05) \gset
-- Accounts a0+1 .. a0+campaigns carry the campaigns: funded with 10,000 (a 300 campaign leaves
-- them far above the low-balance threshold), 100 when g % 10 = 5 (too little: fails for balance),
-- outbound_blocked when g % 20 = 0. The others start at 0; some of them get an invoice.
INSERT INTO billing.accounts (id, currency, balance, dunning_stage, created_at) OVERRIDING SYSTEM VALUE
SELECT :a0 + g, 'INR',
       CASE WHEN g > :campaigns THEN 0 WHEN g % 10 = 5 THEN 100 ELSE 10000 END,
       CASE WHEN g <= :campaigns AND g % 20 = 0 THEN 'outbound_blocked' ELSE 'current' END,
       timestamptz :'as_of' - interval '1 year'
  FROM generate_series(1, :accounts) g;
SELECT setval(pg_get_serial_sequence('billing.accounts', 'id'), max(id)) FROM billing.accounts \gset
WITH t AS MATERIALIZED (SELECT id, balance, nextval('billing.transfer_ids') AS tid
                          FROM billing.accounts WHERE id > :a0 AND balance <> 0)
INSERT INTO billing.ledger_entries (account_id, transfer_id, ledger_account, currency, amount, kind, source, source_id, created_at)
SELECT t.id, t.tid, leg.acct, 'INR', leg.sign * t.balance, 'recharge', 'bench', 0, timestamptz :'as_of' - interval '1 year'
  FROM t, (VALUES ('wallet', 1), ('payments_clearing', -1)) leg(acct, sign);

-- Campaigns: drafts (the only way in), then scheduled at a price fixed at 0.30 a unit: cost 300.
-- The first :campaigns are due in the day before as_of; the rest (on the first accounts again)
-- a day after it.
INSERT INTO billing.campaigns (account_id, channel, category, audience_size, units_per_recipient, name, send_at, created_at, updated_at)
SELECT :a0 + 1 + (g - 1) % :campaigns, 'sms', 'promotional', 1000, 1, 'w5 campaign ' || g,
       CASE WHEN g <= :campaigns THEN timestamptz :'as_of' - (g % 86400 + 1) * interval '1 second'
            ELSE timestamptz :'as_of' + interval '1 day' END,
       timestamptz :'as_of' - interval '2 days', timestamptz :'as_of' - interval '2 days'
  FROM generate_series(1, :campaigns + :campaigns / 10) g;
UPDATE billing.campaigns
   SET status = 'scheduled', unit_price = 0.25, carrier_fee = 0.05, cost = 300.00,
       updated_at = timestamptz :'as_of' - interval '1 day'
 WHERE account_id > :a0;

-- History, as a live system has it: one released hold per campaign account, so the planner
-- sees a populated billing.reservations. With -v history=0 the table starts empty; before 0.4.0
-- the campaign guard trigger's cached plan for its hold lookup was then a sequential scan, each
-- campaign set running scanned every hold made before it in the call, quadratic in the due
-- campaigns (the guard now runs with enable_seqscan = off).
\if :history
INSERT INTO billing.reservations (account_id, amount, status, reference, created_at, resolved_at)
SELECT :a0 + g, 10, 'released', 'w5 history', timestamptz :'as_of' - interval '30 days', timestamptz :'as_of' - interval '29 days'
  FROM generate_series(1, :campaigns) g;
\endif

-- Invoices: one open manual invoice of 1,000 on every step-th account after the campaign ones,
-- k % 100 days (and an hour) past due; booked to receivables and revenue as create_invoice does.
SELECT (:accounts - :campaigns) / greatest(:invoices, 1) AS step \gset
INSERT INTO billing.invoice_records (account_id, kind, amount, currency, status, due_at, description, created_at)
SELECT :a0 + :campaigns + 1 + (k - 1) * :step, 'manual', 1000, 'INR', 'open',
       timestamptz :'as_of' - (k % 100) * interval '1 day' - interval '1 hour', 'w5 invoice ' || k,
       timestamptz :'as_of' - (k % 100) * interval '1 day' - interval '15 days'
  FROM generate_series(1, :invoices) k;
WITH t AS MATERIALIZED (SELECT account_id, id, amount, created_at, nextval('billing.transfer_ids') AS tid
                          FROM billing.invoice_records WHERE account_id > :a0)
INSERT INTO billing.ledger_entries (account_id, transfer_id, ledger_account, currency, amount, kind, source, source_id, created_at)
SELECT t.account_id, t.tid, leg.acct, 'INR', leg.sign * t.amount, 'manual', 'invoice', t.id, t.created_at
  FROM t, (VALUES ('receivables', -1), ('revenue', 1)) leg(acct, sign);
VACUUM ANALYZE;
\if :verify
SELECT count(*) = 0 AS ledger_ok FROM billing.verify_ledger() WHERE NOT ok \gset
\if :ledger_ok
\else
SELECT * FROM billing.verify_ledger() WHERE NOT ok;
SELECT 'w5.sql: the generated data breaks a ledger invariant'::int;
\endif
\endif

-- The baselines ------------------------------------------------------------------------------------

-- run_due_campaigns as set-based SQL: lock the accounts of the due campaigns and decide each
-- one (blocked, else the cost against available); hold the cost of the ones that run, bump
-- reserved, set every status, record the failure events and any low-balance crossing (the
-- extension's rules, src/campaigns.rs execute_locked and holds::hold). It assumes what the data
-- above guarantees and refuses otherwise: one due campaign per account (otherwise each decision
-- depends on the previous one), none held at scheduling, no auto-recharge enabled.
CREATE UNLOGGED TABLE w5.due (account_id bigint, id bigint, cost numeric, available numeric, threshold numeric,
                              stage text, outcome text, reservation_id bigint, auto_recharge text);
CREATE FUNCTION w5.bare_run_due_campaigns(as_of timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    TRUNCATE w5.due;
    INSERT INTO w5.due
    SELECT c.account_id, c.id, c.cost, a.balance - a.reserved + a.overdraft_limit,
           coalesce(a.low_balance_threshold, cur.low_balance_threshold), a.dunning_stage,
           CASE WHEN NOT s.outbound_allowed THEN 'failed_blocked'
                WHEN c.cost <= a.balance - a.reserved + a.overdraft_limit THEN 'running'
                ELSE 'failed_low_balance' END,
           c.reservation_id, a.auto_recharge
      FROM billing.campaigns c
      JOIN billing.accounts a ON a.id = c.account_id
      JOIN billing.currencies cur ON cur.code = a.currency
      JOIN billing.dunning_stages s ON s.stage = a.dunning_stage
     WHERE c.status = 'scheduled' AND c.send_at <= as_of
       FOR NO KEY UPDATE OF a;
    IF EXISTS (SELECT 1 FROM w5.due GROUP BY account_id HAVING count(*) > 1)
       OR EXISTS (SELECT 1 FROM w5.due WHERE reservation_id IS NOT NULL OR cost = 0 OR auto_recharge = 'enabled') THEN
        RAISE EXCEPTION 'w5 baseline: the data must have one unheld, non-free due campaign per account, no auto-recharge';
    END IF;
    WITH h AS (INSERT INTO billing.reservations (account_id, amount, reference, created_at, campaign_id)
               SELECT account_id, cost, 'campaign ' || id, as_of, id FROM w5.due WHERE outcome = 'running'
               RETURNING account_id, id, campaign_id)
    UPDATE w5.due d SET reservation_id = h.id FROM h WHERE d.account_id = h.account_id AND d.id = h.campaign_id;
    UPDATE billing.accounts a SET reserved = a.reserved + d.cost
      FROM w5.due d WHERE a.id = d.account_id AND d.outcome = 'running';
    UPDATE billing.campaigns c SET status = d.outcome, reservation_id = d.reservation_id, updated_at = as_of
      FROM w5.due d WHERE c.account_id = d.account_id AND c.id = d.id;
    INSERT INTO billing.events (account_id, kind, payload, created_at)
    SELECT account_id, 'low_balance',
           jsonb_build_object('available', available - cost, 'threshold', threshold, 'currency', 'INR'), as_of
      FROM w5.due WHERE outcome = 'running' AND available >= threshold AND available - cost < threshold
    UNION ALL
    SELECT account_id, 'campaign_' || outcome,
           CASE outcome WHEN 'failed_blocked' THEN jsonb_build_object('campaign_id', id, 'stage', stage)
                ELSE jsonb_build_object('campaign_id', id, 'required', cost, 'available', available,
                                        'shortfall', cost - available) END, as_of
      FROM w5.due WHERE outcome <> 'running';
    SELECT count(*) INTO n FROM w5.due;
    RETURN n;
END;
$$;

-- advance_dunning as set-based SQL: lock the accounts with an unpaid invoice due, with their
-- oldest one and the stage its age reaches; mark due invoices overdue; invoice the one-time fees
-- of the stages passed (invoice, receivables/revenue legs, invoice_created event); move the
-- stage; record the target stage's reminders and event; purge what a deleted account loses
-- (src/dunning.rs advance_due and advance).
CREATE UNLOGGED TABLE w5.dun (account_id bigint, currency text, current_rank integer, invoice_id bigint,
                              days bigint, target text, target_rank integer, reminders text[], event text);
CREATE UNLOGGED TABLE w5.fee (account_id bigint, currency text, stage text, rank integer, amount numeric);
CREATE FUNCTION w5.bare_advance_dunning(as_of timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    TRUNCATE w5.dun, w5.fee;
    INSERT INTO w5.dun
    SELECT a.id, a.currency, s.rank, o.id, o.days, t.stage, t.rank, t.reminders, t.event
      FROM (SELECT DISTINCT ON (account_id) account_id, id,
                   floor(extract(epoch FROM (as_of - due_at)) / 86400)::bigint AS days
              FROM billing.invoice_records WHERE status <> 'paid' AND due_at <= as_of
             ORDER BY account_id, due_at, id) o
      JOIN billing.accounts a ON a.id = o.account_id
      JOIN billing.dunning_stages s ON s.stage = a.dunning_stage
      LEFT JOIN LATERAL (SELECT p.stage, ps.rank, p.reminders, p.event
                           FROM billing.dunning_policy p JOIN billing.dunning_stages ps USING (stage)
                          WHERE p.day <= o.days ORDER BY p.day DESC LIMIT 1) t ON true
       FOR NO KEY UPDATE OF a;
    UPDATE billing.invoice_records SET status = 'overdue' WHERE status = 'open' AND due_at <= as_of;
    DELETE FROM w5.dun WHERE target_rank IS NULL OR target_rank <= current_rank;
    INSERT INTO w5.fee
    SELECT d.account_id, d.currency, p.stage, ps.rank, f.amount
      FROM w5.dun d
      JOIN billing.accounts a ON a.id = d.account_id
      JOIN billing.dunning_policy p ON true
      JOIN billing.dunning_stages ps ON ps.stage = p.stage
      JOIN billing.dunning_fees f ON f.stage = p.stage AND f.currency = d.currency
     WHERE ps.rank > d.current_rank AND ps.rank <= d.target_rank AND NOT p.stage = ANY (a.dunning_fees_charged);
    -- A fee is due at as_of, so overdue at once, as the extension marks it.
    WITH i AS (INSERT INTO billing.invoice_records (account_id, kind, amount, currency, status, due_at, description, created_at)
               SELECT account_id, 'recovery_fee', amount, currency, 'overdue', as_of, 'Recovery fee (' || stage || ')', as_of
                 FROM w5.fee ORDER BY account_id, rank
               RETURNING account_id, id, amount, currency),
         t AS MATERIALIZED (SELECT i.*, nextval('billing.transfer_ids') AS tid FROM i),
         l AS (INSERT INTO billing.ledger_entries (account_id, transfer_id, ledger_account, currency, amount, kind, source, source_id, created_at)
               SELECT t.account_id, t.tid, leg.acct, t.currency, leg.sign * t.amount, 'recovery_fee', 'invoice', t.id, as_of
                 FROM t, (VALUES ('receivables', -1), ('revenue', 1)) leg(acct, sign))
    INSERT INTO billing.events (account_id, kind, payload, created_at)
    SELECT account_id, 'invoice_created',
           jsonb_build_object('invoice_id', id, 'kind', 'recovery_fee', 'amount', amount, 'currency', currency), as_of
      FROM t;
    UPDATE billing.accounts a
       SET dunning_stage = d.target, dunning_since = coalesce(a.dunning_since, as_of),
           dunning_fees_charged = a.dunning_fees_charged || coalesce(f.stages, '{}'),
           reserved = CASE WHEN d.target = 'deleted' THEN 0 ELSE a.reserved END,
           auto_recharge = CASE WHEN d.target = 'deleted' THEN 'disabled' ELSE a.auto_recharge END,
           auto_recharge_threshold = CASE WHEN d.target = 'deleted' THEN NULL ELSE a.auto_recharge_threshold END,
           auto_recharge_amount = CASE WHEN d.target = 'deleted' THEN NULL ELSE a.auto_recharge_amount END,
           auto_recharge_method = CASE WHEN d.target = 'deleted' THEN NULL ELSE a.auto_recharge_method END
      FROM w5.dun d
      LEFT JOIN (SELECT account_id, array_agg(stage ORDER BY rank) AS stages FROM w5.fee GROUP BY account_id) f
             ON f.account_id = d.account_id
     WHERE a.id = d.account_id;
    INSERT INTO billing.events (account_id, kind, payload, created_at)
    SELECT d.account_id, 'dunning_reminder',
           jsonb_build_object('channel', ch, 'invoice_id', d.invoice_id, 'days_overdue', d.days, 'stage', d.target), as_of
      FROM w5.dun d, unnest(d.reminders) ch
    UNION ALL
    SELECT d.account_id, d.event,
           jsonb_build_object('invoice_id', d.invoice_id, 'days_overdue', d.days, 'stage', d.target), as_of
      FROM w5.dun d WHERE d.event IS NOT NULL;
    DELETE FROM billing.campaigns c USING w5.dun d WHERE d.target = 'deleted' AND c.account_id = d.account_id;
    UPDATE billing.reservations r SET status = 'released', resolved_at = as_of
      FROM w5.dun d WHERE d.target = 'deleted' AND r.account_id = d.account_id AND r.status = 'pending';
    DELETE FROM billing.idempotency_keys k USING w5.dun d WHERE d.target = 'deleted' AND k.account_id = d.account_id;
    SELECT count(*) INTO n FROM w5.dun;
    RETURN n;
END;
$$;

-- Outcomes: counts and sums, then md5s of the rows (ids the two sides allocate differently left out).
CREATE FUNCTION w5.campaign_outcome() RETURNS text LANGUAGE sql AS $$
SELECT concat_ws(' ',
    (SELECT string_agg(status || '=' || n, ' ' ORDER BY status)
       FROM (SELECT status, count(*) AS n FROM billing.campaigns GROUP BY status) s),
    (SELECT 'pending_holds=' || count(*) || '/' || coalesce(sum(amount), 0) FROM billing.reservations WHERE status = 'pending'),
    (SELECT 'reserved=' || sum(reserved) FROM billing.accounts),
    (SELECT string_agg(kind || '=' || n, ' ' ORDER BY kind)
       FROM (SELECT kind, count(*) AS n FROM billing.events GROUP BY kind) e),
    '| campaigns', (SELECT md5(string_agg(format('%s:%s:%s:%s:%s:%s', c.id, c.status, c.updated_at, r.amount, r.reference, r.created_at), ','
                                          ORDER BY c.id))
                      FROM billing.campaigns c
                      LEFT JOIN billing.reservations r ON r.account_id = c.account_id AND r.id = c.reservation_id),
    'events', (SELECT md5(string_agg(format('%s:%s:%s:%s', account_id, kind, payload, created_at), ',' ORDER BY account_id, kind, payload::text))
                 FROM billing.events))
$$;
CREATE FUNCTION w5.dunning_outcome() RETURNS text LANGUAGE sql AS $$
SELECT concat_ws(' ',
    (SELECT string_agg(dunning_stage || '=' || n, ' ' ORDER BY dunning_stage)
       FROM (SELECT dunning_stage, count(*) AS n FROM billing.accounts GROUP BY dunning_stage) s),
    (SELECT string_agg(kind || '/' || status || '=' || n || '/' || total, ' ' ORDER BY kind, status)
       FROM (SELECT kind, status, count(*) AS n, sum(amount) AS total FROM billing.invoice_records GROUP BY kind, status) i),
    (SELECT string_agg(kind || '=' || n, ' ' ORDER BY kind)
       FROM (SELECT kind, count(*) AS n FROM billing.events GROUP BY kind) e),
    (SELECT 'ledger=' || count(*) || '/' || sum(abs(amount)) FROM billing.ledger_entries),
    (SELECT 'campaigns=' || count(*) FROM billing.campaigns),
    '| accounts', (SELECT md5(string_agg(format('%s:%s:%s:%s:%s:%s', id, dunning_stage, dunning_since, dunning_fees_charged, reserved, auto_recharge), ','
                                         ORDER BY id))
                     FROM billing.accounts WHERE dunning_stage <> 'current' OR dunning_since IS NOT NULL),
    'invoices', (SELECT md5(string_agg(format('%s:%s:%s:%s:%s:%s', account_id, kind, status, amount, due_at, description), ','
                                       ORDER BY account_id, kind, due_at, description))
                   FROM billing.invoice_records),
    'events', (SELECT md5(string_agg(format('%s:%s:%s:%s', account_id, kind,
                                            CASE kind WHEN 'invoice_created' THEN payload - 'invoice_id' ELSE payload END, created_at),
                                     ',' ORDER BY account_id, kind, payload::text))
                 FROM billing.events))
$$;
CREATE FUNCTION w5.rows_md5(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    h text;
BEGIN
    EXECUTE format('SELECT md5(string_agg(format(''%%s %%s %%s %%s %%s'', day, channel, category, units, amount), '','' ORDER BY day, channel, category)) FROM (%s) q', query)
       INTO h;
    RETURN h;
END;
$$;

-- The harness: one timed run, rolled back.
CREATE TABLE w5.timings (job text, impl text, run integer, ms double precision, outcome text);
CREATE FUNCTION w5.time(job text, impl text, run integer, query text, outcome text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    plan json;
    ms double precision;
    result text;
BEGIN
    BEGIN
        EXECUTE 'EXPLAIN (ANALYZE, FORMAT JSON) ' || query INTO plan;
        ms := (plan -> 0 ->> 'Execution Time')::double precision;
        EXECUTE outcome INTO result;
        RAISE SQLSTATE 'W5RB0'; -- undo the run
    EXCEPTION WHEN SQLSTATE 'W5RB0' THEN
        NULL;
    END;
    INSERT INTO w5.timings VALUES (job, impl, run, ms, result);
END;
$$;

-- The runs ---------------------------------------------------------------------------------------

\set vacuum 'VACUUM billing.accounts, billing.campaigns, billing.reservations, billing.events, billing.invoice_records, billing.ledger_entries, billing.idempotency_keys'
CREATE TEMP TABLE jobs (ord integer, job text, impl text, query text, outcome text);
INSERT INTO jobs VALUES
    (1, 'run_due_campaigns', 'extension', format('SELECT billing.run_due_campaigns(%L)', :'as_of'), 'SELECT w5.campaign_outcome()'),
    (2, 'run_due_campaigns', 'bare', format('SELECT w5.bare_run_due_campaigns(%L)', :'as_of'), 'SELECT w5.campaign_outcome()'),
    (3, 'advance_dunning', 'extension', format('SELECT count(*) FROM billing.advance_dunning(%L)', :'as_of'), 'SELECT w5.dunning_outcome()'),
    (4, 'advance_dunning', 'bare', format('SELECT w5.bare_advance_dunning(%L)', :'as_of'), 'SELECT w5.dunning_outcome()');
\if :usage
INSERT INTO jobs
SELECT ord, 'usage_export', impl, q, format('SELECT w5.rows_md5(%L)', q)
  FROM (VALUES (5, 'extension', $q$SELECT * FROM billing.usage_export(1, '2026-12-31')$q$),
               (6, 'bare', $q$SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, channel, category, sum(units) AS units, sum(amount) AS amount
                    FROM billing.usage WHERE account_id = 1 AND occurred_at >= '2026-06-30' AND occurred_at < '2026-12-31'
                   GROUP BY 1, 2, 3 ORDER BY 1, 2, 3$q$)) v(ord, impl, q);
\endif
\o /dev/null
SELECT s FROM jobs, generate_series(1, :runs) r,
       LATERAL (VALUES (1, format('SELECT w5.time(%L, %L, %s, %L, %L)', job, impl, r, query, outcome)), (2, :'vacuum')) v(o, s)
 ORDER BY r, ord, o \gexec
\o
-- Dunning in the steady state: the first run committed, then the same as_of again (nothing
-- moves). -v steady=0 skips it and leaves the data as generated.
\if :steady
SELECT count(*) AS dunning_changes FROM billing.advance_dunning(:'as_of') \gset
:vacuum;
\o /dev/null
SELECT s FROM (VALUES (7, 'extension', format('SELECT count(*) FROM billing.advance_dunning(%L)', :'as_of')),
                      (8, 'bare', format('SELECT w5.bare_advance_dunning(%L)', :'as_of'))) j(ord, impl, query),
       generate_series(1, :runs) r,
       LATERAL (VALUES (1, format('SELECT w5.time(%L, %L, %s, %L, %L)', 'advance_dunning again', impl, r, query,
                                  'SELECT w5.dunning_outcome()')), (2, :'vacuum')) v(o, s)
 ORDER BY r, ord, o \gexec
\o
\endif

-- The table --------------------------------------------------------------------------------------

\pset format unaligned
\pset tuples_only on
SELECT format('W5 set-based jobs: best of %s, server execution time (EXPLAIN ANALYZE), each run rolled back; jit %s, history %s; ratio = bare / extension',
              :runs, current_setting('jit'), :history);
SELECT format('%-52s %13s %10s %7s', 'job', 'extension_ms', 'bare_ms', 'ratio');
SELECT format('%-52s %13s %10s %7s', label, round(e::numeric, 1), round(b::numeric, 1), round((b / e)::numeric, 2))
  FROM (SELECT job, min(ms) FILTER (WHERE impl = 'extension') AS e, min(ms) FILTER (WHERE impl = 'bare') AS b
          FROM w5.timings GROUP BY job) t
  JOIN (VALUES (1, 'run_due_campaigns', format('run_due_campaigns, %s due of %s scheduled', :campaigns, :campaigns + :campaigns / 10)),
               (2, 'advance_dunning', format('advance_dunning, %s unpaid, %s accounts', :invoices, :accounts)),
               (3, 'advance_dunning again', 'advance_dunning again, nothing to change'),
               (4, 'usage_export', 'usage_export, six months of 1M usage rows')) l(ord, job, label) USING (job)
 ORDER BY ord;
SELECT format('%s outcome, every run, extension = bare SQL: %s', job, split_part(min(outcome), ' | ', 1))
  FROM w5.timings WHERE job <> 'usage_export' GROUP BY job ORDER BY min(run), job;
SELECT count(*) = 0 AS outcomes_match FROM (SELECT job FROM w5.timings GROUP BY job HAVING count(DISTINCT outcome) <> 1 OR count(outcome) <> count(*)) x \gset
\if :outcomes_match
\echo 'W5 check: ok, the extension and the baseline left the same outcome in every run'
\else
SELECT format('%s %s run %s: %s', job, impl, run, outcome) FROM w5.timings ORDER BY job, impl, run;
SELECT 'W5 check failed: the extension and the baseline disagree (see above)'::int;
\endif
