//! Usage reports: per day (UTC), channel and category, campaign usage and free conversations
//! included, from `billing.usage` (indexed by account and time).

use crate::db::{exec, with_spi};
use crate::error::{BillingError, Result};
use crate::transition::{self, Table};
use pgrx::heap_tuple::PgHeapTuple;
use pgrx::prelude::*;
use pgrx::AllocatedByPostgres;
use std::collections::BTreeMap;

// Whole UTC days inside [from, to) come from the daily rollup; the partial days at either edge
// from raw rows, by two index range scans: [from, first whole day) and [end of whole days, to).
// Without a whole day in the range, the first scan covers it all.
const REPORT: &str = "
    WITH b AS (
        SELECT d0, greatest(d1, d0) AS d1,
               CASE WHEN d1 > d0 THEN d0::timestamp AT TIME ZONE 'UTC' ELSE $3 END AS raw_until,
               CASE WHEN d1 > d0 THEN d1::timestamp AT TIME ZONE 'UTC' ELSE $3 END AS raw_from
          FROM (SELECT (date_trunc('day', $2 AT TIME ZONE 'UTC')
                        + CASE WHEN $2 = date_trunc('day', $2 AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                               THEN interval '0' ELSE interval '1 day' END)::date AS d0,
                       date_trunc('day', $3 AT TIME ZONE 'UTC')::date AS d1) x)
    SELECT day, channel, category, sum(units), sum(amount)
      FROM (SELECT d.day, d.channel, d.category, d.units, d.amount
              FROM billing.usage_daily d, b
             WHERE d.account_id = $1 AND d.day >= b.d0 AND d.day < b.d1
            UNION ALL
            SELECT (u.occurred_at AT TIME ZONE 'UTC')::date, u.channel, u.category, u.units, u.amount
              FROM billing.usage u, b
             WHERE u.account_id = $1 AND u.occurred_at >= $2 AND u.occurred_at < least(b.raw_until, $3)
            UNION ALL
            SELECT (u.occurred_at AT TIME ZONE 'UTC')::date, u.channel, u.category, u.units, u.amount
              FROM billing.usage u, b
             WHERE u.account_id = $1 AND u.occurred_at >= greatest(b.raw_from, $2) AND u.occurred_at < $3
               AND b.raw_from < $3) r
     GROUP BY 1, 2, 3
     HAVING sum(units) <> 0 OR sum(amount) <> 0
     ORDER BY 1, 2, 3";

const ACCOUNT_EXISTS: &str = "SELECT 1 FROM billing.accounts WHERE id = $1";

// Calendar months in UTC, whatever the session's time zone.
const SIX_MONTHS_BEFORE: &str =
    "SELECT (($1 AT TIME ZONE 'UTC') - interval '6 months') AT TIME ZONE 'UTC'";

type Row = (pgrx::datum::Date, String, String, AnyNumeric, AnyNumeric);

fn report(
    account_id: Option<i64>,
    from_ts: Option<TimestampWithTimeZone>,
    to_ts: Option<TimestampWithTimeZone>,
) -> Result<Vec<Row>> {
    let id = account_id.ok_or_else(|| BillingError::invalid("account_id must not be NULL"))?;
    let finite = |name: &str, t: Option<TimestampWithTimeZone>| match t {
        Some(t) if t.is_finite() => Ok(t),
        Some(_) => Err(BillingError::invalid(format!(
            "{name} must be a finite timestamp"
        ))),
        None => Err(BillingError::invalid(format!("{name} must not be NULL"))),
    };
    let (from_ts, to_ts) = (finite("from_ts", from_ts)?, finite("to_ts", to_ts)?);
    with_spi(|c| {
        if exec(c, ACCOUNT_EXISTS, &[id.into()])?.is_empty() {
            return Err(BillingError::NotFound {
                what: "account",
                id,
            });
        }
        let mut rows = Vec::new();
        for r in exec(c, REPORT, &[id.into(), from_ts.into(), to_ts.into()])? {
            rows.push((
                r.get::<pgrx::datum::Date>(1)?
                    .ok_or_else(|| BillingError::Internal("no day".into()))?,
                r.get::<String>(2)?.unwrap_or_default(),
                r.get::<String>(3)?.unwrap_or_default(),
                r.get::<AnyNumeric>(4)?.unwrap_or_default(),
                r.get::<AnyNumeric>(5)?.unwrap_or_default(),
            ));
        }
        Ok(rows)
    })
}

/// `billing.usage_report(account_id, from_ts, to_ts) → TABLE(day, channel, category, units, amount)`
/// Usage with `from_ts <= occurred_at < to_ts`, summed per day (UTC), channel and category,
/// ordered by them; campaign usage and free conversations included. Reads without locking.
/// 22023 for NULL or infinite bounds (an empty range returns no rows), P0002 for an unknown account.
#[pg_extern(stable)]
fn usage_report(
    account_id: Option<i64>,
    from_ts: Option<TimestampWithTimeZone>,
    to_ts: Option<TimestampWithTimeZone>,
) -> TableIterator<
    'static,
    (
        name!(day, pgrx::datum::Date),
        name!(channel, String),
        name!(category, String),
        name!(units, AnyNumeric),
        name!(amount, AnyNumeric),
    ),
> {
    TableIterator::new(crate::boundary::standard(|| {
        report(account_id, from_ts, to_ts)
    }))
}

/// `billing.usage_export(account_id, as_of DEFAULT now()) → TABLE(day, channel, category, units, amount)`
/// The six months before `as_of` (`as_of - 6 months <= occurred_at < as_of`), as `usage_report`;
/// meant for `COPY (SELECT * FROM billing.usage_export(42)) TO STDOUT WITH CSV HEADER`.
#[pg_extern(stable)]
fn usage_export(
    account_id: Option<i64>,
    as_of: default!(Option<TimestampWithTimeZone>, "now()"),
) -> TableIterator<
    'static,
    (
        name!(day, pgrx::datum::Date),
        name!(channel, String),
        name!(category, String),
        name!(units, AnyNumeric),
        name!(amount, AnyNumeric),
    ),
> {
    let rows = crate::boundary::standard(|| {
        let from = match as_of {
            Some(t) if t.is_finite() => with_spi(|c| {
                crate::db::one::<TimestampWithTimeZone>(exec(c, SIX_MONTHS_BEFORE, &[t.into()])?)
            })?,
            _ => None,
        };
        report(account_id, from, as_of).map_err(|e| match e {
            BillingError::InvalidParameter(m) => BillingError::InvalidParameter(
                m.replace("to_ts", "as_of").replace("from_ts", "as_of"),
            ),
            other => other,
        })
    });
    TableIterator::new(rows)
}

// The daily rollup ---------------------------------------------------------------------------------

/// The UTC day of a timestamptz given as PostgreSQL stores it (microseconds since 2000-01-01
/// UTC), as days since 2000-01-01: what `(t AT TIME ZONE 'UTC')::date` gives, infinities kept.
pub fn utc_day(micros: i64) -> i32 {
    const DAY: i64 = 86_400_000_000;
    match micros {
        i64::MAX => i32::MAX,
        i64::MIN => i32::MIN,
        // timestamptz spans about ±110 million days: always within i32
        m => m.div_euclid(DAY) as i32,
    }
}

// The trigger, in a module of its own because of the name `Result`.
mod rollup_trigger {
    use super::*;
    // pg_trigger's expansion names `Result`: the std one, not crate::error's.
    use std::result::Result;

    /// One rollup row: account, UTC day, channel, category.
    type Day = (i64, i32, String, String);

    // The upsert also checks what foreign keys of usage and usage_daily used to: a group whose
    // account or channel does not exist is not written (and the trigger raises 23503). No lock
    // is taken: an account is never deleted, and a channel with usage cannot be deleted or
    // renamed (triggers on accounts and channels); a foreign key would KEY SHARE-lock the one
    // hot channel row on every charge. One statement for the common single group (a VALUES row
    // starts faster than six unnests), one for a bulk write. Names are qualified: a trigger runs
    // under the caller's search_path (direct DML).
    // The statement after its source of rows `t`: written only where account and channel exist.
    macro_rules! roll_up_from {
        ($source:expr) => {
            roll_up_from!($source, "EXISTS (SELECT FROM billing.accounts a WHERE a.id OPERATOR(pg_catalog.=) t.account_id)")
        };
        ($source:expr, $account_known:literal) => {
            concat!(
                "INSERT INTO billing.usage_daily AS d (account_id, day, channel, category, units, amount)
                 SELECT t.* FROM ",
                $source,
                " AS t(account_id, day, channel, category, units, amount)
                 WHERE ",
                $account_known,
                "
                   AND EXISTS (SELECT FROM billing.channels c WHERE c.channel OPERATOR(pg_catalog.=) t.channel)
                ON CONFLICT (account_id, day, channel, category)
                DO UPDATE SET units = d.units OPERATOR(pg_catalog.+) EXCLUDED.units,
                              amount = d.amount OPERATOR(pg_catalog.+) EXCLUDED.amount
                RETURNING 1"
            )
        };
    }
    // One group, as a VALUES row.
    macro_rules! one_group {
        () => {
            "(VALUES ($1::pg_catalog.int8, $2::pg_catalog.date, $3::pg_catalog.text,
                      $4::pg_catalog.text, $5::pg_catalog.numeric, $6::pg_catalog.numeric))"
        };
    }
    const ROLL_UP_ONE: &str = roll_up_from!(one_group!());
    // The same for the group of a one-statement charge, whose statement has just updated the
    // account (events::saw_account): it exists.
    const ROLL_UP_ONE_SEEN: &str = roll_up_from!(one_group!(), "true");
    const ROLL_UP_MANY: &str = roll_up_from!(
        "ROWS FROM (pg_catalog.unnest($1::pg_catalog.int8[]), pg_catalog.unnest($2::pg_catalog.date[]),
                    pg_catalog.unnest($3::pg_catalog.text[]), pg_catalog.unnest($4::pg_catalog.text[]),
                    pg_catalog.unnest($5::pg_catalog.numeric[]), pg_catalog.unnest($6::pg_catalog.numeric[]))"
    );
    const CHANNEL_KNOWN: &str =
        "SELECT EXISTS (SELECT FROM billing.channels WHERE channel OPERATOR(pg_catalog.=) $1)";

    /// `billing.roll_up_usage()`: AFTER INSERT, UPDATE and DELETE FOR EACH STATEMENT trigger of
    /// billing.usage, with its transition tables. Adds the statement's new rows to
    /// billing.usage_daily and takes its old rows out, one upsert for the whole statement (so a
    /// bulk load is one set-based write, not one per row). Locks the rollup rows it changes.
    /// 23503 when a row names an unknown account or channel (what the foreign keys of usage
    /// said).
    #[pg_trigger(sql = false)]
    fn roll_up_usage<'a>(
        trigger: &'a PgTrigger<'a>,
    ) -> std::result::Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible>
    {
        let mut days: BTreeMap<Day, (AnyNumeric, AnyNumeric)> = BTreeMap::new();
        for (table, sign) in [(Table::Old, -1), (Table::New, 1)] {
            if !transition::has(trigger, table) {
                continue;
            }
            transition::for_each_row(
                trigger,
                table,
                &[
                    "account_id",
                    "occurred_at",
                    "channel",
                    "category",
                    "units",
                    "amount",
                ],
                |row| {
                    // the timestamptz datum is its microseconds
                    let day = row[1].map_or(0, |d| utc_day(d.value() as i64));
                    let key = (
                        transition::get::<i64>(row[0]).unwrap_or_default(),
                        day,
                        transition::get::<String>(row[2]).unwrap_or_default(),
                        transition::get::<String>(row[3]).unwrap_or_default(),
                    );
                    let units: AnyNumeric = transition::get(row[4]).unwrap_or_default();
                    let amount: AnyNumeric = transition::get(row[5]).unwrap_or_default();
                    let sum = days
                        .entry(key)
                        .or_insert_with(|| (AnyNumeric::from(0), AnyNumeric::from(0)));
                    if sign < 0 {
                        sum.0 -= units;
                        sum.1 -= amount;
                    } else {
                        sum.0 += units;
                        sum.1 += amount;
                    }
                },
            );
        }
        if days.is_empty() {
            return Ok(None);
        }
        let unknown = with_spi(|c| roll_up(c, &days))
            .unwrap_or_else(|e| error!("billing: rolling up usage: {e}"));
        if let Some((column, value, table)) = unknown {
            ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_FOREIGN_KEY_VIOLATION,
                format!(
                    "insert or update on table \"usage\" violates foreign key constraint \"usage_{column}_fkey\""
                ),
                format!("Key ({column})=({value}) is not present in table \"{table}\".")
            );
        }
        Ok(None)
    }

    /// Upserts the groups; returns the first unknown reference (column, value, table), if any.
    fn roll_up(
        c: &mut pgrx::spi::SpiClient<'_>,
        days: &BTreeMap<Day, (AnyNumeric, AnyNumeric)>,
    ) -> crate::error::Result<Option<(&'static str, String, &'static str)>> {
        let groups = days.len();
        let written = if groups == 1 {
            let ((id, day, channel, category), (units, amount)) =
                days.iter().next().expect("one group");
            let args = [
                (*id).into(),
                date(*day).into(),
                channel.as_str().into(),
                category.as_str().into(),
                units.clone().into(),
                amount.clone().into(),
            ];
            let sql = if crate::events::saw_account(*id) {
                ROLL_UP_ONE_SEEN
            } else {
                ROLL_UP_ONE
            };
            exec(c, sql, &args)?.len()
        } else {
            let (mut ids, mut dates, mut channels, mut categories, mut units, mut amounts) = (
                Vec::with_capacity(groups),
                Vec::with_capacity(groups),
                Vec::with_capacity(groups),
                Vec::with_capacity(groups),
                Vec::with_capacity(groups),
                Vec::with_capacity(groups),
            );
            for ((id, day, channel, category), (u, a)) in days {
                ids.push(*id);
                dates.push(date(*day));
                channels.push(channel.clone());
                categories.push(category.clone());
                units.push(u.clone());
                amounts.push(a.clone());
            }
            let args = [
                ids.into(),
                dates.into(),
                channels.into(),
                categories.into(),
                units.into(),
                amounts.into(),
            ];
            exec(c, ROLL_UP_MANY, &args)?.len()
        };
        if written == groups {
            return Ok(None);
        }
        // Cold path: name the first unknown reference, as the foreign key would have.
        for (id, _, channel, _) in days.keys() {
            if !crate::accounts::exists(*id) {
                return Ok(Some(("account_id", id.to_string(), "accounts")));
            }
            let known = exec(c, CHANNEL_KNOWN, &[channel.as_str().into()])?;
            if !crate::db::one::<bool>(known)?.unwrap_or(false) {
                return Ok(Some(("channel", channel.clone(), "channels")));
            }
        }
        Ok(None)
    }

    /// A date from days since 2000-01-01 (utc_day's result).
    fn date(day: i32) -> pgrx::datum::Date {
        // SAFETY: utc_day gives a day within date's range, or one of its infinities.
        unsafe { pgrx::datum::Date::from_pg_epoch_days(day) }
    }

    crate::invariants::trigger_symbol!(
        billing_roll_up_usage,
        pg_finfo_billing_roll_up_usage,
        roll_up_usage_wrapper
    );
}

#[cfg(test)]
mod tests {
    use super::utc_day;

    const DAY: i64 = 86_400_000_000;

    #[test]
    fn a_timestamp_falls_on_its_utc_day() {
        assert_eq!(utc_day(0), 0); // 2000-01-01 00:00 UTC
        assert_eq!(utc_day(DAY - 1), 0); // 23:59:59.999999 the same day
        assert_eq!(utc_day(DAY), 1);
        assert_eq!(utc_day(-1), -1); // 1999-12-31 23:59:59.999999: floor, not truncation
        assert_eq!(utc_day(-DAY), -1);
        assert_eq!(utc_day(-DAY - 1), -2);
        // 2026-12-03 10:00 UTC is day 9833 after 2000-01-01
        assert_eq!(utc_day(9_833 * DAY + 10 * 3_600_000_000), 9_833);
    }

    #[test]
    fn infinite_timestamps_fall_on_infinite_days() {
        assert_eq!(utc_day(i64::MAX), i32::MAX);
        assert_eq!(utc_day(i64::MIN), i32::MIN);
    }
}
