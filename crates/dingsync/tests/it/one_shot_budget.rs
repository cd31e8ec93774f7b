//! With the default configuration (`rate_budget = "auto"`), one-shot commands share the
//! service's DingTalk rate budget on SQLite too (issue 18): two processes reading DingTalk at
//! once for the same app stay under DingTalk's qps together, which the simulator enforces with
//! 90018. The slots live in a sidecar file beside the database (`<db>-budget`), so the budget
//! never waits for the directory's write lock.
//!
//! Two shapes: two `plan` processes (both read the whole of DingTalk at once, so their calls
//! overlap for seconds on every run, and a plan's calls do not depend on timing), and `plan`
//! beside a busy `serve` whose scheduled reconcile crawls DingTalk back to back (the case the
//! issue reports: `plan` failed with "cannot compute the plan"). With a budget per process
//! each made DingTalk's qps on its own and the simulator answered 90018.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
async fn two_plans_on_sqlite_stay_under_dingtalks_qps_together() {
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
    assert_eq!(
        cfg.dingtalk.rate_budget,
        dingsync::config::RateBudgetMode::Auto,
        "the default shares the budget"
    );
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
    assert!(
        dir.path().join("d.db-budget").exists(),
        "the budget's slots live in the sidecar file"
    );
    sim.shutdown().await;
}

async fn sim_calls(http: &reqwest::Client, sim: &dingtalk_sim::SimHandle) -> serde_json::Value {
    testkit::sim::call(http, &sim.base_url(), Method::GET, "/_sim/calls", None).await
}

/// `plan` while `serve` is busy crawling DingTalk (its scheduled reconcile every second), at a
/// low qps: the plan succeeds, and DingTalk never saw more than its qps per API (no 90018).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_beside_a_busy_serve_on_sqlite_shares_its_budget() {
    let sim = testkit::sim::start(dingtalk_sim::SimConfig {
        users: 150,
        depts: 25,
        seed: 31,
        qps: 5,
        ..dingtalk_sim::SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = Config::default();
    cfg.dingtalk.base_url = sim.base_url();
    cfg.dingtalk.client_id = sim.config().client_id.clone();
    cfg.dingtalk.client_secret = Secret::new(sim.config().client_secret.clone());
    cfg.dingtalk.qps = 5;
    cfg.database.url = Secret::new(format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("d.db").display()
    ));
    cfg.server.listen = "127.0.0.1:0".into();
    cfg.sync.reconcile_interval_secs = 1;
    let path = dir.path().join("dingsync.toml");
    std::fs::write(&path, toml::to_string(&cfg).expect("toml")).expect("write config");
    let import = dingsync(&["import"], &path).output().expect("import");
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );

    let http = reqwest::Client::new();
    let log = dir.path().join("serve.log");
    let mut serve = dingsync(&["serve"], &path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn serve");
    // Wait until serve's reconcile is crawling DingTalk.
    let before = sim_calls(&http, &sim).await["total"]["calls"]
        .as_u64()
        .unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = sim_calls(&http, &sim).await["total"]["calls"]
            .as_u64()
            .unwrap_or(0);
        if now > before + 20 {
            break;
        }
        assert!(
            Instant::now() < deadline && serve.try_wait().expect("try_wait").is_none(),
            "serve never crawled DingTalk:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let at_start = sim_calls(&http, &sim).await["total"]["calls"]
        .as_u64()
        .unwrap_or(0);
    let out = dingsync(&["plan", "--json"], &path).output().expect("plan");
    let at_end = sim_calls(&http, &sim).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "plan failed beside a busy serve: {:?}\n{stderr}",
        out.status
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("plan JSON");
    assert_eq!(plan["totals"]["dingtalk_users"], 150, "{plan}");
    assert_eq!(
        plan["totals"]["dingtalk_departments"], plan["totals"]["oa_departments"],
        "{plan}"
    );
    let plan_calls = plan["totals"]["dingtalk_calls"].as_u64().unwrap_or(0);
    let during = at_end["total"]["calls"].as_u64().unwrap_or(0) - at_start;
    assert!(
        plan_calls > 20 && during > plan_calls + 20,
        "serve kept calling DingTalk while the plan ran ({plan_calls} calls by the plan, \
         {during} in all): {at_end}"
    );
    assert_eq!(
        at_end["total"]["throttled"].as_u64(),
        Some(0),
        "DingTalk answered 90018 to serve and plan sharing one app: {at_end}"
    );

    let _ = Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status();
    let status = tokio::task::spawn_blocking(move || serve.wait())
        .await
        .expect("join")
        .expect("wait");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "serve did not stop cleanly:\n{text}");
    assert!(!text.contains("database is locked"), "{text}");
    sim.shutdown().await;
}
