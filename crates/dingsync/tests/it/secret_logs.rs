//! No secret in the logs (issue 9 §4), with the real binary at `RUST_LOG=trace`, the most an
//! operator can ask it to say, driven through the paths where a careless log line would carry a
//! secret:
//! - a wrong client secret (every token fetch fails; the applier retries and logs why);
//! - forged, garbage and wrongly keyed callbacks, and OA API calls with a wrong token;
//! - a working configuration, then DingTalk expiring the access token (a refresh mid-work);
//! - a database that cannot be opened (start-up fails and reports it).
//!
//! Everything the processes print is then searched for every configured secret (the shared list
//! in `testkit::secrets` plus this run's) and for every access token the simulator issued. The
//! simulator hands out the same token while it is valid, so asking it for one after the service
//! did reveals the service's token.

use crate::support;

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use support::{API_TOKEN, Pusher, ServiceConfig, http, poll_until, send_push, sim_call};
use testkit::secrets::leaked;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::Child;

const WRONG_CLIENT_SECRET: &str = "trace-wrong-client-secret-Kp4s";
const WRONG_OA_TOKEN: &str = "trace-oa-token-Vn7q2Lx9";

/// One `dingsync serve` at trace level, its output captured line by line.
struct Traced {
    child: Child,
    output: Arc<Mutex<String>>,
}

impl Traced {
    /// Starts `dingsync serve --config <path>` with `RUST_LOG=trace`.
    fn spawn(config: &Path) -> Traced {
        let mut command = testkit::process::clean_command(env!("CARGO_BIN_EXE_dingsync"));
        command
            .arg("serve")
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "trace")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("spawn dingsync");
        let output = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        for stream in [
            Box::new(stdout) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(stderr),
        ] {
            let output = Arc::clone(&output);
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut text = output.lock().unwrap_or_else(|p| p.into_inner());
                    text.push_str(&line);
                    text.push('\n');
                }
            });
        }
        Traced { child, output }
    }

    fn output(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The last lines of the output without DEBUG/TRACE noise, for a failure message.
    fn tail(&self) -> String {
        let text = self.output();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.contains("DEBUG") && !l.contains("TRACE"))
            .collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Waits for `needle` in the output (bounded; the binary is a debug build on a busy host).
    async fn wait_for(&self, needle: &str) -> bool {
        poll_until(
            Duration::from_secs(60),
            Duration::from_millis(50),
            || async { self.output().contains(needle) },
        )
        .await
    }

    /// Kills the process and returns everything it printed.
    async fn stop(mut self) -> String {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        // The readers end when the pipes close; give them a moment to drain.
        poll_until(
            Duration::from_secs(5),
            Duration::from_millis(20),
            || async { Arc::strong_count(&self.output) == 1 },
        )
        .await;
        self.output()
    }
}

/// The access token the simulator currently hands out for these credentials.
async fn current_token(http: &reqwest::Client, sim: &str, id: &str, secret: &str) -> String {
    let v: Value = http
        .get(format!("{sim}/gettoken"))
        .query(&[("appkey", id), ("appsecret", secret)])
        .send()
        .await
        .expect("gettoken")
        .json()
        .await
        .expect("gettoken JSON");
    v["access_token"].as_str().unwrap_or_default().to_owned()
}

async fn oa_user(http: &reqwest::Client, base: &str, id: &str) -> Option<Value> {
    let r = http
        .get(format!("{base}/api/v1/users/{id}"))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .ok()?;
    if r.status().is_success() {
        r.json().await.ok()
    } else {
        None
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_of_error_paths_hold_no_secret() {
    let sim = support::start_sim(5, 2, 11).await;
    let sim_base = sim.base_url();
    let dir = tempfile::tempdir().expect("temp dir");
    let http = http();
    let mut config = ServiceConfig::for_sim(&sim, dir.path());
    let right_secret = config.client_secret.clone();
    let config_path = dir.path().join("dingsync.toml");
    let mut outputs = Vec::new();
    let mut tokens = Vec::new();

    // 1. A wrong client secret: the callback still works (it needs no DingTalk token), every
    //    DingTalk call fails and is retried.
    config.client_secret = WRONG_CLIENT_SECRET.to_owned();
    std::fs::write(&config_path, config.to_toml()).expect("config");
    let run = Traced::spawn(&config_path);
    assert!(
        run.wait_for("dingsync listening on").await,
        "{}",
        run.tail()
    );
    support::subscribe(&http, &sim_base, &config.callback_url()).await;
    sim_call(
        &http,
        &sim_base,
        Method::POST,
        "/_sim/users",
        Some(
            json!({"userid": "traceuser", "name": "Trace", "mobile": "13700000042",
                    "dept_id_list": "1"}),
        ),
    )
    .await;
    assert!(
        run.wait_for("dead letter").await,
        "the applier refused the event on the wrong secret and said so:\n{}",
        run.tail()
    );
    // Hostile callbacks: garbage, a forged signature, a push encrypted with other keys.
    let callback = config.callback_url();
    let r = http
        .post(&callback)
        .query(&[("signature", "x"), ("timestamp", "1"), ("nonce", "n")])
        .body("{not json")
        .send()
        .await
        .expect("garbage callback");
    assert!(r.status().is_client_error(), "{}", r.status());
    let mut forger = Pusher::with_keys(
        "forgedtoken77",
        "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe0fGh3",
        &config.client_id,
        5,
    );
    let now = support::now_ms().to_string();
    let push = forger.push(r#"{"EventType":"user_add_org","UserId":["x"]}"#, &now);
    let (status, _) = send_push(&http, &callback, &push).await;
    assert!(status.is_client_error(), "{status}");
    // The OA API with a wrong token and with the right one.
    let r = http
        .get(format!("{}/api/v1/departments", config.base()))
        .bearer_auth(WRONG_OA_TOKEN)
        .send()
        .await
        .expect("OA API");
    assert_eq!(r.status(), 401);
    let r = http
        .get(format!("{}/api/v1/departments", config.base()))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .expect("OA API");
    assert_eq!(r.status(), 200);
    outputs.push(run.stop().await);

    // 2. The right secret; the operator lists the dead letter and retries it (both one-shot
    //    commands at trace level too), and the event is applied (a token is fetched).
    config.client_secret = right_secret.clone();
    std::fs::write(&config_path, config.to_toml()).expect("config");
    for args in [
        vec!["dead-letters", "list"],
        vec!["dead-letters", "retry", "1", "--inbox"],
    ] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_dingsync"))
            .args(&args)
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "trace")
            .env_remove("DINGSYNC_CONFIG")
            .stdin(Stdio::null())
            .output()
            .await
            .expect("run the command");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "dingsync {args:?} failed");
        outputs.push(text);
    }
    let run = Traced::spawn(&config_path);
    assert!(
        run.wait_for("dingsync listening on").await,
        "{}",
        run.tail()
    );
    let base = config.base();
    let applied = poll_until(
        Duration::from_secs(90),
        Duration::from_millis(100),
        || async { oa_user(&http, &base, "traceuser").await.is_some() },
    )
    .await;
    assert!(applied, "the retried event reached OA:\n{}", run.tail());
    tokens.push(current_token(&http, &sim_base, &config.client_id, &right_secret).await);

    // 3. DingTalk expires the token mid-work: the next call is refused and the client refreshes.
    sim_call(&http, &sim_base, Method::POST, "/_sim/tokens/expire", None).await;
    sim_call(
        &http,
        &sim_base,
        Method::PATCH,
        "/_sim/users/traceuser",
        Some(json!({"name": "Trace Renamed"})),
    )
    .await;
    let renamed = poll_until(
        Duration::from_secs(60),
        Duration::from_millis(100),
        || async {
            oa_user(&http, &base, "traceuser")
                .await
                .is_some_and(|u| u["name"] == "Trace Renamed")
        },
    )
    .await;
    assert!(
        renamed,
        "the change after the expiry reached OA:\n{}",
        run.tail()
    );
    tokens.push(current_token(&http, &sim_base, &config.client_id, &right_secret).await);
    assert_ne!(
        tokens[0], tokens[1],
        "the expiry made the simulator issue a new token"
    );
    outputs.push(run.stop().await);

    // 4. A database that cannot be opened: start-up fails and says so.
    let mut broken = config.clone();
    broken.db_path = dir.path().join("no-such-dir").join("x.db");
    let broken_path = dir.path().join("broken.toml");
    std::fs::write(&broken_path, broken.to_toml()).expect("config");
    let mut run = Traced::spawn(&broken_path);
    let exited = tokio::time::timeout(Duration::from_secs(60), run.child.wait())
        .await
        .expect("start-up fails in time")
        .expect("exit status");
    assert!(!exited.success(), "start-up must fail without its database");
    outputs.push(run.stop().await);

    let all = outputs.join("\n=== next run ===\n");
    assert!(all.contains("TRACE"), "the runs logged at trace level");
    let mut extra: Vec<String> = config.secrets();
    extra.push(WRONG_CLIENT_SECRET.to_owned());
    extra.push(WRONG_OA_TOKEN.to_owned());
    extra.extend(tokens.iter().filter(|t| !t.is_empty()).cloned());
    assert_eq!(
        tokens.iter().filter(|t| t.len() >= 16).count(),
        2,
        "{tokens:?}"
    );
    let found = leaked(&all, &extra);
    assert!(
        found.is_empty(),
        "{} secret value(s) in {} lines of trace output (values withheld; lines: {:?})",
        found.len(),
        all.lines().count(),
        all.lines()
            .enumerate()
            .filter(|(_, l)| found.iter().any(|s| l.contains(s.as_str())))
            .map(|(i, _)| i + 1)
            .take(10)
            .collect::<Vec<_>>()
    );
    sim.shutdown().await;
}
