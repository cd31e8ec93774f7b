//! With `rate_budget = "shared"`, one-shot commands share the service's DingTalk rate budget on
//! SQLite too (issue 18): two processes reading DingTalk at once for the same app stay under
//! DingTalk's qps together. (Not the default on SQLite: see `server::shares_budget`.)
//!
//! Why two `plan` processes and not `serve` beside `plan`: both read the whole of DingTalk at
//! once, so their calls overlap for seconds on every run, and a plan's calls do not depend on
//! timing; with a budget per process the two made twice the qps and the simulator answered
//! 90018 (the collision that made `plan` fail while `serve` was busy).

use std::process::Command;

use dingsync::config::{Config, Secret};
use reqwest::Method;

fn dingsync(args: &[&str], config: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dingsync"));
    cmd.args(args).arg("--config").arg(config);
    for (k, _) in std::env::vars() {
        if k.starts_with("DINGSYNC_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_sqlite_stay_under_dingtalks_qps_together() {
    // The simulator grants what the configuration asks for (20 calls per second per API).
    let sim = testkit::sim::start_org(400, 60, 18).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = Config::default();
    cfg.dingtalk.base_url = sim.base_url();
    cfg.dingtalk.client_id = sim.config().client_id.clone();
    cfg.dingtalk.client_secret = Secret::new(sim.config().client_secret.clone());
    cfg.database.url = Secret::new(format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("d.db").display()
    ));
    assert_eq!(cfg.dingtalk.qps, sim.config().qps);
    cfg.dingtalk.rate_budget = dingsync::config::RateBudgetMode::Shared;
    let path = dir.path().join("dingsync.toml");
    std::fs::write(&path, toml::to_string(&cfg).expect("toml")).expect("write config");
    // Create the database first, so the two do not race to migrate it.
    let status = dingsync(&["status"], &path).output().expect("status");
    assert!(status.status.success(), "{status:?}");

    let children: Vec<_> = (0..2)
        .map(|_| {
            dingsync(&["plan", "--json"], &path)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start plan")
        })
        .collect();
    let mut each = Vec::new();
    for child in children {
        let out = child.wait_with_output().expect("plan ends");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            matches!(out.status.code(), Some(0 | 3)),
            "plan failed: {:?}\n{stderr}",
            out.status
        );
        let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("plan JSON");
        assert_eq!(plan["totals"]["dingtalk_departments"], 60, "{plan}");
        each.push(plan["totals"]["dingtalk_calls"].as_u64().unwrap_or(0));
    }

    let http = reqwest::Client::new();
    let calls = testkit::sim::call(&http, &sim.base_url(), Method::GET, "/_sim/calls", None).await;
    let total = calls["total"]["calls"].as_u64().unwrap_or(0);
    assert!(
        each.iter().all(|n| *n > 100) && total >= each.iter().sum::<u64>(),
        "each plan read DingTalk for a while ({each:?} calls): {calls}"
    );
    assert_eq!(
        calls["total"]["throttled"].as_u64(),
        Some(0),
        "DingTalk answered 90018 to two processes sharing one app: {calls}"
    );
    sim.shutdown().await;
}
