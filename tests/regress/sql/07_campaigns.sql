-- Campaigns, straight from seed 000: two credit checks, no partial sends, ever.
\i tests/regress/include/fresh.sql
\set VERBOSITY verbose

SELECT billing.set_rate('INR', 'sms', 'promotional', 0.20, carrier_fee => 0.05);
SELECT billing.set_rate('INR', 'voice', 'outbound', 0.60);
SELECT billing.create_account('INR') AS a \gset
SELECT billing.apply_recharge(:a, 200, as_of => '2026-08-01') IS NOT NULL AS recharged;

-- 1. Not enough credits at scheduling: status insufficient_credits, an event, nothing held.
SELECT billing.create_campaign(:a, 'sms', 'promotional', 1000, units_per_recipient => 2,
                               name => 'Diwali offer', as_of => '2026-08-01') AS c1 \gset
SELECT billing.estimate_campaign(:c1) AS estimate;
SELECT billing.schedule_campaign(:c1, send_at => '2026-08-03 10:00+00', as_of => '2026-08-01');
SELECT billing.campaign_status(:c1);
SELECT kind, payload FROM billing.events WHERE kind = 'insufficient_credits';
SELECT reserved FROM billing.account_balance(:a);
-- Recharge, then schedule again (stage 1 passes), holding the cost until it runs.
SELECT billing.apply_recharge(:a, 400, as_of => '2026-08-01') IS NOT NULL AS recharged;
SELECT billing.schedule_campaign(:c1, '2026-08-03 10:00+00', hold => true, as_of => '2026-08-01 12:00+00');
SELECT status, send_at, unit_price, carrier_fee, cost FROM billing.campaigns WHERE id = :c1;
SELECT balance, reserved, available FROM billing.account_balance(:a);
-- A held campaign's credits cannot be released by hand.
SELECT billing.release_reservation(reservation_id) FROM billing.campaigns WHERE id = :c1;
-- A rate change after scheduling does not change what was promised.
SELECT billing.set_rate('INR', 'sms', 'promotional', 0.30, carrier_fee => 0.05);
SELECT billing.run_due_campaigns(as_of => '2026-08-03 09:59+00') AS executed;
SELECT billing.run_due_campaigns(as_of => '2026-08-03 10:00+00') AS executed;
SELECT billing.campaign_status(:c1);
-- Delivered 1800 of 2000 segments: charge those, release the rest.
SELECT billing.complete_campaign(:c1, delivered_units => 1800) AS charged;
SELECT status, delivered_units, charged FROM billing.campaigns WHERE id = :c1;
SELECT balance, reserved, available FROM billing.account_balance(:a);
SELECT ledger_account, amount FROM billing.ledger_entries WHERE kind = 'capture' ORDER BY id;
SELECT billing.complete_campaign(:c1);

-- 2. Credits used by another campaign between stage 1 and stage 2 (no hold):
--    the second fails at send time, whole, with nothing sent or charged.
SELECT * FROM billing.account_balance(:a);
SELECT billing.create_campaign(:a, 'voice', 'outbound', 166, as_of => '2026-08-04') AS c2 \gset
SELECT billing.create_campaign(:a, 'voice', 'outbound', 166, as_of => '2026-08-04') AS c3 \gset
SELECT billing.schedule_campaign(:c2, '2026-08-05 09:00+00', as_of => '2026-08-04');
SELECT billing.schedule_campaign(:c3, '2026-08-05 09:30+00', as_of => '2026-08-04');
SELECT billing.run_due_campaigns('2026-08-05 10:00+00') AS executed;
SELECT id = :c2 AS first, status FROM billing.campaigns WHERE id IN (:c2, :c3) ORDER BY id;
SELECT kind, payload FROM billing.events WHERE kind = 'campaign_failed_low_balance';
SELECT balance, reserved, available FROM billing.account_balance(:a);

-- 3. A recharge after the failed run does not revive it: duplicate it and schedule again.
SELECT billing.apply_recharge(:a, 1000, as_of => '2026-08-05 11:00+00') IS NOT NULL AS recharged;
SELECT billing.campaign_status(:c3);
SELECT billing.execute_campaign(:c3, '2026-08-05 11:01+00');
SELECT billing.schedule_campaign(:c3, '2026-08-06', as_of => '2026-08-05 11:01+00');
SELECT billing.duplicate_campaign(:c3, as_of => '2026-08-05 11:02+00') AS c4 \gset
SELECT status, channel, category, audience_size, units_per_recipient FROM billing.campaigns WHERE id = :c4;
SELECT billing.schedule_campaign(:c4, '2026-08-05 12:00+00', as_of => '2026-08-05 11:02+00');
SELECT billing.execute_campaign(:c4, '2026-08-05 12:00+00');
SELECT billing.complete_campaign(:c4) AS charged;
SELECT billing.complete_campaign(:c2) AS charged;

-- 4. Template rejected by the carrier after credits were locked: every held credit released.
SELECT billing.create_campaign(:a, 'sms', 'promotional', 500, as_of => '2026-08-06') AS c5 \gset
SELECT billing.schedule_campaign(:c5, '2026-08-07', as_of => '2026-08-06');
SELECT billing.execute_campaign(:c5, '2026-08-07');
SELECT reserved FROM billing.account_balance(:a);
SELECT billing.fail_campaign(:c5, reason => 'template rejected by carrier');
SELECT status, failure_reason FROM billing.campaigns WHERE id = :c5;
SELECT reserved FROM billing.account_balance(:a);
SELECT billing.complete_campaign(:c5);

-- 5. Blocked at send time: failed_blocked, nothing sent.
SELECT billing.create_campaign(:a, 'sms', 'promotional', 10, as_of => '2026-08-08') AS c6 \gset
SELECT billing.schedule_campaign(:c6, '2026-08-09', hold => true, as_of => '2026-08-08');
UPDATE billing.accounts SET dunning_stage = 'outbound_blocked' WHERE id = :a;
SELECT billing.execute_campaign(:c6, '2026-08-09');
UPDATE billing.accounts SET dunning_stage = 'current' WHERE id = :a;
SELECT reserved FROM billing.account_balance(:a);

-- 6. Cancel: from draft, insufficient_credits or scheduled only.
SELECT billing.create_campaign(:a, 'sms', 'promotional', 10, as_of => '2026-08-10') AS c7 \gset
SELECT billing.schedule_campaign(:c7, '2026-08-11', hold => true, as_of => '2026-08-10');
SELECT billing.cancel_campaign(:c7);
SELECT billing.cancel_campaign(:c7);
SELECT billing.cancel_campaign(:c4);

-- 7. Stale drafts: 29 days old stays, 31 days old goes; scheduled ones are never purged.
SELECT billing.create_campaign(:a, 'sms', 'promotional', 10, name => '29 days', as_of => '2026-09-02') AS d29 \gset
SELECT billing.create_campaign(:a, 'sms', 'promotional', 10, name => '31 days', as_of => '2026-08-31') AS d31 \gset
SELECT billing.purge_stale_drafts(as_of => '2026-10-01') AS purged;
SELECT name FROM billing.campaigns WHERE id IN (:d29, :d31);
SELECT billing.purge_stale_drafts('2026-10-01') AS purged_again;
SELECT billing.purge_stale_drafts('2026-10-01', max_age => '1 day') AS purged_with_shorter_age;

-- The lifecycle holds even for hand-written SQL.
\set VERBOSITY default
UPDATE billing.campaigns SET status = 'running' WHERE id = :c3;
UPDATE billing.campaigns SET status = 'scheduled' WHERE id = :c2;
UPDATE billing.campaigns SET charged = cost + 1 WHERE id = :c2;
DELETE FROM billing.campaigns WHERE id = :c2;
\set VERBOSITY verbose

-- 8. A free campaign (zero cost) runs without a hold and completes charging nothing.
SELECT billing.set_rate('INR', 'whatsapp', 'free', 0);
SELECT billing.create_campaign(:a, 'whatsapp', 'free', 50, as_of => '2026-10-02') AS c8 \gset
SELECT billing.schedule_campaign(:c8, '2026-10-02', hold => true, as_of => '2026-10-02');
SELECT billing.execute_campaign(:c8, '2026-10-02');
SELECT billing.complete_campaign(:c8) AS charged;
SELECT status, reservation_id, cost, charged FROM billing.campaigns WHERE id = :c8;

SELECT id, status, cost, charged FROM billing.campaigns ORDER BY id;
SELECT kind, count(*) FROM billing.events GROUP BY kind ORDER BY kind;
SELECT check_name, ok FROM billing.verify_ledger() WHERE NOT ok;

-- 9. run_due_campaigns decides each campaign on its own: one whose execution raises (here a
--    rule an administrator added refuses it) is undone alone and stays scheduled, its hold
--    intact, with a warning and an event; the others run. (A cancel or timeout still aborts the
--    whole call: tests/reliability.)
\set VERBOSITY terse
SELECT billing.create_campaign(:a, 'sms', 'promotional', 10, name => 'refused', as_of => '2026-10-03') AS c9 \gset
SELECT billing.create_campaign(:a, 'sms', 'promotional', 10, name => 'fine', as_of => '2026-10-03') AS c10 \gset
SELECT billing.schedule_campaign(:c9, '2026-10-03 09:00+00', hold => true, as_of => '2026-10-03');
SELECT billing.schedule_campaign(:c10, '2026-10-03 09:30+00', as_of => '2026-10-03');
SELECT reserved AS reserved_before FROM billing.account_balance(:a);
CREATE FUNCTION public.refuse_running() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.name = 'refused' AND NEW.status = 'running' THEN
        RAISE EXCEPTION 'campaign % refused by a site rule', NEW.id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER site_rule BEFORE UPDATE ON billing.campaigns
    FOR EACH ROW EXECUTE FUNCTION public.refuse_running();
SELECT billing.run_due_campaigns('2026-10-03 10:00+00') AS executed;
SELECT name, status FROM billing.campaigns WHERE id IN (:c9, :c10) ORDER BY id;
SELECT reserved AS reserved_after FROM billing.account_balance(:a);
SELECT payload ->> 'campaign_id' = :'c9' AS names_c9, payload ->> 'sqlstate' AS sqlstate,
       payload ->> 'message' AS message
  FROM billing.events WHERE kind = 'campaign_execution_failed';
-- Without the rule, the next run executes it.
DROP TRIGGER site_rule ON billing.campaigns;
DROP FUNCTION public.refuse_running();
SELECT billing.run_due_campaigns('2026-10-03 10:01+00') AS executed;
SELECT name, status FROM billing.campaigns WHERE id IN (:c9, :c10) ORDER BY id;
SELECT check_name, ok FROM billing.verify_ledger() WHERE NOT ok;
