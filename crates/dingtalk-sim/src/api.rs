//! The table of DingTalk business endpoints: which path runs which `Org` operation, and how its
//! answer is wrapped.
//!
//! Two families answer differently. TOP gateway paths (`/topapi/...`) wrap the payload as
//! `result` and always add a `request_id`; the legacy oapi paths (`/role/add_role` and friends)
//! put their fields at the top level and carry no `request_id`. A few topapi endpoints
//! (`getrolegroup`, `getrole`) also put their payload at the top level; [`Reply`] says which.
//! The envelopes themselves are built in `envelope`. The paths of the generation before topapi v2
//! that `dingtalk-sdk` 1.3.8 calls (`/department/list`, `/user/get`, …) are legacy-family routes
//! too, some of them read with GET (`org::legacy_contacts`).
//!
//! Not simulated, so answered as unknown paths (HTTP 404): `/router/rest`, the old TOP router
//! `dingtalk-sdk` sends its `dingtalk.corp.role.*` calls to (no current DingTalk page documents
//! it, and the facts are silent; its roles have topapi equivalents), and the other old paths
//! (`/department/update`, `/user/update`, `/user/delete`, `/department/get`, …).

use crate::envelope::{Family, Reply};
use crate::error::Outcome;
use crate::org::Org;
use crate::params::Params;

/// An operation on the org.
pub type Handler = fn(&mut Org, &Params) -> Outcome<Reply>;

/// One business endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub family: Family,
    pub handler: Handler,
    /// Called with GET (the old contacts reads); every other business path takes POST.
    pub get: bool,
}

/// The endpoint at `path`, or `None` when DingTalk has no such path.
pub fn route(path: &str) -> Option<Route> {
    let top = |handler: Handler| {
        Some(Route {
            family: Family::Top,
            handler,
            get: false,
        })
    };
    let legacy = |handler: Handler| {
        Some(Route {
            family: Family::Legacy,
            handler,
            get: false,
        })
    };
    let legacy_get = |handler: Handler| {
        Some(Route {
            family: Family::Legacy,
            handler,
            get: true,
        })
    };
    match path {
        "/topapi/v2/department/listsub" => top(|o, p| o.dept_listsub(p)),
        "/topapi/v2/department/listsubid" => top(|o, p| o.dept_listsubid(p)),
        "/topapi/v2/department/get" => top(|o, p| o.dept_get(p)),
        "/topapi/v2/department/create" => top(|o, p| o.dept_create(p)),
        "/topapi/v2/department/update" => top(|o, p| o.dept_update(p)),
        "/topapi/v2/department/delete" => top(|o, p| o.dept_delete(p)),
        "/topapi/v2/department/listparentbydept" => top(|o, p| o.dept_listparentbydept(p)),
        "/topapi/v2/department/listparentbyuser" => top(|o, p| o.dept_listparentbyuser(p)),
        "/topapi/v2/user/list" => top(|o, p| o.user_list(p)),
        "/topapi/v2/user/get" => top(|o, p| o.user_get(p)),
        "/topapi/v2/user/create" => top(|o, p| o.user_create(p)),
        "/topapi/v2/user/update" => top(|o, p| o.user_update(p)),
        "/topapi/v2/user/delete" => top(|o, p| o.user_delete(p)),
        "/topapi/v2/user/getbymobile" => top(|o, p| o.user_getbymobile(p)),
        "/topapi/user/listid" => top(|o, p| o.user_listid(p)),
        "/topapi/user/listsimple" => top(|o, p| o.user_listsimple(p)),
        "/topapi/user/count" => top(|o, p| o.user_count(p)),
        "/topapi/user/getbyunionid" => top(|o, p| o.user_getbyunionid(p)),
        // 上下级组织 (`org::union`): the corps linked below / above this one.
        "/topapi/org/union/branch/get" => top(|o, _| Ok(Reply::Result(o.union_branches()))),
        "/topapi/org/union/trunk/get" => top(|o, _| Ok(Reply::Result(o.union_trunks()))),
        "/topapi/role/list" => top(|o, p| o.role_list(p)),
        "/topapi/role/deleterole" => top(|o, p| o.role_delete(p)),
        "/topapi/role/getrolegroup" => top(|o, p| o.role_getrolegroup(p)),
        "/topapi/role/getrole" => top(|o, p| o.role_getrole(p)),
        "/topapi/role/addrolesforemps" => top(|o, p| o.role_add_for_emps(p)),
        "/topapi/role/removerolesforemps" => top(|o, p| o.role_remove_for_emps(p)),
        "/topapi/role/simplelist" => top(|o, p| o.role_simplelist(p)),
        "/role/add_role_group" => legacy(|o, p| o.role_add_group(p)),
        "/role/add_role" => legacy(|o, p| o.role_add(p)),
        "/role/update_role" => legacy(|o, p| o.role_update(p)),
        // The generation before topapi v2 (`org::legacy_contacts`).
        "/department/list" => legacy_get(|o, p| o.old_dept_list(p)),
        "/department/create" => legacy(|o, p| o.old_dept_create(p)),
        "/user/get" => legacy_get(|o, p| o.old_user_get(p)),
        "/user/simplelist" => legacy_get(|o, p| o.old_user_simplelist(p)),
        "/user/list" => legacy_get(|o, p| o.old_user_list(p)),
        "/user/create" => legacy(|o, p| o.old_user_create(p)),
        _ => None,
    }
}

/// The TOP method name DingTalk reports for an unknown topapi path
/// (`/topapi/v2/user/notexist` → `dingtalk.oapi.v2.user.notexist`).
pub fn top_method_name(path: &str) -> String {
    let rest = path.trim_start_matches("/topapi/").trim_matches('/');
    format!("dingtalk.oapi.{}", rest.replace('/', "."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_unknown_paths() {
        assert_eq!(
            route("/topapi/v2/user/get").map(|r| r.family),
            Some(Family::Top)
        );
        assert_eq!(
            route("/role/add_role").map(|r| r.family),
            Some(Family::Legacy)
        );
        assert!(route("/topapi/v2/user/notexist").is_none());
        assert_eq!(
            top_method_name("/topapi/v2/user/notexist"),
            "dingtalk.oapi.v2.user.notexist"
        );
    }
}
