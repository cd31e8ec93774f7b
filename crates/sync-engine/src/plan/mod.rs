//! `dingsync plan` and `dingsync reconcile`: snapshot both sides, compare them with the base,
//! say what would change where, and apply it on request.
//!
//! Per entity the plan is a three-way comparison of the OA directory, DingTalk (translated into
//! OA ids, see `view`) and the base (what both sides last agreed on):
//! - equal on both sides: nothing to do;
//! - both present: the model's three-way [`merge()`] decides every field (a side that differs
//!   from the base changed it; both changed differently → the configured winner, recorded as a
//!   conflict); without a base (never synced) the winner's side is taken whole;
//! - only in OA: with a base DingTalk deleted it (delete in OA), without one it was never pushed
//!   (create in DingTalk); OA users who left are expected to be absent from DingTalk;
//! - only in DingTalk: with a base OA deleted it (delete in DingTalk), without one it is new
//!   (create in OA).
//!
//! The plan runs the same validation as a real push ([`validate_department`] and friends) on
//! everything it would send to DingTalk and lists the problems per item, and applies the
//! deletion threshold (design invariant 6): if the deletions on one side exceed 10% of that
//! side's users or departments, or 500, they are *held* and [`reconcile`] skips them unless the
//! caller confirms.
//!
//! Reconcile applies OA-side changes through the store (origin `reconcile`, no outbox entry)
//! and DingTalk-side changes through the pusher's own code path (so creates stay idempotent and
//! the id map and base are saved the same way), in dependency order.

mod view;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use dingtalk_client::ClientError;
use directory_model::{
    Department, FieldAccess, Identified, MergePolicy, OaDeptId, OaRoleGroupId, OaRoleId, Role,
    RoleGroup, Side, Snapshot, User, UserState, merge, validate_department, validate_role,
    validate_role_group, validate_user,
};
use directory_store::{EntityKind, Expect, Op, Store, StoreError, WriteCtx};
use serde::Serialize;

use crate::context::SyncContext;
use crate::policy::DeletionThreshold;
use crate::push::Pusher;

use self::view::{DingView, Unmapped};

/// Why a plan or a reconcile could not run.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Reading DingTalk failed (the plan needs a complete snapshot).
    #[error("could not read DingTalk")]
    DingTalk(#[source] ClientError),
    /// The directory store failed.
    #[error("the directory store failed")]
    Store(#[from] StoreError),
}

/// Where a planned change happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// In the OA directory.
    Oa,
    /// In DingTalk.
    #[serde(rename = "dingtalk")]
    DingTalk,
}

/// What a planned change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The entity appears.
    Create,
    /// Some fields change.
    Update,
    /// The entity goes away.
    Delete,
}

/// One planned change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanItem {
    /// Where.
    pub target: Target,
    /// What.
    pub action: Action,
    /// Which kind of entity.
    pub kind: EntityKind,
    /// The OA id (absent for DingTalk entities OA does not have yet).
    pub oa_id: Option<String>,
    /// The DingTalk id, for DingTalk entities OA does not have yet.
    pub ding_id: Option<String>,
    /// A readable name.
    pub name: String,
    /// The fields that change (updates).
    pub fields: Vec<String>,
    /// Fields both sides changed differently; the winner's value is planned.
    pub conflicts: Vec<String>,
    /// What validation says about the state this item would write (a real run refuses it).
    pub problems: Vec<String>,
    /// A deletion held by the threshold: applied only with confirmation.
    pub held: bool,
}

/// Counts per side, for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Departments in the OA directory.
    pub oa_departments: usize,
    /// Users in the OA directory (active).
    pub oa_users: usize,
    /// Departments in DingTalk (root excluded).
    pub dingtalk_departments: usize,
    /// Users in DingTalk.
    pub dingtalk_users: usize,
    /// DingTalk API calls the snapshot took.
    pub dingtalk_calls: u64,
}

/// What reconcile would do, in the order it would do it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// The changes.
    pub items: Vec<PlanItem>,
    /// Whether deletions are held by the threshold.
    pub deletions_held: bool,
    /// Sizes of both sides.
    pub totals: Totals,
    /// DingTalk-side data reconcile needs to create DingTalk-only entities in OA.
    #[serde(skip)]
    unmapped: Vec<Unmapped>,
    /// DingTalk users to create in OA.
    #[serde(skip)]
    new_users: Vec<User>,
    /// The merged entities to write to OA, by kind and id.
    #[serde(skip)]
    oa_writes: OaWrites,
}

/// Merged states reconcile writes to the OA directory.
#[derive(Debug, Clone, Default, PartialEq)]
struct OaWrites {
    departments: BTreeMap<OaDeptId, Department>,
    users: BTreeMap<String, User>,
    role_groups: BTreeMap<OaRoleGroupId, RoleGroup>,
    roles: BTreeMap<OaRoleId, Role>,
}

/// How to plan; the winner, field authority and deletion threshold come from the context's
/// [`crate::policy::Policy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanOptions {
    /// DingTalk calls in flight while reading.
    pub concurrency: usize,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self { concurrency: 16 }
    }
}

/// The outcome of one entity's three-way comparison.
#[derive(Debug, PartialEq)]
enum Decision<T: FieldAccess> {
    Nothing,
    Both {
        merged: T,
        to_oa: Vec<T::Field>,
        to_dingtalk: Vec<T::Field>,
        conflicts: Vec<T::Field>,
    },
    CreateInDingTalk,
    CreateInOa,
    DeleteInOa,
    DeleteInDingTalk,
}

/// Compares one entity across OA, DingTalk and the base.
fn decide<T: FieldAccess>(
    oa: Option<&T>,
    ding: Option<&T>,
    base: Option<&T>,
    policy: &MergePolicy<T::Field>,
) -> Decision<T> {
    match (oa, ding) {
        (None, None) => Decision::Nothing,
        (Some(_), None) if base.is_some() => Decision::DeleteInOa,
        (Some(_), None) => Decision::CreateInDingTalk,
        (None, Some(_)) if base.is_some() => Decision::DeleteInDingTalk,
        (None, Some(_)) => Decision::CreateInOa,
        (Some(oa), Some(ding)) if oa == ding => Decision::Nothing,
        (Some(oa), Some(ding)) => {
            // Never synced: treat the loser's state as the base, so the winner's fields win.
            let fallback = match policy.winner {
                Side::Oa => ding,
                Side::DingTalk => oa,
            };
            let base = base.unwrap_or(fallback);
            let merged = merge(base, oa, ding, policy);
            Decision::Both {
                to_oa: merged.oa_changes.clone(),
                to_dingtalk: merged.dingtalk_changes.clone(),
                conflicts: merged.conflicts.iter().map(|c| c.field).collect(),
                merged: merged.value,
            }
        }
    }
}

fn field_names<T: FieldAccess>(fields: &[T::Field]) -> Vec<String> {
    fields
        .iter()
        .map(|f| T::field_name(*f).to_owned())
        .collect()
}

fn problems(result: Result<(), directory_model::ValidationErrors>) -> Vec<String> {
    match result {
        Ok(()) => Vec::new(),
        Err(errors) => errors.errors().iter().map(|e| e.to_string()).collect(),
    }
}

/// Builds plan items for one kind from a three-way comparison of every id on either side.
#[allow(clippy::too_many_arguments)]
fn plan_kind<T, N, V, W>(
    kind: EntityKind,
    oa: &BTreeMap<T::Id, T>,
    ding: &BTreeMap<T::Id, T>,
    base: &BTreeMap<String, T>,
    policy: &MergePolicy<T::Field>,
    name: N,
    validate: V,
    mut write_oa: W,
    items: &mut Vec<PlanItem>,
) where
    T: FieldAccess + Identified,
    T::Id: std::fmt::Display,
    N: Fn(&T) -> String,
    V: Fn(&T) -> Vec<String>,
    W: FnMut(T),
{
    let ids: BTreeSet<&T::Id> = oa.keys().chain(ding.keys()).collect();
    for id in ids {
        let key = id.to_string();
        let (o, d, b) = (oa.get(id), ding.get(id), base.get(&key));
        let item = |target, action, entity: &T| PlanItem {
            target,
            action,
            kind,
            oa_id: Some(key.clone()),
            ding_id: None,
            name: name(entity),
            fields: Vec::new(),
            conflicts: Vec::new(),
            problems: Vec::new(),
            held: false,
        };
        match decide(o, d, b, policy) {
            Decision::Nothing => {}
            Decision::CreateInDingTalk => {
                if let Some(o) = o {
                    items.push(PlanItem {
                        problems: validate(o),
                        ..item(Target::DingTalk, Action::Create, o)
                    });
                }
            }
            Decision::DeleteInOa => {
                if let Some(o) = o {
                    items.push(item(Target::Oa, Action::Delete, o));
                }
            }
            Decision::DeleteInDingTalk => {
                if let Some(d) = d {
                    items.push(item(Target::DingTalk, Action::Delete, d));
                }
            }
            Decision::CreateInOa => {
                if let Some(d) = d {
                    items.push(item(Target::Oa, Action::Create, d));
                    write_oa(d.clone());
                }
            }
            Decision::Both {
                merged,
                to_oa,
                to_dingtalk,
                conflicts,
            } => {
                let conflicts = field_names::<T>(&conflicts);
                if !to_oa.is_empty() {
                    items.push(PlanItem {
                        fields: field_names::<T>(&to_oa),
                        conflicts: conflicts.clone(),
                        ..item(Target::Oa, Action::Update, &merged)
                    });
                    write_oa(merged.clone());
                }
                if !to_dingtalk.is_empty() {
                    items.push(PlanItem {
                        fields: field_names::<T>(&to_dingtalk),
                        conflicts,
                        problems: validate(&merged),
                        ..item(Target::DingTalk, Action::Update, &merged)
                    });
                }
            }
        }
    }
}

async fn bases<T: serde::de::DeserializeOwned>(
    store: &Store,
    kind: EntityKind,
) -> Result<BTreeMap<String, T>, StoreError> {
    store
        .base_all(kind)
        .await?
        .into_iter()
        .map(|(id, body)| Ok((id, serde_json::from_value(body)?)))
        .collect()
}

/// Snapshots both sides and plans what reconcile would do.
pub async fn plan(ctx: &SyncContext, options: PlanOptions) -> Result<Plan, PlanError> {
    let (store, client) = (&ctx.store, &ctx.client);
    let mut oa = store.snapshot().await?;
    // Users who left are expected to be absent from DingTalk; compare only those still there.
    let view = view::dingtalk_view(store, client, &oa, options.concurrency).await?;
    let left: Vec<_> = oa
        .users
        .values()
        .filter(|u| u.state == UserState::Left)
        .map(|u| u.id.clone())
        .collect();
    let mut left_but_present = Vec::new();
    for id in left {
        if let Some(u) = oa.users.remove(&id)
            && view.snapshot.users.contains_key(&id)
        {
            left_but_present.push(u);
        }
    }
    build_plan(ctx, oa, view, left_but_present).await
}

async fn build_plan(
    ctx: &SyncContext,
    mut oa: Snapshot,
    view: DingView,
    left_but_present: Vec<User>,
) -> Result<Plan, PlanError> {
    let store = &ctx.store;
    let policy = &ctx.policy;
    let DingView {
        snapshot: mut ding,
        unmapped,
        new_users,
        untranslatable,
        calls,
    } = view;
    let mut items = Vec::new();
    let mut writes = OaWrites::default();
    // Entities DingTalk reports in a shape OA cannot hold yet are listed, not compared (a
    // comparison would plan their deletion).
    for (kind, id, why) in untranslatable {
        let name = match kind {
            EntityKind::Department => id
                .parse()
                .ok()
                .and_then(|d| oa.departments.remove(&OaDeptId(d)))
                .map(|d| d.name),
            EntityKind::User => oa
                .users
                .remove(&directory_model::OaUserId::new(id.as_str()))
                .map(|u| u.name),
            _ => None,
        };
        items.push(PlanItem {
            target: Target::Oa,
            action: Action::Update,
            kind,
            oa_id: Some(id),
            ding_id: None,
            name: name.unwrap_or_default(),
            fields: Vec::new(),
            conflicts: Vec::new(),
            problems: vec![format!("cannot translate DingTalk's state: {why}")],
            held: false,
        });
    }
    for u in &left_but_present {
        ding.users.remove(&u.id);
        items.push(PlanItem {
            target: Target::DingTalk,
            action: Action::Delete,
            kind: EntityKind::User,
            oa_id: Some(u.id.to_string()),
            ding_id: None,
            name: format!("{} (left)", u.name),
            fields: Vec::new(),
            conflicts: Vec::new(),
            problems: Vec::new(),
            held: false,
        });
    }
    let totals = Totals {
        oa_departments: oa.departments.len(),
        oa_users: oa.users.len(),
        dingtalk_departments: ding.departments.len()
            + unmapped
                .iter()
                .filter(|u| matches!(u, Unmapped::Department(_)))
                .count(),
        dingtalk_users: ding.users.len() + new_users.len() + left_but_present.len(),
        dingtalk_calls: calls,
    };

    plan_kind(
        EntityKind::Department,
        &oa.departments,
        &ding.departments,
        &bases::<Department>(store, EntityKind::Department).await?,
        &policy.departments,
        |d| d.name.clone(),
        |d| problems(validate_department(d)),
        |d| {
            writes.departments.insert(d.id, d);
        },
        &mut items,
    );
    plan_kind(
        EntityKind::User,
        &oa.users,
        &ding.users,
        &bases::<User>(store, EntityKind::User).await?,
        &policy.users,
        |u| u.name.clone(),
        |u| problems(validate_user(u)),
        |u| {
            writes.users.insert(u.id.to_string(), u);
        },
        &mut items,
    );
    plan_kind(
        EntityKind::RoleGroup,
        &oa.role_groups,
        &ding.role_groups,
        &bases::<RoleGroup>(store, EntityKind::RoleGroup).await?,
        &policy.role_groups,
        |g| g.name.clone(),
        |g| problems(validate_role_group(g)),
        |g| {
            writes.role_groups.insert(g.id, g);
        },
        &mut items,
    );
    plan_kind(
        EntityKind::Role,
        &oa.roles,
        &ding.roles,
        &bases::<Role>(store, EntityKind::Role).await?,
        &policy.roles,
        |r| r.name.clone(),
        |r| problems(validate_role(r)),
        |r| {
            writes.roles.insert(r.id, r);
        },
        &mut items,
    );
    let assignment_base: BTreeSet<String> = store
        .base_all(EntityKind::RoleAssignment)
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    for a in oa.assignments.symmetric_difference(&ding.assignments) {
        let key = format!("{}:{}", a.role, a.user);
        let in_oa = oa.assignments.contains(a);
        let synced = assignment_base.contains(&key);
        let (target, action) = match (in_oa, synced) {
            (true, false) => (Target::DingTalk, Action::Create),
            (true, true) => (Target::Oa, Action::Delete),
            (false, true) => (Target::DingTalk, Action::Delete),
            (false, false) => (Target::Oa, Action::Create),
        };
        items.push(PlanItem {
            target,
            action,
            kind: EntityKind::RoleAssignment,
            oa_id: Some(key),
            ding_id: None,
            name: format!("{} holds role {}", a.user, a.role),
            fields: Vec::new(),
            conflicts: Vec::new(),
            problems: Vec::new(),
            held: false,
        });
    }
    for u in &new_users {
        items.push(PlanItem {
            target: Target::Oa,
            action: Action::Create,
            kind: EntityKind::User,
            oa_id: Some(u.id.to_string()),
            ding_id: Some(u.id.to_string()),
            name: u.name.clone(),
            fields: Vec::new(),
            conflicts: Vec::new(),
            problems: Vec::new(),
            held: false,
        });
    }
    for u in &unmapped {
        let (kind, ding_id, name) = match u {
            Unmapped::Department(d) => (
                EntityKind::Department,
                d.dept_id.0.to_string(),
                d.name.clone(),
            ),
            Unmapped::RoleGroup(id, name) => {
                (EntityKind::RoleGroup, id.0.to_string(), name.clone())
            }
            Unmapped::Role(id, name, _) => (EntityKind::Role, id.0.to_string(), name.clone()),
        };
        items.push(PlanItem {
            target: Target::Oa,
            action: Action::Create,
            kind,
            oa_id: None,
            ding_id: Some(ding_id),
            name,
            fields: Vec::new(),
            conflicts: Vec::new(),
            problems: Vec::new(),
            held: false,
        });
    }

    let deletions_held = hold_deletions(&mut items, &totals, &policy.deletions);
    Ok(Plan {
        items,
        deletions_held,
        totals,
        unmapped,
        new_users,
        oa_writes: writes,
    })
}

/// Marks deletions held when one side would lose more than the threshold allows (design
/// invariant 6); returns whether anything is held.
fn hold_deletions(items: &mut [PlanItem], totals: &Totals, threshold: &DeletionThreshold) -> bool {
    let mut held = false;
    for (target, kind, total) in [
        (Target::Oa, EntityKind::User, totals.oa_users),
        (Target::Oa, EntityKind::Department, totals.oa_departments),
        (Target::DingTalk, EntityKind::User, totals.dingtalk_users),
        (
            Target::DingTalk,
            EntityKind::Department,
            totals.dingtalk_departments,
        ),
    ] {
        let count = items
            .iter()
            .filter(|i| i.target == target && i.kind == kind && i.action == Action::Delete)
            .count();
        if threshold.must_hold(count, total) {
            held = true;
            for i in items
                .iter_mut()
                .filter(|i| i.target == target && i.kind == kind && i.action == Action::Delete)
            {
                i.held = true;
            }
        }
    }
    held
}

impl Plan {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The items aimed at one side.
    pub fn items_for(&self, target: Target) -> impl Iterator<Item = &PlanItem> {
        self.items.iter().filter(move |i| i.target == target)
    }

    /// The plan as JSON (`dingsync plan --json`).
    pub fn to_json(&self) -> serde_json::Value {
        // Plain data with string keys: serializing cannot fail.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// The plan as a readable table, like `terraform plan`.
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        if self.items.is_empty() {
            out.push_str("No changes: OA and DingTalk agree.\n");
            return out;
        }
        let rows: Vec<[String; 5]> = self
            .items
            .iter()
            .map(|i| {
                let sign = match i.action {
                    Action::Create => "+",
                    Action::Update => "~",
                    Action::Delete => "-",
                };
                let target = match i.target {
                    Target::Oa => "OA",
                    Target::DingTalk => "DingTalk",
                };
                let id = match (&i.oa_id, &i.ding_id) {
                    (Some(oa), _) => oa.clone(),
                    (None, Some(d)) => format!("ding:{d}"),
                    (None, None) => String::new(),
                };
                let mut detail = i.fields.join(", ");
                if !i.conflicts.is_empty() {
                    let _ = write!(detail, " (conflict: {})", i.conflicts.join(", "));
                }
                if i.held {
                    detail.push_str(" HELD: needs confirmation");
                }
                if !i.problems.is_empty() {
                    let _ = write!(detail, " INVALID: {}", i.problems.join("; "));
                }
                [
                    format!("{sign} {target}"),
                    i.kind.to_string(),
                    id,
                    i.name.clone(),
                    detail.trim().to_owned(),
                ]
            })
            .collect();
        let headers = ["change", "kind", "id", "name", "fields"];
        let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
        for r in &rows {
            for (w, cell) in widths.iter_mut().zip(r.iter()) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| -> String {
            let mut s = String::new();
            for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
                if i + 1 == cells.len() {
                    s.push_str(cell);
                } else {
                    let pad = w.saturating_sub(cell.chars().count());
                    let _ = write!(s, "{cell}{}  ", " ".repeat(pad));
                }
            }
            s.trim_end().to_owned()
        };
        let header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
        out.push_str(&line(&header));
        out.push('\n');
        for r in &rows {
            out.push_str(&line(r));
            out.push('\n');
        }
        let count = |t: Target, a: Action| {
            self.items
                .iter()
                .filter(|i| i.target == t && i.action == a)
                .count()
        };
        let _ = writeln!(
            out,
            "\nDingTalk: {} to create, {} to change, {} to delete. OA: {} to create, {} to change, {} to delete.",
            count(Target::DingTalk, Action::Create),
            count(Target::DingTalk, Action::Update),
            count(Target::DingTalk, Action::Delete),
            count(Target::Oa, Action::Create),
            count(Target::Oa, Action::Update),
            count(Target::Oa, Action::Delete),
        );
        if self.deletions_held {
            out.push_str(
                "Deletions exceed the safety threshold and are held; run `dingsync reconcile --yes` to apply them.\n",
            );
        }
        out
    }
}

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

/// Applies `plan`: OA-side writes first (so DingTalk-side pushes send the merged state), then
/// DingTalk-side pushes in dependency order. Held deletions are applied only if
/// `confirm_deletions`.
pub async fn reconcile(
    ctx: &SyncContext,
    pusher: &Pusher,
    plan: &Plan,
    confirm_deletions: bool,
) -> Result<ReconcileReport, PlanError> {
    let (store, clock) = (&ctx.store, &ctx.clock);
    let mut report = ReconcileReport::default();
    let ctx = |base: bool| WriteCtx::reconcile("reconcile", clock.now_ms()).with_record_base(base);
    let pushed_later: BTreeSet<(EntityKind, String)> = plan
        .items_for(Target::DingTalk)
        .filter_map(|i| Some((i.kind, i.oa_id.clone()?)))
        .collect();
    let later = |kind: EntityKind, id: &str| pushed_later.contains(&(kind, id.to_owned()));

    // DingTalk-only entities become OA entities (parents first: the crawl lists them so).
    apply_unmapped(store, plan, &ctx(true), &mut report).await?;
    for u in &plan.new_users {
        // Users share their id on both sides; link them like the import does.
        let result = match store.save_user(&ctx(true), u.clone(), Expect::Absent).await {
            Ok(_) => {
                store
                    .id_map_put(&u.id, &directory_model::DingUserId::new(u.id.as_str()))
                    .await
            }
            Err(e) => Err(e),
        };
        record(&mut report, &format!("create user {}", u.id), result);
    }
    // OA-side creates and updates of mapped entities, parents before children.
    for d in sorted_by_depth(plan.oa_writes.departments.values()) {
        let id = d.id.to_string();
        let r = store
            .save_department(
                &ctx(!later(EntityKind::Department, &id)),
                d.clone(),
                Expect::Any,
            )
            .await;
        record(&mut report, &format!("write department {id}"), r.map(drop));
    }
    for u in plan.oa_writes.users.values() {
        let r = store
            .save_user(
                &ctx(!later(EntityKind::User, u.id.as_str())),
                u.clone(),
                Expect::Any,
            )
            .await;
        record(&mut report, &format!("write user {}", u.id), r.map(drop));
    }
    for g in plan.oa_writes.role_groups.values() {
        let id = g.id.to_string();
        let r = store
            .save_role_group(
                &ctx(!later(EntityKind::RoleGroup, &id)),
                g.clone(),
                Expect::Any,
            )
            .await;
        record(&mut report, &format!("write role group {id}"), r.map(drop));
    }
    for r in plan.oa_writes.roles.values() {
        let id = r.id.to_string();
        let res = store
            .save_role(&ctx(!later(EntityKind::Role, &id)), r.clone(), Expect::Any)
            .await;
        record(&mut report, &format!("write role {id}"), res.map(drop));
    }
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
        let result = apply_oa_item(store, &ctx(true), i.kind, i.action, id).await;
        record(&mut report, &what, result);
    }

    // DingTalk side, in dependency order: creates/updates parents first, deletes children
    // first.
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
    Ok(report)
}

/// Tree depth of a department item (0 for other kinds), from the OA directory's parent chain.
fn depth_of(plan: &Plan, item: &PlanItem) -> i64 {
    if item.kind != EntityKind::Department {
        return 0;
    }
    let Some(id) = item.oa_id.as_ref().and_then(|s| s.parse::<i64>().ok()) else {
        return 0;
    };
    let mut depth = 0;
    let mut cur = plan
        .oa_writes
        .departments
        .get(&OaDeptId(id))
        .and_then(|d| d.parent);
    while let Some(p) = cur {
        depth += 1;
        if depth > 10_000 {
            break;
        }
        cur = plan.oa_writes.departments.get(&p).and_then(|d| d.parent);
    }
    depth
}

fn sorted_by_depth<'a>(depts: impl Iterator<Item = &'a Department>) -> Vec<&'a Department> {
    let all: Vec<&Department> = depts.collect();
    let by_id: BTreeMap<OaDeptId, &Department> = all.iter().map(|d| (d.id, *d)).collect();
    let depth = |d: &Department| {
        let mut n = 0;
        let mut cur = d.parent;
        while let Some(p) = cur {
            n += 1;
            if n > 10_000 {
                break;
            }
            cur = by_id.get(&p).and_then(|d| d.parent);
        }
        n
    };
    let mut sorted = all.clone();
    sorted.sort_by_key(|d| (depth(d), d.id));
    sorted
}

fn record(report: &mut ReconcileReport, what: &str, result: Result<(), StoreError>) {
    match result {
        Ok(()) => report.applied += 1,
        Err(e) => report.failed.push(format!("{what}: {e}")),
    }
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
            let (role, user) = id.split_once(':').ok_or_else(bad)?;
            let user = directory_model::OaUserId::new(user);
            let role = OaRoleId(role.parse().map_err(|_| bad())?);
            if action == Action::Delete {
                store.unassign_role(ctx, &user, role).await.map(drop)
            } else {
                store.assign_role(ctx, &user, role).await.map(drop)
            }
        }
        (EntityKind::User, _) => {
            let user = directory_model::OaUserId::new(id);
            // DingTalk no longer has the user: they left (kept for history, design decision).
            let Some(current) = store.get_user(&user).await? else {
                return Ok(());
            };
            let mut u = current.entity;
            u.state = UserState::Left;
            store.save_user(ctx, u, Expect::Any).await.map(drop)
        }
        (EntityKind::Department, _) => {
            let dept = OaDeptId(id.parse().map_err(|_| bad())?);
            store
                .delete_department(ctx, dept, None, true)
                .await
                .map(drop)
        }
        (EntityKind::Role, _) => {
            let role = OaRoleId(id.parse().map_err(|_| bad())?);
            store.delete_role(ctx, role, None).await.map(drop)
        }
        (EntityKind::RoleGroup, _) => {
            let group = OaRoleGroupId(id.parse().map_err(|_| bad())?);
            store.delete_role_group(ctx, group, None).await.map(drop)
        }
    }
}

/// Creates DingTalk-only departments, role groups and roles in OA with fresh OA ids and maps
/// them.
async fn apply_unmapped(
    store: &Store,
    plan: &Plan,
    ctx: &WriteCtx,
    report: &mut ReconcileReport,
) -> Result<(), PlanError> {
    for u in &plan.unmapped {
        let result: Result<(), StoreError> = async {
            match u {
                Unmapped::Department(d) => {
                    let ding = directory_model::DingDeptId(d.dept_id.0);
                    let parent_ding = directory_model::DingDeptId(d.parent_id.map_or(1, |p| p.0));
                    let Some(parent) = store.oa_id_of::<OaDeptId>(&parent_ding).await? else {
                        return Err(StoreError::NotFound {
                            kind: EntityKind::Department,
                            id: format!("parent of DingTalk department {}", d.dept_id.0),
                        });
                    };
                    let id = OaDeptId(store.allocate_ids(EntityKind::Department, 1).await?);
                    let mut dept = Department::new(id, d.name.clone(), Some(parent));
                    dept.order = d.order.unwrap_or(0);
                    dept.hide = d.hide_dept.unwrap_or(false);
                    dept.outer = d.outer_dept.unwrap_or(false);
                    dept.source_identifier = d.source_identifier.clone().filter(|s| !s.is_empty());
                    store.save_department(ctx, dept, Expect::Absent).await?;
                    store.id_map_put(&id, &ding).await
                }
                Unmapped::RoleGroup(gid, name) => {
                    let id = OaRoleGroupId(store.allocate_ids(EntityKind::RoleGroup, 1).await?);
                    let group = RoleGroup {
                        id,
                        name: name.clone(),
                    };
                    store.save_role_group(ctx, group, Expect::Absent).await?;
                    store
                        .id_map_put(&id, &directory_model::DingRoleGroupId(gid.0))
                        .await
                }
                Unmapped::Role(rid, name, gid) => {
                    let ding_group = directory_model::DingRoleGroupId(gid.0);
                    let Some(group) = store.oa_id_of::<OaRoleGroupId>(&ding_group).await? else {
                        return Err(StoreError::NotFound {
                            kind: EntityKind::RoleGroup,
                            id: format!("DingTalk group {}", gid.0),
                        });
                    };
                    let id = OaRoleId(store.allocate_ids(EntityKind::Role, 1).await?);
                    let role = Role {
                        id,
                        group,
                        name: name.clone(),
                    };
                    store.save_role(ctx, role, Expect::Absent).await?;
                    store
                        .id_map_put(&id, &directory_model::DingRoleId(rid.0))
                        .await
                }
            }
        }
        .await;
        record(report, "create DingTalk-only entity in OA", result);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use directory_model::OaUserId;

    use super::*;

    fn dept(name: &str) -> Department {
        Department::new(OaDeptId(5), name, Some(OaDeptId(1)))
    }

    #[test]
    fn three_way_decides_direction_and_conflicts() {
        let base = dept("A");
        let mut oa = base.clone();
        oa.order = 9;
        let mut ding = base.clone();
        ding.name = "B".into();
        match decide(
            Some(&oa),
            Some(&ding),
            Some(&base),
            &MergePolicy::with_winner(Side::Oa),
        ) {
            Decision::Both {
                merged,
                to_oa,
                to_dingtalk,
                conflicts,
            } => {
                assert_eq!(merged.name, "B");
                assert_eq!(merged.order, 9);
                assert_eq!(to_oa, vec![directory_model::DeptField::Name]);
                assert_eq!(to_dingtalk, vec![directory_model::DeptField::Order]);
                assert!(conflicts.is_empty());
            }
            other => panic!("{other:?}"),
        }
        let mut ding2 = base.clone();
        ding2.order = 3;
        match decide(
            Some(&oa),
            Some(&ding2),
            Some(&base),
            &MergePolicy::with_winner(Side::Oa),
        ) {
            Decision::Both {
                merged, conflicts, ..
            } => {
                assert_eq!(merged.order, 9, "OA wins by default");
                assert_eq!(conflicts, vec![directory_model::DeptField::Order]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn presence_with_and_without_base() {
        let d = dept("A");
        assert_eq!(
            decide(Some(&d), None, None, &MergePolicy::with_winner(Side::Oa)),
            Decision::CreateInDingTalk
        );
        assert_eq!(
            decide(
                Some(&d),
                None,
                Some(&d),
                &MergePolicy::with_winner(Side::Oa)
            ),
            Decision::DeleteInOa
        );
        assert_eq!(
            decide(None, Some(&d), None, &MergePolicy::with_winner(Side::Oa)),
            Decision::CreateInOa
        );
        assert_eq!(
            decide(
                None,
                Some(&d),
                Some(&d),
                &MergePolicy::with_winner(Side::Oa)
            ),
            Decision::DeleteInDingTalk
        );
        assert_eq!(
            decide(
                Some(&d),
                Some(&d),
                None,
                &MergePolicy::with_winner(Side::Oa)
            ),
            Decision::Nothing
        );
    }

    fn delete_item(kind: EntityKind, n: usize) -> PlanItem {
        PlanItem {
            target: Target::Oa,
            action: Action::Delete,
            kind,
            oa_id: Some(n.to_string()),
            ding_id: None,
            name: format!("u{n}"),
            fields: Vec::new(),
            conflicts: Vec::new(),
            problems: Vec::new(),
            held: false,
        }
    }

    #[test]
    fn deletions_over_the_threshold_are_held() {
        let totals = Totals {
            oa_users: 100,
            oa_departments: 10,
            ..Totals::default()
        };
        let mut ten: Vec<PlanItem> = (0..10).map(|n| delete_item(EntityKind::User, n)).collect();
        assert!(!hold_deletions(
            &mut ten,
            &totals,
            &DeletionThreshold::default()
        ));
        let mut eleven: Vec<PlanItem> = (0..11).map(|n| delete_item(EntityKind::User, n)).collect();
        assert!(hold_deletions(
            &mut eleven,
            &totals,
            &DeletionThreshold::default()
        ));
        assert!(eleven.iter().all(|i| i.held));
        let big = Totals {
            oa_users: 100_000,
            ..Totals::default()
        };
        let mut many: Vec<PlanItem> = (0..501).map(|n| delete_item(EntityKind::User, n)).collect();
        assert!(
            hold_deletions(&mut many, &big, &DeletionThreshold::default()),
            "500 caps 10%"
        );
    }

    #[test]
    fn table_lists_every_item_with_a_summary() {
        let mut item = delete_item(EntityKind::User, 1);
        item.held = true;
        let update = PlanItem {
            target: Target::DingTalk,
            action: Action::Update,
            kind: EntityKind::Department,
            oa_id: Some("5".into()),
            name: "R&D".into(),
            fields: vec!["name".into()],
            conflicts: vec!["name".into()],
            ..delete_item(EntityKind::Department, 5)
        };
        let plan = Plan {
            items: vec![update, item],
            deletions_held: true,
            totals: Totals::default(),
            unmapped: Vec::new(),
            new_users: Vec::new(),
            oa_writes: OaWrites::default(),
        };
        let table = plan.render_table();
        assert!(table.contains("~ DingTalk  department  5"), "{table}");
        assert!(table.contains("name (conflict: name)"), "{table}");
        assert!(table.contains("- OA"), "{table}");
        assert!(table.contains("HELD"), "{table}");
        assert!(
            table.contains("DingTalk: 0 to create, 1 to change, 0 to delete."),
            "{table}"
        );
        let json = plan.to_json();
        assert_eq!(json["items"][0]["action"], "update");
        assert_eq!(json["items"][1]["held"], true);
        let _ = OaUserId::new("x");
    }
}
