-- B3's tables (bench/pgbench/b3_charge.sql): what record_usage writes, with the same columns and
-- indexes and no triggers. Included by the pgbench and callgrind set-ups.
DROP TABLE IF EXISTS public.b3_accounts, public.b3_usage, public.b3_ledger, public.b3_daily;
CREATE TABLE public.b3_accounts (id bigint PRIMARY KEY, balance numeric NOT NULL, reserved numeric NOT NULL,
    overdraft_limit numeric NOT NULL);
CREATE TABLE public.b3_usage (account_id bigint NOT NULL, id bigint GENERATED ALWAYS AS IDENTITY,
    channel text NOT NULL, category text NOT NULL, units numeric NOT NULL, price numeric NOT NULL,
    carrier_fee numeric NOT NULL, amount numeric GENERATED ALWAYS AS (price + carrier_fee) STORED,
    occurred_at timestamptz NOT NULL, campaign_id bigint, created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id));
CREATE INDEX ON public.b3_usage (account_id, occurred_at);
CREATE TABLE public.b3_ledger (account_id bigint NOT NULL, id bigint GENERATED ALWAYS AS IDENTITY,
    transfer_id bigint NOT NULL, ledger_account text NOT NULL, currency text NOT NULL, amount numeric NOT NULL,
    kind text NOT NULL, source text NOT NULL, source_id bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id));
CREATE INDEX ON public.b3_ledger (source, source_id);
CREATE INDEX ON public.b3_ledger (transfer_id);
CREATE TABLE public.b3_daily (account_id bigint NOT NULL, day date NOT NULL, channel text NOT NULL,
    category text NOT NULL, units numeric NOT NULL, amount numeric NOT NULL,
    PRIMARY KEY (account_id, day, channel, category));
