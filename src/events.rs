//! Events: rows in `billing.events` (each also a `NOTIFY billing_events`, by trigger), and the
//! rules that decide when one is due, such as the low-balance crossing.

use crate::accounts::Account;
use crate::db::exec;
use crate::error::Result;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::JsonB;
use rust_decimal::Decimal;
use serde_json::{json, Value};

const INSERT_EVENT: &str = "
    INSERT INTO billing.events (account_id, kind, payload, created_at) VALUES ($1, $2, $3, $4)";

/// Records one event in the caller's transaction (it vanishes with a rollback, like the change
/// it reports).
pub fn emit(
    client: &mut SpiClient<'_>,
    account_id: i64,
    kind: &str,
    payload: Value,
    at: TimestampWithTimeZone,
) -> Result<()> {
    exec(
        client,
        INSERT_EVENT,
        &[
            account_id.into(),
            kind.into(),
            JsonB(payload).into(),
            at.into(),
        ],
    )?;
    Ok(())
}

/// A JSON number with the exact decimal digits (serde_json's arbitrary_precision).
pub fn num(d: Decimal) -> Value {
    serde_json::from_str(&d.to_string()).expect("a Decimal's text is a JSON number")
}

/// The low-balance rule: one event when `available` falls from at or above the threshold to
/// below it. Stateless, so it re-arms by itself once `available` is back at or above it.
pub fn crosses_below(before: Decimal, after: Decimal, threshold: Decimal) -> bool {
    before >= threshold && after < threshold
}

/// The spend of a one-statement hold or charge, as SQL: `UPDATE billing.accounts a SET <set>` only
/// if the account may spend (its dunning stage is one of `<stages>`, the outbound stages) and
/// `available` covers `<amount>` (parameters, `$n`), with `$1` the account id. `<stages>`,
/// `<codes>` and `<thresholds>` are the three arrays of `policy::params` (the stages that allow
/// outbound, the currencies and their default low-balance thresholds), so the statement joins no
/// reference table. The row lock it takes is the account lock; under READ COMMITTED a concurrent
/// change makes PostgreSQL re-check these conditions on the new row version (a changed stage finds
/// no row). It returns the id and `events_due`: whether `available`, lowered by the amount, may now
/// owe what `available_changed` records, an auto-recharge request (below the auto-recharge
/// threshold while enabled) or a low-balance event (it crossed the threshold); true when unsure
/// (a NULL anywhere). Only then is the account read into Rust and `available_changed` asked
/// (`spent_at_once`), which decides exactly; most spends owe neither.
macro_rules! spend_at_once_sql {
    ($set:literal, $amount:literal, $stages:literal, $codes:literal, $thresholds:literal) => {
        concat!(
            "UPDATE billing.accounts a SET ",
            $set,
            "
              WHERE a.id = $1 AND a.dunning_stage = ANY (",
            $stages,
            "::text[])
                AND a.balance - a.reserved + a.overdraft_limit >= ",
            $amount,
            "
             RETURNING a.id,
                       coalesce((a.auto_recharge = 'enabled'
                                 AND a.balance - a.reserved + a.overdraft_limit < a.auto_recharge_threshold)
                                OR (a.balance - a.reserved + a.overdraft_limit
                                      < coalesce(a.low_balance_threshold,
                                                 (",
            $thresholds,
            "::numeric[])[array_position(",
            $codes,
            "::text[], a.currency)])
                                    AND a.balance - a.reserved + a.overdraft_limit + ",
            $amount,
            " >= coalesce(a.low_balance_threshold,
                                                  (",
            $thresholds,
            "::numeric[])[array_position(",
            $codes,
            "::text[], a.currency)])),
                                true) AS events_due"
        )
    };
}
pub(crate) use spend_at_once_sql;

/// After a one-statement spend whose `events_due` (spend_at_once_sql!) was true: reads the account (locked by
/// that statement) and records what is due, with `available` before and after.
pub fn spent_at_once(
    client: &mut SpiClient<'_>,
    account_id: i64,
    amount: Decimal,
    at: TimestampWithTimeZone,
) -> Result<()> {
    let after = crate::accounts::lock(client, account_id)?;
    let available = after.available();
    available_changed(client, &after, available + amount, available, at)
}

/// Called by every function that lowers `available`, under the account lock, with the values
/// before and after its change: the auto-recharge request and the low-balance event.
pub fn available_changed(
    client: &mut SpiClient<'_>,
    acct: &Account,
    before: Decimal,
    after: Decimal,
    at: TimestampWithTimeZone,
) -> Result<()> {
    if after < before {
        crate::autorecharge::maybe_request(client, acct, after, at)?;
    }
    if crosses_below(before, after, acct.threshold) {
        emit(
            client,
            acct.id,
            "low_balance",
            json!({
                "available": num(after),
                "threshold": num(acct.threshold),
                "currency": acct.currency,
            }),
            at,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::dec;

    #[test]
    fn low_balance_fires_only_on_the_downward_crossing() {
        let t = dec("100");
        assert!(crosses_below(dec("150"), dec("99.99"), t));
        assert!(crosses_below(dec("100"), dec("99"), t)); // from exactly the threshold
        assert!(!crosses_below(dec("99"), dec("50"), t)); // already below: no repeat
        assert!(!crosses_below(dec("150"), dec("100"), t)); // landing on it is not below
        assert!(!crosses_below(dec("50"), dec("150"), t)); // a recharge
    }

    #[test]
    fn json_numbers_keep_every_digit() {
        assert_eq!(num(dec("1180.00")).to_string(), "1180.00");
        assert_eq!(num(dec("0.000001")).to_string(), "0.000001");
    }
}
