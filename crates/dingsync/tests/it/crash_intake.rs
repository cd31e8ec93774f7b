//! No event lost (issue 3, "Done when"), end to end with the real binary: SIGKILL `dingsync
//! serve` at seeded-random moments while the simulator pushes a burst of contacts changes,
//! restart it on the same port, and afterwards check with the store that
//! - every push the simulator saw acknowledged is in the inbox (invariant 1: ack only after
//!   commit);
//! - every event the simulator recorded is in the inbox exactly once, whether it came by its
//!   first push, by DingTalk's retries (outage shorter than the retry schedule) or by catch-up
//!   from the failed-push list (outage longer than it);
//! - duplicated, reordered and replayed pushes add nothing.
//!
//! How an inbox entry is tied to the simulator's event log: a new-dialect push by its
//! `eventId` (the simulator's push record gives the event's log id); a legacy push, which has no
//! id, and a catch-up entry, which has none either, by event type + ids + event time, which the
//! test first checks is unique across the log (each change touches a different entity).
//!
//! Reproducible: the plan (which changes, when to kill, how long the outage lasts) comes from a
//! seed. `DINGSYNC_CRASH_TRIALS=N` runs N kills per scenario instead of 3 (a longer burst
//! goes with it); `DINGSYNC_CRASH_SEED=S` varies the seeds, for a soak over many runs. The retry schedule is DingTalk's 10 s / 30 s scaled by 0.05 (0.5 s / 1.5 s),
//! so one outage (the first) outlasts it and sends events to the failed list, and another
//! (the second) is shorter and is bridged by retries.

use crate::support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use directory_store::{InboxEvent, Store};
use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng as _};
use reqwest::Method;
use serde_json::{Value, json};
use support::{Pusher, Service, ServiceConfig};
use tokio::sync::watch;

/// Changes are issued by this many concurrent workers.
const WORKERS: usize = 8;
/// Changes per second over all workers, so the burst lasts long enough to kill into it.
const CHANGES_PER_SEC: u64 = 60;
/// DingTalk's retry delays are multiplied by this (10 s, 30 s → 0.5 s, 1.5 s).
const RETRY_SCALE: f64 = 0.05;
/// An outage longer than this sends events to the failed list (0.5 s + 1.5 s, plus margin).
const RETRY_SPAN: Duration = Duration::from_millis(2_000);
/// Bound on every wait.
const WAIT: Duration = Duration::from_secs(120);

/// One run: how the simulator pushes and how hard the service is treated.
#[derive(Debug, Clone, Copy)]
struct Scenario {
    seed: u64,
    /// `legacy` or `new` (see `/_sim/push-settings`).
    dialect: &'static str,
    duplicate_rate: f64,
    reorder_window_ms: u64,
    /// SIGKILLs during the burst.
    kills: usize,
}

/// `DINGSYNC_CRASH_SEED` varies every scenario's seed (for a soak); unset, runs repeat.
fn seed(base: u64) -> u64 {
    std::env::var("DINGSYNC_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(base, |s| base ^ s)
}

fn kills_from_env() -> usize {
    std::env::var("DINGSYNC_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n >= 2)
        .unwrap_or(3)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_pushes_survive_sigkill_with_duplicates() {
    run(Scenario {
        seed: seed(0x00C0_FFEE),
        dialect: "legacy",
        duplicate_rate: 0.1,
        reorder_window_ms: 0,
        kills: kills_from_env(),
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_dialect_pushes_survive_sigkill_duplicated_and_reordered() {
    run(Scenario {
        seed: seed(0x0BAD_CAFE),
        dialect: "new",
        duplicate_rate: 0.2,
        reorder_window_ms: 150,
        kills: kills_from_env(),
    })
    .await;
}

/// One DingTalk-side change made through `/_sim`; each touches a different entity, so no two
/// events share type + ids.
#[derive(Debug, Clone)]
enum Change {
    AddUser(usize),
    ModifyUser(String, usize),
    UserLeaves(String),
    AddDept(usize),
    ModifyDept(i64, usize),
}

/// When to kill and for how long the service stays down.
#[derive(Debug, Clone, Copy)]
struct Kill {
    /// Kill once this many changes have been made since the previous restart (or the start).
    after_changes: usize,
    /// The outage (the time between the kill and the restart).
    outage: Duration,
}

/// The seeded plan of changes over the simulator's generated org.
fn plan_changes(rng: &mut StdRng, state: &Value, count: usize) -> Vec<Change> {
    let mut users: Vec<String> = state["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["userid"].as_str().map(str::to_owned))
        .collect();
    users.shuffle(rng);
    let mut depts: Vec<i64> = state["departments"]
        .as_array()
        .expect("departments")
        .iter()
        .filter_map(|d| d["dept_id"].as_i64())
        .filter(|id| *id != 1)
        .collect();
    depts.shuffle(rng);
    let mut changes = Vec::with_capacity(count);
    for n in 0..count {
        let roll = rng.gen_range(0..100);
        let change = match roll {
            0..=9 if !depts.is_empty() => Change::ModifyDept(depts.pop().expect("non-empty"), n),
            10..=19 => Change::AddDept(n),
            20..=39 => Change::AddUser(n),
            40..=49 if users.len() > 1 => Change::UserLeaves(users.pop().expect("non-empty")),
            _ => match users.pop() {
                Some(user) => Change::ModifyUser(user, n),
                None => Change::AddUser(n),
            },
        };
        changes.push(change);
    }
    changes
}

/// The seeded kill plan. Each kill comes a random 0.5–1.5 s of changes after the previous
/// restart (so each outage starts with pushes flowing and the previous one's retries have
/// landed); the first outage outlasts the retry schedule (catch-up must bring those events),
/// the second is bridged by retries, the rest are anything up to 3 s.
fn plan_kills(rng: &mut StdRng, kills: usize) -> Vec<Kill> {
    let per_sec = CHANGES_PER_SEC as usize;
    (0..kills)
        .map(|i| {
            let outage_ms = match i {
                0 => rng.gen_range(RETRY_SPAN.as_millis() as u64 + 800..4_000),
                1 => rng.gen_range(20..250),
                _ => rng.gen_range(20..3_000),
            };
            Kill {
                after_changes: rng.gen_range(per_sec / 2..per_sec * 3 / 2),
                outage: Duration::from_millis(outage_ms),
            }
        })
        .collect()
}

/// Enough changes that every kill falls inside the burst: each kill's gap plus its outage at
/// the change rate (the burst goes on while the service is down), and a tail after the last.
fn burst_len(kills: &[Kill]) -> usize {
    let per_sec = CHANGES_PER_SEC as f64;
    let during: f64 = kills
        .iter()
        .map(|k| k.after_changes as f64 + k.outage.as_secs_f64() * per_sec + per_sec / 2.0)
        .sum();
    during as usize + CHANGES_PER_SEC as usize
}

async fn apply(http: &reqwest::Client, sim: &str, change: &Change) {
    let (method, path, body) = match change {
        Change::AddUser(n) => (
            Method::POST,
            "/_sim/users".to_owned(),
            Some(
                json!({"userid": format!("crash{n}"), "name": format!("压测{n}"),
                        "mobile": format!("166{n:08}"), "dept_id_list": "1"}),
            ),
        ),
        Change::ModifyUser(userid, n) => (
            Method::PATCH,
            format!("/_sim/users/{userid}"),
            Some(json!({"name": format!("改名{n}")})),
        ),
        Change::UserLeaves(userid) => (Method::DELETE, format!("/_sim/users/{userid}"), None),
        Change::AddDept(n) => (
            Method::POST,
            "/_sim/depts".to_owned(),
            Some(json!({"name": format!("崩溃测试部{n}"), "parent_id": 1})),
        ),
        Change::ModifyDept(id, n) => (
            Method::PATCH,
            format!("/_sim/depts/{id}"),
            Some(json!({"name": format!("改部{n}")})),
        ),
    };
    support::sim_call(http, sim, method, &path, body).await;
}

/// The ids an event names, under whichever field name its shape uses.
fn ids_of(object: &Value) -> Option<&Value> {
    ["userId", "deptId", "UserId", "DeptId", "userid", "deptid"]
        .iter()
        .find_map(|name| object.get(*name))
}

/// `type|ids|time`: what identifies an event across the event log, the legacy dialect and the
/// failed-push list.
fn semantic_key(event_type: &str, ids: &Value, time_ms: i64) -> String {
    format!("{event_type}|{ids}|{time_ms}")
}

/// How an inbox entry arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Channel {
    Push,
    CatchUp,
}

/// Ties an inbox entry to an event of the simulator's log: its log id and how it came.
fn log_id_of(
    entry: &InboxEvent,
    by_event_id: &HashMap<String, u64>,
    by_key: &HashMap<String, u64>,
) -> Result<(u64, Channel), String> {
    let payload: Value = serde_json::from_str(&entry.payload_json)
        .map_err(|e| format!("inbox payload is not JSON ({e}): {}", entry.payload_json))?;
    if let Some(failed) = payload.get("failed_callback") {
        let tag = failed["call_back_tag"].as_str().unwrap_or("");
        let time = failed["event_time"].as_i64().unwrap_or(0);
        let ids = ids_of(&failed["payload"]).ok_or("catch-up entry without ids")?;
        let key = semantic_key(tag, ids, time);
        return by_key
            .get(&key)
            .map(|id| (*id, Channel::CatchUp))
            .ok_or(format!("catch-up entry matches no event: {key}"));
    }
    if let Some(event_id) = payload.get("eventId").and_then(Value::as_str) {
        return by_event_id
            .get(event_id)
            .map(|id| (*id, Channel::Push))
            .ok_or(format!("eventId {event_id} was never pushed"));
    }
    let event_type = payload["EventType"].as_str().unwrap_or("");
    let time = payload["TimeStamp"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let ids = ids_of(&payload).ok_or("legacy push without ids")?;
    let key = semantic_key(event_type, ids, time);
    by_key
        .get(&key)
        .map(|id| (*id, Channel::Push))
        .ok_or(format!("legacy push matches no event: {key}"))
}

async fn run(scenario: Scenario) {
    let mut rng = StdRng::seed_from_u64(scenario.seed);
    let sim = support::start_sim(300, 20, scenario.seed).await;
    let sim_url = sim.base_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = ServiceConfig::for_sim(&sim, dir.path());
    config.catchup_interval_secs = Some(1);
    let mut service = Service::start(&config, &[]).await;
    let http = support::http();

    support::sim_call(
        &http,
        &sim_url,
        Method::POST,
        "/_sim/push-settings",
        Some(json!({
            "dialect": scenario.dialect,
            "retry_scale": RETRY_SCALE,
            "duplicate_rate": scenario.duplicate_rate,
            "reorder_window_ms": scenario.reorder_window_ms,
        })),
    )
    .await;
    support::subscribe(&http, &sim_url, &config.callback_url()).await;
    let before = support::sim_call(&http, &sim_url, Method::GET, "/_sim/events", None).await;
    let base = before["events"]
        .as_array()
        .and_then(|a| a.last())
        .and_then(|e| e["id"].as_u64())
        .unwrap_or(0);
    let state = support::sim_call(&http, &sim_url, Method::GET, "/_sim/state", None).await;
    let kills = plan_kills(&mut rng, scenario.kills);
    let changes = plan_changes(&mut rng, &state, burst_len(&kills));

    burst_with_kills(&http, &sim_url, &changes, &kills, &mut service).await;
    assert_eq!(service.starts, kills.len() + 1, "every kill restarted");

    // Drain: every push final (acknowledged or in the failed list), then the failed list read
    // by catch-up and every event in the inbox.
    assert!(
        sim.wait_pushes_idle(WAIT).await,
        "the simulator's pushes did not become idle"
    );
    let ledger = Ledger::read(&http, &sim_url, base).await;
    assert!(ledger.events.len() >= changes.len());
    let store = Store::connect(&config.database_url())
        .await
        .expect("open the service's database");
    // Catch-up runs in the service on its own schedule; its only visible effects are the
    // simulator's failed list emptying and rows in another process's SQLite file, so poll.
    let settled = support::poll_until(WAIT, Duration::from_millis(200), || async {
        failed_unread(&http, &sim_url).await == 0
            && ledger.arrivals(&support::whole_inbox(&store).await).len() == ledger.events.len()
    })
    .await;
    assert!(
        settled,
        "the inbox did not catch up: {} events, {} arrived, {} failed pushes unread \
         (is catch-up running?)",
        ledger.events.len(),
        ledger.arrivals(&support::whole_inbox(&store).await).len(),
        failed_unread(&http, &sim_url).await,
    );

    replay(&http, &config, &ledger, &mut rng, &store).await;
    store.close().await;
    service.kill().await;
    // Catch-up fetched tokens with the client secret in every incarnation; none of it may
    // have reached the logs.
    let output = service.output();
    for secret in config.secrets() {
        assert!(
            !output.contains(&secret),
            "a configured secret appears in the service's output"
        );
    }

    // What survived the last SIGKILL is what is on disk.
    let store = Store::connect(&config.database_url())
        .await
        .expect("reopen the database");
    let inbox = support::whole_inbox(&store).await;
    store.close().await;
    sim.shutdown().await;
    verify(&scenario, &kills, &ledger, &inbox);
}

/// Makes the changes with `WORKERS` concurrent workers, each at its share of the rate, while
/// SIGKILLing and restarting the service at the planned moments. Every change made is counted,
/// so each kill waits for its moment instead of sleeping towards it.
async fn burst_with_kills(
    http: &reqwest::Client,
    sim_url: &str,
    changes: &[Change],
    kills: &[Kill],
    service: &mut Service,
) {
    let (made_tx, made_rx) = watch::channel(0usize);
    let made_tx = Arc::new(made_tx);
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..WORKERS {
        let mine: Vec<Change> = changes
            .iter()
            .skip(worker)
            .step_by(WORKERS)
            .cloned()
            .collect();
        let (http, sim_url, made_tx) = (http.clone(), sim_url.to_owned(), Arc::clone(&made_tx));
        workers.spawn(async move {
            let period = Duration::from_millis(1000 * WORKERS as u64 / CHANGES_PER_SEC);
            let mut pace = tokio::time::interval(period);
            for change in &mine {
                pace.tick().await;
                apply(&http, &sim_url, change).await;
                made_tx.send_modify(|n| *n += 1);
            }
        });
    }
    let killer = async {
        for kill in kills {
            let mut made = made_rx.clone();
            let target = *made.borrow() + kill.after_changes;
            tokio::time::timeout(WAIT, made.wait_for(|n| *n >= target))
                .await
                .expect("the burst reached the kill moment")
                .expect("the burst is running");
            assert!(service.is_running(), "the service exited on its own");
            service.kill().await;
            // The outage itself: DingTalk keeps pushing into a closed port meanwhile.
            tokio::time::sleep(kill.outage).await;
            service.restart().await;
        }
    };
    let burst = async {
        while let Some(done) = workers.join_next().await {
            done.expect("a change worker failed");
        }
    };
    tokio::join!(killer, burst);
}

async fn failed_unread(http: &reqwest::Client, sim_url: &str) -> u64 {
    support::sim_call(http, sim_url, Method::GET, "/_sim/pushes", None).await["failed_unread"]
        .as_u64()
        .unwrap_or(u64::MAX)
}

/// What the simulator did, read once every push is final: the events of the burst and every
/// push attempt, with the two indexes that tie an inbox entry back to an event.
struct Ledger {
    /// `/_sim/events` after the subscription.
    events: Vec<Value>,
    /// `/_sim/pushes` records of events (not `check_url`).
    records: Vec<Value>,
    /// New-dialect `eventId` → log id.
    by_event_id: HashMap<String, u64>,
    /// `type|ids|time` → log id.
    by_key: HashMap<String, u64>,
}

impl Ledger {
    async fn read(http: &reqwest::Client, sim_url: &str, base: u64) -> Ledger {
        let path = format!("/_sim/events?after={base}");
        let events = support::sim_call(http, sim_url, Method::GET, &path, None).await["events"]
            .as_array()
            .cloned()
            .expect("events");
        let mut by_key = HashMap::new();
        for event in &events {
            let key = semantic_key(
                event["event_type"].as_str().expect("event_type"),
                ids_of(&event["data"]).expect("event ids"),
                event["time_ms"].as_i64().expect("time_ms"),
            );
            let id = event["id"].as_u64().expect("id");
            assert!(
                by_key.insert(key.clone(), id).is_none(),
                "two events share {key}: the plan must touch each entity once"
            );
        }
        let pushes = support::sim_call(http, sim_url, Method::GET, "/_sim/pushes", None).await;
        let records: Vec<Value> = pushes["pushes"]
            .as_array()
            .expect("pushes")
            .iter()
            .filter(|p| p["event_id"].is_u64())
            .cloned()
            .collect();
        let by_event_id = records
            .iter()
            .filter_map(|p| {
                let event_id = p["plaintext"]["eventId"].as_str()?;
                Some((event_id.to_owned(), p["event_id"].as_u64()?))
            })
            .collect();
        Ledger {
            events,
            records,
            by_event_id,
            by_key,
        }
    }

    /// For each event found in `inbox`, the channels it arrived by (one per entry). An entry
    /// that matches no event fails the test.
    fn arrivals(&self, inbox: &[InboxEvent]) -> BTreeMap<u64, Vec<Channel>> {
        let mut arrivals: BTreeMap<u64, Vec<Channel>> = BTreeMap::new();
        for entry in inbox {
            let (id, channel) =
                log_id_of(entry, &self.by_event_id, &self.by_key).unwrap_or_else(|e| panic!("{e}"));
            arrivals.entry(id).or_default().push(channel);
        }
        arrivals
    }

    /// The acknowledged attempts.
    fn acked(&self) -> Vec<&Value> {
        self.records.iter().filter(|p| p["acked"] == true).collect()
    }

    /// Events with a delivery (one push, or one duplicate copy) that was never acknowledged:
    /// it ended in the failed list.
    fn failed_deliveries(&self) -> HashSet<u64> {
        let mut delivered: HashMap<u64, (u64, bool)> = HashMap::new();
        for record in &self.records {
            let (Some(push), Some(event)) =
                (record["push_id"].as_u64(), record["event_id"].as_u64())
            else {
                continue;
            };
            delivered.entry(push).or_insert((event, false)).1 |= record["acked"] == true;
        }
        delivered
            .values()
            .filter(|(_, acked)| !acked)
            .map(|(event, _)| *event)
            .collect()
    }
}

/// Replays with the service up: acknowledged pushes sent again, re-signed as a DingTalk retry
/// would be, and one request sent twice byte for byte. All are acknowledged; none adds an entry.
async fn replay(
    http: &reqwest::Client,
    config: &ServiceConfig,
    ledger: &Ledger,
    rng: &mut StdRng,
    store: &Store,
) {
    let acked = ledger.acked();
    let before = support::whole_inbox(store).await.len();
    let mut pusher = Pusher::new(&config.client_id, rng.r#gen());
    let url = config.callback_url();
    for record in acked.choose_multiple(rng, 10) {
        let push = pusher.push(
            &record["plaintext"].to_string(),
            &support::now_ms().to_string(),
        );
        let (status, reply) = support::send_push(http, &url, &push).await;
        assert!(
            status.is_success() && pusher.is_success_reply(&reply),
            "replay refused: {status} {reply}"
        );
    }
    let verbatim = pusher.push(
        &acked.first().expect("some push was acknowledged")["plaintext"].to_string(),
        &support::now_ms().to_string(),
    );
    for _ in 0..2 {
        let (status, reply) = support::send_push(http, &url, &verbatim).await;
        assert!(
            status.is_success() && pusher.is_success_reply(&reply),
            "verbatim replay refused: {status} {reply}"
        );
    }
    assert_eq!(
        support::whole_inbox(store).await.len(),
        before,
        "a replay added an inbox entry"
    );
}

/// The assertions on what is on disk, and on what the run exercised.
fn verify(scenario: &Scenario, kills: &[Kill], ledger: &Ledger, inbox: &[InboxEvent]) {
    let arrivals = ledger.arrivals(inbox);
    let acked = ledger.acked();

    // Every acknowledged push is stored: under its change's key, as it was pushed or in the
    // failed-list form when catch-up brought the same change first (the key is the same).
    let keys: HashSet<&str> = inbox.iter().map(|e| e.dedupe_key.as_str()).collect();
    for record in &acked {
        let text = record["plaintext"].to_string();
        let key = dingtalk_proto::events::ContactEvent::from_http_json(&text)
            .map(|event| event.dedupe_key(&text))
            .unwrap_or_default();
        assert!(
            keys.contains(key.as_str()),
            "acknowledged push {} is not in the inbox: {text}",
            record["push_id"],
        );
    }

    // Every event exactly once, whichever way it came: a push, DingTalk's retries, or catch-up
    // from the failed list – also when a push was committed but its answer never reached the
    // simulator, which then listed it as failed (all paths store one key per change).
    let mut missing = Vec::new();
    let mut doubled = Vec::new();
    for event in &ledger.events {
        let id = event["id"].as_u64().expect("id");
        match arrivals.get(&id).map(Vec::as_slice) {
            None => missing.push(event.clone()),
            Some([_]) => {}
            Some(channels) => doubled.push((event.clone(), channels.to_vec())),
        }
    }
    assert!(missing.is_empty(), "events never stored: {missing:?}");
    assert!(
        doubled.is_empty(),
        "events stored more than once: {doubled:?}"
    );
    assert_eq!(inbox.len(), ledger.events.len());
    assert!(
        inbox.iter().all(|e| e.dedupe_key.starts_with("change:")),
        "every row under its change key"
    );
    let listed_after_commit = ledger
        .failed_deliveries()
        .iter()
        .filter(|id| arrivals.get(id).is_some_and(|c| c == &[Channel::Push]))
        .count();

    // The run exercised what it claims to.
    let unacked = ledger.records.len() - acked.len();
    let by_retry = acked
        .iter()
        .filter(|p| p["attempt"].as_u64() > Some(1))
        .count();
    let by_catch_up = arrivals
        .values()
        .filter(|c| c.contains(&Channel::CatchUp))
        .count();
    let acked_events: HashSet<u64> = acked
        .iter()
        .filter_map(|p| p["event_id"].as_u64())
        .collect();
    let committed_unacked = arrivals
        .iter()
        .filter(|(id, c)| !acked_events.contains(id) && c.contains(&Channel::Push))
        .count();
    let duplicates = acked.iter().filter(|p| p["duplicate"] == true).count();
    let first_attempts: Vec<u64> = ledger
        .records
        .iter()
        .filter(|p| p["attempt"] == 1 && p["duplicate"] == false)
        .filter_map(|p| p["event_id"].as_u64())
        .collect();
    let overtaken = first_attempts.windows(2).filter(|w| w[1] < w[0]).count();
    eprintln!(
        "{scenario:?}: {} events, {} push attempts ({} acked, {unacked} not), {by_retry} acked \
         by a retry, {by_catch_up} by catch-up, {committed_unacked} committed but never \
         acknowledged, {listed_after_commit} stored from a push and also listed as failed, \
         {duplicates} \
         duplicate pushes acked, {overtaken} overtakings, kills {kills:?}",
        ledger.events.len(),
        ledger.records.len(),
        acked.len(),
    );
    assert!(unacked > 0, "no push failed: the kills missed the burst");
    assert!(by_retry > 0, "no event was delivered by a retry");
    assert!(by_catch_up > 0, "no event came by catch-up");
    if scenario.duplicate_rate > 0.0 {
        assert!(duplicates > 0, "no duplicate push was acknowledged");
    }
    if scenario.reorder_window_ms > 0 {
        assert!(overtaken > 0, "no push overtook an earlier one");
    }
}
