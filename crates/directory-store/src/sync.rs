//! Sync bookkeeping that is not the directory itself: the OA↔DingTalk id map, base snapshots,
//! the audit log read as a change feed, import checkpoints, held deletions, a key/value state
//! table and leases.
//!
//! These are small and independent, but they live in the same database as the directory so that
//! the engine can rely on one durability story: what the store says happened, happened.

use directory_model::{
    Conflict, DingDeptId, DingRoleGroupId, DingRoleId, DingUserId, OaDeptId, OaRoleGroupId,
    OaRoleId, OaUserId, Side,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{Sql, Store};
use crate::error::{EntityKind, StoreError};
use crate::journal::{Op, Origin, set_base_on};

/// An OA id that has a DingTalk counterpart in the id map.
pub trait MappedId: Sized {
    /// The DingTalk id type.
    type Ding;
    /// The map's kind column.
    const KIND: EntityKind;
    /// The OA id as stored.
    fn oa_text(&self) -> String;
    /// Parses a stored OA id.
    fn parse_oa(text: &str) -> Option<Self>;
    /// The DingTalk id as stored.
    fn ding_text(ding: &Self::Ding) -> String;
    /// Parses a stored DingTalk id.
    fn parse_ding(text: &str) -> Option<Self::Ding>;
}

macro_rules! mapped_int {
    ($oa:ident, $ding:ident, $kind:expr) => {
        impl MappedId for $oa {
            type Ding = $ding;
            const KIND: EntityKind = $kind;
            fn oa_text(&self) -> String {
                self.0.to_string()
            }
            fn parse_oa(text: &str) -> Option<Self> {
                text.parse().ok().map($oa)
            }
            fn ding_text(ding: &$ding) -> String {
                ding.0.to_string()
            }
            fn parse_ding(text: &str) -> Option<$ding> {
                text.parse().ok().map($ding)
            }
        }
    };
}

mapped_int!(OaDeptId, DingDeptId, EntityKind::Department);
mapped_int!(OaRoleGroupId, DingRoleGroupId, EntityKind::RoleGroup);
mapped_int!(OaRoleId, DingRoleId, EntityKind::Role);

impl MappedId for OaUserId {
    type Ding = DingUserId;
    const KIND: EntityKind = EntityKind::User;
    fn oa_text(&self) -> String {
        self.0.clone()
    }
    fn parse_oa(text: &str) -> Option<Self> {
        Some(OaUserId::new(text))
    }
    fn ding_text(ding: &DingUserId) -> String {
        ding.0.clone()
    }
    fn parse_ding(text: &str) -> Option<DingUserId> {
        Some(DingUserId::new(text))
    }
}

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

fn audit_from_row(row: &AnyRow) -> Result<AuditRecord, StoreError> {
    let seq: i64 = row.try_get("seq")?;
    let corrupt = |detail: String| StoreError::Corrupt {
        table: "audit",
        id: seq.to_string(),
        detail,
    };
    let origin: String = row.try_get("origin")?;
    let kind: String = row.try_get("kind")?;
    let op: String = row.try_get("op")?;
    let before: Option<String> = row.try_get("before_json")?;
    let after: Option<String> = row.try_get("after_json")?;
    Ok(AuditRecord {
        seq,
        at_ms: row.try_get("at_ms")?,
        actor: row.try_get("actor")?,
        origin: Origin::parse(&origin).ok_or_else(|| corrupt(format!("origin {origin:?}")))?,
        kind: EntityKind::parse(&kind).ok_or_else(|| corrupt(format!("kind {kind:?}")))?,
        oa_id: row.try_get("oa_id")?,
        op: Op::parse(&op).ok_or_else(|| corrupt(format!("op {op:?}")))?,
        before: before.map(|b| serde_json::from_str(&b)).transpose()?,
        after: after.map(|a| serde_json::from_str(&a)).transpose()?,
    })
}

fn held_from_row(row: &AnyRow) -> Result<HeldDeletion, StoreError> {
    let id: i64 = row.try_get("id")?;
    let corrupt = |detail: String| StoreError::Corrupt {
        table: "held_deletions",
        id: id.to_string(),
        detail,
    };
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

fn side_text(side: Side) -> &'static str {
    match side {
        Side::Oa => "oa",
        Side::DingTalk => "dingtalk",
    }
}

fn conflict_from_row(row: &AnyRow) -> Result<ConflictRecord, StoreError> {
    let id: i64 = row.try_get("id")?;
    let corrupt = |detail: String| StoreError::Corrupt {
        table: "conflicts",
        id: id.to_string(),
        detail,
    };
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

const CONFLICT_COLS: &str =
    "id, kind, oa_id, field, base_json, oa_json, dingtalk_json, winner, at_ms";

const AUDIT_COLS: &str = "seq, at_ms, actor, origin, kind, oa_id, op, before_json, after_json";
const HELD_COLS: &str =
    "id, kind, oa_id, origin, reason, state, created_at_ms, resolved_at_ms, resolved_by";

impl Store {
    // -- id map -------------------------------------------------------------------------------

    /// Records that `oa` is `ding` in DingTalk. Idempotent for the same pair; refuses to remap
    /// either id silently (that would point two entities at one).
    pub async fn id_map_put<O: MappedId>(&self, oa: &O, ding: &O::Ding) -> Result<(), StoreError> {
        let oa_text = oa.oa_text();
        let ding_text = O::ding_text(ding);
        let mut tx = self.begin_queue().await?;
        let rows = Sql::new("SELECT oa_id, ding_id FROM id_map WHERE kind = ")
            .bind(O::KIND.as_str())
            .push(" AND (oa_id = ")
            .bind(oa_text.as_str())
            .push(" OR ding_id = ")
            .bind(ding_text.as_str())
            .push(")")
            .query()
            .fetch_all(&mut *tx)
            .await?;
        if let Some(r) = rows.first() {
            let existing_oa: String = r.try_get("oa_id")?;
            let existing_ding: String = r.try_get("ding_id")?;
            if existing_oa == oa_text && existing_ding == ding_text {
                return Ok(());
            }
            return Err(StoreError::IdMapConflict {
                kind: O::KIND,
                oa_id: oa_text,
                ding_id: ding_text,
                existing_oa_id: existing_oa,
                existing_ding_id: existing_ding,
            });
        }
        Sql::new("INSERT INTO id_map (kind, oa_id, ding_id) VALUES (")
            .bind(O::KIND.as_str())
            .push(", ")
            .bind(oa_text)
            .push(", ")
            .bind(ding_text)
            .push(")")
            .query()
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The DingTalk id of an OA entity.
    pub async fn ding_id_of<O: MappedId>(&self, oa: &O) -> Result<Option<O::Ding>, StoreError> {
        let row = Sql::new("SELECT ding_id FROM id_map WHERE kind = ")
            .bind(O::KIND.as_str())
            .push(" AND oa_id = ")
            .bind(oa.oa_text())
            .query()
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let text: String = row.try_get("ding_id")?;
        O::parse_ding(&text).map(Some).ok_or(StoreError::Corrupt {
            table: "id_map",
            id: oa.oa_text(),
            detail: format!("bad DingTalk id {text:?}"),
        })
    }

    /// The OA id of a DingTalk entity.
    pub async fn oa_id_of<O: MappedId>(&self, ding: &O::Ding) -> Result<Option<O>, StoreError> {
        let ding_text = O::ding_text(ding);
        let row = Sql::new("SELECT oa_id FROM id_map WHERE kind = ")
            .bind(O::KIND.as_str())
            .push(" AND ding_id = ")
            .bind(ding_text.as_str())
            .query()
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let text: String = row.try_get("oa_id")?;
        O::parse_oa(&text).map(Some).ok_or(StoreError::Corrupt {
            table: "id_map",
            id: ding_text,
            detail: format!("bad OA id {text:?}"),
        })
    }

    /// Forgets the mapping of an OA entity (after it was deleted on both sides).
    pub async fn id_map_remove<O: MappedId>(&self, oa: &O) -> Result<bool, StoreError> {
        let n = Sql::new("DELETE FROM id_map WHERE kind = ")
            .bind(O::KIND.as_str())
            .push(" AND oa_id = ")
            .bind(oa.oa_text())
            .query()
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    // -- base snapshots -----------------------------------------------------------------------

    /// The last synced state of an entity (the base of the three-way merge).
    pub async fn base_get<T: DeserializeOwned>(
        &self,
        kind: EntityKind,
        oa_id: &str,
    ) -> Result<Option<T>, StoreError> {
        let row = Sql::new("SELECT body_json FROM base_snapshots WHERE kind = ")
            .bind(kind.as_str())
            .push(" AND oa_id = ")
            .bind(oa_id)
            .query()
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let text: String = row.try_get("body_json")?;
        Ok(Some(serde_json::from_str(&text)?))
    }

    /// Sets (or with `None` removes) the last synced state, e.g. after a successful push.
    pub async fn base_set<T: Serialize>(
        &self,
        kind: EntityKind,
        oa_id: &str,
        value: Option<&T>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let body = value.map(serde_json::to_value).transpose()?;
        let mut conn = self.pool.acquire().await?;
        set_base_on(&mut conn, kind, oa_id, body.as_ref(), now_ms).await
    }

    // -- change feed ----------------------------------------------------------------------------

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

    // -- merge conflicts ----------------------------------------------------------------------

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
                "INSERT INTO conflicts (kind, oa_id, field, base_json, oa_json, dingtalk_json, \
                 winner, at_ms) VALUES (",
            )
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

    // -- key/value state and import checkpoints ------------------------------------------------

    /// A value of the `sync_state` table.
    pub async fn state_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let row = Sql::new("SELECT value FROM sync_state WHERE key = ")
            .bind(key)
            .query()
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    /// Sets a value of the `sync_state` table.
    pub async fn state_set(&self, key: &str, value: &str, now_ms: i64) -> Result<(), StoreError> {
        Sql::new("INSERT INTO sync_state (key, value, updated_at_ms) VALUES (")
            .bind(key)
            .push(", ")
            .bind(value)
            .push(", ")
            .bind(now_ms)
            .push(
                ") ON CONFLICT (key) DO UPDATE SET value = excluded.value, \
                 updated_at_ms = excluded.updated_at_ms",
            )
            .query()
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The saved position of an interrupted import (JSON chosen by the importer).
    pub async fn checkpoint_get(&self, name: &str) -> Result<Option<String>, StoreError> {
        let row = Sql::new("SELECT cursor_json FROM import_checkpoints WHERE name = ")
            .bind(name)
            .query()
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("cursor_json")).transpose()?)
    }

    /// Saves an import position.
    pub async fn checkpoint_set(
        &self,
        name: &str,
        cursor_json: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        Sql::new("INSERT INTO import_checkpoints (name, cursor_json, updated_at_ms) VALUES (")
            .bind(name)
            .push(", ")
            .bind(cursor_json)
            .push(", ")
            .bind(now_ms)
            .push(
                ") ON CONFLICT (name) DO UPDATE SET cursor_json = excluded.cursor_json, \
                 updated_at_ms = excluded.updated_at_ms",
            )
            .query()
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forgets an import position (the import finished).
    pub async fn checkpoint_clear(&self, name: &str) -> Result<(), StoreError> {
        Sql::new("DELETE FROM import_checkpoints WHERE name = ")
            .bind(name)
            .query()
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // -- leases -------------------------------------------------------------------------------

    /// Takes or renews the lease `name` for `holder` until `now_ms + ttl_ms`; false if another
    /// holder's lease is still running. Used so that only one instance imports or reconciles.
    pub async fn lease_acquire(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let row = Sql::new("INSERT INTO leases (name, holder, until_ms) VALUES (")
            .bind(name)
            .push(", ")
            .bind(holder)
            .push(", ")
            .bind(now_ms.saturating_add(ttl_ms))
            .push(
                ") ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                 until_ms = excluded.until_ms WHERE leases.holder = excluded.holder \
                 OR leases.until_ms <= ",
            )
            .bind(now_ms)
            .push(" RETURNING holder")
            .query()
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// The current holder of lease `name` and when it runs out, if anyone holds it (for an
    /// operator's message, and for taking over from a holder known to be dead).
    pub async fn lease_holder(&self, name: &str) -> Result<Option<(String, i64)>, StoreError> {
        let row = Sql::new("SELECT holder, until_ms FROM leases WHERE name = ")
            .bind(name)
            .query()
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(Some((r.try_get("holder")?, r.try_get("until_ms")?))),
            None => Ok(None),
        }
    }

    /// Gives up a lease held by `holder` (no-op otherwise).
    pub async fn lease_release(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        Sql::new("DELETE FROM leases WHERE name = ")
            .bind(name)
            .push(" AND holder = ")
            .bind(holder)
            .query()
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // -- held deletions -----------------------------------------------------------------------

    /// Holds a deletion for confirmation; returns its id.
    pub async fn hold_deletion(
        &self,
        kind: EntityKind,
        oa_id: &str,
        origin: Origin,
        reason: &str,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let row = Sql::new(
            "INSERT INTO held_deletions (kind, oa_id, origin, reason, state, created_at_ms) VALUES (",
        )
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
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Held deletions, optionally of one state, oldest first.
    pub async fn held_deletions(
        &self,
        state: Option<HoldState>,
    ) -> Result<Vec<HeldDeletion>, StoreError> {
        let mut sql = Sql::new(&format!(
            "SELECT {HELD_COLS} FROM held_deletions WHERE 1 = 1"
        ));
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

    /// Approves or rejects a held deletion (only while it is held).
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
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => held_from_row(&r),
            None => Err(StoreError::EntryNotFound {
                queue: "held_deletions",
                id,
                expected_state: "held",
            }),
        }
    }
}
