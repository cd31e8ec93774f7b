//! What `[mapping]` and `[scope]` (see [`crate::rules`]) add to a plan.
//!
//! - **Scope.** An entity out of its side's scope is left out of that side's snapshot before
//!   the comparison, so one that was synced before (it has a base) is planned as a deletion on
//!   the other side — and the deletion threshold holds a scope change that removes many — and
//!   one that enters the scope is planned as a create.
//! - **Drift.** The comparison is in OA's values, so a changed mapping whose inverse reads
//!   DingTalk's old values back to the same OA values shows no difference there. Each linked
//!   user whose DingTalk values differ from what OA's map to is planned as a DingTalk update of
//!   those fields (a push sends them); so is each linked department (`Rules::department_drift`),
//!   keeping only the fields on which both sides agree in OA's values.

use std::collections::HashMap;

use dingtalk_proto as wire;
use directory_model::{Department, DingDeptId, FieldAccess, OaDeptId, Snapshot, User};
use directory_store::EntityKind;

use super::{Action, FieldChange, PlanItem, Target};
use crate::rules::Rules;
use crate::translate::user::ReadUser;
use crate::translate::{self, ConvertError, IdMap, ding};

/// What reading DingTalk's users needs besides the crawl: the rules, DingTalk's tree, and
/// whether a change of the rules waits for approval.
pub(crate) struct Reading<'a> {
    pub(crate) rules: &'a Rules,
    pub(crate) parents: &'a DingParents,
    pub(crate) pending: bool,
}

/// DingTalk's department tree as child → parent, from the crawl.
#[derive(Debug, Default)]
pub(crate) struct DingParents(HashMap<i64, i64>);

impl DingParents {
    pub(crate) fn of(details: &[wire::dept::DeptDetail]) -> Self {
        Self(
            details
                .iter()
                .filter_map(|d| d.parent_id.map(|p| (d.dept_id.0, p.0)))
                .collect(),
        )
    }

    /// The parent of `id`, if the crawl saw one.
    pub(crate) fn parent(&self, id: i64) -> Option<i64> {
        self.0.get(&id).copied()
    }

    /// `id` and the departments above it, self first.
    pub(crate) fn chain(&self, id: i64, out: &mut Vec<DingDeptId>) {
        let mut cur = Some(id);
        while let Some(c) = cur {
            if out.contains(&DingDeptId(c)) || out.len() > 10_000 {
                break;
            }
            out.push(DingDeptId(c));
            cur = self.0.get(&c).copied();
        }
    }
}

/// The crawled departments in `[scope.to_oa.departments]`; one whose predicate fails to
/// evaluate is listed as untranslatable (left alone) rather than planned.
pub(crate) fn departments_in_scope(
    details: Vec<wire::dept::DeptDetail>,
    ids: &IdMap,
    rules: &Rules,
    parents: &DingParents,
    untranslatable: &mut Vec<(EntityKind, String, String)>,
) -> Vec<wire::dept::DeptDetail> {
    if !rules.scopes_dingtalk_departments() {
        return details;
    }
    details
        .into_iter()
        .filter(|d| {
            if d.dept_id.0 == DingDeptId::ROOT.0 {
                return true;
            }
            let mut chain = Vec::new();
            parents.chain(d.dept_id.0, &mut chain);
            let dept = translate::department::scope_view(d, ids);
            match rules.dingtalk_department_in_scope(&dept, &chain) {
                Ok(keep) => keep,
                Err(e) => {
                    let id = ids
                        .oa_dept(ding::dept(d.dept_id))
                        .map_or_else(|| format!("DingTalk {}", d.dept_id.0), |i| i.to_string());
                    untranslatable.push((EntityKind::Department, id, crate::error_chain(&e)));
                    false
                }
            }
        })
        .collect()
}

/// A crawled user in DingTalk's values, or `None` when out of `[scope.to_oa.users]`.
pub(crate) fn read_user(
    u: &wire::user::User,
    ids: &IdMap,
    oa_user: Option<&User>,
    rules: &Rules,
    parents: &DingParents,
) -> Result<Option<ReadUser>, ConvertError> {
    let mut read = translate::user::read_wire(u, ids, oa_user, rules)?;
    if u.manager_userid.is_none() {
        // `v2/user/list` does not report the manager: not observable, so no drift either.
        read.dingtalk.manager = read
            .expected
            .as_ref()
            .or(oa_user)
            .and_then(|e| e.manager.clone());
    }
    if rules.scopes_dingtalk_users() {
        let mut ancestors = Vec::new();
        for d in u.dept_id_list.iter().flatten() {
            parents.chain(d.0, &mut ancestors);
        }
        if !rules.dingtalk_user_in_scope(&read.dingtalk, &ancestors)? {
            return Ok(None);
        }
    }
    Ok(Some(read))
}

/// One linked entity whose DingTalk values differ from what OA's map to while OA-side values
/// agree: the DingTalk update a changed mapping implies, field by field (old: DingTalk's value
/// now, new: OA's value mapped).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Drift {
    pub(crate) kind: EntityKind,
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) changes: Vec<FieldChange>,
}

fn changes<T: FieldAccess>(fields: &[T::Field], ding: &T, expected: &T) -> Vec<FieldChange> {
    fields
        .iter()
        .map(|f| FieldChange {
            field: T::field_name(*f).to_owned(),
            old: ding.field_json(*f),
            new: expected.field_json(*f),
        })
        .collect()
}

/// The drift of one linked user.
pub(crate) fn drift(read: &ReadUser, oa_user: Option<&User>, rules: &Rules) -> Option<Drift> {
    let (oa, expected) = (oa_user?, read.expected.as_ref()?);
    let fields = rules.user_drift(&read.dingtalk, expected);
    if fields.is_empty() {
        return None;
    }
    Some(Drift {
        kind: EntityKind::User,
        id: oa.id.to_string(),
        name: oa.name.clone(),
        changes: changes(&fields, &read.dingtalk, expected),
    })
}

/// A crawled, linked department in OA's values (read back as OA's while a change of the rules
/// waits for approval), and its drift.
pub(crate) fn read_department(
    d: &wire::dept::DeptDetail,
    ids: &IdMap,
    oa_dept: Option<&Department>,
    reading: &Reading<'_>,
) -> Result<(Department, Option<Drift>), ConvertError> {
    let rules = reading.rules;
    let read = translate::department::read_wire(d, ids, oa_dept, rules)?;
    let back = if reading.pending {
        rules.department_to_oa_pending(read.dingtalk.clone(), oa_dept)?
    } else {
        rules.department_to_oa(read.dingtalk.clone(), oa_dept)?
    };
    let drift = match (oa_dept, &read.expected) {
        (Some(oa), Some(expected)) if oa.parent.is_some() => {
            let fields: Vec<_> = rules
                .department_drift(&read.dingtalk, expected)
                .into_iter()
                .filter(|f| back.field_eq(oa, *f))
                .collect();
            (!fields.is_empty()).then(|| Drift {
                kind: EntityKind::Department,
                id: oa.id.to_string(),
                name: oa.name.clone(),
                changes: changes(&fields, &read.dingtalk, expected),
            })
        }
        _ => None,
    };
    Ok((back, drift))
}

/// Takes the OA entities out of `[scope.to_dingtalk]` out of `oa`; returns the items of those
/// whose predicate failed to evaluate, which leave both snapshots (nothing is planned for them).
pub(crate) fn oa_in_scope(oa: &mut Snapshot, ding: &mut Snapshot, rules: &Rules) -> Vec<PlanItem> {
    let mut problems = Vec::new();
    if rules.scopes_oa_departments() {
        let keep: Vec<(OaDeptId, Result<bool, mapping::MapError>)> = oa
            .departments
            .values()
            .map(|d| {
                let chain = oa_chain(oa, d.id);
                let root = d.parent.is_none();
                (
                    d.id,
                    if root {
                        Ok(true)
                    } else {
                        rules.oa_department_in_scope(d, &chain)
                    },
                )
            })
            .collect();
        for (id, verdict) in keep {
            let in_scope = matches!(verdict, Ok(true));
            if let Some(item) = verdict_item(verdict, EntityKind::Department, &id.to_string()) {
                problems.push(item);
                ding.departments.remove(&id);
            }
            if !in_scope {
                oa.departments.remove(&id);
            }
        }
    }
    if rules.scopes_oa_users() {
        let verdicts: Vec<(directory_model::OaUserId, Result<bool, mapping::MapError>)> = oa
            .users
            .values()
            .map(|u| {
                let mut ancestors = Vec::new();
                for m in &u.departments {
                    for d in oa_chain(oa, m.dept) {
                        if !ancestors.contains(&d) {
                            ancestors.push(d);
                        }
                    }
                }
                (u.id.clone(), rules.oa_user_in_scope(u, &ancestors))
            })
            .collect();
        for (id, verdict) in verdicts {
            let keep = matches!(verdict, Ok(true));
            if let Some(item) = verdict_item(verdict, EntityKind::User, id.as_str()) {
                problems.push(item);
                ding.users.remove(&id);
            }
            if !keep {
                oa.users.remove(&id);
            }
        }
    }
    problems
}

fn verdict_item(
    verdict: Result<bool, mapping::MapError>,
    kind: EntityKind,
    id: &str,
) -> Option<PlanItem> {
    let e = verdict.err()?;
    Some(PlanItem {
        problems: vec![format!(
            "the scope failed for this entity: {}",
            crate::error_chain(&e)
        )],
        ..PlanItem::new(
            Target::DingTalk,
            Action::Update,
            kind,
            Some(id.to_owned()),
            String::new(),
        )
    })
}

/// An OA department and the departments above it, self first.
fn oa_chain(oa: &Snapshot, id: OaDeptId) -> Vec<OaDeptId> {
    let mut chain = Vec::new();
    let mut cur = Some(id);
    while let Some(c) = cur {
        if chain.contains(&c) || chain.len() > 10_000 {
            break;
        }
        chain.push(c);
        cur = oa.departments.get(&c).and_then(|d| d.parent);
    }
    chain
}

/// Adds the DingTalk updates drift implies (only for entities in OA's scope: one out of it is
/// not pushed). An entity with a DingTalk-side update already gets the drifted fields added to
/// it, so the plan lists every field the push changes; one being created or deleted there
/// needs nothing more.
pub(crate) fn add_drift(drift: Vec<Drift>, items: &mut Vec<PlanItem>, oa: &Snapshot) {
    for d in drift {
        let in_oa = match d.kind {
            EntityKind::User => oa
                .users
                .contains_key(&directory_model::OaUserId::new(d.id.as_str())),
            _ => <Department as crate::kind::SyncedKind>::parse_id(&d.id)
                .is_some_and(|id| oa.departments.contains_key(&id)),
        };
        if !in_oa {
            continue;
        }
        let existing = items.iter_mut().find(|i| {
            i.kind == d.kind
                && i.target == Target::DingTalk
                && i.oa_id.as_deref() == Some(d.id.as_str())
        });
        match existing {
            Some(item) if item.action == Action::Update => {
                // Fields shown with values keep them; a drifted field is added with its own.
                let with_values = item.changes.len() == item.fields.len();
                for c in d.changes {
                    if item.fields.contains(&c.field) {
                        continue;
                    }
                    item.fields.push(c.field.clone());
                    if with_values {
                        item.changes.push(c);
                    }
                }
            }
            Some(_) => {}
            None => items.push(PlanItem {
                fields: d.changes.iter().map(|c| c.field.clone()).collect(),
                changes: d.changes,
                ..PlanItem::new(Target::DingTalk, Action::Update, d.kind, Some(d.id), d.name)
            }),
        }
    }
}
