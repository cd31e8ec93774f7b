//! The outbox: OA changes waiting to be pushed to DingTalk, with the life cycle of `claims`
//! (leases, retries, dead letters) and the dependency order below.
//!
//! An entry is written by `journal` in the same transaction as the change it pushes (design
//! invariant 2), through [`insert_entry`]; the pusher claims it here. Each entry targets one
//! DingTalk organization (`org`; the writing handle's, see `Store::for_org`), whose pusher alone
//! claims it; dependency keys of a non-default org carry its prefix, so orgs never wait on
//! each other.
//!
//! # Dependency order
//! An outbox entry must not be pushed before the entries it depends on: a child department
//! needs its parent's DingTalk id, a user needs their departments, a role its group, an
//! assignment its user and role; a department deletion must wait for the members that moved out
//! of it. Each entry therefore lists dependency keys — the entity it *writes* and the entities it
//! only *reads* (references, now or before the change). An entry is claimable only when no
//! earlier, unfinished (`pending` or `claimed`) entry shares a key with it where at least one of
//! the two writes that key. This is reader/writer ordering: a parent's creation (writes
//! `department:P`) precedes its children (read `department:P`), a department's deletion waits for
//! every earlier member change (they read it), two updates of one entity run in order, yet
//! thousands of users joining the same department (all readers) are pushed in parallel.
//! [`Store::outbox_claim`] states the rule in one statement; `ready` computes the same rule per
//! key, for backlogs where the one statement is too slow.
//!
//! Dead letters stop blocking: they are parked for a human, and a dependent entry that cannot
//! work without them fails on its own (the pusher finds no DingTalk id) and is retried or
//! dead-lettered with a clear error, instead of the queue silently stalling.
//!
//! # Push without a change
//! [`Store::enqueue_push`]: when a three-way merge keeps the OA value of a field DingTalk changed
//! (OA won a conflict, or OA owns the field), the OA row does not change, so a save would be a
//! no-op and queue nothing; yet DingTalk must be brought back. This records an audit row and an
//! outbox entry for the unchanged entity, in one transaction, with the same dependency keys a
//! save would have.

mod ready;
mod route;

use directory_model::{Department, Role, User};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::claims::{Claim, QueueDepth, QueueState, QueueTable, drop_dead_on, parse_state};
use crate::db::{DEFAULT_ORG, Sql, Store};
use crate::directory::{department_reads, role_reads, user_reads};
use crate::error::{EntityKind, StoreError};
use crate::journal::{Change, Op, WriteCtx, dep_key};
use crate::rows::corrupt_row;

/// One OA change waiting to be pushed to DingTalk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Queue id; entries are claimed in id order, subject to dependencies.
    pub id: i64,
    /// What kind of entity changed.
    pub kind: EntityKind,
    /// The entity's OA id as text (`role:user` for assignments).
    pub oa_id: String,
    /// What happened to it.
    pub op: Op,
    /// The entity after the change (before it, for deletions), as JSON.
    pub payload: Option<serde_json::Value>,
    /// The audit record of the change.
    pub audit_seq: i64,
    /// Life-cycle state.
    pub state: QueueState,
    /// How many times it has been claimed.
    pub attempts: i64,
    /// Not claimable before this time (Unix ms).
    pub next_attempt_at_ms: i64,
    /// The worker holding the lease.
    pub claimed_by: Option<String>,
    /// When the lease runs out (Unix ms).
    pub claimed_until_ms: Option<i64>,
    /// The last failure (DingTalk's error, for dead letters).
    pub last_error: Option<String>,
    /// When the change was made (Unix ms).
    pub created_at_ms: i64,
}

/// The outbox table and the columns of an [`OutboxEntry`].
pub(crate) const OUTBOX: QueueTable = QueueTable {
    name: "outbox",
    cols: &[
        "id",
        "kind",
        "oa_id",
        "op",
        "payload_json",
        "audit_seq",
        "state",
        "attempts",
        "next_attempt_at_ms",
        "claimed_by",
        "claimed_until_ms",
        "last_error",
        "created_at_ms",
    ],
};

/// The outbox's dependency condition for the entry aliased `o` (see module doc).
const OUTBOX_UNBLOCKED: &str = " AND NOT EXISTS (SELECT 1 FROM outbox_keys k \
       JOIN outbox_keys k2 ON k2.dep_key = k.dep_key AND k2.entry_id < k.entry_id \
       JOIN outbox o2 ON o2.id = k2.entry_id \
       WHERE k.entry_id = o.id AND (k.writes = 1 OR k2.writes = 1) \
         AND (o2.state = 'pending' OR o2.state = 'claimed'))";

/// Ids per `IN (…)` list.
const IN_CHUNK: usize = 500;

pub(crate) fn outbox_from_row(row: &AnyRow) -> Result<OutboxEntry, StoreError> {
    let id: i64 = row.try_get("id")?;
    let corrupt = corrupt_row("outbox", id);
    let kind: String = row.try_get("kind")?;
    let op: String = row.try_get("op")?;
    let state: String = row.try_get("state")?;
    let payload: Option<String> = row.try_get("payload_json")?;
    Ok(OutboxEntry {
        id,
        kind: EntityKind::parse(&kind).ok_or_else(|| corrupt(format!("unknown kind {kind:?}")))?,
        oa_id: row.try_get("oa_id")?,
        op: Op::parse(&op).ok_or_else(|| corrupt(format!("unknown op {op:?}")))?,
        payload: payload.map(|p| serde_json::from_str(&p)).transpose()?,
        audit_seq: row.try_get("audit_seq")?,
        state: parse_state("outbox", id, &state)?,
        attempts: row.try_get("attempts")?,
        next_attempt_at_ms: row.try_get("next_attempt_at_ms")?,
        claimed_by: row.try_get("claimed_by")?,
        claimed_until_ms: row.try_get("claimed_until_ms")?,
        last_error: row.try_get("last_error")?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

/// Queues `change` (recorded as audit row `audit_seq`) on `conn`, inside the write transaction
/// of the change, for each org it is pushed to (`route`; `writer` is the writing handle's org);
/// returns the first entry's id.
pub(crate) async fn insert_entry(
    conn: &mut AnyConnection,
    writer: &str,
    change: &Change,
    audit_seq: i64,
    now_ms: i64,
) -> Result<i64, StoreError> {
    let mut first = None;
    for org in route::targets(conn, writer, change).await? {
        let id = insert_one(conn, &org, change, audit_seq, now_ms).await?;
        first.get_or_insert(id);
    }
    first.ok_or_else(|| StoreError::Corrupt {
        table: "outbox",
        id: change.oa_id.clone(),
        detail: "no organization to push to".to_owned(),
    })
}

/// Queues `change` for `org` with its dependency keys; returns the entry's id.
async fn insert_one(
    conn: &mut AnyConnection,
    org: &str,
    change: &Change,
    audit_seq: i64,
    now_ms: i64,
) -> Result<i64, StoreError> {
    // A delete carries the last known state so the pusher still knows what it removes.
    let payload = change.after.as_ref().or(change.before.as_ref());
    let row = Sql::new(
        "INSERT INTO outbox (org, kind, oa_id, op, payload_json, audit_seq, state, attempts, \
         next_attempt_at_ms, created_at_ms, updated_at_ms) VALUES (",
    )
    .bind(org)
    .push(", ")
    .bind(change.kind.as_str())
    .push(", ")
    .bind(change.oa_id.as_str())
    .push(", ")
    .bind(change.op.as_str())
    .push(", ")
    .bind(payload.map(serde_json::Value::to_string))
    .push(", ")
    .bind(audit_seq)
    .push(", 'pending', 0, ")
    .bind(now_ms)
    .push(", ")
    .bind(now_ms)
    .push(", ")
    .bind(now_ms)
    .push(") RETURNING id")
    .query()
    .fetch_one(&mut *conn)
    .await?;
    let id: i64 = row.try_get("id")?;
    let own = dep_key(change.kind, &change.oa_id);
    let mut keys = vec![(own.clone(), true)];
    for r in &change.reads {
        if *r != own && !keys.iter().any(|(k, _)| k == r) {
            keys.push((r.clone(), false));
        }
    }
    // Orgs order their own pushes only: one org's dead letter or backlog never holds another's.
    if org != DEFAULT_ORG {
        for (k, _) in &mut keys {
            *k = format!("org/{org}:{k}");
        }
    }
    let mut sql = Sql::new("INSERT INTO outbox_keys (entry_id, dep_key, writes) VALUES ");
    for (i, (key, writes)) in keys.into_iter().enumerate() {
        if i > 0 {
            sql.push_mut(", ");
        }
        sql.push_mut("(");
        sql.bind_mut(id);
        sql.push_mut(", ");
        sql.bind_mut(key);
        sql.push_mut(", ");
        sql.bind_mut(writes);
        sql.push_mut(")");
    }
    sql.query().execute(&mut *conn).await?;
    Ok(id)
}

/// Forgets the dependency keys of finished entries: they block nobody any more.
async fn forget_keys(conn: &mut AnyConnection, ids: &[i64]) -> Result<(), StoreError> {
    for chunk in ids.chunks(IN_CHUNK) {
        let mut del = Sql::new("DELETE FROM outbox_keys WHERE entry_id IN ");
        del.bind_list(chunk.iter().copied());
        del.query().execute(&mut *conn).await?;
    }
    Ok(())
}

/// The entities a pushed entity references (they must be pushed first), read from its JSON —
/// the same keys a save of that entity would record.
fn reads_of(kind: EntityKind, body: &serde_json::Value) -> Vec<String> {
    match kind {
        EntityKind::User => serde_json::from_value::<User>(body.clone())
            .map(|u| user_reads(&u, None))
            .unwrap_or_default(),
        EntityKind::Department => serde_json::from_value::<Department>(body.clone())
            .map(|d| department_reads(&d, None))
            .unwrap_or_default(),
        EntityKind::Role => serde_json::from_value::<Role>(body.clone())
            .map(|r| role_reads(&r, None))
            .unwrap_or_default(),
        EntityKind::RoleGroup | EntityKind::RoleAssignment => Vec::new(),
    }
}

impl Store {
    /// Claims up to `limit` ready outbox entries whose dependencies are finished, in id order,
    /// leased to `worker` until `now_ms + lease_ms`.
    pub async fn outbox_claim(
        &self,
        worker: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let claim = Claim {
            worker,
            now_ms,
            lease_ms,
            limit,
        };
        let rows = self.claim_rows(OUTBOX, OUTBOX_UNBLOCKED, claim).await?;
        rows.iter().map(outbox_from_row).collect()
    }

    /// Marks a claimed entry pushed.
    pub async fn outbox_done(&self, id: i64, worker: &str, now_ms: i64) -> Result<(), StoreError> {
        self.claim_done(OUTBOX, id, worker, now_ms).await?;
        let mut conn = self.pool.acquire().await?;
        forget_keys(&mut conn, &[id]).await
    }

    /// Marks many claimed outbox entries done in one transaction (the pusher finishes a whole
    /// round at once instead of one transaction per entry). Returns the ids that were still
    /// claimed by `worker`; the others had their lease taken over and are left alone, exactly
    /// as [`Store::outbox_done`] would refuse them one by one.
    pub async fn outbox_done_many(
        &self,
        ids: &[i64],
        worker: &str,
        now_ms: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let mut done = Vec::with_capacity(ids.len());
        if ids.is_empty() {
            return Ok(done);
        }
        let mut tx = self.begin_queue().await?;
        for chunk in ids.chunks(IN_CHUNK) {
            let mut sql = Sql::new(&format!("UPDATE outbox SET {}", crate::claims::DONE_SET));
            sql.bind_mut(now_ms);
            sql.push_mut(" WHERE state = 'claimed' AND claimed_by = ");
            sql.bind_mut(worker);
            sql.push_mut(" AND id IN ");
            sql.bind_list(chunk.iter().copied());
            sql.push_mut(" RETURNING id");
            let mut finished = Vec::with_capacity(chunk.len());
            for r in sql.query().fetch_all(&mut *tx).await? {
                finished.push(r.try_get::<i64, _>("id")?);
            }
            forget_keys(&mut tx, &finished).await?;
            done.extend(finished);
        }
        tx.commit().await?;
        Ok(done)
    }

    /// Returns a claimed entry to the queue, claimable again at `next_attempt_at_ms`
    /// (the caller's backoff schedule).
    pub async fn outbox_retry_later(
        &self,
        id: i64,
        worker: &str,
        next_attempt_at_ms: i64,
        error: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.claim_retry_later(OUTBOX, id, worker, next_attempt_at_ms, error, now_ms)
            .await
    }

    /// Parks a claimed entry as a dead letter with DingTalk's error.
    pub async fn outbox_dead_letter(
        &self,
        id: i64,
        worker: &str,
        error: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.claim_dead_letter(OUTBOX, id, worker, error, now_ms)
            .await
    }

    /// Puts a dead letter back in the queue (after someone fixed the cause).
    pub async fn outbox_retry_dead(&self, id: i64, now_ms: i64) -> Result<(), StoreError> {
        self.claim_retry_dead(OUTBOX, id, now_ms).await
    }

    /// Deletes a dead letter for good.
    pub async fn outbox_drop_dead(&self, id: i64) -> Result<(), StoreError> {
        let mut tx = self.begin_queue().await?;
        drop_dead_on(&mut tx, OUTBOX, id).await?;
        forget_keys(&mut tx, &[id]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Releases every outbox entry `worker` holds, for a worker that starts again after its
    /// previous run failed (say, the database went away mid-round): its claims would otherwise
    /// wait out their lease. Only for a worker name no other live task uses.
    pub async fn outbox_release_claims(
        &self,
        worker: &str,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        self.release_claims(OUTBOX, worker, now_ms).await
    }

    /// Dead letters in id order, after `after`.
    pub async fn outbox_dead_letters(
        &self,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        self.outbox_list(Some(QueueState::Dead), after, limit).await
    }

    /// Entries in id order, optionally of one state, after `after`.
    pub async fn outbox_list(
        &self,
        state: Option<QueueState>,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = self.queue_rows(OUTBOX, state, after, limit).await?;
        rows.iter().map(outbox_from_row).collect()
    }

    /// One entry.
    pub async fn outbox_get(&self, id: i64) -> Result<Option<OutboxEntry>, StoreError> {
        let row = self.queue_row(OUTBOX, id).await?;
        row.as_ref().map(outbox_from_row).transpose()
    }

    /// Entries per state (done entries not counted).
    pub async fn outbox_depth(&self) -> Result<QueueDepth, StoreError> {
        self.queue_depth(OUTBOX).await
    }

    /// Deletes finished entries older than `before_ms` (housekeeping).
    pub async fn outbox_purge_done(&self, before_ms: i64) -> Result<u64, StoreError> {
        Ok(
            Sql::new("DELETE FROM outbox WHERE state = 'done' AND updated_at_ms < ")
                .bind(before_ms)
                .query()
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    /// Whether an OA deletion of `kind` `oa_id` is queued and not yet pushed (pending or
    /// claimed, possibly by a process that died).
    ///
    /// Why: the applier must not re-create from a DingTalk event an entity the OA side deleted.
    /// Usually the base remembers it, but a crash between DingTalk accepting the create and
    /// saving the base leaves no base; the queued deletion is then the only trace of the OA
    /// user's intent (found by `tests/crash_anywhere.rs`, seed 12887305).
    pub async fn outbox_deletion_queued(
        &self,
        kind: EntityKind,
        oa_id: &str,
    ) -> Result<bool, StoreError> {
        let row = Sql::new("SELECT id FROM outbox WHERE org = ")
            .bind(&*self.org)
            .push(" AND kind = ")
            .bind(kind.as_str())
            .push(" AND oa_id = ")
            .bind(oa_id)
            .push(" AND op = ")
            .bind(Op::Delete.as_str())
            .push(" AND (state = 'pending' OR state = 'claimed') LIMIT 1")
            .query()
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Queues a push of `current` (the entity as OA holds it, unchanged) and records it in the
    /// audit log; moves the base to `current` when `ctx.record_base`. Returns the outbox id.
    /// See the module doc for why.
    pub async fn enqueue_push(
        &self,
        ctx: &WriteCtx,
        kind: EntityKind,
        oa_id: &str,
        current: &serde_json::Value,
    ) -> Result<Option<i64>, StoreError> {
        let ctx = &self.stamp(ctx);
        let ctx = ctx.clone().with_enqueue(true);
        let recorded = self
            .record_alone(
                &ctx,
                Change {
                    kind,
                    oa_id: oa_id.to_owned(),
                    op: Op::Update,
                    before: Some(current.clone()),
                    after: Some(current.clone()),
                    reads: reads_of(kind, current),
                },
            )
            .await?;
        Ok(recorded.outbox_id)
    }
}
