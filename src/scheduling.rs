//! Scheduling: `tick()` runs every due step once, in bounded batches; `schedule_jobs()` asks
//! pg_cron to call `run_tick`, which repeats ticks, committing between them, until nothing is due.

use crate::boundary::{Args, Ret};
use crate::db::{exec, one, with_spi};
use crate::error::{BillingError, Result};
use crate::{billing_cycle, campaigns, dunning, holds, sql_function};
use pgrx::datum::TimestampWithTimeZone;
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::JsonB;
use serde_json::{json, Value};

/// How much of a step one call does. The step functions called directly do everything due and
/// wait for busy accounts (their contract); tick() does bounded batches and skips accounts that
/// another transaction holds, so it never waits on, nor deadlocks with, other work: the next tick
/// picks up what it skipped.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Batch {
    /// At most this many accounts (campaigns, for the purge) per step; None: no limit.
    pub limit: Option<i64>,
    pub skip_locked: bool,
}

impl Batch {
    pub const ALL: Batch = Batch {
        limit: None,
        skip_locked: false,
    };

    pub fn bounded(limit: i64) -> Batch {
        Batch {
            limit: Some(limit),
            skip_locked: true,
        }
    }

    /// Whether a step that took `n` items used the whole batch, so more may be due.
    pub fn full(&self, n: usize) -> bool {
        self.limit.is_some_and(|l| n as i64 >= l)
    }
}

/// `billing.batch_size`: how many accounts each step of one tick takes at most.
pub static BATCH_SIZE: GucSetting<i32> = GucSetting::<i32>::new(1000);

pub fn register_gucs() {
    GucRegistry::define_int_guc(
        c"billing.batch_size",
        c"Accounts (or campaigns) each step of one billing.tick() takes at most.",
        c"Bounds the row locks one tick transaction holds; billing.run_tick() repeats ticks until nothing is due.",
        &BATCH_SIZE,
        1,
        1_000_000,
        GucContext::Suset,
        GucFlags::default(),
    );
}

/// Advisory lock key of tick(): 'billing' in ASCII, so it is recognisable in pg_locks.
const TICK_LOCK: i64 = 0x62696c6c696e67;

const TRY_LOCK: &str = "SELECT pg_try_advisory_xact_lock($1)";
const IN_RECOVERY: &str = "SELECT pg_is_in_recovery()";

// The close is due once per month boundary (calendar months in UTC, as in close_billing_period):
// the first tick of a month starts the close of the month before, and later ticks go on with it,
// a batch each, until a batch comes back short.
const CLOSE_DUE: &str = "
    UPDATE billing.scheduler_state
       SET last_close_month = date_trunc('month', $1 AT TIME ZONE 'UTC')::date, close_pending = true
     WHERE last_close_month IS NULL OR last_close_month < date_trunc('month', $1 AT TIME ZONE 'UTC')::date";

const PENDING_CLOSE: &str = "
    SELECT (last_close_month::timestamp AT TIME ZONE 'UTC') - interval '1 microsecond'
      FROM billing.scheduler_state WHERE close_pending";

const CLOSE_DONE: &str = "UPDATE billing.scheduler_state SET close_pending = false";

const DUNNING_CURSOR: &str = "SELECT dunning_after FROM billing.scheduler_state";
const SET_DUNNING_CURSOR: &str = "UPDATE billing.scheduler_state SET dunning_after = $1";

const STAMP: &str = "UPDATE billing.scheduler_state SET last_tick_at = $1";

/// `billing.tick(as_of DEFAULT now()) → jsonb`
/// Runs every due step once: expire holds, run due campaigns, advance dunning, purge stale
/// drafts, and from the first tick after a month boundary the monthly close of the month before.
/// Each step takes at most `billing.batch_size` accounts (campaigns for the purge) and skips
/// accounts locked by other transactions, so a tick holds a bounded set of row locks and never
/// waits for one (no deadlock with concurrent calls). Returns what it did, with `"more": true`
/// when a step filled its batch (call again, or use `CALL billing.run_tick()`). Dunning walks the
/// accounts in id order across ticks (a cursor in billing.scheduler_state). Takes a
/// transaction-level advisory lock: a second session calling it at the same time returns at
/// once with `{"skipped": "another tick is running"}`. On a standby it does nothing and says so.
/// Safe to call often: every step is idempotent at a given `as_of`. 22023 for a NULL or
/// infinite `as_of`.
fn tick(a: &Args) -> Result<Ret> {
    let as_of = a.ts(0, "as_of")?;
    let batch = Batch::bounded(i64::from(BATCH_SIZE.get()));
    let report = with_spi(|c| {
        if one::<bool>(exec(c, IN_RECOVERY, &[])?)? == Some(true) {
            return Ok(json!({ "skipped": "standby: nothing to do on a server in recovery" }));
        }
        if one::<bool>(exec(c, TRY_LOCK, &[TICK_LOCK.into()])?)? != Some(true) {
            return Ok(json!({ "skipped": "another tick is running" }));
        }
        let expired = holds::expire_due(c, as_of, batch)?;
        let executed = campaigns::run_due(c, as_of, batch)?;

        let after = one::<i64>(exec(c, DUNNING_CURSOR, &[])?)?.unwrap_or(0);
        let (changes, dunning) = dunning::advance_due(c, as_of, batch, after)?;
        let next = if dunning.full { dunning.last_id } else { 0 };
        exec(c, SET_DUNNING_CURSOR, &[next.into()])?;

        let purged = campaigns::purge_due(c, as_of, None, batch)?;

        exec(c, CLOSE_DUE, &[as_of.into()])?;
        let mut closed = Value::Null;
        let mut close_full = false;
        if let Some(close_as_of) = one::<TimestampWithTimeZone>(exec(c, PENDING_CLOSE, &[])?)? {
            let step = billing_cycle::close_due(c, close_as_of, batch)?;
            if !step.full {
                exec(c, CLOSE_DONE, &[])?;
            }
            close_full = step.full;
            closed = json!(step.done);
        }
        exec(c, STAMP, &[as_of.into()])?;
        Ok(json!({
            "expired_holds": expired.done,
            "campaigns_executed": executed.done,
            "dunning_changes": changes.len(),
            "drafts_purged": purged.done,
            "period_close_invoices": closed,
            "more": expired.full || executed.full || dunning.full || purged.full || close_full,
        }))
    })?;
    Ok(Ret::of(JsonB(report)))
}
sql_function!(billing_tick, pg_finfo_billing_tick, tick);

/// What one batch of a step did: how many it changed, and whether it used the whole batch.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Step {
    pub done: i32,
    pub full: bool,
}

const CRON_INSTALLED: &str = "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron')";

/// The jobs billing asks pg_cron to run: stable names, so scheduling again updates them.
pub const JOBS: &[(&str, &str, &str)] = &[("billing-tick", "* * * * *", "CALL billing.run_tick()")];

const SCHEDULE: &str = "SELECT cron.schedule($1, $2, $3)";

/// `billing.schedule_jobs() → integer`
/// Where pg_cron is installed in this database, creates or updates the job `billing-tick`
/// (every minute, `CALL billing.run_tick()`) and returns how many jobs it manages (1).
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
