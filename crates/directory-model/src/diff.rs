//! Snapshots of a whole directory and the difference between two of them.
//!
//! Reconcile and `dingsync plan` compare the OA directory with DingTalk's (translated into OA ids
//! through the id map) and print what would be created, changed and deleted. The diff is keyed by
//! id, so a renamed department is "changed (name)", not "deleted + created". Everything is held in
//! `BTreeMap`s so that a diff is deterministic and prints in a stable order.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::entity::{Department, Role, RoleAssignment, RoleGroup, User};
use crate::fields::FieldAccess;
use crate::ids::{OaDeptId, OaRoleGroupId, OaRoleId, OaUserId};

/// An entity that carries its own id.
pub trait Identified {
    /// The id type.
    type Id: Ord + Clone + std::fmt::Debug;
    /// The entity's id.
    fn id(&self) -> &Self::Id;
}

impl Identified for Department {
    type Id = OaDeptId;
    fn id(&self) -> &OaDeptId {
        &self.id
    }
}

impl Identified for User {
    type Id = OaUserId;
    fn id(&self) -> &OaUserId {
        &self.id
    }
}

impl Identified for RoleGroup {
    type Id = OaRoleGroupId;
    fn id(&self) -> &OaRoleGroupId {
        &self.id
    }
}

impl Identified for Role {
    type Id = OaRoleId;
    fn id(&self) -> &OaRoleId {
        &self.id
    }
}

/// A whole directory at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Departments by id.
    pub departments: BTreeMap<OaDeptId, Department>,
    /// Users by id.
    pub users: BTreeMap<OaUserId, User>,
    /// Role groups by id.
    pub role_groups: BTreeMap<OaRoleGroupId, RoleGroup>,
    /// Roles by id.
    pub roles: BTreeMap<OaRoleId, Role>,
    /// Who holds which role.
    pub assignments: BTreeSet<RoleAssignment>,
}

impl Snapshot {
    /// Builds a snapshot from lists (a later duplicate id replaces an earlier one).
    pub fn from_parts(
        departments: impl IntoIterator<Item = Department>,
        users: impl IntoIterator<Item = User>,
        role_groups: impl IntoIterator<Item = RoleGroup>,
        roles: impl IntoIterator<Item = Role>,
        assignments: impl IntoIterator<Item = RoleAssignment>,
    ) -> Self {
        Self {
            departments: keyed(departments),
            users: keyed(users),
            role_groups: keyed(role_groups),
            roles: keyed(roles),
            assignments: assignments.into_iter().collect(),
        }
    }

    /// What it takes to turn `self` into `target`.
    pub fn diff(&self, target: &Snapshot) -> SnapshotDiff {
        SnapshotDiff {
            departments: diff_entities(&self.departments, &target.departments),
            users: diff_entities(&self.users, &target.users),
            role_groups: diff_entities(&self.role_groups, &target.role_groups),
            roles: diff_entities(&self.roles, &target.roles),
            assignments: SetDiff {
                added: target
                    .assignments
                    .difference(&self.assignments)
                    .cloned()
                    .collect(),
                removed: self
                    .assignments
                    .difference(&target.assignments)
                    .cloned()
                    .collect(),
            },
        }
    }
}

fn keyed<T: Identified>(items: impl IntoIterator<Item = T>) -> BTreeMap<T::Id, T> {
    items.into_iter().map(|t| (t.id().clone(), t)).collect()
}

/// One entity present on both sides with different field values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changed<I, F> {
    /// The entity.
    pub id: I,
    /// The fields that differ, in declaration order.
    pub fields: Vec<F>,
}

/// Created, changed and deleted entities of one kind, each list sorted by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityDiff<I, F> {
    /// Present only in the target.
    pub created: Vec<I>,
    /// Present in both, with differences.
    pub changed: Vec<Changed<I, F>>,
    /// Present only in the source.
    pub deleted: Vec<I>,
}

impl<I, F> EntityDiff<I, F> {
    /// Whether nothing differs.
    pub fn is_empty(&self) -> bool {
        self.created.is_empty() && self.changed.is_empty() && self.deleted.is_empty()
    }
}

/// Added and removed members of a set (role assignments).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetDiff<T> {
    /// Present only in the target.
    pub added: Vec<T>,
    /// Present only in the source.
    pub removed: Vec<T>,
}

/// The difference between two snapshots, per entity kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotDiff {
    /// Departments.
    pub departments: EntityDiff<OaDeptId, <Department as FieldAccess>::Field>,
    /// Users.
    pub users: EntityDiff<OaUserId, <User as FieldAccess>::Field>,
    /// Role groups.
    pub role_groups: EntityDiff<OaRoleGroupId, <RoleGroup as FieldAccess>::Field>,
    /// Roles.
    pub roles: EntityDiff<OaRoleId, <Role as FieldAccess>::Field>,
    /// Role assignments.
    pub assignments: SetDiff<RoleAssignment>,
}

impl SnapshotDiff {
    /// Whether the two snapshots were equal.
    pub fn is_empty(&self) -> bool {
        self.departments.is_empty()
            && self.users.is_empty()
            && self.role_groups.is_empty()
            && self.roles.is_empty()
            && self.assignments.added.is_empty()
            && self.assignments.removed.is_empty()
    }
}

/// Diffs two id-keyed maps of one entity kind.
pub fn diff_entities<I: Ord + Clone, T: FieldAccess>(
    from: &BTreeMap<I, T>,
    to: &BTreeMap<I, T>,
) -> EntityDiff<I, T::Field> {
    let mut diff = EntityDiff {
        created: Vec::new(),
        changed: Vec::new(),
        deleted: Vec::new(),
    };
    for (id, new) in to {
        match from.get(id) {
            None => diff.created.push(id.clone()),
            Some(old) => {
                let fields = old.changed_fields(new);
                if !fields.is_empty() {
                    diff.changed.push(Changed {
                        id: id.clone(),
                        fields,
                    });
                }
            }
        }
    }
    diff.deleted = from
        .keys()
        .filter(|id| !to.contains_key(*id))
        .cloned()
        .collect();
    diff
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::{DeptField, UserField};

    fn dept(id: i64, name: &str) -> Department {
        Department::new(OaDeptId(id), name, Some(OaDeptId(1)))
    }

    #[test]
    fn diff_reports_created_changed_deleted_per_kind() {
        let u = User::new(OaUserId::new("u1"), "U1", &[OaDeptId(2)]);
        let a = Snapshot::from_parts(
            [dept(2, "A"), dept(3, "B")],
            [u.clone()],
            [],
            [],
            [RoleAssignment {
                user: OaUserId::new("u1"),
                role: OaRoleId(1),
            }],
        );
        let mut u2 = u.clone();
        u2.email = Some("u1@x.cn".into());
        let mut a2 = dept(2, "A2");
        a2.order = 5;
        let b = Snapshot::from_parts(
            [a2, dept(4, "C")],
            [u2],
            [],
            [],
            [RoleAssignment {
                user: OaUserId::new("u1"),
                role: OaRoleId(2),
            }],
        );
        let d = a.diff(&b);
        assert_eq!(d.departments.created, vec![OaDeptId(4)]);
        assert_eq!(d.departments.deleted, vec![OaDeptId(3)]);
        assert_eq!(
            d.departments.changed,
            vec![Changed {
                id: OaDeptId(2),
                fields: vec![DeptField::Name, DeptField::Order]
            }]
        );
        assert_eq!(d.users.changed[0].fields, vec![UserField::Email]);
        assert_eq!(d.assignments.added[0].role, OaRoleId(2));
        assert_eq!(d.assignments.removed[0].role, OaRoleId(1));
        assert!(!d.is_empty());
        assert!(a.diff(&a).is_empty());
    }
}
