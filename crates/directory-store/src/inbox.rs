//! The inbox: DingTalk events waiting to be applied, deduplicated on arrival, with the life
//! cycle of `claims` (leases, retries, dead letters). Unlike the outbox, events have no
//! dependency order: they are claimed in arrival order, and the applier makes each one
//! idempotent. Events are per organization (`Store::for_org`): each org's workers claim its
//! own, and a dedupe key is unique within its org.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::claims::{Claim, QueueDepth, QueueState, QueueTable, drop_dead_on, parse_state};
use crate::db::{Sql, Store};
use crate::error::StoreError;

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

/// The inbox table and the columns of an [`InboxEvent`].
const INBOX: QueueTable = QueueTable {
    name: "inbox",
    cols: &[
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
    ],
};

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

impl Store {
    /// Stores a DingTalk event durably, unless one with the same dedupe key was stored before.
    /// The callback handler acknowledges DingTalk only after this returns (design invariant 1).
    pub async fn inbox_put(&self, event: NewInboxEvent) -> Result<InboxPut, StoreError> {
        let row = Sql::new(
            "INSERT INTO inbox (org, dedupe_key, event_type, payload_json, received_at_ms, state, \
             attempts, next_attempt_at_ms, updated_at_ms) VALUES (",
        )
        .bind(&*self.org)
        .push(", ")
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
        .push(") ON CONFLICT (org, dedupe_key) DO NOTHING RETURNING id")
        .query()
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => InboxPut::Stored(r.try_get("id")?),
            None => InboxPut::Duplicate,
        })
    }

    /// Stores an event that is a dead letter from the start, with `error` as its reason: an
    /// entity the import could not take in (its mapping failed), parked for a human who fixes
    /// the cause and retries it like any dead letter. A duplicate dedupe key refreshes the
    /// reason of the dead letter already there.
    pub async fn inbox_put_dead(
        &self,
        event: NewInboxEvent,
        error: &str,
    ) -> Result<InboxPut, StoreError> {
        let row = Sql::new(
            "INSERT INTO inbox (org, dedupe_key, event_type, payload_json, received_at_ms, state, \
             attempts, next_attempt_at_ms, last_error, updated_at_ms) VALUES (",
        )
        .bind(&*self.org)
        .push(", ")
        .bind(event.dedupe_key)
        .push(", ")
        .bind(event.event_type)
        .push(", ")
        .bind(event.payload_json)
        .push(", ")
        .bind(event.received_at_ms)
        .push(", 'dead', 1, ")
        .bind(event.received_at_ms)
        .push(", ")
        .bind(error)
        .push(", ")
        .bind(event.received_at_ms)
        .push(") ON CONFLICT (org, dedupe_key) DO NOTHING RETURNING id")
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
        let claim = Claim {
            worker,
            now_ms,
            lease_ms,
            limit,
        };
        let rows = self.claim_rows(INBOX, "", claim).await?;
        rows.iter().map(inbox_from_row).collect()
    }

    /// Marks a claimed event applied.
    pub async fn inbox_done(&self, id: i64, worker: &str, now_ms: i64) -> Result<(), StoreError> {
        self.claim_done(INBOX, id, worker, now_ms).await
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
        self.claim_retry_later(INBOX, id, worker, next_attempt_at_ms, error, now_ms)
            .await
    }

    /// Parks a claimed event as a dead letter.
    pub async fn inbox_dead_letter(
        &self,
        id: i64,
        worker: &str,
        error: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.claim_dead_letter(INBOX, id, worker, error, now_ms)
            .await
    }

    /// Puts a dead event back in the queue.
    pub async fn inbox_retry_dead(&self, id: i64, now_ms: i64) -> Result<(), StoreError> {
        self.claim_retry_dead(INBOX, id, now_ms).await
    }

    /// Deletes a dead event for good. Its dedupe key goes with it, so DingTalk redelivering the
    /// same event afterwards would be stored again.
    pub async fn inbox_drop_dead(&self, id: i64) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        drop_dead_on(&mut conn, INBOX, id).await
    }

    /// As [`Store::outbox_release_claims`], for inbox events.
    pub async fn inbox_release_claims(&self, worker: &str, now_ms: i64) -> Result<u64, StoreError> {
        self.release_claims(INBOX, worker, now_ms).await
    }

    /// Events in id order, optionally of one state, after `after`.
    pub async fn inbox_list(
        &self,
        state: Option<QueueState>,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<InboxEvent>, StoreError> {
        let rows = self.queue_rows(INBOX, state, after, limit).await?;
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
        self.queue_depth(INBOX).await
    }
}
