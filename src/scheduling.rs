//! Scheduling: `tick()` runs every due step once; `schedule_jobs()` asks pg_cron to call it.

use crate::boundary::{Args, Ret};
use crate::db::{exec, one, with_spi};
use crate::error::{BillingError, Result};
use crate::sql_function;
use pgrx::JsonB;
use serde_json::{json, Value};

/// Advisory lock key of tick(): 'billing' in ASCII, so it is recognisable in pg_locks.
const TICK_LOCK: i64 = 0x62696c6c696e67;

const TRY_LOCK: &str = "SELECT pg_try_advisory_xact_lock($1)";
const IN_RECOVERY: &str = "SELECT pg_is_in_recovery()";

// Each step through its SQL function, so tick does exactly what a caller of that function gets.
const EXPIRE: &str = "SELECT billing.expire_reservations($1)";
const RUN_DUE: &str = "SELECT billing.run_due_campaigns($1)";
const DUNNING: &str = "SELECT count(*)::integer FROM billing.advance_dunning($1)";
const PURGE: &str = "SELECT billing.purge_stale_drafts($1)";
// Months are calendar months in UTC, as in close_billing_period.
const CLOSE: &str = "
    SELECT billing.close_billing_period(
               (date_trunc('month', $1 AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') - interval '1 microsecond')";

// The close is due once per month boundary: the first tick of a month closes the month before.
const CLOSE_DUE: &str = "
    UPDATE billing.scheduler_state
              SET last_close_month = date_trunc('month', $1 AT TIME ZONE 'UTC')::date
     WHERE last_close_month IS NULL OR last_close_month < date_trunc('month', $1 AT TIME ZONE 'UTC')::date
    RETURNING true";

const STAMP: &str = "UPDATE billing.scheduler_state SET last_tick_at = $1";

/// `billing.tick(as_of DEFAULT now()) → jsonb`
/// Runs every due step once: expire holds, run due campaigns, advance dunning, purge stale
/// drafts, and, at the first tick after a month boundary, the monthly close of the month before.
/// Returns what it did. Takes a transaction-level advisory lock: a second session calling it at
/// the same time returns at once with `{"skipped": "another tick is running"}`. On a standby it
/// does nothing and says so. Safe to call often: every step is idempotent at a given `as_of`.
fn tick(a: &Args) -> Result<Ret> {
    let as_of = a.ts(0, "as_of")?;
    let report = with_spi(|c| {
        if one::<bool>(exec(c, IN_RECOVERY, &[])?)? == Some(true) {
            return Ok(json!({ "skipped": "standby: nothing to do on a server in recovery" }));
        }
        if one::<bool>(exec(c, TRY_LOCK, &[TICK_LOCK.into()])?)? != Some(true) {
            return Ok(json!({ "skipped": "another tick is running" }));
        }
        let step = |c: &mut pgrx::spi::SpiClient<'_>, sql: &'static str| -> Result<i32> {
            Ok(one::<i32>(exec(c, sql, &[as_of.into()])?)?.unwrap_or(0))
        };
        let mut report = json!({
            "expired_holds": step(c, EXPIRE)?,
            "campaigns_executed": step(c, RUN_DUE)?,
            "dunning_changes": step(c, DUNNING)?,
            "drafts_purged": step(c, PURGE)?,
        });
        let close_due = one::<bool>(exec(c, CLOSE_DUE, &[as_of.into()])?)? == Some(true);
        report["period_close_invoices"] = if close_due {
            json!(step(c, CLOSE)?)
        } else {
            Value::Null
        };
        exec(c, STAMP, &[as_of.into()])?;
        Ok(report)
    })?;
    Ok(Ret::of(JsonB(report)))
}
sql_function!(billing_tick, pg_finfo_billing_tick, tick);

const CRON_INSTALLED: &str = "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron')";

/// The jobs billing asks pg_cron to run: stable names, so scheduling again updates them.
pub const JOBS: &[(&str, &str, &str)] = &[("billing-tick", "* * * * *", "SELECT billing.tick()")];

const SCHEDULE: &str = "SELECT cron.schedule($1, $2, $3)";

/// `billing.schedule_jobs() → integer`
/// Where pg_cron is installed in this database, creates or updates the job `billing-tick`
/// (every minute, `SELECT billing.tick()`) and returns how many jobs it manages (1).
/// Idempotent. Without pg_cron: SQLSTATE 55000 with a hint on how to install it.
fn schedule_jobs(_: &Args) -> Result<Ret> {
    let n = with_spi(|c| {
        if one::<bool>(exec(c, CRON_INSTALLED, &[])?)? != Some(true) {
            return Err(BillingError::Prerequisite {
                message: "pg_cron is not installed in this database".into(),
                hint: "Add pg_cron to shared_preload_libraries, set cron.database_name to this database, \
                       run CREATE EXTENSION pg_cron here, then call billing.schedule_jobs() again; \
                       or call billing.tick() from any other scheduler."
                    .into(),
            });
        }
        for (name, schedule, command) in JOBS {
            exec(
                c,
                SCHEDULE,
                &[(*name).into(), (*schedule).into(), (*command).into()],
            )?;
        }
        Ok(JOBS.len() as i32)
    })?;
    Ok(Ret::of(n))
}
sql_function!(
    billing_schedule_jobs,
    pg_finfo_billing_schedule_jobs,
    schedule_jobs
);
