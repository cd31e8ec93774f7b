//! `dingsync serve`: the HTTP service and its background workers, assembled from the config.
//!
//! Shape (after zero2prod and mini-redis): [`Application::build`] does everything that can fail
//! at start-up (config, database, listener) and binds the socket, so a caller (a test, the demo)
//! can read [`Application::port`] before [`Application::run_until_stopped`] serves until the
//! given cancellation token fires. Tests bind port 0 and stop the service when they like.
//!
//! Routes: `POST /callbacks/dingtalk` (DingTalk's event push, when `[callback]` is configured),
//! `/api/v1/...` (the OA API), `/console` and `/api/v1/admin/...` (the admin console, see
//! [`crate::admin`]), `/healthz` (the process is up), `/readyz` (the database answers
//! and, when DingTalk credentials are set, a token can be had), `/metrics` (Prometheus).
//!
//! Listeners: the callback route must face the internet, the OA API, `/metrics` and OpenAPI
//! should not. `server.internal_listen` (when set and different from `server.listen`) gives the
//! latter a listener of their own, and `server.listen` then serves only the callback route and
//! the probes; unset, everything shares `server.listen` as before.
//!
//! Several instances (PostgreSQL): each instance names itself once, at build time
//! ([`instance_id`]: host, pid and a random suffix), and uses that name for its queue claims,
//! job leases and rate-budget slots, so two instances never mistake each other's claims. The
//! DingTalk client draws on the rate budget shared through the database
//! (`sync_engine::SharedBudget`, in a small pool of its own so a busy directory cannot delay
//! it) unless `[dingtalk] rate_budget = "local"`. On SQLite too: a one-shot command run beside
//! `serve` is a second process calling DingTalk for the same app (with a budget each the two
//! drew 90018s and `plan` failed, issue 18). There the slots live in a sidecar file beside the
//! database (`directory_store::slots`), so their writes never contend with the directory's for
//! SQLite's one write lock.
//!
//! What every part of one service shares — the clock, the metrics recorder and the operations
//! counters — is made once in [`Application::build`] as [`Shared`] and handed to each part
//! through its state; nothing is process-wide, so several services in one process (tests, the
//! bench) keep their own.

use std::net::SocketAddr;

use anyhow::Context;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use directory_store::{DatabaseUrl, Store, StoreOptions};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::clock::{SharedClock, system_clock};
use crate::config::{Config, EventsMode, RateBudgetMode};
use crate::ops_stats::{self, OpsStats, Site};
use crate::readiness::Verdict;
use crate::telemetry::Telemetry;
use crate::{api, callback, stream, workers};
use sync_engine::error_chain;

/// What every part of one service shares (see the module doc); cheap to clone.
#[derive(Debug, Clone)]
pub struct Shared {
    /// "Now" for the engine, the OA API, the receiver, the Stream client and the counters.
    pub clock: SharedClock,
    /// The service's metrics recorder, rendered at `/metrics`.
    pub telemetry: Telemetry,
    /// The operations counters `dingsync status` reads (see `ops_stats`).
    pub stats: OpsStats,
}

impl Shared {
    /// Fresh counters and recorder on `clock`.
    pub fn new(clock: SharedClock) -> Self {
        Self {
            stats: OpsStats::new(clock.clone()),
            telemetry: Telemetry::new(),
            clock,
        }
    }
}

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
    /// The streak of failed DingTalk probes, judged against the grace period.
    reachability: crate::readiness::Reachability,
    /// In Stream mode, the connection's state: not connected means events are not arriving.
    stream: Option<watch::Receiver<stream::StreamStatus>>,
    /// The probe counts a failed database check; `/metrics` renders the recorder.
    shared: Shared,
    /// With `[[orgs]]`: each org's DingTalk client, probe streak and Stream state.
    orgs: Vec<OrgProbe>,
}

/// What `/readyz` probes for one org of several.
#[derive(Clone)]
struct OrgProbe {
    name: String,
    dingtalk: dingtalk_client::DingTalkClient,
    reachability: crate::readiness::Reachability,
    stream: Option<watch::Receiver<stream::StreamStatus>>,
}

/// A built, bound, not yet running service.
pub struct Application {
    listener: TcpListener,
    router: Router,
    /// The internal listener and its routes when `server.internal_listen` splits the service.
    internal: Option<(TcpListener, Router)>,
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
    /// This instance's name in claims, leases and rate slots (see the module doc).
    instance: String,
    /// The clock, recorder and counters every part shares.
    shared: Shared,
    /// What SIGHUP replaces live (`crate::reload`): the OA API's tokens, the deletion threshold.
    live: crate::reload::Live,
    /// With `[[orgs]]`, one runtime per organization (`crate::orgs`); empty otherwise.
    orgs: Vec<crate::orgs::OrgRuntime>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("addr", &self.listener.local_addr().ok())
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Connects the database (running migrations), builds the routes and binds `server.listen`
    /// (and `server.internal_listen`).
    ///
    /// Over 80 lines: it is the service's wiring diagram (store, client, shared state, the
    /// public and internal routers, listeners, workers' context) in build order; each part is
    /// built by its own module and this only connects them.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let store = open_store(config).await?;
        let instance = instance_id();
        // With `[[orgs]]` each org has its own client (`crate::orgs`); `[dingtalk]`'s is unused.
        let dingtalk = if config.dingtalk.client_id.is_empty() || !config.orgs.is_empty() {
            None
        } else {
            Some(dingtalk_client_for(config, &store, &instance).await?)
        };
        let shared = Shared::new(system_clock());
        let ops_client = dingtalk.clone();
        // In Stream mode the connection is opened when the service runs; readiness follows it.
        let stream_channel = (config.events.mode == EventsMode::Stream && config.orgs.is_empty())
            .then(|| watch::channel(stream::StreamStatus::default()));
        let ops = OpsState {
            store: store.clone(),
            dingtalk,
            reachability: crate::readiness::Reachability::new(std::time::Duration::from_secs(
                config.dingtalk.ready_grace_secs,
            )),
            stream: stream_channel.as_ref().map(|(_, rx)| rx.clone()),
            shared: shared.clone(),
            orgs: Vec::new(),
        };
        let apply_wake = std::sync::Arc::new(tokio::sync::Notify::new());
        // One deletion threshold for the engine and SCIM, which SIGHUP replaces live.
        let deletions = sync_engine::LiveThreshold::new(workers::deletion_threshold(config));
        let orgs = build_orgs(config, &store, &instance, &shared, &deletions).await?;
        let mut ops = ops;
        ops.orgs = orgs
            .iter()
            .map(|o| OrgProbe {
                name: o.name.clone(),
                dingtalk: o.sync.client.clone(),
                reachability: crate::readiness::Reachability::new(std::time::Duration::from_secs(
                    config.dingtalk.ready_grace_secs,
                )),
                stream: o.stream_watch.clone(),
            })
            .collect();
        let probes = Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .with_state(ops.clone());
        let mut public = probes.clone();
        let single_callback = if config.orgs.is_empty() {
            callback::CallbackState::from_config(config, store.clone(), shared.clock.clone())
                .context("callback settings ([callback] token / aes_key / owner_key)")?
        } else {
            None
        };
        if let Some(state) = single_callback {
            public = public.merge(callback::router(state.with_wake(apply_wake.clone())));
        }
        public = public.merge(org_callbacks(&orgs, &shared)?);
        let tokens = config
            .api
            .tokens
            .iter()
            .map(|t| api::ApiToken::unnamed(t.expose()))
            .collect();
        let api_state = api::ApiState::new(store.clone(), tokens).with_clock(shared.clock.clone());
        let api_tokens = api_state.tokens.clone();
        // SCIM faces the IdPs on the internet and authenticates every request itself, so it is
        // on the public listener (design: "Surfaces").
        let scim_state = crate::scim::ScimState {
            store: store.clone(),
            settings: std::sync::Arc::new(crate::scim::ScimSettings {
                deletions: deletions.clone(),
                ..config.scim.settings()
            }),
            clock: shared.clock.clone(),
        };
        let public = public.merge(crate::scim::router(scim_state));
        let sync = ops_client.map(|client| {
            sync_engine::SyncContext::new(store.clone(), client, workers::policy(config))
                .with_deletions(deletions.clone())
                .with_actor(format!("dingsync@{instance}"))
                .with_clock(shared.clock.clone())
        });
        // The console acts on the first org when the service runs several.
        let console_sync = sync
            .clone()
            .or_else(|| orgs.first().map(|o| o.sync.clone()));
        let mut internal = Router::new()
            .route("/metrics", get(metrics))
            .with_state(ops)
            .merge(api::router(api_state));
        // The console is for administrators: on the internal listener (with the OA API).
        if config.console.enabled {
            let admin = crate::admin::Admin::new(
                store.clone(),
                console_sync,
                stream_channel.as_ref().map(|(_, rx)| rx.clone()),
                config.clone(),
                shared.clock.clone(),
            )
            .with_deletions(deletions.clone());
            internal = internal.merge(crate::admin::mount(admin, &config.console).await?);
        }
        let (router, internal) = match config.server.split_internal() {
            None => (public.merge(internal), None),
            Some(addr) => (public, Some((addr, probes.merge(internal)))),
        };
        let layered = |router: Router| {
            router
                .layer(from_fn_with_state(
                    shared.stats.clone(),
                    ops_stats::count_unavailable,
                ))
                .layer(from_fn_with_state(shared.telemetry.clone(), in_telemetry))
        };
        let listener = bind(&config.server.listen, "server.listen").await?;
        let internal = match internal {
            Some((addr, router)) => {
                Some((bind(addr, "server.internal_listen").await?, layered(router)))
            }
            None => None,
        };
        let router = layered(router);
        Ok(Self {
            listener,
            router,
            internal,
            store,
            stream_status: stream_channel.map(|(tx, _)| tx),
            sync,
            start_workers: config.sync.workers,
            config: config.clone(),
            apply_wake,
            instance,
            shared,
            live: crate::reload::Live {
                tokens: api_tokens,
                deletions,
            },
            orgs,
        })
    }

    /// What a configuration reload replaces live (the OA API's tokens, the deletion threshold).
    pub fn live(&self) -> crate::reload::Live {
        self.live.clone()
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

    /// The address of the OA API, `/metrics` and OpenAPI: the internal listener when the
    /// service is split, else the one address.
    pub fn internal_addr(&self) -> SocketAddr {
        match &self.internal {
            Some((listener, _)) => listener
                .local_addr()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0))),
            None => self.local_addr(),
        }
    }

    /// Whether the OA API has a listener of its own (`server.internal_listen`).
    pub fn is_split(&self) -> bool {
        self.internal.is_some()
    }

    /// The store the service writes to (the demo and tests read it to check results).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves until `shutdown` fires, then finishes in-flight requests and returns.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(addr = ?self.listener.local_addr().ok(), "dingsync serving");
        let mut workers = match (&self.sync, self.start_workers) {
            (Some(ctx), true) => Some(workers::spawn(
                ctx.clone(),
                &self.config,
                &self.instance,
                self.apply_wake.clone(),
                &self.shared,
                &shutdown,
            )),
            _ => None,
        };
        let (mut org_workers, org_streams) = self.start_orgs(&shutdown).await;
        let stream_task = self.stream_status.map(|status| {
            let d = &self.config.dingtalk;
            let cfg = stream::StreamConfig::new(
                &stream::api_base_for(&d.base_url),
                &d.client_id,
                d.client_secret.expose(),
            );
            tokio::spawn(self.shared.telemetry.scope(stream::run(
                cfg,
                self.store.clone(),
                shutdown.clone(),
                status,
                self.shared.clock.clone(),
            )))
        });
        let internal = self.internal.map(|(listener, router)| {
            let stop = shutdown.clone();
            tokio::spawn(async move {
                let app = router.into_make_service_with_connect_info::<SocketAddr>();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await
            })
        });
        let stop = shutdown.clone();
        let pruner = self.config.console.enabled.then(|| {
            crate::admin::spawn_pruner(
                self.store.clone(),
                self.shared.clock.clone(),
                self.config.console.history_retention_days,
                shutdown.clone(),
            )
        });
        // Connect-info: the console's sign-in throttle counts failures per client address.
        let app = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        let mut served = axum::serve(self.listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
            .context("the HTTP server failed");
        shutdown.cancel();
        if let Some(task) = internal {
            let outcome = match task.await {
                Ok(result) => result.context("the internal HTTP server failed"),
                Err(e) => Err(anyhow::anyhow!("the internal HTTP server stopped: {e}")),
            };
            served = served.and(outcome);
        }
        // The workers finish their current item and release their leases before the store
        // closes; whatever they had claimed is taken over by the next run after the lease.
        shutdown.cancel();
        if let Some(set) = workers.as_mut() {
            while set.join_next().await.is_some() {}
        }
        for set in &mut org_workers {
            while set.join_next().await.is_some() {}
        }
        for task in org_streams {
            let _ = task.await;
        }
        if let Some(task) = stream_task {
            let _ = task.await;
        }
        if let Some(task) = pruner {
            let _ = task.await;
        }
        self.store.close().await;
        served
    }

    /// The sync engine context (for the demo and the CLI's one-shot commands).
    pub fn sync_context(&self) -> Option<&sync_engine::SyncContext> {
        self.sync.as_ref()
    }

    /// The runtimes of `[[orgs]]` (empty for a single-org configuration).
    pub fn orgs(&self) -> &[crate::orgs::OrgRuntime] {
        &self.orgs
    }

    /// Starts every org's runtime: links its root, then its workers and Stream client. An org
    /// whose root cannot be linked is logged and left out; the others start regardless.
    async fn start_orgs(
        &self,
        shutdown: &CancellationToken,
    ) -> (
        Vec<tokio::task::JoinSet<()>>,
        Vec<tokio::task::JoinHandle<()>>,
    ) {
        let (mut workers, mut streams) = (Vec::new(), Vec::new());
        for (org, section) in self.orgs.iter().zip(self.config.effective_orgs()) {
            let now = self.shared.clock.now_ms();
            if let Err(e) = crate::orgs::ensure_root(&org.store, &section, now).await {
                tracing::error!(org = %org.name, error = %format!("{e:#}"), "organization not started");
                continue;
            }
            if self.start_workers {
                workers.push(workers::spawn(
                    org.sync.clone(),
                    &org.config,
                    &self.instance,
                    org.apply_wake.clone(),
                    &self.shared,
                    shutdown,
                ));
            }
            if let Some(status) = &org.stream_status {
                let d = &org.config.dingtalk;
                let cfg = stream::StreamConfig::new(
                    &stream::api_base_for(&d.base_url),
                    &d.client_id,
                    d.client_secret.expose(),
                );
                streams.push(tokio::spawn(self.shared.telemetry.scope(stream::run(
                    cfg,
                    org.store.clone(),
                    shutdown.clone(),
                    status.clone(),
                    self.shared.clock.clone(),
                ))));
            }
        }
        (workers, streams)
    }
}

/// The runtimes of `[[orgs]]`, in file order (none without `[[orgs]]`).
async fn build_orgs(
    config: &Config,
    store: &Store,
    instance: &str,
    shared: &Shared,
    deletions: &sync_engine::LiveThreshold,
) -> anyhow::Result<Vec<crate::orgs::OrgRuntime>> {
    // One set of budgets for every org: each app has its own windows, and all share the IP's.
    let budgets = crate::budgets::Budgets::open(config, store, instance).await?;
    let build = crate::orgs::Build {
        config,
        store,
        instance,
        budgets: &budgets,
        clock: shared.clock.clone(),
        deletions: deletions.clone(),
    };
    let mut orgs = Vec::new();
    for section in &config.orgs {
        orgs.push(crate::orgs::OrgRuntime::build(section, &build).await?);
    }
    Ok(orgs)
}

/// Each org's callback route at `/callbacks/dingtalk/{org}`; the old path too when there is
/// one org, or for the org named `default`.
fn org_callbacks(orgs: &[crate::orgs::OrgRuntime], shared: &Shared) -> anyhow::Result<Router> {
    let mut router = Router::new();
    for org in orgs {
        let state = callback::CallbackState::from_config(
            &org.config,
            org.store.clone(),
            shared.clock.clone(),
        )
        .with_context(|| {
            format!(
                "org {}: callback_token / callback_aes_key / owner_key",
                org.name
            )
        })?;
        let Some(state) = state else { continue };
        let state = state.with_wake(org.apply_wake.clone());
        router = router.merge(callback::router_at(
            state.clone(),
            &crate::orgs::callback_path(&org.name),
        ));
        if orgs.len() == 1 || org.name == directory_store::DEFAULT_ORG {
            router = router.merge(callback::router(state));
        }
    }
    Ok(router)
}

/// Binds `addr` (the config key `key`), saying which key and why when it cannot.
async fn bind(addr: &str, key: &str) -> anyhow::Result<TcpListener> {
    let addr: SocketAddr = addr
        .trim()
        .parse()
        .with_context(|| format!("{key} is not an address"))?;
    TcpListener::bind(addr)
        .await
        .map_err(|e| listen_error(addr, key, e))
}

/// The database as configured (`[database] url`, `max_connections`,
/// `sqlite_busy_timeout_ms`), migrated to the current schema; scoped to the org of a
/// configuration derived for one org (`Config::for_org`).
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let url = DatabaseUrl::parse(config.database.url.expose())
        .context("cannot open the database (database.url)")?;
    let options = StoreOptions {
        max_connections: config.database.max_connections.max(1),
        sqlite_busy_timeout: std::time::Duration::from_millis(
            config.database.sqlite_busy_timeout_ms,
        ),
        ..StoreOptions::default()
    };
    let store = Store::connect_with(&url, options)
        .await
        .context("cannot open the database (database.url)")?;
    Ok(match &config.org_scope {
        Some(org) => store.for_org(org),
        None => store,
    })
}

/// Connections of the shared rate budget's own pool: takes and releases are short statements,
/// and within a process a few tasks per API path ask at a time.
pub const BUDGET_CONNECTIONS: u32 = 6;

/// A name for this process that no other instance shares: host, pid and a random suffix (the
/// pid alone repeats across hosts and containers, the host alone across restarts).
pub fn instance_id() -> String {
    // No portable hostname call in std: the environment, then the kernel's file, else a
    // placeholder (uniqueness comes from the pid and the random suffix anyway).
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    format!(
        "{host}:{}:{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// Whether `holder` (a lease holder or worker name built on [`instance_id`], with an optional
/// `role@` prefix and `:suffix`) names a process on this host that no longer runs.
///
/// Why: a killed `dingsync import` leaves its lease for the lease's whole length (ten minutes,
/// so that a slow crawl page cannot lose it), and rerunning the import — the documented way to
/// resume — would be refused meanwhile. A process on the same host can be checked directly; a
/// holder on another host (or in another container) is never judged dead here and runs out by
/// itself. A recycled pid only makes us wait, never take over from a live holder wrongly,
/// except in the rare case where the pid now belongs to an unrelated process: then we wait too.
pub fn holder_is_dead_local_process(holder: &str) -> bool {
    let id = holder.rsplit_once('@').map_or(holder, |(_, id)| id);
    let mut parts = id.split(':');
    let (Some(host), Some(pid)) = (parts.next(), parts.next()) else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    let ours = instance_id();
    let our_host = ours.split(':').next().unwrap_or_default();
    host == our_host
        && pid != std::process::id()
        && std::path::Path::new("/proc/self").exists()
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether the configuration asks for the rate budget shared by every process on the database:
/// `auto` (the default) and `shared` do on both backends; on SQLite the slots live in a
/// sidecar file beside the database (`directory_store::slots`), because in the directory's
/// own file every slot write waited for SQLite's one write lock behind the import's batch
/// writes ("database is locked" in `crash_anywhere` and the 5,000-person demo).
pub fn shares_budget(config: &Config) -> bool {
    match config.dingtalk.rate_budget {
        RateBudgetMode::Local => false,
        RateBudgetMode::Auto | RateBudgetMode::Shared => true,
    }
}

/// The DingTalk client of the one org of `[dingtalk]`, on the budgets of
/// [`crate::budgets::Budgets::open`] (shared by every process on `store`'s database when
/// [`shares_budget`] says so). `instance` names this process in the budget's slots. With
/// several orgs, open the budgets once and build each org's client from them instead.
pub async fn dingtalk_client_for(
    config: &Config,
    store: &Store,
    instance: &str,
) -> anyhow::Result<dingtalk_client::DingTalkClient> {
    crate::budgets::Budgets::open(config, store, instance)
        .await?
        .client(config)
}

/// The DingTalk client as configured (`[dingtalk]`), with rate budgets of this process only.
pub fn dingtalk_client(config: &Config) -> anyhow::Result<dingtalk_client::DingTalkClient> {
    crate::budgets::Budgets::local(config).client(config)
}

/// The client configuration of `[dingtalk]` (host, app, qps).
pub(crate) fn client_config(config: &Config) -> dingtalk_client::ClientConfig {
    let d = &config.dingtalk;
    let mut cfg = dingtalk_client::ClientConfig::new(
        d.client_id.clone(),
        d.client_secret.expose().to_owned(),
    )
    .with_base_url(d.base_url.clone());
    cfg.qps_per_api = d.qps;
    cfg
}

/// Why `serve` cannot listen, and what to do: a busy port names the address and how to find
/// its holder (issue 18: it used to say only "cannot listen").
pub fn listen_error(addr: SocketAddr, key: &str, e: std::io::Error) -> anyhow::Error {
    let advice = match e.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            "{addr} is already in use by another process (another `dingsync serve`?); see which \
             with `ss -ltnp 'sport = :{}'`, stop it, or set {key} to a free address",
            addr.port()
        ),
        std::io::ErrorKind::PermissionDenied => format!(
            "not allowed to listen on {addr}: ports below 1024 need privileges; set \
             {key} to a port above 1024"
        ),
        std::io::ErrorKind::AddrNotAvailable => format!(
            "{} is not an address of this machine; set {key} to one of its addresses \
             or 0.0.0.0",
            addr.ip()
        ),
        _ => format!("check {key} ({addr})"),
    };
    anyhow::Error::new(e).context(format!("cannot listen on {addr}: {advice}"))
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(ops): State<OpsState>) -> impl IntoResponse {
    let mut problems = Vec::new();
    // Bounded: while the database restarts, the pool waits for a connection far longer than a
    // readiness probe should take, and "not ready" is the true answer meanwhile.
    let probe_started_ms = ops.shared.clock.now_ms();
    // The DingTalk probe runs beside the database probe, so one slow answer (a shared rate
    // budget waiting on a restarting database) cannot hide the other's failure.
    let dingtalk_probe = async {
        match &ops.dingtalk {
            Some(client) => Some(ops.reachability.probe(client, probe_started_ms).await),
            None => None,
        }
    };
    let (probe, dingtalk) = tokio::join!(
        tokio::time::timeout(READY_DB_PROBE, ops.store.inbox_depth()),
        dingtalk_probe
    );
    let db_problem = match probe {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(error_chain(&e)),
        Err(_) => Some(format!("no answer within {READY_DB_PROBE:?}")),
    };
    if let Some(problem) = db_problem {
        ops.shared.stats.note_unavailable(
            Site::Readiness,
            problem.clone(),
            // The database has not answered since the probe began.
            probe_started_ms,
        );
        problems.push(format!("database: {problem}"));
    }
    let mut notes = Vec::new();
    match dingtalk {
        None | Some(Verdict::Reachable) => {}
        Some(Verdict::Degraded(note)) => notes.push(note),
        Some(Verdict::NotReady(problem)) => problems.push(problem),
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
    let (org_problems, org_notes) = probe_orgs(&ops.orgs, probe_started_ms).await;
    notes.extend(org_notes);
    problems.extend(org_problems);
    if problems.is_empty() {
        let body = std::iter::once("ready".to_owned())
            .chain(notes)
            .collect::<Vec<_>>();
        (StatusCode::OK, body.join("\n"))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, problems.join("\n"))
    }
}

/// The orgs' part of `/readyz`, as (problems, notes), each line naming its org. One broken org
/// of several is a note, not a problem: the instance still serves the others' callbacks, and a
/// load balancer that dropped it would stop them too. Only when every org is broken is the
/// instance not ready.
async fn probe_orgs(orgs: &[OrgProbe], now_ms: i64) -> (Vec<String>, Vec<String>) {
    let verdicts = futures::future::join_all(orgs.iter().map(|o| async move {
        let mut broken = Vec::new();
        let mut notes = Vec::new();
        match o.reachability.probe(&o.dingtalk, now_ms).await {
            Verdict::Reachable => {}
            Verdict::Degraded(note) => notes.push(format!("org {}: {note}", o.name)),
            Verdict::NotReady(problem) => broken.push(format!("org {}: {problem}", o.name)),
        }
        if let Some(stream) = &o.stream {
            let status = stream.borrow().clone();
            if !status.is_ready() {
                broken.push(format!(
                    "org {}: stream: not connected ({})",
                    o.name,
                    status.last_error.as_deref().unwrap_or("connecting")
                ));
            }
        }
        (broken, notes)
    }))
    .await;
    let all_broken = !verdicts.is_empty() && verdicts.iter().all(|(b, _)| !b.is_empty());
    let (mut problems, mut notes) = (Vec::new(), Vec::new());
    for (broken, n) in verdicts {
        notes.extend(n);
        if all_broken {
            problems.extend(broken);
        } else {
            notes.extend(
                broken
                    .into_iter()
                    .map(|b| format!("{b} (the other orgs run)")),
            );
        }
    }
    (problems, notes)
}

async fn metrics(State(ops): State<OpsState>) -> String {
    ops.shared.telemetry.render()
}

/// The service-wide layer: every request records its metrics into the service's recorder.
async fn in_telemetry(
    State(telemetry): State<Telemetry>,
    request: Request,
    next: Next,
) -> Response {
    telemetry.scope(next.run(request)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_and_shared_share_the_budget_local_does_not() {
        let mut config = Config::default();
        assert!(shares_budget(&config));
        config.dingtalk.rate_budget = RateBudgetMode::Shared;
        assert!(shares_budget(&config));
        config.dingtalk.rate_budget = RateBudgetMode::Local;
        assert!(!shares_budget(&config));
    }

    #[test]
    fn instance_ids_differ_within_one_process() {
        let (a, b) = (instance_id(), instance_id());
        assert_ne!(a, b);
        let pid = std::process::id().to_string();
        assert_eq!(a.split(':').nth(1), Some(pid.as_str()), "{a}");
    }

    #[test]
    fn only_a_finished_process_on_this_host_is_judged_dead() {
        let ours = instance_id();
        let host = ours.split(':').next().unwrap_or_default().to_owned();
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let gone = child.id();
        child.wait().expect("wait for true");
        assert!(holder_is_dead_local_process(&format!(
            "cli@{host}:{gone}:0000abcd:import"
        )));
        // This very process, another host, and names that are not instance ids are alive.
        assert!(!holder_is_dead_local_process(&format!("cli@{ours}:import")));
        assert!(!holder_is_dead_local_process(&format!(
            "cli@{host}-elsewhere:{gone}:0000abcd:import"
        )));
        assert!(!holder_is_dead_local_process("engine"));
        assert!(!holder_is_dead_local_process("cli@host:notapid:import"));
    }
}
