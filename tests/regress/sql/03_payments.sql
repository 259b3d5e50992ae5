-- Recharges and payments: bounds, GST, pending payments, idempotency, the payments view.
\i tests/regress/include/fresh.sql
\set VERBOSITY verbose

SELECT billing.create_account('INR') AS inr \gset
SELECT billing.create_account('USD') AS usd \gset

-- A succeeded recharge credits the amount at once; GST 18% is paid on top.
SELECT billing.apply_recharge(:inr, 1000, method => 'upi', as_of => '2026-04-01 09:00+00') AS p1 \gset
SELECT id, kind, amount, tax, total, currency, method, status, created_at, settled_at
  FROM billing.payments WHERE id = :p1;
SELECT balance, available FROM billing.account_balance(:inr);
-- Tax rounds to the currency's minor units, half away from zero: 100.25 * 0.18 = 18.045.
SELECT billing.apply_recharge(:inr, 100.25, as_of => '2026-04-01 09:01+00') AS p2 \gset
SELECT amount, tax, total FROM billing.payments WHERE id = :p2;
-- USD carries no tax.
SELECT billing.apply_recharge(:usd, 5, as_of => '2026-04-01') AS p3 \gset
SELECT amount, tax, total FROM billing.payments WHERE id = :p3;

-- Bounds are inclusive: INR 100..100000, USD 5..2000; outside is BL002 with the bounds.
SELECT billing.apply_recharge(:inr, 100) IS NOT NULL AS min_ok;
SELECT billing.apply_recharge(:inr, 100000) IS NOT NULL AS max_ok;
SELECT billing.apply_recharge(:inr, 99.99);
SELECT billing.apply_recharge(:inr, 100000.01);
SELECT billing.apply_recharge(:usd, 4.99);
SELECT billing.apply_recharge(:usd, 2000.01);
SELECT billing.create_payment(:usd, 2001);
-- A payment cannot charge fractions of the minor unit.
SELECT billing.apply_recharge(:inr, 150.005);
-- Administrators may change the bounds.
UPDATE billing.currencies SET recharge_max = 200000 WHERE code = 'INR';
SELECT billing.apply_recharge(:inr, 150000) IS NOT NULL AS raised_max_ok;
UPDATE billing.currencies SET recharge_max = 100000 WHERE code = 'INR';

-- Pending payments: nothing credited until confirmed, and credited once.
SELECT balance AS before FROM billing.account_balance(:usd);
SELECT billing.create_payment(:usd, 20, 'card', as_of => '2026-04-02') AS pend \gset
SELECT status, settled_at FROM billing.payments WHERE id = :pend;
SELECT balance AS still FROM billing.account_balance(:usd);
SELECT billing.confirm_payment(:pend, external_ref => 'ch_123', as_of => '2026-04-02 00:05+00');
SELECT billing.confirm_payment(:pend, as_of => '2026-04-03');
SELECT status, external_ref, settled_at FROM billing.payments WHERE id = :pend;
SELECT balance AS credited_once FROM billing.account_balance(:usd);
SELECT billing.fail_payment(:pend);
SELECT billing.cancel_payment(:pend);

-- A failed payment credits nothing and cannot be confirmed; failing it again is a no-op.
SELECT billing.create_payment(:usd, 30, as_of => '2026-04-04') AS bad \gset
SELECT billing.fail_payment(:bad, reason => 'card declined', as_of => '2026-04-04 00:01+00');
SELECT billing.fail_payment(:bad);
SELECT billing.confirm_payment(:bad);
SELECT status, failure_reason FROM billing.payments WHERE id = :bad;

-- Cancel a pending payment and recharge another amount instead (seed 001).
SELECT billing.create_payment(:usd, 40, as_of => '2026-04-05') AS c \gset
SELECT billing.cancel_payment(:c, as_of => '2026-04-05 00:01+00');
SELECT billing.cancel_payment(:c);
SELECT billing.confirm_payment(:c);
SELECT billing.apply_recharge(:usd, 35, as_of => '2026-04-05 00:02+00') IS NOT NULL AS recharged;
SELECT balance FROM billing.account_balance(:usd);

-- Idempotency: a retry returns the first payment and credits nothing more.
SELECT billing.apply_recharge(:usd, 10, idempotency_key => 'pay-1', as_of => '2026-04-06') AS k \gset
SELECT billing.apply_recharge(:usd, 10.00, idempotency_key => 'pay-1', as_of => '2026-04-07') = :k AS replayed;
SELECT billing.apply_recharge(:usd, 11, idempotency_key => 'pay-1');
SELECT billing.apply_recharge(:usd, 10, method => 'upi', idempotency_key => 'pay-1');
SELECT count(*) AS payments_with_key FROM billing.payments WHERE id = :k;
-- Keys are scoped per operation: create_payment may use the same key.
SELECT billing.create_payment(:usd, 10, idempotency_key => 'pay-1') <> :k AS separate_scope;
SELECT balance FROM billing.account_balance(:usd);

-- New methods may be added by administrators; unknown ones are 22023.
SELECT billing.apply_recharge(:usd, 10, method => 'paypal');
INSERT INTO billing.payment_methods VALUES ('paypal', 'PayPal');
SELECT billing.apply_recharge(:usd, 10, method => 'paypal') IS NOT NULL AS paypal_ok;

-- Events, and the books: cash in = wallet credits + tax.
SELECT kind, count(*) FROM billing.events GROUP BY kind ORDER BY kind;
SELECT payload FROM billing.events WHERE kind = 'payment_succeeded' ORDER BY id LIMIT 1;
SELECT payload FROM billing.events WHERE kind = 'payment_failed';
SELECT currency, ledger_account, balance FROM billing.system_balances ORDER BY 1, 2;
SELECT currency, sum(balance) AS wallets FROM billing.accounts GROUP BY currency ORDER BY 1;
SELECT check_name, ok, detail FROM billing.verify_ledger();
