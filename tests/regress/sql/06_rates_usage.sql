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
