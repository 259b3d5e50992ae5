-- Usage reports and the six-month export (seed 001): by day, channel and category, campaign
-- usage and free conversations included; they add up to the ledger's charges.
\i tests/regress/include/fresh.sql
\set VERBOSITY verbose

SELECT billing.set_rate('INR', 'whatsapp', 'business_initiated', 0.78);
SELECT billing.set_rate('INR', 'whatsapp', 'user_initiated', 0.35);
SELECT billing.set_rate('INR', 'whatsapp', 'free', 0);
SELECT billing.set_rate('INR', 'sms', 'promotional', 0.20, carrier_fee => 0.05);
SELECT billing.create_account('INR') AS a \gset
SELECT billing.apply_recharge(:a, 5000, as_of => '2026-01-01') IS NOT NULL AS recharged;

SELECT billing.record_usage(:a, 'whatsapp', 'business_initiated', 10, '2026-03-01 10:00+00');
SELECT billing.record_usage(:a, 'whatsapp', 'business_initiated', 5, '2026-03-01 18:00+00');
SELECT billing.record_usage(:a, 'whatsapp', 'user_initiated', 4, '2026-03-01 12:00+00');
SELECT billing.record_usage(:a, 'whatsapp', 'free', 30, '2026-03-02 09:00+00');
SELECT billing.record_usage(:a, 'whatsapp', 'user_initiated', 2, '2026-09-15 09:00+00');
SELECT billing.record_usage(:a, 'whatsapp', 'user_initiated', 1, '2025-12-31 23:59+00');
-- A campaign's delivered usage is reported too.
SELECT billing.create_campaign(:a, 'sms', 'promotional', 100, as_of => '2026-03-03') AS c \gset
SELECT billing.schedule_campaign(:c, '2026-03-03', as_of => '2026-03-03');
SELECT billing.execute_campaign(:c, '2026-03-03');
SELECT billing.complete_campaign(:c, 80) AS charged;
UPDATE billing.usage SET occurred_at = '2026-03-03 08:00+00' WHERE campaign_id = :c;

SELECT * FROM billing.usage_report(:a, '2026-03-01', '2026-04-01');
SELECT * FROM billing.usage_report(:a, from_ts => '2026-03-01 12:00+00', to_ts => '2026-03-01 18:00+00');
SELECT count(*) AS rows_in_empty_range FROM billing.usage_report(:a, '2026-04-01', '2026-03-01');

-- The export: the six months before as_of, ready for COPY ... WITH CSV HEADER.
SELECT * FROM billing.usage_export(:a, as_of => '2026-07-01');
COPY (SELECT * FROM billing.usage_export(:a, '2026-10-01')) TO STDOUT WITH CSV HEADER;

-- Reports add up to the ledger's charges.
SELECT (SELECT sum(amount) FROM billing.usage_report(:a, '2000-01-01', '2100-01-01')) AS reported,
       (SELECT -sum(amount) FROM billing.ledger_entries
         WHERE account_id = :a AND ledger_account = 'wallet' AND kind IN ('usage', 'capture')) AS ledger_charges;
SELECT sum(amount) AS all_usage FROM billing.usage_report(:a, '2025-01-01', '2027-01-01');

-- The report reads whole UTC days from the daily rollup and edge days from raw rows: for any
-- range it must say exactly what an aggregate of the raw rows says.
SELECT f, t,
       (SELECT string_agg(format('%s/%s/%s/%s/%s', day, channel, category, units, amount), ';'
                          ORDER BY day, channel, category)
          FROM billing.usage_report(:a, f, t))
       IS NOT DISTINCT FROM
       (SELECT string_agg(format('%s/%s/%s/%s/%s', day, channel, category, units, amount), ';'
                          ORDER BY day, channel, category)
          FROM (SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, channel, category,
                       sum(units) AS units, sum(amount) AS amount
                  FROM billing.usage WHERE account_id = :a AND occurred_at >= f AND occurred_at < t
                 GROUP BY 1, 2, 3) raw) AS same
  FROM (VALUES ('2026-03-01 00:00+00'::timestamptz, '2026-03-04 00:00+00'::timestamptz),
               ('2026-03-01 11:00+00', '2026-03-03 09:00+00'),
               ('2026-03-01 11:00+00', '2026-03-01 19:00+00'),
               ('2026-02-28 23:00+00', '2026-03-02 10:00+00'),
               ('2025-12-31 23:59+00', '2026-09-15 09:00:00.000001+00'),
               ('2026-03-02 09:00+00', '2026-03-02 09:00+00')) v(f, t);
SELECT check_name, ok FROM billing.verify_ledger() WHERE check_name = 'usage_rollup_matches_usage';

-- The rollup follows any write, whoever makes it: a bulk insert over several UTC days (across
-- 2000-01-01, the epoch PostgreSQL counts from, in a session far from UTC), then a delete.
SET TIME ZONE 'Asia/Kolkata';
INSERT INTO billing.usage (account_id, channel, category, units, price, carrier_fee, occurred_at)
SELECT :a, 'sms', 'promotional', 1, 0.2, 0.05, t
  FROM generate_series('1999-12-30 20:00+00'::timestamptz, '2000-01-02 04:00+00', '90 minutes') t;
DELETE FROM billing.usage WHERE occurred_at < '2000-01-01 00:00+00' AND extract(minute FROM occurred_at) = 30;
SELECT day, channel, category, units, amount FROM billing.usage_daily
 WHERE account_id = :a AND day < '2001-01-01' ORDER BY day;
SELECT check_name, ok FROM billing.verify_ledger() WHERE check_name = 'usage_rollup_matches_usage';
RESET TIME ZONE;

-- Bad input.
SELECT pg_temp.err('SELECT * FROM billing.usage_report(999, ''2026-01-01'', ''2026-02-01'')');
SELECT pg_temp.err('SELECT * FROM billing.usage_report(NULL, ''2026-01-01'', ''2026-02-01'')');
SELECT pg_temp.err(format('SELECT * FROM billing.usage_report(%s, NULL, ''2026-02-01'')', :a));
SELECT pg_temp.err(format('SELECT * FROM billing.usage_report(%s, ''2026-01-01'', ''infinity'')', :a));
SELECT pg_temp.err('SELECT * FROM billing.usage_export(999)');
SELECT pg_temp.err(format('SELECT * FROM billing.usage_export(%s, NULL)', :a));
