//! Event application: DingTalk's events from the inbox into the OA directory.
//!
//! An event says *which* entities changed, never *how*, and DingTalk may deliver it twice, late
//! or out of order. So the applier never trusts an event's content: for every id it names it
//! fetches the entity's **current** state (`user/get`, where 60121 means the user left;
//! `department/get`, where 60003 means the department is gone; the role list for role
//! definitions) and applies that with the three-way merge of design invariant 7:
//!
//! - base = the last state both sides held (the store's base snapshot), OA = the directory's
//!   entity, DingTalk = the fetched state converted through the id map;
//! - the OA side is written when the merge differs from it (origin `dingtalk`, no outbox
//!   entry unless OA won a field, in which case the entry brings DingTalk back to the merge);
//! - conflicts go to the conflicts table and the audit log; the base moves to what both sides
//!   will hold;
//! - when merge == OA == DingTalk nothing is written or queued: the echo of dingsync's own push
//!   is a no-op (invariant 5), and replaying any event any number of times in any order ends
//!   in the same directory (invariant 4).
//!
//! References are resolved before conversion: a user in a department the directory does not
//! know yet (its create event is still behind in the queue) gets that department fetched and
//! applied first, and likewise a manager, a parent department or a role — so reordering is
//! harmless rather than an error. A user who left and comes back under the same userid is the
//! same OA user, whose state goes back to active. Entities outside the policy's scope are
//! ignored.
//!
//! # Inbox payloads
//! The inbox stores each event's text as it arrived: the decrypted HTTP push (either dialect)
//! as is; a Stream event as `{"stream": {"headers": {...}, "data": "<data string>"}}`; an entry
//! of the failed-push list (see [`crate::catchup`]) as `{"failed_callback": {...}}`.
//! [`parse_inbox_event`] reads all three.
//!
//! # Several instances
//! Two instances may claim two events naming the same entity at once. Each fetches DingTalk's
//! state and then writes; if the one that fetched *earlier* writes *later*, its stale state
//! would overwrite the newer one, and its base would make the newer value look like an OA
//! change (a lost update, and possibly a push of the stale value back to DingTalk). The version
//! check on the OA write does not catch this when the stale worker reads the OA row after the
//! other's write, nor does it cover role assignments. So on PostgreSQL every entity is applied
//! under an entity lock — a lease row `apply:user:<userid>`, `apply:department:<id>` or
//! `apply:roles` held by the worker from before the fetch until after the write, re-entrant
//! within one event, expiring with the claim lease if the worker dies. Whoever takes the lock
//! second fetches after the first one wrote, so the later fetch always writes last. A worker
//! that finds the lock taken waits up to `lock_wait`, then retries the event later. SQLite runs
//! one instance with one applier, so it skips the locks.
//!
//! # Workers
//! [`Applier::drain`] applies everything claimable now and returns (what tests and `run_once`
//! use); [`Applier::run`] repeats that until its `CancellationToken` fires, waking on a
//! [`Notify`] (the callback route signals new events) or a poll interval. A failure that a
//! retry may cure (DingTalk busy or unreachable, a write race) is retried with jittered
//! backoff; anything else, or too many attempts, becomes an inbox dead letter with the error.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dingtalk_client::{Backoff, ClientError};
use dingtalk_proto::{
    ErrCode,
    events::{ContactEvent, EventError, EventKind, StreamEventHeaders},
};
use directory_model::{
    Conflict, Department, DingDeptId, DingUserId, FieldAccess, MergePolicy, OaDeptId, OaRoleId,
    OaUserId, Role, RoleGroup, User, merge,
};
use directory_store::{
    EntityKind, Expect, InboxEvent, Outcome, Saved, Store, StoreError, Versioned, WriteCtx,
};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::context::SyncContext;
use crate::translate::{self, ConvertError, IdMap, ding};
use crate::import::{delete_departments, link, mark_left};

/// How deep reference resolution may recurse (user → department → manager → …) before the
/// event is retried later instead; real chains are short, cycles are not followed forever.
const MAX_DEPTH: u32 = 6;

/// Why an event could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The stored payload is not a contacts event.
    #[error("the inbox payload is not a readable event")]
    Event(#[from] EventError),
    /// DingTalk could not be read.
    #[error("could not read DingTalk's current state")]
    Client(#[from] ClientError),
    /// The directory could not be read or written.
    #[error("directory store failed")]
    Store(#[from] StoreError),
    /// A reference could not be resolved (a bug or an inconsistent DingTalk answer).
    #[error("could not convert DingTalk's state")]
    Convert(#[from] ConvertError),
    /// Another worker (another instance) is applying the same entity; try again later.
    #[error("{lock} is being applied by another worker")]
    Busy {
        /// The entity lock that stayed taken.
        lock: String,
    },
    /// A reference chain was too deep to resolve now.
    #[error("{kind} {id} is referenced but could not be resolved yet")]
    Unresolved {
        /// The kind of the missing entity.
        kind: EntityKind,
        /// Its DingTalk id.
        id: String,
    },
}

impl ApplyError {
    /// Whether applying the same event later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Event(_) | Self::Convert(_) => false,
            Self::Client(e) => e.is_retryable() || e.is_token_invalid(),
            // A version conflict or a vanished entity is an OA write racing this one (an OA
            // user deleted between reading and saving dead-lettered its event in
            // `tests/crash_anywhere.rs`); applying again sees the new OA state.
            Self::Store(e) => {
                !e.is_client_error()
                    || matches!(
                        e,
                        StoreError::VersionConflict { .. } | StoreError::NotFound { .. }
                    )
            }
            Self::Unresolved { .. } | Self::Busy { .. } => true,
        }
    }
}

/// What applying one event did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Applied {
    /// Directory writes (creates, updates, deletions, state changes, assignments).
    pub writes: usize,
    /// Outbox entries queued because OA won a field.
    pub pushes: usize,
    /// Conflicts recorded.
    pub conflicts: usize,
    /// Entities skipped (out of scope, unknown and already gone, event types not modelled).
    pub ignored: usize,
}

impl Applied {
    fn add(&mut self, other: Applied) {
        self.writes += other.writes;
        self.pushes += other.pushes;
        self.conflicts += other.conflicts;
        self.ignored += other.ignored;
    }

    fn ignored() -> Self {
        Self {
            ignored: 1,
            ..Self::default()
        }
    }
}

/// Totals of a drain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DrainStats {
    /// Events applied (and marked done).
    pub events: usize,
    /// Events returned to the queue for a later attempt.
    pub retried: usize,
    /// Events parked as dead letters.
    pub dead: usize,
    /// What the applied events did.
    pub applied: Applied,
}

/// Worker settings.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// The worker name in claims (unique per worker so leases are not confused).
    pub worker: String,
    /// Events claimed at a time.
    pub batch: u32,
    /// How long a claim lasts before another worker may take the event over.
    pub lease_ms: i64,
    /// Attempts before an event becomes a dead letter.
    pub max_attempts: i64,
    /// Delay between attempts of a failing event.
    pub backoff: Backoff,
    /// Seed of the jitter RNG (`None`: from the OS).
    pub rng_seed: Option<u64>,
    /// How often [`Applier::run`] looks for due retries when nobody wakes it.
    pub poll_interval: Duration,
    /// How long to wait for an entity another worker is applying before retrying the event
    /// later (PostgreSQL only; see "Several instances" in the module doc).
    pub lock_wait: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            worker: "apply-1".to_owned(),
            batch: 32,
            lease_ms: 60_000,
            max_attempts: 8,
            backoff: Backoff {
                initial: Duration::from_secs(1),
                multiplier: 2.0,
                max: Duration::from_secs(300),
                throttle_floor: Duration::from_secs(1),
            },
            rng_seed: None,
            poll_interval: Duration::from_secs(1),
            lock_wait: Duration::from_secs(10),
        }
    }
}

/// Reads a stored inbox event in any of the formats described in the module doc.
pub fn parse_inbox_event(event: &InboxEvent) -> Result<ContactEvent, EventError> {
    let value: serde_json::Value =
        serde_json::from_str(&event.payload_json).map_err(|source| EventError::Json { source })?;
    if let Some(failed) = value.get("failed_callback") {
        let tag = failed
            .get("call_back_tag")
            .and_then(|t| t.as_str())
            .unwrap_or(event.event_type.as_str());
        let time = failed.get("event_time").and_then(serde_json::Value::as_i64);
        let payload = failed.get("payload").unwrap_or(&serde_json::Value::Null);
        return ContactEvent::from_failed_callback(tag, time, payload);
    }
    if let Some(stream) = value.get("stream") {
        let headers: StreamEventHeaders = stream
            .get("headers")
            .cloned()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|source| EventError::Json { source })?
            .unwrap_or_default();
        let data = stream.get("data").and_then(|d| d.as_str()).unwrap_or("{}");
        return ContactEvent::from_stream(&headers, data);
    }
    ContactEvent::from_http_json(&event.payload_json)
}

/// A boxed future, for the recursion of reference resolution.
type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The entity locks one event's application holds, so that reference resolution re-entering
/// an entity (a user whose manager's manager is that user) does not wait for itself.
#[derive(Debug, Default)]
struct Held(Mutex<BTreeSet<String>>);

impl Held {
    fn contains(&self, lock: &str) -> bool {
        // A poisoned lock only means a panic elsewhere; the set is still valid.
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(lock)
    }
    fn insert(&self, lock: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(lock.to_owned());
    }
    fn remove(&self, lock: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(lock);
    }
}

/// Applies inbox events; cheap to share (`Arc`) between a worker task and a handler.
#[derive(Debug)]
pub struct Applier {
    /// Store, client, policy, clock.
    ctx: SyncContext,
    /// Worker settings.
    options: ApplyOptions,
    /// Jitter for retry delays (seeded from the options so tests can replay a schedule).
    rng: Mutex<StdRng>,
}

/// The store writes of one entity kind the merge needs; implemented for the four entities.
trait Synced: FieldAccess + Serialize + DeserializeOwned + Send + Sync + 'static {
    const KIND: EntityKind;
    fn oa_key(&self) -> String;
    fn save<'a>(
        store: &'a Store,
        ctx: &'a WriteCtx,
        value: Self,
        expect: Expect,
    ) -> impl Future<Output = Result<Saved<Self>, StoreError>> + Send + 'a;
}

impl Synced for User {
    const KIND: EntityKind = EntityKind::User;
    fn oa_key(&self) -> String {
        self.id.0.clone()
    }
    fn save<'a>(
        store: &'a Store,
        ctx: &'a WriteCtx,
        value: Self,
        expect: Expect,
    ) -> impl Future<Output = Result<Saved<Self>, StoreError>> + Send + 'a {
        store.save_user(ctx, value, expect)
    }
}

impl Synced for Department {
    const KIND: EntityKind = EntityKind::Department;
    fn oa_key(&self) -> String {
        self.id.to_string()
    }
    fn save<'a>(
        store: &'a Store,
        ctx: &'a WriteCtx,
        value: Self,
        expect: Expect,
    ) -> impl Future<Output = Result<Saved<Self>, StoreError>> + Send + 'a {
        store.save_department(ctx, value, expect)
    }
}

impl Synced for RoleGroup {
    const KIND: EntityKind = EntityKind::RoleGroup;
    fn oa_key(&self) -> String {
        self.id.to_string()
    }
    fn save<'a>(
        store: &'a Store,
        ctx: &'a WriteCtx,
        value: Self,
        expect: Expect,
    ) -> impl Future<Output = Result<Saved<Self>, StoreError>> + Send + 'a {
        store.save_role_group(ctx, value, expect)
    }
}

impl Synced for Role {
    const KIND: EntityKind = EntityKind::Role;
    fn oa_key(&self) -> String {
        self.id.to_string()
    }
    fn save<'a>(
        store: &'a Store,
        ctx: &'a WriteCtx,
        value: Self,
        expect: Expect,
    ) -> impl Future<Output = Result<Saved<Self>, StoreError>> + Send + 'a {
        store.save_role(ctx, value, expect)
    }
}

fn is_code(e: &ClientError, code: ErrCode) -> bool {
    e.errcode() == Some(code)
}

impl Applier {
    /// An applier over `ctx`.
    pub fn new(ctx: SyncContext, options: ApplyOptions) -> Self {
        let rng = match options.rng_seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_entropy(),
        };
        Self {
            ctx,
            options,
            rng: Mutex::new(rng),
        }
    }

    /// The context this applier works in.
    pub fn context(&self) -> &SyncContext {
        &self.ctx
    }

    fn write_ctx(&self) -> WriteCtx {
        WriteCtx::dingtalk(format!("{}:apply", self.ctx.actor), self.ctx.now_ms())
    }

    /// Takes the entity lock `lock` for this worker (see "Several instances" in the module
    /// doc), waiting up to `lock_wait` for another worker to finish with it. True if this call
    /// took it (and must release it), false if this event's application already held it or
    /// the backend needs no locks.
    async fn lock(&self, held: &Held, lock: &str) -> Result<bool, ApplyError> {
        if self.ctx.store.backend() == directory_store::Backend::Sqlite || held.contains(lock) {
            return Ok(false);
        }
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(10);
        loop {
            if self
                .ctx
                .store
                .lease_acquire(
                    lock,
                    &self.options.worker,
                    self.ctx.now_ms(),
                    self.options.lease_ms,
                )
                .await?
            {
                held.insert(lock);
                return Ok(true);
            }
            if started.elapsed() >= self.options.lock_wait {
                return Err(ApplyError::Busy {
                    lock: lock.to_owned(),
                });
            }
            // The other worker finishes within a few DingTalk calls; no notification channel
            // crosses instances, so look again shortly.
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }

    /// Runs `work` (not started before the lock is taken: futures are lazy) under the entity
    /// lock `lock`, releasing it afterwards whatever `work` returned.
    async fn locked<T>(
        &self,
        held: &Held,
        lock: &str,
        work: impl Future<Output = Result<T, ApplyError>>,
    ) -> Result<T, ApplyError> {
        let fresh = self.lock(held, lock).await?;
        let result = work.await;
        self.unlock(held, lock, fresh).await;
        result
    }

    /// Releases an entity lock taken by [`Applier::lock`] (`fresh`); a failed release only
    /// delays the next worker until the lease runs out.
    async fn unlock(&self, held: &Held, lock: &str, fresh: bool) {
        if !fresh {
            return;
        }
        held.remove(lock);
        if let Err(error) = self
            .ctx
            .store
            .lease_release(lock, &self.options.worker)
            .await
        {
            tracing::warn!(lock, %error, "could not release an entity lock; it expires by itself");
        }
    }

    /// Applies every event claimable now, then returns.
    pub async fn drain(&self) -> Result<DrainStats, StoreError> {
        let mut stats = DrainStats::default();
        loop {
            let now = self.ctx.now_ms();
            let claimed = self
                .ctx
                .store
                .inbox_claim(
                    &self.options.worker,
                    now,
                    self.options.lease_ms,
                    self.options.batch,
                )
                .await?;
            if claimed.is_empty() {
                return Ok(stats);
            }
            for event in claimed {
                self.process(&event, &mut stats).await?;
            }
        }
    }

    /// Drains, then waits for `wake` or the poll interval, until `cancel` fires.
    pub async fn run(
        &self,
        wake: Arc<Notify>,
        cancel: CancellationToken,
    ) -> Result<(), StoreError> {
        // A previous run of this worker that failed (the database went away mid-batch) left the
        // rest of its batch claimed; no other task applies under this worker name, so those
        // events are taken back now rather than after their lease.
        let released = self
            .ctx
            .store
            .inbox_release_claims(&self.options.worker, self.ctx.now_ms())
            .await?;
        if released > 0 {
            tracing::info!(
                released,
                "took back the claims of this worker's previous run"
            );
        }
        loop {
            if cancel.is_cancelled() {
                return Ok(());
            }
            let stats = self.drain().await?;
            if stats.events + stats.retried + stats.dead > 0 {
                tracing::debug!(?stats, "inbox drained");
            }
            tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                () = wake.notified() => {}
                () = tokio::time::sleep(self.options.poll_interval) => {}
            }
        }
    }

    /// Applies one claimed event and settles it in the inbox.
    async fn process(&self, event: &InboxEvent, stats: &mut DrainStats) -> Result<(), StoreError> {
        let store = &self.ctx.store;
        let worker = self.options.worker.as_str();
        let result = match parse_inbox_event(event) {
            Ok(parsed) => self.apply_event(&parsed).await,
            Err(e) => Err(ApplyError::Event(e)),
        };
        let now = self.ctx.now_ms();
        match result {
            Ok(applied) => {
                stats.events += 1;
                stats.applied.add(applied);
                store.inbox_done(event.id, worker, now).await
            }
            Err(error) => {
                let text = error_chain(&error);
                if error.is_retryable() && event.attempts < self.options.max_attempts {
                    let attempt = u32::try_from(event.attempts.max(1) - 1).unwrap_or(u32::MAX);
                    let throttled = matches!(&error, ApplyError::Client(e) if e.is_throttle());
                    let delay = match self.rng.lock() {
                        Ok(mut rng) => self.options.backoff.delay(attempt, throttled, &mut *rng),
                        Err(_) => self.options.backoff.base(attempt),
                    };
                    let at =
                        now.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
                    tracing::info!(event = event.id, error = %text, "event will be retried");
                    stats.retried += 1;
                    store
                        .inbox_retry_later(event.id, worker, at, &text, now)
                        .await
                } else {
                    tracing::warn!(event = event.id, error = %text, "event is a dead letter");
                    stats.dead += 1;
                    store.inbox_dead_letter(event.id, worker, &text, now).await
                }
            }
        }
    }

    /// Applies one event (any dialect) by fetching the current state of what it names.
    pub async fn apply_event(&self, event: &ContactEvent) -> Result<Applied, ApplyError> {
        let held = Held::default();
        let mut total = Applied::default();
        match &event.kind {
            EventKind::UserAddOrg(c)
            | EventKind::UserLeaveOrg(c)
            | EventKind::UserActiveOrg(c)
            | EventKind::OrgAdminAdd(c)
            | EventKind::OrgAdminRemove(c)
            | EventKind::UserModifyOrg { change: c, .. } => {
                for u in &c.user_ids {
                    total.add(self.user(DingUserId::new(u.as_str()), 0, &held).await?);
                }
            }
            EventKind::LabelUserChange { user_ids, .. } => {
                for u in user_ids {
                    total.add(self.user(DingUserId::new(u.as_str()), 0, &held).await?);
                }
            }
            EventKind::OrgDeptCreate { dept_ids }
            | EventKind::OrgDeptModify { dept_ids }
            | EventKind::OrgDeptRemove { dept_ids } => {
                for d in dept_ids {
                    total.add(self.dept(ding::dept(*d), 0, &held).await?);
                }
            }
            EventKind::LabelConfAdd { .. }
            | EventKind::LabelConfModify { .. }
            | EventKind::LabelConfDel { .. } => {
                total.add(self.roles(&held).await?);
            }
            _ => total.add(Applied::ignored()),
        }
        Ok(total)
    }

    /// Brings one user to DingTalk's current state (including their roles).
    pub fn sync_user(
        &self,
        userid: DingUserId,
        depth: u32,
    ) -> Boxed<'_, Result<Applied, ApplyError>> {
        Box::pin(async move {
            let held = Held::default();
            self.user(userid, depth, &held).await
        })
    }

    /// [`Applier::sync_user`] under the user's entity lock.
    fn user<'a>(
        &'a self,
        userid: DingUserId,
        depth: u32,
        held: &'a Held,
    ) -> Boxed<'a, Result<Applied, ApplyError>> {
        Box::pin(async move {
            let lock = format!("apply:user:{userid}");
            self.locked(held, &lock, self.user_locked(userid, depth, held))
                .await
        })
    }

    fn user_locked<'a>(
        &'a self,
        userid: DingUserId,
        depth: u32,
        held: &'a Held,
    ) -> Boxed<'a, Result<Applied, ApplyError>> {
        Box::pin(async move {
            let store = &self.ctx.store;
            let mut ids = IdMap::default();
            ids.load_refs(store, [], [userid.clone()]).await?;
            let known = ids.oa_user(&userid).cloned();
            // Read before DingTalk is; see `merge_and_write`.
            let base_before: Option<User> = match &known {
                Some(id) => store.base_get(EntityKind::User, id.as_str()).await?,
                None => None,
            };
            let wire = match self.ctx.client.user_get(&ding::wire_user(&userid)).await {
                Ok(w) => w,
                Err(e)
                    if is_code(&e, ErrCode::USER_NOT_FOUND)
                        || is_code(&e, ErrCode::INVALID_USERID) =>
                {
                    // Gone from DingTalk: the user left (or never existed).
                    let Some(oa_id) = known else {
                        return Ok(Applied::ignored());
                    };
                    let left = mark_left(&self.ctx, &self.write_ctx(), &oa_id).await?;
                    return Ok(Applied {
                        writes: usize::from(left),
                        ..Applied::default()
                    });
                }
                Err(e) => return Err(e.into()),
            };
            if !self.ctx.policy.scope.is_everything() {
                let chains = self
                    .ctx
                    .client
                    .dept_list_parents_by_user(&wire.userid)
                    .await?;
                let in_scope = chains.iter().any(|c| {
                    let chain: Vec<DingDeptId> = c.iter().copied().map(ding::dept).collect();
                    self.ctx.policy.scope.contains_chain(&chain)
                });
                if !in_scope {
                    return Ok(Applied::ignored());
                }
            }
            let mut total = Applied::default();
            // Departments the directory does not know yet are fetched first.
            let depts: Vec<DingDeptId> = wire
                .dept_id_list
                .iter()
                .flatten()
                .map(|d| ding::dept(*d))
                .collect();
            ids.load_refs(store, depts.iter().copied(), []).await?;
            for d in &depts {
                if ids.oa_dept(*d).is_none() {
                    if depth >= MAX_DEPTH {
                        return Err(ApplyError::Unresolved {
                            kind: EntityKind::Department,
                            id: d.to_string(),
                        });
                    }
                    total.add(self.dept(*d, depth + 1, held).await?);
                }
            }
            if let Some(m) = wire.manager_userid.as_ref().filter(|m| !m.0.is_empty()) {
                let m = ding::user(m);
                ids.load_refs(store, [], [m.clone()]).await?;
                if ids.oa_user(&m).is_none() && m != userid {
                    if depth >= MAX_DEPTH {
                        return Err(ApplyError::Unresolved {
                            kind: EntityKind::User,
                            id: m.to_string(),
                        });
                    }
                    total.add(self.user(m.clone(), depth + 1, held).await?);
                }
            }
            let oa_id = match known {
                Some(id) => id,
                None => self.link_new_user(&userid).await?,
            };
            let mut ids = IdMap::default();
            ids.insert_user(oa_id.clone(), userid.clone());
            ids.load_refs(
                store,
                depts.iter().copied(),
                wire.manager_userid.iter().map(ding::user),
            )
            .await?;
            let mut wire = wire;
            // Departments out of scope stay unlinked and are not the directory's business.
            if let Some(list) = &mut wire.dept_id_list {
                list.retain(|d| ids.oa_dept(ding::dept(*d)).is_some());
            }
            let current = store.get_user(&oa_id).await?;
            let mut converted = translate::user::from_wire(&wire, &ids, current.as_ref().map(|c| &c.entity))?;
            let rehomed = self.rehome_from_deleted(&mut converted).await?;
            // DingTalk drops a user from the managers of a department they leave, and sends no
            // event for that department (a later push may even bring the user back, without the
            // manager role). So every department OA says this user manages, among those the user
            // is or was in, is read again when DingTalk's `leader_in_dept` disagrees (found by
            // the convergence property test: OA kept a manager DingTalk had dropped).
            let leads: BTreeSet<i64> = wire
                .leader_in_dept
                .iter()
                .flatten()
                .filter(|l| l.leader)
                .map(|l| l.dept_id.0)
                .collect();
            let mut candidates: BTreeSet<OaDeptId> = converted.department_ids().collect();
            if let Some(c) = &current {
                candidates.extend(c.entity.department_ids());
            }
            if let Some(b) = store
                .base_get::<User>(EntityKind::User, oa_id.as_str())
                .await?
            {
                candidates.extend(b.department_ids());
            }
            total.add(
                self.merge_and_write(
                    current,
                    converted,
                    Some(base_before),
                    &self.ctx.policy.users,
                )
                .await?,
            );
            for d in candidates {
                if depth < MAX_DEPTH
                    && let Some(dept) = store.get_department(d).await?
                    && dept.entity.managers.contains(&oa_id)
                    && let Some(ding) = store.ding_id_of(&d).await?
                    && !leads.contains(&ding.0)
                {
                    total.add(self.sync_dept(ding, depth + 1).await?);
                }
            }
            if rehomed && let Some(now) = store.get_user(&oa_id).await? {
                // DingTalk must move the user too, or the pending deletion stays refused.
                let value = serde_json::to_value(&now.entity).map_err(StoreError::from)?;
                let wctx = self.write_ctx().with_record_base(false);
                store
                    .enqueue_push(&wctx, EntityKind::User, oa_id.as_str(), &value)
                    .await?;
                total.pushes += 1;
            }
            if store.get_user(&oa_id).await?.is_none() {
                // Deleted in OA, its deletion on its way to DingTalk: no roles to give it (the
                // convergence property test found an assignment left on a deleted user).
                return Ok(total);
            }
            let roles: Vec<directory_model::DingRoleId> = wire
                .role_list
                .iter()
                .flatten()
                .map(|r| ding::role(r.id))
                .collect();
            total.add(self.sync_user_roles(&oa_id, &roles, depth, held).await?);
            Ok(total)
        })
    }

    /// Moves memberships of departments OA deleted (still linked, their deletion waiting in
    /// the outbox) to the nearest ancestor OA still has, as OA's cascade did with the members
    /// it knew; returns whether any moved. Without this a user DingTalk added to such a
    /// department before the deletion reached it lands in a department OA no longer has, and
    /// DingTalk refuses the deletion forever (60005; found by the convergence property test).
    async fn rehome_from_deleted(&self, user: &mut User) -> Result<bool, StoreError> {
        let mut moved = false;
        let mut kept: Vec<directory_model::Membership> = Vec::with_capacity(user.departments.len());
        for m in std::mem::take(&mut user.departments) {
            let dept = self.nearest_surviving(m.dept).await?;
            if dept != m.dept {
                moved = true;
                if user.main_department == Some(m.dept) {
                    user.main_department = Some(dept);
                }
            }
            if !kept.iter().any(|k| k.dept == dept) {
                kept.push(directory_model::Membership { dept, ..m });
            }
        }
        user.departments = kept;
        Ok(moved)
    }

    /// `dept` if OA has it, else its nearest ancestor OA still has (walking the base, which
    /// remembers deleted departments' parents), else `dept` itself.
    async fn nearest_surviving(&self, dept: OaDeptId) -> Result<OaDeptId, StoreError> {
        let store = &self.ctx.store;
        let mut at = dept;
        for _ in 0..32 {
            if store.get_department(at).await?.is_some() {
                return Ok(at);
            }
            let base: Option<Department> = store
                .base_get(EntityKind::Department, &at.to_string())
                .await?;
            match base.and_then(|b| b.parent) {
                Some(parent) => at = parent,
                None => break,
            }
        }
        Ok(dept)
    }

    /// Links a DingTalk user the id map does not know: the OA user of the same id (an OA-created
    /// user whose push has not saved its link yet), or a new OA user under that id.
    async fn link_new_user(&self, userid: &DingUserId) -> Result<OaUserId, ApplyError> {
        let oa_id = OaUserId::new(userid.as_str());
        self.ctx.store.id_map_put(&oa_id, userid).await?;
        Ok(oa_id)
    }

    /// Three-way merge of one entity and the writes it implies.
    ///
    /// The base must not be newer than `dingtalk`: a push that lands between fetching
    /// DingTalk's state and reading the base moves the base to the pushed value, and the older
    /// fetched value would then look like DingTalk changing it back, undoing the OA write. So
    /// callers that can read the base before fetching pass it as `base_before` (`Some`);
    /// `None` reads it here (role definitions, fetched as one list).
    ///
    /// When OA wins a field the base does not move: DingTalk does not hold the merged state
    /// until the queued push lands (the pusher moves the base then). Moving it early made a
    /// later event, fetched before that push landed, take DingTalk's not-yet-updated value for
    /// a change back and revert the OA write (both found by `tests/crash_anywhere.rs`).
    async fn merge_and_write<T: Synced>(
        &self,
        current: Option<Versioned<T>>,
        dingtalk: T,
        base_before: Option<Option<T>>,
        policy: &MergePolicy<T::Field>,
    ) -> Result<Applied, ApplyError> {
        let store = &self.ctx.store;
        let wctx = self.write_ctx();
        let key = dingtalk.oa_key();
        let Some(current) = current else {
            // The base remembers an entity both sides held, so its absence in OA means the OA
            // side deleted it since: that deletion is queued for DingTalk and stands. Re-creating
            // it from an event that raced the push would undo the OA user's delete.
            // Without a base (a crash between DingTalk's success and saving it), a queued OA
            // deletion says the same.
            if store.base_get::<T>(T::KIND, &key).await?.is_some()
                || store.outbox_deletion_queued(T::KIND, &key).await?
            {
                return Ok(Applied::default());
            }
            // An upsert: another worker applying an event of the same entity may have created
            // it a moment ago, and DingTalk's state is what both would write.
            let saved = T::save(store, &wctx, dingtalk, Expect::Any).await?;
            return Ok(Applied {
                writes: usize::from(saved.outcome != Outcome::Unchanged),
                ..Applied::default()
            });
        };
        let base = match base_before {
            Some(base) => base,
            None => store.base_get(T::KIND, &key).await?,
        };
        // No base while OA holds the entity: it was created in OA and its push has not saved the
        // base yet (the event of the push overtook it, or a crash came between DingTalk's
        // success and saving). Nothing was ever synced, so DingTalk holds at most an older OA
        // state: every difference is an OA change still on its way. (Taking OA's own state as
        // the base instead made every difference look like a DingTalk change and reverted OA
        // writes made after the create – found by `tests/crash_anywhere.rs`.)
        let base: T = base.unwrap_or_else(|| dingtalk.clone());
        let merged = merge(&base, &current.entity, &dingtalk, policy);
        let mut applied = Applied::default();
        if !merged.conflicts.is_empty() {
            let conflicts = conflicts_json(&merged.conflicts)?;
            let value = serde_json::to_value(&merged.value).map_err(StoreError::from)?;
            store
                .audit_conflicts(&wctx, T::KIND, &key, &conflicts, &value)
                .await?;
            // The conflicts table is what `status`, metrics and the demo count.
            store
                .record_conflicts(T::KIND, &key, &merged.conflicts, wctx.now_ms)
                .await?;
            applied.conflicts = merged.conflicts.len();
        }
        let push = !merged.dingtalk_changes.is_empty();
        if merged.value != current.entity {
            let saved = T::save(
                store,
                &wctx.clone().with_enqueue(push).with_record_base(!push),
                merged.value,
                Expect::Version(current.version),
            )
            .await?;
            applied.writes += 1;
            applied.pushes += usize::from(saved.outbox_id.is_some());
        } else if push {
            let value = serde_json::to_value(&merged.value).map_err(StoreError::from)?;
            store
                .enqueue_push(&wctx.clone().with_record_base(false), T::KIND, &key, &value)
                .await?;
            applied.pushes += 1;
        } else {
            // Both sides agree; saving the equal state writes nothing but moves a stale base.
            T::save(store, &wctx, merged.value, Expect::Version(current.version)).await?;
        }
        if push {
            // DingTalk does not hold OA's winning fields until the push lands, so the base is
            // DingTalk's state, not the merge: a second event before the push must see OA (not
            // DingTalk) as the side that changed, or it would undo OA's change (found by the
            // convergence property test). The pusher moves the base once DingTalk accepts.
            store
                .base_set(T::KIND, &key, Some(&dingtalk), wctx.now_ms)
                .await?;
        }
        Ok(applied)
    }

    /// Brings one user's role assignments to DingTalk's, three-way per assignment: an
    /// assignment only one side has is kept if that side added it since the last sync (it is
    /// on its way to the other side) and removed if the other side dropped it.
    async fn sync_user_roles(
        &self,
        user: &OaUserId,
        ding_roles: &[directory_model::DingRoleId],
        depth: u32,
        held: &Held,
    ) -> Result<Applied, ApplyError> {
        let store = &self.ctx.store;
        let mut applied = Applied::default();
        let mut want: BTreeSet<OaRoleId> = BTreeSet::new();
        let mut refreshed = false;
        for r in ding_roles {
            let mut oa_role = store.oa_id_of::<OaRoleId>(r).await?;
            if oa_role.is_none() && !refreshed && depth < MAX_DEPTH {
                applied.add(self.roles(held).await?);
                refreshed = true;
                oa_role = store.oa_id_of::<OaRoleId>(r).await?;
            }
            match oa_role {
                Some(id) => {
                    want.insert(id);
                }
                None => {
                    return Err(ApplyError::Unresolved {
                        kind: EntityKind::Role,
                        id: r.to_string(),
                    });
                }
            }
        }
        let mut have: BTreeSet<OaRoleId> = BTreeSet::new();
        let mut after = None;
        loop {
            let page = store
                .list_assignments(&directory_store::AssignmentQuery {
                    user: Some(user.clone()),
                    after,
                    limit: 1000,
                    ..Default::default()
                })
                .await?;
            have.extend(page.items.iter().map(|a| a.role));
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        let wctx = self.write_ctx();
        for role in want.symmetric_difference(&have) {
            let key = format!("{role}:{user}");
            let in_base = store
                .base_get::<serde_json::Value>(EntityKind::RoleAssignment, &key)
                .await?
                .is_some();
            if want.contains(role) && !in_base {
                store.assign_role(&wctx, user, *role).await?;
                applied.writes += 1;
            } else if have.contains(role) && in_base {
                store.unassign_role(&wctx, user, *role).await?;
                applied.writes += 1;
            }
        }
        Ok(applied)
    }

    /// Brings one department to DingTalk's current state (or removes it).
    pub fn sync_dept(&self, id: DingDeptId, depth: u32) -> Boxed<'_, Result<Applied, ApplyError>> {
        Box::pin(async move {
            let held = Held::default();
            self.dept(id, depth, &held).await
        })
    }

    /// [`Applier::sync_dept`] under the department's entity lock.
    fn dept<'a>(
        &'a self,
        id: DingDeptId,
        depth: u32,
        held: &'a Held,
    ) -> Boxed<'a, Result<Applied, ApplyError>> {
        Box::pin(async move {
            let lock = format!("apply:department:{id}");
            self.locked(held, &lock, self.dept_locked(id, depth, held))
                .await
        })
    }

    fn dept_locked<'a>(
        &'a self,
        id: DingDeptId,
        depth: u32,
        held: &'a Held,
    ) -> Boxed<'a, Result<Applied, ApplyError>> {
        Box::pin(async move {
            let store = &self.ctx.store;
            let known = store.oa_id_of::<OaDeptId>(&id).await?;
            // Read before DingTalk is; see `merge_and_write`.
            let base_before: Option<Department> = match known {
                Some(oa) => {
                    store
                        .base_get(EntityKind::Department, &oa.to_string())
                        .await?
                }
                None => None,
            };
            let wire = match self.ctx.client.dept_get(ding::wire_dept(id)).await {
                Ok(w) => w,
                Err(e) if is_code(&e, ErrCode::DEPT_NOT_FOUND) => {
                    let Some(oa_id) = known else {
                        return Ok(Applied::ignored());
                    };
                    if store.get_department(oa_id).await?.is_none() {
                        store.id_map_remove(&oa_id).await?;
                        return Ok(Applied::ignored());
                    }
                    delete_departments(&self.ctx, &self.write_ctx(), &[oa_id]).await?;
                    return Ok(Applied {
                        writes: 1,
                        ..Applied::default()
                    });
                }
                Err(e) => return Err(e.into()),
            };
            if !self.ctx.policy.scope.is_everything() && id != DingDeptId::ROOT {
                let chain: Vec<DingDeptId> = self
                    .ctx
                    .client
                    .dept_list_parents(ding::wire_dept(id))
                    .await?
                    .into_iter()
                    .map(ding::dept)
                    .collect();
                if !self.ctx.policy.scope.contains_chain(&chain) {
                    return Ok(Applied::ignored());
                }
            }
            let mut total = Applied::default();
            if let Some(parent) = wire.parent_id.map(ding::dept)
                && id != DingDeptId::ROOT
                && store.oa_id_of::<OaDeptId>(&parent).await?.is_none()
            {
                if depth >= MAX_DEPTH {
                    return Err(ApplyError::Unresolved {
                        kind: EntityKind::Department,
                        id: parent.to_string(),
                    });
                }
                total.add(self.dept(parent, depth + 1, held).await?);
            }
            let managers: Vec<DingUserId> = wire
                .dept_manager_userid_list
                .iter()
                .flatten()
                .map(ding::user)
                .collect();
            let oa_id = match known {
                Some(k) => k,
                None => self.link_new_dept(&wire).await?,
            };
            let mut ids = IdMap::default();
            ids.insert_dept(oa_id, id);
            ids.load_refs(
                store,
                wire.parent_id.map(ding::dept),
                managers.iter().cloned(),
            )
            .await?;
            for m in &managers {
                if ids.oa_user(m).is_none() {
                    if depth >= MAX_DEPTH {
                        return Err(ApplyError::Unresolved {
                            kind: EntityKind::User,
                            id: m.to_string(),
                        });
                    }
                    total.add(self.user(m.clone(), depth + 1, held).await?);
                }
            }
            ids.load_refs(store, [], managers.iter().cloned()).await?;
            let mut wire = wire;
            if let Some(list) = &mut wire.dept_manager_userid_list {
                // A manager outside the scope is not in the directory.
                list.retain(|u| ids.oa_user(&ding::user(u)).is_some());
            }
            let current = store.get_department(oa_id).await?;
            let mut converted =
                translate::department::from_wire(&wire, &ids, current.as_ref().map(|c| &c.entity))?;
            // A parent OA deleted (its deletion still queued): the nearest surviving ancestor,
            // and DingTalk is told, as for users in `rehome_from_deleted`.
            let mut rehomed = false;
            if let Some(parent) = converted.parent {
                let surviving = self.nearest_surviving(parent).await?;
                rehomed = surviving != parent;
                converted.parent = Some(surviving);
            }
            total.add(
                self.merge_and_write(
                    current,
                    converted,
                    Some(base_before),
                    &self.ctx.policy.departments,
                )
                .await?,
            );
            if rehomed && let Some(now) = store.get_department(oa_id).await? {
                let value = serde_json::to_value(&now.entity).map_err(StoreError::from)?;
                let wctx = self.write_ctx().with_record_base(false);
                store
                    .enqueue_push(&wctx, EntityKind::Department, &oa_id.to_string(), &value)
                    .await?;
                total.pushes += 1;
            }
            Ok(total)
        })
    }

    /// Links a DingTalk department the id map does not know: the OA department its
    /// `dingsync:<id>` source identifier names (an OA-created department whose push has not
    /// saved its link yet), the OA root for DingTalk's root, or a freshly allocated OA id.
    async fn link_new_dept(
        &self,
        wire: &dingtalk_proto::dept::DeptDetail,
    ) -> Result<OaDeptId, ApplyError> {
        let store = &self.ctx.store;
        let id = ding::dept(wire.dept_id);
        let candidate = if id == DingDeptId::ROOT {
            // Rare (once per directory), so reading the whole directory is fine.
            let snap = store.snapshot().await?;
            let roots: Vec<OaDeptId> = snap
                .departments
                .values()
                .filter(|d| d.parent.is_none())
                .map(|d| d.id)
                .collect();
            match roots.as_slice() {
                [one] => Some(*one),
                _ => None,
            }
        } else {
            match wire
                .source_identifier
                .as_deref()
                .and_then(|s| s.strip_prefix("dingsync:"))
                .and_then(|n| n.parse::<i64>().ok())
            {
                Some(n) if store.get_department(OaDeptId(n)).await?.is_some() => Some(OaDeptId(n)),
                _ => None,
            }
        };
        let candidate = match candidate {
            Some(c) if store.ding_id_of(&c).await?.is_none() => Some(c),
            _ => None,
        };
        let oa_id = match candidate {
            Some(c) => c,
            None => OaDeptId(store.allocate_ids(EntityKind::Department, 1).await?),
        };
        store.id_map_put(&oa_id, &id).await?;
        Ok(oa_id)
    }

    /// Brings role groups and roles to DingTalk's role list: new ones are linked (by name to
    /// unlinked OA ones, else created), changed ones merged, vanished ones deleted.
    pub async fn sync_roles(&self) -> Result<Applied, ApplyError> {
        self.roles(&Held::default()).await
    }

    /// [`Applier::sync_roles`] under the role list's lock (the role list is read and applied
    /// as a whole, so it is one entity).
    async fn roles(&self, held: &Held) -> Result<Applied, ApplyError> {
        self.locked(held, "apply:roles", self.roles_locked()).await
    }

    async fn roles_locked(&self) -> Result<Applied, ApplyError> {
        let store = &self.ctx.store;
        // The directory and the id map are read *before* DingTalk's list: a role the pusher
        // creates and links in between is then unknown to both (left alone) instead of linked
        // but missing from an older list, which read as "deleted in DingTalk" and deleted the
        // OA role group just created (found by `tests/crash_anywhere.rs`).
        let snap = store.snapshot().await?;
        let mut ids = IdMap::load_all(store).await?;
        let groups = self.ctx.client.role_list_all().await?;
        let (g_links, r_links) = link::link_roles(&groups, &snap.role_groups, &snap.roles, &ids);
        for (oa, d) in g_links.matched {
            store.id_map_put(&oa, &d).await?;
            ids.insert_group(oa, d);
        }
        for d in g_links.unlinked {
            let oa =
                directory_model::OaRoleGroupId(store.allocate_ids(EntityKind::RoleGroup, 1).await?);
            store.id_map_put(&oa, &d).await?;
            ids.insert_group(oa, d);
        }
        for (oa, d) in r_links.matched {
            store.id_map_put(&oa, &d).await?;
            ids.insert_role(oa, d);
        }
        for d in r_links.unlinked {
            let oa = OaRoleId(store.allocate_ids(EntityKind::Role, 1).await?);
            store.id_map_put(&oa, &d).await?;
            ids.insert_role(oa, d);
        }
        let mut total = Applied::default();
        let mut seen_groups = BTreeSet::new();
        let mut seen_roles = BTreeSet::new();
        for g in &groups {
            let group = translate::role::group_from_wire(g, &ids)?;
            seen_groups.insert(group.id);
            let current = store.get_role_group(group.id).await?;
            total.add(
                self.merge_and_write(current, group, None, &self.ctx.policy.role_groups)
                    .await?,
            );
            for r in &g.roles {
                let role = translate::role::role_from_wire(r, g.group_id, &ids)?;
                seen_roles.insert(role.id);
                let current = store.get_role(role.id).await?;
                total.add(
                    self.merge_and_write(current, role, None, &self.ctx.policy.roles)
                        .await?,
                );
            }
        }
        let wctx = self.write_ctx();
        for r in snap.roles.values() {
            if ids.ding_role(r.id).is_some() && !seen_roles.contains(&r.id) {
                store.delete_role(&wctx, r.id, None).await?;
                store.id_map_remove(&r.id).await?;
                total.writes += 1;
            }
        }
        for g in snap.role_groups.values() {
            if ids.ding_group(g.id).is_some() && !seen_groups.contains(&g.id) {
                match store.delete_role_group(&wctx, g.id, None).await {
                    Ok(()) => {
                        store.id_map_remove(&g.id).await?;
                        total.writes += 1;
                    }
                    // OA-only roles still in it wait for their push; keep the group.
                    Err(StoreError::GroupHasRoles { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(total)
    }
}

fn conflicts_json<F: Serialize>(
    conflicts: &[Conflict<F>],
) -> Result<serde_json::Value, StoreError> {
    Ok(serde_json::to_value(conflicts)?)
}

/// An error with its causes, for the inbox's `last_error` (never holds secrets: the client's
/// errors are built without them).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
