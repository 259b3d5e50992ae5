//! The spending policy of the reference tables, as the one-statement spends take it: which
//! dunning stages may spend (`dunning_stages.outbound_allowed`), each currency's default
//! low-balance threshold (`currencies.low_balance_threshold`), and the rates of a charge
//! (`rates`).
//!
//! A hold or a charge used to join both tables in its UPDATE, a tenth of a hold's instructions
//! (two more relations and their indexes to open and scan in every statement). They change
//! rarely and only by an administrator, so each backend keeps a copy: the outbound stages as an
//! array passed to the statement as a parameter, the default thresholds for the accounts row
//! trigger, which tells the statement whether an event may be due (`events::Watch`). A
//! one-statement charge also looked its rate up with the account's currency, a statement of its
//! own (8% of a charge): where only one currency has a rate for a channel and category, the
//! charge now takes that rate from the copy and its UPDATE requires the account to be in that
//! currency (otherwise it changes nothing and the locking path decides, as when the look-up
//! found nothing). The copy is kept exact the way PostgreSQL keeps its catalog caches exact:
//!
//! - Every statement that writes one of the tables fires `billing.reference_changed()` (a statement
//!   trigger, ENABLE ALWAYS), which queues a relcache invalidation of the table. PostgreSQL
//!   delivers it to this backend at its next command (own changes), to every other backend after
//!   the commit, and processes it again locally on a rollback.
//! - A relcache callback bumps a generation counter on such an invalidation (or on a reset of
//!   all caches). A use first reads the pending invalidations (`AcceptInvalidationMessages`),
//!   then refills if the generation moved. The fill reads the tables by SPI, under a snapshot
//!   taken after those invalidations were read, so any change it does not see sends its
//!   invalidation afterwards (a commit is sent after it becomes visible); one that arrives during
//!   the fill moves the generation and the next use fills again.
//! - Under REPEATABLE READ or SERIALIZABLE the fill sees the transaction's snapshot, which may be
//!   older than the latest commit: such a fill serves that transaction only. So does a fill that
//!   finds a trigger missing or disabled (a 0.4.0 schema not yet updated, an owner's `DISABLE
//!   TRIGGER`, which itself invalidates the table).
//!
//! So a spend sees every policy change committed before it started, as the join did under READ
//! COMMITTED (and, like the catalogs, may also see one committed in the instant between its
//! statement's snapshot and its use). docs/architecture.md, section 9.

use crate::db::exec;
use crate::error::Result;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::{pg_sys, AnyNumeric, PgMemoryContexts};
use rust_decimal::Decimal;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// The policy: the outbound stages as a statement parameter (`text[]`), each currency's
/// default low-balance threshold, and the rates a charge can take without its account's currency.
struct Arrays {
    /// A copy in TopMemoryContext; every statement gets a copy of its own (see `params`).
    stages: pg_sys::Datum,
    /// Currency codes and their thresholds (numerics copied into TopMemoryContext).
    defaults: Vec<(String, pg_sys::Datum)>,
    /// Per (channel, category), the one currency with a rate and that rate; None where more
    /// than one currency has one (the charge must then read the account's currency).
    rates: HashMap<(String, String), Option<(String, crate::rates::Rate)>>,
    /// The invalidation generation the fill started at.
    generation: u64,
    /// The transaction a fill under a transaction snapshot is valid in; None: valid until the
    /// next invalidation.
    only_in: Option<pg_sys::LocalTransactionId>,
}

thread_local! {
    static CACHED: RefCell<Option<Arrays>> = const { RefCell::new(None) };
    static GENERATION: Cell<u64> = const { Cell::new(0) };
    static WATCHED: Cell<[pg_sys::Oid; 3]> = const { Cell::new([pg_sys::InvalidOid; 3]) };
    static REGISTERED: Cell<bool> = const { Cell::new(false) };
}

// The arrays, each group from one scan (the arrays of one aggregate step in lockstep; the rates'
// numerics as text, parsed exactly), and whether the three tables have their invalidation
// trigger, enabled in every mode: not so before `ALTER EXTENSION billing UPDATE` to 0.5.0, or
// where an owner disabled it (which itself invalidates the table); a fill then serves its own
// transaction only.
const FILL: &str = "
    SELECT s.stages, c.codes, c.thresholds, t.watched,
           r.channels, r.categories, r.currencies, r.unit_prices, r.carrier_fees
      FROM (SELECT coalesce(array_agg(stage ORDER BY stage), '{}') AS stages
              FROM billing.dunning_stages WHERE outbound_allowed) s,
           (SELECT coalesce(array_agg(code ORDER BY code), '{}') AS codes,
                   coalesce(array_agg(low_balance_threshold ORDER BY code), '{}') AS thresholds
              FROM billing.currencies) c,
           (SELECT count(*) = 3 AS watched FROM pg_catalog.pg_trigger
             WHERE tgname = 'reference_changed' AND tgenabled = 'A'
               AND tgrelid IN ('billing.currencies'::regclass, 'billing.dunning_stages'::regclass,
                               'billing.rates'::regclass)) t,
           (SELECT coalesce(array_agg(channel), '{}') AS channels,
                   coalesce(array_agg(category), '{}') AS categories,
                   coalesce(array_agg(currency), '{}') AS currencies,
                   coalesce(array_agg(unit_price::text), '{}') AS unit_prices,
                   coalesce(array_agg(carrier_fee::text), '{}') AS carrier_fees
              FROM billing.rates) r";

/// Called by PostgreSQL for every relcache invalidation this backend processes: must not fail
/// or allocate. InvalidOid means every relation (a reset after the invalidation queue overflowed).
unsafe extern "C-unwind" fn relation_invalidated(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    if relid == pg_sys::InvalidOid || WATCHED.get().contains(&relid) {
        GENERATION.set(GENERATION.get().wrapping_add(1));
    }
}

/// Whether a fill made at generation `filled_at` (serving only transaction `only_in`, if set) may
/// serve a use at generation `now` in transaction `lxid`.
fn still_valid(
    filled_at: u64,
    only_in: Option<pg_sys::LocalTransactionId>,
    now: u64,
    lxid: pg_sys::LocalTransactionId,
) -> bool {
    filled_at == now && only_in.is_none_or(|x| x == lxid)
}

fn current_lxid() -> pg_sys::LocalTransactionId {
    // SAFETY: MyProc is set for every backend that runs SQL.
    unsafe { (*pg_sys::MyProc).lxid }
}

fn uses_transaction_snapshot() -> bool {
    // SAFETY: a plain read of the session's isolation level.
    unsafe { pg_sys::XactIsoLevel >= pg_sys::XACT_REPEATABLE_READ as i32 }
}

fn relid(name: &std::ffi::CStr) -> pg_sys::Oid {
    // SAFETY: catalog look-ups by name inside a transaction; the schema exists while the
    // extension's functions run.
    unsafe {
        let schema = pg_sys::get_namespace_oid(c"billing".as_ptr(), false);
        pg_sys::get_relname_relid(name.as_ptr(), schema)
    }
}

/// A copy of a plain (untoasted) varlena datum in the current memory context.
unsafe fn copy_varlena(d: pg_sys::Datum) -> pg_sys::Datum {
    // SAFETY (caller): `d` points to a valid varlena; pg_detoast_datum_copy pallocs the copy.
    pg_sys::Datum::from(unsafe { pg_sys::pg_detoast_datum_copy(d.cast_mut_ptr()) })
}

fn fill(client: &mut SpiClient<'_>, generation: u64) -> Result<Arrays> {
    if !REGISTERED.get() {
        // SAFETY: registers a plain function for the life of the backend (once: PostgreSQL
        // allows a few dozen).
        unsafe {
            pg_sys::CacheRegisterRelcacheCallback(
                Some(relation_invalidated),
                pg_sys::Datum::from(0),
            )
        };
        REGISTERED.set(true);
    }
    // The relations' ids, to recognise their invalidations: they change only when the extension
    // is dropped and created again, which invalidates the old ids first.
    WATCHED.set([
        relid(c"currencies"),
        relid(c"dunning_stages"),
        relid(c"rates"),
    ]);
    let rows = exec(client, FILL, &[])?;
    let row = rows.first();
    let stages = row.get::<Vec<String>>(1)?.unwrap_or_default();
    let codes = row.get::<Vec<String>>(2)?.unwrap_or_default();
    let thresholds = row.get::<Vec<AnyNumeric>>(3)?.unwrap_or_default();
    let watched = row.get::<bool>(4)?.unwrap_or(false);
    let text =
        |n: usize| -> Result<Vec<String>> { Ok(row.get::<Vec<String>>(n)?.unwrap_or_default()) };
    let rates = only_rates(
        text(5)?
            .into_iter()
            .zip(text(6)?)
            .zip(text(7)?)
            .zip(text(8)?.into_iter().zip(text(9)?)),
    );
    let stages = stages.into_datum().expect("an array is not NULL");
    let thresholds = thresholds
        .into_iter()
        .map(|t| t.into_datum().expect("a numeric is not NULL"))
        .collect::<Vec<_>>();
    // SAFETY: copies of the array and the numerics just built, made in TopMemoryContext so that
    // they outlive the transaction; nothing else is allocated there.
    let (stages, thresholds) = unsafe {
        PgMemoryContexts::TopMemoryContext.switch_to(|_| {
            (
                copy_varlena(stages),
                thresholds
                    .into_iter()
                    .map(|d| copy_varlena(d))
                    .collect::<Vec<_>>(),
            )
        })
    };
    let defaults = codes.into_iter().zip(thresholds).collect();
    Ok(Arrays {
        stages,
        defaults,
        rates,
        generation,
        only_in: (uses_transaction_snapshot() || !watched).then(current_lxid),
    })
}

fn free(arrays: Arrays) {
    // Statements only ever had copies of these; `default_threshold` hands out the kept numerics
    // themselves, to be used at once (before any SPI call, which could refill).
    let datums = std::iter::once(arrays.stages).chain(arrays.defaults.into_iter().map(|(_, d)| d));
    for d in datums {
        // SAFETY: allocated in TopMemoryContext by `fill`, referenced nowhere else.
        unsafe { pg_sys::pfree(d.cast_mut_ptr()) };
    }
}

/// The outbound stages as the parameter of a one-statement spend (`spend_at_once_sql!`), in the
/// current memory context; also makes the currencies' default thresholds current for
/// `default_threshold`. Reads the tables only when they changed since the last call (or, under a
/// transaction snapshot, in each new transaction).
pub fn params(client: &mut SpiClient<'_>) -> Result<DatumWithOid<'static>> {
    // SAFETY: reads the invalidations other backends' commits queued for this one, as every
    // lock acquisition does.
    unsafe { pg_sys::AcceptInvalidationMessages() };
    let generation = GENERATION.get();
    let valid = CACHED.with_borrow(|c| {
        c.as_ref()
            .is_some_and(|a| still_valid(a.generation, a.only_in, generation, current_lxid()))
    });
    if !valid {
        let arrays = fill(client, generation)?;
        if let Some(old) = CACHED.replace(Some(arrays)) {
            free(old);
        }
    }
    CACHED.with_borrow(|c| {
        let a = c.as_ref().expect("filled above");
        // SAFETY: a copy of a valid text[] in the current context, which outlives the statement
        // it is passed to.
        Ok(unsafe { DatumWithOid::new(copy_varlena(a.stages), pg_sys::TEXTARRAYOID) })
    })
}

/// Per (channel, category), the only currency with a rate and that rate, from the rows of
/// billing.rates as ((channel, category), currency) and (unit price, carrier fee) in text. A
/// price that does not parse exactly as a Decimal leaves its pair to the statement.
fn only_rates(
    rows: impl Iterator<Item = (((String, String), String), (String, String))>,
) -> HashMap<(String, String), Option<(String, crate::rates::Rate)>> {
    let mut rates = HashMap::new();
    for (((channel, category), currency), (price, fee)) in rows {
        let rate = match (
            Decimal::from_str_exact(&price),
            Decimal::from_str_exact(&fee),
        ) {
            (Ok(unit_price), Ok(carrier_fee)) => Some((
                currency,
                crate::rates::Rate {
                    unit_price,
                    carrier_fee,
                },
            )),
            _ => None,
        };
        rates
            .entry((channel, category))
            .and_modify(|known| *known = None)
            .or_insert(rate);
    }
    rates
}

/// The rate of a charge on `channel` and `category` and its currency, when exactly one currency
/// has a rate for them and the copy `params` made is still exact (as for `default_threshold`).
/// None otherwise: the caller reads the rate with the account's currency.
pub fn only_rate(channel: &str, category: &str) -> Option<(String, crate::rates::Rate)> {
    CACHED.with_borrow(|c| {
        let a = c.as_ref()?;
        if !still_valid(a.generation, a.only_in, GENERATION.get(), current_lxid()) {
            return None;
        }
        a.rates
            .get(&(channel.to_owned(), category.to_owned()))
            .cloned()
            .flatten()
    })
}

/// The default low-balance threshold of `currency` (the kept numeric datum itself: use it at
/// once, before any SPI call or `params`, which may free it), if the copy `params` made is still
/// exact: no invalidation arrived since (none is read here) and, for a fill under a transaction
/// snapshot, the same transaction. None when not so or the currency is unknown: the caller must
/// then assume the worst. Reads nothing, locks nothing: cheap enough for a row trigger.
pub fn default_threshold(currency: &str) -> Option<pg_sys::Datum> {
    CACHED.with_borrow(|c| {
        let a = c.as_ref()?;
        if !still_valid(a.generation, a.only_in, GENERATION.get(), current_lxid()) {
            return None;
        }
        a.defaults
            .iter()
            .find(|(code, _)| code == currency)
            .map(|(_, d)| *d)
    })
}

// The trigger, in a module of its own because of the name `Result`.
mod trigger {
    use pgrx::prelude::*;
    // pg_trigger's expansion names `Result`: the std one.
    use std::result::Result;

    /// `billing.reference_changed()`: AFTER INSERT, UPDATE, DELETE and TRUNCATE FOR EACH
    /// STATEMENT trigger of billing.currencies, billing.dunning_stages and billing.rates (ENABLE
    /// ALWAYS). Queues a relcache invalidation of the table, which every backend's policy cache
    /// watches. Changes nothing, raises nothing.
    #[pg_trigger(sql = false)]
    fn reference_changed<'a>(
        trigger: &'a PgTrigger<'a>,
    ) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible> {
        // SAFETY: the trigger's relation is open; the call only queues a message.
        unsafe {
            let relid = (*trigger.trigger_data().tg_relation).rd_id;
            pgrx::pg_sys::CacheInvalidateRelcacheByRelid(relid)
        };
        Ok(None)
    }
    use pgrx::pg_sys;
    crate::invariants::trigger_symbol!(
        billing_reference_changed,
        pg_finfo_billing_reference_changed,
        reference_changed_wrapper
    );
}

#[cfg(test)]
mod tests {
    use super::{only_rates, still_valid};
    use crate::rates::Rate;
    use rust_decimal::Decimal;

    #[test]
    fn a_fill_serves_until_an_invalidation() {
        assert!(still_valid(3, None, 3, 10));
        assert!(still_valid(3, None, 3, 11), "any later transaction");
        assert!(!still_valid(3, None, 4, 10), "an invalidation arrived");
    }

    #[test]
    fn a_fill_under_a_transaction_snapshot_serves_that_transaction_only() {
        assert!(still_valid(3, Some(10), 3, 10));
        assert!(!still_valid(3, Some(10), 3, 11));
        assert!(!still_valid(3, Some(10), 4, 10));
    }

    fn row(
        channel: &str,
        category: &str,
        currency: &str,
        price: &str,
        fee: &str,
    ) -> (((String, String), String), (String, String)) {
        (
            ((channel.into(), category.into()), currency.into()),
            (price.into(), fee.into()),
        )
    }

    fn key(channel: &str, category: &str) -> (String, String) {
        (channel.into(), category.into())
    }

    #[test]
    fn a_pair_priced_in_one_currency_is_taken_from_the_copy() {
        let rates = only_rates(
            [
                row("sms", "otp", "INR", "0.125", "0"),
                row("sms", "promo", "INR", "0.25", "0.010"),
            ]
            .into_iter(),
        );
        let rate = |price: i64, fee: i64, scale: u32| Rate {
            unit_price: Decimal::new(price, scale),
            carrier_fee: Decimal::new(fee, scale),
        };
        assert_eq!(
            rates[&key("sms", "otp")],
            Some(("INR".into(), rate(125, 0, 3)))
        );
        assert_eq!(
            rates[&key("sms", "promo")],
            Some(("INR".into(), rate(250, 10, 3)))
        );
        assert!(
            !rates.contains_key(&key("voice", "otp")),
            "no rate: no entry"
        );
    }

    #[test]
    fn a_pair_priced_in_two_currencies_needs_the_accounts_currency() {
        for order in [["INR", "USD"], ["USD", "INR"]] {
            let rates = only_rates(
                order
                    .iter()
                    .map(|c| row("sms", "otp", c, "0.1", "0"))
                    .chain([row("sms", "promo", "USD", "0.2", "0")]),
            );
            assert_eq!(rates[&key("sms", "otp")], None, "{order:?}");
            assert_eq!(rates[&key("sms", "promo")].as_ref().unwrap().0, "USD");
        }
    }

    #[test]
    fn a_price_that_is_not_an_exact_decimal_is_left_to_the_statement() {
        let rates = only_rates(
            [row(
                "sms",
                "otp",
                "INR",
                "0.0000000000000000000000000000001",
                "0",
            )]
            .into_iter(),
        );
        assert_eq!(rates[&key("sms", "otp")], None);
        let rates = only_rates([row("sms", "otp", "INR", "0.1", "NaN")].into_iter());
        assert_eq!(rates[&key("sms", "otp")], None);
    }
}
