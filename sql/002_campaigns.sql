-- billing: rates, usage and campaigns (the two-stage credit check, no partial sends).

CREATE TABLE billing.channels (
    channel text PRIMARY KEY,
    unit    text NOT NULL
);
COMMENT ON TABLE billing.channels IS 'What is sold, and its billing unit.';
INSERT INTO billing.channels VALUES ('sms', 'segment'), ('voice', 'minute'), ('whatsapp', 'conversation');

CREATE TABLE billing.rates (
    currency    text NOT NULL REFERENCES billing.currencies (code),
    channel     text NOT NULL REFERENCES billing.channels (channel),
    category    text NOT NULL CHECK (category <> ''),
    unit_price  numeric NOT NULL CHECK (unit_price >= 0),
    carrier_fee numeric NOT NULL DEFAULT 0 CHECK (carrier_fee >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (currency, channel, category)
);
COMMENT ON TABLE billing.rates IS
    'Price per unit by currency, channel and category. carrier_fee is passed through without markup and booked to carrier_fees_payable, apart from the price (revenue).';
-- A one-statement charge takes its rate from a copy each backend keeps (src/policy.rs), as the
-- hold takes the stages: every statement that writes this table empties those copies.
CREATE TRIGGER reference_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON billing.rates
    FOR EACH STATEMENT EXECUTE FUNCTION billing.reference_changed();
ALTER TABLE billing.rates ENABLE ALWAYS TRIGGER reference_changed;

-- Every charge for delivered units: per-message usage and completed campaigns.
-- account_id and channel have no foreign keys: the usage rollup trigger checks both, once per
-- statement and without locks (roll_up_usage, src/reports.rs). A foreign key to channels would
-- KEY SHARE-lock the one row of 'sms' on every charge of every account.
CREATE TABLE billing.usage (
    account_id  bigint NOT NULL,
    id          bigint GENERATED ALWAYS AS IDENTITY,
    channel     text NOT NULL,
    category    text NOT NULL,
    units       numeric NOT NULL,
    price       numeric NOT NULL,
    carrier_fee numeric NOT NULL,
    amount      numeric NOT NULL GENERATED ALWAYS AS (price + carrier_fee) STORED,
    occurred_at timestamptz NOT NULL,
    campaign_id bigint,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id)
);
COMMENT ON TABLE billing.usage IS
        'Units charged: record_usage and completed campaigns. amount = round(units x (unit_price + carrier_fee), 6), split into price (round(units x unit_price, 6), to revenue) and carrier_fee (the rest, passed through).';
CREATE INDEX usage_account_time ON billing.usage (account_id, occurred_at);
-- units, price and carrier_fee >= 0 (src/invariants.rs: a compiled trigger, not CHECKs, for the
-- reason given at billing.accounts).
CREATE FUNCTION billing.usage_row_invariants() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'billing_usage_row_invariants';
CREATE TRIGGER row_invariants BEFORE INSERT OR UPDATE ON billing.usage
    FOR EACH ROW EXECUTE FUNCTION billing.usage_row_invariants();
-- What the foreign key of usage to channels did the other way: a channel with usage keeps its
-- key. SHARE on usage waits for the transactions writing usage and holds off new ones, so a
-- channel cannot go while a first charge on it commits. SECURITY DEFINER, as a foreign key's
-- check runs as the owner: whoever may edit channels need not be able to lock usage.
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

CREATE TABLE billing.campaigns (
    account_id          bigint NOT NULL REFERENCES billing.accounts (id),
    id                  bigint GENERATED ALWAYS AS IDENTITY,
    name                text,
    channel             text NOT NULL REFERENCES billing.channels (channel),
    category            text NOT NULL,
    audience_size       integer NOT NULL CHECK (audience_size > 0),
    units_per_recipient integer NOT NULL CHECK (units_per_recipient > 0),
    status              text NOT NULL DEFAULT 'draft',
    send_at             timestamptz,
    -- Prices are fixed when the campaign is scheduled (stage 1) and used at stage 2.
    unit_price          numeric CHECK (unit_price >= 0),
    carrier_fee         numeric CHECK (carrier_fee >= 0),
    cost                numeric CHECK (cost >= 0),
    reservation_id      bigint,
    delivered_units     bigint CHECK (delivered_units >= 0),
    charged             numeric CHECK (charged >= 0),
    failure_reason      text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id),
    CONSTRAINT status_known CHECK (status IN ('draft', 'insufficient_credits', 'scheduled', 'running',
        'completed', 'failed_low_balance', 'failed_blocked', 'failed_compliance', 'cancelled')),
    CONSTRAINT scheduled_has_price CHECK (status IN ('draft', 'insufficient_credits', 'cancelled')
        OR (send_at IS NOT NULL AND cost IS NOT NULL)),
    CONSTRAINT running_is_held CHECK (status <> 'running' OR reservation_id IS NOT NULL OR cost = 0),
    CONSTRAINT never_charged_more_than_cost CHECK (charged IS NULL OR charged <= cost),
    CONSTRAINT delivered_at_most_planned CHECK (delivered_units IS NULL
        OR delivered_units <= audience_size::bigint * units_per_recipient)
);
COMMENT ON TABLE billing.campaigns IS
    'Bulk sends. Checked at scheduling (stage 1) and again at send time (stage 2); running only while the full cost is held (a zero-cost campaign needs no hold); never partial.';
CREATE INDEX campaigns_id ON billing.campaigns (id);
CREATE INDEX campaigns_due ON billing.campaigns (send_at, id) WHERE status = 'scheduled';
CREATE INDEX campaigns_stale ON billing.campaigns (created_at) WHERE status IN ('draft', 'insufficient_credits');

CREATE TABLE billing.campaign_transitions (
    from_status text NOT NULL,
    to_status   text NOT NULL,
    PRIMARY KEY (from_status, to_status)
);
COMMENT ON TABLE billing.campaign_transitions IS 'The campaign lifecycle: every status change must be listed here.';
INSERT INTO billing.campaign_transitions VALUES
    ('draft', 'insufficient_credits'), ('draft', 'scheduled'), ('draft', 'cancelled'),
    ('insufficient_credits', 'insufficient_credits'), ('insufficient_credits', 'scheduled'),
    ('insufficient_credits', 'cancelled'),
    ('scheduled', 'running'), ('scheduled', 'failed_low_balance'), ('scheduled', 'failed_blocked'),
    ('scheduled', 'failed_compliance'), ('scheduled', 'cancelled'),
    ('running', 'completed'), ('running', 'failed_compliance');

-- Whoever writes: legal transitions only; running only with a pending hold covering the whole
-- cost; a completed campaign never charged more than its hold.
-- enable_seqscan = off: PL/pgSQL keeps a generic plan for the hold look-up, and one made while
-- billing.reservations was empty (a fresh install) is a sequential scan, kept while a large
-- run_due_campaigns adds a hold per campaign: quadratic (5,000 campaigns: 1,886 ms, 847 ms
-- with this). Every look-up here has a key index.
CREATE FUNCTION billing.guard_campaign() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog SET enable_seqscan = off AS $$
DECLARE
    hold record;
BEGIN
        IF TG_OP = 'DELETE' THEN
        IF OLD.status NOT IN ('draft', 'insufficient_credits') AND NOT EXISTS (
            SELECT 1 FROM billing.accounts a WHERE a.id = OLD.account_id AND a.dunning_stage = 'deleted') THEN
            RAISE EXCEPTION 'campaign %: only drafts may be deleted, not a % campaign', OLD.id, OLD.status
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NEW.status <> 'draft' THEN
            RAISE EXCEPTION 'a campaign starts as a draft, not %', NEW.status USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.id <> OLD.id OR NEW.account_id <> OLD.account_id THEN
        RAISE EXCEPTION 'campaign %: id and account_id are immutable', OLD.id USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.status IS DISTINCT FROM OLD.status AND NOT EXISTS (
        SELECT 1 FROM billing.campaign_transitions t
         WHERE t.from_status = OLD.status AND t.to_status = NEW.status) THEN
        RAISE EXCEPTION 'campaign %: % -> % is not a legal transition', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    IF (NEW.status = 'running' OR NEW.reservation_id IS NOT NULL AND NEW.status = 'scheduled')
       AND NEW.cost > 0 THEN
        SELECT r.status, r.amount INTO hold FROM billing.reservations r
         WHERE r.account_id = NEW.account_id AND r.id = NEW.reservation_id AND r.campaign_id = NEW.id;
        IF NOT FOUND OR hold.status <> 'pending' OR hold.amount < NEW.cost THEN
            RAISE EXCEPTION 'campaign %: % requires a pending hold of its full cost %', NEW.id, NEW.status, NEW.cost
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
        IF NEW.charged IS NOT NULL AND NEW.charged IS DISTINCT FROM OLD.charged THEN
        SELECT r.amount INTO hold FROM billing.reservations r
         WHERE r.account_id = NEW.account_id AND r.id = NEW.reservation_id AND r.campaign_id = NEW.id;
        -- A zero-cost campaign runs without a hold and may only be charged nothing.
        IF NOT FOUND AND NEW.charged > 0 OR FOUND AND NEW.charged > hold.amount THEN
            RAISE EXCEPTION 'campaign %: charged % exceeds what was held', NEW.id, NEW.charged
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER campaigns_guard BEFORE INSERT OR UPDATE OR DELETE ON billing.campaigns
    FOR EACH ROW EXECUTE FUNCTION billing.guard_campaign();

-- A campaign's hold is resolved by the campaign functions only, after the campaign has left
-- scheduled/running: a hand-made release cannot leave a running campaign unfunded.
CREATE FUNCTION billing.guard_campaign_hold() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
        IF OLD.status = 'pending' AND NEW.status <> 'pending' AND EXISTS (
        SELECT 1 FROM billing.campaigns c
         WHERE c.account_id = OLD.account_id AND c.id = OLD.campaign_id
           AND c.reservation_id = OLD.id AND c.status IN ('scheduled', 'running')) THEN
        RAISE EXCEPTION 'reservation % funds campaign %, which is still scheduled or running', OLD.id, OLD.campaign_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER reservations_campaign_guard BEFORE UPDATE ON billing.reservations
    FOR EACH ROW WHEN (OLD.campaign_id IS NOT NULL) EXECUTE FUNCTION billing.guard_campaign_hold();

REVOKE ALL ON billing.channels, billing.rates, billing.usage, billing.campaigns, billing.campaign_transitions FROM PUBLIC;
