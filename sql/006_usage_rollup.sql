-- billing: usage rolled up per account, UTC day, channel and category, so a six-month report
-- reads ~180 x categories rows instead of every message. Kept in step by statement-level
-- triggers (one upsert per statement, whoever writes); verify_ledger checks it.

-- No foreign key: written by the rollup trigger from usage rows it has checked; verify_ledger
-- compares it with billing.usage (usage_rollup_matches_usage).
CREATE TABLE billing.usage_daily (
    account_id bigint NOT NULL,
    day        date NOT NULL,
    channel    text NOT NULL,
    category   text NOT NULL,
    units      numeric NOT NULL,
    amount     numeric NOT NULL,
    PRIMARY KEY (account_id, day, channel, category)
);
COMMENT ON TABLE billing.usage_daily IS
    'billing.usage summed per account, UTC day, channel and category; maintained by triggers on billing.usage.';

-- Compiled (src/reports.rs): one grouped upsert per statement, from the transition tables.
CREATE FUNCTION billing.roll_up_usage() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'billing_roll_up_usage';
CREATE TRIGGER usage_roll_up_insert AFTER INSERT ON billing.usage
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION billing.roll_up_usage();
CREATE TRIGGER usage_roll_up_update AFTER UPDATE ON billing.usage
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION billing.roll_up_usage();
CREATE TRIGGER usage_roll_up_delete AFTER DELETE ON billing.usage
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION billing.roll_up_usage();

REVOKE ALL ON billing.usage_daily FROM PUBLIC;
