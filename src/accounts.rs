//! Accounts (customer wallets): creation, limits, thresholds, balance and state.
//!
//! Lock order, everywhere in the extension: the account row first (`lock`, FOR NO KEY UPDATE),
//! then the object being changed (reservation, payment, ...). Operations on one account
//! serialize on that row; operations on different accounts never wait for each other.

use crate::boundary::{Args, Ret};
use crate::db::{exec, one, with_spi};
use crate::error::{BillingError, Result};
use crate::events;
use crate::money::{Money, Sign};
use crate::sql_function;
use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiTupleTable};
use rust_decimal::Decimal;

/// An account row as the spending functions see it, read under the account lock.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: i64,
    pub currency: String,
    pub balance: Decimal,
    pub reserved: Decimal,
    pub overdraft_limit: Decimal,
    pub threshold: Decimal,
    pub stage: String,
    pub outbound_allowed: bool,
    pub may_recharge: bool,
    pub minor_units: u32,
    pub recharge_min: Decimal,
    pub recharge_max: Decimal,
    pub tax_rate: Decimal,
    /// `disabled`, `enabled` or `suspended`, with its settings when configured.
    pub auto_recharge: String,
    pub auto_recharge_threshold: Option<Decimal>,
    pub auto_recharge_amount: Option<Decimal>,
    pub auto_recharge_method: Option<String>,
    /// `prepaid` or `postpaid`.
    pub billing_mode: String,
}

impl Account {
    /// `balance - reserved + overdraft_limit`: what may still be held or charged.
    pub fn available(&self) -> Decimal {
        available(self.balance, self.reserved, self.overdraft_limit)
    }

    /// Refuses spending while the dunning stage blocks outbound service (BL004).
    pub fn ensure_may_spend(&self) -> Result<()> {
        if self.outbound_allowed {
            Ok(())
        } else {
            Err(BillingError::ServiceBlocked {
                account_id: self.id,
                stage: self.stage.clone(),
                action: "spend",
            })
        }
    }

    /// A recharge amount this account's currency accepts: payable in minor units (22023) and
    /// within the bounds (BL002).
    pub fn check_recharge(&self, amount: Decimal) -> Result<()> {
        crate::money::check_recharge(
            amount,
            &self.currency,
            self.minor_units,
            self.recharge_min,
            self.recharge_max,
        )
    }

    /// Refuses an amount that available credits do not cover (BL001).
    pub fn ensure_covers(&self, amount: Decimal) -> Result<()> {
        covers(self.available(), amount)
    }
}

pub fn available(balance: Decimal, reserved: Decimal, overdraft_limit: Decimal) -> Decimal {
    balance - reserved + overdraft_limit
}

/// The hold/charge rule: `available >= amount`, else BL001 with the numbers.
pub fn covers(available: Decimal, amount: Decimal) -> Result<()> {
    if available >= amount {
        Ok(())
    } else {
        Err(BillingError::InsufficientCredits {
            required: amount,
            available,
        })
    }
}

/// The account row with what the spending rules need, locked (FOR NO KEY UPDATE does not block
/// the FK checks of other inserts referencing the account).
///
/// The dunning stage's rules are scalar subqueries, not a JOIN: when the row was changed by a
/// transaction we waited for, READ COMMITTED re-checks the new row version against the OLD
/// joined rows, so a changed stage no longer matching its old `dunning_stages` row would make
/// the account vanish (spec: isolation/pay-vs-dunning); subqueries are re-evaluated on the new
/// version. The currency can be joined: an account's currency never changes.
macro_rules! lock_account_sql {
    () => {
        "
    SELECT a.currency, a.balance, a.reserved, a.overdraft_limit,
           coalesce(a.low_balance_threshold, c.low_balance_threshold),
           a.dunning_stage,
           (SELECT s.outbound_allowed FROM billing.dunning_stages s WHERE s.stage = a.dunning_stage),
           (SELECT s.may_recharge FROM billing.dunning_stages s WHERE s.stage = a.dunning_stage),
           c.minor_units, c.recharge_min, c.recharge_max, c.tax_rate,
           a.auto_recharge, a.auto_recharge_threshold, a.auto_recharge_amount, a.auto_recharge_method,
           a.billing_mode
      FROM billing.accounts a
      JOIN billing.currencies c ON c.code = a.currency
     WHERE a.id = $1
       FOR NO KEY UPDATE OF a"
    };
}
const LOCK_ACCOUNT: &str = lock_account_sql!();
const TRY_LOCK_ACCOUNT: &str = concat!(lock_account_sql!(), " SKIP LOCKED");

/// Locks the account row and reads it (P0002 if unknown). First lock of every state change.
pub fn lock(client: &mut SpiClient<'_>, account_id: i64) -> Result<Account> {
    read_locked(client, LOCK_ACCOUNT, account_id)?.ok_or(BillingError::NotFound {
        what: "account",
        id: account_id,
    })
}

/// Locks the account row unless another transaction holds it (then None, without waiting):
/// for batch steps that must not stall on one busy account.
pub fn try_lock(client: &mut SpiClient<'_>, account_id: i64) -> Result<Option<Account>> {
    read_locked(client, TRY_LOCK_ACCOUNT, account_id)
}

/// The lock a batch step takes: waiting (`lock`, P0002 if unknown) for a direct call, or
/// `try_lock` (None for a busy account, which the next batch takes) for a tick.
pub fn lock_for(
    client: &mut SpiClient<'_>,
    account_id: i64,
    batch: crate::scheduling::Batch,
) -> Result<Option<Account>> {
    if batch.skip_locked {
        try_lock(client, account_id)
    } else {
        lock(client, account_id).map(Some)
    }
}

fn read_locked(
    client: &mut SpiClient<'_>,
    sql: &'static str,
    account_id: i64,
) -> Result<Option<Account>> {
    let rows = exec(client, sql, &[account_id.into()])?;
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(from_row(&rows.first(), account_id)?))
}

/// The account from columns 1 to 17 of the current row, in the order of `lock_account_sql!`.
pub fn from_row(r: &SpiTupleTable<'_>, account_id: i64) -> Result<Account> {
    let m =
        |i: usize| -> Result<Decimal> { Ok(r.get::<Money>(i)?.map(|m| m.0).unwrap_or_default()) };
    Ok(Account {
        id: account_id,
        currency: r.get::<String>(1)?.unwrap_or_default(),
        balance: m(2)?,
        reserved: m(3)?,
        overdraft_limit: m(4)?,
        threshold: m(5)?,
        stage: r.get::<String>(6)?.unwrap_or_default(),
        outbound_allowed: r.get::<bool>(7)?.unwrap_or(false),
        may_recharge: r.get::<bool>(8)?.unwrap_or(false),
        minor_units: r.get::<i32>(9)?.unwrap_or(2) as u32,
        recharge_min: m(10)?,
        recharge_max: m(11)?,
        tax_rate: m(12)?,
        auto_recharge: r.get::<String>(13)?.unwrap_or_default(),
        auto_recharge_threshold: r.get::<Money>(14)?.map(|m| m.0),
        auto_recharge_amount: r.get::<Money>(15)?.map(|m| m.0),
        auto_recharge_method: r.get::<String>(16)?,
        billing_mode: r.get::<String>(17)?.unwrap_or_default(),
    })
}

/// Finds the account that owns an object (reservation, payment, ...) without locking, so the
/// caller can lock the account first and the object second. `sql` selects account_id by id.
pub fn owner_of(
    client: &mut SpiClient<'_>,
    sql: &'static str,
    what: &'static str,
    id: i64,
) -> Result<i64> {
    one::<i64>(exec(client, sql, &[id.into()])?)?.ok_or(BillingError::NotFound { what, id })
}

/// Whether an account with this id exists, committed or written by this transaction (by the
/// current statement too, as a foreign key's check at the end of it would see): one probe of the
/// primary key of `billing.accounts` with `SnapshotSelf`, without SPI and without a row lock.
/// The answer cannot go stale: accounts are never deleted and never change id (trigger
/// `accounts_key_fixed`). For the row check of `reservations`, which replaces their foreign key
/// (0.4.0; a foreign key's check is an SPI query and an after-trigger event per row, 8% of a
/// hold), and for the usage rollup, to name the unknown account a statement wrote.
pub fn exists(account_id: i64) -> bool {
    use pgrx::pg_sys;
    // SAFETY: plain catalog and index access functions of the backend, called inside a
    // transaction (from a trigger) with valid arguments; every object opened here is closed
    // before returning, and an ERROR raised by one of them unwinds through PostgreSQL's resource
    // owners, which release them.
    unsafe {
        let schema = pg_sys::get_namespace_oid(c"billing".as_ptr(), false);
        let relid = pg_sys::get_relname_relid(c"accounts".as_ptr(), schema);
        let lock = pg_sys::AccessShareLock as pg_sys::LOCKMODE;
        let rel = pg_sys::table_open(relid, lock);
        let index = pg_sys::index_open(pg_sys::RelationGetPrimaryKeyIndex(rel), lock);
        // SnapshotSelf: committed rows and this transaction's own, the current command's included;
        // not another transaction's uncommitted insert. A static snapshot, not registered.
        let snapshot = &raw mut pg_sys::SnapshotSelfData;
        let mut key: pg_sys::ScanKeyData = std::mem::zeroed();
        pg_sys::ScanKeyInit(
            &mut key,
            1,
            pg_sys::BTEqualStrategyNumber as pg_sys::StrategyNumber,
            pg_sys::Oid::from(pg_sys::F_INT8EQ),
            pg_sys::Datum::from(account_id),
        );
        let scan = pg_sys::index_beginscan(rel, index, snapshot, 1, 0);
        pg_sys::index_rescan(scan, &mut key, 1, std::ptr::null_mut(), 0);
        let slot = pg_sys::table_slot_create(rel, std::ptr::null_mut());
        let found =
            pg_sys::index_getnext_slot(scan, pg_sys::ScanDirection::ForwardScanDirection, slot);
        pg_sys::ExecDropSingleTupleTableSlot(slot);
        pg_sys::index_endscan(scan);
        // The lock is kept to the end of the transaction, as the executor keeps its own.
        pg_sys::index_close(index, pg_sys::NoLock as pg_sys::LOCKMODE);
        pg_sys::table_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);
        found
    }
}

pub fn now() -> TimestampWithTimeZone {
    // SAFETY: reads the backend's transaction start time, what now() returns.
    let ts = unsafe { pgrx::pg_sys::GetCurrentTransactionStartTimestamp() };
    TimestampWithTimeZone::try_from(ts).expect("transaction start time is a valid timestamp")
}

// create_account ---------------------------------------------------------------------------------

const CREATE_ACCOUNT: &str = "
    INSERT INTO billing.accounts (currency, external_ref, overdraft_limit, low_balance_threshold)
    SELECT c.code, $2, $3, $4 FROM billing.currencies c WHERE c.code = $1
    RETURNING id";

/// `billing.create_account(currency, external_ref, overdraft_limit, low_balance_threshold) → bigint`
/// Creates a wallet with balance 0. Locks nothing existing. Raises 22023 for an unknown
/// currency, a negative or malformed limit or threshold. Not idempotent (each call is a new account).
fn create_account(a: &Args) -> Result<Ret> {
    let currency = a.text(0, "currency")?;
    let external_ref = a.opt_key_text(1, "external_ref", crate::boundary::MAX_EXTERNAL_REF_LEN)?;
    let overdraft_limit = a.amount(2, "overdraft_limit", Sign::NonNegative)?;
    let threshold = a.opt_amount(3, "low_balance_threshold", Sign::NonNegative)?;
    let id = with_spi(|c| {
        one::<i64>(exec(
            c,
            CREATE_ACCOUNT,
            &[
                currency.clone().into(),
                external_ref.into(),
                Money(overdraft_limit).into(),
                threshold.map(Money).into(),
            ],
        )?)
    })?;
    id.map(Ret::of)
        .ok_or_else(|| BillingError::invalid(format!("unknown currency {currency}")))
}
sql_function!(
    billing_create_account,
    pg_finfo_billing_create_account,
    create_account
);

// set_overdraft_limit -----------------------------------------------------------------------------

const SET_OVERDRAFT: &str = "UPDATE billing.accounts SET overdraft_limit = $2 WHERE id = $1";

/// Sets a locked account's overdraft limit: BL003 when debt and holds already use more than the
/// new limit; records `low_balance` (and may request an auto-recharge) when `available` falls.
pub fn apply_overdraft_limit(
    client: &mut SpiClient<'_>,
    acct: &Account,
    limit: Decimal,
    at: TimestampWithTimeZone,
) -> Result<()> {
    let before = acct.available();
    let after = available(acct.balance, acct.reserved, limit);
    if after < Decimal::ZERO {
        return Err(BillingError::invalid_state(
            format!("account {}", acct.id),
            format!(
                "using {} beyond its balance",
                -(acct.balance - acct.reserved)
            ),
            &format!("lower its overdraft limit to {limit}"),
        ));
    }
    exec(
        client,
        SET_OVERDRAFT,
        &[acct.id.into(), Money(limit).into()],
    )?;
    events::available_changed(client, acct, before, after, at)
}

/// `billing.set_overdraft_limit(account_id, overdraft_limit) → void`
/// Locks the account. 22023 for a negative limit, P0002 for an unknown account, BL003 when the
/// new limit would leave `available` below zero (debt or holds already use more than it).
/// Idempotent (setting the same limit twice is the same state). A lower limit that takes
/// `available` below the low-balance threshold records `low_balance`.
fn set_overdraft_limit(a: &Args) -> Result<Ret> {
    let account_id = a.id(0, "account_id")?;
    let limit = a.amount(1, "overdraft_limit", Sign::NonNegative)?;
    with_spi(|c| {
        let acct = lock(c, account_id)?;
        apply_overdraft_limit(c, &acct, limit, now())
    })?;
    Ok(Ret::Null)
}
sql_function!(
    billing_set_overdraft_limit,
    pg_finfo_billing_set_overdraft_limit,
    set_overdraft_limit
);

// set_low_balance_threshold -----------------------------------------------------------------------

const SET_THRESHOLD: &str = "UPDATE billing.accounts SET low_balance_threshold = $2 WHERE id = $1";

/// `billing.set_low_balance_threshold(account_id, threshold) → void`
/// Locks the account. 22023 for NULL or a negative threshold, P0002 for an unknown account.
/// Idempotent. Records no event by itself: `low_balance` fires when `available` falls.
fn set_low_balance_threshold(a: &Args) -> Result<Ret> {
    let account_id = a.id(0, "account_id")?;
    let threshold = a.amount(1, "threshold", Sign::NonNegative)?;
    with_spi(|c| {
        lock(c, account_id)?;
        exec(
            c,
            SET_THRESHOLD,
            &[account_id.into(), Money(threshold).into()],
        )?;
        Ok(())
    })?;
    Ok(Ret::Null)
}
sql_function!(
    billing_set_low_balance_threshold,
    pg_finfo_billing_set_low_balance_threshold,
    set_low_balance_threshold
);

// account_balance, account_state -------------------------------------------------------------------

const BALANCE: &str = "
    SELECT currency, balance, reserved, balance - reserved + overdraft_limit, overdraft_limit
      FROM billing.accounts WHERE id = $1";

/// `billing.account_balance(account_id) → TABLE(currency, balance, reserved, available, overdraft_limit)`
/// Reads without locking (a consistent snapshot of one row). P0002 for an unknown account,
/// 22023 for NULL. `available = balance - reserved + overdraft_limit`.
#[pg_extern(stable)]
fn account_balance(
    account_id: Option<i64>,
) -> TableIterator<
    'static,
    (
        name!(currency, String),
        name!(balance, AnyNumeric),
        name!(reserved, AnyNumeric),
        name!(available, AnyNumeric),
        name!(overdraft_limit, AnyNumeric),
    ),
> {
    let row = crate::boundary::standard(|| {
        let id = account_id.ok_or_else(|| BillingError::invalid("account_id must not be NULL"))?;
        with_spi(|c| {
            let rows = exec(c, BALANCE, &[id.into()])?;
            if rows.is_empty() {
                return Err(BillingError::NotFound {
                    what: "account",
                    id,
                });
            }
            let r = rows.first();
            let n = |i| -> Result<AnyNumeric> { Ok(r.get::<AnyNumeric>(i)?.unwrap_or_default()) };
            Ok((
                r.get::<String>(1)?.unwrap_or_default(),
                n(2)?,
                n(3)?,
                n(4)?,
                n(5)?,
            ))
        })
    });
    TableIterator::once(row)
}

const STATE: &str = "
    SELECT a.dunning_stage, s.outbound_allowed, s.inbound_allowed, s.dashboard_allowed,
           a.auto_recharge, a.billing_mode
      FROM billing.accounts a JOIN billing.dunning_stages s ON s.stage = a.dunning_stage
     WHERE a.id = $1";

/// `billing.account_state(account_id, as_of DEFAULT now()) → TABLE(dunning_stage, outbound_allowed,
/// inbound_allowed, dashboard_allowed, auto_recharge, billing_mode)`
/// Reads without locking. Reports the stage recorded by the last `advance_dunning` (what the
/// spending functions enforce), so `as_of` is accepted for the contract but does not change
/// the answer. P0002 for an unknown account, 22023 for NULL.
#[pg_extern(stable)]
fn account_state(
    account_id: Option<i64>,
    as_of: default!(Option<TimestampWithTimeZone>, "now()"),
) -> TableIterator<
    'static,
    (
        name!(dunning_stage, String),
        name!(outbound_allowed, bool),
        name!(inbound_allowed, bool),
        name!(dashboard_allowed, bool),
        name!(auto_recharge, String),
        name!(billing_mode, String),
    ),
> {
    let row = crate::boundary::standard(|| {
        let id = account_id.ok_or_else(|| BillingError::invalid("account_id must not be NULL"))?;
        match as_of {
            Some(t) if t.is_finite() => {}
            _ => return Err(BillingError::invalid("as_of must be a finite timestamp")),
        }
        with_spi(|c| {
            let rows = exec(c, STATE, &[id.into()])?;
            if rows.is_empty() {
                return Err(BillingError::NotFound {
                    what: "account",
                    id,
                });
            }
            let r = rows.first();
            let s = |i| -> Result<String> { Ok(r.get::<String>(i)?.unwrap_or_default()) };
            let b = |i| -> Result<bool> { Ok(r.get::<bool>(i)?.unwrap_or(false)) };
            Ok((s(1)?, b(2)?, b(3)?, b(4)?, s(5)?, s(6)?))
        })
    });
    TableIterator::once(row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::dec;

    #[test]
    fn available_counts_holds_and_overdraft() {
        assert_eq!(available(dec("100"), dec("30"), dec("0")), dec("70"));
        assert_eq!(available(dec("-20"), dec("0"), dec("50")), dec("30"));
    }

    #[test]
    fn covers_is_inclusive_and_reports_the_shortfall() {
        assert!(covers(dec("10"), dec("10")).is_ok());
        let e = covers(dec("10"), dec("10.01")).unwrap_err();
        assert_eq!(e.sqlstate(), "BL001");
        assert!(e.to_string().ends_with("shortfall 0.01"), "{e}");
    }
}
