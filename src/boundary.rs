//! The one place where Rust results become SQL results, and `BillingError`s become
//! PostgreSQL errors with their own SQLSTATEs (BL001..BL006, 22023, P0002).
//!
//! pgrx's `ereport!` only knows the standard SQLSTATEs, and any other code raised through Rust
//! comes out as XX000. So every API function is a plain V1 C function (`sql_function!`), declared
//! in `sql/090_api.sql` with `LANGUAGE c`:
//!
//! 1. its body runs inside pgrx's guard, which returns a plain `Result` (PostgreSQL errors raised
//!    by SPI inside it, such as 40001 or 55P03, are re-thrown by the guard unchanged);
//! 2. only after the guard has returned, with no Rust value left to drop, `raise` reports a
//!    `BillingError` through `errstart/errcode/errmsg/errfinish` and longjmps to PostgreSQL.

use crate::error::{BillingError, Result};
use crate::money::{parse_amount, Money, Sign};
use pgrx::pg_sys;
use pgrx::prelude::*;
use rust_decimal::Decimal;
use std::ffi::{c_char, c_int, CString};

/// What an API function hands back to SQL.
pub enum Ret {
    Null,
    Datum(pg_sys::Datum),
}

impl Ret {
    pub fn of<T: IntoDatum>(value: T) -> Ret {
        match value.into_datum() {
            Some(d) => Ret::Datum(d),
            None => Ret::Null,
        }
    }
}

/// Typed, validated access to the arguments of a V1 call. Every required argument that is NULL
/// is a 22023 naming the argument (API functions are not STRICT).
pub struct Args {
    fcinfo: pg_sys::FunctionCallInfo,
}

impl Args {
    fn raw<T: FromDatum>(&self, i: usize) -> Option<T> {
        // SAFETY: fcinfo is the live call frame handed to us by fmgr; the SQL declaration in
        // sql/090_api.sql fixes each argument's type, so T matches it.
        unsafe {
            if i >= (*self.fcinfo).nargs as usize {
                return None;
            }
            pgrx::fcinfo::pg_getarg::<T>(self.fcinfo, i)
        }
    }

    fn required<T: FromDatum>(&self, i: usize, name: &str) -> Result<T> {
        self.raw(i)
            .ok_or_else(|| BillingError::invalid(format!("{name} must not be NULL")))
    }

    pub fn id(&self, i: usize, name: &str) -> Result<i64> {
        self.required(i, name)
    }

    pub fn text(&self, i: usize, name: &str) -> Result<String> {
        self.required(i, name)
    }

    pub fn opt_text(&self, i: usize) -> Option<String> {
        self.raw(i)
    }

    /// A text that is a key (a category, an external reference): indexed, so it must fit an
    /// index row; longer than `max` characters is 22023, never PostgreSQL's 54000.
    pub fn key_text(&self, i: usize, name: &str, max: usize) -> Result<String> {
        let t = self.text(i, name)?;
        check_len(name, t, max)
    }

    pub fn opt_key_text(&self, i: usize, name: &str, max: usize) -> Result<Option<String>> {
        self.opt_text(i)
            .map(|t| check_len(name, t, max))
            .transpose()
    }

    pub fn int(&self, i: usize, name: &str) -> Result<i32> {
        self.required(i, name)
    }

    pub fn opt_i64(&self, i: usize) -> Option<i64> {
        self.raw(i)
    }

    pub fn boolean(&self, i: usize, name: &str) -> Result<bool> {
        self.required(i, name)
    }

    pub fn interval(&self, i: usize, name: &str) -> Result<Interval> {
        self.required(i, name)
    }

    /// A required amount: finite, at most 6 decimal places, and positive (or ≥ 0).
    pub fn amount(&self, i: usize, name: &str, sign: Sign) -> Result<Decimal> {
        let n: AnyNumeric = self.required(i, name)?;
        parse_amount(name, &n.to_string(), sign)
    }

    pub fn opt_amount(&self, i: usize, name: &str, sign: Sign) -> Result<Option<Decimal>> {
        match self.raw::<AnyNumeric>(i) {
            None => Ok(None),
            Some(n) => parse_amount(name, &n.to_string(), sign).map(Some),
        }
    }

    /// A required, finite timestamp (`as_of`, `due_at`, ...).
    pub fn ts(&self, i: usize, name: &str) -> Result<TimestampWithTimeZone> {
        let t: TimestampWithTimeZone = self.required(i, name)?;
        finite(name, t)
    }

    pub fn opt_ts(&self, i: usize, name: &str) -> Result<Option<TimestampWithTimeZone>> {
        self.raw::<TimestampWithTimeZone>(i)
            .map(|t| finite(name, t))
            .transpose()
    }
}

fn finite(name: &str, t: TimestampWithTimeZone) -> Result<TimestampWithTimeZone> {
    if t.is_finite() {
        Ok(t)
    } else {
        Err(BillingError::invalid(format!(
            "{name} must be a finite timestamp"
        )))
    }
}

/// Numeric results go back as `numeric`.
pub fn money(d: Decimal) -> Ret {
    Ret::of(Money(d))
}

/// Runs an API body inside pgrx's guard and returns its outcome as plain data.
///
/// # Safety
/// Must be called at the top of a V1 function entered from fmgr (the guard's contract).
pub unsafe fn run(fcinfo: pg_sys::FunctionCallInfo, body: fn(&Args) -> Result<Ret>) -> Result<Ret> {
    unsafe { pgrx::pg_sys::submodules::panic::pgrx_extern_c_guard(|| body(&Args { fcinfo })) }
}

/// Hands the outcome to PostgreSQL: a Datum, a NULL, or an error with its own SQLSTATE.
///
/// # Safety
/// The caller's frame must hold nothing with a destructor: on error this longjmps.
pub unsafe fn finish(fcinfo: pg_sys::FunctionCallInfo, outcome: Result<Ret>) -> pg_sys::Datum {
    match outcome {
        Ok(Ret::Datum(d)) => d,
        Ok(Ret::Null) => unsafe { pgrx::fcinfo::pg_return_null(fcinfo) },
        Err(e) => unsafe { raise(e) },
    }
}

// Declared here, not taken from pg_sys: pgrx wraps its bindings in a guard that would turn
// errfinish's longjmp into a Rust panic, which is exactly what must not happen here.
extern "C" {
    fn errstart(elevel: c_int, domain: *const c_char) -> bool;
    fn errcode(sqlerrcode: c_int) -> c_int;
    fn errmsg(fmt: *const c_char, ...) -> c_int;
    fn errhint(fmt: *const c_char, ...) -> c_int;
    fn errfinish(filename: *const c_char, lineno: c_int, funcname: *const c_char);
}

const ERROR_LEVEL: c_int = 21; // elog.h: #define ERROR 21

/// Reports `e` as an ERROR and never returns.
#[inline(never)]
unsafe fn raise(e: BillingError) -> ! {
    let code = e.sqlstate_code();
    let message = to_cstring(e.to_string());
    let hint = e.hint().map(to_cstring);
    drop(e);
    unsafe {
        if errstart(ERROR_LEVEL, std::ptr::null()) {
            errcode(code);
            // errmsg/errhint copy their text into the error context, so our CStrings can go.
            errmsg(c"%s".as_ptr(), message.as_ptr());
            if let Some(h) = &hint {
                errhint(c"%s".as_ptr(), h.as_ptr());
            }
        }
        drop(message);
        drop(hint);
        // No Rust value with a destructor is alive in this frame or its callers now. No source
        // location: a line of boundary.rs would tell the caller nothing.
        errfinish(std::ptr::null(), 0, std::ptr::null());
        std::hint::unreachable_unchecked()
    }
}

fn to_cstring(s: String) -> CString {
    CString::new(s.replace('\0', " ")).expect("no interior NUL after replace")
}

/// Declares a V1 C function for SQL: `sql_function!(symbol, pg_finfo_symbol, body)`.
/// `body: fn(&Args) -> Result<Ret>` does the work; see the module comment.
#[macro_export]
macro_rules! sql_function {
    ($symbol:ident, $finfo:ident, $body:expr) => {
        #[unsafe(no_mangle)]
        #[doc(hidden)]
        pub extern "C" fn $finfo() -> &'static ::pgrx::pg_sys::Pg_finfo_record {
            const V1: ::pgrx::pg_sys::Pg_finfo_record =
                ::pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }

        #[unsafe(no_mangle)]
        #[doc(hidden)]
        pub unsafe extern "C-unwind" fn $symbol(
            fcinfo: ::pgrx::pg_sys::FunctionCallInfo,
        ) -> ::pgrx::pg_sys::Datum {
            let body: fn(&$crate::boundary::Args) -> $crate::error::Result<$crate::boundary::Ret> =
                $body;
            unsafe {
                let outcome = $crate::boundary::run(fcinfo, body);
                $crate::boundary::finish(fcinfo, outcome)
            }
        }
    };
}

/// For the few `#[pg_extern]` functions (set-returning readers): their errors are always
/// standard SQLSTATEs (22023, P0002), which pgrx can raise itself.
pub fn standard<T>(f: impl FnOnce() -> Result<T>) -> T {
    match f() {
        Ok(v) => v,
        Err(e) => {
            let code = match e.sqlstate() {
                "22023" => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                "P0002" => PgSqlErrorCode::ERRCODE_NO_DATA_FOUND,
                _ => PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            };
            pgrx::pg_sys::panic::ErrorReport::new(code, e.to_string(), "billing")
                .report(PgLogLevel::ERROR);
            unreachable!("ERROR does not return")
        }
    }
}

/// Longest category a rate, campaign or usage may name, and longest external reference.
pub const MAX_CATEGORY_LEN: usize = 100;
pub const MAX_EXTERNAL_REF_LEN: usize = 255;

fn check_len(name: &str, t: String, max: usize) -> Result<String> {
    if t.chars().count() > max {
        Err(BillingError::invalid(format!(
            "{name} must be at most {max} characters"
        )))
    } else {
        Ok(t)
    }
}
