-- Rates, SMS segments and per-message usage (seeds 001 and 003).
\i tests/regress/include/fresh.sql
\set VERBOSITY verbose

-- Segments: GSM-7 160/153 septets, extension characters count 2, anything else is UCS-2 70/67.
SELECT label, billing.sms_segments(body) AS segments, length(body) AS chars
  FROM (VALUES
    ('empty',                 ''),
    ('GSM 160',               repeat('a', 160)),
    ('GSM 161',               repeat('a', 161)),
    ('GSM 306',               repeat('a', 306)),
    ('GSM 307',               repeat('a', 307)),
    ('extension 80 x euro',   repeat('€', 80)),
    ('extension 81 x euro',   repeat('€', 81)),
    ('braces 79 + 2 a',       repeat('{', 79) || 'aa'),
    ('GSM accents',           'Ça été Ü à ñ ¿ ¡ § ' || repeat('é', 141)),
    ('accent outside GSM 70', repeat('á', 70)),
    ('accent outside GSM 71', repeat('á', 71)),
    ('one emoji in GSM text', repeat('a', 100) || '😀'),
    ('emoji 35 (70 units)',   repeat('😀', 35)),
    ('emoji 36 (72 units)',   repeat('😀', 36)),
    ('CJK 70',                repeat('你', 70)),
    ('CJK 134',               repeat('你', 134)),
    ('CJK 135',               repeat('你', 135))
  ) AS t(label, body);

-- Rates: upsert per currency/channel/category; carrier fees passed through.
SELECT billing.set_rate('USD', 'sms', 'automation', 0.0079, carrier_fee => 0.0030);
SELECT billing.set_rate('USD', 'voice', 'outbound', 0.014);
SELECT billing.set_rate('INR', 'whatsapp', 'business_initiated', 0.78);
SELECT billing.set_rate('INR', 'whatsapp', 'user_initiated', 0.35);
SELECT billing.set_rate('INR', 'whatsapp', 'free', 0);
SELECT billing.set_rate('USD', 'sms', 'automation', 0.0080, carrier_fee => 0.0030);  -- update
SELECT currency, channel, category, unit_price, carrier_fee FROM billing.rates ORDER BY 1, 2, 3;

-- Per-segment automation charges (seed 003): price and carrier fee booked apart.
SELECT billing.create_account('USD') AS us \gset
SELECT billing.apply_recharge(:us, 20, as_of => '2026-07-01') IS NOT NULL AS recharged;
SELECT billing.record_usage(:us, 'sms', 'automation', billing.sms_segments(repeat('x', 200)),
                            occurred_at => '2026-07-01 10:00+00') AS charged;
SELECT billing.record_usage(:us, 'voice', 'outbound', 2.5, occurred_at => '2026-07-01 11:00+00') AS charged;
SELECT channel, category, units, price, carrier_fee, amount FROM billing.usage ORDER BY id;
SELECT ledger_account, sum(amount) FROM billing.ledger_entries
 WHERE account_id = :us AND kind = 'usage' GROUP BY 1 ORDER BY 1;

-- WhatsApp conversations by category; free ones cost nothing but are recorded.
SELECT billing.create_account('INR') AS wa \gset
SELECT billing.apply_recharge(:wa, 100, as_of => '2026-07-01') IS NOT NULL AS recharged;
SELECT billing.record_usage(:wa, 'whatsapp', 'business_initiated', 10) AS charged;
SELECT billing.record_usage(:wa, 'whatsapp', 'user_initiated', 4) AS charged;
SELECT billing.record_usage(:wa, 'whatsapp', 'free', 25) AS charged;
SELECT category, units, amount FROM billing.usage WHERE account_id = :wa ORDER BY id;
SELECT count(*) AS free_ledger_entries FROM billing.ledger_entries e JOIN billing.usage u
    ON e.source = 'usage' AND e.source_id = u.id WHERE u.category = 'free';

-- Usage needs credits (BL001, with the numbers) and an account that may spend (BL004).
SELECT * FROM billing.account_balance(:wa);
SELECT billing.record_usage(:wa, 'whatsapp', 'business_initiated', 120);
UPDATE billing.accounts SET dunning_stage = 'outbound_blocked' WHERE id = :wa;
SELECT billing.record_usage(:wa, 'whatsapp', 'user_initiated', 1);
UPDATE billing.accounts SET dunning_stage = 'current' WHERE id = :wa;

-- Idempotent on the key: a retried webhook charges once.
SELECT billing.record_usage(:wa, 'whatsapp', 'user_initiated', 2, '2026-07-02', 'wamid.1') AS charged;
SELECT billing.record_usage(:wa, 'whatsapp', 'user_initiated', 2, '2026-07-02', 'wamid.1') AS replayed;
SELECT billing.record_usage(:wa, 'whatsapp', 'user_initiated', 3, '2026-07-02', 'wamid.1');
SELECT count(*) AS usage_rows FROM billing.usage WHERE account_id = :wa;

-- Bad input.
SELECT billing.set_rate('XYZ', 'sms', 'promotional', 1);
SELECT billing.set_rate('USD', 'fax', 'promotional', 1);
SELECT billing.set_rate('USD', 'sms', '', 1);
SELECT billing.set_rate('USD', 'sms', 'promotional', -0.01);
SELECT billing.set_rate('USD', 'sms', 'promotional', 1, carrier_fee => 'NaN');
SELECT billing.set_rate('USD', 'sms', NULL, 1);
SELECT billing.sms_segments(NULL);
SELECT billing.record_usage(:us, 'fax', 'automation', 1);
SELECT billing.record_usage(:us, 'sms', 'transactional', 1);
SELECT billing.record_usage(:us, 'sms', 'automation', 0);
SELECT billing.record_usage(:us, 'sms', 'automation', -1);
SELECT billing.record_usage(:us, 'sms', 'automation', 1.0000001);
SELECT billing.record_usage(:us, 'sms', 'automation', 1, occurred_at => NULL);
SELECT billing.record_usage(999, 'sms', 'automation', 1);
SELECT count(*) AS usage_rows FROM billing.usage;
SELECT check_name, ok FROM billing.verify_ledger() WHERE NOT ok;

-- Both ways of charging write the same thing: without a key record_usage charges in one
-- statement, with a key it takes the locking path. Two accounts alike, the same charges (a carrier
-- fee, a low-balance crossing, an auto-recharge request, a free category, one refused), then
-- every row each left, without ids and keys.
SELECT billing.set_rate('INR', 'sms', 'otp', 0.15, carrier_fee => 0.05);
SELECT billing.set_rate('INR', 'sms', 'free', 0);
SELECT billing.create_account('INR') AS p1 \gset
SELECT billing.create_account('INR') AS p2 \gset
SELECT billing.apply_recharge(id, 500, idempotency_key => 'seed') IS NOT NULL AS funded
  FROM (VALUES (:p1), (:p2)) v(id);
SELECT billing.configure_auto_recharge(id, threshold => 300, amount => 1000) FROM (VALUES (:p1), (:p2)) v(id);
SELECT a.id = :p2 AS keyed, billing.record_usage(a.id, 'sms', c.category, c.units, '2026-07-03',
                                                 CASE WHEN a.id = :p2 THEN 'k' || c.n END) AS charged
  FROM (VALUES (:p1), (:p2)) a(id),
       (VALUES (1, 'otp', 1000), (2, 'otp', 500), (3, 'free', 7), (4, 'otp', 600)) c(n, category, units)
 ORDER BY c.n, a.id;
SELECT pg_temp.err(format('SELECT billing.record_usage(%s, ''sms'', ''otp'', 100000, ''2026-07-03''%s)', id, k)) AS refused
  FROM (VALUES (:p1, ''), (:p2, ', idempotency_key => ''k5''')) v(id, k);
WITH seen AS (
    SELECT account_id, 'usage' AS what, format('%s %s %s %s %s %s', channel, category, units, price, carrier_fee, occurred_at) AS row
      FROM billing.usage WHERE account_id IN (:p1, :p2)
    UNION ALL
    SELECT account_id, 'ledger', format('%s %s %s %s %s', kind, source, ledger_account, currency, amount)
      FROM billing.ledger_entries WHERE account_id IN (:p1, :p2)
    UNION ALL
    SELECT account_id, 'event', kind || ' ' || (payload - 'payment_id')::text FROM billing.events WHERE account_id IN (:p1, :p2)
    UNION ALL
    SELECT account_id, 'payment', format('%s %s %s %s', kind, amount, tax, status) FROM billing.payments WHERE account_id IN (:p1, :p2)
    UNION ALL
    SELECT id, 'balance', format('%s %s', balance, reserved) FROM billing.accounts WHERE id IN (:p1, :p2))
SELECT what, count(*) FILTER (WHERE account_id = :p1) AS one_statement, count(*) FILTER (WHERE account_id = :p2) AS locking,
       (SELECT array_agg(row ORDER BY row) FROM seen s WHERE s.account_id = :p1 AND s.what = t.what)
         = (SELECT array_agg(row ORDER BY row) FROM seen s WHERE s.account_id = :p2 AND s.what = t.what) AS same
  FROM seen t GROUP BY what ORDER BY what;
SELECT check_name, ok FROM billing.verify_ledger() WHERE NOT ok;
