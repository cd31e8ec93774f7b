//! The [`LoadPlan`] and its [`LoadDiff`] against the directory as it is.
//!
//! The binary must make a re-run of the same file a no-op, and must not wipe what the file does
//! not speak about (a remark typed in the console, a department's order, DingTalk-side
//! managers). So the diff starts from the *current* entity and overwrites only the fields the
//! config maps to a column; an entity whose result equals its current state is left alone.
//! Entities the file does not mention are listed, never deleted: a first load is not a sync.

use std::collections::BTreeMap;

use directory_model::{Department, Membership, OaDeptId, OaUserId, User, UserField};

use crate::config::{DeptSource, LoadConfig};
use crate::departments::PlannedDepartment;

/// One user read from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedUser {
    /// The row it came from (as the spreadsheet shows it).
    pub row: usize,
    /// The user (fields the config does not map are at their defaults).
    pub user: User,
}

/// What the file describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadPlan {
    /// The existing root department the paths hang under.
    pub root: OaDeptId,
    /// Departments, every parent before its children (empty when the file gives ids).
    pub departments: Vec<PlannedDepartment>,
    /// Users, every manager before the users they manage.
    pub users: Vec<PlannedUser>,
    /// The user fields the file governs (mapped to a column); the others keep their value.
    pub user_fields: Vec<UserField>,
    /// The extension keys the file governs.
    pub extension_keys: Vec<String>,
    /// Whether the file names departments by numeric id (which must already exist).
    pub departments_by_id: bool,
}

/// What writing the plan would change, in the order to write it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadDiff {
    /// New departments, parent first.
    pub create_departments: Vec<Department>,
    /// Existing departments with a new name or parent (the current entity, updated).
    pub update_departments: Vec<Department>,
    /// New users, each manager first.
    pub create_users: Vec<User>,
    /// Existing users with changed fields (the current entity, updated).
    pub update_users: Vec<User>,
    /// Departments of the directory the file does not mention (left alone).
    pub departments_not_in_file: Vec<OaDeptId>,
    /// Users of the directory the file does not mention (left alone).
    pub users_not_in_file: Vec<OaUserId>,
    /// `(row, id)` of department ids the file names that the directory does not have.
    pub unknown_departments: Vec<(usize, OaDeptId)>,
    /// Planned department ids mapped onto existing departments of the same name and parent.
    pub adopted_departments: BTreeMap<OaDeptId, OaDeptId>,
}

impl LoadDiff {
    /// Whether writing would change nothing.
    pub fn is_noop(&self) -> bool {
        self.create_departments.is_empty()
            && self.update_departments.is_empty()
            && self.create_users.is_empty()
            && self.update_users.is_empty()
    }
}

impl LoadPlan {
    pub(crate) fn empty(root: OaDeptId) -> Self {
        Self {
            root,
            departments: Vec::new(),
            users: Vec::new(),
            user_fields: Vec::new(),
            extension_keys: Vec::new(),
            departments_by_id: false,
        }
    }

    pub(crate) fn new(
        root: OaDeptId,
        departments: Vec<PlannedDepartment>,
        users: Vec<PlannedUser>,
        config: &LoadConfig,
    ) -> Self {
        let c = &config.columns;
        let mut fields = vec![
            UserField::Name,
            UserField::Mobile,
            UserField::Departments,
            UserField::MainDepartment,
        ];
        for (field, mapped) in [
            (UserField::Email, c.email.is_some()),
            (UserField::JobNumber, c.job_number.is_some()),
            (UserField::Manager, c.manager_id.is_some()),
            (UserField::HiredDateMs, c.hired_date.is_some()),
            (UserField::Extension, !c.extension.is_empty()),
        ] {
            if mapped {
                fields.push(field);
            }
        }
        Self {
            root,
            departments,
            users,
            user_fields: fields,
            extension_keys: c.extension.keys().cloned().collect(),
            departments_by_id: matches!(config.dept_source(), Some(DeptSource::Id(_))),
        }
    }

    /// What writing this plan over the `current` directory would change.
    pub fn diff(&self, current_departments: &[Department], current_users: &[User]) -> LoadDiff {
        let mut diff = LoadDiff::default();
        let by_id: BTreeMap<OaDeptId, &Department> =
            current_departments.iter().map(|d| (d.id, d)).collect();
        let by_place: BTreeMap<(Option<OaDeptId>, &str), OaDeptId> = current_departments
            .iter()
            .map(|d| ((d.parent, d.name.as_str()), d.id))
            .collect();
        let mut remap: BTreeMap<OaDeptId, OaDeptId> = BTreeMap::new();
        let map =
            |remap: &BTreeMap<OaDeptId, OaDeptId>, id: OaDeptId| *remap.get(&id).unwrap_or(&id);
        for planned in &self.departments {
            let mut wanted = planned.department.clone();
            wanted.parent = wanted.parent.map(|p| map(&remap, p));
            if let Some(current) = by_id.get(&wanted.id) {
                if current.name != wanted.name || current.parent != wanted.parent {
                    let mut updated = (*current).clone();
                    updated.name = wanted.name;
                    updated.parent = wanted.parent;
                    diff.update_departments.push(updated);
                }
            } else if let Some(existing) = by_place.get(&(wanted.parent, wanted.name.as_str())) {
                // Made by hand or by the API before the first load: use it, don't duplicate it.
                remap.insert(wanted.id, *existing);
            } else {
                diff.create_departments.push(wanted);
            }
        }
        // The file mentions a department by its path or, in id mode, by a user's membership.
        let planned_ids: BTreeMap<OaDeptId, ()> = self
            .departments
            .iter()
            .map(|d| d.department.id)
            .chain(self.users.iter().flat_map(|u| u.user.department_ids()))
            .map(|id| (map(&remap, id), ()))
            .collect();
        diff.departments_not_in_file = current_departments
            .iter()
            .filter(|d| d.id != self.root && !planned_ids.contains_key(&d.id))
            .map(|d| d.id)
            .collect();
        self.diff_users(current_users, &by_id, &remap, &mut diff);
        diff.adopted_departments = remap;
        diff
    }

    fn diff_users(
        &self,
        current_users: &[User],
        departments: &BTreeMap<OaDeptId, &Department>,
        remap: &BTreeMap<OaDeptId, OaDeptId>,
        diff: &mut LoadDiff,
    ) {
        let current: BTreeMap<&OaUserId, &User> =
            current_users.iter().map(|u| (&u.id, u)).collect();
        for planned in &self.users {
            let mut wanted = planned.user.clone();
            for m in &mut wanted.departments {
                m.dept = *remap.get(&m.dept).unwrap_or(&m.dept);
                if self.departments_by_id
                    && m.dept != self.root
                    && !departments.contains_key(&m.dept)
                {
                    diff.unknown_departments.push((planned.row, m.dept));
                }
            }
            wanted.main_department = wanted.main_department.map(|d| *remap.get(&d).unwrap_or(&d));
            match current.get(&wanted.id) {
                None => diff.create_users.push(wanted),
                Some(existing) => {
                    let updated = self.overlay(existing, wanted);
                    if updated != **existing {
                        diff.update_users.push(updated);
                    }
                }
            }
        }
        let planned: BTreeMap<&OaUserId, ()> =
            self.users.iter().map(|u| (&u.user.id, ())).collect();
        diff.users_not_in_file = current_users
            .iter()
            .filter(|u| !planned.contains_key(&u.id))
            .map(|u| u.id.clone())
            .collect();
    }

    /// The current user with the governed fields taken from the file.
    fn overlay(&self, current: &User, wanted: User) -> User {
        let mut out = current.clone();
        for field in &self.user_fields {
            match field {
                UserField::Departments => {
                    out.departments =
                        merge_memberships(&current.departments, wanted.departments.clone());
                }
                UserField::Extension => {
                    for key in &self.extension_keys {
                        match wanted.extension.get(key) {
                            Some(v) => out.extension.insert(key.clone(), v.clone()),
                            None => out.extension.remove(key),
                        };
                    }
                }
                other => directory_model::FieldAccess::copy_field(&mut out, &wanted, *other),
            }
        }
        out
    }
}

/// The file's memberships, keeping each existing one's order, and the current list as it is
/// when the two agree as sets (so a re-run does not reorder).
fn merge_memberships(current: &[Membership], wanted: Vec<Membership>) -> Vec<Membership> {
    let merged: Vec<Membership> = wanted
        .into_iter()
        .map(|mut m| {
            if let Some(c) = current.iter().find(|c| c.dept == m.dept) {
                m.order = c.order;
            }
            m
        })
        .collect();
    let key = |list: &[Membership]| {
        let mut k: Vec<(OaDeptId, Option<String>, i64)> = list
            .iter()
            .map(|m| (m.dept, m.title.clone(), m.order))
            .collect();
        k.sort();
        k
    };
    if key(current) == key(&merged) {
        current.to_vec()
    } else {
        merged
    }
}
