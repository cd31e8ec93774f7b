//! Users: DingTalk's `v2/user/get` (or a `v2/user/list` item) ↔ the model's [`User`]: the
//! membership order, main department and title rules of the module doc in both directions.

use std::collections::{BTreeMap, HashMap};

use dingtalk_proto::{
    CommaList, DingDeptId as WireDeptId, DingUserId as WireUserId,
    user::{DeptOrder, DeptTitle, User as WireUser, UserCreateRequest, UserUpdateRequest},
};
use directory_model::{DingDeptId, Membership, Mobile, OaDeptId, User, UserState};

use super::{ConvertError, IdMap, align, ding, text};
use crate::rules::Rules;

/// A DingTalk user (`v2/user/get`, or a `v2/user/list` item whose `dept_order_list` the caller
/// filled from the listings) as an OA user; see the module doc for the rules. `hint` is the OA
/// user, if any; `rules` map DingTalk's values to OA's.
pub fn from_wire(
    wire: &WireUser,
    ids: &IdMap,
    hint: Option<&User>,
    rules: &Rules,
) -> Result<User, ConvertError> {
    let read = read_wire(wire, ids, hint, rules)?;
    Ok(rules.user_to_oa(read.dingtalk, hint, read.expected)?)
}

/// A DingTalk user read in the model's shape but still in DingTalk's values (what `[scope]`
/// predicates over DingTalk users see), with what DingTalk would hold if it agreed with the OA
/// user (the hint mapped by `rules`; `None` without a hint or without rules).
#[derive(Debug, Clone, PartialEq)]
pub struct ReadUser {
    /// DingTalk's values.
    pub dingtalk: User,
    /// The OA user mapped to DingTalk's values.
    pub expected: Option<User>,
}

/// The first half of [`from_wire`]; [`Rules::user_to_oa`] is the second.
pub fn read_wire(
    wire: &WireUser,
    ids: &IdMap,
    hint: Option<&User>,
    rules: &Rules,
) -> Result<ReadUser, ConvertError> {
    let expected = rules.user_expected(hint)?;
    let dingtalk = dingtalk_values(wire, ids, expected.as_ref().or(hint))?;
    Ok(ReadUser { dingtalk, expected })
}

/// A DingTalk user in DingTalk's values as `[scope.to_oa.users]` predicates see it before the
/// import links it: its own userid as id (users share ids on both sides), the memberships of
/// departments the id map knows, and its manager only if the id map knows them.
pub fn scope_view(wire: &WireUser, ids: &IdMap) -> Result<User, ConvertError> {
    let mut wire = wire.clone();
    if let Some(depts) = &mut wire.dept_id_list {
        depts.retain(|d| ids.oa_dept(ding::dept(*d)).is_some());
    }
    if wire
        .manager_userid
        .as_ref()
        .is_some_and(|m| ids.oa_user(&ding::user(m)).is_none())
    {
        wire.manager_userid = None;
    }
    let id = ids
        .oa_user(&ding::user(&wire.userid))
        .cloned()
        .unwrap_or_else(|| directory_model::OaUserId::new(wire.userid.0.as_str()));
    values_as(&wire, id, ids, None)
}

/// DingTalk's user in the model's shape, before the mapping; `hint` in DingTalk's values.
fn dingtalk_values(
    wire: &WireUser,
    ids: &IdMap,
    hint: Option<&User>,
) -> Result<User, ConvertError> {
    let id = ids.need_user(&ding::user(&wire.userid))?;
    values_as(wire, id, ids, hint)
}

/// [`dingtalk_values`] for a user whose OA id is known already.
fn values_as(
    wire: &WireUser,
    id: directory_model::OaUserId,
    ids: &IdMap,
    hint: Option<&User>,
) -> Result<User, ConvertError> {
    let (departments, main_department) = memberships(wire, ids, hint)?;
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

/// The user's memberships with their orders and titles, and the main department.
fn memberships(
    wire: &WireUser,
    ids: &IdMap,
    hint: Option<&User>,
) -> Result<(Vec<Membership>, Option<OaDeptId>), ConvertError> {
    let titles: Option<HashMap<DingDeptId, String>> = wire.dept_title_list.as_ref().map(|l| {
        l.iter()
            .filter(|t| !t.title.is_empty())
            .map(|t| (ding::dept(t.dept_id), t.title.clone()))
            .collect()
    });
    let mut departments: Vec<Membership> = ordered_memberships(wire, ids, hint)?
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
        // DingTalk said nothing per department: the main one has `title`, the others keep
        // the hint's.
        for m in &mut departments {
            m.title = if Some(m.dept) == main_department {
                text(wire.title.as_ref())
            } else {
                hint.and_then(|h| h.departments.iter().find(|x| x.dept == m.dept))
                    .and_then(|x| x.title.clone())
            };
        }
    }
    Ok((departments, main_department))
}

/// The memberships (untitled) in the hint's order, then DingTalk's, each with its DingTalk
/// department id.
fn ordered_memberships(
    wire: &WireUser,
    ids: &IdMap,
    hint: Option<&User>,
) -> Result<Vec<(DingDeptId, Membership)>, ConvertError> {
    let orders: HashMap<DingDeptId, i64> = wire
        .dept_order_list
        .iter()
        .flatten()
        .map(|o| (ding::dept(o.dept_id), o.order))
        .collect();
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
    Ok(match hint {
        Some(h) => {
            let order: Vec<OaDeptId> = h.department_ids().collect();
            align(memberships, &order, |(_, m)| m.dept)
        }
        None => memberships,
    })
}

/// Decodes DingTalk's JSON-in-a-string extension into the model's string map.
fn extension(userid: &WireUserId, raw: Option<&str>) -> BTreeMap<String, String> {
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

/// The extension attributes as the JSON object text DingTalk takes.
fn extension_text(ext: &BTreeMap<String, String>) -> String {
    // A map of strings to strings always serializes; the fallback is unreachable.
    serde_json::to_string(ext).unwrap_or_else(|_| "{}".to_owned())
}

/// The DingTalk ids a user push references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserRefs {
    /// The DingTalk id of each membership's department, parallel to `User::departments`.
    pub depts: Vec<WireDeptId>,
    /// The manager's DingTalk userid.
    pub manager: Option<WireUserId>,
}

/// The title of the main membership: DingTalk's top-level `title`. A three-way merge can take
/// `departments` from one side and `main_department` from the other, naming a department the
/// user is no longer in; then the first membership is the main one, as [`from_wire`] reads it
/// back (otherwise the pushed `title` was cleared and plan saw a difference forever; found by
/// the convergence test).
fn main_title(user: &User) -> Option<String> {
    let main = user
        .main_department
        .filter(|d| user.departments.iter().any(|m| m.dept == *d))
        .or_else(|| user.departments.first().map(|m| m.dept))?;
    user.departments
        .iter()
        .find(|m| m.dept == main)
        .and_then(|m| m.title.clone())
}

fn dept_orders(user: &User, refs: &UserRefs) -> Vec<DeptOrder> {
    user.departments
        .iter()
        .zip(&refs.depts)
        .map(|(m, d)| DeptOrder {
            dept_id: *d,
            order: m.order,
        })
        .collect()
}

fn dept_titles(user: &User, refs: &UserRefs) -> Vec<DeptTitle> {
    user.departments
        .iter()
        .zip(&refs.depts)
        .filter_map(|(m, d)| {
            m.title.as_ref().map(|t| DeptTitle {
                dept_id: *d,
                title: t.clone(),
            })
        })
        .collect()
}

/// Why a user cannot be created in DingTalk as it is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum CreateUserRefused {
    /// A `[mapping]` expression failed for this user.
    #[error("the mapping failed for this user: {}", crate::error_chain(.0))]
    Mapping(mapping::MapError),
    /// DingTalk requires a mobile number on create.
    #[error("DingTalk requires a mobile number to create a user")]
    NoMobile,
    /// DingTalk requires at least one department.
    #[error("DingTalk requires at least one department to create a user")]
    NoDepartment,
}

/// `v2/user/create` for the OA `user` under `userid` (the OA id, so a retry finds it: 60102),
/// mapped to DingTalk's values by `rules`.
pub(crate) fn create_request(
    user: &User,
    userid: &WireUserId,
    refs: &UserRefs,
    rules: &Rules,
) -> Result<UserCreateRequest, CreateUserRefused> {
    let mapped = rules
        .user_to_dingtalk(user)
        .map_err(CreateUserRefused::Mapping)?;
    let user = &mapped.entity;
    let mobile = user.mobile.as_ref().ok_or(CreateUserRefused::NoMobile)?;
    if refs.depts.is_empty() {
        return Err(CreateUserRefused::NoDepartment);
    }
    let mut req = UserCreateRequest::new(
        user.name.clone(),
        mobile.to_dingtalk(),
        refs.depts.iter().copied(),
    );
    req.userid = Some(userid.clone());
    req.telephone = user.telephone.clone();
    req.job_number = user.job_number.clone();
    req.title = main_title(user);
    req.email = user.email.clone();
    req.org_email = user.org_email.clone();
    req.work_place = user.work_place.clone();
    req.remark = user.remark.clone();
    req.dept_order_list = Some(dept_orders(user, refs));
    let titles = dept_titles(user, refs);
    req.dept_title_list = (!titles.is_empty()).then_some(titles);
    req.extension = (!user.extension.is_empty()).then(|| extension_text(&user.extension));
    req.hired_date = user.hired_date_ms;
    req.manager_userid = refs.manager.clone();
    Ok(req)
}

/// `v2/user/update` carrying every field of the OA `user` mapped by `rules` (except the mobile,
/// which the update API does not take, and `on_create` fields), clearing what the base had and
/// the user no longer has.
pub(crate) fn update_request(
    user: &User,
    userid: &WireUserId,
    refs: &UserRefs,
    base: Option<&User>,
    rules: &Rules,
) -> Result<UserUpdateRequest, mapping::MapError> {
    let mapped = rules.user_update(user, base)?;
    Ok(update_request_mapped(
        &mapped.now,
        userid,
        refs,
        mapped.base.as_ref(),
    ))
}

/// [`update_request`] for a user and base already in DingTalk's values.
fn update_request_mapped(
    user: &User,
    userid: &WireUserId,
    refs: &UserRefs,
    base: Option<&User>,
) -> UserUpdateRequest {
    let mut req = UserUpdateRequest::new(userid.clone());
    let mut force: Vec<&'static str> = Vec::new();
    let mut text =
        |name: &'static str, now: &Option<String>, before: Option<&Option<String>>| match now {
            Some(v) if !v.is_empty() => Some(v.clone()),
            _ => {
                if before.is_some_and(|b| b.as_ref().is_some_and(|v| !v.is_empty())) {
                    force.push(name);
                }
                None
            }
        };
    req.telephone = text("telephone", &user.telephone, base.map(|b| &b.telephone));
    req.job_number = text("job_number", &user.job_number, base.map(|b| &b.job_number));
    req.email = text("email", &user.email, base.map(|b| &b.email));
    req.org_email = text("org_email", &user.org_email, base.map(|b| &b.org_email));
    req.work_place = text("work_place", &user.work_place, base.map(|b| &b.work_place));
    req.remark = text("remark", &user.remark, base.map(|b| &b.remark));
    let base_title = base.map(main_title);
    req.title = text("title", &main_title(user), base_title.as_ref());
    req.name = Some(user.name.clone());
    req.dept_id_list = Some(CommaList::new(refs.depts.iter().copied()));
    req.dept_order_list = Some(dept_orders(user, refs));
    let titles = dept_titles(user, refs);
    let base_had_titles = base.is_some_and(|b| b.departments.iter().any(|m| m.title.is_some()));
    req.dept_title_list = (!titles.is_empty() || base_had_titles).then_some(titles);
    let base_had_extension = base.is_some_and(|b| !b.extension.is_empty());
    req.extension =
        (!user.extension.is_empty() || base_had_extension).then(|| extension_text(&user.extension));
    match user.hired_date_ms {
        Some(ms) => req.hired_date = Some(ms),
        None if base.is_some_and(|b| b.hired_date_ms.is_some()) => force.push("hired_date"),
        None => {}
    }
    match &refs.manager {
        Some(m) => req.manager_userid = Some(m.clone()),
        None => force.push("manager_userid"),
    }
    if !force.is_empty() {
        req.force_update_fields = Some(force.join(","));
    }
    req
}

#[cfg(test)]
mod tests {
    use dingtalk_proto::user::{DeptOrder, DeptTitle};
    use directory_model::{DingUserId, OaUserId};
    use serde_json::json;

    use super::*;
    use crate::translate::ConvertError;
    use directory_store::EntityKind;

    fn wire_user(json: serde_json::Value) -> WireUser {
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
        let u = from_wire(&w, &ids(), None, &Rules::default()).unwrap();
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
        assert_eq!(
            from_wire(&w, &ids(), Some(&oa), &Rules::default()).unwrap(),
            oa
        );
        // Without the per-department list, the secondary title is taken from the hint.
        w.dept_title_list = None;
        assert_eq!(
            from_wire(&w, &ids(), Some(&oa), &Rules::default()).unwrap(),
            oa
        );
    }

    #[test]
    fn unmapped_references_are_errors_not_guesses() {
        let w = wire_user(serde_json::json!({
            "userid": "u7", "name": "Li", "dept_id_list": [3000]
        }));
        let err = from_wire(&w, &ids(), None, &Rules::default()).unwrap_err();
        assert!(matches!(
            err,
            ConvertError::Unmapped { kind: EntityKind::Department, ref ding_id } if ding_id == "3000"
        ));
        let w = wire_user(serde_json::json!({"userid": "nobody", "name": "N"}));
        assert!(matches!(
            from_wire(&w, &ids(), None, &Rules::default()),
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
        assert!(
            from_wire(&w, &ids(), None, &Rules::default())
                .unwrap()
                .extension
                .is_empty()
        );
    }

    fn user() -> User {
        let mut u = User::new(
            OaUserId::new("zhang"),
            "Zhang San",
            &[OaDeptId(7), OaDeptId(8)],
        );
        u.main_department = Some(OaDeptId(8));
        u.departments[0].title = Some("Engineer".into());
        u.departments[1] = Membership {
            dept: OaDeptId(8),
            title: Some("Lead".into()),
            order: 5,
        };
        u.manager = Some(OaUserId::new("boss"));
        u.mobile = Some(Mobile::mainland("13800000001"));
        u.email = Some("z@example.com".into());
        u.org_email = Some("z@corp.example.com".into());
        u.job_number = Some("E001".into());
        u.hired_date_ms = Some(1_600_000_000_000);
        u.extension.insert("badge".into(), "42".into());
        u
    }

    fn user_refs() -> UserRefs {
        UserRefs {
            depts: vec![WireDeptId(70), WireDeptId(80)],
            manager: Some(WireUserId::new("boss")),
        }
    }

    #[test]
    fn user_create_carries_every_field_the_guide_shows() {
        let req = create_request(
            &user(),
            &WireUserId::new("zhang"),
            &user_refs(),
            &Rules::default(),
        )
        .unwrap();
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(v["userid"], json!("zhang"));
        assert_eq!(v["mobile"], json!("13800000001"));
        assert_eq!(v["dept_id_list"], json!("70,80"));
        assert_eq!(
            v["dept_order_list"],
            json!([{"dept_id": 70, "order": 0}, {"dept_id": 80, "order": 5}])
        );
        assert_eq!(
            v["dept_title_list"],
            json!([{"dept_id": 70, "title": "Engineer"}, {"dept_id": 80, "title": "Lead"}])
        );
        assert_eq!(v["title"], json!("Lead"), "the main department's title");
        assert_eq!(v["manager_userid"], json!("boss"));
        assert_eq!(v["extension"], json!("{\"badge\":\"42\"}"));
        assert_eq!(v["hired_date"], json!(1_600_000_000_000_i64));
        assert_eq!(v["org_email"], json!("z@corp.example.com"));
        assert_eq!(v["job_number"], json!("E001"));
    }

    #[test]
    fn user_create_refuses_without_mobile() {
        let mut u = user();
        u.mobile = None;
        assert_eq!(
            create_request(
                &u,
                &WireUserId::new("zhang"),
                &user_refs(),
                &Rules::default()
            ),
            Err(CreateUserRefused::NoMobile)
        );
    }

    #[test]
    fn user_update_clears_only_what_the_base_had() {
        let base = user();
        let mut now = user();
        now.email = None;
        now.hired_date_ms = None;
        now.manager = None;
        now.extension.clear();
        for m in &mut now.departments {
            m.title = None;
        }
        let refs = UserRefs {
            manager: None,
            ..user_refs()
        };
        let v = serde_json::to_value(update_request_mapped(
            &now,
            &WireUserId::new("zhang"),
            &refs,
            Some(&base),
        ))
        .unwrap();
        assert_eq!(
            v["force_update_fields"],
            json!("email,title,hired_date,manager_userid")
        );
        assert_eq!(v["dept_title_list"], json!([]));
        assert_eq!(v["extension"], json!("{}"));
        assert!(v.get("mobile").is_none(), "update has no mobile field");

        // Without a base only the manager is forced (the guide documents that one).
        let v = serde_json::to_value(update_request_mapped(
            &now,
            &WireUserId::new("zhang"),
            &refs,
            None,
        ))
        .unwrap();
        assert_eq!(v["force_update_fields"], json!("manager_userid"));
        assert!(v.get("dept_title_list").is_none());
        assert!(v.get("extension").is_none());
    }

    /// For mappings that are inverse pairs, an OA user sent to DingTalk (the create request's
    /// JSON, read back as DingTalk answers `v2/user/get`) converts back to itself exactly,
    /// through the same code the pusher and the applier use. `PROPTEST_CASES=1000` in CI.
    mod inverse_pairs {
        use proptest::prelude::*;

        use super::*;

        fn rules() -> Rules {
            let m = serde_json::from_value(json!({"users": {
                "fields": {
                    "job_number": {
                        "to_dingtalk": "user.job_number == null ? null : 'E' + user.job_number",
                        "to_oa": "user.job_number == null ? null : user.job_number.substring(1)"},
                    "email": {
                        "to_dingtalk": "user.email == null ? null : user.email.replace('@corp.example', '@example')",
                        "to_oa": "user.email == null ? null : user.email.replace('@example', '@corp.example')"},
                    "departments": {
                        "to_dingtalk": "user.departments.map(m, {'dept': m.dept, 'order': m.order, 'title': m.title == null ? null : {'T01': 'Engineer', 'T02': 'Manager'}[m.title]})",
                        "to_oa": "user.departments.map(m, {'dept': m.dept, 'order': m.order, 'title': m.title == null ? null : {'Engineer': 'T01', 'Manager': 'T02'}[m.title]})"}
                },
                "extension": {
                    "level": {"to_dingtalk": "user.extension.?grade.orValue(null)", "to_oa": "null"},
                    "grade": {"to_dingtalk": "null", "to_oa": "user.extension.?level.orValue(null)"}
                }
            }}))
            .unwrap();
            Rules::new(mapping::load(&m, &Default::default()).unwrap())
        }

        fn arb_user() -> impl Strategy<Value = User> {
            (
                "[A-Za-z][A-Za-z ]{0,15}",
                proptest::sample::subsequence(vec![1i64, 10, 20], 1..=3),
                proptest::collection::vec(
                    (
                        proptest::option::of(prop_oneof![Just("T01"), Just("T02")]),
                        0i64..100,
                    ),
                    3,
                ),
                proptest::option::of("[0-9]{1,8}"),
                proptest::option::of("[a-z]{1,8}"),
                "1[3-9][0-9]{9}",
                proptest::option::of(prop_oneof![Just("P4"), Just("P5"), Just("M1")]),
                proptest::collection::btree_map("[a-f]{1,4}", "[a-z0-9]{0,6}", 0..3),
                (
                    proptest::option::of("[a-z ]{1,12}"),
                    proptest::option::of(0i64..2_000_000_000_000),
                ),
            )
                .prop_map(
                    |(
                        name,
                        depts,
                        memberships,
                        job,
                        email,
                        mobile,
                        grade,
                        ext,
                        (remark, hired),
                    )| {
                        let ids: Vec<OaDeptId> = depts.into_iter().map(OaDeptId).collect();
                        let mut u = User::new(OaUserId::new("emp-7"), name.trim(), &ids);
                        for (m, (title, order)) in u.departments.iter_mut().zip(memberships) {
                            m.title = title.map(str::to_owned);
                            m.order = order;
                        }
                        u.job_number = job;
                        u.email = email.map(|e| format!("{e}@corp.example.com"));
                        u.mobile = Some(Mobile::mainland(mobile));
                        u.extension = ext;
                        if let Some(g) = grade {
                            u.extension.insert("grade".into(), g.to_owned());
                        }
                        u.remark = remark.filter(|r| !r.trim().is_empty());
                        u.hired_date_ms = hired;
                        u
                    },
                )
                .prop_filter("a name", |u| !u.name.is_empty())
        }

        /// The create request as DingTalk would answer `v2/user/get` for the user it created.
        fn as_dingtalk_holds_it(req: &UserCreateRequest) -> WireUser {
            let mut v = serde_json::to_value(req).unwrap();
            let depts: Vec<i64> = v["dept_id_list"]
                .as_str()
                .unwrap()
                .split(',')
                .map(|d| d.parse().unwrap())
                .collect();
            v["dept_id_list"] = json!(depts);
            v["state_code"] = json!("86");
            serde_json::from_value(v).unwrap()
        }

        fn all_ids() -> IdMap {
            let mut m = ids();
            m.insert_user(OaUserId::new("emp-7"), DingUserId::new("emp-7"));
            m
        }

        proptest! {
            #[test]
            fn oa_to_dingtalk_to_oa_is_the_identity(user in arb_user()) {
                let rules = rules();
                let refs = UserRefs {
                    depts: user
                        .departments
                        .iter()
                        .map(|m| ding::wire_dept(all_ids().ding_dept(m.dept).unwrap()))
                        .collect(),
                    manager: None,
                };
                let req = create_request(&user, &WireUserId::new("emp-7"), &refs, &rules).unwrap();
                let wire = as_dingtalk_holds_it(&req);
                prop_assert_ne!(wire.extension.as_deref().map(|e| e.contains("grade")), Some(true));
                let back = from_wire(&wire, &all_ids(), None, &rules).unwrap();
                prop_assert_eq!(&back, &user);
                // And with the OA user as the hint (how apply and plan read it).
                let back = from_wire(&wire, &all_ids(), Some(&user), &rules).unwrap();
                prop_assert_eq!(back, user);
            }
        }
    }
}
