//! SPI access: every statement is a `&'static str` with `$n` parameters, prepared once per
//! backend and kept (`SPI_keepplan`), so the hot paths neither parse nor plan. Values are always
//! parameters, never formatted into SQL.

use crate::error::Result;
use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::PgOid;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiTupleTable};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

thread_local! {
    static PLANS: RefCell<HashMap<usize, Rc<OwnedPreparedStatement>>> = RefCell::new(HashMap::new());
}

/// Runs `sql` (a static statement) with `args`, preparing and keeping its plan on first use.
/// Parameter types are taken from the arguments, so a statement is always called with the
/// same Rust types.
pub fn exec<'conn>(
    client: &mut SpiClient<'conn>,
    sql: &'static str,
    args: &[DatumWithOid<'_>],
) -> Result<SpiTupleTable<'conn>> {
    let key = sql.as_ptr() as usize;
    let cached = PLANS.with(|p| p.borrow().get(&key).cloned());
    let plan = match cached {
        Some(plan) => plan,
        None => {
            let types: Vec<PgOid> = args.iter().map(|a| PgOid::from(a.oid())).collect();
            let plan = Rc::new(client.prepare_mut(sql, &types)?.keep());
            PLANS.with(|p| p.borrow_mut().insert(key, plan.clone()));
            plan
        }
    };
    Ok(client.update(&*plan, None, args)?)
}

/// Runs a statement inside its own SPI connection.
pub fn with_spi<R>(f: impl FnOnce(&mut SpiClient<'_>) -> Result<R>) -> Result<R> {
    pgrx::Spi::connect_mut(f)
}

/// The id an `INSERT ... RETURNING id` gave back (an internal error if it gave none).
pub fn insert_id(
    client: &mut SpiClient<'_>,
    sql: &'static str,
    args: &[DatumWithOid<'_>],
) -> Result<i64> {
    one::<i64>(exec(client, sql, args)?)?.ok_or_else(|| {
        crate::error::BillingError::Internal(format!("no id returned by: {}", sql.trim()))
    })
}

/// First column of the first row, if any row came back.
pub fn one<T: pgrx::FromDatum + pgrx::IntoDatum>(table: SpiTupleTable<'_>) -> Result<Option<T>> {
    if table.is_empty() {
        return Ok(None);
    }
    Ok(table.first().get_one::<T>()?)
}

/// How a unit of work run by [`in_subtransaction`] ended.
pub enum Attempt<R> {
    Done(R),
    /// It raised (or returned an error): everything it wrote is undone. The SQLSTATE and message.
    Failed(String, String),
}

/// Errors that end the whole call even inside a subtransaction: a cancel or statement_timeout,
/// a serialization failure or deadlock (the transaction must be retried as a whole), and the
/// server running out of something (classes 53, 57 and 58). Everything else is the unit's own.
pub fn ends_the_call(sqlstate: &str) -> bool {
    ["57014", "40001", "40P01"].contains(&sqlstate)
        || ["53", "57", "58"]
            .iter()
            .any(|class| sqlstate.starts_with(class))
}

/// Runs `f` in a subtransaction of its own, as a PL/pgSQL block with an EXCEPTION clause does:
/// its writes are kept when it succeeds and undone when it raises or returns an error, which
/// comes back as `Attempt::Failed` (and the caller goes on). An error that [`ends_the_call`] is
/// raised again after the undo. SPI plans and the caller's SPI connection survive a failure.
pub fn in_subtransaction<R>(f: impl FnOnce() -> Result<R>) -> Attempt<R> {
    use pgrx::pg_sys;
    use std::panic::AssertUnwindSafe;
    // SAFETY: the same calls, in the same order, as PL/pgSQL's exec_stmt_block; the memory
    // context and resource owner are put back after the subtransaction ends either way.
    let (context, owner) = unsafe { (pg_sys::CurrentMemoryContext, pg_sys::CurrentResourceOwner) };
    unsafe {
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(context);
    }
    let restore = || unsafe {
        pg_sys::MemoryContextSwitchTo(context);
        pg_sys::CurrentResourceOwner = owner;
    };
    let outcome = pgrx::PgTryBuilder::new(AssertUnwindSafe(|| match f() {
        Ok(r) => Ok(Ok(r)),
        Err(e) => Ok(Err((e.sqlstate().to_string(), e.to_string()))),
    }))
    .catch_others(|caught| match caught {
        pgrx::pg_sys::panic::CaughtError::PostgresError(ref report)
        | pgrx::pg_sys::panic::CaughtError::ErrorReport(ref report) => {
            let sqlstate = crate::error::unpack_sqlstate(report.sql_error_code() as i32);
            if ends_the_call(&sqlstate) {
                Err(Box::new(caught))
            } else {
                Ok(Err((sqlstate, report.message().to_string())))
            }
        }
        // a Rust panic is a bug: do not go on as if it were the unit's own failure
        other => Err(Box::new(other)),
    })
    .execute();
    match outcome {
        Ok(Ok(r)) => {
            unsafe { pg_sys::ReleaseCurrentSubTransaction() };
            restore();
            Attempt::Done(r)
        }
        Ok(Err((sqlstate, message))) => {
            unsafe { pg_sys::RollbackAndReleaseCurrentSubTransaction() };
            restore();
            Attempt::Failed(sqlstate, message)
        }
        Err(caught) => {
            unsafe { pg_sys::RollbackAndReleaseCurrentSubTransaction() };
            restore();
            (*caught).rethrow()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ends_the_call;

    #[test]
    fn only_cancels_conflicts_and_resource_errors_end_the_call() {
        for code in ["57014", "40001", "40P01", "53200", "57P01", "58030"] {
            assert!(ends_the_call(code), "{code}");
        }
        for code in [
            "23514", "22023", "BL001", "P0001", "XX000", "55P03", "42501",
        ] {
            assert!(!ends_the_call(code), "{code}");
        }
    }
}
