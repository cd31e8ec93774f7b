//! The import's last phase: mirroring DingTalk's deletions, or holding them.
//!
//! Absence is only evidence after a *complete* crawl, and only for entities the id map links
//! to DingTalk (an OA-only entity waiting for its push is not "missing"). Above the policy's
//! threshold (design invariant 6) nothing is applied: every deletion is held for an operator,
//! and [`apply_approved_deletions`] applies the approved ones later. A user missing from
//! DingTalk is marked `Left` (kept for history) and loses their roles, as in DingTalk.
//! The event applier uses the same two writes for `user_leave_org` and removed departments.

use std::collections::{HashMap, HashSet};

use directory_model::{
    DingRoleGroupId, DingRoleId, DingUserId, OaDeptId, OaUserId, Snapshot, UserState,
};
use directory_store::{
    AssignmentQuery, DeptQuery, EntityKind, Expect, HoldState, Origin, StoreError, WriteCtx,
};

use super::{ImportError, ImportReport, Importer, crawl};
use crate::context::SyncContext;
use crate::translate::{IdMap, ding};

/// Who the import saw, for telling the missing apart: ids only.
pub(super) struct Listed<'a> {
    /// Every userid listed.
    pub seen: &'a HashSet<dingtalk_proto::DingUserId>,
    /// Listed, but out of `[scope.to_oa]` (they left the scope: missing like the deleted).
    pub scoped_out: &'a HashSet<DingUserId>,
    /// Listed, but not imported because their match was ambiguous (not missing).
    pub ambiguous: &'a HashMap<DingUserId, String>,
}

impl Listed<'_> {
    /// Whether the linked DingTalk user `d` is missing from what was imported.
    fn missing(&self, d: &DingUserId) -> bool {
        if self.ambiguous.contains_key(d) {
            return false;
        }
        self.scoped_out.contains(d) || !self.seen.contains(&ding::wire_user(d))
    }
}

impl Importer<'_> {
    /// The deletion phase, after a complete crawl. The OA directory's active users are read
    /// page by page.
    pub(super) async fn deletions(
        &self,
        crawled: &crawl::Crawl,
        listed: &Listed<'_>,
        ids: &IdMap,
        oa: &Snapshot,
        roles_ok: bool,
        report: &mut ImportReport,
    ) -> Result<(), ImportError> {
        // Departments imported, and those that left `[scope.to_oa]` (their members left with
        // them).
        let imported_depts: HashSet<OaDeptId> = crawled
            .depts
            .iter()
            .map(|d| d.dept_id)
            .chain(crawled.scoped_out_depts.iter().copied())
            .filter_map(|d| ids.oa_dept(ding::dept(d)))
            .collect();
        // Users: linked, active, in an imported department, and not listed anywhere.
        let mut gone_users: Vec<OaUserId> = Vec::new();
        let mut active_users = 0usize;
        super::oa::each_user(&self.ctx.store, Some(UserState::Active), None, |u| {
            active_users += 1;
            if ids.ding_user(&u.id).is_some_and(|d| listed.missing(d))
                && u.department_ids().any(|d| imported_depts.contains(&d))
            {
                gone_users.push(u.id);
            }
        })
        .await?;
        // Departments: linked and not seen by the walk (in scope or not).
        let gone_depts: Vec<OaDeptId> = oa
            .departments
            .values()
            .filter(|d| {
                ids.ding_dept(d.id)
                    .is_some_and(|dd| !crawled.seen_depts.contains(&ding::wire_dept(dd)))
            })
            .map(|d| d.id)
            .collect();
        let already_held = self.already_held().await?;
        let wctx = self.write_ctx();
        if !self
            .hold_if_over(
                EntityKind::User,
                &gone_users,
                active_users,
                &already_held,
                report,
            )
            .await?
        {
            for u in &gone_users {
                if !self.options.dry_run {
                    mark_left(self.ctx, &wctx, u).await?;
                }
            }
            report.deletions.users_left = gone_users;
        }
        let total_depts = oa.departments.len();
        if !self
            .hold_if_over(
                EntityKind::Department,
                &gone_depts,
                total_depts,
                &already_held,
                report,
            )
            .await?
        {
            if !self.options.dry_run {
                delete_departments(self.ctx, &wctx, &gone_depts).await?;
            }
            report.deletions.departments_deleted = gone_depts;
        }
        if roles_ok {
            self.delete_vanished_roles(crawled, ids, oa, report).await?;
        }
        Ok(())
    }

    /// The deletions held for confirmation already (by an earlier run).
    async fn already_held(&self) -> Result<HashSet<(EntityKind, String)>, StoreError> {
        if self.options.dry_run {
            return Ok(HashSet::new());
        }
        Ok(self
            .ctx
            .store
            .held_deletions(Some(HoldState::Held))
            .await?
            .into_iter()
            .map(|h| (h.kind, h.oa_id))
            .collect())
    }

    /// Holds every deletion of `gone` for confirmation when they cross the threshold for a
    /// side of `total`; returns whether they are held.
    async fn hold_if_over<I: std::fmt::Display>(
        &self,
        kind: EntityKind,
        gone: &[I],
        total: usize,
        already_held: &HashSet<(EntityKind, String)>,
        report: &mut ImportReport,
    ) -> Result<bool, StoreError> {
        if !self.ctx.deletions.get().must_hold(gone.len(), total) {
            return Ok(false);
        }
        let what = match kind {
            EntityKind::User => "active users",
            _ => "departments",
        };
        let reason = format!(
            "import: {} of {} {what} missing from DingTalk exceeds the deletion threshold",
            gone.len(),
            total
        );
        for id in gone {
            report.deletions.held += 1;
            let id = id.to_string();
            if !self.options.dry_run && !already_held.contains(&(kind, id.clone())) {
                self.ctx
                    .store
                    .hold_deletion(kind, &id, Origin::Import, &reason, self.ctx.now_ms())
                    .await?;
            }
        }
        Ok(true)
    }

    /// Deletes the linked roles and role groups the (complete) role listing no longer has.
    async fn delete_vanished_roles(
        &self,
        crawled: &crawl::Crawl,
        ids: &IdMap,
        oa: &Snapshot,
        report: &mut ImportReport,
    ) -> Result<(), ImportError> {
        let store = &self.ctx.store;
        let wctx = self.write_ctx();
        let seen_roles: HashSet<DingRoleId> = crawled
            .role_groups
            .iter()
            .flat_map(|g| g.roles.iter().map(|r| ding::role(r.id)))
            .collect();
        let seen_groups: HashSet<DingRoleGroupId> = crawled
            .role_groups
            .iter()
            .map(|g| ding::group(g.group_id))
            .collect();
        for r in oa.roles.values() {
            if ids
                .ding_role(r.id)
                .is_some_and(|d| !seen_roles.contains(&d))
            {
                report.deletions.roles_deleted.push(r.id);
                if !self.options.dry_run {
                    store.delete_role(&wctx, r.id, None).await?;
                    store.id_map_remove(&r.id).await?;
                }
            }
        }
        for g in oa.role_groups.values() {
            if ids
                .ding_group(g.id)
                .is_some_and(|d| !seen_groups.contains(&d))
            {
                report.deletions.role_groups_deleted.push(g.id);
                if !self.options.dry_run {
                    store.delete_role_group(&wctx, g.id, None).await?;
                    store.id_map_remove(&g.id).await?;
                }
            }
        }
        Ok(())
    }
}

/// Marks a user left (DingTalk no longer has them) and drops their roles, as DingTalk does; a
/// no-op if they are gone or left already.
pub(crate) async fn mark_left(
    ctx: &SyncContext,
    wctx: &WriteCtx,
    id: &OaUserId,
) -> Result<bool, StoreError> {
    let Some(current) = ctx.store.get_user(id).await? else {
        return Ok(false);
    };
    if current.entity.state == UserState::Left {
        return Ok(false);
    }
    let mut left = current.entity;
    left.state = UserState::Left;
    ctx.store
        .save_user(wctx, left, Expect::Version(current.version))
        .await?;
    // DingTalk drops a departed user's roles; so does the directory.
    let held = ctx
        .store
        .list_assignments(&AssignmentQuery {
            user: Some(id.clone()),
            limit: 1000,
            ..AssignmentQuery::default()
        })
        .await?;
    for a in held.items {
        ctx.store.unassign_role(wctx, id, a.role).await?;
    }
    // DingTalk also drops a departed user from the managers of every department, without an
    // `org_dept_modify` event for those departments; so does the directory (the convergence
    // property test found a department keeping a departed manager forever). Departments are
    // paged through rather than queried by manager: leaving is rare and the store has no such
    // query.
    let mut after = None;
    loop {
        let page = ctx
            .store
            .list_departments(&DeptQuery {
                after,
                limit: 1000,
                ..DeptQuery::default()
            })
            .await?;
        for d in page.items {
            if d.entity.managers.contains(id) {
                let key = d.entity.id.to_string();
                let mut dept = d.entity;
                dept.managers.retain(|m| m != id);
                // Only the manager changes in the base: the OA entity may hold changes still
                // waiting for their push, and a base that adopted them would make DingTalk's
                // old values look like DingTalk's edits.
                ctx.store
                    .save_department(
                        &wctx.clone().with_record_base(false),
                        dept,
                        Expect::Version(d.version),
                    )
                    .await?;
                let base: Option<directory_model::Department> =
                    ctx.store.base_get(EntityKind::Department, &key).await?;
                if let Some(mut base) = base {
                    base.managers.retain(|m| m != id);
                    ctx.store
                        .base_set(EntityKind::Department, &key, Some(&base), wctx.now_ms)
                        .await?;
                }
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok(true)
}

/// Deletes departments DingTalk no longer has (subtrees cascade; members move up), and forgets
/// their links.
pub(crate) async fn delete_departments(
    ctx: &SyncContext,
    wctx: &WriteCtx,
    gone: &[OaDeptId],
) -> Result<(), StoreError> {
    for d in gone {
        match ctx.store.delete_department(wctx, *d, None, true).await {
            Ok(r) => {
                for removed in r.departments {
                    ctx.store.id_map_remove(&removed).await?;
                }
            }
            // Already removed with an ancestor's subtree.
            Err(StoreError::NotFound { .. }) => {
                ctx.store.id_map_remove(d).await?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Applies held deletions an operator approved (`dingsync reconcile --yes`, the admin API).
/// Returns how many were applied; applying one twice is harmless. Deletions the OA side asked
/// for (a SCIM client's mass deactivation) are not here: the store applies those in the
/// transaction that approves them (`directory_store::scim_holds`).
pub async fn apply_approved_deletions(ctx: &SyncContext) -> Result<usize, StoreError> {
    let wctx = WriteCtx::import(format!("{}:confirmed-deletion", ctx.actor), ctx.now_ms());
    let approved = ctx.store.held_deletions(Some(HoldState::Approved)).await?;
    let mut applied = 0;
    for h in approved {
        if !matches!(
            h.origin,
            Origin::Import | Origin::DingTalk | Origin::Reconcile
        ) {
            continue;
        }
        match h.kind {
            EntityKind::User => {
                let left = mark_left(ctx, &wctx, &OaUserId::new(h.oa_id.as_str())).await?;
                applied += usize::from(left);
            }
            EntityKind::Department => {
                if let Ok(id) = h.oa_id.parse::<i64>()
                    && ctx.store.get_department(OaDeptId(id)).await?.is_some()
                {
                    delete_departments(ctx, &wctx, &[OaDeptId(id)]).await?;
                    applied += 1;
                }
            }
            _ => {}
        }
    }
    Ok(applied)
}
