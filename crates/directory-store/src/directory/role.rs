//! Role groups and roles: their rules (a role needs a known group and a name unique in it; a
//! group with roles, or an OA-deleted role with holders, cannot be deleted), saving and
//! deleting.

use directory_model::{
    OaRoleGroupId, OaRoleId, OaUserId, Role, RoleGroup, validate_role, validate_role_group,
};
use sqlx::{AnyConnection, Row};

use super::assignment::unassign_in;
use super::{
    Expect, Saved, check_expect, next_version, record_deleted, record_saved, to_delete, unchanged,
};
use crate::db::{Sql, Store};
use crate::error::{EntityKind, StoreError};
use crate::journal::{WriteCtx, dep_key};
use crate::rows::{count, load_role, load_role_group};

/// The dependency keys a role change reads: its group, now and `before`.
pub(crate) fn role_reads(role: &Role, before: Option<&Role>) -> Vec<String> {
    [Some(role), before]
        .into_iter()
        .flatten()
        .map(|r| dep_key(EntityKind::RoleGroup, &r.group.to_string()))
        .collect()
}

async fn save_role_group_in(
    conn: &mut AnyConnection,
    ctx: &WriteCtx,
    group: RoleGroup,
    expect: Expect,
) -> Result<Saved<RoleGroup>, StoreError> {
    let kind = EntityKind::RoleGroup;
    let id = group.id.to_string();
    let current = load_role_group(conn, group.id).await?;
    check_expect(kind, &id, current.as_ref().map(|c| c.version), expect)?;
    if let Some(same) = unchanged(conn, ctx, kind, &id, current.as_ref(), &group).await? {
        return Ok(same);
    }
    if ctx.enforce_rules() {
        validate_role_group(&group).map_err(|source| StoreError::Invalid { kind, source })?;
    }
    Sql::new("INSERT INTO role_groups (id, name, version, updated_at_ms) VALUES (")
        .bind(group.id.get())
        .push(", ")
        .bind(group.name.as_str())
        .push(", ")
        .bind(next_version(ctx, current.as_ref()))
        .push(", ")
        .bind(ctx.now_ms)
        .push(
            ") ON CONFLICT (id) DO UPDATE SET name = excluded.name, version = excluded.version, \
             updated_at_ms = excluded.updated_at_ms",
        )
        .query()
        .execute(&mut *conn)
        .await?;
    record_saved(conn, ctx, kind, id, group, current.as_ref(), Vec::new()).await
}

/// A role's rules: valid, in a known group, and named uniquely within it.
async fn check_role_rules(conn: &mut AnyConnection, role: &Role) -> Result<(), StoreError> {
    validate_role(role).map_err(|source| StoreError::Invalid {
        kind: EntityKind::Role,
        source,
    })?;
    if load_role_group(conn, role.group).await?.is_none() {
        return Err(StoreError::UnknownRoleGroup { id: role.group });
    }
    let clash = count(
        conn,
        Sql::new("SELECT COUNT(*) AS n FROM roles WHERE group_id = ")
            .bind(role.group.get())
            .push(" AND name = ")
            .bind(role.name.as_str())
            .push(" AND id <> ")
            .bind(role.id.get()),
    )
    .await?;
    if clash > 0 {
        return Err(StoreError::DuplicateRoleName {
            group: role.group,
            name: role.name.clone(),
        });
    }
    Ok(())
}

pub(crate) async fn save_role_in(
    conn: &mut AnyConnection,
    ctx: &WriteCtx,
    role: Role,
    expect: Expect,
) -> Result<Saved<Role>, StoreError> {
    let kind = EntityKind::Role;
    let id = role.id.to_string();
    let current = load_role(conn, role.id).await?;
    check_expect(kind, &id, current.as_ref().map(|c| c.version), expect)?;
    if let Some(same) = unchanged(conn, ctx, kind, &id, current.as_ref(), &role).await? {
        return Ok(same);
    }
    if ctx.enforce_rules() {
        check_role_rules(conn, &role).await?;
    }
    Sql::new("INSERT INTO roles (id, group_id, name, version, updated_at_ms) VALUES (")
        .bind(role.id.get())
        .push(", ")
        .bind(role.group.get())
        .push(", ")
        .bind(role.name.as_str())
        .push(", ")
        .bind(next_version(ctx, current.as_ref()))
        .push(", ")
        .bind(ctx.now_ms)
        .push(
            ") ON CONFLICT (id) DO UPDATE SET group_id = excluded.group_id, name = excluded.name, \
             version = excluded.version, updated_at_ms = excluded.updated_at_ms",
        )
        .query()
        .execute(&mut *conn)
        .await?;
    let reads = role_reads(&role, current.as_ref().map(|c| &c.entity));
    record_saved(conn, ctx, kind, id, role, current.as_ref(), reads).await
}

impl Store {
    /// Creates, updates or upserts a role group.
    pub async fn save_role_group(
        &self,
        ctx: &WriteCtx,
        group: RoleGroup,
        expect: Expect,
    ) -> Result<Saved<RoleGroup>, StoreError> {
        let ctx = &self.stamp(ctx);
        let mut tx = self.begin_write().await?;
        let saved = save_role_group_in(&mut tx, ctx, group, expect).await?;
        tx.commit().await?;
        Ok(saved)
    }

    /// Deletes a role group; refused while it holds roles.
    pub async fn delete_role_group(
        &self,
        ctx: &WriteCtx,
        id: OaRoleGroupId,
        expected_version: Option<i64>,
    ) -> Result<(), StoreError> {
        let ctx = &self.stamp(ctx);
        let kind = EntityKind::RoleGroup;
        let mut tx = self.begin_write().await?;
        let current = load_role_group(&mut tx, id).await?;
        let current = to_delete(kind, &id.to_string(), current, expected_version)?;
        let roles = count(
            &mut tx,
            Sql::new("SELECT COUNT(*) AS n FROM roles WHERE group_id = ").bind(id.get()),
        )
        .await?;
        if roles > 0 {
            return Err(StoreError::GroupHasRoles { id, count: roles });
        }
        Sql::new("DELETE FROM role_groups WHERE id = ")
            .bind(id.get())
            .query()
            .execute(&mut *tx)
            .await?;
        let oa_id = id.to_string();
        record_deleted(&mut tx, ctx, kind, oa_id, &current.entity, Vec::new()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Creates, updates or upserts a role.
    pub async fn save_role(
        &self,
        ctx: &WriteCtx,
        role: Role,
        expect: Expect,
    ) -> Result<Saved<Role>, StoreError> {
        let ctx = &self.stamp(ctx);
        let mut tx = self.begin_write().await?;
        let saved = save_role_in(&mut tx, ctx, role, expect).await?;
        tx.commit().await?;
        Ok(saved)
    }

    /// Deletes a role. OA deletions of a role that still has members are refused (as DingTalk
    /// refuses them); deletions mirrored from DingTalk drop the assignments.
    pub async fn delete_role(
        &self,
        ctx: &WriteCtx,
        id: OaRoleId,
        expected_version: Option<i64>,
    ) -> Result<(), StoreError> {
        let ctx = &self.stamp(ctx);
        let mut tx = self.begin_write().await?;
        delete_role_in(&mut tx, ctx, id, expected_version).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Deletes a role on `conn`, inside the caller's write transaction (see [`Store::delete_role`]).
pub(crate) async fn delete_role_in(
    conn: &mut AnyConnection,
    ctx: &WriteCtx,
    id: OaRoleId,
    expected_version: Option<i64>,
) -> Result<(), StoreError> {
    let kind = EntityKind::Role;
    let current = load_role(conn, id).await?;
    let current = to_delete(kind, &id.to_string(), current, expected_version)?;
    let holders = Sql::new("SELECT user_id FROM user_roles WHERE role_id = ")
        .bind(id.get())
        .push(" ORDER BY user_id")
        .query()
        .fetch_all(&mut *conn)
        .await?;
    if !holders.is_empty() {
        if ctx.enforce_rules() {
            return Err(StoreError::RoleHasMembers {
                id,
                count: holders.len() as i64,
            });
        }
        let no_push = ctx.clone().with_enqueue(false);
        for h in holders {
            let user = OaUserId(h.try_get("user_id")?);
            unassign_in(conn, &no_push, &user, id).await?;
        }
    }
    Sql::new("DELETE FROM roles WHERE id = ")
        .bind(id.get())
        .query()
        .execute(&mut *conn)
        .await?;
    let reads = role_reads(&current.entity, None);
    record_deleted(conn, ctx, kind, id.to_string(), &current.entity, reads).await?;
    Ok(())
}
