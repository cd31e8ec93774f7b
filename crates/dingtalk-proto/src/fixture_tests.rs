//! Golden-fixture tests: every request and response in `fixtures/` parses into its wire type and
//! serialises back to exactly the same JSON (same keys, same values, same JSON types).

use std::{collections::BTreeSet, fs, path::PathBuf};

use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::{
    ApiStatus, StatusResponse, TopResponse,
    callback::{FailedCallbacksResponse, RegisterCallbackRequest},
    dept::{
        DeptBrief, DeptCreateRequest, DeptCreateResult, DeptDetail, DeptIdList, DeptIdRequest,
        DeptListSubRequest, DeptParentIdList, DeptUpdateRequest, UserIdRequest, UserParentList,
    },
    role::{
        AddRoleGroupRequest, AddRoleGroupResponse, AddRoleRequest, AddRoleResponse,
        DeleteRoleRequest, GetRoleGroupRequest, GetRoleGroupResponse, GetRoleRequest,
        GetRoleResponse, OffsetPage, RoleListResult, RoleMembersPage, RoleSimpleListRequest,
        RolesForEmpsRequest, UpdateRoleRequest,
    },
    token::{
        GetTokenRequest, GetTokenResponse, NewApiError, OAuthTokenRequest, OAuthTokenResponse,
    },
    user::{
        User, UserCountRequest, UserCountResult, UserCreateRequest, UserCreateResult,
        UserGetByMobileRequest, UserIdList, UserIdResult, UserListPage, UserListRequest,
        UserSimple, UserUpdateRequest,
    },
};

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn load(file: &str) -> Value {
    let text = fs::read_to_string(fixture_dir().join(file)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn index() -> Vec<Value> {
    load("index.json").as_array().unwrap().clone()
}

fn entry(name: &str) -> Value {
    index()
        .into_iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in index.json"))
}

/// Parses `file` as `T`, re-serialises it and demands the identical JSON back.
fn round_trip<T: DeserializeOwned + Serialize>(file: &str) -> T {
    let original = load(file);
    let typed: T = serde_json::from_value(original.clone())
        .unwrap_or_else(|e| panic!("{file} does not parse: {e}"));
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(back, original, "{file} does not round-trip");
    typed
}

/// Checks one endpoint: request, success response, and every error response.
fn check<Req, Resp>(name: &str)
where
    Req: DeserializeOwned + Serialize,
    Resp: DeserializeOwned + Serialize,
{
    let e = entry(name);
    if let Some(req) = e["request"].as_str() {
        round_trip::<Req>(req);
    }
    round_trip::<Resp>(e["response"].as_str().unwrap());
    for err in e["errors"].as_array().unwrap() {
        let file = err.as_str().unwrap();
        if name == "v1_0_oauth2_accessToken" {
            round_trip::<NewApiError>(file);
            continue;
        }
        round_trip::<Resp>(file);
        let status: ApiStatus = serde_json::from_value(load(file)).unwrap();
        assert!(!status.is_ok(), "{file} is an error fixture with errcode 0");
        // The file name carries the code: `<api>.error-<code>[-<sub_code>].response.json`.
        let tag = file
            .split(".error-")
            .nth(1)
            .unwrap()
            .trim_end_matches(".response.json");
        let (code, sub) = match tag.strip_prefix('-') {
            Some(negative) => (-negative.parse::<i64>().unwrap(), None),
            None => match tag.split_once('-') {
                Some((code, sub)) => (code.parse::<i64>().unwrap(), Some(sub)),
                None => (tag.parse::<i64>().unwrap(), None),
            },
        };
        assert_eq!(status.errcode.0, code, "{file}");
        if let Some(sub) = sub {
            assert_eq!(status.sub_code.as_deref(), Some(sub), "{file}");
        }
    }
}

#[test]
fn every_fixture_round_trips() {
    check::<GetTokenRequest, GetTokenResponse>("gettoken");
    check::<OAuthTokenRequest, OAuthTokenResponse>("v1_0_oauth2_accessToken");
    check::<DeptListSubRequest, TopResponse<Vec<DeptBrief>>>("topapi_v2_department_listsub");
    check::<DeptIdRequest, TopResponse<DeptIdList>>("topapi_v2_department_listsubid");
    check::<DeptIdRequest, TopResponse<DeptDetail>>("topapi_v2_department_get");
    check::<DeptCreateRequest, TopResponse<DeptCreateResult>>("topapi_v2_department_create");
    check::<DeptUpdateRequest, StatusResponse>("topapi_v2_department_update");
    check::<DeptIdRequest, StatusResponse>("topapi_v2_department_delete");
    check::<DeptIdRequest, TopResponse<DeptParentIdList>>("topapi_v2_department_listparentbydept");
    check::<UserIdRequest, TopResponse<UserParentList>>("topapi_v2_department_listparentbyuser");
    check::<UserListRequest, TopResponse<UserListPage<User>>>("topapi_v2_user_list");
    check::<DeptIdRequest, TopResponse<UserIdList>>("topapi_user_listid");
    check::<UserListRequest, TopResponse<UserListPage<UserSimple>>>("topapi_user_listsimple");
    check::<UserIdRequest, TopResponse<User>>("topapi_v2_user_get");
    check::<UserCreateRequest, TopResponse<UserCreateResult>>("topapi_v2_user_create");
    check::<UserUpdateRequest, StatusResponse>("topapi_v2_user_update");
    check::<UserIdRequest, StatusResponse>("topapi_v2_user_delete");
    check::<UserGetByMobileRequest, TopResponse<UserIdResult>>("topapi_v2_user_getbymobile");
    check::<UserCountRequest, TopResponse<UserCountResult>>("topapi_user_count");
    check::<OffsetPage, TopResponse<RoleListResult>>("topapi_role_list");
    check::<AddRoleGroupRequest, AddRoleGroupResponse>("role_add_role_group");
    check::<AddRoleRequest, AddRoleResponse>("role_add_role");
    check::<UpdateRoleRequest, StatusResponse>("role_update_role");
    check::<DeleteRoleRequest, StatusResponse>("topapi_role_deleterole");
    check::<GetRoleGroupRequest, GetRoleGroupResponse>("topapi_role_getrolegroup");
    check::<GetRoleRequest, GetRoleResponse>("topapi_role_getrole");
    check::<RolesForEmpsRequest, StatusResponse>("topapi_role_addrolesforemps");
    check::<RolesForEmpsRequest, StatusResponse>("topapi_role_removerolesforemps");
    check::<RoleSimpleListRequest, TopResponse<RoleMembersPage>>("topapi_role_simplelist");
    check::<Value, FailedCallbacksResponse>("call_back_get_call_back_failed_result");
    check::<RegisterCallbackRequest, StatusResponse>("call_back_register_call_back");
}

#[test]
fn index_lists_every_fixture_file_and_nothing_else() {
    let mut listed = BTreeSet::from(["index.json".to_owned(), "README.md".to_owned()]);
    for e in index() {
        listed.insert(e["response"].as_str().unwrap().to_owned());
        if let Some(req) = e["request"].as_str() {
            listed.insert(req.to_owned());
        }
        for err in e["errors"].as_array().unwrap() {
            listed.insert(err.as_str().unwrap().to_owned());
        }
    }
    let on_disk: BTreeSet<String> = fs::read_dir(fixture_dir())
        .unwrap()
        .map(|f| f.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(listed, on_disk);
}

#[test]
fn required_paths_exist_in_the_success_fixture() {
    for e in index() {
        let resp = load(e["response"].as_str().unwrap());
        for path in e["required"].as_array().unwrap() {
            let path = path.as_str().unwrap();
            assert!(
                path_present(&resp, path),
                "{}: required path {path} missing from its own fixture",
                e["name"]
            );
        }
    }
}

/// Whether a dotted path (`result.list[].userid`) exists; `[]` means "in every array element".
fn path_present(value: &Value, path: &str) -> bool {
    let mut parts = path.splitn(2, '.');
    let head = parts.next().unwrap_or_default();
    let rest = parts.next();
    let (key, each) = match head.strip_suffix("[]") {
        Some(key) => (key, true),
        None => (head, false),
    };
    let Some(child) = value.get(key) else {
        return false;
    };
    match (each, rest) {
        (false, None) => true,
        (false, Some(rest)) => path_present(child, rest),
        (true, rest) => child.as_array().is_some_and(|items| {
            items
                .iter()
                .all(|item| rest.is_none_or(|rest| path_present(item, rest)))
        }),
    }
}

#[test]
fn secrets_in_wire_types_are_redacted() {
    let e = entry("gettoken");
    let req: GetTokenRequest =
        serde_json::from_value(load(e["request"].as_str().unwrap())).unwrap();
    let resp: GetTokenResponse =
        serde_json::from_value(load(e["response"].as_str().unwrap())).unwrap();
    let printed = format!("{req:?} {resp:?}");
    assert!(!printed.contains("simsecret"), "{printed}");
    assert!(!printed.contains("96fc7a7a"), "{printed}");
    let reg: RegisterCallbackRequest =
        serde_json::from_value(load("call_back_register_call_back.request.json")).unwrap();
    let printed = format!("{reg:?}");
    assert!(!printed.contains("1234567890123"), "{printed}");
}

#[test]
fn lenient_parsing_of_stringified_doc_examples() {
    // The documentation's own examples quote every scalar; they must parse to the same values.
    let quoted = serde_json::json!({
        "errcode": "0", "errmsg": "ok", "request_id": "x",
        "result": {"has_more": "true", "next_cursor": "100",
                   "list": [{"userid": "a", "name": "A", "active": "false",
                             "dept_id_list": ["2", "3"], "hired_date": "1597573616828"}]}
    });
    let page: TopResponse<UserListPage<User>> = serde_json::from_value(quoted).unwrap();
    let result = page.result.unwrap();
    assert!(result.has_more);
    assert_eq!(result.next_cursor, Some(100));
    assert_eq!(result.list[0].active, Some(false));
    assert_eq!(result.list[0].hired_date, Some(1_597_573_616_828));
    assert_eq!(
        result.list[0].dept_id_list.as_deref(),
        Some(&[crate::DingDeptId(2), crate::DingDeptId(3)][..])
    );
}
