-- Overdraft billed monthly, then reset to zero (seed 003); postpaid above USD 5,000 a month.
\i tests/regress/include/fresh.sql
\set VERBOSITY verbose

SELECT billing.set_rate('USD', 'sms', 'automation', 0.01, carrier_fee => 0.005);
SELECT billing.create_account('USD', overdraft_limit => 30) AS a \gset
SELECT billing.create_account('USD') AS b \gset
SELECT billing.apply_recharge(:a, 10, as_of => '2026-10-01') IS NOT NULL AS recharged;
SELECT billing.apply_recharge(:b, 10, as_of => '2026-10-01') IS NOT NULL AS recharged;

-- Spend down to the limit: balance -30, available 0; beyond it is refused.
SELECT billing.record_usage(:a, 'sms', 'automation', 2000, '2026-10-10') AS charged;   -- 30.00
SELECT billing.record_usage(:a, 'sms', 'automation', 666, '2026-10-11') AS charged;    -- 9.99
SELECT * FROM billing.account_balance(:a);
SELECT billing.record_usage(:a, 'sms', 'automation', 1, '2026-10-12');
SELECT billing.reserve_credits(:a, 0.01);
SELECT billing.record_usage(:a, 'sms', 'automation', 0.666667, '2026-10-12') AS last_cent;
SELECT * FROM billing.account_balance(:a);

-- The monthly close: an invoice for the negative balance, the balance reset to zero.
SELECT billing.close_billing_period(as_of => '2026-10-31 23:00+00') AS invoices;
SELECT account_id = :a AS is_a, kind, amount, currency, status, due_at, period, description FROM billing.invoices;
SELECT balance, available FROM billing.account_balance(:a);
SELECT ledger_account, amount FROM billing.ledger_entries WHERE kind = 'period_close' ORDER BY id;
SELECT payload ->> 'kind' AS kind, payload ->> 'amount' AS amount FROM billing.events WHERE kind = 'invoice_created';
-- Once per calendar month: spending below zero again and closing again in October changes nothing.
SELECT billing.record_usage(:a, 'sms', 'automation', 100, '2026-10-31 23:30+00') AS charged;
SELECT billing.close_billing_period('2026-10-31 23:59+00') AS invoices_again;
SELECT balance FROM billing.account_balance(:a);
-- November's close takes it.
SELECT billing.close_billing_period('2026-11-30 23:00+00') AS november_invoices;
SELECT kind, amount, period FROM billing.invoices ORDER BY id;
SELECT balance FROM billing.account_balance(:a);

-- Postpaid eligibility: charges of the 30 days before as_of must exceed USD 5,000.
SELECT billing.set_rate('USD', 'voice', 'outbound', 1);
SELECT billing.create_account('USD', overdraft_limit => 6000) AS big \gset
SELECT billing.record_usage(:big, 'voice', 'outbound', 5000, '2026-11-20') AS charged;
SELECT billing.postpaid_eligible(:big, as_of => '2026-11-21') AS at_5000;
SELECT billing.record_usage(:big, 'voice', 'outbound', 0.01, '2026-11-20') AS charged;
SELECT billing.postpaid_eligible(:big, '2026-11-21') AS at_5000_01;
SELECT billing.postpaid_eligible(:big, '2026-12-21') AS thirty_days_later;
SELECT billing.postpaid_eligible(:b, '2026-11-21') AS small_account;
-- INR has no postpaid minimum: never offered.
SELECT billing.create_account('INR') AS inr \gset
SELECT billing.postpaid_eligible(:inr) AS inr_offered;
-- The minimum is configurable per currency.
UPDATE billing.currencies SET postpaid_minimum = 4000 WHERE code = 'USD';
SELECT billing.postpaid_eligible(:big, '2026-12-05') AS with_lower_minimum;
UPDATE billing.currencies SET postpaid_minimum = 5000 WHERE code = 'USD';

-- Switching: postpaid needs eligibility and a credit limit, which becomes the overdraft limit.
SELECT billing.set_billing_mode(:b, 'postpaid', credit_limit => 10000, as_of => '2026-11-21');
SELECT billing.set_billing_mode(:big, 'postpaid', as_of => '2026-11-21');
SELECT billing.set_billing_mode(:big, 'postpaid', credit_limit => 20000, as_of => '2026-11-21');
SELECT billing_mode FROM billing.account_state(:big);
SELECT overdraft_limit, available FROM billing.account_balance(:big);
SELECT billing.record_usage(:big, 'voice', 'outbound', 12000, '2026-11-25') AS postpaid_charges;
SELECT billing.close_billing_period('2026-11-30 23:30+00') AS invoices;
SELECT amount FROM billing.invoices WHERE account_id = :big;
-- Back to prepaid; the credit limit goes with it.
SELECT billing.set_billing_mode(:big, 'prepaid', as_of => '2026-12-01');
SELECT billing_mode FROM billing.account_state(:big);
SELECT overdraft_limit FROM billing.account_balance(:big);

-- A prepaid account with an overdraft keeps it when set to prepaid again without a limit.
SELECT billing.set_billing_mode(:a, 'prepaid', as_of => '2026-12-01');
SELECT overdraft_limit FROM billing.account_balance(:a);

-- Bad input.
SELECT billing.set_billing_mode(:big, 'monthly');
SELECT billing.set_billing_mode(:big, NULL);
SELECT billing.set_billing_mode(:big, 'postpaid', credit_limit => -1);
SELECT billing.set_billing_mode(999, 'prepaid');
SELECT billing.postpaid_eligible(999);
SELECT billing.postpaid_eligible(:big, NULL);
SELECT billing.close_billing_period(NULL);
SELECT billing.close_billing_period('infinity');
SELECT count(*) AS invoices FROM billing.invoices;
SELECT check_name, ok FROM billing.verify_ledger() WHERE NOT ok;
