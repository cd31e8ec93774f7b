//! `dingsync sim` as a user runs it: the real binary, started on a free port, must print its base
//! URL and credentials and then answer DingTalk calls with them.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `dingsync sim` with `args` and returns the process and everything it printed up to
/// "press Ctrl-C", which is printed once the server accepts connections.
fn start_sim(args: &[&str]) -> (Running, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dingsync"))
        .arg("sim")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dingsync sim");
    let stdout = child.stdout.take().expect("stdout");
    let running = Running(child);
    let mut banner = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read stdout");
        banner.push_str(&line);
        banner.push('\n');
        if line.contains("press Ctrl-C") {
            break;
        }
    }
    (running, banner)
}

fn field<'a>(banner: &'a str, label: &str) -> &'a str {
    banner
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{banner}"))
}

#[tokio::test]
async fn sim_prints_url_and_credentials_that_work() {
    let (_sim, banner) = start_sim(&[
        "--users",
        "300",
        "--client-id",
        "myapp",
        "--client-secret",
        "mysecret",
    ]);
    let base = field(&banner, "DingTalk simulator listening on");
    assert_eq!(field(&banner, "client id:"), "myapp");
    assert_eq!(field(&banner, "client secret:"), "mysecret");
    assert!(banner.contains("300 people"), "{banner}");

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let token: serde_json::Value = http
        .get(format!("{base}/gettoken?appkey=myapp&appsecret=mysecret"))
        .send()
        .await
        .expect("gettoken")
        .json()
        .await
        .expect("json");
    assert_eq!(token["errcode"], 0, "{token}");
    let access_token = token["access_token"].as_str().expect("token");

    let wrong: serde_json::Value = http
        .get(format!("{base}/gettoken?appkey=myapp&appsecret=wrong"))
        .send()
        .await
        .expect("gettoken")
        .json()
        .await
        .expect("json");
    assert_eq!(wrong["errcode"], 40096, "{wrong}");

    let count: serde_json::Value = http
        .post(format!(
            "{base}/topapi/user/count?access_token={access_token}"
        ))
        .json(&serde_json::json!({"only_active": false}))
        .send()
        .await
        .expect("count")
        .json()
        .await
        .expect("json");
    assert_eq!(count["result"]["count"], 300, "{count}");
}

#[test]
fn sim_refuses_a_bad_fault_rate_with_a_clear_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_dingsync"))
        .args(["sim", "--listen", "127.0.0.1:0", "--fault-rate", "1.5"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--fault-rate"), "{stderr}");
}

#[test]
fn sim_help_and_banner_list_every_admin_route() {
    let help = Command::new(env!("CARGO_BIN_EXE_dingsync"))
        .args(["sim", "--help"])
        .output()
        .expect("run");
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    let (_sim, banner) = start_sim(&["--users", "10"]);
    for route in dingtalk_sim::admin_routes() {
        let line = format!("{} {}", route.method, route.path);
        assert!(help.contains(&line), "--help lacks {line}:\n{help}");
        assert!(banner.contains(&line), "the banner lacks {line}:\n{banner}");
    }
}
