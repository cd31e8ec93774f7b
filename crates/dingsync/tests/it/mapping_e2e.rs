//! Issue 19 end to end through the real binary: a service started with a changed `[mapping]`
//! holds the plan the change implies (its writing workers wait, an OA change waits in the
//! outbox), `dingsync plan` shows that plan field by field, `dingsync reconcile --yes` applies
//! and approves it, and the held service then converges with the simulator.
//!
//! The mapping is realistic: job numbers gain DingTalk's "E" prefix (an inverse pair), and
//! department names a company prefix. What DingTalk holds is read from the simulator's own
//! state.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncReadExt as _;

use crate::support::crash::start_unthrottled_sim;
use crate::support::{API_TOKEN, Service, ServiceConfig};

/// `dingsync <args…> --config <path>` to the end: exit code and everything it printed.
async fn cli(config_path: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut command = testkit::process::clean_command(env!("CARGO_BIN_EXE_dingsync"));
    command
        .args(args)
        .arg("--config")
        .arg(config_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn dingsync");
    let (mut out, mut err) = (String::new(), String::new());
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let (_, _, status) = tokio::join!(
        stdout.read_to_string(&mut out),
        stderr.read_to_string(&mut err),
        child.wait()
    );
    (status.expect("wait").code(), format!("{out}\n{err}"))
}

/// Polls `check` every 100 ms for up to 60 s (a bound on a wait, not a timing assertion).
async fn eventually<F, Fut>(what: &str, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("{what} did not happen within 60 s");
    false
}

async fn sim_state(http: &reqwest::Client, sim: &str) -> Value {
    testkit::sim::state(http, sim).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_mapping_is_held_on_start_planned_approved_and_converges() {
    let sim = start_unthrottled_sim(120, 8, 0x19).await;
    let sim_url = sim.base_url();
    let http = reqwest::Client::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = ServiceConfig::for_sim(&sim, dir.path());
    let config_path = config.db_path.with_file_name("dingsync.toml");

    // The first import with no mapping: the identity is what is approved.
    std::fs::write(&config_path, config.to_toml()).expect("config");
    let (code, out) = cli(&config_path, &["import"]).await;
    assert_eq!(code, Some(0), "{out}");
    let before = sim_state(&http, &sim_url).await;
    let first = &before["users"][1];
    let userid = first["userid"].as_str().expect("userid").to_owned();
    let job = first["job_number"].as_str().expect("job").to_owned();
    assert!(!job.starts_with('E'));

    // The operator adds a mapping and restarts the service.
    config.overrides = json!({
        "mapping": {
            "users": {"fields": {"job_number": {
                "to_dingtalk": "user.job_number == null ? null : 'E' + user.job_number",
                "to_oa": "user.job_number != null && user.job_number.startsWith('E') ? user.job_number.substring(1) : user.job_number",
                "owner": "oa"}}},
            "departments": {"fields": {"name": {
                "to_dingtalk": "'ACME ' + dept.name",
                "to_oa": "dept.name.startsWith('ACME ') ? dept.name.substring(5) : dept.name",
                "owner": "oa"}}},
        },
    });
    let mut service = Service::start(&config, &[]).await;
    assert!(
        eventually("the hold warning", || async {
            service
                .output()
                .contains("changed since they were approved")
        })
        .await,
        "{}",
        service.output()
    );
    // An OA change made meanwhile is accepted and waits, like everything else.
    let reply = http
        .patch(format!("{}/api/v1/users/{userid}", config.base()))
        .bearer_auth(API_TOKEN)
        .json(&json!({"name": "Renamed While Held"}))
        .send()
        .await
        .expect("OA API");
    assert!(reply.status().is_success(), "{}", reply.status());

    // `plan` shows the implied plan field by field, and says a change waits.
    let (code, out) = cli(&config_path, &["plan"]).await;
    assert_eq!(code, Some(3), "differences:\n{out}");
    assert!(out.contains("changed since they were approved"), "{out}");
    assert!(
        out.contains(&format!("E{job}")),
        "the job number's new value:\n{out}"
    );
    assert!(out.contains("ACME "), "the departments' new names:\n{out}");
    let (code, json_out) = cli(&config_path, &["plan", "--json"]).await;
    assert_eq!(code, Some(3), "{json_out}");
    let start = json_out.find('{').expect("JSON");
    // The JSON is on stdout; `cli` appends stderr (log lines) after it.
    let plan: Value = serde_json::Deserializer::from_str(&json_out[start..])
        .into_iter::<Value>()
        .next()
        .expect("a JSON value")
        .expect("plan JSON");
    let items = plan["items"].as_array().expect("items");
    let dept_updates = items
        .iter()
        .filter(|i| i["kind"] == "department" && i["target"] == "dingtalk")
        .count();
    assert_eq!(
        dept_updates, 8,
        "every department below the root:\n{json_out}"
    );
    assert!(
        items.iter().any(|i| i["kind"] == "user"
            && i["fields"]
                .as_array()
                .is_some_and(|f| f.contains(&json!("job_number")))),
        "{json_out}"
    );
    // Nothing reached DingTalk while held: not the mapping, not the OA change.
    let held = sim_state(&http, &sim_url).await;
    assert_eq!(held["users"], before["users"]);
    assert_eq!(held["departments"], before["departments"]);

    // Approved.
    let (code, out) = cli(&config_path, &["reconcile", "--yes"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("change is approved"), "{out}");

    // The held service goes on: the OA changes arrive (the one made while held, and one made
    // now, which only the released pusher can send), and nothing is left to do.
    let second = before["users"][2]["userid"]
        .as_str()
        .expect("userid")
        .to_owned();
    let reply = http
        .patch(format!("{}/api/v1/users/{second}", config.base()))
        .bearer_auth(API_TOKEN)
        .json(&json!({"name": "Renamed After Approval"}))
        .send()
        .await
        .expect("OA API");
    assert!(reply.status().is_success(), "{}", reply.status());
    let pushed =
        eventually(
            "the OA change after the approval reaches DingTalk",
            || async {
                let state = sim_state(&http, &sim_url).await;
                state["users"].as_array().into_iter().flatten().any(|u| {
                    u["userid"] == second.as_str() && u["name"] == "Renamed After Approval"
                })
            },
        )
        .await;
    assert!(pushed, "{}", service.output());
    let renamed = eventually("the held OA change reaches DingTalk", || async {
        let state = sim_state(&http, &sim_url).await;
        state["users"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|u| u["userid"] == userid.as_str() && u["name"] == "Renamed While Held")
    })
    .await;
    assert!(renamed, "{}", service.output());
    let after = sim_state(&http, &sim_url).await;
    for u in after["users"].as_array().expect("users") {
        let job = u["job_number"].as_str().unwrap_or("E");
        assert!(job.starts_with('E'), "{u}");
    }
    for d in after["departments"].as_array().expect("departments") {
        if d["dept_id"] != 1 {
            assert!(
                d["name"].as_str().is_some_and(|n| n.starts_with("ACME ")),
                "{d}"
            );
        }
    }
    let converged = eventually("an empty plan", || async {
        cli(&config_path, &["plan", "--json"]).await.0 == Some(0)
    })
    .await;
    assert!(converged, "{}", cli(&config_path, &["plan"]).await.1);
    service.kill().await;
}
