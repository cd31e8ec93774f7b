//! One world: a simulated DingTalk, a fresh directory (a SQLite file in a temporary folder, or a
//! fresh PostgreSQL database) and the whole service on free ports.
//!
//! Every scenario builds its own [`Rig`] so no scenario sees another's data, rate budget or
//! queues, and tears it down at the end (the PostgreSQL database is dropped). The service is
//! started through [`Service`] — in `dingsync`, `Application`, the very code `serve` runs; the
//! bench only changes which workers run, so a figure measures the product, not a bench-only
//! shortcut. `dingsync demo` stands up its world with the same code ([`Rig::with_sim`]).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use dingtalk_proto::Secret;
use directory_store::{DatabaseUrl, Store};
use rand::Rng;
use rand::distributions::Alphanumeric;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::service::{Service, ServiceSpec};

/// A PostgreSQL server URL kept in the caller's secret type (`dingsync`'s config has its own),
/// read only to connect.
pub trait ServerUrl {
    /// The full URL, password included.
    fn expose(&self) -> &str;
}

impl ServerUrl for Secret {
    fn expose(&self) -> &str {
        Secret::expose(self)
    }
}

/// Which database the directory lives in.
#[derive(Debug, Clone)]
pub enum DbChoice<S = Secret> {
    /// A SQLite file in a temporary folder.
    Sqlite,
    /// A fresh database on this PostgreSQL server (the URL names the server; the bench
    /// creates and later drops its own database on it).
    Postgres(S),
}

impl<S> DbChoice<S> {
    /// `sqlite` or `postgres`, for the report.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }
}

impl<S: ServerUrl> DbChoice<S> {
    /// The same choice with the server URL in this crate's [`Secret`].
    pub fn to_secret(&self) -> DbChoice {
        match self {
            Self::Sqlite => DbChoice::Sqlite,
            Self::Postgres(url) => DbChoice::Postgres(Secret::new(url.expose())),
        }
    }
}

/// How to build a rig.
#[derive(Debug, Clone)]
pub struct RigOptions {
    /// The simulator's generated organization size.
    pub users: usize,
    /// Departments below the root.
    pub depts: usize,
    /// DingTalk's per-API limit, applied by both the simulator and the service's client.
    pub qps: u32,
    /// The simulator's added latency per call.
    pub latency_ms: u64,
    /// Whether the service runs its background workers (apply, push, catch-up).
    pub workers: bool,
    /// The directory's database.
    pub db: DbChoice,
    /// Seed of the simulator's generated organization.
    pub seed: u64,
    /// Seconds between the service's catch-up runs.
    pub catchup_interval_secs: u64,
    /// Whether events reach the service over Stream mode instead of the HTTP callback.
    pub stream_events: bool,
    /// The `[mapping]`/`[scope]` file the service runs with (none: the identity mapping).
    pub mapping: Option<PathBuf>,
}

impl RigOptions {
    /// A bench rig on `db`: an empty organization of seed 7 at 20 calls/s, no workers, and
    /// catch-up rare enough to add no calls the scenario did not ask for. Scenarios override
    /// what they measure.
    pub fn bench(db: &DbChoice) -> Self {
        Self {
            users: 0,
            depts: 0,
            qps: 20,
            latency_ms: 0,
            workers: false,
            db: db.clone(),
            seed: 7,
            catchup_interval_secs: 3600,
            stream_events: false,
            mapping: None,
        }
    }
}

/// A running simulator + service pair.
pub struct Rig {
    /// The simulated DingTalk.
    pub sim: dingtalk_sim::SimHandle,
    /// `http://127.0.0.1:PORT` of the service.
    pub base: String,
    /// The bearer token the OA API accepts (random per rig).
    pub api_token: Secret,
    /// The bearer token SCIM accepts (random per rig).
    pub scim_token: Secret,
    /// The callback token the receiver verifies signatures with (random per rig).
    pub callback_token: Secret,
    /// The callback AES key (random per rig).
    pub aes_key: Secret,
    /// The owner key the receiver expects inside each encrypted push (the client id).
    pub owner_key: String,
    /// The receiver's path below `base`.
    pub callback_path: &'static str,
    /// The sync engine's context, for running the import in-process.
    pub ctx: sync_engine::SyncContext,
    /// The directory, for reading queue depths.
    pub store: Store,
    /// One HTTP client with a connection pool, shared by every request the bench sends.
    pub http: reqwest::Client,
    /// Stops the service.
    stop: CancellationToken,
    /// The running service.
    service: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// Keeps the SQLite file alive until the rig is dropped.
    _dir: tempfile::TempDir,
    /// The PostgreSQL database to drop at the end.
    pg_url: Option<DatabaseUrl>,
    /// The `[mapping]`/`[scope]` file the service runs with.
    mapping: Option<PathBuf>,
}

impl std::fmt::Debug for Rig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rig")
            .field("base", &self.base)
            .field("sim", &self.sim.base_url())
            .finish_non_exhaustive()
    }
}

fn random_text(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Starts a simulator with the options' organization, rate limit and latency.
pub async fn start_sim(options: &RigOptions) -> anyhow::Result<dingtalk_sim::SimHandle> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    dingtalk_sim::start(
        dingtalk_sim::SimConfig {
            users: options.users,
            depts: options.depts,
            seed: options.seed,
            qps: options.qps,
            latency_ms: options.latency_ms,
            ..Default::default()
        },
        listener,
    )
    .await
    .context("cannot start the simulator")
}

/// Creates the directory's database: a file in `dir`, or a fresh database on the PostgreSQL
/// server (returned too, to drop at the end).
async fn create_directory(
    db: &DbChoice,
    dir: &tempfile::TempDir,
) -> anyhow::Result<(DatabaseUrl, Option<DatabaseUrl>)> {
    match db {
        DbChoice::Sqlite => Ok((
            DatabaseUrl::sqlite_file(&dir.path().join("dingsync.db")),
            None,
        )),
        DbChoice::Postgres(server) => {
            let server =
                DatabaseUrl::parse(server.expose()).context("the PostgreSQL URL is not valid")?;
            let name = format!("dingsync_bench_{}", random_text(10).to_lowercase());
            let url = server.with_database(&name);
            url.create_database()
                .await
                .context("cannot create the bench database on the PostgreSQL server")?;
            Ok((url.clone(), Some(url)))
        }
    }
}

impl Rig {
    /// Waits until the outbox is empty; fails on a dead letter or after `patience` from `started`.
    pub async fn wait_drained(
        &self,
        started: std::time::Instant,
        patience: Duration,
    ) -> anyhow::Result<()> {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            tick.tick().await;
            let depth = self.store.outbox_depth().await?;
            anyhow::ensure!(
                depth.dead == 0,
                "{} pushes ended as dead letters",
                depth.dead
            );
            if depth.pending + depth.claimed == 0 {
                return Ok(());
            }
            anyhow::ensure!(
                started.elapsed() < patience,
                "the outbox did not drain within {patience:?} ({} left)",
                depth.pending + depth.claimed
            );
        }
    }

    /// Starts the simulator, creates the directory and starts the service.
    pub async fn start(service: &dyn Service, options: &RigOptions) -> anyhow::Result<Self> {
        let sim = start_sim(options).await?;
        Self::with_sim(service, sim, options).await
    }

    /// Creates the directory and starts the service against a simulator already running (the
    /// demo narrates between the two and may switch the simulator to Stream mode first). The
    /// API token, callback token and AES key are random per rig.
    pub async fn with_sim(
        service: &dyn Service,
        sim: dingtalk_sim::SimHandle,
        options: &RigOptions,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("cannot create a temporary folder")?;
        let (database_url, pg_url) = create_directory(&options.db, &dir).await?;
        let spec = ServiceSpec {
            qps: options.qps,
            database_url,
            api_token: Secret::new(random_text(32)),
            scim_token: Secret::new(random_text(32)),
            callback_token: Secret::new(random_text(16)),
            aes_key: Secret::new(random_text(43)),
            workers: options.workers,
            catchup_interval_secs: options.catchup_interval_secs,
            stream_events: options.stream_events,
            mapping: options.mapping.clone(),
        };
        let stop = CancellationToken::new();
        let running = service.start(&sim, &spec, stop.clone()).await?;
        if spec.mapping.is_some() {
            // A fresh directory: the rules it starts with are the approved ones (as after a
            // first import), so the workers are not held waiting for an approval.
            sync_engine::approval::approve(
                &running.ctx.store,
                &running.ctx.policy.rules,
                running.ctx.now_ms(),
            )
            .await
            .context("cannot record the mapping as approved")?;
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(1024)
            .build()?;
        Ok(Self {
            owner_key: sim.config().client_id.clone(),
            callback_path: running.callback_path,
            sim,
            base: format!("http://{}", running.addr),
            api_token: spec.api_token,
            scim_token: spec.scim_token,
            callback_token: spec.callback_token,
            aes_key: spec.aes_key,
            store: running.ctx.store.clone(),
            ctx: running.ctx,
            http,
            stop,
            service: running.task,
            _dir: dir,
            pg_url,
            mapping: spec.mapping,
        })
    }

    /// Which `[mapping]`/`[scope]` the service runs with, for a report: `identity`, or the file
    /// and the fingerprint of the rules compiled from it.
    pub fn mapping_report(&self) -> Value {
        match (&self.mapping, self.ctx.policy.rules.fingerprint()) {
            (Some(file), Some(fingerprint)) => serde_json::json!({
                "file": file.display().to_string(),
                "fingerprint": fingerprint.0,
            }),
            (Some(file), None) => serde_json::json!({
                "file": file.display().to_string(),
                "fingerprint": sync_engine::approval::IDENTITY,
            }),
            (None, _) => Value::String(sync_engine::approval::IDENTITY.to_owned()),
        }
    }

    /// The full import of the simulator's organization, in-process (no progress shown).
    pub async fn import(&self) -> anyhow::Result<sync_engine::import::ImportReport> {
        let report = sync_engine::import::import(
            &self.ctx,
            &sync_engine::import::ImportOptions::default(),
            &sync_engine::import::NoProgress,
            &CancellationToken::new(),
        )
        .await
        .context("the import failed")?;
        Ok(report)
    }

    /// Subscribes the service to the simulator's event pushes.
    pub async fn subscribe_callbacks(&self) -> anyhow::Result<()> {
        let body = serde_json::json!({
            "url": format!("{}{}", self.base, self.callback_path),
            "token": self.callback_token.expose(),
            "aes_key": self.aes_key.expose(),
        });
        self.sim_send(reqwest::Method::POST, "/_sim/callback", Some(body))
            .await
            .context("subscribing the service to the simulator's pushes")?;
        Ok(())
    }

    /// Calls a `/_sim` admin route and returns its JSON body (an error unless 2xx).
    pub async fn sim_send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.sim.base_url()));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("calling {path}"))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(status.is_success(), "{path}: HTTP {status}: {body}");
        Ok(body)
    }

    /// Calls the OA API (`path` below `/api/v1`) and returns the status and JSON body.
    pub async fn oa_send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(reqwest::StatusCode, Value)> {
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(self.api_token.expose());
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("calling {path}"))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    /// Per-API call counts the simulator saw (`/_sim/calls` `by_path.*.calls`).
    pub async fn sim_calls(&self) -> anyhow::Result<std::collections::BTreeMap<String, u64>> {
        let body = self
            .sim_send(reqwest::Method::GET, "/_sim/calls", None)
            .await?;
        Ok(body["by_path"]
            .as_object()
            .map(|paths| {
                paths
                    .iter()
                    .map(|(path, c)| (path.clone(), c["calls"].as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The OA id of the root department (after an import).
    pub async fn root_department(&self) -> anyhow::Result<i64> {
        let (_, list) = self
            .oa_send(reqwest::Method::GET, "/departments?limit=1000", None)
            .await?;
        list["items"]
            .as_array()
            .and_then(|ds| ds.iter().find(|d| d["parent"].is_null()))
            .and_then(|d| d["id"].as_i64())
            .context("the OA directory has no root department")
    }

    /// Stops the service and the simulator and drops a PostgreSQL database.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.stop.cancel();
        let served = self.service.await.context("the service task panicked")?;
        self.sim.shutdown().await;
        if let Some(url) = &self.pg_url {
            // Best effort: a leftover bench database costs disk, not correctness.
            if let Err(e) = url.drop_database().await {
                tracing::warn!(error = %e, "could not drop the bench database");
            }
        }
        served
    }
}
