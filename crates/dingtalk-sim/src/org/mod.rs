//! The simulated organization: departments, users, role groups, roles and memberships, with
//! DingTalk's rules.
//!
//! Everything that changes the org goes through an `Org` method that first validates (answering
//! the documented error code and changing nothing) and then mutates. The DingTalk API routes and
//! the `/_sim` admin routes call the same methods, so an administrator's change obeys exactly the
//! same rules as an API write. Each successful write appends a [`Change`] to a queue that the
//! server drains after the call; those become the pushed contacts events.
//!
//! The org holds its own seeded RNG for the ids DingTalk generates (department ids, role ids,
//! userids, unionids), so a run with the same seed and the same calls produces the same ids.
//! Department and role ids come from monotonic counters with random gaps: large, increasing and
//! never reused, like DingTalk's.
//!
//! Choices where `dingtalk-api.md` says UNCONFIRMED (the stricter plausible behaviour, always):
//! - department depth is limited to [`MAX_DEPTH`] levels below the root (60002);
//! - a userid is 1–64 characters of `[A-Za-z0-9_.@-]` (40003 otherwise);
//! - `v2/user/update` with `dept_id_list` *replaces* the user's memberships (leaving a
//!   department also drops the user from that department's manager list);
//! - `mobile` is not an update field (the update page does not list it), so it is ignored there;
//! - a user's `manager_userid` must name an existing user (60121);
//! - deleting a role that still has members is refused with 1002;
//! - the built-in "默认" group takes no new roles and its roles cannot be renamed, deleted or
//!   assigned (23004);
//! - a `telephone` is unique in the org like the mobile (the create page says so; no code is
//!   documented, so 40035);
//! - users created through the API are not activated (`active:false`) until they log in, which
//!   a simulator never does.

pub(crate) mod dept;
pub(crate) mod legacy_contacts;
pub(crate) mod role;
pub(crate) mod union;
pub(crate) mod user;
mod user_diff;
pub(crate) mod user_fields;
mod user_read;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

/// Deepest allowed department level below root 1 (root's children are level 1).
pub const MAX_DEPTH: usize = 15;

/// Root department id, fixed by DingTalk.
pub const ROOT_DEPT: i64 = 1;

/// Name of DingTalk's built-in role group.
pub const BUILTIN_GROUP: &str = "默认";

/// Roles of the built-in group.
pub const BUILTIN_ROLES: [&str; 4] = ["负责人", "主管", "主管理员", "子管理员"];

/// A department. Fields mirror `department/get`'s payload (same names where DingTalk's are
/// plain); those without a comment are stored only to be answered back, as DingTalk does.
#[derive(Debug, Clone)]
pub struct Dept {
    /// DingTalk-assigned id (1 for the root).
    pub id: i64,
    /// Unique among siblings (the duplicate-name rule).
    pub name: String,
    /// Parent id; 0 for the root.
    pub parent_id: i64,
    /// Sort key among siblings (smaller first).
    pub order: i64,
    /// The caller's own key for the department, so a retried create can be recognised.
    pub source_identifier: Option<String>,
    pub create_dept_group: bool,
    pub auto_add_user: bool,
    pub hide_dept: bool,
    pub outer_dept: bool,
    pub outer_dept_only_self: bool,
    pub dept_permits: Vec<i64>,
    pub user_permits: Vec<String>,
    pub outer_permit_depts: Vec<i64>,
    pub outer_permit_users: Vec<String>,
    /// `dept_manager_userid_list`; also decides `leader`/`leader_in_dept` of users.
    pub manager_userids: Vec<String>,
    pub org_dept_owner: Option<String>,
    pub group_contain_sub_dept: bool,
    pub code: Option<String>,
    /// Child department ids, kept here so listing children does not scan every department.
    pub children: BTreeSet<i64>,
    /// Direct members, kept here so listing a department does not scan every user.
    pub members: BTreeSet<String>,
}

impl Dept {
    pub(crate) fn new(id: i64, name: String, parent_id: i64) -> Self {
        Self {
            id,
            name,
            parent_id,
            order: 0,
            source_identifier: None,
            create_dept_group: false,
            auto_add_user: false,
            hide_dept: false,
            outer_dept: false,
            outer_dept_only_self: false,
            dept_permits: Vec::new(),
            user_permits: Vec::new(),
            outer_permit_depts: Vec::new(),
            outer_permit_users: Vec::new(),
            manager_userids: Vec::new(),
            org_dept_owner: None,
            group_contain_sub_dept: false,
            code: None,
            children: BTreeSet::new(),
            members: BTreeSet::new(),
        }
    }
}

/// A user (an employee in the org). Fields mirror `v2/user/get`'s payload; those without a
/// comment are stored only to be answered back.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// Unique and immutable; never reused, even after the user leaves.
    pub userid: String,
    /// Generated once; stable across updates.
    pub unionid: String,
    pub name: String,
    /// Country code, split from the mobile number as DingTalk's responses do.
    pub state_code: String,
    /// National number; unique together with `state_code`.
    pub mobile: String,
    pub hide_mobile: bool,
    /// Unique in the org when set.
    pub telephone: Option<String>,
    pub job_number: Option<String>,
    pub title: Option<String>,
    /// Unique in the org (case-insensitive) when set.
    pub email: Option<String>,
    pub org_email: Option<String>,
    pub work_place: Option<String>,
    pub remark: Option<String>,
    /// Departments in the order they were given.
    pub dept_ids: Vec<i64>,
    /// Per-department order (larger first, per the update page).
    pub dept_order: BTreeMap<i64, i64>,
    /// Per-department title.
    pub dept_title: BTreeMap<i64, String>,
    /// Custom fields; answered as a JSON *string*, as DingTalk does.
    pub extension: Option<Map<String, Value>>,
    /// Milliseconds since the epoch.
    pub hired_date: Option<i64>,
    /// Must name a current user; cleared when that user leaves.
    pub manager_userid: Option<String>,
    pub login_email: Option<String>,
    pub senior: bool,
    /// Whether the user has logged in; `user/count` with `only_active` counts these.
    pub active: bool,
    pub admin: bool,
    pub boss: bool,
    /// Role ids, mirrored by `Role::members` (both sides kept in step).
    pub roles: BTreeSet<i64>,
    /// When the user joined (a sequence number), for `order_field=entry_*`.
    pub entry_seq: u64,
    /// When the user last changed (a sequence number), for `order_field=modify_*`.
    pub modify_seq: u64,
}

/// A role group.
#[derive(Debug, Clone)]
pub struct RoleGroup {
    /// Generated from the same id counter as roles.
    pub id: i64,
    pub name: String,
    /// True for the built-in "默认" group, which cannot be changed.
    pub builtin: bool,
    /// Ids of the group's roles, so listing a group does not scan every role.
    pub roles: BTreeSet<i64>,
}

/// A role ("label").
#[derive(Debug, Clone)]
pub struct Role {
    /// Generated from the same id counter as role groups.
    pub id: i64,
    /// Unique within its group.
    pub name: String,
    pub group_id: i64,
    /// True for the roles of the built-in group.
    pub builtin: bool,
    /// Userids holding the role, mirrored by `User::roles`; a role with members cannot be
    /// deleted.
    pub members: BTreeSet<String>,
}

/// One change, in the vocabulary of DingTalk's contacts events.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    UserAdd(Vec<String>),
    /// The users changed, and the event's `diffInfo` (see `user_diff`); one user per event.
    UserModify(Vec<String>, Value),
    UserLeave(Vec<String>),
    DeptCreate(Vec<i64>),
    DeptModify(Vec<i64>),
    DeptRemove(Vec<i64>),
    /// Users gained (`action: "add"`) or lost (`"remove"`) roles.
    LabelMembership {
        users: Vec<String>,
        labels: Vec<i64>,
        action: &'static str,
    },
    LabelConfAdd(Vec<i64>),
    LabelConfDel(Vec<i64>),
    /// A role was renamed; `pre`/`post` are the role before and after.
    LabelConfModify {
        labels: Vec<i64>,
        pre: Vec<Value>,
        post: Vec<Value>,
    },
}

impl Change {
    /// The DingTalk event type name of this change.
    pub fn event_type(&self) -> &'static str {
        match self {
            Change::UserAdd(_) => "user_add_org",
            Change::UserModify(..) => "user_modify_org",
            Change::UserLeave(_) => "user_leave_org",
            Change::DeptCreate(_) => "org_dept_create",
            Change::DeptModify(_) => "org_dept_modify",
            Change::DeptRemove(_) => "org_dept_remove",
            Change::LabelMembership { .. } => "label_user_change",
            Change::LabelConfAdd(_) => "label_conf_add",
            Change::LabelConfDel(_) => "label_conf_del",
            Change::LabelConfModify { .. } => "label_conf_modify",
        }
    }
}

/// The whole simulated org.
#[derive(Debug)]
pub struct Org {
    /// Departments by id; always contains root 1.
    pub(crate) depts: BTreeMap<i64, Dept>,
    /// Current users by userid.
    pub(crate) users: BTreeMap<String, User>,
    /// Users who left, kept so an administrator can rehire them with the same userid.
    pub(crate) departed: BTreeMap<String, User>,
    /// `state_code-mobile` → userid, so the mobile uniqueness rule and `getbymobile` are O(1).
    pub(crate) mobiles: HashMap<String, String>,
    /// Lower-cased email → userid, for the email uniqueness rule.
    pub(crate) emails: HashMap<String, String>,
    /// Telephone → userid, for the telephone uniqueness rule.
    pub(crate) telephones: HashMap<String, String>,
    pub(crate) groups: BTreeMap<i64, RoleGroup>,
    pub(crate) roles: BTreeMap<i64, Role>,
    /// The last department id handed out (ids are monotonic and never reused).
    pub(crate) last_dept_id: i64,
    /// The last role or role group id handed out (one counter, as DingTalk's label ids share a
    /// space).
    pub(crate) last_label_id: i64,
    /// Logical clock for `entry_seq`/`modify_seq`.
    pub(crate) seq: u64,
    /// Source of generated ids.
    pub(crate) rng: StdRng,
    /// Error code for a duplicate sibling department name (60008 or 60021).
    pub(crate) dup_dept_name_code: i64,
    /// Changes made since the server last drained them.
    pub(crate) changes: Vec<Change>,
    /// The corp's CorpId (`union_emp_ext` names it); set by whoever builds the org.
    pub(crate) corp_id: String,
    /// Trunk departments copied from a branch corp, by trunk id (see `union`).
    pub(crate) union_depts: BTreeMap<i64, union::UnionDept>,
    /// Trunk users copied from a branch corp, by trunk userid.
    pub(crate) union_users: BTreeMap<String, union::UnionUser>,
    /// Corps linked below this one (`topapi/org/union/branch/get`).
    pub(crate) branches: Vec<union::LinkedCorp>,
    /// Corps this one is linked below (`topapi/org/union/trunk/get`).
    pub(crate) trunks: Vec<union::LinkedCorp>,
}

impl Org {
    /// An org with only root department 1 (named after the corp) and the built-in role group.
    pub fn new(corp_name: &str, seed: u64, dup_dept_name_code: i64) -> Self {
        let mut depts = BTreeMap::new();
        depts.insert(ROOT_DEPT, Dept::new(ROOT_DEPT, corp_name.to_owned(), 0));
        let mut org = Self {
            depts,
            users: BTreeMap::new(),
            departed: BTreeMap::new(),
            mobiles: HashMap::new(),
            emails: HashMap::new(),
            telephones: HashMap::new(),
            groups: BTreeMap::new(),
            roles: BTreeMap::new(),
            last_dept_id: 432_825_000,
            last_label_id: 1_160_000_000,
            seq: 0,
            rng: StdRng::seed_from_u64(seed ^ 0x5EED_0D1D_7A1C),
            dup_dept_name_code,
            changes: Vec::new(),
            corp_id: String::new(),
            union_depts: BTreeMap::new(),
            union_users: BTreeMap::new(),
            branches: Vec::new(),
            trunks: Vec::new(),
        };
        let group = org.next_label_id();
        org.groups.insert(
            group,
            RoleGroup {
                id: group,
                name: BUILTIN_GROUP.to_owned(),
                builtin: true,
                roles: BTreeSet::new(),
            },
        );
        for name in BUILTIN_ROLES {
            let id = org.next_label_id();
            org.roles.insert(
                id,
                Role {
                    id,
                    name: name.to_owned(),
                    group_id: group,
                    builtin: true,
                    members: BTreeSet::new(),
                },
            );
            if let Some(g) = org.groups.get_mut(&group) {
                g.roles.insert(id);
            }
        }
        org
    }

    /// Takes the changes recorded since the last call.
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    pub(crate) fn next_dept_id(&mut self) -> i64 {
        self.last_dept_id += self.rng.gen_range(1..=64);
        self.last_dept_id
    }

    pub(crate) fn next_label_id(&mut self) -> i64 {
        self.last_label_id += self.rng.gen_range(1..=16);
        self.last_label_id
    }

    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// A new 18-digit userid like the ones DingTalk generates, unique among current and departed
    /// users.
    pub(crate) fn generate_userid(&mut self) -> String {
        loop {
            let candidate = format!(
                "{:018}",
                self.rng
                    .gen_range(10_000_000_000_000_000u64..1_000_000_000_000_000_000)
            );
            if !self.users.contains_key(&candidate) && !self.departed.contains_key(&candidate) {
                return candidate;
            }
        }
    }

    /// A new unionid (opaque, alphanumeric, 27 characters as observed).
    pub(crate) fn generate_unionid(&mut self) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..27)
            .map(|_| char::from(ALPHABET[self.rng.gen_range(0..ALPHABET.len())]))
            .collect()
    }

    /// The level of a department below root (root = 0), or `None` for an unknown id.
    pub(crate) fn depth(&self, mut id: i64) -> Option<usize> {
        let mut depth = 0;
        while id != ROOT_DEPT {
            id = self.depts.get(&id)?.parent_id;
            depth += 1;
            if depth > self.depts.len() {
                // A cycle cannot exist (moves are checked), but never loop forever.
                return None;
            }
        }
        Some(depth)
    }

    /// Counts of the org's entities, for summaries.
    pub fn counts(&self) -> Value {
        let memberships: usize = self.users.values().map(|u| u.dept_ids.len()).sum();
        let role_members: usize = self.roles.values().map(|r| r.members.len()).sum();
        json!({
            "departments": self.depts.len(),
            "users": self.users.len(),
            "departed_users": self.departed.len(),
            "dept_memberships": memberships,
            "role_groups": self.groups.len(),
            "roles": self.roles.len(),
            "role_memberships": role_members,
        })
    }

    /// The whole state as JSON, served by `GET /_sim/state`. Every list is sorted by id so two
    /// orgs with equal contents give equal JSON.
    pub fn state_json(&self) -> Value {
        let departments: Vec<Value> = self.depts.values().map(|d| self.dept_state(d)).collect();
        let users: Vec<Value> = self.users.values().map(|u| self.user_state(u)).collect();
        let departed: Vec<&str> = self.departed.keys().map(String::as_str).collect();
        let groups: Vec<Value> = self
            .groups
            .values()
            .map(|g| {
                json!({
                    "group_id": g.id,
                    "name": g.name,
                    "builtin": g.builtin,
                    "role_ids": g.roles.iter().collect::<Vec<_>>(),
                })
            })
            .collect();
        let roles: Vec<Value> = self
            .roles
            .values()
            .map(|r| {
                json!({
                    "role_id": r.id,
                    "name": r.name,
                    "group_id": r.group_id,
                    "builtin": r.builtin,
                    "members": r.members.iter().collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({
            "counts": self.counts(),
            "departments": departments,
            "users": users,
            "departed_userids": departed,
            "role_groups": groups,
            "roles": roles,
        })
    }

    fn dept_state(&self, d: &Dept) -> Value {
        let mut v = self.dept_detail(d);
        if let Value::Object(map) = &mut v {
            map.insert(
                "member_userids".to_owned(),
                json!(d.members.iter().collect::<Vec<_>>()),
            );
            map.insert(
                "child_dept_ids".to_owned(),
                json!(d.children.iter().collect::<Vec<_>>()),
            );
        }
        v
    }

    fn user_state(&self, u: &User) -> Value {
        self.user_detail(u)
    }
}

/// Inserts `key: value` into a JSON object only when there is a value (DingTalk omits empty
/// fields).
pub(crate) fn put_opt(map: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(v) = value
        && !v.is_empty()
    {
        map.insert(key.to_owned(), Value::String(v.to_owned()));
    }
}

/// Counts characters the way DingTalk's length limits do (Unicode scalar values, not bytes).
pub(crate) fn char_len(s: &str) -> usize {
    s.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_org_has_root_and_builtin_group() {
        let org = Org::new("Corp", 7, 60008);
        assert_eq!(org.depts.len(), 1);
        assert_eq!(org.depts[&ROOT_DEPT].name, "Corp");
        let group = org.groups.values().next().expect("built-in group");
        assert!(group.builtin);
        assert_eq!(group.name, BUILTIN_GROUP);
        let names: Vec<&str> = org.roles.values().map(|r| r.name.as_str()).collect();
        assert_eq!(names, BUILTIN_ROLES.to_vec());
    }

    #[test]
    fn generated_ids_are_monotonic_and_userids_long_digits() {
        let mut org = Org::new("Corp", 7, 60008);
        let a = org.next_dept_id();
        let b = org.next_dept_id();
        assert!(b > a && a > 400_000_000);
        let userid = org.generate_userid();
        assert_eq!(userid.len(), 18);
        assert!(userid.bytes().all(|c| c.is_ascii_digit()));
        assert_eq!(org.generate_unionid().len(), 27);
    }
}
