\set aid random(1, 100000)
WITH u AS (UPDATE public.b0_accounts SET available = available - 0.01 WHERE id = :aid AND available >= 0.01 RETURNING id)
INSERT INTO public.b0_ledger (account_id, amount) SELECT id, -0.01 FROM u;
