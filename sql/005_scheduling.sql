-- billing: what tick() remembers between runs.
CREATE TABLE billing.scheduler_state (
    singleton          boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_close_month   date,
    last_tick_at       timestamptz,
    close_pending      boolean NOT NULL DEFAULT false,
    dunning_after      bigint NOT NULL DEFAULT 0
);
COMMENT ON TABLE billing.scheduler_state IS
    'tick() state: the month whose start last triggered the monthly close (NULL: never), and the last tick time.';
COMMENT ON COLUMN billing.scheduler_state.close_pending IS
    'The close of the month before last_close_month is under way: each tick closes one more batch of accounts.';
COMMENT ON COLUMN billing.scheduler_state.dunning_after IS
    'Where the next tick''s dunning batch starts (account id; 0: from the first account).';
INSERT INTO billing.scheduler_state DEFAULT VALUES;
REVOKE ALL ON billing.scheduler_state FROM PUBLIC;
