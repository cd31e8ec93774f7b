//! `dingsync bench`: the scenarios live in the `dingsync-bench` crate (`crates/bench`); this
//! module mounts them on the real service ([`Local`]) and keeps the command's paths
//! (`dingsync::bench::…`) where scripts and tests know them.

pub use dingsync_bench::{
    BenchArgs, BenchReport, Database, Scenario, api, callbacks, events, import, load, push, reorg,
    rig, stats,
};

use crate::config::Secret;
use crate::local::Local;

/// Where a scenario's directory lives, with the PostgreSQL server in the config's [`Secret`].
pub type DbChoice = dingsync_bench::DbChoice<Secret>;

impl dingsync_bench::ServerUrl for Secret {
    fn expose(&self) -> &str {
        Secret::expose(self)
    }
}

/// Runs one scenario against the real service and returns its figures.
pub async fn run_scenario(scenario: &Scenario, db: &DbChoice) -> anyhow::Result<BenchReport> {
    dingsync_bench::run_scenario(&Local, scenario, db).await
}

/// `dingsync bench`: runs the scenario and prints its figures.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    dingsync_bench::run(&Local, args).await
}
