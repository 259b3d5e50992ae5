//! `billing`: prepaid-credit billing for messaging platforms, inside PostgreSQL.
//!
//! Tables, triggers and grants live in `sql/*.sql`; the rules live in the domain modules below,
//! each a set of pure decisions (plain `#[test]`s) under a thin SQL shell. API functions that
//! may raise the extension's own SQLSTATEs go through `boundary` (see its module comment).

use pgrx::prelude::*;

::pgrx::pg_module_magic!(name, version);

/// Registers the extension's settings (`billing.batch_size`) when a backend loads the library.
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    scheduling::register_gucs();
}

mod accounts;
mod autorecharge;
mod billing_cycle;
mod boundary;
mod campaigns;
mod db;
mod dunning;
mod error;
mod events;
mod holds;
mod idempotency;
mod invariants;
mod ledger;
mod money;
mod payments;
mod policy;
#[cfg(test)]
mod properties;
mod rates;
mod reports;
mod scheduling;
mod segments;
mod transition;
mod usage;

extension_sql_file!("../sql/001_schema.sql", name = "schema", bootstrap);
extension_sql_file!(
    "../sql/002_campaigns.sql",
    name = "campaigns",
    requires = ["schema"]
);
extension_sql_file!(
    "../sql/003_billing_cycle.sql",
    name = "billing_cycle",
    requires = ["campaigns"]
);
extension_sql_file!(
    "../sql/004_dunning.sql",
    name = "dunning",
    requires = ["billing_cycle"]
);
extension_sql_file!(
    "../sql/005_scheduling.sql",
    name = "scheduling",
    requires = ["dunning"]
);
extension_sql_file!(
    "../sql/006_usage_rollup.sql",
    name = "usage_rollup",
    requires = ["scheduling"]
);
extension_sql_file!(
    "../sql/007_dump.sql",
    name = "dump",
    requires = ["usage_rollup"]
);
extension_sql_file!(
    "../sql/008_seed_changes.sql",
    name = "seed_changes",
    requires = ["dump"]
);
extension_sql_file!("../sql/090_api.sql", name = "api", finalize);

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    include!("pg_tests.rs");
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
