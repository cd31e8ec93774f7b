//! DingTalk's side of a plan: a crawl translated into the OA model and OA ids.
//!
//! The crawl reads departments with `listsub` (then `department/get` for the fields `listsub`
//! lacks: order, visibility, managers, source identifier), users with `v2/user/list`, and roles
//! with their members. Entities the id map knows become model entities keyed by OA id, so the
//! plan can diff them field by field against the OA directory and the base; entities it does not
//! know are kept aside as DingTalk-only (reconcile would create them in OA).
//!
//! `v2/user/list` does not show a user's manager nor their order and title per department (only
//! `title`, the main department's). Those fields are *not observable* from a crawl; they are
//! copied from the OA side before diffing, so the plan never claims a drift it cannot see. Users
//! share ids on both sides (design decision), so an unmapped DingTalk user maps to the OA user
//! with the same id.

use std::collections::{BTreeMap, HashMap};

use dingtalk_client::{ClientError, CrawlOptions, DingTalkClient};
use dingtalk_proto as wire;
use directory_model::{
    Department, Membership, Mobile, OaDeptId, OaRoleGroupId, OaRoleId, OaUserId, Role,
    RoleAssignment, RoleGroup, Snapshot, User, UserState,
};
use directory_store::sync::MappedId;
use directory_store::{Store, StoreError};
use futures::{StreamExt, TryStreamExt};

use super::PlanError;

/// DingTalk's built-in role group (负责人, 主管, 主管理员, 子管理员): its roles cannot be renamed,
/// deleted or assigned through the API, so an unmapped one is not planned for OA.
const BUILTIN_GROUP: &str = "默认";

/// A DingTalk entity the id map does not know.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Unmapped {
    /// A department, with its DingTalk parent.
    Department(Box<wire::dept::DeptDetail>),
    /// A role group and its name.
    RoleGroup(wire::DingRoleGroupId, String),
    /// A role, its name and its group.
    Role(wire::DingRoleId, String, wire::DingRoleGroupId),
}

/// DingTalk's state in OA terms.
#[derive(Debug, Default)]
pub(crate) struct DingView {
    /// Entities known to the id map (users: by shared id), in OA ids.
    pub snapshot: Snapshot,
    /// Entities DingTalk has and the id map does not know, parents before children.
    pub unmapped: Vec<Unmapped>,
    /// DingTalk users with no OA user of the same id (reconcile would create them in OA).
    pub new_users: Vec<User>,
    /// Calls the crawl made (for the report).
    pub calls: u64,
}

/// The id map of one kind, DingTalk id text → OA id text.
async fn reverse_map<O: MappedId>(store: &Store) -> Result<HashMap<String, String>, StoreError> {
    Ok(store
        .id_map_all::<O>()
        .await?
        .into_iter()
        .map(|(oa, ding)| (O::ding_text(&ding), oa.oa_text()))
        .collect())
}

fn lookup_i64(map: &HashMap<String, String>, ding: i64) -> Option<i64> {
    map.get(&ding.to_string()).and_then(|oa| oa.parse().ok())
}

/// Parses DingTalk's `extension` JSON text into string attributes (non-string values keep
/// their JSON text).
pub(crate) fn parse_extension(text: Option<&str>) -> BTreeMap<String, String> {
    let Some(text) = text else {
        return BTreeMap::new();
    };
    match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text) {
        Ok(map) => map
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect(),
        Err(_) => BTreeMap::new(),
    }
}

/// Reads DingTalk and translates it; `oa` supplies the fields a crawl cannot observe.
pub(crate) async fn dingtalk_view(
    store: &Store,
    client: &DingTalkClient,
    oa: &Snapshot,
    concurrency: usize,
) -> Result<DingView, PlanError> {
    let calls_before = client.stats().total_calls();
    let crawl = client
        .crawl(CrawlOptions {
            concurrency,
            roles: true,
        })
        .await
        .map_err(PlanError::DingTalk)?;
    let details: Vec<wire::dept::DeptDetail> = futures::stream::iter(crawl.departments.iter())
        .map(|d| client.dept_get(d.dept_id))
        .buffered(concurrency.max(1))
        .try_collect()
        .await
        .map_err(|e: ClientError| PlanError::DingTalk(e))?;

    let dept_map = reverse_map::<OaDeptId>(store).await?;
    let user_map = reverse_map::<OaUserId>(store).await?;
    let group_map = reverse_map::<OaRoleGroupId>(store).await?;
    let role_map = reverse_map::<OaRoleId>(store).await?;
    let oa_user_of = |ding: &wire::DingUserId| -> OaUserId {
        OaUserId::new(
            user_map
                .get(ding.as_str())
                .cloned()
                .unwrap_or_else(|| ding.as_str().to_owned()),
        )
    };
    let oa_dept_of = |ding: wire::DingDeptId| lookup_i64(&dept_map, ding.0).map(OaDeptId);

    let mut view = DingView::default();
    // DingTalk's root cannot be changed through the API; compare the OA root with itself.
    if let Some(root) = oa_dept_of(wire::DingDeptId::ROOT).and_then(|r| oa.departments.get(&r)) {
        view.snapshot.departments.insert(root.id, root.clone());
    }
    for d in details {
        let Some(id) = oa_dept_of(d.dept_id) else {
            view.unmapped.push(Unmapped::Department(Box::new(d)));
            continue;
        };
        let dept = Department {
            id,
            name: d.name.clone(),
            parent: d.parent_id.and_then(oa_dept_of),
            order: d.order.unwrap_or(0),
            managers: d
                .dept_manager_userid_list
                .iter()
                .flatten()
                .map(&oa_user_of)
                .collect(),
            source_identifier: d.source_identifier.clone().filter(|s| !s.is_empty()),
            hide: d.hide_dept.unwrap_or(false),
            outer: d.outer_dept.unwrap_or(false),
        };
        view.snapshot.departments.insert(id, dept);
    }

    for (userid, u) in &crawl.users {
        let id = oa_user_of(userid);
        let oa_user = oa.users.get(&id);
        let departments: Vec<Membership> = u
            .dept_id_list
            .iter()
            .flatten()
            .filter_map(|d| oa_dept_of(*d))
            .map(|dept| {
                // Per-department order and title are not in `v2/user/list`: keep OA's.
                oa_user
                    .and_then(|o| o.departments.iter().find(|m| m.dept == dept).cloned())
                    .unwrap_or_else(|| Membership::new(dept))
            })
            .collect();
        let main_department = oa_user
            .and_then(|o| o.main_department)
            .filter(|m| departments.iter().any(|d| d.dept == *m))
            .or_else(|| departments.first().map(|m| m.dept));
        let mut departments = departments;
        if let Some(main) = main_department
            && let Some(m) = departments.iter_mut().find(|m| m.dept == main)
        {
            // `title` is the main department's title.
            m.title = u.title.clone().filter(|t| !t.is_empty());
        }
        let user = User {
            id: id.clone(),
            name: u.name.clone(),
            departments,
            main_department,
            manager: oa_user.and_then(|o| o.manager.clone()),
            job_number: u.job_number.clone().filter(|s| !s.is_empty()),
            mobile: u.mobile.as_ref().filter(|m| !m.is_empty()).map(|m| Mobile {
                country_code: u.state_code.clone().unwrap_or_else(|| "86".to_owned()),
                number: m.clone(),
            }),
            email: u.email.clone().filter(|s| !s.is_empty()),
            org_email: u.org_email.clone().filter(|s| !s.is_empty()),
            telephone: u.telephone.clone().filter(|s| !s.is_empty()),
            work_place: u.work_place.clone().filter(|s| !s.is_empty()),
            hired_date_ms: u.hired_date,
            remark: u.remark.clone().filter(|s| !s.is_empty()),
            extension: parse_extension(u.extension.as_deref()),
            state: UserState::Active,
        };
        if oa_user.is_some() || user_map.contains_key(userid.as_str()) {
            view.snapshot.users.insert(id, user);
        } else {
            view.new_users.push(user);
        }
    }

    for g in &crawl.role_groups {
        if g.name == BUILTIN_GROUP && lookup_i64(&group_map, g.group_id.0).is_none() {
            continue;
        }
        match lookup_i64(&group_map, g.group_id.0) {
            Some(id) => {
                let id = OaRoleGroupId(id);
                view.snapshot.role_groups.insert(
                    id,
                    RoleGroup {
                        id,
                        name: g.name.clone(),
                    },
                );
            }
            None => view
                .unmapped
                .push(Unmapped::RoleGroup(g.group_id, g.name.clone())),
        }
        for r in &g.roles {
            let (Some(role_id), Some(group)) = (
                lookup_i64(&role_map, r.id.0),
                lookup_i64(&group_map, g.group_id.0),
            ) else {
                view.unmapped
                    .push(Unmapped::Role(r.id, r.name.clone(), g.group_id));
                continue;
            };
            let role_id = OaRoleId(role_id);
            view.snapshot.roles.insert(
                role_id,
                Role {
                    id: role_id,
                    group: OaRoleGroupId(group),
                    name: r.name.clone(),
                },
            );
            for m in crawl.role_members.get(&r.id).into_iter().flatten() {
                view.snapshot.assignments.insert(RoleAssignment {
                    user: oa_user_of(&m.userid),
                    role: role_id,
                });
            }
        }
    }
    view.calls = client.stats().total_calls().saturating_sub(calls_before);
    Ok(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_text_becomes_string_attributes() {
        let ext = parse_extension(Some(r#"{"badge":"42","floor":3}"#));
        assert_eq!(ext.get("badge").map(String::as_str), Some("42"));
        assert_eq!(ext.get("floor").map(String::as_str), Some("3"));
        assert!(parse_extension(Some("not json")).is_empty());
        assert!(parse_extension(None).is_empty());
    }
}
