-- billing 0.2.0 -> 0.3.0. Applied by ALTER EXTENSION billing UPDATE; ./run test installs 0.2.0
-- (tests/upgrade/billing--0.2.0.sql) and 0.1.0, updates them, and checks that the catalog equals
-- a fresh 0.3.0 and that the data and the API survive.
\echo Use "ALTER EXTENSION billing UPDATE TO '0.3.0'" to load this file. \quit

-- An account is never deleted and its id and currency never change (the ledger's legs are
-- checked against it without a lock) ----------------------------------------------------------

DROP TRIGGER accounts_currency_fixed ON billing.accounts;
DROP FUNCTION billing.refuse_currency_change();

CREATE FUNCTION billing.refuse_account_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.currency IS DISTINCT FROM OLD.currency THEN
            RAISE EXCEPTION 'account %: the currency of an account cannot change (% -> %)', OLD.id, OLD.currency, NEW.currency
                USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.id IS DISTINCT FROM OLD.id THEN
            RAISE EXCEPTION 'account %: the id of an account cannot change (-> %)', OLD.id, NEW.id
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'billing.accounts keeps every account: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'An account is closed by the dunning ladder (stage deleted), never removed: the ledger refers to it.';
END;
$$;
CREATE TRIGGER accounts_key_fixed BEFORE UPDATE OF id, currency OR DELETE ON billing.accounts
    FOR EACH ROW EXECUTE FUNCTION billing.refuse_account_change();
CREATE TRIGGER accounts_no_truncate BEFORE TRUNCATE ON billing.accounts
    FOR EACH STATEMENT EXECUTE FUNCTION billing.refuse_account_change();

-- The ledger's statement check, compiled; it now also checks each leg's account and currency,
-- which replaces the foreign keys of ledger_entries -------------------------------------------

CREATE OR REPLACE FUNCTION billing.check_transfers_balanced() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'billing_check_transfers_balanced';
ALTER FUNCTION billing.check_transfers_balanced() RESET ALL;
ALTER TABLE billing.ledger_entries
    DROP CONSTRAINT ledger_entries_account_id_fkey,
    DROP CONSTRAINT ledger_entries_currency_fkey;

-- The usage rollup, compiled --------------------------------------------------------------------

CREATE OR REPLACE FUNCTION billing.roll_up_usage() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'billing_roll_up_usage';
ALTER FUNCTION billing.roll_up_usage() RESET ALL;

-- The account and channel of usage are checked by the rollup trigger instead of foreign keys
-- (no lock, no after-trigger event); a channel with usage keeps its key ----------------------

ALTER TABLE billing.usage
    DROP CONSTRAINT usage_account_id_fkey,
    DROP CONSTRAINT usage_channel_fkey;
ALTER TABLE billing.usage_daily DROP CONSTRAINT usage_daily_account_id_fkey;

CREATE FUNCTION billing.refuse_used_channel_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.channel IS NOT DISTINCT FROM OLD.channel THEN
        RETURN NEW;
    END IF;
    LOCK TABLE billing.usage IN SHARE MODE;
    IF TG_OP = 'TRUNCATE' THEN
        IF EXISTS (SELECT FROM billing.usage) THEN
            RAISE EXCEPTION 'cannot truncate billing.channels: billing.usage refers to its channels'
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        RETURN NULL;
    END IF;
    IF EXISTS (SELECT FROM billing.usage WHERE channel = OLD.channel) THEN
        RAISE EXCEPTION 'update or delete on table "channels" violates foreign key constraint "usage_channel_fkey" on table "usage"'
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Key (channel)=(%s) is still referenced from table "usage".', OLD.channel);
    END IF;
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END;
$$;
CREATE TRIGGER channels_used_by_usage BEFORE UPDATE OF channel OR DELETE ON billing.channels
    FOR EACH ROW EXECUTE FUNCTION billing.refuse_used_channel_change();
CREATE TRIGGER channels_no_truncate_used BEFORE TRUNCATE ON billing.channels
    FOR EACH STATEMENT EXECUTE FUNCTION billing.refuse_used_channel_change();
