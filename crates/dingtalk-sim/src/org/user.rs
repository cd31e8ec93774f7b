//! User writes (`topapi/v2/user/{create,update,delete}`, and rehiring from `/_sim`) and the
//! indexes they keep. The shared field rules are in `user_fields`, the reads in `user_read`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::user_fields::{
    MAX_DEPTS_PER_USER, apply_fields, check_pairs_within, check_userid, dedup, mobile_key,
    parse_mobile, user_not_found,
};
use super::{Change, Org, User, user_diff};
use crate::envelope::Reply;
use crate::error::{Outcome, Rejection};
use crate::params::Params;
impl Org {
    /// Adds a user to the indexes and its departments (no checks: callers validated).
    pub(crate) fn insert_user(&mut self, user: User) {
        for d in &user.dept_ids {
            if let Some(dept) = self.depts.get_mut(d) {
                dept.members.insert(user.userid.clone());
            }
        }
        self.mobiles.insert(
            mobile_key(&user.state_code, &user.mobile),
            user.userid.clone(),
        );
        if let Some(email) = &user.email {
            self.emails
                .insert(email.to_lowercase(), user.userid.clone());
        }
        if let Some(tel) = &user.telephone {
            self.telephones.insert(tel.clone(), user.userid.clone());
        }
        for r in &user.roles {
            if let Some(role) = self.roles.get_mut(r) {
                role.members.insert(user.userid.clone());
            }
        }
        self.users.insert(user.userid.clone(), user);
    }

    /// Inserts a generated user (the generator guarantees uniqueness).
    pub(crate) fn insert_generated_user(&mut self, mut user: User) {
        user.entry_seq = self.next_seq();
        user.modify_seq = user.entry_seq;
        self.insert_user(user);
    }

    /// Removes a user from every index, department, manager list and role; returns it.
    fn detach_user(&mut self, userid: &str) -> Option<User> {
        let user = self.users.remove(userid)?;
        for d in &user.dept_ids {
            if let Some(dept) = self.depts.get_mut(d) {
                dept.members.remove(userid);
                dept.manager_userids.retain(|m| m != userid);
            }
        }
        self.mobiles
            .remove(&mobile_key(&user.state_code, &user.mobile));
        if let Some(email) = &user.email {
            self.emails.remove(&email.to_lowercase());
        }
        if let Some(tel) = &user.telephone {
            self.telephones.remove(tel);
        }
        for r in &user.roles {
            if let Some(role) = self.roles.get_mut(r) {
                role.members.remove(userid);
            }
        }
        Some(user)
    }

    /// `topapi/v2/user/create`.
    pub fn user_create(&mut self, p: &Params) -> Outcome<Reply> {
        let userid = p.str("userid").filter(|s| !s.is_empty());
        if let Some(userid) = &userid {
            check_userid(userid)?;
            if self.users.contains_key(userid) {
                return Err(Rejection::new(60102, "UserID在公司中已存在"));
            }
        }
        if !p.has("name") || p.str("name").is_some_and(|n| n.trim().is_empty()) {
            return Err(Rejection::param("name"));
        }
        let raw_mobile = p.req_str("mobile")?;
        let (state_code, mobile) =
            parse_mobile(&raw_mobile).ok_or_else(|| Rejection::new(60103, "手机号码不合法"))?;
        if self.mobiles.contains_key(&mobile_key(&state_code, &mobile)) {
            return Err(Rejection::new(60104, "手机号码在公司中已注册"));
        }
        if !p.has("dept_id_list") {
            return Err(Rejection::param("dept_id_list"));
        }
        let fields = self.user_fields(p, None)?;
        let dept_ids = fields
            .dept_ids
            .clone()
            .ok_or_else(|| Rejection::param("dept_id_list"))?;
        check_pairs_within(&fields.dept_order, &dept_ids, "dept_order_list")?;
        check_pairs_within(&fields.dept_title, &dept_ids, "dept_title_list")?;

        // A departed user's id stays taken: DingTalk never reuses a userid for someone else.
        let userid = match userid {
            Some(id) if self.departed.contains_key(&id) => {
                return Err(Rejection::new(60102, "UserID在公司中已存在"));
            }
            Some(id) => id,
            None => self.generate_userid(),
        };
        let unionid = self.generate_unionid();
        let seq = self.next_seq();
        let mut user = User {
            userid: userid.clone(),
            unionid: unionid.clone(),
            name: String::new(),
            state_code,
            mobile,
            hide_mobile: fields.hide_mobile.unwrap_or(false),
            telephone: None,
            job_number: None,
            title: None,
            email: None,
            org_email: None,
            work_place: None,
            remark: None,
            dept_ids: Vec::new(),
            dept_order: BTreeMap::new(),
            dept_title: BTreeMap::new(),
            extension: None,
            hired_date: None,
            manager_userid: None,
            login_email: None,
            senior: fields.senior.unwrap_or(false),
            active: false,
            admin: false,
            boss: false,
            roles: BTreeSet::new(),
            entry_seq: seq,
            modify_seq: seq,
        };
        apply_fields(&mut user, fields, false);
        user.dept_ids = dedup(dept_ids);
        self.insert_user(user);
        self.changes.push(Change::UserAdd(vec![userid.clone()]));
        Ok(Reply::Result(
            json!({ "userid": userid, "unionId": unionid }),
        ))
    }

    /// `topapi/v2/user/update`.
    pub fn user_update(&mut self, p: &Params) -> Outcome<Reply> {
        let userid = p.req_str("userid")?;
        if !self.users.contains_key(&userid) {
            return Err(user_not_found());
        }
        self.refuse_union_user(&userid)?;
        let fields = self.user_fields(p, Some(&userid))?;
        let ext_append = p.i64("ext_attrs_update_mode")? == Some(1);
        let Some(current) = self.users.get(&userid) else {
            return Err(user_not_found());
        };
        let dept_ids = fields
            .dept_ids
            .clone()
            .unwrap_or_else(|| current.dept_ids.clone());
        check_pairs_within(&fields.dept_order, &dept_ids, "dept_order_list")?;
        check_pairs_within(&fields.dept_title, &dept_ids, "dept_title_list")?;

        let before = current.clone();
        let mut user = current.clone();
        let old_email = user.email.clone();
        let old_telephone = user.telephone.clone();
        let old_depts = user.dept_ids.clone();
        apply_fields(&mut user, fields, ext_append);
        user.dept_ids = dedup(dept_ids);
        user.dept_order.retain(|d, _| user.dept_ids.contains(d));
        user.dept_title.retain(|d, _| user.dept_ids.contains(d));
        user.modify_seq = self.next_seq();

        for d in old_depts.iter().filter(|d| !user.dept_ids.contains(d)) {
            if let Some(dept) = self.depts.get_mut(d) {
                dept.members.remove(&userid);
                dept.manager_userids.retain(|m| *m != userid);
            }
        }
        for d in &user.dept_ids {
            if let Some(dept) = self.depts.get_mut(d) {
                dept.members.insert(userid.clone());
            }
        }
        if old_email != user.email {
            if let Some(e) = &old_email {
                self.emails.remove(&e.to_lowercase());
            }
            if let Some(e) = &user.email {
                self.emails.insert(e.to_lowercase(), userid.clone());
            }
        }
        if old_telephone != user.telephone {
            if let Some(t) = &old_telephone {
                self.telephones.remove(t);
            }
            if let Some(t) = &user.telephone {
                self.telephones.insert(t.clone(), userid.clone());
            }
        }
        let diff = user_diff::diff_info(&before, &user);
        self.users.insert(userid.clone(), user);
        self.changes.push(Change::UserModify(vec![userid], diff));
        Ok(Reply::Nothing)
    }

    /// `topapi/v2/user/delete`: the user leaves the org.
    pub fn user_delete(&mut self, p: &Params) -> Outcome<Reply> {
        let userid = p.req_str("userid")?;
        self.refuse_union_user(&userid)?;
        let Some(mut user) = self.detach_user(&userid) else {
            return Err(user_not_found());
        };
        // People who reported to the leaver no longer have a manager.
        let reports: Vec<String> = self
            .users
            .values()
            .filter(|u| u.manager_userid.as_deref() == Some(userid.as_str()))
            .map(|u| u.userid.clone())
            .collect();
        let mut report_changes = Vec::new();
        for r in &reports {
            let seq = self.next_seq();
            if let Some(u) = self.users.get_mut(r) {
                let before = u.clone();
                u.manager_userid = None;
                u.modify_seq = seq;
                let diff = user_diff::diff_info(&before, u);
                report_changes.push(Change::UserModify(vec![r.clone()], diff));
            }
        }
        for d in self.depts.values_mut() {
            if d.org_dept_owner.as_deref() == Some(userid.as_str()) {
                d.org_dept_owner = None;
            }
        }
        user.roles.clear();
        self.departed.insert(userid.clone(), user);
        self.changes.push(Change::UserLeave(vec![userid]));
        self.changes.extend(report_changes);
        Ok(Reply::Nothing)
    }

    /// Rehires a user who left (admin only): same userid, new memberships if given.
    pub fn user_rehire(&mut self, p: &Params) -> Outcome<Reply> {
        let userid = p.req_str("userid")?;
        let Some(former) = self.departed.get(&userid) else {
            return Err(user_not_found());
        };
        if self
            .mobiles
            .contains_key(&mobile_key(&former.state_code, &former.mobile))
        {
            return Err(Rejection::new(60104, "手机号码在公司中已注册"));
        }
        if let Some(email) = &former.email
            && self.emails.contains_key(&email.to_lowercase())
        {
            return Err(Rejection::new(60106, "邮箱已存在"));
        }
        if let Some(tel) = &former.telephone
            && self.telephones.contains_key(tel)
        {
            return Err(Rejection::new(40035, "分机号已存在"));
        }
        let dept_ids = match p.i64_list("dept_id_list")?.filter(|l| !l.is_empty()) {
            Some(ids) => {
                if ids.len() > MAX_DEPTS_PER_USER {
                    return Err(Rejection::new(60110, "部门个数超出限制"));
                }
                if ids.iter().any(|d| !self.depts.contains_key(d)) {
                    return Err(Rejection::new(60003, "部门不存在"));
                }
                for d in &ids {
                    self.refuse_union_dept(*d)?;
                }
                dedup(ids)
            }
            None => {
                let still: Vec<i64> = former
                    .dept_ids
                    .iter()
                    .copied()
                    .filter(|d| self.depts.contains_key(d))
                    .collect();
                if still.is_empty() {
                    vec![super::ROOT_DEPT]
                } else {
                    still
                }
            }
        };
        let Some(mut user) = self.departed.remove(&userid) else {
            return Err(user_not_found());
        };
        if user
            .manager_userid
            .as_ref()
            .is_some_and(|m| !self.users.contains_key(m))
        {
            user.manager_userid = None;
        }
        user.dept_order.retain(|d, _| dept_ids.contains(d));
        user.dept_title.retain(|d, _| dept_ids.contains(d));
        user.dept_ids = dept_ids;
        user.entry_seq = self.next_seq();
        user.modify_seq = user.entry_seq;
        self.insert_user(user);
        self.changes.push(Change::UserAdd(vec![userid.clone()]));
        Ok(Reply::Result(json!({ "userid": userid })))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::*;

    fn params(v: Value) -> Params {
        Params::from_json(v).expect("object")
    }

    #[test]
    fn update_replaces_memberships_and_extension_unless_append() {
        let mut org = Org::new("Corp", 1, 60008);
        org.user_create(&params(json!({
            "userid": "u1", "name": "A", "mobile": "13800000001", "dept_id_list": "1",
            "extension": {"a": "1"}
        })))
        .expect("create");
        let d = match org
            .dept_create(&params(json!({"name": "D", "parent_id": 1})))
            .expect("dept")
        {
            Reply::Result(v) => v["dept_id"].as_i64().unwrap_or_default(),
            other => panic!("{other:?}"),
        };
        org.user_update(&params(json!({"userid": "u1", "dept_id_list": d.to_string(), "extension": "{\"b\":\"2\"}", "ext_attrs_update_mode": 1})))
            .expect("update");
        let u = &org.users["u1"];
        assert_eq!(u.dept_ids, vec![d]);
        assert!(!org.depts[&1].members.contains("u1"));
        assert!(org.depts[&d].members.contains("u1"));
        assert_eq!(u.extension.as_ref().map(Map::len), Some(2));
        org.user_update(&params(json!({"userid": "u1", "extension": {"c": "3"}})))
            .expect("update");
        assert_eq!(org.users["u1"].extension.as_ref().map(Map::len), Some(1));
    }

    #[test]
    fn unique_fields_are_freed_by_change_and_departure() {
        let mut org = Org::new("Corp", 1, 60008);
        let create = |org: &mut Org, id: &str, mobile: &str| {
            org.user_create(&params(json!({
                "userid": id, "name": id, "mobile": mobile, "dept_id_list": "1",
                "telephone": "010-1", "email": "same@x.com"
            })))
            .map(|_| ())
            .map_err(|r| r.code)
        };
        assert_eq!(create(&mut org, "a", "13800000001"), Ok(()));
        assert_eq!(create(&mut org, "b", "13800000002"), Err(60106));
        org.user_update(&params(json!({"userid": "a", "email": "other@x.com"})))
            .expect("update");
        assert_eq!(
            create(&mut org, "b", "13800000002"),
            Err(40035),
            "telephone still taken"
        );
        org.user_update(&params(json!({"userid": "a", "telephone": "010-2"})))
            .expect("update");
        assert_eq!(create(&mut org, "b", "13800000002"), Ok(()));
        // "a" leaves; "c" takes a's mobile; "a" cannot come back with it.
        org.user_delete(&params(json!({"userid": "a"})))
            .expect("delete");
        org.user_create(&params(
            json!({"userid": "c", "name": "c", "mobile": "13800000001", "dept_id_list": "1"}),
        ))
        .expect("mobile freed");
        let rehire = org.user_rehire(&params(json!({"userid": "a"})));
        assert_eq!(rehire.map(|_| ()).map_err(|r| r.code), Err(60104));
        assert!(org.departed.contains_key("a"));
    }

    #[test]
    fn force_update_clears_manager() {
        let mut org = Org::new("Corp", 1, 60008);
        for (id, mobile) in [("boss", "13800000001"), ("u2", "13800000002")] {
            org.user_create(&params(
                json!({"userid": id, "name": id, "mobile": mobile, "dept_id_list": "1"}),
            ))
            .expect("create");
        }
        org.user_update(&params(json!({"userid": "u2", "manager_userid": "boss"})))
            .expect("set");
        assert_eq!(org.users["u2"].manager_userid.as_deref(), Some("boss"));
        org.user_update(&params(json!({"userid": "u2", "manager_userid": ""})))
            .expect("keep");
        assert_eq!(org.users["u2"].manager_userid.as_deref(), Some("boss"));
        org.user_update(&params(
            json!({"userid": "u2", "force_update_fields": "manager_userid"}),
        ))
        .expect("clear");
        assert_eq!(org.users["u2"].manager_userid, None);
    }
}
