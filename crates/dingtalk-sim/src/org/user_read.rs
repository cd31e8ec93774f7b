//! User reads (`topapi/v2/user/{get,list,getbymobile}`,
//! `topapi/user/{listid,listsimple,count,getbyunionid}`): the detail and list shapes, member
//! order within a department, and paging.
//!
//! `getbyunionid` (`{unionid}` → `result: {contact_type, userid}`, `contact_type` 0 for an
//! employee) is not in the facts file; its shape follows DingTalk's page for it, and an unknown
//! or departed unionid answers 60121 like `getbymobile`'s not-found (a choice: the facts do not
//! give its error table).

use serde_json::{Map, Value, json};

use super::user_fields::{mobile_key, parse_mobile, user_not_found};
use super::{Org, User, put_opt};
use crate::envelope::Reply;
use crate::error::{Outcome, Rejection};
use crate::params::Params;

/// Largest `size` of `v2/user/list` and `user/listsimple`.
const MAX_LIST_SIZE: i64 = 100;

/// The user's `avatar` URL. DingTalk omits the field for the default avatar, and a user sets a
/// picture in the app (the API cannot), so only users who have logged in (`active`) can have
/// one; of those, three in four do, chosen from the unionid so it is stable and needs no stored
/// state. The URL has DingTalk's media shape.
pub(super) fn avatar(u: &User) -> Option<String> {
    let pick = u
        .unionid
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
    (u.active && pick % 4 != 0).then(|| {
        format!(
            "https://static-legacy.dingtalk.com/media/lADP{}_240_240.jpg",
            u.unionid
        )
    })
}

impl Org {
    /// `topapi/v2/user/get`.
    pub fn user_get(&self, p: &Params) -> Outcome<Reply> {
        let userid = p.req_str("userid")?;
        let user = self.users.get(&userid).ok_or_else(user_not_found)?;
        Ok(Reply::Result(self.user_detail(user)))
    }

    /// Whether the user manages the department.
    pub(super) fn leads(&self, user: &User, dept: i64) -> bool {
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
        self.union_user_fields(u, &mut m);
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
        if let Some(avatar) = avatar(u) {
            m.insert("avatar".into(), json!(avatar));
        }
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
    pub(super) fn ordered_members(&self, dept: i64, order_field: &str) -> Vec<&User> {
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
        self.member_page(p, |u, dept| {
            let mut m = self.user_common(u);
            m.insert(
                "dept_order".into(),
                json!(u.dept_order.get(&dept).copied().unwrap_or(0)),
            );
            m.insert("leader".into(), json!(self.leads(u, dept)));
            Value::Object(m)
        })
    }

    /// `topapi/user/listsimple`.
    pub fn user_listsimple(&self, p: &Params) -> Outcome<Reply> {
        self.member_page(p, |u, _| json!({"userid": u.userid, "name": u.name}))
    }

    /// One cursor page of a department's direct members in the requested order, each shown by
    /// `row(user, dept)`.
    fn member_page(&self, p: &Params, row: impl Fn(&User, i64) -> Value) -> Outcome<Reply> {
        let (dept, cursor, size, order) = self.list_page(p)?;
        let members = self.ordered_members(dept, &order);
        let list: Vec<Value> = members
            .iter()
            .skip(cursor)
            .take(size)
            .map(|u| row(u, dept))
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

    /// `topapi/user/getbyunionid`: current employees only.
    pub fn user_getbyunionid(&self, p: &Params) -> Outcome<Reply> {
        let unionid = p.req_str("unionid")?;
        let user = self
            .users
            .values()
            .find(|u| u.unionid == unionid)
            .ok_or_else(user_not_found)?;
        Ok(Reply::Result(
            json!({ "contact_type": 0, "userid": user.userid }),
        ))
    }
}
