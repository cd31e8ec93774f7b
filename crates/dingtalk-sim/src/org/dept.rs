//! Department endpoints (`topapi/v2/department/*`) and their rules.
//!
//! Validation always finishes before the first mutation, so a rejected call leaves the org
//! exactly as it was (DingTalk's writes are atomic per call).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::{Change, Dept, MAX_DEPTH, Org, ROOT_DEPT, char_len, put_opt};
use crate::envelope::Reply;
use crate::error::{Outcome, Rejection};
use crate::params::Params;

/// Permit lists (`dept_permits` + `user_permits`, and the outer pair) hold at most this many.
const MAX_PERMITS: usize = 50;

fn not_found() -> Rejection {
    Rejection::new(60003, "部门不存在")
}

/// Checks a department name: 1–64 characters (60001), no `-`, `,` or `，` (60009).
pub(crate) fn check_dept_name(name: &str) -> Outcome<()> {
    let len = char_len(name);
    if len == 0 || len > 64 || name.trim().is_empty() {
        return Err(Rejection::new(60001, "部门名称不合法，长度不能超过64"));
    }
    if name.contains(['-', ',', '，']) {
        return Err(Rejection::new(60009, "部门名称含有非法字符"));
    }
    Ok(())
}

impl Org {
    /// Children of a department in DingTalk's display order (`order` ascending, then id).
    pub(crate) fn sorted_children(&self, id: i64) -> Vec<&Dept> {
        let mut children: Vec<&Dept> = self
            .depts
            .get(&id)
            .map(|d| {
                d.children
                    .iter()
                    .filter_map(|c| self.depts.get(c))
                    .collect()
            })
            .unwrap_or_default();
        children.sort_by_key(|d| (d.order, d.id));
        children
    }

    /// Whether another child of `parent` (other than `except`) already has `name`.
    fn sibling_name_taken(&self, parent: i64, name: &str, except: Option<i64>) -> bool {
        self.depts.get(&parent).is_some_and(|p| {
            p.children
                .iter()
                .any(|c| Some(*c) != except && self.depts.get(c).is_some_and(|d| d.name == name))
        })
    }

    fn dup_name(&self) -> Rejection {
        Rejection::new(self.dup_dept_name_code, "父部门下该部门名称已存在")
    }

    /// Height of the subtree under `id` (0 for a leaf).
    fn subtree_height(&self, id: i64) -> usize {
        let mut height = 0;
        let mut frontier = vec![(id, 0usize)];
        while let Some((current, level)) = frontier.pop() {
            height = height.max(level);
            if let Some(d) = self.depts.get(&current) {
                frontier.extend(d.children.iter().map(|c| (*c, level + 1)));
            }
        }
        height
    }

    /// Whether `candidate` is `id` or lies below it.
    fn is_self_or_descendant(&self, id: i64, mut candidate: i64) -> bool {
        let mut steps = 0;
        loop {
            if candidate == id {
                return true;
            }
            if candidate == ROOT_DEPT || steps > self.depts.len() {
                return false;
            }
            match self.depts.get(&candidate) {
                Some(d) => candidate = d.parent_id,
                None => return false,
            }
            steps += 1;
        }
    }

    fn check_permits(&self, depts: &[i64], users: &[String]) -> Outcome<()> {
        if depts.len() + users.len() > MAX_PERMITS
            || depts.iter().any(|d| !self.depts.contains_key(d))
            || users.iter().any(|u| !self.users.contains_key(u))
        {
            return Err(Rejection::new(600109, "权限列表不合法"));
        }
        Ok(())
    }

    /// The `department/get` payload of a department.
    pub(crate) fn dept_detail(&self, d: &Dept) -> Value {
        let mut m = Map::new();
        m.insert("dept_id".into(), json!(d.id));
        m.insert("name".into(), json!(d.name));
        if d.id != ROOT_DEPT {
            m.insert("parent_id".into(), json!(d.parent_id));
        }
        put_opt(&mut m, "source_identifier", d.source_identifier.as_deref());
        m.insert("create_dept_group".into(), json!(d.create_dept_group));
        m.insert("auto_add_user".into(), json!(d.auto_add_user));
        if d.create_dept_group {
            m.insert("dept_group_chat_id".into(), json!(group_chat_id(d.id)));
        }
        self.union_dept_fields(d.id, &mut m);
        m.insert("order".into(), json!(d.order));
        m.insert(
            "group_contain_sub_dept".into(),
            json!(d.group_contain_sub_dept),
        );
        put_opt(&mut m, "org_dept_owner", d.org_dept_owner.as_deref());
        if !d.manager_userids.is_empty() {
            m.insert("dept_manager_userid_list".into(), json!(d.manager_userids));
        }
        m.insert("outer_dept".into(), json!(d.outer_dept));
        if !d.outer_permit_depts.is_empty() {
            m.insert("outer_permit_depts".into(), json!(d.outer_permit_depts));
        }
        if !d.outer_permit_users.is_empty() {
            m.insert("outer_permit_users".into(), json!(d.outer_permit_users));
        }
        m.insert("hide_dept".into(), json!(d.hide_dept));
        if !d.dept_permits.is_empty() {
            m.insert("dept_permits".into(), json!(d.dept_permits));
        }
        if !d.user_permits.is_empty() {
            m.insert("user_permits".into(), json!(d.user_permits));
        }
        put_opt(&mut m, "code", d.code.as_deref());
        m.insert("member_count".into(), json!(d.members.len()));
        m.insert("brief".into(), json!(""));
        Value::Object(m)
    }

    /// The `department/listsub` item of a department.
    fn dept_brief(d: &Dept) -> Value {
        json!({
            "dept_id": d.id,
            "name": d.name,
            "parent_id": d.parent_id,
            "create_dept_group": d.create_dept_group,
            "auto_add_user": d.auto_add_user,
        })
    }

    /// `topapi/v2/department/listsub`: immediate children (default: of root).
    pub fn dept_listsub(&self, p: &Params) -> Outcome<Reply> {
        let id = p.i64("dept_id")?.unwrap_or(ROOT_DEPT);
        if !self.depts.contains_key(&id) {
            return Err(not_found());
        }
        let list: Vec<Value> = self
            .sorted_children(id)
            .into_iter()
            .map(|d| {
                let mut item = Self::dept_brief(d);
                if self.union_depts.contains_key(&d.id)
                    && let Value::Object(m) = &mut item
                {
                    m.insert("from_union_org".into(), json!(true));
                }
                item
            })
            .collect();
        Ok(Reply::Result(Value::Array(list)))
    }

    /// `topapi/v2/department/listsubid`: immediate child ids.
    pub fn dept_listsubid(&self, p: &Params) -> Outcome<Reply> {
        let id = p.req_i64("dept_id")?;
        if !self.depts.contains_key(&id) {
            return Err(not_found());
        }
        let ids: Vec<i64> = self.sorted_children(id).into_iter().map(|d| d.id).collect();
        Ok(Reply::Result(json!({ "dept_id_list": ids })))
    }

    /// `topapi/v2/department/get`.
    pub fn dept_get(&self, p: &Params) -> Outcome<Reply> {
        let id = p.req_i64("dept_id")?;
        let d = self.depts.get(&id).ok_or_else(not_found)?;
        Ok(Reply::Result(self.dept_detail(d)))
    }

    /// The chain from a department up to root, both included.
    fn parent_chain(&self, id: i64) -> Vec<i64> {
        let mut chain = vec![id];
        let mut current = id;
        while current != ROOT_DEPT {
            match self.depts.get(&current) {
                Some(d) => current = d.parent_id,
                None => break,
            }
            chain.push(current);
            if chain.len() > self.depts.len() + 1 {
                break;
            }
        }
        chain
    }

    /// `topapi/v2/department/listparentbydept`.
    pub fn dept_listparentbydept(&self, p: &Params) -> Outcome<Reply> {
        let id = p.req_i64("dept_id")?;
        if !self.depts.contains_key(&id) {
            return Err(not_found());
        }
        Ok(Reply::Result(
            json!({ "parent_id_list": self.parent_chain(id) }),
        ))
    }

    /// `topapi/v2/department/listparentbyuser`.
    pub fn dept_listparentbyuser(&self, p: &Params) -> Outcome<Reply> {
        let userid = p.req_str("userid")?;
        let user = self
            .users
            .get(&userid)
            .ok_or_else(|| Rejection::new(33012, "无效的USERID"))?;
        let list: Vec<Value> = user
            .dept_ids
            .iter()
            .map(|d| json!({ "parent_dept_id_list": self.parent_chain(*d) }))
            .collect();
        Ok(Reply::Result(json!({ "parent_list": list })))
    }

    /// `topapi/v2/department/create`.
    pub fn dept_create(&mut self, p: &Params) -> Outcome<Reply> {
        let name = p.req_str("name")?;
        let parent_id = p.req_i64("parent_id")?;
        check_dept_name(&name)?;
        self.refuse_union_dept(parent_id)?;
        let parent_depth = self
            .depth(parent_id)
            .filter(|_| self.depts.contains_key(&parent_id))
            .ok_or_else(|| Rejection::new(60004, "父部门不存在"))?;
        if parent_depth + 1 > MAX_DEPTH {
            return Err(Rejection::new(60002, "部门层级深度超过限制"));
        }
        if self.sibling_name_taken(parent_id, &name, None) {
            return Err(self.dup_name());
        }
        let order = p
            .i64("order")
            .map_err(|_| Rejection::new(40011, "不合法的排序"))?;
        let dept_permits = p.i64_list("dept_permits")?.unwrap_or_default();
        let user_permits = p.str_list("user_permits")?.unwrap_or_default();
        if dept_permits.len() > MAX_PERMITS || user_permits.len() > MAX_PERMITS {
            return Err(Rejection::new(600109, "权限列表不合法"));
        }
        self.check_permits(&dept_permits, &[])?;
        self.check_permits(&[], &user_permits)?;
        let outer_depts = p.i64_list("outer_permit_depts")?.unwrap_or_default();
        let outer_users = p.str_list("outer_permit_users")?.unwrap_or_default();
        // On create each outer list may hold 50 (the create page); only update caps their sum.
        if outer_depts.len() > MAX_PERMITS || outer_users.len() > MAX_PERMITS {
            return Err(Rejection::new(600109, "权限列表不合法"));
        }
        self.check_permits(&outer_depts, &[])?;
        self.check_permits(&[], &outer_users)?;
        let source_identifier = p.str("source_identifier").filter(|s| !s.is_empty());
        let flags = [
            p.bool("hide_dept")?,
            p.bool("outer_dept")?,
            p.bool("outer_dept_only_self")?,
            p.bool("create_dept_group")?,
            p.bool("auto_approve_apply")?,
        ];

        let id = self.next_dept_id();
        let mut d = Dept::new(id, name, parent_id);
        d.order = order.unwrap_or(0);
        d.source_identifier = source_identifier;
        d.hide_dept = flags[0].unwrap_or(false);
        d.outer_dept = flags[1].unwrap_or(false);
        d.outer_dept_only_self = flags[2].unwrap_or(false);
        d.create_dept_group = flags[3].unwrap_or(false);
        d.dept_permits = dept_permits;
        d.user_permits = user_permits;
        d.outer_permit_depts = outer_depts;
        d.outer_permit_users = outer_users;
        self.depts.insert(id, d);
        if let Some(parent) = self.depts.get_mut(&parent_id) {
            parent.children.insert(id);
        }
        self.changes.push(Change::DeptCreate(vec![id]));
        Ok(Reply::Result(json!({ "dept_id": id })))
    }

    /// `topapi/v2/department/update`: read and check everything first (in DingTalk's order, so
    /// the first bad field is the one it names), then move and change the department.
    pub fn dept_update(&mut self, p: &Params) -> Outcome<Reply> {
        let id = p
            .i64("dept_id")
            .ok()
            .flatten()
            .filter(|id| *id > 0)
            .ok_or_else(|| Rejection::new(40009, "不合法的部门id"))?;
        if id == ROOT_DEPT {
            return Err(Rejection::new(60018, "根部门不能修改"));
        }
        let current = self.depts.get(&id).ok_or_else(not_found)?;
        self.refuse_union_dept(id)?;
        let force: BTreeSet<String> = p
            .str_list("force_update_fields")?
            .unwrap_or_default()
            .into_iter()
            .collect();
        let (name, parent) = self.checked_name_and_parent(id, current, p)?;
        self.refuse_union_dept(parent)?;
        let update = self.read_dept_update(current, p, &force, name)?;
        self.move_dept(id, current.parent_id, parent);
        let Some(d) = self.depts.get_mut(&id) else {
            return Err(not_found());
        };
        d.parent_id = parent;
        update.apply_to(d, &force);
        self.changes.push(Change::DeptModify(vec![id]));
        Ok(Reply::Nothing)
    }

    /// The new name (if given) and the parent after the update, checked: the parent exists,
    /// is not inside the department, keeps the depth limit, and the name is free among the new
    /// siblings.
    fn checked_name_and_parent(
        &self,
        id: i64,
        current: &Dept,
        p: &Params,
    ) -> Outcome<(Option<String>, i64)> {
        let name = p.str("name").filter(|s| !s.is_empty());
        if let Some(name) = &name {
            check_dept_name(name)?;
        }
        let new_parent = p
            .i64("parent_id")
            .map_err(|_| Rejection::new(40010, "不合法的父部门id"))?;
        let parent = new_parent.unwrap_or(current.parent_id);
        if new_parent.is_some() && parent != current.parent_id {
            if !self.depts.contains_key(&parent) {
                return Err(Rejection::new(60004, "父部门不存在"));
            }
            if self.is_self_or_descendant(id, parent) {
                return Err(Rejection::new(60010, "部门不能移动到自己或子部门下"));
            }
            let parent_depth = self.depth(parent).unwrap_or(MAX_DEPTH);
            if parent_depth + 1 + self.subtree_height(id) > MAX_DEPTH {
                return Err(Rejection::new(60002, "部门层级深度超过限制"));
            }
        }
        let final_name = name.clone().unwrap_or_else(|| current.name.clone());
        if (name.is_some() || parent != current.parent_id)
            && self.sibling_name_taken(parent, &final_name, Some(id))
        {
            return Err(self.dup_name());
        }
        Ok((name, parent))
    }

    /// Reads and checks every other field of an update.
    fn read_dept_update(
        &self,
        current: &Dept,
        p: &Params,
        force: &BTreeSet<String>,
        name: Option<String>,
    ) -> Outcome<DeptUpdate> {
        let order = p
            .i64("order")
            .map_err(|_| Rejection::new(40011, "不合法的排序"))?;
        let managers = p.str_list("dept_manager_userid_list")?;
        if let Some(list) = &managers
            && list.iter().any(|u| !self.users.contains_key(u))
        {
            return Err(Rejection::new(40031, "不合法的用户id列表"));
        }
        let clear_managers = force.contains("dept_manager_userid_list")
            && managers.as_ref().is_none_or(Vec::is_empty);
        let dept_permits = p.i64_list("dept_permits")?;
        let user_permits = p.str_list("user_permits")?;
        if dept_permits.is_some() || user_permits.is_some() {
            self.check_permits(
                dept_permits.as_deref().unwrap_or(&current.dept_permits),
                user_permits.as_deref().unwrap_or(&current.user_permits),
            )?;
        }
        let outer_depts = p.i64_list("outer_permit_depts")?;
        let outer_users = p.str_list("outer_permit_users")?;
        if outer_depts.is_some() || outer_users.is_some() {
            self.check_permits(
                outer_depts
                    .as_deref()
                    .unwrap_or(&current.outer_permit_depts),
                outer_users
                    .as_deref()
                    .unwrap_or(&current.outer_permit_users),
            )?;
        }
        let code = p.str("code");
        if code.as_deref().is_some_and(|c| char_len(c) > 30) {
            return Err(Rejection::param("code"));
        }
        let owner = p.str("org_dept_owner").filter(|s| !s.is_empty());
        if let Some(owner) = &owner
            && !self.users.contains_key(owner)
        {
            return Err(Rejection::new(40031, "不合法的用户id列表"));
        }
        Ok(DeptUpdate {
            name,
            order,
            managers,
            clear_managers,
            dept_permits,
            user_permits,
            outer_depts,
            outer_users,
            code,
            owner,
            source_identifier: p.str("source_identifier"),
            flags: [
                p.bool("hide_dept")?,
                p.bool("outer_dept")?,
                p.bool("outer_dept_only_self")?,
                p.bool("create_dept_group")?,
                p.bool("auto_add_user")?,
                p.bool("group_contain_sub_dept")?,
            ],
        })
    }

    /// Moves department `id` from `old_parent`'s children to `parent`'s.
    fn move_dept(&mut self, id: i64, old_parent: i64, parent: i64) {
        if parent == old_parent {
            return;
        }
        if let Some(old) = self.depts.get_mut(&old_parent) {
            old.children.remove(&id);
        }
        if let Some(new) = self.depts.get_mut(&parent) {
            new.children.insert(id);
        }
    }

    /// `topapi/v2/department/delete`.
    pub fn dept_delete(&mut self, p: &Params) -> Outcome<Reply> {
        let id = p.req_i64("dept_id")?;
        if id == ROOT_DEPT {
            return Err(Rejection::new(60007, "根部门不能删除"));
        }
        let d = self.depts.get(&id).ok_or_else(not_found)?;
        self.refuse_union_dept(id)?;
        if !d.children.is_empty() {
            return Err(Rejection::new(60006, "该部门下存在子部门，无法删除"));
        }
        if !d.members.is_empty() {
            return Err(Rejection::new(60005, "该部门下存在员工，无法删除"));
        }
        let parent = d.parent_id;
        self.depts.remove(&id);
        if let Some(p) = self.depts.get_mut(&parent) {
            p.children.remove(&id);
        }
        // Permit lists that named the department lose it.
        for other in self.depts.values_mut() {
            other.dept_permits.retain(|x| *x != id);
            other.outer_permit_depts.retain(|x| *x != id);
        }
        self.changes.push(Change::DeptRemove(vec![id]));
        Ok(Reply::Nothing)
    }
}

/// The checked fields of a `department/update` other than the parent; `None` = not given.
struct DeptUpdate {
    name: Option<String>,
    order: Option<i64>,
    managers: Option<Vec<String>>,
    /// `force_update_fields` names the manager list and none was given: clear it.
    clear_managers: bool,
    dept_permits: Option<Vec<i64>>,
    user_permits: Option<Vec<String>>,
    outer_depts: Option<Vec<i64>>,
    outer_users: Option<Vec<String>>,
    code: Option<String>,
    owner: Option<String>,
    source_identifier: Option<String>,
    /// `hide_dept`, `outer_dept`, `outer_dept_only_self`, `create_dept_group`,
    /// `auto_add_user`, `group_contain_sub_dept`, in that order.
    flags: [Option<bool>; 6],
}

impl DeptUpdate {
    /// Writes the given fields onto the department.
    fn apply_to(self, d: &mut Dept, force: &BTreeSet<String>) {
        if let Some(name) = self.name {
            d.name = name;
        }
        if let Some(order) = self.order {
            d.order = order;
        }
        if self.clear_managers {
            d.manager_userids.clear();
        } else if let Some(list) = self.managers.filter(|l| !l.is_empty()) {
            d.manager_userids = list;
        }
        if let Some(v) = self.dept_permits {
            d.dept_permits = v;
        }
        if let Some(v) = self.user_permits {
            d.user_permits = v;
        }
        if let Some(v) = self.outer_depts {
            d.outer_permit_depts = v;
        }
        if let Some(v) = self.outer_users {
            d.outer_permit_users = v;
        }
        if let Some(code) = self.code {
            d.code = Some(code).filter(|c| !c.is_empty());
        }
        if let Some(owner) = self.owner {
            d.org_dept_owner = Some(owner);
        }
        if let Some(si) = self.source_identifier
            && (!si.is_empty() || force.contains("source_identifier"))
        {
            d.source_identifier = Some(si).filter(|s| !s.is_empty());
        }
        let targets = [
            &mut d.hide_dept,
            &mut d.outer_dept,
            &mut d.outer_dept_only_self,
            &mut d.create_dept_group,
            &mut d.auto_add_user,
            &mut d.group_contain_sub_dept,
        ];
        for (target, flag) in targets.into_iter().zip(self.flags) {
            if let Some(v) = flag {
                *target = v;
            }
        }
    }
}

/// The id of the department's group chat (`dept_group_chat_id`), for a department created (or
/// updated) with `create_dept_group`: `chat` and 32 hex digits, derived from the department id so
/// it is stable for the department's life and needs no stored state. A department without a
/// group has no such field, as DingTalk omits empty fields.
pub(crate) fn group_chat_id(dept: i64) -> String {
    // SplitMix64 of the id, twice: distinct departments get distinct chats.
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    let id = dept.unsigned_abs();
    format!("chat{:016x}{:016x}", mix(id), mix(!id))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn params(v: Value) -> Params {
        Params::from_json(v).expect("object")
    }

    fn create(org: &mut Org, name: &str, parent: i64) -> Outcome<i64> {
        match org.dept_create(&params(json!({"name": name, "parent_id": parent})))? {
            Reply::Result(v) => Ok(v["dept_id"].as_i64().unwrap_or_default()),
            other => panic!("unexpected reply {other:?}"),
        }
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(check_dept_name("").map_err(|r| r.code), Err(60001));
        assert_eq!(
            check_dept_name(&"字".repeat(65)).map_err(|r| r.code),
            Err(60001)
        );
        assert!(check_dept_name(&"字".repeat(64)).is_ok());
        for bad in ["a-b", "a,b", "a，b"] {
            assert_eq!(check_dept_name(bad).map_err(|r| r.code), Err(60009));
        }
    }

    #[test]
    fn move_into_own_subtree_is_a_cycle() {
        let mut org = Org::new("Corp", 1, 60008);
        let a = create(&mut org, "A", 1).expect("create A");
        let b = create(&mut org, "B", a).expect("create B");
        let err = org
            .dept_update(&params(json!({"dept_id": a, "parent_id": b})))
            .map(|_| ())
            .map_err(|r| r.code);
        assert_eq!(err, Err(60010));
        assert_eq!(org.depts[&a].parent_id, 1);
    }

    #[test]
    fn depth_limit_applies_to_create_and_move() {
        let mut org = Org::new("Corp", 1, 60008);
        let mut parent = 1;
        for level in 0..MAX_DEPTH {
            parent = create(&mut org, &format!("L{level}"), parent).expect("within limit");
        }
        assert_eq!(
            create(&mut org, "too deep", parent).map_err(|r| r.code),
            Err(60002)
        );
        let side = create(&mut org, "side", 1).expect("create side");
        let err = org
            .dept_update(&params(json!({"dept_id": side, "parent_id": parent})))
            .map(|_| ())
            .map_err(|r| r.code);
        assert_eq!(err, Err(60002));
    }

    #[test]
    fn duplicate_sibling_name_uses_configured_code() {
        let mut org = Org::new("Corp", 1, 60021);
        create(&mut org, "Sales", 1).expect("first");
        assert_eq!(create(&mut org, "Sales", 1).map_err(|r| r.code), Err(60021));
    }
}
