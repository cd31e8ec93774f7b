//! Crash anywhere (issue 9 §1): SIGKILL dingsync during the import, while it applies events and
//! while it pushes OA changes, restart it, and check afterwards that nothing was lost or doubled.
//!
//! One trial, all from one seed:
//! 1. A simulator org of a few hundred people; `dingsync import` (the real binary, a SQLite
//!    file) is SIGKILLed a seeded 0–1.5 s after it has written the departments (while it reads
//!    and writes the people), then run again to the end (it resumes from its checkpoint).
//! 2. `dingsync serve` with HTTP push subscribed, and two concurrent workloads: DingTalk-side
//!    administrator changes through `/_sim` (hires, renames, leaves, new and renamed
//!    departments, on imported entities and its own) and OA writes through the OA API
//!    (department trees with people, renames, moves, deletions, role groups, roles,
//!    assignments), on entities of its own so that the expected end state is known.
//! 3. Meanwhile the service is SIGKILLed at seeded moments chosen from its own progress – while
//!    the inbox holds events (application) or while the outbox holds changes (pushing) – and
//!    restarted after a seeded outage (DingTalk retries, then lists what failed; catch-up reads
//!    it back).
//! 4. After a bounded wait for quiet: no inbox or outbox entry left or dead; every event the
//!    simulator recorded since the subscription (so every acknowledged push) is in the inbox,
//!    once; every OA write that was answered 2xx is in DingTalk (the department under its
//!    `source_identifier`, the user under its id, the role by name, with the last name and
//!    place written); no OA entity twice in the simulator; `dingsync plan --json` finds no
//!    difference; no configured secret in any output.
//!
//! An OA write whose answer a kill cut off is repeated once the service is back: creates carry
//! their id, so a repeat answered 409 means the first one committed (checked by reading it),
//! and a repeated delete answered 404 likewise.
//!
//! `DINGSYNC_CRASH_TRIALS=N` runs N trials (default 2), `DINGSYNC_CRASH_KILLS=K` K kills per
//! trial (default 3: one in the import, the others in the service). Every trial prints its
//! seed; `DINGSYNC_CRASH_SEED=S` reruns that trial: the seed fixes the plan (the changes, the
//! kill phases, the outages), while thread timing still varies, so a rare failure may need a
//! few reruns. A failing trial's service log is kept in `target/tmp/crash_anywhere-<seed>.log`
//! and its findings name the audit history of what differs.
//!
//! What it found (and what was fixed in `sync_engine::apply`): OA renames reverted by the
//! event of an earlier push (the base moved to a state only OA held; a missing base was taken
//! to be OA's state), an OA role group deleted because DingTalk's role list was read before
//! the pusher linked the group, and events dead-lettered when an OA delete raced their
//! application (now retried).

use crate::support;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dingtalk_proto::events::ContactEvent;
use directory_store::Store;
use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng as _};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::crash;
use support::{Service, ServiceConfig};
use tokio::sync::{Mutex, watch};

/// People and departments of the simulated org.
const USERS: usize = 300;
const DEPTS: usize = 20;
/// Calls per second per API for the import (the simulator has no limit of its own here).
const IMPORT_QPS: u32 = 200;
/// DingTalk's retry delays (10 s, 30 s) are multiplied by this: 0.5 s and 1.5 s.
const RETRY_SCALE: f64 = 0.05;
/// The service's claim lease: what a killed incarnation had claimed is taken over after this
/// (60 s by default, which would make every trial wait a minute per kill).
const CLAIM_LEASE_SECS: u64 = 2;
/// Pause between two operations of one workload.
const PACE: Duration = Duration::from_millis(40);
/// Operations each workload makes at least, and at most (it goes on while kills are pending).
const MIN_OPS: usize = 40;
const MAX_OPS: usize = 600;
/// Bound on waiting for a kill moment, for quiet, for a repeated OA write.
const WAIT: Duration = Duration::from_secs(90);

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_anywhere_loses_and_duplicates_nothing() {
    let kills = env_number("DINGSYNC_CRASH_KILLS").unwrap_or(3).max(1) as usize;
    let seeds: Vec<u64> = match env_number("DINGSYNC_CRASH_SEED") {
        Some(seed) => vec![seed],
        None => {
            let trials = env_number("DINGSYNC_CRASH_TRIALS").unwrap_or(2);
            (0..trials).map(|n| 0x00C4_A500 + n).collect()
        }
    };
    let started = Instant::now();
    let mut failed = Vec::new();
    for (n, seed) in seeds.iter().enumerate() {
        eprintln!(
            "crash_anywhere trial {}/{} seed {seed} (rerun: DINGSYNC_CRASH_SEED={seed})",
            n + 1,
            seeds.len()
        );
        // A failing trial panics with its findings; the others still run, so a long run
        // reports every failing seed at once.
        match tokio::spawn(trial(*seed, kills)).await {
            Ok(report) => eprintln!("crash_anywhere seed {seed}: {report}"),
            Err(_) => failed.push(*seed),
        }
    }
    eprintln!(
        "crash_anywhere: {} trials, {kills} kills each, {} failed, {:.1} s",
        seeds.len(),
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failed.is_empty(),
        "failing seeds (DINGSYNC_CRASH_SEED=…): {failed:?}"
    );
}

/// Where a kill lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// While the service applies events: the inbox holds entries.
    Apply,
    /// While the service pushes: the outbox holds entries.
    Push,
}

/// One planned kill of the service.
#[derive(Debug, Clone, Copy)]
struct Kill {
    phase: Phase,
    /// Time after the previous (re)start before the kill moment is looked for.
    settle: Duration,
    /// How long the service stays down.
    outage: Duration,
}

/// Whether the service is up, and which incarnation: an OA write cut off by a kill waits for
/// the next incarnation.
#[derive(Debug, Clone, Copy)]
struct Up {
    incarnation: u64,
    up: bool,
}

async fn trial(seed: u64, kills: usize) -> String {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed);
    let sim = crash::start_unthrottled_sim(USERS, DEPTS, seed).await;
    let sim_url = sim.base_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = ServiceConfig::for_sim(&sim, dir.path());
    config.catchup_interval_secs = Some(1);
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client");
    // The test's own handle on the database (it creates the schema before any process does).
    let store = Store::connect(&config.database_url())
        .await
        .expect("open the database");

    // 1. The import, killed once part way (when the trial has a kill to spare).
    let import_config = crash::write_config(&config, "import.toml", Some(IMPORT_QPS), None);
    let mut import_runs = Vec::new();
    let serve_kills = if kills > 1 {
        let offset = Duration::from_millis(rng.gen_range(0..1_500));
        import_runs.push(crash::import(&import_config, &store, Some(offset)).await);
        kills - 1
    } else {
        kills
    };
    import_runs.push(crash::import(&import_config, &store, None).await);
    let import_secs = started.elapsed().as_secs_f64();
    let (_, imported_users) = store.counts().await.expect("counts");
    assert!(
        imported_users >= USERS as i64,
        "the import finished with {imported_users} users"
    );

    // 2. The service, subscribed.
    // `Service` writes the plain config; the shorter claim lease goes in before the first
    // incarnation that matters (one start and stop more).
    let mut service = Service::start(&config, &[]).await;
    service.kill().await;
    crash::write_config(&config, "dingsync.toml", None, Some(CLAIM_LEASE_SECS));
    service.restart().await;
    support::subscribe(&http, &sim_url, &config.callback_url()).await;
    support::sim_call(
        &http,
        &sim_url,
        Method::POST,
        "/_sim/push-settings",
        Some(json!({"retry_scale": RETRY_SCALE})),
    )
    .await;
    let first_event = last_event_id(&http, &sim_url).await;
    let state = sim_state(&http, &sim_url).await;

    let plan: Vec<Kill> = (0..serve_kills)
        .map(|i| Kill {
            // Alternate so both phases are hit; the seed picks which comes first.
            phase: if (i + seed as usize).is_multiple_of(2) {
                Phase::Apply
            } else {
                Phase::Push
            },
            settle: Duration::from_millis(rng.gen_range(100..800)),
            outage: Duration::from_millis(rng.gen_range(50..2_500)),
        })
        .collect();

    // 3. Workloads and kills, concurrently.
    let (up_tx, up_rx) = watch::channel(Up {
        incarnation: 1,
        up: true,
    });
    let killing = Arc::new(AtomicBool::new(true));
    let oa = Arc::new(Mutex::new(OaModel::default()));
    let oa_root = oa_root(&http, &config).await;
    let dt_rng = StdRng::seed_from_u64(rng.r#gen());
    let oa_rng = StdRng::seed_from_u64(rng.r#gen());
    let dt_work = dingtalk_workload(&http, &sim_url, &state, dt_rng, seed, &killing);
    let oa_work = oa_workload(&http, &config, oa_root, oa_rng, seed, &oa, up_rx, &killing);
    let killer = async {
        let mut landed = Vec::new();
        for (i, kill) in plan.iter().enumerate() {
            tokio::time::sleep(kill.settle).await;
            let found = wait_for_phase(&store, kill.phase).await;
            assert!(service.is_running(), "the service exited on its own");
            service.kill().await;
            up_tx.send_replace(Up {
                incarnation: i as u64 + 1,
                up: false,
            });
            landed.push(format!(
                "{:?}{}",
                kill.phase,
                if found { "" } else { "(missed)" }
            ));
            tokio::time::sleep(kill.outage).await;
            service.restart().await;
            up_tx.send_replace(Up {
                incarnation: i as u64 + 2,
                up: true,
            });
        }
        killing.store(false, Ordering::SeqCst);
        landed
    };
    let (dt_ops, oa_ops, landed) = tokio::join!(dt_work, oa_work, killer);
    assert_eq!(service.starts, serve_kills + 2, "every kill restarted");
    let work_secs = started.elapsed().as_secs_f64();

    // 4. Quiet, then the checks.
    if let Err(why) = crash::wait_quiet(&sim, &http, &store, WAIT).await {
        panic!(
            "seed {seed}: no quiet within {WAIT:?} ({why})\n--- service output ---\n{}",
            service.output()
        );
    }
    let quiet_secs = started.elapsed().as_secs_f64();
    let failures = check(&http, &sim_url, &store, first_event, &*oa.lock().await).await;
    service.kill().await;
    let (code, plan_json, plan_text) = crash::plan(&config_path(&config)).await;
    let output = service.output();
    for secret in config.secrets() {
        assert!(
            !output.contains(&secret) && !plan_text.contains(&secret),
            "seed {seed}: a configured secret appears in the output"
        );
    }
    let mut failures = failures;
    if code != Some(0) || plan_json["items"].as_array().is_none_or(|i| !i.is_empty()) {
        failures.push(format!("plan is not empty (exit {code:?}): {plan_text}"));
        failures.push(history_of_kinds(&store, &plan_json).await);
    }
    let inbox_rows = support::whole_inbox(&store).await.len();
    store.close().await;
    sim.shutdown().await;
    // The whole output of every incarnation, for a failing seed's post-mortem.
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("crash_anywhere-{seed}.log"));
    std::fs::write(&log, &output).expect("write the service log");
    assert!(
        failures.is_empty(),
        "seed {seed} (rerun with DINGSYNC_CRASH_SEED={seed}); import done at {import_secs:.1} s, \
         workload at {work_secs:.1} s, quiet at {quiet_secs:.1} s, kills {landed:?}:\n{}\n\
         --- service output (tail; all of it in {}) ---\n{}",
        failures.join("\n"),
        log.display(),
        tail(&output, 40)
    );
    format!(
        "ok in {:.1} s (import done {import_secs:.1}, workload {work_secs:.1}, quiet \
         {quiet_secs:.1}): import {import_runs:?}, service kills {landed:?}, {dt_ops} DingTalk \
         changes, {oa_ops} OA writes, {inbox_rows} inbox rows",
        started.elapsed().as_secs_f64()
    )
}

/// The audit history of every kind of entity the plan names, one line per record, to tell how
/// a difference came about.
async fn history_of_kinds(store: &Store, plan: &Value) -> String {
    let kinds: BTreeSet<&str> = plan["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["kind"].as_str())
        .collect();
    let mut lines = vec![format!("history of {kinds:?}:")];
    let mut cursor = 0;
    loop {
        let page = store.changes_since(cursor, 1000).await.unwrap_or_default();
        let Some(last) = page.last() else { break };
        cursor = last.seq;
        for r in page.iter().filter(|r| kinds.contains(r.kind.as_str())) {
            lines.push(format!(
                "  #{} {} {:?} {:?} {} -> {}",
                r.seq,
                r.oa_id,
                r.op,
                r.origin,
                r.actor,
                r.after.as_ref().map_or(Value::Null, |a| a["name"].clone())
            ));
        }
    }
    lines.join("\n")
}

fn config_path(config: &ServiceConfig) -> std::path::PathBuf {
    config.db_path.with_file_name("dingsync.toml")
}

/// The last `lines` lines of `text`, without the once-a-second catch-up lines.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("caught up with DingTalk's failed pushes"))
        .collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Waits until the service is in `phase` (polling its database); `false` when the moment did
/// not come within the bound (the kill then lands wherever the service is).
async fn wait_for_phase(store: &Store, phase: Phase) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::time::Instant::now() < deadline {
        let (inbox, outbox) = crash::queue_depths(store).await;
        let depth = match phase {
            Phase::Apply => inbox,
            Phase::Push => outbox,
        };
        if depth > 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    false
}

async fn sim_state(http: &reqwest::Client, sim_url: &str) -> Value {
    support::sim_call(http, sim_url, Method::GET, "/_sim/state", None).await
}

async fn last_event_id(http: &reqwest::Client, sim_url: &str) -> u64 {
    let events = support::sim_call(http, sim_url, Method::GET, "/_sim/events", None).await;
    events["events"]
        .as_array()
        .and_then(|a| a.last())
        .and_then(|e| e["id"].as_u64())
        .unwrap_or(0)
}

// ---- DingTalk side ------------------------------------------------------------------------

/// Administrator changes through `/_sim`, on the imported org and on what this workload adds;
/// never on the OA workload's entities, so that the OA side's expected end state stays known.
/// Returns how many changes it made.
async fn dingtalk_workload(
    http: &reqwest::Client,
    sim_url: &str,
    state: &Value,
    mut rng: StdRng,
    seed: u64,
    killing: &AtomicBool,
) -> usize {
    let list = |name: &str| state[name].as_array().cloned().unwrap_or_default();
    // People who manage nobody: their leaving cannot be refused for being someone's manager.
    let mut managers: HashSet<String> = list("users")
        .iter()
        .filter_map(|u| u["manager_userid"].as_str().map(str::to_owned))
        .collect();
    for dept in list("departments") {
        for m in dept["dept_manager_userid_list"]
            .as_array()
            .into_iter()
            .flatten()
        {
            managers.extend(m.as_str().map(str::to_owned));
        }
    }
    let mut users: Vec<String> = list("users")
        .iter()
        .filter_map(|u| u["userid"].as_str().map(str::to_owned))
        .filter(|u| !managers.contains(u))
        .collect();
    users.shuffle(&mut rng);
    let mut depts: Vec<i64> = list("departments")
        .iter()
        .filter_map(|d| d["dept_id"].as_i64())
        .filter(|id| *id != 1)
        .collect();
    let mut n = 0;
    while n < MAX_OPS && (n < MIN_OPS || killing.load(Ordering::SeqCst)) {
        n += 1;
        let (method, path, body) = match rng.gen_range(0..100) {
            0..=24 => {
                let userid = format!("dt{seed}x{n}");
                let dept = *depts.choose(&mut rng).unwrap_or(&1);
                users.push(userid.clone());
                (
                    Method::POST,
                    "/_sim/users".to_owned(),
                    json!({"userid": userid, "name": format!("钉{n}"),
                           "mobile": format!("166{:08}", (seed * 1000 + n as u64) % 100_000_000),
                           "dept_id_list": dept.to_string()}),
                )
            }
            25..=54 if !users.is_empty() => {
                let userid = users.choose(&mut rng).expect("non-empty").clone();
                (
                    Method::PATCH,
                    format!("/_sim/users/{userid}"),
                    json!({"name": format!("钉改{n}")}),
                )
            }
            55..=64 if users.len() > 10 => {
                let at = rng.gen_range(0..users.len());
                let userid = users.swap_remove(at);
                (Method::DELETE, format!("/_sim/users/{userid}"), json!({}))
            }
            65..=79 => (
                Method::POST,
                "/_sim/depts".to_owned(),
                json!({"name": format!("钉部{seed}x{n}"), "parent_id": 1}),
            ),
            _ if !depts.is_empty() => {
                let dept = *depts.choose(&mut rng).expect("non-empty");
                (
                    Method::PATCH,
                    format!("/_sim/depts/{dept}"),
                    json!({"name": format!("钉部改{seed}x{n}")}),
                )
            }
            _ => continue,
        };
        let answer = support::sim_call(http, sim_url, method.clone(), &path, Some(body)).await;
        if method == Method::POST
            && path == "/_sim/depts"
            && let Some(id) = answer["result"]["dept_id"]
                .as_i64()
                .or(answer["dept_id"].as_i64())
        {
            depts.push(id);
        }
        tokio::time::sleep(PACE).await;
    }
    n
}

// ---- OA side ------------------------------------------------------------------------------

/// What the OA workload has written and had acknowledged: the expected end state of its own
/// entities.
#[derive(Debug, Default)]
struct OaModel {
    /// Live departments: id → (name, parent).
    depts: BTreeMap<i64, (String, i64)>,
    /// Departments deleted.
    deleted_depts: BTreeSet<i64>,
    /// Live users: id → (name, department).
    users: BTreeMap<String, (String, i64)>,
    /// Users deleted.
    deleted_users: BTreeSet<String>,
    /// Role groups: id → name.
    groups: BTreeMap<i64, String>,
    /// Roles: id → (group, name).
    roles: BTreeMap<i64, (i64, String)>,
    /// Who holds which role: (role, user).
    assignments: BTreeSet<(i64, String)>,
}

/// The OA id of the root department.
async fn oa_root(http: &reqwest::Client, config: &ServiceConfig) -> i64 {
    let list = http
        .get(format!("{}/api/v1/departments?limit=1000", config.base()))
        .bearer_auth(support::API_TOKEN)
        .send()
        .await
        .expect("OA API answers")
        .json::<Value>()
        .await
        .expect("JSON");
    list["items"]
        .as_array()
        .and_then(|ds| ds.iter().find(|d| d["parent"].is_null()))
        .and_then(|d| d["id"].as_i64())
        .expect("a root department after the import")
}

/// What a repeated OA write may be answered besides 2xx, once an earlier attempt may have
/// committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    /// A create with its key in the request: 409 means an earlier attempt committed.
    Create,
    /// A delete: 404 means it is gone.
    Delete,
    /// Anything else must be 2xx.
    Plain,
}

/// Sends one OA write until it gets a definite answer, waiting out kills. Returns the status.
async fn oa_write(
    http: &reqwest::Client,
    config: &ServiceConfig,
    up: &mut watch::Receiver<Up>,
    method: Method,
    path: &str,
    body: Option<Value>,
    repeat: Repeat,
) -> StatusCode {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let seen = tokio::time::timeout(WAIT, up.wait_for(|u| u.up))
            .await
            .expect("the service came back")
            .expect("the killer is running")
            .incarnation;
        let mut request = http
            .request(method.clone(), format!("{}/api/v1{path}", config.base()))
            .bearer_auth(support::API_TOKEN);
        if let Some(body) = &body {
            request = request.json(body);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                let ok = status.is_success()
                    || (attempts > 1 && repeat == Repeat::Create && status == StatusCode::CONFLICT)
                    || (attempts > 1
                        && repeat == Repeat::Delete
                        && status == StatusCode::NOT_FOUND);
                if ok {
                    return status;
                }
                let text = response.text().await.unwrap_or_default();
                panic!("OA {method} {path}: {status} {text}");
            }
            Err(_) => {
                // The answer was cut off by a kill: whether the write committed is unknown,
                // so it is repeated on the next incarnation.
                tokio::time::timeout(WAIT, up.wait_for(|u| u.up && u.incarnation > seen))
                    .await
                    .expect("the service came back")
                    .expect("the killer is running");
            }
        }
    }
}

/// Creates an OA entity whose id the OA directory allocates (departments, role groups, roles)
/// and returns the id. An answer cut off by a kill leaves open whether it committed; the
/// entity's name is unique, so the next incarnation is asked for it by name before the create
/// is repeated.
async fn oa_create(
    http: &reqwest::Client,
    config: &ServiceConfig,
    up: &mut watch::Receiver<Up>,
    path: &str,
    body: Value,
    name: &str,
) -> i64 {
    loop {
        let seen = tokio::time::timeout(WAIT, up.wait_for(|u| u.up))
            .await
            .expect("the service came back")
            .expect("the killer is running")
            .incarnation;
        let sent = http
            .post(format!("{}/api/v1{path}", config.base()))
            .bearer_auth(support::API_TOKEN)
            .json(&body)
            .send()
            .await;
        if let Ok(response) = sent {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            assert!(status.is_success(), "OA POST {path}: {status} {text}");
            let created: Value = serde_json::from_str(&text).expect("JSON answer");
            return created["id"].as_i64().expect("an id");
        }
        tokio::time::timeout(WAIT, up.wait_for(|u| u.up && u.incarnation > seen))
            .await
            .expect("the service came back")
            .expect("the killer is running");
        // Did the cut-off create commit? (A kill during this read is survived by the loop.)
        let listed = http
            .get(format!("{}/api/v1{path}?limit=1000", config.base()))
            .bearer_auth(support::API_TOKEN)
            .send()
            .await;
        if let Ok(response) = listed
            && let Ok(list) = response.json::<Value>().await
            && let Some(found) = list["items"]
                .as_array()
                .and_then(|items| items.iter().find(|i| i["name"] == name))
        {
            return found["id"].as_i64().expect("an id");
        }
    }
}

/// OA writes through the API: departments (a tree under the root), people in them, renames,
/// moves, deletions, role groups, roles and assignments. Returns how many writes it made.
#[allow(clippy::too_many_arguments)]
async fn oa_workload(
    http: &reqwest::Client,
    config: &ServiceConfig,
    root: i64,
    mut rng: StdRng,
    seed: u64,
    model: &Mutex<OaModel>,
    mut up: watch::Receiver<Up>,
    killing: &AtomicBool,
) -> usize {
    let mut n: usize = 0;
    let mut model = model.lock().await;
    while n < MAX_OPS && (n < MIN_OPS || killing.load(Ordering::SeqCst)) {
        n += 1;
        let roll = rng.gen_range(0..100);
        let dept_ids: Vec<i64> = model.depts.keys().copied().collect();
        let user_ids: Vec<String> = model.users.keys().cloned().collect();
        let any_dept = |rng: &mut StdRng| *dept_ids.choose(rng).unwrap_or(&root);
        match roll {
            0..=14 => {
                let parent = if rng.gen_bool(0.5) {
                    root
                } else {
                    any_dept(&mut rng)
                };
                let name = format!("崩{seed}x{n}");
                let id = oa_create(
                    http,
                    config,
                    &mut up,
                    "/departments",
                    json!({"name": name, "parent": parent}),
                    &name,
                )
                .await;
                model.depts.insert(id, (name, parent));
            }
            15..=39 => {
                let userid = format!("oa{seed}x{n}");
                let dept = any_dept(&mut rng);
                let name = format!("人{n}");
                oa_write(http, config, &mut up, Method::POST, "/users",
                    Some(json!({"id": userid, "name": name,
                                "mobile": format!("139{:08}", (seed * 1000 + n as u64) % 100_000_000),
                                "departments": [{"dept": dept}]})), Repeat::Create).await;
                model.users.insert(userid, (name, dept));
            }
            40..=52 if !dept_ids.is_empty() => {
                let dept = any_dept(&mut rng);
                let name = format!("崩改{seed}x{n}");
                oa_write(
                    http,
                    config,
                    &mut up,
                    Method::PATCH,
                    &format!("/departments/{dept}"),
                    Some(json!({"name": name})),
                    Repeat::Plain,
                )
                .await;
                if let Some(entry) = model.depts.get_mut(&dept) {
                    entry.0 = name;
                }
            }
            53..=67 if !user_ids.is_empty() => {
                let userid = user_ids.choose(&mut rng).expect("non-empty").clone();
                let name = format!("人改{n}");
                oa_write(
                    http,
                    config,
                    &mut up,
                    Method::PATCH,
                    &format!("/users/{userid}"),
                    Some(json!({"name": name})),
                    Repeat::Plain,
                )
                .await;
                if let Some(entry) = model.users.get_mut(&userid) {
                    entry.0 = name;
                }
            }
            68..=77 if !user_ids.is_empty() => {
                let userid = user_ids.choose(&mut rng).expect("non-empty").clone();
                let dept = any_dept(&mut rng);
                oa_write(
                    http,
                    config,
                    &mut up,
                    Method::PATCH,
                    &format!("/users/{userid}"),
                    Some(json!({"departments": [{"dept": dept}]})),
                    Repeat::Plain,
                )
                .await;
                if let Some(entry) = model.users.get_mut(&userid) {
                    entry.1 = dept;
                }
            }
            78..=83 if !user_ids.is_empty() => {
                let userid = user_ids.choose(&mut rng).expect("non-empty").clone();
                // Roles first: a user is deleted with nothing pointing at them.
                let held: Vec<i64> = model
                    .assignments
                    .iter()
                    .filter(|(_, u)| *u == userid)
                    .map(|(r, _)| *r)
                    .collect();
                for role in held {
                    oa_write(
                        http,
                        config,
                        &mut up,
                        Method::DELETE,
                        &format!("/role-assignments/{role}/{userid}"),
                        None,
                        Repeat::Delete,
                    )
                    .await;
                    model.assignments.remove(&(role, userid.clone()));
                }
                oa_write(
                    http,
                    config,
                    &mut up,
                    Method::DELETE,
                    &format!("/users/{userid}"),
                    None,
                    Repeat::Delete,
                )
                .await;
                model.users.remove(&userid);
                model.deleted_users.insert(userid);
            }
            84..=88 => {
                // A leaf department without people.
                let empty: Vec<i64> = dept_ids
                    .iter()
                    .copied()
                    .filter(|d| !model.users.values().any(|(_, ud)| ud == d))
                    .filter(|d| !model.depts.values().any(|(_, p)| p == d))
                    .collect();
                let Some(dept) = empty.choose(&mut rng).copied() else {
                    continue;
                };
                oa_write(
                    http,
                    config,
                    &mut up,
                    Method::DELETE,
                    &format!("/departments/{dept}"),
                    None,
                    Repeat::Delete,
                )
                .await;
                model.depts.remove(&dept);
                model.deleted_depts.insert(dept);
            }
            89..=91 => {
                let name = format!("组{seed}x{n}");
                let id = oa_create(
                    http,
                    config,
                    &mut up,
                    "/role-groups",
                    json!({"name": name}),
                    &name,
                )
                .await;
                model.groups.insert(id, name);
            }
            92..=94 if !model.groups.is_empty() => {
                let groups: Vec<i64> = model.groups.keys().copied().collect();
                let group = *groups.choose(&mut rng).expect("non-empty");
                let name = format!("角{seed}x{n}");
                let id = oa_create(
                    http,
                    config,
                    &mut up,
                    "/roles",
                    json!({"group": group, "name": name}),
                    &name,
                )
                .await;
                model.roles.insert(id, (group, name));
            }
            _ if !model.roles.is_empty() && !user_ids.is_empty() => {
                let roles: Vec<i64> = model.roles.keys().copied().collect();
                let role = *roles.choose(&mut rng).expect("non-empty");
                let userid = user_ids.choose(&mut rng).expect("non-empty").clone();
                if model.assignments.contains(&(role, userid.clone())) {
                    oa_write(
                        http,
                        config,
                        &mut up,
                        Method::DELETE,
                        &format!("/role-assignments/{role}/{userid}"),
                        None,
                        Repeat::Delete,
                    )
                    .await;
                    model.assignments.remove(&(role, userid));
                } else {
                    oa_write(
                        http,
                        config,
                        &mut up,
                        Method::POST,
                        "/role-assignments",
                        Some(json!({"user": userid, "role": role})),
                        Repeat::Create,
                    )
                    .await;
                    model.assignments.insert((role, userid));
                }
            }
            _ => continue,
        }
        tokio::time::sleep(PACE).await;
    }
    n
}

// ---- Checks -------------------------------------------------------------------------------

/// Everything that must hold once the system is quiet; one line per violation.
async fn check(
    http: &reqwest::Client,
    sim_url: &str,
    store: &Store,
    first_event: u64,
    model: &OaModel,
) -> Vec<String> {
    let mut failures = Vec::new();

    // Nothing stuck or given up on.
    let inbox_dead = store.inbox_depth().await.expect("depth").dead;
    let outbox_dead = store.outbox_depth().await.expect("depth").dead;
    if inbox_dead + outbox_dead > 0 {
        failures.push(format!(
            "dead letters: {inbox_dead} events, {outbox_dead} changes: {:?} {:?}",
            store.inbox_dead_letters(None, 100).await.ok(),
            store.outbox_dead_letters(None, 100).await.ok()
        ));
    }

    // Every event since the subscription in the inbox, once: pushed (acknowledged, or
    // committed by an incarnation killed before answering) or read back by catch-up.
    let inbox = support::whole_inbox(store).await;
    let keys: Vec<&str> = inbox.iter().map(|e| e.dedupe_key.as_str()).collect();
    let distinct: HashSet<&str> = keys.iter().copied().collect();
    if distinct.len() != keys.len() {
        failures.push("an inbox key is stored twice".to_owned());
    }
    let events = support::sim_call(http, sim_url, Method::GET, "/_sim/events", None).await;
    let mut expected_keys = HashSet::new();
    for event in events["events"].as_array().into_iter().flatten() {
        if event["id"].as_u64().unwrap_or(0) <= first_event {
            continue;
        }
        let event_type = event["event_type"].as_str().unwrap_or_default();
        let parsed = ContactEvent::from_failed_callback(
            event_type,
            event["time_ms"].as_i64(),
            &event["data"],
        );
        match parsed {
            Ok(parsed) => {
                let key = parsed.dedupe_key("");
                if !distinct.contains(key.as_str()) {
                    failures.push(format!("event never stored: {event}"));
                }
                expected_keys.insert(key);
            }
            Err(error) => failures.push(format!("unreadable simulator event {event}: {error}")),
        }
    }
    // Acknowledged pushes are among those events; checked on their own all the same.
    let pushes = support::sim_call(http, sim_url, Method::GET, "/_sim/pushes", None).await;
    for push in pushes["pushes"].as_array().into_iter().flatten() {
        if push["acked"] != true || push["event_type"] == "check_url" {
            continue;
        }
        let text = push["plaintext"].to_string();
        match ContactEvent::from_http_json(&text) {
            Ok(event) if distinct.contains(event.dedupe_key(&text).as_str()) => {}
            _ => failures.push(format!("acknowledged push not in the inbox: {text}")),
        }
    }
    let extra: Vec<&&str> = keys
        .iter()
        .filter(|k| !expected_keys.contains(**k))
        .collect();
    if !extra.is_empty() {
        failures.push(format!("inbox rows for no simulator event: {extra:?}"));
    }

    // Every acknowledged OA write in DingTalk, and nothing twice.
    let state = sim_state(http, sim_url).await;
    failures.extend(crash::duplicates(&state));
    let depts = state["departments"].as_array().cloned().unwrap_or_default();
    let by_source = |oa_id: i64| -> Vec<&Value> {
        let marker = format!("dingsync:{oa_id}");
        depts
            .iter()
            .filter(|d| d["source_identifier"].as_str() == Some(marker.as_str()))
            .collect()
    };
    for (id, (name, _)) in &model.depts {
        match by_source(*id).as_slice() {
            [d] if d["name"] == name.as_str() => {}
            found => failures.push(format!(
                "OA department {id} {name:?} in DingTalk as {found:?}"
            )),
        }
    }
    for id in &model.deleted_depts {
        if !by_source(*id).is_empty() {
            failures.push(format!("deleted OA department {id} still in DingTalk"));
        }
    }
    let users = state["users"].as_array().cloned().unwrap_or_default();
    let user = |id: &str| users.iter().find(|u| u["userid"] == id);
    for (id, (name, dept)) in &model.users {
        let Some(u) = user(id) else {
            failures.push(format!("OA user {id} not in DingTalk"));
            continue;
        };
        if u["name"] != name.as_str() {
            let audit = store
                .audit_of(directory_store::EntityKind::User, id)
                .await
                .unwrap_or_default();
            failures.push(format!(
                "OA user {id} named {} in DingTalk, not {name}; audit: {audit:#?}",
                u["name"]
            ));
        }
        // The department it was moved to last (the root is DingTalk's 1).
        let ding_dept = if model.depts.contains_key(dept) {
            by_source(*dept).first().and_then(|d| d["dept_id"].as_i64())
        } else {
            None
        };
        if let Some(ding) = ding_dept
            && u["dept_id_list"] != json!([ding])
        {
            failures.push(format!(
                "OA user {id} in DingTalk departments {}, not [{ding}]",
                u["dept_id_list"]
            ));
        }
    }
    for id in &model.deleted_users {
        if user(id).is_some() {
            failures.push(format!("deleted OA user {id} still in DingTalk"));
        }
    }
    let roles = state["roles"].as_array().cloned().unwrap_or_default();
    for (id, (_, name)) in &model.roles {
        let found: Vec<&Value> = roles
            .iter()
            .filter(|r| r["name"] == name.as_str())
            .collect();
        let [role] = found.as_slice() else {
            failures.push(format!(
                "OA role {id} {name:?} in DingTalk {} times",
                found.len()
            ));
            continue;
        };
        let members: BTreeSet<String> = role["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m.as_str().map(str::to_owned))
            .collect();
        let expected: BTreeSet<String> = model
            .assignments
            .iter()
            .filter(|(r, _)| r == id)
            .map(|(_, u)| u.clone())
            .collect();
        if members != expected {
            failures.push(format!(
                "OA role {id} members {members:?} in DingTalk, not {expected:?}"
            ));
        }
    }
    let groups = state["role_groups"].as_array().cloned().unwrap_or_default();
    for (id, name) in &model.groups {
        if !groups.iter().any(|g| g["name"] == name.as_str()) {
            failures.push(format!("OA role group {id} {name:?} not in DingTalk"));
        }
    }
    failures
}
