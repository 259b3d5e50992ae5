-- billing 0.4.0 -> 0.5.0. Applied by ALTER EXTENSION billing UPDATE; ./run test installs 0.4.0
-- (tests/upgrade/billing--0.4.0.sql), 0.3.0, 0.2.0 and 0.1.0, updates them, and checks that the
-- catalog equals a fresh 0.5.0 and that the data and the API survive.
\echo Use "ALTER EXTENSION billing UPDATE TO '0.5.0'" to load this file. \quit

-- The one-statement holds and charges take the stages that allow outbound and the currencies'
-- default low-balance thresholds as parameters, from a copy each backend keeps (src/policy.rs),
-- instead of joining billing.dunning_stages and billing.currencies (a tenth of a hold). Every
-- statement that writes either table queues a relcache invalidation of it, which empties those
-- copies. ENABLE ALWAYS: replica mode writes them too.
CREATE FUNCTION billing.reference_changed() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'billing_reference_changed';
CREATE TRIGGER reference_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON billing.currencies
    FOR EACH STATEMENT EXECUTE FUNCTION billing.reference_changed();
CREATE TRIGGER reference_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON billing.dunning_stages
    FOR EACH STATEMENT EXECUTE FUNCTION billing.reference_changed();
ALTER TABLE billing.currencies ENABLE ALWAYS TRIGGER reference_changed;
ALTER TABLE billing.dunning_stages ENABLE ALWAYS TRIGGER reference_changed;
-- The same for billing.rates: a one-statement charge takes its rate from that copy when one
-- currency alone has a rate for the channel and category (8% of a charge).
CREATE TRIGGER reference_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON billing.rates
    FOR EACH STATEMENT EXECUTE FUNCTION billing.reference_changed();
ALTER TABLE billing.rates ENABLE ALWAYS TRIGGER reference_changed;
