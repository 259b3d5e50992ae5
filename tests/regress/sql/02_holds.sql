-- Two-phase holds: reserve, capture (whole or part), release, expire; each resolves once.
\i tests/regress/include/fresh.sql
\set VERBOSITY verbose

SELECT billing.create_account('INR') AS a \gset
SELECT billing.apply_recharge(:a, 1000, as_of => '2026-03-01') AS p \gset

-- Reserve, then capture part: the rest goes back to available.
SELECT billing.reserve_credits(:a, 300, reference => 'campaign-42') AS r1 \gset
SELECT * FROM billing.account_balance(:a);
SELECT billing.capture_reservation(:r1, 120) AS charged;
SELECT * FROM billing.account_balance(:a);
SELECT status, amount, captured, reference FROM billing.reservations WHERE id = :r1;

-- A hold resolves once.
SELECT billing.capture_reservation(:r1);
SELECT billing.release_reservation(:r1);

-- Capture everything by default; release returns the amount released.
SELECT billing.reserve_credits(:a, 80) AS r2 \gset
SELECT billing.capture_reservation(reservation_id => :r2) AS charged;
SELECT billing.reserve_credits(:a, 200) AS r3 \gset
SELECT billing.release_reservation(:r3) AS released;
SELECT billing.capture_reservation(:r3);

-- Capturing more than was held is 22023 and leaves the hold pending.
SELECT billing.reserve_credits(:a, 50) AS r4 \gset
SELECT billing.capture_reservation(:r4, 50.01);
SELECT status FROM billing.reservations WHERE id = :r4;
SELECT billing.release_reservation(:r4) AS released;

-- Holds fail up front: available 800, so 800.01 is refused with the numbers.
SELECT * FROM billing.account_balance(:a);
SELECT billing.reserve_credits(:a, 800.01);
SELECT billing.reserve_credits(:a, 800) AS r5 \gset
SELECT billing.reserve_credits(:a, 0.01);
SELECT billing.release_reservation(:r5) AS released;

-- Expiry: only pending holds whose expires_at <= as_of; an expired hold cannot be captured.
SELECT billing.reserve_credits(:a, 10, expires_at => '2026-03-01 10:00+00') AS e1 \gset
SELECT billing.reserve_credits(:a, 20, expires_at => '2026-03-01 11:00+00') AS e2 \gset
SELECT billing.reserve_credits(:a, 30) AS e3 \gset
SELECT billing.expire_reservations(as_of => '2026-03-01 09:59+00') AS expired;
SELECT billing.expire_reservations(as_of => '2026-03-01 10:00+00') AS expired;
SELECT billing.expire_reservations(as_of => '2026-03-01 10:00+00') AS expired_again;
SELECT billing.expire_reservations('2026-03-02') AS expired;
SELECT id = :e1 AS first, status, resolved_at FROM billing.reservations WHERE id IN (:e1, :e2, :e3) ORDER BY id;
SELECT billing.capture_reservation(:e1);
SELECT billing.release_reservation(:e3) AS released;
SELECT * FROM billing.account_balance(:a);

-- Idempotency: the same key and arguments return the same hold and hold nothing more.
SELECT billing.reserve_credits(:a, 25, idempotency_key => 'order-7') AS k1 \gset
SELECT billing.reserve_credits(:a, 25.00, idempotency_key => 'order-7') = :k1 AS same_hold;
SELECT reserved FROM billing.account_balance(:a);
-- ... other arguments with the same key are BL006; the key is per account.
SELECT billing.reserve_credits(:a, 26, idempotency_key => 'order-7');
SELECT billing.reserve_credits(:a, 25, reference => 'x', idempotency_key => 'order-7');
SELECT billing.create_account('INR') AS b \gset
SELECT billing.apply_recharge(:b, 100) IS NOT NULL AS recharged;
SELECT billing.reserve_credits(:b, 25, idempotency_key => 'order-7') <> :k1 AS other_account_other_hold;
-- A replay returns the first result even after the hold was captured.
SELECT billing.capture_reservation(:k1) AS charged;
SELECT billing.reserve_credits(:a, 25, idempotency_key => 'order-7') = :k1 AS replayed;
SELECT reserved FROM billing.account_balance(:a);

-- The ledger: captures move wallet to revenue; holds themselves are not movements.
SELECT kind, ledger_account, sum(amount) FROM billing.ledger_entries
 WHERE account_id = :a GROUP BY kind, ledger_account ORDER BY kind, ledger_account;
SELECT check_name, ok, detail FROM billing.verify_ledger();
