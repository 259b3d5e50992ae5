-- billing: what tick() remembers between runs.
CREATE TABLE billing.scheduler_state (
    singleton          boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_close_month   date,
    last_tick_at       timestamptz
);
COMMENT ON TABLE billing.scheduler_state IS
    'tick() state: the month whose start last triggered the monthly close (NULL: never), and the last tick time.';
INSERT INTO billing.scheduler_state DEFAULT VALUES;
REVOKE ALL ON billing.scheduler_state FROM PUBLIC;
