//! The life cycle the two durable queues share — claim, lease, finish, retry, dead-letter,
//! release — written once over a [`QueueTable`] that names the table and its columns. The
//! outbox (`outbox`) and the inbox (`inbox`) add only what is theirs: their rows, the outbox's
//! dependency order and keys, the inbox's deduplication.
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
//! several instances claim disjoint entries without waiting on each other. Claims, depths,
//! listings and releases are per organization (`Store::for_org`); an entry's id is global, so
//! what is done by id needs no org.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::db::{Sql, Store};
use crate::error::StoreError;
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

    /// The text stored in `state` columns.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Claimed => "claimed",
            Self::Done => "done",
            Self::Dead => "dead",
        }
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

/// One queue table: its name (also the `queue` of errors) and the columns of its rows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueTable {
    /// The table.
    pub name: &'static str,
    /// The columns a row is read with.
    pub cols: &'static [&'static str],
}

impl QueueTable {
    /// The row columns, each prefixed with `prefix` (`"outbox."`), comma-separated.
    pub(crate) fn select_list(self, prefix: &str) -> String {
        self.cols
            .iter()
            .map(|c| format!("{prefix}{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Who claims, when, for how long, and how many.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Claim<'a> {
    /// The worker that will hold the lease.
    pub worker: &'a str,
    /// Now (Unix ms).
    pub now_ms: i64,
    /// How long the lease runs.
    pub lease_ms: i64,
    /// At most this many entries.
    pub limit: u32,
}

/// What `done` sets, up to the time bound after it (the batch finish of the outbox uses it too).
pub(crate) const DONE_SET: &str = "state = 'done', claimed_by = NULL, claimed_until_ms = NULL, \
                                   last_error = NULL, updated_at_ms = ";

/// What sending an entry back to `pending` sets, up to the time it is claimable again.
const PENDING_SET: &str = "state = 'pending', claimed_by = NULL, claimed_until_ms = NULL, \
                           next_attempt_at_ms = ";

/// Reads a `state` column.
pub(crate) fn parse_state(
    table: &'static str,
    id: i64,
    text: &str,
) -> Result<QueueState, StoreError> {
    QueueState::parse(text).ok_or_else(|| StoreError::Corrupt {
        table,
        id: id.to_string(),
        detail: format!("unknown state {text:?}"),
    })
}

/// The condition under which an entry of alias `o` may be claimed at `$now` (placeholder `now`).
fn ready_condition(now: &str) -> String {
    format!(
        "((o.state = 'pending' AND o.next_attempt_at_ms <= {now}) \
          OR (o.state = 'claimed' AND o.claimed_until_ms <= {now}))"
    )
}

/// Deletes the dead entry `id` of `q` on `conn` (which may be a transaction).
pub(crate) async fn drop_dead_on(
    conn: &mut AnyConnection,
    q: QueueTable,
    id: i64,
) -> Result<(), StoreError> {
    let n = Sql::new(&format!(
        "DELETE FROM {} WHERE state = 'dead' AND id = ",
        q.name
    ))
    .bind(id)
    .query()
    .execute(&mut *conn)
    .await?
    .rows_affected();
    one_dead(q, id, n)
}

/// `Ok` if a statement on the dead entry `id` touched it (`n` rows), else `EntryNotFound`.
fn one_dead(q: QueueTable, id: i64, n: u64) -> Result<(), StoreError> {
    if n == 1 {
        Ok(())
    } else {
        Err(StoreError::EntryNotFound {
            queue: q.name,
            id,
            expected_state: "dead",
        })
    }
}

impl Store {
    /// Claims ready rows of `q` in id order for which `extra_condition` (SQL on alias `o`, with
    /// a leading ` AND`) holds, in one statement; returns them in id order.
    pub(crate) async fn claim_rows(
        &self,
        q: QueueTable,
        extra_condition: &str,
        claim: Claim<'_>,
    ) -> Result<Vec<AnyRow>, StoreError> {
        let Claim {
            worker,
            now_ms,
            lease_ms,
            limit,
        } = claim;
        let table = q.name;
        // $1 worker, $2 lease end, $3 now, $4 limit, $5 org.
        let ready = format!("{} AND o.org = $5", ready_condition("$3"));
        let set = "state = 'claimed', claimed_by = $1, claimed_until_ms = $2, \
                   attempts = attempts + 1, updated_at_ms = $3";
        let returning = q.select_list(&format!("{table}."));
        let text = match self.backend {
            Backend::Sqlite => format!(
                "UPDATE {table} SET {set} WHERE id IN (SELECT o.id FROM {table} o \
                 WHERE {ready}{extra_condition} ORDER BY o.id LIMIT $4) RETURNING {returning}"
            ),
            Backend::Postgres => format!(
                "WITH c AS (SELECT o.id FROM {table} o WHERE {ready}{extra_condition} \
                 ORDER BY o.id LIMIT $4 FOR UPDATE OF o SKIP LOCKED) \
                 UPDATE {table} SET {set} FROM c WHERE {table}.id = c.id RETURNING {returning}"
            ),
        };
        let query = sqlx::query(&text)
            .bind(worker.to_owned())
            .bind(now_ms.saturating_add(lease_ms))
            .bind(now_ms)
            .bind(i64::from(limit))
            .bind(self.org.to_string());
        let mut rows = query.fetch_all(&self.pool).await?;
        rows.sort_by_key(|r| r.try_get::<i64, _>("id").unwrap_or(i64::MAX));
        Ok(rows)
    }

    /// Moves a claimed entry held by `worker` to the state `set` (an `UPDATE … SET …`) says;
    /// distinguishes a lost lease from a missing entry.
    async fn finish_claimed(
        &self,
        q: QueueTable,
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
        let exists = Sql::new(&format!("SELECT id FROM {} WHERE id = ", q.name))
            .bind(id)
            .query()
            .fetch_optional(&self.pool)
            .await?;
        Err(match exists {
            Some(_) => StoreError::LeaseLost {
                queue: q.name,
                id,
                worker: worker.to_owned(),
            },
            None => StoreError::EntryNotFound {
                queue: q.name,
                id,
                expected_state: "claimed",
            },
        })
    }

    /// Marks a claimed entry finished.
    pub(crate) async fn claim_done(
        &self,
        q: QueueTable,
        id: i64,
        worker: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let set = Sql::new(&format!("UPDATE {} SET {DONE_SET}", q.name)).bind(now_ms);
        self.finish_claimed(q, id, worker, set).await
    }

    /// Returns a claimed entry to the queue, claimable again at `next_attempt_at_ms`.
    pub(crate) async fn claim_retry_later(
        &self,
        q: QueueTable,
        id: i64,
        worker: &str,
        next_attempt_at_ms: i64,
        error: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let set = Sql::new(&format!("UPDATE {} SET {PENDING_SET}", q.name))
            .bind(next_attempt_at_ms)
            .push(", last_error = ")
            .bind(error)
            .push(", updated_at_ms = ")
            .bind(now_ms);
        self.finish_claimed(q, id, worker, set).await
    }

    /// Parks a claimed entry as a dead letter with `error`.
    pub(crate) async fn claim_dead_letter(
        &self,
        q: QueueTable,
        id: i64,
        worker: &str,
        error: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let set = Sql::new(&format!(
            "UPDATE {} SET state = 'dead', claimed_by = NULL, claimed_until_ms = NULL, \
             last_error = ",
            q.name
        ))
        .bind(error)
        .push(", updated_at_ms = ")
        .bind(now_ms);
        self.finish_claimed(q, id, worker, set).await
    }

    /// Puts a dead entry back in the queue.
    pub(crate) async fn claim_retry_dead(
        &self,
        q: QueueTable,
        id: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let n = Sql::new(&format!(
            "UPDATE {} SET attempts = 0, {PENDING_SET}",
            q.name
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
        one_dead(q, id, n)
    }

    /// Hands back every entry `worker` holds, claimable again at once; returns how many.
    pub(crate) async fn release_claims(
        &self,
        q: QueueTable,
        worker: &str,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        Ok(Sql::new(&format!("UPDATE {} SET {PENDING_SET}", q.name))
            .bind(now_ms)
            .push(", updated_at_ms = ")
            .bind(now_ms)
            .push(" WHERE state = 'claimed' AND claimed_by = ")
            .bind(worker)
            .push(" AND org = ")
            .bind(&*self.org)
            .query()
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// Entries per state (done entries not counted).
    pub(crate) async fn queue_depth(&self, q: QueueTable) -> Result<QueueDepth, StoreError> {
        let rows = Sql::new(&format!(
            "SELECT state, COUNT(*) AS n FROM {} WHERE state <> 'done' AND org = ",
            q.name
        ))
        .bind(&*self.org)
        .push(" GROUP BY state")
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

    /// Rows in id order, optionally of one state, after `after`.
    pub(crate) async fn queue_rows(
        &self,
        q: QueueTable,
        state: Option<QueueState>,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AnyRow>, StoreError> {
        let mut sql = Sql::new(&format!(
            "SELECT {} FROM {} WHERE id > ",
            q.select_list(""),
            q.name
        ))
        .bind(after.unwrap_or(0))
        .push(" AND org = ")
        .bind(&*self.org);
        if let Some(s) = state {
            sql = sql.push(" AND state = ").bind(s.as_str());
        }
        sql = sql
            .push(" ORDER BY id LIMIT ")
            .bind(i64::from(limit.max(1)));
        Ok(sql.query().fetch_all(&self.pool).await?)
    }

    /// One row.
    pub(crate) async fn queue_row(
        &self,
        q: QueueTable,
        id: i64,
    ) -> Result<Option<AnyRow>, StoreError> {
        Ok(Sql::new(&format!(
            "SELECT {} FROM {} WHERE id = ",
            q.select_list(""),
            q.name
        ))
        .bind(id)
        .query()
        .fetch_optional(&self.pool)
        .await?)
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
            assert_eq!(QueueState::parse(s.as_str()), Some(s));
        }
    }
}
