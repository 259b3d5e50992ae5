//! Auto-recharge: when `available` drops below the configured threshold, one pending payment of
//! kind `auto_recharge` is created in the same transaction as the spend, for the application to
//! charge the saved method. A failed one suspends auto-recharge until it is configured again:
//! a declined top-up is never retried by itself (peers retried declined cards for days).

use crate::accounts::{lock, Account};
use crate::boundary::{Args, Ret};
use crate::db::{exec, one, with_spi};
use crate::error::Result;
use crate::events::{emit, num};
use crate::money::{self, Money, Sign};
use crate::payments;
use crate::sql_function;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use rust_decimal::Decimal;
use serde_json::json;

/// The request rule: enabled, below the threshold, and no request outstanding.
pub fn should_request(
    state: &str,
    threshold: Option<Decimal>,
    available: Decimal,
    pending: bool,
) -> bool {
    state == "enabled" && threshold.is_some_and(|t| available < t) && !pending
}

const PENDING: &str = "
    SELECT EXISTS (SELECT 1 FROM billing.payment_records
                    WHERE account_id = $1 AND kind = 'auto_recharge' AND status = 'pending')";

/// Requests an auto-recharge if the rule says so. Called under the account lock after any
/// change that lowers `available` (`available` is the new value). Never fails the spend that
/// triggered it: if the configured amount no longer fits the currency's bounds, or the account
/// may not take payments, no request is made.
pub fn maybe_request(
    client: &mut SpiClient<'_>,
    acct: &Account,
    available: Decimal,
    at: TimestampWithTimeZone,
) -> Result<()> {
    if !should_request(
        &acct.auto_recharge,
        acct.auto_recharge_threshold,
        available,
        false,
    ) {
        return Ok(());
    }
    if one::<bool>(exec(client, PENDING, &[acct.id.into()])?)? == Some(true) {
        return Ok(());
    }
    let (Some(amount), Some(method)) = (
        acct.auto_recharge_amount,
        acct.auto_recharge_method.as_deref(),
    ) else {
        return Ok(());
    };
    let payable = acct.check_recharge(amount);
    if payable.is_err() || !acct.may_recharge {
        return Ok(());
    }
    let id = payments::new_recharge(client, acct, "auto_recharge", amount, method, false, at)?;
    let tax = money::tax(amount, acct.tax_rate, acct.minor_units);
    let payload = json!({
        "payment_id": id,
        "amount": num(amount),
        "tax": num(tax),
        "total": num(amount + tax),
        "method": method,
        "available": num(available),
        "threshold": acct.auto_recharge_threshold.map(num),
    });
    emit(client, acct.id, "auto_recharge_requested", payload, at)
}

const SUSPEND: &str = "
    UPDATE billing.accounts SET auto_recharge = 'suspended'
     WHERE id = $1 AND auto_recharge = 'enabled' RETURNING true";

/// A failed auto-recharge payment suspends auto-recharge (event `auto_recharge_suspended`).
pub fn suspend(
    client: &mut SpiClient<'_>,
    account_id: i64,
    payment_id: i64,
    at: TimestampWithTimeZone,
) -> Result<()> {
    if one::<bool>(exec(client, SUSPEND, &[account_id.into()])?)? == Some(true) {
        emit(
            client,
            account_id,
            "auto_recharge_suspended",
            json!({ "payment_id": payment_id }),
            at,
        )?;
    }
    Ok(())
}

const CONFIGURE: &str = "
    UPDATE billing.accounts
       SET auto_recharge = 'enabled', auto_recharge_threshold = $2, auto_recharge_amount = $3,
           auto_recharge_method = $4
     WHERE id = $1";

/// `billing.configure_auto_recharge(account_id, threshold, amount, method DEFAULT 'card') → void`
/// Locks the account; sets `auto_recharge` to `enabled` (also after a suspension). BL002 when
/// `amount` is outside the currency's recharge bounds, 22023 for a malformed threshold or amount
/// or an unknown method, P0002 for an unknown account. If `available` is already below the
/// threshold, the request is made at once (one pending `auto_recharge` payment and an
/// `auto_recharge_requested` event, unless one is already pending). Idempotent.
fn configure_auto_recharge(a: &Args) -> Result<Ret> {
    let account_id = a.id(0, "account_id")?;
    let threshold = a.amount(1, "threshold", Sign::NonNegative)?;
    let amount = a.amount(2, "amount", Sign::Positive)?;
    let method = a.text(3, "method")?;
    with_spi(|c| {
        payments::check_method(c, &method)?;
        let mut acct = lock(c, account_id)?;
        acct.check_recharge(amount)?;
        let args = [
            account_id.into(),
            Money(threshold).into(),
            Money(amount).into(),
            method.as_str().into(),
        ];
        exec(c, CONFIGURE, &args)?;
        acct.auto_recharge = "enabled".into();
        acct.auto_recharge_threshold = Some(threshold);
        acct.auto_recharge_amount = Some(amount);
        acct.auto_recharge_method = Some(method.clone());
        maybe_request(c, &acct, acct.available(), crate::accounts::now())
    })?;
    Ok(Ret::Null)
}
sql_function!(
    billing_configure_auto_recharge,
    pg_finfo_billing_configure_auto_recharge,
    configure_auto_recharge
);

const DISABLE: &str = "UPDATE billing.accounts SET auto_recharge = 'disabled' WHERE id = $1";

/// `billing.disable_auto_recharge(account_id) → void`
/// Locks the account; sets `auto_recharge` to `disabled` (settings kept). A request already
/// pending stays pending: the application may still confirm or cancel it. P0002 for an unknown
/// account. Idempotent.
fn disable_auto_recharge(a: &Args) -> Result<Ret> {
    let account_id = a.id(0, "account_id")?;
    with_spi(|c| {
        lock(c, account_id)?;
        exec(c, DISABLE, &[account_id.into()])?;
        Ok(())
    })?;
    Ok(Ret::Null)
}
sql_function!(
    billing_disable_auto_recharge,
    pg_finfo_billing_disable_auto_recharge,
    disable_auto_recharge
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::dec;

    #[test]
    fn requests_only_when_enabled_below_threshold_and_none_pending() {
        let t = Some(dec("100"));
        assert!(should_request("enabled", t, dec("99.99"), false));
        assert!(!should_request("enabled", t, dec("100"), false));
        assert!(!should_request("enabled", t, dec("10"), true));
        assert!(!should_request("suspended", t, dec("10"), false));
        assert!(!should_request("disabled", t, dec("10"), false));
        assert!(!should_request("enabled", None, dec("10"), false));
    }
}
