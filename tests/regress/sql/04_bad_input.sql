-- Bad input: every function of the money core gets its documented SQLSTATE and changes nothing.
\i tests/regress/include/fresh.sql


SELECT billing.create_account('INR') AS a \gset
SELECT billing.apply_recharge(:a, 1000, as_of => '2026-05-01') AS p \gset
SELECT billing.reserve_credits(:a, 100) AS r \gset
SELECT billing.create_payment(:a, 200, as_of => '2026-05-01') AS pend \gset

-- A snapshot of everything that could change.
CREATE TEMP TABLE before AS
SELECT (SELECT count(*) FROM billing.accounts) AS accounts,
       (SELECT count(*) FROM billing.reservations) AS holds,
       (SELECT count(*) FROM billing.payment_records) AS payments,
       (SELECT count(*) FROM billing.ledger_entries) AS entries,
       (SELECT count(*) FROM billing.events) AS events,
       (SELECT count(*) FROM billing.idempotency_keys) AS keys,
       (SELECT string_agg(format('%s/%s/%s/%s', id, balance, reserved, overdraft_limit), ',' ORDER BY id)
          FROM billing.accounts) AS wallets,
       (SELECT string_agg(status, ',' ORDER BY id) FROM billing.reservations) AS hold_states,
       (SELECT string_agg(status, ',' ORDER BY id) FROM billing.payment_records) AS payment_states;

SELECT label, pg_temp.err(format(stmt, :a, :r, :pend)) AS result
  FROM (VALUES
    ('create_account: NULL currency',       'SELECT billing.create_account(NULL)'),
    ('create_account: unknown currency',    'SELECT billing.create_account(''XYZ'')'),
    ('create_account: lowercase currency',  'SELECT billing.create_account(''inr'')'),
    ('create_account: negative overdraft',  'SELECT billing.create_account(''INR'', overdraft_limit => -1)'),
    ('create_account: NULL overdraft',      'SELECT billing.create_account(''INR'', overdraft_limit => NULL)'),
    ('create_account: NaN threshold',       'SELECT billing.create_account(''INR'', low_balance_threshold => ''NaN'')'),
    ('create_account: 7dp threshold',       'SELECT billing.create_account(''INR'', low_balance_threshold => 0.0000001)'),
    ('account_balance: NULL',               'SELECT * FROM billing.account_balance(NULL)'),
    ('account_balance: unknown',            'SELECT * FROM billing.account_balance(999)'),
    ('account_state: NULL',                 'SELECT * FROM billing.account_state(NULL)'),
    ('account_state: unknown',              'SELECT * FROM billing.account_state(999)'),
    ('account_state: infinite as_of',       'SELECT * FROM billing.account_state(%1$s, ''infinity'')'),
    ('set_overdraft_limit: NULL id',        'SELECT billing.set_overdraft_limit(NULL, 1)'),
    ('set_overdraft_limit: NULL limit',     'SELECT billing.set_overdraft_limit(%1$s, NULL)'),
    ('set_overdraft_limit: negative',       'SELECT billing.set_overdraft_limit(%1$s, -5)'),
    ('set_overdraft_limit: Infinity',       'SELECT billing.set_overdraft_limit(%1$s, ''Infinity'')'),
    ('set_overdraft_limit: 1e30',           'SELECT billing.set_overdraft_limit(%1$s, 1e30)'),
    ('set_overdraft_limit: unknown',        'SELECT billing.set_overdraft_limit(999, 5)'),
    ('set_low_balance_threshold: NULL',     'SELECT billing.set_low_balance_threshold(%1$s, NULL)'),
    ('set_low_balance_threshold: negative', 'SELECT billing.set_low_balance_threshold(%1$s, -0.01)'),
    ('set_low_balance_threshold: unknown',  'SELECT billing.set_low_balance_threshold(999, 5)'),
    ('reserve: NULL account',               'SELECT billing.reserve_credits(NULL, 1)'),
    ('reserve: NULL amount',                'SELECT billing.reserve_credits(%1$s, NULL)'),
    ('reserve: zero',                       'SELECT billing.reserve_credits(%1$s, 0)'),
    ('reserve: negative',                   'SELECT billing.reserve_credits(%1$s, -10)'),
    ('reserve: NaN',                        'SELECT billing.reserve_credits(%1$s, ''NaN'')'),
    ('reserve: Infinity',                   'SELECT billing.reserve_credits(%1$s, ''Infinity'')'),
    ('reserve: -Infinity',                  'SELECT billing.reserve_credits(%1$s, ''-Infinity'')'),
    ('reserve: 7 decimal places',           'SELECT billing.reserve_credits(%1$s, 1.0000001)'),
    ('reserve: 1e30',                       'SELECT billing.reserve_credits(%1$s, 1e30)'),
    ('reserve: unknown account',            'SELECT billing.reserve_credits(999, 1)'),
    ('reserve: more than available',        'SELECT billing.reserve_credits(%1$s, 900.000001)'),
    ('reserve: empty key',                  'SELECT billing.reserve_credits(%1$s, 1, idempotency_key => '''')'),
    ('reserve: infinite expiry',            'SELECT billing.reserve_credits(%1$s, 1, expires_at => ''infinity'')'),
    ('capture: NULL id',                    'SELECT billing.capture_reservation(NULL)'),
    ('capture: unknown id',                 'SELECT billing.capture_reservation(999)'),
    ('capture: zero',                       'SELECT billing.capture_reservation(%2$s, 0)'),
    ('capture: negative',                   'SELECT billing.capture_reservation(%2$s, -1)'),
    ('capture: NaN',                        'SELECT billing.capture_reservation(%2$s, ''NaN'')'),
    ('capture: 7 decimal places',           'SELECT billing.capture_reservation(%2$s, 0.0000001)'),
    ('capture: above held',                 'SELECT billing.capture_reservation(%2$s, 100.01)'),
    ('release: NULL id',                    'SELECT billing.release_reservation(NULL)'),
    ('release: unknown id',                 'SELECT billing.release_reservation(999)'),
    ('expire: NULL as_of',                  'SELECT billing.expire_reservations(NULL)'),
    ('expire: infinite as_of',              'SELECT billing.expire_reservations(''infinity'')'),
    ('apply_recharge: NULL account',        'SELECT billing.apply_recharge(NULL, 100)'),
    ('apply_recharge: NULL amount',         'SELECT billing.apply_recharge(%1$s, NULL)'),
    ('apply_recharge: zero',                'SELECT billing.apply_recharge(%1$s, 0)'),
    ('apply_recharge: negative',            'SELECT billing.apply_recharge(%1$s, -100)'),
    ('apply_recharge: NaN',                 'SELECT billing.apply_recharge(%1$s, ''NaN'')'),
    ('apply_recharge: Infinity',            'SELECT billing.apply_recharge(%1$s, ''Infinity'')'),
    ('apply_recharge: 7 decimal places',    'SELECT billing.apply_recharge(%1$s, 100.0000001)'),
    ('apply_recharge: 1e30',                'SELECT billing.apply_recharge(%1$s, 1e30)'),
    ('apply_recharge: below minimum',       'SELECT billing.apply_recharge(%1$s, 99)'),
    ('apply_recharge: above maximum',       'SELECT billing.apply_recharge(%1$s, 100001)'),
    ('apply_recharge: unknown method',      'SELECT billing.apply_recharge(%1$s, 100, ''cheque'')'),
    ('apply_recharge: NULL method',         'SELECT billing.apply_recharge(%1$s, 100, NULL)'),
    ('apply_recharge: NULL as_of',          'SELECT billing.apply_recharge(%1$s, 100, as_of => NULL)'),
    ('apply_recharge: unknown account',     'SELECT billing.apply_recharge(999, 100)'),
    ('create_payment: zero',                'SELECT billing.create_payment(%1$s, 0)'),
    ('create_payment: out of bounds',       'SELECT billing.create_payment(%1$s, 100000.01)'),
    ('create_payment: unknown account',     'SELECT billing.create_payment(999, 100)'),
    ('confirm_payment: NULL id',            'SELECT billing.confirm_payment(NULL)'),
    ('confirm_payment: unknown id',         'SELECT billing.confirm_payment(999)'),
    ('confirm_payment: NULL as_of',         'SELECT billing.confirm_payment(%3$s, as_of => NULL)'),
    ('fail_payment: unknown id',            'SELECT billing.fail_payment(999)'),
    ('fail_payment: succeeded payment',     'SELECT billing.fail_payment(1)'),
    ('cancel_payment: unknown id',          'SELECT billing.cancel_payment(999)'),
    ('cancel_payment: succeeded payment',   'SELECT billing.cancel_payment(1)')
  ) AS cases(label, stmt);

-- Nothing changed.
SELECT b.* IS NOT DISTINCT FROM a.* AS unchanged
  FROM before b,
       (SELECT (SELECT count(*) FROM billing.accounts) AS accounts,
               (SELECT count(*) FROM billing.reservations) AS holds,
               (SELECT count(*) FROM billing.payment_records) AS payments,
               (SELECT count(*) FROM billing.ledger_entries) AS entries,
               (SELECT count(*) FROM billing.events) AS events,
               (SELECT count(*) FROM billing.idempotency_keys) AS keys,
               (SELECT string_agg(format('%s/%s/%s/%s', id, balance, reserved, overdraft_limit), ',' ORDER BY id)
                  FROM billing.accounts) AS wallets,
               (SELECT string_agg(status, ',' ORDER BY id) FROM billing.reservations) AS hold_states,
               (SELECT string_agg(status, ',' ORDER BY id) FROM billing.payment_records) AS payment_states) a;
SELECT check_name, ok FROM billing.verify_ledger();
