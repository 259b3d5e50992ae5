-- billing 0.3.0 -> 0.4.0. Applied by ALTER EXTENSION billing UPDATE; ./run test installs 0.3.0
-- (tests/upgrade/billing--0.3.0.sql), 0.2.0 and 0.1.0, updates them, and checks that the catalog
-- equals a fresh 0.4.0 and that the data and the API survive.
\echo Use "ALTER EXTENSION billing UPDATE TO '0.4.0'" to load this file. \quit

-- The spending limit moves from the last CHECK of billing.accounts into its compiled row
-- trigger (same rule, same name in the 23514 message): PostgreSQL parsed and planned the CHECK
-- in every statement that wrote an account, 8% of a hold. The trigger fires in replica mode too.
ALTER TABLE billing.accounts DROP CONSTRAINT available_not_negative;
ALTER TABLE billing.accounts ENABLE ALWAYS TRIGGER row_invariants;

-- The foreign key of a hold to its account is checked by the hold's compiled row trigger (one
-- probe of the account's primary key; the same 23503 and constraint name), not by an SPI query
-- and an after-trigger event per row. Accounts are never deleted, so no lock is needed.
ALTER TABLE billing.reservations DROP CONSTRAINT reservations_account_id_fkey;

-- The campaign guard's look-ups always use their key index: a generic plan made while
-- billing.reservations was empty was a sequential scan, quadratic in a large run_due_campaigns.
ALTER FUNCTION billing.guard_campaign() SET enable_seqscan = off;

-- The partial index of pending holds per account goes: only verify_ledger read it, and every
-- hold paid for it.
DROP INDEX billing.reservations_pending;
