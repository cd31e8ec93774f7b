//! The durable queues: the outbox (OA changes to push to DingTalk) and the inbox (DingTalk
//! events to apply), with leases, retries and dead letters.
//!
//! Both queues share one life cycle:
//!
//! ```text
//! pending ──claim──► claimed ──done──► done
//!    ▲                 │  │
//!    └──retry_later────┘  └──dead_letter──► dead ──retry_dead──► pending
//!    (lease expiry also makes a claimed entry claimable again)      └──drop_dead──► (gone)
//! ```
//!
//! A claim stamps `claimed_by` and `claimed_until`; a worker that crashes simply lets the lease
//! run out and another worker takes the entry over, so nothing is lost (delivery is at least
//! once; pushing and applying are idempotent). Reporting on an entry whose lease was taken over
//! fails with [`StoreError::LeaseLost`]. On PostgreSQL, claims use `FOR UPDATE SKIP LOCKED` so
//! several instances claim disjoint entries without waiting on each other.
//!
//! # Outbox dependency order
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
//!
//! Dead letters stop blocking: they are parked for a human, and a dependent entry that cannot
//! work without them fails on its own (the pusher finds no DingTalk id) and is retried or
//! dead-lettered with a clear error, instead of the queue silently stalling.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{Sql, Store};
use crate::error::{EntityKind, StoreError};
use crate::journal::Op;
use crate::url::Backend;

/// Where an entry is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueState {
    /// Waiting (possibly until `next_attempt_at_ms`).
    Pending,
    /// Leased to a worker.
    Claimed,
    /// Finished.
    Done,
    /// Failed in a way retrying cannot fix; waiting for a human.
    Dead,
}

impl QueueState {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => Self::Pending,
            "claimed" => Self::Claimed,
            "done" => Self::Done,
            "dead" => Self::Dead,
            _ => return None,
        })
    }
}

/// How many entries are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueDepth {
    /// Waiting entries (ready or backing off).
    pub pending: i64,
    /// Leased entries.
    pub claimed: i64,
    /// Dead letters.
    pub dead: i64,
}

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

/// A DingTalk event to store (the callback handler's write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInboxEvent {
    /// Unique per event (the event id, or a hash of a legacy payload); duplicates are dropped.
    pub dedupe_key: String,
    /// DingTalk's `EventType`.
    pub event_type: String,
    /// The decrypted event body.
    pub payload_json: String,
    /// When it arrived (Unix ms).
    pub received_at_ms: i64,
}

/// The result of [`Store::inbox_put`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxPut {
    /// Stored under this id.
    Stored(i64),
    /// An event with the same dedupe key was stored before; nothing was written.
    Duplicate,
}

/// A stored DingTalk event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEvent {
    /// Queue id.
    pub id: i64,
    /// The dedupe key.
    pub dedupe_key: String,
    /// DingTalk's `EventType`.
    pub event_type: String,
    /// The decrypted event body.
    pub payload_json: String,
    /// When it arrived (Unix ms).
    pub received_at_ms: i64,
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
    /// The last failure.
    pub last_error: Option<String>,
}

const OUTBOX_COLS: &[&str] = &[
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
];

const INBOX_COLS: &[&str] = &[
    "id",
    "dedupe_key",
    "event_type",
    "payload_json",
    "received_at_ms",
    "state",
    "attempts",
    "next_attempt_at_ms",
    "claimed_by",
    "claimed_until_ms",
    "last_error",
];

fn cols(prefix: &str, cols: &[&str]) -> String {
    cols.iter()
        .map(|c| format!("{prefix}{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_state(table: &'static str, id: i64, text: &str) -> Result<QueueState, StoreError> {
    QueueState::parse(text).ok_or_else(|| StoreError::Corrupt {
        table,
        id: id.to_string(),
        detail: format!("unknown state {text:?}"),
    })
}

fn outbox_from_row(row: &AnyRow) -> Result<OutboxEntry, StoreError> {
    let id: i64 = row.try_get("id")?;
    let corrupt = |detail: String| StoreError::Corrupt {
        table: "outbox",
        id: id.to_string(),
        detail,
    };
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

fn inbox_from_row(row: &AnyRow) -> Result<InboxEvent, StoreError> {
    let id: i64 = row.try_get("id")?;
    let state: String = row.try_get("state")?;
    Ok(InboxEvent {
        id,
        dedupe_key: row.try_get("dedupe_key")?,
        event_type: row.try_get("event_type")?,
        payload_json: row.try_get("payload_json")?,
        received_at_ms: row.try_get("received_at_ms")?,
        state: parse_state("inbox", id, &state)?,
        attempts: row.try_get("attempts")?,
        next_attempt_at_ms: row.try_get("next_attempt_at_ms")?,
        claimed_by: row.try_get("claimed_by")?,
        claimed_until_ms: row.try_get("claimed_until_ms")?,
        last_error: row.try_get("last_error")?,
    })
}

/// Who claims, when, for how long, and how many.
#[derive(Debug, Clone, Copy)]
struct Claim<'a> {
    worker: &'a str,
    now_ms: i64,
    lease_ms: i64,
    limit: u32,
}

/// The condition under which an entry of alias `o` may be claimed at `$now` (placeholder `now`).
fn ready_condition(now: &str) -> String {
    format!(
        "((o.state = 'pending' AND o.next_attempt_at_ms <= {now}) \
          OR (o.state = 'claimed' AND o.claimed_until_ms <= {now}))"
    )
}

/// The outbox's dependency condition for the entry aliased `o` (see module doc).
const OUTBOX_UNBLOCKED: &str = " AND NOT EXISTS (SELECT 1 FROM outbox_keys k \
       JOIN outbox_keys k2 ON k2.dep_key = k.dep_key AND k2.entry_id < k.entry_id \
       JOIN outbox o2 ON o2.id = k2.entry_id \
       WHERE k.entry_id = o.id AND (k.writes = 1 OR k2.writes = 1) \
         AND (o2.state = 'pending' OR o2.state = 'claimed'))";

impl Store {
    /// Claims a set of rows of `table` with the shared claim statement.
    async fn claim_rows(
        &self,
        table: &'static str,
        row_cols: &[&str],
        extra_condition: &str,
        claim: Claim<'_>,
    ) -> Result<Vec<AnyRow>, StoreError> {
        let Claim {
            worker,
            now_ms,
            lease_ms,
            limit,
        } = claim;
        // $1 worker, $2 lease end, $3 now, $4 limit.
        let ready = ready_condition("$3");
        let set = "state = 'claimed', claimed_by = $1, claimed_until_ms = $2, \
                   attempts = attempts + 1, updated_at_ms = $3";
        let text = match self.backend {
            Backend::Sqlite => format!(
                "UPDATE {table} SET {set} WHERE id IN (SELECT o.id FROM {table} o \
                 WHERE {ready}{extra_condition} ORDER BY o.id LIMIT $4) RETURNING {}",
                cols(&format!("{table}."), row_cols)
            ),
            Backend::Postgres => format!(
                "WITH c AS (SELECT o.id FROM {table} o WHERE {ready}{extra_condition} \
                 ORDER BY o.id LIMIT $4 FOR UPDATE OF o SKIP LOCKED) \
                 UPDATE {table} SET {set} FROM c WHERE {table}.id = c.id RETURNING {}",
                cols(&format!("{table}."), row_cols)
            ),
        };
        let q = sqlx::query(&text)
            .bind(worker.to_owned())
            .bind(now_ms.saturating_add(lease_ms))
            .bind(now_ms)
            .bind(i64::from(limit));
        let mut rows = q.fetch_all(&self.pool).await?;
        rows.sort_by_key(|r| r.try_get::<i64, _>("id").unwrap_or(i64::MAX));
        Ok(rows)
    }

    /// Moves a claimed entry held by `worker` to `state`; distinguishes a lost lease from a
    /// missing entry.
    async fn finish_claimed(
        &self,
        table: &'static str,
        id: i64,
        worker: &str,
        set: Sql,
    ) -> Result<(), StoreError> {
        let sql = set
            .push(" WHERE id = ")
            .bind(id)
            .push(" AND state = 'claimed' AND claimed_by = ")
            .bind(worker);
        let done = sql.query().execute(&self.pool).await?.rows_affected();
        if done == 1 {
            return Ok(());
        }
        let exists = Sql::new(&format!("SELECT id FROM {table} WHERE id = "))
            .bind(id)
            .query()
            .fetch_optional(&self.pool)
            .await?;
        Err(match exists {
            Some(_) => StoreError::LeaseLost {
                queue: table,
                id,
                worker: worker.to_owned(),
            },
            None => StoreError::EntryNotFound {
                queue: table,
                id,
                expected_state: "claimed",
            },
        })
    }

    async fn depth(&self, table: &'static str) -> Result<QueueDepth, StoreError> {
        let rows = Sql::new(&format!(
            "SELECT state, COUNT(*) AS n FROM {table} WHERE state <> 'done' GROUP BY state"
        ))
        .query()
        .fetch_all(&self.pool)
        .await?;
        let mut depth = QueueDepth::default();
        for r in rows {
            let state: String = r.try_get("state")?;
            let n: i64 = r.try_get("n")?;
            match state.as_str() {
                "pending" => depth.pending = n,
                "claimed" => depth.claimed = n,
                "dead" => depth.dead = n,
                _ => {}
            }
        }
        Ok(depth)
    }

    /// Hands back every entry `worker` holds, claimable again at once; returns how many.
    async fn release_claims(
        &self,
        table: &'static str,
        worker: &str,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        Ok(Sql::new(&format!(
            "UPDATE {table} SET state = 'pending', claimed_by = NULL, claimed_until_ms = NULL, \
             next_attempt_at_ms = "
        ))
        .bind(now_ms)
        .push(", updated_at_ms = ")
        .bind(now_ms)
        .push(" WHERE state = 'claimed' AND claimed_by = ")
        .bind(worker)
        .query()
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Releases every outbox entry `worker` holds, for a worker that starts again after its
    /// previous run failed (say, the database went away mid-round): its claims would otherwise
    /// wait out their lease. Only for a worker name no other live task uses.
    pub async fn outbox_release_claims(
        &self,
        worker: &str,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        self.release_claims("outbox", worker, now_ms).await
    }

    /// As [`Store::outbox_release_claims`], for inbox events.
    pub async fn inbox_release_claims(&self, worker: &str, now_ms: i64) -> Result<u64, StoreError> {
        self.release_claims("inbox", worker, now_ms).await
    }

    async fn retry_dead(
        &self,
        table: &'static str,
        id: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let n = Sql::new(&format!(
            "UPDATE {table} SET state = 'pending', attempts = 0, claimed_by = NULL, \
             claimed_until_ms = NULL, next_attempt_at_ms = "
        ))
        .bind(now_ms)
        .push(", updated_at_ms = ")
        .bind(now_ms)
        .push(" WHERE state = 'dead' AND id = ")
        .bind(id)
        .query()
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n == 1 {
            Ok(())
        } else {
            Err(StoreError::EntryNotFound {
                queue: table,
                id,
                expected_state: "dead",
            })
        }
    }

    // -- outbox -------------------------------------------------------------------------------

    /// Claims up to `limit` ready outbox entries whose dependencies are finished, in id order,
    /// leased to `worker` until `now_ms + lease_ms`.
    pub async fn outbox_claim(
        &self,
        worker: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = self
            .claim_rows(
                "outbox",
                OUTBOX_COLS,
                OUTBOX_UNBLOCKED,
                Claim {
                    worker,
                    now_ms,
                    lease_ms,
                    limit,
                },
            )
            .await?;
        rows.iter().map(outbox_from_row).collect()
    }

    /// Marks a claimed entry pushed.
    pub async fn outbox_done(&self, id: i64, worker: &str, now_ms: i64) -> Result<(), StoreError> {
        let set = Sql::new(
            "UPDATE outbox SET state = 'done', claimed_by = NULL, claimed_until_ms = NULL, \
             last_error = NULL, updated_at_ms = ",
        )
        .bind(now_ms);
        self.finish_claimed("outbox", id, worker, set).await?;
        // Finished entries block nobody; their keys are no longer needed.
        Sql::new("DELETE FROM outbox_keys WHERE entry_id = ")
            .bind(id)
            .query()
            .execute(&self.pool)
            .await?;
        Ok(())
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
        let set = Sql::new(
            "UPDATE outbox SET state = 'pending', claimed_by = NULL, claimed_until_ms = NULL, \
             next_attempt_at_ms = ",
        )
        .bind(next_attempt_at_ms)
        .push(", last_error = ")
        .bind(error)
        .push(", updated_at_ms = ")
        .bind(now_ms);
        self.finish_claimed("outbox", id, worker, set).await
    }

    /// Parks a claimed entry as a dead letter with DingTalk's error.
    pub async fn outbox_dead_letter(
        &self,
        id: i64,
        worker: &str,
        error: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let set = Sql::new(
            "UPDATE outbox SET state = 'dead', claimed_by = NULL, claimed_until_ms = NULL, \
             last_error = ",
        )
        .bind(error)
        .push(", updated_at_ms = ")
        .bind(now_ms);
        self.finish_claimed("outbox", id, worker, set).await
    }

    /// Puts a dead letter back in the queue (after someone fixed the cause).
    pub async fn outbox_retry_dead(&self, id: i64, now_ms: i64) -> Result<(), StoreError> {
        self.retry_dead("outbox", id, now_ms).await
    }

    /// Deletes a dead letter for good.
    pub async fn outbox_drop_dead(&self, id: i64) -> Result<(), StoreError> {
        let mut tx = self.begin_queue().await?;
        let n = Sql::new("DELETE FROM outbox WHERE state = 'dead' AND id = ")
            .bind(id)
            .query()
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n != 1 {
            return Err(StoreError::EntryNotFound {
                queue: "outbox",
                id,
                expected_state: "dead",
            });
        }
        Sql::new("DELETE FROM outbox_keys WHERE entry_id = ")
            .bind(id)
            .query()
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
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
        let mut sql = Sql::new(&format!(
            "SELECT {} FROM outbox WHERE id > ",
            cols("", OUTBOX_COLS)
        ))
        .bind(after.unwrap_or(0));
        if let Some(s) = state {
            sql = sql.push(" AND state = ").bind(state_text(s));
        }
        sql = sql
            .push(" ORDER BY id LIMIT ")
            .bind(i64::from(limit.max(1)));
        let rows = sql.query().fetch_all(&self.pool).await?;
        rows.iter().map(outbox_from_row).collect()
    }

    /// One entry.
    pub async fn outbox_get(&self, id: i64) -> Result<Option<OutboxEntry>, StoreError> {
        let row = Sql::new(&format!(
            "SELECT {} FROM outbox WHERE id = ",
            cols("", OUTBOX_COLS)
        ))
        .bind(id)
        .query()
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(outbox_from_row).transpose()
    }

    /// Entries per state (done entries not counted).
    pub async fn outbox_depth(&self) -> Result<QueueDepth, StoreError> {
        self.depth("outbox").await
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

    // -- inbox --------------------------------------------------------------------------------

    /// Stores a DingTalk event durably, unless one with the same dedupe key was stored before.
    /// The callback handler acknowledges DingTalk only after this returns (design invariant 1).
    pub async fn inbox_put(&self, event: NewInboxEvent) -> Result<InboxPut, StoreError> {
        let row = Sql::new(
            "INSERT INTO inbox (dedupe_key, event_type, payload_json, received_at_ms, state, \
             attempts, next_attempt_at_ms, updated_at_ms) VALUES (",
        )
        .bind(event.dedupe_key)
        .push(", ")
        .bind(event.event_type)
        .push(", ")
        .bind(event.payload_json)
        .push(", ")
        .bind(event.received_at_ms)
        .push(", 'pending', 0, ")
        .bind(event.received_at_ms)
        .push(", ")
        .bind(event.received_at_ms)
        .push(") ON CONFLICT (dedupe_key) DO NOTHING RETURNING id")
        .query()
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => InboxPut::Stored(r.try_get("id")?),
            None => InboxPut::Duplicate,
        })
    }

    /// Claims up to `limit` ready events in arrival order, leased to `worker`.
    pub async fn inbox_claim(
        &self,
        worker: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<InboxEvent>, StoreError> {
        let rows = self
            .claim_rows(
                "inbox",
                INBOX_COLS,
                "",
                Claim {
                    worker,
                    now_ms,
                    lease_ms,
                    limit,
                },
            )
            .await?;
        rows.iter().map(inbox_from_row).collect()
    }

    /// Marks a claimed event applied.
    pub async fn inbox_done(&self, id: i64, worker: &str, now_ms: i64) -> Result<(), StoreError> {
        let set = Sql::new(
            "UPDATE inbox SET state = 'done', claimed_by = NULL, claimed_until_ms = NULL, \
             last_error = NULL, updated_at_ms = ",
        )
        .bind(now_ms);
        self.finish_claimed("inbox", id, worker, set).await
    }

    /// Returns a claimed event to the queue, claimable again at `next_attempt_at_ms`.
    pub async fn inbox_retry_later(
        &self,
        id: i64,
        worker: &str,
        next_attempt_at_ms: i64,
        error: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let set = Sql::new(
            "UPDATE inbox SET state = 'pending', claimed_by = NULL, claimed_until_ms = NULL, \
             next_attempt_at_ms = ",
        )
        .bind(next_attempt_at_ms)
        .push(", last_error = ")
        .bind(error)
        .push(", updated_at_ms = ")
        .bind(now_ms);
        self.finish_claimed("inbox", id, worker, set).await
    }

    /// Parks a claimed event as a dead letter.
    pub async fn inbox_dead_letter(
        &self,
        id: i64,
        worker: &str,
        error: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let set = Sql::new(
            "UPDATE inbox SET state = 'dead', claimed_by = NULL, claimed_until_ms = NULL, \
             last_error = ",
        )
        .bind(error)
        .push(", updated_at_ms = ")
        .bind(now_ms);
        self.finish_claimed("inbox", id, worker, set).await
    }

    /// Puts a dead event back in the queue.
    pub async fn inbox_retry_dead(&self, id: i64, now_ms: i64) -> Result<(), StoreError> {
        self.retry_dead("inbox", id, now_ms).await
    }

    /// Deletes a dead event for good. Its dedupe key goes with it, so DingTalk redelivering the
    /// same event afterwards would be stored again.
    pub async fn inbox_drop_dead(&self, id: i64) -> Result<(), StoreError> {
        let n = Sql::new("DELETE FROM inbox WHERE state = 'dead' AND id = ")
            .bind(id)
            .query()
            .execute(&self.pool)
            .await?
            .rows_affected();
        if n == 1 {
            Ok(())
        } else {
            Err(StoreError::EntryNotFound {
                queue: "inbox",
                id,
                expected_state: "dead",
            })
        }
    }

    /// Events in id order, optionally of one state, after `after`.
    pub async fn inbox_list(
        &self,
        state: Option<QueueState>,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<InboxEvent>, StoreError> {
        let mut sql = Sql::new(&format!(
            "SELECT {} FROM inbox WHERE id > ",
            cols("", INBOX_COLS)
        ))
        .bind(after.unwrap_or(0));
        if let Some(s) = state {
            sql = sql.push(" AND state = ").bind(state_text(s));
        }
        sql = sql
            .push(" ORDER BY id LIMIT ")
            .bind(i64::from(limit.max(1)));
        let rows = sql.query().fetch_all(&self.pool).await?;
        rows.iter().map(inbox_from_row).collect()
    }

    /// Dead events in id order, after `after`.
    pub async fn inbox_dead_letters(
        &self,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<InboxEvent>, StoreError> {
        self.inbox_list(Some(QueueState::Dead), after, limit).await
    }

    /// Events per state (done events not counted).
    pub async fn inbox_depth(&self) -> Result<QueueDepth, StoreError> {
        self.depth("inbox").await
    }
}

fn state_text(s: QueueState) -> &'static str {
    match s {
        QueueState::Pending => "pending",
        QueueState::Claimed => "claimed",
        QueueState::Done => "done",
        QueueState::Dead => "dead",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip() {
        for s in [
            QueueState::Pending,
            QueueState::Claimed,
            QueueState::Done,
            QueueState::Dead,
        ] {
            assert_eq!(QueueState::parse(state_text(s)), Some(s));
        }
    }
}
