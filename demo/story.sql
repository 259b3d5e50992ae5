-- The demo story: an INR account, a recharge with GST, a hold, a capture, a release,
-- a low-balance event, and the ledger verified. Run by ./run demo on a fresh extension.
\set QUIET on
\pset footer off
CREATE EXTENSION billing;
\set QUIET off
\echo
\echo '1. A new INR account. Its low-balance threshold is the currency default, INR 100.'
SELECT billing.create_account('INR', external_ref => 'acme-india') AS account \gset
SELECT * FROM billing.account_balance(:account);

\echo '2. A recharge of INR 1000 by UPI: the wallet gets 1000, GST 18% is paid on top.'
SELECT billing.apply_recharge(:account, 1000, method => 'upi', idempotency_key => 'upi-7731') AS payment \gset
SELECT id, kind, amount, tax, total, method, status FROM billing.payments WHERE id = :payment;
\echo '   The app retries the same request (same key): same payment, nothing credited twice.'
SELECT billing.apply_recharge(:account, 1000, method => 'upi', idempotency_key => 'upi-7731') AS same_payment;

\echo '3. A campaign holds INR 600 before sending.'
SELECT billing.reserve_credits(:account, 600, reference => 'diwali-sms') AS hold \gset
SELECT * FROM billing.account_balance(:account);

\echo '4. It delivered INR 450 worth: capture 450, the other 150 goes back.'
SELECT billing.capture_reservation(:hold, 450) AS charged;

\echo '5. Another hold of INR 300, then the campaign is cancelled: release it.'
SELECT billing.reserve_credits(:account, 300, reference => 'flash-sale') AS hold2 \gset
SELECT billing.release_reservation(:hold2) AS released;

\echo '6. A hold of INR 480 takes available from 550 to 70, below INR 100: one low_balance event.'
SELECT billing.reserve_credits(:account, 480) AS hold3 \gset
SELECT * FROM billing.account_balance(:account);
SELECT kind, payload FROM billing.events WHERE account_id = :account ORDER BY id;

\echo '7. Asking for more than is available fails up front (SQLSTATE BL001), changing nothing.'
\set VERBOSITY verbose
\set ON_ERROR_STOP off
SELECT billing.reserve_credits(:account, 100);
\set ON_ERROR_STOP on
\set VERBOSITY default
\echo

\echo '8. Campaigns are checked twice. A rate: INR 0.20 per SMS segment plus a 0.05 carrier fee.'
SELECT billing.set_rate('INR', 'sms', 'promotional', 0.20, carrier_fee => 0.05) \gset
SELECT billing.release_reservation(:hold3) AS released;
SELECT billing.create_campaign(:account, 'sms', 'promotional', 800, name => 'weekend sale') AS c1 \gset
SELECT billing.create_campaign(:account, 'sms', 'promotional', 800, name => 'flash sale') AS c2 \gset
\echo '   Both pass stage 1 (each costs 200 of the 550 available) ...'
SELECT billing.schedule_campaign(:c1, now()) AS weekend, billing.schedule_campaign(:c2, now()) AS flash;
\echo '   ... then per-message usage (1000 segments) spends 250 of it, leaving 300.'
SELECT billing.record_usage(:account, 'sms', 'promotional', 1000) AS usage_charged;
\echo '   Stage 2 at send time: the first runs with its full cost held, the second fails whole.'
SELECT billing.execute_campaign(:c1) AS weekend_stage_2;
SELECT billing.execute_campaign(:c2) AS flash_stage_2;
SELECT billing.complete_campaign(:c1, delivered_units => 780) AS charged_for_780_delivered;
SELECT id, name, status, cost, charged FROM billing.campaigns ORDER BY id;

\echo '9. The double-entry ledger behind it, and its invariants.'
SELECT transfer_id, kind, ledger_account, amount FROM billing.ledger_entries
 WHERE account_id = :account ORDER BY id;
SELECT * FROM billing.verify_ledger();
