//! Role assignments: granting a user a role and taking it away. An assignment has no row of
//! its own beyond `user_roles`; its text id is `role:user`, so the first ':' splits it.

use directory_model::{OaRoleId, OaUserId, RoleAssignment};
use sqlx::AnyConnection;

use super::{Outcome, exists, record_deleted, to_json};
use crate::base::refresh_base;
use crate::db::{Sql, Store};
use crate::error::{EntityKind, StoreError};
use crate::journal::{Change, Op, WriteCtx, dep_key, record};
use crate::rows::{count, load_role};

/// The text id of an assignment: the role id first, so the first ':' splits it.
fn assignment_id(user: &OaUserId, role: OaRoleId) -> String {
    format!("{role}:{user}")
}

fn assignment_reads(user: &OaUserId, role: OaRoleId) -> Vec<String> {
    vec![
        dep_key(EntityKind::User, user.as_str()),
        dep_key(EntityKind::Role, &role.to_string()),
    ]
}

async fn assigned(
    conn: &mut AnyConnection,
    user: &OaUserId,
    role: OaRoleId,
) -> Result<bool, StoreError> {
    let n = count(
        conn,
        Sql::new("SELECT COUNT(*) AS n FROM user_roles WHERE user_id = ")
            .bind(user.as_str())
            .push(" AND role_id = ")
            .bind(role.get()),
    )
    .await?;
    Ok(n > 0)
}

pub(crate) async fn assign_in(
    conn: &mut AnyConnection,
    ctx: &WriteCtx,
    user: &OaUserId,
    role: OaRoleId,
) -> Result<Outcome, StoreError> {
    if ctx.enforce_rules() {
        if !exists(conn, "users", user.as_str()).await? {
            return Err(StoreError::UnknownUser {
                field: "user".into(),
                id: user.clone(),
            });
        }
        if load_role(conn, role).await?.is_none() {
            return Err(StoreError::UnknownRole { id: role });
        }
    }
    let kind = EntityKind::RoleAssignment;
    let id = assignment_id(user, role);
    let assignment = RoleAssignment {
        user: user.clone(),
        role,
    };
    if assigned(conn, user, role).await? {
        refresh_base(conn, ctx, kind, &id, &assignment).await?;
        return Ok(Outcome::Unchanged);
    }
    Sql::new("INSERT INTO user_roles (user_id, role_id) VALUES (")
        .bind(user.as_str())
        .push(", ")
        .bind(role.get())
        .push(")")
        .query()
        .execute(&mut *conn)
        .await?;
    let change = Change {
        kind,
        oa_id: id,
        op: Op::Create,
        before: None,
        after: Some(to_json(&assignment)?),
        reads: assignment_reads(user, role),
    };
    record(conn, ctx, change).await?;
    Ok(Outcome::Created)
}

/// Takes `role` from `user` on `conn`, inside the caller's write transaction.
pub(crate) async fn unassign_in(
    conn: &mut AnyConnection,
    ctx: &WriteCtx,
    user: &OaUserId,
    role: OaRoleId,
) -> Result<Outcome, StoreError> {
    if !assigned(conn, user, role).await? {
        return Ok(Outcome::Unchanged);
    }
    Sql::new("DELETE FROM user_roles WHERE user_id = ")
        .bind(user.as_str())
        .push(" AND role_id = ")
        .bind(role.get())
        .query()
        .execute(&mut *conn)
        .await?;
    let assignment = RoleAssignment {
        user: user.clone(),
        role,
    };
    let (kind, id, reads) = (
        EntityKind::RoleAssignment,
        assignment_id(user, role),
        assignment_reads(user, role),
    );
    record_deleted(conn, ctx, kind, id, &assignment, reads).await?;
    Ok(Outcome::Updated)
}

impl Store {
    /// Gives `user` the role; `Unchanged` if they already hold it.
    pub async fn assign_role(
        &self,
        ctx: &WriteCtx,
        user: &OaUserId,
        role: OaRoleId,
    ) -> Result<Outcome, StoreError> {
        let ctx = &self.stamp(ctx);
        let mut tx = self.begin_write().await?;
        let outcome = assign_in(&mut tx, ctx, user, role).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Takes the role from `user`; `Unchanged` if they did not hold it.
    pub async fn unassign_role(
        &self,
        ctx: &WriteCtx,
        user: &OaUserId,
        role: OaRoleId,
    ) -> Result<Outcome, StoreError> {
        let ctx = &self.stamp(ctx);
        let mut tx = self.begin_write().await?;
        let outcome = unassign_in(&mut tx, ctx, user, role).await?;
        tx.commit().await?;
        Ok(outcome)
    }
}
