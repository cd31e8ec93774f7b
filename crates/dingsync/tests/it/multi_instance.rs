//! Several instances on one PostgreSQL database (issue 7, "Done when"), end to end: three real
//! `dingsync serve` processes on one fresh database, the simulator in-process pushing its events
//! through a round-robin forwarder ([`support::lb`]) as a load balancer would, a sustained mix of
//! DingTalk-side changes and OA writes spread over the instances, one instance SIGKILLed at a
//! seeded moment and restarted on the same port. Afterwards:
//! - every event the simulator recorded is in the inbox exactly once and `done`, and no entity's
//!   audit trail shows a write that changed nothing or repeated the previous state (what a second
//!   application of one event by another instance would leave);
//! - every OA change was pushed once: no department, user or role twice in the simulator (names
//!   under one parent, `source_identifier`s, role names in a group), every OA-created entity that
//!   still exists is in DingTalk exactly once, and no more creates succeeded than OA created;
//! - the simulator answered `90018` zero times over the whole run (import included): the rate
//!   budget is the deployment's, not each instance's;
//! - `dingsync plan --json` finds nothing to do.
//!
//! Why a forwarder and not three subscriptions: DingTalk pushes to one URL. It skips an instance
//! that refuses connections, so the kill shows up as in-flight requests broken (502, which
//! DingTalk retries and the OA writers here retry) and the rest of the traffic going elsewhere.
//!
//! Time: ≈ 90 s — 18 s of mix, then the drain, which waits for the killed instance's claims to
//! be taken over when their 60 s lease runs out. `DINGSYNC_MULTI_SECS=N` makes the mix N seconds
//! long and `DINGSYNC_MULTI_SEED=S` varies the plan.
//!
//! `throughput_one_vs_three_instances` (ignored; run by hand with `--ignored --nocapture`)
//! measures callbacks accepted/s, OA writes/s, pushes/s and events applied/s with one and with
//! three instances on the same PostgreSQL server. `DINGSYNC_MULTI_QPS` (default 20) sets
//! DingTalk's limit, `DINGSYNC_MULTI_N` (default 400) the work per figure, and
//! `DINGSYNC_MULTI_BINARY` a release build of `dingsync` to measure instead of the debug one.
//!
//! The database comes from `DINGSYNC_TEST_PG_URL` (`scripts/test.sh` starts one); without it the
//! test fails under CI and is skipped with a message elsewhere.

use crate::support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use directory_store::{DatabaseUrl, InboxEvent, QueueState, Store};
use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng as _};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::lb::Balancer;
use support::{Service, ServiceConfig};
use tokio::sync::watch;

/// Instances behind the forwarder.
const INSTANCES: usize = 3;
/// DingTalk's calls per second per API: the simulator's limit and the deployment's budget.
const QPS: u32 = 20;
/// The simulator's generated organization.
const SIM_USERS: usize = 60;
const SIM_DEPTS: usize = 8;
/// Concurrent OA writers, each with its own departments, users and role group.
const OA_WRITERS: usize = 6;
/// OA writes per second over all writers: above one API's budget, so that instances with a
/// budget each would overrun DingTalk's limit together.
const OA_WRITES_PER_SEC: u64 = 24;
/// DingTalk-side changes per second.
const DT_CHANGES_PER_SEC: u64 = 4;
/// The default length of the mix.
const MIX_SECS: u64 = 18;
/// DingTalk's push retry delays (10 s, 30 s) are multiplied by this.
const RETRY_SCALE: f64 = 0.05;
/// Bound on every wait (a claim held by the killed instance is taken over when its lease, 60 s
/// today, expires).
const WAIT: Duration = Duration::from_secs(200);

/// The PostgreSQL server to create the test's database on; `None` skips the test.
fn pg_admin_url() -> Option<String> {
    match std::env::var("DINGSYNC_TEST_PG_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var_os("CI").is_some() => panic!(
            "DINGSYNC_TEST_PG_URL is not set under CI: run the tests with scripts/test.sh, which \
             starts a throwaway PostgreSQL"
        ),
        Err(_) => {
            eprintln!(
                "DINGSYNC_TEST_PG_URL unset: skipping the multi-instance test (scripts/test.sh \
                 starts a PostgreSQL for it)"
            );
            None
        }
    }
}

/// A fresh database on the server `admin`.
async fn fresh_database(admin: &str) -> DatabaseUrl {
    let admin = DatabaseUrl::parse(admin).expect("DINGSYNC_TEST_PG_URL is a database URL");
    testkit::db::create_postgres_database(&admin, "multi").await
}

/// The `dingsync` executable the instances and the CLI run: the one Cargo built for this test,
/// or `DINGSYNC_MULTI_BINARY` (a release build, for the measurement).
fn binary() -> std::path::PathBuf {
    std::env::var_os("DINGSYNC_MULTI_BINARY").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_BIN_EXE_dingsync")),
        std::path::PathBuf::from,
    )
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_one_killed_everything_once_and_both_sides_equal() {
    let Some(admin) = pg_admin_url() else { return };
    let seed = 0x5EED_0007 ^ env_u64("DINGSYNC_MULTI_SEED").unwrap_or(0);
    let secs = env_u64("DINGSYNC_MULTI_SECS").unwrap_or(MIX_SECS).max(4);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut world = World::start(&admin, INSTANCES, QPS, seed).await;
    world.import().await;
    world.subscribe().await;
    let base_event = world.last_event_id().await;
    let state = world.sim_get("/_sim/state").await;
    let root = world.oa_root().await;

    // The plan: seeded changes on both sides, and one kill in the middle.
    let dt_changes = plan_dingtalk(&mut rng, &state, (DT_CHANGES_PER_SEC * secs) as usize);
    let oa_total = (OA_WRITES_PER_SEC * secs) as usize;
    let planned = dt_changes.len() + oa_total;
    let kill = Kill {
        instance: rng.gen_range(0..INSTANCES),
        after_ops: rng.gen_range(planned * 35 / 100..planned * 60 / 100),
        outage: Duration::from_millis(rng.gen_range(300..1_500)),
    };
    let writer_seeds: Vec<u64> = (0..OA_WRITERS).map(|_| rng.r#gen()).collect();
    let started = Instant::now();
    let outcome = world
        .mix(secs, root, &dt_changes, oa_total, &writer_seeds, kill)
        .await;
    let mix_s = started.elapsed().as_secs_f64();

    // A longer mix may leave a longer backlog behind DingTalk's rate limit.
    let patience = WAIT + Duration::from_secs(secs * 2);
    let quiet_in = world.wait_quiet(base_event, patience).await;
    eprintln!(
        "multi-instance: mix {mix_s:.1} s, quiet {quiet_in:.1} s after it; balancer: {}",
        world.lb.summary()
    );
    let report = world.verify(base_event, &outcome).await;
    eprintln!(
        "multi-instance: seed {seed:#x}, mix {mix_s:.1} s ({} OA writes, {} DingTalk changes), \
         kill {kill:?}; {report}",
        outcome.oa_writes,
        dt_changes.len(),
    );
    world.shutdown().await;
}

/// The measurement behind BENCHMARKS.md's "several instances" rows: the same four figures with
/// one and with three instances on the same PostgreSQL server (a fresh database each).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, run by hand with --ignored --nocapture"]
async fn throughput_one_vs_three_instances() {
    let Some(admin) = pg_admin_url() else { return };
    let qps = env_u64("DINGSYNC_MULTI_QPS").map_or(QPS, |q| q as u32);
    let n = env_u64("DINGSYNC_MULTI_N").unwrap_or(400) as usize;
    let mut rows = Vec::new();
    for instances in [1, 3] {
        rows.push(measure(&admin, instances, qps, n).await);
    }
    eprintln!("DingTalk budget {qps} calls/s per API; {n} units of work per figure");
    eprintln!(
        "{:>9} | {:>20} | {:>14} | {:>9} | {:>16}",
        "instances", "callbacks accepted/s", "OA writes/s", "pushes/s", "events applied/s"
    );
    for row in &rows {
        eprintln!("{row}");
    }
    for row in &rows {
        assert!(
            row.throttled.is_empty(),
            "the simulator answered 90018: {row}"
        );
    }
}

/// The forwarder itself (no PostgreSQL needed): requests rotate over the backends, one that
/// refuses connections is skipped, and with every backend refusing the answer is 503.
#[tokio::test]
async fn forwarder_rotates_and_skips_a_backend_that_refuses() {
    async fn backend(name: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind port 0");
        let addr = listener.local_addr().expect("address");
        let app = axum::Router::new()
            .fallback(move |uri: axum::http::Uri| async move { format!("{name} {uri}") });
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }
    // Nothing listens on a port just released, so connecting to it is refused.
    let dead = format!("http://127.0.0.1:{}", support::free_port());
    let lb = Balancer::start(vec![backend("a").await, dead.clone(), backend("b").await]).await;
    let http = support::http();
    let mut answers = Vec::new();
    for i in 0..4 {
        let answer = http
            .get(format!("{}/x?i={i}", lb.base()))
            .send()
            .await
            .expect("the forwarder answers");
        assert_eq!(answer.status(), StatusCode::OK);
        answers.push(answer.text().await.expect("body"));
    }
    assert_eq!(answers, ["a /x?i=0", "b /x?i=1", "a /x?i=2", "b /x?i=3"]);
    assert_eq!(lb.counts().skipped.load(Ordering::Relaxed), 2);
    lb.shutdown().await;

    let lb = Balancer::start(vec![dead]).await;
    let answer = http
        .get(lb.base())
        .send()
        .await
        .expect("the forwarder answers");
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    lb.shutdown().await;
}

// ---- the world -------------------------------------------------------------------------------

/// A simulator, one fresh PostgreSQL database, N instances and the forwarder in front of them.
struct World {
    sim: dingtalk_sim::SimHandle,
    sim_url: String,
    http: reqwest::Client,
    /// The shared database.
    db: DatabaseUrl,
    /// Each instance's config (its own folder, port and config file; the same database).
    configs: Vec<ServiceConfig>,
    services: Vec<Service>,
    lb: Balancer,
    /// Holds the config files.
    _dir: tempfile::TempDir,
}

impl World {
    async fn start(admin: &str, instances: usize, qps: u32, seed: u64) -> World {
        let sim = testkit::sim::start(dingtalk_sim::SimConfig {
            users: SIM_USERS,
            depts: SIM_DEPTS,
            seed,
            qps,
            ..Default::default()
        })
        .await;
        let db = fresh_database(admin).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut configs = Vec::new();
        let mut services = Vec::new();
        for i in 0..instances {
            let folder = dir.path().join(format!("instance{i}"));
            std::fs::create_dir_all(&folder).expect("instance folder");
            let mut config = ServiceConfig::for_sim(&sim, &folder);
            config.catchup_interval_secs = Some(2);
            config.overrides = json!({
                "database": { "url": db.expose() },
                "dingtalk": { "qps": qps },
                // The killed instance's claims come back after this; half the default, still
                // longer than a pusher round of 256 at qps 20.
                "sync": { "claim_lease_secs": 30 },
            });
            // One at a time: the first one creates the schema.
            services.push(Service::start_binary(Some(&binary()), &config, &[]).await);
            configs.push(config);
        }
        let lb = Balancer::start(configs.iter().map(ServiceConfig::base).collect()).await;
        let world = World {
            sim_url: sim.base_url(),
            sim,
            http: support::http(),
            db,
            configs,
            services,
            lb,
            _dir: dir,
        };
        world
            .sim_send(
                Method::POST,
                "/_sim/push-settings",
                Some(json!({"dialect": "new", "retry_scale": RETRY_SCALE})),
            )
            .await;
        world
    }

    /// Runs the real binary's one-shot command with the first instance's config file.
    async fn cli(&self, args: &[&str]) -> std::process::Output {
        let config = self.configs[0].db_path.with_file_name("dingsync.toml");
        let mut command = testkit::process::clean_command(binary());
        command.args(args).arg("--config").arg(&config);
        command.output().await.expect("run dingsync")
    }

    /// The full import, through the CLI while the instances run (it takes the import lease).
    async fn import(&self) {
        let out = self.cli(&["import"]).await;
        assert!(
            out.status.success(),
            "dingsync import failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// DingTalk pushes to the forwarder.
    async fn subscribe(&self) {
        support::subscribe(
            &self.http,
            &self.sim_url,
            &format!("{}/callbacks/dingtalk", self.lb.base()),
        )
        .await;
    }

    async fn sim_send(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        support::sim_call(&self.http, &self.sim_url, method, path, body).await
    }

    async fn sim_get(&self, path: &str) -> Value {
        self.sim_send(Method::GET, path, None).await
    }

    async fn last_event_id(&self) -> u64 {
        self.sim_get("/_sim/events").await["events"]
            .as_array()
            .and_then(|a| a.last())
            .and_then(|e| e["id"].as_u64())
            .unwrap_or(0)
    }

    async fn store(&self) -> Store {
        Store::connect(self.db.expose())
            .await
            .expect("open the shared database")
    }

    /// The OA root department's id.
    async fn oa_root(&self) -> i64 {
        let (status, list) = oa(
            &self.http,
            &self.lb.base(),
            Method::GET,
            "/departments?limit=1000",
            None,
        )
        .await
        .expect("list departments");
        assert_eq!(status, StatusCode::OK, "{list}");
        list["items"]
            .as_array()
            .and_then(|ds| ds.iter().find(|d| d["parent"].is_null()))
            .and_then(|d| d["id"].as_i64())
            .expect("the import made a root department")
    }

    /// The mix: DingTalk-side changes and OA writes at their rates for `secs`, the kill at its
    /// moment (counted in operations made, so it lands inside the mix on any machine).
    async fn mix(
        &mut self,
        secs: u64,
        root: i64,
        dt_changes: &[DtChange],
        oa_total: usize,
        writer_seeds: &[u64],
        kill: Kill,
    ) -> MixOutcome {
        let (made_tx, made_rx) = watch::channel(0usize);
        let made_tx = Arc::new(made_tx);
        let oa_writes = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        {
            let (http, sim_url, made) = (
                self.http.clone(),
                self.sim_url.clone(),
                Arc::clone(&made_tx),
            );
            let changes = dt_changes.to_vec();
            let period =
                Duration::from_secs(secs) / u32::try_from(changes.len().max(1)).unwrap_or(1);
            tasks.spawn(async move {
                let mut dt = DtWorld::default();
                let mut pace = tokio::time::interval(period);
                for change in &changes {
                    pace.tick().await;
                    dt.apply(&http, &sim_url, change).await;
                    made.send_modify(|n| *n += 1);
                }
                WriterResult::default()
            });
        }
        let per_writer = oa_total / writer_seeds.len();
        for (w, seed) in writer_seeds.iter().enumerate() {
            let mut writer = OaWriter::new(w, *seed, root, self.http.clone(), self.lb.base());
            let made = Arc::clone(&made_tx);
            let count = Arc::clone(&oa_writes);
            let period = Duration::from_secs(secs) / u32::try_from(per_writer.max(1)).unwrap_or(1);
            tasks.spawn(async move {
                let mut pace = tokio::time::interval(period);
                for _ in 0..per_writer {
                    pace.tick().await;
                    writer.step().await;
                    count.fetch_add(1, Ordering::Relaxed);
                    made.send_modify(|n| *n += 1);
                }
                writer.result()
            });
        }
        let killer = async {
            let mut made = made_rx.clone();
            tokio::time::timeout(WAIT, made.wait_for(|n| *n >= kill.after_ops))
                .await
                .expect("the mix reached the kill moment")
                .expect("the mix is running");
            let service = &mut self.services[kill.instance];
            assert!(service.is_running(), "the instance exited on its own");
            service.kill().await;
            // The outage itself: traffic goes on to the other instances meanwhile.
            tokio::time::sleep(kill.outage).await;
            service.restart().await;
        };
        let mut outcome = MixOutcome::default();
        let work = async {
            while let Some(done) = tasks.join_next().await {
                let result = done.expect("a mix task failed");
                outcome.users.extend(result.users);
                outcome.depts.extend(result.depts);
                outcome.deleted_users.extend(result.deleted_users);
                outcome.deleted_depts.extend(result.deleted_depts);
            }
        };
        tokio::join!(killer, work);
        outcome.oa_writes = oa_writes.load(Ordering::Relaxed);
        outcome
    }

    /// Waits (bounded) until nothing is left to do: every push final, DingTalk's failed list
    /// read, every event since `base_event` in the inbox, nothing pending or claimed in either
    /// queue. Returns how long it took.
    async fn wait_quiet(&self, base_event: u64, patience: Duration) -> f64 {
        let started = Instant::now();
        let store = self.store().await;
        let quiet = support::poll_until(patience, Duration::from_millis(250), || async {
            if !self.sim.wait_pushes_idle(Duration::ZERO).await {
                return false;
            }
            let (Ok(inbox), Ok(outbox)) = (store.inbox_depth().await, store.outbox_depth().await)
            else {
                return false;
            };
            if inbox.pending + inbox.claimed + outbox.pending + outbox.claimed > 0 {
                return false;
            }
            let events = self
                .sim_get(&format!("/_sim/events?after={base_event}"))
                .await;
            let failed = self.sim_get("/_sim/pushes").await["failed_unread"]
                .as_u64()
                .unwrap_or(u64::MAX);
            let total = events["events"].as_array().map_or(0, Vec::len);
            failed == 0 && support::whole_inbox(&store).await.len() >= total
        })
        .await;
        let inbox = store.inbox_depth().await.expect("inbox depth");
        let outbox = store.outbox_depth().await.expect("outbox depth");
        store.close().await;
        assert!(
            quiet,
            "no quiet within {patience:?}: inbox {inbox:?}, outbox {outbox:?}\n--- instance output ---\n{}",
            self.outputs()
        );
        started.elapsed().as_secs_f64()
    }

    fn outputs(&self) -> String {
        self.services
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let out = s.output();
                let tail: String = out
                    .chars()
                    .rev()
                    .take(6_000)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                format!("--- instance {i} (last lines) ---\n{tail}\n")
            })
            .collect()
    }

    /// Every assertion of the "Done when"; returns a summary line.
    async fn verify(&self, base_event: u64, outcome: &MixOutcome) -> String {
        // Zero 90018 over the whole run, import included.
        let calls = self.sim_get("/_sim/calls").await;
        let throttled = throttled_by_path(&calls);

        // Every event exactly once, and done.
        let ledger = Ledger::read(self, base_event).await;
        let store = self.store().await;
        let inbox = support::whole_inbox(&store).await;
        let mut arrivals: BTreeMap<u64, usize> = BTreeMap::new();
        for entry in &inbox {
            let id = ledger
                .event_of(entry)
                .unwrap_or_else(|e| panic!("inbox entry {}: {e}", entry.id));
            *arrivals.entry(id).or_default() += 1;
        }
        let missing: Vec<&Value> = ledger
            .events
            .iter()
            .filter(|e| !arrivals.contains_key(&e["id"].as_u64().unwrap_or(0)))
            .collect();
        let doubled: Vec<(&u64, &usize)> = arrivals.iter().filter(|(_, n)| **n > 1).collect();
        let not_done: Vec<(i64, QueueState)> = inbox
            .iter()
            .filter(|e| e.state != QueueState::Done)
            .map(|e| (e.id, e.state))
            .collect();

        // No entity changed twice by one event: an event is applied by fetching the entity's
        // current state, so each event can change the entities it names at most once, and an
        // entity's DingTalk-side changes (records that changed something; a record with equal
        // before and after only queues a re-push) are at most the events naming it.
        let mut named: HashMap<(&str, String), usize> = HashMap::new();
        for event in &ledger.events {
            for (field, kind) in [
                ("userId", "user"),
                ("userIdList", "user"),
                ("deptId", "department"),
            ] {
                for id in event["data"][field].as_array().into_iter().flatten() {
                    let id = id.as_str().map_or_else(|| id.to_string(), str::to_owned);
                    *named.entry((kind, id)).or_default() += 1;
                }
            }
        }
        let dept_ids: HashMap<String, String> = store
            .id_map_all::<directory_model::OaDeptId>()
            .await
            .expect("department id map")
            .into_iter()
            .map(|(oa, ding)| (oa.0.to_string(), ding.0.to_string()))
            .collect();
        let user_ids: HashMap<String, String> = store
            .id_map_all::<directory_model::OaUserId>()
            .await
            .expect("user id map")
            .into_iter()
            .map(|(oa, ding)| (oa.as_str().to_owned(), ding.as_str().to_owned()))
            .collect();
        let audit = whole_audit(&store).await;
        let mut changed: HashMap<(&str, String), usize> = HashMap::new();
        let mut unmapped = 0usize;
        for record in &audit {
            if record.origin != directory_store::Origin::DingTalk || record.before == record.after {
                continue;
            }
            let (kind, ids) = match record.kind {
                directory_store::EntityKind::User => ("user", &user_ids),
                directory_store::EntityKind::Department => ("department", &dept_ids),
                _ => continue,
            };
            // A department removed since has left the id map; its changes cannot be tied to
            // events (users keep their id: a user's OA id is their userid).
            let ding = match (ids.get(&record.oa_id), kind) {
                (Some(ding), _) => ding.clone(),
                (None, "user") => record.oa_id.clone(),
                (None, _) => {
                    unmapped += 1;
                    continue;
                }
            };
            *changed.entry((kind, ding)).or_default() += 1;
        }
        let applied_writes: usize = changed.values().sum();
        let over_applied: Vec<String> = changed
            .iter()
            .filter(|(key, n)| **n > named.get(key).copied().unwrap_or(0))
            .map(|((kind, id), n)| {
                let events = named.get(&(*kind, id.clone())).copied().unwrap_or(0);
                format!("{kind} {id}: {n} changes, {events} events")
            })
            .collect();
        let outbox_depth = store.outbox_depth().await.expect("outbox depth");
        let inbox_depth = store.inbox_depth().await.expect("inbox depth");
        store.close().await;

        // Every OA change pushed once: nothing twice in DingTalk, every survivor there once.
        let state = self.sim_get("/_sim/state").await;
        let duplicates = duplicates_in(&state);
        let by_source: HashMap<String, i64> = state["departments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| {
                Some((
                    d["source_identifier"].as_str()?.to_owned(),
                    d["dept_id"].as_i64()?,
                ))
            })
            .collect();
        let sim_users: HashSet<&str> = state["users"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| u["userid"].as_str())
            .collect();
        let oa_depts_missing: Vec<&i64> = outcome
            .depts
            .iter()
            .filter(|d| !outcome.deleted_depts.contains(d))
            .filter(|d| !by_source.contains_key(&format!("dingsync:{d}")))
            .collect();
        let oa_users_missing: Vec<&String> = outcome
            .users
            .iter()
            .filter(|u| !outcome.deleted_users.contains(*u))
            .filter(|u| !sim_users.contains(u.as_str()))
            .collect();
        let ok = |path: &str| calls["by_path"][path]["ok"].as_u64().unwrap_or(0);
        let dept_creates = ok("/topapi/v2/department/create");
        let user_creates = ok("/topapi/v2/user/create");
        let mut user_add_by_api: HashMap<String, usize> = HashMap::new();
        for event in &ledger.events {
            if event["origin"] == "api" && event["event_type"] == "user_add_org" {
                for id in event["data"]["userId"].as_array().into_iter().flatten() {
                    *user_add_by_api
                        .entry(id.as_str().unwrap_or("").to_owned())
                        .or_default() += 1;
                }
            }
        }
        let users_created_twice: Vec<(&String, &usize)> =
            user_add_by_api.iter().filter(|(_, n)| **n > 1).collect();

        // Both sides equal.
        let plan = self.cli(&["plan", "--json"]).await;

        // Every check is made and every failure reported together, so one run shows all that
        // is wrong (e.g. 90018s and what they caused).
        let mut failures: Vec<String> = Vec::new();
        let mut check = |ok: bool, what: String| {
            if !ok {
                failures.push(what);
            }
        };
        check(
            throttled.is_empty(),
            format!("the simulator answered 90018: {throttled:?}"),
        );
        check(
            missing.is_empty(),
            format!("events never stored: {missing:?}"),
        );
        check(
            doubled.is_empty(),
            format!("events stored more than once (event id, copies): {doubled:?}"),
        );
        check(
            not_done.is_empty(),
            format!("inbox entries not done: {not_done:?}"),
        );
        check(
            inbox_depth.dead == 0,
            format!("{} events in dead letters", inbox_depth.dead),
        );
        check(
            outbox_depth.dead == 0,
            format!("{} OA changes in dead letters", outbox_depth.dead),
        );
        check(
            over_applied.is_empty(),
            format!("entities changed more often than events named them: {over_applied:?}"),
        );
        check(
            duplicates.is_empty(),
            format!("duplicates in DingTalk: {duplicates:?}"),
        );
        check(
            oa_depts_missing.is_empty(),
            format!("OA departments never pushed: {oa_depts_missing:?}"),
        );
        check(
            oa_users_missing.is_empty(),
            format!("OA users never pushed: {oa_users_missing:?}"),
        );
        check(
            users_created_twice.is_empty(),
            format!("users created twice: {users_created_twice:?}"),
        );
        check(
            dept_creates <= outcome.depts.len() as u64,
            format!(
                "{dept_creates} departments created in DingTalk for {} OA departments",
                outcome.depts.len()
            ),
        );
        check(
            user_creates <= outcome.users.len() as u64,
            format!(
                "{user_creates} users created in DingTalk for {} OA users",
                outcome.users.len()
            ),
        );
        check(
            plan.status.code() == Some(0),
            format!(
                "plan found differences or failed ({:?}):\n{}{}",
                plan.status.code(),
                String::from_utf8_lossy(&plan.stdout),
                String::from_utf8_lossy(&plan.stderr)
            ),
        );
        check(
            !outcome.depts.is_empty() && !outcome.users.is_empty(),
            "the mix created nothing".to_owned(),
        );
        let summary = format!(
            "{} events, {} inbox entries, {applied_writes} DingTalk-side changes applied \
             ({unmapped} more to departments removed since), {} OA departments and {} OA \
             users created ({dept_creates} / {user_creates} creates in DingTalk), throttled \
             {throttled:?}",
            ledger.events.len(),
            inbox.len(),
            outcome.depts.len(),
            outcome.users.len()
        );
        assert!(
            failures.is_empty(),
            "{} checks failed ({summary}):\n- {}",
            failures.len(),
            failures.join("\n- ")
        );
        summary
    }

    async fn shutdown(mut self) {
        for service in &mut self.services {
            if service.is_running() {
                service.kill().await;
            }
        }
        let output: String = self.services.iter().map(Service::output).collect();
        for secret in self.configs[0].secrets() {
            assert!(
                !output.contains(&secret),
                "a configured secret reached the logs"
            );
        }
        self.lb.shutdown().await;
        self.sim.shutdown().await;
        // Best effort: a leftover test database costs disk, not correctness.
        testkit::db::drop_postgres_database(&self.db).await;
    }
}

/// The simulator's 90018 answers per API path (paths with none left out).
fn throttled_by_path(calls: &Value) -> BTreeMap<String, u64> {
    calls["by_path"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(path, c)| {
            let n = c["throttled"].as_u64().unwrap_or(0);
            (n > 0).then(|| (path.clone(), n))
        })
        .collect()
}

/// The whole audit log, oldest first.
async fn whole_audit(store: &Store) -> Vec<directory_store::AuditRecord> {
    let mut all: Vec<directory_store::AuditRecord> = Vec::new();
    loop {
        let page = store
            .changes_since(all.last().map_or(0, |r| r.seq), 1000)
            .await
            .expect("read the audit log");
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

/// Entities that exist twice in the simulator: departments with one name under one parent or
/// one `source_identifier`, roles with one name in one group.
fn duplicates_in(state: &Value) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut duplicates = Vec::new();
    for d in state["departments"].as_array().into_iter().flatten() {
        let by_name = format!("dept {} under {}", d["name"], d["parent_id"]);
        if !seen.insert(by_name.clone()) {
            duplicates.push(by_name);
        }
        if let Some(source) = d["source_identifier"].as_str() {
            let by_source = format!("source_identifier {source}");
            if !seen.insert(by_source.clone()) {
                duplicates.push(by_source);
            }
        }
    }
    for r in state["roles"].as_array().into_iter().flatten() {
        let by_name = format!("role {} in group {}", r["name"], r["group_id"]);
        if !seen.insert(by_name.clone()) {
            duplicates.push(by_name);
        }
    }
    for g in state["role_groups"].as_array().into_iter().flatten() {
        let by_name = format!("role group {}", g["name"]);
        if !seen.insert(by_name.clone()) {
            duplicates.push(by_name);
        }
    }
    duplicates
}

/// Calls the OA API (`path` below `/api/v1`) at `base`; `Err` when no answer came.
async fn oa(
    http: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<(StatusCode, Value), reqwest::Error> {
    let mut request = http
        .request(method, format!("{base}/api/v1{path}"))
        .bearer_auth(support::API_TOKEN);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await?;
    let status = response.status();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    Ok((status, body))
}

// ---- the kill and the mix's results --------------------------------------------------------

/// Which instance dies, when, and for how long.
#[derive(Debug, Clone, Copy)]
struct Kill {
    instance: usize,
    /// After this many operations (both sides) since the mix began.
    after_ops: usize,
    outage: Duration,
}

/// What the OA writers created and deleted.
#[derive(Debug, Default)]
struct MixOutcome {
    oa_writes: usize,
    users: Vec<String>,
    depts: Vec<i64>,
    deleted_users: HashSet<String>,
    deleted_depts: HashSet<i64>,
}

#[derive(Debug, Default)]
struct WriterResult {
    users: Vec<String>,
    depts: Vec<i64>,
    deleted_users: HashSet<String>,
    deleted_depts: HashSet<i64>,
}

// ---- DingTalk-side changes -----------------------------------------------------------------

/// One DingTalk-side change through `/_sim`, against the simulator's own organization (never
/// an OA-created entity, so no conflict policy is involved).
#[derive(Debug, Clone)]
enum DtChange {
    AddUser(usize),
    ModifyUser(String, usize),
    UserLeaves(String),
    /// A new department under the root, or under the previous new one.
    AddDept(usize),
    RenameDept(i64, usize),
    /// Removes the newest department this plan added (still empty).
    RemoveNewDept,
    /// A role in the plan's role group (created with the first one).
    AddRole(usize),
    RenameRole(usize),
    AssignRole(String),
}

fn plan_dingtalk(rng: &mut StdRng, state: &Value, count: usize) -> Vec<DtChange> {
    // Nobody who manages a department or a person is changed or leaves: DingTalk's leave drops
    // them from those lists without an event for the departments or people concerned, and
    // dingsync does not refresh them (a gap outside this test's subject, see the report).
    let managers: HashSet<&str> = state["departments"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|d| {
            d["dept_manager_userid_list"]
                .as_array()
                .into_iter()
                .flatten()
        })
        .chain(
            state["users"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|u| &u["manager_userid"]),
        )
        .filter_map(Value::as_str)
        .collect();
    let mut users: Vec<String> = state["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["userid"].as_str())
        .filter(|u| !managers.contains(u))
        .map(str::to_owned)
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
    let (mut added_depts, mut roles) = (0usize, 0usize);
    (0..count)
        .map(|n| match rng.gen_range(0..100) {
            0..=19 => DtChange::AddUser(n),
            20..=39 if users.len() > 10 => DtChange::ModifyUser(users.pop().expect("non-empty"), n),
            40..=47 if users.len() > 10 => DtChange::UserLeaves(users.pop().expect("non-empty")),
            48..=59 => {
                added_depts += 1;
                DtChange::AddDept(n)
            }
            60..=67 if !depts.is_empty() => {
                DtChange::RenameDept(depts.pop().expect("non-empty"), n)
            }
            68..=72 if added_depts > 0 => {
                added_depts -= 1;
                DtChange::RemoveNewDept
            }
            73..=80 => {
                roles += 1;
                DtChange::AddRole(n)
            }
            81..=86 if roles > 0 => DtChange::RenameRole(n),
            87..=99 if roles > 0 && users.len() > 10 => {
                DtChange::AssignRole(users.pop().expect("non-empty"))
            }
            _ => DtChange::AddUser(n),
        })
        .collect()
}

/// What the DingTalk-side plan created so far (ids the simulator chose).
#[derive(Debug, Default)]
struct DtWorld {
    /// Departments added and not yet removed, newest last.
    depts: Vec<i64>,
    group: Option<i64>,
    roles: Vec<i64>,
}

impl DtWorld {
    async fn apply(&mut self, http: &reqwest::Client, sim: &str, change: &DtChange) {
        let call = |method: Method, path: String, body: Option<Value>| async move {
            support::sim_call(http, sim, method, &path, body).await
        };
        match change {
            DtChange::AddUser(n) => {
                call(
                    Method::POST,
                    "/_sim/users".into(),
                    Some(
                        json!({"userid": format!("dt{n}"), "name": format!("钉钉{n}"),
                                "mobile": format!("166{n:08}"), "dept_id_list": "1"}),
                    ),
                )
                .await;
            }
            DtChange::ModifyUser(userid, n) => {
                call(
                    Method::PATCH,
                    format!("/_sim/users/{userid}"),
                    Some(json!({"name": format!("改名{n}")})),
                )
                .await;
            }
            DtChange::UserLeaves(userid) => {
                call(Method::DELETE, format!("/_sim/users/{userid}"), None).await;
            }
            DtChange::AddDept(n) => {
                let parent = self.depts.last().copied().unwrap_or(1);
                let answer = call(
                    Method::POST,
                    "/_sim/depts".into(),
                    Some(json!({"name": format!("钉钉部{n}"), "parent_id": parent})),
                )
                .await;
                self.depts
                    .push(answer["result"]["dept_id"].as_i64().expect("dept_id"));
            }
            DtChange::RenameDept(id, n) => {
                call(
                    Method::PATCH,
                    format!("/_sim/depts/{id}"),
                    Some(json!({"name": format!("改部{n}")})),
                )
                .await;
            }
            DtChange::RemoveNewDept => {
                let id = self.depts.pop().expect("the plan added one");
                call(Method::DELETE, format!("/_sim/depts/{id}"), None).await;
            }
            DtChange::AddRole(n) => {
                let group = match self.group {
                    Some(group) => group,
                    None => {
                        let answer = call(
                            Method::POST,
                            "/_sim/role-groups".into(),
                            Some(json!({"name": "钉钉角色组"})),
                        )
                        .await;
                        let group = answer["groupId"].as_i64().expect("groupId");
                        self.group = Some(group);
                        group
                    }
                };
                let answer = call(
                    Method::POST,
                    "/_sim/roles".into(),
                    Some(json!({"roleName": format!("钉钉角色{n}"), "groupId": group})),
                )
                .await;
                self.roles.push(answer["roleId"].as_i64().expect("roleId"));
            }
            DtChange::RenameRole(n) => {
                let id = *self.roles.last().expect("a role exists");
                call(
                    Method::PATCH,
                    format!("/_sim/roles/{id}"),
                    Some(json!({"roleName": format!("改角色{n}")})),
                )
                .await;
            }
            DtChange::AssignRole(userid) => {
                let id = *self.roles.last().expect("a role exists");
                call(
                    Method::POST,
                    "/_sim/roles/assign".into(),
                    Some(json!({"roleIds": id.to_string(), "userIds": userid})),
                )
                .await;
            }
        }
    }
}

// ---- OA writes -------------------------------------------------------------------------------

/// Whether the OA writers also create role groups and roles and assign them
/// (`DINGSYNC_MULTI_OA_ROLES=1`). Off by default, because two engine races outside this test's
/// subject show up with it (with one instance as with three; this switch reproduces them):
/// - before main's c6b9714, a DingTalk-side role event applied while an OA-created role group
///   was still queued for its push deleted that group from OA (the role refresh took DingTalk's
///   list as complete); it came back under a new id once the push landed;
/// - on main after c6b9714, an event for an OA user who holds OA roles can end in the inbox's
///   dead letters at its first attempt with "directory store failed: user … not found" (seen
///   in both of two runs; cause not investigated here).
fn oa_roles() -> bool {
    std::env::var("DINGSYNC_MULTI_OA_ROLES").as_deref() == Ok("1")
}

/// One OA system client: its own departments (a small tree under the root), users in them and
/// a role group, changed at random through the forwarder. Entities are the writer's own, so
/// every answer is predictable; a request the forwarder could not complete (the instance died
/// under it) is retried, and a retried create that finds its entity already there counts as
/// done.
struct OaWriter {
    id: usize,
    rng: StdRng,
    root: i64,
    http: reqwest::Client,
    base: String,
    /// Own departments: id → parent.
    depts: BTreeMap<i64, i64>,
    /// Own users: id → department.
    users: BTreeMap<String, i64>,
    group: Option<i64>,
    roles: Vec<i64>,
    /// How many entities this writer has named (names and ids stay unique).
    serial: usize,
    result: WriterResult,
}

impl OaWriter {
    fn new(id: usize, seed: u64, root: i64, http: reqwest::Client, base: String) -> Self {
        Self {
            id,
            rng: StdRng::seed_from_u64(seed),
            root,
            http,
            base,
            depts: BTreeMap::new(),
            users: BTreeMap::new(),
            group: None,
            roles: Vec::new(),
            serial: 0,
            result: WriterResult::default(),
        }
    }

    fn result(self) -> WriterResult {
        self.result
    }

    /// Sends one request until an instance answers it; `retried` tells whether an earlier
    /// attempt may have been applied.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value, bool) {
        let mut retried = false;
        for _ in 0..20 {
            match oa(&self.http, &self.base, method.clone(), path, body).await {
                Ok((status, answer)) if !status.is_server_error() => {
                    return (status, answer, retried);
                }
                Ok(_) | Err(_) => {
                    retried = true;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        panic!("{method} {path}: no instance answered");
    }

    /// Expects success; on a retry, `also_fine` (e.g. 404 for a delete, 409 for a create) too.
    async fn write(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        also_fine: StatusCode,
    ) -> Value {
        let (status, answer, retried) = self.send(method.clone(), path, body).await;
        assert!(
            status.is_success() || (retried && status == also_fine),
            "writer {}: {method} {path} {body:?}: {status} {answer}",
            self.id
        );
        answer
    }

    /// A leaf department, or the root when there is none.
    fn some_dept(&mut self) -> i64 {
        let ids: Vec<i64> = self.depts.keys().copied().collect();
        ids.choose(&mut self.rng).copied().unwrap_or(self.root)
    }

    fn some_user(&mut self) -> Option<String> {
        let ids: Vec<&String> = self.users.keys().collect();
        ids.choose(&mut self.rng).map(|s| (*s).clone())
    }

    fn is_under(&self, dept: i64, ancestor: i64) -> bool {
        let mut at = dept;
        while let Some(parent) = self.depts.get(&at) {
            if *parent == ancestor {
                return true;
            }
            at = *parent;
        }
        dept == ancestor
    }

    async fn step(&mut self) {
        self.serial += 1;
        let (w, n) = (self.id, self.serial);
        let roll = self.rng.gen_range(0..100);
        match roll {
            0..=14 => self.create_dept(format!("W{w}部{n}")).await,
            15..=19 if oa_roles() && (self.group.is_none() || self.roles.len() < 3) => {
                self.create_role(n).await;
            }
            20..=29 if oa_roles() && !self.users.is_empty() && !self.roles.is_empty() => {
                self.assign_role().await;
            }
            30..=39 if !self.users.is_empty() => {
                let user = self.some_user().expect("non-empty");
                let body = json!({"name": format!("W{w}改{n}")});
                self.write(
                    Method::PATCH,
                    &format!("/users/{user}"),
                    Some(&body),
                    StatusCode::OK,
                )
                .await;
            }
            40..=46 if !self.users.is_empty() && !self.depts.is_empty() => {
                let user = self.some_user().expect("non-empty");
                let to = self.some_dept();
                let body = json!({"departments": [{"dept": to, "title": "Engineer"}]});
                self.write(
                    Method::PATCH,
                    &format!("/users/{user}"),
                    Some(&body),
                    StatusCode::OK,
                )
                .await;
                self.users.insert(user, to);
            }
            47..=52 if !self.depts.is_empty() => {
                let dept = self.some_dept();
                let body = json!({"name": format!("W{w}部{n}改")});
                self.write(
                    Method::PATCH,
                    &format!("/departments/{dept}"),
                    Some(&body),
                    StatusCode::OK,
                )
                .await;
            }
            53..=56 if self.depts.len() > 1 => {
                let dept = self.some_dept();
                let to = self.some_dept();
                let to = if self.is_under(to, dept) {
                    self.root
                } else {
                    to
                };
                if self.depts.get(&dept) != Some(&to) {
                    let body = json!({"parent": to});
                    self.write(
                        Method::PATCH,
                        &format!("/departments/{dept}"),
                        Some(&body),
                        StatusCode::OK,
                    )
                    .await;
                    self.depts.insert(dept, to);
                }
            }
            57..=61 if self.users.len() > 2 => {
                let user = self.some_user().expect("non-empty");
                self.write(
                    Method::DELETE,
                    &format!("/users/{user}"),
                    None,
                    StatusCode::NOT_FOUND,
                )
                .await;
                self.users.remove(&user);
                self.result.deleted_users.insert(user);
            }
            62..=64 => {
                // An empty leaf of the writer's own tree.
                let leaf = self.depts.keys().copied().find(|d| {
                    !self.depts.values().any(|p| p == d) && !self.users.values().any(|u| u == d)
                });
                if let Some(dept) = leaf {
                    self.write(
                        Method::DELETE,
                        &format!("/departments/{dept}"),
                        None,
                        StatusCode::NOT_FOUND,
                    )
                    .await;
                    self.depts.remove(&dept);
                    self.result.deleted_depts.insert(dept);
                } else {
                    self.create_user(n).await;
                }
            }
            _ if self.depts.is_empty() => self.create_dept(format!("W{w}部{n}")).await,
            _ => self.create_user(n).await,
        }
    }

    async fn create_dept(&mut self, name: String) {
        let parent = if self.rng.gen_bool(0.5) {
            self.some_dept()
        } else {
            self.root
        };
        let body = json!({"name": name, "parent": parent});
        let answer = self
            .write(
                Method::POST,
                "/departments",
                Some(&body),
                StatusCode::CONFLICT,
            )
            .await;
        let id = match answer["id"].as_i64() {
            Some(id) => id,
            // A retried create that found the first attempt's department: look it up.
            None => self.find_dept(&name, parent).await,
        };
        self.depts.insert(id, parent);
        self.result.depts.push(id);
    }

    async fn find_dept(&self, name: &str, parent: i64) -> i64 {
        let path = format!(
            "/departments?parent={parent}&name={}&limit=10",
            form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()
        );
        let (_, list, _) = self.send(Method::GET, &path, None).await;
        list["items"]
            .as_array()
            .and_then(|items| items.iter().find(|d| d["name"] == name))
            .and_then(|d| d["id"].as_i64())
            .unwrap_or_else(|| panic!("department {name} under {parent} not found: {list}"))
    }

    async fn create_user(&mut self, n: usize) {
        let w = self.id;
        let dept = self.some_dept();
        let id = format!("oa-w{w}-{n}");
        let body = json!({
            "id": id,
            "name": format!("OA用户{w}-{n}"),
            "mobile": format!("139{w:02}{n:06}"),
            "departments": [{"dept": dept, "title": "Engineer"}],
        });
        self.write(Method::POST, "/users", Some(&body), StatusCode::CONFLICT)
            .await;
        self.users.insert(id.clone(), dept);
        self.result.users.push(id);
    }

    async fn create_role(&mut self, n: usize) {
        let w = self.id;
        let group = match self.group {
            Some(group) => group,
            None => {
                let body = json!({"name": format!("OA组{w}")});
                let answer = self
                    .write(
                        Method::POST,
                        "/role-groups",
                        Some(&body),
                        StatusCode::CONFLICT,
                    )
                    .await;
                let group = answer["id"]
                    .as_i64()
                    .expect("role group id (create retried?)");
                self.group = Some(group);
                group
            }
        };
        let body = json!({"group": group, "name": format!("OA角色{w}-{n}")});
        let answer = self
            .write(Method::POST, "/roles", Some(&body), StatusCode::CONFLICT)
            .await;
        if let Some(id) = answer["id"].as_i64() {
            self.roles.push(id);
        }
    }

    async fn assign_role(&mut self) {
        let user = self.some_user().expect("non-empty");
        let role = *self.roles.choose(&mut self.rng).expect("non-empty");
        let body = json!({"user": user, "role": role});
        self.write(
            Method::POST,
            "/role-assignments",
            Some(&body),
            StatusCode::CONFLICT,
        )
        .await;
    }
}

// ---- tying inbox entries to the simulator's events -----------------------------------------

/// The simulator's events since the base, and how to recognise each in the inbox: by the
/// new dialect's `eventId` (through the push log), or for a catch-up entry (the failed list has
/// no event id) by type + ids + time.
struct Ledger {
    events: Vec<Value>,
    by_event_id: HashMap<String, u64>,
    by_key: HashMap<String, u64>,
}

fn ids_of(object: &Value) -> Option<&Value> {
    [
        "userId",
        "deptId",
        "UserId",
        "DeptId",
        "userid",
        "deptid",
        "labelIdList",
        "LabelIdList",
    ]
    .iter()
    .find_map(|name| object.get(*name))
}

impl Ledger {
    async fn read(world: &World, base: u64) -> Ledger {
        let events = world.sim_get(&format!("/_sim/events?after={base}")).await["events"]
            .as_array()
            .cloned()
            .expect("events");
        let mut by_key = HashMap::new();
        for event in &events {
            if let Some(ids) = ids_of(&event["data"]) {
                let key = format!(
                    "{}|{ids}|{}",
                    event["event_type"].as_str().unwrap_or(""),
                    event["time_ms"]
                );
                by_key.insert(key, event["id"].as_u64().unwrap_or(0));
            }
        }
        let pushes = world.sim_get("/_sim/pushes").await;
        let by_event_id = pushes["pushes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                Some((
                    p["plaintext"]["eventId"].as_str()?.to_owned(),
                    p["event_id"].as_u64()?,
                ))
            })
            .collect();
        Ledger {
            events,
            by_event_id,
            by_key,
        }
    }

    /// The simulator's event id of an inbox entry.
    fn event_of(&self, entry: &InboxEvent) -> Result<u64, String> {
        let payload: Value = serde_json::from_str(&entry.payload_json)
            .map_err(|e| format!("payload is not JSON ({e})"))?;
        if let Some(failed) = payload.get("failed_callback") {
            let ids = ids_of(&failed["payload"]).ok_or("catch-up entry without ids")?;
            let key = format!(
                "{}|{ids}|{}",
                failed["call_back_tag"].as_str().unwrap_or(""),
                failed["event_time"]
            );
            return self
                .by_key
                .get(&key)
                .copied()
                .ok_or(format!("catch-up entry matches no event: {key}"));
        }
        let event_id = payload["eventId"]
            .as_str()
            .ok_or(format!("push without eventId: {payload}"))?;
        self.by_event_id
            .get(event_id)
            .copied()
            .ok_or(format!("eventId {event_id} was never pushed"))
    }
}

// ---- throughput, one vs three ----------------------------------------------------------------

/// One row of the measurement.
#[derive(Debug)]
struct Throughput {
    instances: usize,
    callbacks_per_s: f64,
    writes_per_s: f64,
    pushes_per_s: f64,
    applied_per_s: f64,
    /// 90018 answers per API path over the whole run (import included).
    throttled: BTreeMap<String, u64>,
}

impl std::fmt::Display for Throughput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>9} | {:>20.0} | {:>14.0} | {:>9.1} | {:>16.1} (90018: {:?})",
            self.instances,
            self.callbacks_per_s,
            self.writes_per_s,
            self.pushes_per_s,
            self.applied_per_s,
            self.throttled
        )
    }
}

/// Runs `count` closures with `concurrency` workers; returns the wall time.
async fn closed_loop<F, Fut>(count: usize, concurrency: usize, job: F) -> Duration
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let job = Arc::new(job);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (job, next) = (Arc::clone(&job), Arc::clone(&next));
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return;
                }
                job(i).await;
            }
        });
    }
    while let Some(done) = set.join_next().await {
        done.expect("a load worker failed");
    }
    started.elapsed()
}

/// Waits until a queue of the shared database is drained; returns when that happened.
async fn drained(store: &Store, inbox: bool) -> Instant {
    let ok = support::poll_until(WAIT, Duration::from_millis(50), || async {
        let depth = if inbox {
            store.inbox_depth().await
        } else {
            store.outbox_depth().await
        };
        depth.is_ok_and(|d| d.pending + d.claimed == 0)
    })
    .await;
    assert!(
        ok,
        "the {} did not drain",
        if inbox { "inbox" } else { "outbox" }
    );
    Instant::now()
}

/// One configuration's figures: `n` signed pushes at the forwarder (accepted/s; then events
/// applied/s until the inbox is drained), then `n` OA user creates (writes/s; then pushes/s
/// until the outbox is drained).
async fn measure(admin: &str, instances: usize, qps: u32, n: usize) -> Throughput {
    let world = World::start(admin, instances, qps, 7).await;
    world.import().await;
    let store = world.store().await;
    let state = world.sim_get("/_sim/state").await;
    let users: Vec<String> = state["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["userid"].as_str().map(str::to_owned))
        .collect();
    let url = format!("{}/callbacks/dingtalk", world.lb.base());
    let owner = world.configs[0].client_id.clone();
    let corp = world.configs[0].corp_id.clone();
    let pushes: Vec<support::SignedPush> = {
        let mut pusher = support::Pusher::new(&owner, 11);
        let now = support::now_ms();
        (0..n)
            .map(|i| {
                let user = &users[i % users.len()];
                // The legacy dialect; distinct timestamps make each a distinct event.
                let message = json!({"EventType": "user_modify_org", "CorpId": corp,
                                     "UserId": [user],
                                     "TimeStamp": (now + i as i64).to_string()});
                pusher.push(&message.to_string(), &now.to_string())
            })
            .collect()
    };
    let pushes = Arc::new(pushes);
    let (http, url2) = (world.http.clone(), url.clone());
    let accepted = closed_loop(n, 32, move |i| {
        let (http, url, pushes) = (http.clone(), url2.clone(), Arc::clone(&pushes));
        async move {
            let (status, _) = support::send_push(&http, &url, &pushes[i]).await;
            assert!(status.is_success(), "push refused: {status}");
        }
    })
    .await;
    let accept_started = Instant::now() - accepted;
    let applied_at = drained(&store, true).await;

    let (http, base) = (world.http.clone(), world.lb.base());
    let root = world.oa_root().await;
    let writes = closed_loop(n, 16, move |i| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let body = json!({"id": format!("tp{i}"), "name": format!("吞吐{i}"),
                              "mobile": format!("138{i:08}"),
                              "departments": [{"dept": root, "title": "Engineer"}]});
            let (status, answer) = oa(&http, &base, Method::POST, "/users", Some(&body))
                .await
                .expect("POST /users");
            assert!(status.is_success(), "POST /users: {status} {answer}");
        }
    })
    .await;
    let writes_started = Instant::now() - writes;
    let pushed_at = drained(&store, false).await;
    store.close().await;
    let throttled = throttled_by_path(&world.sim_get("/_sim/calls").await);
    let row = Throughput {
        instances,
        callbacks_per_s: n as f64 / accepted.as_secs_f64(),
        writes_per_s: n as f64 / writes.as_secs_f64(),
        pushes_per_s: n as f64 / (pushed_at - writes_started).as_secs_f64(),
        applied_per_s: n as f64 / (applied_at - accept_started).as_secs_f64(),
        throttled,
    };
    world.shutdown().await;
    row
}
