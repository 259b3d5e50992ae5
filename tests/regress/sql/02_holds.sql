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

-- Both ways of holding leave the same thing: without a key reserve_credits holds in one
-- statement, with a key it takes the locking path. Two accounts alike, the same holds (down
-- through the auto-recharge and the low-balance thresholds, one refused), then every row each left.
SELECT billing.create_account('INR') AS h1 \gset
SELECT billing.create_account('INR') AS h2 \gset
SELECT billing.apply_recharge(id, 500, idempotency_key => 'seed') IS NOT NULL AS funded FROM (VALUES (:h1), (:h2)) v(id);
SELECT billing.configure_auto_recharge(id, threshold => 300, amount => 1000) FROM (VALUES (:h1), (:h2)) v(id);
SELECT a.id = :h2 AS keyed, billing.reserve_credits(a.id, c.amount, reference => 'r' || c.n,
                                                    idempotency_key => CASE WHEN a.id = :h2 THEN 'k' || c.n END) IS NOT NULL AS held
  FROM (VALUES (:h1), (:h2)) a(id), (VALUES (1, 150), (2, 100), (3, 170)) c(n, amount)
 ORDER BY c.n, a.id;
SELECT pg_temp.err(format('SELECT billing.reserve_credits(%s, 1000%s)', id, k)) AS refused
  FROM (VALUES (:h1, ''), (:h2, ', idempotency_key => ''k4''')) v(id, k);
WITH seen AS (
    SELECT account_id, 'hold' AS what, format('%s %s %s', amount, status, reference) AS row
      FROM billing.reservations WHERE account_id IN (:h1, :h2)
    UNION ALL
    SELECT account_id, 'event', kind || ' ' || (payload - 'payment_id')::text FROM billing.events WHERE account_id IN (:h1, :h2)
    UNION ALL
    SELECT account_id, 'payment', format('%s %s %s %s', kind, amount, tax, status) FROM billing.payments WHERE account_id IN (:h1, :h2)
    UNION ALL
    SELECT id, 'balance', format('%s %s', balance, reserved) FROM billing.accounts WHERE id IN (:h1, :h2))
SELECT what, count(*) FILTER (WHERE account_id = :h1) AS one_statement, count(*) FILTER (WHERE account_id = :h2) AS locking,
       (SELECT array_agg(row ORDER BY row) FROM seen s WHERE s.account_id = :h1 AND s.what = t.what)
         = (SELECT array_agg(row ORDER BY row) FROM seen s WHERE s.account_id = :h2 AND s.what = t.what) AS same
  FROM seen t GROUP BY what ORDER BY what;
SELECT check_name, ok FROM billing.verify_ledger() WHERE NOT ok;
