//! Per-message charging outside campaigns (automations, WhatsApp conversations): the hot path
//! of usage billing.

use crate::accounts::{lock, now};
use crate::boundary::{money, Args, Ret};
use crate::db::{exec, insert_id, with_spi};
use crate::error::{BillingError, Result};
use crate::events::{self, num};
use crate::idempotency::{check_key, remember, replay, Key};
use crate::ledger::{self, Transfer};
use crate::money::{Money, Sign};
use crate::policy;
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

// The common charge in one statement, as the hold: the rate from the backend's copy of the rates
// (policy::only_rate) when one currency alone has a rate for the channel and category, the
// statement then requiring the account to be in it; otherwise first the rate in the account's
// currency, read without a lock (an account's currency never changes, and the locking path reads
// rates unlocked too). Then one statement that updates the account only if it may spend and
// covers the charge (its row lock is the account lock), inserts the usage row and posts the
// transfer (the same legs and checks as ledger::post). No row back: something refuses the charge
// (an unknown account, a blocked stage, too little available), and the locking path says what;
// it also takes charges of 0 (a free category: a usage row, no transfer) and keyed retries.
// The transfer id is drawn in the usage row's RETURNING and the legs are two unnest() in the
// select list, which step in lockstep: no join for either (10k instructions a charge less).
const RATE_OF_ACCOUNT: &str = "
    SELECT a.currency, r.unit_price, r.carrier_fee
      FROM billing.accounts a
      JOIN billing.rates r ON r.currency = a.currency AND r.channel = $2 AND r.category = $3
     WHERE a.id = $1";

const CHARGE_AT_ONCE: &str = concat!(
    "WITH a AS (",
    events::spend_at_once_sql!(
        "balance = a.balance - $4",
        "$4",
        "$13",
        " AND a.currency = $9"
    ),
    r#"),
    u AS (
        INSERT INTO billing.usage (account_id, channel, category, units, price, carrier_fee, occurred_at)
        SELECT a.id, $2, $3, $5, $6, $7, $8 FROM a
        RETURNING id, nextval('billing.transfer_ids') AS transfer_id),
    l AS (
        INSERT INTO billing.ledger_entries
               (account_id, transfer_id, ledger_account, currency, amount, kind, source, source_id, created_at)
        SELECT $1, u.transfer_id, unnest($10::text[]), $9, unnest($11::numeric[]), 'usage', 'usage', u.id, $12
          FROM u)
    SELECT u.id FROM u"#
);

/// A charge without an idempotency key in one statement (CHARGE_AT_ONCE), or two when the rate
/// needs the account's currency: the amount charged, or None for the locking path to decide and
/// explain.
fn charge_at_once(
    client: &mut SpiClient<'_>,
    account_id: i64,
    channel: &str,
    category: &str,
    units: Decimal,
    occurred_at: TimestampWithTimeZone,
) -> Result<Option<Decimal>> {
    let stages = policy::params(client)?;
    let (currency, rate) = match policy::only_rate(channel, category) {
        Some(known) => known,
        None => {
            let rows = exec(
                client,
                RATE_OF_ACCOUNT,
                &[account_id.into(), channel.into(), category.into()],
            )?;
            if rows.is_empty() {
                return Ok(None);
            }
            let row = rows.first();
            let (Some(currency), Some(unit_price), Some(carrier_fee)) = (
                row.get::<String>(1)?,
                row.get::<Money>(2)?,
                row.get::<Money>(3)?,
            ) else {
                return Ok(None);
            };
            let rate = rates::Rate {
                unit_price: unit_price.0,
                carrier_fee: carrier_fee.0,
            };
            (currency, rate)
        }
    };
    let Ok((price, fee)) = charge(units, rate) else {
        return Ok(None); // out of range: the locking path raises it
    };
    let total = price + fee;
    if total.is_zero() {
        return Ok(None);
    }
    let legs = ledger::legs("usage", charge_legs(price, fee))?;
    let at = now();
    let watch = events::Watch::start(account_id);
    let rows = exec(
        client,
        CHARGE_AT_ONCE,
        &[
            account_id.into(),
            channel.into(),
            category.into(),
            Money(total).into(),
            Money(units).into(),
            Money(price).into(),
            Money(fee).into(),
            occurred_at.into(),
            currency.into(),
            legs.names.into(),
            legs.amounts.into(),
            at.into(),
            stages,
        ],
    )?;
    if rows.is_empty() {
        watch.refuse_if_suppressed("billing.usage", "usage row")?;
        return Ok(None);
    }
    if watch.finish() {
        events::spent_at_once(client, account_id, total, at)?;
    }
    Ok(Some(total))
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
/// and is still recorded. Locks the account (without a key, by the one UPDATE that charges, when the
/// charge is allowed: CHARGE_AT_ONCE). BL004 if the account may not spend, BL001 if
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
        if key.is_none() {
            if let Some(total) =
                charge_at_once(c, account_id, &channel, &category, units, occurred_at)?
            {
                return Ok(total);
            }
        }
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
