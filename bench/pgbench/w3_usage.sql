\set aid random(1, 100000)
SELECT billing.record_usage(:aid, 'sms', 'automation', 1);
