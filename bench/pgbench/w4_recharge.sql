-- W4: apply_recharge, dup_pct% of calls retries. Request n fixes its account, amount and key,
-- so a retry of n repeats exactly the same arguments (a true retry, never BL006). A fresh call
-- takes this client's next n; a retry re-sends an n of a random client's stream (one it has
-- usually already sent: also concurrent retries of one key). b4_recharge.sql draws the same way.
-- Variables (-D): cnt=0, run (unique per pgbench run), nclients, acc0, naccounts, dup_pct.
\set r random(1, 100)
\if :r <= :dup_pct and :cnt > 0
\set c random(0, :nclients - 1)
\set k random(1, :cnt)
\else
\set cnt :cnt + 1
\set c :client_id
\set k :cnt
\endif
\set n :run * 1000000000 + :c * 10000000 + :k
\set aid :acc0 + abs(hash(:n)) % :naccounts
\set amount 100 + abs(hash(:n + 1)) % 900
SELECT billing.apply_recharge(:aid, :amount, 'upi', 'w4-' || :n::text);
