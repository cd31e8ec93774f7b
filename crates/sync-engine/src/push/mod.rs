//! The outbox pusher: OA changes → DingTalk, in dependency order, idempotently.
//!
//! The store's outbox hands out entries whose dependencies are finished (parent department
//! before child, department before its members, role group before role before assignment; see
//! `directory_store::queue`). For each entry the pusher reads the **current** OA entity — not a
//! stored diff — and makes DingTalk hold exactly that, so a retry, a duplicate claim after a lost
//! lease, or several coalesced OA edits all converge on the same state. After DingTalk accepts,
//! the id map and the base snapshot are saved in one transaction and only then is the entry
//! marked done.
//!
//! # Idempotency (design invariant 3)
//! A crash between DingTalk's success and saving the id map leaves a DingTalk entity dingsync
//! does not know about. The next attempt therefore looks before it creates:
//! - users are created with `userid` = the OA id, so a repeated create answers 60102 and the
//!   pusher adopts the existing user;
//! - departments carry `source_identifier = "dingsync:<oa id>"`; on any attempt after the first
//!   (or when DingTalk says the name exists after an attempt of unknown outcome) the pusher lists
//!   the parent's children and adopts the one with that marker, else the one with the same name;
//! - role groups and roles are looked up by name (in their group) before a retried create.
//!
//! # Failures
//! DingTalk errors the client already retried and that may still pass later (busy, throttled,
//! timeouts) go back to the queue with jittered exponential backoff; a dependency that has no
//! DingTalk id yet also waits, up to [`PushConfig::max_wait_attempts`]. Errors a retry cannot fix
//! (60104 mobile exists, name clashes, invalid fields, and operations DingTalk has no API for)
//! become dead letters carrying DingTalk's errcode and message; an operator fixes the cause and
//! retries the dead letter, which then pushes the entity's state at that time. An entry whose
//! dependency is itself a dead letter (a child department of a refused parent) is *blocked*,
//! not dead: it waits at the longest backoff for however long the fix takes, so the retried
//! parent is followed by its dependants in order rather than by a pile of dead letters.
//!
//! # Tests and crashes
//! [`Pusher::drain`] processes everything that is ready now, deterministically, so tests need no
//! sleeps; the clock and the backoff RNG are passed in. A [`FailpointHook`] lets a test stop
//! the pusher right after DingTalk accepted a create, as if the process had died there.

mod build;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dingtalk_client::{Backoff, ClientError, DingTalkClient};
use dingtalk_proto as wire;
use directory_model::{
    Authority, Department, DingDeptId, DingRoleGroupId, DingRoleId, DingUserId, FieldAccess,
    MergePolicy, OaDeptId, OaRoleGroupId, OaRoleId, OaUserId, Role, RoleAssignment, RoleGroup,
    User, UserState,
};
use directory_store::{
    AssignmentQuery, EntityKind, Expect, Op, OutboxEntry, Store, StoreError, WriteCtx,
};
use futures::StreamExt;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio_util::sync::CancellationToken;

use self::build::{DeptRefs, UserRefs};
use crate::context::{Clock, SyncContext};
use crate::policy::Policy;

/// How the pusher works; every value has a documented default.
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// This worker's name in outbox claims (unique per process, e.g. `host:pid:pusher`).
    pub worker: String,
    /// How long a claim lasts; a worker that dies lets it expire and another takes over.
    pub lease: Duration,
    /// Entries claimed per round.
    pub batch: u32,
    /// Entries pushed at the same time (the client's rate budget paces the calls).
    pub concurrency: usize,
    /// Retry schedule of entries DingTalk could not take yet.
    pub backoff: Backoff,
    /// Attempts an entry may wait for a dependency (or retry a transient failure) before it
    /// becomes a dead letter.
    pub max_wait_attempts: i64,
    /// How long [`Pusher::run`] sleeps when the outbox has nothing ready.
    pub idle_poll: Duration,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            worker: "pusher".to_owned(),
            lease: Duration::from_secs(60),
            batch: 64,
            concurrency: 16,
            backoff: Backoff {
                initial: Duration::from_secs(1),
                multiplier: 2.0,
                max: Duration::from_secs(300),
                throttle_floor: Duration::from_secs(1),
            },
            max_wait_attempts: 20,
            idle_poll: Duration::from_millis(500),
        }
    }
}

/// Where a [`FailpointHook`] is consulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failpoint {
    /// DingTalk has accepted a create; the id map and base are not saved yet.
    AfterAccept,
}

/// Decides whether the pusher "crashes" at a failpoint for an entry (returns `true` to stop).
pub type FailpointHook = Arc<dyn Fn(Failpoint, &OutboxEntry) -> bool + Send + Sync>;

/// Why a pusher round stopped.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The store failed while claiming or finishing entries.
    #[error("the directory store failed")]
    Store(#[from] StoreError),
    /// A failpoint stopped the pusher as if the process had died (tests only).
    #[error("failpoint {0:?} stopped the pusher")]
    Failpoint(Failpoint),
}

/// What one round (or a drain) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PushReport {
    /// Entries claimed.
    pub claimed: usize,
    /// Entries DingTalk now reflects (including ones with nothing to do).
    pub pushed: usize,
    /// Entries put back to wait or retry.
    pub retried: usize,
    /// Entries parked as dead letters.
    pub dead_lettered: usize,
}

impl PushReport {
    fn add(&mut self, other: PushReport) {
        self.claimed += other.claimed;
        self.pushed += other.pushed;
        self.retried += other.retried;
        self.dead_lettered += other.dead_lettered;
    }
}

/// What to do with an entry after one attempt.
#[derive(Debug)]
enum Step {
    /// DingTalk holds the entity's current state (or there was nothing to push).
    Done,
    /// Try again later: a transient failure or a dependency without a DingTalk id.
    Retry { error: String, throttled: bool },
    /// Retrying cannot help; park it for a human.
    Dead(String),
    /// A dependency is itself a dead letter: wait for the operator to fix and retry it,
    /// however long that takes, without ever becoming a dead letter (which would lose the
    /// order: the dependant could be retried before what it depends on).
    Blocked(String),
    /// A failpoint fired: leave the entry claimed, as a crashed process would.
    Crash(Failpoint),
}

impl Step {
    fn wait(why: impl Into<String>) -> Self {
        Self::Retry {
            error: why.into(),
            throttled: false,
        }
    }

    /// The step a DingTalk failure calls for.
    fn from_client(error: &ClientError) -> Self {
        if error.is_retryable() {
            Self::Retry {
                error: error.to_string(),
                throttled: error.is_throttle(),
            }
        } else {
            Self::Dead(error.to_string())
        }
    }
}

/// Whether DingTalk answered with one of `codes`.
fn is_code(error: &ClientError, codes: &[wire::ErrCode]) -> bool {
    error.errcode().is_some_and(|c| codes.contains(&c))
}

/// Whether DingTalk says the entity is unknown.
fn is_not_found(error: &ClientError) -> bool {
    match error {
        ClientError::Api {
            errcode, sub_code, ..
        } => errcode.is_not_found(sub_code.as_deref()),
        _ => false,
    }
}

/// Whether an earlier attempt of this very call may have been processed (its answer was lost).
fn prior_attempt_may_have_succeeded(error: &ClientError) -> bool {
    matches!(
        error,
        ClientError::Api {
            prior_attempt_may_have_succeeded: true,
            ..
        }
    )
}

/// The marker a department created by dingsync carries in `source_identifier`.
pub fn source_marker(id: OaDeptId) -> String {
    format!("dingsync:{id}")
}

fn wire_dept(id: DingDeptId) -> wire::DingDeptId {
    wire::DingDeptId(id.0)
}

fn wire_user(id: &DingUserId) -> wire::DingUserId {
    wire::DingUserId::new(id.as_str())
}

/// Pushes outbox entries to DingTalk.
pub struct Pusher {
    /// The OA directory, id map, base snapshots and the outbox itself.
    store: Store,
    /// DingTalk, with its shared rate budget and call-level retries.
    client: DingTalkClient,
    /// Claim times, lease ends and backoff times.
    clock: Arc<dyn Clock>,
    /// Scope (out-of-scope entities are never pushed) and field authority (a field DingTalk
    /// owns is never pushed from OA).
    policy: Arc<Policy>,
    /// Jitter of the backoff schedule (seeded by the caller, so tests repeat exactly).
    rng: Mutex<StdRng>,
    /// Tunables.
    config: PushConfig,
    /// A test's crash injection, if any.
    failpoint: Option<FailpointHook>,
}

impl fmt::Debug for Pusher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pusher")
            .field("store", &self.store)
            .field("client", &self.client)
            .field("policy", &self.policy)
            .field("config", &self.config)
            .field("failpoint", &self.failpoint.is_some())
            .finish_non_exhaustive()
    }
}

impl Pusher {
    /// A pusher over the context's store, client, policy and clock; `seed` seeds the backoff
    /// jitter.
    pub fn new(ctx: &SyncContext, seed: u64, config: PushConfig) -> Self {
        Self {
            store: ctx.store.clone(),
            client: ctx.client.clone(),
            clock: ctx.clock.clone(),
            policy: ctx.policy.clone(),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            config,
            failpoint: None,
        }
    }

    /// Installs a crash-injection hook (tests).
    pub fn with_failpoint(mut self, hook: FailpointHook) -> Self {
        self.failpoint = Some(hook);
        self
    }

    /// Claims one batch of ready entries and pushes them concurrently (entries of one batch
    /// never depend on each other: the claim only hands out unblocked entries).
    pub async fn run_once(&self) -> Result<PushReport, PushError> {
        let now = self.clock.now_ms();
        let lease_ms = i64::try_from(self.config.lease.as_millis()).unwrap_or(i64::MAX);
        let entries = self
            .store
            .outbox_claim_ready(&self.config.worker, now, lease_ms, self.config.batch.max(1))
            .await?;
        let mut report = PushReport {
            claimed: entries.len(),
            ..PushReport::default()
        };
        let results: Vec<(OutboxEntry, Step)> = futures::stream::iter(entries)
            .map(|entry| async move {
                let step = match self.push_entry(&entry).await {
                    Ok(step) => step,
                    // A store failure in the middle of a push: the entry is retried; the
                    // push is idempotent, so repeating what already happened is harmless.
                    Err(error) => Step::wait(format!("store: {error}")),
                };
                (entry, step)
            })
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        let mut crashed = None;
        let mut done = Vec::new();
        for (entry, step) in results {
            let now = self.clock.now_ms();
            match step {
                Step::Done => done.push(entry.id),
                Step::Retry { error, throttled } => {
                    if entry.attempts >= self.config.max_wait_attempts {
                        let error = format!("gave up after {} attempts: {error}", entry.attempts);
                        self.dead_letter(&entry, &error, now).await?;
                        report.dead_lettered += 1;
                    } else {
                        let attempt = u32::try_from(entry.attempts.saturating_sub(1)).unwrap_or(0);
                        let delay = {
                            let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
                            self.config.backoff.delay(attempt, throttled, &mut *rng)
                        };
                        let at = now + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
                        tracing::debug!(entry = entry.id, kind = %entry.kind, oa_id = %entry.oa_id, %error, "push retried later");
                        self.store
                            .outbox_retry_later(entry.id, &self.config.worker, at, &error, now)
                            .await?;
                        report.retried += 1;
                    }
                }
                Step::Dead(error) => {
                    self.dead_letter(&entry, &error, now).await?;
                    report.dead_lettered += 1;
                }
                Step::Blocked(error) => {
                    // Checked again at the longest backoff: soon after the operator's retry.
                    let delay = self.config.backoff.max;
                    let at = now + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
                    tracing::debug!(entry = entry.id, kind = %entry.kind, oa_id = %entry.oa_id, %error, "push blocked by a dead letter");
                    self.store
                        .outbox_retry_later(entry.id, &self.config.worker, at, &error, now)
                        .await?;
                    report.retried += 1;
                }
                Step::Crash(point) => crashed = Some(point),
            }
        }
        // One transaction for the whole round; an entry whose lease was taken over meanwhile is
        // left to its new owner (pushing is idempotent, so the work is not wasted).
        let finished = self
            .store
            .outbox_done_many(&done, &self.config.worker, self.clock.now_ms())
            .await?;
        report.pushed += finished.len();
        match crashed {
            Some(point) => Err(PushError::Failpoint(point)),
            None => Ok(report),
        }
    }

    async fn dead_letter(
        &self,
        entry: &OutboxEntry,
        error: &str,
        now: i64,
    ) -> Result<(), PushError> {
        tracing::warn!(entry = entry.id, kind = %entry.kind, oa_id = %entry.oa_id, %error, "push dead-lettered");
        self.store
            .outbox_dead_letter(entry.id, &self.config.worker, error, now)
            .await?;
        Ok(())
    }

    /// Runs rounds until nothing is ready at the current time (entries waiting for a later
    /// retry time stay queued). Tests call this instead of sleeping.
    pub async fn drain(&self) -> Result<PushReport, PushError> {
        let mut total = PushReport::default();
        loop {
            let round = self.run_once().await?;
            total.add(round);
            if round.claimed == 0 {
                return Ok(total);
            }
        }
    }

    /// Pushes until `cancel` fires, polling every [`PushConfig::idle_poll`] while idle.
    pub async fn run(&self, cancel: CancellationToken) -> Result<(), PushError> {
        // A previous run of this worker that failed (the database went away mid-round) left its
        // claims behind; no other task pushes under this worker name, so they are taken back
        // now rather than after their lease (a minute of standstill after a database blip).
        let released = self
            .store
            .outbox_release_claims(&self.config.worker, self.clock.now_ms())
            .await?;
        if released > 0 {
            tracing::info!(
                released,
                "took back the claims of this worker's previous run"
            );
        }
        while !cancel.is_cancelled() {
            let round = tokio::select! {
                () = cancel.cancelled() => break,
                round = self.run_once() => round?,
            };
            if round.claimed == 0 {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(self.config.idle_poll) => {}
                }
            }
        }
        Ok(())
    }

    /// Pushes one entity now, outside the outbox (reconcile). The attempt counts as a retry, so
    /// creates look for an existing DingTalk entity first. Returns DingTalk's refusal or the
    /// reason to wait as the inner error.
    pub async fn push_now(
        &self,
        kind: EntityKind,
        oa_id: &str,
        op: Op,
    ) -> Result<Result<(), String>, StoreError> {
        let now = self.clock.now_ms();
        let entry = OutboxEntry {
            id: 0,
            kind,
            oa_id: oa_id.to_owned(),
            op,
            payload: None,
            audit_seq: 0,
            state: directory_store::QueueState::Claimed,
            attempts: 2,
            next_attempt_at_ms: now,
            claimed_by: Some(self.config.worker.clone()),
            claimed_until_ms: None,
            last_error: None,
            created_at_ms: now,
        };
        Ok(match self.push_entry(&entry).await? {
            Step::Done => Ok(()),
            Step::Retry { error, .. } | Step::Dead(error) | Step::Blocked(error) => Err(error),
            Step::Crash(point) => Err(format!("failpoint {point:?}")),
        })
    }

    fn crash_here(&self, point: Failpoint, entry: &OutboxEntry) -> bool {
        self.failpoint
            .as_ref()
            .is_some_and(|hook| hook(point, entry))
    }

    /// One attempt at one entry.
    async fn push_entry(&self, entry: &OutboxEntry) -> Result<Step, StoreError> {
        match entry.kind {
            EntityKind::Department => match entry.oa_id.parse::<i64>() {
                Ok(id) => self.push_department(entry, OaDeptId(id)).await,
                Err(_) => Ok(Step::Dead(format!("bad department id {:?}", entry.oa_id))),
            },
            EntityKind::User => self.push_user(entry, OaUserId::new(&entry.oa_id)).await,
            EntityKind::RoleGroup => match entry.oa_id.parse::<i64>() {
                Ok(id) => self.push_role_group(entry, OaRoleGroupId(id)).await,
                Err(_) => Ok(Step::Dead(format!("bad role group id {:?}", entry.oa_id))),
            },
            EntityKind::Role => match entry.oa_id.parse::<i64>() {
                Ok(id) => self.push_role(entry, OaRoleId(id)).await,
                Err(_) => Ok(Step::Dead(format!("bad role id {:?}", entry.oa_id))),
            },
            EntityKind::RoleAssignment => match parse_assignment(&entry.oa_id) {
                Some(a) => self.push_assignment(a).await,
                None => Ok(Step::Dead(format!("bad assignment id {:?}", entry.oa_id))),
            },
        }
    }

    /// The DingTalk userid of an OA user: the id map's entry, or the OA id itself (users
    /// created by dingsync and users imported from DingTalk share their id).
    async fn ding_user(&self, oa: &OaUserId) -> Result<DingUserId, StoreError> {
        Ok(self
            .store
            .ding_id_of(oa)
            .await?
            .unwrap_or_else(|| DingUserId::new(oa.as_str())))
    }

    /// The DingTalk userid of an OA user known to exist in DingTalk (mapped, or synced
    /// before: imported users have a base), or `None` while their creation is still queued.
    async fn user_in_dingtalk(&self, oa: &OaUserId) -> Result<Option<DingUserId>, StoreError> {
        if let Some(ding) = self.store.ding_id_of(oa).await? {
            return Ok(Some(ding));
        }
        let base: Option<serde_json::Value> =
            self.store.base_get(EntityKind::User, oa.as_str()).await?;
        Ok(base.map(|_| DingUserId::new(oa.as_str())))
    }

    /// Whether a department is in the policy's OA-side scope (its chain of ancestors decides).
    async fn dept_in_scope(&self, dept: &Department) -> Result<bool, StoreError> {
        if self.policy.scope.is_everything_oa() {
            return Ok(true);
        }
        let mut chain = vec![dept.id];
        let mut parent = dept.parent;
        while let Some(p) = parent {
            if chain.contains(&p) || chain.len() > 10_000 {
                break;
            }
            chain.push(p);
            parent = self
                .store
                .get_department(p)
                .await?
                .and_then(|d| d.entity.parent);
        }
        Ok(self.policy.scope.contains_oa_chain(&chain))
    }

    /// Whether a user is in scope: one of their departments is.
    async fn user_in_scope(&self, user: &User) -> Result<bool, StoreError> {
        if self.policy.scope.is_everything_oa() {
            return Ok(true);
        }
        for m in &user.departments {
            if let Some(d) = self.store.get_department(m.dept).await?
                && self.dept_in_scope(&d.entity).await?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    // ----- departments -------------------------------------------------------------------

    async fn push_department(&self, entry: &OutboxEntry, id: OaDeptId) -> Result<Step, StoreError> {
        if entry.op == Op::Delete {
            return self.delete_department(entry, id).await;
        }
        let Some(current) = self.store.get_department(id).await? else {
            // Deleted in OA since; its own delete entry follows this one.
            return Ok(Step::Done);
        };
        // `oa_dept` is the OA entity; `dept` is what this push makes DingTalk hold (and so the
        // base), which can lag behind OA in the managers (see below).
        let oa_dept = current.entity;
        if !self.dept_in_scope(&oa_dept).await? {
            tracing::debug!(dept = %id, "department out of scope; not pushed");
            return Ok(Step::Done);
        }
        let mut dept = oa_dept.clone();
        let base: Option<Department> = self
            .store
            .base_get(EntityKind::Department, &id.to_string())
            .await?;
        keep_dingtalk_owned(&mut dept, base.as_ref(), &self.policy.departments);
        let Some(parent) = dept.parent else {
            // The OA root is DingTalk's department 1, which nobody can update (60018).
            self.store.id_map_put(&id, &DingDeptId::ROOT).await?;
            return Ok(Step::Done);
        };
        let Some(parent_ding) = self.store.ding_id_of(&parent).await? else {
            return self
                .wait_for(
                    EntityKind::Department,
                    &parent.to_string(),
                    format!("parent department {parent} has no DingTalk id yet"),
                )
                .await;
        };
        // Managers whose own creation is still queued (it waits for this department) are left
        // out; the OA change that named them queued a later update of this department.
        let mut managers = Vec::with_capacity(dept.managers.len());
        let mut known = Vec::with_capacity(dept.managers.len());
        for m in &dept.managers {
            if let Some(ding) = self.user_in_dingtalk(m).await? {
                managers.push(wire_user(&ding));
                known.push(m.clone());
            }
        }
        dept.managers = known;
        let refs = DeptRefs {
            parent: wire_dept(parent_ding),
            managers,
        };

        let mut ding = self.store.ding_id_of(&id).await?;
        if ding.is_none() && entry.attempts > 1 {
            ding = match self.find_department(&dept, refs.parent).await {
                Ok(found) => found,
                Err(e) => return Ok(Step::from_client(&e)),
            };
        }
        let ding = match ding {
            Some(ding) => ding,
            None => {
                if dept.source_identifier.is_none() {
                    // The OA side holds the marker too, so that the base (what both sides
                    // hold) equals DingTalk's department and the echo event is a no-op.
                    dept.source_identifier = Some(source_marker(id));
                    let mut marked = oa_dept.clone();
                    marked.source_identifier = Some(source_marker(id));
                    let ctx = WriteCtx::reconcile("pusher", self.clock.now_ms());
                    match self
                        .store
                        .save_department(&ctx, marked, Expect::Version(current.version))
                        .await
                    {
                        Ok(_) => {}
                        Err(StoreError::VersionConflict { .. }) => {
                            return Ok(Step::wait("department changed while being pushed"));
                        }
                        Err(e) => return Err(e),
                    }
                }
                let marker = dept
                    .source_identifier
                    .clone()
                    .unwrap_or_else(|| source_marker(id));
                let req = build::dept_create(&dept, &refs, &marker);
                match self.client.dept_create(&req).await {
                    Ok(new) => {
                        let new = DingDeptId(new.0);
                        if self.crash_here(Failpoint::AfterAccept, entry) {
                            return Ok(Step::Crash(Failpoint::AfterAccept));
                        }
                        if !build::dept_needs_manager_update(&refs) {
                            self.store
                                .record_pushed(&id, &new, &dept, self.clock.now_ms())
                                .await?;
                            return Ok(Step::Done);
                        }
                        // Save the mapping before the manager update, so a failure there does
                        // not lose the new department.
                        self.store.id_map_put(&id, &new).await?;
                        new
                    }
                    Err(e)
                        if is_code(
                            &e,
                            &[
                                wire::ErrCode::DEPT_NAME_EXISTS,
                                wire::ErrCode::DEPT_NAME_EXISTS_CURRENT,
                            ],
                        ) && prior_attempt_may_have_succeeded(&e) =>
                    {
                        match self.find_department(&dept, refs.parent).await {
                            Ok(Some(found)) => found,
                            Ok(None) => return Ok(Step::from_client(&e)),
                            Err(e) => return Ok(Step::from_client(&e)),
                        }
                    }
                    Err(e) => return Ok(Step::from_client(&e)),
                }
            }
        };
        let req = build::dept_update(&dept, wire_dept(ding), &refs);
        match self.client.dept_update(&req).await {
            Ok(()) => {
                self.store
                    .record_pushed(&id, &ding, &dept, self.clock.now_ms())
                    .await?;
                Ok(Step::Done)
            }
            // An administrator deleted it in DingTalk after OA changed it. Its deletion event
            // removes the OA department, after which the retry finds nothing to push; only if
            // that never happens does the entry become a dead letter (found by the convergence
            // property test: a dead letter for a department already gone on both sides).
            Err(e) if is_code(&e, &[wire::ErrCode::DEPT_NOT_FOUND]) => Ok(Step::wait(format!(
                "department {id} (DingTalk {ding}) no longer exists in DingTalk: {e}"
            ))),
            // A manager left DingTalk after OA named them; the leave event, once applied,
            // drops them from OA's managers and the retry sends the list without them (found
            // by the convergence property test: the entry was a dead letter at once).
            Err(e) if is_code(&e, &[wire::ErrCode::UNKNOWN_USERID_IN_LIST]) => {
                Ok(Step::wait(e.to_string()))
            }
            Err(e) if is_code(&e, &[wire::ErrCode::DEPT_CYCLE]) => {
                self.yield_move_to_dingtalk(id, ding, &e).await
            }
            Err(e) => Ok(Step::from_client(&e)),
        }
    }

    /// DingTalk refused OA's move of `id` because an administrator's concurrent move made it a
    /// cycle (OA put A under B while DingTalk put B under A). Both moves cannot stand and
    /// DingTalk's already did, so OA's move yields: the OA department takes DingTalk's parent,
    /// the conflict is recorded, and the entry is retried to push any other pending field.
    /// (Found by the convergence property test: a dead letter, and a cycle in OA's tree.)
    async fn yield_move_to_dingtalk(
        &self,
        id: OaDeptId,
        ding: DingDeptId,
        refused: &ClientError,
    ) -> Result<Step, StoreError> {
        let detail = match self.client.dept_get(wire_dept(ding)).await {
            Ok(d) => d,
            Err(e) => return Ok(Step::from_client(&e)),
        };
        let ding_parent = match detail.parent_id {
            Some(p) => self.store.oa_id_of::<OaDeptId>(&DingDeptId(p.0)).await?,
            None => None,
        };
        let (Some(ding_parent), Some(current)) =
            (ding_parent, self.store.get_department(id).await?)
        else {
            return Ok(Step::from_client(refused));
        };
        let now = self.clock.now_ms();
        let key = id.to_string();
        let mut dept = current.entity;
        let oa_parent = dept.parent;
        dept.parent = Some(ding_parent);
        let ctx = WriteCtx::dingtalk("pusher:conflict", now)
            .with_enqueue(false)
            .with_record_base(false);
        match self
            .store
            .save_department(&ctx, dept, Expect::Version(current.version))
            .await
        {
            Ok(_) => {}
            Err(StoreError::VersionConflict { .. }) => {
                return Ok(Step::wait("department changed while being pushed"));
            }
            Err(e) => return Err(e),
        }
        let base: Option<Department> = self.store.base_get(EntityKind::Department, &key).await?;
        let base_parent = base.as_ref().and_then(|b| b.parent);
        if let Some(mut base) = base {
            base.parent = Some(ding_parent);
            self.store
                .base_set(EntityKind::Department, &key, Some(&base), now)
                .await?;
        }
        let conflict = directory_model::Conflict {
            field: directory_model::DeptField::Parent,
            base: serde_json::json!(base_parent),
            oa: serde_json::json!(oa_parent),
            dingtalk: serde_json::json!(ding_parent),
            winner: directory_model::Side::DingTalk,
        };
        self.store
            .record_conflicts(EntityKind::Department, &key, &[conflict], now)
            .await?;
        tracing::warn!(dept = %id, "OA's move would make a cycle with DingTalk's; DingTalk's parent kept");
        Ok(Step::wait(refused.to_string()))
    }

    /// Finds a department this pusher may already have created under `parent`: the child
    /// carrying our marker, else the child with the same name (DingTalk refuses duplicate
    /// sibling names, so that one is the only candidate a create could clash with).
    async fn find_department(
        &self,
        dept: &Department,
        parent: wire::DingDeptId,
    ) -> Result<Option<DingDeptId>, ClientError> {
        let marker = dept
            .source_identifier
            .clone()
            .unwrap_or_else(|| source_marker(dept.id));
        let children = self.client.dept_list_sub(parent).await?;
        if let Some(c) = children
            .iter()
            .find(|c| c.source_identifier.as_deref() == Some(marker.as_str()))
        {
            return Ok(Some(DingDeptId(c.dept_id.0)));
        }
        // `listsub` need not report source identifiers; read the details of the candidates.
        let same_name = children.iter().find(|c| c.name == dept.name);
        for c in same_name
            .into_iter()
            .chain(children.iter().filter(|c| c.name != dept.name))
        {
            if c.source_identifier.is_some() {
                continue;
            }
            let detail = self.client.dept_get(c.dept_id).await?;
            if detail.source_identifier.as_deref() == Some(marker.as_str()) {
                return Ok(Some(DingDeptId(c.dept_id.0)));
            }
        }
        Ok(same_name.map(|c| DingDeptId(c.dept_id.0)))
    }

    async fn delete_department(
        &self,
        entry: &OutboxEntry,
        id: OaDeptId,
    ) -> Result<Step, StoreError> {
        let Some(ding) = self.store.ding_id_of(&id).await? else {
            return Ok(Step::Done);
        };
        match self.client.dept_delete(wire_dept(ding)).await {
            Ok(()) => {}
            Err(e) if is_code(&e, &[wire::ErrCode::DEPT_NOT_FOUND]) => {}
            Err(e)
                if is_code(
                    &e,
                    &[
                        wire::ErrCode::DEPT_HAS_MEMBERS,
                        wire::ErrCode::DEPT_HAS_CHILDREN,
                    ],
                ) =>
            {
                // DingTalk still has members or children OA moved away; their pushes or
                // events may still be on their way. Members OA already has elsewhere are
                // moved now: their own pushes can be queued behind this deletion (a member
                // the applier re-homed waits for the department's parent, whose update waits
                // for this deletion), which would wait forever (found by the convergence
                // property test).
                if is_code(&e, &[wire::ErrCode::DEPT_HAS_MEMBERS]) {
                    self.move_members_out(entry, id, ding).await?;
                } else {
                    self.move_children_out(entry, id, ding).await?;
                }
                return Ok(Step::wait(e.to_string()));
            }
            Err(e) => return Ok(Step::from_client(&e)),
        }
        self.store
            .record_push_deleted(&id, self.clock.now_ms())
            .await?;
        Ok(Step::Done)
    }

    /// The step for an entry waiting on `kind`/`oa_id` to reach DingTalk: blocked (never a
    /// dead letter) while that dependency is itself a dead letter, else an ordinary wait.
    async fn wait_for(
        &self,
        kind: EntityKind,
        oa_id: &str,
        why: String,
    ) -> Result<Step, StoreError> {
        // Dead letters are few (each needs a human), so reading them is cheap.
        let dead = self.store.outbox_dead_letters(None, 10_000).await?;
        if dead.iter().any(|d| d.kind == kind && d.oa_id == oa_id) {
            return Ok(Step::Blocked(format!("{why}: its push is a dead letter")));
        }
        Ok(Step::wait(why))
    }

    /// Pushes every DingTalk sub-department of `ding` that OA has under another parent (the
    /// same deadlock as [`Pusher::move_members_out`], for a department the applier re-homed).
    async fn move_children_out(
        &self,
        entry: &OutboxEntry,
        id: OaDeptId,
        ding: DingDeptId,
    ) -> Result<(), StoreError> {
        let Ok(children) = self.client.dept_list_sub(wire_dept(ding)).await else {
            return Ok(());
        };
        for c in children {
            let Some(oa) = self
                .store
                .oa_id_of::<OaDeptId>(&DingDeptId(c.dept_id.0))
                .await?
            else {
                continue;
            };
            let Some(child) = self.store.get_department(oa).await? else {
                continue;
            };
            if child.entity.parent == Some(id) {
                continue;
            }
            let mut update = entry.clone();
            update.kind = EntityKind::Department;
            update.oa_id = oa.to_string();
            update.op = Op::Update;
            // As for members: the deletion is retried either way.
            let _ = Box::pin(self.push_department(&update, oa)).await?;
        }
        Ok(())
    }

    /// Pushes every DingTalk member of `ding` whom OA has in other departments only.
    async fn move_members_out(
        &self,
        entry: &OutboxEntry,
        id: OaDeptId,
        ding: DingDeptId,
    ) -> Result<(), StoreError> {
        let Ok(members) = self.client.user_list_ids(wire_dept(ding)).await else {
            return Ok(());
        };
        for m in members {
            let Some(oa) = self
                .store
                .oa_id_of::<OaUserId>(&DingUserId::new(m.as_str()))
                .await?
            else {
                continue;
            };
            let Some(user) = self.store.get_user(&oa).await? else {
                continue;
            };
            if user.entity.departments.iter().any(|d| d.dept == id) {
                continue;
            }
            let mut update = entry.clone();
            update.kind = EntityKind::User;
            update.oa_id = oa.0.clone();
            update.op = Op::Update;
            // Its outcome does not matter here: the deletion is retried either way, and the
            // user's own entry still runs.
            let _ = self.push_user(&update, oa).await?;
        }
        Ok(())
    }

    // ----- users ---------------------------------------------------------------------------

    async fn push_user(&self, entry: &OutboxEntry, id: OaUserId) -> Result<Step, StoreError> {
        if entry.op == Op::Delete {
            return self.delete_user(&id, true).await;
        }
        let Some(current) = self.store.get_user(&id).await? else {
            // Deleted in OA since; its own delete entry follows. DingTalk loses the user now
            // rather than then: the update may have been a cascade moving the user out of a
            // department whose deletion is queued before the user's, and DingTalk refuses that
            // deletion (60005) while the user is still in it, so waiting for the user's delete
            // entry would wait forever (found by the convergence property test).
            if self.store.ding_id_of(&id).await?.is_some() {
                return self.delete_user(&id, false).await;
            }
            return Ok(Step::Done);
        };
        let mut user = current.entity;
        if !self.user_in_scope(&user).await? {
            tracing::debug!(user = %id, "user out of scope; not pushed");
            return Ok(Step::Done);
        }
        let base: Option<User> = self.store.base_get(EntityKind::User, id.as_str()).await?;
        keep_dingtalk_owned(&mut user, base.as_ref(), &self.policy.users);
        if user.state == UserState::Left {
            let step = self.delete_user(&id, false).await?;
            if matches!(step, Step::Done)
                && let Some(ding) = self.store.ding_id_of(&id).await?
            {
                self.store
                    .record_pushed(&id, &ding, &user, self.clock.now_ms())
                    .await?;
            }
            return Ok(step);
        }
        let mut depts = Vec::with_capacity(user.departments.len());
        for m in &user.departments {
            match self.store.ding_id_of(&m.dept).await? {
                Some(d) => depts.push(wire_dept(d)),
                None => {
                    return self
                        .wait_for(
                            EntityKind::Department,
                            &m.dept.to_string(),
                            format!("department {} has no DingTalk id yet", m.dept),
                        )
                        .await;
                }
            }
        }
        // A manager whose creation is still queued is left out for now, as for departments;
        // the change that named them queued a later update of this user.
        let manager = match &user.manager {
            Some(m) => self.user_in_dingtalk(m).await?,
            None => None,
        };
        if manager.is_none() {
            user.manager = None;
        }
        let manager = manager.as_ref().map(wire_user);
        let refs = UserRefs { depts, manager };
        let mapped = self.store.ding_id_of(&id).await?;
        let userid = mapped
            .clone()
            .unwrap_or_else(|| DingUserId::new(id.as_str()));

        if mapped.is_none() {
            match self.create_user(entry, &user, &userid, &refs).await? {
                CreateOutcome::Created => return Ok(Step::Done),
                CreateOutcome::Exists => {}
                CreateOutcome::Stop(step) => return Ok(step),
            }
        }
        let req = build::user_update(&user, &wire_user(&userid), &refs, base.as_ref());
        match self.client.user_update(&req).await {
            Ok(()) => {}
            Err(e) if mapped.is_some() && is_not_found(&e) => {
                // 60121 does not say whose id it did not find: the manager the request names
                // may have left, in which case the leave event clears OA's manager and the retry
                // succeeds (found by the convergence property test: re-creating the user failed
                // on the same manager and became a dead letter).
                if refs.manager.is_some() && self.client.user_get(&wire_user(&userid)).await.is_ok()
                {
                    return Ok(Step::wait(format!(
                        "the manager is not in DingTalk (left?): {e}"
                    )));
                }
                // Mapped but gone (left in DingTalk, or deleted there): create it again.
                return match self.create_user(entry, &user, &userid, &refs).await? {
                    CreateOutcome::Created => Ok(Step::Done),
                    CreateOutcome::Exists => Ok(Step::wait("user reappeared while being pushed")),
                    CreateOutcome::Stop(step) => Ok(step),
                };
            }
            Err(e) => return Ok(Step::from_client(&e)),
        }
        self.store
            .record_pushed(&id, &userid, &user, self.clock.now_ms())
            .await?;
        if let Some(before) = &base {
            self.restore_managers_of_left_departments(&user, before)
                .await?;
        }
        Ok(Step::Done)
    }

    /// DingTalk drops a user from the managers of every department the user leaves, and sends
    /// no event for those departments. When OA still names the user as a manager there (OA
    /// allows a manager who is not a member, and so does DingTalk's department update), the
    /// department is queued for a push that sets its managers again; its base forgets the user,
    /// as DingTalk did, so a merge before that push sees OA as the side holding the manager.
    /// (The convergence property test found the manager silently dropped on DingTalk.)
    async fn restore_managers_of_left_departments(
        &self,
        user: &User,
        before: &User,
    ) -> Result<(), StoreError> {
        let now = self.clock.now_ms();
        for left in before
            .department_ids()
            .filter(|d| !user.departments.iter().any(|m| m.dept == *d))
        {
            let key = left.to_string();
            let Some(mut base) = self
                .store
                .base_get::<Department>(EntityKind::Department, &key)
                .await?
            else {
                continue;
            };
            if !base.managers.contains(&user.id) {
                continue;
            }
            base.managers.retain(|m| m != &user.id);
            self.store
                .base_set(EntityKind::Department, &key, Some(&base), now)
                .await?;
            let Some(oa) = self.store.get_department(left).await? else {
                continue;
            };
            if !oa.entity.managers.contains(&user.id) {
                continue;
            }
            if oa.entity.parent.is_none() {
                // Nobody can update DingTalk's root department (60018): OA follows DingTalk.
                let mut root = oa.entity;
                root.managers.retain(|m| m != &user.id);
                let ctx = WriteCtx::reconcile("pusher", now)
                    .with_enqueue(false)
                    .with_record_base(false);
                match self
                    .store
                    .save_department(&ctx, root, Expect::Version(oa.version))
                    .await
                {
                    // A concurrent OA edit of the root wins; its own push settles it.
                    Ok(_) | Err(StoreError::VersionConflict { .. }) => {}
                    Err(e) => return Err(e),
                }
            } else {
                let value = serde_json::to_value(&oa.entity)?;
                let ctx = WriteCtx::reconcile("pusher", now).with_record_base(false);
                self.store
                    .enqueue_push(&ctx, EntityKind::Department, &key, &value)
                    .await?;
            }
        }
        Ok(())
    }

    /// Creates `user` under `userid`; on 60102 (the userid exists, e.g. our own earlier attempt
    /// before a crash) reports [`CreateOutcome::Exists`] so the caller updates it instead.
    async fn create_user(
        &self,
        entry: &OutboxEntry,
        user: &User,
        userid: &DingUserId,
        refs: &UserRefs,
    ) -> Result<CreateOutcome, StoreError> {
        let req = match build::user_create(user, &wire_user(userid), refs) {
            Ok(req) => req,
            Err(refused) => return Ok(CreateOutcome::Stop(Step::Dead(refused.to_string()))),
        };
        match self.client.user_create(&req).await {
            Ok(created) => {
                if self.crash_here(Failpoint::AfterAccept, entry) {
                    return Ok(CreateOutcome::Stop(Step::Crash(Failpoint::AfterAccept)));
                }
                let ding = DingUserId::new(created.userid.as_str());
                self.store
                    .record_pushed(&user.id, &ding, user, self.clock.now_ms())
                    .await?;
                Ok(CreateOutcome::Created)
            }
            Err(e) if is_code(&e, &[wire::ErrCode::USERID_EXISTS]) => Ok(CreateOutcome::Exists),
            // The manager named in the request left DingTalk; its leave event clears OA's
            // manager and the retry creates the user without one.
            Err(e) if refs.manager.is_some() && is_not_found(&e) => Ok(CreateOutcome::Stop(
                Step::wait(format!("the manager is not in DingTalk (left?): {e}")),
            )),
            Err(e) => Ok(CreateOutcome::Stop(Step::from_client(&e))),
        }
    }

    /// Removes a user from DingTalk; `forget` also drops the mapping and base (the OA user is
    /// gone for good), otherwise they stay so a rehire maps to the same userid.
    async fn delete_user(&self, id: &OaUserId, forget: bool) -> Result<Step, StoreError> {
        let userid = self.ding_user(id).await?;
        match self.client.user_delete(&wire_user(&userid)).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Ok(Step::from_client(&e)),
        }
        if forget {
            self.store
                .record_push_deleted(id, self.clock.now_ms())
                .await?;
        }
        Ok(Step::Done)
    }

    // ----- role groups and roles ---------------------------------------------------------

    async fn push_role_group(
        &self,
        entry: &OutboxEntry,
        id: OaRoleGroupId,
    ) -> Result<Step, StoreError> {
        let mapped = self.store.ding_id_of(&id).await?;
        if entry.op == Op::Delete {
            return Ok(match mapped {
                None => Step::Done,
                Some(ding) => Step::Dead(format!(
                    "DingTalk has no API to delete role group {ding}; delete it in the admin \
                     console, then drop this dead letter"
                )),
            });
        }
        let Some(current) = self.store.get_role_group(id).await? else {
            return Ok(Step::Done);
        };
        let mut group = current.entity;
        let base: Option<RoleGroup> = self
            .store
            .base_get(EntityKind::RoleGroup, &id.to_string())
            .await?;
        keep_dingtalk_owned(&mut group, base.as_ref(), &self.policy.role_groups);
        if let Some(ding) = mapped {
            return Ok(match base {
                Some(b) if b.name != group.name => Step::Dead(format!(
                    "DingTalk has no API to rename role group {ding} from {:?} to {:?}",
                    b.name, group.name
                )),
                _ => {
                    self.store
                        .record_pushed(&id, &ding, &group, self.clock.now_ms())
                        .await?;
                    Step::Done
                }
            });
        }
        if entry.attempts > 1 {
            match self.find_role_group(&group.name).await {
                Ok(Some(found)) => {
                    self.store
                        .record_pushed(&id, &found, &group, self.clock.now_ms())
                        .await?;
                    return Ok(Step::Done);
                }
                Ok(None) => {}
                Err(e) => return Ok(Step::from_client(&e)),
            }
        }
        match self.client.role_group_add(&group.name).await {
            Ok(new) => {
                if self.crash_here(Failpoint::AfterAccept, entry) {
                    return Ok(Step::Crash(Failpoint::AfterAccept));
                }
                self.store
                    .record_pushed(&id, &DingRoleGroupId(new.0), &group, self.clock.now_ms())
                    .await?;
                Ok(Step::Done)
            }
            Err(e) => Ok(Step::from_client(&e)),
        }
    }

    async fn find_role_group(&self, name: &str) -> Result<Option<DingRoleGroupId>, ClientError> {
        let groups = self.client.role_list_all().await?;
        Ok(groups
            .iter()
            .find(|g| g.name == name)
            .map(|g| DingRoleGroupId(g.group_id.0)))
    }

    async fn find_role(
        &self,
        group: DingRoleGroupId,
        name: &str,
    ) -> Result<Option<DingRoleId>, ClientError> {
        let groups = self.client.role_list_all().await?;
        Ok(groups
            .iter()
            .filter(|g| g.group_id.0 == group.0)
            .flat_map(|g| g.roles.iter())
            .find(|r| r.name == name)
            .map(|r| DingRoleId(r.id.0)))
    }

    async fn push_role(&self, entry: &OutboxEntry, id: OaRoleId) -> Result<Step, StoreError> {
        let mapped = self.store.ding_id_of(&id).await?;
        if entry.op == Op::Delete {
            let Some(ding) = mapped else {
                return Ok(Step::Done);
            };
            match self.client.role_delete(wire::DingRoleId(ding.0)).await {
                Ok(()) => {}
                Err(e) if is_code(&e, &[wire::ErrCode::INVALID_ROLE_ID]) => {}
                Err(e) => return Ok(Step::from_client(&e)),
            }
            self.store
                .record_push_deleted(&id, self.clock.now_ms())
                .await?;
            return Ok(Step::Done);
        }
        let Some(current) = self.store.get_role(id).await? else {
            return Ok(Step::Done);
        };
        let mut role = current.entity;
        let base: Option<Role> = self
            .store
            .base_get(EntityKind::Role, &id.to_string())
            .await?;
        keep_dingtalk_owned(&mut role, base.as_ref(), &self.policy.roles);
        let Some(group_ding) = self.store.ding_id_of(&role.group).await? else {
            return self
                .wait_for(
                    EntityKind::RoleGroup,
                    &role.group.to_string(),
                    format!("role group {} has no DingTalk id yet", role.group),
                )
                .await;
        };
        if let Some(ding) = mapped {
            if let Some(b) = &base
                && b.group != role.group
            {
                return Ok(Step::Dead(format!(
                    "DingTalk has no API to move role {ding} to another group"
                )));
            }
            // The name is sent even when it equals the base: the applier moves the base to the
            // merged state when it queues a push for a field OA won, so an equal base does not
            // prove DingTalk holds the name (the convergence property test found a pending OA
            // rename skipped that way). Renaming a role to its own name is accepted.
            if let Err(e) = self
                .client
                .role_update(wire::DingRoleId(ding.0), &role.name)
                .await
            {
                return Ok(Step::from_client(&e));
            }
            self.store
                .record_pushed(&id, &ding, &role, self.clock.now_ms())
                .await?;
            return Ok(Step::Done);
        }
        if entry.attempts > 1 {
            match self.find_role(group_ding, &role.name).await {
                Ok(Some(found)) => {
                    self.store
                        .record_pushed(&id, &found, &role, self.clock.now_ms())
                        .await?;
                    return Ok(Step::Done);
                }
                Ok(None) => {}
                Err(e) => return Ok(Step::from_client(&e)),
            }
        }
        match self
            .client
            .role_add(wire::DingRoleGroupId(group_ding.0), &role.name)
            .await
        {
            Ok(new) => {
                if self.crash_here(Failpoint::AfterAccept, entry) {
                    return Ok(Step::Crash(Failpoint::AfterAccept));
                }
                self.store
                    .record_pushed(&id, &DingRoleId(new.0), &role, self.clock.now_ms())
                    .await?;
                Ok(Step::Done)
            }
            Err(e) => Ok(Step::from_client(&e)),
        }
    }

    // ----- role assignments --------------------------------------------------------------

    /// Makes DingTalk's assignment match the OA directory's current one (held or not), so the
    /// create and delete entries of one assignment are both idempotent and order-proof.
    async fn push_assignment(&self, a: RoleAssignment) -> Result<Step, StoreError> {
        let held = !self
            .store
            .list_assignments(&AssignmentQuery {
                user: Some(a.user.clone()),
                role: Some(a.role),
                limit: 1,
                ..AssignmentQuery::default()
            })
            .await?
            .items
            .is_empty();
        let Some(role) = self.store.ding_id_of(&a.role).await? else {
            if held {
                return self
                    .wait_for(
                        EntityKind::Role,
                        &a.role.to_string(),
                        format!("role {} has no DingTalk id yet", a.role),
                    )
                    .await;
            }
            // The role never reached DingTalk, so neither did the assignment.
            return Ok(Step::Done);
        };
        let user = wire_user(&self.ding_user(&a.user).await?);
        let role = wire::DingRoleId(role.0);
        let result = if held {
            self.client.roles_add_for_users(&[role], &[user]).await
        } else {
            self.client.roles_remove_for_users(&[role], &[user]).await
        };
        match result {
            Ok(()) => {}
            // Removing a role from a user DingTalk no longer has: already the goal state.
            Err(e) if !held && is_not_found(&e) => {}
            // Giving a role to a user who has just left DingTalk: the leave event, once
            // applied, drops the user's roles in OA and the retry finds nothing to add (found
            // by the convergence property test: the entry was a dead letter at once).
            Err(e) if held && is_not_found(&e) => return Ok(Step::wait(e.to_string())),
            Err(e) => return Ok(Step::from_client(&e)),
        }
        let key = assignment_key(&a);
        let now = self.clock.now_ms();
        self.store
            .base_set(EntityKind::RoleAssignment, &key, held.then_some(&a), now)
            .await?;
        Ok(Step::Done)
    }
}

/// Puts the fields DingTalk owns (policy authority `dingtalk`) back to what DingTalk holds, the
/// base, so the push never sends an OA value for them. Without a base (a create) there is no
/// DingTalk value yet, and OA's is sent.
fn keep_dingtalk_owned<T: FieldAccess>(
    pushed: &mut T,
    base: Option<&T>,
    policy: &MergePolicy<T::Field>,
) {
    let Some(base) = base else { return };
    for &field in T::all_fields() {
        if policy.authority_of(field) == Authority::DingTalk {
            pushed.copy_field(base, field);
        }
    }
}

/// What an attempt to create a user came to.
enum CreateOutcome {
    /// DingTalk created it; mapping and base are saved.
    Created,
    /// The userid exists already; update it instead.
    Exists,
    /// Stop with this step.
    Stop(Step),
}

/// The store's id text of an assignment: `role:user` (the role id is numeric, the user id may
/// itself contain `:`, so split at the first one).
fn parse_assignment(text: &str) -> Option<RoleAssignment> {
    let (role, user) = text.split_once(':')?;
    Some(RoleAssignment {
        user: OaUserId::new(user),
        role: OaRoleId(role.parse().ok()?),
    })
}

fn assignment_key(a: &RoleAssignment) -> String {
    format!("{}:{}", a.role, a.user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_ids_split_at_the_first_colon() {
        let a = parse_assignment("17:corp:zhang").unwrap();
        assert_eq!(a.user.as_str(), "corp:zhang");
        assert_eq!(a.role, OaRoleId(17));
        assert_eq!(assignment_key(&a), "17:corp:zhang");
        assert!(parse_assignment("nouser").is_none());
        assert!(parse_assignment("x:u").is_none());
    }

    #[test]
    fn dingtalk_owned_fields_keep_the_base_value() {
        let base = Department::new(OaDeptId(5), "Base name", Some(OaDeptId(1)));
        let mut pushed = base.clone();
        pushed.name = "OA name".into();
        pushed.order = 4;
        let mut policy = MergePolicy::default();
        policy
            .authority
            .insert(directory_model::DeptField::Name, Authority::DingTalk);
        keep_dingtalk_owned(&mut pushed, Some(&base), &policy);
        assert_eq!(pushed.name, "Base name");
        assert_eq!(pushed.order, 4, "fields both sides own are pushed");
        let mut created = pushed.clone();
        created.name = "New".into();
        keep_dingtalk_owned(&mut created, None, &policy);
        assert_eq!(created.name, "New");
    }

    fn api_error(code: i64, prior: bool) -> ClientError {
        ClientError::Api {
            api: "/topapi/v2/user/create",
            errcode: wire::ErrCode(code),
            sub_code: None,
            errmsg: "msg".into(),
            request_id: None,
            prior_attempt_may_have_succeeded: prior,
        }
    }

    #[test]
    fn dingtalk_errors_become_retries_or_dead_letters() {
        // A clash a retry cannot fix: dead letter, carrying the code.
        match Step::from_client(&api_error(60104, false)) {
            Step::Dead(msg) => assert!(msg.contains("60104"), "{msg}"),
            other => panic!("{other:?}"),
        }
        // Busy and throttled: later, throttles at least DingTalk's window.
        assert!(matches!(
            Step::from_client(&api_error(-1, false)),
            Step::Retry {
                throttled: false,
                ..
            }
        ));
        assert!(matches!(
            Step::from_client(&api_error(90018, false)),
            Step::Retry {
                throttled: true,
                ..
            }
        ));
        assert!(is_code(
            &api_error(60102, false),
            &[wire::ErrCode::USERID_EXISTS]
        ));
        assert!(is_not_found(&api_error(60121, false)));
        assert!(prior_attempt_may_have_succeeded(&api_error(60008, true)));
        assert!(!prior_attempt_may_have_succeeded(&api_error(60008, false)));
    }

    #[test]
    fn marker_names_the_oa_id() {
        assert_eq!(source_marker(OaDeptId(42)), "dingsync:42");
    }
}
