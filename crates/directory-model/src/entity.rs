//! The OA directory's entities.
//!
//! These are the OA side's view of a department, user, role group, role and role assignment,
//! keyed by OA ids. DingTalk-side state is converted into the same shapes (with ids translated
//! through the id map) before it is diffed or merged, so one set of types describes both sides.
//! Bookkeeping that only the store cares about (row versions, timestamps) lives in the store.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::fields::entity_fields;
use crate::ids::{OaDeptId, OaRoleGroupId, OaRoleId, OaUserId};

/// A department of the OA directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Department {
    /// The OA id.
    pub id: OaDeptId,
    /// Display name: 1–64 characters, no `-`, `,` or `，` (DingTalk error 60001 / 60009).
    pub name: String,
    /// The parent department; `None` only for the root (DingTalk department 1).
    pub parent: Option<OaDeptId>,
    /// Sort key among siblings; a smaller value sorts first (DingTalk department semantics).
    pub order: i64,
    /// The department's managers (DingTalk `dept_manager_userid_list`).
    pub managers: Vec<OaUserId>,
    /// DingTalk's free-text external key. dingsync sets it to the OA id so that a retried create
    /// can find the department it already created (design invariant 3).
    pub source_identifier: Option<String>,
    /// Hidden from the contacts list (DingTalk `hide_dept`).
    pub hide: bool,
    /// Members see only this department (DingTalk `outer_dept`).
    pub outer: bool,
}

entity_fields!(Department,
    /// A field of [`Department`].
    DeptField {
        Name => name,
        Parent => parent,
        Order => order,
        Managers => managers,
        SourceIdentifier => source_identifier,
        Hide => hide,
        Outer => outer,
    }
);

/// The prefix of the marker a department created by dingsync carries in `source_identifier`.
const MARKER_PREFIX: &str = "dingsync:";

/// The marker a department created by dingsync carries in `source_identifier`:
/// `dingsync:<oa id>`, so that a retried create finds the department it already created.
pub fn source_marker(id: OaDeptId) -> String {
    format!("{MARKER_PREFIX}{id}")
}

/// The OA id a `dingsync:<id>` source identifier names, if it is one.
pub fn marked_oa_id(source_identifier: Option<&str>) -> Option<OaDeptId> {
    source_identifier?
        .strip_prefix(MARKER_PREFIX)?
        .parse()
        .ok()
        .map(OaDeptId)
}

impl Department {
    /// Whether `source_identifier` is dingsync's own marker for this department.
    pub fn carries_own_marker(&self) -> bool {
        marked_oa_id(self.source_identifier.as_deref()) == Some(self.id)
    }

    /// The same department with managers sorted, for comparisons where DingTalk may list them
    /// in another order than the OA system did.
    pub fn normalized(mut self) -> Self {
        self.managers.sort();
        self.managers.dedup();
        self
    }

    /// A visible department with no managers, order 0 and no source identifier.
    pub fn new(id: OaDeptId, name: impl Into<String>, parent: Option<OaDeptId>) -> Self {
        Self {
            id,
            name: name.into(),
            parent,
            order: 0,
            managers: Vec::new(),
            source_identifier: None,
            hide: false,
            outer: false,
        }
    }
}

/// A user's membership of one department.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The department.
    pub dept: OaDeptId,
    /// The user's title in that department (≤ 200 characters).
    pub title: Option<String>,
    /// Sort key of the user within the department. DingTalk sorts a *larger* user order first,
    /// the opposite of department order.
    pub order: i64,
}

impl Membership {
    /// A membership with no title and order 0.
    pub fn new(dept: OaDeptId) -> Self {
        Self {
            dept,
            title: None,
            order: 0,
        }
    }
}

/// A mobile number split the way DingTalk reports it (`state_code` + `mobile`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Mobile {
    /// The country calling code without `+`, e.g. `86`.
    pub country_code: String,
    /// The national number, digits only.
    pub number: String,
}

impl Mobile {
    /// A mainland China number (`country_code` 86).
    pub fn mainland(number: impl Into<String>) -> Self {
        Self {
            country_code: "86".to_owned(),
            number: number.into(),
        }
    }

    /// Splits the text form DingTalk accepts on create: `+xx-xxxx` or a plain mainland number.
    ///
    /// This only splits; [`crate::validate`] decides whether the parts are acceptable, so that
    /// a bad number is reported together with every other problem of the same request.
    pub fn parse(text: &str) -> Self {
        match text.strip_prefix('+').and_then(|rest| rest.split_once('-')) {
            Some((code, number)) => Self {
                country_code: code.to_owned(),
                number: number.to_owned(),
            },
            None => Self::mainland(text),
        }
    }

    /// The text form DingTalk accepts on create: a plain number for mainland China, else
    /// `+code-number`.
    pub fn to_dingtalk(&self) -> String {
        if self.country_code == "86" {
            self.number.clone()
        } else {
            format!("+{}-{}", self.country_code, self.number)
        }
    }
}

/// Whether a user is still employed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UserState {
    /// Employed (the default).
    #[default]
    Active,
    /// Has left the organisation; kept for history, removed from DingTalk.
    Left,
}

/// A user (employee) of the OA directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The OA id; dingsync uses it as the DingTalk `userid` when it creates the user.
    pub id: OaUserId,
    /// Display name (1–80 characters).
    pub name: String,
    /// Department memberships, in the order the OA system gave them (1–100 entries).
    pub departments: Vec<Membership>,
    /// The main department; must be one of `departments`.
    pub main_department: Option<OaDeptId>,
    /// The direct manager.
    pub manager: Option<OaUserId>,
    /// Employee number (≤ 50 characters).
    pub job_number: Option<String>,
    /// Mobile number, unique in the organisation (DingTalk requires one on create).
    pub mobile: Option<Mobile>,
    /// Email (≤ 50 characters, unique).
    pub email: Option<String>,
    /// Organisation email (≤ 100 characters).
    pub org_email: Option<String>,
    /// Telephone extension (≤ 50 characters).
    pub telephone: Option<String>,
    /// Work place (≤ 100 characters).
    pub work_place: Option<String>,
    /// Hire date as Unix milliseconds.
    pub hired_date_ms: Option<i64>,
    /// Free-text remark (≤ 2000 characters).
    pub remark: Option<String>,
    /// Extension attributes; their JSON encoding is limited to 2000 characters.
    pub extension: BTreeMap<String, String>,
    /// Employed or left.
    pub state: UserState,
}

entity_fields!(User,
    /// A field of [`User`].
    UserField {
        Name => name,
        Departments => departments,
        MainDepartment => main_department,
        Manager => manager,
        JobNumber => job_number,
        Mobile => mobile,
        Email => email,
        OrgEmail => org_email,
        Telephone => telephone,
        WorkPlace => work_place,
        HiredDateMs => hired_date_ms,
        Remark => remark,
        Extension => extension,
        State => state,
    }
);

impl User {
    /// An active user in the given departments (the first becomes the main department), with
    /// every optional field empty.
    pub fn new(id: OaUserId, name: impl Into<String>, departments: &[OaDeptId]) -> Self {
        Self {
            id,
            name: name.into(),
            departments: departments.iter().copied().map(Membership::new).collect(),
            main_department: departments.first().copied(),
            manager: None,
            job_number: None,
            mobile: None,
            email: None,
            org_email: None,
            telephone: None,
            work_place: None,
            hired_date_ms: None,
            remark: None,
            extension: BTreeMap::new(),
            state: UserState::Active,
        }
    }

    /// The same user with memberships sorted by department, for comparisons where DingTalk
    /// may list departments in another order than the OA system did (the main department is a
    /// field of its own, so the order carries no meaning).
    pub fn normalized(mut self) -> Self {
        self.departments.sort_by_key(|m| m.dept);
        self
    }

    /// The ids of the departments the user belongs to.
    pub fn department_ids(&self) -> impl Iterator<Item = OaDeptId> + '_ {
        self.departments.iter().map(|m| m.dept)
    }
}

/// A role group (DingTalk's grouping of roles, "角色组").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleGroup {
    /// The OA id.
    pub id: OaRoleGroupId,
    /// Display name.
    pub name: String,
}

entity_fields!(RoleGroup,
    /// A field of [`RoleGroup`].
    RoleGroupField {
        Name => name,
    }
);

/// A role (DingTalk calls roles "labels" in events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// The OA id.
    pub id: OaRoleId,
    /// The group the role belongs to.
    pub group: OaRoleGroupId,
    /// Display name, unique within its group (DingTalk 34021 "role name exists").
    pub name: String,
}

entity_fields!(Role,
    /// A field of [`Role`].
    RoleField {
        Group => group,
        Name => name,
    }
);

/// One user holding one role. Assignments have no fields besides their identity, so they are
/// diffed as a set rather than merged.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RoleAssignment {
    /// The user.
    pub user: OaUserId,
    /// The role.
    pub role: OaRoleId,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::FieldAccess;

    /// Every serialized key except `id` must be a field, or diff and merge would ignore it.
    fn assert_fields_cover<T: FieldAccess + Serialize>(sample: &T) {
        let json = serde_json::to_value(sample).unwrap();
        let mut keys: Vec<String> = json
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| k.as_str() != "id")
            .cloned()
            .collect();
        keys.sort();
        let mut names: Vec<String> = T::all_fields()
            .iter()
            .map(|f| T::field_name(*f).to_owned())
            .collect();
        names.sort();
        assert_eq!(keys, names);
        // The serde name of each field variant matches the struct field name.
        for f in T::all_fields() {
            assert_eq!(serde_json::to_value(f).unwrap(), T::field_name(*f));
        }
    }

    #[test]
    fn field_lists_cover_every_serialized_field() {
        assert_fields_cover(&Department::new(OaDeptId(2), "R&D", Some(OaDeptId(1))));
        assert_fields_cover(&User::new(OaUserId::new("u"), "U", &[OaDeptId(1)]));
        assert_fields_cover(&RoleGroup {
            id: OaRoleGroupId(1),
            name: "g".into(),
        });
        assert_fields_cover(&Role {
            id: OaRoleId(1),
            group: OaRoleGroupId(1),
            name: "r".into(),
        });
    }

    #[test]
    fn copy_field_copies_only_that_field() {
        let a = Department::new(OaDeptId(2), "A", Some(OaDeptId(1)));
        let mut b = a.clone();
        b.name = "B".into();
        b.order = 9;
        let mut c = a.clone();
        c.copy_field(&b, DeptField::Name);
        assert_eq!(c.name, "B");
        assert_eq!(c.order, 0);
        assert_eq!(
            a.changed_fields(&b),
            vec![DeptField::Name, DeptField::Order]
        );
    }

    #[test]
    fn normalized_ignores_list_order() {
        let a = User::new(OaUserId::new("u"), "U", &[OaDeptId(3), OaDeptId(2)]);
        let b = User::new(OaUserId::new("u"), "U", &[OaDeptId(2), OaDeptId(3)]);
        assert_ne!(a, b);
        let (mut a, mut b) = (a.normalized(), b.normalized());
        a.main_department = None;
        b.main_department = None;
        assert_eq!(a, b);
        let mut d = Department::new(OaDeptId(2), "D", Some(OaDeptId(1)));
        d.managers = vec![OaUserId::new("b"), OaUserId::new("a"), OaUserId::new("b")];
        assert_eq!(
            d.normalized().managers,
            vec![OaUserId::new("a"), OaUserId::new("b")]
        );
    }

    #[test]
    fn mobile_parses_and_formats_both_forms() {
        assert_eq!(
            Mobile::parse("18513027676"),
            Mobile::mainland("18513027676")
        );
        let hk = Mobile::parse("+852-91234567");
        assert_eq!(hk.country_code, "852");
        assert_eq!(hk.number, "91234567");
        assert_eq!(hk.to_dingtalk(), "+852-91234567");
        assert_eq!(Mobile::mainland("18513027676").to_dingtalk(), "18513027676");
    }
}
