//! Row invariants of the tables every hold and charge writes (`accounts`, `reservations`,
//! `ledger_entries`, `usage`), checked by compiled BEFORE triggers instead of CHECK constraints.
//!
//! Why: PostgreSQL parses and plans a table's CHECK expressions anew in every statement that
//! writes the table (ExecRelCheck builds them per executor, from their stored text). Under
//! callgrind that was 42% of the instructions of a `reserve_credits` call, more than the UPDATE
//! and the INSERT themselves (docs/performance.md). The rules here are exactly the CHECKs they
//! replace, with SQL's semantics (a comparison with NULL passes) and the same constraint names
//! in the 23514 message. The spending limit itself, `available_not_negative`, was the last CHECK
//! (0.4.0 moved it here, 8% of a hold); the accounts trigger is `ENABLE ALWAYS`, so it fires in
//! replica mode too (a subscriber's apply, a restore that sets `session_replication_role`).
//!
//! Each trigger is named `row_invariants` so that it fires after the extension's other BEFORE
//! triggers (they fire in name order), on the row as it will be written, as a CHECK would. A
//! user's BEFORE trigger named after it would run later; the accounts trigger then does not
//! answer a spend's watch (`fires_last_before_update`).

use pgrx::heap_tuple::PgHeapTuple;
use pgrx::prelude::*;
use pgrx::AllocatedByPostgres;
use std::cell::Cell;
use std::cmp::Ordering;
use std::num::NonZeroUsize;

type Row<'a> = PgHeapTuple<'a, AllocatedByPostgres>;

/// A constraint a row breaks: the table and the name of the CHECK this rule replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Broken(pub &'static str, pub &'static str);

/// The columns a rule reads, found by name in one walk of the tuple descriptor (`get_by_name`
/// walks it again for every column) and read in place: a numeric is compared where it lies, not
/// copied out (these triggers run for every hold and charge; docs/performance.md).
struct Cols {
    tuple: *mut pg_sys::HeapTupleData,
    /// The row before an UPDATE; null on INSERT.
    old: *mut pg_sys::HeapTupleData,
    tupdesc: pg_sys::TupleDesc,
    at: Vec<i32>,
    zero: Cell<Option<pg_sys::Datum>>,
}

impl Cols {
    /// The new row of a row trigger on INSERT or UPDATE.
    fn new(trigger: &PgTrigger<'_>, names: &'static [&'static str]) -> Self {
        let relation = trigger.relation().expect("a trigger has a relation");
        let data = trigger.trigger_data();
        let by_update =
            data.tg_event & pg_sys::TRIGGER_EVENT_OPMASK == pg_sys::TRIGGER_EVENT_UPDATE;
        Cols {
            tuple: if by_update {
                data.tg_newtuple
            } else {
                data.tg_trigtuple
            },
            old: if by_update {
                data.tg_trigtuple
            } else {
                std::ptr::null_mut()
            },
            tupdesc: relation.rd_att,
            at: crate::transition::attnums(&relation, names),
            zero: Cell::new(None),
        }
    }

    fn datum(&self, i: usize) -> Option<pg_sys::Datum> {
        let attno = NonZeroUsize::new(self.at[i] as usize).expect("attribute numbers start at 1");
        // SAFETY: the trigger's new tuple and its relation's descriptor, valid during the call;
        // the attribute number was found in that descriptor.
        unsafe { pgrx::htup::heap_getattr_raw(self.tuple, attno, self.tupdesc) }
    }

    /// Column `i` of the row before an UPDATE (None on INSERT or for NULL).
    fn old_datum(&self, i: usize) -> Option<pg_sys::Datum> {
        if self.old.is_null() {
            return None;
        }
        let attno = NonZeroUsize::new(self.at[i] as usize).expect("attribute numbers start at 1");
        // SAFETY: the trigger's old tuple, of the same relation and descriptor, valid during the
        // call.
        unsafe { pgrx::htup::heap_getattr_raw(self.old, attno, self.tupdesc) }
    }

    fn text(&self, i: usize) -> Option<String> {
        crate::transition::get(self.datum(i))
    }

    fn int8(&self, i: usize) -> Option<i64> {
        crate::transition::get(self.datum(i))
    }

    fn is_null(&self, i: usize) -> bool {
        self.datum(i).is_none()
    }

    /// Numeric zero, made once per call.
    fn zero(&self) -> pg_sys::Datum {
        match self.zero.get() {
            Some(z) => z,
            None => {
                let z = numeric_of(0);
                self.zero.set(Some(z));
                z
            }
        }
    }

    /// A numeric column against zero; None for NULL.
    fn sign(&self, i: usize) -> Option<Ordering> {
        self.datum(i)
            .map(|d| numeric_sign(d).unwrap_or_else(|| numeric_cmp(d, self.zero())))
    }

    /// Two numeric columns against each other; None if either is NULL.
    fn cmp(&self, i: usize, j: usize) -> Option<Ordering> {
        Some(numeric_cmp(self.datum(i)?, self.datum(j)?))
    }
}

fn numeric_of(n: i32) -> pg_sys::Datum {
    // SAFETY: int4_numeric takes one non-NULL int4 and returns a numeric in the current context.
    unsafe { pgrx::direct_function_call(pg_sys::int4_numeric, &[Some(pg_sys::Datum::from(n))]) }
        .expect("int4_numeric returns a value")
}

fn numeric_cmp(a: pg_sys::Datum, b: pg_sys::Datum) -> Ordering {
    // SAFETY: both are non-NULL numeric datums of a row (or numeric_of); numeric_cmp reads them.
    let c: i32 = unsafe { pgrx::direct_function_call(pg_sys::numeric_cmp, &[Some(a), Some(b)]) }
        .expect("numeric_cmp returns a value");
    c.cmp(&0)
}

/// The sign of a numeric datum, as `numeric_cmp(d, 0)` orders it (NaN and +Infinity above zero),
/// read from the numeric's stored header: the rules ask it of every numeric column of every hold
/// and charge, and a call of `numeric_cmp` (a detoasted copy, a comparison, the function-call
/// frame) costs about ten times as much (docs/performance.md, item 20). None for a value that is
/// compressed or stored out of line (TOAST), or not well formed: compare it the usual way.
pub(crate) fn numeric_sign(d: pg_sys::Datum) -> Option<Ordering> {
    let p = d.cast_mut_ptr::<pg_sys::varlena>();
    // SAFETY: a non-NULL numeric datum, so a varlena; only an inline one (1- or 4-byte header,
    // not compressed) is read, within its stated size.
    unsafe {
        use pgrx::varlena::{varatt_is_1b_e, varatt_is_4b_c, vardata_any, varsize_any_exhdr};
        if varatt_is_1b_e(p) || varatt_is_4b_c(p) {
            return None;
        }
        let body = std::slice::from_raw_parts(vardata_any(p).cast::<u8>(), varsize_any_exhdr(p));
        sign_of_stored_numeric(body)
    }
}

/// The sign of a numeric from its stored bytes after the varlena header, None if they are not a
/// numeric's. PostgreSQL's on-disk format (numeric.c; pg_upgrade keeps it): a uint16 header in
/// which 0xC000 marks a special value (NaN 0xC000, +Infinity 0xD000, -Infinity 0xF000), 0x8000
/// the short format (negative when 0x2000 is set) and anything else the long format (0x4000
/// negative, 0 positive) with an int16 weight after it; then the digits, two bytes each. Every
/// numeric is stored with its leading and trailing zero digits stripped, so zero has no digits
/// and any other value has some.
pub fn sign_of_stored_numeric(body: &[u8]) -> Option<Ordering> {
    let header = u16::from_ne_bytes([*body.first()?, *body.get(1)?]);
    let (digits_at, negative) = match header & 0xC000 {
        0xC000 => {
            return match header & 0xF000 {
                0xC000 | 0xD000 => Some(Ordering::Greater),
                0xF000 => Some(Ordering::Less),
                _ => None,
            };
        }
        0x8000 => (2, header & 0x2000 != 0),
        0x4000 => (4, true),
        _ => (4, false),
    };
    let digits = body.len().checked_sub(digits_at)?;
    if digits % 2 != 0 {
        return None;
    }
    Some(match (digits, negative) {
        (0, _) => Ordering::Equal,
        (_, true) => Ordering::Less,
        (_, false) => Ordering::Greater,
    })
}

/// `numeric_add` or `numeric_sub` of two numerics.
fn numeric_op(
    op: unsafe fn(pg_sys::FunctionCallInfo) -> pg_sys::Datum,
    a: pg_sys::Datum,
    b: pg_sys::Datum,
) -> pg_sys::Datum {
    // SAFETY: op is numeric_add or numeric_sub, both arguments non-NULL numeric datums; the
    // result is allocated in the current memory context.
    unsafe { pgrx::direct_function_call(op, &[Some(a), Some(b)]) }
        .expect("numeric op returns a value")
}

/// SQL's `value >= 0` (or `> 0`) as a CHECK sees it: NULL passes.
fn at_least_zero(s: Option<Ordering>) -> bool {
    s != Some(Ordering::Less)
}
fn above_zero(s: Option<Ordering>) -> bool {
    s.is_none() || s == Some(Ordering::Greater)
}

/// The first rule broken, by the name of the CHECK it replaces.
fn first_broken(table: &'static str, rules: &[(bool, &'static str)]) -> Result<(), Broken> {
    match rules.iter().find(|(ok, _)| !ok) {
        Some((_, name)) => Err(Broken(table, name)),
        None => Ok(()),
    }
}

/// The account rules: the spending limit (`available = balance - reserved + overdraft_limit`
/// never below 0), limits and thresholds not negative, an auto-recharge amount above 0, and the
/// two state columns within their words.
#[allow(clippy::too_many_arguments)]
pub fn account_rule(
    available: Option<Ordering>,
    reserved: Option<Ordering>,
    overdraft_limit: Option<Ordering>,
    low_balance_threshold: Option<Ordering>,
    auto_recharge_threshold: Option<Ordering>,
    auto_recharge_amount: Option<Ordering>,
    billing_mode: Option<&str>,
    auto_recharge: Option<&str>,
) -> Result<(), Broken> {
    let t = "accounts";
    let checks = [
        (at_least_zero(reserved), "accounts_reserved_check"),
        (
            at_least_zero(overdraft_limit),
            "accounts_overdraft_limit_check",
        ),
        (
            at_least_zero(low_balance_threshold),
            "accounts_low_balance_threshold_check",
        ),
        (
            billing_mode.is_none_or(|m| ["prepaid", "postpaid"].contains(&m)),
            "accounts_billing_mode_check",
        ),
        (
            auto_recharge.is_none_or(|s| ["disabled", "enabled", "suspended"].contains(&s)),
            "accounts_auto_recharge_check",
        ),
        (
            at_least_zero(auto_recharge_threshold),
            "accounts_auto_recharge_threshold_check",
        ),
        (
            above_zero(auto_recharge_amount),
            "accounts_auto_recharge_amount_check",
        ),
        // Last, as the CHECK it was ran after the rest: the same row reports the same rule.
        (at_least_zero(available), "available_not_negative"),
    ];
    first_broken(t, &checks)
}

/// The hold rules: an amount above 0, a known status, resolved exactly when not pending, a
/// captured amount exactly when captured, above 0 and at most the amount held.
pub fn reservation_rule(
    amount: Option<Ordering>,
    status: Option<&str>,
    captured: Option<(Ordering, Ordering)>,
    resolved: bool,
) -> Result<(), Broken> {
    let t = "reservations";
    // captured: its sign, and its order against the amount held.
    let captured_ok = captured.is_none_or(|(sign, vs_amount)| {
        sign == Ordering::Greater && vs_amount != Ordering::Greater
    });
    let checks = [
        (above_zero(amount), "reservations_amount_check"),
        (
            status.is_none_or(|s| ["pending", "captured", "released", "expired"].contains(&s)),
            "reservations_status_check",
        ),
        (captured_ok, "reservations_check"),
        (
            status.is_none_or(|s| (s == "pending") != resolved),
            "resolved_iff_not_pending",
        ),
        (
            status.is_none_or(|s| (s == "captured") == captured.is_some()),
            "captured_iff_status_captured",
        ),
    ];
    first_broken(t, &checks)
}

/// The ledger accounts a leg may name.
pub const LEDGER_ACCOUNTS: [&str; 6] = [
    "wallet",
    "payments_clearing",
    "tax_payable",
    "revenue",
    "carrier_fees_payable",
    "receivables",
];

/// A ledger leg: a known ledger account and an amount that is not zero.
pub fn ledger_rule(ledger_account: Option<&str>, amount: Option<Ordering>) -> Result<(), Broken> {
    first_broken(
        "ledger_entries",
        &[
            (
                ledger_account.is_none_or(|a| LEDGER_ACCOUNTS.contains(&a)),
                "ledger_entries_ledger_account_check",
            ),
            (
                amount != Some(Ordering::Equal),
                "ledger_entries_amount_check",
            ),
        ],
    )
}

/// A usage row: units, price and carrier fee not negative.
pub fn usage_rule(
    units: Option<Ordering>,
    price: Option<Ordering>,
    carrier_fee: Option<Ordering>,
) -> Result<(), Broken> {
    let t = "usage";
    let checks = [
        (at_least_zero(units), "usage_units_check"),
        (at_least_zero(price), "usage_price_check"),
        (at_least_zero(carrier_fee), "usage_carrier_fee_check"),
    ];
    first_broken(t, &checks)
}

fn refuse(Broken(table, constraint): Broken) -> ! {
    ereport!(
        PgLogLevel::ERROR,
        PgSqlErrorCode::ERRCODE_CHECK_VIOLATION,
        format!("new row for relation \"{table}\" violates check constraint \"{constraint}\"")
    );
    unreachable!("ereport(ERROR) does not return")
}

/// `available = balance - reserved + overdraft_limit` of a row, from the datums of its three
/// columns (None if one is NULL: the columns are NOT NULL).
fn available_of(
    balance: Option<pg_sys::Datum>,
    reserved: Option<pg_sys::Datum>,
    limit: Option<pg_sys::Datum>,
) -> Option<pg_sys::Datum> {
    Some(numeric_op(
        pg_sys::numeric_add,
        numeric_op(pg_sys::numeric_sub, balance?, reserved?),
        limit?,
    ))
}

/// `billing.account_row_invariants()`: BEFORE INSERT OR UPDATE trigger of billing.accounts.
/// Locks nothing, reads nothing but the row; 23514 when a rule is broken. On an UPDATE that a
/// one-statement spend watches (`events::Watch`), also tells it whether an event may be due.
#[pg_trigger(sql = false)]
fn account_row_invariants<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<Row<'a>>, std::convert::Infallible> {
    let row = trigger
        .new()
        .expect("a row trigger on INSERT or UPDATE has a new row");
    let c = Cols::new(
        trigger,
        &[
            "balance",
            "reserved",
            "overdraft_limit",
            "low_balance_threshold",
            "auto_recharge_threshold",
            "auto_recharge_amount",
            "billing_mode",
            "auto_recharge",
            "id",
            "currency",
        ],
    );
    // Computed as the CHECK did (so a NaN anywhere passes, as NaN >= 0 does in SQL), against 0.
    let available = available_of(c.datum(0), c.datum(1), c.datum(2));
    let auto_recharge = c.text(7);
    if let Err(b) = account_rule(
        available.map(|a| numeric_cmp(a, c.zero())),
        c.sign(1),
        c.sign(2),
        c.sign(3),
        c.sign(4),
        c.sign(5),
        c.text(6).as_deref(),
        auto_recharge.as_deref(),
    ) {
        refuse(b);
    }
    // Only an UPDATE, and only when the row seen here is the row written (a user's BEFORE trigger
    // named after this one could still change it): otherwise the watch stays unseen ("maybe").
    let watched = c.int8(8).filter(|id| {
        !c.old.is_null() && crate::events::watched(*id) && fires_last_before_update(trigger)
    });
    if let Some(id) = watched {
        let currency = c.text(9);
        // NULL means the currency's default, known here while the policy copy is exact.
        let low = c.datum(3).or_else(|| {
            currency
                .as_deref()
                .and_then(crate::policy::default_threshold)
        });
        let vs = |a: Option<pg_sys::Datum>, t: Option<pg_sys::Datum>| Some(numeric_cmp(a?, t?));
        // Only what can change the answer is computed (may_owe_event ignores the rest): the
        // auto-recharge threshold while enabled, the row before only below the low threshold.
        let enabled = auto_recharge.as_deref() == Some("enabled");
        let after_vs_auto = if enabled {
            vs(available, c.datum(4))
        } else {
            None
        };
        let after_vs_low = vs(available, low);
        let before_vs_low = if after_vs_low.is_none_or(|o| o == Ordering::Less) {
            vs(
                available_of(c.old_datum(0), c.old_datum(1), c.old_datum(2)),
                low,
            )
        } else {
            None
        };
        let due = crate::events::may_owe_event(enabled, after_vs_auto, after_vs_low, before_vs_low);
        crate::events::saw(id, currency.as_deref(), due);
    }
    Ok(Some(row))
}

/// Whether no other enabled BEFORE UPDATE row trigger of the table fires after this one (they
/// fire in name order, `row_invariants` after the extension's own): then the row this trigger
/// sees is the row written.
fn fires_last_before_update(trigger: &PgTrigger<'_>) -> bool {
    let data = trigger.trigger_data();
    // SAFETY: the trigger's relation and its trigger descriptor are valid during the call; the
    // executor's copy of the descriptor (tg_trigger points into it) has the same order.
    unsafe {
        let desc = (*data.tg_relation).trigdesc;
        if desc.is_null() {
            return true;
        }
        let all = std::slice::from_raw_parts((*desc).triggers, (*desc).numtriggers as usize);
        let ours = (*data.tg_trigger).tgoid;
        let before_update_row = (pg_sys::TRIGGER_TYPE_ROW
            | pg_sys::TRIGGER_TYPE_BEFORE
            | pg_sys::TRIGGER_TYPE_UPDATE) as i16;
        let kind_mask = before_update_row | pg_sys::TRIGGER_TYPE_INSTEAD as i16;
        all.iter().skip_while(|t| t.tgoid != ours).skip(1).all(|t| {
            t.tgtype & kind_mask != before_update_row
                || t.tgenabled == pg_sys::TRIGGER_DISABLED as std::ffi::c_char
        })
    }
}

/// `billing.reservation_row_invariants()`: BEFORE INSERT OR UPDATE trigger of
/// billing.reservations. Locks nothing; 23514 when a rule is broken; on INSERT, 23503 unless the
/// hold's account exists (one probe of its primary key: the foreign key this replaces).
#[pg_trigger(sql = false)]
fn reservation_row_invariants<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<Row<'a>>, std::convert::Infallible> {
    let row = trigger
        .new()
        .expect("a row trigger on INSERT or UPDATE has a new row");
    let c = Cols::new(
        trigger,
        &["amount", "captured", "status", "resolved_at", "account_id"],
    );
    let captured = c
        .sign(1)
        .map(|sign| (sign, c.cmp(1, 0).unwrap_or(Ordering::Less)));
    if let Err(b) = reservation_rule(c.sign(0), c.text(2).as_deref(), captured, !c.is_null(3)) {
        refuse(b);
    }
    // The hold's account must exist (what the foreign key checked before 0.4.0). On INSERT only:
    // guard_transition, which fires first, refuses any change of account_id. A one-statement
    // hold has just updated the account in this statement: no probe needed (events::saw_account).
    if matches!(trigger.op(), Ok(PgTriggerOperation::Insert)) {
        if let Some(id) = c
            .int8(4)
            .filter(|id| !crate::events::saw_account(*id) && !crate::accounts::exists(*id))
        {
            ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_FOREIGN_KEY_VIOLATION,
                "insert or update on table \"reservations\" violates foreign key constraint \"reservations_account_id_fkey\"",
                format!("Key (account_id)=({id}) is not present in table \"accounts\".")
            );
        }
    }
    Ok(Some(row))
}

/// `billing.ledger_row_invariants()`: BEFORE INSERT trigger of billing.ledger_entries (which
/// refuses UPDATE and DELETE by another trigger). Reads nothing but the new row; 23514.
#[pg_trigger(sql = false)]
fn ledger_row_invariants<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<Row<'a>>, std::convert::Infallible> {
    let row = trigger
        .new()
        .expect("a row trigger on INSERT has a new row");
    let c = Cols::new(trigger, &["ledger_account", "amount"]);
    if let Err(b) = ledger_rule(c.text(0).as_deref(), c.sign(1)) {
        refuse(b);
    }
    Ok(Some(row))
}

/// `billing.usage_row_invariants()`: BEFORE INSERT OR UPDATE trigger of billing.usage. Reads
/// nothing but the new row; 23514.
#[pg_trigger(sql = false)]
fn usage_row_invariants<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<Row<'a>>, std::convert::Infallible> {
    let row = trigger
        .new()
        .expect("a row trigger on INSERT or UPDATE has a new row");
    let c = Cols::new(trigger, &["units", "price", "carrier_fee"]);
    if let Err(b) = usage_rule(c.sign(0), c.sign(1), c.sign(2)) {
        refuse(b);
    }
    Ok(Some(row))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::{Equal as Z, Greater as P, Less as N};

    #[test]
    fn a_stored_numeric_gives_its_sign() {
        use Ordering::*;
        let h = |x: u16| x.to_ne_bytes().to_vec();
        let with = |mut v: Vec<u8>, digits: usize| {
            v.extend(std::iter::repeat_n(1, 2 * digits));
            v
        };
        assert_eq!(
            sign_of_stored_numeric(&h(0x8000)),
            Some(Equal),
            "short zero"
        );
        assert_eq!(sign_of_stored_numeric(&with(h(0x8000), 1)), Some(Greater));
        assert_eq!(
            sign_of_stored_numeric(&with(h(0xA000), 2)),
            Some(Less),
            "short, negative"
        );
        assert_eq!(
            sign_of_stored_numeric(&with(h(0x0000), 0)),
            None,
            "long needs its weight"
        );
        assert_eq!(
            sign_of_stored_numeric(&with([h(0x0000), h(0)].concat(), 0)),
            Some(Equal)
        );
        assert_eq!(
            sign_of_stored_numeric(&with([h(0x0000), h(30)].concat(), 3)),
            Some(Greater)
        );
        assert_eq!(
            sign_of_stored_numeric(&with([h(0x4000), h(30)].concat(), 3)),
            Some(Less)
        );
        assert_eq!(
            sign_of_stored_numeric(&h(0xC000)),
            Some(Greater),
            "NaN sorts above all"
        );
        assert_eq!(
            sign_of_stored_numeric(&h(0xD000)),
            Some(Greater),
            "+Infinity"
        );
        assert_eq!(sign_of_stored_numeric(&h(0xF000)), Some(Less), "-Infinity");
        assert_eq!(
            sign_of_stored_numeric(&h(0xE000)),
            None,
            "no such special value"
        );
        assert_eq!(sign_of_stored_numeric(&[0x80]), None, "too short");
        assert_eq!(
            sign_of_stored_numeric(&[h(0x8000), vec![1]].concat()),
            None,
            "half a digit"
        );
    }

    #[test]
    fn account_rules_are_the_checks_they_replace() {
        let ok = |r, o, l, t, a, m, s| account_rule(Some(Z), r, o, l, t, a, m, s).is_ok();
        assert!(ok(
            Some(Z),
            Some(Z),
            None,
            None,
            None,
            Some("prepaid"),
            Some("disabled")
        ));
        assert!(ok(
            Some(P),
            Some(P),
            Some(Z),
            Some(Z),
            Some(P),
            Some("postpaid"),
            Some("enabled")
        ));
        let err = |r, o, l, t, a, m, s| account_rule(Some(P), r, o, l, t, a, m, s).unwrap_err().1;
        assert_eq!(
            account_rule(Some(N), Some(Z), Some(Z), None, None, None, None, None)
                .unwrap_err()
                .1,
            "available_not_negative"
        );
        assert!(account_rule(None, Some(Z), Some(Z), None, None, None, None, None).is_ok());
        assert_eq!(
            err(Some(N), Some(Z), None, None, None, None, None),
            "accounts_reserved_check"
        );
        assert_eq!(
            err(Some(Z), Some(N), None, None, None, None, None),
            "accounts_overdraft_limit_check"
        );
        assert_eq!(
            err(Some(Z), Some(Z), Some(N), None, None, None, None),
            "accounts_low_balance_threshold_check"
        );
        assert_eq!(
            err(Some(Z), Some(Z), None, Some(N), None, None, None),
            "accounts_auto_recharge_threshold_check"
        );
        assert_eq!(
            err(Some(Z), Some(Z), None, None, Some(Z), None, None),
            "accounts_auto_recharge_amount_check"
        );
        assert_eq!(
            err(Some(Z), Some(Z), None, None, None, Some("monthly"), None),
            "accounts_billing_mode_check"
        );
        assert_eq!(
            err(Some(Z), Some(Z), None, None, None, None, Some("on")),
            "accounts_auto_recharge_check"
        );
    }

    #[test]
    fn hold_rules_are_the_checks_they_replace() {
        assert!(reservation_rule(Some(P), Some("pending"), None, false).is_ok());
        assert!(reservation_rule(Some(P), Some("captured"), Some((P, Z)), true).is_ok());
        assert!(reservation_rule(Some(P), Some("released"), None, true).is_ok());
        let err = |a, s, c, r| reservation_rule(a, s, c, r).unwrap_err().1;
        assert_eq!(
            err(Some(Z), Some("pending"), None, false),
            "reservations_amount_check"
        );
        assert_eq!(
            err(Some(P), Some("held"), None, false),
            "reservations_status_check"
        );
        assert_eq!(
            err(Some(P), Some("captured"), Some((P, P)), true),
            "reservations_check"
        );
        assert_eq!(
            err(Some(P), Some("captured"), Some((Z, N)), true),
            "reservations_check"
        );
        assert_eq!(
            err(Some(P), Some("pending"), None, true),
            "resolved_iff_not_pending"
        );
        assert_eq!(
            err(Some(P), Some("expired"), None, false),
            "resolved_iff_not_pending"
        );
        assert_eq!(
            err(Some(P), Some("captured"), None, true),
            "captured_iff_status_captured"
        );
        assert_eq!(
            err(Some(P), Some("released"), Some((P, N)), true),
            "captured_iff_status_captured"
        );
    }

    #[test]
    fn ledger_and_usage_rules_are_the_checks_they_replace() {
        for a in LEDGER_ACCOUNTS {
            assert!(ledger_rule(Some(a), Some(N)).is_ok());
        }
        assert_eq!(
            ledger_rule(Some("cash"), Some(P)).unwrap_err().1,
            "ledger_entries_ledger_account_check"
        );
        assert_eq!(
            ledger_rule(Some("wallet"), Some(Z)).unwrap_err().1,
            "ledger_entries_amount_check"
        );
        assert!(usage_rule(Some(Z), Some(Z), Some(Z)).is_ok());
        assert_eq!(
            usage_rule(Some(N), Some(Z), Some(Z)).unwrap_err().1,
            "usage_units_check"
        );
        assert_eq!(
            usage_rule(Some(Z), Some(N), Some(Z)).unwrap_err().1,
            "usage_price_check"
        );
        assert_eq!(
            usage_rule(Some(Z), Some(Z), Some(N)).unwrap_err().1,
            "usage_carrier_fee_check"
        );
    }
}

/// The SQL-visible entry point of a compiled trigger (`LANGUAGE c`, symbol `$symbol`): called as
/// anything but a trigger it raises 0A000, as PL/pgSQL trigger functions do, instead of the
/// pgrx wrapper's internal error; as a trigger it runs the pgrx wrapper.
macro_rules! trigger_symbol {
    ($symbol:ident, $finfo:ident, $wrapper:ident) => {
        #[unsafe(no_mangle)]
        #[doc(hidden)]
        pub extern "C" fn $finfo() -> &'static pg_sys::Pg_finfo_record {
            const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }

        #[unsafe(no_mangle)]
        #[doc(hidden)]
        pub unsafe extern "C-unwind" fn $symbol(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
            // SAFETY: fcinfo comes from PostgreSQL's function manager.
            if !unsafe { pgrx::trigger_support::called_as_trigger(fcinfo) } {
                pg_sys::submodules::panic::pgrx_extern_c_guard(|| {
                    ereport!(
                        PgLogLevel::ERROR,
                        PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                        "trigger functions can only be called as triggers"
                    );
                    pg_sys::Datum::from(0)
                })
            } else {
                // SAFETY: called as a trigger, with PostgreSQL's fcinfo.
                unsafe { $wrapper(fcinfo) }
            }
        }
    };
}
pub(crate) use trigger_symbol;
trigger_symbol!(
    billing_account_row_invariants,
    pg_finfo_billing_account_row_invariants,
    account_row_invariants_wrapper
);
trigger_symbol!(
    billing_reservation_row_invariants,
    pg_finfo_billing_reservation_row_invariants,
    reservation_row_invariants_wrapper
);
trigger_symbol!(
    billing_ledger_row_invariants,
    pg_finfo_billing_ledger_row_invariants,
    ledger_row_invariants_wrapper
);
trigger_symbol!(
    billing_usage_row_invariants,
    pg_finfo_billing_usage_row_invariants,
    usage_row_invariants_wrapper
);
