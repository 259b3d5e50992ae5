-- Bad input for every campaign function: the documented SQLSTATE, and nothing changed.
\i tests/regress/include/fresh.sql


SELECT billing.set_rate('INR', 'sms', 'promotional', 0.25);
SELECT billing.create_account('INR') AS a \gset
SELECT billing.apply_recharge(:a, 1000, as_of => '2026-09-01') IS NOT NULL AS recharged;
SELECT billing.create_campaign(:a, 'sms', 'promotional', 100, as_of => '2026-09-01') AS draft \gset
SELECT billing.create_campaign(:a, 'sms', 'promotional', 100, as_of => '2026-09-01') AS run \gset
SELECT billing.schedule_campaign(:run, '2026-09-02', as_of => '2026-09-01');
SELECT billing.execute_campaign(:run, '2026-09-02');

CREATE TEMP TABLE before AS
SELECT (SELECT string_agg(format('%s:%s:%s', id, status, coalesce(reservation_id, 0)), ',' ORDER BY id)
          FROM billing.campaigns) AS campaigns,
       (SELECT count(*) FROM billing.reservations) AS holds,
       (SELECT count(*) FROM billing.ledger_entries) AS entries,
       (SELECT count(*) FROM billing.events) AS events,
       (SELECT count(*) FROM billing.usage) AS usage,
       (SELECT format('%s/%s', balance, reserved) FROM billing.accounts WHERE id = 1) AS wallet;

SELECT label, pg_temp.err(format(stmt, :a, :draft, :run)) AS result
  FROM (VALUES
    ('create: NULL account',          'SELECT billing.create_campaign(NULL, ''sms'', ''promotional'', 10)'),
    ('create: unknown account',       'SELECT billing.create_campaign(999, ''sms'', ''promotional'', 10)'),
    ('create: unknown channel',       'SELECT billing.create_campaign(%1$s, ''fax'', ''promotional'', 10)'),
    ('create: no rate',               'SELECT billing.create_campaign(%1$s, ''sms'', ''transactional'', 10)'),
    ('create: NULL category',         'SELECT billing.create_campaign(%1$s, ''sms'', NULL, 10)'),
    ('create: audience 0',            'SELECT billing.create_campaign(%1$s, ''sms'', ''promotional'', 0)'),
    ('create: audience negative',     'SELECT billing.create_campaign(%1$s, ''sms'', ''promotional'', -5)'),
    ('create: audience NULL',         'SELECT billing.create_campaign(%1$s, ''sms'', ''promotional'', NULL)'),
    ('create: units 0',               'SELECT billing.create_campaign(%1$s, ''sms'', ''promotional'', 10, 0)'),
    ('create: units negative',        'SELECT billing.create_campaign(%1$s, ''sms'', ''promotional'', 10, -1)'),
    ('create: infinite as_of',        'SELECT billing.create_campaign(%1$s, ''sms'', ''promotional'', 10, as_of => ''infinity'')'),
    ('estimate: unknown',             'SELECT billing.estimate_campaign(999)'),
    ('estimate: NULL',                'SELECT billing.estimate_campaign(NULL)'),
    ('schedule: unknown',             'SELECT billing.schedule_campaign(999, now())'),
    ('schedule: NULL send_at',        'SELECT billing.schedule_campaign(%2$s, NULL)'),
    ('schedule: NULL hold',           'SELECT billing.schedule_campaign(%2$s, now(), NULL)'),
    ('schedule: running campaign',    'SELECT billing.schedule_campaign(%3$s, now())'),
    ('execute: draft',                'SELECT billing.execute_campaign(%2$s)'),
    ('execute: running',              'SELECT billing.execute_campaign(%3$s)'),
    ('execute: unknown',              'SELECT billing.execute_campaign(999)'),
    ('run_due: NULL as_of',           'SELECT billing.run_due_campaigns(NULL)'),
    ('complete: draft',               'SELECT billing.complete_campaign(%2$s)'),
    ('complete: more than planned',   'SELECT billing.complete_campaign(%3$s, 101)'),
    ('complete: negative delivered',  'SELECT billing.complete_campaign(%3$s, -1)'),
    ('complete: unknown',             'SELECT billing.complete_campaign(999)'),
    ('fail: draft',                   'SELECT billing.fail_campaign(%2$s, ''x'')'),
    ('fail: NULL reason',             'SELECT billing.fail_campaign(%3$s, NULL)'),
    ('fail: unknown',                 'SELECT billing.fail_campaign(999, ''x'')'),
    ('cancel: running',               'SELECT billing.cancel_campaign(%3$s)'),
    ('cancel: unknown',               'SELECT billing.cancel_campaign(999)'),
    ('duplicate: unknown',            'SELECT billing.duplicate_campaign(999)'),
    ('status: unknown',               'SELECT billing.campaign_status(999)'),
    ('status: NULL',                  'SELECT billing.campaign_status(NULL)'),
    ('purge: negative max_age',       'SELECT billing.purge_stale_drafts(now(), ''-1 day'')'),
    ('purge: NULL max_age',           'SELECT billing.purge_stale_drafts(now(), NULL)'),
    ('release a campaign hold',       'SELECT billing.release_reservation(1)'),
    ('capture a campaign hold',       'SELECT billing.capture_reservation(1)')
  ) AS cases(label, stmt);

SELECT b.* IS NOT DISTINCT FROM a.* AS unchanged
  FROM before b,
       (SELECT (SELECT string_agg(format('%s:%s:%s', id, status, coalesce(reservation_id, 0)), ',' ORDER BY id)
                  FROM billing.campaigns) AS campaigns,
               (SELECT count(*) FROM billing.reservations) AS holds,
               (SELECT count(*) FROM billing.ledger_entries) AS entries,
               (SELECT count(*) FROM billing.events) AS events,
               (SELECT count(*) FROM billing.usage) AS usage,
               (SELECT format('%s/%s', balance, reserved) FROM billing.accounts WHERE id = 1) AS wallet) a;
SELECT check_name, ok FROM billing.verify_ledger() WHERE NOT ok;
