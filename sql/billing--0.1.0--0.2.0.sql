-- billing 0.1.0 -> 0.2.0. Applied by ALTER EXTENSION billing UPDATE; ./run test installs 0.1.0
-- (tests/upgrade/billing--0.1.0.sql), updates it, and checks that the catalog equals a fresh 0.2.0
-- and that the data and the API survive.
\echo Use "ALTER EXTENSION billing UPDATE TO '0.2.0'" to load this file. \quit

-- tick() works in bounded batches: the state it keeps between them ---------------------------------

ALTER TABLE billing.scheduler_state
    ADD COLUMN close_pending boolean NOT NULL DEFAULT false,
    ADD COLUMN dunning_after bigint NOT NULL DEFAULT 0;
COMMENT ON COLUMN billing.scheduler_state.close_pending IS
    'The close of the month before last_close_month is under way: each tick closes one more batch of accounts.';
COMMENT ON COLUMN billing.scheduler_state.dunning_after IS
    'Where the next tick''s dunning batch starts (account id; 0: from the first account).';

COMMENT ON FUNCTION billing.tick(timestamptz) IS
    'Runs every due step once, each on at most billing.batch_size accounts, skipping locked ones (holds, campaigns, dunning, drafts, the monthly close after a month boundary); returns what it did, "more": true when a batch was full. One session at a time (advisory lock); nothing on a standby.';

-- Sums the counts of two tick() reports (run_tick's running total); other keys from the later one.
CREATE FUNCTION billing.add_tick_reports(total jsonb, tick jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(jsonb_object_agg(k,
               CASE WHEN jsonb_typeof(v) = 'number' AND jsonb_typeof(total -> k) = 'number'
                    THEN to_jsonb((total ->> k)::numeric + (v #>> '{}')::numeric)
                    WHEN jsonb_typeof(v) = 'null' THEN coalesce(total -> k, v)
                    ELSE v END), total, '{}'::jsonb)
      FROM jsonb_each(tick) AS e(k, v)
$$;
COMMENT ON FUNCTION billing.add_tick_reports(jsonb, jsonb) IS
    'run_tick''s running total: the counts of two tick() reports added, other keys from the later one.';
REVOKE ALL ON FUNCTION billing.add_tick_reports(jsonb, jsonb) FROM PUBLIC;

-- Repeats tick(), committing after each, until no step has more due (at most 10000 ticks), so a
-- backlog is worked off in bounded transactions. A procedure, as the invoker: transaction control
-- is not allowed in a SECURITY DEFINER routine, and it only calls tick(), which is one.
CREATE PROCEDURE billing.run_tick(as_of timestamptz DEFAULT NULL, INOUT report jsonb DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    r jsonb;
    ticks integer := 0;
BEGIN
    report := NULL;
    LOOP
        r := billing.tick(coalesce(as_of, pg_catalog.now()));
        ticks := ticks + 1;
        report := billing.add_tick_reports(report, r);
        COMMIT;
        EXIT WHEN (r ->> 'more') IS DISTINCT FROM 'true' OR ticks >= 10000;
    END LOOP;
    report := report || jsonb_build_object('ticks', ticks);
END;
$$;
COMMENT ON PROCEDURE billing.run_tick(timestamptz, jsonb) IS
    'CALL billing.run_tick(): tick() again and again, committing after each, until nothing more is due; returns the summed report. Outside a transaction block only. NULL as_of: now() of each tick.';
REVOKE ALL ON PROCEDURE billing.run_tick(timestamptz, jsonb) FROM PUBLIC;

COMMENT ON FUNCTION billing.schedule_jobs() IS
    'Creates or updates the pg_cron job billing-tick (every minute, CALL billing.run_tick()); 55000 with a hint where pg_cron is not installed.';

-- Row invariants of accounts and reservations: compiled triggers instead of CHECK constraints,
-- which PostgreSQL re-parses in every statement (sql/001_schema.sql, src/invariants.rs) --------

ALTER TABLE billing.accounts
    DROP CONSTRAINT accounts_reserved_check,
    DROP CONSTRAINT accounts_overdraft_limit_check,
    DROP CONSTRAINT accounts_low_balance_threshold_check,
    DROP CONSTRAINT accounts_billing_mode_check,
    DROP CONSTRAINT accounts_auto_recharge_check,
    DROP CONSTRAINT accounts_auto_recharge_threshold_check,
    DROP CONSTRAINT accounts_auto_recharge_amount_check;
CREATE FUNCTION billing.account_row_invariants() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'billing_account_row_invariants';
CREATE TRIGGER row_invariants BEFORE INSERT OR UPDATE ON billing.accounts
    FOR EACH ROW EXECUTE FUNCTION billing.account_row_invariants();

ALTER TABLE billing.reservations
    DROP CONSTRAINT reservations_amount_check,
    DROP CONSTRAINT reservations_status_check,
    DROP CONSTRAINT reservations_check,
    DROP CONSTRAINT resolved_iff_not_pending,
    DROP CONSTRAINT captured_iff_status_captured;
CREATE FUNCTION billing.reservation_row_invariants() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'billing_reservation_row_invariants';
CREATE TRIGGER row_invariants BEFORE INSERT OR UPDATE ON billing.reservations
    FOR EACH ROW EXECUTE FUNCTION billing.reservation_row_invariants();

ALTER TABLE billing.ledger_entries
    DROP CONSTRAINT ledger_entries_ledger_account_check,
    DROP CONSTRAINT ledger_entries_amount_check;
CREATE FUNCTION billing.ledger_row_invariants() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'billing_ledger_row_invariants';
CREATE TRIGGER row_invariants BEFORE INSERT ON billing.ledger_entries
    FOR EACH ROW EXECUTE FUNCTION billing.ledger_row_invariants();

ALTER TABLE billing.usage
    DROP CONSTRAINT usage_units_check,
    DROP CONSTRAINT usage_price_check,
    DROP CONSTRAINT usage_carrier_fee_check;
CREATE FUNCTION billing.usage_row_invariants() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'billing_usage_row_invariants';
CREATE TRIGGER row_invariants BEFORE INSERT OR UPDATE ON billing.usage
    FOR EACH ROW EXECUTE FUNCTION billing.usage_row_invariants();

-- Changes to seeded reference rows survive pg_dump / pg_restore (sql/008_seed_changes.sql) ---------

CREATE TABLE billing.seed_rows (
    table_name text NOT NULL,
    key        jsonb NOT NULL,
    PRIMARY KEY (table_name, key)
);
COMMENT ON TABLE billing.seed_rows IS
    'The rows CREATE EXTENSION seeds, by table and primary key (as jsonb); changes to them are recorded in billing.seed_changes.';

CREATE TABLE billing.seed_changes (
    table_name text NOT NULL,
    key        jsonb NOT NULL,
    new_row    jsonb,
    changed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (table_name, key),
    FOREIGN KEY (table_name, key) REFERENCES billing.seed_rows
);
COMMENT ON TABLE billing.seed_changes IS
    'The latest change to each seeded reference row: the row as it now is (NULL: deleted). Dumped by pg_dump and applied again on restore.';

-- Records an UPDATE or DELETE of a seeded row. A changed key counts as deleting the seeded row
-- (the row under its new key is an administrator's row, which pg_dump keeps by itself).
CREATE FUNCTION billing.record_seed_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k jsonb;
BEGIN
    SELECT s.key INTO k FROM billing.seed_rows s
     WHERE s.table_name = TG_TABLE_NAME AND to_jsonb(OLD) @> s.key;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO billing.seed_changes AS c (table_name, key, new_row)
    VALUES (TG_TABLE_NAME, k, CASE WHEN TG_OP = 'UPDATE' AND to_jsonb(NEW) @> k THEN to_jsonb(NEW) END)
    ON CONFLICT (table_name, key) DO UPDATE SET new_row = EXCLUDED.new_row, changed_at = now();
    RETURN NULL;
END;
$$;

-- On restore only (session_replication_role = replica, when every other trigger is quiet): the
-- restored change is applied to the row CREATE EXTENSION has just seeded.
CREATE FUNCTION billing.apply_seed_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cols text;
BEGIN
    IF current_setting('session_replication_role') <> 'replica' THEN
        RETURN NULL;
    END IF;
    IF NEW.new_row IS NULL THEN
        EXECUTE format('DELETE FROM billing.%I t WHERE to_jsonb(t) @> $1', NEW.table_name) USING NEW.key;
        RETURN NULL;
    END IF;
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
      FROM pg_attribute a
     WHERE a.attrelid = format('billing.%I', NEW.table_name)::regclass AND a.attnum > 0 AND NOT a.attisdropped;
    EXECUTE format('UPDATE billing.%1$I t SET (%2$s) = (SELECT %2$s FROM jsonb_populate_record(NULL::billing.%1$I, $1))
                     WHERE to_jsonb(t) @> $2', NEW.table_name, cols)
      USING NEW.new_row, NEW.key;
    RETURN NULL;
END;
$$;

CREATE TRIGGER apply_on_restore AFTER INSERT ON billing.seed_changes
    FOR EACH ROW EXECUTE FUNCTION billing.apply_seed_change();
ALTER TABLE billing.seed_changes ENABLE ALWAYS TRIGGER apply_on_restore;

CREATE TRIGGER record_seed_change AFTER UPDATE OR DELETE ON billing.currencies
    FOR EACH ROW EXECUTE FUNCTION billing.record_seed_change();
CREATE TRIGGER record_seed_change AFTER UPDATE OR DELETE ON billing.payment_methods
    FOR EACH ROW EXECUTE FUNCTION billing.record_seed_change();
CREATE TRIGGER record_seed_change AFTER UPDATE OR DELETE ON billing.channels
    FOR EACH ROW EXECUTE FUNCTION billing.record_seed_change();
CREATE TRIGGER record_seed_change AFTER UPDATE OR DELETE ON billing.dunning_policy
    FOR EACH ROW EXECUTE FUNCTION billing.record_seed_change();
CREATE TRIGGER record_seed_change AFTER UPDATE OR DELETE ON billing.dunning_fees
    FOR EACH ROW EXECUTE FUNCTION billing.record_seed_change();

REVOKE ALL ON billing.seed_rows, billing.seed_changes FROM PUBLIC;
REVOKE ALL ON FUNCTION billing.record_seed_change(), billing.apply_seed_change() FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('billing.seed_changes', '');

-- The seeded rows are 0.1.0's defaults; a seeded row changed or deleted before this update is
-- recorded as changed, as if the change had been made under 0.2.0.
WITH defaults(table_name, key, seeded) AS (VALUES
    ('currencies', '{"code": "INR"}'::jsonb, '{"code": "INR", "tax_rate": 0.18, "minor_units": 2, "recharge_max": 100000, "recharge_min": 100, "invoice_due_days": 15, "postpaid_minimum": null, "low_balance_threshold": 100}'::jsonb),
    ('currencies', '{"code": "USD"}', '{"code": "USD", "tax_rate": 0, "minor_units": 2, "recharge_max": 2000, "recharge_min": 5, "invoice_due_days": 15, "postpaid_minimum": 5000, "low_balance_threshold": 5}'),
    ('payment_methods', '{"code": "card"}', '{"code": "card", "description": "Credit or debit card"}'),
    ('payment_methods', '{"code": "upi"}', '{"code": "upi", "description": "Unified Payments Interface"}'),
    ('payment_methods', '{"code": "netbanking"}', '{"code": "netbanking", "description": "Net banking"}'),
    ('payment_methods', '{"code": "wallet"}', '{"code": "wallet", "description": "Wallet"}'),
    ('channels', '{"channel": "sms"}', '{"unit": "segment", "channel": "sms"}'),
    ('channels', '{"channel": "voice"}', '{"unit": "minute", "channel": "voice"}'),
    ('channels', '{"channel": "whatsapp"}', '{"unit": "conversation", "channel": "whatsapp"}'),
    ('dunning_policy', '{"stage": "overdue"}', '{"day": 0, "event": null, "stage": "overdue", "reminders": ["email"]}'),
    ('dunning_policy', '{"stage": "reminded"}', '{"day": 7, "event": null, "stage": "reminded", "reminders": ["sms", "email"]}'),
    ('dunning_policy', '{"stage": "outbound_blocked"}', '{"day": 15, "event": "service_restricted", "stage": "outbound_blocked", "reminders": []}'),
    ('dunning_policy', '{"stage": "suspended"}', '{"day": 30, "event": "service_suspended", "stage": "suspended", "reminders": []}'),
    ('dunning_policy', '{"stage": "archived"}', '{"day": 60, "event": "account_archived", "stage": "archived", "reminders": []}'),
    ('dunning_policy', '{"stage": "deleted"}', '{"day": 90, "event": "account_deleted", "stage": "deleted", "reminders": []}'),
    ('dunning_fees', '{"stage": "archived", "currency": "INR"}', '{"stage": "archived", "amount": 500, "currency": "INR"}'),
    ('dunning_fees', '{"stage": "archived", "currency": "USD"}', '{"stage": "archived", "amount": 10, "currency": "USD"}')
), seeded AS (
    INSERT INTO billing.seed_rows SELECT table_name, key FROM defaults RETURNING table_name, key
), now_rows(table_name, r) AS (
    SELECT 'currencies', to_jsonb(t) FROM billing.currencies t
    UNION ALL SELECT 'payment_methods', to_jsonb(t) FROM billing.payment_methods t
    UNION ALL SELECT 'channels', to_jsonb(t) FROM billing.channels t
    UNION ALL SELECT 'dunning_policy', to_jsonb(t) FROM billing.dunning_policy t
    UNION ALL SELECT 'dunning_fees', to_jsonb(t) FROM billing.dunning_fees t
)
INSERT INTO billing.seed_changes (table_name, key, new_row)
SELECT d.table_name, d.key, n.r
  FROM defaults d LEFT JOIN now_rows n ON n.table_name = d.table_name AND n.r @> d.key
 WHERE n.r IS DISTINCT FROM d.seeded;
