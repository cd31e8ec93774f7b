//! The older non-topapi contacts paths that PyPI `dingtalk-sdk` 1.3.8 (the most installed Python
//! SDK) calls: `GET /department/list`, `GET /user/get`, `GET /user/simplelist`,
//! `GET /user/list`, `POST /department/create`, `POST /user/create`.
//!
//! `dingtalk-api.md` is silent on them; their requests and answers follow DingTalk's own
//! documentation of these paths (the 2018 open-doc pages "部门管理" and "用户管理", the
//! generation before topapi v2; the facts note the old APIs "will not be taken offline"). They
//! run the same `Org` rules as topapi v2 — a write is translated to the v2 parameters and goes
//! through `dept_create` / `user_create` — and answer in that generation's shape: fields at the
//! top level next to `errcode` (no `result`, no `request_id`), camelCase names (`parentid`,
//! `userlist`, `hasMore`, `isAdmin`, `orderInDepts`…), writes answering `errmsg: "created"`.
//!
//! Choices where the old pages leave room (stricter, always): `/department/list` lists the
//! children of `id` (default root 1), recursively only with `fetch_child=true`;
//! `/user/simplelist` and `/user/list` require `department_id`, take `offset` (default 0) and
//! `size` (default and maximum 100, 40035 outside 1–100) and the same `order` values as v2.

use serde_json::{Map, Value, json};

use super::user_read::avatar;
use super::{Org, ROOT_DEPT, User};
use crate::envelope::Reply;
use crate::error::{Outcome, Rejection};
use crate::params::Params;

/// Largest `size` of the old member lists.
const MAX_SIZE: i64 = 100;

/// Copies `from` of the old request to `to` of the v2 one, when given.
fn rename(old: &Params, new: &mut Params, from: &str, to: &str) {
    if let Some(v) = old.raw(from) {
        new.insert(to, v.clone());
    }
}

/// An old `|`- or array-separated id list as v2's comma string.
fn comma_list(old: &Params, name: &str) -> Outcome<Option<Value>> {
    Ok(old.array_list(name)?.map(|items| {
        let joined: Vec<String> = items
            .iter()
            .flat_map(|s| s.split('|'))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        json!(joined.join(","))
    }))
}

fn fields(pairs: Value) -> Reply {
    match pairs {
        Value::Object(map) => Reply::Fields(map),
        _ => Reply::Nothing,
    }
}

impl Org {
    /// `GET /department/list?id=&fetch_child=`: `{department: [{id, name, parentid,
    /// createDeptGroup, autoAddUser}]}`.
    pub fn old_dept_list(&self, p: &Params) -> Outcome<Reply> {
        let id = p.i64("id")?.unwrap_or(ROOT_DEPT);
        // Python clients send `True`/`False`; DingTalk's Java servers read booleans without
        // regard to case.
        let recursive = match p.str("fetch_child").map(|s| s.trim().to_ascii_lowercase()) {
            None => false,
            Some(s) if s.is_empty() || s == "false" || s == "0" => false,
            Some(s) if s == "true" || s == "1" => true,
            Some(_) => return Err(Rejection::param("fetch_child")),
        };
        if !self.depts.contains_key(&id) {
            return Err(Rejection::new(60003, "部门不存在"));
        }
        let mut list = Vec::new();
        let mut queue = vec![id];
        while let Some(parent) = queue.pop() {
            for d in self.sorted_children(parent) {
                list.push(json!({
                    "id": d.id,
                    "name": d.name,
                    "parentid": d.parent_id,
                    "createDeptGroup": d.create_dept_group,
                    "autoAddUser": d.auto_add_user,
                }));
                if recursive {
                    queue.push(d.id);
                }
            }
        }
        Ok(fields(json!({ "department": list })))
    }

    /// `POST /department/create` `{name, parentid, order, createDeptGroup, deptHiding,
    /// deptPermits, userPermits, outerDept, outerPermitDepts, outerPermitUsers,
    /// sourceIdentifier}` → `{errmsg: "created", id}`.
    pub fn old_dept_create(&mut self, p: &Params) -> Outcome<Reply> {
        let mut v2 = Params::default();
        for (from, to) in [
            ("name", "name"),
            ("parentid", "parent_id"),
            ("order", "order"),
            ("createDeptGroup", "create_dept_group"),
            ("deptHiding", "hide_dept"),
            ("outerDept", "outer_dept"),
            ("outerDeptOnlySelf", "outer_dept_only_self"),
            ("sourceIdentifier", "source_identifier"),
        ] {
            rename(p, &mut v2, from, to);
        }
        for (from, to) in [
            ("deptPermits", "dept_permits"),
            ("userPermits", "user_permits"),
            ("outerPermitDepts", "outer_permit_depts"),
            ("outerPermitUsers", "outer_permit_users"),
        ] {
            if let Some(list) = comma_list(p, from)? {
                v2.insert(to, list);
            }
        }
        let id = match self.dept_create(&v2)? {
            Reply::Result(v) => v.get("dept_id").cloned().unwrap_or(Value::Null),
            _ => Value::Null,
        };
        Ok(fields(json!({"errmsg": "created", "id": id})))
    }

    /// `POST /user/create` `{userid, name, mobile, department: [ids], position, tel, workPlace,
    /// remark, email, orgEmail, jobnumber, isHide, isSenior, extattr, hiredDate,
    /// orderInDepts}` → `{errmsg: "created", userid}`.
    pub fn old_user_create(&mut self, p: &Params) -> Outcome<Reply> {
        let mut v2 = Params::default();
        for (from, to) in [
            ("userid", "userid"),
            ("name", "name"),
            ("mobile", "mobile"),
            ("position", "title"),
            ("tel", "telephone"),
            ("workPlace", "work_place"),
            ("remark", "remark"),
            ("email", "email"),
            ("orgEmail", "org_email"),
            ("jobnumber", "job_number"),
            ("isHide", "hide_mobile"),
            ("isSenior", "senior_mode"),
            ("extattr", "extension"),
            ("hiredDate", "hired_date"),
        ] {
            rename(p, &mut v2, from, to);
        }
        if let Some(list) = comma_list(p, "department")? {
            v2.insert("dept_id_list", list);
        } else {
            return Err(Rejection::param("department"));
        }
        if let Some(orders) = p.json("orderInDepts")? {
            let Value::Object(map) = orders else {
                return Err(Rejection::param("orderInDepts"));
            };
            let list: Vec<Value> = map
                .iter()
                .map(|(dept, order)| json!({"dept_id": dept, "order": order}))
                .collect();
            v2.insert("dept_order_list", json!(list));
        }
        let userid = match self.user_create(&v2)? {
            Reply::Result(v) => v.get("userid").cloned().unwrap_or(Value::Null),
            _ => Value::Null,
        };
        Ok(fields(json!({"errmsg": "created", "userid": userid})))
    }

    /// `GET /user/get?userid=`: the user's fields at the top level, in the old names.
    pub fn old_user_get(&self, p: &Params) -> Outcome<Reply> {
        let userid = p.req_str("userid")?;
        let user = self
            .users
            .get(&userid)
            .ok_or_else(|| Rejection::new(60121, "找不到该用户"))?;
        let mut m = self.old_user_fields(user);
        let orders: Map<String, Value> = user
            .dept_ids
            .iter()
            .map(|d| {
                (
                    d.to_string(),
                    json!(user.dept_order.get(d).copied().unwrap_or(0)),
                )
            })
            .collect();
        let leads: Map<String, Value> = user
            .dept_ids
            .iter()
            .map(|d| (d.to_string(), json!(self.leads(user, *d))))
            .collect();
        // Both are JSON *strings* in the old answer (`"{1:10}"` style), kept as valid JSON.
        m.insert(
            "orderInDepts".into(),
            json!(Value::Object(orders).to_string()),
        );
        m.insert(
            "isLeaderInDepts".into(),
            json!(Value::Object(leads).to_string()),
        );
        m.insert("isSenior".into(), json!(user.senior));
        let roles: Vec<Value> = user
            .roles
            .iter()
            .filter_map(|r| self.roles.get(r))
            .map(|r| {
                let group = self.groups.get(&r.group_id).map_or("", |g| g.name.as_str());
                json!({"id": r.id, "name": r.name, "groupName": group})
            })
            .collect();
        m.insert("roles".into(), json!(roles));
        Ok(Reply::Fields(m))
    }

    /// The fields `/user/get` and the items of `/user/list` share.
    fn old_user_fields(&self, u: &User) -> Map<String, Value> {
        let mut m = Map::new();
        let mut put = |key: &str, value: Option<&String>| {
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                m.insert(key.to_owned(), json!(v));
            }
        };
        put("tel", u.telephone.as_ref());
        put("workPlace", u.work_place.as_ref());
        put("remark", u.remark.as_ref());
        put("email", u.email.as_ref());
        put("orgEmail", u.org_email.as_ref());
        put("position", u.title.as_ref());
        put("jobnumber", u.job_number.as_ref());
        m.insert("userid".into(), json!(u.userid));
        m.insert("unionid".into(), json!(u.unionid));
        m.insert("name".into(), json!(u.name));
        m.insert("mobile".into(), json!(u.mobile));
        m.insert("stateCode".into(), json!(u.state_code));
        m.insert("department".into(), json!(u.dept_ids));
        m.insert("active".into(), json!(u.active));
        m.insert("isAdmin".into(), json!(u.admin));
        m.insert("isBoss".into(), json!(u.boss));
        m.insert("isHide".into(), json!(u.hide_mobile));
        if let Some(a) = avatar(u) {
            m.insert("avatar".into(), json!(a));
        }
        if let Some(hired) = u.hired_date {
            m.insert("hiredDate".into(), json!(hired));
        }
        if let Some(ext) = &u.extension {
            m.insert("extattr".into(), Value::Object(ext.clone()));
        }
        m
    }

    /// `department_id`, `offset`, `size`, `order` of the old member lists, checked.
    fn old_page(&self, p: &Params) -> Outcome<(i64, usize, usize, String)> {
        let dept = p.req_i64("department_id")?;
        let offset = p.i64("offset")?.unwrap_or(0);
        let size = p.i64("size")?.unwrap_or(MAX_SIZE);
        let offset = usize::try_from(offset).map_err(|_| Rejection::param("offset"))?;
        if !(1..=MAX_SIZE).contains(&size) {
            return Err(Rejection::param("size"));
        }
        let size = usize::try_from(size).map_err(|_| Rejection::param("size"))?;
        let order = p.str("order").unwrap_or_else(|| "custom".to_owned());
        let known = [
            "entry_asc",
            "entry_desc",
            "modify_asc",
            "modify_desc",
            "custom",
        ];
        if !known.contains(&order.as_str()) {
            return Err(Rejection::param("order"));
        }
        if !self.depts.contains_key(&dept) {
            return Err(Rejection::new(60003, "部门不存在"));
        }
        Ok((dept, offset, size, order))
    }

    /// One page of the old member lists: `{hasMore, userlist: [row(user, dept)]}`.
    fn old_member_page(&self, p: &Params, row: impl Fn(&User, i64) -> Value) -> Outcome<Reply> {
        let (dept, offset, size, order) = self.old_page(p)?;
        let members = self.ordered_members(dept, &order);
        let list: Vec<Value> = members
            .iter()
            .skip(offset)
            .take(size)
            .map(|u| row(u, dept))
            .collect();
        let has_more = offset.saturating_add(size) < members.len();
        Ok(fields(json!({"hasMore": has_more, "userlist": list})))
    }

    /// `GET /user/simplelist?department_id=&offset=&size=&order=`.
    pub fn old_user_simplelist(&self, p: &Params) -> Outcome<Reply> {
        self.old_member_page(p, |u, _| json!({"userid": u.userid, "name": u.name}))
    }

    /// `GET /user/list?department_id=&offset=&size=&order=`: members with details, plus
    /// `order` and `isLeader` for this department.
    pub fn old_user_list(&self, p: &Params) -> Outcome<Reply> {
        self.old_member_page(p, |u, dept| {
            let mut m = self.old_user_fields(u);
            m.insert(
                "order".into(),
                json!(u.dept_order.get(&dept).copied().unwrap_or(0)),
            );
            m.insert("isLeader".into(), json!(self.leads(u, dept)));
            Value::Object(m)
        })
    }
}
