//! Rates and pricing: a price per unit by currency, channel and category, plus a carrier fee
//! passed through without markup (booked apart from the price).

use crate::boundary::{Args, Ret};
use crate::db::{exec, one, with_spi};
use crate::error::{BillingError, Result};
use crate::ledger::LedgerAccount;
use crate::money::{Money, Sign};
use crate::sql_function;
use pgrx::spi::SpiClient;
use rust_decimal::{Decimal, RoundingStrategy};

/// Decimal places a charge is rounded to (half away from zero), the same as an amount argument.
pub const CHARGE_SCALE: u32 = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub unit_price: Decimal,
    pub carrier_fee: Decimal,
}

/// What `units` cost at `rate`, split into (price, carrier fee). The total is exactly the
/// contract's `round(units × (unit_price + carrier_fee), 6)` (half away from zero); the price is
/// `round(units × unit_price, 6)` and the fee the rest, so the split never adds or loses a unit.
/// A total of 1e15 or more (an amount no argument may be, and beyond any balance) is 22023, so
/// a huge audience or rate is refused instead of overflowing.
pub fn charge(units: Decimal, rate: Rate) -> Result<(Decimal, Decimal)> {
    let r =
        |d: Decimal| d.round_dp_with_strategy(CHARGE_SCALE, RoundingStrategy::MidpointAwayFromZero);
    let total = rate
        .unit_price
        .checked_add(rate.carrier_fee)
        .and_then(|unit| units.checked_mul(unit))
        .map(r)
        .filter(|t| *t < crate::money::max_amount())
        .ok_or_else(|| {
            BillingError::invalid(format!(
                "the charge for {units} units at {} + {} is out of range (must be below 1e15)",
                rate.unit_price, rate.carrier_fee
            ))
        })?;
    let price = r(units * rate.unit_price); // at most the total, so no overflow
    Ok((price, total - price))
}

/// The ledger legs of a charge: the wallet pays, revenue takes the price, the carrier fee goes
/// to carrier_fees_payable untouched.
pub fn charge_legs(price: Decimal, fee: Decimal) -> Vec<(LedgerAccount, Decimal)> {
    vec![
        (LedgerAccount::Wallet, -(price + fee)),
        (LedgerAccount::Revenue, price),
        (LedgerAccount::CarrierFeesPayable, fee),
    ]
}

const CHANNEL_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM billing.channels WHERE channel = $1)";

pub fn check_channel(client: &mut SpiClient<'_>, channel: &str) -> Result<()> {
    if one::<bool>(exec(client, CHANNEL_EXISTS, &[channel.into()])?)? == Some(true) {
        Ok(())
    } else {
        Err(BillingError::invalid(format!("unknown channel {channel}")))
    }
}

// The channel's existence and the rate in one look-up: the hot path of record_usage.
const LOOKUP: &str = "
    SELECT ch.channel IS NOT NULL, r.unit_price, r.carrier_fee
      FROM (SELECT $2::text AS channel) q
      LEFT JOIN billing.channels ch ON ch.channel = q.channel
      LEFT JOIN billing.rates r ON r.currency = $1 AND r.channel = q.channel AND r.category = $3";

/// The current rate (22023 when the channel is unknown or no rate exists).
pub fn lookup(
    client: &mut SpiClient<'_>,
    currency: &str,
    channel: &str,
    category: &str,
) -> Result<Rate> {
    let rows = exec(
        client,
        LOOKUP,
        &[currency.into(), channel.into(), category.into()],
    )?;
    let r = rows.first();
    if r.get::<bool>(1)? != Some(true) {
        return Err(BillingError::invalid(format!("unknown channel {channel}")));
    }
    match (r.get::<Money>(2)?, r.get::<Money>(3)?) {
        (Some(unit_price), Some(carrier_fee)) => Ok(Rate {
            unit_price: unit_price.0,
            carrier_fee: carrier_fee.0,
        }),
        _ => Err(BillingError::invalid(format!(
            "no rate for {currency} {channel} {category}"
        ))),
    }
}

const UPSERT: &str = "
    INSERT INTO billing.rates (currency, channel, category, unit_price, carrier_fee)
    SELECT c.code, $2, $3, $4, $5 FROM billing.currencies c WHERE c.code = $1
    ON CONFLICT (currency, channel, category)
    DO UPDATE SET unit_price = EXCLUDED.unit_price, carrier_fee = EXCLUDED.carrier_fee, updated_at = now()
    RETURNING true";

/// `billing.set_rate(currency, channel, category, unit_price, carrier_fee DEFAULT 0) → void`
/// Upserts a rate (row lock on that rate only). 22023 for an unknown currency or channel, an
/// empty category, or a negative or malformed price or fee (0 is allowed). Idempotent.
/// Campaigns already scheduled keep the price they were scheduled at.
fn set_rate(a: &Args) -> Result<Ret> {
    let currency = a.text(0, "currency")?;
    let channel = a.text(1, "channel")?;
    let category = a.key_text(2, "category", crate::boundary::MAX_CATEGORY_LEN)?;
    let unit_price = a.amount(3, "unit_price", Sign::NonNegative)?;
    let carrier_fee = a.amount(4, "carrier_fee", Sign::NonNegative)?;
    if category.trim().is_empty() {
        return Err(BillingError::invalid("category must not be empty"));
    }
    with_spi(|c| {
        check_channel(c, &channel)?;
        let args = [
            currency.as_str().into(),
            channel.into(),
            category.into(),
            Money(unit_price).into(),
            Money(carrier_fee).into(),
        ];
        match one::<bool>(exec(c, UPSERT, &args)?)? {
            Some(true) => Ok(()),
            _ => Err(BillingError::invalid(format!(
                "unknown currency {currency}"
            ))),
        }
    })?;
    Ok(Ret::Null)
}
sql_function!(billing_set_rate, pg_finfo_billing_set_rate, set_rate);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::is_balanced;
    use crate::money::dec;

    #[test]
    fn charges_split_price_and_carrier_fee() {
        let rate = Rate {
            unit_price: dec("0.0035"),
            carrier_fee: dec("0.0025"),
        };
        assert_eq!(charge(dec("1000"), rate), Ok((dec("3.5"), dec("2.5"))));
        assert!(is_balanced(&charge_legs(dec("3.5"), dec("2.5"))));
    }

    #[test]
    fn charges_round_to_six_places_half_away_from_zero() {
        let rate = Rate {
            unit_price: dec("0.0123455"),
            carrier_fee: dec("0"),
        };
        assert_eq!(charge(dec("1"), rate).unwrap().0, dec("0.012346"));
        assert_eq!(
            charge(
                dec("1.5"),
                Rate {
                    unit_price: dec("0.333333"),
                    carrier_fee: dec("0")
                }
            )
            .unwrap()
            .0,
            dec("0.5")
        );
    }

    #[test]
    fn fewer_units_never_cost_more() {
        let rate = Rate {
            unit_price: dec("0.0000015"),
            carrier_fee: dec("0.0000005"),
        };
        let mut last = (dec("0"), dec("0"));
        for u in 0..50 {
            let c = charge(Decimal::from(u), rate).unwrap();
            assert!(c.0 >= last.0 && c.1 >= last.1);
            last = c;
        }
    }

    #[test]
    fn the_total_is_rounded_once_as_the_contract_says() {
        // 3 × (0.0000005 + 0.0000005) = 0.000003; the price alone rounds 0.0000015 up.
        let rate = Rate {
            unit_price: dec("0.0000005"),
            carrier_fee: dec("0.0000005"),
        };
        let (price, fee) = charge(dec("3"), rate).unwrap();
        assert_eq!(price + fee, dec("0.000003"));
        assert_eq!(price, dec("0.000002"));
        assert_eq!(fee, dec("0.000001"));
    }

    #[test]
    fn free_categories_cost_nothing() {
        let free = Rate {
            unit_price: dec("0"),
            carrier_fee: dec("0"),
        };
        assert_eq!(charge(dec("12"), free), Ok((dec("0"), dec("0"))));
    }

    #[test]
    fn a_charge_beyond_any_amount_is_refused_not_overflowed() {
        let huge = Rate {
            unit_price: dec("100000000000"),
            carrier_fee: dec("0"),
        };
        let units = Decimal::from(2147483647_i64 * 2147483647_i64); // audience × units per recipient
        assert_eq!(charge(units, huge).unwrap_err().sqlstate(), "22023");
        assert_eq!(
            charge(
                dec("999999999999999"),
                Rate {
                    unit_price: dec("999999999999999"),
                    carrier_fee: dec("0")
                }
            )
            .unwrap_err()
            .sqlstate(),
            "22023"
        );
        assert_eq!(
            charge(
                dec("10000"),
                Rate {
                    unit_price: dec("100000000000"),
                    carrier_fee: dec("0")
                }
            )
            .unwrap_err()
            .sqlstate(),
            "22023"
        ); // exactly 1e15
        assert!(charge(
            dec("9999"),
            Rate {
                unit_price: dec("100000000000"),
                carrier_fee: dec("0")
            }
        )
        .is_ok());
    }
}
