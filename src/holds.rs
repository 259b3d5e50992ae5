//! Two-phase holds, TigerBeetle's pending transfers in SQL: a hold fails up front if it would
//! break the limit, so capturing or releasing it later never can; a capture may take part and
//! releases the rest; a hold resolves exactly once (captured, released or expired).

use crate::accounts::{self, lock, now, owner_of};
use crate::boundary::{money, Args, Ret};
use crate::db::{exec, insert_id, one, with_spi};
use crate::error::{BillingError, Result};
use crate::events::{self, num};
use crate::idempotency::{check_key, remember, replay, result_id, Key};
use crate::ledger::{self, LedgerAccount, Transfer};
use crate::money::{Money, Sign};
use crate::policy;
use crate::scheduling::{Batch, Step};
use crate::sql_function;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use rust_decimal::Decimal;
use serde_json::json;

const RESERVE: &str = "
    WITH a AS (UPDATE billing.accounts SET reserved = reserved + $2 WHERE id = $1 RETURNING id)
    INSERT INTO billing.reservations (account_id, amount, reference, expires_at, created_at, campaign_id)
    SELECT a.id, $2, $3, $4, $5, $6 FROM a
    RETURNING id";

/// Holds `amount` on a locked account after the spending checks. Shared with campaigns, whose
/// holds carry their `campaign_id`.
pub fn hold(
    client: &mut SpiClient<'_>,
    acct: &accounts::Account,
    amount: Decimal,
    reference: Option<&str>,
    expires_at: Option<TimestampWithTimeZone>,
    at: TimestampWithTimeZone,
    campaign_id: Option<i64>,
) -> Result<i64> {
    acct.ensure_may_spend()?;
    acct.ensure_covers(amount)?;
    let id = insert_id(
        client,
        RESERVE,
        &[
            acct.id.into(),
            Money(amount).into(),
            reference.into(),
            expires_at.into(),
            at.into(),
            campaign_id.into(),
        ],
    )?;
    events::available_changed(
        client,
        acct,
        acct.available(),
        acct.available() - amount,
        at,
    )?;
    Ok(id)
}

// The common case in one statement: the spend (events::spend_at_once_sql!: the account row is
// updated only if it may spend and covers the amount; its row lock is the account lock) and the
// hold's insert; back comes the hold's id, and the accounts trigger says through the watch
// whether an event may be due. No row back: something refuses the hold (or the account is
// unknown), and the locking path says what.
const RESERVE_AT_ONCE: &str = concat!(
    "WITH a AS (",
    events::spend_at_once_sql!("reserved = a.reserved + $2", "$2", "$6"),
    ")
    INSERT INTO billing.reservations (account_id, amount, reference, expires_at, created_at)
    SELECT a.id, $2, $3, $4, $5 FROM a
    RETURNING id"
);

/// A hold without an idempotency key in one statement (RESERVE_AT_ONCE); None when the hold is
/// refused or the account unknown, for the locking path to decide and explain.
fn reserve_at_once(
    client: &mut SpiClient<'_>,
    account_id: i64,
    amount: Decimal,
    reference: Option<&str>,
    expires_at: Option<TimestampWithTimeZone>,
    at: TimestampWithTimeZone,
) -> Result<Option<i64>> {
    let stages = policy::params(client)?;
    let watch = events::Watch::start(account_id);
    let rows = exec(
        client,
        RESERVE_AT_ONCE,
        &[
            account_id.into(),
            Money(amount).into(),
            reference.into(),
            expires_at.into(),
            at.into(),
            stages,
        ],
    )?;
    if rows.is_empty() {
        watch.refuse_if_suppressed("billing.reservations", "hold")?;
        return Ok(None);
    }
    let id = rows
        .first()
        .get::<i64>(1)?
        .ok_or_else(|| BillingError::Internal("no reservation id".into()))?;
    if watch.finish() {
        events::spent_at_once(client, account_id, amount, at)?;
    }
    Ok(Some(id))
}

/// `billing.reserve_credits(account_id, amount, reference, expires_at, idempotency_key) → bigint`
/// Locks the account (without a key, by the one UPDATE that holds, when the hold is allowed).
/// Raises BL004 if the account may not spend, BL001 if `available < amount` (with required,
/// available, shortfall), 22023 for a malformed amount, P0002 for an unknown account.
/// Idempotent with a key: the same arguments return the same id and hold nothing more; other
/// arguments raise BL006. May record `low_balance`.
fn reserve_credits(a: &Args) -> Result<Ret> {
    let account_id = a.id(0, "account_id")?;
    let amount = a.amount(1, "amount", Sign::Positive)?;
    let reference = a.opt_text(2);
    let expires_at = a.opt_ts(3, "expires_at")?;
    let key = check_key(a.opt_text(4))?;
    let id = with_spi(|c| {
        if key.is_none() {
            let at = now();
            if let Some(id) =
                reserve_at_once(c, account_id, amount, reference.as_deref(), expires_at, at)?
            {
                return Ok(id);
            }
        }
        let acct = lock(c, account_id)?;
        let key = key.as_deref().map(|key| Key {
            account_id,
            operation: "reserve_credits",
            key,
            request: json!({
                "amount": num(amount),
                "reference": reference,
                "expires_at": expires_at.map(pgrx::pg_sys::TimestampTz::from),
            }),
        });
        if let Some(k) = &key {
            if let Some(first) = replay(c, k)? {
                return result_id(&first);
            }
        }
        let id = hold(
            c,
            &acct,
            amount,
            reference.as_deref(),
            expires_at,
            now(),
            None,
        )?;
        if let Some(k) = &key {
            remember(c, k, json!({ "id": id }))?;
        }
        Ok(id)
    })?;
    Ok(Ret::of(id))
}
sql_function!(
    billing_reserve_credits,
    pg_finfo_billing_reserve_credits,
    reserve_credits
);

const OWNER: &str = "SELECT account_id FROM billing.reservations WHERE id = $1";

const LOCK_HOLD: &str = "
    SELECT status, amount, campaign_id FROM billing.reservations
     WHERE account_id = $1 AND id = $2 FOR UPDATE";

/// Locks the account, then the hold (the fixed order); returns the account and the amount held
/// after checking that the hold is pending and not a campaign's (BL003 otherwise).
fn lock_hold(
    client: &mut SpiClient<'_>,
    id: i64,
    operation: &str,
) -> Result<(accounts::Account, Decimal)> {
    let account_id = owner_of(client, OWNER, "reservation", id)?;
    let acct = lock(client, account_id)?;
    let rows = exec(client, LOCK_HOLD, &[account_id.into(), id.into()])?;
    let row = rows.first();
    let status = row.get::<String>(1)?.unwrap_or_default();
    let held = row.get::<Money>(2)?.map(|m| m.0).unwrap_or_default();
    ensure_pending(id, &status, operation)?;
    if let Some(campaign) = row.get::<i64>(3)? {
        return Err(BillingError::invalid_state(
            format!("reservation {id}"),
            format!("held for campaign {campaign}"),
            &format!("{operation} it directly (complete, fail or cancel the campaign)"),
        ));
    }
    Ok((acct, held))
}

fn ensure_pending(id: i64, status: &str, operation: &str) -> Result<()> {
    if status == "pending" {
        Ok(())
    } else {
        Err(BillingError::invalid_state(
            format!("reservation {id}"),
            status,
            operation,
        ))
    }
}

/// How much a capture charges: all of the hold by default, never more than it (22023).
pub fn capture_amount(requested: Option<Decimal>, held: Decimal) -> Result<Decimal> {
    let charge = requested.unwrap_or(held);
    if charge > held {
        return Err(BillingError::invalid(format!(
            "amount {charge} exceeds the held amount {held}"
        )));
    }
    Ok(charge)
}

const MARK_CAPTURED: &str = "
    UPDATE billing.reservations SET status = 'captured', captured = $3, resolved_at = $4
     WHERE account_id = $1 AND id = $2";

/// Captures a locked, pending hold: charges `charge` to revenue and frees the whole hold.
pub fn capture(
    client: &mut SpiClient<'_>,
    acct: &accounts::Account,
    id: i64,
    held: Decimal,
    legs: Vec<(LedgerAccount, Decimal)>,
    at: TimestampWithTimeZone,
) -> Result<()> {
    let charge = -ledger::wallet_delta(&legs);
    exec(
        client,
        MARK_CAPTURED,
        &[acct.id.into(), id.into(), Money(charge).into(), at.into()],
    )?;
    ledger::post(
        client,
        Transfer {
            account_id: acct.id,
            currency: &acct.currency,
            kind: "capture",
            source: "reservation",
            source_id: id,
            legs,
            reserved_delta: -held,
            at,
        },
    )
}

/// `billing.capture_reservation(reservation_id, amount DEFAULT NULL) → numeric`
/// Locks the account, then the hold. Charges `amount` (default: all of it) and releases the
/// rest; returns the amount charged. BL003 unless the hold is pending (captured, released or
/// expired holds cannot be captured), 22023 for an amount above the held amount, P0002 for an
/// unknown id. Not idempotent by itself: a second capture of one hold is BL003.
fn capture_reservation(a: &Args) -> Result<Ret> {
    let id = a.id(0, "reservation_id")?;
    let requested = a.opt_amount(1, "amount", Sign::Positive)?;
    let charged = with_spi(|c| {
        let (acct, held) = lock_hold(c, id, "capture")?;
        let charge = capture_amount(requested, held)?;
        let legs = vec![
            (LedgerAccount::Wallet, -charge),
            (LedgerAccount::Revenue, charge),
        ];
        capture(c, &acct, id, held, legs, now())?;
        Ok(charge)
    })?;
    Ok(money(charged))
}
sql_function!(
    billing_capture_reservation,
    pg_finfo_billing_capture_reservation,
    capture_reservation
);

const RESOLVE_WITHOUT_CHARGE: &str = "
    WITH r AS (UPDATE billing.reservations SET status = $3, resolved_at = $4
                WHERE account_id = $1 AND id = $2 AND status = 'pending'
                RETURNING amount)
    UPDATE billing.accounts a SET reserved = a.reserved - r.amount FROM r WHERE a.id = $1
    RETURNING r.amount";

/// Releases a locked, pending hold without charging; returns the amount released.
pub fn release(
    client: &mut SpiClient<'_>,
    account_id: i64,
    id: i64,
    at: TimestampWithTimeZone,
) -> Result<Decimal> {
    let released = one::<Money>(exec(
        client,
        RESOLVE_WITHOUT_CHARGE,
        &[account_id.into(), id.into(), "released".into(), at.into()],
    )?)?;
    released
        .map(|m| m.0)
        .ok_or_else(|| BillingError::Internal(format!("reservation {id} was not pending")))
}

/// `billing.release_reservation(reservation_id) → numeric`
/// Locks the account, then the hold. Releases all of it; returns the amount released. BL003
/// unless pending, P0002 for an unknown id. A second release is BL003.
fn release_reservation(a: &Args) -> Result<Ret> {
    let id = a.id(0, "reservation_id")?;
    let released = with_spi(|c| {
        let (acct, _) = lock_hold(c, id, "release")?;
        release(c, acct.id, id, now())
    })?;
    Ok(money(released))
}
sql_function!(
    billing_release_reservation,
    pg_finfo_billing_release_reservation,
    release_reservation
);

// The accounts with holds due to expire, locked in id order (so it never deadlocks with other
// calls); a bounded batch skips accounts another transaction holds.
macro_rules! due_accounts_sql {
    ($skip:literal) => {
        concat!(
            "
    SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM (
        SELECT a.id FROM billing.accounts a
         WHERE a.id IN (SELECT r.account_id FROM billing.reservations r
                         WHERE r.status = 'pending' AND r.expires_at <= $1)
         ORDER BY a.id LIMIT $2
           FOR NO KEY UPDATE",
            $skip,
            ") due"
        )
    };
}
const LOCK_DUE_ACCOUNTS: &str = due_accounts_sql!("");
const TRY_LOCK_DUE_ACCOUNTS: &str = due_accounts_sql!(" SKIP LOCKED");

const EXPIRE: &str = "
    WITH r AS (UPDATE billing.reservations SET status = 'expired', resolved_at = $1
                WHERE account_id = ANY($2) AND status = 'pending' AND expires_at <= $1
                RETURNING account_id, amount),
         s AS (SELECT account_id, sum(amount) AS total, count(*) AS n FROM r GROUP BY account_id),
         u AS (UPDATE billing.accounts a SET reserved = a.reserved - s.total
                 FROM s WHERE a.id = s.account_id RETURNING s.n)
    SELECT coalesce(sum(n), 0)::integer FROM u";

/// Expires the due holds of one batch of accounts, set-based; `full` when the batch was.
pub fn expire_due(
    c: &mut SpiClient<'_>,
    as_of: TimestampWithTimeZone,
    batch: Batch,
) -> Result<Step> {
    let lock = if batch.skip_locked {
        TRY_LOCK_DUE_ACCOUNTS
    } else {
        LOCK_DUE_ACCOUNTS
    };
    let ids =
        one::<Vec<i64>>(exec(c, lock, &[as_of.into(), batch.limit.into()])?)?.unwrap_or_default();
    if ids.is_empty() {
        return Ok(Step::default());
    }
    let full = batch.full(ids.len());
    let done = one::<i32>(exec(c, EXPIRE, &[as_of.into(), ids.into()])?)?.unwrap_or(0);
    Ok(Step { done, full })
}

/// `billing.expire_reservations(as_of DEFAULT now()) → integer`
/// Releases every pending hold with `expires_at <= as_of`, set-based; returns how many.
/// Locks the accounts concerned in id order (so it never deadlocks with other calls), waiting
/// for busy ones, then their holds. Idempotent: a second call at the same `as_of` expires
/// nothing more. 22023 for a NULL or infinite `as_of`.
fn expire_reservations(a: &Args) -> Result<Ret> {
    let as_of = a.ts(0, "as_of")?;
    let step = with_spi(|c| expire_due(c, as_of, Batch::ALL))?;
    Ok(Ret::of(step.done))
}
sql_function!(
    billing_expire_reservations,
    pg_finfo_billing_expire_reservations,
    expire_reservations
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::dec;

    #[test]
    fn capture_defaults_to_the_whole_hold_and_never_exceeds_it() {
        assert_eq!(capture_amount(None, dec("50")), Ok(dec("50")));
        assert_eq!(capture_amount(Some(dec("20")), dec("50")), Ok(dec("20")));
        assert_eq!(capture_amount(Some(dec("50")), dec("50")), Ok(dec("50")));
        assert_eq!(
            capture_amount(Some(dec("50.000001")), dec("50"))
                .unwrap_err()
                .sqlstate(),
            "22023"
        );
    }

    #[test]
    fn only_pending_holds_resolve() {
        assert!(ensure_pending(1, "pending", "capture").is_ok());
        for s in ["captured", "released", "expired"] {
            let e = ensure_pending(7, s, "capture").unwrap_err();
            assert_eq!(e.sqlstate(), "BL003");
            assert_eq!(
                e.to_string(),
                format!("reservation 7 is {s}: cannot capture")
            );
        }
    }
}
