-- billing: changes to the seeded reference rows survive pg_dump / pg_restore.
--
-- CREATE EXTENSION seeds INR and USD, the four payment methods, the three channels, the default
-- dunning policy and its fees; pg_dump cannot dump those rows (restoring them would collide with
-- the rows CREATE EXTENSION makes again). So a change an administrator makes to a seeded row
-- (INR's recharge_max, a policy day, a fee) is recorded in billing.seed_changes, which is dumped
-- whole; on restore (session_replication_role = replica, see README "Backup and restore") each
-- restored change is applied again to the freshly seeded row by a trigger that fires in that mode.

CREATE TABLE billing.seed_rows (
    table_name text NOT NULL,
    key        jsonb NOT NULL,
    PRIMARY KEY (table_name, key)
);
COMMENT ON TABLE billing.seed_rows IS
    'The rows CREATE EXTENSION seeds, by table and primary key (as jsonb); changes to them are recorded in billing.seed_changes.';

INSERT INTO billing.seed_rows
SELECT 'currencies', jsonb_build_object('code', code) FROM billing.currencies
UNION ALL SELECT 'payment_methods', jsonb_build_object('code', code) FROM billing.payment_methods
UNION ALL SELECT 'channels', jsonb_build_object('channel', channel) FROM billing.channels
UNION ALL SELECT 'dunning_policy', jsonb_build_object('stage', stage) FROM billing.dunning_policy
UNION ALL SELECT 'dunning_fees', jsonb_build_object('stage', stage, 'currency', currency) FROM billing.dunning_fees;

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
