-- billing: tables, constraints and reference data.
--
-- Every per-account table carries account_id and its keys lead with it, so each could be
-- distributed by account (Citus: accounts on id, the others on account_id, colocated). Ids are
-- globally unique identities; lookups by id alone use a plain (non-unique) index.
--
-- Money is numeric everywhere. Amount arguments are validated by the API (finite, > 0, at most
-- 6 decimal places, below 1e15); the CHECKs below are the last line that no caller can bypass.

-- Currencies ------------------------------------------------------------------------------------

CREATE TABLE billing.currencies (
    code                  text PRIMARY KEY CHECK (code ~ '^[A-Z]{3}$'),
    minor_units           integer NOT NULL CHECK (minor_units BETWEEN 0 AND 6),
    recharge_min          numeric NOT NULL CHECK (recharge_min > 0),
    recharge_max          numeric NOT NULL,
    low_balance_threshold numeric NOT NULL CHECK (low_balance_threshold >= 0),
    tax_rate              numeric NOT NULL CHECK (tax_rate >= 0 AND tax_rate < 1),
    postpaid_minimum      numeric CHECK (postpaid_minimum > 0),
    invoice_due_days      integer NOT NULL DEFAULT 15 CHECK (invoice_due_days >= 0),
    CONSTRAINT recharge_bounds_ordered CHECK (recharge_max >= recharge_min)
);
COMMENT ON TABLE billing.currencies IS
    'Per-currency rules: minor units (tax is rounded to them), inclusive recharge bounds, default low-balance threshold, tax rate (GST), postpaid minimum (NULL = postpaid not offered). Administrators may add or change rows.';
COMMENT ON COLUMN billing.currencies.invoice_due_days IS
    'Days between the monthly close and the due date of its invoice (net 15 by default).';
COMMENT ON COLUMN billing.currencies.tax_rate IS
    'Tax on every recharge kind, computed when the payment is created: round(amount * tax_rate, minor_units), half away from zero.';

INSERT INTO billing.currencies
    (code, minor_units, recharge_min, recharge_max, low_balance_threshold, tax_rate, postpaid_minimum)
VALUES
    ('INR', 2, 100, 100000, 100, 0.18, NULL),
    ('USD', 2, 5, 2000, 5, 0, 5000);

CREATE TABLE billing.payment_methods (
    code        text PRIMARY KEY CHECK (code ~ '^[a-z_]+$'),
    description text
);
COMMENT ON TABLE billing.payment_methods IS 'Accepted payment methods; administrators may add rows.';
INSERT INTO billing.payment_methods VALUES
    ('card', 'Credit or debit card'),
    ('upi', 'Unified Payments Interface'),
    ('netbanking', 'Net banking'),
    ('wallet', 'Wallet');

-- What each dunning stage allows. The spending functions read outbound_allowed under the
-- account lock; account_state() reports these flags.
CREATE TABLE billing.dunning_stages (
    stage             text PRIMARY KEY,
    rank              integer NOT NULL UNIQUE,
    outbound_allowed  boolean NOT NULL,
    inbound_allowed   boolean NOT NULL,
    dashboard_allowed boolean NOT NULL,
    may_recharge      boolean NOT NULL
);
COMMENT ON TABLE billing.dunning_stages IS
    'Service allowed at each dunning stage; outbound_allowed = false makes spending functions raise BL004.';
INSERT INTO billing.dunning_stages VALUES
    ('current',          0, true,  true,  true,  true),
    ('overdue',          1, true,  true,  true,  true),
    ('reminded',         2, true,  true,  true,  true),
    ('outbound_blocked', 3, false, true,  true,  true),
    ('suspended',        4, false, false, false, true),
    ('archived',         5, false, false, false, true),
    ('deleted',          6, false, false, false, false);

-- The one-statement holds and charges take the stages that allow outbound and the currencies'
-- default low-balance thresholds as parameters, from a copy each backend keeps (src/policy.rs)
-- instead of joining these two tables. Every statement that writes either table queues a
-- relcache invalidation of it, which empties those copies: in this session at its next command,
-- in the others after the commit. ENABLE ALWAYS: replica mode (a restore, a replica) writes them
-- too.
CREATE FUNCTION billing.reference_changed() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'billing_reference_changed';
CREATE TRIGGER reference_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON billing.currencies
    FOR EACH STATEMENT EXECUTE FUNCTION billing.reference_changed();
CREATE TRIGGER reference_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON billing.dunning_stages
    FOR EACH STATEMENT EXECUTE FUNCTION billing.reference_changed();
ALTER TABLE billing.currencies ENABLE ALWAYS TRIGGER reference_changed;
ALTER TABLE billing.dunning_stages ENABLE ALWAYS TRIGGER reference_changed;

-- Accounts (customer wallets) ---------------------------------------------------------------------

CREATE TABLE billing.accounts (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    currency              text NOT NULL REFERENCES billing.currencies (code),
    external_ref          text,
    balance               numeric NOT NULL DEFAULT 0,
    reserved              numeric NOT NULL DEFAULT 0,
    overdraft_limit       numeric NOT NULL DEFAULT 0,
    low_balance_threshold numeric,
    dunning_stage         text NOT NULL DEFAULT 'current' REFERENCES billing.dunning_stages (stage),
    billing_mode          text NOT NULL DEFAULT 'prepaid',
    auto_recharge         text NOT NULL DEFAULT 'disabled',
    auto_recharge_threshold numeric,
    auto_recharge_amount  numeric,
    auto_recharge_method  text REFERENCES billing.payment_methods (code),
    created_at            timestamptz NOT NULL DEFAULT now()
    -- The rules of a row, the spending limit among them (available_not_negative:
    -- balance - reserved + overdraft_limit never < 0), are checked by the trigger row_invariants.
);
COMMENT ON TABLE billing.accounts IS
    'Customer wallets. balance and reserved are caches kept in step with ledger_entries and pending reservations in the same transaction (verify_ledger() checks both); writes only through the API.';
COMMENT ON COLUMN billing.accounts.balance IS 'Posted balance: the sum of this account''s wallet entries in billing.ledger_entries.';
COMMENT ON COLUMN billing.accounts.reserved IS 'Sum of this account''s pending reservations.';
COMMENT ON COLUMN billing.accounts.low_balance_threshold IS 'NULL means the currency''s default threshold.';
CREATE INDEX accounts_external_ref ON billing.accounts (external_ref) WHERE external_ref IS NOT NULL;

-- The rules of an account row and of a hold row are checked by compiled BEFORE triggers
-- (src/invariants.rs), not CHECK constraints: PostgreSQL parses and plans a table's CHECK
-- expressions anew in every statement that writes it, which was 42% of a hold's cost
-- (docs/performance.md). Same rules, same constraint names in the 23514 message. Named
-- row_invariants so they fire after the other BEFORE triggers, on the row as written. The
-- accounts one carries the spending limit, so it is ENABLE ALWAYS: it fires in replica mode too
-- (session_replication_role = replica quiets ordinary triggers, not this one).
--   accounts:     reserved, overdraft_limit, low_balance_threshold, auto_recharge_threshold >= 0;
--                 auto_recharge_amount > 0; billing_mode in (prepaid, postpaid);
--                 auto_recharge in (disabled, enabled, suspended).
--   reservations: amount > 0; status in (pending, captured, released, expired);
--                 0 < captured <= amount; resolved_at set exactly when not pending;
--                 captured set exactly when captured.
CREATE FUNCTION billing.account_row_invariants() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'billing_account_row_invariants';
CREATE TRIGGER row_invariants BEFORE INSERT OR UPDATE ON billing.accounts
    FOR EACH ROW EXECUTE FUNCTION billing.account_row_invariants();
ALTER TABLE billing.accounts ENABLE ALWAYS TRIGGER row_invariants;

-- An account is never deleted, and its id and currency never change: its ledger, holds and
-- invoices refer to it and are all in its currency, the account lock joins billing.currencies on
-- it (src/accounts.rs), and the ledger's legs are checked against it without a lock
-- (check_transfers_balanced below). Dunning's last stage closes an account; it keeps the row.
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

-- Two-phase holds ------------------------------------------------------------------------------------

-- No foreign key: the row trigger row_invariants checks on INSERT that the account exists (one
-- probe of its primary key, accounts::exists), which is what the foreign key did, for an eighth
-- of its cost; no lock is needed, because an account is never deleted and never changes id.
CREATE TABLE billing.reservations (
    account_id  bigint NOT NULL,
    id          bigint GENERATED ALWAYS AS IDENTITY,
    amount      numeric NOT NULL,
    status      text NOT NULL DEFAULT 'pending',
    captured    numeric,
    reference   text,
    expires_at  timestamptz,
    campaign_id bigint,
    created_at  timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    PRIMARY KEY (account_id, id)
);
COMMENT ON TABLE billing.reservations IS
    'Two-phase holds (TigerBeetle pending transfers): pending until captured (in part or whole), released or expired, exactly once.';
COMMENT ON COLUMN billing.reservations.campaign_id IS
    'Set for a campaign''s hold: only the campaign functions may resolve it.';
CREATE INDEX reservations_id ON billing.reservations (id);
CREATE INDEX reservations_pending_expiry ON billing.reservations (expires_at)
    WHERE status = 'pending' AND expires_at IS NOT NULL;
-- No index of pending holds per account: only verify_ledger reads them that way, and it scans
-- the ledger anyway; every hold paid for one (a fifth index entry, 4% of a hold, 0.4.0).
CREATE FUNCTION billing.reservation_row_invariants() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'billing_reservation_row_invariants';
CREATE TRIGGER row_invariants BEFORE INSERT OR UPDATE ON billing.reservations
    FOR EACH ROW EXECUTE FUNCTION billing.reservation_row_invariants();

-- The double-entry ledger ---------------------------------------------------------------------

-- Ledger accounts: every customer has a 'wallet'; the others are per-currency system accounts
-- (payments_clearing, tax_payable, revenue, carrier_fees_payable, receivables), kept as
-- sub-ledgers per customer so no single row is updated by every customer's call: a system
-- balance is the sum of its entries (see billing.system_balances).
--
-- Sign convention (credit-normal): amount > 0 credits the ledger account, < 0 debits it.
-- A wallet (what the platform owes the customer) and revenue grow with credits; cash received
-- (payments_clearing) and receivables are assets and so carry negative sums. Every transfer's
-- entries sum to zero.
-- No foreign keys: account_id and currency are checked once per statement, against the account's
-- own currency, by the trigger ledger_entries_balanced (see check_transfers_balanced).
CREATE TABLE billing.ledger_entries (
    account_id     bigint NOT NULL,
    id             bigint GENERATED ALWAYS AS IDENTITY,
    transfer_id    bigint NOT NULL,
    ledger_account text NOT NULL,
    currency       text NOT NULL,
    amount         numeric NOT NULL,
    kind           text NOT NULL,
    source         text NOT NULL,
    source_id      bigint NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id)
);
COMMENT ON TABLE billing.ledger_entries IS
    'Immutable double-entry ledger: UPDATE, DELETE and TRUNCATE are refused; each transfer (entries sharing transfer_id, inserted by one statement) sums to zero in one currency.';
COMMENT ON COLUMN billing.ledger_entries.amount IS 'Credit-normal sign: > 0 credits ledger_account, < 0 debits it.';
COMMENT ON COLUMN billing.ledger_entries.source IS 'What the transfer settles: reservation, payment, usage, campaign, invoice, ...; source_id is its id.';
CREATE SEQUENCE billing.transfer_ids;
CREATE INDEX ledger_entries_source ON billing.ledger_entries (source, source_id);
CREATE INDEX ledger_entries_transfer ON billing.ledger_entries (transfer_id);

CREATE FUNCTION billing.refuse_ledger_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    RAISE EXCEPTION 'billing.ledger_entries is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Correct a mistake with a new, compensating transfer.';
END;
$$;
CREATE TRIGGER ledger_entries_immutable BEFORE UPDATE OR DELETE ON billing.ledger_entries
    FOR EACH ROW EXECUTE FUNCTION billing.refuse_ledger_change();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON billing.ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION billing.refuse_ledger_change();
-- A leg names a known ledger account and moves a non-zero amount (src/invariants.rs: a compiled
-- trigger, not CHECKs, for the reason given at billing.accounts).
CREATE FUNCTION billing.ledger_row_invariants() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'billing_ledger_row_invariants';
CREATE TRIGGER row_invariants BEFORE INSERT ON billing.ledger_entries
    FOR EACH ROW EXECUTE FUNCTION billing.ledger_row_invariants();

-- Once per statement, over the entries it inserted (src/ledger.rs, compiled): each transfer sums
-- to zero in one currency, and each leg belongs to an existing account and is in its currency.
-- It replaces a PL/pgSQL check and the table's foreign keys (docs/performance.md).
CREATE FUNCTION billing.check_transfers_balanced() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'billing_check_transfers_balanced';
CREATE TRIGGER ledger_entries_balanced AFTER INSERT ON billing.ledger_entries
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION billing.check_transfers_balanced();

-- Payments (recharges, auto-recharges, invoice payments) ------------------------------------------

CREATE TABLE billing.payment_records (
    account_id     bigint NOT NULL REFERENCES billing.accounts (id),
    id             bigint GENERATED ALWAYS AS IDENTITY,
    kind           text NOT NULL CHECK (kind IN ('recharge', 'auto_recharge', 'invoice')),
    amount         numeric NOT NULL CHECK (amount > 0),
    tax            numeric NOT NULL CHECK (tax >= 0),
    currency       text NOT NULL REFERENCES billing.currencies (code),
    method         text NOT NULL REFERENCES billing.payment_methods (code),
    status         text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'succeeded', 'failed', 'cancelled')),
    external_ref   text,
    failure_reason text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    settled_at     timestamptz,
    PRIMARY KEY (account_id, id),
    CONSTRAINT settled_iff_not_pending CHECK ((status = 'pending') = (settled_at IS NULL))
);
COMMENT ON TABLE billing.payment_records IS
    'Every payment: pending until confirmed (credited once), failed or cancelled. Read it through the billing.payments view.';
CREATE INDEX payment_records_id ON billing.payment_records (id);
-- At most one auto-recharge request outstanding per account, whoever writes.
CREATE UNIQUE INDEX payment_records_one_pending_auto_recharge ON billing.payment_records (account_id)
    WHERE kind = 'auto_recharge' AND status = 'pending';

CREATE VIEW billing.payments AS
SELECT id, account_id, kind, amount, tax, amount + tax AS total, currency, method, status,
       created_at, settled_at, external_ref, failure_reason
  FROM billing.payment_records;
COMMENT ON VIEW billing.payments IS 'Recharge history: amount credited, tax (GST) on top, total paid.';

-- Events ----------------------------------------------------------------------------------------

CREATE TABLE billing.events (
    id         bigint GENERATED ALWAYS AS IDENTITY,
    account_id bigint NOT NULL REFERENCES billing.accounts (id),
    kind       text NOT NULL,
    payload    jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id)
);
COMMENT ON TABLE billing.events IS
    'What happened, for notifications: each insert also sends NOTIFY billing_events with {"id", "account_id", "kind"}.';
CREATE INDEX events_id ON billing.events (id);
CREATE INDEX events_kind ON billing.events (kind, created_at);

CREATE FUNCTION billing.notify_event() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    PERFORM pg_notify('billing_events',
        json_build_object('id', NEW.id, 'account_id', NEW.account_id, 'kind', NEW.kind)::text);
    RETURN NULL;
END;
$$;
CREATE TRIGGER events_notify AFTER INSERT ON billing.events
    FOR EACH ROW EXECUTE FUNCTION billing.notify_event();

-- Idempotency --------------------------------------------------------------------------------------

CREATE TABLE billing.idempotency_keys (
    account_id bigint NOT NULL REFERENCES billing.accounts (id),
    operation  text NOT NULL,
    key        text NOT NULL,
    request    jsonb NOT NULL,
    result     jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, operation, key)
);
COMMENT ON TABLE billing.idempotency_keys IS
    'One row per (account, operation, key): the request''s arguments (except as_of) and its first result. A retry with equal arguments replays the result; other arguments raise BL006.';

-- State machines that no writer can bypass --------------------------------------------------------

CREATE FUNCTION billing.guard_transition() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    IF NEW.id <> OLD.id OR NEW.account_id <> OLD.account_id OR NEW.amount <> OLD.amount THEN
        RAISE EXCEPTION '%: id, account_id and amount are immutable', TG_TABLE_NAME
            USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.status <> 'pending' THEN
        RAISE EXCEPTION '% %: status % is final', TG_TABLE_NAME, OLD.id, OLD.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER reservations_transition BEFORE UPDATE ON billing.reservations
    FOR EACH ROW EXECUTE FUNCTION billing.guard_transition();
CREATE TRIGGER payment_records_transition BEFORE UPDATE ON billing.payment_records
    FOR EACH ROW EXECUTE FUNCTION billing.guard_transition();

-- Derived balances -------------------------------------------------------------------------------

CREATE VIEW billing.system_balances AS
SELECT currency, ledger_account, sum(amount) AS balance
  FROM billing.ledger_entries
 WHERE ledger_account <> 'wallet'
 GROUP BY currency, ledger_account;
COMMENT ON VIEW billing.system_balances IS
    'Per-currency system accounts, derived from the ledger (credit-normal: assets are negative).';

REVOKE ALL ON ALL TABLES IN SCHEMA billing FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA billing FROM PUBLIC;
