//! Base snapshots: the last state both sides agreed on, per entity — the base of the engine's
//! three-way merge. Writes mirrored from DingTalk move it inside their own transaction (through
//! `journal`); the pusher moves it after DingTalk accepted a push (`id_map`); plan and reconcile
//! read it whole. Bases are per organization (`Store::for_org`): each org agreed on its own.

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::{AnyConnection, Row};

use crate::db::{Sql, Store};
use crate::error::{EntityKind, StoreError};
use crate::journal::WriteCtx;

/// Sets (or, for `None`, removes) the base snapshot of one entity on `conn`.
pub(crate) async fn set_base_on(
    conn: &mut AnyConnection,
    org: &str,
    kind: EntityKind,
    oa_id: &str,
    body: Option<&serde_json::Value>,
    now_ms: i64,
) -> Result<(), StoreError> {
    match body {
        Some(body) => {
            Sql::new(
                "INSERT INTO base_snapshots (org, kind, oa_id, body_json, synced_at_ms) VALUES (",
            )
            .bind(org)
            .push(", ")
            .bind(kind.as_str())
            .push(", ")
            .bind(oa_id)
            .push(", ")
            .bind(body.to_string())
            .push(", ")
            .bind(now_ms)
            .push(
                ") ON CONFLICT (org, kind, oa_id) DO UPDATE SET body_json = excluded.body_json, \
                     synced_at_ms = excluded.synced_at_ms",
            )
            .query()
            .execute(&mut *conn)
            .await?;
        }
        None => {
            Sql::new("DELETE FROM base_snapshots WHERE org = ")
                .bind(org)
                .push(" AND kind = ")
                .bind(kind.as_str())
                .push(" AND oa_id = ")
                .bind(oa_id)
                .query()
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// The stored base snapshot of one entity, as JSON text.
async fn base_text_on(
    conn: &mut AnyConnection,
    org: &str,
    kind: EntityKind,
    oa_id: &str,
) -> Result<Option<String>, StoreError> {
    let row = Sql::new("SELECT body_json FROM base_snapshots WHERE org = ")
        .bind(org)
        .push(" AND kind = ")
        .bind(kind.as_str())
        .push(" AND oa_id = ")
        .bind(oa_id)
        .query()
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|r| r.try_get("body_json")).transpose()?)
}

/// Moves the base snapshot to `value` if `ctx` records the base and it differs: a DingTalk write
/// equal to the stored state writes nothing else, yet still proves both sides agree.
pub(crate) async fn refresh_base<T: Serialize>(
    conn: &mut AnyConnection,
    ctx: &WriteCtx,
    kind: EntityKind,
    id: &str,
    value: &T,
) -> Result<(), StoreError> {
    if !ctx.record_base {
        return Ok(());
    }
    let body = serde_json::to_value(value)?;
    let same = match base_text_on(conn, &ctx.org, kind, id).await? {
        Some(text) => serde_json::from_str::<serde_json::Value>(&text).ok() == Some(body.clone()),
        None => false,
    };
    if !same {
        set_base_on(conn, &ctx.org, kind, id, Some(&body), ctx.now_ms).await?;
    }
    Ok(())
}

impl Store {
    /// The last synced state of an entity (the base of the three-way merge).
    pub async fn base_get<T: DeserializeOwned>(
        &self,
        kind: EntityKind,
        oa_id: &str,
    ) -> Result<Option<T>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let Some(text) = base_text_on(&mut conn, &self.org, kind, oa_id).await? else {
            return Ok(None);
        };
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
        set_base_on(&mut conn, &self.org, kind, oa_id, body.as_ref(), now_ms).await
    }

    /// Every base snapshot of one kind as `(oa id, body)`, for reconcile's three-way plan.
    pub async fn base_all(
        &self,
        kind: EntityKind,
    ) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        let rows = Sql::new("SELECT oa_id, body_json FROM base_snapshots WHERE org = ")
            .bind(&*self.org)
            .push(" AND kind = ")
            .bind(kind.as_str())
            .push(" ORDER BY oa_id")
            .query()
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let text: String = r.try_get("body_json")?;
                Ok((r.try_get("oa_id")?, serde_json::from_str(&text)?))
            })
            .collect()
    }
}
