-- A database with every kind of row (the extension already created), for the dump/restore and
-- upgrade checks of ./run test. Plain API calls that every released version has.
\set ON_ERROR_STOP on
INSERT INTO billing.payment_methods VALUES ('paypal', 'PayPal');
SELECT billing.set_rate('INR', 'sms', 'promotional', 0.25, 0.05);
SELECT billing.create_account('INR', overdraft_limit => 50);
SELECT billing.create_account('USD');
SELECT billing.apply_recharge(1, 1000, 'paypal', 'k1', '2026-01-01');
SELECT billing.capture_reservation(billing.reserve_credits(1, 100), 60);
SELECT billing.reserve_credits(1, 20, idempotency_key => 'h1');
SELECT billing.create_payment(2, 10);
SELECT billing.record_usage(1, 'sms', 'promotional', 10);
SELECT billing.create_campaign(1, 'sms', 'promotional', 100, as_of => '2026-01-02');
SELECT billing.schedule_campaign(1, '2026-01-03', hold => true, as_of => '2026-01-02');
SELECT billing.execute_campaign(1, '2026-01-03');
SELECT billing.complete_campaign(1, 90);
SELECT billing.create_invoice(2, 40, '2026-01-05', as_of => '2026-01-01');
SELECT count(*) FROM billing.advance_dunning('2026-01-20');
SELECT billing.configure_auto_recharge(1, 100, 500);
-- A seeded reference row changed by an administrator: pg_dump must keep the change.
UPDATE billing.currencies SET recharge_max = 150000 WHERE code = 'INR';
