// #[pg_test]s: the API called through SQL inside a real PostgreSQL, each test in its own
// transaction (rolled back). Included into `mod tests` by lib.rs.

use pgrx::prelude::*;

/// The SQLSTATE a statement raises ('00000' when it succeeds). pgrx's `error = "..."`
/// compares messages only; this sees the code the caller sees.
fn sqlstate_of(stmt: &str) -> String {
    Spi::run(
        "CREATE OR REPLACE FUNCTION pg_temp.sqlstate_of(stmt text) RETURNS text
         LANGUAGE plpgsql AS $$
         BEGIN EXECUTE stmt; RETURN '00000';
         EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE; END $$",
    )
    .unwrap();
    Spi::get_one_with_args::<String>("SELECT pg_temp.sqlstate_of($1)", &[stmt.into()])
        .unwrap()
        .unwrap()
}

fn new_account(currency: &str, recharge: i32) -> i64 {
    let id = Spi::get_one_with_args::<i64>("SELECT billing.create_account($1)", &[currency.into()])
        .unwrap()
        .unwrap();
    if recharge > 0 {
        Spi::get_one_with_args::<i64>(
            "SELECT billing.apply_recharge($1, $2::numeric)",
            &[id.into(), recharge.into()],
        )
        .unwrap();
    }
    id
}

fn text(sql: &str) -> String {
    Spi::get_one::<String>(sql).unwrap().unwrap_or_default()
}

#[pg_test]
fn custom_sqlstates_reach_the_caller() {
    let a = new_account("INR", 100);
    assert_eq!(sqlstate_of(&format!("SELECT billing.reserve_credits({a}, 100.01)")), "BL001");
    assert_eq!(sqlstate_of(&format!("SELECT billing.apply_recharge({a}, 5)")), "BL002");
    assert_eq!(sqlstate_of(&format!("SELECT billing.reserve_credits({a}, 'NaN')")), "22023");
    assert_eq!(sqlstate_of("SELECT billing.reserve_credits(-1, 1)"), "P0002");
    assert_eq!(sqlstate_of("SELECT * FROM billing.account_balance(-1)"), "P0002");
    assert_eq!(sqlstate_of(&format!("SELECT billing.reserve_credits({a}, 100)")), "00000");
}

#[pg_test]
fn a_recharge_books_gst_and_moves_the_wallet_cache_with_its_entries() {
    let a = new_account("INR", 0);
    Spi::run(&format!("SELECT billing.apply_recharge({a}, 1000)")).unwrap();
    assert_eq!(
        text(&format!(
            "SELECT string_agg(ledger_account || '=' || amount, ' ' ORDER BY ledger_account)
               FROM billing.ledger_entries WHERE account_id = {a}"
        )),
        "payments_clearing=-1180.00 tax_payable=180.00 wallet=1000"
    );
    assert_eq!(text(&format!("SELECT balance::text FROM billing.accounts WHERE id = {a}")), "1000");
    assert_eq!(text(&format!("SELECT total::text FROM billing.payments WHERE account_id = {a}")), "1180.00");
}

#[pg_test]
fn a_partial_capture_charges_part_and_frees_the_whole_hold() {
    let a = new_account("USD", 100);
    let r = Spi::get_one::<i64>(&format!("SELECT billing.reserve_credits({a}, 30)")).unwrap().unwrap();
    let charged = text(&format!("SELECT billing.capture_reservation({r}, 12.5)::text"));
    assert_eq!(charged, "12.5");
    assert_eq!(
        text(&format!(
            "SELECT format('%s/%s/%s', balance, reserved, available) FROM billing.account_balance({a})"
        )),
        "87.5/0/87.5"
    );
    assert_eq!(sqlstate_of(&format!("SELECT billing.release_reservation({r})")), "BL003");
}

#[pg_test]
fn low_balance_fires_once_per_downward_crossing() {
    let a = new_account("INR", 500);
    for amount in [350, 60, 10] {
        Spi::run(&format!("SELECT billing.reserve_credits({a}, {amount})")).unwrap();
    }
    let events = |a: i64| {
        Spi::get_one::<i64>(&format!(
            "SELECT count(*) FROM billing.events WHERE account_id = {a} AND kind = 'low_balance'"
        ))
        .unwrap()
        .unwrap()
    };
    assert_eq!(events(a), 1);
    Spi::run(&format!("SELECT billing.apply_recharge({a}, 100)")).unwrap();
    Spi::run(&format!("SELECT billing.reserve_credits({a}, 100)")).unwrap();
    assert_eq!(events(a), 2);
}

#[pg_test]
fn an_idempotent_retry_replays_and_a_conflicting_one_is_refused() {
    let a = new_account("INR", 0);
    let first = Spi::get_one::<i64>(&format!(
        "SELECT billing.apply_recharge({a}, 200, idempotency_key => 'r-1')"
    ))
    .unwrap();
    let again = Spi::get_one::<i64>(&format!(
        "SELECT billing.apply_recharge({a}, 200.00, idempotency_key => 'r-1', as_of => now() + interval '1 day')"
    ))
    .unwrap();
    assert_eq!(first, again);
    assert_eq!(text(&format!("SELECT balance::text FROM billing.accounts WHERE id = {a}")), "200");
    assert_eq!(
        sqlstate_of(&format!("SELECT billing.apply_recharge({a}, 300, idempotency_key => 'r-1')")),
        "BL006"
    );
}

#[pg_test]
fn spending_is_refused_while_outbound_is_blocked() {
    let a = new_account("INR", 500);
    Spi::run(&format!("UPDATE billing.accounts SET dunning_stage = 'outbound_blocked' WHERE id = {a}"))
        .unwrap();
    assert_eq!(sqlstate_of(&format!("SELECT billing.reserve_credits({a}, 1)")), "BL004");
    // Money may still come in, so the customer can pay their way back.
    assert_eq!(sqlstate_of(&format!("SELECT billing.apply_recharge({a}, 100)")), "00000");
    Spi::run(&format!("UPDATE billing.accounts SET dunning_stage = 'deleted' WHERE id = {a}")).unwrap();
    assert_eq!(sqlstate_of(&format!("SELECT billing.apply_recharge({a}, 100)")), "BL004");
}

#[pg_test]
fn every_invariant_holds_after_a_mixed_workload() {
    let a = new_account("INR", 1000);
    let b = new_account("USD", 50);
    Spi::run(&format!(
        "SELECT billing.capture_reservation(billing.reserve_credits({a}, 100), 60);
         SELECT billing.release_reservation(billing.reserve_credits({b}, 20));
         SELECT billing.reserve_credits({a}, 10, expires_at => now() - interval '1 minute');
         SELECT billing.expire_reservations();
         SELECT billing.confirm_payment(billing.create_payment({b}, 10));
         SELECT billing.cancel_payment(billing.create_payment({b}, 10));"
    ))
    .unwrap();
    let failing = text("SELECT coalesce(string_agg(check_name, ','), '') FROM billing.verify_ledger() WHERE NOT ok");
    assert_eq!(failing, "");
}

#[pg_test]
fn a_campaign_sends_in_full_or_not_at_all() {
    let a = new_account("INR", 100);
    Spi::run("SELECT billing.set_rate('INR', 'sms', 'promotional', 0.25)").unwrap();
    let campaign = |audience: i32| {
        Spi::get_one::<i64>(&format!(
            "SELECT billing.create_campaign({a}, 'sms', 'promotional', {audience})"
        ))
        .unwrap()
        .unwrap()
    };
    let (c1, c2) = (campaign(240), campaign(240)); // 60.00 each, 100 available
    for c in [c1, c2] {
        assert_eq!(text(&format!("SELECT billing.schedule_campaign({c}, now())")), "scheduled");
    }
    assert_eq!(text(&format!("SELECT billing.execute_campaign({c1})")), "running");
    assert_eq!(text(&format!("SELECT billing.execute_campaign({c2})")), "failed_low_balance");
    // Nothing of the second campaign was held or charged.
    assert_eq!(
        text(&format!("SELECT format('%s/%s', balance, reserved) FROM billing.accounts WHERE id = {a}")),
        "100/60.00"
    );
    assert_eq!(text(&format!("SELECT billing.complete_campaign({c1}, 100)::text")), "25.00");
    assert_eq!(sqlstate_of(&format!("SELECT billing.execute_campaign({c2})")), "BL003");
}

#[pg_test]
fn the_database_refuses_a_running_campaign_without_its_hold() {
    let a = new_account("INR", 100);
    Spi::run("SELECT billing.set_rate('INR', 'sms', 'promotional', 0.25)").unwrap();
    let c = Spi::get_one::<i64>(&format!("SELECT billing.create_campaign({a}, 'sms', 'promotional', 40)"))
        .unwrap()
        .unwrap();
    Spi::run(&format!("SELECT billing.schedule_campaign({c}, now())")).unwrap();
    // Scheduled without a hold: forcing it to running by hand is refused.
    assert_eq!(sqlstate_of(&format!("UPDATE billing.campaigns SET status = 'running' WHERE id = {c}")), "23514");
    // Running properly, its hold cannot be released behind its back.
    Spi::run(&format!("SELECT billing.execute_campaign({c})")).unwrap();
    assert_eq!(
        sqlstate_of(&format!(
            "UPDATE billing.reservations SET status = 'released', resolved_at = now() WHERE campaign_id = {c}"
        )),
        "23514"
    );
}

#[pg_test]
fn sms_segments_counts_like_the_contract() {
    let seg = |body: &str| {
        Spi::get_one_with_args::<i32>("SELECT billing.sms_segments($1)", &[body.into()]).unwrap().unwrap()
    };
    assert_eq!(seg(&"a".repeat(160)), 1);
    assert_eq!(seg(&"a".repeat(161)), 2);
    assert_eq!(seg(&"€".repeat(81)), 2);
    assert_eq!(seg(&"😀".repeat(36)), 2);
}

#[pg_test]
fn auto_recharge_is_requested_once_and_stops_after_a_decline() {
    let a = new_account("INR", 500);
    Spi::run("SELECT billing.set_rate('INR', 'sms', 'transactional', 1)").unwrap();
    Spi::run(&format!("SELECT billing.configure_auto_recharge({a}, 200, 1000)")).unwrap();
    let pending = || {
        Spi::get_one::<i64>(&format!(
            "SELECT count(*) FROM billing.payments WHERE account_id = {a} AND kind = 'auto_recharge' AND status = 'pending'"
        ))
        .unwrap()
        .unwrap()
    };
    for units in [350, 10, 10] {
        Spi::run(&format!("SELECT billing.record_usage({a}, 'sms', 'transactional', {units})")).unwrap();
    }
    assert_eq!(pending(), 1);
    Spi::run(&format!(
        "SELECT billing.fail_payment(id) FROM billing.payments WHERE account_id = {a} AND kind = 'auto_recharge'"
    ))
    .unwrap();
    assert_eq!(text(&format!("SELECT auto_recharge FROM billing.account_state({a})")), "suspended");
    Spi::run(&format!("SELECT billing.record_usage({a}, 'sms', 'transactional', 1)")).unwrap();
    assert_eq!(pending(), 0);
}

#[pg_test]
fn the_monthly_close_moves_debt_to_receivables_once() {
    let a = Spi::get_one::<i64>("SELECT billing.create_account('USD', overdraft_limit => 100)")
        .unwrap()
        .unwrap();
    Spi::run(&format!(
        "SELECT billing.capture_reservation(billing.reserve_credits({a}, 42.5))"
    ))
    .unwrap();
    let close = || {
        Spi::get_one::<i32>("SELECT billing.close_billing_period('2026-10-31 12:00+00')")
            .unwrap()
            .unwrap()
    };
    assert_eq!(close(), 1);
    assert_eq!(close(), 0);
    assert_eq!(text(&format!("SELECT balance::text FROM billing.accounts WHERE id = {a}")), "0.0");
    assert_eq!(
        text(&format!(
            "SELECT sum(amount)::text FROM billing.ledger_entries WHERE account_id = {a} AND ledger_account = 'receivables'"
        )),
        "-42.5"
    );
}
