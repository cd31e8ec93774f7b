//! Department endpoints and their rules, over real HTTP.

use crate::common;

use common::Sim;
use dingtalk_sim::SimConfig;
use serde_json::json;

#[tokio::test]
async fn create_get_list_and_envelope() {
    let sim = Sim::with_org(0, 0).await;
    let created = sim
        .ok(
            "/topapi/v2/department/create",
            json!({"name": "研发部", "parent_id": "1", "order": "5", "source_identifier": "oa-42"}),
        )
        .await;
    let id = created["result"]["dept_id"].as_i64().expect("dept_id");
    assert!(id > 100_000_000, "large generated id {id}");
    let request_id = created["request_id"].as_str().expect("request_id");
    assert!((12..=13).contains(&request_id.len()));
    assert!(
        request_id
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    );

    let got = sim
        .ok("/topapi/v2/department/get", json!({"dept_id": id}))
        .await;
    let result = &got["result"];
    assert_eq!(result["name"], "研发部");
    assert_eq!(result["parent_id"], 1);
    assert_eq!(result["order"], 5);
    assert_eq!(result["source_identifier"], "oa-42");
    assert!(
        result.get("dept_manager_userid_list").is_none(),
        "empty fields omitted"
    );

    let child = sim.dept("后端组", id).await;
    assert!(child > id, "ids are monotonic");
    let listsub = sim.ok("/topapi/v2/department/listsub", json!({})).await;
    assert_eq!(listsub["result"][0]["dept_id"], id);
    assert_eq!(
        listsub["result"].as_array().map(Vec::len),
        Some(1),
        "direct children only"
    );
    let ids = sim
        .ok("/topapi/v2/department/listsubid", json!({"dept_id": id}))
        .await;
    assert_eq!(ids["result"]["dept_id_list"], json!([child]));
    let parents = sim
        .ok(
            "/topapi/v2/department/listparentbydept",
            json!({"dept_id": child}),
        )
        .await;
    assert_eq!(parents["result"]["parent_id_list"], json!([child, id, 1]));

    // Form bodies work the same.
    let form = sim
        .call_form(
            "/topapi/v2/department/create",
            &[("name", "市场部"), ("parent_id", "1")],
        )
        .await;
    assert_eq!(form["errcode"], 0, "{form}");
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn name_and_tree_rules() {
    let sim = Sim::with_org(0, 0).await;
    let create = "/topapi/v2/department/create";
    let a = sim.dept("A", 1).await;
    let b = sim.dept("B", a).await;
    assert_eq!(
        sim.code(create, json!({"name": "x".repeat(65), "parent_id": 1}))
            .await,
        60001
    );
    assert_eq!(
        sim.code(create, json!({"name": "a-b", "parent_id": 1}))
            .await,
        60009
    );
    assert_eq!(
        sim.code(create, json!({"name": "a,b", "parent_id": 1}))
            .await,
        60009
    );
    assert_eq!(
        sim.code(create, json!({"name": "a，b", "parent_id": 1}))
            .await,
        60009
    );
    assert_eq!(
        sim.code(create, json!({"name": "A", "parent_id": 1})).await,
        60008
    );
    assert_eq!(
        sim.code(create, json!({"name": "Z", "parent_id": 999}))
            .await,
        60004
    );
    assert_eq!(sim.code(create, json!({"parent_id": 1})).await, 40035);

    let update = "/topapi/v2/department/update";
    assert_eq!(
        sim.code(update, json!({"dept_id": 1, "name": "Root"}))
            .await,
        60018
    );
    assert_eq!(
        sim.code(update, json!({"dept_id": 12345, "name": "Q"}))
            .await,
        60003
    );
    assert_eq!(
        sim.code(update, json!({"dept_id": a, "parent_id": b}))
            .await,
        60010
    );
    assert_eq!(
        sim.code(update, json!({"dept_id": a, "parent_id": a}))
            .await,
        60010
    );
    assert_eq!(
        sim.code(update, json!({"dept_id": b, "parent_id": 4242}))
            .await,
        60004
    );
    // Moving B next to a sibling with the same name is refused; renaming then moving works.
    sim.dept("B", 1).await;
    assert_eq!(
        sim.code(update, json!({"dept_id": b, "parent_id": 1}))
            .await,
        60008
    );
    sim.ok(update, json!({"dept_id": b, "parent_id": 1, "name": "B2"}))
        .await;
    let moved = sim
        .ok("/topapi/v2/department/get", json!({"dept_id": b}))
        .await;
    assert_eq!(moved["result"]["parent_id"], 1);
    assert_eq!(moved["result"]["name"], "B2");

    let delete = "/topapi/v2/department/delete";
    assert_eq!(sim.code(delete, json!({"dept_id": 1})).await, 60007);
    assert_eq!(sim.code(delete, json!({"dept_id": 5555})).await, 60003);
    let c = sim.dept("C", a).await;
    assert_eq!(sim.code(delete, json!({"dept_id": a})).await, 60006);
    sim.user("u1", "13900000001", &c.to_string()).await;
    assert_eq!(sim.code(delete, json!({"dept_id": c})).await, 60005);
    sim.ok("/topapi/v2/user/delete", json!({"userid": "u1"}))
        .await;
    sim.ok(delete, json!({"dept_id": c})).await;
    assert_eq!(
        sim.code("/topapi/v2/department/get", json!({"dept_id": c}))
            .await,
        60003
    );
    let next = sim.dept("C", a).await;
    assert!(next > c, "ids are never reused");
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn managers_and_force_update_fields() {
    let sim = Sim::with_org(0, 0).await;
    let d = sim.dept("D", 1).await;
    sim.user("boss", "13900000002", &d.to_string()).await;
    let update = "/topapi/v2/department/update";
    assert_eq!(
        sim.code(
            update,
            json!({"dept_id": d, "dept_manager_userid_list": "ghost"})
        )
        .await,
        40031
    );
    sim.ok(
        update,
        json!({"dept_id": d, "dept_manager_userid_list": "boss"}),
    )
    .await;
    let got = sim
        .ok("/topapi/v2/department/get", json!({"dept_id": d}))
        .await;
    assert_eq!(got["result"]["dept_manager_userid_list"], json!(["boss"]));
    // Empty without force: unchanged. With force: cleared.
    sim.ok(
        update,
        json!({"dept_id": d, "dept_manager_userid_list": ""}),
    )
    .await;
    let kept = sim
        .ok("/topapi/v2/department/get", json!({"dept_id": d}))
        .await;
    assert_eq!(kept["result"]["dept_manager_userid_list"], json!(["boss"]));
    sim.ok(
        update,
        json!({"dept_id": d, "force_update_fields": "dept_manager_userid_list"}),
    )
    .await;
    let cleared = sim
        .ok("/topapi/v2/department/get", json!({"dept_id": d}))
        .await;
    assert!(cleared["result"].get("dept_manager_userid_list").is_none());
    let by_user = sim
        .ok(
            "/topapi/v2/department/listparentbyuser",
            json!({"userid": "boss"}),
        )
        .await;
    assert_eq!(
        by_user["result"]["parent_list"][0]["parent_dept_id_list"],
        json!([d, 1])
    );
    assert_eq!(
        sim.code(
            "/topapi/v2/department/listparentbyuser",
            json!({"userid": "ghost"})
        )
        .await,
        33012
    );
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn duplicate_name_code_is_configurable() {
    let sim = Sim::start(SimConfig {
        qps: 0,
        dup_dept_name_errcode: 60021,
        ..SimConfig::default()
    })
    .await;
    sim.dept("Same", 1).await;
    let code = sim
        .code(
            "/topapi/v2/department/create",
            json!({"name": "Same", "parent_id": 1}),
        )
        .await;
    assert_eq!(code, 60021);
    sim.handle.shutdown().await;
}
