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
//! The inbox stores each event's text as it arrived (HTTP push in either dialect, Stream event,
//! failed-push list entry); [`parse_inbox_event`] reads all three.
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
//! one instance, so it needs no lease rows; the worker's own concurrent tasks are kept apart by
//! the same locks held in memory (`lock.rs`), on both backends.
//!
//! # Workers
//! [`Applier::drain`] applies everything claimable now and returns (what tests and `run_once`
//! use); [`Applier::run`] repeats that until its `CancellationToken` fires, waking on a
//! [`Notify`] (the callback route signals new events) or a poll interval. Events of different
//! entities are applied concurrently, as many as the fetch budget and DingTalk's latency need;
//! one entity's events one at a time, in arrival order (`worker.rs`). A failure that a
//! retry may cure (DingTalk busy or unreachable, a write race) is retried with jittered
//! backoff; anything else, or too many attempts, becomes an inbox dead letter with the error.

//!
//! # Layout
//! This file holds the types and the one dispatch from an event to the entities it names;
//! `payload.rs` reads inbox rows, `worker.rs` drains the inbox concurrently, `lock.rs` holds
//! the entity locks, `merge.rs` the three-way merge of any kind; `department.rs`, `user.rs` and `role.rs`
//! how each kind is fetched, resolved and applied, one file each.

mod department;
mod lock;
mod merge;
mod payload;
mod role;
mod scope;
mod user;
mod worker;

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use dingtalk_client::{Backoff, ClientError};
use dingtalk_proto::{
    ErrCode,
    events::{ContactEvent, EventError, EventKind},
};
use directory_model::DingUserId;
use directory_store::{EntityKind, StoreError, WriteCtx};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;

use self::lock::{Held, LocalLocks};
use self::worker::ApplyTime;
use crate::context::SyncContext;
use crate::translate::{ConvertError, ding};

pub use self::payload::parse_inbox_event;

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
    /// How long to wait for an entity another task or instance is applying before retrying
    /// the event later (see "Several instances" in the module doc).
    pub lock_wait: Duration,
    /// Events applied at once; `None` (the default) derives it from the fetch budget and the
    /// measured application time (see [`Applier::concurrency`]).
    pub workers: Option<usize>,
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
            workers: None,
        }
    }
}

/// A boxed future, for the recursion of reference resolution.
type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Applies inbox events; cheap to share (`Arc`) between a worker task and a handler.
#[derive(Debug)]
pub struct Applier {
    /// Store, client, policy, clock.
    ctx: SyncContext,
    /// Worker settings.
    options: ApplyOptions,
    /// Jitter for retry delays (seeded from the options so tests can replay a schedule).
    rng: Mutex<StdRng>,
    /// The entity locks of this applier's own concurrent tasks.
    local_locks: LocalLocks,
    /// The measured time one event's application takes, for the concurrency.
    apply_time: ApplyTime,
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
            local_locks: LocalLocks::default(),
            apply_time: ApplyTime::default(),
        }
    }

    /// The context this applier works in.
    pub fn context(&self) -> &SyncContext {
        &self.ctx
    }

    fn write_ctx(&self) -> WriteCtx {
        WriteCtx::dingtalk(format!("{}:apply", self.ctx.actor), self.ctx.now_ms())
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
}

/// The entity locks applying `event` starts with (`apply:user:…`, `apply:department:…`,
/// `apply:roles`; what [`Applier::apply_event`] takes before resolving references): the
/// worker starts one entity's events one at a time, in arrival order.
pub(super) fn entity_locks(event: &ContactEvent) -> Vec<String> {
    match &event.kind {
        EventKind::UserAddOrg(c)
        | EventKind::UserLeaveOrg(c)
        | EventKind::UserActiveOrg(c)
        | EventKind::OrgAdminAdd(c)
        | EventKind::OrgAdminRemove(c)
        | EventKind::UserModifyOrg { change: c, .. } => c
            .user_ids
            .iter()
            .map(|u| user_lock(&DingUserId::new(u.as_str())))
            .collect(),
        EventKind::LabelUserChange { user_ids, .. } => user_ids
            .iter()
            .map(|u| user_lock(&DingUserId::new(u.as_str())))
            .collect(),
        EventKind::OrgDeptCreate { dept_ids }
        | EventKind::OrgDeptModify { dept_ids }
        | EventKind::OrgDeptRemove { dept_ids } => {
            dept_ids.iter().map(|d| dept_lock(ding::dept(*d))).collect()
        }
        EventKind::LabelConfAdd { .. }
        | EventKind::LabelConfModify { .. }
        | EventKind::LabelConfDel { .. } => vec![ROLES_LOCK.to_owned()],
        _ => Vec::new(),
    }
}

/// The entity lock of a user.
fn user_lock(userid: &DingUserId) -> String {
    format!("apply:user:{userid}")
}

/// The entity lock of a department.
fn dept_lock(id: directory_model::DingDeptId) -> String {
    format!("apply:department:{id}")
}

/// The entity lock of the role definitions (applied as one list).
const ROLES_LOCK: &str = "apply:roles";

fn is_code(e: &ClientError, code: ErrCode) -> bool {
    e.errcode() == Some(code)
}

/// The depth of a reference one step further down from `depth`, or the error that stops the
/// resolution of `kind` `id` when the chain is already [`MAX_DEPTH`] long.
fn deeper(depth: u32, kind: EntityKind, id: &impl std::fmt::Display) -> Result<u32, ApplyError> {
    if depth >= MAX_DEPTH {
        return Err(ApplyError::Unresolved {
            kind,
            id: id.to_string(),
        });
    }
    Ok(depth + 1)
}
