//! Trunk / branch organizations (上下级组织, formerly 关联组织) as the trunk sees them.
//!
//! In DingTalk a branch corp's members are copied into the trunk corp's contacts in real time,
//! under a trunk department, and the trunk cannot edit them (`dingtalk-api.md` §9). This module
//! is that copy on the trunk's side: [`Org::mirror_branch`] reconciles the trunk's copies with a
//! [`BranchSnapshot`] of the branch (called by `fleet` after every change in the branch), and the
//! write rules ask [`Org::refuse_union_dept`] / [`Org::refuse_union_user`] before touching
//! anything.
//!
//! What the trunk sees:
//! - the branch's root department as a trunk department named after the branch corp, under the
//!   department the link names, and every branch department below it, each with **its own trunk
//!   id** (ids are only unique within a corp), `from_union_org: true` and
//!   `union_dept_ext: {corp_id, dept_id}` naming the branch department it copies (on
//!   `department/get`; `department/listsub` items carry `from_union_org: true` for copies);
//! - every current branch member as a trunk user with **a userid of its own** (a fresh one, never
//!   the branch's: a client must not assume they match) and the branch's unionid (one person),
//!   in the copies of their departments, carrying
//!   `union_emp_ext: {userid, corp_id, union_emp_map_list: [{userid, corp_id}]}` — their trunk
//!   identity and the branch identity it copies;
//! - each copy's creation, change and removal as the trunk's own contacts events
//!   (`org_dept_create`, `user_add_org`, …, origin `union`).
//!
//! Choices where the facts are silent (the stricter plausible behaviour, documented here):
//! - every write that touches a copy is refused with errcode **60011** and a message saying that
//!   branch data cannot be changed in the trunk: updating or deleting a copied department or user,
//!   creating a department under a copied one, and putting a trunk user into a copied
//!   department. Role assignment is not contacts data and stays allowed.
//! - copies are not in the trunk's mobile/email/telephone uniqueness indexes: `getbymobile` finds
//!   only the trunk's own people, and a trunk user may share a mobile with a copy (the same
//!   person in both corps, which DingTalk allows).
//! - only the trunk's copies carry `union_emp_ext`; the branch's own users do not.
//! - a copy keeps name, mobile, title, job number, email and hired date; the rest of the branch
//!   user's fields are not copied.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value, json};

use super::{Change, Dept, Org, ROOT_DEPT, User, user_diff};
use crate::error::{Outcome, Rejection};

/// The errcode of a trunk write on branch data (UNCONFIRMED; see the module docs).
pub const UNION_READ_ONLY_CODE: i64 = 60011;

/// Its message.
pub const UNION_READ_ONLY_MSG: &str = "该部门或成员来自下级组织，上级组织无权修改";

/// Where a trunk department copy comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnionDept {
    /// The branch corp.
    pub corp_id: String,
    /// The department's id in the branch.
    pub dept_id: i64,
}

/// Where a trunk user copy comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnionUser {
    /// The branch corp.
    pub corp_id: String,
    /// The user's id in the branch.
    pub userid: String,
}

/// A linked corp as `topapi/org/union/{branch,trunk}/get` list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedCorp {
    pub corp_id: String,
    pub name: String,
}

/// What the trunk needs of a branch to mirror it: departments top-down (parents before
/// children, root first) and the current users.
#[derive(Debug, Clone)]
pub struct BranchSnapshot {
    pub corp_id: String,
    /// `(id, name, parent_id, order)`; the root's name is the branch corp's name.
    pub depts: Vec<(i64, String, i64, i64)>,
    pub users: Vec<User>,
}

impl Org {
    /// The branch side of a mirror: this org's departments (breadth-first from the root) and
    /// users.
    pub(crate) fn branch_snapshot(&self, corp_id: &str) -> BranchSnapshot {
        let mut depts = Vec::with_capacity(self.depts.len());
        let mut queue = std::collections::VecDeque::from([ROOT_DEPT]);
        while let Some(id) = queue.pop_front() {
            if let Some(d) = self.depts.get(&id) {
                depts.push((d.id, d.name.clone(), d.parent_id, d.order));
                queue.extend(d.children.iter().copied());
            }
        }
        BranchSnapshot {
            corp_id: corp_id.to_owned(),
            depts,
            users: self.users.values().cloned().collect(),
        }
    }

    /// Refuses a write on a department copied from a branch.
    pub(crate) fn refuse_union_dept(&self, id: i64) -> Outcome<()> {
        if self.union_depts.contains_key(&id) {
            return Err(Rejection::new(UNION_READ_ONLY_CODE, UNION_READ_ONLY_MSG));
        }
        Ok(())
    }

    /// Refuses a write on a user copied from a branch.
    pub(crate) fn refuse_union_user(&self, userid: &str) -> Outcome<()> {
        if self.union_users.contains_key(userid) {
            return Err(Rejection::new(UNION_READ_ONLY_CODE, UNION_READ_ONLY_MSG));
        }
        Ok(())
    }

    /// `from_union_org` and `union_dept_ext` of a department (only copies have the latter).
    pub(crate) fn union_dept_fields(&self, id: i64, m: &mut Map<String, Value>) {
        let origin = self.union_depts.get(&id);
        m.insert("from_union_org".into(), json!(origin.is_some()));
        if let Some(o) = origin {
            m.insert(
                "union_dept_ext".into(),
                json!({"corp_id": o.corp_id, "dept_id": o.dept_id}),
            );
        }
    }

    /// `union_emp_ext` of a user copied from a branch.
    pub(crate) fn union_user_fields(&self, u: &User, m: &mut Map<String, Value>) {
        if let Some(o) = self.union_users.get(&u.userid) {
            m.insert(
                "union_emp_ext".into(),
                json!({
                    "userid": u.userid,
                    "corp_id": self.corp_id,
                    "union_emp_map_list": [{"userid": o.userid, "corp_id": o.corp_id}],
                }),
            );
        }
    }

    /// `topapi/org/union/branch/get`: the corps linked below this one.
    pub fn union_branches(&self) -> Value {
        json!(
            self.branches
                .iter()
                .map(|c| json!({"union_corpid": c.corp_id, "union_org_name": c.name}))
                .collect::<Vec<_>>()
        )
    }

    /// `topapi/org/union/trunk/get`: the corps this one is linked below.
    pub fn union_trunks(&self) -> Value {
        json!(
            self.trunks
                .iter()
                .map(|c| json!({"corpid": c.corp_id, "org_name": c.name}))
                .collect::<Vec<_>>()
        )
    }

    /// Makes the trunk's copies of `branch` match it, under trunk department `parent`: creates,
    /// changes, moves and removes copied departments and users, recording each as a change of
    /// this (the trunk's) org. Idempotent: a second call with the same snapshot changes nothing.
    pub(crate) fn mirror_branch(&mut self, parent: i64, branch: &BranchSnapshot) {
        let dept_copies = self.mirror_depts(parent, branch);
        self.mirror_users(branch, &dept_copies);
        self.remove_stale_depts(branch);
    }

    /// Creates, renames and moves the department copies; returns branch id → trunk id.
    fn mirror_depts(&mut self, parent: i64, branch: &BranchSnapshot) -> HashMap<i64, i64> {
        let mut copies: HashMap<i64, i64> = self
            .union_depts
            .iter()
            .filter(|(_, o)| o.corp_id == branch.corp_id)
            .map(|(trunk, o)| (o.dept_id, *trunk))
            .collect();
        for (id, name, branch_parent, order) in &branch.depts {
            let trunk_parent = if *id == ROOT_DEPT {
                parent
            } else {
                match copies.get(branch_parent) {
                    Some(p) => *p,
                    None => continue,
                }
            };
            if let Some(trunk_id) = copies.get(id).copied() {
                let Some(d) = self.depts.get(&trunk_id) else {
                    continue;
                };
                if d.name == *name && d.parent_id == trunk_parent && d.order == *order {
                    continue;
                }
                let old_parent = d.parent_id;
                if old_parent != trunk_parent {
                    if let Some(p) = self.depts.get_mut(&old_parent) {
                        p.children.remove(&trunk_id);
                    }
                    if let Some(p) = self.depts.get_mut(&trunk_parent) {
                        p.children.insert(trunk_id);
                    }
                }
                if let Some(d) = self.depts.get_mut(&trunk_id) {
                    d.name = name.clone();
                    d.parent_id = trunk_parent;
                    d.order = *order;
                }
                self.changes.push(Change::DeptModify(vec![trunk_id]));
            } else {
                let trunk_id = self.next_dept_id();
                let mut d = Dept::new(trunk_id, name.clone(), trunk_parent);
                d.order = *order;
                self.depts.insert(trunk_id, d);
                if let Some(p) = self.depts.get_mut(&trunk_parent) {
                    p.children.insert(trunk_id);
                }
                self.union_depts.insert(
                    trunk_id,
                    UnionDept {
                        corp_id: branch.corp_id.clone(),
                        dept_id: *id,
                    },
                );
                copies.insert(*id, trunk_id);
                self.changes.push(Change::DeptCreate(vec![trunk_id]));
            }
        }
        copies
    }

    /// Adds, changes and removes the user copies.
    fn mirror_users(&mut self, branch: &BranchSnapshot, dept_copies: &HashMap<i64, i64>) {
        let copies: BTreeMap<String, String> = self
            .union_users
            .iter()
            .filter(|(_, o)| o.corp_id == branch.corp_id)
            .map(|(trunk, o)| (o.userid.clone(), trunk.clone()))
            .collect();
        let present: BTreeSet<&str> = branch.users.iter().map(|u| u.userid.as_str()).collect();
        for (origin, trunk_id) in &copies {
            if !present.contains(origin.as_str()) {
                self.remove_user_copy(trunk_id);
                self.changes.push(Change::UserLeave(vec![trunk_id.clone()]));
            }
        }
        for source in &branch.users {
            let dept_ids: Vec<i64> = source
                .dept_ids
                .iter()
                .filter_map(|d| dept_copies.get(d).copied())
                .collect();
            match copies.get(&source.userid) {
                Some(trunk_id) => self.update_user_copy(trunk_id, source, dept_ids),
                None => self.add_user_copy(branch, source, dept_ids),
            }
        }
    }

    /// A new trunk user copying `source`.
    fn add_user_copy(&mut self, branch: &BranchSnapshot, source: &User, dept_ids: Vec<i64>) {
        let userid = self.generate_userid();
        let seq = self.next_seq();
        let mut user = source.clone();
        user.userid = userid.clone();
        copy_fields(&mut user, source);
        user.telephone = None;
        user.org_email = None;
        user.work_place = None;
        user.remark = None;
        user.extension = None;
        user.manager_userid = None;
        user.login_email = None;
        user.admin = false;
        user.boss = false;
        user.roles = BTreeSet::new();
        user.dept_order = BTreeMap::new();
        user.dept_title = BTreeMap::new();
        user.dept_ids = dept_ids;
        user.entry_seq = seq;
        user.modify_seq = seq;
        for d in &user.dept_ids {
            if let Some(dept) = self.depts.get_mut(d) {
                dept.members.insert(userid.clone());
            }
        }
        self.users.insert(userid.clone(), user);
        self.union_users.insert(
            userid.clone(),
            UnionUser {
                corp_id: branch.corp_id.clone(),
                userid: source.userid.clone(),
            },
        );
        self.changes.push(Change::UserAdd(vec![userid]));
    }

    /// Brings a trunk copy in line with its source; records a modify event when anything
    /// changed.
    fn update_user_copy(&mut self, trunk_id: &str, source: &User, dept_ids: Vec<i64>) {
        let Some(current) = self.users.get(trunk_id) else {
            return;
        };
        let mut user = current.clone();
        copy_fields(&mut user, source);
        user.dept_ids = dept_ids;
        if user == *current {
            return;
        }
        let before = current.clone();
        user.modify_seq = self.next_seq();
        for d in before
            .dept_ids
            .iter()
            .filter(|d| !user.dept_ids.contains(d))
        {
            if let Some(dept) = self.depts.get_mut(d) {
                dept.members.remove(trunk_id);
                dept.manager_userids.retain(|m| m != trunk_id);
            }
        }
        for d in &user.dept_ids {
            if let Some(dept) = self.depts.get_mut(d) {
                dept.members.insert(trunk_id.to_owned());
            }
        }
        let diff = user_diff::diff_info(&before, &user);
        self.users.insert(trunk_id.to_owned(), user);
        self.changes
            .push(Change::UserModify(vec![trunk_id.to_owned()], diff));
    }

    /// Takes a copy out of the trunk entirely (a copy is not rehired, so it is not kept as
    /// departed).
    fn remove_user_copy(&mut self, trunk_id: &str) {
        self.union_users.remove(trunk_id);
        let Some(user) = self.users.remove(trunk_id) else {
            return;
        };
        for d in &user.dept_ids {
            if let Some(dept) = self.depts.get_mut(d) {
                dept.members.remove(trunk_id);
                dept.manager_userids.retain(|m| m != trunk_id);
            }
        }
        for r in &user.roles {
            if let Some(role) = self.roles.get_mut(r) {
                role.members.remove(trunk_id);
            }
        }
    }

    /// Removes copies of departments the branch no longer has, deepest first.
    fn remove_stale_depts(&mut self, branch: &BranchSnapshot) {
        let present: BTreeSet<i64> = branch.depts.iter().map(|d| d.0).collect();
        let mut stale: Vec<(usize, i64)> = self
            .union_depts
            .iter()
            .filter(|(_, o)| o.corp_id == branch.corp_id && !present.contains(&o.dept_id))
            .map(|(trunk, _)| (self.depth(*trunk).unwrap_or(0), *trunk))
            .collect();
        stale.sort_by_key(|(depth, id)| (std::cmp::Reverse(*depth), *id));
        for (_, id) in stale {
            self.union_depts.remove(&id);
            let Some(d) = self.depts.remove(&id) else {
                continue;
            };
            if let Some(p) = self.depts.get_mut(&d.parent_id) {
                p.children.remove(&id);
            }
            self.changes.push(Change::DeptRemove(vec![id]));
        }
    }
}

/// The fields a copy keeps of its source.
fn copy_fields(user: &mut User, source: &User) {
    user.unionid = source.unionid.clone();
    user.name = source.name.clone();
    user.state_code = source.state_code.clone();
    user.mobile = source.mobile.clone();
    user.hide_mobile = source.hide_mobile;
    user.title = source.title.clone();
    user.job_number = source.job_number.clone();
    user.email = source.email.clone();
    user.hired_date = source.hired_date;
    user.active = source.active;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn branch_org() -> Org {
        let mut org = Org::new("Branch Co", 3, 60008);
        let mut p = crate::params::Params::default();
        p.insert("name", json!("Sales"));
        p.insert("parent_id", json!(1));
        org.dept_create(&p).expect("dept");
        org.take_changes();
        org
    }

    #[test]
    fn mirror_is_idempotent_and_removes_what_left() {
        let branch = branch_org();
        let snap = branch.branch_snapshot("dingbranch");
        let mut trunk = Org::new("Trunk Co", 4, 60008);
        trunk.corp_id = "dingtrunk".to_owned();
        trunk.mirror_branch(ROOT_DEPT, &snap);
        // The branch root and Sales, both new trunk ids.
        assert_eq!(trunk.union_depts.len(), 2);
        assert_eq!(trunk.take_changes().len(), 2);
        trunk.mirror_branch(ROOT_DEPT, &snap);
        assert!(
            trunk.take_changes().is_empty(),
            "a second mirror changes nothing"
        );
        let empty = BranchSnapshot {
            corp_id: "dingbranch".to_owned(),
            depts: vec![],
            users: vec![],
        };
        trunk.mirror_branch(ROOT_DEPT, &empty);
        assert!(trunk.union_depts.is_empty());
        assert_eq!(trunk.depts.len(), 1);
    }
}
