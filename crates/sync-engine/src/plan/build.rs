//! Building a plan: both sides' snapshots and the base, compared three ways per entity.

use std::collections::{BTreeMap, BTreeSet};

use directory_model::{MergePolicy, Side, Snapshot, User, UserState, merge};
use directory_store::{EntityKind, Store, StoreError};

use super::view::{self, DingView, Unmapped};
use super::{Action, FieldChange, Plan, PlanError, PlanItem, PlanOptions, Target, Totals};
use crate::context::SyncContext;
use crate::kind::{KindVisitor, SyncedKind, assignment_key, for_each_kind};
use crate::policy::{DeletionThreshold, Policy};

/// Snapshots both sides and plans what reconcile would do.
pub async fn plan(ctx: &SyncContext, options: PlanOptions) -> Result<Plan, PlanError> {
    let (store, client) = (&ctx.store, &ctx.client);
    let mut oa = store.snapshot().await?;
    crate::org_scope::restrict_to_org(store, &mut oa).await?;
    // Users who left are expected to be absent from DingTalk; compare only those still there.
    // A mapping change waiting for approval: DingTalk's mapped values are the old mapping's.
    let pending = crate::approval::pending(store, &ctx.policy.rules).await?;
    let view = view::dingtalk_view(
        store,
        client,
        &oa,
        options.concurrency,
        &ctx.policy.rules,
        pending,
    )
    .await?;
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

/// The plan's items in the order reconcile applies them: what cannot be compared, users who
/// left, every kind's three-way comparison, assignments, then DingTalk-only entities.
async fn build_plan(
    ctx: &SyncContext,
    mut oa: Snapshot,
    view: DingView,
    left_but_present: Vec<User>,
) -> Result<Plan, PlanError> {
    let DingView {
        snapshot: mut ding,
        unmapped,
        new_users,
        untranslatable,
        calls,
        drift,
    } = view;
    // Entities DingTalk reports in a shape OA cannot hold yet are listed, not compared (a
    // comparison would plan their deletion).
    let mut items = untranslatable_items(&mut oa, untranslatable);
    items.extend(super::scoped::oa_in_scope(
        &mut oa,
        &mut ding,
        &ctx.policy.rules,
    ));
    for u in &left_but_present {
        ding.users.remove(&u.id);
        items.push(PlanItem::new(
            Target::DingTalk,
            Action::Delete,
            EntityKind::User,
            Some(u.id.to_string()),
            format!("{} (left)", u.name),
        ));
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
    let mut oa_writes = Snapshot::default();
    for_each_kind(&mut KindPlanner {
        store: &ctx.store,
        policy: &ctx.policy,
        oa: &oa,
        ding: &ding,
        items: &mut items,
        writes: &mut oa_writes,
    })
    .await?;
    items.extend(assignment_items(&ctx.store, &oa, &ding).await?);
    items.extend(dingtalk_only_items(&new_users, &unmapped));
    super::scoped::add_drift(drift, &mut items, &oa);
    let deletions_held = hold_deletions(&mut items, &totals, &ctx.deletions.get());
    Ok(Plan {
        items,
        deletions_held,
        totals,
        unmapped,
        new_users,
        oa_writes,
    })
}

/// One item per entity DingTalk reports in a shape OA cannot hold, taken out of `oa` so that
/// the comparison leaves it alone.
fn untranslatable_items(
    oa: &mut Snapshot,
    untranslatable: Vec<(EntityKind, String, String)>,
) -> Vec<PlanItem> {
    let mut items = Vec::new();
    for (kind, id, why) in untranslatable {
        let name = match kind {
            EntityKind::Department => directory_model::Department::parse_id(&id)
                .and_then(|d| oa.departments.remove(&d))
                .map(|d| d.name),
            EntityKind::User => oa
                .users
                .remove(&directory_model::OaUserId::new(id.as_str()))
                .map(|u| u.name),
            _ => None,
        };
        items.push(PlanItem {
            problems: vec![format!("cannot translate DingTalk's state: {why}")],
            ..PlanItem::new(
                Target::Oa,
                Action::Update,
                kind,
                Some(id),
                name.unwrap_or_default(),
            )
        });
    }
    items
}

/// Plans one kind after another (see [`for_each_kind`]).
struct KindPlanner<'a> {
    /// Where the bases are read.
    store: &'a Store,
    /// Each kind's merge policy.
    policy: &'a Policy,
    /// The OA side.
    oa: &'a Snapshot,
    /// DingTalk's side, in OA ids.
    ding: &'a Snapshot,
    /// The plan so far.
    items: &'a mut Vec<PlanItem>,
    /// The merged states reconcile writes to OA.
    writes: &'a mut Snapshot,
}

impl KindVisitor for KindPlanner<'_> {
    type Error = StoreError;

    async fn visit<T: SyncedKind>(&mut self) -> Result<(), StoreError> {
        let base = bases::<T>(self.store).await?;
        plan_kind(
            T::of(self.oa),
            T::of(self.ding),
            &base,
            T::merge_policy(self.policy),
            self.items,
            T::of_mut(self.writes),
        );
        Ok(())
    }
}

/// The base of every entity of kind `T`, by the store's id text.
async fn bases<T: SyncedKind>(store: &Store) -> Result<BTreeMap<String, T>, StoreError> {
    store
        .base_all(T::KIND)
        .await?
        .into_iter()
        .map(|(id, body)| Ok((id, serde_json::from_value(body)?)))
        .collect()
}

/// The outcome of one entity's three-way comparison.
#[derive(Debug, PartialEq)]
pub(super) enum Decision<T: SyncedKind> {
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
pub(super) fn decide<T: SyncedKind>(
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

fn field_names<T: SyncedKind>(fields: &[T::Field]) -> Vec<String> {
    fields
        .iter()
        .map(|f| T::field_name(*f).to_owned())
        .collect()
}

/// Every field of `fields` with its value in `old` (the target side now) and in `new`.
fn field_changes<T: SyncedKind>(fields: &[T::Field], old: &T, new: &T) -> Vec<FieldChange> {
    fields
        .iter()
        .map(|f| FieldChange {
            field: T::field_name(*f).to_owned(),
            old: old.field_json(*f),
            new: new.field_json(*f),
        })
        .collect()
}

fn problems<T: SyncedKind>(entity: &T) -> Vec<String> {
    match entity.validate() {
        Ok(()) => Vec::new(),
        Err(errors) => errors.errors().iter().map(|e| e.to_string()).collect(),
    }
}

/// Plan items for one kind from a three-way comparison of every id on either side; the states
/// reconcile must write to OA go to `writes`.
fn plan_kind<T: SyncedKind>(
    oa: &BTreeMap<T::Id, T>,
    ding: &BTreeMap<T::Id, T>,
    base: &BTreeMap<String, T>,
    policy: &MergePolicy<T::Field>,
    items: &mut Vec<PlanItem>,
    writes: &mut BTreeMap<T::Id, T>,
) {
    let ids: BTreeSet<&T::Id> = oa.keys().chain(ding.keys()).collect();
    for id in ids {
        let key = id.to_string();
        let (o, d, b) = (oa.get(id), ding.get(id), base.get(&key));
        let item = |target, action, entity: &T| {
            PlanItem::new(target, action, T::KIND, Some(key.clone()), entity.label())
        };
        match decide(o, d, b, policy) {
            Decision::Nothing => {}
            Decision::CreateInDingTalk => {
                if let Some(o) = o {
                    items.push(PlanItem {
                        problems: problems(o),
                        ..item(Target::DingTalk, Action::Create, o)
                    });
                }
            }
            Decision::DeleteInOa => items.extend(o.map(|o| item(Target::Oa, Action::Delete, o))),
            Decision::DeleteInDingTalk => {
                items.extend(d.map(|d| item(Target::DingTalk, Action::Delete, d)));
            }
            Decision::CreateInOa => {
                if let Some(d) = d {
                    items.push(item(Target::Oa, Action::Create, d));
                    writes.insert(d.id().clone(), d.clone());
                }
            }
            Decision::Both {
                merged,
                to_oa,
                to_dingtalk,
                conflicts,
            } => {
                let conflicts = field_names::<T>(&conflicts);
                if let (false, Some(o)) = (to_oa.is_empty(), o) {
                    items.push(PlanItem {
                        fields: field_names::<T>(&to_oa),
                        changes: field_changes(&to_oa, o, &merged),
                        conflicts: conflicts.clone(),
                        ..item(Target::Oa, Action::Update, &merged)
                    });
                    writes.insert(merged.id().clone(), merged.clone());
                }
                if let (false, Some(d)) = (to_dingtalk.is_empty(), d) {
                    items.push(PlanItem {
                        fields: field_names::<T>(&to_dingtalk),
                        changes: field_changes(&to_dingtalk, d, &merged),
                        conflicts,
                        problems: problems(&merged),
                        ..item(Target::DingTalk, Action::Update, &merged)
                    });
                }
            }
        }
    }
}

/// One item per assignment only one side has: the base says which side added or dropped it.
async fn assignment_items(
    store: &Store,
    oa: &Snapshot,
    ding: &Snapshot,
) -> Result<Vec<PlanItem>, StoreError> {
    let synced: BTreeSet<String> = store
        .base_all(EntityKind::RoleAssignment)
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let mut items = Vec::new();
    for a in oa.assignments.symmetric_difference(&ding.assignments) {
        let key = assignment_key(a);
        let in_oa = oa.assignments.contains(a);
        let (target, action) = match (in_oa, synced.contains(&key)) {
            (true, false) => (Target::DingTalk, Action::Create),
            (true, true) => (Target::Oa, Action::Delete),
            (false, true) => (Target::DingTalk, Action::Delete),
            (false, false) => (Target::Oa, Action::Create),
        };
        let name = format!("{} holds role {}", a.user, a.role);
        items.push(PlanItem::new(
            target,
            action,
            EntityKind::RoleAssignment,
            Some(key),
            name,
        ));
    }
    Ok(items)
}

/// One item per DingTalk entity OA does not have: new users, then unlinked departments, role
/// groups and roles.
fn dingtalk_only_items(new_users: &[User], unmapped: &[Unmapped]) -> Vec<PlanItem> {
    let mut items = Vec::new();
    for u in new_users {
        items.push(PlanItem {
            ding_id: Some(u.id.to_string()),
            ..PlanItem::new(
                Target::Oa,
                Action::Create,
                EntityKind::User,
                Some(u.id.to_string()),
                u.name.clone(),
            )
        });
    }
    for u in unmapped {
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
            ding_id: Some(ding_id),
            ..PlanItem::new(Target::Oa, Action::Create, kind, None, name)
        });
    }
    items
}

/// Marks deletions held when one side would lose more than the threshold allows (design
/// invariant 6); returns whether anything is held.
pub(super) fn hold_deletions(
    items: &mut [PlanItem],
    totals: &Totals,
    threshold: &DeletionThreshold,
) -> bool {
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

#[cfg(test)]
pub(in crate::plan) mod tests {
    use directory_model::{Department, OaDeptId};

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

    pub(in crate::plan) fn delete_item(kind: EntityKind, n: usize) -> PlanItem {
        PlanItem::new(
            Target::Oa,
            Action::Delete,
            kind,
            Some(n.to_string()),
            format!("u{n}"),
        )
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
}
