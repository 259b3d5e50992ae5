-- Auto-recharge (seeds 000, 003): requested once, confirmed, requested again later; after a
-- failed payment it stops until configured again.
\i tests/regress/include/fresh.sql
\set VERBOSITY verbose

SELECT billing.set_rate('INR', 'sms', 'transactional', 1);
SELECT billing.create_account('INR') AS a \gset
SELECT billing.apply_recharge(:a, 500, as_of => '2026-10-01') IS NOT NULL AS recharged;
SELECT auto_recharge FROM billing.account_state(:a);
SELECT billing.configure_auto_recharge(:a, threshold => 200, amount => 1000, method => 'upi');
SELECT auto_recharge FROM billing.account_state(:a);

-- Spending down to 250: above the threshold, no request.
SELECT billing.record_usage(:a, 'sms', 'transactional', 250) AS charged;
SELECT count(*) AS requests FROM billing.payments WHERE kind = 'auto_recharge';
-- Below 200: one pending auto_recharge payment (with GST) and one event, in the same transaction.
SELECT billing.record_usage(:a, 'sms', 'transactional', 60) AS charged;
SELECT id AS req1, kind, amount, tax, total, method, status FROM billing.payments WHERE kind = 'auto_recharge' \gset
SELECT kind, amount, tax, total, method, status FROM billing.payments WHERE kind = 'auto_recharge';
SELECT payload FROM billing.events WHERE kind = 'auto_recharge_requested';
-- Still below while it is pending: no second request.
SELECT billing.record_usage(:a, 'sms', 'transactional', 10) AS charged;
SELECT billing.reserve_credits(:a, 10) IS NOT NULL AS held;
SELECT count(*) AS requests FROM billing.payments WHERE kind = 'auto_recharge';
-- The application charged the saved method: confirm credits the balance.
SELECT billing.confirm_payment(:req1, external_ref => 'upi-ar-1');
SELECT balance, available FROM billing.account_balance(:a);
-- Later, below the threshold again: a new request.
SELECT billing.record_usage(:a, 'sms', 'transactional', 1000) AS charged;
SELECT count(*) AS requests, count(*) FILTER (WHERE status = 'pending') AS pending
  FROM billing.payments WHERE kind = 'auto_recharge';

-- The card is declined: auto-recharge is suspended, and no more requests are made.
SELECT id AS req2 FROM billing.payments WHERE kind = 'auto_recharge' AND status = 'pending' \gset
SELECT billing.fail_payment(:req2, reason => 'card declined');
SELECT auto_recharge FROM billing.account_state(:a);
SELECT kind, payload FROM billing.events WHERE kind IN ('payment_failed', 'auto_recharge_suspended') ORDER BY id;
SELECT billing.record_usage(:a, 'sms', 'transactional', 5) AS charged;
SELECT count(*) AS requests FROM billing.payments WHERE kind = 'auto_recharge';
-- Configuring it again re-enables it and, being below the threshold already, requests at once.
SELECT billing.configure_auto_recharge(:a, threshold => 200, amount => 1000);
SELECT auto_recharge FROM billing.account_state(:a);
SELECT count(*) AS requests, count(*) FILTER (WHERE status = 'pending') AS pending
  FROM billing.payments WHERE kind = 'auto_recharge';
-- Disabled: no requests; the pending one may still be cancelled by the application.
SELECT id AS req3 FROM billing.payments WHERE kind = 'auto_recharge' AND status = 'pending' \gset
SELECT billing.disable_auto_recharge(:a);
SELECT billing.cancel_payment(:req3);
SELECT billing.record_usage(:a, 'sms', 'transactional', 5) AS charged;
SELECT auto_recharge, (SELECT count(*) FROM billing.payments WHERE kind = 'auto_recharge') AS requests
  FROM billing.account_state(:a);

-- Bad input: bounds (BL002), method, threshold, unknown account; nothing changes.
SELECT pg_temp.err(format('SELECT billing.configure_auto_recharge(%s, 100, 50)', :a));
SELECT pg_temp.err(format('SELECT billing.configure_auto_recharge(%s, 100, 100001)', :a));
SELECT pg_temp.err(format('SELECT billing.configure_auto_recharge(%s, -1, 500)', :a));
SELECT pg_temp.err(format('SELECT billing.configure_auto_recharge(%s, 100, 500, ''cheque'')', :a));
SELECT pg_temp.err(format('SELECT billing.configure_auto_recharge(%s, NULL, 500)', :a));
SELECT pg_temp.err('SELECT billing.configure_auto_recharge(999, 100, 500)');
SELECT pg_temp.err('SELECT billing.disable_auto_recharge(999)');
SELECT pg_temp.err('SELECT billing.disable_auto_recharge(NULL)');
SELECT auto_recharge FROM billing.account_state(:a);
SELECT check_name, ok FROM billing.verify_ledger() WHERE NOT ok;
