-- billing: invoices and the monthly close (overdraft and postpaid debt moves to receivables).

CREATE TABLE billing.invoice_records (
    account_id  bigint NOT NULL REFERENCES billing.accounts (id),
    id          bigint GENERATED ALWAYS AS IDENTITY,
    kind        text NOT NULL CHECK (kind IN ('manual', 'period_close', 'recovery_fee')),
    amount      numeric NOT NULL CHECK (amount > 0),
    currency    text NOT NULL REFERENCES billing.currencies (code),
    status      text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'overdue', 'paid')),
    due_at      timestamptz NOT NULL,
    description text,
    -- The calendar month (UTC) a period_close invoice closes: at most one per account and month.
    period      date,
    created_at  timestamptz NOT NULL DEFAULT now(),
    paid_at     timestamptz,
    PRIMARY KEY (account_id, id),
    CONSTRAINT paid_iff_paid_at CHECK ((status = 'paid') = (paid_at IS NOT NULL)),
    CONSTRAINT period_iff_period_close CHECK ((kind = 'period_close') = (period IS NOT NULL))
);
COMMENT ON TABLE billing.invoice_records IS
    'Invoices: manual, period_close (the monthly close of a negative balance) and recovery_fee. Read them through billing.invoices.';
CREATE INDEX invoice_records_id ON billing.invoice_records (id);
CREATE UNIQUE INDEX invoice_records_one_close_per_month ON billing.invoice_records (account_id, period)
    WHERE kind = 'period_close';
CREATE INDEX invoice_records_unpaid ON billing.invoice_records (account_id, due_at) WHERE status <> 'paid';

CREATE VIEW billing.invoices AS
SELECT id, account_id, kind, amount, status, due_at, created_at, paid_at, currency, description, period
  FROM billing.invoice_records;
COMMENT ON VIEW billing.invoices IS 'Invoices with their status (open, overdue, paid) and due date.';

REVOKE ALL ON billing.invoice_records FROM PUBLIC;
