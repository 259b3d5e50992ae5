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
use std::cell::Cell;
use std::cmp::Ordering;

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
/// if the account may spend (its dunning stage is one of `<stages>`, the outbound stages of
/// `policy::params`, so the statement joins no reference table) and `available` covers
/// `<amount>` (parameters, `$n`), with `$1` the account id; it returns the id. The row lock it
/// takes is the account lock; under READ COMMITTED a concurrent change makes PostgreSQL re-check
/// these conditions on the new row version (a changed stage finds no row). Whether the spend
/// may owe an event is the accounts row trigger's to say, through a `Watch` the caller starts
/// before the statement.
macro_rules! spend_at_once_sql {
    ($set:literal, $amount:literal, $stages:literal) => {
        $crate::events::spend_at_once_sql!($set, $amount, $stages, "")
    };
    // `$also`: a further condition on the account, " AND ..."
    ($set:literal, $amount:literal, $stages:literal, $also:literal) => {
        concat!(
            "UPDATE billing.accounts a SET ",
            $set,
            "
              WHERE a.id = $1 AND a.dunning_stage = ANY (",
            $stages,
            "::text[])
                AND a.balance - a.reserved + a.overdraft_limit >= ",
            $amount,
            $also,
            "
             RETURNING a.id"
        )
    };
}
pub(crate) use spend_at_once_sql;

/// Whether a spend that moved `available` from `before` to `after` may owe what
/// `available_changed` records: an auto-recharge request (below the auto-recharge threshold
/// while enabled) or a low-balance event (from at or above the threshold to below it). The
/// comparisons come as orderings of `after` and `before` against the thresholds, None where a
/// threshold is NULL or not known; as in SQL, unknown is neither true nor false, and an unknown
/// answer is "maybe" (true): the caller then decides exactly (`spent_at_once`). `after_vs_auto`
/// is not read while auto-recharge is off, nor `before_vs_low` once `after` is known not to be
/// below the threshold, so a caller need not compute them.
pub fn may_owe_event(
    auto_recharge_enabled: bool,
    after_vs_auto: Option<Ordering>,
    after_vs_low: Option<Ordering>,
    before_vs_low: Option<Ordering>,
) -> bool {
    use Ordering::Less;
    let auto = if auto_recharge_enabled {
        after_vs_auto.map(|o| o == Less)
    } else {
        Some(false)
    };
    let low = match (
        after_vs_low.map(|o| o == Less),
        before_vs_low.map(|o| o != Less),
    ) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    };
    match (auto, low) {
        (Some(true), _) | (_, Some(true)) => true,
        (Some(false), Some(false)) => false,
        _ => true,
    }
}

/// What the accounts row trigger tells a one-statement spend (`spend_at_once_sql!`) about the
/// row it updated: whether an event may now be due (`may_owe_event`). The statement's own
/// RETURNING used to compute it, 27k instructions of a hold's 351k (PostgreSQL builds a
/// RETURNING expression in every execution); the trigger has the row before and after at hand.
///
/// A watch covers one statement: `Watch::start` before it, `finish` after it. It answers "none
/// due" only if the trigger saw this watch's account updated and found none; anything else (a
/// disabled trigger, a nested spend that started a watch of its own, a threshold not known)
/// answers "maybe", and the caller reads the account and decides exactly.
#[derive(Clone, Copy)]
struct Watching {
    token: u64,
    account_id: i64,
    /// The subtransaction the spend runs in: an update made in another (a user trigger's
    /// EXCEPTION block, which may roll back alone) is not taken as the spend's.
    subxact: u32,
    seen: bool,
    due: bool,
    /// The account's currency, as the accounts trigger read it (None if not seen or too long).
    currency: Option<Code>,
}

/// A currency code kept inline, zero-padded, so that a watch stays `Copy` (ISO 4217 codes have 3
/// letters; a longer code is not kept, and its checks then read the table; text has no NUL).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Code([u8; 8]);

impl Code {
    fn of(code: &str) -> Option<Code> {
        let b = code.as_bytes();
        let mut bytes = [0; 8];
        bytes.get_mut(..b.len())?.copy_from_slice(b);
        Some(Code(bytes))
    }
}

thread_local! {
    static WATCHING: Cell<Option<Watching>> = const { Cell::new(None) };
    static LAST_TOKEN: Cell<u64> = const { Cell::new(0) };
}

/// A watch of one spend (see `Watching`); it ends when dropped, an error included.
pub struct Watch(u64);

impl Watch {
    pub fn start(account_id: i64) -> Watch {
        Self::start_in(account_id, current_subxact())
    }

    fn start_in(account_id: i64, subxact: u32) -> Watch {
        let token = LAST_TOKEN.get().wrapping_add(1);
        LAST_TOKEN.set(token);
        WATCHING.set(Some(Watching {
            token,
            account_id,
            subxact,
            seen: false,
            due: false,
            currency: None,
        }));
        Watch(token)
    }

    /// Whether the accounts trigger saw the watched account updated by this spend: then its
    /// statement changed the account, whatever else it did.
    pub fn saw_update(&self) -> bool {
        matches!(WATCHING.get(), Some(w) if w.token == self.0 && w.seen)
    }

    /// For a spend whose statement returned no row (`what`, written to `table`, is missing): an
    /// error if the account was updated all the same, which means a trigger on `table`
    /// suppressed the row; going on to the locking path would spend a second time. The error
    /// undoes the statement.
    pub fn refuse_if_suppressed(&self, table: &str, what: &str) -> Result<()> {
        if self.saw_update() {
            return Err(crate::error::BillingError::Internal(format!(
                "a trigger on {table} suppressed the {what} of a spend; nothing was changed"
            )));
        }
        Ok(())
    }

    /// Whether an event may be due: false only if the trigger saw the account and found none.
    pub fn finish(self) -> bool {
        !matches!(WATCHING.get(), Some(w) if w.token == self.0 && w.seen && !w.due)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if matches!(WATCHING.get(), Some(w) if w.token == self.0) {
            WATCHING.set(None);
        }
    }
}

fn current_subxact() -> u32 {
    // SAFETY: reads the backend's current subtransaction id; called inside a transaction.
    unsafe { pgrx::pg_sys::GetCurrentSubTransactionId() }
}

/// For the accounts row trigger, on an UPDATE that is the last BEFORE trigger to see the row:
/// whether a spend watches this account's update.
pub fn watched(account_id: i64) -> bool {
    watched_in(account_id, current_subxact())
}

fn watched_in(account_id: i64, subxact: u32) -> bool {
    matches!(WATCHING.get(), Some(w) if w.account_id == account_id && w.subxact == subxact)
}

/// For the accounts row trigger (as `watched`): the watched account, in `currency`, was
/// updated; `due` as `may_owe_event`.
pub fn saw(account_id: i64, currency: Option<&str>, due: bool) {
    saw_in(account_id, current_subxact(), currency, due)
}

fn saw_in(account_id: i64, subxact: u32, currency: Option<&str>, due: bool) {
    if let Some(mut w) = WATCHING
        .get()
        .filter(|w| w.account_id == account_id && w.subxact == subxact)
    {
        w.seen = true;
        w.due |= due;
        w.currency = currency.and_then(Code::of);
        WATCHING.set(Some(w));
    }
}

/// For the hold's row trigger: whether the statement of the running watch has updated this
/// account (the accounts trigger saw the UPDATE, in the spend's own subtransaction, as the last
/// BEFORE trigger). Then the account exists and this statement holds its row lock: the hold's
/// existence probe of the account (the foreign key it replaces) can be skipped. Accounts are
/// never deleted; the account was there before the update, or was made in the same
/// subtransaction and is undone only with the spend; and a watch ends with its statement
/// (`Drop`, on an error too).
pub fn saw_account(account_id: i64) -> bool {
    matches!(WATCHING.get(), Some(w) if w.account_id == account_id && w.seen)
}

/// For the ledger's balance check: `saw_account`, and the account's currency is `currency` (an
/// account's currency never changes), which is all the check would read the account for.
pub fn saw_account_in(account_id: i64, currency: &str) -> bool {
    matches!(WATCHING.get(), Some(w) if w.account_id == account_id && w.seen
        && w.currency.is_some() && w.currency == Code::of(currency))
}

/// After a one-statement spend whose watch said an event may be due: reads the account (locked
/// by that statement) and records what is due, with `available` before and after.
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
    fn an_event_may_be_due_unless_every_rule_says_no() {
        use Ordering::*;
        // auto-recharge off: only the low-balance crossing counts
        assert!(!may_owe_event(false, None, Some(Greater), Some(Greater)));
        assert!(
            may_owe_event(false, None, Some(Less), Some(Equal)),
            "crossed from the threshold"
        );
        assert!(
            !may_owe_event(false, None, Some(Less), Some(Less)),
            "already below"
        );
        assert!(
            !may_owe_event(false, None, Some(Equal), Some(Greater)),
            "landed on it"
        );
        // auto-recharge on: below its threshold is enough
        assert!(may_owe_event(
            true,
            Some(Less),
            Some(Greater),
            Some(Greater)
        ));
        assert!(!may_owe_event(
            true,
            Some(Equal),
            Some(Greater),
            Some(Greater)
        ));
        // unknown (a NULL threshold) is "maybe" unless the other rule already says yes or both no
        assert!(may_owe_event(true, None, Some(Greater), Some(Greater)));
        assert!(may_owe_event(false, None, None, Some(Greater)));
        assert!(may_owe_event(false, None, Some(Less), None));
        assert!(
            !may_owe_event(false, None, Some(Greater), None),
            "not below: no crossing"
        );
        assert!(
            !may_owe_event(false, None, None, Some(Less)),
            "was below: no crossing"
        );
    }

    #[test]
    fn a_watch_says_none_due_only_when_its_account_was_seen_without_one() {
        const X: u32 = 1; // the spend's subtransaction
        let saw = |id, currency, due| saw_in(id, X, currency, due);
        let w = Watch::start_in(7, X);
        assert!(w.finish(), "not seen (a disabled trigger): maybe");
        let w = Watch::start_in(7, X);
        saw(8, Some("INR"), false);
        assert!(w.finish(), "another account was seen");
        let w = Watch::start_in(7, X);
        assert!(watched_in(7, X) && !watched_in(8, X));
        assert!(
            !watched_in(7, X + 1),
            "an update in another subtransaction is not the spend's"
        );
        saw_in(7, X + 1, Some("INR"), false);
        assert!(!w.saw_update());
        saw(7, Some("INR"), false);
        assert!(w.saw_update());
        assert!(!w.finish());
        let w = Watch::start_in(7, X);
        saw(7, Some("INR"), false);
        saw(7, Some("INR"), true);
        assert!(w.finish(), "any update that may owe one");
        let outer = Watch::start_in(7, X);
        saw(7, Some("INR"), false);
        let inner = Watch::start_in(7, X);
        saw(7, Some("INR"), false);
        assert!(!inner.finish());
        assert!(
            outer.finish(),
            "a nested spend ended the outer watch: maybe"
        );
        assert!(!watched_in(7, X), "a dropped watch watches nothing");
        let w = Watch::start_in(7, X);
        assert!(!saw_account(7), "not yet updated");
        saw(7, Some("INR"), true);
        assert!(saw_account(7) && !saw_account(8));
        assert!(saw_account_in(7, "INR") && !saw_account_in(7, "USD") && !saw_account_in(8, "INR"));
        saw(7, Some("A-CODE-LONGER-THAN-8"), false);
        assert!(
            saw_account(7) && !saw_account_in(7, "A-CODE-LONGER-THAN-8"),
            "not kept: read it"
        );
        drop(w);
        assert!(!saw_account(7), "the watch ended with its statement");
    }

    #[test]
    fn json_numbers_keep_every_digit() {
        assert_eq!(num(dec("1180.00")).to_string(), "1180.00");
        assert_eq!(num(dec("0.000001")).to_string(), "0.000001");
    }
}
