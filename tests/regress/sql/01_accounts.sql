-- Accounts: creation, balances, limits, thresholds, state, and the low-balance event.
\i tests/regress/include/fresh.sql
\set VERBOSITY verbose

SELECT code, minor_units, recharge_min, recharge_max, low_balance_threshold, tax_rate, postpaid_minimum
  FROM billing.currencies ORDER BY code;

SELECT billing.create_account('INR') AS inr \gset
SELECT billing.create_account(currency => 'USD', external_ref => 'acme-us', overdraft_limit => 50,
                              low_balance_threshold => 20) AS usd \gset
SELECT id, currency, external_ref, balance, reserved, overdraft_limit, low_balance_threshold
  FROM billing.accounts ORDER BY id;

SELECT * FROM billing.account_balance(:inr);
-- An overdraft limit counts towards available.
SELECT * FROM billing.account_balance(account_id => :usd);
SELECT * FROM billing.account_state(:inr);
SELECT * FROM billing.account_state(account_id => :usd, as_of => '2026-01-01');

-- Low balance: one event when available falls from >= threshold to below it.
SELECT billing.apply_recharge(:inr, 500, as_of => '2026-01-01') IS NOT NULL AS recharged;
SELECT billing.reserve_credits(:inr, 350) IS NOT NULL AS held;   -- 150 left: above 100
SELECT billing.reserve_credits(:inr, 60) IS NOT NULL AS held;    -- 90 left: crosses, one event
SELECT billing.reserve_credits(:inr, 10) IS NOT NULL AS held;    -- 80 left: already below, none
SELECT kind, payload FROM billing.events WHERE kind = 'low_balance' ORDER BY id;
-- Back above the threshold re-arms it.
SELECT billing.apply_recharge(:inr, 100, as_of => '2026-01-02') IS NOT NULL AS recharged;  -- 180
SELECT billing.reserve_credits(:inr, 100) IS NOT NULL AS held;   -- 80: crosses again
SELECT count(*) AS low_balance_events FROM billing.events WHERE kind = 'low_balance';

-- A per-account threshold replaces the currency default; setting it records no event.
SELECT billing.set_low_balance_threshold(:inr, 50);
SELECT count(*) AS low_balance_events FROM billing.events WHERE kind = 'low_balance';
SELECT low_balance_threshold FROM billing.accounts WHERE id = :inr;

-- Overdraft: the USD account may hold down to balance = -50.
SELECT billing.reserve_credits(:usd, 50) IS NOT NULL AS held;
SELECT * FROM billing.account_balance(:usd);
-- The limit cannot be lowered below what is already used (BL003), and nothing changes.
SELECT billing.set_overdraft_limit(:usd, 10);
SELECT overdraft_limit FROM billing.accounts WHERE id = :usd;
SELECT billing.set_overdraft_limit(:usd, 80);
SELECT * FROM billing.account_balance(:usd);

SELECT check_name, ok FROM billing.verify_ledger();
