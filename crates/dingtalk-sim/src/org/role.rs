//! Role endpoints (`topapi/role/*` and the legacy `role/*`) and their rules.
//!
//! Request field names differ between endpoints exactly as DingTalk's do (`roleId` on `getrole`,
//! `role_id` on `deleterole`, `groupId` on `add_role`, `group_id` on `getrolegroup`); they are
//! spelled out per endpoint here rather than normalised, so a client using the wrong one fails
//! as it would against DingTalk.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::{Change, Org, Role, RoleGroup};
use crate::envelope::Reply;
use crate::error::{Outcome, Rejection};
use crate::params::Params;

/// `addrolesforemps`/`removerolesforemps` take at most this many roles.
const MAX_ROLES_PER_CALL: usize = 20;
/// `addrolesforemps` takes at most this many users.
const MAX_ADD_USERS: usize = 20;
/// `removerolesforemps` takes at most this many users.
const MAX_REMOVE_USERS: usize = 100;

fn bad_role() -> Rejection {
    Rejection::new(33011, "无效的角色id")
}

fn system_label() -> Rejection {
    Rejection::new(23004, "系统标签不允许操作")
}

/// Reads offset paging: `size` within 1..=max (40069), `offset` not negative (40068).
fn offset_page(p: &Params, max: i64) -> Outcome<(usize, usize)> {
    let size = p
        .i64("size")
        .map_err(|_| Rejection::new(40069, "不合法的分页大小"))?
        .unwrap_or(20);
    let offset = p
        .i64("offset")
        .map_err(|_| Rejection::new(40068, "不合法的分页偏移量"))?
        .unwrap_or(0);
    if !(1..=max).contains(&size) {
        return Err(Rejection::new(40069, "不合法的分页大小"));
    }
    let offset =
        usize::try_from(offset).map_err(|_| Rejection::new(40068, "不合法的分页偏移量"))?;
    let size = usize::try_from(size).map_err(|_| Rejection::new(40069, "不合法的分页大小"))?;
    Ok((offset, size))
}

impl Org {
    fn role_snapshot(role: &Role) -> Value {
        json!({"id": role.id, "name": role.name, "groupId": role.group_id})
    }

    /// Reads a role name: not empty (34018).
    fn role_name(p: &Params, field: &str, empty_code: i64) -> Outcome<String> {
        match p.str(field) {
            Some(name) if !name.trim().is_empty() && name.chars().count() <= 64 => Ok(name),
            Some(name) if !name.trim().is_empty() => Err(Rejection::param(field)),
            _ => Err(Rejection::new(empty_code, "角色名称不能为空")),
        }
    }

    fn name_taken_in_group(&self, group: i64, name: &str, except: Option<i64>) -> bool {
        self.groups.get(&group).is_some_and(|g| {
            g.roles
                .iter()
                .any(|r| Some(*r) != except && self.roles.get(r).is_some_and(|x| x.name == name))
        })
    }

    /// `topapi/role/list`: role groups with their roles, offset-paged over groups.
    pub fn role_list(&self, p: &Params) -> Outcome<Reply> {
        let (offset, size) = offset_page(p, 200)?;
        let list: Vec<Value> = self
            .groups
            .values()
            .skip(offset)
            .take(size)
            .map(|g| {
                let roles: Vec<Value> = g
                    .roles
                    .iter()
                    .filter_map(|r| self.roles.get(r))
                    .map(|r| json!({"id": r.id, "name": r.name}))
                    .collect();
                json!({"groupId": g.id, "name": g.name, "roles": roles})
            })
            .collect();
        let has_more = offset.saturating_add(size) < self.groups.len();
        Ok(Reply::Result(json!({"hasMore": has_more, "list": list})))
    }

    /// `role/add_role_group`.
    pub fn role_add_group(&mut self, p: &Params) -> Outcome<Reply> {
        let name = p.req_str("name")?;
        if name.chars().count() > 64 {
            return Err(Rejection::param("name"));
        }
        let id = self.next_label_id();
        self.groups.insert(
            id,
            RoleGroup {
                id,
                name,
                builtin: false,
                roles: BTreeSet::new(),
            },
        );
        let mut m = Map::new();
        m.insert("groupId".into(), json!(id));
        Ok(Reply::Fields(m))
    }

    /// `role/add_role`.
    pub fn role_add(&mut self, p: &Params) -> Outcome<Reply> {
        let name = Self::role_name(p, "roleName", 34018)?;
        let group = p
            .i64("groupId")
            .ok()
            .flatten()
            .ok_or_else(|| Rejection::new(34020, "无效的groupId"))?;
        let g = self
            .groups
            .get(&group)
            .ok_or_else(|| Rejection::new(34020, "无效的groupId"))?;
        if g.builtin {
            return Err(Rejection::new(34020, "无效的groupId"));
        }
        if self.name_taken_in_group(group, &name, None) {
            return Err(Rejection::new(34021, "角色名称已存在"));
        }
        let id = self.next_label_id();
        self.roles.insert(
            id,
            Role {
                id,
                name,
                group_id: group,
                builtin: false,
                members: BTreeSet::new(),
            },
        );
        if let Some(g) = self.groups.get_mut(&group) {
            g.roles.insert(id);
        }
        self.changes.push(Change::LabelConfAdd(vec![id]));
        let mut m = Map::new();
        m.insert("roleId".into(), json!(id));
        Ok(Reply::Fields(m))
    }

    /// `role/update_role`: renames a role.
    pub fn role_update(&mut self, p: &Params) -> Outcome<Reply> {
        let id = p
            .i64("roleId")
            .ok()
            .flatten()
            .ok_or_else(|| Rejection::new(660000, "参数为空"))?;
        let name = Self::role_name(p, "roleName", 660000)?;
        let role = self.roles.get(&id).ok_or_else(bad_role)?;
        if role.builtin {
            return Err(system_label());
        }
        if self.name_taken_in_group(role.group_id, &name, Some(id)) {
            return Err(Rejection::new(34021, "角色名称已存在"));
        }
        let pre = Self::role_snapshot(role);
        let Some(role) = self.roles.get_mut(&id) else {
            return Err(bad_role());
        };
        role.name = name;
        let post = Self::role_snapshot(role);
        self.changes.push(Change::LabelConfModify {
            labels: vec![id],
            pre: vec![pre],
            post: vec![post],
        });
        Ok(Reply::Fields(Map::new()))
    }

    /// `topapi/role/deleterole`: only roles without members, never built-in ones.
    pub fn role_delete(&mut self, p: &Params) -> Outcome<Reply> {
        let id = p.i64("role_id").ok().flatten().ok_or_else(bad_role)?;
        let role = self.roles.get(&id).ok_or_else(bad_role)?;
        if role.builtin {
            return Err(system_label());
        }
        if !role.members.is_empty() {
            return Err(Rejection::new(1002, "角色下存在员工，不能删除"));
        }
        let group = role.group_id;
        self.roles.remove(&id);
        if let Some(g) = self.groups.get_mut(&group) {
            g.roles.remove(&id);
        }
        self.changes.push(Change::LabelConfDel(vec![id]));
        Ok(Reply::Nothing)
    }

    /// `topapi/role/getrolegroup`: top-level `role_group`, no `result` wrapper.
    pub fn role_getrolegroup(&self, p: &Params) -> Outcome<Reply> {
        let id = p
            .i64("group_id")
            .ok()
            .flatten()
            .ok_or_else(|| Rejection::new(400002, "无效的参数 group_id"))?;
        let g = self
            .groups
            .get(&id)
            .ok_or_else(|| Rejection::new(400002, "无效的参数 group_id"))?;
        let roles: Vec<Value> = g
            .roles
            .iter()
            .filter_map(|r| self.roles.get(r))
            .map(|r| json!({"role_id": r.id, "role_name": r.name}))
            .collect();
        let mut m = Map::new();
        m.insert(
            "role_group".into(),
            json!({"group_name": g.name, "roles": roles}),
        );
        Ok(Reply::Fields(m))
    }

    /// `topapi/role/getrole`: top-level `role`, no `result` wrapper.
    pub fn role_getrole(&self, p: &Params) -> Outcome<Reply> {
        let id = p.i64("roleId").ok().flatten().ok_or_else(bad_role)?;
        let r = self.roles.get(&id).ok_or_else(bad_role)?;
        let mut m = Map::new();
        m.insert(
            "role".into(),
            json!({"name": r.name, "groupId": r.group_id}),
        );
        Ok(Reply::Fields(m))
    }

    /// Reads and checks the role and user lists of the batch membership endpoints.
    fn batch(&self, p: &Params, max_users: usize) -> Outcome<(Vec<i64>, Vec<String>)> {
        let roles = p
            .str_list("roleIds")?
            .filter(|l| !l.is_empty())
            .ok_or_else(|| Rejection::param("roleIds"))?;
        let users = p
            .str_list("userIds")?
            .filter(|l| !l.is_empty())
            .ok_or_else(|| Rejection::param("userIds"))?;
        if roles.len() > MAX_ROLES_PER_CALL {
            return Err(Rejection::param("roleIds"));
        }
        if users.len() > max_users {
            return Err(Rejection::param("userIds"));
        }
        let mut role_ids = Vec::new();
        for r in &roles {
            let id: i64 = r.parse().map_err(|_| bad_role())?;
            let role = self.roles.get(&id).ok_or_else(bad_role)?;
            if role.builtin {
                return Err(system_label());
            }
            if !role_ids.contains(&id) {
                role_ids.push(id);
            }
        }
        let mut user_ids: Vec<String> = Vec::new();
        for u in users {
            if !self.users.contains_key(&u) {
                return Err(Rejection::new(33012, "无效的USERID"));
            }
            if !user_ids.contains(&u) {
                user_ids.push(u);
            }
        }
        Ok((role_ids, user_ids))
    }

    /// `topapi/role/addrolesforemps`.
    pub fn role_add_for_emps(&mut self, p: &Params) -> Outcome<Reply> {
        let (roles, users) = self.batch(p, MAX_ADD_USERS)?;
        self.set_membership(&roles, &users, true);
        self.changes.push(Change::LabelMembership {
            users,
            labels: roles,
            action: "add",
        });
        Ok(Reply::Nothing)
    }

    /// `topapi/role/removerolesforemps`.
    pub fn role_remove_for_emps(&mut self, p: &Params) -> Outcome<Reply> {
        let (roles, users) = self.batch(p, MAX_REMOVE_USERS)?;
        self.set_membership(&roles, &users, false);
        self.changes.push(Change::LabelMembership {
            users,
            labels: roles,
            action: "remove",
        });
        Ok(Reply::Nothing)
    }

    fn set_membership(&mut self, roles: &[i64], users: &[String], add: bool) {
        for r in roles {
            if let Some(role) = self.roles.get_mut(r) {
                for u in users {
                    if add {
                        role.members.insert(u.clone());
                    } else {
                        role.members.remove(u);
                    }
                }
            }
        }
        for u in users {
            if let Some(user) = self.users.get_mut(u) {
                for r in roles {
                    if add {
                        user.roles.insert(*r);
                    } else {
                        user.roles.remove(r);
                    }
                }
            }
        }
    }

    /// `topapi/role/simplelist`: members of one role, offset-paged.
    pub fn role_simplelist(&self, p: &Params) -> Outcome<Reply> {
        let id = p
            .i64("role_id")
            .map_err(|_| bad_role())?
            .ok_or_else(|| Rejection::param("role_id"))?;
        let (offset, size) = offset_page(p, 100)?;
        let role = self.roles.get(&id).ok_or_else(bad_role)?;
        let list: Vec<Value> = role
            .members
            .iter()
            .skip(offset)
            .take(size)
            .filter_map(|u| self.users.get(u))
            .map(|u| json!({"userid": u.userid, "name": u.name}))
            .collect();
        let has_more = offset.saturating_add(size) < role.members.len();
        Ok(Reply::Result(json!({"hasMore": has_more, "list": list})))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: Value) -> Params {
        Params::from_json(v).expect("object")
    }

    #[test]
    fn builtin_roles_are_protected() {
        let mut org = Org::new("Corp", 1, 60008);
        let builtin = *org.roles.keys().next().expect("built-in role");
        let rename = org.role_update(&params(json!({"roleId": builtin, "roleName": "x"})));
        assert_eq!(rename.map(|_| ()).map_err(|r| r.code), Err(23004));
        let delete = org.role_delete(&params(json!({"role_id": builtin})));
        assert_eq!(delete.map(|_| ()).map_err(|r| r.code), Err(23004));
        assert!(org.take_changes().is_empty());
    }

    #[test]
    fn role_names_are_unique_within_a_group() {
        let mut org = Org::new("Corp", 1, 60008);
        let group = match org
            .role_add_group(&params(json!({"name": "G"})))
            .expect("group")
        {
            Reply::Fields(m) => m["groupId"].as_i64().unwrap_or_default(),
            other => panic!("{other:?}"),
        };
        org.role_add(&params(json!({"roleName": "R", "groupId": group})))
            .expect("first");
        let dup = org.role_add(&params(json!({"roleName": "R", "groupId": group})));
        assert_eq!(dup.map(|_| ()).map_err(|r| r.code), Err(34021));
        let bad = org.role_add(&params(json!({"roleName": "R", "groupId": 5})));
        assert_eq!(bad.map(|_| ()).map_err(|r| r.code), Err(34020));
    }
}
