-- Reliability checks (issue 7): the bank workload's helpers, in schema rel of database
-- billing_reliability. Loaded by tests/reliability/run.sh after CREATE EXTENSION billing.
--
-- pgbench aborts a client on any SQL error, so every operation goes through rel.step(), which
-- catches the SQLSTATEs a correct extension may raise for a random request and re-raises
-- anything else (a deadlock 40P01, an XX000, a 23514 from a guard trigger, ...), failing the run.

SET client_min_messages = warning;
CREATE SCHEMA rel;

-- The bank accounts, by index 1..8 (pgbench picks the index).
CREATE TABLE rel.bank_accounts (
    idx        integer PRIMARY KEY,
    account_id bigint NOT NULL,
    currency   text NOT NULL
);

-- The accounts of the fault-injection campaigns.
CREATE TABLE rel.fault_accounts (account_id bigint PRIMARY KEY);

-- One row per operation, written in the operation's own transaction: what it did and, for a
-- success, the id it returned. Insert-only, so the clients never wait for each other here.
CREATE TABLE rel.op_log (
    op         text NOT NULL,
    outcome    text NOT NULL,          -- 'ok' or the SQLSTATE it was refused with
    account_id bigint,
    key        text,                   -- the idempotency key, if any
    result_id  bigint,                 -- reservation / payment / campaign id returned
    at         timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- The id of one of the 20 most recent objects of an account: one in a wanted status when there
-- is one (r picks among the first three), else the most recent of any status, else an id that
-- does not exist (P0002).
CREATE FUNCTION rel.pick(tbl text, acct bigint, statuses text[], r integer, extra text DEFAULT 'true')
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    id bigint;
BEGIN
    EXECUTE format(
        'SELECT id FROM (SELECT id, status FROM billing.%I WHERE account_id = $1 AND %s
                          ORDER BY id DESC LIMIT 20) s
          WHERE status = ANY ($2) ORDER BY id DESC OFFSET $3 LIMIT 1', tbl, extra)
       INTO id USING acct, statuses, r % 3;
    IF id IS NULL THEN
        EXECUTE format(
            'SELECT id FROM (SELECT id, status FROM billing.%I WHERE account_id = $1 AND %s
                              ORDER BY id DESC LIMIT 20) s
              WHERE status = ANY ($2) ORDER BY id DESC LIMIT 1', tbl, extra)
           INTO id USING acct, statuses;
    END IF;
    IF id IS NULL THEN
        EXECUTE format('SELECT max(id) FROM billing.%I WHERE account_id = $1', tbl) INTO id USING acct;
    END IF;
    RETURN coalesce(id, 999999999999);
END;
$$;

CREATE FUNCTION rel.step(idx integer, op integer, r1 integer, r2 integer)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    expected constant text[] := '{BL001,BL002,BL003,BL004,BL006,P0002,40001}';
    a        bigint;
    cur      text;
    name     text;
    k        text;
    rid      bigint;
    n        integer;
    amt      numeric;
    held     numeric;
    plan     bigint;
    extra    text[] := '{}';
    chan     text;
    cat      text;
BEGIN
    SELECT b.account_id, b.currency INTO a, cur FROM rel.bank_accounts b WHERE b.idx = step.idx;
    IF cur = 'INR' THEN chan := 'sms'; cat := 'promotional';
    ELSE chan := 'whatsapp'; cat := 'business_initiated'; END IF;
    BEGIN
        IF op <= 16 THEN
            name := 'reserve';
            IF r2 % 3 = 0 THEN
                -- A keyed hold from a small key space: the key determines the request, so a
                -- second use is a retry (same id, nothing more held); 1 in 20 changes the
                -- amount (BL006 when the key is already used).
                n := (r2 / 3) % 40;
                k := 'h' || n;
                amt := CASE cur WHEN 'INR' THEN 1 + (n * 13) % 50 ELSE 0.5 + n % 5 END;
                IF r1 % 20 = 0 THEN amt := amt + 0.01; END IF;
                rid := billing.reserve_credits(account_id => a, amount => amt,
                    expires_at => CASE WHEN n % 4 = 0 THEN timestamptz '2000-01-01 00:00+00' + n * interval '1 second' END,
                    idempotency_key => k);
            ELSE
                amt := CASE cur WHEN 'INR' THEN round(0.01 + (r1 % 15000) / 100.0, 2)
                                ELSE round(0.01 + (r1 % 750) / 100.0, 2) END;
                rid := billing.reserve_credits(account_id => a, amount => amt, reference => 'ref-' || r1,
                    expires_at => CASE r2 % 5 WHEN 1 THEN now() - interval '1 second'
                                              WHEN 2 THEN now() + interval '2 seconds' END);
            END IF;
        ELSIF op <= 26 THEN
            name := 'capture';
            rid := rel.pick('reservations', a, '{pending}', r1, 'campaign_id IS NULL');
            IF r2 % 2 = 0 THEN
                PERFORM billing.capture_reservation(rid);
            ELSE
                SELECT r.amount INTO held FROM billing.reservations r WHERE r.id = rid;
                PERFORM billing.capture_reservation(rid,
                    least(coalesce(held, 1), greatest(0.01, round(coalesce(held, 1) * (r2 % 100) / 100, 2))));
            END IF;
        ELSIF op <= 27 THEN
            -- More than is held: 22023 for a pending hold, which stays pending.
            name := 'overcapture';
            extra := '{22023}';
            rid := rel.pick('reservations', a, '{pending}', r1, 'campaign_id IS NULL');
            SELECT r.amount INTO held FROM billing.reservations r WHERE r.id = rid;
            PERFORM billing.capture_reservation(rid, coalesce(held, 1) + 0.01);
        ELSIF op <= 34 THEN
            name := 'release';
            rid := rel.pick('reservations', a, CASE WHEN r2 % 4 = 0 THEN '{captured,released,expired}' ELSE '{pending}' END::text[],
                            r1, CASE WHEN r2 % 8 = 1 THEN 'true' ELSE 'campaign_id IS NULL' END);
            PERFORM billing.release_reservation(rid);
        ELSIF op <= 36 THEN
            name := 'expire';
            PERFORM billing.expire_reservations();
        ELSIF op <= 44 THEN
            name := 'recharge';
            IF r1 % 20 = 0 THEN
                amt := CASE cur WHEN 'INR' THEN CASE WHEN r2 % 2 = 0 THEN 99 ELSE 100001 END
                                ELSE CASE WHEN r2 % 2 = 0 THEN 4 ELSE 2001 END END;   -- BL002
                rid := billing.apply_recharge(a, amt);
            ELSIF r2 % 5 < 2 THEN
                n := r2 % 30;
                k := 'r' || n;
                amt := CASE cur WHEN 'INR' THEN 100 + (n * 37) % 900 ELSE 5 + (n * 7) % 100 END;
                IF r1 % 20 = 1 THEN amt := amt + 1; END IF;   -- BL006 when the key is used
                rid := billing.apply_recharge(account_id => a, amount => amt, method => 'upi', idempotency_key => k);
            ELSE
                amt := CASE cur WHEN 'INR' THEN 100 + r1 % 200 ELSE 5 + r1 % 10 END;
                rid := billing.apply_recharge(a, amt);
            END IF;
        ELSIF op <= 50 THEN
            name := 'create_payment';
            IF r2 % 10 < 3 THEN
                n := r2 % 30;
                k := 'p' || n;
                amt := CASE cur WHEN 'INR' THEN 100 + (n * 41) % 900 ELSE 5 + (n * 11) % 100 END;
                rid := billing.create_payment(account_id => a, amount => amt, method => 'card', idempotency_key => k);
            ELSE
                amt := CASE cur WHEN 'INR' THEN 100 + r1 % 200 ELSE 5 + r1 % 10 END;
                rid := billing.create_payment(a, amt, 'netbanking');
            END IF;
        ELSIF op <= 60 THEN
            rid := rel.pick('payment_records', a, CASE WHEN r1 % 10 < 7 THEN '{pending}' ELSE '{succeeded,failed,cancelled}' END::text[], r1);
            CASE r2 % 4
                WHEN 0, 1 THEN name := 'confirm_payment'; PERFORM billing.confirm_payment(rid, 'ext-' || r1);
                WHEN 2 THEN name := 'fail_payment'; PERFORM billing.fail_payment(rid, 'declined');
                ELSE name := 'cancel_payment'; PERFORM billing.cancel_payment(rid);
            END CASE;
        ELSIF op <= 72 THEN
            name := 'usage';
            IF r2 % 10 < 3 THEN
                n := r2 % 40;
                k := 'u' || n;
                PERFORM billing.record_usage(account_id => a, channel => chan, category => cat, units => 1 + n % 7,
                    occurred_at => timestamptz '2026-01-01 00:00+00' + n * interval '1 minute', idempotency_key => k);
            ELSE
                PERFORM billing.record_usage(a, chan, cat, 1 + r1 % 20);
            END IF;
        ELSIF op <= 77 THEN
            name := 'create_campaign';
            rid := billing.create_campaign(a, chan, cat, 1 + r1 % 200, 1 + r2 % 3);
        ELSIF op <= 82 THEN
            name := 'schedule_campaign';
            rid := rel.pick('campaigns', a, CASE WHEN r1 % 10 = 0 THEN '{running,completed}' ELSE '{draft,insufficient_credits}' END::text[], r1);
            PERFORM billing.schedule_campaign(campaign_id => rid,
                send_at => CASE WHEN r2 % 3 = 0 THEN now() + interval '1 hour' ELSE now() - interval '1 second' END,
                hold => r2 % 2 = 0);
        ELSIF op <= 84 THEN
            name := 'execute_campaign';
            rid := rel.pick('campaigns', a, '{scheduled}', r1);
            PERFORM billing.execute_campaign(rid);
        ELSIF op <= 86 THEN
            name := 'run_due_campaigns';
            PERFORM billing.run_due_campaigns();
        ELSIF op <= 91 THEN
            name := 'complete_campaign';
            rid := rel.pick('campaigns', a, '{running}', r1);
            SELECT c.audience_size::bigint * c.units_per_recipient INTO plan FROM billing.campaigns c WHERE c.id = rid;
            PERFORM billing.complete_campaign(rid, CASE WHEN r2 % 2 = 0 THEN NULL ELSE r1 % (coalesce(plan, 1) + 1) END);
        ELSIF op <= 93 THEN
            name := 'fail_campaign';
            rid := rel.pick('campaigns', a, '{scheduled,running}', r1);
            PERFORM billing.fail_campaign(rid, 'template rejected');
        ELSIF op <= 95 THEN
            name := 'cancel_campaign';
            rid := rel.pick('campaigns', a, CASE WHEN r1 % 5 = 0 THEN '{running,completed,cancelled}' ELSE '{draft,insufficient_credits,scheduled}' END::text[], r1);
            PERFORM billing.cancel_campaign(rid);
        ELSE
            -- A large hold that stays until it is captured or released.
            name := 'reserve';
            rid := billing.reserve_credits(a, CASE cur WHEN 'INR' THEN 100 + r1 % 700 ELSE 5 + r1 % 35 END, 'big-' || r1);
        END IF;
        INSERT INTO rel.op_log (op, outcome, account_id, key, result_id) VALUES (name, 'ok', a, k, rid);
        RETURN 'ok';
    EXCEPTION WHEN OTHERS THEN
        IF SQLSTATE = ANY (expected || extra) THEN
            INSERT INTO rel.op_log (op, outcome, account_id, key) VALUES (name, SQLSTATE, a, k);
            RETURN SQLSTATE;
        END IF;
        RAISE;   -- unexpected: the error aborts this pgbench client and fails the run
    END;
END;
$$;

-- The bank: 6 INR accounts and 2 USD accounts, a rate for each currency, an overdraft on one
-- account of each currency, an opening recharge for each (logged like the workload's).
SELECT billing.set_rate('INR', 'sms', 'promotional', 0.25, 0.05);
SELECT billing.set_rate('USD', 'whatsapp', 'business_initiated', 0.0125, 0.003);
INSERT INTO rel.bank_accounts (idx, account_id, currency)
SELECT i, billing.create_account(c, external_ref => 'rel-bank-' || i,
                                 overdraft_limit => CASE i WHEN 1 THEN 50 WHEN 8 THEN 5 ELSE 0 END), c
  FROM (SELECT i, CASE WHEN i <= 6 THEN 'INR' ELSE 'USD' END AS c FROM generate_series(1, 8) i) s
 ORDER BY i;
INSERT INTO rel.op_log (op, outcome, account_id, result_id)
SELECT 'recharge', 'ok', account_id, billing.apply_recharge(account_id, CASE currency WHEN 'INR' THEN 2000 ELSE 100 END)
  FROM rel.bank_accounts ORDER BY idx;
