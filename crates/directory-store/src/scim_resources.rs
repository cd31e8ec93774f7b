//! The SCIM side of provisioned resources: what a SCIM client (Entra ID, Okta, ...) sent for a
//! user or group that the OA model has no field for — `userName`, `externalId`, the raw
//! Enterprise `department` string and every other published attribute — kept as the resource's
//! JSON beside the OA entity it maps to, so SCIM reads give back what the client wrote.
//!
//! The OA entity stays the truth for sync; this table is only the SCIM client's view. Rows are
//! keyed by kind (`"User"` / `"Group"`) and the OA id; `user_name` (lower-cased, unique per kind)
//! and `external_id` are copied out for the lookups IdPs make before every create.
//!
//! A SCIM user write changes two things, the OA user and this row; [`Store::scim_save`] and
//! [`Store::scim_remove`] commit both in one write transaction (with the user's audit row and
//! outbox entry), so a refusal of either leaves neither behind: no OA user pushed to DingTalk
//! that the IdP was told does not exist, and no SCIM resource whose user is missing.

use directory_model::{OaRoleId, OaUserId, Role, User};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::db::{Sql, Store};
use crate::directory::{
    Expect, assign_in, delete_role_in, delete_user_in, save_role_in, save_user_in, unassign_in,
};
use crate::error::{EntityKind, StoreError};
use crate::journal::{Op, WriteCtx};
use crate::rows::count;
use crate::scim_holds::{ScimLeave, forget_resolved_in, hold_user_in, stash_resource_in};

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

/// The directory change that commits together with a SCIM resource write.
#[derive(Debug, Clone)]
pub enum ScimChange {
    /// The resource alone (a Group's department is written by its own calls).
    None,
    /// Save this user, with this expectation (boxed: a user is large).
    SaveUser(Box<User>, Expect),
    /// Delete this user if it is there (a user already gone is not an error).
    DeleteUser(OaUserId),
    /// Keep this user, and hold its deletion for an operator (a mass deactivation or deletion
    /// past the deletion threshold); a deletion of it already held is not held twice. With
    /// [`Store::scim_remove`], the removed resource is kept with the hold, for a rejection to
    /// give back (see [`crate::scim_holds`]).
    HoldUserDeletion {
        /// The user.
        id: OaUserId,
        /// Why (shown to the operator).
        reason: String,
        /// What approving the hold does to the OA user.
        leave: ScimLeave,
    },
    /// Save this role (a Group kept as a role), then give it to `grant` and take it from
    /// `revoke`; a `grant` id that is no OA user refuses the whole write
    /// ([`StoreError::UnknownUser`]).
    SaveRole {
        /// The role.
        role: Role,
        /// The expectation on its current version.
        expect: Expect,
        /// Users who gain it.
        grant: Vec<OaUserId>,
        /// Users who lose it.
        revoke: Vec<OaUserId>,
    },
    /// Take this role from every holder, then delete it (a role already gone is no error).
    DeleteRole(OaRoleId),
}

/// The users SCIM clients took out of the directory within a window
/// ([`Store::scim_user_departures_since`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScimDepartures {
    /// Deleted from the directory.
    pub deleted: i64,
    /// Marked left (still in the directory).
    pub left: i64,
    /// Whose deletion is held for an operator (still in the directory; any age).
    pub held: i64,
}

/// The `reason` prefix of deletions held by SCIM, so that they can be counted and found.
pub const SCIM_HOLD_REASON: &str = "SCIM mass deactivation";

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
        self.scim_save(&WriteCtx::oa("scim", now_ms), ScimChange::None, w)
            .await
    }

    /// Applies `change` to the directory and stores the resource, in one write transaction
    /// (see the module doc); a `userName` another resource of the kind holds is refused with
    /// [`StoreError::DuplicateUserName`], checked inside that transaction so two concurrent
    /// creates cannot both get it.
    pub async fn scim_save(
        &self,
        ctx: &WriteCtx,
        change: ScimChange,
        w: ScimWrite<'_>,
    ) -> Result<ScimResource, StoreError> {
        let ctx = &self.stamp(ctx);
        let mut tx = self.begin_write().await?;
        apply_change(&mut tx, ctx, change).await?;
        put_in(&mut tx, w, ctx.now_ms).await?;
        let row = get_in(&mut tx, w.kind, w.id).await?;
        tx.commit().await?;
        row.ok_or(StoreError::Corrupt {
            table: "scim_resources",
            id: w.id.to_owned(),
            detail: "row missing right after its upsert".into(),
        })
    }

    /// Applies `change` (usually [`ScimChange::DeleteUser`]) and forgets the resource, in one
    /// write transaction.
    pub async fn scim_remove(
        &self,
        ctx: &WriteCtx,
        change: ScimChange,
        kind: &str,
        id: &str,
    ) -> Result<(), StoreError> {
        let ctx = &self.stamp(ctx);
        let mut tx = self.begin_write().await?;
        if let Some(hold) = apply_change(&mut tx, ctx, change).await? {
            stash_resource_in(&mut tx, hold, id).await?;
        }
        delete_in(&mut tx, kind, id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The users SCIM clients took out of the directory since `since_ms`: the departure wave
    /// a new one would join, for the deletion threshold.
    pub async fn scim_user_departures_since(
        &self,
        since_ms: i64,
    ) -> Result<ScimDepartures, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let by_scim = |op: Op| {
            Sql::new("SELECT COUNT(*) AS n FROM audit WHERE kind = ")
                .bind(EntityKind::User.as_str())
                .push(" AND actor LIKE 'scim:%' AND at_ms >= ")
                .bind(since_ms)
                .push(" AND op = ")
                .bind(op.as_str())
        };
        // A user marked left is an update whose after-image (compact JSON, so the member is
        // spelled exactly so) has the state `left` and whose before-image has not.
        let left = by_scim(Op::Update).push(
            " AND after_json LIKE '%\"state\":\"left\"%' AND (before_json IS NULL \
             OR before_json NOT LIKE '%\"state\":\"left\"%')",
        );
        let held =
            Sql::new("SELECT COUNT(*) AS n FROM held_deletions WHERE state = 'held' AND kind = ")
                .bind(EntityKind::User.as_str())
                .push(" AND reason LIKE ")
                .bind(format!("{SCIM_HOLD_REASON}%"));
        Ok(ScimDepartures {
            deleted: count(&mut conn, by_scim(Op::Delete)).await?,
            left: count(&mut conn, left).await?,
            held: count(&mut conn, held).await?,
        })
    }

    /// Whether a deletion of user `id` that SCIM held still waits for an operator.
    pub async fn scim_user_hold_pending(&self, id: &OaUserId) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let held =
            Sql::new("SELECT COUNT(*) AS n FROM held_deletions WHERE state = 'held' AND kind = ")
                .bind(EntityKind::User.as_str())
                .push(" AND oa_id = ")
                .bind(id.as_str())
                .push(" AND reason LIKE ")
                .bind(format!("{SCIM_HOLD_REASON}%"));
        Ok(count(&mut conn, held).await? > 0)
    }

    /// Rejects the deletions of user `id` that SCIM holds (the client reactivated the user, so
    /// an operator must not approve them later); returns how many.
    pub async fn scim_release_user_holds(
        &self,
        id: &OaUserId,
        by: &str,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = Sql::new("UPDATE held_deletions SET state = 'rejected', resolved_at_ms = ")
            .bind(now_ms)
            .push(", resolved_by = ")
            .bind(by)
            .push(" WHERE state = 'held' AND kind = ")
            .bind(EntityKind::User.as_str())
            .push(" AND oa_id = ")
            .bind(id.as_str())
            .push(" AND reason LIKE ")
            .bind(format!("{SCIM_HOLD_REASON}%"))
            .query()
            .execute(&mut *tx)
            .await?;
        forget_resolved_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Forgets a resource (the client deleted it).
    pub async fn scim_delete(&self, kind: &str, id: &str) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        delete_in(&mut conn, kind, id).await
    }
}

/// Applies `change`; returns the id of the hold when it holds a deletion.
async fn apply_change(
    conn: &mut AnyConnection,
    ctx: &WriteCtx,
    change: ScimChange,
) -> Result<Option<i64>, StoreError> {
    match change {
        ScimChange::None => Ok(None),
        ScimChange::SaveUser(user, expect) => {
            save_user_in(conn, ctx, *user, expect).await.map(|_| None)
        }
        ScimChange::DeleteUser(id) => match delete_user_in(conn, ctx, &id, None).await {
            Ok(()) | Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        },
        ScimChange::HoldUserDeletion { id, reason, leave } => {
            hold_user_in(conn, &id, &reason, leave, ctx.now_ms)
                .await
                .map(Some)
        }
        ScimChange::SaveRole {
            role,
            expect,
            grant,
            revoke,
        } => {
            let id = role.id;
            save_role_in(conn, ctx, role, expect).await?;
            for user in &grant {
                assign_in(conn, ctx, user, id).await?;
            }
            for user in &revoke {
                unassign_in(conn, ctx, user, id).await?;
            }
            Ok(None)
        }
        ScimChange::DeleteRole(id) => {
            let holders = Sql::new("SELECT user_id FROM user_roles WHERE role_id = ")
                .bind(id.get())
                .push(" ORDER BY user_id")
                .query()
                .fetch_all(&mut *conn)
                .await?;
            for h in holders {
                let user = OaUserId::new(h.try_get::<String, _>("user_id")?.as_str());
                unassign_in(conn, ctx, &user, id).await?;
            }
            match delete_role_in(conn, ctx, id, None).await {
                Ok(()) | Err(StoreError::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        }
    }
}

async fn get_in(
    conn: &mut AnyConnection,
    kind: &str,
    id: &str,
) -> Result<Option<ScimResource>, StoreError> {
    let row = Sql::new(&format!(
        "SELECT {COLUMNS} FROM scim_resources WHERE kind = "
    ))
    .bind(kind)
    .push(" AND id = ")
    .bind(id)
    .query()
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

async fn put_in(conn: &mut AnyConnection, w: ScimWrite<'_>, now_ms: i64) -> Result<(), StoreError> {
    let user_name = w.user_name.map(str::to_lowercase);
    if let Some(name) = &user_name {
        let holder = Sql::new("SELECT id FROM scim_resources WHERE kind = ")
            .bind(w.kind)
            .push(" AND user_name = ")
            .bind(name.as_str())
            .push(" AND id <> ")
            .bind(w.id)
            .query()
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(row) = holder {
            return Err(StoreError::DuplicateUserName {
                user_name: name.clone(),
                existing: row.try_get("id")?,
            });
        }
    }
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
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn delete_in(conn: &mut AnyConnection, kind: &str, id: &str) -> Result<(), StoreError> {
    Sql::new("DELETE FROM scim_resources WHERE kind = ")
        .bind(kind)
        .push(" AND id = ")
        .bind(id)
        .query()
        .execute(&mut *conn)
        .await?;
    Ok(())
}
