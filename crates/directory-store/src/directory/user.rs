//! Users: their rules (known departments, a known manager without a cycle, a mobile number and
//! email unique among active users), saving, and deleting — which, for a deletion mirrored from
//! DingTalk, clears the references DingTalk cleared with it.

use directory_model::{OaRoleId, OaUserId, User, UserState, validate_user};
use sqlx::{AnyConnection, Row};

use super::assignment::unassign_in;
use super::{
    Expect, MAX_DEPTH, Saved, check_expect, exists, next_version, record_deleted, record_saved,
    save_department_in, to_delete, unchanged,
};
use crate::db::{Sql, Store};
use crate::error::{EntityKind, StoreError};
use crate::journal::{WriteCtx, dep_key};
use crate::rows::{
    DEPT_COLS, USER_COLS, Versioned, fetch_departments, fetch_users, load_user, write_users,
};

async fn manager_of(
    conn: &mut AnyConnection,
    id: &OaUserId,
) -> Result<Option<OaUserId>, StoreError> {
    let row = Sql::new("SELECT manager_id FROM users WHERE id = ")
        .bind(id.as_str())
        .query()
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match row {
        Some(r) => r.try_get::<Option<String>, _>("manager_id")?.map(OaUserId),
        None => None,
    })
}

/// The manager must exist and must not be the user or someone the user (indirectly) manages.
async fn check_manager(
    conn: &mut AnyConnection,
    user: &User,
    manager: &OaUserId,
) -> Result<(), StoreError> {
    if !exists(conn, "users", manager.as_str()).await? {
        return Err(StoreError::UnknownUser {
            field: "manager".into(),
            id: manager.clone(),
        });
    }
    let mut cursor = Some(manager.clone());
    let mut steps = 0;
    while let Some(at) = cursor {
        if at == user.id {
            return Err(StoreError::ManagerCycle {
                id: user.id.clone(),
                manager: manager.clone(),
            });
        }
        steps += 1;
        if steps > MAX_DEPTH {
            return Err(StoreError::Corrupt {
                table: "users",
                id: manager.to_string(),
                detail: "manager chain does not end".into(),
            });
        }
        cursor = manager_of(conn, &at).await?;
    }
    Ok(())
}

/// Another active user with the same contact (`condition` binds the value), if any.
async fn active_holder(
    conn: &mut AnyConnection,
    user: &User,
    condition: Sql,
) -> Result<Option<OaUserId>, StoreError> {
    let row = condition
        .push(" AND id <> ")
        .bind(user.id.as_str())
        .push(" LIMIT 1")
        .query()
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|r| r.try_get("id")).transpose()?.map(OaUserId))
}

/// An active user's mobile number and email must not belong to another active user.
async fn check_unique_contact(conn: &mut AnyConnection, user: &User) -> Result<(), StoreError> {
    if user.state != UserState::Active {
        return Ok(());
    }
    if let Some(mobile) = &user.mobile {
        let same = Sql::new("SELECT id FROM users WHERE state = 'active' AND mobile_number = ")
            .bind(mobile.number.as_str())
            .push(" AND mobile_country = ")
            .bind(mobile.country_code.as_str());
        if let Some(existing) = active_holder(conn, user, same).await? {
            return Err(StoreError::DuplicateMobile { existing });
        }
    }
    if let Some(email) = &user.email {
        let same = Sql::new("SELECT id FROM users WHERE state = 'active' AND email = ")
            .bind(email.as_str());
        if let Some(existing) = active_holder(conn, user, same).await? {
            return Err(StoreError::DuplicateEmail { existing });
        }
    }
    Ok(())
}

async fn check_user_rules(conn: &mut AnyConnection, user: &User) -> Result<(), StoreError> {
    validate_user(user).map_err(|source| StoreError::Invalid {
        kind: EntityKind::User,
        source,
    })?;
    for (i, m) in user.departments.iter().enumerate() {
        if !exists(conn, "departments", m.dept.get()).await? {
            return Err(StoreError::UnknownDepartment {
                field: format!("departments[{i}].dept"),
                id: m.dept,
            });
        }
    }
    if let Some(manager) = &user.manager {
        check_manager(conn, user, manager).await?;
    }
    check_unique_contact(conn, user).await
}

/// The dependency keys a user change reads: their departments (now and `before`) and manager.
pub(crate) fn user_reads(user: &User, before: Option<&User>) -> Vec<String> {
    let mut reads = Vec::new();
    for u in [Some(user), before].into_iter().flatten() {
        for d in u.department_ids() {
            reads.push(dep_key(EntityKind::Department, &d.to_string()));
        }
    }
    if let Some(m) = &user.manager {
        reads.push(dep_key(EntityKind::User, m.as_str()));
    }
    reads
}

/// Writes a user that passed (or is exempt from) the rules, and records it.
pub(super) async fn save_user_unchecked(
    conn: &mut AnyConnection,
    ctx: &WriteCtx,
    user: User,
    current: Option<Versioned<User>>,
) -> Result<Saved<User>, StoreError> {
    write_users(
        conn,
        &[(&user, next_version(ctx, current.as_ref()))],
        ctx.now_ms,
    )
    .await?;
    let reads = user_reads(&user, current.as_ref().map(|c| &c.entity));
    let id = user.id.0.clone();
    record_saved(
        conn,
        ctx,
        EntityKind::User,
        id,
        user,
        current.as_ref(),
        reads,
    )
    .await
}

/// Saves a user on `conn`, inside the caller's write transaction.
pub(crate) async fn save_user_in(
    conn: &mut AnyConnection,
    ctx: &WriteCtx,
    user: User,
    expect: Expect,
) -> Result<Saved<User>, StoreError> {
    let kind = EntityKind::User;
    let current = load_user(conn, &user.id).await?;
    let id = user.id.as_str();
    check_expect(kind, id, current.as_ref().map(|c| c.version), expect)?;
    if let Some(same) = unchanged(conn, ctx, kind, id, current.as_ref(), &user).await? {
        return Ok(same);
    }
    if ctx.enforce_rules() {
        check_user_rules(conn, &user).await?;
    }
    save_user_unchecked(conn, ctx, user, current).await
}

/// Before `id` is deleted: OA deletions of someone who still manages users or departments are
/// refused; for deletions mirrored from DingTalk (which already removed the user), the
/// references DingTalk dropped are dropped here too.
async fn clear_manager_references(
    conn: &mut AnyConnection,
    ctx: &WriteCtx,
    id: &OaUserId,
) -> Result<(), StoreError> {
    let subordinates = fetch_users(
        conn,
        Sql::new(&format!(
            "SELECT {USER_COLS} FROM users WHERE manager_id = "
        ))
        .bind(id.as_str())
        .push(" ORDER BY id"),
    )
    .await?;
    let managed_depts = fetch_departments(
        conn,
        Sql::new(&format!(
            "SELECT {DEPT_COLS} FROM departments WHERE id IN \
             (SELECT dept_id FROM department_managers WHERE user_id = "
        ))
        .bind(id.as_str())
        .push(") ORDER BY id"),
    )
    .await?;
    let references = subordinates.len() + managed_depts.len();
    if references > 0 && ctx.enforce_rules() {
        return Err(StoreError::UserIsManager {
            id: id.clone(),
            count: references as i64,
        });
    }
    for s in subordinates {
        let mut u = s.entity.clone();
        u.manager = None;
        save_user_unchecked(conn, ctx, u, Some(s)).await?;
    }
    for d in managed_depts {
        let mut dept = d.entity.clone();
        dept.managers.retain(|m| m != id);
        save_department_in(conn, ctx, dept, Expect::Any).await?;
    }
    Ok(())
}

/// Deletes user `id` on `conn`, inside the caller's write transaction.
pub(crate) async fn delete_user_in(
    conn: &mut AnyConnection,
    ctx: &WriteCtx,
    id: &OaUserId,
    expected_version: Option<i64>,
) -> Result<(), StoreError> {
    let current = load_user(conn, id).await?;
    let current = to_delete(EntityKind::User, id.as_str(), current, expected_version)?;
    clear_manager_references(conn, ctx, id).await?;
    // DingTalk drops a user's roles with the user, so these are recorded but never pushed.
    let no_push = ctx.clone().with_enqueue(false);
    let roles = Sql::new("SELECT role_id FROM user_roles WHERE user_id = ")
        .bind(id.as_str())
        .push(" ORDER BY role_id")
        .query()
        .fetch_all(&mut *conn)
        .await?;
    for r in roles {
        let role = OaRoleId(r.try_get("role_id")?);
        unassign_in(conn, &no_push, id, role).await?;
    }
    Sql::new("DELETE FROM user_departments WHERE user_id = ")
        .bind(id.as_str())
        .query()
        .execute(&mut *conn)
        .await?;
    Sql::new("DELETE FROM users WHERE id = ")
        .bind(id.as_str())
        .query()
        .execute(&mut *conn)
        .await?;
    let reads = user_reads(&current.entity, None);
    record_deleted(
        conn,
        ctx,
        EntityKind::User,
        id.0.clone(),
        &current.entity,
        reads,
    )
    .await
}

impl Store {
    /// Creates, updates or upserts a user.
    pub async fn save_user(
        &self,
        ctx: &WriteCtx,
        user: User,
        expect: Expect,
    ) -> Result<Saved<User>, StoreError> {
        let ctx = &self.stamp(ctx);
        let mut tx = self.begin_write().await?;
        let saved = save_user_in(&mut tx, ctx, user, expect).await?;
        tx.commit().await?;
        Ok(saved)
    }

    /// Creates a user; fails if the id exists.
    pub async fn create_user(&self, ctx: &WriteCtx, user: User) -> Result<Saved<User>, StoreError> {
        let ctx = &self.stamp(ctx);
        self.save_user(ctx, user, Expect::Absent).await
    }

    /// Updates a user, optionally only if it is at `expected_version`.
    pub async fn update_user(
        &self,
        ctx: &WriteCtx,
        user: User,
        expected_version: Option<i64>,
    ) -> Result<Saved<User>, StoreError> {
        let ctx = &self.stamp(ctx);
        let expect = expected_version.map_or(Expect::Present, Expect::Version);
        self.save_user(ctx, user, expect).await
    }

    /// Deletes a user and their role assignments. OA deletions of someone who still manages
    /// users or departments are refused; deletions mirrored from DingTalk clear those references.
    pub async fn delete_user(
        &self,
        ctx: &WriteCtx,
        id: &OaUserId,
        expected_version: Option<i64>,
    ) -> Result<(), StoreError> {
        let ctx = &self.stamp(ctx);
        let mut tx = self.begin_write().await?;
        delete_user_in(&mut tx, ctx, id, expected_version).await?;
        tx.commit().await?;
        Ok(())
    }
}
