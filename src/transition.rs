//! Reading a statement trigger's transition tables (`REFERENCING NEW TABLE / OLD TABLE`) from
//! Rust, straight from the tuplestore PostgreSQL filled, without SPI or PL/pgSQL.
//!
//! Why: the ledger's balance check and the usage rollup fire for every charge. As PL/pgSQL they
//! ran a grouped query over the transition table per statement; reading the few rows a charge
//! writes directly costs a small fraction of that (docs/performance.md).

use pgrx::prelude::*;
use pgrx::{PgRelation, PgTrigger};
use std::cell::RefCell;
use std::collections::HashMap;

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

/// Attribute numbers (1-based) of `columns` in a trigger's table. Shared with the row rules
/// (`invariants::Cols`). The triggers of every hold and charge ask for the same columns of the
/// same tables, so each backend keeps the answer per relation and column list; a use checks each
/// kept number against the descriptor by name (a column dropped, added or renamed since makes it
/// walk again), which costs far less than the walk (docs/performance.md, item 17).
pub fn attnums(relation: &PgRelation, columns: &'static [&'static str]) -> Vec<i32> {
    let key = (relation.oid(), columns.as_ptr() as usize);
    let kept = ATTNUMS.with_borrow(|m| m.get(&key).cloned());
    if let Some(at) = kept.filter(|at| still_named(relation, columns, at)) {
        return at;
    }
    let at = walk(relation, columns);
    ATTNUMS.with_borrow_mut(|m| m.insert(key, at.clone()));
    at
}

thread_local! {
    static ATTNUMS: RefCell<HashMap<(pg_sys::Oid, usize), Vec<i32>>> = RefCell::new(HashMap::new());
}

/// Whether attribute `at[i]` of the relation is still the live column `columns[i]`.
fn still_named(relation: &PgRelation, columns: &[&str], at: &[i32]) -> bool {
    let desc = relation.tuple_desc();
    at.len() == columns.len()
        && at.iter().zip(columns).all(|(&n, name)| {
            (n as usize)
                .checked_sub(1)
                .and_then(|i| desc.get(i))
                .is_some_and(|a| {
                    // SAFETY: attname is a NUL-terminated NameData of the live descriptor; compared
                    // as bytes (`name()` would check it as UTF-8 first).
                    let attname = unsafe { std::ffi::CStr::from_ptr(a.attname.data.as_ptr()) };
                    !a.is_dropped() && attname.to_bytes() == name.as_bytes()
                })
        })
}

/// The attribute numbers, found in one walk of the tuple descriptor (dropped columns skipped).
fn walk(relation: &PgRelation, columns: &[&str]) -> Vec<i32> {
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
    columns: &'static [&'static str],
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
