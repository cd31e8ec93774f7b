//! Departments: DingTalk's `department/get` ↔ the model's [`Department`], and the
//! `dingsync:<oa id>` source identifier that makes a create idempotent.

use dingtalk_proto::{
    CommaList, DingDeptId as WireDeptId, DingUserId as WireUserId,
    dept::{DeptCreateRequest, DeptDetail, DeptUpdateRequest},
};
use directory_model::{Department, DingDeptId, OaDeptId, OaUserId};

use super::{ConvertError, IdMap, align, ding, text};
use crate::rules::Rules;

pub use directory_model::entity::{marked_oa_id, source_marker};

/// A DingTalk department (`department/get`) as an OA department, mapped to OA's values by
/// `rules`. DingTalk's root has no parent.
pub fn from_wire(
    wire: &DeptDetail,
    ids: &IdMap,
    hint: Option<&Department>,
    rules: &Rules,
) -> Result<Department, ConvertError> {
    let ding = dingtalk_values(wire, ids, hint)?;
    Ok(rules.department_to_oa(ding, hint)?)
}

/// A DingTalk department read in the model's shape but still in DingTalk's values, with what
/// DingTalk would hold if it agreed with the OA department (the hint mapped by `rules`; `None`
/// without a hint or without rules): what the plan compares to find a changed mapping's drift.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadDepartment {
    /// DingTalk's values.
    pub dingtalk: Department,
    /// The OA department mapped to DingTalk's values.
    pub expected: Option<Department>,
}

/// The first half of [`from_wire`], keeping both sides' values apart.
pub fn read_wire(
    wire: &DeptDetail,
    ids: &IdMap,
    hint: Option<&Department>,
    rules: &Rules,
) -> Result<ReadDepartment, ConvertError> {
    let dingtalk = dingtalk_values(wire, ids, hint)?;
    let expected = match (rules.loaded(), hint) {
        (Some(_), Some(h)) => Some(rules.department_to_dingtalk(h)?.entity),
        _ => None,
    };
    Ok(ReadDepartment { dingtalk, expected })
}

/// DingTalk's department in the model's shape, before the mapping.
fn dingtalk_values(
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
    Ok(with_ids(wire, id, parent, managers))
}

/// A DingTalk department the id map does not know yet, as a new OA department `id` under
/// `parent` (reconcile creates it in OA; its managers follow with the next event).
pub fn from_unlinked(
    wire: &DeptDetail,
    id: OaDeptId,
    parent: OaDeptId,
    rules: &Rules,
) -> Result<Department, mapping::MapError> {
    rules.department_to_oa(with_ids(wire, id, Some(parent), Vec::new()), None)
}

/// A DingTalk department in DingTalk's values as `[scope.to_oa.departments]` predicates see it:
/// its own fields, its OA id and parent where the id map knows them (0 and none otherwise), no
/// managers (`ancestors` carries its place in the tree).
pub fn scope_view(wire: &DeptDetail, ids: &IdMap) -> Department {
    let id = ids.oa_dept(ding::dept(wire.dept_id)).unwrap_or(OaDeptId(0));
    let parent = wire.parent_id.and_then(|p| ids.oa_dept(ding::dept(p)));
    with_ids(wire, id, parent, Vec::new())
}

/// The department's own fields from `wire`, with its references already translated.
fn with_ids(
    wire: &DeptDetail,
    id: OaDeptId,
    parent: Option<OaDeptId>,
    managers: Vec<OaUserId>,
) -> Department {
    Department {
        id,
        name: wire.name.clone(),
        parent,
        order: wire.order.unwrap_or(0),
        managers,
        source_identifier: text(wire.source_identifier.as_ref()),
        hide: wire.hide_dept.unwrap_or(false),
        outer: wire.outer_dept.unwrap_or(false),
    }
}

/// The DingTalk ids a department push references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeptRefs {
    /// The parent's DingTalk id.
    pub parent: WireDeptId,
    /// The managers' DingTalk userids, in the OA order.
    pub managers: Vec<WireUserId>,
}

/// `department/create` for the OA `dept` mapped by `rules`; the managers need a follow-up
/// update (create has no field for them).
pub(crate) fn create_request(
    dept: &Department,
    refs: &DeptRefs,
    source_identifier: &str,
    rules: &Rules,
) -> Result<DeptCreateRequest, mapping::MapError> {
    let mapped = rules.department_to_dingtalk(dept)?;
    Ok(create_request_mapped(
        &mapped.entity,
        refs,
        source_identifier,
    ))
}

fn create_request_mapped(
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

/// `department/update` carrying every field of the OA `dept` mapped by `rules`, with `on_create`
/// fields kept at the mapped `base` (what DingTalk was last known to hold).
pub(crate) fn update_request(
    dept: &Department,
    ding: WireDeptId,
    refs: &DeptRefs,
    base: Option<&Department>,
    rules: &Rules,
) -> Result<DeptUpdateRequest, mapping::MapError> {
    let mapped = rules.department_update(dept, base)?;
    Ok(update_request_mapped(&mapped, ding, refs))
}

fn update_request_mapped(
    dept: &Department,
    ding: WireDeptId,
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
pub(crate) fn needs_manager_update(refs: &DeptRefs) -> bool {
    !refs.managers.is_empty()
}

#[cfg(test)]
mod tests {
    use directory_model::DingUserId;
    use serde_json::json;

    use super::*;

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
    fn department_detail_converts_with_root_and_manager_order() {
        let d: DeptDetail = serde_json::from_value(serde_json::json!({
            "dept_id": 2000, "name": "R&D", "parent_id": 1000, "order": 5,
            "dept_manager_userid_list": ["u7", "boss"], "source_identifier": "",
            "hide_dept": true, "outer_dept": false
        }))
        .unwrap();
        let mut hint = Department::new(OaDeptId(20), "R&D", Some(OaDeptId(10)));
        hint.managers = vec![OaUserId::new("boss"), OaUserId::new("emp-7")];
        let got = from_wire(&d, &ids(), Some(&hint), &Rules::default()).unwrap();
        assert_eq!(got.parent, Some(OaDeptId(10)));
        assert_eq!(got.managers, hint.managers, "hint order kept");
        assert_eq!(got.source_identifier, None);
        assert!(got.hide && !got.outer);
        assert_eq!(got.order, 5);

        let root: DeptDetail = serde_json::from_value(serde_json::json!({
            "dept_id": 1, "name": "Acme"
        }))
        .unwrap();
        let r = from_wire(&root, &ids(), None, &Rules::default()).unwrap();
        assert_eq!((r.id, r.parent), (OaDeptId(1), None));
    }

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
            parent: WireDeptId(100),
            managers: vec![WireUserId::new("boss")],
        }
    }

    #[test]
    fn dept_create_carries_every_create_field() {
        let req = create_request_mapped(&dept(), &refs(), "dingsync:7");
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(
            v,
            json!({"name": "R&D", "parent_id": 100, "hide_dept": true, "outer_dept": true,
                   "order": 3, "source_identifier": "dingsync:7"})
        );
        assert!(needs_manager_update(&refs()));
    }

    #[test]
    fn dept_update_sets_managers_or_forces_them_empty() {
        let req = update_request_mapped(&dept(), WireDeptId(555), &refs());
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(v["dept_id"], json!(555));
        assert_eq!(v["parent_id"], json!(100));
        assert_eq!(v["dept_manager_userid_list"], json!("boss"));
        assert_eq!(v["force_update_fields"], json!("source_identifier"));

        let mut d = dept();
        d.managers.clear();
        d.source_identifier = Some("dingsync:7".into());
        let none = DeptRefs {
            parent: WireDeptId(100),
            managers: Vec::new(),
        };
        let v = serde_json::to_value(update_request_mapped(&d, WireDeptId(555), &none)).unwrap();
        assert_eq!(v["force_update_fields"], json!("dept_manager_userid_list"));
        assert_eq!(v["source_identifier"], json!("dingsync:7"));
        assert!(v.get("dept_manager_userid_list").is_none());
    }

    #[test]
    fn marker_names_the_oa_id() {
        assert_eq!(source_marker(OaDeptId(42)), "dingsync:42");
        assert_eq!(marked_oa_id(Some("dingsync:42")), Some(OaDeptId(42)));
        assert_eq!(marked_oa_id(Some("other:42")), None);
        assert_eq!(marked_oa_id(Some("dingsync:x")), None);
        assert_eq!(marked_oa_id(None), None);
    }
}
