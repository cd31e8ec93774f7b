//! `dingsync bench`: how close dingsync runs to DingTalk's rate limit and to the machine's own
//! limit (issue 8).
//!
//! Every figure is a ratio to a physical bound measured or derived in the same run — the rate
//! limit for the calls the data requires, or the same HTTP server answering with no work — so
//! the figures hold on a noisy, shared machine where absolute numbers do not. Each scenario
//! starts its own simulator and directory ([`rig`]) and reports one [`BenchReport`].
//!
//! # Why a crate of its own, and how it reaches the service
//! The bench is 1.7k lines of load generation and statistics that the product never runs; as its
//! own crate it no longer rebuilds with every service change, and the service binary's modules
//! stay the service's. It must still measure the *real* service, while `dingsync` (which offers
//! the `dingsync bench` command) depends on this crate, so this crate cannot depend on `dingsync`
//! (Cargo forbids the cycle). It therefore defines the one thing it needs from the service,
//! [`service::Service`] ("start against this simulator with these settings"), and `dingsync`
//! implements it with its `Application`. The command's flags ([`BenchArgs`]) and its JSON output
//! ([`BenchReport`]) are defined here and mounted by `dingsync` unchanged.
//!
//! Errors are `anyhow`: this crate is the edge of one command, and every failure ends as a
//! message to the person running it.
//!
//! # Layout
//! - [`service`]: the [`service::Service`] seam, and what a started service hands back.
//! - [`rig`]: stands up a simulator, a fresh directory (SQLite or PostgreSQL) and the service;
//!   `dingsync demo` uses it too.
//! - [`stats`]: percentiles, the rate-limit bound, peak RSS (pure helpers).
//! - [`load`]: a closed-loop load generator (C workers, N requests, per-request latency).
//! - [`import`]: the full import, side by side with a strictly sequential crawl.
//! - [`events`]: DingTalk-side changes pushed as callbacks until the OA directory shows them.
//! - [`reorg`]: a reorganisation (thousands of people moved and retitled at once in DingTalk)
//!   until the OA directory holds every change.
//! - [`callbacks`]: signed pushes straight at the receiver, next to `/healthz` under the same
//!   load.
//! - [`push`]: OA API writes pushed to DingTalk, against the rate-limit bound.
//! - [`api`]: OA API reads and writes.
//! - [`recovery`]: a push backlog drained after the pusher was killed in the middle of it.
//! - [`scim`]: an IdP provisioning through SCIM: writes/s with p99, and time to DingTalk.
//! - [`console`]: the admin console's page times on a large directory, and a month's history.

pub mod api;
pub mod callbacks;
pub mod console;
pub mod events;
pub mod import;
pub mod load;
pub mod push;
pub mod recovery;
pub mod reorg;
pub mod rig;
pub mod scim;
pub mod service;
pub mod stats;

use std::collections::BTreeMap;

use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use serde_json::Value;

use dingtalk_proto::Secret;
pub use rig::{DbChoice, ServerUrl};
pub use service::{RunningService, Service, ServiceSpec};

/// `dingsync bench <scenario> [--json] [--database sqlite|postgres]`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// What to measure.
    #[command(subcommand)]
    pub scenario: Scenario,
    /// Print one JSON object per scenario instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// Where the directory lives: a temporary SQLite file, or a fresh PostgreSQL database.
    #[arg(long, global = true, value_enum, default_value_t = Database::Sqlite)]
    pub database: Database,
    /// The PostgreSQL server for `--database postgres` (the bench creates and drops its own
    /// database on it).
    #[arg(long, global = true, env = "DINGSYNC_TEST_PG_URL", hide_env_values = true, value_parser = parse_secret)]
    pub database_url: Option<Secret>,
}

/// The directory's database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Database {
    Sqlite,
    Postgres,
}

/// The scenarios.
#[derive(Debug, Clone, Subcommand)]
pub enum Scenario {
    /// Full import, and the same import one call after another, for the ratio.
    Import(import::ImportArgs),
    /// A burst of DingTalk changes pushed as callbacks; events/s applied, change-to-visible
    /// latency.
    Events(events::EventsArgs),
    /// DingTalk moves and retitles many people at once: time until the OA directory holds
    /// every change, against the bound, and change-to-visible p50/p99.
    Reorg(reorg::ReorgArgs),
    /// Signed pushes straight at the receiver: accepted/s and p99 next to `/healthz`.
    Callbacks(callbacks::CallbacksArgs),
    /// OA changes pushed to DingTalk: pushes/s against the rate-limit bound.
    Push(push::PushArgs),
    /// OA API reads and writes per second with p99.
    Api(api::ApiArgs),
    /// A push backlog after the pusher was killed mid-push: time to drain, calls per entity.
    Recovery(recovery::RecoveryArgs),
    /// SCIM creates and updates per second with p99, and time until they are in DingTalk.
    Scim(scim::ScimArgs),
    /// Admin console page times (p50/p99 per page) on a large directory, and the history a
    /// simulated month leaves.
    Console(console::ConsoleArgs),
}

/// Reads a URL that may carry a password into a [`Secret`], so `Debug` never shows it.
fn parse_secret(s: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(s))
}

/// One scenario's figures. `--json` prints it as is; the field names are the interface.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// `import`, `events`, `callbacks`, `push` or `api`.
    pub scenario: String,
    /// `sqlite` or `postgres`.
    pub database: String,
    /// Wall time of the measured part, seconds.
    pub wall_s: f64,
    /// The shortest wall time the bound allows, seconds (`None` where there is no bound).
    pub bound_s: Option<f64>,
    /// `bound_s / wall_s` (1.0 is perfect); `None` where the bound is zero or absent.
    pub efficiency: Option<f64>,
    /// DingTalk calls per API path (empty where no calls are made).
    pub calls: BTreeMap<String, u64>,
    /// The fewest calls per API path the work requires.
    pub min_calls: BTreeMap<String, u64>,
    /// Units of work per second (people, events, callbacks, pushes, requests).
    pub throughput_per_s: f64,
    /// Median latency, ms.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency, ms.
    pub p99_ms: Option<f64>,
    /// Peak resident memory of the whole bench process (simulator included), MB.
    pub peak_rss_mb: Option<f64>,
    /// `import` only: the same import made one call after another.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequential_wall_s: Option<f64>,
    /// Scenario-specific figures and the parameters of the run.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl BenchReport {
    /// A report with the common fields; `efficiency` is derived from the bound.
    pub fn new(scenario: &str, db: &DbChoice, wall_s: f64, bound_s: Option<f64>) -> Self {
        let efficiency = bound_s
            .filter(|b| *b > 0.0 && wall_s > 0.0)
            .map(|b| round3(b / wall_s));
        Self {
            scenario: scenario.to_owned(),
            database: db.name().to_owned(),
            wall_s: round3(wall_s),
            bound_s: bound_s.map(round3),
            efficiency,
            calls: BTreeMap::new(),
            min_calls: BTreeMap::new(),
            throughput_per_s: 0.0,
            p50_ms: None,
            p99_ms: None,
            peak_rss_mb: None,
            sequential_wall_s: None,
            extra: BTreeMap::new(),
        }
    }

    /// Adds a scenario-specific figure.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    /// The human form: a small two-column table.
    pub fn render_table(&self) -> String {
        let opt = |v: Option<f64>, unit: &str| v.map_or("-".to_owned(), |v| format!("{v}{unit}"));
        let mut rows: Vec<(String, String)> = vec![
            ("scenario".into(), self.scenario.clone()),
            ("database".into(), self.database.clone()),
            ("wall".into(), format!("{} s", self.wall_s)),
            ("bound".into(), opt(self.bound_s, " s")),
            ("efficiency (bound ÷ wall)".into(), opt(self.efficiency, "")),
            ("throughput".into(), format!("{}/s", self.throughput_per_s)),
            ("p50".into(), opt(self.p50_ms, " ms")),
            ("p99".into(), opt(self.p99_ms, " ms")),
            ("peak RSS".into(), opt(self.peak_rss_mb, " MB")),
        ];
        if let Some(s) = self.sequential_wall_s {
            rows.push(("sequential wall".into(), format!("{s} s")));
        }
        for (api, n) in &self.calls {
            let min = self
                .min_calls
                .get(api)
                .map_or("-".to_owned(), u64::to_string);
            rows.push((format!("calls {api}"), format!("{n} (min {min})")));
        }
        for (k, v) in &self.extra {
            rows.push((k.clone(), v.to_string()));
        }
        let width = rows
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        rows.iter()
            .map(|(k, v)| format!("  {k:<width$}  {v}\n"))
            .collect()
    }

    /// Fills in the peak RSS at the end of a scenario.
    fn finish(mut self) -> Self {
        self.peak_rss_mb = stats::peak_rss_mb();
        self
    }
}

/// Rounds to milliseconds.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl BenchArgs {
    /// The database the scenario's directory goes in.
    pub fn db_choice(&self) -> anyhow::Result<DbChoice> {
        match self.database {
            Database::Sqlite => Ok(DbChoice::Sqlite),
            Database::Postgres => self
                .database_url
                .clone()
                .map(DbChoice::Postgres)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "--database postgres needs --database-url or DINGSYNC_TEST_PG_URL"
                    )
                }),
        }
    }
}

/// Runs one scenario against `service` and returns its figures.
pub async fn run_scenario<S: ServerUrl>(
    service: &dyn Service,
    scenario: &Scenario,
    db: &DbChoice<S>,
) -> anyhow::Result<BenchReport> {
    let db = &db.to_secret();
    let report = match scenario {
        Scenario::Import(a) => import::run(service, a, db).await?,
        Scenario::Events(a) => events::run(service, a, db).await?,
        Scenario::Reorg(a) => reorg::run(service, a, db).await?,
        Scenario::Callbacks(a) => callbacks::run(service, a, db).await?,
        Scenario::Push(a) => push::run(service, a, db).await?,
        Scenario::Api(a) => api::run(service, a, db).await?,
        Scenario::Recovery(a) => recovery::run(service, a, db).await?,
        Scenario::Scim(a) => scim::run(service, a, db).await?,
        Scenario::Console(a) => console::run(service, a, db).await?,
    };
    Ok(report.finish())
}

/// `dingsync bench`: runs the scenario against `service` and prints its figures.
pub async fn run(service: &dyn Service, args: BenchArgs) -> anyhow::Result<()> {
    let db = args.db_choice()?;
    let report = run_scenario(service, &args.scenario, &db).await?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.render_table());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn efficiency_is_bound_over_wall() {
        let r = BenchReport::new("x", &DbChoice::Sqlite, 10.0, Some(9.0));
        assert_eq!(r.efficiency, Some(0.9));
        let r = BenchReport::new("x", &DbChoice::Sqlite, 10.0, None);
        assert_eq!(r.efficiency, None);
    }

    #[test]
    fn json_has_the_interface_fields_and_flattens_extras() {
        let r = BenchReport::new("import", &DbChoice::Sqlite, 2.0, Some(1.0)).with("qps", 20);
        let v = serde_json::to_value(&r).unwrap_or_default();
        for key in [
            "scenario",
            "wall_s",
            "bound_s",
            "efficiency",
            "calls",
            "min_calls",
            "throughput_per_s",
            "p50_ms",
            "p99_ms",
            "peak_rss_mb",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["qps"], 20);
        assert!(v.get("sequential_wall_s").is_none());
        assert!(r.render_table().contains("efficiency"));
    }

    #[test]
    fn database_url_stays_out_of_debug() {
        let args = BenchArgs {
            scenario: Scenario::Api(api::ApiArgs::default()),
            json: false,
            database: Database::Postgres,
            database_url: Some(Secret::new("postgres://u:hunter2@h/db")),
        };
        assert!(!format!("{args:?}").contains("hunter2"));
    }
}
