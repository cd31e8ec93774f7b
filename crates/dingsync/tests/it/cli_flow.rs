//! A new user's path with the real binaries: `dingsync sim`, then `init` → `check` → `serve`
//! with the config `init` wrote plus the simulator's credentials (through the documented
//! `DINGSYNC_<SECTION>__<KEY>` environment overrides), then a clean stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The callback secrets the flow configures and subscribes the simulator with (as the README).
const CALLBACK_TOKEN: &str = "newcomertoken";
const CALLBACK_AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns the binary and returns it with the first stdout line containing `marker`.
fn spawn_until(
    args: &[&str],
    envs: &[(&str, String)],
    marker: &str,
    stderr: Stdio,
) -> (Running, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dingsync"));
    cmd.args(args).stdout(Stdio::piped()).stderr(stderr);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn dingsync");
    let stdout = child.stdout.take().expect("stdout");
    let running = Running(child);
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read");
        if line.contains(marker) {
            return (running, line);
        }
    }
    panic!("dingsync {args:?} exited before printing {marker:?}");
}

fn url_in(line: &str) -> String {
    line.split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("a URL")
        .to_owned()
}

fn run(args: &[&str], envs: &[(&str, String)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dingsync"));
    cmd.args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run dingsync")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn init_check_serve_against_the_simulator() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("dingsync.toml");
    let config_arg = config.to_str().expect("utf-8 path");
    let secret = "flow-test-client-secret";

    let (_sim, banner) = spawn_until(
        &[
            "sim",
            "--listen",
            "127.0.0.1:0",
            "--users",
            "40",
            "--client-id",
            "flowapp",
            "--client-secret",
            secret,
        ],
        &[],
        "listening on",
        Stdio::null(),
    );
    let sim_url = url_in(&banner);

    let init = run(&["init", config_arg], &[]);
    assert!(init.status.success(), "{}", text(&init));
    assert!(
        std::fs::read_to_string(&config)
            .expect("written")
            .contains("[dingtalk]")
    );
    let again = run(&["init", config_arg], &[]);
    assert!(!again.status.success(), "init must not overwrite silently");
    assert!(text(&again).contains("--force"), "{}", text(&again));

    let db = format!("sqlite://{}?mode=rwc", dir.path().join("d.db").display());
    let env = |secret: &str| {
        vec![
            ("DINGSYNC_DINGTALK__BASE_URL", sim_url.clone()),
            ("DINGSYNC_DINGTALK__CLIENT_ID", "flowapp".to_owned()),
            ("DINGSYNC_DINGTALK__CLIENT_SECRET", secret.to_owned()),
            ("DINGSYNC_DATABASE__URL", db.clone()),
            ("DINGSYNC_SERVER__LISTEN", "127.0.0.1:0".to_owned()),
            ("DINGSYNC_CALLBACK__TOKEN", CALLBACK_TOKEN.to_owned()),
            ("DINGSYNC_CALLBACK__AES_KEY", CALLBACK_AES_KEY.to_owned()),
        ]
    };

    // The config as written lacks credentials: check says which keys, and exits 2.
    let bare = run(&["check", "--config", config_arg], &[]);
    assert_eq!(bare.status.code(), Some(2), "{}", text(&bare));
    assert!(
        text(&bare).contains("dingtalk.client_id"),
        "{}",
        text(&bare)
    );

    let ok = run(&["check", "--config", config_arg], &env(secret));
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("root department"), "{}", text(&ok));
    // Valid, but no OA API token: every OA call would be refused, so check says so.
    assert!(
        text(&ok).contains("warning: no OA API token is configured"),
        "{}",
        text(&ok)
    );

    let wrong = "wrong-secret-for-the-flow-test";
    let bad = run(&["check", "--config", config_arg], &env(wrong));
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    assert!(text(&bad).contains("client_secret"), "{}", text(&bad));
    assert!(
        !text(&bad).contains(wrong),
        "the secret leaked: {}",
        text(&bad)
    );

    let serve_log = dir.path().join("serve.log");
    let (serve, line) = spawn_until(
        &["serve", "--config", config_arg],
        &env(secret),
        "dingsync listening on",
        Stdio::from(std::fs::File::create(&serve_log).expect("log file")),
    );
    let base = url_in(&line);
    let deadline = Instant::now() + Duration::from_secs(20);
    let ready = loop {
        let status = reqwest::blocking::get(format!("{base}/readyz"))
            .map(|r| r.status().as_u16())
            .ok();
        if status == Some(200) || Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(ready, Some(200));
    let refused = reqwest::blocking::Client::new()
        .get(format!("{base}/api/v1/users"))
        .bearer_auth("some-token-the-oa-system-was-given")
        .send()
        .expect("api");
    assert_eq!(refused.status().as_u16(), 401);
    let body = refused.text().expect("body");
    assert!(body.contains("no OA API token is configured"), "{body}");
    // The README's step: subscribe the simulator to the callback URL. The simulator sends
    // check_url first and refuses the subscription unless dingsync answers it correctly.
    let subscribed = reqwest::blocking::Client::new()
        .post(format!("{sim_url}/_sim/callback"))
        .header("Content-Type", "application/json")
        .body(format!(
            r#"{{"url":"{base}/callbacks/dingtalk","token":"{CALLBACK_TOKEN}","aes_key":"{CALLBACK_AES_KEY}"}}"#
        ))
        .send()
        .expect("subscribe");
    assert!(subscribed.status().is_success(), "{:?}", subscribed.text());
    let log = std::fs::read_to_string(&serve_log).expect("serve log");
    assert!(log.contains("no OA API token is configured"), "{log}");

    // SIGTERM is how service managers stop us: the service finishes and exits 0.
    let mut serve = serve;
    let pid = serve.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = serve.0.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}
