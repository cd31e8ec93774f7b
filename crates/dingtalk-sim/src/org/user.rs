//! User endpoints (`topapi/v2/user/*`, `topapi/user/*`) and their rules.
//!
//! Field limits are those of the create page (§2.2 of `dingtalk-api.md`). An optional text field
//! given as an empty string counts as "not given" unless it is named in `force_update_fields`,
//! which clears it; that is how DingTalk's update reads empty values.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::{Change, Org, User, char_len, put_opt};
use crate::api::Reply;
use crate::error::{Outcome, Rejection};
use crate::params::Params;

/// A user is in at most this many departments (60110).
const MAX_DEPTS_PER_USER: usize = 100;

/// Largest `size` of `v2/user/list` and `user/listsimple`.
const MAX_LIST_SIZE: i64 = 100;

fn user_not_found() -> Rejection {
    Rejection::new(60121, "找不到该用户")
}

/// Splits a mobile number into (state code, national number), or `None` when malformed.
/// Mainland numbers are 11 digits starting with 1; others are written `+cc-number`.
pub(crate) fn parse_mobile(raw: &str) -> Option<(String, String)> {
    let raw = raw.trim();
    let mainland =
        |n: &str| n.len() == 11 && n.starts_with('1') && n.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = raw.strip_prefix('+') {
        let (cc, number) = rest.split_once('-')?;
        let cc_ok = (1..=4).contains(&cc.len()) && cc.bytes().all(|b| b.is_ascii_digit());
        let number_ok =
            (4..=15).contains(&number.len()) && number.bytes().all(|b| b.is_ascii_digit());
        if !cc_ok || !number_ok || (cc == "86" && !mainland(number)) {
            return None;
        }
        return Some((cc.to_owned(), number.to_owned()));
    }
    mainland(raw).then(|| ("86".to_owned(), raw.to_owned()))
}

/// The uniqueness key of a mobile number.
pub(crate) fn mobile_key(state_code: &str, mobile: &str) -> String {
    format!("{state_code}-{mobile}")
}

fn check_userid(userid: &str) -> Outcome<()> {
    let ok = (1..=64).contains(&userid.len())
        && userid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(Rejection::new(40003, "不合法的UserID"))
    }
}

fn check_email(email: &str) -> Outcome<()> {
    let ok = char_len(email) <= 50
        && !email.contains(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        });
    if ok {
        Ok(())
    } else {
        Err(Rejection::new(60105, "邮箱不合法"))
    }
}

/// How an update treats one optional text field: leave it, clear it, or set it.
#[derive(Debug, Clone, PartialEq)]
enum Edit<T> {
    Keep,
    Clear,
    Set(T),
}

impl<T> Edit<T> {
    fn apply(self, target: &mut Option<T>) {
        match self {
            Edit::Keep => {}
            Edit::Clear => *target = None,
            Edit::Set(v) => *target = Some(v),
        }
    }
}

/// Reads an optional text field with a length limit.
fn text_field(
    p: &Params,
    name: &str,
    max: usize,
    code: i64,
    force: &BTreeSet<String>,
) -> Outcome<Edit<String>> {
    match p.str(name) {
        Some(v) if !v.is_empty() => {
            if char_len(&v) > max {
                Err(Rejection::new(code, format!("参数不合法 {name}")))
            } else {
                Ok(Edit::Set(v))
            }
        }
        _ if force.contains(name) => Ok(Edit::Clear),
        _ => Ok(Edit::Keep),
    }
}

/// The user fields that create and update share, parsed and checked against the org.
#[derive(Debug)]
struct UserFields {
    name: Edit<String>,
    telephone: Edit<String>,
    job_number: Edit<String>,
    title: Edit<String>,
    email: Edit<String>,
    org_email: Edit<String>,
    work_place: Edit<String>,
    remark: Edit<String>,
    login_email: Edit<String>,
    manager_userid: Edit<String>,
    dept_ids: Option<Vec<i64>>,
    dept_order: Option<BTreeMap<i64, i64>>,
    dept_title: Option<BTreeMap<i64, String>>,
    extension: Option<Map<String, Value>>,
    hired_date: Edit<i64>,
    hide_mobile: Option<bool>,
    senior: Option<bool>,
}

impl Org {
    /// Parses and checks the shared fields; `me` is the userid being updated (None on create).
    fn user_fields(&self, p: &Params, me: Option<&str>) -> Outcome<UserFields> {
        let force: BTreeSet<String> = p
            .str_list("force_update_fields")?
            .unwrap_or_default()
            .into_iter()
            .collect();
        let name = match p.str("name") {
            Some(v) if !v.trim().is_empty() => {
                if char_len(&v) > 80 {
                    return Err(Rejection::new(60112, "用户名称不合法"));
                }
                Edit::Set(v)
            }
            _ => Edit::Keep,
        };
        let email = text_field(p, "email", 50, 60105, &force)?;
        if let Edit::Set(email) = &email {
            check_email(email)?;
            if let Some(owner) = self.emails.get(&email.to_lowercase())
                && Some(owner.as_str()) != me
            {
                return Err(Rejection::new(60106, "邮箱已存在"));
            }
        }
        let manager_userid = text_field(p, "manager_userid", 64, 40003, &force)?;
        if let Edit::Set(manager) = &manager_userid {
            if Some(manager.as_str()) == me {
                return Err(Rejection::param("manager_userid"));
            }
            if !self.users.contains_key(manager) {
                return Err(user_not_found());
            }
        }
        let dept_ids = p.i64_list("dept_id_list")?.filter(|l| !l.is_empty());
        if let Some(ids) = &dept_ids {
            if ids.len() > MAX_DEPTS_PER_USER {
                return Err(Rejection::new(60110, "部门个数超出限制"));
            }
            if ids.iter().any(|d| !self.depts.contains_key(d)) {
                return Err(Rejection::new(60003, "部门不存在"));
            }
        }
        let dept_order = match p.json("dept_order_list")? {
            None => None,
            Some(v) => Some(parse_pairs(&v, "dept_order_list", "order", |x| {
                x.as_i64().or_else(|| x.as_str()?.parse().ok())
            })?),
        };
        let dept_title = match p.json("dept_title_list")? {
            None => None,
            Some(v) => Some(parse_pairs(&v, "dept_title_list", "title", |x| {
                x.as_str().filter(|t| char_len(t) <= 200).map(str::to_owned)
            })?),
        };
        let extension = match p.json("extension")? {
            None => None,
            Some(Value::Object(map)) => {
                if Value::Object(map.clone()).to_string().chars().count() > 2000 {
                    return Err(Rejection::new(60122, "不合法的扩展属性"));
                }
                Some(map)
            }
            Some(_) => return Err(Rejection::new(60122, "不合法的扩展属性")),
        };
        let hired_date = match p.i64("hired_date")? {
            Some(ms) => Edit::Set(ms),
            None if force.contains("hired_date") => Edit::Clear,
            None => Edit::Keep,
        };
        // The create page says the telephone is unique too; no error code is documented.
        let telephone = text_field(p, "telephone", 50, 40035, &force)?;
        if let Edit::Set(tel) = &telephone
            && let Some(owner) = self.telephones.get(tel)
            && Some(owner.as_str()) != me
        {
            return Err(Rejection::new(40035, "分机号已存在"));
        }
        Ok(UserFields {
            name,
            telephone,
            job_number: text_field(p, "job_number", 50, 60123, &force)?,
            title: text_field(p, "title", 200, 40035, &force)?,
            email,
            org_email: text_field(p, "org_email", 100, 40035, &force)?,
            work_place: text_field(p, "work_place", 100, 40035, &force)?,
            remark: text_field(p, "remark", 2000, 40035, &force)?,
            login_email: text_field(p, "login_email", 100, 40035, &force)?,
            manager_userid,
            dept_ids,
            dept_order,
            dept_title,
            extension,
            hired_date,
            hide_mobile: p.bool("hide_mobile")?,
            senior: p.bool("senior_mode")?,
        })
    }

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
        self.users.insert(userid.clone(), user);
        self.changes.push(Change::UserModify(vec![userid]));
        Ok(Reply::Nothing)
    }

    /// `topapi/v2/user/delete`: the user leaves the org.
    pub fn user_delete(&mut self, p: &Params) -> Outcome<Reply> {
        let userid = p.req_str("userid")?;
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
        for r in &reports {
            let seq = self.next_seq();
            if let Some(u) = self.users.get_mut(r) {
                u.manager_userid = None;
                u.modify_seq = seq;
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
        if !reports.is_empty() {
            self.changes.push(Change::UserModify(reports));
        }
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

    /// `topapi/v2/user/get`.
    pub fn user_get(&self, p: &Params) -> Outcome<Reply> {
        let userid = p.req_str("userid")?;
        let user = self.users.get(&userid).ok_or_else(user_not_found)?;
        Ok(Reply::Result(self.user_detail(user)))
    }

    /// Whether the user manages the department.
    fn leads(&self, user: &User, dept: i64) -> bool {
        self.depts
            .get(&dept)
            .is_some_and(|d| d.manager_userids.contains(&user.userid))
    }

    /// The `v2/user/get` payload of a user.
    pub(crate) fn user_detail(&self, u: &User) -> Value {
        let mut m = self.user_common(u);
        put_opt(&mut m, "manager_userid", u.manager_userid.as_deref());
        m.insert(
            "dept_order_list".into(),
            json!(u
                .dept_ids
                .iter()
                .map(|d| json!({"dept_id": d, "order": u.dept_order.get(d).copied().unwrap_or(0)}))
                .collect::<Vec<_>>()),
        );
        m.insert(
            "leader_in_dept".into(),
            json!(
                u.dept_ids
                    .iter()
                    .map(|d| json!({"dept_id": d, "leader": self.leads(u, *d)}))
                    .collect::<Vec<_>>()
            ),
        );
        let titles: Vec<Value> = u
            .dept_title
            .iter()
            .map(|(d, t)| json!({"dept_id": d, "title": t}))
            .collect();
        if !titles.is_empty() {
            m.insert("dept_title_list".into(), json!(titles));
        }
        let roles: Vec<Value> = u
            .roles
            .iter()
            .filter_map(|r| self.roles.get(r))
            .map(|r| {
                let group = self
                    .groups
                    .get(&r.group_id)
                    .map(|g| g.name.as_str())
                    .unwrap_or("");
                json!({"id": r.id, "name": r.name, "group_name": group})
            })
            .collect();
        if !roles.is_empty() {
            m.insert("role_list".into(), json!(roles));
        }
        m.insert("real_authed".into(), json!(u.active));
        m.insert("senior".into(), json!(u.senior));
        put_opt(&mut m, "login_email", u.login_email.as_deref());
        Value::Object(m)
    }

    /// Fields shared by `v2/user/get` and the items of `v2/user/list`.
    fn user_common(&self, u: &User) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("userid".into(), json!(u.userid));
        m.insert("unionid".into(), json!(u.unionid));
        m.insert("name".into(), json!(u.name));
        m.insert("state_code".into(), json!(u.state_code));
        m.insert("mobile".into(), json!(u.mobile));
        m.insert("hide_mobile".into(), json!(u.hide_mobile));
        put_opt(&mut m, "telephone", u.telephone.as_deref());
        put_opt(&mut m, "job_number", u.job_number.as_deref());
        put_opt(&mut m, "title", u.title.as_deref());
        put_opt(&mut m, "email", u.email.as_deref());
        put_opt(&mut m, "org_email", u.org_email.as_deref());
        put_opt(&mut m, "work_place", u.work_place.as_deref());
        put_opt(&mut m, "remark", u.remark.as_deref());
        m.insert("dept_id_list".into(), json!(u.dept_ids));
        if let Some(ext) = &u.extension {
            m.insert(
                "extension".into(),
                json!(Value::Object(ext.clone()).to_string()),
            );
        }
        if let Some(hired) = u.hired_date {
            m.insert("hired_date".into(), json!(hired));
        }
        m.insert("active".into(), json!(u.active));
        m.insert("admin".into(), json!(u.admin));
        m.insert("boss".into(), json!(u.boss));
        m.insert("exclusive_account".into(), json!(false));
        m
    }

    /// Members of a department, in the order `order_field` asks for.
    fn ordered_members(&self, dept: i64, order_field: &str) -> Vec<&User> {
        let mut members: Vec<&User> = self
            .depts
            .get(&dept)
            .map(|d| d.members.iter().filter_map(|u| self.users.get(u)).collect())
            .unwrap_or_default();
        match order_field {
            "entry_asc" => members.sort_by_key(|u| (u.entry_seq, u.userid.clone())),
            "entry_desc" => {
                members.sort_by_key(|u| (std::cmp::Reverse(u.entry_seq), u.userid.clone()))
            }
            "modify_asc" => members.sort_by_key(|u| (u.modify_seq, u.userid.clone())),
            "modify_desc" => {
                members.sort_by_key(|u| (std::cmp::Reverse(u.modify_seq), u.userid.clone()))
            }
            // "custom": the per-department order, larger first, then by entry.
            _ => members.sort_by_key(|u| {
                (
                    std::cmp::Reverse(u.dept_order.get(&dept).copied().unwrap_or(0)),
                    u.entry_seq,
                )
            }),
        }
        members
    }

    /// Reads the paging parameters shared by `v2/user/list` and `user/listsimple`.
    fn list_page(&self, p: &Params) -> Outcome<(i64, usize, usize, String)> {
        let dept = p.req_i64("dept_id")?;
        let cursor = p.req_i64("cursor")?;
        let size = p.req_i64("size")?;
        if cursor < 0 {
            return Err(Rejection::param("cursor"));
        }
        if !(1..=MAX_LIST_SIZE).contains(&size) {
            return Err(Rejection::param("size"));
        }
        let order = p.str("order_field").unwrap_or_else(|| "custom".to_owned());
        if ![
            "entry_asc",
            "entry_desc",
            "modify_asc",
            "modify_desc",
            "custom",
        ]
        .contains(&order.as_str())
        {
            return Err(Rejection::param("order_field"));
        }
        if !self.depts.contains_key(&dept) {
            return Err(Rejection::new(60003, "部门不存在"));
        }
        let cursor = usize::try_from(cursor).map_err(|_| Rejection::param("cursor"))?;
        let size = usize::try_from(size).map_err(|_| Rejection::param("size"))?;
        Ok((dept, cursor, size, order))
    }

    fn page_result(total: usize, cursor: usize, size: usize, list: Vec<Value>) -> Value {
        let end = cursor.saturating_add(size);
        if end < total {
            json!({"has_more": true, "next_cursor": end, "list": list})
        } else {
            json!({"has_more": false, "list": list})
        }
    }

    /// `topapi/v2/user/list`: one cursor page of a department's direct members.
    pub fn user_list(&self, p: &Params) -> Outcome<Reply> {
        let (dept, cursor, size, order) = self.list_page(p)?;
        let members = self.ordered_members(dept, &order);
        let list: Vec<Value> = members
            .iter()
            .skip(cursor)
            .take(size)
            .map(|u| {
                let mut m = self.user_common(u);
                m.insert(
                    "dept_order".into(),
                    json!(u.dept_order.get(&dept).copied().unwrap_or(0)),
                );
                m.insert("leader".into(), json!(self.leads(u, dept)));
                Value::Object(m)
            })
            .collect();
        Ok(Reply::Result(Self::page_result(
            members.len(),
            cursor,
            size,
            list,
        )))
    }

    /// `topapi/user/listsimple`.
    pub fn user_listsimple(&self, p: &Params) -> Outcome<Reply> {
        let (dept, cursor, size, order) = self.list_page(p)?;
        let members = self.ordered_members(dept, &order);
        let list: Vec<Value> = members
            .iter()
            .skip(cursor)
            .take(size)
            .map(|u| json!({"userid": u.userid, "name": u.name}))
            .collect();
        Ok(Reply::Result(Self::page_result(
            members.len(),
            cursor,
            size,
            list,
        )))
    }

    /// `topapi/user/listid`: every direct member id, unpaged.
    pub fn user_listid(&self, p: &Params) -> Outcome<Reply> {
        let dept = p.req_i64("dept_id")?;
        let d = self
            .depts
            .get(&dept)
            .ok_or_else(|| Rejection::new(60003, "部门不存在"))?;
        let ids: Vec<&String> = d.members.iter().collect();
        Ok(Reply::Result(json!({ "userid_list": ids })))
    }

    /// `topapi/user/count`.
    pub fn user_count(&self, p: &Params) -> Outcome<Reply> {
        let only_active = p
            .bool("only_active")?
            .ok_or_else(|| Rejection::param("only_active"))?;
        let count = if only_active {
            self.users.values().filter(|u| u.active).count()
        } else {
            self.users.len()
        };
        Ok(Reply::Result(json!({ "count": count })))
    }

    /// `topapi/v2/user/getbymobile`: current employees only.
    pub fn user_getbymobile(&self, p: &Params) -> Outcome<Reply> {
        let raw = p.req_str("mobile")?;
        let (cc, number) =
            parse_mobile(&raw).ok_or_else(|| Rejection::new(40104, "无效的手机号"))?;
        let userid = self
            .mobiles
            .get(&mobile_key(&cc, &number))
            .ok_or_else(user_not_found)?;
        Ok(Reply::Result(json!({ "userid": userid })))
    }
}

/// Checks that per-department entries only name departments the user is in.
fn check_pairs_within<T>(
    pairs: &Option<BTreeMap<i64, T>>,
    depts: &[i64],
    name: &str,
) -> Outcome<()> {
    match pairs {
        Some(map) if map.keys().any(|d| !depts.contains(d)) => Err(Rejection::param(name)),
        _ => Ok(()),
    }
}

/// Parses `[{dept_id, <key>}]` into a map, rejecting malformed entries.
fn parse_pairs<T>(
    v: &Value,
    name: &str,
    key: &str,
    read: impl Fn(&Value) -> Option<T>,
) -> Outcome<BTreeMap<i64, T>> {
    let items = v.as_array().ok_or_else(|| Rejection::param(name))?;
    items
        .iter()
        .map(|item| {
            let dept = item
                .get("dept_id")
                .and_then(|d| d.as_i64().or_else(|| d.as_str()?.parse().ok()))
                .ok_or_else(|| Rejection::param(name))?;
            let value = item
                .get(key)
                .and_then(&read)
                .ok_or_else(|| Rejection::param(name))?;
            Ok((dept, value))
        })
        .collect()
}

fn dedup(ids: Vec<i64>) -> Vec<i64> {
    let mut seen = BTreeSet::new();
    ids.into_iter().filter(|d| seen.insert(*d)).collect()
}

fn apply_fields(user: &mut User, f: UserFields, ext_append: bool) {
    if let Edit::Set(name) = f.name {
        user.name = name;
    }
    f.telephone.apply(&mut user.telephone);
    f.job_number.apply(&mut user.job_number);
    f.title.apply(&mut user.title);
    f.email.apply(&mut user.email);
    f.org_email.apply(&mut user.org_email);
    f.work_place.apply(&mut user.work_place);
    f.remark.apply(&mut user.remark);
    f.login_email.apply(&mut user.login_email);
    f.manager_userid.apply(&mut user.manager_userid);
    f.hired_date.apply(&mut user.hired_date);
    if let Some(order) = f.dept_order {
        user.dept_order = order;
    }
    if let Some(title) = f.dept_title {
        user.dept_title = title;
    }
    if let Some(ext) = f.extension {
        match (&mut user.extension, ext_append) {
            (Some(current), true) => current.extend(ext),
            _ => user.extension = Some(ext),
        }
    }
    if let Some(v) = f.hide_mobile {
        user.hide_mobile = v;
    }
    if let Some(v) = f.senior {
        user.senior = v;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn params(v: Value) -> Params {
        Params::from_json(v).expect("object")
    }

    #[test]
    fn mobiles_parse_mainland_and_international() {
        assert_eq!(
            parse_mobile("13800000000"),
            Some(("86".into(), "13800000000".into()))
        );
        assert_eq!(
            parse_mobile("+852-91234567"),
            Some(("852".into(), "91234567".into()))
        );
        assert_eq!(
            parse_mobile("+86-13800000000"),
            Some(("86".into(), "13800000000".into()))
        );
        for bad in [
            "1380000000",
            "23800000000",
            "+86-1234",
            "abc",
            "+852:1234",
            "",
        ] {
            assert_eq!(parse_mobile(bad), None, "{bad}");
        }
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
