//! Operator actions with the console user's name: the console's half of the audit log. The
//! `audit` table is also the OA change feed, whose readers expect directory changes only, so
//! actions are kept here and the console's audit page and timelines read both.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{Sql, Store};
use crate::error::StoreError;

/// One recorded operator action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorActionRecord {
    pub id: i64,
    pub at_ms: i64,
    /// The console user's name.
    pub actor: String,
    /// The entity kind it concerned (`user`, `department`…), when it concerned one.
    pub kind: Option<String>,
    pub oa_id: Option<String>,
    /// What was asked, in words.
    pub action: String,
    /// What came of it, in words.
    pub outcome: String,
}

const ACTION_COLS: &str = "id, at_ms, actor, kind, oa_id, action, outcome";

fn action_from_row(row: &AnyRow) -> Result<OperatorActionRecord, StoreError> {
    Ok(OperatorActionRecord {
        id: row.try_get("id")?,
        at_ms: row.try_get("at_ms")?,
        actor: row.try_get("actor")?,
        kind: row.try_get("kind")?,
        oa_id: row.try_get("oa_id")?,
        action: row.try_get("action")?,
        outcome: row.try_get("outcome")?,
    })
}

impl Store {
    /// Records an operator action.
    pub async fn operator_action_record(
        &self,
        record: &OperatorActionRecord,
    ) -> Result<(), StoreError> {
        Sql::new(
            "INSERT INTO operator_actions (at_ms, actor, kind, oa_id, action, outcome) VALUES (",
        )
        .bind(record.at_ms)
        .push(", ")
        .bind(record.actor.as_str())
        .push(", ")
        .bind(record.kind.as_deref())
        .push(", ")
        .bind(record.oa_id.as_deref())
        .push(", ")
        .bind(record.action.as_str())
        .push(", ")
        .bind(record.outcome.as_str())
        .push(")")
        .query()
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Actions on one entity, newest first.
    pub async fn operator_actions_of(
        &self,
        kind: &str,
        oa_id: &str,
    ) -> Result<Vec<OperatorActionRecord>, StoreError> {
        let rows = Sql::new(&format!(
            "SELECT {ACTION_COLS} FROM operator_actions WHERE kind = "
        ))
        .bind(kind)
        .push(" AND oa_id = ")
        .bind(oa_id)
        .push(" ORDER BY id DESC LIMIT 200")
        .query()
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(action_from_row).collect()
    }

    /// Actions whose actor contains `actor` (any when `None`) and, when given, on `oa_id`,
    /// within the time range, newest first.
    pub async fn operator_actions_search(
        &self,
        actor: Option<&str>,
        oa_id: Option<&str>,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
        limit: u32,
    ) -> Result<Vec<OperatorActionRecord>, StoreError> {
        let mut sql = Sql::new(&format!(
            "SELECT {ACTION_COLS} FROM operator_actions WHERE 1 = 1"
        ));
        if let Some(actor) = actor {
            sql = sql
                .push(" AND LOWER(actor) LIKE ")
                .bind(format!("%{}%", actor.to_lowercase()));
        }
        if let Some(id) = oa_id {
            sql = sql.push(" AND oa_id = ").bind(id);
        }
        if let Some(from) = from_ms {
            sql = sql.push(" AND at_ms >= ").bind(from);
        }
        if let Some(to) = to_ms {
            sql = sql.push(" AND at_ms <= ").bind(to);
        }
        let rows = sql
            .push(" ORDER BY id DESC LIMIT ")
            .bind(i64::from(limit.clamp(1, 1000)))
            .query()
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(action_from_row).collect()
    }
}
