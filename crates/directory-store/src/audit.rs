//! The audit log read back: the change feed (every directory change in commit order, with a
//! cursor) and the history of one entity. Rows are written by `journal` in the transaction of
//! the change they describe; because directory writes are serialized (see `db`), `seq` order is
//! commit order, so a reader holding a cursor never misses a row that committed late.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{Sql, Store};
use crate::error::{EntityKind, StoreError};
use crate::journal::{Op, Origin};

/// One record of the audit log / change feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// The feed cursor: strictly increasing in commit order.
    pub seq: i64,
    /// When (Unix ms).
    pub at_ms: i64,
    /// Who.
    pub actor: String,
    /// From where.
    pub origin: Origin,
    /// What kind of entity.
    pub kind: EntityKind,
    /// Which one (OA id as text).
    pub oa_id: String,
    /// What happened.
    pub op: Op,
    /// The state before.
    pub before: Option<serde_json::Value>,
    /// The state after.
    pub after: Option<serde_json::Value>,
}

pub(crate) const AUDIT_COLS: &str =
    "seq, at_ms, actor, origin, kind, oa_id, op, before_json, after_json";

pub(crate) fn audit_from_row(row: &AnyRow) -> Result<AuditRecord, StoreError> {
    // The brief's columns are parsed in one place; the record adds the states.
    let brief = crate::console::audit_brief_from_row(row)?;
    let before: Option<String> = row.try_get("before_json")?;
    let after: Option<String> = row.try_get("after_json")?;
    Ok(AuditRecord {
        seq: brief.seq,
        at_ms: brief.at_ms,
        actor: brief.actor,
        origin: brief.origin,
        kind: brief.kind,
        oa_id: brief.oa_id,
        op: brief.op,
        before: before.map(|b| serde_json::from_str(&b)).transpose()?,
        after: after.map(|a| serde_json::from_str(&a)).transpose()?,
    })
}

impl Store {
    /// Audit records after `cursor` (0 for the beginning), oldest first.
    pub async fn changes_since(
        &self,
        cursor: i64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = Sql::new(&format!("SELECT {AUDIT_COLS} FROM audit WHERE seq > "))
            .bind(cursor)
            .push(" ORDER BY seq LIMIT ")
            .bind(i64::from(limit.max(1)))
            .query()
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(audit_from_row).collect()
    }

    /// The history of one entity, oldest first.
    pub async fn audit_of(
        &self,
        kind: EntityKind,
        oa_id: &str,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = Sql::new(&format!("SELECT {AUDIT_COLS} FROM audit WHERE kind = "))
            .bind(kind.as_str())
            .push(" AND oa_id = ")
            .bind(oa_id)
            .push(" ORDER BY seq")
            .query()
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(audit_from_row).collect()
    }

    /// The newest cursor (0 when the log is empty).
    pub async fn latest_seq(&self) -> Result<i64, StoreError> {
        let row = Sql::new("SELECT MAX(seq) AS m FROM audit")
            .query()
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<Option<i64>, _>("m")?.unwrap_or(0))
    }
}
