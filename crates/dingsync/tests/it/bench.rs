//! Smoke tests of `dingsync bench`: every scenario at a tiny size, in-process, checking that
//! the report has the interface fields and that they are sane (no timing is asserted: the
//! figures are what the bench is for, not what the test checks). One run goes through the
//! binary to check the `--json` output itself, and the PostgreSQL case runs when
//! `DINGSYNC_TEST_PG_URL` is set.

use dingsync::bench::{
    self, BenchReport, DbChoice, Scenario, api::ApiArgs, callbacks::CallbacksArgs,
    events::EventsArgs, import::ImportArgs, push::PushArgs, reorg::ReorgArgs,
};
use serde_json::Value;

/// The fields every scenario's JSON has.
const FIELDS: [&str; 10] = [
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
];

/// Checks the fields every report shares, and returns the JSON for scenario checks.
fn check_common(report: &BenchReport, scenario: &str, bounded: bool) -> Value {
    let v = serde_json::to_value(report).expect("report serializes");
    for field in FIELDS {
        assert!(v.get(field).is_some(), "{scenario}: missing {field} in {v}");
    }
    assert_eq!(v["scenario"], scenario);
    let wall = v["wall_s"].as_f64().expect("wall_s is a number");
    assert!(wall > 0.0, "{scenario}: wall_s {wall}");
    assert!(v["throughput_per_s"].as_f64().is_some_and(|t| t > 0.0));
    assert!(v["peak_rss_mb"].as_f64().is_some_and(|m| m > 1.0));
    if bounded {
        let bound = v["bound_s"].as_f64().expect("bound_s is a number");
        let eff = v["efficiency"].as_f64().expect("efficiency is a number");
        assert!(bound > 0.0, "{scenario}: bound_s {bound}");
        // Nothing beats its bound by much (a little, from timer granularity at tiny sizes).
        assert!(eff > 0.0 && eff <= 1.2, "{scenario}: efficiency {eff}");
    }
    if let (Some(p50), Some(p99)) = (v["p50_ms"].as_f64(), v["p99_ms"].as_f64()) {
        assert!(0.0 <= p50 && p50 <= p99, "{scenario}: p50 {p50} p99 {p99}");
    }
    v
}

/// Every path in `min_calls` was called at least that often.
fn check_calls(v: &Value) {
    let min = v["min_calls"].as_object().expect("min_calls is an object");
    assert!(!min.is_empty(), "min_calls is empty: {v}");
    for (api, n) in min {
        let made = v["calls"][api].as_u64().unwrap_or(0);
        assert!(
            made >= n.as_u64().unwrap_or(0),
            "{api}: {made} calls made, minimum {n}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_reports_calls_bound_and_the_sequential_run() {
    let scenario = Scenario::Import(ImportArgs {
        users: 30,
        depts: Some(4),
        // Low enough that the user reads take a few rate windows, so the bound is not zero.
        qps: 10,
        latency_ms: 0,
        no_sequential: false,
        mapping: None,
    });
    let report = bench::run_scenario(&scenario, &DbChoice::Sqlite)
        .await
        .expect("import bench runs");
    let v = check_common(&report, "import", true);
    check_calls(&v);
    assert_eq!(v["people_imported"], 30);
    assert!(v["sequential_wall_s"].as_f64().is_some_and(|s| s > 0.0));
    // The sequential crawl reads the same data, so it makes at least the minimum calls.
    assert!(
        v["sequential_calls"].as_u64().unwrap_or(0) >= v["total_min_calls"].as_u64().unwrap_or(1)
    );
    assert_eq!(v["sequential_users"], 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_applied_and_their_latency_measured() {
    let scenario = Scenario::Events(EventsArgs {
        events: 6,
        idle_samples: 3,
        qps: 2,
        latency_ms: 0,
    });
    let report = bench::run_scenario(&scenario, &DbChoice::Sqlite)
        .await
        .expect("events bench runs");
    let v = check_common(&report, "events", true);
    check_calls(&v);
    assert!(v["p99_ms"].as_f64().is_some());
    assert!(v["burst_p99_ms"].as_f64().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorganisation_reaches_the_directory() {
    let scenario = Scenario::Reorg(ReorgArgs {
        people: 12,
        qps: 4,
        latency_ms: 0,
    });
    let report = bench::run_scenario(&scenario, &DbChoice::Sqlite)
        .await
        .expect("reorg bench runs");
    let v = check_common(&report, "reorg", true);
    check_calls(&v);
    assert_eq!(v["people"], 12);
    assert!(v["p99_ms"].as_f64().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_are_stored_and_compared_with_the_ceiling() {
    let scenario = Scenario::Callbacks(CallbacksArgs {
        concurrency: 4,
        requests: 40,
    });
    let report = bench::run_scenario(&scenario, &DbChoice::Sqlite)
        .await
        .expect("callbacks bench runs");
    let v = serde_json::to_value(&report).expect("serializes");
    for field in FIELDS {
        assert!(v.get(field).is_some(), "missing {field}");
    }
    assert_eq!(v["stored"], 40);
    assert!(v["ceiling_per_s"].as_f64().is_some_and(|c| c > 0.0));
    assert!(v["p99_ms"].as_f64().is_some());
    assert!(v["efficiency"].as_f64().is_some_and(|e| e > 0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_drains_the_outbox_into_dingtalk() {
    let scenario = Scenario::Push(PushArgs {
        changes: 8,
        qps: 4,
        latency_ms: 0,
        mapping: None,
    });
    let report = bench::run_scenario(&scenario, &DbChoice::Sqlite)
        .await
        .expect("push bench runs");
    let v = check_common(&report, "push", true);
    check_calls(&v);
    assert!(v["p99_ms"].as_f64().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_reads_and_writes_are_counted() {
    let scenario = Scenario::Api(ApiArgs {
        concurrency: 4,
        writes: 10,
        reads: 20,
    });
    let report = bench::run_scenario(&scenario, &DbChoice::Sqlite)
        .await
        .expect("api bench runs");
    let v = check_common(&report, "api", false);
    assert!(v["writes_per_s"].as_f64().is_some_and(|w| w > 0.0));
    assert!(v["reads_per_s"].as_f64().is_some_and(|r| r > 0.0));
    assert!(v["bound_s"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_on_postgres_when_a_server_is_given() {
    let Ok(url) = std::env::var("DINGSYNC_TEST_PG_URL") else {
        eprintln!("DINGSYNC_TEST_PG_URL unset: skipping the PostgreSQL bench");
        return;
    };
    let scenario = Scenario::Api(ApiArgs {
        concurrency: 4,
        writes: 10,
        reads: 20,
    });
    let report = bench::run_scenario(
        &scenario,
        &DbChoice::Postgres(dingsync::config::Secret::new(url)),
    )
    .await
    .expect("api bench runs on PostgreSQL");
    let v = check_common(&report, "api", false);
    assert_eq!(v["database"], "postgres");
}

#[test]
fn the_binary_prints_one_json_object() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dingsync"))
        .args([
            "bench", "import", "--users", "10", "--depts", "2", "--qps", "200", "--json",
        ])
        .env_remove("DINGSYNC_TEST_PG_URL")
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON line: {stdout}");
    let v: Value = serde_json::from_str(lines[0]).expect("valid JSON");
    for field in FIELDS {
        assert!(v.get(field).is_some(), "missing {field}");
    }
    assert!(v["sequential_wall_s"].as_f64().is_some());
}
