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
