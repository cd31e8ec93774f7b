//! Model → DingTalk request builders for the pusher.
//!
//! Pure functions: the pusher first resolves every OA id an entity references to its DingTalk id
//! (through the id map) and hands the results in as `*Refs`; these functions only decide which
//! wire field carries what. Keeping them apart from the I/O lets unit tests pin every field the
//! guide shows (department `source_identifier`, `outer_dept`, `hide_dept`, `order`, managers;
//! user `dept_id_list`, `dept_title_list`, `dept_order_list`, `manager_userid`, `extension`,
//! `hired_date`, `org_email`, …) without a server.
//!
//! The pusher always sends the *whole current* OA entity, never a stored diff, so a retried or
//! coalesced push converges on the same DingTalk state. DingTalk's update treats an absent or
//! empty field as "keep", so clearing a field needs `force_update_fields`; we name a field there
//! only when it is empty now and the base (what DingTalk was last known to hold) had a value, or
//! for the manager, which the guide documents as clearable this way.

use std::collections::BTreeMap;

use dingtalk_proto::{
    CommaList, DingDeptId, DingUserId,
    dept::{DeptCreateRequest, DeptUpdateRequest},
    user::{DeptOrder, DeptTitle, UserCreateRequest, UserUpdateRequest},
};
use directory_model::{Department, User};

/// The DingTalk ids a department push references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeptRefs {
    /// The parent's DingTalk id.
    pub parent: DingDeptId,
    /// The managers' DingTalk userids, in the OA order.
    pub managers: Vec<DingUserId>,
}

/// The DingTalk ids a user push references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserRefs {
    /// The DingTalk id of each membership's department, parallel to `User::departments`.
    pub depts: Vec<DingDeptId>,
    /// The manager's DingTalk userid.
    pub manager: Option<DingUserId>,
}

/// `department/create` for `dept`; the managers need a follow-up update (create has no field
/// for them).
pub(crate) fn dept_create(
    dept: &Department,
    refs: &DeptRefs,
    source_identifier: &str,
) -> DeptCreateRequest {
    let mut req = DeptCreateRequest::new(dept.name.clone(), refs.parent);
    req.order = Some(dept.order);
    req.hide_dept = Some(dept.hide);
    req.outer_dept = Some(dept.outer);
    req.source_identifier = Some(source_identifier.to_owned());
    req
}

/// `department/update` carrying every field of `dept`.
pub(crate) fn dept_update(
    dept: &Department,
    ding: DingDeptId,
    refs: &DeptRefs,
) -> DeptUpdateRequest {
    let mut req = DeptUpdateRequest::new(ding);
    req.parent_id = Some(refs.parent);
    req.name = Some(dept.name.clone());
    req.order = Some(dept.order);
    req.hide_dept = Some(dept.hide);
    req.outer_dept = Some(dept.outer);
    let mut force = Vec::new();
    match &dept.source_identifier {
        Some(si) => req.source_identifier = Some(si.clone()),
        None => {
            req.source_identifier = Some(String::new());
            force.push("source_identifier");
        }
    }
    if refs.managers.is_empty() {
        force.push("dept_manager_userid_list");
    } else {
        req.dept_manager_userid_list = Some(CommaList::new(refs.managers.iter().cloned()));
    }
    if !force.is_empty() {
        req.force_update_fields = Some(force.join(","));
    }
    req
}

/// Whether a department needs the follow-up update after create (it has managers).
pub(crate) fn dept_needs_manager_update(refs: &DeptRefs) -> bool {
    !refs.managers.is_empty()
}

/// The user's title in their main department: DingTalk's top-level `title`.
/// The title of the main membership. A three-way merge can take `departments` from one side
/// and `main_department` from the other, naming a department the user is no longer in; then the
/// first membership is the main one, as `convert::user` reads it back (otherwise the pushed
/// `title` was cleared and plan saw a difference forever; found by the convergence test).
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

/// The extension attributes as the JSON object text DingTalk takes.
fn extension_text(ext: &BTreeMap<String, String>) -> String {
    // A map of strings to strings always serializes; the fallback is unreachable.
    serde_json::to_string(ext).unwrap_or_else(|_| "{}".to_owned())
}

/// Why a user cannot be created in DingTalk as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CreateUserRefused {
    /// DingTalk requires a mobile number on create.
    #[error("DingTalk requires a mobile number to create a user")]
    NoMobile,
    /// DingTalk requires at least one department.
    #[error("DingTalk requires at least one department to create a user")]
    NoDepartment,
}

/// `v2/user/create` for `user` under `userid` (the OA id, so a retry finds it: 60102).
pub(crate) fn user_create(
    user: &User,
    userid: &DingUserId,
    refs: &UserRefs,
) -> Result<UserCreateRequest, CreateUserRefused> {
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

/// `v2/user/update` carrying every field of `user` (except the mobile, which the update API
/// does not take), clearing what the base had and the user no longer has.
pub(crate) fn user_update(
    user: &User,
    userid: &DingUserId,
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
    use directory_model::{Membership, Mobile, OaDeptId, OaUserId};
    use serde_json::json;

    use super::*;

    fn dept() -> Department {
        let mut d = Department::new(OaDeptId(7), "R&D", Some(OaDeptId(1)));
        d.order = 3;
        d.hide = true;
        d.outer = true;
        d.managers = vec![OaUserId::new("boss")];
        d
    }

    fn refs() -> DeptRefs {
        DeptRefs {
            parent: DingDeptId(100),
            managers: vec![DingUserId::new("boss")],
        }
    }

    #[test]
    fn dept_create_carries_every_create_field() {
        let req = dept_create(&dept(), &refs(), "dingsync:7");
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(
            v,
            json!({"name": "R&D", "parent_id": 100, "hide_dept": true, "outer_dept": true,
                   "order": 3, "source_identifier": "dingsync:7"})
        );
        assert!(dept_needs_manager_update(&refs()));
    }

    #[test]
    fn dept_update_sets_managers_or_forces_them_empty() {
        let req = dept_update(&dept(), DingDeptId(555), &refs());
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(v["dept_id"], json!(555));
        assert_eq!(v["parent_id"], json!(100));
        assert_eq!(v["dept_manager_userid_list"], json!("boss"));
        assert_eq!(v["force_update_fields"], json!("source_identifier"));

        let mut d = dept();
        d.managers.clear();
        d.source_identifier = Some("dingsync:7".into());
        let none = DeptRefs {
            parent: DingDeptId(100),
            managers: Vec::new(),
        };
        let v = serde_json::to_value(dept_update(&d, DingDeptId(555), &none)).unwrap();
        assert_eq!(v["force_update_fields"], json!("dept_manager_userid_list"));
        assert_eq!(v["source_identifier"], json!("dingsync:7"));
        assert!(v.get("dept_manager_userid_list").is_none());
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
            depts: vec![DingDeptId(70), DingDeptId(80)],
            manager: Some(DingUserId::new("boss")),
        }
    }

    #[test]
    fn user_create_carries_every_field_the_guide_shows() {
        let req = user_create(&user(), &DingUserId::new("zhang"), &user_refs()).unwrap();
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
            user_create(&u, &DingUserId::new("zhang"), &user_refs()),
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
        let v = serde_json::to_value(user_update(
            &now,
            &DingUserId::new("zhang"),
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
        let v = serde_json::to_value(user_update(&now, &DingUserId::new("zhang"), &refs, None))
            .unwrap();
        assert_eq!(v["force_update_fields"], json!("manager_userid"));
        assert!(v.get("dept_title_list").is_none());
        assert!(v.get("extension").is_none());
    }
}
