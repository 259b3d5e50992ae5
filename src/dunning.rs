//! Invoices and the dunning ladder (seed 002): days count from the due date of the account's
//! oldest unpaid invoice; each stage restricts service as `billing.dunning_stages` says; paying
//! the last overdue invoice restores everything at once.
//!
//! The stage only moves forward while invoices stay unpaid (re-evaluated from data on every
//! run, never from counters), so a partial payment can neither skip nor repeat a stage; a run
//! after missed ones moves straight to the stage due and still applies the one-time fees of the
//! stages it passed.

use crate::accounts::{lock, lock_for, owner_of, Account};
use crate::boundary::{Args, Ret};
use crate::db::{exec, insert_id, one, with_spi};
use crate::error::{BillingError, Result};
use crate::events::{emit, num};
use crate::idempotency::{check_key, remember, replay, Key};
use crate::ledger::{self, LedgerAccount, Transfer};
use crate::money::{Money, Sign};
use crate::payments::check_method;
use crate::scheduling::Batch;
use crate::sql_function;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use rust_decimal::Decimal;
use serde_json::json;

/// One rung of the ladder: at `day` days past due, the account reaches `stage` (of `rank`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rung {
    pub day: i32,
    pub stage: String,
    pub rank: i32,
    pub reminders: Vec<String>,
    pub event: Option<String>,
}

/// The stage due after `days` days past the oldest due date: the highest rung reached, if any.
pub fn stage_for(days: i64, ladder: &[Rung]) -> Option<&Rung> {
    ladder
        .iter()
        .filter(|r| i64::from(r.day) <= days)
        .max_by_key(|r| r.day)
}

/// The rungs a move from `current_rank` to `target` passes (target included), in order.
pub fn passed<'a>(current_rank: i32, target: &Rung, ladder: &'a [Rung]) -> Vec<&'a Rung> {
    let mut rungs: Vec<&Rung> = ladder
        .iter()
        .filter(|r| r.rank > current_rank && r.rank <= target.rank)
        .collect();
    rungs.sort_by_key(|r| r.rank);
    rungs
}

const LADDER: &str = "
    SELECT p.day, p.stage, s.rank, p.reminders, p.event
      FROM billing.dunning_policy p JOIN billing.dunning_stages s USING (stage)
     ORDER BY p.day";

fn ladder(client: &mut SpiClient<'_>) -> Result<Vec<Rung>> {
    let mut rungs = Vec::new();
    for r in exec(client, LADDER, &[])? {
        rungs.push(Rung {
            day: r.get::<i32>(1)?.unwrap_or_default(),
            stage: r.get::<String>(2)?.unwrap_or_default(),
            rank: r.get::<i32>(3)?.unwrap_or_default(),
            reminders: r.get::<Vec<String>>(4)?.unwrap_or_default(),
            event: r.get::<String>(5)?,
        });
    }
    Ok(rungs)
}

// Invoices ------------------------------------------------------------------------------------------

const INSERT_INVOICE: &str = "
    INSERT INTO billing.invoice_records (account_id, kind, amount, currency, due_at, description, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    RETURNING id";

/// Invoices a locked account: receivables debited, revenue credited, event `invoice_created`.
fn invoice(
    client: &mut SpiClient<'_>,
    acct: &Account,
    kind: &str,
    amount: Decimal,
    due_at: TimestampWithTimeZone,
    description: Option<&str>,
    at: TimestampWithTimeZone,
) -> Result<i64> {
    let id = insert_id(
        client,
        INSERT_INVOICE,
        &[
            acct.id.into(),
            kind.into(),
            Money(amount).into(),
            acct.currency.as_str().into(),
            due_at.into(),
            description.into(),
            at.into(),
        ],
    )?;
    ledger::post(
        client,
        Transfer {
            account_id: acct.id,
            currency: &acct.currency,
            kind,
            source: "invoice",
            source_id: id,
            legs: vec![
                (LedgerAccount::Receivables, -amount),
                (LedgerAccount::Revenue, amount),
            ],
            reserved_delta: Decimal::ZERO,
            at,
        },
    )?;
    let payload =
        json!({ "invoice_id": id, "kind": kind, "amount": num(amount), "currency": acct.currency });
    emit(client, acct.id, "invoice_created", payload, at)?;
    Ok(id)
}

/// `billing.create_invoice(account_id, amount, due_at, description DEFAULT NULL, as_of DEFAULT now())
/// → bigint`
/// An `open` invoice of kind `manual`, booked to receivables and revenue (it never touches the
/// prepaid balance). Locks the account. 22023 for a malformed amount (or one finer than the
/// currency's minor unit) or a NULL due date, P0002 for an unknown account. Not idempotent.
fn create_invoice(a: &Args) -> Result<Ret> {
    let account_id = a.id(0, "account_id")?;
    let amount = a.amount(1, "amount", Sign::Positive)?;
    let due_at = a.ts(2, "due_at")?;
    let description = a.opt_text(3);
    let as_of = a.ts(4, "as_of")?;
    let id = with_spi(|c| {
        let acct = lock(c, account_id)?;
        crate::money::check_payable(amount, &acct.currency, acct.minor_units)?;
        invoice(
            c,
            &acct,
            "manual",
            amount,
            due_at,
            description.as_deref(),
            as_of,
        )
    })?;
    Ok(Ret::of(id))
}
sql_function!(
    billing_create_invoice,
    pg_finfo_billing_create_invoice,
    create_invoice
);

const OWNER: &str = "SELECT account_id FROM billing.invoice_records WHERE id = $1";

const LOCK_INVOICE: &str = "
    SELECT status, amount FROM billing.invoice_records WHERE account_id = $1 AND id = $2 FOR UPDATE";

const PAY: &str = "
    WITH p AS (INSERT INTO billing.payment_records
                      (account_id, kind, amount, tax, currency, method, status, invoice_id, created_at, settled_at)
               SELECT account_id, 'invoice', amount, 0, currency, $3, 'succeeded', id, $4, $4
                 FROM billing.invoice_records WHERE account_id = $1 AND id = $2
               RETURNING id),
         i AS (UPDATE billing.invoice_records SET status = 'paid', paid_at = $4
                WHERE account_id = $1 AND id = $2)
    SELECT id FROM p";

const UNPAID_DUE: &str = "
    SELECT EXISTS (SELECT 1 FROM billing.invoice_records
                    WHERE account_id = $1 AND status <> 'paid' AND due_at <= $2)";

const RESTORE: &str = "
    UPDATE billing.accounts SET dunning_stage = 'current', dunning_since = NULL, dunning_fees_charged = '{}'
     WHERE id = $1";

/// `billing.pay_invoice(invoice_id, method DEFAULT 'card', idempotency_key DEFAULT NULL,
/// as_of DEFAULT now()) → text`
/// `paid`: records an external payment of kind `invoice` (cash received, receivables settled;
/// the prepaid balance is not touched). When no unpaid invoice due by `as_of` is left, the
/// account returns to `current` at once and every service is restored (event
/// `service_restored`), except a `deleted` account, which stays deleted. Locks the account, then
/// the invoice. Paying a paid invoice again returns `paid` and records nothing. Idempotent on
/// the key (BL006 on other arguments). 22023 for an unknown method, P0002 for an unknown id.
fn pay_invoice(a: &Args) -> Result<Ret> {
    let id = a.id(0, "invoice_id")?;
    let method = a.text(1, "method")?;
    let key = check_key(a.opt_text(2))?;
    let as_of = a.ts(3, "as_of")?;
    with_spi(|c| {
        check_method(c, &method)?;
        let account_id = owner_of(c, OWNER, "invoice", id)?;
        let acct = lock(c, account_id)?;
        let key = key.as_deref().map(|key| Key {
            account_id,
            operation: "pay_invoice",
            key,
            request: json!({ "invoice_id": id, "method": method }),
        });
        if let Some(k) = &key {
            if replay(c, k)?.is_some() {
                return Ok(());
            }
        }
        let rows = exec(c, LOCK_INVOICE, &[account_id.into(), id.into()])?;
        let row = rows.first();
        let status = row.get::<String>(1)?.unwrap_or_default();
        let amount = row.get::<Money>(2)?.map(|m| m.0).unwrap_or_default();
        if status != "paid" {
            let payment_id = insert_id(
                c,
                PAY,
                &[
                    account_id.into(),
                    id.into(),
                    method.as_str().into(),
                    as_of.into(),
                ],
            )?;
            ledger::post(
                c,
                Transfer {
                    account_id,
                    currency: &acct.currency,
                    kind: "invoice_payment",
                    source: "payment",
                    source_id: payment_id,
                    legs: vec![
                        (LedgerAccount::PaymentsClearing, -amount),
                        (LedgerAccount::Receivables, amount),
                    ],
                    reserved_delta: Decimal::ZERO,
                    at: as_of,
                },
            )?;
            let payload = json!({ "payment_id": payment_id, "kind": "invoice", "invoice_id": id, "amount": num(amount) });
            emit(c, account_id, "payment_succeeded", payload, as_of)?;
            let still_due = one::<bool>(exec(c, UNPAID_DUE, &[account_id.into(), as_of.into()])?)?
                == Some(true);
            if !still_due && acct.stage != "current" && acct.stage != "deleted" {
                exec(c, RESTORE, &[account_id.into()])?;
                let payload = json!({ "invoice_id": id, "previous_stage": acct.stage });
                emit(c, account_id, "service_restored", payload, as_of)?;
            }
        }
        if let Some(k) = &key {
            remember(c, k, json!({ "status": "paid" }))?;
        }
        Ok(())
    })?;
    Ok(Ret::of("paid"))
}
sql_function!(
    billing_pay_invoice,
    pg_finfo_billing_pay_invoice,
    pay_invoice
);

// advance_dunning -----------------------------------------------------------------------------------

// Candidates only: the oldest unpaid invoice is read again under each account's lock, so an
// invoice paid while this call waited for the lock is seen as paid (spec: pay-vs-dunning).
// In account id order after a cursor, so bounded batches walk every account across ticks.
const DUE_ACCOUNTS: &str = "
    SELECT DISTINCT account_id FROM billing.invoice_records
     WHERE status <> 'paid' AND due_at <= $1 AND account_id > $2
     ORDER BY account_id LIMIT $3";

const OLDEST_UNPAID: &str = "
    SELECT id, floor(extract(epoch FROM ($2 - due_at)) / 86400)::bigint
      FROM billing.invoice_records
     WHERE account_id = $1 AND status <> 'paid' AND due_at <= $2
     ORDER BY due_at, id
     LIMIT 1";

const MARK_OVERDUE: &str = "
    UPDATE billing.invoice_records SET status = 'overdue'
     WHERE account_id = $1 AND status = 'open' AND due_at <= $2";

const FEE: &str = "SELECT amount FROM billing.dunning_fees WHERE stage = $1 AND currency = $2";

const ADVANCE: &str = "
    UPDATE billing.accounts
       SET dunning_stage = $2, dunning_since = coalesce(dunning_since, $3), dunning_fees_charged = $4
     WHERE id = $1";

const CHARGED_FEES: &str = "SELECT dunning_fees_charged FROM billing.accounts WHERE id = $1";

// Day 90: operational data goes; the ledger, invoices, payments and balance stay for the books.
// Three statements in this order (not CTEs, which share one snapshot): campaigns first, so the
// hold guard lets their holds go; then every pending hold; then keys and auto-recharge settings.
const PURGE_CAMPAIGNS: &str = "DELETE FROM billing.campaigns WHERE account_id = $1";

const RELEASE_ALL_HOLDS: &str = "
    WITH h AS (UPDATE billing.reservations SET status = 'released', resolved_at = $2
                WHERE account_id = $1 AND status = 'pending')
    UPDATE billing.accounts SET reserved = 0 WHERE id = $1";

const PURGE_SETTINGS: &str = "
    WITH k AS (DELETE FROM billing.idempotency_keys WHERE account_id = $1)
    UPDATE billing.accounts
       SET auto_recharge = 'disabled', auto_recharge_threshold = NULL,
           auto_recharge_amount = NULL, auto_recharge_method = NULL
     WHERE id = $1";

/// Moves one locked account to `target`, applying the fees of every stage passed and the
/// reminders and event of the target stage only.
fn advance(
    client: &mut SpiClient<'_>,
    acct: &Account,
    passed: &[&Rung],
    target: &Rung,
    invoice_id: i64,
    days: i64,
    as_of: TimestampWithTimeZone,
) -> Result<()> {
    let mut charged =
        one::<Vec<String>>(exec(client, CHARGED_FEES, &[acct.id.into()])?)?.unwrap_or_default();
    for rung in passed {
        if charged.contains(&rung.stage) {
            continue;
        }
        let fee = one::<Money>(exec(
            client,
            FEE,
            &[rung.stage.as_str().into(), acct.currency.as_str().into()],
        )?)?;
        if let Some(Money(fee)) = fee {
            let description = format!("Recovery fee ({})", rung.stage);
            invoice(
                client,
                acct,
                "recovery_fee",
                fee,
                as_of,
                Some(&description),
                as_of,
            )?;
            charged.push(rung.stage.clone());
        }
    }
    exec(
        client,
        ADVANCE,
        &[
            acct.id.into(),
            target.stage.as_str().into(),
            as_of.into(),
            charged.into(),
        ],
    )?;
    for channel in &target.reminders {
        let payload = json!({ "channel": channel, "invoice_id": invoice_id, "days_overdue": days, "stage": target.stage });
        emit(client, acct.id, "dunning_reminder", payload, as_of)?;
    }
    if let Some(event) = &target.event {
        let payload =
            json!({ "invoice_id": invoice_id, "days_overdue": days, "stage": target.stage });
        emit(client, acct.id, event, payload, as_of)?;
    }
    if target.stage == "deleted" {
        exec(client, PURGE_CAMPAIGNS, &[acct.id.into()])?;
        exec(client, RELEASE_ALL_HOLDS, &[acct.id.into(), as_of.into()])?;
        exec(client, PURGE_SETTINGS, &[acct.id.into()])?;
    }
    Ok(())
}

const STAGE_RANKS: &str = "SELECT stage, rank FROM billing.dunning_stages";

/// A stage change: account, the oldest unpaid invoice, the stage reached.
pub type StageChange = (i64, i64, String);

/// What one batch of dunning went through: whether it took a whole batch of candidate accounts,
/// and the last one it took (where the next batch starts).
#[derive(Clone, Copy, Debug, Default)]
pub struct DunningBatch {
    pub full: bool,
    pub last_id: i64,
}

/// Advances the accounts with unpaid invoices due by `as_of` whose id is above `after`, one
/// batch of them (all with `Batch::ALL`), locking each in id order; returns the stage changes.
pub fn advance_due(
    c: &mut SpiClient<'_>,
    as_of: TimestampWithTimeZone,
    batch: Batch,
    after: i64,
) -> Result<(Vec<StageChange>, DunningBatch)> {
    let ladder = ladder(c)?;
    let mut ranks = std::collections::HashMap::new();
    for r in exec(c, STAGE_RANKS, &[])? {
        ranks.insert(
            r.get::<String>(1)?.unwrap_or_default(),
            r.get::<i32>(2)?.unwrap_or_default(),
        );
    }
    let mut due = Vec::new();
    for r in exec(
        c,
        DUE_ACCOUNTS,
        &[as_of.into(), after.into(), batch.limit.into()],
    )? {
        due.push(r.get::<i64>(1)?.unwrap_or_default());
    }
    let progress = DunningBatch {
        full: batch.full(due.len()),
        last_id: due.last().copied().unwrap_or(after),
    };
    let mut changes = Vec::new();
    for account_id in due {
        let Some(acct) = lock_for(c, account_id, batch)? else {
            continue; // busy: the next pass over the accounts takes it
        };
        let rows = exec(c, OLDEST_UNPAID, &[account_id.into(), as_of.into()])?;
        if rows.is_empty() {
            continue; // paid meanwhile
        }
        let oldest = rows.first();
        let invoice_id = oldest.get::<i64>(1)?.unwrap_or_default();
        let days = oldest.get::<i64>(2)?.unwrap_or_default();
        exec(c, MARK_OVERDUE, &[account_id.into(), as_of.into()])?;
        let Some(target) = stage_for(days, &ladder) else {
            continue;
        };
        let current_rank = ranks.get(&acct.stage).copied().unwrap_or_default();
        if target.rank <= current_rank {
            continue;
        }
        let passed = passed(current_rank, target, &ladder);
        advance(c, &acct, &passed, target, invoice_id, days, as_of)?;
        // A recovery fee invoiced just now is due at as_of, so it is overdue already: marked
        // here, not by the next call at the same as_of, which must change nothing.
        exec(c, MARK_OVERDUE, &[account_id.into(), as_of.into()])?;
        changes.push((account_id, invoice_id, target.stage.clone()));
    }
    Ok((changes, progress))
}

/// `billing.advance_dunning(as_of DEFAULT now()) → TABLE(account_id, invoice_id, stage)`
/// One row per stage change made by this call, for every account with an unpaid invoice due by
/// `as_of` (marked `overdue`). Locks those accounts in id order, one at a time, waiting for busy
/// ones. Idempotent: the same `as_of` again changes nothing and records no event twice. After
/// missed runs it moves straight to the stage due (one row; reminders of passed stages are not
/// sent late) and still invoices the one-time fees of the stages it passed. 22023 for a NULL or
/// infinite `as_of`.
#[pg_extern]
fn advance_dunning(
    as_of: default!(Option<TimestampWithTimeZone>, "now()"),
) -> TableIterator<
    'static,
    (
        name!(account_id, i64),
        name!(invoice_id, i64),
        name!(stage, String),
    ),
> {
    let rows = crate::boundary::standard(|| {
        let as_of = match as_of {
            Some(t) if t.is_finite() => t,
            Some(_) => return Err(BillingError::invalid("as_of must be a finite timestamp")),
            None => return Err(BillingError::invalid("as_of must not be NULL")),
        };
        with_spi(|c| Ok(advance_due(c, as_of, Batch::ALL, 0)?.0))
    });
    TableIterator::new(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_ladder() -> Vec<Rung> {
        [
            (0, "overdue", 1),
            (7, "reminded", 2),
            (15, "outbound_blocked", 3),
            (30, "suspended", 4),
            (60, "archived", 5),
            (90, "deleted", 6),
        ]
        .iter()
        .map(|(day, stage, rank)| Rung {
            day: *day,
            stage: stage.to_string(),
            rank: *rank,
            reminders: vec![],
            event: None,
        })
        .collect()
    }

    #[test]
    fn days_map_to_the_highest_rung_reached() {
        let l = default_ladder();
        let at = |d| stage_for(d, &l).map(|r| r.stage.as_str());
        for (days, stage) in [
            (-1, None),
            (0, Some("overdue")),
            (6, Some("overdue")),
            (7, Some("reminded")),
            (14, Some("reminded")),
            (15, Some("outbound_blocked")),
            (29, Some("outbound_blocked")),
            (30, Some("suspended")),
            (59, Some("suspended")),
            (60, Some("archived")),
            (89, Some("archived")),
            (90, Some("deleted")),
            (400, Some("deleted")),
        ] {
            assert_eq!(at(days), stage, "day {days}");
        }
    }

    #[test]
    fn a_jump_passes_every_stage_in_between_once() {
        let l = default_ladder();
        let target = stage_for(61, &l).unwrap();
        let stages: Vec<&str> = passed(1, target, &l)
            .iter()
            .map(|r| r.stage.as_str())
            .collect();
        assert_eq!(
            stages,
            ["reminded", "outbound_blocked", "suspended", "archived"]
        );
        assert!(passed(target.rank, target, &l).is_empty()); // already there: nothing passed again
    }

    #[test]
    fn the_policy_is_data_an_administrator_can_change() {
        let mut l = default_ladder();
        l[2].day = 10; // block outbound at day 10 instead of 15
        assert_eq!(stage_for(10, &l).unwrap().stage, "outbound_blocked");
    }
}
