//! The rig of the fault runs (`tests/it/faults.rs`): a simulator, the real `dingsync serve` on a
//! config with the extra keys a fault run needs (a PostgreSQL URL, a short SQLite busy
//! timeout, catch-up on a schedule), the one-shot CLI commands run as the operator would, and a
//! workload of changes on both sides whose outcome can be checked completely afterwards.
//!
//! The checks are what "nothing lost, nothing duplicated" means here: every user created on
//! either side exists on the other, every rename made on either side shows on the other, the
//! active user counts of both sides equal the start count plus the creations (a duplicate or a
//! loss would make them differ), no two departments share a parent and a name in the simulator,
//! and `dingsync plan --json` finds nothing to do.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{API_TOKEN, Service, ServiceConfig, http, poll_until, sim_call, start_sim, subscribe};

/// How the rig is set up.
#[derive(Debug, Clone)]
pub struct RigOptions {
    /// Users and departments the simulator generates.
    pub users: usize,
    pub depts: usize,
    /// The seed of the simulator (org, ids, fault draws).
    pub seed: u64,
    /// A database URL other than the default SQLite file (PostgreSQL).
    pub database_url: Option<String>,
    /// `[database] sqlite_busy_timeout_ms`.
    pub sqlite_busy_timeout_ms: Option<u64>,
}

impl RigOptions {
    /// A small org, SQLite, the service's default busy timeout.
    pub fn new(seed: u64) -> Self {
        Self {
            users: 60,
            depts: 8,
            seed,
            database_url: None,
            sqlite_busy_timeout_ms: None,
        }
    }
}

/// Everything one fault run drives.
pub struct Rig {
    pub sim: dingtalk_sim::SimHandle,
    pub sim_url: String,
    /// Holds the database file, the config and the logs; removed at the end.
    pub dir: tempfile::TempDir,
    pub config: ServiceConfig,
    /// The config file every process of this run reads.
    pub config_path: PathBuf,
    /// The full TOML in that file.
    toml: String,
    pub service: Service,
    pub http: reqwest::Client,
    /// The OA id of the root department, known after [`Rig::import`].
    pub root: Option<i64>,
    /// Simulator users before the workload, counted after the import.
    pub users_at_start: usize,
}

impl std::fmt::Debug for Rig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rig")
            .field("sim_url", &self.sim_url)
            .finish_non_exhaustive()
    }
}

impl Rig {
    /// Starts the simulator and the service, and subscribes the service's callback URL with
    /// DingTalk's retries scaled down (10 s / 30 s → 0.5 s / 1.5 s) and catch-up every 2 s, so
    /// an event whose pushes all fail comes in by catch-up within the run.
    pub async fn start(options: RigOptions) -> Rig {
        let sim = start_sim(options.users, options.depts, options.seed).await;
        let sim_url = sim.base_url();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = ServiceConfig::for_sim(&sim, dir.path());
        config.catchup_interval_secs = Some(2);
        let mut doc: toml::Table = toml::from_str(&config.to_toml()).expect("config TOML");
        let database = doc
            .get_mut("database")
            .and_then(toml::Value::as_table_mut)
            .expect("[database]");
        if let Some(url) = &options.database_url {
            database.insert("url".into(), toml::Value::String(url.clone()));
        }
        if let Some(ms) = options.sqlite_busy_timeout_ms {
            database.insert(
                "sqlite_busy_timeout_ms".into(),
                toml::Value::Integer(i64::try_from(ms).expect("small")),
            );
        }
        let toml = toml::to_string(&doc).expect("config as TOML");
        // `Service::start` writes the plain config; the first incarnation is replaced at once by
        // one that reads the full file (the support module takes no extra keys).
        let mut service = Service::start(&config, &[]).await;
        service.kill().await;
        let config_path = config.db_path.with_file_name("dingsync.toml");
        std::fs::write(&config_path, &toml).expect("write the config");
        service.restart().await;
        let http = http();
        sim_call(
            &http,
            &sim_url,
            Method::POST,
            "/_sim/push-settings",
            Some(json!({"retry_scale": 0.05})),
        )
        .await;
        subscribe(&http, &sim_url, &config.callback_url()).await;
        Rig {
            sim,
            sim_url,
            dir,
            config,
            config_path,
            toml,
            service,
            http,
            root: None,
            users_at_start: 0,
        }
    }

    /// The TOML the processes of this run read.
    pub fn toml(&self) -> &str {
        &self.toml
    }

    /// Runs `dingsync <args> --config <file>` to the end, with no `DINGSYNC_*` variables from
    /// the test's environment; returns the exit code and everything it printed.
    pub async fn cli(&self, args: &[&str]) -> (Option<i32>, String) {
        let mut command = testkit::process::clean_command(env!("CARGO_BIN_EXE_dingsync"));
        command.args(args).arg("--config").arg(&self.config_path);
        let out = command.output().await.expect("run dingsync");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    }

    /// `dingsync import`, which must succeed; returns its summary. Records the root
    /// department and the simulator's user count for the checks.
    pub async fn import(&mut self) -> String {
        let (code, text) = self.cli(&["import"]).await;
        assert_eq!(code, Some(0), "dingsync import failed:\n{text}");
        let list = self
            .oa_ok(Method::GET, "/departments?limit=1000", None)
            .await;
        self.root = list["items"]
            .as_array()
            .and_then(|ds| ds.iter().find(|d| d["parent"].is_null()))
            .and_then(|d| d["id"].as_i64());
        assert!(self.root.is_some(), "no root department after the import");
        self.users_at_start = self.sim_users().await.len();
        text
    }

    /// `POST /_sim/settings` (fault rate, qps, token lifetime, …).
    pub async fn sim_settings(&self, patch: Value) -> Value {
        sim_call(
            &self.http,
            &self.sim_url,
            Method::POST,
            "/_sim/settings",
            Some(patch),
        )
        .await
    }

    /// `POST /_sim/push-settings` (duplicates, delays, reordering).
    pub async fn push_settings(&self, patch: Value) -> Value {
        sim_call(
            &self.http,
            &self.sim_url,
            Method::POST,
            "/_sim/push-settings",
            Some(patch),
        )
        .await
    }

    /// The simulator's `/_sim` GET routes.
    pub async fn sim_get(&self, path: &str) -> Value {
        sim_call(&self.http, &self.sim_url, Method::GET, path, None).await
    }

    /// Active users in the simulator, by userid → name.
    pub async fn sim_users(&self) -> std::collections::BTreeMap<String, String> {
        let state = self.sim_get("/_sim/state").await;
        state["users"]
            .as_array()
            .expect("users")
            .iter()
            .filter_map(|u| {
                Some((
                    u["userid"].as_str()?.to_owned(),
                    u["name"].as_str()?.to_owned(),
                ))
            })
            .collect()
    }

    /// One OA API request; the status and the JSON body (`Null` if none) and `Retry-After`.
    pub async fn oa(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value, Option<String>) {
        let mut request = self
            .http
            .request(
                method.clone(),
                format!("{}/api/v1{path}", self.config.base()),
            )
            .bearer_auth(API_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        (status, body, retry_after)
    }

    /// An OA API request that must succeed.
    pub async fn oa_ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, body, _) = self.oa(method.clone(), path, body).await;
        assert!(status.is_success(), "{method} {path}: {status} {body}");
        body
    }

    /// An OA write as a well-behaved OA client makes it: a 503 is retried after its
    /// `Retry-After`; anything else but success fails the test. Returns how many 503s it saw.
    pub async fn oa_write(&self, method: Method, path: &str, body: Value) -> u32 {
        let mut unavailable = 0;
        loop {
            let (status, answer, retry_after) =
                self.oa(method.clone(), path, Some(body.clone())).await;
            if status.is_success() {
                return unavailable;
            }
            assert_eq!(
                status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{method} {path}: {answer}"
            );
            assert_eq!(
                answer["error"]["code"], "database_unavailable",
                "a 503 names its cause: {answer}"
            );
            let wait: u64 = retry_after
                .as_deref()
                .and_then(|v| v.parse().ok())
                .expect("a 503 says when to retry");
            unavailable += 1;
            assert!(unavailable < 60, "{method} {path} unavailable for too long");
            tokio::time::sleep(Duration::from_secs(wait)).await;
        }
    }

    /// The service's `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.config.base()))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// `dingsync status` once the service has written a snapshot at least as new as
    /// `not_before_ms` (it writes one every few seconds).
    pub async fn status_after(&self, not_before_ms: i64) -> String {
        let last = std::sync::Mutex::new(String::new());
        let fresh = poll_until(Duration::from_secs(30), Duration::from_millis(500), || {
            let last = &last;
            async move {
                let (code, text) = self.cli(&["status"]).await;
                assert_eq!(code, Some(0), "dingsync status failed:\n{text}");
                *last.lock().expect("not poisoned") = text;
                let store = directory_store::Store::connect(&self.database_url())
                    .await
                    .expect("open the store");
                let written = store
                    .state_get(dingsync::ops_stats::STATE_KEY)
                    .await
                    .expect("read sync_state")
                    .and_then(|s| serde_json::from_str::<Value>(&s).ok())
                    .and_then(|v| v["updated_ms"].as_i64())
                    .unwrap_or(0);
                store.close().await;
                written >= not_before_ms
            }
        })
        .await;
        let last = last.into_inner().expect("not poisoned");
        assert!(fresh, "the service wrote no fresh stats:\n{last}");
        last
    }

    /// The database URL every process of this run uses.
    pub fn database_url(&self) -> String {
        let doc: toml::Table = toml::from_str(&self.toml).expect("config TOML");
        doc["database"]["url"]
            .as_str()
            .expect("database.url")
            .to_owned()
    }

    /// Whether `dingsync plan --json` finds nothing to do; the plan text otherwise.
    pub async fn plan_is_empty(&self) -> Result<(), String> {
        let (code, text) = self.cli(&["plan", "--json"]).await;
        match code {
            Some(0) => Ok(()),
            _ => Err(text),
        }
    }
}

/// What a workload did, for the checks.
#[derive(Debug, Default, Clone)]
pub struct Workload {
    /// Users created through the OA API: id → name.
    pub oa_created: Vec<(String, String)>,
    /// Users created in DingTalk: userid → name.
    pub dt_created: Vec<(String, String)>,
    /// Imported users renamed through the OA API: id → new name.
    pub oa_renamed: Vec<(String, String)>,
    /// Imported users renamed in DingTalk: userid → new name.
    pub dt_renamed: Vec<(String, String)>,
    /// OA writes answered 503 (and retried).
    pub oa_unavailable: u32,
}

/// Runs waves of changes on both sides for `duration` (at least one wave): each wave creates a
/// user on each side and renames one imported user on each side (never the same user on both
/// sides, so the expected end state does not depend on the conflict policy). `tag` keeps ids,
/// names and mobiles of different workloads in one run apart.
pub async fn workload(rig: &Rig, tag: u32, duration: Duration) -> Workload {
    let root = rig.root.expect("import first");
    let imported: Vec<String> = rig.sim_users().await.into_keys().collect();
    let mut w = Workload::default();
    let start = Instant::now();
    let mut wave = 0_usize;
    while wave == 0 || start.elapsed() < duration {
        let n = tag as usize * 1000 + wave;
        // OA: a new user, and a rename of an imported one (even positions).
        let oa_id = format!("oa-{tag}-{wave}");
        let oa_name = format!("OA用户{tag}x{wave}");
        w.oa_unavailable += rig
            .oa_write(
                Method::POST,
                "/users",
                json!({"id": oa_id, "name": oa_name, "mobile": format!("14{n:09}"),
                       "departments": [{"dept": root}]}),
            )
            .await;
        w.oa_created.push((oa_id, oa_name));
        if let Some(target) = imported.get((2 * wave) % imported.len().max(1)) {
            let name = format!("OA改名{tag}x{wave}");
            w.oa_unavailable += rig
                .oa_write(
                    Method::PATCH,
                    &format!("/users/{target}"),
                    json!({"name": name}),
                )
                .await;
            w.oa_renamed.retain(|(id, _)| id != target);
            w.oa_renamed.push((target.clone(), name));
        }
        // DingTalk: a new user, and a rename of another imported one (odd positions).
        let dt_id = format!("dt-{tag}-{wave}");
        let dt_name = format!("钉钉用户{tag}x{wave}");
        sim_call(
            &rig.http,
            &rig.sim_url,
            Method::POST,
            "/_sim/users",
            Some(
                json!({"userid": dt_id, "name": dt_name, "mobile": format!("16{n:09}"),
                        "dept_id_list": "1"}),
            ),
        )
        .await;
        w.dt_created.push((dt_id, dt_name));
        if let Some(target) = imported.get((2 * wave + 1) % imported.len().max(1)) {
            let name = format!("钉钉改名{tag}x{wave}");
            sim_call(
                &rig.http,
                &rig.sim_url,
                Method::PATCH,
                &format!("/_sim/users/{target}"),
                Some(json!({"name": name})),
            )
            .await;
            w.dt_renamed.retain(|(id, _)| id != target);
            w.dt_renamed.push((target.clone(), name));
        }
        wave += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    w
}

/// Why the two sides are not yet what the workloads imply (`None`: they are).
pub async fn missing(rig: &Rig, workloads: &[&Workload]) -> Option<String> {
    let sim = rig.sim_users().await;
    for w in workloads {
        for (id, name) in w.oa_created.iter().chain(&w.oa_renamed) {
            if sim.get(id) != Some(name) {
                return Some(format!(
                    "DingTalk has {id} as {:?}, OA wrote {name:?}",
                    sim.get(id)
                ));
            }
        }
        for (id, name) in w.dt_created.iter().chain(&w.dt_renamed) {
            let (status, user, _) = rig.oa(Method::GET, &format!("/users/{id}"), None).await;
            if !status.is_success() || user["name"] != name.as_str() {
                return Some(format!(
                    "OA has {id} as {status} {}, DingTalk has {name:?}",
                    user["name"]
                ));
            }
        }
    }
    None
}

/// Waits until both sides hold every change of `workloads` (faults may still be on); fails the
/// test with what is still missing. Returns how long it took.
pub async fn wait_applied(rig: &Rig, workloads: &[&Workload], timeout: Duration) -> Duration {
    let start = Instant::now();
    let why = std::sync::Mutex::new(String::new());
    let done = poll_until(timeout, Duration::from_millis(250), || {
        let why = &why;
        async move {
            match missing(rig, workloads).await {
                Some(gap) => {
                    *why.lock().expect("not poisoned") = gap;
                    false
                }
                None => true,
            }
        }
    })
    .await;
    let why = why.into_inner().expect("not poisoned");
    assert!(
        done,
        "changes not applied within {timeout:?}: {why}\n--- service output (tail) ---\n{}",
        tail(&rig.service.output(), 80)
    );
    start.elapsed()
}

/// Waits until the service has nothing left in its inbox and outbox (neither waiting nor in
/// progress): the echoes of its own pushes and late duplicates are applied too.
pub async fn wait_drained(rig: &Rig, timeout: Duration) {
    let store = directory_store::Store::connect(&rig.database_url())
        .await
        .expect("open the store");
    let drained = testkit::drain::wait_drained(&store, timeout).await;
    store.close().await;
    if let Err(last) = drained {
        panic!(
            "queues not drained within {timeout:?}: {last}\n--- service output (tail) ---\n{}",
            tail(&rig.service.output(), 80)
        );
    }
}

/// [`wait_applied`], [`wait_drained`], then waits until `dingsync plan --json` finds nothing
/// to do. Returns how long it took.
pub async fn converge(rig: &Rig, workloads: &[&Workload], timeout: Duration) -> Duration {
    let start = Instant::now();
    wait_applied(rig, workloads, timeout).await;
    wait_drained(rig, timeout).await;
    let why = std::sync::Mutex::new(String::new());
    let done = poll_until(timeout, Duration::from_millis(500), || {
        let why = &why;
        async move {
            match rig.plan_is_empty().await {
                Ok(()) => true,
                Err(plan) => {
                    *why.lock().expect("not poisoned") = plan;
                    false
                }
            }
        }
    })
    .await;
    let why = why.into_inner().expect("not poisoned");
    assert!(
        done,
        "plan not empty within {timeout:?}:\n{why}\n--- service output (tail) ---\n{}",
        tail(&rig.service.output(), 80)
    );
    start.elapsed()
}

/// Nothing duplicated, nothing lost: both sides hold exactly the start count plus the created
/// users, and no two simulator departments share a parent and a name.
pub async fn assert_no_duplicates(rig: &Rig, workloads: &[&Workload]) {
    let created: usize = workloads
        .iter()
        .map(|w| w.oa_created.len() + w.dt_created.len())
        .sum();
    let expected = rig.users_at_start + created;
    let sim = rig.sim_users().await;
    assert_eq!(sim.len(), expected, "DingTalk's user count");
    let mut oa_active = 0;
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/users?limit=1000&state=active&after={a}"),
            None => "/users?limit=1000&state=active".to_owned(),
        };
        let page = rig.oa_ok(Method::GET, &path, None).await;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        oa_active += items.len();
        match items.last().and_then(|u| u["id"].as_str()) {
            Some(last) if items.len() == 1000 => after = Some(last.to_owned()),
            _ => break,
        }
    }
    assert_eq!(oa_active, expected, "the OA directory's active user count");
    let state = rig.sim_get("/_sim/state").await;
    let mut seen = std::collections::HashSet::new();
    for d in state["departments"].as_array().expect("departments") {
        let key = (d["parent_id"].to_string(), d["name"].to_string());
        assert!(seen.insert(key.clone()), "duplicate department {key:?}");
    }
}

/// The sum of a Prometheus metric over all its label sets (0 when absent).
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// How long the workload of a scenario runs: `DINGSYNC_FAULT_SECS`, else `default`.
pub fn run_secs(default: u64) -> Duration {
    Duration::from_secs(
        std::env::var("DINGSYNC_FAULT_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

/// A throwaway PostgreSQL cluster (`scripts/pg-throwaway.sh`), stopped on drop.
pub struct Postgres {
    /// The data directory (owned by `postgres` when we are root).
    pub data: PathBuf,
    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub url: String,
    /// Holds the data directory.
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("data", &self.data)
            .finish()
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg-throwaway.sh")
}

/// `pg_ctl`, from Debian's versioned directory (as the script finds it) or the `PATH`.
fn pg_ctl() -> PathBuf {
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin/pg_ctl"))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("pg_ctl"))
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl Postgres {
    /// Starts a cluster on a free port; `None` (with a loud note) when PostgreSQL cannot be
    /// started here (not installed and not root).
    pub fn start() -> Option<Postgres> {
        let dir = tempfile::tempdir().expect("tempdir");
        // The server runs as `postgres` when we are root: it must be able to reach the data
        // directory inside the temporary one.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let data = dir.path().join("data");
        let port = super::free_port();
        let out = std::process::Command::new("bash")
            .arg(script())
            .args(["start", data.to_str().expect("utf-8"), &port.to_string()])
            .output()
            .expect("run pg-throwaway.sh");
        if !out.status.success() {
            eprintln!(
                "NOT RUN: PostgreSQL could not be started: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        let url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Some(Postgres {
            data,
            url,
            _dir: dir,
        })
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.data.to_str().expect("utf-8");
        let log = self.data.join("server.log");
        let log = log.to_str().expect("utf-8");
        let mut command = if is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(pg_ctl());
            c
        } else {
            std::process::Command::new(pg_ctl())
        };
        let out = command
            .args(["-D", data, "-l", log, "-w"])
            .args(args)
            .output()
            .expect("run pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server the way an operator's restart does (`-m fast`: sessions are ended).
    pub fn stop(&self) {
        self.pg_ctl(&["-m", "fast", "stop"]);
    }

    /// Starts it again, on the same port with the same options (the script skips `initdb`
    /// for an existing data directory).
    pub fn start_again(&self) {
        let port = self
            .url
            .rsplit(':')
            .next()
            .and_then(|rest| rest.split('/').next())
            .expect("a port in the URL");
        let out = std::process::Command::new("bash")
            .arg(script())
            .args(["start", self.data.to_str().expect("utf-8"), port])
            .output()
            .expect("run pg-throwaway.sh");
        assert!(
            out.status.success(),
            "restart PostgreSQL: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(script())
            .args(["stop", self.data.to_str().unwrap_or_default()])
            .output();
    }
}
