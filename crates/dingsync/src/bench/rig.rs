//! One scenario's world: a simulated DingTalk, a fresh directory (a SQLite file in a temporary
//! folder, or a fresh PostgreSQL database) and the whole service on free ports.
//!
//! Every scenario builds its own [`Rig`] so no scenario sees another's data, rate budget or
//! queues, and tears it down at the end (the PostgreSQL database is dropped). The service is
//! [`Application`], the very code `serve` runs; the bench only changes which workers run, so
//! a figure measures the product, not a bench-only shortcut.

use std::time::Duration;

use anyhow::Context;
use directory_store::{DatabaseUrl, Store};
use rand::Rng;
use rand::distributions::Alphanumeric;
use serde_json::Value;
use sqlx::migrate::MigrateDatabase;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Secret};
use crate::server::Application;

/// Which database the directory lives in.
#[derive(Debug, Clone)]
pub enum DbChoice {
    /// A SQLite file in a temporary folder.
    Sqlite,
    /// A fresh database on this PostgreSQL server (the URL names the server; the bench
    /// creates and later drops its own database on it).
    Postgres(Secret),
}

impl DbChoice {
    /// `sqlite` or `postgres`, for the report.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres(_) => "postgres",
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
}

/// A running simulator + service pair.
pub struct Rig {
    /// The simulated DingTalk.
    pub sim: dingtalk_sim::SimHandle,
    /// `http://127.0.0.1:PORT` of the service.
    pub base: String,
    /// The bearer token the OA API accepts (random per rig).
    pub api_token: Secret,
    /// The callback token the receiver verifies signatures with (random per rig).
    pub callback_token: Secret,
    /// The callback AES key (random per rig).
    pub aes_key: Secret,
    /// The owner key the receiver expects inside each encrypted push (the client id).
    pub owner_key: String,
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

/// Starts a simulator with the given organization.
pub async fn start_sim(
    users: usize,
    depts: usize,
    qps: u32,
    latency_ms: u64,
) -> anyhow::Result<dingtalk_sim::SimHandle> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    dingtalk_sim::start(
        dingtalk_sim::SimConfig {
            users,
            depts,
            seed: 7,
            qps,
            latency_ms,
            ..Default::default()
        },
        listener,
    )
    .await
    .context("cannot start the simulator")
}

impl Rig {
    /// Starts the simulator, creates the directory and starts the service.
    pub async fn start(options: &RigOptions) -> anyhow::Result<Self> {
        let sim = start_sim(
            options.users,
            options.depts,
            options.qps,
            options.latency_ms,
        )
        .await?;
        let dir = tempfile::tempdir().context("cannot create a temporary folder")?;
        let (db_url, pg_url) = match &options.db {
            DbChoice::Sqlite => (
                DatabaseUrl::sqlite_file(&dir.path().join("dingsync.db")),
                None,
            ),
            DbChoice::Postgres(server) => {
                let server = DatabaseUrl::parse(server.expose())
                    .context("the PostgreSQL URL is not valid")?;
                let name = format!("dingsync_bench_{}", random_text(10).to_lowercase());
                let url = server.with_database(&name);
                sqlx::any::install_default_drivers();
                sqlx::Any::create_database(url.expose())
                    .await
                    .context("cannot create the bench database on the PostgreSQL server")?;
                (url.clone(), Some(url))
            }
        };
        let api_token = Secret::new(random_text(32));
        let callback_token = Secret::new(random_text(16));
        let aes_key = Secret::new(random_text(43));

        let mut config = Config::default();
        config.dingtalk.base_url = sim.base_url();
        config.dingtalk.client_id = sim.config().client_id.clone();
        config.dingtalk.client_secret = Secret::new(sim.config().client_secret.clone());
        config.dingtalk.corp_id = sim.config().corp_id.clone();
        config.dingtalk.qps = options.qps;
        config.callback.token = callback_token.clone();
        config.callback.aes_key = aes_key.clone();
        config.database.url = Secret::new(db_url.expose());
        config.server.listen = "127.0.0.1:0".into();
        config.api.tokens = vec![api_token.clone()];
        // Catch-up and reconcile would add calls the scenarios do not ask for.
        config.events.catchup_interval_secs = 3600;
        config.sync.reconcile_interval_secs = 0;
        config.sync.workers = options.workers;
        config.validate()?;

        let app = Application::build(&config).await?;
        let base = format!("http://{}", app.local_addr());
        let ctx = app
            .sync_context()
            .cloned()
            .context("the service has no DingTalk client")?;
        let store = app.store().clone();
        let stop = CancellationToken::new();
        let service = tokio::spawn(app.run_until_stopped(stop.clone()));
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(1024)
            .build()?;
        Ok(Self {
            owner_key: sim.config().client_id.clone(),
            sim,
            base,
            api_token,
            callback_token,
            aes_key,
            ctx,
            store,
            http,
            stop,
            service,
            _dir: dir,
            pg_url,
        })
    }

    /// Subscribes the service to the simulator's event pushes.
    pub async fn subscribe_callbacks(&self) -> anyhow::Result<()> {
        let body = serde_json::json!({
            "url": format!("{}{}", self.base, crate::callback::CALLBACK_PATH),
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
            if let Err(e) = sqlx::Any::force_drop_database(url.expose()).await {
                tracing::warn!(error = %e, "could not drop the bench database");
            }
        }
        served
    }
}
