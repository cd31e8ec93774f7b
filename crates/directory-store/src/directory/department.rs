//! Departments: the tree's rules (one root, a known parent, no cycle, unique names among
//! siblings, known managers), saving, and deleting a department or a whole subtree.

use std::collections::{BTreeSet, HashSet};

use directory_model::{Department, Membership, OaDeptId, OaUserId, validate_department};
use sqlx::{AnyConnection, Row};

use super::user::save_user_unchecked;
use super::{
    Expect, MAX_DEPTH, Saved, check_expect, exists, next_version, record_deleted, record_saved,
    to_delete, unchanged,
};
use crate::db::{Sql, Store};
use crate::error::{EntityKind, StoreError};
use crate::journal::{Origin, WriteCtx, dep_key};
use crate::rows::{count, load_department, load_user, write_departments};

/// How many departments a subtree may hold before the data is declared corrupt.
const MAX_SUBTREE: usize = 1_000_000;

/// What a department deletion removed or changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteReport {
    /// Deleted departments, deepest first.
    pub departments: Vec<OaDeptId>,
    /// Users whose memberships changed (cascade moves members of deleted departments to the
    /// deleted subtree's parent when they would otherwise have no department).
    pub users_moved: Vec<OaUserId>,
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

/// The placement rules: a department without a parent must be the only root; a parent must
/// exist and must not be the department itself or one of its descendants.
async fn check_placement(conn: &mut AnyConnection, dept: &Department) -> Result<(), StoreError> {
    let Some(parent) = dept.parent else {
        let others = count(
            conn,
            Sql::new("SELECT COUNT(*) AS n FROM departments WHERE parent_id IS NULL AND id <> ")
                .bind(dept.id.get()),
        )
        .await?;
        return if others > 0 {
            Err(StoreError::SecondRoot)
        } else {
            Ok(())
        };
    };
    if !exists(conn, "departments", parent.get()).await? {
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
    Ok(())
}

async fn check_department_rules(
    conn: &mut AnyConnection,
    dept: &Department,
) -> Result<(), StoreError> {
    validate_department(dept).map_err(|source| StoreError::Invalid {
        kind: EntityKind::Department,
        source,
    })?;
    check_placement(conn, dept).await?;
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
        if !exists(conn, "users", m.as_str()).await? {
            return Err(StoreError::UnknownUser {
                field: format!("managers[{i}]"),
                id: m.clone(),
            });
        }
    }
    Ok(())
}

/// The dependency keys a department change reads: its parent (now and `before`) and managers.
pub(crate) fn department_reads(dept: &Department, before: Option<&Department>) -> Vec<String> {
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

/// Saves a department on `conn`, inside the caller's write transaction.
pub(crate) async fn save_department_in(
    conn: &mut AnyConnection,
    ctx: &WriteCtx,
    dept: Department,
    expect: Expect,
) -> Result<Saved<Department>, StoreError> {
    let kind = EntityKind::Department;
    let id = dept.id.to_string();
    let current = load_department(conn, dept.id).await?;
    check_expect(kind, &id, current.as_ref().map(|c| c.version), expect)?;
    let dept = keep_own_marker(ctx, current.as_ref().map(|c| &c.entity), dept);
    if let Some(same) = unchanged(conn, ctx, kind, &id, current.as_ref(), &dept).await? {
        return Ok(same);
    }
    if ctx.enforce_rules() {
        check_department_rules(conn, &dept).await?;
    }
    let version = next_version(ctx, current.as_ref());
    write_departments(conn, &[(&dept, version)], ctx.now_ms).await?;
    let reads = department_reads(&dept, current.as_ref().map(|c| &c.entity));
    record_saved(conn, ctx, kind, id, dept, current.as_ref(), reads).await
}

/// An OA write that leaves `source_identifier` empty keeps dingsync's own `dingsync:<id>`
/// marker. The marker is dingsync's bookkeeping, written without a new version (B8) so the
/// client's `ETag` stays good; an OA client that read the department just before the marker
/// was written would otherwise erase it with its next update, and the push of that update
/// would clear it in DingTalk too (seen in `multi_instance`). Another value replaces it.
fn keep_own_marker(
    ctx: &WriteCtx,
    current: Option<&Department>,
    mut dept: Department,
) -> Department {
    if ctx.origin == Origin::Oa
        && dept.source_identifier.is_none()
        && let Some(current) = current
        && current.carries_own_marker()
    {
        dept.source_identifier
            .clone_from(&current.source_identifier);
    }
    dept
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
    let reads = department_reads(dept, None);
    record_deleted(
        conn,
        ctx,
        EntityKind::Department,
        dept.id.to_string(),
        dept,
        reads,
    )
    .await
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

/// The subtree of `id` in breadth-first order (parents before children).
async fn subtree_of(conn: &mut AnyConnection, id: OaDeptId) -> Result<Vec<OaDeptId>, StoreError> {
    let mut subtree = vec![id];
    let mut i = 0;
    while i < subtree.len() {
        let kids = child_ids(conn, subtree[i]).await?;
        subtree.extend(kids);
        i += 1;
        if subtree.len() > MAX_SUBTREE {
            return Err(StoreError::Corrupt {
                table: "departments",
                id: id.to_string(),
                detail: "subtree does not end".into(),
            });
        }
    }
    Ok(subtree)
}

/// Takes every member of `subtree` out of its departments, moving those left without one to
/// `fallback`; returns who changed.
async fn move_members_out(
    conn: &mut AnyConnection,
    ctx: &WriteCtx,
    subtree: &[OaDeptId],
    fallback: OaDeptId,
) -> Result<Vec<OaUserId>, StoreError> {
    let doomed: HashSet<OaDeptId> = subtree.iter().copied().collect();
    let mut affected = BTreeSet::new();
    for d in subtree {
        affected.extend(member_ids(conn, *d).await?);
    }
    let mut moved_ids = Vec::new();
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
        moved_ids.push(uid);
    }
    Ok(moved_ids)
}

async fn delete_department_in(
    conn: &mut AnyConnection,
    ctx: &WriteCtx,
    id: OaDeptId,
    expected_version: Option<i64>,
    cascade: bool,
) -> Result<DeleteReport, StoreError> {
    let current = load_department(conn, id).await?;
    let current = to_delete(
        EntityKind::Department,
        &id.to_string(),
        current,
        expected_version,
    )?;
    let Some(fallback) = current.entity.parent else {
        return Err(StoreError::DeleteRoot);
    };
    if !cascade {
        let children = child_ids(conn, id).await?;
        if !children.is_empty() {
            return Err(StoreError::HasChildren {
                id,
                count: children.len() as i64,
            });
        }
        let members = member_ids(conn, id).await?;
        if !members.is_empty() {
            return Err(StoreError::HasMembers {
                id,
                count: members.len() as i64,
            });
        }
    }
    let subtree = subtree_of(conn, id).await?;
    // Members first: their outbox entries must precede the deletions of their departments.
    let mut report = DeleteReport {
        users_moved: move_members_out(conn, ctx, &subtree, fallback).await?,
        ..DeleteReport::default()
    };
    // Then departments, deepest first, so each child's deletion precedes its parent's.
    for d in subtree.iter().rev() {
        if let Some(dept) = load_department(conn, *d).await? {
            delete_department_row(conn, ctx, &dept.entity).await?;
            report.departments.push(*d);
        }
    }
    Ok(report)
}

impl Store {
    /// Creates, updates or upserts a department (see [`Expect`]), recording audit, outbox and
    /// base as `ctx` says, in one transaction.
    pub async fn save_department(
        &self,
        ctx: &WriteCtx,
        dept: Department,
        expect: Expect,
    ) -> Result<Saved<Department>, StoreError> {
        let ctx = &self.stamp(ctx);
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
        let ctx = &self.stamp(ctx);
        self.save_department(ctx, dept, Expect::Absent).await
    }

    /// Updates a department, optionally only if it is at `expected_version`.
    pub async fn update_department(
        &self,
        ctx: &WriteCtx,
        dept: Department,
        expected_version: Option<i64>,
    ) -> Result<Saved<Department>, StoreError> {
        let ctx = &self.stamp(ctx);
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
        let ctx = &self.stamp(ctx);
        let mut tx = self.begin_write().await?;
        let report = delete_department_in(&mut tx, ctx, id, expected_version, cascade).await?;
        tx.commit().await?;
        Ok(report)
    }
}
