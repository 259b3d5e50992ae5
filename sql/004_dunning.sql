-- billing: the dunning ladder. Days count from the due date of the account's oldest unpaid
-- invoice; the policy is a table administrators can edit.

CREATE TABLE billing.dunning_policy (
    stage     text PRIMARY KEY REFERENCES billing.dunning_stages (stage),
    day       integer NOT NULL UNIQUE CHECK (day >= 0),
    reminders text[] NOT NULL DEFAULT '{}' CHECK (reminders <@ ARRAY['email', 'sms']),
    event     text
);
COMMENT ON TABLE billing.dunning_policy IS
    'The ladder: at day N after the oldest unpaid due date the account reaches stage S; reminders are dunning_reminder events per channel; event is recorded on reaching the stage. What each stage allows is in billing.dunning_stages.';
INSERT INTO billing.dunning_policy (stage, day, reminders, event) VALUES
    ('overdue',           0, '{email}',     NULL),
    ('reminded',          7, '{sms,email}', NULL),
    ('outbound_blocked', 15, '{}',          'service_restricted'),
    ('suspended',        30, '{}',          'service_suspended'),
    ('archived',         60, '{}',          'account_archived'),
    ('deleted',          90, '{}',          'account_deleted');

CREATE TABLE billing.dunning_fees (
    stage    text NOT NULL REFERENCES billing.dunning_policy (stage),
    currency text NOT NULL REFERENCES billing.currencies (code),
    amount   numeric NOT NULL CHECK (amount > 0),
    PRIMARY KEY (stage, currency)
);
COMMENT ON TABLE billing.dunning_fees IS
    'One-time fees invoiced (kind recovery_fee) when an account reaches or passes a stage, once per dunning episode; never a debit of the prepaid balance.';
INSERT INTO billing.dunning_fees VALUES ('archived', 'INR', 500), ('archived', 'USD', 10);

ALTER TABLE billing.accounts
    ADD COLUMN dunning_since timestamptz,
    ADD COLUMN dunning_fees_charged text[] NOT NULL DEFAULT '{}';
COMMENT ON COLUMN billing.accounts.dunning_since IS 'When the current dunning episode began (NULL when current).';
COMMENT ON COLUMN billing.accounts.dunning_fees_charged IS 'Stages whose one-time fee this episode has already invoiced.';

ALTER TABLE billing.payment_records ADD COLUMN invoice_id bigint;
CREATE UNIQUE INDEX payment_records_one_per_invoice ON billing.payment_records (account_id, invoice_id)
    WHERE invoice_id IS NOT NULL AND status = 'succeeded';

REVOKE ALL ON billing.dunning_policy, billing.dunning_fees FROM PUBLIC;
