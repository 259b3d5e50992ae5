//! Money: `numeric` in SQL, `rust_decimal::Decimal` in Rust, never a float.
//!
//! The pure rules (what an acceptable amount is, how tax rounds, recharge bounds) live here as
//! plain functions with plain tests; `Money` carries a `Decimal` across SPI losslessly through
//! numeric's text form.

use crate::error::{BillingError, Result};
use pgrx::pg_sys;
use pgrx::prelude::*;
use rust_decimal::{Decimal, RoundingStrategy};

/// Decimal places an amount argument may carry.
pub const MAX_SCALE: u32 = 6;

/// Amount arguments must be below 10^15: twelve digits of headroom over any real balance, and
/// every sum of such amounts still fits rust_decimal's 28 digits.
pub fn max_amount() -> Decimal {
    Decimal::from(1_000_000_000_000_000_i64)
}

/// A `Decimal` that crosses SPI as `numeric`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Money(pub Decimal);

// Both directions go through numeric's text form, the one exact bridge between the two types,
// by calling numeric_in and numeric_out on the datum itself: AnyNumeric would copy the number
// into a Rust buffer and back on the way, which on a charge's half-dozen amounts was measurable.
impl IntoDatum for Money {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        let text =
            std::ffi::CString::new(self.0.to_string()).expect("a number's text has no NUL byte");
        // SAFETY: numeric_in(cstring, typioparam, typmod) reads the text and returns a palloc'd
        // numeric; a Decimal's text form is always a valid numeric.
        unsafe {
            pgrx::direct_function_call_as_datum(
                pg_sys::numeric_in,
                &[
                    Some(pg_sys::Datum::from(text.as_ptr())),
                    Some(pg_sys::Datum::from(0u32)),  // InvalidOid
                    Some(pg_sys::Datum::from(-1i32)), // no typmod
                ],
            )
        }
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::NUMERICOID
    }
}

impl FromDatum for Money {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _typoid: pg_sys::Oid,
    ) -> Option<Self> {
        if is_null {
            return None;
        }
        // SAFETY: a non-NULL numeric datum (SPI checked the column type); numeric_out returns a
        // palloc'd C string, freed once parsed.
        let text =
            unsafe { pgrx::direct_function_call_as_datum(pg_sys::numeric_out, &[Some(datum)]) }?
                .cast_mut_ptr::<std::ffi::c_char>();
        let parsed = unsafe { std::ffi::CStr::from_ptr(text) }
            .to_str()
            .ok()
            .and_then(|s| Decimal::from_str_exact(s).ok());
        unsafe { pg_sys::pfree(text.cast()) };
        // Stored values were validated on the way in; a value that does not fit is corruption.
        Some(Money(parsed.expect("stored numeric fits a Decimal")))
    }
}

/// What an amount argument may be, beyond finite and at most six decimal places.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    /// Strictly positive (the default for amounts).
    Positive,
    /// Zero allowed (limits, thresholds, free usage).
    NonNegative,
}

/// Validates the text form of a numeric argument. `name` is the argument's SQL name.
pub fn parse_amount(name: &str, text: &str, sign: Sign) -> Result<Decimal> {
    let bad = |why: &str| BillingError::invalid(format!("{name} {why}, got {text}"));
    if text.eq_ignore_ascii_case("nan") || text.to_ascii_lowercase().contains("inf") {
        return Err(bad("must be a finite number"));
    }
    let value = Decimal::from_str_exact(text).map_err(|_| bad("is out of range"))?;
    if value.abs() >= max_amount() {
        return Err(bad("is out of range (must be below 1e15)"));
    }
    if value.normalize().scale() > MAX_SCALE {
        return Err(bad("has more than 6 decimal places"));
    }
    match sign {
        Sign::Positive if value <= Decimal::ZERO => Err(bad("must be greater than 0")),
        Sign::NonNegative if value < Decimal::ZERO => Err(bad("must not be negative")),
        _ => Ok(value),
    }
}

/// Tax on a recharge: `round(amount × rate, minor_units)`, half away from zero, exactly as
/// PostgreSQL's `round(numeric, int)` does, so SQL reports and Rust agree to the paisa.
pub fn tax(amount: Decimal, rate: Decimal, minor_units: u32) -> Decimal {
    (amount * rate).round_dp_with_strategy(minor_units, RoundingStrategy::MidpointAwayFromZero)
}

/// An amount someone pays (a recharge, an invoice) must be whole minor units of its currency.
pub fn check_payable(amount: Decimal, currency: &str, minor_units: u32) -> Result<()> {
    if amount.normalize().scale() > minor_units {
        return Err(BillingError::invalid(format!(
            "amount {amount} has more decimal places than {currency} allows ({minor_units})"
        )));
    }
    Ok(())
}

/// A recharge amount must be payable (no finer than the currency's minor unit) and within the
/// currency's bounds, both inclusive.
pub fn check_recharge(
    amount: Decimal,
    currency: &str,
    minor_units: u32,
    min: Decimal,
    max: Decimal,
) -> Result<()> {
    check_payable(amount, currency, minor_units)?;
    if amount < min || amount > max {
        return Err(BillingError::RechargeOutOfBounds {
            amount,
            currency: currency.to_string(),
            min,
            max,
        });
    }
    Ok(())
}

/// Exact decimal from a literal, for tests.
#[cfg(test)]
pub fn dec(s: &str) -> Decimal {
    s.parse().expect("decimal literal")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_amounts() {
        assert_eq!(
            parse_amount("amount", "100", Sign::Positive),
            Ok(dec("100"))
        );
        assert_eq!(
            parse_amount("amount", "0.000001", Sign::Positive),
            Ok(dec("0.000001"))
        );
        assert_eq!(
            parse_amount("amount", "1.5000000", Sign::Positive),
            Ok(dec("1.5"))
        );
        assert_eq!(parse_amount("limit", "0", Sign::NonNegative), Ok(dec("0")));
    }

    #[test]
    fn rejects_malformed_amounts_with_22023() {
        for (text, sign) in [
            ("0", Sign::Positive),
            ("-1", Sign::Positive),
            ("-0.01", Sign::NonNegative),
            ("NaN", Sign::Positive),
            ("Infinity", Sign::Positive),
            ("-Infinity", Sign::NonNegative),
            ("0.0000001", Sign::Positive),
            ("1.1234567", Sign::Positive),
            ("1000000000000000000000000000000", Sign::Positive),
            ("1000000000000000", Sign::Positive),
        ] {
            let e = parse_amount("amount", text, sign).unwrap_err();
            assert_eq!(e.sqlstate(), "22023", "{text}");
            assert!(e.to_string().starts_with("amount "), "{e}");
        }
    }

    #[test]
    fn largest_accepted_amount() {
        assert!(parse_amount("amount", "999999999999999.999999", Sign::Positive).is_ok());
    }

    #[test]
    fn gst_rounds_half_away_from_zero_to_minor_units() {
        assert_eq!(tax(dec("1000"), dec("0.18"), 2), dec("180.00"));
        assert_eq!(tax(dec("100.25"), dec("0.18"), 2), dec("18.05")); // 18.045 -> 18.05
        assert_eq!(tax(dec("100.24"), dec("0.18"), 2), dec("18.04")); // 18.0432
        assert_eq!(tax(dec("333.33"), dec("0.18"), 2), dec("60.00")); // 59.9994
        assert_eq!(tax(dec("5"), dec("0"), 2), dec("0"));
        assert_eq!(tax(dec("125"), dec("0.18"), 0), dec("23")); // 22.5 -> 23
    }

    #[test]
    fn recharge_bounds_are_inclusive() {
        let (min, max) = (dec("100"), dec("100000"));
        assert!(check_recharge(dec("100"), "INR", 2, min, max).is_ok());
        assert!(check_recharge(dec("100000"), "INR", 2, min, max).is_ok());
        for a in ["99.99", "100000.01"] {
            let e = check_recharge(dec(a), "INR", 2, min, max).unwrap_err();
            assert_eq!(e.sqlstate(), "BL002");
            assert!(e.to_string().contains("minimum 100, maximum 100000"), "{e}");
        }
    }

    #[test]
    fn recharge_must_be_payable_in_minor_units() {
        let e = check_recharge(dec("100.001"), "INR", 2, dec("100"), dec("1000")).unwrap_err();
        assert_eq!(e.sqlstate(), "22023");
        assert!(check_recharge(dec("100.10"), "INR", 2, dec("100"), dec("1000")).is_ok());
    }
}
