//! The directory's reads: one entity, filtered listings with keyset paging (sorted by id, the
//! cursor is the last id of the previous page, so a page never skips or repeats a row that
//! changed in between), the whole snapshot for plan / reconcile, and counts.

use directory_model::{
    Department, OaDeptId, OaRoleGroupId, OaRoleId, OaUserId, Role, RoleAssignment, RoleGroup,
    Snapshot, User, UserState,
};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{Sql, Store};
use crate::error::StoreError;
use crate::rows::{
    DEPT_COLS, ROLE_COLS, ROLE_GROUP_COLS, USER_COLS, Versioned, count, fetch_departments,
    fetch_role_groups, fetch_roles, fetch_users, load_department, load_role, load_role_group,
    load_user, state_text,
};

/// Filters for [`Store::list_departments`]; results are sorted by id, `after` is the last id
/// of the previous page.
#[derive(Debug, Clone, Default)]
pub struct DeptQuery {
    /// Case-insensitive substring of the name.
    pub name_contains: Option<String>,
    /// Only direct children of this department.
    pub parent: Option<OaDeptId>,
    /// Only departments changed at or after this time (Unix ms).
    pub updated_since_ms: Option<i64>,
    /// Keyset paging: ids greater than this.
    pub after: Option<OaDeptId>,
    /// Page size (0 means 100; capped at 1000).
    pub limit: u32,
}

/// Filters for [`Store::list_users`]; results are sorted by id.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    /// Case-insensitive substring of the name.
    pub name_contains: Option<String>,
    /// Only direct members of this department.
    pub department: Option<OaDeptId>,
    /// Exact national mobile number (any country code).
    pub mobile: Option<String>,
    /// Exact job number.
    pub job_number: Option<String>,
    /// Only users changed at or after this time (Unix ms).
    pub updated_since_ms: Option<i64>,
    /// Only users in this state.
    pub state: Option<UserState>,
    /// Keyset paging: ids greater than this.
    pub after: Option<OaUserId>,
    /// Page size (0 means 100; capped at 1000).
    pub limit: u32,
}

/// Filters for [`Store::list_roles`]; results are sorted by id.
#[derive(Debug, Clone, Default)]
pub struct RoleQuery {
    /// Only roles of this group.
    pub group: Option<OaRoleGroupId>,
    /// Keyset paging: ids greater than this.
    pub after: Option<OaRoleId>,
    /// Page size (0 means 100; capped at 1000).
    pub limit: u32,
}

/// Filters for [`Store::list_assignments`]; results are sorted by (role, user).
#[derive(Debug, Clone, Default)]
pub struct AssignmentQuery {
    /// Only this user's roles.
    pub user: Option<OaUserId>,
    /// Only this role's holders.
    pub role: Option<OaRoleId>,
    /// Keyset paging: after this (role, user).
    pub after: Option<RoleAssignment>,
    /// Page size (0 means 100; capped at 1000).
    pub limit: u32,
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T, C> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `after` to get the next page; None on the last page.
    pub next: Option<C>,
}

fn page_limit(limit: u32) -> usize {
    match limit {
        0 => 100,
        n => n.min(1000) as usize,
    }
}

/// Builds a page from `limit + 1` fetched rows.
fn paged<T, C>(mut items: Vec<T>, limit: usize, cursor: impl Fn(&T) -> C) -> Page<T, C> {
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(&cursor)
    } else {
        None
    };
    Page { items, next }
}

fn like_pattern(text: &str) -> String {
    let escaped = text
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Appends the case-insensitive name filter, if any.
fn name_filter(sql: Sql, name_contains: Option<&String>) -> Sql {
    match name_contains {
        Some(name) => sql
            .push(" AND LOWER(name) LIKE ")
            .bind(like_pattern(name))
            .push(" ESCAPE '\\'"),
        None => sql,
    }
}

/// Ends a listing: order by id, one row more than the page to know whether another follows.
fn page_end(sql: Sql, limit: usize) -> Sql {
    sql.push(" ORDER BY id LIMIT ").bind(limit as i64 + 1)
}

fn assignment_from_row(r: &AnyRow) -> Result<RoleAssignment, StoreError> {
    Ok(RoleAssignment {
        user: OaUserId(r.try_get("user_id")?),
        role: OaRoleId(r.try_get("role_id")?),
    })
}

impl Store {
    /// One department.
    pub async fn get_department(
        &self,
        id: OaDeptId,
    ) -> Result<Option<Versioned<Department>>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        load_department(&mut conn, id).await
    }

    /// One user.
    pub async fn get_user(&self, id: &OaUserId) -> Result<Option<Versioned<User>>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        load_user(&mut conn, id).await
    }

    /// One role group.
    pub async fn get_role_group(
        &self,
        id: OaRoleGroupId,
    ) -> Result<Option<Versioned<RoleGroup>>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        load_role_group(&mut conn, id).await
    }

    /// One role.
    pub async fn get_role(&self, id: OaRoleId) -> Result<Option<Versioned<Role>>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        load_role(&mut conn, id).await
    }

    /// A page of departments.
    pub async fn list_departments(
        &self,
        q: &DeptQuery,
    ) -> Result<Page<Versioned<Department>, OaDeptId>, StoreError> {
        let limit = page_limit(q.limit);
        let select = Sql::new(&format!("SELECT {DEPT_COLS} FROM departments WHERE 1 = 1"));
        let mut sql = name_filter(select, q.name_contains.as_ref());
        if let Some(p) = q.parent {
            sql = sql.push(" AND parent_id = ").bind(p.get());
        }
        if let Some(t) = q.updated_since_ms {
            sql = sql.push(" AND updated_at_ms >= ").bind(t);
        }
        if let Some(after) = q.after {
            sql = sql.push(" AND id > ").bind(after.get());
        }
        let mut conn = self.pool.acquire().await?;
        let items = fetch_departments(&mut conn, page_end(sql, limit)).await?;
        Ok(paged(items, limit, |d| d.entity.id))
    }

    /// A page of users.
    pub async fn list_users(
        &self,
        q: &UserQuery,
    ) -> Result<Page<Versioned<User>, OaUserId>, StoreError> {
        let limit = page_limit(q.limit);
        let select = Sql::new(&format!("SELECT {USER_COLS} FROM users WHERE 1 = 1"));
        let mut sql = name_filter(select, q.name_contains.as_ref());
        if let Some(d) = q.department {
            sql = sql
                .push(" AND id IN (SELECT user_id FROM user_departments WHERE dept_id = ")
                .bind(d.get())
                .push(")");
        }
        if let Some(m) = &q.mobile {
            sql = sql.push(" AND mobile_number = ").bind(m.as_str());
        }
        if let Some(j) = &q.job_number {
            sql = sql.push(" AND job_number = ").bind(j.as_str());
        }
        if let Some(t) = q.updated_since_ms {
            sql = sql.push(" AND updated_at_ms >= ").bind(t);
        }
        if let Some(s) = q.state {
            sql = sql.push(" AND state = ").bind(state_text(s));
        }
        if let Some(after) = &q.after {
            sql = sql.push(" AND id > ").bind(after.as_str());
        }
        let mut conn = self.pool.acquire().await?;
        let items = fetch_users(&mut conn, page_end(sql, limit)).await?;
        Ok(paged(items, limit, |u| u.entity.id.clone()))
    }

    /// A page of role groups.
    pub async fn list_role_groups(
        &self,
        after: Option<OaRoleGroupId>,
        limit: u32,
    ) -> Result<Page<Versioned<RoleGroup>, OaRoleGroupId>, StoreError> {
        let limit = page_limit(limit);
        let mut sql = Sql::new(&format!(
            "SELECT {ROLE_GROUP_COLS} FROM role_groups WHERE 1 = 1"
        ));
        if let Some(a) = after {
            sql = sql.push(" AND id > ").bind(a.get());
        }
        let mut conn = self.pool.acquire().await?;
        let items = fetch_role_groups(&mut conn, page_end(sql, limit)).await?;
        Ok(paged(items, limit, |g| g.entity.id))
    }

    /// A page of roles.
    pub async fn list_roles(
        &self,
        q: &RoleQuery,
    ) -> Result<Page<Versioned<Role>, OaRoleId>, StoreError> {
        let limit = page_limit(q.limit);
        let mut sql = Sql::new(&format!("SELECT {ROLE_COLS} FROM roles WHERE 1 = 1"));
        if let Some(g) = q.group {
            sql = sql.push(" AND group_id = ").bind(g.get());
        }
        if let Some(a) = q.after {
            sql = sql.push(" AND id > ").bind(a.get());
        }
        let mut conn = self.pool.acquire().await?;
        let items = fetch_roles(&mut conn, page_end(sql, limit)).await?;
        Ok(paged(items, limit, |r| r.entity.id))
    }

    /// A page of role assignments, ordered by (role, user).
    pub async fn list_assignments(
        &self,
        q: &AssignmentQuery,
    ) -> Result<Page<RoleAssignment, RoleAssignment>, StoreError> {
        let limit = page_limit(q.limit);
        let mut sql = Sql::new("SELECT user_id, role_id FROM user_roles WHERE 1 = 1");
        if let Some(u) = &q.user {
            sql = sql.push(" AND user_id = ").bind(u.as_str());
        }
        if let Some(r) = q.role {
            sql = sql.push(" AND role_id = ").bind(r.get());
        }
        if let Some(a) = &q.after {
            sql = sql
                .push(" AND (role_id > ")
                .bind(a.role.get())
                .push(" OR (role_id = ")
                .bind(a.role.get())
                .push(" AND user_id > ")
                .bind(a.user.as_str())
                .push("))");
        }
        sql = sql
            .push(" ORDER BY role_id, user_id LIMIT ")
            .bind(limit as i64 + 1);
        let rows = sql.query().fetch_all(&self.pool).await?;
        let items = rows
            .iter()
            .map(assignment_from_row)
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(paged(items, limit, Clone::clone))
    }

    /// The whole directory, for plan / reconcile.
    pub async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let all =
            |cols: &str, table: &str| Sql::new(&format!("SELECT {cols} FROM {table} ORDER BY id"));
        let depts = fetch_departments(&mut conn, all(DEPT_COLS, "departments")).await?;
        let users = fetch_users(&mut conn, all(USER_COLS, "users")).await?;
        let groups = fetch_role_groups(&mut conn, all(ROLE_GROUP_COLS, "role_groups")).await?;
        let roles = fetch_roles(&mut conn, all(ROLE_COLS, "roles")).await?;
        let rows = Sql::new("SELECT user_id, role_id FROM user_roles")
            .query()
            .fetch_all(&mut *conn)
            .await?;
        let assignments = rows
            .iter()
            .map(assignment_from_row)
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Snapshot::from_parts(
            depts.into_iter().map(|v| v.entity),
            users.into_iter().map(|v| v.entity),
            groups.into_iter().map(|v| v.entity),
            roles.into_iter().map(|v| v.entity),
            assignments,
        ))
    }

    /// How many departments and users are stored (for deletion thresholds and status).
    pub async fn counts(&self) -> Result<(i64, i64), StoreError> {
        let mut conn = self.pool.acquire().await?;
        let d = count(&mut conn, Sql::new("SELECT COUNT(*) AS n FROM departments")).await?;
        let u = count(&mut conn, Sql::new("SELECT COUNT(*) AS n FROM users")).await?;
        Ok((d, u))
    }
}
