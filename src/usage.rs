//! Per-message charging outside campaigns (automations, WhatsApp conversations): the hot path
//! of usage billing.

use crate::accounts::{lock, now};
use crate::boundary::{money, Args, Ret};
use crate::db::{insert_id, with_spi};
use crate::error::{BillingError, Result};
use crate::events::{self, num};
use crate::idempotency::{check_key, remember, replay, Key};
use crate::ledger::{self, Transfer};
use crate::money::{Money, Sign};
use crate::rates::{self, charge, charge_legs};
use crate::sql_function;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use rust_decimal::Decimal;
use serde_json::{json, Value};

const INSERT_USAGE: &str = "
    INSERT INTO billing.usage (account_id, channel, category, units, price, carrier_fee, occurred_at, campaign_id)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
    RETURNING id";

/// Records charged units (the usage row behind reports). Returns its id.
#[allow(clippy::too_many_arguments)]
pub fn insert(
    client: &mut SpiClient<'_>,
    account_id: i64,
    channel: &str,
    category: &str,
    units: Decimal,
    (price, fee): (Decimal, Decimal),
    occurred_at: TimestampWithTimeZone,
    campaign_id: Option<i64>,
) -> Result<i64> {
    insert_id(
        client,
        INSERT_USAGE,
        &[
            account_id.into(),
            channel.into(),
            category.into(),
            Money(units).into(),
            Money(price).into(),
            Money(fee).into(),
            occurred_at.into(),
            campaign_id.into(),
        ],
    )
}

fn replayed_amount(result: &Value) -> Result<Decimal> {
    result
        .get("amount")
        .map(|v| v.to_string())
        .and_then(|s| Decimal::from_str_exact(&s).ok())
        .ok_or_else(|| BillingError::Internal(format!("stored result has no amount: {result}")))
}

/// `billing.record_usage(account_id, channel, category, units, occurred_at DEFAULT now(),
/// idempotency_key DEFAULT NULL) → numeric`
/// Charges `round(units × (unit_price + carrier_fee), 6)` at once (the price part to revenue, the
/// carrier fee part to carrier fees payable) and returns the amount charged; a free category charges 0
/// and is still recorded. Locks the account. BL004 if the account may not spend, BL001 if
/// `available` does not cover the charge, 22023 for an unknown channel, no rate, or malformed
/// units, P0002 for an unknown account. Idempotent on the key (BL006 on other arguments). May
/// record `low_balance`.
fn record_usage(a: &Args) -> Result<Ret> {
    let account_id = a.id(0, "account_id")?;
    let channel = a.text(1, "channel")?;
    let category = a.key_text(2, "category", crate::boundary::MAX_CATEGORY_LEN)?;
    let units = a.amount(3, "units", Sign::Positive)?;
    let occurred_at = a.ts(4, "occurred_at")?;
    let key = check_key(a.opt_text(5))?;
    let charged = with_spi(|c| {
        let acct = lock(c, account_id)?;
        let key = key.as_deref().map(|key| Key {
            account_id,
            operation: "record_usage",
            key,
            request: json!({
                "channel": channel,
                "category": category,
                "units": num(units),
                "occurred_at": pgrx::pg_sys::TimestampTz::from(occurred_at),
            }),
        });
        if let Some(k) = &key {
            if let Some(first) = replay(c, k)? {
                return replayed_amount(&first);
            }
        }
        acct.ensure_may_spend()?;
        let rate = rates::lookup(c, &acct.currency, &channel, &category)?;
        let (price, fee) = charge(units, rate)?;
        let total = price + fee;
        acct.ensure_covers(total)?;
        let id = insert(
            c,
            account_id,
            &channel,
            &category,
            units,
            (price, fee),
            occurred_at,
            None,
        )?;
        if !total.is_zero() {
            let at = now();
            ledger::post(
                c,
                Transfer {
                    account_id,
                    currency: &acct.currency,
                    kind: "usage",
                    source: "usage",
                    source_id: id,
                    legs: charge_legs(price, fee),
                    reserved_delta: Decimal::ZERO,
                    at,
                },
            )?;
            events::available_changed(c, &acct, acct.available(), acct.available() - total, at)?;
        }
        if let Some(k) = &key {
            remember(c, k, json!({ "amount": num(total) }))?;
        }
        Ok(total)
    })?;
    Ok(money(charged))
}
sql_function!(
    billing_record_usage,
    pg_finfo_billing_record_usage,
    record_usage
);
