-- billing: what pg_dump keeps. Extension tables are not dumped unless registered here.
--
-- Every table of per-account data is dumped whole, with the sequences behind its ids (else a
-- restored database would hand out ids that already exist). Reference tables the extension seeds
-- are dumped for the rows administrators added; a changed seeded row (say, INR's recharge_max)
-- is not dumped, because CREATE EXTENSION re-creates it on restore: re-apply such changes after
-- a restore (docs/operations in README, "Backup and restore").
--
-- Restore as a superuser with PGOPTIONS='-c session_replication_role=replica' pg_restore ...:
-- the extension's triggers exist before the data is loaded (CREATE EXTENSION makes them), and
-- their guards (a campaign starts as a draft, a resolved hold is frozen, the usage rollup) must
-- not judge or re-apply restored history. pg_restore --disable-triggers only works data-only.

SELECT pg_catalog.pg_extension_config_dump('billing.accounts', '');
SELECT pg_catalog.pg_extension_config_dump('billing.reservations', '');
SELECT pg_catalog.pg_extension_config_dump('billing.ledger_entries', '');
SELECT pg_catalog.pg_extension_config_dump('billing.payment_records', '');
SELECT pg_catalog.pg_extension_config_dump('billing.events', '');
SELECT pg_catalog.pg_extension_config_dump('billing.idempotency_keys', '');
SELECT pg_catalog.pg_extension_config_dump('billing.rates', '');
SELECT pg_catalog.pg_extension_config_dump('billing.usage', '');
SELECT pg_catalog.pg_extension_config_dump('billing.usage_daily', '');
SELECT pg_catalog.pg_extension_config_dump('billing.campaigns', '');
SELECT pg_catalog.pg_extension_config_dump('billing.invoice_records', '');

SELECT pg_catalog.pg_extension_config_dump('billing.accounts_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billing.reservations_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billing.ledger_entries_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billing.payment_records_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billing.events_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billing.usage_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billing.campaigns_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billing.invoice_records_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('billing.transfer_ids', '');

SELECT pg_catalog.pg_extension_config_dump('billing.currencies', $$WHERE code NOT IN ('INR', 'USD')$$);
SELECT pg_catalog.pg_extension_config_dump('billing.payment_methods',
    $$WHERE code NOT IN ('card', 'upi', 'netbanking', 'wallet')$$);
SELECT pg_catalog.pg_extension_config_dump('billing.channels', $$WHERE channel NOT IN ('sms', 'voice', 'whatsapp')$$);
SELECT pg_catalog.pg_extension_config_dump('billing.dunning_fees',
    $$WHERE (stage, currency) NOT IN (('archived', 'INR'), ('archived', 'USD'))$$);
