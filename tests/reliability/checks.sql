-- Reliability checks (issue 7): the invariants run after the bank workload and after every
-- injected fault. rel.check_invariants() returns one row per check; a check fails when its
-- query finds an offender. Most checks recompute money from the business tables (payments,
-- holds, usage, campaigns, invoices) independently of billing.ledger_entries, so they
-- cross-check the ledger instead of restating it; verify_ledger()'s own checks come first.

SET client_min_messages = warning;

-- offenders(q): how many rows q returns, and the first five of them (q yields one text column).
CREATE FUNCTION rel.offenders(q text, OUT n bigint, OUT sample text)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('SELECT count(*), string_agg(x, ''; '') FILTER (WHERE rn <= 5)
                      FROM (SELECT x, row_number() OVER () AS rn FROM (%s) q(x)) s', q)
       INTO n, sample;
END;
$$;

CREATE FUNCTION rel.check_invariants()
RETURNS TABLE (check_name text, ok boolean, detail text)
LANGUAGE plpgsql AS $$
DECLARE
    c record;
    r record;
BEGIN
    FOR check_name, ok, detail IN
        SELECT 'verify_ledger.' || v.check_name, v.ok, v.detail FROM billing.verify_ledger() v
    LOOP
        RETURN NEXT;
    END LOOP;

    FOR c IN SELECT * FROM (VALUES
    -- Money in minus money charged equals what the wallet holds, per account: succeeded recharge
    -- payments (amount without tax), minus captured holds (campaign captures included), minus
    -- usage charged directly (a campaign's usage row is its capture, not counted twice), plus
    -- monthly-close debt moved out of the wallet. No ledger_entries involved.
    ('money_conserved_per_account', $q$
        WITH expected AS (
            SELECT a.id, a.currency, a.balance,
                   coalesce((SELECT sum(p.amount) FROM billing.payment_records p
                              WHERE p.account_id = a.id AND p.status = 'succeeded'
                                AND p.kind IN ('recharge', 'auto_recharge')), 0)
                 - coalesce((SELECT sum(r.captured) FROM billing.reservations r
                              WHERE r.account_id = a.id AND r.status = 'captured'), 0)
                 - coalesce((SELECT sum(u.amount) FROM billing.usage u
                              WHERE u.account_id = a.id AND u.campaign_id IS NULL), 0)
                 + coalesce((SELECT sum(i.amount) FROM billing.invoice_records i
                              WHERE i.account_id = a.id AND i.kind = 'period_close'), 0) AS expected
              FROM billing.accounts a)
        SELECT format('account %s: balance %s, payments - charges = %s', id, balance, expected)
          FROM expected WHERE balance <> expected ORDER BY id $q$),
    ('money_conserved_per_currency', $q$
        WITH t AS (
            SELECT cu.code,
                   (SELECT coalesce(sum(balance), 0) FROM billing.accounts WHERE currency = cu.code) AS wallets,
                   (SELECT coalesce(sum(amount), 0) FROM billing.payment_records
                     WHERE currency = cu.code AND status = 'succeeded' AND kind IN ('recharge', 'auto_recharge')) AS paid_in,
                   (SELECT coalesce(sum(r.captured), 0) FROM billing.reservations r JOIN billing.accounts a ON a.id = r.account_id
                     WHERE a.currency = cu.code AND r.status = 'captured') AS captured,
                   (SELECT coalesce(sum(u.amount), 0) FROM billing.usage u JOIN billing.accounts a ON a.id = u.account_id
                     WHERE a.currency = cu.code AND u.campaign_id IS NULL) AS usage,
                   (SELECT coalesce(sum(amount), 0) FROM billing.invoice_records
                     WHERE currency = cu.code AND kind = 'period_close') AS closed
              FROM billing.currencies cu)
        SELECT format('%s: wallets %s <> paid in %s - captured %s - usage %s + closed %s',
                      code, wallets, paid_in, captured, usage, closed)
          FROM t WHERE wallets <> paid_in - captured - usage + closed ORDER BY code $q$),
    -- The ledger's system accounts agree with the business tables, per currency.
    ('ledger_system_accounts_match_tables', $q$
        WITH t AS (
            SELECT cu.code,
                   (SELECT coalesce(sum(amount), 0) FROM billing.ledger_entries WHERE currency = cu.code AND ledger_account = 'tax_payable') AS l_tax,
                   (SELECT coalesce(sum(tax), 0) FROM billing.payment_records
                     WHERE currency = cu.code AND status = 'succeeded' AND kind IN ('recharge', 'auto_recharge')) AS t_tax,
                   (SELECT coalesce(sum(amount), 0) FROM billing.ledger_entries WHERE currency = cu.code AND ledger_account = 'payments_clearing') AS l_cash,
                   -(SELECT coalesce(sum(amount + tax), 0) FROM billing.payment_records
                      WHERE currency = cu.code AND status = 'succeeded') AS t_cash,
                   (SELECT coalesce(sum(amount), 0) FROM billing.ledger_entries WHERE currency = cu.code AND ledger_account = 'carrier_fees_payable') AS l_fees,
                   (SELECT coalesce(sum(u.carrier_fee), 0) FROM billing.usage u JOIN billing.accounts a ON a.id = u.account_id
                     WHERE a.currency = cu.code) AS t_fees,
                   (SELECT coalesce(sum(amount), 0) FROM billing.ledger_entries WHERE currency = cu.code AND ledger_account = 'revenue') AS l_rev,
                   (SELECT coalesce(sum(u.price), 0) FROM billing.usage u JOIN billing.accounts a ON a.id = u.account_id
                     WHERE a.currency = cu.code)
                 + (SELECT coalesce(sum(r.captured), 0) FROM billing.reservations r JOIN billing.accounts a ON a.id = r.account_id
                     WHERE a.currency = cu.code AND r.status = 'captured' AND r.campaign_id IS NULL)
                 + (SELECT coalesce(sum(amount), 0) FROM billing.invoice_records
                     WHERE currency = cu.code AND kind IN ('manual', 'recovery_fee')) AS t_rev
              FROM billing.currencies cu)
        SELECT format('%s: tax_payable %s vs payments'' tax %s; payments_clearing %s vs -(paid) %s; carrier_fees_payable %s vs usage fees %s; revenue %s vs charges %s',
                      code, l_tax, t_tax, l_cash, t_cash, l_fees, t_fees, l_rev, t_rev)
          FROM t WHERE l_tax <> t_tax OR l_cash <> t_cash OR l_fees <> t_fees OR l_rev <> t_rev ORDER BY code $q$),
    ('no_balance_below_overdraft_limit', $q$
        SELECT format('account %s: balance %s, reserved %s, overdraft_limit %s', id, balance, reserved, overdraft_limit)
          FROM billing.accounts
         WHERE balance < -overdraft_limit OR balance - reserved + overdraft_limit < 0 ORDER BY id $q$),
    ('reserved_is_sum_of_pending_holds', $q$
        SELECT format('account %s: reserved %s, pending holds %s', a.id, a.reserved, coalesce(p.s, 0))
          FROM billing.accounts a
          LEFT JOIN (SELECT account_id, sum(amount) s FROM billing.reservations WHERE status = 'pending' GROUP BY 1) p
            ON p.account_id = a.id
         WHERE a.reserved <> coalesce(p.s, 0) ORDER BY a.id $q$),
    -- A hold resolves once: a captured hold has exactly one transfer, whose wallet leg is
    -- -captured (captured <= amount); any other hold has none.
    ('holds_resolved_once', $q$
        SELECT format('reservation %s (%s, amount %s, captured %s): %s transfers, wallet %s',
                      r.id, r.status, r.amount, r.captured, coalesce(l.transfers, 0), l.wallet)
          FROM billing.reservations r
          LEFT JOIN (SELECT source_id, count(DISTINCT transfer_id) AS transfers,
                            sum(amount) FILTER (WHERE ledger_account = 'wallet') AS wallet
                       FROM billing.ledger_entries WHERE source = 'reservation' GROUP BY source_id) l
            ON l.source_id = r.id
         WHERE CASE WHEN r.status = 'captured'
                    THEN l.transfers IS DISTINCT FROM 1 OR l.wallet IS DISTINCT FROM -r.captured
                         OR r.captured > r.amount
                    ELSE l.transfers IS NOT NULL OR r.captured IS NOT NULL END
            OR (r.status = 'pending') <> (r.resolved_at IS NULL)
         ORDER BY r.id $q$),
    -- A recharge is credited once: a succeeded one has exactly one transfer crediting its amount
    -- to the wallet; a pending, failed or cancelled one has none.
    ('payments_credited_once', $q$
        SELECT format('payment %s (%s %s, amount %s): %s transfers, wallet %s',
                      p.id, p.kind, p.status, p.amount, coalesce(l.transfers, 0), l.wallet)
          FROM billing.payment_records p
          LEFT JOIN (SELECT source_id, count(DISTINCT transfer_id) AS transfers,
                            sum(amount) FILTER (WHERE ledger_account = 'wallet') AS wallet
                       FROM billing.ledger_entries WHERE source = 'payment' GROUP BY source_id) l
            ON l.source_id = p.id
         WHERE p.kind IN ('recharge', 'auto_recharge')
           AND CASE WHEN p.status = 'succeeded'
                    THEN l.transfers IS DISTINCT FROM 1 OR l.wallet IS DISTINCT FROM p.amount
                    ELSE l.transfers IS NOT NULL END
         ORDER BY p.id $q$),
    -- An idempotency key takes effect once: every successful call with the same (operation,
    -- account, key) returned the same id.
    ('idempotency_key_one_result', $q$
        SELECT format('%s account %s key %s: ids %s', op, account_id, key, string_agg(DISTINCT result_id::text, ','))
          FROM rel.op_log WHERE outcome = 'ok' AND key IS NOT NULL AND result_id IS NOT NULL
         GROUP BY op, account_id, key HAVING count(DISTINCT result_id) > 1 $q$),
    -- Every recharge payment and every hold of a bank account was returned to exactly one
    -- logged call (retries excepted), and every id a call returned exists: nothing was created
    -- behind a caller's back and nothing a caller was told about is missing.
    ('bank_payments_match_calls', $q$
        SELECT format('payment %s: %s', coalesce(p.id, l.result_id),
                      CASE WHEN p.id IS NULL THEN 'returned to a caller but missing' ELSE 'exists but no call returned it' END)
          FROM (SELECT p.id FROM billing.payment_records p JOIN rel.bank_accounts b USING (account_id)
                 WHERE p.kind = 'recharge') p
          FULL JOIN (SELECT DISTINCT result_id FROM rel.op_log
                      WHERE outcome = 'ok' AND op IN ('recharge', 'create_payment')) l ON l.result_id = p.id
         WHERE p.id IS NULL OR l.result_id IS NULL $q$),
    ('bank_holds_match_calls', $q$
        SELECT format('reservation %s: %s', coalesce(r.id, l.result_id),
                      CASE WHEN r.id IS NULL THEN 'returned to a caller but missing' ELSE 'exists but no call returned it' END)
          FROM (SELECT r.id FROM billing.reservations r JOIN rel.bank_accounts b USING (account_id)
                 WHERE r.campaign_id IS NULL) r
          FULL JOIN (SELECT DISTINCT result_id FROM rel.op_log WHERE outcome = 'ok' AND op = 'reserve') l
            ON l.result_id = r.id
         WHERE r.id IS NULL OR l.result_id IS NULL $q$),
    -- Campaigns: never partial. A scheduled campaign with a hold, or a running one, has a
    -- pending hold of its full cost; a completed one captured exactly what it charged (and has
    -- the matching usage row); any other one holds and charged nothing; a pending campaign hold
    -- belongs to a scheduled or running campaign.
    ('campaigns_never_partial', $q$
        SELECT format('campaign %s (%s, cost %s, charged %s): hold %s %s amount %s captured %s, usage %s',
                      c.id, c.status, c.cost, c.charged, c.reservation_id, r.status, r.amount, r.captured, u.s)
          FROM billing.campaigns c
          LEFT JOIN billing.reservations r ON r.account_id = c.account_id AND r.id = c.reservation_id
          LEFT JOIN (SELECT campaign_id, sum(amount) s FROM billing.usage WHERE campaign_id IS NOT NULL GROUP BY 1) u
            ON u.campaign_id = c.id
         WHERE CASE
               WHEN c.status = 'running' OR (c.status = 'scheduled' AND c.reservation_id IS NOT NULL)
                    THEN c.cost > 0 AND (r.status IS DISTINCT FROM 'pending' OR r.amount < c.cost OR r.campaign_id IS DISTINCT FROM c.id)
                         OR u.s IS NOT NULL
               WHEN c.status = 'completed'
                    THEN c.charged IS NULL OR c.charged > c.cost
                         OR (c.charged > 0 AND (r.status IS DISTINCT FROM 'captured' OR r.captured <> c.charged
                                                OR u.s IS DISTINCT FROM c.charged))
                         OR (c.charged = 0 AND (r.status IN ('pending', 'captured') OR u.s IS NOT NULL))
               ELSE r.status IN ('pending', 'captured') OR u.s IS NOT NULL OR coalesce(c.charged, 0) <> 0
               END
        UNION ALL
        SELECT format('reservation %s: pending for campaign %s, which is %s', r.id, r.campaign_id, coalesce(c.status, 'missing'))
          FROM billing.reservations r
          LEFT JOIN billing.campaigns c ON c.account_id = r.account_id AND c.id = r.campaign_id AND c.reservation_id = r.id
         WHERE r.campaign_id IS NOT NULL AND r.status = 'pending'
           AND c.status IS DISTINCT FROM 'scheduled' AND c.status IS DISTINCT FROM 'running' $q$)
    ) AS t(name, q)
    LOOP
        r := rel.offenders(c.q);
        check_name := c.name;
        ok := r.n = 0;
        detail := CASE WHEN r.n = 0 THEN 'ok'
                       ELSE r.sample || CASE WHEN r.n > 5 THEN format('; and %s more', r.n - 5) ELSE '' END END;
        RETURN NEXT;
    END LOOP;
END;
$$;

-- The failures only, one line: '' when every check passes.
CREATE FUNCTION rel.failed_checks() RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(check_name || ': ' || detail, ' | '), '')
      FROM rel.check_invariants() WHERE NOT ok;
$$;

-- What a fault must not change: the fault accounts' campaigns by status, their holds, balances
-- and reserved credits, their ledger entries and events.
CREATE FUNCTION rel.fault_state() RETURNS text LANGUAGE sql AS $$
    SELECT concat_ws(' ',
        (SELECT string_agg(status || '=' || n, ',' ORDER BY status)
           FROM (SELECT status, count(*) n FROM billing.campaigns
                  WHERE account_id IN (SELECT account_id FROM rel.fault_accounts) GROUP BY status) s),
        'holds=' || (SELECT count(*) FROM billing.reservations WHERE account_id IN (SELECT account_id FROM rel.fault_accounts)),
        'balance=' || (SELECT coalesce(sum(balance), 0) FROM billing.accounts WHERE id IN (SELECT account_id FROM rel.fault_accounts)),
        'reserved=' || (SELECT coalesce(sum(reserved), 0) FROM billing.accounts WHERE id IN (SELECT account_id FROM rel.fault_accounts)),
        'entries=' || (SELECT count(*) FROM billing.ledger_entries WHERE account_id IN (SELECT account_id FROM rel.fault_accounts)),
        'events=' || (SELECT count(*) FROM billing.events WHERE account_id IN (SELECT account_id FROM rel.fault_accounts)));
$$;

-- An account's state, for "the refused call changed nothing".
CREATE FUNCTION rel.account_state(acct bigint) RETURNS text LANGUAGE sql AS $$
    SELECT format('balance=%s reserved=%s holds=%s payments=%s entries=%s events=%s keys=%s',
        a.balance, a.reserved,
        (SELECT count(*) FROM billing.reservations WHERE account_id = acct),
        (SELECT count(*) FROM billing.payment_records WHERE account_id = acct),
        (SELECT count(*) FROM billing.ledger_entries WHERE account_id = acct),
        (SELECT count(*) FROM billing.events WHERE account_id = acct),
        (SELECT count(*) FROM billing.idempotency_keys WHERE account_id = acct))
      FROM billing.accounts a WHERE a.id = acct;
$$;
