//! The SCIM side of provisioned resources: what a SCIM client (Entra ID, Okta, ...) sent for a
//! user or group that the OA model has no field for — `userName`, `externalId`, the raw
//! Enterprise `department` string and every other published attribute — kept as the resource's
//! JSON beside the OA entity it maps to, so SCIM reads give back what the client wrote.
//!
//! The OA entity stays the truth for sync; this table is only the SCIM client's view. Rows are
//! keyed by kind (`"User"` / `"Group"`) and the OA id; `user_name` (lower-cased, unique per kind)
//! and `external_id` are copied out for the lookups IdPs make before every create.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{Sql, Store};
use crate::error::StoreError;

/// One stored SCIM resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimResource {
    /// `"User"` or `"Group"`.
    pub kind: String,
    /// The OA id of the entity it maps to.
    pub id: String,
    /// The resource JSON as the client last wrote it (without `id` and `meta`).
    pub body_json: String,
    /// How many SCIM writes it has had (part of its ETag).
    pub rev: i64,
    /// When the client created it (Unix ms).
    pub created_at_ms: i64,
    /// When the client last wrote it (Unix ms).
    pub updated_at_ms: i64,
}

/// What a write stores.
#[derive(Debug, Clone, Copy)]
pub struct ScimWrite<'a> {
    /// `"User"` or `"Group"`.
    pub kind: &'a str,
    /// The OA id.
    pub id: &'a str,
    /// The userName (users only); compared case-insensitively.
    pub user_name: Option<&'a str>,
    /// The client's externalId.
    pub external_id: Option<&'a str>,
    /// The resource JSON.
    pub body_json: &'a str,
}

const COLUMNS: &str = "kind, id, body_json, rev, created_at_ms, updated_at_ms";

fn from_row(row: &AnyRow) -> Result<ScimResource, StoreError> {
    Ok(ScimResource {
        kind: row.try_get("kind")?,
        id: row.try_get("id")?,
        body_json: row.try_get("body_json")?,
        rev: row.try_get("rev")?,
        created_at_ms: row.try_get("created_at_ms")?,
        updated_at_ms: row.try_get("updated_at_ms")?,
    })
}

impl Store {
    /// The SCIM resource of `kind` mapped to OA id `id`.
    pub async fn scim_get(&self, kind: &str, id: &str) -> Result<Option<ScimResource>, StoreError> {
        let row = Sql::new(&format!(
            "SELECT {COLUMNS} FROM scim_resources WHERE kind = "
        ))
        .bind(kind)
        .push(" AND id = ")
        .bind(id)
        .query()
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// The OA id of the user whose userName is `user_name` (case-insensitive).
    pub async fn scim_id_by_user_name(
        &self,
        kind: &str,
        user_name: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = Sql::new("SELECT id FROM scim_resources WHERE kind = ")
            .bind(kind)
            .push(" AND user_name = ")
            .bind(user_name.to_lowercase())
            .query()
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("id")).transpose()?)
    }

    /// Every SCIM resource of `kind`, oldest first (the order SCIM lists page through).
    pub async fn scim_list(&self, kind: &str) -> Result<Vec<ScimResource>, StoreError> {
        let rows = Sql::new(&format!(
            "SELECT {COLUMNS} FROM scim_resources WHERE kind = "
        ))
        .bind(kind)
        .push(" ORDER BY created_at_ms, id")
        .query()
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Stores a resource, creating it or bumping its revision; returns the stored row.
    pub async fn scim_put(
        &self,
        w: ScimWrite<'_>,
        now_ms: i64,
    ) -> Result<ScimResource, StoreError> {
        let user_name = w.user_name.map(str::to_lowercase);
        Sql::new(
            "INSERT INTO scim_resources (kind, id, user_name, external_id, body_json, rev, \
             created_at_ms, updated_at_ms) VALUES (",
        )
        .bind(w.kind)
        .push(", ")
        .bind(w.id)
        .push(", ")
        .bind(user_name)
        .push(", ")
        .bind(w.external_id.map(str::to_owned))
        .push(", ")
        .bind(w.body_json)
        .push(", 1, ")
        .bind(now_ms)
        .push(", ")
        .bind(now_ms)
        .push(
            ") ON CONFLICT (kind, id) DO UPDATE SET user_name = excluded.user_name, \
             external_id = excluded.external_id, body_json = excluded.body_json, \
             rev = scim_resources.rev + 1, updated_at_ms = excluded.updated_at_ms",
        )
        .query()
        .execute(&self.pool)
        .await?;
        self.scim_get(w.kind, w.id)
            .await?
            .ok_or(StoreError::Corrupt {
                table: "scim_resources",
                id: w.id.to_owned(),
                detail: "row missing right after its upsert".into(),
            })
    }

    /// Forgets a resource (the client deleted it).
    pub async fn scim_delete(&self, kind: &str, id: &str) -> Result<(), StoreError> {
        Sql::new("DELETE FROM scim_resources WHERE kind = ")
            .bind(kind)
            .push(" AND id = ")
            .bind(id)
            .query()
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
