//! Merge conflicts: fields both sides changed differently since the last sync (design
//! invariant 7). They are kept twice, for two readers: the `conflicts` table, one row per field,
//! for operators ([`Store::record_conflicts`], [`Store::conflicts`]); and the audit log, which is
//! the history of each entity ([`Store::audit_conflicts`]). The audit row carries
//! `{"conflicts": [...]}` as its `before` and the merged entity as its `after`, so the change
//! feed still reads as "this is the state now".

use directory_model::{Conflict, Side};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{Sql, Store};
use crate::error::{EntityKind, StoreError};
use crate::journal::{Change, Op, WriteCtx};
use crate::rows::corrupt_row;

/// A recorded merge conflict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConflictRecord {
    /// Id, increasing.
    pub id: i64,
    /// The entity kind.
    pub kind: EntityKind,
    /// The entity.
    pub oa_id: String,
    /// The field's name (snake_case).
    pub field: String,
    /// Its value at the last sync.
    pub base: serde_json::Value,
    /// OA's value.
    pub oa: serde_json::Value,
    /// DingTalk's value.
    pub dingtalk: serde_json::Value,
    /// Whose value was kept.
    pub winner: Side,
    /// When (Unix ms).
    pub at_ms: i64,
}

pub(crate) const CONFLICT_COLS: &str =
    "id, kind, oa_id, field, base_json, oa_json, dingtalk_json, winner, at_ms";

fn side_text(side: Side) -> &'static str {
    match side {
        Side::Oa => "oa",
        Side::DingTalk => "dingtalk",
    }
}

pub(crate) fn conflict_from_row(row: &AnyRow) -> Result<ConflictRecord, StoreError> {
    let id: i64 = row.try_get("id")?;
    let corrupt = corrupt_row("conflicts", id);
    let kind: String = row.try_get("kind")?;
    let winner: String = row.try_get("winner")?;
    let json = |col: &str| -> Result<serde_json::Value, StoreError> {
        let text: String = row.try_get(col)?;
        Ok(serde_json::from_str(&text)?)
    };
    Ok(ConflictRecord {
        id,
        kind: EntityKind::parse(&kind).ok_or_else(|| corrupt(format!("kind {kind:?}")))?,
        oa_id: row.try_get("oa_id")?,
        field: row.try_get("field")?,
        base: json("base_json")?,
        oa: json("oa_json")?,
        dingtalk: json("dingtalk_json")?,
        winner: match winner.as_str() {
            "oa" => Side::Oa,
            "dingtalk" => Side::DingTalk,
            other => return Err(corrupt(format!("winner {other:?}"))),
        },
        at_ms: row.try_get("at_ms")?,
    })
}

impl Store {
    /// Records the conflicts of one merge (all or none).
    pub async fn record_conflicts<F: Serialize>(
        &self,
        kind: EntityKind,
        oa_id: &str,
        conflicts: &[Conflict<F>],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        if conflicts.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_queue().await?;
        for c in conflicts {
            // Field enums serialize as their snake_case name.
            let field = match serde_json::to_value(&c.field)? {
                serde_json::Value::String(name) => name,
                other => other.to_string(),
            };
            Sql::new(
                "INSERT INTO conflicts (org, kind, oa_id, field, base_json, oa_json, \
                 dingtalk_json, winner, at_ms) VALUES (",
            )
            .bind(&*self.org)
            .push(", ")
            .bind(kind.as_str())
            .push(", ")
            .bind(oa_id)
            .push(", ")
            .bind(field)
            .push(", ")
            .bind(c.base.to_string())
            .push(", ")
            .bind(c.oa.to_string())
            .push(", ")
            .bind(c.dingtalk.to_string())
            .push(", ")
            .bind(side_text(c.winner))
            .push(", ")
            .bind(now_ms)
            .push(")")
            .query()
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Recorded conflicts in id order, after `after`.
    pub async fn conflicts(
        &self,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ConflictRecord>, StoreError> {
        let rows = Sql::new(&format!(
            "SELECT {CONFLICT_COLS} FROM conflicts WHERE id > "
        ))
        .bind(after.unwrap_or(0))
        .push(" ORDER BY id LIMIT ")
        .bind(i64::from(limit.max(1)))
        .query()
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(conflict_from_row).collect()
    }

    /// Records the conflicts of a three-way merge in the audit log (see the module doc);
    /// returns the audit sequence number. Never queues a push or moves the base.
    pub async fn audit_conflicts(
        &self,
        ctx: &WriteCtx,
        kind: EntityKind,
        oa_id: &str,
        conflicts: &serde_json::Value,
        merged: &serde_json::Value,
    ) -> Result<i64, StoreError> {
        let ctx = &self.stamp(ctx);
        let ctx = WriteCtx {
            actor: format!("{}:conflict", ctx.actor),
            enqueue: false,
            record_base: false,
            ..ctx.clone()
        };
        let recorded = self
            .record_alone(
                &ctx,
                Change {
                    kind,
                    oa_id: oa_id.to_owned(),
                    op: Op::Update,
                    before: Some(serde_json::json!({ "conflicts": conflicts })),
                    after: Some(merged.clone()),
                    reads: Vec::new(),
                },
            )
            .await?;
        Ok(recorded.audit_seq)
    }
}
