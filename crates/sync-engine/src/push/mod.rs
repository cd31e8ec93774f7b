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
//!
//! # Layout
//! This file holds the worker (claim a round, push its entries concurrently, settle each) and
//! the one dispatch from an entry's kind to its push; `step.rs` what an attempt came to;
//! `department.rs`, `user.rs`, `role_group.rs`, `role.rs` and `assignment.rs` how each kind is
//! pushed, one file each. The request bodies come from [`crate::translate`].

mod assignment;
mod department;
mod role;
mod role_group;
mod scope;
mod step;
mod user;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dingtalk_client::{Backoff, DingTalkClient};
use directory_model::{Authority, Department, FieldAccess, MergePolicy, Role, RoleGroup, User};
use directory_store::{EntityKind, Op, OutboxEntry, Store, StoreError};
use futures::StreamExt;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio_util::sync::CancellationToken;

use self::step::Step;
use crate::context::{Clock, SyncContext};
use crate::kind::SyncedKind;
use crate::policy::Policy;

pub use crate::translate::department::source_marker;

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
        // An entry not started by three quarters of the lease goes back unstarted: pushing it
        // past the lease could overlap another worker's take-over (issue 18, B1).
        let start_by = now.saturating_add(lease_ms - lease_ms / 4);
        let results: Vec<(OutboxEntry, Step)> = futures::stream::iter(entries)
            .map(|entry| async move {
                if self.clock.now_ms() >= start_by {
                    return (entry, Step::Unstarted);
                }
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
            match step {
                Step::Done => done.push(entry.id),
                Step::Crash(point) => crashed = Some(point),
                step => self.settle(&entry, step, &mut report).await?,
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

    /// Puts an entry that is not done back to wait, or parks it as a dead letter.
    async fn settle(
        &self,
        entry: &OutboxEntry,
        step: Step,
        report: &mut PushReport,
    ) -> Result<(), PushError> {
        let now = self.clock.now_ms();
        let (at, error) = match step {
            Step::Retry { error, .. } if entry.attempts >= self.config.max_wait_attempts => {
                let error = format!("gave up after {} attempts: {error}", entry.attempts);
                self.dead_letter(entry, &error, now).await?;
                report.dead_lettered += 1;
                return Ok(());
            }
            Step::Retry { error, throttled } => {
                let attempt = u32::try_from(entry.attempts.saturating_sub(1)).unwrap_or(0);
                let delay = {
                    let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
                    self.config.backoff.delay(attempt, throttled, &mut *rng)
                };
                tracing::debug!(entry = entry.id, kind = %entry.kind, oa_id = %entry.oa_id, %error, "push retried later");
                (at_after(now, delay), error)
            }
            Step::Blocked(error) => {
                // Checked again at the longest backoff: soon after the operator's retry.
                tracing::debug!(entry = entry.id, kind = %entry.kind, oa_id = %entry.oa_id, %error, "push blocked by a dead letter");
                (at_after(now, self.config.backoff.max), error)
            }
            Step::Dead(error) => {
                self.dead_letter(entry, &error, now).await?;
                report.dead_lettered += 1;
                return Ok(());
            }
            Step::Unstarted => (now, "not started within its claim's lease".to_owned()),
            Step::Done | Step::Crash(_) => return Ok(()),
        };
        self.store
            .outbox_retry_later(entry.id, &self.config.worker, at, &error, now)
            .await?;
        report.retried += 1;
        Ok(())
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
            Step::Unstarted => Err("not started".to_owned()),
        })
    }

    fn crash_here(&self, point: Failpoint, entry: &OutboxEntry) -> bool {
        self.failpoint
            .as_ref()
            .is_some_and(|hook| hook(point, entry))
    }

    /// One attempt at one entry: the one dispatch from an entry's kind to its push.
    async fn push_entry(&self, entry: &OutboxEntry) -> Result<Step, StoreError> {
        let bad = |what: &str| Ok(Step::Dead(format!("bad {what} id {:?}", entry.oa_id)));
        match entry.kind {
            EntityKind::Department => match Department::parse_id(&entry.oa_id) {
                Some(id) => self.push_department(entry, id).await,
                None => bad("department"),
            },
            EntityKind::User => match User::parse_id(&entry.oa_id) {
                Some(id) => self.push_user(entry, id).await,
                None => bad("user"),
            },
            EntityKind::RoleGroup => match RoleGroup::parse_id(&entry.oa_id) {
                Some(id) => self.push_role_group(entry, id).await,
                None => bad("role group"),
            },
            EntityKind::Role => match Role::parse_id(&entry.oa_id) {
                Some(id) => self.push_role(entry, id).await,
                None => bad("role"),
            },
            EntityKind::RoleAssignment => match crate::kind::parse_assignment(&entry.oa_id) {
                Some(a) => self.push_assignment(a).await,
                None => bad("assignment"),
            },
        }
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

    /// The base of `entity` (what DingTalk was last known to hold), and `entity` with the
    /// fields DingTalk owns put back to the base: what a push of it sends.
    async fn with_base<T: SyncedKind>(&self, entity: T) -> Result<(T, Option<T>), StoreError> {
        let base: Option<T> = self.store.base_get(T::KIND, &entity.oa_key()).await?;
        let mut pushed = entity;
        keep_dingtalk_owned(&mut pushed, base.as_ref(), T::merge_policy(&self.policy));
        Ok((pushed, base))
    }
}

/// `now` plus `delay`, in Unix milliseconds.
fn at_after(now: i64, delay: Duration) -> i64 {
    now + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2)
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

#[cfg(test)]
mod tests {
    use directory_model::OaDeptId;

    use super::*;

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
}
