-- pgbench data: 100,000 funded INR accounts (ledger-consistent, loaded set-based) and the bare
-- SQL baseline B0: one conditional UPDATE of an "available" column plus one ledger INSERT; B3,
-- a bare charge; then W4's empty accounts and its baseline B4 (below).
\set ON_ERROR_STOP on
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS billing CASCADE;
CREATE EXTENSION billing;
SELECT billing.set_rate('INR', 'sms', 'automation', 0.01);
INSERT INTO billing.accounts (currency, balance)
SELECT 'INR', CASE WHEN g = 1 THEN 1000000000 ELSE 1000000 END FROM generate_series(1, 100000) g;
WITH t AS MATERIALIZED (SELECT id, balance, nextval('billing.transfer_ids') AS tid FROM billing.accounts)
INSERT INTO billing.ledger_entries (account_id, transfer_id, ledger_account, currency, amount, kind, source, source_id)
SELECT t.id, t.tid, leg.acct, 'INR', leg.sign * t.balance, 'recharge', 'bench', 0
  FROM t, (VALUES ('wallet', 1), ('payments_clearing', -1)) leg(acct, sign);
DROP TABLE IF EXISTS public.b0_accounts, public.b0_ledger;
CREATE TABLE public.b0_accounts (id bigint PRIMARY KEY, available numeric NOT NULL);
CREATE TABLE public.b0_ledger (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, account_id bigint NOT NULL, amount numeric NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO public.b0_accounts SELECT id, balance FROM billing.accounts;

-- B3, a bare charge: the rows record_usage writes (the account's balance, a usage row, two ledger
-- legs, the day's rollup row), with the same indexes, written by hand in one statement. Not in
-- it: the rules (triggers), the rate lookup, the dunning stage, the low-balance events.
\ir ../b3_tables.sql
INSERT INTO public.b3_accounts SELECT id, balance, 0, 0 FROM billing.accounts;

-- W4 (apply_recharge with retries): :w4_accounts more INR accounts at balance 0, ids 100001 on,
-- so each one's balance is exactly the sum of its recharges. Baseline B4: a payment table whose
-- (account_id, idempotency_key) is unique, three ledger legs and a balance UPDATE.
\if :{?w4_accounts}
\else
\set w4_accounts 10000
\endif
INSERT INTO billing.accounts (currency, balance) SELECT 'INR', 0 FROM generate_series(1, :w4_accounts);
DROP TABLE IF EXISTS public.b4_accounts, public.b4_payments, public.b4_ledger;
CREATE TABLE public.b4_accounts (id bigint PRIMARY KEY, balance numeric NOT NULL);
CREATE TABLE public.b4_payments (
    account_id bigint NOT NULL, id bigint GENERATED ALWAYS AS IDENTITY, idempotency_key text NOT NULL,
    amount numeric NOT NULL, tax numeric NOT NULL, method text NOT NULL, status text NOT NULL DEFAULT 'succeeded',
    created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (account_id, id), UNIQUE (account_id, idempotency_key));
CREATE TABLE public.b4_ledger (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, account_id bigint NOT NULL,
    payment_id bigint NOT NULL, leg text NOT NULL, amount numeric NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO public.b4_accounts SELECT id, 0 FROM billing.accounts WHERE id > 100000;
VACUUM ANALYZE;
