//! The `/_sim` administrator routes: same rules as the API, and every change becomes an event.

use crate::common;

use common::Sim;
use reqwest::Method;
use serde_json::{Value, json};

fn event_types(events: &Value) -> Vec<String> {
    events["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["event_type"].as_str().expect("type").to_owned())
        .collect()
}

#[tokio::test]
async fn admin_changes_follow_api_rules_and_record_events() {
    let sim = Sim::with_org(0, 0).await;
    let (status, created) = sim
        .admin(
            Method::POST,
            "/depts",
            Some(json!({"name": "Ops", "parent_id": 1})),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let ops = created["result"]["dept_id"].as_i64().expect("dept_id");
    let (status, dup) = sim
        .admin(
            Method::POST,
            "/depts",
            Some(json!({"name": "Ops", "parent_id": 1})),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(dup["errcode"], 60008);

    let (status, _) = sim
        .admin(Method::POST, "/users", Some(json!({"userid": "alice", "name": "Alice", "mobile": "13600000001", "dept_id_list": ops.to_string()})))
        .await;
    assert_eq!(status, 200);
    let (status, _) = sim
        .admin(Method::PATCH, "/users/alice", Some(json!({"title": "SRE"})))
        .await;
    assert_eq!(status, 200);
    let (status, _) = sim
        .admin(
            Method::PATCH,
            &format!("/depts/{ops}"),
            Some(json!({"name": "Operations"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, refused) = sim
        .admin(Method::DELETE, &format!("/depts/{ops}"), None)
        .await;
    assert_eq!((status, refused["errcode"].clone()), (422, json!(60005)));

    // Leave, then come back with the same userid.
    let (status, _) = sim.admin(Method::DELETE, "/users/alice", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        sim.code("/topapi/v2/user/get", json!({"userid": "alice"}))
            .await,
        60121
    );
    let state = sim.state().await;
    assert_eq!(state["departed_userids"], json!(["alice"]));
    let (status, _) = sim
        .admin(Method::POST, "/users/alice/rehire", Some(json!({})))
        .await;
    assert_eq!(status, 200);
    let back = sim
        .ok("/topapi/v2/user/get", json!({"userid": "alice"}))
        .await;
    assert_eq!(back["result"]["dept_id_list"], json!([ops]));
    assert_eq!(back["result"]["title"], "SRE");
    let (status, _) = sim
        .admin(Method::POST, "/users/alice/rehire", Some(json!({})))
        .await;
    assert_eq!(status, 422, "only people who left can be rehired");

    // An API write shows up in the same log, marked as the app's.
    sim.dept("Api Dept", 1).await;

    let (_, events) = sim.admin(Method::GET, "/events", None).await;
    assert_eq!(
        event_types(&events),
        vec![
            "org_dept_create",
            "user_add_org",
            "user_modify_org",
            "org_dept_modify",
            "user_leave_org",
            "user_add_org",
            "org_dept_create",
        ]
    );
    let list = events["events"].as_array().expect("events");
    assert_eq!(list[0]["origin"], "admin");
    assert_eq!(list[0]["data"]["deptId"], json!([ops]));
    assert_eq!(list[1]["data"]["userId"], json!(["alice"]));
    assert_eq!(list[6]["origin"], "api");
    let (_, tail) = sim.admin(Method::GET, "/events?after=6", None).await;
    assert_eq!(event_types(&tail), vec!["org_dept_create"]);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn admin_role_changes_and_state() {
    let sim = Sim::with_org(10, 3).await;
    let (_, group) = sim
        .admin(Method::POST, "/role-groups", Some(json!({"name": "Shift"})))
        .await;
    let group_id = group["groupId"].as_i64().expect("groupId");
    let (_, role) = sim
        .admin(
            Method::POST,
            "/roles",
            Some(json!({"roleName": "Night", "groupId": group_id})),
        )
        .await;
    let role_id = role["roleId"].as_i64().expect("roleId");
    let state = sim.state().await;
    let someone = state["users"][0]["userid"]
        .as_str()
        .expect("userid")
        .to_owned();
    let (status, _) = sim
        .admin(
            Method::POST,
            "/roles/assign",
            Some(json!({"roleIds": role_id.to_string(), "userIds": someone})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, refused) = sim
        .admin(Method::DELETE, &format!("/roles/{role_id}"), None)
        .await;
    assert_eq!((status, refused["errcode"].clone()), (422, json!(1002)));
    let (status, _) = sim
        .admin(
            Method::PATCH,
            &format!("/roles/{role_id}"),
            Some(json!({"roleName": "Late"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = sim
        .admin(
            Method::POST,
            "/roles/unassign",
            Some(json!({"roleIds": role_id.to_string(), "userIds": someone})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = sim
        .admin(Method::DELETE, &format!("/roles/{role_id}"), None)
        .await;
    assert_eq!(status, 200);

    let (_, events) = sim.admin(Method::GET, "/events", None).await;
    assert_eq!(
        event_types(&events),
        vec![
            "label_conf_add",
            "label_user_change",
            "label_conf_modify",
            "label_user_change",
            "label_conf_del"
        ]
    );
    let list = events["events"].as_array().expect("events");
    assert_eq!(list[1]["data"]["action"], "add");
    assert_eq!(list[3]["data"]["action"], "remove");
    assert_eq!(list[2]["data"]["postLabelList"][0]["name"], "Late");

    let state = sim.state().await;
    for key in ["departments", "users", "role_groups", "roles", "counts"] {
        assert!(!state[key].is_null(), "state has {key}");
    }
    assert_eq!(state["counts"]["users"], 10);
    let (status, _) = sim.admin(Method::POST, "/depts", Some(json!([1]))).await;
    assert_eq!(status, 400);
    sim.handle.shutdown().await;
}
