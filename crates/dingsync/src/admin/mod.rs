//! The admin console's backend: [`Admin`] implements `console::AdminBackend` over the store,
//! the sync engine and the service's own state, and [`mount`] gives `serve` the console's
//! router (issue 16).
//!
//! Why a folder: each page's data comes from different places (the store's directory and
//! queues, the client's counters, the Stream state, the engine's plan), and each file here
//! owns one page's answer, so "where does the overview's backlog come from?" is one file.
//!
//! # Layout
//! - `config`: the `[console]` section and the console's session key (file, environment,
//!   or generated once and kept in the database).
//! - `users`: console users in the database and `dingsync console add-user`.
//! - `overview`: health and readiness with reasons, budgets, token, events, backlogs.
//! - `directory`: user search, the department tree and the roles, each row with its sync
//!   state.
//! - `object`: one object's two sides (DingTalk's fetched live) and its timeline.
//! - `attention`: holds, conflicts, soft matches and dead letters.
//! - `mapping_change`: a changed `[mapping]`/`[scope]` waiting for approval, and approving it.
//! - `plan`: the engine's plan as the console's diff.
//! - `runs`: the run history, and recording runs the console starts.
//! - `actions`: `perform`, every operator action, each written to the operator audit log.
//! - `soft_match`: deciding an ambiguous soft match (link a candidate, or create new).
//! - `audit`: the audit search (directory changes and operator actions together).
//! - `settings`: the effective configuration, secrets redacted, with each value's source.
//! - `prune`: the background task that drops history older than the retention.
//! - `time`: Unix milliseconds as the dates pages show.

mod actions;
mod attention;
mod audit;
pub mod config;
mod directory;
mod mapping_change;
mod object;
mod overview;
mod plan;
mod prune;
pub(crate) mod runs;
mod settings;
mod soft_match;
mod time;
pub mod users;

use std::sync::{Arc, Mutex};

use console::views::{
    ActionOutcome, Actor, Attention, AuditPage, AuditQuery, DepartmentQuery, DepartmentTree,
    ObjectDetail, ObjectKind, OperatorAction, Overview, PlanQuery, PlanView, RoleTree, RunDetail,
    RunList, SettingsView, UserList, UserQuery,
};
use console::{AdminBackend, BackendError, ConsoleUser};
use directory_store::Store;
use sync_engine::SyncContext;
use tokio::sync::watch;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::stream::StreamStatus;

pub use config::ConsoleSection;
pub use prune::spawn_pruner;

/// What the console's pages read and its actions change; cheap to clone.
#[derive(Clone)]
pub struct Admin {
    /// The directory, queues, history and console users.
    store: Store,
    /// The engine, when DingTalk credentials are configured: plan, push, re-fetch, import.
    sync: Option<SyncContext>,
    /// The Stream connection's state (Stream mode only).
    stream: Option<watch::Receiver<StreamStatus>>,
    /// The effective configuration (settings page, thresholds, qps).
    config: Arc<Config>,
    clock: SharedClock,
    /// The client's call counters at the previous look at the overview (see `overview`).
    budget_sample: Arc<Mutex<Option<overview::Sample>>>,
    /// The deletion threshold in effect (a SIGHUP replaces it), shared with the engine and
    /// SCIM; `None` when the service runs without one.
    deletions: Option<sync_engine::LiveThreshold>,
    /// The last plan computed for the plan page, and the computation under way.
    plans: plan::PlanCache,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("engine", &self.sync.is_some())
            .field("stream", &self.stream.is_some())
            .finish_non_exhaustive()
    }
}

impl Admin {
    pub fn new(
        store: Store,
        sync: Option<SyncContext>,
        stream: Option<watch::Receiver<StreamStatus>>,
        config: Config,
        clock: SharedClock,
    ) -> Self {
        Self {
            store,
            sync,
            stream,
            config: Arc::new(config),
            clock,
            budget_sample: Arc::default(),
            deletions: None,
            plans: plan::PlanCache::default(),
        }
    }

    /// The same backend showing `deletions` as the threshold in effect (the handle SIGHUP
    /// replaces).
    pub fn with_deletions(mut self, deletions: sync_engine::LiveThreshold) -> Self {
        self.deletions = Some(deletions);
        self
    }

    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The engine, or a refusal saying why there is none.
    fn sync(&self) -> Result<&SyncContext, BackendError> {
        self.sync.as_ref().ok_or_else(|| {
            BackendError::Refused(
                "DingTalk is not configured ([dingtalk] client_id), so nothing can be sent to \
                 or fetched from it"
                    .to_owned(),
            )
        })
    }
}

/// A store or engine failure: logged by the console with its cause chain, shown opaquely.
pub(crate) fn internal(error: impl std::error::Error + Send + Sync + 'static) -> BackendError {
    BackendError::Internal(Box::new(error))
}

/// The console's router over `admin`, with its configuration made from `[console]`.
pub async fn mount(admin: Admin, section: &ConsoleSection) -> anyhow::Result<axum::Router> {
    let console_config = config::console_config(section, &admin.store, admin.now_ms()).await?;
    Ok(console::router(Arc::new(admin), console_config))
}

impl AdminBackend for Admin {
    async fn console_user(&self, name: &str) -> Result<Option<ConsoleUser>, BackendError> {
        users::lookup(&self.store, name).await
    }

    async fn overview(&self) -> Result<Overview, BackendError> {
        overview::overview(self).await
    }

    async fn attention_count(&self) -> Result<u64, BackendError> {
        attention::count(self).await
    }

    async fn users(&self, query: &UserQuery) -> Result<UserList, BackendError> {
        directory::users(self, query).await
    }

    async fn departments(&self, query: &DepartmentQuery) -> Result<DepartmentTree, BackendError> {
        directory::departments(self, query).await
    }

    async fn roles(&self) -> Result<RoleTree, BackendError> {
        directory::roles(self).await
    }

    async fn object(&self, kind: ObjectKind, id: &str) -> Result<ObjectDetail, BackendError> {
        object::object(self, kind, id).await
    }

    async fn attention(&self) -> Result<Attention, BackendError> {
        attention::attention(self).await
    }

    async fn plan(&self, query: &PlanQuery) -> Result<PlanView, BackendError> {
        plan::plan_view(self, query).await
    }

    async fn runs(&self) -> Result<RunList, BackendError> {
        runs::list(self).await
    }

    async fn run(&self, id: &str) -> Result<RunDetail, BackendError> {
        runs::detail(self, id).await
    }

    async fn audit(&self, query: &AuditQuery) -> Result<AuditPage, BackendError> {
        audit::search(self, query).await
    }

    async fn settings(&self) -> Result<SettingsView, BackendError> {
        let live = self
            .deletions
            .as_ref()
            .or(self.sync.as_ref().map(|s| &s.deletions))
            .map(sync_engine::LiveThreshold::get);
        Ok(settings::settings(&self.config, live))
    }

    async fn perform(
        &self,
        actor: &Actor,
        action: &OperatorAction,
    ) -> Result<ActionOutcome, BackendError> {
        actions::perform(self, actor, action).await
    }
}
