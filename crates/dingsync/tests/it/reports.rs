//! How dingsync reports itself (issue 18): `/readyz` follows DingTalk's reachability with a
//! grace period; SIGHUP does not end `serve` and applies the deletion threshold live; logs carry no colour codes off a terminal; a busy
//! port is named with what to do; `status` prints dates; CLI output escapes terminal controls.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dingsync::config::{Config, Secret};
use dingsync::server::Application;
use tokio_util::sync::CancellationToken;

fn config(dir: &tempfile::TempDir, sim: &dingtalk_sim::SimHandle) -> Config {
    let mut c = Config::default();
    c.dingtalk.base_url = sim.base_url();
    c.dingtalk.client_id = sim.config().client_id.clone();
    c.dingtalk.client_secret = Secret::new(sim.config().client_secret.clone());
    c.database.url = Secret::new(format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("d.db").display()
    ));
    c.server.listen = "127.0.0.1:0".into();
    c
}

async fn readyz(http: &reqwest::Client, base: &str) -> (u16, String) {
    let r = http
        .get(format!("{base}/readyz"))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("readyz");
    (r.status().as_u16(), r.text().await.expect("body"))
}

#[tokio::test]
async fn readiness_follows_dingtalk_with_a_grace_period_and_says_why() {
    let sim = testkit::sim::start_org(10, 2, 7).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&dir, &sim);
    cfg.dingtalk.ready_grace_secs = 2;
    let app = Application::build(&cfg).await.expect("build");
    let base = format!("http://127.0.0.1:{}", app.port());
    let stop = CancellationToken::new();
    let task = tokio::spawn(app.run_until_stopped(stop.clone()));
    let http = reqwest::Client::new();
    assert_eq!(readyz(&http, &base).await, (200, "ready".to_owned()));

    // DingTalk goes away; the token stays cached, so only a real call can tell.
    sim.shutdown().await;
    let (status, body) = readyz(&http, &base).await;
    assert_eq!(status, 200, "within the grace period: {body}");
    assert!(body.starts_with("ready\ndingtalk: failing since"), "{body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let (status, body) = loop {
        let (status, body) = readyz(&http, &base).await;
        if status != 200 || Instant::now() > deadline {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(status, 503, "not ready after the grace period: {body}");
    assert!(
        body.contains("dingtalk: unreachable since") && body.contains("grace period"),
        "{body}"
    );
    stop.cancel();
    task.await.expect("join").expect("clean stop");
}

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

fn write_config(dir: &tempfile::TempDir, cfg: &Config) -> std::path::PathBuf {
    let path = dir.path().join("dingsync.toml");
    std::fs::write(&path, toml::to_string(cfg).expect("toml")).expect("write config");
    path
}

const OLD_TOKEN: &str = "reload-old-token-0123456789";
const NEW_TOKEN: &str = "reload-new-token-9876543210";

/// Sends SIGHUP to `pid` and waits until the log holds `n` SIGHUP lines; returns the log.
async fn hangup(pid: &str, log: &std::path::Path, n: usize) -> String {
    let hup = Command::new("kill")
        .args(["-HUP", pid])
        .status()
        .expect("kill -HUP");
    assert!(hup.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.matches("SIGHUP:").count() >= n || Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// SIGHUP (issue 18 B9) on a real child process: the OA API's tokens are replaced live, a key
/// that needs a restart is named, a file that does not validate changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_keeps_serve_running_and_logs_are_plain_off_a_terminal() {
    let sim = testkit::sim::start_org(10, 2, 8).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&dir, &sim);
    cfg.api.tokens = vec![Secret::new(OLD_TOKEN)];
    let path = write_config(&dir, &cfg);
    let log = dir.path().join("serve.log");
    let mut child = dingsync(&["serve"], &path)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn serve");
    let stdout = child.stdout.take().expect("stdout");
    let line = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.contains("listening on"))
    })
    .await
    .expect("join")
    .expect("serve printed its address");
    let base = line.split_whitespace().last().expect("url").to_owned();
    let pid = child.id().to_string();

    let http = reqwest::Client::new();
    let api = |token: &'static str| {
        let (http, url) = (http.clone(), format!("{base}/api/v1/users"));
        async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("api")
                .status()
                .as_u16()
        }
    };
    assert_eq!(api(OLD_TOKEN).await, 200);
    assert_eq!(api(NEW_TOKEN).await, 401);

    // A token replaced (applied live) and a key that needs a restart, then SIGHUP.
    cfg.api.tokens = vec![Secret::new(NEW_TOKEN)];
    cfg.dingtalk.qps = 5;
    write_config(&dir, &cfg);
    let text = hangup(&pid, &log, 1).await;
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "SIGHUP ended serve"
    );
    let health = reqwest::get(format!("{base}/healthz"))
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    assert!(
        text.contains("applied live: [api.tokens]")
            && text.contains("restart")
            && text.contains("[dingtalk.qps]"),
        "the reload names what it applied and what needs a restart, by key:\n{text}"
    );
    assert!(!text.contains(NEW_TOKEN), "a token in the log:\n{text}");
    assert_eq!(api(NEW_TOKEN).await, 200, "the new token works at once");
    assert_eq!(
        api(OLD_TOKEN).await,
        401,
        "the old token is revoked at once"
    );

    // A file that does not validate: named by key, and the running configuration stays.
    let mut bad = cfg.clone();
    bad.dingtalk.qps = 0;
    bad.api.tokens = vec![Secret::new(OLD_TOKEN)];
    write_config(&dir, &bad);
    let text = hangup(&pid, &log, 2).await;
    assert!(
        text.contains("does not load") && text.contains("dingtalk.qps"),
        "{text}"
    );
    assert!(child.try_wait().expect("try_wait").is_none());
    assert_eq!(api(NEW_TOKEN).await, 200, "the old configuration stays");
    assert_eq!(api(OLD_TOKEN).await, 401);

    let term = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill -TERM");
    assert!(term.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join");
    assert!(
        status.expect("wait").success(),
        "SIGTERM still stops cleanly"
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("INFO"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "colour codes in a log file:\n{text}"
    );
    sim.shutdown().await;
}

/// The scheduled reconcile rounds the log shows, in order (their log lines).
fn rounds(log: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("scheduled reconcile"))
        .map(str::to_owned)
        .collect()
}

/// How many scheduled reconcile rounds the log shows.
fn reconcile_rounds(log: &std::path::Path) -> usize {
    rounds(log).len()
}

/// Waits until the log shows `n` scheduled reconcile rounds.
async fn wait_rounds(log: &std::path::Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while reconcile_rounds(log) < n {
        assert!(
            Instant::now() < deadline,
            "no reconcile round {n}:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// SIGHUP applies the deletion threshold live (issue 18 B9): three users leave DingTalk, the
/// scheduled reconcile holds their deletion under a threshold of one; after the file raises the
/// threshold and `serve` gets SIGHUP, the next round deletes them, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_the_deletion_threshold_live() {
    let sim = testkit::sim::start_org(30, 3, 12).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&dir, &sim);
    cfg.sync.reconcile_interval_secs = 1;
    cfg.events.catchup_interval_secs = 0;
    cfg.sync.deletion_max_count = 1;
    let path = write_config(&dir, &cfg);
    let import = dingsync(&["import"], &path).output().expect("import");
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    let log = dir.path().join("serve.log");
    let mut child = dingsync(&["serve"], &path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn serve");
    let pid = child.id().to_string();
    wait_rounds(&log, 1).await;

    // Three of thirty leave DingTalk (no callback subscribed: only the reconcile sees it).
    let http = reqwest::Client::new();
    let state = testkit::sim::call(
        &http,
        &sim.base_url(),
        reqwest::Method::GET,
        "/_sim/state",
        None,
    )
    .await;
    let leavers: Vec<String> = state["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["userid"].as_str().map(str::to_owned))
        .take(3)
        .collect();
    assert_eq!(leavers.len(), 3);
    for userid in &leavers {
        testkit::sim::call(
            &http,
            &sim.base_url(),
            reqwest::Method::DELETE,
            &format!("/_sim/users/{userid}"),
            None,
        )
        .await;
    }
    // Two full rounds after the leave: both held the three deletions (3 > 1).
    let seen = reconcile_rounds(&log);
    wait_rounds(&log, seen + 3).await;
    let held = rounds(&log);
    for line in &held[seen + 1..] {
        assert!(
            line.contains("skipped_held: 3"),
            "held under the old threshold: {line}"
        );
    }

    cfg.sync.deletion_max_count = 500;
    cfg.sync.deletion_max_percent = 50.0;
    write_config(&dir, &cfg);
    let text = hangup(&pid, &log, 1).await;
    assert!(
        text.contains("applied live: [sync.deletion_max_count, sync.deletion_max_percent]"),
        "{text}"
    );
    assert!(!text.contains("need a restart"), "{text}");
    // A round under way at the reload may still hold them; the first that starts after it
    // deletes them, and the sides are equal.
    let reloaded = reconcile_rounds(&log);
    wait_rounds(&log, reloaded + 3).await;
    let done = rounds(&log);
    let first = (reloaded..reloaded + 2)
        .find(|&n| done[n].contains("skipped_held: 0"))
        .unwrap_or_else(|| panic!("still held: {}", done[reloaded..].join("\n")));
    assert!(
        first == reloaded || done[reloaded].contains("skipped_held: 3"),
        "{}",
        done[reloaded..].join("\n")
    );
    assert!(
        done[first].contains("applied: 3"),
        "the new threshold took effect: {}",
        done[reloaded..].join("\n")
    );
    assert!(done[first + 1].contains("drift=0"), "{}", done[first + 1]);
    assert!(child.try_wait().expect("try_wait").is_none());
    let plan = dingsync(&["plan", "--json"], &path).output().expect("plan");
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).expect("plan JSON");
    assert_eq!(plan["items"].as_array().map(Vec::len), Some(0), "{plan}");
    assert_eq!(
        plan["totals"]["dingtalk_users"], plan["totals"]["oa_users"],
        "{plan}"
    );

    let term = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill -TERM");
    assert!(term.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join");
    assert!(status.expect("wait").success());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_port_is_named_with_what_to_do() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let sim = testkit::sim::start_org(5, 1, 9).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&dir, &sim);
    cfg.server.listen = addr.to_string();
    let path = write_config(&dir, &cfg);
    let out = dingsync(&["serve"], &path).output().expect("run serve");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let first = stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or("");
    assert!(
        first.contains(&format!("cannot listen on {addr}"))
            && first.contains("already in use")
            && first.contains("server.listen"),
        "{stderr}"
    );
    assert!(
        stderr.contains("cause:"),
        "the cause is shown without -v: {stderr}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_and_an_unreachable_host_say_different_things() {
    let sim = testkit::sim::start_org(5, 1, 10).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&dir, &sim);
    cfg.dingtalk.client_secret = Secret::new("wrong-secret-0123456789");
    let path = write_config(&dir, &cfg);
    let out = dingsync(&["check"], &path).output().expect("run check");
    let wrong = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success());
    assert!(wrong.contains("refused the app credentials"), "{wrong}");
    assert!(
        !wrong.contains("wrong-secret-0123456789"),
        "the secret leaked: {wrong}"
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let mut cfg = config(&dir, &sim);
    cfg.dingtalk.base_url = format!("http://127.0.0.1:{port}");
    let path = write_config(&dir, &cfg);
    let out = dingsync(&["check"], &path).output().expect("run check");
    let gone = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success());
    assert!(
        gone.contains("did not answer") && gone.contains("dingtalk.base_url"),
        "{gone}"
    );
    assert!(!gone.contains("refused the app credentials"), "{gone}");
    sim.shutdown().await;
}

/// A department whose name carries terminal controls (as DingTalk or an old OA write could
/// leave one) with a dead-lettered push whose error quotes it, and an import recorded the way
/// older versions wrote it.
async fn hostile_directory(url: &str) {
    use directory_model::{Department, OaDeptId};
    use directory_store::{Expect, Store, WriteCtx};
    let store = Store::connect(url).await.expect("open the database");
    let now = 1_796_161_275_000;
    let dept = Department {
        id: OaDeptId(1),
        name: "Evil\u{1b}]0;owned\u{7}\u{1b}[2J\u{202e}gpj".into(),
        parent: None,
        order: 0,
        managers: Vec::new(),
        source_identifier: None,
        hide: false,
        outer: false,
    };
    let ctx = WriteCtx::import("test", now).with_enqueue(true);
    store
        .save_department(&ctx, dept, Expect::Any)
        .await
        .expect("save");
    let claimed = store
        .outbox_claim("test", now, 60_000, 10)
        .await
        .expect("claim");
    let entry = claimed.first().expect("an outbox entry");
    store
        .outbox_dead_letter(
            entry.id,
            "test",
            "DingTalk 60001 for \"Evil\u{1b}[2J\u{0}\"",
            now,
        )
        .await
        .expect("dead-letter");
    store
        .state_set(
            "import.last_finished",
            "unix time 1796161275 (complete; 3 users created, 0 updated)",
            now,
        )
        .await
        .expect("state");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_output_escapes_terminal_controls_and_status_prints_dates() {
    let sim = testkit::sim::start_org(5, 1, 11).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(&dir, &sim);
    hostile_directory(cfg.database.url.expose()).await;
    let path = write_config(&dir, &cfg);
    for args in [&["dead-letters", "list"][..], &["status"], &["plan"]] {
        let out = dingsync(args, &path).output().expect("run dingsync");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let raw = |c: char| stdout.contains(c) || stderr.contains(c);
        for c in ['\u{1b}', '\u{7}', '\u{0}', '\u{202e}'] {
            assert!(!raw(c), "{args:?} printed {c:?} raw:\n{stdout}\n{stderr}");
        }
        if args[0] != "plan" || out.status.code() == Some(3) {
            assert!(
                stdout.contains("\\u{1b}"),
                "{args:?} shows the escape:\n{stdout}\n{stderr}"
            );
        }
        if args[0] == "status" {
            assert!(stdout.contains("2026-12-01T21:41:15Z"), "{stdout}");
            assert!(!stdout.contains("unix time"), "{stdout}");
        }
    }
    // `plan --json` stays JSON: C1 and bidi controls become JSON's own escapes, not `\u{…}`.
    let out = dingsync(&["plan", "--json"], &path)
        .output()
        .expect("run dingsync");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for c in ['\u{1b}', '\u{7}', '\u{0}', '\u{202e}'] {
        assert!(
            !stdout.contains(c),
            "plan --json printed {c:?} raw:\n{stdout}"
        );
    }
    let plan: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("plan --json is not JSON ({e}):\n{stdout}"));
    let names: Vec<&str> = plan["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert!(
        names.contains(&"Evil\u{1b}]0;owned\u{7}\u{1b}[2J\u{202e}gpj"),
        "{names:?}"
    );
    sim.shutdown().await;
}

/// A DingTalk that grants far less than the configured qps: the import cannot finish, says so,
/// exits non-zero, and warns that `dingtalk.qps` is above what DingTalk grants (issue 18 B6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incomplete_import_exits_non_zero_and_names_the_qps() {
    use crate::support::faults::{Rig, RigOptions};
    let rig = Rig::start(RigOptions::new(0xB6)).await;
    rig.sim_settings(serde_json::json!({"qps": 1, "fault_rate": 0.6}))
        .await;
    let (code, text) = rig.cli(&["import"]).await;
    assert!(text.contains("INCOMPLETE"), "{text}");
    assert_ne!(code, Some(0), "an incomplete import exited 0:\n{text}");
    assert!(
        text.contains("90018") && text.contains("dingtalk.qps"),
        "{text}"
    );
    // The command-line import is in the console's run history, with its honest outcome.
    let store = directory_store::Store::connect(&rig.database_url())
        .await
        .expect("store");
    let runs = store.runs_recent(10).await.expect("runs");
    let import = runs
        .iter()
        .find(|r| r.kind == "import" && r.started_by == "cli")
        .unwrap_or_else(|| panic!("the CLI import is not in the run history: {runs:?}"));
    assert!(import.finished_at_ms.is_some(), "{import:?}");
    assert_ne!(import.outcome.as_deref(), Some("ok"), "{import:?}");
    assert!(import.failure.is_some(), "what failed is named: {import:?}");
    assert!(import.summary_json.contains("dingtalk_calls"), "{import:?}");
}
