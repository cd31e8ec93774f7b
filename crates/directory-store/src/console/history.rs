//! The console's history reads: one object's outbox entries and conflicts (its timeline joins
//! them with `audit_of`), the audit search, conflict decisions, and pruning history older than
//! the configured retention.

use super::lookups::{AUDIT_BRIEF_COLS, AuditBrief, audit_brief_from_row};
use crate::conflicts::{CONFLICT_COLS, ConflictRecord, conflict_from_row};
use crate::db::{Sql, Store};
use crate::error::{EntityKind, StoreError};
use crate::outbox::{OUTBOX, OutboxEntry, outbox_from_row};

/// Filters for [`Store::audit_search`]; every filter is optional, results are newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditSearch {
    /// Exact OA id.
    pub oa_id: Option<String>,
    /// Exact origin (`oa`, `dingtalk`, `import`, `reconcile`).
    pub origin: Option<String>,
    /// Case-insensitive substring of the actor.
    pub actor_contains: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub limit: u32,
}

impl Store {
    /// The outbox entries of one object (every state), newest first.
    pub async fn outbox_of(
        &self,
        kind: EntityKind,
        oa_id: &str,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = Sql::new(&format!(
            "SELECT {} FROM outbox WHERE kind = ",
            OUTBOX.select_list("")
        ))
        .bind(kind.as_str())
        .push(" AND oa_id = ")
        .bind(oa_id)
        .push(" ORDER BY id DESC LIMIT ")
        .bind(i64::from(limit.max(1)))
        .query()
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(outbox_from_row).collect()
    }

    /// The recorded conflicts of one object, newest first.
    pub async fn conflicts_of(
        &self,
        kind: EntityKind,
        oa_id: &str,
    ) -> Result<Vec<ConflictRecord>, StoreError> {
        let rows = Sql::new(&format!(
            "SELECT {CONFLICT_COLS} FROM conflicts WHERE kind = "
        ))
        .bind(kind.as_str())
        .push(" AND oa_id = ")
        .bind(oa_id)
        .push(" ORDER BY id DESC")
        .query()
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(conflict_from_row).collect()
    }

    /// Conflicts no operator has decided yet, oldest first.
    pub async fn conflicts_undecided(&self, limit: u32) -> Result<Vec<ConflictRecord>, StoreError> {
        let rows = Sql::new(&format!(
            "SELECT {CONFLICT_COLS} FROM conflicts WHERE decided_by IS NULL ORDER BY id LIMIT "
        ))
        .bind(i64::from(limit.max(1)))
        .query()
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(conflict_from_row).collect()
    }

    /// How many conflicts wait for a decision.
    pub async fn conflicts_undecided_count(&self) -> Result<i64, StoreError> {
        let row = Sql::new("SELECT COUNT(*) AS n FROM conflicts WHERE decided_by IS NULL")
            .query()
            .fetch_one(&self.pool)
            .await?;
        Ok(sqlx::Row::try_get(&row, "n")?)
    }

    /// Marks a conflict decided by `by`; `false` when it was not waiting.
    pub async fn conflict_decide(
        &self,
        id: i64,
        by: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = Sql::new("UPDATE conflicts SET decided_by = ")
            .bind(by)
            .push(", decided_at_ms = ")
            .bind(now_ms)
            .push(" WHERE decided_by IS NULL AND id = ")
            .bind(id)
            .query()
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// One conflict.
    pub async fn conflict_get(&self, id: i64) -> Result<Option<ConflictRecord>, StoreError> {
        let row = Sql::new(&format!(
            "SELECT {CONFLICT_COLS} FROM conflicts WHERE id = "
        ))
        .bind(id)
        .query()
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(conflict_from_row).transpose()
    }

    /// Audit records matching `q`, newest first, without their before/after states (the
    /// audit page lists who did what to which object; the states are on the object's
    /// timeline). An object filter looks up each entity kind in the `audit_entity` index.
    pub async fn audit_search(&self, q: &AuditSearch) -> Result<Vec<AuditBrief>, StoreError> {
        let mut sql = Sql::new(&format!("SELECT {AUDIT_BRIEF_COLS} FROM audit WHERE 1 = 1"));
        if let Some(id) = &q.oa_id {
            sql.push_mut(" AND kind IN ");
            sql.bind_list(EntityKind::ALL.iter().map(|k| k.as_str()));
            sql = sql.push(" AND oa_id = ").bind(id.as_str());
        }
        if let Some(origin) = &q.origin {
            sql = sql.push(" AND origin = ").bind(origin.as_str());
        }
        if let Some(actor) = &q.actor_contains {
            let pattern = format!("%{}%", actor.to_lowercase());
            sql = sql.push(" AND LOWER(actor) LIKE ").bind(pattern);
        }
        if let Some(from) = q.from_ms {
            sql = sql.push(" AND at_ms >= ").bind(from);
        }
        if let Some(to) = q.to_ms {
            sql = sql.push(" AND at_ms <= ").bind(to);
        }
        let rows = sql
            .push(" ORDER BY seq DESC LIMIT ")
            .bind(i64::from(q.limit.clamp(1, 1000)))
            .query()
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(audit_brief_from_row).collect()
    }

    /// Deletes history older than `before_ms`: audit rows, finished runs, decided conflicts,
    /// resolved holds and decided soft matches. Returns how many rows went. The change feed's
    /// consumers read far more recently than any retention an operator would set (days, not
    /// minutes).
    pub async fn prune_history(&self, before_ms: i64) -> Result<u64, StoreError> {
        let statements = [
            "DELETE FROM audit WHERE at_ms < ",
            "DELETE FROM operator_actions WHERE at_ms < ",
            "DELETE FROM runs WHERE finished_at_ms IS NOT NULL AND finished_at_ms < ",
            "DELETE FROM conflicts WHERE decided_by IS NOT NULL AND at_ms < ",
            "DELETE FROM held_deletions WHERE state <> 'held' AND created_at_ms < ",
            "DELETE FROM soft_matches WHERE decision IS NOT NULL AND decided_at_ms < ",
        ];
        let mut removed = 0;
        for statement in statements {
            let done = Sql::new(statement)
                .bind(before_ms)
                .query()
                .execute(&self.pool)
                .await?;
            removed += done.rows_affected();
        }
        removed += self.outbox_purge_done(before_ms).await?;
        Ok(removed)
    }
}
