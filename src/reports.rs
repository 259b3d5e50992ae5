//! Usage reports: per day (UTC), channel and category, campaign usage and free conversations
//! included, from `billing.usage` (indexed by account and time).

use crate::db::{exec, with_spi};
use crate::error::{BillingError, Result};
use pgrx::prelude::*;

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
