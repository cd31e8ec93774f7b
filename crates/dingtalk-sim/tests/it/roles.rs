//! Role endpoints and their rules, over real HTTP.

use crate::common;

use common::Sim;
use serde_json::{Value, json};

async fn builtin_role(sim: &Sim) -> i64 {
    let list = sim.ok("/topapi/role/list", json!({})).await;
    let groups = list["result"]["list"].as_array().expect("list").clone();
    let default = groups
        .iter()
        .find(|g| g["name"] == "默认")
        .expect("built-in group");
    let names: Vec<&str> = default["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, vec!["负责人", "主管", "主管理员", "子管理员"]);
    default["roles"][0]["id"].as_i64().expect("id")
}

#[tokio::test]
async fn groups_roles_and_legacy_envelopes() {
    let sim = Sim::with_org(0, 0).await;
    let group = sim
        .call("/role/add_role_group", json!({"name": "职务"}))
        .await;
    assert_eq!(group["errcode"], 0);
    assert!(
        group.get("request_id").is_none(),
        "legacy paths carry no request_id"
    );
    assert!(group.get("result").is_none());
    let group_id = group["groupId"].as_i64().expect("groupId");

    let role = sim
        .call(
            "/role/add_role",
            json!({"roleName": "经理", "groupId": group_id}),
        )
        .await;
    assert_eq!(role["errcode"], 0, "{role}");
    let role_id = role["roleId"].as_i64().expect("roleId");
    assert_eq!(
        sim.code(
            "/role/add_role",
            json!({"roleName": "经理", "groupId": group_id})
        )
        .await,
        34021
    );
    assert_eq!(
        sim.code("/role/add_role", json!({"roleName": "X", "groupId": 1}))
            .await,
        34020
    );
    assert_eq!(
        sim.code(
            "/role/add_role",
            json!({"roleName": "", "groupId": group_id})
        )
        .await,
        34018
    );

    let g = sim
        .ok("/topapi/role/getrolegroup", json!({"group_id": group_id}))
        .await;
    assert_eq!(g["role_group"]["group_name"], "职务");
    assert_eq!(
        g["role_group"]["roles"],
        json!([{"role_id": role_id, "role_name": "经理"}])
    );
    assert!(g["request_id"].is_string());
    let r = sim
        .ok("/topapi/role/getrole", json!({"roleId": role_id}))
        .await;
    assert_eq!(r["role"], json!({"name": "经理", "groupId": group_id}));
    assert_eq!(
        sim.code("/topapi/role/getrole", json!({"roleId": 42}))
            .await,
        33011
    );

    let renamed = sim
        .call(
            "/role/update_role",
            json!({"roleId": role_id, "roleName": "总监"}),
        )
        .await;
    assert_eq!(renamed, json!({"errcode": 0, "errmsg": "ok"}));
    assert_eq!(
        sim.code("/role/update_role", json!({"roleId": 42, "roleName": "x"}))
            .await,
        33011
    );
    assert_eq!(
        sim.code("/role/update_role", json!({"roleId": role_id}))
            .await,
        660000
    );

    let list = sim
        .ok("/topapi/role/list", json!({"size": 200, "offset": 0}))
        .await;
    assert_eq!(list["result"]["hasMore"], false);
    assert!(
        list["result"]["list"]
            .as_array()
            .expect("list")
            .iter()
            .any(|g| g["groupId"] == group_id)
    );
    let page = sim
        .ok("/topapi/role/list", json!({"size": 1, "offset": 0}))
        .await;
    assert_eq!(page["result"]["hasMore"], true);
    assert_eq!(
        sim.code("/topapi/role/list", json!({"size": 201, "offset": 0}))
            .await,
        40069
    );
    assert_eq!(
        sim.code("/topapi/role/list", json!({"size": 20, "offset": -1}))
            .await,
        40068
    );
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn memberships_limits_and_builtin_protection() {
    let sim = Sim::with_org(0, 0).await;
    let builtin = builtin_role(&sim).await;
    let group = sim.call("/role/add_role_group", json!({"name": "G"})).await["groupId"]
        .as_i64()
        .expect("groupId");
    let role = sim
        .call("/role/add_role", json!({"roleName": "R", "groupId": group}))
        .await["roleId"]
        .as_i64()
        .expect("roleId");
    let mut users = Vec::new();
    for i in 0..101 {
        let id = format!("u{i}");
        sim.user(&id, &format!("1370000{i:04}"), "1").await;
        users.push(id);
    }
    let add = "/topapi/role/addrolesforemps";
    let remove = "/topapi/role/removerolesforemps";
    let ids = |n: usize| users[..n].join(",");
    assert_eq!(
        sim.code(
            add,
            json!({"roleIds": role.to_string(), "userIds": ids(21)})
        )
        .await,
        40035
    );
    let many_roles: Vec<String> = (0..21).map(|i| (role + i).to_string()).collect();
    assert_eq!(
        sim.code(
            add,
            json!({"roleIds": many_roles.join(","), "userIds": "u0"})
        )
        .await,
        40035
    );
    assert_eq!(
        sim.code(add, json!({"roleIds": "1", "userIds": "u0"}))
            .await,
        33011
    );
    assert_eq!(
        sim.code(
            add,
            json!({"roleIds": role.to_string(), "userIds": "ghost"})
        )
        .await,
        33012
    );
    assert_eq!(
        sim.code(
            add,
            json!({"roleIds": builtin.to_string(), "userIds": "u0"})
        )
        .await,
        23004
    );
    sim.ok(
        add,
        json!({"roleIds": role.to_string(), "userIds": ids(20)}),
    )
    .await;

    let members = sim
        .ok(
            "/topapi/role/simplelist",
            json!({"role_id": role, "size": 15}),
        )
        .await;
    assert_eq!(members["result"]["hasMore"], true);
    assert_eq!(members["result"]["list"].as_array().map(Vec::len), Some(15));
    let rest = sim
        .ok(
            "/topapi/role/simplelist",
            json!({"role_id": role, "size": 15, "offset": 15}),
        )
        .await;
    assert_eq!(rest["result"]["hasMore"], false);
    assert_eq!(rest["result"]["list"].as_array().map(Vec::len), Some(5));
    assert_eq!(
        sim.code(
            "/topapi/role/simplelist",
            json!({"role_id": role, "size": 101})
        )
        .await,
        40069
    );

    let user = sim.ok("/topapi/v2/user/get", json!({"userid": "u0"})).await;
    assert_eq!(
        user["result"]["role_list"],
        json!([{"id": role, "name": "R", "group_name": "G"}])
    );

    assert_eq!(
        sim.code("/topapi/role/deleterole", json!({"role_id": role}))
            .await,
        1002
    );
    assert_eq!(
        sim.code("/topapi/role/deleterole", json!({"role_id": builtin}))
            .await,
        23004
    );
    assert_eq!(
        sim.code(
            "/role/update_role",
            json!({"roleId": builtin, "roleName": "x"})
        )
        .await,
        23004
    );
    assert_eq!(
        sim.code(
            remove,
            json!({"roleIds": role.to_string(), "userIds": ids(101)})
        )
        .await,
        40035
    );
    sim.ok(
        remove,
        json!({"roleIds": role.to_string(), "userIds": ids(100)}),
    )
    .await;
    sim.ok("/topapi/role/deleterole", json!({"role_id": role}))
        .await;
    assert_eq!(
        sim.code("/topapi/role/getrole", json!({"roleId": role}))
            .await,
        33011
    );
    let g: Value = sim
        .ok("/topapi/role/getrolegroup", json!({"group_id": group}))
        .await;
    assert_eq!(g["role_group"]["roles"], json!([]));
    assert_eq!(
        sim.code("/topapi/role/getrolegroup", json!({"group_id": 7}))
            .await,
        400002
    );
    sim.handle.shutdown().await;
}
