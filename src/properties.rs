//! Property tests of the pure rules: for any input proptest can make, not just the cases the
//! unit tests list. A failure prints the shrunk input and stores its seed under
//! `proptest-regressions/`, so the next run replays it first.

use crate::dunning::{passed, stage_for, Rung};
use crate::money::{check_recharge, parse_amount, tax, Sign};
use crate::rates::{charge, Rate};
use crate::segments::{gsm7_septets, segments};
use proptest::prelude::*;
use rust_decimal::{Decimal, RoundingStrategy};

const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM7_EXTENSION: &str = "^{}\\[]~|€\u{000C}";

/// Text of GSM-7 basic and extension characters, with the septets it needs counted apart.
fn gsm7_text() -> impl Strategy<Value = (String, usize)> {
    let basic: Vec<char> = GSM7_BASIC.chars().collect();
    let ext: Vec<char> = GSM7_EXTENSION.chars().collect();
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(basic).prop_map(|c| (c, 1usize)),
            1 => prop::sample::select(ext).prop_map(|c| (c, 2usize)),
        ],
        0..700,
    )
    .prop_map(|cs| {
        let septets = cs.iter().map(|(_, n)| n).sum();
        (cs.into_iter().map(|(c, _)| c).collect(), septets)
    })
}

/// A non-negative amount with at most 6 decimal places, below 1e12.
fn amount() -> impl Strategy<Value = Decimal> {
    (0i64..1_000_000_000_000, 0u32..=6).prop_map(|(m, s)| Decimal::new(m, s))
}

/// A ladder of 1 to 6 rungs: distinct days, ranks rising with the day (as the policy table makes).
fn ladder() -> impl Strategy<Value = Vec<Rung>> {
    prop::collection::btree_set(0i32..120, 1..=6).prop_map(|days| {
        days.into_iter()
            .enumerate()
            .map(|(i, day)| Rung {
                day,
                stage: format!("stage{}", i + 1),
                rank: i as i32 + 1,
                reminders: vec![],
                event: None,
            })
            .collect()
    })
}

fn round6(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(6, RoundingStrategy::MidpointAwayFromZero)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn gsm7_segments_follow_160_and_153((body, septets) in gsm7_text()) {
        prop_assert_eq!(gsm7_septets(&body), Some(septets));
        let expected = if septets <= 160 { 1 } else { septets.div_ceil(153) as i32 };
        prop_assert_eq!(segments(&body), expected);
    }

    #[test]
    fn one_character_outside_gsm7_makes_it_ucs2(
        (body, _) in gsm7_text(),
        other in "[\u{0400}-\u{04FF}\u{4E00}-\u{4E50}\u{1F600}-\u{1F64F}]",
        at in 0usize..700,
    ) {
        let mut chars: Vec<char> = body.chars().collect();
        let at = at.min(chars.len());
        chars.splice(at..at, other.chars());
        let text: String = chars.into_iter().collect();
        prop_assert_eq!(gsm7_septets(&text), None);
        let units = text.encode_utf16().count();
        let expected = if units <= 70 { 1 } else { units.div_ceil(67) as i32 };
        prop_assert_eq!(segments(&text), expected);
    }

    #[test]
    fn segments_hold_the_message_and_no_more_than_needed(body in "\\PC{0,600}") {
        let n = segments(&body) as usize;
        prop_assert!(n >= 1);
        let (units, single, multi) = match gsm7_septets(&body) {
            Some(s) => (s, 160, 153),
            None => (body.encode_utf16().count(), 70, 67),
        };
        if n == 1 {
            prop_assert!(units <= single);
        } else {
            prop_assert!(units > single && units <= n * multi && units > (n - 1) * multi);
        }
    }

    #[test]
    fn a_charge_splits_exactly_into_price_and_fee(
        units in amount(), unit_price in amount(), carrier_fee in amount()
    ) {
        let exact = round6(units * (unit_price + carrier_fee)); // < 1e24: no overflow here
        match charge(units, Rate { unit_price, carrier_fee }) {
            Ok((price, fee)) => {
                prop_assert!(exact < Decimal::from(1_000_000_000_000_000i64));
                prop_assert_eq!(price + fee, exact);
                prop_assert_eq!(price, round6(units * unit_price));
                prop_assert!(price >= Decimal::ZERO && fee >= Decimal::ZERO);
            }
            Err(e) => {
                prop_assert!(exact >= Decimal::from(1_000_000_000_000_000i64));
                prop_assert_eq!(e.sqlstate(), "22023");
            }
        }
    }

    #[test]
    fn tax_is_rounded_half_away_to_the_minor_unit(
        amount in amount(), rate_bp in 0i64..10_000, minor_units in 0u32..=6
    ) {
        let rate = Decimal::new(rate_bp, 4);
        let t = tax(amount, rate, minor_units);
        let exact = amount * rate;
        prop_assert!(t.normalize().scale() <= minor_units);
        let half_unit = Decimal::new(5, minor_units + 1);
        prop_assert!((t - exact).abs() <= half_unit, "tax {} of exact {}", t, exact);
        // A tie goes away from zero, never to even.
        if (t - exact).abs() == half_unit {
            prop_assert!(t > exact);
        }
    }

    #[test]
    fn recharge_bounds_are_inclusive_and_in_minor_units(
        amount in amount(), min in amount(), span in amount(), minor_units in 0u32..=6
    ) {
        let max = min + span;
        let result = check_recharge(amount, "INR", minor_units, min, max);
        let payable = amount.normalize().scale() <= minor_units;
        match result {
            Ok(()) => prop_assert!(payable && amount >= min && amount <= max),
            Err(e) if !payable => prop_assert_eq!(e.sqlstate(), "22023"),
            Err(e) => {
                prop_assert_eq!(e.sqlstate(), "BL002");
                prop_assert!(amount < min || amount > max);
            }
        }
    }

    #[test]
    fn amounts_round_trip_through_their_text(m in 1i64..1_000_000_000_000_000_000i64, s in 0u32..=6) {
        let d = Decimal::new(m, s + 3); // below 1e15, up to 9 places
        let parsed = parse_amount("amount", &d.to_string(), Sign::Positive);
        if d.normalize().scale() <= 6 && d < Decimal::from(1_000_000_000_000_000i64) {
            prop_assert_eq!(parsed.unwrap(), d);
        } else {
            prop_assert_eq!(parsed.unwrap_err().sqlstate(), "22023");
        }
    }

    #[test]
    fn the_ladder_gives_the_highest_rung_reached(l in ladder(), days in -5i64..200) {
        let got = stage_for(days, &l);
        let want = l.iter().filter(|r| i64::from(r.day) <= days).max_by_key(|r| r.day);
        prop_assert_eq!(got, want);
        // Never back: a later day is at the same rung or a higher one.
        let rank = |d| stage_for(d, &l).map_or(0, |r| r.rank);
        prop_assert!(rank(days + 1) >= rank(days));
    }

    #[test]
    fn a_catch_up_passes_each_stage_exactly_once(l in ladder(), d1 in 0i64..200, d2 in 0i64..200) {
        let (early, late) = (d1.min(d2), d1.max(d2));
        if let (Some(mid), Some(end)) = (stage_for(early, &l), stage_for(late, &l)) {
            // Straight from current to the stage due late == through the stage due early.
            let direct: Vec<i32> = passed(0, end, &l).iter().map(|r| r.rank).collect();
            let mut stepwise: Vec<i32> = passed(0, mid, &l).iter().map(|r| r.rank).collect();
            stepwise.extend(passed(mid.rank, end, &l).iter().map(|r| r.rank));
            prop_assert_eq!(&direct, &stepwise);
            prop_assert_eq!(direct, (1..=end.rank).collect::<Vec<_>>());
        }
    }
}
