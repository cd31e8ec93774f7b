//! DingTalk's wire types → the directory model, with ids translated through the id map.
//!
//! The three-way merge compares DingTalk's state with the OA entity and the base field by field,
//! so conversion must be *exact and stable*: converting DingTalk's view of an entity that both
//! sides agree on must give back the OA entity bit for bit, or every event would look like a
//! change (an echo loop, design invariant 5). DingTalk does not report everything the OA model
//! holds, so a few rules fill the gaps, and the pusher follows the same rules when it writes:
//!
//! - **Ids**: every DingTalk id goes through an [`IdMap`]; an id with no link is an error
//!   ([`ConvertError::Unmapped`]) that the caller resolves (import allocates, apply fetches the
//!   missing entity first). Nothing is guessed.
//! - **Membership order and main department**: DingTalk lists a user's departments in its own
//!   order and has no "main department" field. Memberships that the OA entity (the *hint*)
//!   already has keep the hint's order, new ones follow in DingTalk's order; the main department
//!   is the hint's if the user is still there, else the first membership.
//! - **Titles**: DingTalk has one `title` per user and optionally `dept_title_list`. When the
//!   per-department list is reported it is authoritative (a membership not in it has no title);
//!   otherwise the main membership gets `title` and the others keep the hint's title, because
//!   DingTalk said nothing about them. The pusher therefore sends `dept_title_list` for every
//!   titled membership and `title` = the main membership's title.
//! - **Managers of a department** keep the hint's order where the sets agree.
//! - **Empty text** (`""`) is "no value", as DingTalk omits fields with no value.
//! - **Extension** is a JSON object encoded as a string; values that are not strings are kept as
//!   their JSON text, and an extension that is not a JSON object is dropped with a warning
//!   (refusing the whole user would block every later event for them).
//!
//! `dingtalk-proto` has its own DingTalk id newtypes (it does not know the model); [`ding`]
//! converts between the two spellings of the same id.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use dingtalk_proto::{dept::DeptDetail, role as wire_role, user as wire_user};
use directory_model::{
    Department, DingDeptId, DingRoleGroupId, DingRoleId, DingUserId, Membership, Mobile, OaDeptId,
    OaRoleGroupId, OaRoleId, OaUserId, Role, RoleGroup, User, UserState,
};
use directory_store::{EntityKind, Store, StoreError};

/// Why a DingTalk entity could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// A referenced DingTalk entity has no OA counterpart in the id map yet.
    #[error("DingTalk {kind} {ding_id} has no OA counterpart in the id map")]
    Unmapped {
        /// Which kind of entity.
        kind: EntityKind,
        /// Its DingTalk id, as text.
        ding_id: String,
    },
}

/// Conversions between `dingtalk-proto`'s id newtypes and the model's: the same numbers and
/// strings, spelled by two crates that deliberately do not depend on each other.
pub mod ding {
    use dingtalk_proto as wire;
    use directory_model as model;

    /// A wire department id as the model's.
    pub fn dept(id: wire::DingDeptId) -> model::DingDeptId {
        model::DingDeptId(id.0)
    }
    /// A model department id as the wire's.
    pub fn wire_dept(id: model::DingDeptId) -> wire::DingDeptId {
        wire::DingDeptId(id.0)
    }
    /// A wire userid as the model's.
    pub fn user(id: &wire::DingUserId) -> model::DingUserId {
        model::DingUserId(id.0.clone())
    }
    /// A model userid as the wire's.
    pub fn wire_user(id: &model::DingUserId) -> wire::DingUserId {
        wire::DingUserId(id.0.clone())
    }
    /// A wire role id as the model's.
    pub fn role(id: wire::DingRoleId) -> model::DingRoleId {
        model::DingRoleId(id.0)
    }
    /// A model role id as the wire's.
    pub fn wire_role(id: model::DingRoleId) -> wire::DingRoleId {
        wire::DingRoleId(id.0)
    }
    /// A wire role group id as the model's.
    pub fn group(id: wire::DingRoleGroupId) -> model::DingRoleGroupId {
        model::DingRoleGroupId(id.0)
    }
    /// A model role group id as the wire's.
    pub fn wire_group(id: model::DingRoleGroupId) -> wire::DingRoleGroupId {
        wire::DingRoleGroupId(id.0)
    }
}

/// A one-to-one map in both directions.
#[derive(Debug, Clone)]
struct BiMap<O, D> {
    /// OA id → DingTalk id.
    to_ding: HashMap<O, D>,
    /// DingTalk id → OA id.
    to_oa: HashMap<D, O>,
}

impl<O, D> Default for BiMap<O, D> {
    fn default() -> Self {
        Self {
            to_ding: HashMap::new(),
            to_oa: HashMap::new(),
        }
    }
}

impl<O: Clone + Eq + Hash, D: Clone + Eq + Hash> BiMap<O, D> {
    fn insert(&mut self, oa: O, ding: D) {
        // Drop stale links on either side so the two directions stay inverse to each other.
        if let Some(old) = self.to_ding.insert(oa.clone(), ding.clone()) {
            self.to_oa.remove(&old);
        }
        if let Some(old) = self.to_oa.insert(ding, oa) {
            self.to_ding.remove(&old);
        }
    }
}

/// An in-memory copy of (part of) the store's id map, so that conversion is a pure function.
///
/// The import loads a whole kind at once ([`IdMap::load_all`]); event application loads just
/// the ids one entity references ([`IdMap::load_refs`]).
#[derive(Debug, Clone, Default)]
pub struct IdMap {
    /// Departments.
    depts: BiMap<OaDeptId, DingDeptId>,
    /// Users.
    users: BiMap<OaUserId, DingUserId>,
    /// Role groups.
    groups: BiMap<OaRoleGroupId, DingRoleGroupId>,
    /// Roles.
    roles: BiMap<OaRoleId, DingRoleId>,
}

impl IdMap {
    /// Every link in the store.
    pub async fn load_all(store: &Store) -> Result<Self, StoreError> {
        let mut map = Self::default();
        for (oa, ding) in store.id_map_all::<OaDeptId>().await? {
            map.depts.insert(oa, ding);
        }
        for (oa, ding) in store.id_map_all::<OaUserId>().await? {
            map.users.insert(oa, ding);
        }
        for (oa, ding) in store.id_map_all::<OaRoleGroupId>().await? {
            map.groups.insert(oa, ding);
        }
        for (oa, ding) in store.id_map_all::<OaRoleId>().await? {
            map.roles.insert(oa, ding);
        }
        Ok(map)
    }

    /// Adds the links of the given DingTalk ids that the store knows (unknown ones stay absent).
    pub async fn load_refs(
        &mut self,
        store: &Store,
        depts: impl IntoIterator<Item = DingDeptId>,
        users: impl IntoIterator<Item = DingUserId>,
    ) -> Result<(), StoreError> {
        for d in depts {
            if self.depts.to_oa.contains_key(&d) {
                continue;
            }
            if let Some(oa) = store.oa_id_of::<OaDeptId>(&d).await? {
                self.depts.insert(oa, d);
            }
        }
        for u in users {
            if self.users.to_oa.contains_key(&u) {
                continue;
            }
            if let Some(oa) = store.oa_id_of::<OaUserId>(&u).await? {
                self.users.insert(oa, u);
            }
        }
        Ok(())
    }

    /// Links a department.
    pub fn insert_dept(&mut self, oa: OaDeptId, ding: DingDeptId) {
        self.depts.insert(oa, ding);
    }
    /// Links a user.
    pub fn insert_user(&mut self, oa: OaUserId, ding: DingUserId) {
        self.users.insert(oa, ding);
    }
    /// Links a role group.
    pub fn insert_group(&mut self, oa: OaRoleGroupId, ding: DingRoleGroupId) {
        self.groups.insert(oa, ding);
    }
    /// Links a role.
    pub fn insert_role(&mut self, oa: OaRoleId, ding: DingRoleId) {
        self.roles.insert(oa, ding);
    }

    /// The OA id of a DingTalk department.
    pub fn oa_dept(&self, ding: DingDeptId) -> Option<OaDeptId> {
        self.depts.to_oa.get(&ding).copied()
    }
    /// The DingTalk id of an OA department.
    pub fn ding_dept(&self, oa: OaDeptId) -> Option<DingDeptId> {
        self.depts.to_ding.get(&oa).copied()
    }
    /// The OA id of a DingTalk user.
    pub fn oa_user(&self, ding: &DingUserId) -> Option<&OaUserId> {
        self.users.to_oa.get(ding)
    }
    /// The DingTalk userid of an OA user.
    pub fn ding_user(&self, oa: &OaUserId) -> Option<&DingUserId> {
        self.users.to_ding.get(oa)
    }
    /// The OA id of a DingTalk role group.
    pub fn oa_group(&self, ding: DingRoleGroupId) -> Option<OaRoleGroupId> {
        self.groups.to_oa.get(&ding).copied()
    }
    /// The DingTalk id of an OA role group.
    pub fn ding_group(&self, oa: OaRoleGroupId) -> Option<DingRoleGroupId> {
        self.groups.to_ding.get(&oa).copied()
    }
    /// The OA id of a DingTalk role.
    pub fn oa_role(&self, ding: DingRoleId) -> Option<OaRoleId> {
        self.roles.to_oa.get(&ding).copied()
    }
    /// The DingTalk id of an OA role.
    pub fn ding_role(&self, oa: OaRoleId) -> Option<DingRoleId> {
        self.roles.to_ding.get(&oa).copied()
    }

    /// How many departments and users are linked.
    pub fn len(&self) -> (usize, usize) {
        (self.depts.to_ding.len(), self.users.to_ding.len())
    }

    /// Whether nothing is linked.
    pub fn is_empty(&self) -> bool {
        self.depts.to_ding.is_empty()
            && self.users.to_ding.is_empty()
            && self.groups.to_ding.is_empty()
            && self.roles.to_ding.is_empty()
    }

    fn need_dept(&self, ding: DingDeptId) -> Result<OaDeptId, ConvertError> {
        self.oa_dept(ding).ok_or_else(|| ConvertError::Unmapped {
            kind: EntityKind::Department,
            ding_id: ding.to_string(),
        })
    }

    fn need_user(&self, ding: &DingUserId) -> Result<OaUserId, ConvertError> {
        self.oa_user(ding)
            .cloned()
            .ok_or_else(|| ConvertError::Unmapped {
                kind: EntityKind::User,
                ding_id: ding.to_string(),
            })
    }

    fn need_group(&self, ding: DingRoleGroupId) -> Result<OaRoleGroupId, ConvertError> {
        self.oa_group(ding).ok_or_else(|| ConvertError::Unmapped {
            kind: EntityKind::RoleGroup,
            ding_id: ding.to_string(),
        })
    }

    fn need_role(&self, ding: DingRoleId) -> Result<OaRoleId, ConvertError> {
        self.oa_role(ding).ok_or_else(|| ConvertError::Unmapped {
            kind: EntityKind::Role,
            ding_id: ding.to_string(),
        })
    }
}

/// `Some(text)` unless the text is empty (DingTalk's "no value").
fn text(value: Option<&String>) -> Option<String> {
    value.filter(|s| !s.is_empty()).cloned()
}

/// Reorders `items` so that those also in `hint` come first in the hint's order, followed by
/// the rest in their own order. Keeps an unchanged set in a stable order across conversions.
fn align<T: Clone, K: PartialEq>(items: Vec<T>, hint: &[K], key: impl Fn(&T) -> K) -> Vec<T> {
    let mut rest = items;
    let mut out = Vec::with_capacity(rest.len());
    for h in hint {
        if let Some(pos) = rest.iter().position(|t| key(t) == *h) {
            out.push(rest.remove(pos));
        }
    }
    out.extend(rest);
    out
}

/// A DingTalk department (`department/get`) as an OA department. DingTalk's root has no parent.
pub fn department(
    wire: &DeptDetail,
    ids: &IdMap,
    hint: Option<&Department>,
) -> Result<Department, ConvertError> {
    let ding_id = ding::dept(wire.dept_id);
    let id = ids.need_dept(ding_id)?;
    let parent = if ding_id == DingDeptId::ROOT {
        None
    } else {
        wire.parent_id
            .map(|p| ids.need_dept(ding::dept(p)))
            .transpose()?
    };
    let managers = wire
        .dept_manager_userid_list
        .iter()
        .flatten()
        .map(|u| ids.need_user(&ding::user(u)))
        .collect::<Result<Vec<_>, _>>()?;
    let managers = match hint {
        Some(h) => align(managers, &h.managers, Clone::clone),
        None => managers,
    };
    Ok(Department {
        id,
        name: wire.name.clone(),
        parent,
        order: wire.order.unwrap_or(0),
        managers,
        source_identifier: text(wire.source_identifier.as_ref()),
        hide: wire.hide_dept.unwrap_or(false),
        outer: wire.outer_dept.unwrap_or(false),
    })
}

/// A DingTalk user (`v2/user/get`, or a `v2/user/list` item whose `dept_order_list` the caller
/// filled from the listings) as an OA user; see the module doc for the rules.
pub fn user(
    wire: &wire_user::User,
    ids: &IdMap,
    hint: Option<&User>,
) -> Result<User, ConvertError> {
    let id = ids.need_user(&ding::user(&wire.userid))?;
    let orders: HashMap<DingDeptId, i64> = wire
        .dept_order_list
        .iter()
        .flatten()
        .map(|o| (ding::dept(o.dept_id), o.order))
        .collect();
    let titles: Option<HashMap<DingDeptId, String>> = wire.dept_title_list.as_ref().map(|l| {
        l.iter()
            .filter(|t| !t.title.is_empty())
            .map(|t| (ding::dept(t.dept_id), t.title.clone()))
            .collect()
    });
    let mut memberships = Vec::new();
    for d in wire.dept_id_list.iter().flatten() {
        let ding_dept = ding::dept(*d);
        let dept = ids.need_dept(ding_dept)?;
        let order = orders.get(&ding_dept).copied().unwrap_or_else(|| {
            hint.and_then(|h| h.departments.iter().find(|m| m.dept == dept))
                .map_or(0, |m| m.order)
        });
        memberships.push((
            ding_dept,
            Membership {
                dept,
                title: None,
                order,
            },
        ));
    }
    let mut departments: Vec<Membership> = match hint {
        Some(h) => {
            let order: Vec<OaDeptId> = h.department_ids().collect();
            align(memberships, &order, |(_, m)| m.dept)
        }
        None => memberships,
    }
    .into_iter()
    .map(|(ding_dept, mut m)| {
        if let Some(t) = &titles {
            m.title = t.get(&ding_dept).cloned();
        }
        m
    })
    .collect();
    let main_department = hint
        .and_then(|h| h.main_department)
        .filter(|main| departments.iter().any(|m| m.dept == *main))
        .or_else(|| departments.first().map(|m| m.dept));
    if titles.is_none() {
        for m in &mut departments {
            m.title = if Some(m.dept) == main_department {
                text(wire.title.as_ref())
            } else {
                hint.and_then(|h| h.departments.iter().find(|x| x.dept == m.dept))
                    .and_then(|x| x.title.clone())
            };
        }
    }
    let manager = wire
        .manager_userid
        .as_ref()
        .filter(|m| !m.0.is_empty())
        .map(|m| ids.need_user(&ding::user(m)))
        .transpose()?;
    let mobile = text(wire.mobile.as_ref()).map(|number| Mobile {
        country_code: text(wire.state_code.as_ref()).unwrap_or_else(|| "86".to_owned()),
        number,
    });
    Ok(User {
        id,
        name: wire.name.clone(),
        departments,
        main_department,
        manager,
        job_number: text(wire.job_number.as_ref()),
        mobile,
        email: text(wire.email.as_ref()),
        org_email: text(wire.org_email.as_ref()),
        telephone: text(wire.telephone.as_ref()),
        work_place: text(wire.work_place.as_ref()),
        hired_date_ms: wire.hired_date,
        remark: text(wire.remark.as_ref()),
        extension: extension(&wire.userid, wire.extension.as_deref()),
        state: UserState::Active,
    })
}

/// Decodes DingTalk's JSON-in-a-string extension into the model's string map.
fn extension(userid: &dingtalk_proto::DingUserId, raw: Option<&str>) -> BTreeMap<String, String> {
    let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
        return BTreeMap::new();
    };
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(serde_json::Value::Object(map)) => map
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, v)
            })
            .collect(),
        _ => {
            tracing::warn!(%userid, "DingTalk user extension is not a JSON object; ignored");
            BTreeMap::new()
        }
    }
}

/// A DingTalk role group (from `role/list`) as an OA role group.
pub fn role_group(wire: &wire_role::RoleGroup, ids: &IdMap) -> Result<RoleGroup, ConvertError> {
    Ok(RoleGroup {
        id: ids.need_group(ding::group(wire.group_id))?,
        name: wire.name.clone(),
    })
}

/// A DingTalk role (an entry of a `role/list` group) as an OA role.
pub fn role(
    wire: &wire_role::RoleBrief,
    group: dingtalk_proto::DingRoleGroupId,
    ids: &IdMap,
) -> Result<Role, ConvertError> {
    Ok(Role {
        id: ids.need_role(ding::role(wire.id))?,
        group: ids.need_group(ding::group(group))?,
        name: wire.name.clone(),
    })
}

#[cfg(test)]
mod tests {
    use dingtalk_proto::user::{DeptOrder, DeptTitle};

    use super::*;

    fn wire_user(json: serde_json::Value) -> wire_user::User {
        serde_json::from_value(json).unwrap()
    }

    fn ids() -> IdMap {
        let mut m = IdMap::default();
        m.insert_dept(OaDeptId(1), DingDeptId(1));
        m.insert_dept(OaDeptId(10), DingDeptId(1000));
        m.insert_dept(OaDeptId(20), DingDeptId(2000));
        m.insert_user(OaUserId::new("boss"), DingUserId::new("boss"));
        m.insert_user(OaUserId::new("emp-7"), DingUserId::new("u7"));
        m
    }

    #[test]
    fn user_get_converts_every_field_with_translated_ids() {
        let w = wire_user(serde_json::json!({
            "userid": "u7", "name": "Zhang San", "state_code": "852", "mobile": "91234567",
            "manager_userid": "boss", "job_number": "J7", "email": "z@x.cn", "org_email": "",
            "telephone": "010-1", "work_place": "HZ", "remark": "r", "hired_date": 1_600_000_000_000i64,
            "dept_id_list": [2000, 1000],
            "dept_order_list": [{"dept_id": 1000, "order": 3}, {"dept_id": 2000, "order": 9}],
            "extension": "{\"hobby\":\"go\",\"level\":3}",
            "title": "Engineer"
        }));
        let u = user(&w, &ids(), None).unwrap();
        assert_eq!(u.id, OaUserId::new("emp-7"));
        assert_eq!(u.manager, Some(OaUserId::new("boss")));
        assert_eq!(
            u.mobile,
            Some(Mobile {
                country_code: "852".into(),
                number: "91234567".into()
            })
        );
        assert_eq!(u.org_email, None, "empty text is no value");
        let depts: Vec<(OaDeptId, i64)> = u.departments.iter().map(|m| (m.dept, m.order)).collect();
        assert_eq!(depts, vec![(OaDeptId(20), 9), (OaDeptId(10), 3)]);
        assert_eq!(u.main_department, Some(OaDeptId(20)));
        assert_eq!(u.departments[0].title.as_deref(), Some("Engineer"));
        assert_eq!(u.departments[1].title, None);
        assert_eq!(u.extension["hobby"], "go");
        assert_eq!(u.extension["level"], "3");
        assert_eq!(u.hired_date_ms, Some(1_600_000_000_000));
        assert_eq!(u.state, UserState::Active);
    }

    #[test]
    fn conversion_of_an_agreeing_state_reproduces_the_oa_entity() {
        // The OA entity lists memberships in its own order, with a non-first main department
        // and a title on a secondary membership that plain `title` cannot express.
        let mut oa = User::new(OaUserId::new("emp-7"), "Li", &[OaDeptId(10), OaDeptId(20)]);
        oa.main_department = Some(OaDeptId(20));
        oa.departments[0].title = Some("Lead".into());
        oa.departments[1].title = Some("Dev".into());
        oa.departments[1].order = 4;
        // DingTalk reports them the other way round, with the per-department titles.
        let mut w = wire_user(serde_json::json!({
            "userid": "u7", "name": "Li", "dept_id_list": [2000, 1000], "title": "Dev"
        }));
        w.dept_order_list = Some(vec![
            DeptOrder {
                dept_id: dingtalk_proto::DingDeptId(2000),
                order: 4,
            },
            DeptOrder {
                dept_id: dingtalk_proto::DingDeptId(1000),
                order: 0,
            },
        ]);
        w.dept_title_list = Some(vec![
            DeptTitle {
                dept_id: dingtalk_proto::DingDeptId(1000),
                title: "Lead".into(),
            },
            DeptTitle {
                dept_id: dingtalk_proto::DingDeptId(2000),
                title: "Dev".into(),
            },
        ]);
        assert_eq!(user(&w, &ids(), Some(&oa)).unwrap(), oa);
        // Without the per-department list, the secondary title is taken from the hint.
        w.dept_title_list = None;
        assert_eq!(user(&w, &ids(), Some(&oa)).unwrap(), oa);
    }

    #[test]
    fn unmapped_references_are_errors_not_guesses() {
        let w = wire_user(serde_json::json!({
            "userid": "u7", "name": "Li", "dept_id_list": [3000]
        }));
        let err = user(&w, &ids(), None).unwrap_err();
        assert!(matches!(
            err,
            ConvertError::Unmapped { kind: EntityKind::Department, ref ding_id } if ding_id == "3000"
        ));
        let w = wire_user(serde_json::json!({"userid": "nobody", "name": "N"}));
        assert!(matches!(
            user(&w, &ids(), None),
            Err(ConvertError::Unmapped {
                kind: EntityKind::User,
                ..
            })
        ));
    }

    #[test]
    fn bad_extension_is_dropped_not_fatal() {
        let w = wire_user(serde_json::json!({
            "userid": "u7", "name": "Li", "extension": "[1,2]"
        }));
        assert!(user(&w, &ids(), None).unwrap().extension.is_empty());
    }

    #[test]
    fn department_detail_converts_with_root_and_manager_order() {
        let d: DeptDetail = serde_json::from_value(serde_json::json!({
            "dept_id": 2000, "name": "R&D", "parent_id": 1000, "order": 5,
            "dept_manager_userid_list": ["u7", "boss"], "source_identifier": "",
            "hide_dept": true, "outer_dept": false
        }))
        .unwrap();
        let mut hint = Department::new(OaDeptId(20), "R&D", Some(OaDeptId(10)));
        hint.managers = vec![OaUserId::new("boss"), OaUserId::new("emp-7")];
        let got = department(&d, &ids(), Some(&hint)).unwrap();
        assert_eq!(got.parent, Some(OaDeptId(10)));
        assert_eq!(got.managers, hint.managers, "hint order kept");
        assert_eq!(got.source_identifier, None);
        assert!(got.hide && !got.outer);
        assert_eq!(got.order, 5);

        let root: DeptDetail = serde_json::from_value(serde_json::json!({
            "dept_id": 1, "name": "Acme"
        }))
        .unwrap();
        let r = department(&root, &ids(), None).unwrap();
        assert_eq!((r.id, r.parent), (OaDeptId(1), None));
    }

    #[test]
    fn id_map_stays_one_to_one_when_relinked() {
        let mut m = IdMap::default();
        m.insert_dept(OaDeptId(5), DingDeptId(50));
        m.insert_dept(OaDeptId(5), DingDeptId(51));
        assert_eq!(m.oa_dept(DingDeptId(50)), None);
        assert_eq!(m.oa_dept(DingDeptId(51)), Some(OaDeptId(5)));
        assert_eq!(m.ding_dept(OaDeptId(5)), Some(DingDeptId(51)));
    }
}
