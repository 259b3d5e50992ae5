//! The monthly close and postpaid billing: a negative balance (overdraft or postpaid usage) is
//! invoiced once per calendar month and the wallet reset to zero, the debt moving to
//! receivables in the ledger.

use crate::accounts::{apply_overdraft_limit, lock, lock_for};
use crate::boundary::{Args, Ret};
use crate::db::{exec, one, with_spi};
use crate::error::{BillingError, Result};
use crate::events::{emit, num};
use crate::ledger::{self, LedgerAccount, Transfer};
use crate::money::{Money, Sign};
use crate::scheduling::{Batch, Step};
use crate::sql_function;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use rust_decimal::Decimal;
use serde_json::json;

// Negative balances not yet closed for the period, in id order: a batch never takes an account
// closed by an earlier batch of the same close.
const NEGATIVE_ACCOUNTS: &str = "
    SELECT a.id FROM billing.accounts a
     WHERE a.balance < 0
       AND NOT EXISTS (SELECT 1 FROM billing.invoice_records i
                        WHERE i.account_id = a.id AND i.kind = 'period_close' AND i.period = $1)
     ORDER BY a.id LIMIT $2";

// One close per account and calendar month (UTC) of as_of, by the partial unique index.
const CLOSE_INVOICE: &str = "
    INSERT INTO billing.invoice_records (account_id, kind, amount, currency, due_at, description, period, created_at)
        SELECT a.id, 'period_close', $2, a.currency,
           (($3 AT TIME ZONE 'UTC') + make_interval(days => c.invoice_due_days)) AT TIME ZONE 'UTC',
           'Negative balance at the close of ' || to_char($4::date, 'YYYY-MM'), $4, $3
      FROM billing.accounts a JOIN billing.currencies c ON c.code = a.currency
     WHERE a.id = $1
    ON CONFLICT (account_id, period) WHERE kind = 'period_close' DO NOTHING
        RETURNING id, to_char(due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')";

const PERIOD: &str = "SELECT date_trunc('month', $1 AT TIME ZONE 'UTC')::date";

/// Closes one batch of negative balances (all of them with `Batch::ALL`) for the calendar month
/// (UTC) of `as_of`.
pub fn close_due(
    c: &mut SpiClient<'_>,
    as_of: TimestampWithTimeZone,
    batch: Batch,
) -> Result<Step> {
    let period = one::<pgrx::datum::Date>(exec(c, PERIOD, &[as_of.into()])?)?
        .ok_or_else(|| BillingError::Internal("no period".into()))?;
    let mut ids = Vec::new();
    for row in exec(c, NEGATIVE_ACCOUNTS, &[period.into(), batch.limit.into()])? {
        ids.push(row.get::<i64>(1)?.unwrap_or_default());
    }
    let full = batch.full(ids.len());
    let mut invoiced = 0;
    for id in ids {
        let Some(acct) = lock_for(c, id, batch)? else {
            continue; // busy: the next batch of this close takes it
        };
        if acct.balance >= Decimal::ZERO {
            continue;
        }
        let debt = -acct.balance;
        let rows = exec(
            c,
            CLOSE_INVOICE,
            &[id.into(), Money(debt).into(), as_of.into(), period.into()],
        )?;
        if rows.is_empty() {
            continue; // already closed this month
        }
        let row = rows.first();
        let invoice_id = row.get::<i64>(1)?.unwrap_or_default();
        let due_at = row.get::<String>(2)?;
        ledger::post(
            c,
            Transfer {
                account_id: id,
                currency: &acct.currency,
                kind: "period_close",
                source: "invoice",
                source_id: invoice_id,
                legs: vec![
                    (LedgerAccount::Wallet, debt),
                    (LedgerAccount::Receivables, -debt),
                ],
                reserved_delta: Decimal::ZERO,
                at: as_of,
            },
        )?;
        let payload = json!({
            "invoice_id": invoice_id,
            "kind": "period_close",
            "amount": num(debt),
            "currency": acct.currency,
            "due_at": due_at,
        });
        emit(c, id, "invoice_created", payload, as_of)?;
        invoiced += 1;
    }
    Ok(Step {
        done: invoiced,
        full,
    })
}

/// `billing.close_billing_period(as_of DEFAULT now()) → integer`
/// For every account whose balance is negative: an invoice of kind `period_close` for the debt
/// (due `invoice_due_days` after `as_of`), and the balance reset to zero (wallet credited,
/// receivables debited). Returns the number of invoices. Locks each such account in id order,
/// waiting for busy ones. At most one close per account per calendar month (UTC) of `as_of`:
/// calling it again changes nothing more. Event `invoice_created`.
fn close_billing_period(a: &Args) -> Result<Ret> {
    let as_of = a.ts(0, "as_of")?;
    let step = with_spi(|c| close_due(c, as_of, Batch::ALL))?;
    Ok(Ret::of(step.done))
}
sql_function!(
    billing_close_billing_period,
    pg_finfo_billing_close_billing_period,
    close_billing_period
);

/// Postpaid is offered above the currency's monthly minimum (strictly), and not at all where the
/// currency has none.
pub fn eligible(minimum: Option<Decimal>, charges: Decimal) -> bool {
    minimum.is_some_and(|m| charges > m)
}

// Charges: usage (by occurred_at, campaigns included) and captured plain holds (by resolution
// time) in the 30 days before as_of.
const CHARGES: &str = "
    SELECT c.postpaid_minimum,
           coalesce((SELECT sum(u.amount) FROM billing.usage u
                      WHERE u.account_id = a.id
                        AND u.occurred_at > $2 - interval '30 days' AND u.occurred_at <= $2), 0)
         + coalesce((SELECT sum(r.captured) FROM billing.reservations r
                      WHERE r.account_id = a.id AND r.status = 'captured' AND r.campaign_id IS NULL
                        AND r.resolved_at > $2 - interval '30 days' AND r.resolved_at <= $2), 0)
      FROM billing.accounts a JOIN billing.currencies c ON c.code = a.currency
     WHERE a.id = $1";

fn charges_30d(
    client: &mut SpiClient<'_>,
    account_id: i64,
    as_of: TimestampWithTimeZone,
) -> Result<(Option<Decimal>, Decimal)> {
    let rows = exec(client, CHARGES, &[account_id.into(), as_of.into()])?;
    if rows.is_empty() {
        return Err(BillingError::NotFound {
            what: "account",
            id: account_id,
        });
    }
    let r = rows.first();
    Ok((
        r.get::<Money>(1)?.map(|m| m.0),
        r.get::<Money>(2)?.map(|m| m.0).unwrap_or_default(),
    ))
}

/// `billing.postpaid_eligible(account_id, as_of DEFAULT now()) → boolean`
/// True when the charges of the 30 days before `as_of` exceed the currency's postpaid minimum
/// (USD 5,000 by default; NULL means postpaid is not offered). Reads without locking. P0002 for
/// an unknown account.
fn postpaid_eligible(a: &Args) -> Result<Ret> {
    let account_id = a.id(0, "account_id")?;
    let as_of = a.ts(1, "as_of")?;
    let (minimum, charges) = with_spi(|c| charges_30d(c, account_id, as_of))?;
    Ok(Ret::of(eligible(minimum, charges)))
}
sql_function!(
    billing_postpaid_eligible,
    pg_finfo_billing_postpaid_eligible,
    postpaid_eligible
);

const SET_MODE: &str = "UPDATE billing.accounts SET billing_mode = $2 WHERE id = $1";

/// `billing.set_billing_mode(account_id, mode, credit_limit DEFAULT NULL, as_of DEFAULT now()) → void`
/// Locks the account. `postpaid` requires eligibility (BL003 otherwise, with the charges and the
/// minimum) and a credit limit (22023 if NULL), which becomes the account's `overdraft_limit`;
/// postpaid charges then accrue up to it and the monthly close invoices them. `prepaid` sets the
/// overdraft limit to `credit_limit`; without one, a postpaid account's credit line drops to 0
/// and a prepaid account keeps its overdraft. BL003 while debt or holds use more than the limit.
/// 22023 for an unknown mode. Idempotent.
fn set_billing_mode(a: &Args) -> Result<Ret> {
    let account_id = a.id(0, "account_id")?;
    let mode = a.text(1, "mode")?;
    let credit_limit = a.opt_amount(2, "credit_limit", Sign::NonNegative)?;
    let as_of = a.ts(3, "as_of")?;
    if mode != "prepaid" && mode != "postpaid" {
        return Err(BillingError::invalid(format!(
            "unknown billing mode {mode} (prepaid or postpaid)"
        )));
    }
    with_spi(|c| {
        let acct = lock(c, account_id)?;
        let limit = if mode == "postpaid" {
            let limit = credit_limit
                .ok_or_else(|| BillingError::invalid("credit_limit is required for postpaid"))?;
            let (minimum, charges) = charges_30d(c, account_id, as_of)?;
            if !eligible(minimum, charges) {
                let minimum = minimum.map_or("none (not offered)".to_string(), |m| m.to_string());
                return Err(BillingError::invalid_state(
                    format!("account {account_id}"),
                    format!(
                        "not eligible (charges of the last 30 days {charges}, minimum {minimum})"
                    ),
                    "switch to postpaid",
                ));
            }
            limit
        } else if acct.billing_mode == "postpaid" {
            credit_limit.unwrap_or(Decimal::ZERO) // leaving postpaid: its credit line goes with it
        } else {
            credit_limit.unwrap_or(acct.overdraft_limit) // already prepaid: keep the overdraft
        };
        apply_overdraft_limit(c, &acct, limit, as_of)?;
        exec(c, SET_MODE, &[account_id.into(), mode.as_str().into()])?;
        Ok(())
    })?;
    Ok(Ret::Null)
}
sql_function!(
    billing_set_billing_mode,
    pg_finfo_billing_set_billing_mode,
    set_billing_mode
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::dec;

    #[test]
    fn postpaid_needs_more_than_the_minimum() {
        assert!(!eligible(Some(dec("5000")), dec("5000")));
        assert!(eligible(Some(dec("5000")), dec("5000.01")));
        assert!(!eligible(None, dec("1000000")));
    }
}
