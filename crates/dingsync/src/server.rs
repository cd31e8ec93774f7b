//! `dingsync serve`: the HTTP service and its background workers, assembled from the config.
//!
//! Shape (after zero2prod and mini-redis): [`Application::build`] does everything that can fail
//! at start-up (config, database, listener) and binds the socket, so a caller (a test, the demo)
//! can read [`Application::port`] before [`Application::run_until_stopped`] serves until the
//! given cancellation token fires. Tests bind port 0 and stop the service when they like.
//!
//! Routes: `POST /callbacks/dingtalk` (DingTalk's event push, when `[callback]` is configured),
//! `/api/v1/...` (the OA API), `/healthz` (the process is up), `/readyz` (the database answers
//! and, when DingTalk credentials are set, a token can be had), `/metrics` (Prometheus).

use std::net::SocketAddr;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use directory_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, EventsMode};
use crate::{api, callback, stream, telemetry, workers};

/// How long `/readyz` waits for the database before it answers "not ready".
const READY_DB_PROBE: std::time::Duration = std::time::Duration::from_secs(2);

/// What the operational routes need to answer.
#[derive(Clone)]
struct OpsState {
    /// Probed by `/readyz`: a service that cannot reach its database is not ready.
    store: Store,
    /// Probed by `/readyz` when credentials are configured (a token proves DingTalk is reachable
    /// and the credentials are right).
    dingtalk: Option<dingtalk_client::DingTalkClient>,
    /// In Stream mode, the connection's state: not connected means events are not arriving.
    stream: Option<watch::Receiver<stream::StreamStatus>>,
}

/// A built, bound, not yet running service.
pub struct Application {
    listener: TcpListener,
    router: Router,
    store: Store,
    /// Where the Stream client publishes its state (Stream mode only).
    stream_status: Option<watch::Sender<stream::StreamStatus>>,
    /// The sync engine's context, when DingTalk credentials are configured.
    sync: Option<sync_engine::SyncContext>,
    /// Whether `run_until_stopped` starts the background workers (`sync.workers`).
    start_workers: bool,
    /// The configuration the workers read their schedules from.
    config: Config,
    /// Shared by the callback route (signals a stored event) and the apply worker (waits on it).
    apply_wake: std::sync::Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("addr", &self.listener.local_addr().ok())
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Connects the database (running migrations), builds the routes and binds `server.listen`.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let store = open_store(config).await?;
        let dingtalk = if config.dingtalk.client_id.is_empty() {
            None
        } else {
            Some(dingtalk_client(config)?)
        };
        // Install the metrics recorder before any route records into it.
        telemetry::prometheus();
        let ops_client = dingtalk.clone();
        // In Stream mode the connection is opened when the service runs; readiness follows it.
        let stream_channel = (config.events.mode == EventsMode::Stream)
            .then(|| watch::channel(stream::StreamStatus::default()));
        let ops = OpsState {
            store: store.clone(),
            dingtalk,
            stream: stream_channel.as_ref().map(|(_, rx)| rx.clone()),
        };
        let apply_wake = std::sync::Arc::new(tokio::sync::Notify::new());
        let mut router = Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .with_state(ops);
        if let Some(state) =
            callback::CallbackState::from_config(config, store.clone(), callback::system_clock())
                .context("callback settings ([callback] token / aes_key / owner_key)")?
        {
            router = router.merge(callback::router(state.with_wake(apply_wake.clone())));
        }
        let tokens = config
            .api
            .tokens
            .iter()
            .map(|t| api::ApiToken::unnamed(t.expose()))
            .collect();
        router = router.merge(api::router(api::ApiState::new(store.clone(), tokens)));
        let addr: SocketAddr = config
            .server
            .listen
            .parse()
            .context("server.listen is not an address")?;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let sync = ops_client.map(|client| {
            sync_engine::SyncContext::new(store.clone(), client, workers::policy(config))
                .with_actor(format!("dingsync-{}", std::process::id()))
        });
        Ok(Self {
            listener,
            router,
            store,
            stream_status: stream_channel.map(|(tx, _)| tx),
            sync,
            start_workers: config.sync.workers,
            config: config.clone(),
            apply_wake,
        })
    }

    /// The bound port (useful when `server.listen` asked for port 0).
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The store the service writes to (the demo and tests read it to check results).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves until `shutdown` fires, then finishes in-flight requests and returns.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(addr = ?self.listener.local_addr().ok(), "dingsync serving");
        let mut workers = match (&self.sync, self.start_workers) {
            (Some(ctx), true) => {
                let instance = format!("{}-{}", std::process::id(), rand::random::<u16>());
                Some(workers::spawn(
                    ctx.clone(),
                    &self.config,
                    &instance,
                    self.apply_wake.clone(),
                    &shutdown,
                ))
            }
            _ => None,
        };
        let stream_task = self.stream_status.map(|status| {
            let d = &self.config.dingtalk;
            let cfg = stream::StreamConfig::new(
                &stream::api_base_for(&d.base_url),
                &d.client_id,
                d.client_secret.expose(),
            );
            tokio::spawn(stream::run(
                cfg,
                self.store.clone(),
                shutdown.clone(),
                status,
            ))
        });
        let stop = shutdown.clone();
        let served = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
            .context("the HTTP server failed");
        // The workers finish their current item and release their leases before the store
        // closes; whatever they had claimed is taken over by the next run after the lease.
        shutdown.cancel();
        if let Some(set) = workers.as_mut() {
            while set.join_next().await.is_some() {}
        }
        if let Some(task) = stream_task {
            let _ = task.await;
        }
        self.store.close().await;
        served
    }

    /// The sync engine context (for the demo and the CLI's one-shot commands).
    pub fn sync_context(&self) -> Option<&sync_engine::SyncContext> {
        self.sync.as_ref()
    }
}

/// The database as configured (`[database] url`, `sqlite_busy_timeout_ms`), migrated to the
/// current schema.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let url = directory_store::DatabaseUrl::parse(config.database.url.expose())
        .context("cannot open the database (database.url)")?;
    let options = directory_store::StoreOptions {
        sqlite_busy_timeout: std::time::Duration::from_millis(
            config.database.sqlite_busy_timeout_ms,
        ),
        ..directory_store::StoreOptions::default()
    };
    Store::connect_with(&url, options)
        .await
        .context("cannot open the database (database.url)")
}

/// The DingTalk client as configured (`[dingtalk]`).
pub fn dingtalk_client(config: &Config) -> anyhow::Result<dingtalk_client::DingTalkClient> {
    let d = &config.dingtalk;
    let mut cfg = dingtalk_client::ClientConfig::new(
        d.client_id.clone(),
        d.client_secret.expose().to_owned(),
    )
    .with_base_url(d.base_url.clone());
    cfg.qps_per_api = d.qps;
    dingtalk_client::DingTalkClient::new(cfg).context("cannot build the DingTalk client")
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(ops): State<OpsState>) -> impl IntoResponse {
    let mut problems = Vec::new();
    // Bounded: while the database restarts, the pool waits for a connection far longer than a
    // readiness probe should take, and "not ready" is the true answer meanwhile.
    let probe_started_ms = crate::clock::now_ms();
    let probe = tokio::time::timeout(READY_DB_PROBE, ops.store.inbox_depth()).await;
    let db_problem = match probe {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(crate::ops_stats::error_chain(&e)),
        Err(_) => Some(format!("no answer within {READY_DB_PROBE:?}")),
    };
    if let Some(problem) = db_problem {
        crate::ops_stats::note_unavailable(
            crate::ops_stats::Site::Readiness,
            problem.clone(),
            // The database has not answered since the probe began.
            probe_started_ms,
        );
        problems.push(format!("database: {problem}"));
    }
    if let Some(client) = &ops.dingtalk
        && let Err(e) = client.ensure_token().await
    {
        problems.push(format!("dingtalk: {e}"));
    }
    if let Some(stream) = &ops.stream {
        let status = stream.borrow().clone();
        if !status.is_ready() {
            problems.push(format!(
                "stream: not connected ({})",
                status.last_error.as_deref().unwrap_or("connecting")
            ));
        }
    }
    if problems.is_empty() {
        (StatusCode::OK, "ready".to_owned())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, problems.join("\n"))
    }
}

async fn metrics() -> String {
    telemetry::prometheus().render()
}

pub use crate::clock::now_ms;
