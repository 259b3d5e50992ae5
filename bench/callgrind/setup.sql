-- callgrind data: 2,000 funded INR accounts (ledger-consistent, set-based) and the B0 and B3 tables.
SET client_min_messages = warning;
CREATE EXTENSION billing;
SELECT billing.set_rate('INR', 'sms', 'automation', 0.01);
INSERT INTO billing.accounts (currency, balance) SELECT 'INR', 1000000 FROM generate_series(1, 2000) g;
WITH t AS MATERIALIZED (SELECT id, balance, nextval('billing.transfer_ids') AS tid FROM billing.accounts)
INSERT INTO billing.ledger_entries (account_id, transfer_id, ledger_account, currency, amount, kind, source, source_id)
SELECT t.id, t.tid, leg.acct, 'INR', leg.sign * t.balance, 'recharge', 'bench', 0
  FROM t, (VALUES ('wallet', 1), ('payments_clearing', -1)) leg(acct, sign);
CREATE TABLE public.b0_accounts (id bigint PRIMARY KEY, available numeric NOT NULL);
CREATE TABLE public.b0_ledger (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, account_id bigint NOT NULL, amount numeric NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO public.b0_accounts SELECT id, balance FROM billing.accounts;
\ir ../b3_tables.sql
INSERT INTO public.b3_accounts SELECT id, balance, 0, 0 FROM billing.accounts;
VACUUM ANALYZE;
