//! Campaigns: checked at scheduling (stage 1) and again at send time (stage 2); they send in
//! full or not at all. While `running`, the whole cost is held; completing captures what was
//! delivered and releases the rest.
//!
//! Prices are fixed at scheduling (`unit_price`, `carrier_fee` and `cost` on the campaign), so a
//! campaign scheduled with `hold => true` cannot fail stage 2 for balance, and a rate change
//! never alters a campaign already promised to the customer.

use crate::accounts::{self, lock, now, owner_of, Account};
use crate::boundary::{money, Args, Ret};
use crate::db::{exec, in_subtransaction, insert_id, one, with_spi, Attempt};
use crate::error::{BillingError, Result};
use crate::events::{emit, num};
use crate::holds;
use crate::money::Money;
use crate::rates::{self, charge, charge_legs, Rate};
use crate::scheduling::{Batch, Step};
use crate::sql_function;
use crate::usage;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use rust_decimal::Decimal;
use serde_json::json;

// Pure decisions -------------------------------------------------------------------------------

/// Stage 1: does the estimate fit what is available now?
pub fn stage1(cost: Decimal, available: Decimal) -> &'static str {
    if cost <= available {
        "scheduled"
    } else {
        "insufficient_credits"
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Stage2 {
    /// Run; `hold` says whether the cost must be held now (it was not held at scheduling).
    Run {
        hold: bool,
    },
    FailedBlocked,
    FailedLowBalance,
}

/// Stage 2 (T-0): blocked accounts fail first, then the real balance is checked. A campaign
/// whose cost is already held always runs.
pub fn stage2(
    outbound_allowed: bool,
    already_held: bool,
    cost: Decimal,
    available: Decimal,
) -> Stage2 {
    if !outbound_allowed {
        Stage2::FailedBlocked
    } else if already_held || cost.is_zero() {
        Stage2::Run { hold: false }
    } else if cost <= available {
        Stage2::Run { hold: true }
    } else {
        Stage2::FailedLowBalance
    }
}

/// Units to charge at completion: all planned by default, never more (22023).
pub fn delivered(requested: Option<i64>, planned: i64) -> Result<i64> {
    match requested {
        None => Ok(planned),
        Some(d) if d < 0 => Err(BillingError::invalid(format!(
            "delivered_units must not be negative, got {d}"
        ))),
        Some(d) if d > planned => Err(BillingError::invalid(format!(
            "delivered_units {d} exceeds the {planned} units planned"
        ))),
        Some(d) => Ok(d),
    }
}

fn require_status(c: &Campaign, allowed: &[&str], operation: &str) -> Result<()> {
    if allowed.contains(&c.status.as_str()) {
        Ok(())
    } else {
        Err(BillingError::invalid_state(
            format!("campaign {}", c.id),
            &c.status,
            operation,
        ))
    }
}

// Reading and locking --------------------------------------------------------------------------

struct Campaign {
    id: i64,
    account_id: i64,
    channel: String,
    category: String,
    audience_size: i32,
    units_per_recipient: i32,
    status: String,
    rate: Option<Rate>,
    cost: Option<Decimal>,
    reservation_id: Option<i64>,
}

impl Campaign {
    fn planned_units(&self) -> i64 {
        self.audience_size as i64 * self.units_per_recipient as i64
    }
}

const SELECT_CAMPAIGN: &str = "
    SELECT account_id, channel, category, audience_size, units_per_recipient, status,
           unit_price, carrier_fee, cost, reservation_id
      FROM billing.campaigns WHERE account_id = $1 AND id = $2 FOR UPDATE";

const OWNER: &str = "SELECT account_id FROM billing.campaigns WHERE id = $1";

fn read_campaign(client: &mut SpiClient<'_>, account_id: i64, id: i64) -> Result<Option<Campaign>> {
    let rows = exec(client, SELECT_CAMPAIGN, &[account_id.into(), id.into()])?;
    if rows.is_empty() {
        return Ok(None);
    }
    let r = rows.first();
    let m = |i| -> Result<Option<Decimal>> { Ok(r.get::<Money>(i)?.map(|m| m.0)) };
    let (unit_price, carrier_fee) = (m(7)?, m(8)?);
    Ok(Some(Campaign {
        id,
        account_id: r.get::<i64>(1)?.unwrap_or(account_id),
        channel: r.get::<String>(2)?.unwrap_or_default(),
        category: r.get::<String>(3)?.unwrap_or_default(),
        audience_size: r.get::<i32>(4)?.unwrap_or_default(),
        units_per_recipient: r.get::<i32>(5)?.unwrap_or_default(),
        status: r.get::<String>(6)?.unwrap_or_default(),
        rate: unit_price
            .zip(carrier_fee)
            .map(|(unit_price, carrier_fee)| Rate {
                unit_price,
                carrier_fee,
            }),
        cost: m(9)?,
        reservation_id: r.get::<i64>(10)?,
    }))
}

/// Locks the account, then the campaign (the fixed order).
fn lock_campaign(client: &mut SpiClient<'_>, id: i64) -> Result<(Account, Campaign)> {
    let account_id = owner_of(client, OWNER, "campaign", id)?;
    let acct = lock(client, account_id)?;
    let camp = read_campaign(client, account_id, id)?.ok_or(BillingError::NotFound {
        what: "campaign",
        id,
    })?;
    Ok((acct, camp))
}

const SET_STATUS: &str = "
    UPDATE billing.campaigns
       SET status = $3, updated_at = $4, failure_reason = coalesce($5, failure_reason)
     WHERE account_id = $1 AND id = $2";

fn set_status(
    client: &mut SpiClient<'_>,
    camp: &Campaign,
    status: &str,
    at: TimestampWithTimeZone,
    reason: Option<&str>,
) -> Result<()> {
    exec(
        client,
        SET_STATUS,
        &[
            camp.account_id.into(),
            camp.id.into(),
            status.into(),
            at.into(),
            reason.into(),
        ],
    )?;
    Ok(())
}

/// Ends a campaign without sending: status first (so the hold guard lets go), then the hold.
fn end_unsent(
    client: &mut SpiClient<'_>,
    camp: &Campaign,
    status: &str,
    at: TimestampWithTimeZone,
    reason: Option<&str>,
) -> Result<()> {
    set_status(client, camp, status, at, reason)?;
    if let Some(rid) = camp.reservation_id {
        holds::release(client, camp.account_id, rid, at)?;
    }
    Ok(())
}

// create, estimate, status, duplicate ----------------------------------------------------------

const ACCOUNT_CURRENCY: &str = "SELECT currency FROM billing.accounts WHERE id = $1";

fn account_currency(client: &mut SpiClient<'_>, account_id: i64) -> Result<String> {
    one::<String>(exec(client, ACCOUNT_CURRENCY, &[account_id.into()])?)?.ok_or(
        BillingError::NotFound {
            what: "account",
            id: account_id,
        },
    )
}

const INSERT_CAMPAIGN: &str = "
    INSERT INTO billing.campaigns
           (account_id, channel, category, audience_size, units_per_recipient, name, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
    RETURNING id";

#[allow(clippy::too_many_arguments)]
fn insert_draft(
    client: &mut SpiClient<'_>,
    account_id: i64,
    channel: &str,
    category: &str,
    audience_size: i32,
    units_per_recipient: i32,
    name: Option<String>,
    at: TimestampWithTimeZone,
) -> Result<i64> {
    let currency = account_currency(client, account_id)?;
    rates::lookup(client, &currency, channel, category)?;
    insert_id(
        client,
        INSERT_CAMPAIGN,
        &[
            account_id.into(),
            channel.into(),
            category.into(),
            audience_size.into(),
            units_per_recipient.into(),
            name.into(),
            at.into(),
        ],
    )
}

fn positive(name: &str, v: i32) -> Result<i32> {
    if v > 0 {
        Ok(v)
    } else {
        Err(BillingError::invalid(format!(
            "{name} must be greater than 0, got {v}"
        )))
    }
}

/// `billing.create_campaign(account_id, channel, category, audience_size, units_per_recipient
/// DEFAULT 1, name DEFAULT NULL, as_of DEFAULT now()) → bigint`
/// A new `draft`. Locks nothing. 22023 for an unknown channel, no rate for (account currency,
/// channel, category), or a non-positive audience or units; P0002 for an unknown account.
/// Not idempotent (each call is a new draft).
fn create_campaign(a: &Args) -> Result<Ret> {
    let account_id = a.id(0, "account_id")?;
    let channel = a.text(1, "channel")?;
    let category = a.key_text(2, "category", crate::boundary::MAX_CATEGORY_LEN)?;
    let audience_size = positive("audience_size", a.int(3, "audience_size")?)?;
    let units = positive("units_per_recipient", a.int(4, "units_per_recipient")?)?;
    let name = a.opt_text(5);
    let as_of = a.ts(6, "as_of")?;
    let id = with_spi(|c| {
        insert_draft(
            c,
            account_id,
            &channel,
            &category,
            audience_size,
            units,
            name,
            as_of,
        )
    })?;
    Ok(Ret::of(id))
}
sql_function!(
    billing_create_campaign,
    pg_finfo_billing_create_campaign,
    create_campaign
);

const DUPLICATE_SOURCE: &str = "
    SELECT account_id, channel, category, audience_size, units_per_recipient, name
      FROM billing.campaigns WHERE id = $1";

/// `billing.duplicate_campaign(campaign_id, as_of DEFAULT now()) → bigint`
/// A new `draft` with the same settings (the way back after a failed run: a failed campaign is
/// never revived). Locks nothing. 22023 when its rate no longer exists, P0002 for an unknown id.
fn duplicate_campaign(a: &Args) -> Result<Ret> {
    let id = a.id(0, "campaign_id")?;
    let as_of = a.ts(1, "as_of")?;
    let new_id = with_spi(|c| {
        let rows = exec(c, DUPLICATE_SOURCE, &[id.into()])?;
        if rows.is_empty() {
            return Err(BillingError::NotFound {
                what: "campaign",
                id,
            });
        }
        let r = rows.first();
        let (account_id, channel, category) = (
            r.get::<i64>(1)?.unwrap_or_default(),
            r.get::<String>(2)?.unwrap_or_default(),
            r.get::<String>(3)?.unwrap_or_default(),
        );
        let (audience, units, name) = (
            r.get::<i32>(4)?.unwrap_or(1),
            r.get::<i32>(5)?.unwrap_or(1),
            r.get::<String>(6)?,
        );
        insert_draft(
            c, account_id, &channel, &category, audience, units, name, as_of,
        )
    })?;
    Ok(Ret::of(new_id))
}
sql_function!(
    billing_duplicate_campaign,
    pg_finfo_billing_duplicate_campaign,
    duplicate_campaign
);

const STATUS: &str = "SELECT status FROM billing.campaigns WHERE id = $1";

/// `billing.campaign_status(campaign_id) → text`. Reads without locking; P0002 for an unknown id.
fn campaign_status(a: &Args) -> Result<Ret> {
    let id = a.id(0, "campaign_id")?;
    let status = with_spi(|c| one::<String>(exec(c, STATUS, &[id.into()])?))?;
    status.map(Ret::of).ok_or(BillingError::NotFound {
        what: "campaign",
        id,
    })
}
sql_function!(
    billing_campaign_status,
    pg_finfo_billing_campaign_status,
    campaign_status
);

const ESTIMATE_SOURCE: &str = "
    SELECT a.currency, c.channel, c.category, c.audience_size::bigint * c.units_per_recipient
      FROM billing.campaigns c JOIN billing.accounts a ON a.id = c.account_id WHERE c.id = $1";

/// `billing.estimate_campaign(campaign_id) → numeric`
/// `audience_size × units_per_recipient × (unit_price + carrier_fee)` at current rates. Reads
/// without locking. 22023 when the rate no longer exists, P0002 for an unknown id.
fn estimate_campaign(a: &Args) -> Result<Ret> {
    let id = a.id(0, "campaign_id")?;
    let cost = with_spi(|c| {
        let rows = exec(c, ESTIMATE_SOURCE, &[id.into()])?;
        if rows.is_empty() {
            return Err(BillingError::NotFound {
                what: "campaign",
                id,
            });
        }
        let r = rows.first();
        let currency = r.get::<String>(1)?.unwrap_or_default();
        let (channel, category) = (
            r.get::<String>(2)?.unwrap_or_default(),
            r.get::<String>(3)?.unwrap_or_default(),
        );
        let planned = r.get::<i64>(4)?.unwrap_or_default();
        let rate = rates::lookup(c, &currency, &channel, &category)?;
        let (price, fee) = charge(Decimal::from(planned), rate)?;
        Ok(price + fee)
    })?;
    Ok(money(cost))
}
sql_function!(
    billing_estimate_campaign,
    pg_finfo_billing_estimate_campaign,
    estimate_campaign
);

// Stage 1: schedule ------------------------------------------------------------------------------

const SCHEDULE: &str = "
    UPDATE billing.campaigns
       SET status = 'scheduled', send_at = $3, unit_price = $4, carrier_fee = $5, cost = $6,
           reservation_id = $7, updated_at = $8
     WHERE account_id = $1 AND id = $2";

/// `billing.schedule_campaign(campaign_id, send_at, hold DEFAULT false, as_of DEFAULT now()) → text`
/// Stage 1, from `draft` or `insufficient_credits` only (else BL003). Locks the account, then the
/// campaign. Fixes the price at current rates. If the cost exceeds `available`: status and
/// return value `insufficient_credits`, an `insufficient_credits` event, nothing held. Otherwise
/// `scheduled`; with `hold => true` the cost is held until the campaign runs (BL004 if the
/// account may not spend). 22023 when the rate no longer exists. Not idempotent by key; a second
/// call on a scheduled campaign is BL003.
fn schedule_campaign(a: &Args) -> Result<Ret> {
    let id = a.id(0, "campaign_id")?;
    let send_at = a.ts(1, "send_at")?;
    let hold = a.boolean(2, "hold")?;
    let as_of = a.ts(3, "as_of")?;
    let status = with_spi(|c| {
        let (acct, camp) = lock_campaign(c, id)?;
        require_status(&camp, &["draft", "insufficient_credits"], "schedule")?;
        let rate = rates::lookup(c, &acct.currency, &camp.channel, &camp.category)?;
        let (price, fee) = charge(Decimal::from(camp.planned_units()), rate)?;
        let cost = price + fee;
        if stage1(cost, acct.available()) == "insufficient_credits" {
            set_status(c, &camp, "insufficient_credits", as_of, None)?;
            emit(
                c,
                acct.id,
                "insufficient_credits",
                shortfall(id, cost, acct.available()),
                as_of,
            )?;
            return Ok("insufficient_credits");
        }
        let reservation = if hold && !cost.is_zero() {
            let reference = format!("campaign {id}");
            Some(holds::hold(
                c,
                &acct,
                cost,
                Some(&reference),
                None,
                as_of,
                Some(id),
            )?)
        } else {
            None
        };
        exec(
            c,
            SCHEDULE,
            &[
                acct.id.into(),
                id.into(),
                send_at.into(),
                Money(rate.unit_price).into(),
                Money(rate.carrier_fee).into(),
                Money(cost).into(),
                reservation.into(),
                as_of.into(),
            ],
        )?;
        Ok("scheduled")
    })?;
    Ok(Ret::of(status))
}
sql_function!(
    billing_schedule_campaign,
    pg_finfo_billing_schedule_campaign,
    schedule_campaign
);

fn shortfall(campaign_id: i64, required: Decimal, available: Decimal) -> serde_json::Value {
    json!({
        "campaign_id": campaign_id,
        "required": num(required),
        "available": num(available),
        "shortfall": num(required - available),
    })
}

// Stage 2: execute ------------------------------------------------------------------------------

const RUNNING: &str = "
    UPDATE billing.campaigns SET status = 'running', reservation_id = $3, updated_at = $4
     WHERE account_id = $1 AND id = $2";

/// Stage 2 on a locked, scheduled campaign. Never partial: all of the cost is held, or nothing
/// is sent.
fn execute_locked(
    client: &mut SpiClient<'_>,
    acct: &Account,
    camp: &Campaign,
    as_of: TimestampWithTimeZone,
) -> Result<&'static str> {
    require_status(camp, &["scheduled"], "execute")?;
    let cost = camp.cost.unwrap_or_default();
    let decision = stage2(
        acct.outbound_allowed,
        camp.reservation_id.is_some(),
        cost,
        acct.available(),
    );
    match decision {
        Stage2::FailedBlocked => {
            end_unsent(client, camp, "failed_blocked", as_of, None)?;
            let payload = json!({ "campaign_id": camp.id, "stage": acct.stage });
            emit(client, acct.id, "campaign_failed_blocked", payload, as_of)?;
            Ok("failed_blocked")
        }
        Stage2::FailedLowBalance => {
            end_unsent(client, camp, "failed_low_balance", as_of, None)?;
            emit(
                client,
                acct.id,
                "campaign_failed_low_balance",
                shortfall(camp.id, cost, acct.available()),
                as_of,
            )?;
            Ok("failed_low_balance")
        }
        Stage2::Run { hold } => {
            let reservation = if hold {
                let reference = format!("campaign {}", camp.id);
                Some(holds::hold(
                    client,
                    acct,
                    cost,
                    Some(&reference),
                    None,
                    as_of,
                    Some(camp.id),
                )?)
            } else {
                camp.reservation_id
            };
            exec(
                client,
                RUNNING,
                &[
                    acct.id.into(),
                    camp.id.into(),
                    reservation.into(),
                    as_of.into(),
                ],
            )?;
            Ok("running")
        }
    }
}

/// `billing.execute_campaign(campaign_id, as_of DEFAULT now()) → text`
/// Stage 2 (T-0), from `scheduled` only (else BL003); does not look at `send_at`. Locks the
/// account, then the campaign. Returns `running` (the full cost held), `failed_low_balance`
/// (nothing sent or charged, any hold released, event `campaign_failed_low_balance`) or
/// `failed_blocked` (the account may not spend, event `campaign_failed_blocked`). P0002 for an
/// unknown id.
fn execute_campaign(a: &Args) -> Result<Ret> {
    let id = a.id(0, "campaign_id")?;
    let as_of = a.ts(1, "as_of")?;
    let status = with_spi(|c| {
        let (acct, camp) = lock_campaign(c, id)?;
        execute_locked(c, &acct, &camp, as_of)
    })?;
    Ok(Ret::of(status))
}
sql_function!(
    billing_execute_campaign,
    pg_finfo_billing_execute_campaign,
    execute_campaign
);

// Due campaigns, oldest first, with their accounts locked; an account another transaction holds
// is skipped, not waited for (its campaigns stay scheduled for the next run). Locking here, below
// the LIMIT, means a skipped account never takes a place in a bounded batch.
const DUE: &str = "
    SELECT c.account_id, c.id FROM billing.campaigns c JOIN billing.accounts a ON a.id = c.account_id
     WHERE c.status = 'scheduled' AND c.send_at <= $1
     ORDER BY c.send_at, c.id LIMIT $2
       FOR NO KEY UPDATE OF a SKIP LOCKED";

/// Executes one batch of due campaigns (all of them with `Batch::ALL`), each decided on its own.
pub fn run_due(c: &mut SpiClient<'_>, as_of: TimestampWithTimeZone, batch: Batch) -> Result<Step> {
    let mut due = Vec::new();
    for row in exec(c, DUE, &[as_of.into(), batch.limit.into()])? {
        due.push((
            row.get::<i64>(1)?.unwrap_or_default(),
            row.get::<i64>(2)?.unwrap_or_default(),
        ));
    }
    let full = batch.full(due.len());
    let mut done = 0;
    for (account_id, id) in due {
        // Each campaign in a subtransaction of its own: one that raises is undone alone.
        let attempt = in_subtransaction(|| {
            let Some(acct) = accounts::try_lock(c, account_id)? else {
                return Ok(false);
            };
            match read_campaign(c, account_id, id)? {
                Some(camp) if camp.status == "scheduled" => {
                    execute_locked(c, &acct, &camp, as_of)?;
                    Ok(true)
                }
                _ => Ok(false),
            }
        });
        match attempt {
            Attempt::Done(executed) => done += i32::from(executed),
            Attempt::Failed(sqlstate, message) => {
                // It stays scheduled (the next run tries it again) and says why.
                ereport!(
                    WARNING,
                    PgSqlErrorCode::ERRCODE_WARNING,
                    format!("campaign {id} was not executed: {sqlstate}: {message}")
                );
                let payload =
                    json!({ "campaign_id": id, "sqlstate": sqlstate, "message": message });
                emit(c, account_id, "campaign_execution_failed", payload, as_of)?;
            }
        }
    }
    Ok(Step { done, full })
}

/// `billing.run_due_campaigns(as_of DEFAULT now()) → integer`
/// Executes every `scheduled` campaign with `send_at <= as_of`, oldest first, each decided on its
/// own; returns how many it executed, whatever status each ended in. An account locked by
/// another transaction is skipped (SKIP LOCKED), not waited for: its campaigns stay scheduled
/// for the next run. Safe to repeat: an executed campaign is never due again. A balance or
/// dunning failure is a status, not an error. Each campaign runs in a subtransaction: one that
/// raises an unexpected error is undone alone, stays scheduled (the next run retries it), is not
/// counted, and leaves a WARNING and an event `campaign_execution_failed`; a cancel or timeout
/// (57014), serialization failure or deadlock still aborts the whole call.
fn run_due_campaigns(a: &Args) -> Result<Ret> {
    let as_of = a.ts(0, "as_of")?;
    let step = with_spi(|c| run_due(c, as_of, Batch::ALL))?;
    Ok(Ret::of(step.done))
}
sql_function!(
    billing_run_due_campaigns,
    pg_finfo_billing_run_due_campaigns,
    run_due_campaigns
);

// Completion, failure, cancellation ---------------------------------------------------------------

const COMPLETE: &str = "
    UPDATE billing.campaigns SET status = 'completed', delivered_units = $3, charged = $4, updated_at = $5
     WHERE account_id = $1 AND id = $2";

const HELD: &str = "SELECT amount FROM billing.reservations WHERE account_id = $1 AND id = $2";

/// `billing.complete_campaign(campaign_id, delivered_units DEFAULT NULL) → numeric`
/// From `running` (else BL003): charges the delivered units (default: all planned) at the price
/// fixed at scheduling, price to revenue and carrier fee apart, releases the rest of the hold;
/// status `completed`; returns the amount charged. Locks the account, then the campaign, then
/// its hold. 22023 for delivered units above the plan or negative. A second call is BL003.
fn complete_campaign(a: &Args) -> Result<Ret> {
    let id = a.id(0, "campaign_id")?;
    let requested = a.opt_i64(1);
    let charged = with_spi(|c| {
        let (acct, camp) = lock_campaign(c, id)?;
        require_status(&camp, &["running"], "complete")?;
        let units = delivered(requested, camp.planned_units())?;
        let rate = camp.rate.unwrap_or(Rate {
            unit_price: Decimal::ZERO,
            carrier_fee: Decimal::ZERO,
        });
        let (price, fee) = charge(Decimal::from(units), rate)?;
        let at = now();
        exec(
            c,
            COMPLETE,
            &[
                acct.id.into(),
                id.into(),
                units.into(),
                Money(price + fee).into(),
                at.into(),
            ],
        )?;
        if units > 0 {
            let units = Decimal::from(units);
            usage::insert(
                c,
                acct.id,
                &camp.channel,
                &camp.category,
                units,
                (price, fee),
                at,
                Some(id),
            )?;
        }
        if let Some(rid) = camp.reservation_id {
            if (price + fee).is_zero() {
                holds::release(c, acct.id, rid, at)?;
            } else {
                let held = one::<Money>(exec(c, HELD, &[acct.id.into(), rid.into()])?)?
                    .map(|m| m.0)
                    .unwrap_or_default();
                holds::capture(c, &acct, rid, held, charge_legs(price, fee), at)?;
            }
        }
        Ok(price + fee)
    })?;
    Ok(money(charged))
}
sql_function!(
    billing_complete_campaign,
    pg_finfo_billing_complete_campaign,
    complete_campaign
);

/// `billing.fail_campaign(campaign_id, reason) → text`
/// From `scheduled` or `running` (else BL003), e.g. a template rejected by the carrier after
/// credits were locked: releases every held credit, status `failed_compliance`, event
/// `campaign_failed_compliance`. Locks the account, then the campaign. 22023 for a NULL reason.
fn fail_campaign(a: &Args) -> Result<Ret> {
    let id = a.id(0, "campaign_id")?;
    let reason = a.text(1, "reason")?;
    with_spi(|c| {
        let (acct, camp) = lock_campaign(c, id)?;
        require_status(&camp, &["scheduled", "running"], "fail")?;
        let at = now();
        end_unsent(c, &camp, "failed_compliance", at, Some(&reason))?;
        emit(
            c,
            acct.id,
            "campaign_failed_compliance",
            json!({ "campaign_id": id, "reason": reason }),
            at,
        )
    })?;
    Ok(Ret::of("failed_compliance"))
}
sql_function!(
    billing_fail_campaign,
    pg_finfo_billing_fail_campaign,
    fail_campaign
);

/// `billing.cancel_campaign(campaign_id) → text`
/// From `draft`, `insufficient_credits` or `scheduled` (else BL003): releases any hold; status
/// `cancelled`. Locks the account, then the campaign.
fn cancel_campaign(a: &Args) -> Result<Ret> {
    let id = a.id(0, "campaign_id")?;
    with_spi(|c| {
        let (_, camp) = lock_campaign(c, id)?;
        require_status(
            &camp,
            &["draft", "insufficient_credits", "scheduled"],
            "cancel",
        )?;
        end_unsent(c, &camp, "cancelled", now(), None)
    })?;
    Ok(Ret::of("cancelled"))
}
sql_function!(
    billing_cancel_campaign,
    pg_finfo_billing_cancel_campaign,
    cancel_campaign
);

// Stale drafts, a batch at a time; a direct call waits for drafts locked elsewhere and re-checks
// them (a draft being scheduled at the same moment is kept), a tick skips them.
macro_rules! purge_sql {
    ($skip:literal) => {
        concat!(
            "
    WITH gone AS (DELETE FROM billing.campaigns
                   WHERE (account_id, id) IN (
                         SELECT account_id, id FROM billing.campaigns
                          WHERE status IN ('draft', 'insufficient_credits')
                            AND created_at < $1 - coalesce($2, interval '30 days')
                          ORDER BY id LIMIT $3
                            FOR UPDATE",
            $skip,
            ")
                   RETURNING 1)
    SELECT count(*)::integer FROM gone"
        )
    };
}
const PURGE: &str = purge_sql!("");
const TRY_PURGE: &str = purge_sql!(" SKIP LOCKED");

/// Deletes one batch of stale drafts (`max_age` None: the default 30 days).
pub fn purge_due(
    c: &mut SpiClient<'_>,
    as_of: TimestampWithTimeZone,
    max_age: Option<Interval>,
    batch: Batch,
) -> Result<Step> {
    let sql = if batch.skip_locked { TRY_PURGE } else { PURGE };
    let done = one::<i32>(exec(
        c,
        sql,
        &[as_of.into(), max_age.into(), batch.limit.into()],
    )?)?
    .unwrap_or(0);
    Ok(Step {
        done,
        full: batch.full(done as usize),
    })
}

const NEGATIVE_INTERVAL: &str = "SELECT $1 < interval '0'";

/// `billing.purge_stale_drafts(as_of DEFAULT now(), max_age DEFAULT '30 days') → integer`
/// Deletes campaigns in `draft` or `insufficient_credits` created more than `max_age` before
/// `as_of`; returns how many. Locks those campaign rows only (a draft being scheduled at the
/// same moment is re-checked and kept). 22023 for a NULL or negative `max_age`. Idempotent.
fn purge_stale_drafts(a: &Args) -> Result<Ret> {
    let as_of = a.ts(0, "as_of")?;
    let max_age = a.interval(1, "max_age")?;
    let step = with_spi(|c| {
        if one::<bool>(exec(c, NEGATIVE_INTERVAL, &[max_age.into()])?)? == Some(true) {
            return Err(BillingError::invalid("max_age must not be negative"));
        }
        purge_due(c, as_of, Some(max_age), Batch::ALL)
    })?;
    Ok(Ret::of(step.done))
}
sql_function!(
    billing_purge_stale_drafts,
    pg_finfo_billing_purge_stale_drafts,
    purge_stale_drafts
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::dec;

    #[test]
    fn stage1_schedules_only_what_fits() {
        assert_eq!(stage1(dec("100"), dec("100")), "scheduled");
        assert_eq!(stage1(dec("100.01"), dec("100")), "insufficient_credits");
    }

    #[test]
    fn stage2_checks_blocked_first_then_the_real_balance() {
        assert_eq!(
            stage2(false, true, dec("10"), dec("100")),
            Stage2::FailedBlocked
        );
        assert_eq!(
            stage2(true, true, dec("10"), dec("0")),
            Stage2::Run { hold: false }
        );
        assert_eq!(
            stage2(true, false, dec("10"), dec("10")),
            Stage2::Run { hold: true }
        );
        assert_eq!(
            stage2(true, false, dec("10"), dec("9.99")),
            Stage2::FailedLowBalance
        );
        assert_eq!(
            stage2(true, false, dec("0"), dec("0")),
            Stage2::Run { hold: false }
        );
    }

    #[test]
    fn delivered_defaults_to_plan_and_never_exceeds_it() {
        assert_eq!(delivered(None, 300), Ok(300));
        assert_eq!(delivered(Some(0), 300), Ok(0));
        assert_eq!(delivered(Some(300), 300), Ok(300));
        assert_eq!(delivered(Some(301), 300).unwrap_err().sqlstate(), "22023");
        assert_eq!(delivered(Some(-1), 300).unwrap_err().sqlstate(), "22023");
    }
}
