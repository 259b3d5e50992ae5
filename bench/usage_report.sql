-- Benchmark data: one account with 1,000,000 usage rows spread over a year, and 99 other
-- accounts with 10,000 rows each. Rows are inserted directly (not through record_usage): this
-- measures the report's read path, not charging. Run by ./run bench on its own database.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS billing CASCADE;
CREATE EXTENSION billing;
SELECT billing.create_account('INR') FROM generate_series(1, 100);
INSERT INTO billing.usage (account_id, channel, category, units, price, carrier_fee, occurred_at)
SELECT CASE WHEN g <= 1000000 THEN 1 ELSE 2 + (g % 99) END,
       (ARRAY['sms', 'voice', 'whatsapp'])[1 + g % 3],
       (ARRAY['promotional', 'transactional', 'business_initiated', 'user_initiated', 'free'])[1 + g % 5],
       1 + g % 4, 0.25 * (1 + g % 4), 0.05 * (1 + g % 4),
       timestamptz '2026-01-01' + (g % 525600) * interval '1 minute'
  FROM generate_series(1, 1990000) g;
ANALYZE billing.usage;
