//! Reading a statement trigger's transition tables (`REFERENCING NEW TABLE / OLD TABLE`) from
//! Rust, straight from the tuplestore PostgreSQL filled, without SPI or PL/pgSQL.
//!
//! Why: the ledger's balance check and the usage rollup fire for every charge. As PL/pgSQL they
//! ran a grouped query over the transition table per statement; reading the few rows a charge
//! writes directly costs a small fraction of that (docs/performance.md).

use pgrx::prelude::*;
use pgrx::{PgRelation, PgTrigger};

/// Which transition table of the trigger invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Old,
    New,
}

/// Whether the trigger was declared with this transition table (and so has one to read).
pub fn has(trigger: &PgTrigger<'_>, table: Table) -> bool {
    !store(trigger, table).is_null()
}

fn store(trigger: &PgTrigger<'_>, table: Table) -> *mut pg_sys::Tuplestorestate {
    let data = trigger.trigger_data();
    match table {
        Table::Old => data.tg_oldtable,
        Table::New => data.tg_newtable,
    }
}

/// Attribute numbers (1-based) of `columns` in a trigger's table, found in one walk of its tuple
/// descriptor (dropped columns skipped). Shared with the row rules (`invariants::Cols`).
pub fn attnums(relation: &PgRelation, columns: &[&str]) -> Vec<i32> {
    let mut at = vec![0; columns.len()];
    for (i, a) in relation.tuple_desc().iter().enumerate() {
        if a.is_dropped() {
            continue;
        }
        let name = a.name(); // once: each call measures and checks the C string
        if let Some(k) = columns.iter().position(|c| *c == name) {
            at[k] = i as i32 + 1;
        }
    }
    if let Some(k) = at.iter().position(|&n| n == 0) {
        error!("billing: {} has no column {}", relation.name(), columns[k]);
    }
    at
}

/// Calls `f` with the values of `columns` (None for NULL) for each row of the transition table.
/// The datums are valid only during the call: copy what must outlive it (FromDatum copies).
pub fn for_each_row(
    trigger: &PgTrigger<'_>,
    table: Table,
    columns: &[&str],
    mut f: impl FnMut(&[Option<pg_sys::Datum>]),
) {
    let store = store(trigger, table);
    if store.is_null() {
        error!("billing: the trigger has no {table:?} transition table (REFERENCING clause)");
    }
    let relation = trigger.relation().expect("a trigger has a relation");
    let attnums = attnums(&relation, columns);
    let mut values = vec![None; columns.len()];
    // SAFETY: the tuplestore and the relation's descriptor belong to this trigger call. A read
    // pointer of our own, rewound, as a NamedTuplestoreScan does: other triggers of the same
    // statement read the same tuplestore.
    unsafe {
        let slot = pg_sys::MakeSingleTupleTableSlot(
            relation.rd_att,
            &raw const pg_sys::TTSOpsMinimalTuple,
        );
        let reader = pg_sys::tuplestore_alloc_read_pointer(store, pg_sys::EXEC_FLAG_REWIND as i32);
        pg_sys::tuplestore_select_read_pointer(store, reader);
        pg_sys::tuplestore_rescan(store);
        while pg_sys::tuplestore_gettupleslot(store, true, false, slot) {
            for (value, &attnum) in values.iter_mut().zip(&attnums) {
                let mut is_null = false;
                let datum = pg_sys::slot_getattr(slot, attnum, &mut is_null);
                *value = (!is_null).then_some(datum);
            }
            f(&values);
        }
        pg_sys::ExecDropSingleTupleTableSlot(slot);
    }
}

/// A column value as a Rust value (copied out of the tuple).
pub fn get<T: FromDatum>(value: Option<pg_sys::Datum>) -> Option<T> {
    // SAFETY: callers name columns of the type T stands for.
    value.and_then(|d| unsafe { T::from_datum(d, false) })
}
