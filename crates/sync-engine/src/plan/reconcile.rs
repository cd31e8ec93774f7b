//! Applying a plan: OA-side writes first (so the DingTalk-side pushes send the merged state),
//! then DingTalk-side pushes through the pusher's own code path, in dependency order.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;

use directory_model::{
    Department, OaDeptId, OaRoleGroupId, OaRoleId, OaUserId, Role, RoleGroup, UserState,
};
use directory_store::{EntityKind, Expect, Op, Store, StoreError, WriteCtx};
use serde::Serialize;

use super::view::Unmapped;
use super::{Action, Plan, PlanError, PlanItem, Target};
use crate::context::SyncContext;
use crate::kind::{KindVisitor, SyncedKind, for_each_kind, parse_assignment};
use crate::push::Pusher;
use crate::translate::{self, ding};

/// What a reconcile did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    /// Items applied.
    pub applied: usize,
    /// Held deletions skipped for lack of confirmation.
    pub skipped_held: usize,
    /// Items that failed, with the reason (they stay in the next plan).
    pub failed: Vec<String>,
}

impl ReconcileReport {
    fn record<E: std::fmt::Display>(&mut self, what: &str, result: Result<(), E>) {
        match result {
            Ok(()) => self.applied += 1,
            Err(e) => self.failed.push(format!("{what}: {e}")),
        }
    }
}

/// Applies `plan`: OA-side writes first (so DingTalk-side pushes send the merged state), then
/// DingTalk-side pushes in dependency order. Held deletions are applied only if
/// `confirm_deletions`.
pub async fn reconcile(
    ctx: &SyncContext,
    pusher: &Pusher,
    plan: &Plan,
    confirm_deletions: bool,
) -> Result<ReconcileReport, PlanError> {
    let mut report = ReconcileReport::default();
    let pushed_later: BTreeSet<(EntityKind, String)> = plan
        .items_for(Target::DingTalk)
        .filter_map(|i| Some((i.kind, i.oa_id.clone()?)))
        .collect();

    // DingTalk-only entities become OA entities (parents first: the crawl lists them so).
    apply_unmapped(ctx, plan, &write_ctx(ctx, true), &mut report).await?;
    for u in &plan.new_users {
        // Users share their id on both sides; link them like the import does.
        let result = match ctx
            .store
            .save_user(&write_ctx(ctx, true), u.clone(), Expect::Absent)
            .await
        {
            Ok(_) => {
                let ding = directory_model::DingUserId::new(u.id.as_str());
                ctx.store.id_map_put(&u.id, &ding).await
            }
            Err(e) => Err(e),
        };
        report.record(&format!("create user {}", u.id), result);
    }
    // OA-side creates and updates of mapped entities, parents before children.
    let Ok(()) = for_each_kind(&mut OaWriter {
        ctx,
        plan,
        pushed_later: &pushed_later,
        report: &mut report,
    })
    .await;
    for i in plan.items_for(Target::Oa) {
        let Some(id) = &i.oa_id else { continue };
        if i.kind != EntityKind::RoleAssignment && i.action != Action::Delete {
            continue;
        }
        if i.held && !confirm_deletions {
            report.skipped_held += 1;
            continue;
        }
        let what = format!("{:?} {} {id} in OA", i.action, i.kind);
        let result = apply_oa_item(&ctx.store, &write_ctx(ctx, true), i.kind, i.action, id).await;
        report.record(&what, result);
    }
    push_to_dingtalk(pusher, plan, confirm_deletions, &mut report).await?;
    Ok(report)
}

/// The write context of reconcile's OA-side writes; `record_base` unless a push follows.
fn write_ctx(ctx: &SyncContext, record_base: bool) -> WriteCtx {
    WriteCtx::reconcile("reconcile", ctx.clock.now_ms()).with_record_base(record_base)
}

/// Writes the plan's merged states to OA, kind by kind (see [`for_each_kind`]).
struct OaWriter<'a> {
    /// Store and clock.
    ctx: &'a SyncContext,
    /// What to write.
    plan: &'a Plan,
    /// Entities a DingTalk-side push follows for: their base moves when that push lands.
    pushed_later: &'a BTreeSet<(EntityKind, String)>,
    /// What was written.
    report: &'a mut ReconcileReport,
}

impl KindVisitor for OaWriter<'_> {
    type Error = Infallible;

    async fn visit<T: SyncedKind>(&mut self) -> Result<(), Infallible> {
        let noun = T::KIND.as_str().replace('_', " ");
        for entity in sorted_by_depth(T::of(&self.plan.oa_writes)) {
            let id = entity.oa_key();
            let later = self.pushed_later.contains(&(T::KIND, id.clone()));
            let result = T::save(
                &self.ctx.store,
                &write_ctx(self.ctx, !later),
                entity.clone(),
                Expect::Any,
            )
            .await;
            self.report
                .record(&format!("write {noun} {id}"), result.map(drop));
        }
        Ok(())
    }
}

/// Pushes the DingTalk-side items, in dependency order: creates and updates parents first,
/// deletes children first.
async fn push_to_dingtalk(
    pusher: &Pusher,
    plan: &Plan,
    confirm_deletions: bool,
    report: &mut ReconcileReport,
) -> Result<(), PlanError> {
    let mut pushes: Vec<&PlanItem> = plan.items_for(Target::DingTalk).collect();
    let rank = |i: &PlanItem| -> (u8, i64) {
        let kind_rank = match i.kind {
            EntityKind::Department => 0,
            EntityKind::User => 1,
            EntityKind::RoleGroup => 2,
            EntityKind::Role => 3,
            EntityKind::RoleAssignment => 4,
        };
        let depth = depth_of(plan, i);
        match i.action {
            Action::Delete => (10 - kind_rank, -depth),
            _ => (kind_rank, depth),
        }
    };
    pushes.sort_by_key(|i| rank(i));
    for i in pushes {
        let Some(id) = &i.oa_id else { continue };
        if i.held && !confirm_deletions {
            report.skipped_held += 1;
            continue;
        }
        let op = match i.action {
            Action::Create => Op::Create,
            Action::Update => Op::Update,
            Action::Delete => Op::Delete,
        };
        let what = format!("{:?} {} {id} in DingTalk", i.action, i.kind);
        match pusher.push_now(i.kind, id, op).await? {
            Ok(()) => report.applied += 1,
            Err(why) => report.failed.push(format!("{what}: {why}")),
        }
    }
    Ok(())
}

/// Tree depth of a department item (0 for other kinds), from the OA directory's parent chain.
fn depth_of(plan: &Plan, item: &PlanItem) -> i64 {
    if item.kind != EntityKind::Department {
        return 0;
    }
    let Some(id) = item.oa_id.as_deref().and_then(Department::parse_id) else {
        return 0;
    };
    let mut depth = 0;
    let mut cur = plan.oa_writes.departments.get(&id).and_then(|d| d.parent);
    while let Some(p) = cur {
        depth += 1;
        if depth > 10_000 {
            break;
        }
        cur = plan.oa_writes.departments.get(&p).and_then(|d| d.parent);
    }
    depth
}

/// The entities parents first (by their depth among `all`), then by id.
fn sorted_by_depth<T: SyncedKind>(all: &BTreeMap<T::Id, T>) -> Vec<&T> {
    let depth = |e: &T| {
        let mut n = 0;
        let mut cur = e.parent();
        while let Some(p) = cur {
            n += 1;
            if n > 10_000 {
                break;
            }
            cur = all.get(&p).and_then(T::parent);
        }
        n
    };
    let mut sorted: Vec<&T> = all.values().collect();
    sorted.sort_by_key(|e| (depth(e), e.id().clone()));
    sorted
}

async fn apply_oa_item(
    store: &Store,
    ctx: &WriteCtx,
    kind: EntityKind,
    action: Action,
    id: &str,
) -> Result<(), StoreError> {
    let bad = || StoreError::NotFound {
        kind,
        id: id.to_owned(),
    };
    match (kind, action) {
        (EntityKind::RoleAssignment, _) => {
            let a = parse_assignment(id).ok_or_else(bad)?;
            if action == Action::Delete {
                store.unassign_role(ctx, &a.user, a.role).await.map(drop)
            } else {
                store.assign_role(ctx, &a.user, a.role).await.map(drop)
            }
        }
        (EntityKind::User, _) => {
            let user = OaUserId::new(id);
            // DingTalk no longer has the user: they left (kept for history, design decision).
            let Some(current) = store.get_user(&user).await? else {
                return Ok(());
            };
            let mut u = current.entity;
            u.state = UserState::Left;
            store.save_user(ctx, u, Expect::Any).await.map(drop)
        }
        (EntityKind::Department, _) => {
            let dept = Department::parse_id(id).ok_or_else(bad)?;
            store
                .delete_department(ctx, dept, None, true)
                .await
                .map(drop)
        }
        (EntityKind::Role, _) => {
            let role = Role::parse_id(id).ok_or_else(bad)?;
            store.delete_role(ctx, role, None).await.map(drop)
        }
        (EntityKind::RoleGroup, _) => {
            let group = RoleGroup::parse_id(id).ok_or_else(bad)?;
            store.delete_role_group(ctx, group, None).await.map(drop)
        }
    }
}

/// Creates DingTalk-only departments, role groups and roles in OA with fresh OA ids and maps
/// them.
async fn apply_unmapped(
    sync: &SyncContext,
    plan: &Plan,
    ctx: &WriteCtx,
    report: &mut ReconcileReport,
) -> Result<(), PlanError> {
    for u in &plan.unmapped {
        let result = create_unmapped(&sync.store, ctx, u, &sync.policy.rules).await;
        report.record("create DingTalk-only entity in OA", result);
    }
    Ok(())
}

/// Creates one DingTalk-only entity in OA and links it.
async fn create_unmapped(
    store: &Store,
    ctx: &WriteCtx,
    u: &Unmapped,
    rules: &crate::rules::Rules,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    match u {
        Unmapped::Department(d) => {
            let parent_ding = directory_model::DingDeptId(d.parent_id.map_or(1, |p| p.0));
            let Some(parent) = store.oa_id_of::<OaDeptId>(&parent_ding).await? else {
                return Err(StoreError::NotFound {
                    kind: EntityKind::Department,
                    id: format!("parent of DingTalk department {}", d.dept_id.0),
                }
                .into());
            };
            let id = OaDeptId(store.allocate_ids(EntityKind::Department, 1).await?);
            let dept = translate::department::from_unlinked(d, id, parent, rules).map_err(|e| {
                format!(
                    "mapping DingTalk department {}: {}",
                    d.dept_id.0,
                    crate::error_chain(&e)
                )
            })?;
            store.save_department(ctx, dept, Expect::Absent).await?;
            Ok(store.id_map_put(&id, &ding::dept(d.dept_id)).await?)
        }
        Unmapped::RoleGroup(gid, name) => {
            let id = OaRoleGroupId(store.allocate_ids(EntityKind::RoleGroup, 1).await?);
            let group = RoleGroup {
                id,
                name: name.clone(),
            };
            store.save_role_group(ctx, group, Expect::Absent).await?;
            Ok(store.id_map_put(&id, &ding::group(*gid)).await?)
        }
        Unmapped::Role(rid, name, gid) => {
            let Some(group) = store.oa_id_of::<OaRoleGroupId>(&ding::group(*gid)).await? else {
                return Err(StoreError::NotFound {
                    kind: EntityKind::RoleGroup,
                    id: format!("DingTalk group {}", gid.0),
                }
                .into());
            };
            let id = OaRoleId(store.allocate_ids(EntityKind::Role, 1).await?);
            let role = Role {
                id,
                group,
                name: name.clone(),
            };
            store.save_role(ctx, role, Expect::Absent).await?;
            Ok(store.id_map_put(&id, &ding::role(*rid)).await?)
        }
    }
}
