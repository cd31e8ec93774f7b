//! Small reads the console's pages need at 100,000 people without scanning: users by exact
//! email (the `users_email` index), the newest event the inbox received (the callback card's
//! "last event"), and the size of the history tables (what retention keeps; `bench console`
//! reports it after a simulated month).

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::claims::QueueDepth;
use crate::db::{Sql, Store};
use crate::error::{EntityKind, StoreError};
use crate::journal::{Op, Origin};
use crate::url::Backend;

/// Ids per `IN (…)` list.
const IN_CHUNK: usize = 500;

/// One audit record without its before/after states: what the audit page lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditBrief {
    pub seq: i64,
    pub at_ms: i64,
    pub actor: String,
    pub origin: Origin,
    pub kind: EntityKind,
    pub oa_id: String,
    pub op: Op,
}

pub(crate) const AUDIT_BRIEF_COLS: &str = "seq, at_ms, actor, origin, kind, oa_id, op";

pub(crate) fn audit_brief_from_row(row: &AnyRow) -> Result<AuditBrief, StoreError> {
    let seq: i64 = row.try_get("seq")?;
    let corrupt = crate::rows::corrupt_row("audit", seq);
    let origin: String = row.try_get("origin")?;
    let kind: String = row.try_get("kind")?;
    let op: String = row.try_get("op")?;
    Ok(AuditBrief {
        seq,
        at_ms: row.try_get("at_ms")?,
        actor: row.try_get("actor")?,
        origin: Origin::parse(&origin).ok_or_else(|| corrupt(format!("origin {origin:?}")))?,
        kind: EntityKind::parse(&kind).ok_or_else(|| corrupt(format!("kind {kind:?}")))?,
        oa_id: row.try_get("oa_id")?,
        op: Op::parse(&op).ok_or_else(|| corrupt(format!("op {op:?}")))?,
    })
}

/// The tables whose rows are history the console shows and retention prunes.
pub const HISTORY_TABLES: [&str; 6] = [
    "audit",
    "outbox",
    "runs",
    "conflicts",
    "operator_actions",
    "held_deletions",
];

impl Store {
    /// The ids of users whose email is exactly `email` (as stored, or lower-cased), at most
    /// `limit`.
    pub async fn user_ids_by_email(
        &self,
        email: &str,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let rows = Sql::new("SELECT id FROM users WHERE email = ")
            .bind(email)
            .push(" OR email = ")
            .bind(email.to_lowercase())
            .push(" ORDER BY id LIMIT ")
            .bind(i64::from(limit.max(1)))
            .query()
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("id")?))
            .collect()
    }

    /// The DingTalk ids of these OA ids of `kind` (unlinked ids are absent): the id links of
    /// just the objects a page shows.
    pub async fn ding_ids_of(
        &self,
        kind: EntityKind,
        oa_ids: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut out = Vec::with_capacity(oa_ids.len());
        for chunk in oa_ids.chunks(IN_CHUNK) {
            let mut sql = Sql::new("SELECT oa_id, ding_id FROM id_map WHERE org = ")
                .bind(self.org())
                .push(" AND kind = ")
                .bind(kind.as_str())
                .push(" AND oa_id IN ");
            sql.bind_list(chunk.iter().map(String::as_str));
            for row in sql.query().fetch_all(&self.pool).await? {
                out.push((row.try_get("oa_id")?, row.try_get("ding_id")?));
            }
        }
        Ok(out)
    }

    /// When the OA object `oa_id` of `kind` was linked to its DingTalk twin (Unix ms); `None`
    /// when it is not linked, or was linked before links recorded their time.
    pub async fn linked_at_ms(
        &self,
        kind: EntityKind,
        oa_id: &str,
    ) -> Result<Option<i64>, StoreError> {
        let row = Sql::new("SELECT linked_at_ms FROM id_map WHERE org = ")
            .bind(self.org())
            .push(" AND kind = ")
            .bind(kind.as_str())
            .push(" AND oa_id = ")
            .bind(oa_id)
            .query()
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) => row.try_get("linked_at_ms")?,
            None => None,
        })
    }

    /// The inbox's and the outbox's unfinished entries per state, each counted over an index
    /// range of `state` (a `state <> 'done'` count walks every finished entry too, and those
    /// are most of a month's rows).
    pub async fn console_queue_depths(&self) -> Result<(QueueDepth, QueueDepth), StoreError> {
        let mut depths = [QueueDepth::default(), QueueDepth::default()];
        for (depth, table) in depths.iter_mut().zip(["inbox", "outbox"]) {
            let rows = Sql::new(&format!(
                "SELECT state, COUNT(*) AS n FROM {table} WHERE state IN ('pending', 'claimed', \
                 'dead') GROUP BY state"
            ))
            .query()
            .fetch_all(&self.pool)
            .await?;
            for row in rows {
                let state: String = row.try_get("state")?;
                let n: i64 = row.try_get("n")?;
                match state.as_str() {
                    "pending" => depth.pending = n,
                    "claimed" => depth.claimed = n,
                    _ => depth.dead = n,
                }
            }
        }
        let [inbox, outbox] = depths;
        Ok((inbox, outbox))
    }

    /// Dead letters in the outbox and in the inbox (each an index range on `state`): what
    /// every page's navigation counts, without counting the queues' finished entries.
    pub async fn dead_letter_counts(&self) -> Result<(i64, i64), StoreError> {
        let mut counts = [0i64; 2];
        for (slot, table) in counts.iter_mut().zip(["outbox", "inbox"]) {
            let row = Sql::new(&format!(
                "SELECT COUNT(*) AS n FROM {table} WHERE state = 'dead'"
            ))
            .query()
            .fetch_one(&self.pool)
            .await?;
            *slot = row.try_get("n")?;
        }
        Ok((counts[0], counts[1]))
    }

    /// How many deletions are held for approval (the `held_deletions_state` index).
    pub async fn held_deletions_count(&self) -> Result<i64, StoreError> {
        let row = Sql::new("SELECT COUNT(*) AS n FROM held_deletions WHERE state = 'held'")
            .query()
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// When the newest inbox entry was received (Unix ms), or `None` for an empty inbox.
    pub async fn inbox_newest_received_ms(&self) -> Result<Option<i64>, StoreError> {
        let row = Sql::new("SELECT MAX(received_at_ms) AS newest FROM inbox")
            .query()
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("newest")?)
    }

    /// Row counts of [`HISTORY_TABLES`], in that order.
    pub async fn history_row_counts(&self) -> Result<Vec<(&'static str, i64)>, StoreError> {
        let mut counts = Vec::with_capacity(HISTORY_TABLES.len());
        for table in HISTORY_TABLES {
            let row = Sql::new(&format!("SELECT COUNT(*) AS n FROM {table}"))
                .query()
                .fetch_one(&self.pool)
                .await?;
            counts.push((table, row.try_get("n")?));
        }
        Ok(counts)
    }

    /// The whole database's size in bytes (SQLite: pages in use times page size, after a
    /// checkpoint of the write-ahead log; PostgreSQL: `pg_database_size`).
    pub async fn database_bytes(&self) -> Result<i64, StoreError> {
        match self.backend() {
            Backend::Sqlite => {
                Sql::new("PRAGMA wal_checkpoint(TRUNCATE)")
                    .query()
                    .execute(&self.pool)
                    .await?;
                let row = Sql::new(
                    "SELECT (SELECT page_count FROM pragma_page_count()) * \
                     (SELECT page_size FROM pragma_page_size()) AS bytes",
                )
                .query()
                .fetch_one(&self.pool)
                .await?;
                Ok(row.try_get("bytes")?)
            }
            Backend::Postgres => {
                let row = Sql::new("SELECT pg_database_size(current_database())::BIGINT AS bytes")
                    .query()
                    .fetch_one(&self.pool)
                    .await?;
                Ok(row.try_get("bytes")?)
            }
        }
    }
}
