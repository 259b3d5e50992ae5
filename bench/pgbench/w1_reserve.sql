\set aid random(1, 100000)
SELECT billing.reserve_credits(:aid, 0.01);
