//! The directory's writes with DingTalk's referential rules, and its reads.
//!
//! Each public write opens one write transaction (see `db`), checks the rules, writes the rows,
//! and records audit / outbox / base through `journal` before committing — so an error anywhere
//! leaves nothing behind, and a committed change always has its outbox entry.
//!
//! The rules apply when [`WriteCtx::check_rules`] is set (OA writes); DingTalk's own state
//! (events, import) is taken as it is, because refusing it would only make the two sides drift
//! further apart.
//!
//! Writing a state equal to the stored one is a no-op that records nothing (design invariant 5:
//! the echo of our own push writes nothing and queues nothing).

use std::collections::{BTreeSet, HashSet};

use directory_model::{
    Department, Membership, OaDeptId, OaRoleGroupId, OaRoleId, OaUserId, Role, RoleAssignment,
    RoleGroup, Snapshot, User, UserState, validate_department, validate_role, validate_role_group,
    validate_user,
};
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use crate::db::{Sql, Store};
use crate::error::{EntityKind, StoreError};
use crate::journal::{Change, Op, Recorded, WriteCtx, dep_key, record, set_base_on};
use crate::rows::{
    DEPT_COLS, USER_COLS, Versioned, count, fetch_departments, fetch_role_groups, fetch_roles,
    fetch_users, load_department, load_user, write_departments, write_users,
};

/// How far an ancestor walk may go before the data is declared corrupt (a cycle already in the
/// table would otherwise loop forever).
const MAX_DEPTH: usize = 10_000;

/// What the caller expects to find before a save.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Create: the entity must not exist.
    Absent,
    /// Update: the entity must exist.
    Present,
    /// Update with optimistic concurrency (If-Match): the entity must be at this version.
    Version(i64),
    /// Upsert: create or update, whatever is there (the engine applying DingTalk's state).
    Any,
}

/// What a save did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A new entity was written.
    Created,
    /// An existing entity changed.
    Updated,
    /// The stored entity already equalled the new one; nothing was written or queued.
    Unchanged,
}

/// The result of a save.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved<T> {
    /// The stored entity and its new version.
    pub value: Versioned<T>,
    /// What happened.
    pub outcome: Outcome,
    /// The audit sequence number (None when unchanged).
    pub audit_seq: Option<i64>,
    /// The queued outbox entry, if any.
    pub outbox_id: Option<i64>,
}

/// What a department deletion removed or changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteReport {
    /// Deleted departments, deepest first.
    pub departments: Vec<OaDeptId>,
    /// Users whose memberships changed (cascade moves members of deleted departments to the
    /// deleted subtree's parent when they would otherwise have no department).
    pub users_moved: Vec<OaUserId>,
}

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

fn to_json<T: Serialize>(v: &T) -> Result<serde_json::Value, StoreError> {
    Ok(serde_json::to_value(v)?)
}

fn check_expect(
    kind: EntityKind,
    id: &str,
    current: Option<i64>,
    expect: Expect,
) -> Result<(), StoreError> {
    match (expect, current) {
        (Expect::Absent, Some(_)) => Err(StoreError::AlreadyExists {
            kind,
            id: id.to_owned(),
        }),
        (Expect::Present | Expect::Version(_), None) => Err(StoreError::NotFound {
            kind,
            id: id.to_owned(),
        }),
        (Expect::Version(expected), Some(actual)) if expected != actual => {
            Err(StoreError::VersionConflict {
                kind,
                id: id.to_owned(),
                expected,
                actual,
            })
        }
        _ => Ok(()),
    }
}

/// Moves the base snapshot to `value` if it differs (a DingTalk write equal to the stored state
/// still proves both sides agree).
async fn refresh_base<T: Serialize>(
    conn: &mut AnyConnection,
    ctx: &WriteCtx,
    kind: EntityKind,
    id: &str,
    value: &T,
) -> Result<(), StoreError> {
    if !ctx.record_base {
        return Ok(());
    }
    let body = to_json(value)?;
    let current = Sql::new("SELECT body_json FROM base_snapshots WHERE kind = ")
        .bind(kind.as_str())
        .push(" AND oa_id = ")
        .bind(id)
        .query()
        .fetch_optional(&mut *conn)
        .await?;
    let same = match current {
        Some(row) => {
            let text: String = row.try_get("body_json")?;
            serde_json::from_str::<serde_json::Value>(&text).ok() == Some(body.clone())
        }
        None => false,
    };
    if !same {
        set_base_on(conn, kind, id, Some(&body), ctx.now_ms).await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Departments
// ---------------------------------------------------------------------------------------------

async fn department_exists(conn: &mut AnyConnection, id: OaDeptId) -> Result<bool, StoreError> {
    let n = count(
        conn,
        Sql::new("SELECT COUNT(*) AS n FROM departments WHERE id = ").bind(id.get()),
    )
    .await?;
    Ok(n > 0)
}

async fn user_exists(conn: &mut AnyConnection, id: &OaUserId) -> Result<bool, StoreError> {
    let n = count(
        conn,
        Sql::new("SELECT COUNT(*) AS n FROM users WHERE id = ").bind(id.as_str()),
    )
    .await?;
    Ok(n > 0)
}

async fn parent_of(conn: &mut AnyConnection, id: OaDeptId) -> Result<Option<OaDeptId>, StoreError> {
    let row = Sql::new("SELECT parent_id FROM departments WHERE id = ")
        .bind(id.get())
        .query()
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match row {
        Some(r) => r.try_get::<Option<i64>, _>("parent_id")?.map(OaDeptId),
        None => None,
    })
}

async fn check_department_rules(
    conn: &mut AnyConnection,
    dept: &Department,
) -> Result<(), StoreError> {
    validate_department(dept).map_err(|source| StoreError::Invalid {
        kind: EntityKind::Department,
        source,
    })?;
    match dept.parent {
        None => {
            let others = count(
                conn,
                Sql::new(
                    "SELECT COUNT(*) AS n FROM departments WHERE parent_id IS NULL AND id <> ",
                )
                .bind(dept.id.get()),
            )
            .await?;
            if others > 0 {
                return Err(StoreError::SecondRoot);
            }
        }
        Some(parent) => {
            if !department_exists(conn, parent).await? {
                return Err(StoreError::UnknownParent { parent });
            }
            // Walk up from the new parent; meeting ourselves means the move makes a cycle.
            let mut cursor = Some(parent);
            let mut steps = 0;
            while let Some(at) = cursor {
                if at == dept.id {
                    return Err(StoreError::DepartmentCycle {
                        id: dept.id,
                        parent,
                    });
                }
                steps += 1;
                if steps > MAX_DEPTH {
                    return Err(StoreError::Corrupt {
                        table: "departments",
                        id: parent.to_string(),
                        detail: "ancestor chain does not end".into(),
                    });
                }
                cursor = parent_of(conn, at).await?;
            }
        }
    }
    let mut sql =
        Sql::new("SELECT COUNT(*) AS n FROM departments WHERE name = ").bind(dept.name.as_str());
    sql = match dept.parent {
        Some(p) => sql.push(" AND parent_id = ").bind(p.get()),
        None => sql.push(" AND parent_id IS NULL"),
    };
    sql = sql.push(" AND id <> ").bind(dept.id.get());
    if count(conn, sql).await? > 0 {
        return Err(StoreError::DuplicateDepartmentName {
            parent: dept.parent.unwrap_or(dept.id),
            name: dept.name.clone(),
        });
    }
    for (i, m) in dept.managers.iter().enumerate() {
        if !user_exists(conn, m).await? {
            return Err(StoreError::UnknownUser {
                field: format!("managers[{i}]"),
                id: m.clone(),
            });
        }
    }
    Ok(())
}

fn department_reads(dept: &Department, before: Option<&Department>) -> Vec<String> {
    let mut reads = Vec::new();
    for d in [Some(dept), before].into_iter().flatten() {
        if let Some(p) = d.parent {
            reads.push(dep_key(EntityKind::Department, &p.to_string()));
        }
    }
    for m in &dept.managers {
        reads.push(dep_key(EntityKind::User, m.as_str()));
    }
    reads
}

pub(crate) async fn save_department_in(
    conn: &mut AnyConnection,
    ctx: &WriteCtx,
    dept: Department,
    expect: Expect,
) -> Result<Saved<Department>, StoreError> {
    let id = dept.id.to_string();
    let current = load_department(conn, dept.id).await?;
    check_expect(
        EntityKind::Department,
        &id,
        current.as_ref().map(|c| c.version),
        expect,
    )?;
    if let Some(cur) = &current
        && cur.entity == dept
    {
        refresh_base(conn, ctx, EntityKind::Department, &id, &dept).await?;
        return Ok(Saved {
            value: cur.clone(),
            outcome: Outcome::Unchanged,
            audit_seq: None,
            outbox_id: None,
        });
    }
    if ctx.enforce_rules() {
        check_department_rules(conn, &dept).await?;
    }
    let version = current.as_ref().map_or(1, |c| c.version + 1);
    write_departments(conn, &[(&dept, version)], ctx.now_ms).await?;
    let before = current.as_ref().map(|c| to_json(&c.entity)).transpose()?;
    let Recorded {
        audit_seq,
        outbox_id,
    } = record(
        conn,
        ctx,
        Change {
            kind: EntityKind::Department,
            oa_id: id,
            op: if current.is_some() {
                Op::Update
            } else {
                Op::Create
            },
            before,
            after: Some(to_json(&dept)?),
            reads: department_reads(&dept, current.as_ref().map(|c| &c.entity)),
        },
    )
    .await?;
    Ok(Saved {
        outcome: if current.is_some() {
            Outcome::Updated
        } else {
            Outcome::Created
        },
        value: Versioned {
            entity: dept,
            version,
            updated_at_ms: ctx.now_ms,
        },
        audit_seq: Some(audit_seq),
        outbox_id,
    })
}

/// Deletes one department row (no rule checks) and records it.
async fn delete_department_row(
    conn: &mut AnyConnection,
    ctx: &WriteCtx,
    dept: &Department,
) -> Result<(), StoreError> {
    Sql::new("DELETE FROM department_managers WHERE dept_id = ")
        .bind(dept.id.get())
        .query()
        .execute(&mut *conn)
        .await?;
    Sql::new("DELETE FROM departments WHERE id = ")
        .bind(dept.id.get())
        .query()
        .execute(&mut *conn)
        .await?;
    record(
        conn,
        ctx,
        Change {
            kind: EntityKind::Department,
            oa_id: dept.id.to_string(),
            op: Op::Delete,
            before: Some(to_json(dept)?),
            after: None,
            reads: department_reads(dept, None),
        },
    )
    .await?;
    Ok(())
}

async fn child_ids(conn: &mut AnyConnection, id: OaDeptId) -> Result<Vec<OaDeptId>, StoreError> {
    let rows = Sql::new("SELECT id FROM departments WHERE parent_id = ")
        .bind(id.get())
        .push(" ORDER BY id")
        .query()
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| Ok(OaDeptId(r.try_get("id")?)))
        .collect()
}

async fn member_ids(conn: &mut AnyConnection, id: OaDeptId) -> Result<Vec<OaUserId>, StoreError> {
    let rows = Sql::new("SELECT user_id FROM user_departments WHERE dept_id = ")
        .bind(id.get())
        .push(" ORDER BY user_id")
        .query()
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| Ok(OaUserId(r.try_get("user_id")?)))
        .collect()
}

async fn delete_department_in(
    conn: &mut AnyConnection,
    ctx: &WriteCtx,
    id: OaDeptId,
    expected_version: Option<i64>,
    cascade: bool,
) -> Result<DeleteReport, StoreError> {
    let current = load_department(conn, id)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: EntityKind::Department,
            id: id.to_string(),
        })?;
    if let Some(v) = expected_version {
        check_expect(
            EntityKind::Department,
            &id.to_string(),
            Some(current.version),
            Expect::Version(v),
        )?;
    }
    let Some(fallback) = current.entity.parent else {
        return Err(StoreError::DeleteRoot);
    };
    let children = child_ids(conn, id).await?;
    let members = member_ids(conn, id).await?;
    if !cascade {
        if !children.is_empty() {
            return Err(StoreError::HasChildren {
                id,
                count: children.len() as i64,
            });
        }
        if !members.is_empty() {
            return Err(StoreError::HasMembers {
                id,
                count: members.len() as i64,
            });
        }
    }
    // The subtree in breadth-first order (parents before children).
    let mut subtree = vec![id];
    let mut i = 0;
    while i < subtree.len() {
        let kids = child_ids(conn, subtree[i]).await?;
        subtree.extend(kids);
        i += 1;
        if subtree.len() > 1_000_000 {
            return Err(StoreError::Corrupt {
                table: "departments",
                id: id.to_string(),
                detail: "subtree does not end".into(),
            });
        }
    }
    let doomed: HashSet<OaDeptId> = subtree.iter().copied().collect();
    let mut report = DeleteReport::default();

    // Members first: their outbox entries must precede the deletions of their departments.
    let mut affected = BTreeSet::new();
    for d in &subtree {
        affected.extend(member_ids(conn, *d).await?);
    }
    for uid in affected {
        let Some(user) = load_user(conn, &uid).await? else {
            continue;
        };
        let mut moved = user.entity.clone();
        moved.departments.retain(|m| !doomed.contains(&m.dept));
        if moved.departments.is_empty() {
            moved.departments.push(Membership::new(fallback));
        }
        if moved.main_department.is_some_and(|m| doomed.contains(&m)) {
            moved.main_department = moved.departments.first().map(|m| m.dept);
        }
        save_user_unchecked(conn, ctx, moved, Some(user)).await?;
        report.users_moved.push(uid);
    }
    // Then departments, deepest first, so each child's deletion precedes its parent's.
    for d in subtree.iter().rev() {
        if let Some(dept) = load_department(conn, *d).await? {
            delete_department_row(conn, ctx, &dept.entity).await?;
            report.departments.push(*d);
        }
    }
    Ok(report)
}

// ---------------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------------

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

async fn check_user_rules(conn: &mut AnyConnection, user: &User) -> Result<(), StoreError> {
    validate_user(user).map_err(|source| StoreError::Invalid {
        kind: EntityKind::User,
        source,
    })?;
    for (i, m) in user.departments.iter().enumerate() {
        if !department_exists(conn, m.dept).await? {
            return Err(StoreError::UnknownDepartment {
                field: format!("departments[{i}].dept"),
                id: m.dept,
            });
        }
    }
    if let Some(manager) = &user.manager {
        if !user_exists(conn, manager).await? {
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
    }
    if user.state == UserState::Active {
        if let Some(mobile) = &user.mobile {
            let row = Sql::new("SELECT id FROM users WHERE state = 'active' AND mobile_number = ")
                .bind(mobile.number.as_str())
                .push(" AND mobile_country = ")
                .bind(mobile.country_code.as_str())
                .push(" AND id <> ")
                .bind(user.id.as_str())
                .push(" LIMIT 1")
                .query()
                .fetch_optional(&mut *conn)
                .await?;
            if let Some(row) = row {
                return Err(StoreError::DuplicateMobile {
                    existing: OaUserId(row.try_get("id")?),
                });
            }
        }
        if let Some(email) = &user.email {
            let row = Sql::new("SELECT id FROM users WHERE state = 'active' AND email = ")
                .bind(email.as_str())
                .push(" AND id <> ")
                .bind(user.id.as_str())
                .push(" LIMIT 1")
                .query()
                .fetch_optional(&mut *conn)
                .await?;
            if let Some(row) = row {
                return Err(StoreError::DuplicateEmail {
                    existing: OaUserId(row.try_get("id")?),
                });
            }
        }
    }
    Ok(())
}

fn user_reads(user: &User, before: Option<&User>) -> Vec<String> {
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
async fn save_user_unchecked(
    conn: &mut AnyConnection,
    ctx: &WriteCtx,
    user: User,
    current: Option<Versioned<User>>,
) -> Result<Saved<User>, StoreError> {
    let version = current.as_ref().map_or(1, |c| c.version + 1);
    write_users(conn, &[(&user, version)], ctx.now_ms).await?;
    let before = current.as_ref().map(|c| to_json(&c.entity)).transpose()?;
    let Recorded {
        audit_seq,
        outbox_id,
    } = record(
        conn,
        ctx,
        Change {
            kind: EntityKind::User,
            oa_id: user.id.0.clone(),
            op: if current.is_some() {
                Op::Update
            } else {
                Op::Create
            },
            before,
            after: Some(to_json(&user)?),
            reads: user_reads(&user, current.as_ref().map(|c| &c.entity)),
        },
    )
    .await?;
    Ok(Saved {
        outcome: if current.is_some() {
            Outcome::Updated
        } else {
            Outcome::Created
        },
        value: Versioned {
            entity: user,
            version,
            updated_at_ms: ctx.now_ms,
        },
        audit_seq: Some(audit_seq),
        outbox_id,
    })
}

pub(crate) async fn save_user_in(
    conn: &mut AnyConnection,
    ctx: &WriteCtx,
    user: User,
    expect: Expect,
) -> Result<Saved<User>, StoreError> {
    let current = load_user(conn, &user.id).await?;
    check_expect(
        EntityKind::User,
        user.id.as_str(),
        current.as_ref().map(|c| c.version),
        expect,
    )?;
    if let Some(cur) = &current
        && cur.entity == user
    {
        refresh_base(conn, ctx, EntityKind::User, user.id.as_str(), &user).await?;
        return Ok(Saved {
            value: cur.clone(),
            outcome: Outcome::Unchanged,
            audit_seq: None,
            outbox_id: None,
        });
    }
    if ctx.enforce_rules() {
        check_user_rules(conn, &user).await?;
    }
    save_user_unchecked(conn, ctx, user, current).await
}

async fn delete_user_in(
    conn: &mut AnyConnection,
    ctx: &WriteCtx,
    id: &OaUserId,
    expected_version: Option<i64>,
) -> Result<(), StoreError> {
    let current = load_user(conn, id)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: EntityKind::User,
            id: id.to_string(),
        })?;
    if let Some(v) = expected_version {
        check_expect(
            EntityKind::User,
            id.as_str(),
            Some(current.version),
            Expect::Version(v),
        )?;
    }
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
    if references > 0 {
        if ctx.enforce_rules() {
            return Err(StoreError::UserIsManager {
                id: id.clone(),
                count: references as i64,
            });
        }
        // DingTalk already removed the user: drop the references it dropped too.
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
    }
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
    record(
        conn,
        ctx,
        Change {
            kind: EntityKind::User,
            oa_id: id.0.clone(),
            op: Op::Delete,
            before: Some(to_json(&current.entity)?),
            after: None,
            reads: user_reads(&current.entity, None),
        },
    )
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Roles
// ---------------------------------------------------------------------------------------------

const ROLE_GROUP_COLS: &str = "id, name, version, updated_at_ms";
const ROLE_COLS: &str = "id, group_id, name, version, updated_at_ms";

async fn load_role_group(
    conn: &mut AnyConnection,
    id: OaRoleGroupId,
) -> Result<Option<Versioned<RoleGroup>>, StoreError> {
    let sql = Sql::new(&format!(
        "SELECT {ROLE_GROUP_COLS} FROM role_groups WHERE id = "
    ))
    .bind(id.get());
    Ok(fetch_role_groups(conn, sql).await?.into_iter().next())
}

async fn load_role(
    conn: &mut AnyConnection,
    id: OaRoleId,
) -> Result<Option<Versioned<Role>>, StoreError> {
    let sql = Sql::new(&format!("SELECT {ROLE_COLS} FROM roles WHERE id = ")).bind(id.get());
    Ok(fetch_roles(conn, sql).await?.into_iter().next())
}

async fn save_role_group_in(
    conn: &mut AnyConnection,
    ctx: &WriteCtx,
    group: RoleGroup,
    expect: Expect,
) -> Result<Saved<RoleGroup>, StoreError> {
    let id = group.id.to_string();
    let current = load_role_group(conn, group.id).await?;
    check_expect(
        EntityKind::RoleGroup,
        &id,
        current.as_ref().map(|c| c.version),
        expect,
    )?;
    if let Some(cur) = &current
        && cur.entity == group
    {
        refresh_base(conn, ctx, EntityKind::RoleGroup, &id, &group).await?;
        return Ok(Saved {
            value: cur.clone(),
            outcome: Outcome::Unchanged,
            audit_seq: None,
            outbox_id: None,
        });
    }
    if ctx.enforce_rules() {
        validate_role_group(&group).map_err(|source| StoreError::Invalid {
            kind: EntityKind::RoleGroup,
            source,
        })?;
    }
    let version = current.as_ref().map_or(1, |c| c.version + 1);
    Sql::new("INSERT INTO role_groups (id, name, version, updated_at_ms) VALUES (")
        .bind(group.id.get())
        .push(", ")
        .bind(group.name.as_str())
        .push(", ")
        .bind(version)
        .push(", ")
        .bind(ctx.now_ms)
        .push(
            ") ON CONFLICT (id) DO UPDATE SET name = excluded.name, version = excluded.version, \
             updated_at_ms = excluded.updated_at_ms",
        )
        .query()
        .execute(&mut *conn)
        .await?;
    let before = current.as_ref().map(|c| to_json(&c.entity)).transpose()?;
    let rec = record(
        conn,
        ctx,
        Change {
            kind: EntityKind::RoleGroup,
            oa_id: id,
            op: if current.is_some() {
                Op::Update
            } else {
                Op::Create
            },
            before,
            after: Some(to_json(&group)?),
            reads: Vec::new(),
        },
    )
    .await?;
    Ok(Saved {
        outcome: if current.is_some() {
            Outcome::Updated
        } else {
            Outcome::Created
        },
        value: Versioned {
            entity: group,
            version,
            updated_at_ms: ctx.now_ms,
        },
        audit_seq: Some(rec.audit_seq),
        outbox_id: rec.outbox_id,
    })
}

async fn save_role_in(
    conn: &mut AnyConnection,
    ctx: &WriteCtx,
    role: Role,
    expect: Expect,
) -> Result<Saved<Role>, StoreError> {
    let id = role.id.to_string();
    let current = load_role(conn, role.id).await?;
    check_expect(
        EntityKind::Role,
        &id,
        current.as_ref().map(|c| c.version),
        expect,
    )?;
    if let Some(cur) = &current
        && cur.entity == role
    {
        refresh_base(conn, ctx, EntityKind::Role, &id, &role).await?;
        return Ok(Saved {
            value: cur.clone(),
            outcome: Outcome::Unchanged,
            audit_seq: None,
            outbox_id: None,
        });
    }
    if ctx.enforce_rules() {
        validate_role(&role).map_err(|source| StoreError::Invalid {
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
    }
    let version = current.as_ref().map_or(1, |c| c.version + 1);
    Sql::new("INSERT INTO roles (id, group_id, name, version, updated_at_ms) VALUES (")
        .bind(role.id.get())
        .push(", ")
        .bind(role.group.get())
        .push(", ")
        .bind(role.name.as_str())
        .push(", ")
        .bind(version)
        .push(", ")
        .bind(ctx.now_ms)
        .push(
            ") ON CONFLICT (id) DO UPDATE SET group_id = excluded.group_id, name = excluded.name, \
             version = excluded.version, updated_at_ms = excluded.updated_at_ms",
        )
        .query()
        .execute(&mut *conn)
        .await?;
    let before = current.as_ref().map(|c| to_json(&c.entity)).transpose()?;
    let mut reads = vec![dep_key(EntityKind::RoleGroup, &role.group.to_string())];
    if let Some(c) = &current {
        reads.push(dep_key(EntityKind::RoleGroup, &c.entity.group.to_string()));
    }
    let rec = record(
        conn,
        ctx,
        Change {
            kind: EntityKind::Role,
            oa_id: id,
            op: if current.is_some() {
                Op::Update
            } else {
                Op::Create
            },
            before,
            after: Some(to_json(&role)?),
            reads,
        },
    )
    .await?;
    Ok(Saved {
        outcome: if current.is_some() {
            Outcome::Updated
        } else {
            Outcome::Created
        },
        value: Versioned {
            entity: role,
            version,
            updated_at_ms: ctx.now_ms,
        },
        audit_seq: Some(rec.audit_seq),
        outbox_id: rec.outbox_id,
    })
}

/// The text id of an assignment: the role id first, so the first ':' splits it.
pub(crate) fn assignment_id(user: &OaUserId, role: OaRoleId) -> String {
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

async fn assign_in(
    conn: &mut AnyConnection,
    ctx: &WriteCtx,
    user: &OaUserId,
    role: OaRoleId,
) -> Result<Outcome, StoreError> {
    if ctx.enforce_rules() {
        if !user_exists(conn, user).await? {
            return Err(StoreError::UnknownUser {
                field: "user".into(),
                id: user.clone(),
            });
        }
        if load_role(conn, role).await?.is_none() {
            return Err(StoreError::UnknownRole { id: role });
        }
    }
    let assignment = RoleAssignment {
        user: user.clone(),
        role,
    };
    if assigned(conn, user, role).await? {
        refresh_base(
            conn,
            ctx,
            EntityKind::RoleAssignment,
            &assignment_id(user, role),
            &assignment,
        )
        .await?;
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
    record(
        conn,
        ctx,
        Change {
            kind: EntityKind::RoleAssignment,
            oa_id: assignment_id(user, role),
            op: Op::Create,
            before: None,
            after: Some(to_json(&assignment)?),
            reads: assignment_reads(user, role),
        },
    )
    .await?;
    Ok(Outcome::Created)
}

async fn unassign_in(
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
    record(
        conn,
        ctx,
        Change {
            kind: EntityKind::RoleAssignment,
            oa_id: assignment_id(user, role),
            op: Op::Delete,
            before: Some(to_json(&assignment)?),
            after: None,
            reads: assignment_reads(user, role),
        },
    )
    .await?;
    Ok(Outcome::Updated)
}

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

impl Store {
    /// Creates, updates or upserts a department (see [`Expect`]), recording audit, outbox and
    /// base as `ctx` says, in one transaction.
    pub async fn save_department(
        &self,
        ctx: &WriteCtx,
        dept: Department,
        expect: Expect,
    ) -> Result<Saved<Department>, StoreError> {
        let mut tx = self.begin_write().await?;
        let saved = save_department_in(&mut tx, ctx, dept, expect).await?;
        tx.commit().await?;
        Ok(saved)
    }

    /// Creates a department; fails if the id exists.
    pub async fn create_department(
        &self,
        ctx: &WriteCtx,
        dept: Department,
    ) -> Result<Saved<Department>, StoreError> {
        self.save_department(ctx, dept, Expect::Absent).await
    }

    /// Updates a department, optionally only if it is at `expected_version`.
    pub async fn update_department(
        &self,
        ctx: &WriteCtx,
        dept: Department,
        expected_version: Option<i64>,
    ) -> Result<Saved<Department>, StoreError> {
        let expect = expected_version.map_or(Expect::Present, Expect::Version);
        self.save_department(ctx, dept, expect).await
    }

    /// Deletes a department. Without `cascade`, a department with sub-departments or members
    /// is refused (DingTalk 60006 / 60005) whatever the origin. With `cascade`, the subtree is
    /// deleted (deepest first) and members left without a department move to the subtree's
    /// parent; each change gets its own audit row (and outbox entry, if `ctx` pushes), ordered so
    /// the pusher moves members before it deletes their departments. The engine mirroring a
    /// DingTalk deletion passes `cascade` when its events arrive out of order.
    pub async fn delete_department(
        &self,
        ctx: &WriteCtx,
        id: OaDeptId,
        expected_version: Option<i64>,
        cascade: bool,
    ) -> Result<DeleteReport, StoreError> {
        let mut tx = self.begin_write().await?;
        let report = delete_department_in(&mut tx, ctx, id, expected_version, cascade).await?;
        tx.commit().await?;
        Ok(report)
    }

    /// Creates, updates or upserts a user.
    pub async fn save_user(
        &self,
        ctx: &WriteCtx,
        user: User,
        expect: Expect,
    ) -> Result<Saved<User>, StoreError> {
        let mut tx = self.begin_write().await?;
        let saved = save_user_in(&mut tx, ctx, user, expect).await?;
        tx.commit().await?;
        Ok(saved)
    }

    /// Creates a user; fails if the id exists.
    pub async fn create_user(&self, ctx: &WriteCtx, user: User) -> Result<Saved<User>, StoreError> {
        self.save_user(ctx, user, Expect::Absent).await
    }

    /// Updates a user, optionally only if it is at `expected_version`.
    pub async fn update_user(
        &self,
        ctx: &WriteCtx,
        user: User,
        expected_version: Option<i64>,
    ) -> Result<Saved<User>, StoreError> {
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
        let mut tx = self.begin_write().await?;
        delete_user_in(&mut tx, ctx, id, expected_version).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Creates, updates or upserts a role group.
    pub async fn save_role_group(
        &self,
        ctx: &WriteCtx,
        group: RoleGroup,
        expect: Expect,
    ) -> Result<Saved<RoleGroup>, StoreError> {
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
        let mut tx = self.begin_write().await?;
        let current = load_role_group(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: EntityKind::RoleGroup,
                id: id.to_string(),
            })?;
        if let Some(v) = expected_version {
            check_expect(
                EntityKind::RoleGroup,
                &id.to_string(),
                Some(current.version),
                Expect::Version(v),
            )?;
        }
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
        record(
            &mut tx,
            ctx,
            Change {
                kind: EntityKind::RoleGroup,
                oa_id: id.to_string(),
                op: Op::Delete,
                before: Some(to_json(&current.entity)?),
                after: None,
                reads: Vec::new(),
            },
        )
        .await?;
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
        let mut tx = self.begin_write().await?;
        let current = load_role(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: EntityKind::Role,
                id: id.to_string(),
            })?;
        if let Some(v) = expected_version {
            check_expect(
                EntityKind::Role,
                &id.to_string(),
                Some(current.version),
                Expect::Version(v),
            )?;
        }
        let holders = Sql::new("SELECT user_id FROM user_roles WHERE role_id = ")
            .bind(id.get())
            .push(" ORDER BY user_id")
            .query()
            .fetch_all(&mut *tx)
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
                unassign_in(&mut tx, &no_push, &user, id).await?;
            }
        }
        Sql::new("DELETE FROM roles WHERE id = ")
            .bind(id.get())
            .query()
            .execute(&mut *tx)
            .await?;
        record(
            &mut tx,
            ctx,
            Change {
                kind: EntityKind::Role,
                oa_id: id.to_string(),
                op: Op::Delete,
                before: Some(to_json(&current.entity)?),
                after: None,
                reads: vec![dep_key(
                    EntityKind::RoleGroup,
                    &current.entity.group.to_string(),
                )],
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Gives `user` the role; `Unchanged` if they already hold it.
    pub async fn assign_role(
        &self,
        ctx: &WriteCtx,
        user: &OaUserId,
        role: OaRoleId,
    ) -> Result<Outcome, StoreError> {
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
        let mut tx = self.begin_write().await?;
        let outcome = unassign_in(&mut tx, ctx, user, role).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Hands out `n` fresh OA ids for departments, role groups or roles (ids the OA system
    /// does not choose itself), above every id already stored.
    pub async fn allocate_ids(&self, kind: EntityKind, n: i64) -> Result<i64, StoreError> {
        let table = match kind {
            EntityKind::Department => "departments",
            EntityKind::RoleGroup => "role_groups",
            EntityKind::Role => "roles",
            EntityKind::User | EntityKind::RoleAssignment => {
                return Err(StoreError::Corrupt {
                    table: "id_counters",
                    id: kind.to_string(),
                    detail: "only integer-keyed kinds have allocated ids".into(),
                });
            }
        };
        let mut tx = self.begin_write().await?;
        let row = Sql::new("SELECT next_id FROM id_counters WHERE kind = ")
            .bind(kind.as_str())
            .query()
            .fetch_optional(&mut *tx)
            .await?;
        let counter: Option<i64> = row.map(|r| r.try_get("next_id")).transpose()?;
        let max_row = Sql::new(&format!("SELECT MAX(id) AS m FROM {table}"))
            .query()
            .fetch_one(&mut *tx)
            .await?;
        let max: Option<i64> = max_row.try_get("m")?;
        let first = counter.unwrap_or(1).max(max.unwrap_or(0) + 1);
        Sql::new("INSERT INTO id_counters (kind, next_id) VALUES (")
            .bind(kind.as_str())
            .push(", ")
            .bind(first + n.max(1))
            .push(") ON CONFLICT (kind) DO UPDATE SET next_id = excluded.next_id")
            .query()
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(first)
    }

    // -- reads --------------------------------------------------------------------------------

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
        let mut sql = Sql::new(&format!("SELECT {DEPT_COLS} FROM departments WHERE 1 = 1"));
        if let Some(name) = &q.name_contains {
            sql = sql
                .push(" AND LOWER(name) LIKE ")
                .bind(like_pattern(name))
                .push(" ESCAPE '\\'");
        }
        if let Some(p) = q.parent {
            sql = sql.push(" AND parent_id = ").bind(p.get());
        }
        if let Some(t) = q.updated_since_ms {
            sql = sql.push(" AND updated_at_ms >= ").bind(t);
        }
        if let Some(after) = q.after {
            sql = sql.push(" AND id > ").bind(after.get());
        }
        sql = sql.push(" ORDER BY id LIMIT ").bind(limit as i64 + 1);
        let mut conn = self.pool.acquire().await?;
        let items = fetch_departments(&mut conn, sql).await?;
        Ok(paged(items, limit, |d| d.entity.id))
    }

    /// A page of users.
    pub async fn list_users(
        &self,
        q: &UserQuery,
    ) -> Result<Page<Versioned<User>, OaUserId>, StoreError> {
        let limit = page_limit(q.limit);
        let mut sql = Sql::new(&format!("SELECT {USER_COLS} FROM users WHERE 1 = 1"));
        if let Some(name) = &q.name_contains {
            sql = sql
                .push(" AND LOWER(name) LIKE ")
                .bind(like_pattern(name))
                .push(" ESCAPE '\\'");
        }
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
            sql = sql.push(" AND state = ").bind(crate::rows::state_text(s));
        }
        if let Some(after) = &q.after {
            sql = sql.push(" AND id > ").bind(after.as_str());
        }
        sql = sql.push(" ORDER BY id LIMIT ").bind(limit as i64 + 1);
        let mut conn = self.pool.acquire().await?;
        let items = fetch_users(&mut conn, sql).await?;
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
        sql = sql.push(" ORDER BY id LIMIT ").bind(limit as i64 + 1);
        let mut conn = self.pool.acquire().await?;
        let items = fetch_role_groups(&mut conn, sql).await?;
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
        sql = sql.push(" ORDER BY id LIMIT ").bind(limit as i64 + 1);
        let mut conn = self.pool.acquire().await?;
        let items = fetch_roles(&mut conn, sql).await?;
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
            .map(|r| {
                Ok(RoleAssignment {
                    user: OaUserId(r.try_get("user_id")?),
                    role: OaRoleId(r.try_get("role_id")?),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(paged(items, limit, Clone::clone))
    }

    /// The whole directory, for plan / reconcile.
    pub async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let depts = fetch_departments(
            &mut conn,
            Sql::new(&format!("SELECT {DEPT_COLS} FROM departments ORDER BY id")),
        )
        .await?;
        let users = fetch_users(
            &mut conn,
            Sql::new(&format!("SELECT {USER_COLS} FROM users ORDER BY id")),
        )
        .await?;
        let groups = fetch_role_groups(
            &mut conn,
            Sql::new(&format!(
                "SELECT {ROLE_GROUP_COLS} FROM role_groups ORDER BY id"
            )),
        )
        .await?;
        let roles = fetch_roles(
            &mut conn,
            Sql::new(&format!("SELECT {ROLE_COLS} FROM roles ORDER BY id")),
        )
        .await?;
        let rows = Sql::new("SELECT user_id, role_id FROM user_roles")
            .query()
            .fetch_all(&mut *conn)
            .await?;
        let assignments = rows
            .iter()
            .map(|r| {
                Ok(RoleAssignment {
                    user: OaUserId(r.try_get("user_id")?),
                    role: OaRoleId(r.try_get("role_id")?),
                })
            })
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
