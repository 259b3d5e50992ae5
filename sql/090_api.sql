-- billing: the SQL API. Functions that may raise the extension's own SQLSTATEs are V1 C
-- functions declared here (see src/boundary.rs); none is STRICT: a NULL where a value is
-- required raises 22023 instead of silently returning NULL.

-- Accounts -------------------------------------------------------------------------------------

CREATE FUNCTION billing.create_account(
    currency text,
    external_ref text DEFAULT NULL,
    overdraft_limit numeric DEFAULT 0,
    low_balance_threshold numeric DEFAULT NULL
) RETURNS bigint LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'billing_create_account';
COMMENT ON FUNCTION billing.create_account(text, text, numeric, numeric) IS
    'New wallet with balance 0; a NULL threshold means the currency default. 22023: unknown currency, bad limit.';

CREATE FUNCTION billing.set_overdraft_limit(account_id bigint, overdraft_limit numeric)
RETURNS void LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'billing_set_overdraft_limit';
COMMENT ON FUNCTION billing.set_overdraft_limit(bigint, numeric) IS
    'Locks the account. The account may spend down to balance = -overdraft_limit. BL003 if current debt and holds exceed the new limit.';

CREATE FUNCTION billing.set_low_balance_threshold(account_id bigint, threshold numeric)
RETURNS void LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'billing_set_low_balance_threshold';
COMMENT ON FUNCTION billing.set_low_balance_threshold(bigint, numeric) IS
    'Locks the account. low_balance fires when available falls from >= threshold to below it.';

COMMENT ON FUNCTION billing.account_balance(bigint) IS
    'currency, balance, reserved, available = balance - reserved + overdraft_limit, overdraft_limit. P0002: unknown account.';
COMMENT ON FUNCTION billing.account_state(bigint, timestamptz) IS
    'Dunning stage recorded by the last advance_dunning, the services it allows, auto-recharge and billing mode.';

-- Two-phase holds ------------------------------------------------------------------------------

CREATE FUNCTION billing.reserve_credits(
    account_id bigint,
    amount numeric,
    reference text DEFAULT NULL,
    expires_at timestamptz DEFAULT NULL,
    idempotency_key text DEFAULT NULL
) RETURNS bigint LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'billing_reserve_credits';
COMMENT ON FUNCTION billing.reserve_credits(bigint, numeric, text, timestamptz, text) IS
    'Locks the account; holds amount (returns the reservation id). BL001 if available < amount, BL004 if blocked, BL006 on a reused key with other arguments.';

CREATE FUNCTION billing.capture_reservation(reservation_id bigint, amount numeric DEFAULT NULL)
RETURNS numeric LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'billing_capture_reservation';
COMMENT ON FUNCTION billing.capture_reservation(bigint, numeric) IS
    'Locks account then hold; charges amount (default all) and releases the rest; returns the amount charged. BL003 unless pending; 22023 above the held amount.';

CREATE FUNCTION billing.release_reservation(reservation_id bigint)
RETURNS numeric LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'billing_release_reservation';
COMMENT ON FUNCTION billing.release_reservation(bigint) IS
    'Locks account then hold; releases it and returns the amount released. BL003 unless pending.';

CREATE FUNCTION billing.expire_reservations(as_of timestamptz DEFAULT now())
RETURNS integer LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'billing_expire_reservations';
COMMENT ON FUNCTION billing.expire_reservations(timestamptz) IS
    'Releases pending holds with expires_at <= as_of (accounts locked in id order); returns how many.';

-- Recharges and payments -----------------------------------------------------------------------

CREATE FUNCTION billing.apply_recharge(
    account_id bigint,
    amount numeric,
    method text DEFAULT 'card',
    idempotency_key text DEFAULT NULL,
    as_of timestamptz DEFAULT now()
) RETURNS bigint LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'billing_apply_recharge';
COMMENT ON FUNCTION billing.apply_recharge(bigint, numeric, text, text, timestamptz) IS
    'A succeeded recharge: credits amount at once, tax round(amount * tax_rate, minor_units) on top; returns the payment id. BL002 outside the currency bounds.';

CREATE FUNCTION billing.create_payment(
    account_id bigint,
    amount numeric,
    method text DEFAULT 'card',
    idempotency_key text DEFAULT NULL,
    as_of timestamptz DEFAULT now()
) RETURNS bigint LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'billing_create_payment';
COMMENT ON FUNCTION billing.create_payment(bigint, numeric, text, text, timestamptz) IS
    'A pending recharge (bounds and tax fixed now, nothing credited until confirm_payment).';

CREATE FUNCTION billing.confirm_payment(
    payment_id bigint,
    external_ref text DEFAULT NULL,
    as_of timestamptz DEFAULT now()
) RETURNS text LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'billing_confirm_payment';
COMMENT ON FUNCTION billing.confirm_payment(bigint, text, timestamptz) IS
    'pending -> succeeded, credits once; again on a succeeded payment returns succeeded; BL003 if failed or cancelled.';

CREATE FUNCTION billing.fail_payment(
    payment_id bigint,
    reason text DEFAULT NULL,
    as_of timestamptz DEFAULT now()
) RETURNS text LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'billing_fail_payment';
COMMENT ON FUNCTION billing.fail_payment(bigint, text, timestamptz) IS 'pending -> failed (event payment_failed).';

CREATE FUNCTION billing.cancel_payment(payment_id bigint, as_of timestamptz DEFAULT now())
RETURNS text LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'billing_cancel_payment';
COMMENT ON FUNCTION billing.cancel_payment(bigint, timestamptz) IS 'pending -> cancelled.';

COMMENT ON FUNCTION billing.verify_ledger() IS
    'Every ledger invariant, one row per check: balances = entries, reserved = pending holds, transfers and currencies sum to zero, limits respected, payments and holds settled once.';

-- Rates and usage --------------------------------------------------------------------------------

CREATE FUNCTION billing.set_rate(
    currency text,
    channel text,
    category text,
    unit_price numeric,
    carrier_fee numeric DEFAULT 0
) RETURNS void LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'billing_set_rate';
COMMENT ON FUNCTION billing.set_rate(text, text, text, numeric, numeric) IS
    'Upserts the price per unit (sms: segment, voice: minute, whatsapp: conversation); carrier_fee is passed through without markup.';

CREATE FUNCTION billing.sms_segments(body text)
RETURNS integer LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'billing_sms_segments';
COMMENT ON FUNCTION billing.sms_segments(text) IS
    'GSM-7: 1 segment up to 160 septets, else 153 a segment (extension characters take 2); otherwise UCS-2: 70, else 67 UTF-16 units a segment.';

CREATE FUNCTION billing.record_usage(
    account_id bigint,
    channel text,
    category text,
    units numeric,
    occurred_at timestamptz DEFAULT now(),
    idempotency_key text DEFAULT NULL
) RETURNS numeric LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'billing_record_usage';
COMMENT ON FUNCTION billing.record_usage(bigint, text, text, numeric, timestamptz, text) IS
    'Locks the account; charges units x (unit_price + carrier_fee) at once and returns it. BL001, BL004 as for holds.';

-- Campaigns ----------------------------------------------------------------------------------------

CREATE FUNCTION billing.create_campaign(
    account_id bigint,
    channel text,
    category text,
    audience_size integer,
    units_per_recipient integer DEFAULT 1,
    name text DEFAULT NULL,
    as_of timestamptz DEFAULT now()
) RETURNS bigint LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'billing_create_campaign';
COMMENT ON FUNCTION billing.create_campaign(bigint, text, text, integer, integer, text, timestamptz) IS
    'A new draft. 22023 if no rate exists for (account currency, channel, category).';

CREATE FUNCTION billing.estimate_campaign(campaign_id bigint)
RETURNS numeric LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'billing_estimate_campaign';
COMMENT ON FUNCTION billing.estimate_campaign(bigint) IS
    'audience_size x units_per_recipient x (unit_price + carrier_fee) at current rates.';

CREATE FUNCTION billing.schedule_campaign(
    campaign_id bigint,
    send_at timestamptz,
    hold boolean DEFAULT false,
    as_of timestamptz DEFAULT now()
) RETURNS text LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'billing_schedule_campaign';
COMMENT ON FUNCTION billing.schedule_campaign(bigint, timestamptz, boolean, timestamptz) IS
    'Stage 1: scheduled (price fixed; with hold, the cost is held) or insufficient_credits (event, nothing held).';

CREATE FUNCTION billing.execute_campaign(campaign_id bigint, as_of timestamptz DEFAULT now())
RETURNS text LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'billing_execute_campaign';
COMMENT ON FUNCTION billing.execute_campaign(bigint, timestamptz) IS
    'Stage 2: running with the full cost held, or failed_low_balance / failed_blocked with nothing sent. Never partial.';

CREATE FUNCTION billing.run_due_campaigns(as_of timestamptz DEFAULT now())
RETURNS integer LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'billing_run_due_campaigns';
COMMENT ON FUNCTION billing.run_due_campaigns(timestamptz) IS
    'Executes every scheduled campaign with send_at <= as_of, oldest first; skips accounts locked elsewhere.';

CREATE FUNCTION billing.complete_campaign(campaign_id bigint, delivered_units bigint DEFAULT NULL)
RETURNS numeric LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'billing_complete_campaign';
COMMENT ON FUNCTION billing.complete_campaign(bigint, bigint) IS
    'running -> completed: charges the delivered units (default all), releases the rest; returns the charge.';

CREATE FUNCTION billing.fail_campaign(campaign_id bigint, reason text)
RETURNS text LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'billing_fail_campaign';
COMMENT ON FUNCTION billing.fail_campaign(bigint, text) IS
    'scheduled or running -> failed_compliance: releases every held credit.';

CREATE FUNCTION billing.cancel_campaign(campaign_id bigint)
RETURNS text LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'billing_cancel_campaign';
COMMENT ON FUNCTION billing.cancel_campaign(bigint) IS
    'draft, insufficient_credits or scheduled -> cancelled: releases any hold.';

CREATE FUNCTION billing.duplicate_campaign(campaign_id bigint, as_of timestamptz DEFAULT now())
RETURNS bigint LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'billing_duplicate_campaign';
COMMENT ON FUNCTION billing.duplicate_campaign(bigint, timestamptz) IS
    'A new draft with the same settings: the way back after a failed run.';

CREATE FUNCTION billing.campaign_status(campaign_id bigint)
RETURNS text LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'billing_campaign_status';
COMMENT ON FUNCTION billing.campaign_status(bigint) IS 'The campaign''s status.';

CREATE FUNCTION billing.purge_stale_drafts(
    as_of timestamptz DEFAULT now(),
    max_age interval DEFAULT '30 days'
) RETURNS integer LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'billing_purge_stale_drafts';
COMMENT ON FUNCTION billing.purge_stale_drafts(timestamptz, interval) IS
    'Deletes draft and insufficient_credits campaigns created more than max_age before as_of.';

-- Auto-recharge, the monthly close, postpaid ---------------------------------------------------------

CREATE FUNCTION billing.configure_auto_recharge(
    account_id bigint,
    threshold numeric,
    amount numeric,
    method text DEFAULT 'card'
) RETURNS void LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'billing_configure_auto_recharge';
COMMENT ON FUNCTION billing.configure_auto_recharge(bigint, numeric, numeric, text) IS
    'Enables auto-recharge: below threshold, one pending auto_recharge payment of amount is requested (BL002 outside the bounds).';

CREATE FUNCTION billing.disable_auto_recharge(account_id bigint)
RETURNS void LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'billing_disable_auto_recharge';
COMMENT ON FUNCTION billing.disable_auto_recharge(bigint) IS 'Disables auto-recharge; a pending request stays pending.';

CREATE FUNCTION billing.close_billing_period(as_of timestamptz DEFAULT now())
RETURNS integer LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'billing_close_billing_period';
COMMENT ON FUNCTION billing.close_billing_period(timestamptz) IS
    'Invoices every negative balance (kind period_close) and resets it to zero; once per account per calendar month (UTC).';

CREATE FUNCTION billing.postpaid_eligible(account_id bigint, as_of timestamptz DEFAULT now())
RETURNS boolean LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'billing_postpaid_eligible';
COMMENT ON FUNCTION billing.postpaid_eligible(bigint, timestamptz) IS
    'Charges of the 30 days before as_of above the currency postpaid minimum (NULL minimum: not offered).';

CREATE FUNCTION billing.set_billing_mode(
    account_id bigint,
    mode text,
    credit_limit numeric DEFAULT NULL,
    as_of timestamptz DEFAULT now()
) RETURNS void LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'billing_set_billing_mode';
COMMENT ON FUNCTION billing.set_billing_mode(bigint, text, numeric, timestamptz) IS
    'postpaid (eligible accounts, credit_limit becomes overdraft_limit) or prepaid.';

COMMENT ON FUNCTION billing.usage_report(bigint, timestamptz, timestamptz) IS
    'Usage per day (UTC), channel and category in [from_ts, to_ts), campaigns and free conversations included.';
COMMENT ON FUNCTION billing.usage_export(bigint, timestamptz) IS
    'The six months before as_of, for COPY (SELECT * FROM billing.usage_export(id)) TO STDOUT WITH CSV HEADER.';

-- Invoices and dunning -------------------------------------------------------------------------------

CREATE FUNCTION billing.create_invoice(
    account_id bigint,
    amount numeric,
    due_at timestamptz,
    description text DEFAULT NULL,
    as_of timestamptz DEFAULT now()
) RETURNS bigint LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'billing_create_invoice';
COMMENT ON FUNCTION billing.create_invoice(bigint, numeric, timestamptz, text, timestamptz) IS
    'An open manual invoice, booked to receivables; it never touches the prepaid balance.';

CREATE FUNCTION billing.pay_invoice(
    invoice_id bigint,
    method text DEFAULT 'card',
    idempotency_key text DEFAULT NULL,
    as_of timestamptz DEFAULT now()
) RETURNS text LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'billing_pay_invoice';
COMMENT ON FUNCTION billing.pay_invoice(bigint, text, text, timestamptz) IS
    'paid: an external payment of kind invoice; with no unpaid due invoice left, service is restored at once.';

COMMENT ON FUNCTION billing.advance_dunning(timestamptz) IS
    'Moves accounts along the ladder in billing.dunning_policy; one row per stage change; idempotent and catch-up safe.';

-- Scheduling ----------------------------------------------------------------------------------------

CREATE FUNCTION billing.tick(as_of timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'billing_tick';
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

CREATE FUNCTION billing.schedule_jobs()
RETURNS integer LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'billing_schedule_jobs';
COMMENT ON FUNCTION billing.schedule_jobs() IS
    'Creates or updates the pg_cron job billing-tick (every minute, CALL billing.run_tick()); 55000 with a hint where pg_cron is not installed.';

-- Privileges --------------------------------------------------------------------------------------
--
-- Tables are revoked from PUBLIC: money moves only through the functions. Every function runs
-- as the extension owner (SECURITY DEFINER) with search_path pinned to pg_catalog, so nothing a
-- caller puts on its own search_path (a hostile operator, a look-alike table) is ever resolved.
-- Callers get EXECUTE only through the grant functions below.

DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure
          FROM pg_proc p
         WHERE p.pronamespace = 'billing'::regnamespace
           AND p.prokind = 'f'
           AND p.prorettype <> 'trigger'::regtype
    LOOP
        EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = pg_catalog, pg_temp', f);
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END;
$$;

-- What an application needs (no administrative function: rates, limits, billing mode, the
-- monthly close, dunning, scheduling and grants stay with the owner).
CREATE FUNCTION billing.api_functions() RETURNS text[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT ARRAY[
        'create_account', 'account_balance', 'account_state', 'set_low_balance_threshold',
        'reserve_credits', 'capture_reservation', 'release_reservation',
        'apply_recharge', 'create_payment', 'confirm_payment', 'fail_payment', 'cancel_payment',
        'configure_auto_recharge', 'disable_auto_recharge',
        'sms_segments', 'record_usage', 'usage_report', 'usage_export',
        'create_campaign', 'estimate_campaign', 'schedule_campaign', 'execute_campaign',
        'complete_campaign', 'fail_campaign', 'cancel_campaign', 'duplicate_campaign', 'campaign_status',
        'pay_invoice', 'postpaid_eligible'
    ]
$$;
COMMENT ON FUNCTION billing.api_functions() IS 'The functions billing.grant_usage() lets an application role execute.';

-- What a read-only reporting role needs.
CREATE FUNCTION billing.reporting_functions() RETURNS text[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT ARRAY['account_balance', 'account_state', 'usage_report', 'usage_export', 'campaign_status',
                 'estimate_campaign', 'postpaid_eligible', 'sms_segments', 'verify_ledger']
$$;
COMMENT ON FUNCTION billing.reporting_functions() IS 'The functions billing.grant_reporting() lets a role execute.';

-- Shared by the two grant functions: schema usage and EXECUTE on a list of functions.
CREATE FUNCTION billing.grant_execute(role_name name, functions text[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    fn text;
BEGIN
    IF role_name IS NULL OR NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
        RAISE EXCEPTION 'role % does not exist', coalesce(role_name::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA billing TO %I', role_name);
    FOREACH fn IN ARRAY functions LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION billing.%I TO %I', fn, role_name);
    END LOOP;
END;
$$;
COMMENT ON FUNCTION billing.grant_execute(name, text[]) IS
    'Schema usage and EXECUTE on the named billing functions (used by grant_usage and grant_reporting).';

CREATE FUNCTION billing.grant_usage(role_name name) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM billing.grant_execute(role_name, billing.api_functions());
    EXECUTE format('GRANT SELECT ON billing.payments, billing.invoices, billing.events, billing.rates,
                    billing.currencies, billing.payment_methods TO %I', role_name);
END;
$$;
COMMENT ON FUNCTION billing.grant_usage(name) IS
    'Lets an application role call the API (billing.api_functions()) and read payments, invoices, events, rates and currencies; never write a table.';

CREATE FUNCTION billing.grant_reporting(role_name name) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM billing.grant_execute(role_name, billing.reporting_functions());
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA billing TO %I', role_name);
END;
$$;
COMMENT ON FUNCTION billing.grant_reporting(name) IS
    'Read-only: SELECT on every billing table and view, and the reporting functions (billing.reporting_functions()).';

REVOKE ALL ON FUNCTION billing.api_functions(), billing.reporting_functions(),
    billing.grant_execute(name, text[]), billing.grant_usage(name), billing.grant_reporting(name) FROM PUBLIC;
