//! Helpers of the "crash anywhere" harness (`tests/it/crash_anywhere.rs`): the one-shot
//! `dingsync import` and `dingsync plan` as killable child processes, a config with a higher
//! call budget for the import, the service's own progress read from its SQLite file (to pick
//! kill moments), a bounded wait for quiet, and the simulator-side duplicate check.
//!
//! Why the kill moments come from the database and not from timers: "kill while the import is
//! half done" or "kill while the outbox holds entries" is only true if it is observed; a timer
//! would land in a different phase on a slower machine and the seed would not mean the same
//! run any more.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use directory_store::Store;
use serde_json::Value;
use tokio::io::AsyncReadExt as _;
use tokio::process::Child;

use super::ServiceConfig;

/// A simulator without a rate limit (so the import's own budget is the only limit), on port 0.
pub async fn start_unthrottled_sim(
    users: usize,
    depts: usize,
    seed: u64,
) -> dingtalk_sim::SimHandle {
    testkit::sim::start(dingtalk_sim::SimConfig {
        users,
        depts,
        seed,
        qps: 0,
        ..Default::default()
    })
    .await
}

/// Writes `config` as `name` next to the database, with `dingtalk.qps` and
/// `sync.claim_lease_secs` when given, and returns its path.
pub fn write_config(
    config: &ServiceConfig,
    name: &str,
    qps: Option<u32>,
    claim_lease_secs: Option<u64>,
) -> PathBuf {
    let mut doc: toml::Table = toml::from_str(&config.to_toml()).expect("our own TOML");
    let mut set = |section: &str, key: &str, value: i64| {
        let table = doc
            .entry(section)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(table) = table {
            table.insert(key.into(), toml::Value::Integer(value));
        }
    };
    if let Some(qps) = qps {
        set("dingtalk", "qps", i64::from(qps));
    }
    if let Some(secs) = claim_lease_secs {
        set(
            "sync",
            "claim_lease_secs",
            i64::try_from(secs).expect("small"),
        );
    }
    let path = config.db_path.with_file_name(name);
    std::fs::write(&path, toml::to_string(&doc).expect("TOML")).expect("write config");
    path
}

/// `dingsync <args…> --config <path>` as a child process with a clean environment; stdout and
/// stderr are collected by [`finish`].
fn spawn(config_path: &Path, args: &[&str]) -> Child {
    let mut command = testkit::process::clean_command(env!("CARGO_BIN_EXE_dingsync"));
    command
        .args(args)
        .arg("--config")
        .arg(config_path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command.spawn().expect("spawn dingsync")
}

/// Waits for `child` and returns its exit code (`None` when killed) and everything it printed.
async fn finish(mut child: Child) -> (Option<i32>, String, String) {
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let (mut out, mut err) = (String::new(), String::new());
    let (_, _, status) = tokio::join!(
        stdout.read_to_string(&mut out),
        stderr.read_to_string(&mut err),
        child.wait()
    );
    (status.expect("wait for dingsync").code(), out, err)
}

/// What one run of `dingsync import` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportRun {
    /// SIGKILLed with this many users in the directory.
    Killed { users: i64 },
    /// Ran to the end (exit 0).
    Finished,
}

/// Runs `dingsync import`; with `kill_after`, SIGKILLs it that long after it has written the
/// departments (its phase 2; the users follow in batches with a checkpoint), unless it
/// finished first. The moment is anchored to the import's own progress, read from its SQLite
/// file, so a seed means the same phase on a fast or a slow machine.
pub async fn import(config_path: &Path, store: &Store, kill_after: Option<Duration>) -> ImportRun {
    let mut child = spawn(config_path, &["import"]);
    if let Some(offset) = kill_after {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        let mut kill_at = None;
        loop {
            if child.try_wait().expect("poll the import").is_some() {
                break;
            }
            let now = tokio::time::Instant::now();
            match kill_at {
                None => {
                    let (depts, _) = store.counts().await.expect("directory counts");
                    if depts > 1 {
                        kill_at = Some(now + offset);
                    }
                }
                Some(at) if now >= at => {
                    child.start_kill().expect("SIGKILL");
                    let _ = finish(child).await;
                    let (_, users) = store.counts().await.expect("directory counts");
                    return ImportRun::Killed { users };
                }
                Some(_) => {}
            }
            assert!(now < deadline, "the import made no progress");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let (code, out, err) = finish(child).await;
    assert_eq!(code, Some(0), "dingsync import failed:\n{out}\n{err}");
    ImportRun::Finished
}

/// `dingsync plan --json`: its exit code (0 equal, 3 differences) and the plan.
pub async fn plan(config_path: &Path) -> (Option<i32>, Value, String) {
    let (code, out, err) = finish(spawn(config_path, &["plan", "--json"])).await;
    let plan = serde_json::from_str(&out).unwrap_or(Value::Null);
    (code, plan, format!("{out}\n{err}"))
}

pub use testkit::drain::{queue_depths, wait_quiet};

/// Every way the simulator's state could hold one OA entity twice: two departments with one
/// `source_identifier`, two sibling departments with one name, two role groups with one name,
/// two roles with one name in a group. Each finding is one line.
pub fn duplicates(state: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut count = |what: &str, keys: Vec<String>| {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for key in keys {
            *seen.entry(key).or_default() += 1;
        }
        found.extend(
            seen.into_iter()
                .filter(|(_, n)| *n > 1)
                .map(|(key, n)| format!("{n} {what} with {key}")),
        );
    };
    let list = |name: &str| state[name].as_array().cloned().unwrap_or_default();
    count(
        "departments",
        list("departments")
            .iter()
            .filter_map(|d| d["source_identifier"].as_str())
            .map(|s| format!("source_identifier {s}"))
            .collect(),
    );
    count(
        "departments",
        list("departments")
            .iter()
            .map(|d| format!("parent {} and name {}", d["parent_id"], d["name"]))
            .collect(),
    );
    count(
        "role groups",
        list("role_groups")
            .iter()
            .map(|g| format!("name {}", g["name"]))
            .collect(),
    );
    count(
        "roles",
        list("roles")
            .iter()
            .map(|r| format!("group {} and name {}", r["group_id"], r["name"]))
            .collect(),
    );
    found
}
