//! Deletions a SCIM client asked for and the deletion threshold held (issue 17): what an
//! operator's decision does to them.
//!
//! An IdP misconfigured to unassign everyone deactivates (or `DELETE`s) users one request at a
//! time; past the threshold each such request is answered with success but its effect on the
//! OA user is held (`held_deletions`, origin `oa`) while the SCIM resource already says what the
//! client wrote. Unlike a held import deletion (DingTalk lost the user; approving mirrors that
//! in OA), approving one of these makes the OA side's change now: the OA user is deleted or
//! marked left — the `[scim] leave` of the held request, kept in `scim_holds` — in the
//! approval's own transaction, and the outbox entry it queues takes the person out of DingTalk.
//! Rejecting it keeps the person on both sides and makes SCIM say so: a held deactivation's
//! resource is active again, a held `DELETE`'s resource (stashed here) is given back, so the
//! client's next provisioning finds the person instead of clashing with them.

use directory_model::{OaUserId, UserState};
use sqlx::{AnyConnection, Row};

use crate::db::{DEFAULT_ORG, Sql};
use crate::directory::{Expect, delete_user_in, save_user_in};
use crate::error::{EntityKind, StoreError};
use crate::held_deletions::{HeldDeletion, hold_in};
use crate::journal::{Origin, WriteCtx};
use crate::rows::{count, load_user};

/// The `scim_resources` kind of users (`dingsync::scim::users::KIND`).
const USER_KIND: &str = "User";

/// What approving a held SCIM deletion does to the OA user (`[scim] leave`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimLeave {
    /// Delete the OA user (and so the DingTalk user).
    Delete,
    /// Keep the OA user with state `left` (removed from DingTalk, kept for history).
    Left,
}

impl ScimLeave {
    fn as_str(self) -> &'static str {
        match self {
            Self::Delete => "delete",
            Self::Left => "left",
        }
    }
}

/// Holds the deletion of user `id` (or finds the one held already) and records what approving
/// it does; returns the hold's id.
pub(crate) async fn hold_user_in(
    conn: &mut AnyConnection,
    id: &OaUserId,
    reason: &str,
    leave: ScimLeave,
    now_ms: i64,
) -> Result<i64, StoreError> {
    let existing = Sql::new("SELECT id FROM held_deletions WHERE state = 'held' AND kind = ")
        .bind(EntityKind::User.as_str())
        .push(" AND oa_id = ")
        .bind(id.as_str())
        .push(" AND origin = ")
        .bind(Origin::Oa.as_str())
        .push(" ORDER BY id")
        .query()
        .fetch_optional(&mut *conn)
        .await?;
    let hold = match existing {
        Some(row) => row.try_get("id")?,
        None => {
            // SCIM is OA-side: its holds belong to the default org, as before organizations.
            hold_in(
                conn,
                DEFAULT_ORG,
                EntityKind::User,
                id.as_str(),
                Origin::Oa,
                reason,
                now_ms,
            )
            .await?
        }
    };
    let known = Sql::new("SELECT COUNT(*) AS n FROM scim_holds WHERE hold_id = ").bind(hold);
    if count(conn, known).await? > 0 {
        // A `DELETE` after a held deactivation: approving deletes, whatever `leave` said.
        if leave == ScimLeave::Delete {
            Sql::new("UPDATE scim_holds SET on_approve = ")
                .bind(leave.as_str())
                .push(" WHERE hold_id = ")
                .bind(hold)
                .query()
                .execute(&mut *conn)
                .await?;
        }
    } else {
        Sql::new("INSERT INTO scim_holds (hold_id, user_id, on_approve) VALUES (")
            .bind(hold)
            .push(", ")
            .bind(id.as_str())
            .push(", ")
            .bind(leave.as_str())
            .push(")")
            .query()
            .execute(&mut *conn)
            .await?;
    }
    Ok(hold)
}

/// Keeps the SCIM resource of user `id`, which a held `DELETE` is about to remove, with hold
/// `hold`, so that rejecting the hold gives it back.
pub(crate) async fn stash_resource_in(
    conn: &mut AnyConnection,
    hold: i64,
    id: &str,
) -> Result<(), StoreError> {
    let row =
        Sql::new("SELECT user_name, external_id, body_json FROM scim_resources WHERE kind = ")
            .bind(USER_KIND)
            .push(" AND id = ")
            .bind(id)
            .query()
            .fetch_optional(&mut *conn)
            .await?;
    let Some(row) = row else { return Ok(()) };
    let user_name: Option<String> = row.try_get("user_name")?;
    let external_id: Option<String> = row.try_get("external_id")?;
    let body: String = row.try_get("body_json")?;
    Sql::new("UPDATE scim_holds SET resource_json = ")
        .bind(body)
        .push(", user_name = ")
        .bind(user_name)
        .push(", external_id = ")
        .bind(external_id)
        .push(" WHERE hold_id = ")
        .bind(hold)
        .query()
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Forgets what SCIM kept for the holds of user `id` that are no longer waiting (a
/// reactivation rejected them: the client's own write is the resource now).
pub(crate) async fn forget_resolved_in(
    conn: &mut AnyConnection,
    id: &OaUserId,
) -> Result<(), StoreError> {
    Sql::new("DELETE FROM scim_holds WHERE user_id = ")
        .bind(id.as_str())
        .push(" AND hold_id NOT IN (SELECT id FROM held_deletions WHERE state = 'held')")
        .query()
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Carries out an operator's decision on `held` when SCIM held it (see the module doc); other
/// holds are left alone. Runs inside the transaction that resolves the hold.
pub(crate) async fn resolve_in(
    conn: &mut AnyConnection,
    held: &HeldDeletion,
    approve: bool,
    by: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    let row = Sql::new(
        "SELECT user_id, on_approve, resource_json, user_name, external_id FROM scim_holds \
         WHERE hold_id = ",
    )
    .bind(held.id)
    .query()
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(()) };
    let id = OaUserId::new(row.try_get::<String, _>("user_id")?.as_str());
    let on_approve: String = row.try_get("on_approve")?;
    let resource: Option<String> = row.try_get("resource_json")?;
    if approve {
        let ctx = WriteCtx::oa(by, now_ms);
        if on_approve == ScimLeave::Left.as_str() {
            if let Some(current) = load_user(conn, &id).await?
                && current.entity.state != UserState::Left
            {
                let mut left = current.entity;
                left.state = UserState::Left;
                save_user_in(conn, &ctx, left, Expect::Version(current.version)).await?;
            }
        } else {
            match delete_user_in(conn, &ctx, &id, None).await {
                Ok(()) | Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    } else if let Some(body) = resource {
        restore_deleted(
            conn,
            &id,
            &body,
            row.try_get("user_name")?,
            row.try_get("external_id")?,
            now_ms,
        )
        .await?;
    } else {
        reactivate(conn, &id, now_ms).await?;
    }
    Sql::new("DELETE FROM scim_holds WHERE hold_id = ")
        .bind(held.id)
        .query()
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Gives a held `DELETE`'s resource back to SCIM, unless the client has since created one
/// under that id or taken its userName (then its own write stands).
async fn restore_deleted(
    conn: &mut AnyConnection,
    id: &OaUserId,
    body: &str,
    user_name: Option<String>,
    external_id: Option<String>,
    now_ms: i64,
) -> Result<(), StoreError> {
    let mut taken = Sql::new("SELECT COUNT(*) AS n FROM scim_resources WHERE kind = ")
        .bind(USER_KIND)
        .push(" AND (id = ")
        .bind(id.as_str());
    if let Some(name) = &user_name {
        taken = taken.push(" OR user_name = ").bind(name.as_str());
    }
    if count(conn, taken.push(")")).await? > 0 {
        return Ok(());
    }
    Sql::new(
        "INSERT INTO scim_resources (kind, id, user_name, external_id, body_json, rev, \
         created_at_ms, updated_at_ms) VALUES (",
    )
    .bind(USER_KIND)
    .push(", ")
    .bind(id.as_str())
    .push(", ")
    .bind(user_name)
    .push(", ")
    .bind(external_id)
    .push(", ")
    .bind(body)
    .push(", 1, ")
    .bind(now_ms)
    .push(", ")
    .bind(now_ms)
    .push(")")
    .query()
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Makes a held deactivation's resource active again (the person stays), as a new revision.
async fn reactivate(
    conn: &mut AnyConnection,
    id: &OaUserId,
    now_ms: i64,
) -> Result<(), StoreError> {
    let row = Sql::new("SELECT body_json FROM scim_resources WHERE kind = ")
        .bind(USER_KIND)
        .push(" AND id = ")
        .bind(id.as_str())
        .query()
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(()) };
    let body: String = row.try_get("body_json")?;
    let Ok(serde_json::Value::Object(mut resource)) = serde_json::from_str(&body) else {
        return Err(StoreError::Corrupt {
            table: "scim_resources",
            id: id.to_string(),
            detail: "body_json is not a JSON object".into(),
        });
    };
    resource.retain(|k, _| !k.eq_ignore_ascii_case("active"));
    resource.insert("active".into(), serde_json::Value::Bool(true));
    Sql::new("UPDATE scim_resources SET body_json = ")
        .bind(serde_json::Value::Object(resource).to_string())
        .push(", rev = rev + 1, updated_at_ms = ")
        .bind(now_ms)
        .push(" WHERE kind = ")
        .bind(USER_KIND)
        .push(" AND id = ")
        .bind(id.as_str())
        .query()
        .execute(&mut *conn)
        .await?;
    Ok(())
}
