//! Deletions the engine did not apply because they crossed the deletion threshold (design
//! invariant 6): held here until an operator approves or rejects them, so a mass deletion on
//! one side never empties the other without a human saying so.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::db::{Sql, Store};
use crate::error::{EntityKind, StoreError};
use crate::journal::Origin;
use crate::rows::corrupt_row;

/// The life cycle of a held deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldState {
    /// Waiting for an operator.
    Held,
    /// An operator confirmed it; the engine may apply it.
    Approved,
    /// An operator refused it.
    Rejected,
}

impl HoldState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "held" => Self::Held,
            "approved" => Self::Approved,
            "rejected" => Self::Rejected,
            _ => return None,
        })
    }
}

/// A deletion the engine did not apply because it crossed the threshold (design invariant 6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldDeletion {
    /// Id.
    pub id: i64,
    /// What kind of entity would be deleted.
    pub kind: EntityKind,
    /// Which one.
    pub oa_id: String,
    /// Which side asked for the deletion.
    pub origin: Origin,
    /// Why it is held (e.g. the threshold it crossed).
    pub reason: String,
    /// Held, approved or rejected.
    pub state: HoldState,
    /// When it was held (Unix ms).
    pub created_at_ms: i64,
    /// When it was resolved (Unix ms).
    pub resolved_at_ms: Option<i64>,
    /// Who resolved it.
    pub resolved_by: Option<String>,
}

const HELD_COLS: &str =
    "id, kind, oa_id, origin, reason, state, created_at_ms, resolved_at_ms, resolved_by";

fn held_from_row(row: &AnyRow) -> Result<HeldDeletion, StoreError> {
    let id: i64 = row.try_get("id")?;
    let corrupt = corrupt_row("held_deletions", id);
    let kind: String = row.try_get("kind")?;
    let origin: String = row.try_get("origin")?;
    let state: String = row.try_get("state")?;
    Ok(HeldDeletion {
        id,
        kind: EntityKind::parse(&kind).ok_or_else(|| corrupt(format!("kind {kind:?}")))?,
        oa_id: row.try_get("oa_id")?,
        origin: Origin::parse(&origin).ok_or_else(|| corrupt(format!("origin {origin:?}")))?,
        reason: row.try_get("reason")?,
        state: HoldState::parse(&state).ok_or_else(|| corrupt(format!("state {state:?}")))?,
        created_at_ms: row.try_get("created_at_ms")?,
        resolved_at_ms: row.try_get("resolved_at_ms")?,
        resolved_by: row.try_get("resolved_by")?,
    })
}

/// Holds a deletion on `conn` (inside the caller's transaction); returns its id.
pub(crate) async fn hold_in(
    conn: &mut AnyConnection,
    org: &str,
    kind: EntityKind,
    oa_id: &str,
    origin: Origin,
    reason: &str,
    now_ms: i64,
) -> Result<i64, StoreError> {
    let row = Sql::new(
        "INSERT INTO held_deletions (org, kind, oa_id, origin, reason, state, created_at_ms) \
         VALUES (",
    )
    .bind(org)
    .push(", ")
    .bind(kind.as_str())
    .push(", ")
    .bind(oa_id)
    .push(", ")
    .bind(origin.as_str())
    .push(", ")
    .bind(reason)
    .push(", 'held', ")
    .bind(now_ms)
    .push(") RETURNING id")
    .query()
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.try_get("id")?)
}

impl Store {
    /// Holds a deletion for confirmation; returns its id.
    pub async fn hold_deletion(
        &self,
        kind: EntityKind,
        oa_id: &str,
        origin: Origin,
        reason: &str,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        hold_in(&mut conn, &self.org, kind, oa_id, origin, reason, now_ms).await
    }

    /// This org's held deletions, optionally of one state, oldest first.
    pub async fn held_deletions(
        &self,
        state: Option<HoldState>,
    ) -> Result<Vec<HeldDeletion>, StoreError> {
        let mut sql = Sql::new(&format!(
            "SELECT {HELD_COLS} FROM held_deletions WHERE org = "
        ))
        .bind(&*self.org);
        if let Some(s) = state {
            sql = sql.push(" AND state = ").bind(s.as_str());
        }
        let rows = sql
            .push(" ORDER BY id")
            .query()
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(held_from_row).collect()
    }

    /// Approves or rejects a held deletion (only while it is held). A deletion SCIM held is
    /// carried out (or undone in SCIM) in the same transaction (see [`crate::scim_holds`]);
    /// when that fails, the deletion stays held.
    pub async fn resolve_held_deletion(
        &self,
        id: i64,
        approve: bool,
        by: &str,
        now_ms: i64,
    ) -> Result<HeldDeletion, StoreError> {
        let state = if approve {
            HoldState::Approved
        } else {
            HoldState::Rejected
        };
        let mut tx = self.begin_write().await?;
        let row = Sql::new("UPDATE held_deletions SET state = ")
            .bind(state.as_str())
            .push(", resolved_at_ms = ")
            .bind(now_ms)
            .push(", resolved_by = ")
            .bind(by)
            .push(" WHERE state = 'held' AND id = ")
            .bind(id)
            .push(&format!(" RETURNING {HELD_COLS}"))
            .query()
            .fetch_optional(&mut *tx)
            .await?;
        match row {
            Some(r) => {
                let held = held_from_row(&r)?;
                crate::scim_holds::resolve_in(&mut tx, &held, approve, by, now_ms).await?;
                tx.commit().await?;
                Ok(held)
            }
            None => Err(StoreError::EntryNotFound {
                queue: "held_deletions",
                id,
                expected_state: "held",
            }),
        }
    }
}
