//! `AdminBackend`: the single seam between the console and the service.
//!
//! The console crate owns presentation, HTTP, sessions and permission checks; the service
//! (`dingsync serve`, phase 2) owns the data and the work. Every page and every JSON route
//! calls exactly one of these methods, so the console and the admin API cannot drift apart,
//! and a test can drive the whole router with an in-memory implementation.
//!
//! Methods return `impl Future + Send` so implementations may simply write `async fn`.
//! Read methods must stay within page budgets (every page under 100 ms p99 at 100,000 people),
//! so they read from the store and cached counters, except `object`, which fetches DingTalk's
//! side live within the client's rate budget and says so when it could not.

use std::future::Future;

use crate::auth::ConsoleUser;
use crate::views::{
    ActionOutcome, Actor, Attention, AuditPage, AuditQuery, DepartmentQuery, DepartmentTree,
    ObjectDetail, ObjectKind, OperatorAction, Overview, PlanQuery, PlanView, RoleTree, RunDetail,
    RunList, SettingsView, UserList, UserQuery,
};

/// What a backend can answer instead of a view. The console shows the first three to the
/// person as they are (they are about their input or the state of things); `Internal` is
/// logged with its cause chain and shown only as an opaque message.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("{what} {id} was not found")]
    NotFound { what: &'static str, id: String },
    /// Input the backend refused, naming the field.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// The action is not possible in the current state (already decided, needs confirmation…),
    /// with the reason in plain words.
    #[error("{0}")]
    Refused(String),
    #[error("the service could not complete the request")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Everything the console needs from the service. See the crate doc for how phase 2
/// implements it.
pub trait AdminBackend: Send + Sync + 'static {
    /// The console user with this name (case as stored), or `None`. The service stores users
    /// with `dingsync console add-user`, hashing with [`crate::auth::hash_password`].
    fn console_user(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<ConsoleUser>, BackendError>> + Send;

    /// The overview page: health, budgets, token, events, backlogs, last runs.
    fn overview(&self) -> impl Future<Output = Result<Overview, BackendError>> + Send;

    /// How many items wait for a person; shown in the navigation on every page, so it must be
    /// cheap (a count query or a cached counter).
    fn attention_count(&self) -> impl Future<Output = Result<u64, BackendError>> + Send;

    /// One page of users matching the search, with each row's sync state.
    fn users(
        &self,
        query: &UserQuery,
    ) -> impl Future<Output = Result<UserList, BackendError>> + Send;

    /// One level of the department tree, one page of it. `NotFound` when `under` names no
    /// department.
    fn departments(
        &self,
        query: &DepartmentQuery,
    ) -> impl Future<Output = Result<DepartmentTree, BackendError>> + Send;

    /// Every role group with its roles.
    fn roles(&self) -> impl Future<Output = Result<RoleTree, BackendError>> + Send;

    /// One object (user, department, role or role group) by OA id: both sides (DingTalk's fetched live), the id mapping and the
    /// timeline, newest first. `NotFound` when there is no such object.
    fn object(
        &self,
        kind: ObjectKind,
        id: &str,
    ) -> impl Future<Output = Result<ObjectDetail, BackendError>> + Send;

    /// Everything waiting for a decision.
    fn attention(&self) -> impl Future<Output = Result<Attention, BackendError>> + Send;

    /// The current plan of both sides (what a reconcile would do now).
    /// One page of it (a plan can have thousands of entries).
    fn plan(
        &self,
        query: &PlanQuery,
    ) -> impl Future<Output = Result<PlanView, BackendError>> + Send;

    /// Run history, newest first, including runs in progress with their progress.
    fn runs(&self) -> impl Future<Output = Result<RunList, BackendError>> + Send;

    /// One run with its log lines. `NotFound` when there is no such run.
    fn run(&self, id: &str) -> impl Future<Output = Result<RunDetail, BackendError>> + Send;

    /// Audit entries matching the search, newest first.
    fn audit(
        &self,
        query: &AuditQuery,
    ) -> impl Future<Output = Result<AuditPage, BackendError>> + Send;

    /// The effective configuration with each value's source. The console redacts secrets
    /// again before showing it (see [`SettingsView::redacted`]), but a backend should never
    /// put a secret's value in a `Plain` setting in the first place.
    fn settings(&self) -> impl Future<Output = Result<SettingsView, BackendError>> + Send;

    /// Performs an operator action on behalf of `actor` and writes it to the audit log with
    /// `actor.name`. The console has already checked that the actor is an operator and the
    /// request's CSRF token; the backend checks the action against the current state (e.g.
    /// refuses `ApplyPlan` over the deletion threshold without `confirm_deletions`).
    fn perform(
        &self,
        actor: &Actor,
        action: &OperatorAction,
    ) -> impl Future<Output = Result<ActionOutcome, BackendError>> + Send;
}
