//! User endpoints and their rules, over real HTTP.

use crate::common;

use std::collections::BTreeSet;

use common::Sim;
use serde_json::{Value, json};

#[tokio::test]
async fn create_get_update_delete_roundtrip() {
    let sim = Sim::with_org(0, 0).await;
    let d = sim.dept("D", 1).await;
    let created = sim
        .ok(
            "/topapi/v2/user/create",
            json!({
                "name": "张三", "mobile": "13800000001", "dept_id_list": format!("1,{d}"),
                "title": "工程师", "job_number": "E001", "email": "zs@example.com",
                "hired_date": 1_600_000_000_000i64,
                "dept_order_list": [{"dept_id": d, "order": 10}],
                "extension": "{\"爱好\":\"跑步\"}",
            }),
        )
        .await;
    let userid = created["result"]["userid"]
        .as_str()
        .expect("userid")
        .to_owned();
    assert!(
        userid.len() >= 15 && userid.bytes().all(|b| b.is_ascii_digit()),
        "{userid}"
    );
    assert!(created["result"]["unionId"].is_string(), "camel unionId");

    let got = sim
        .ok("/topapi/v2/user/get", json!({"userid": userid}))
        .await;
    let r = &got["result"];
    assert_eq!(r["name"], "张三");
    assert_eq!(r["mobile"], "13800000001");
    assert_eq!(r["state_code"], "86");
    assert_eq!(r["dept_id_list"], json!([1, d]));
    assert_eq!(r["hired_date"], 1_600_000_000_000i64);
    assert_eq!(r["active"], false);
    let ext: Value = serde_json::from_str(r["extension"].as_str().expect("extension is a string"))
        .expect("extension JSON");
    assert_eq!(ext["爱好"], "跑步");
    assert!(r.get("work_place").is_none(), "unset fields omitted");
    assert!(r.get("manager_userid").is_none());

    sim.ok(
        "/topapi/v2/user/update",
        json!({"userid": userid, "dept_id_list": d.to_string(), "title": "架构师", "mobile": "13999999999"}),
    )
    .await;
    let after = sim
        .ok("/topapi/v2/user/get", json!({"userid": userid}))
        .await;
    assert_eq!(
        after["result"]["dept_id_list"],
        json!([d]),
        "memberships replaced"
    );
    assert_eq!(after["result"]["title"], "架构师");
    assert_eq!(
        after["result"]["mobile"], "13800000001",
        "mobile is not an update field"
    );
    let root_ids = sim.ok("/topapi/user/listid", json!({"dept_id": 1})).await;
    assert_eq!(root_ids["result"]["userid_list"], json!([]));

    let by_mobile = sim
        .ok(
            "/topapi/v2/user/getbymobile",
            json!({"mobile": "13800000001"}),
        )
        .await;
    assert_eq!(by_mobile["result"]["userid"], userid.as_str());
    sim.ok("/topapi/v2/user/delete", json!({"userid": userid}))
        .await;
    assert_eq!(
        sim.code("/topapi/v2/user/get", json!({"userid": userid}))
            .await,
        60121
    );
    assert_eq!(
        sim.code("/topapi/v2/user/delete", json!({"userid": userid}))
            .await,
        60121
    );
    assert_eq!(
        sim.code(
            "/topapi/v2/user/getbymobile",
            json!({"mobile": "13800000001"})
        )
        .await,
        60121,
        "people who left are not found by mobile"
    );
    assert_eq!(
        sim.code("/topapi/v2/user/getbymobile", json!({"mobile": "12"}))
            .await,
        40104
    );
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn uniqueness_and_field_rules() {
    let sim = Sim::with_org(0, 0).await;
    let create = "/topapi/v2/user/create";
    sim.ok(create, json!({"userid": "a", "name": "A", "mobile": "13800000001", "dept_id_list": "1", "email": "a@x.com"}))
        .await;
    let code = |body: Value| sim.code(create, body);
    assert_eq!(
        code(json!({"userid": "a", "name": "B", "mobile": "13800000002", "dept_id_list": "1"}))
            .await,
        60102
    );
    assert_eq!(
        code(json!({"name": "B", "mobile": "13800000001", "dept_id_list": "1"})).await,
        60104
    );
    assert_eq!(
        code(json!({"name": "B", "mobile": "+86-13800000001", "dept_id_list": "1"})).await,
        60104
    );
    assert_eq!(
        code(json!({"name": "B", "mobile": "1380000", "dept_id_list": "1"})).await,
        60103
    );
    assert_eq!(
        code(
            json!({"name": "B", "mobile": "13800000002", "dept_id_list": "1", "email": "A@x.com"})
        )
        .await,
        60106
    );
    assert_eq!(
        code(json!({"name": "B", "mobile": "13800000002", "dept_id_list": "1", "email": "nope"}))
            .await,
        60105
    );
    assert_eq!(
        code(json!({"name": "B", "mobile": "13800000002", "dept_id_list": "777"})).await,
        60003
    );
    assert_eq!(
        code(json!({"name": "B", "mobile": "13800000002"})).await,
        40035
    );
    // dept_id_list is a comma string; a JSON array is refused (the stricter reading).
    assert_eq!(
        code(json!({"name": "B", "mobile": "13800000002", "dept_id_list": [1]})).await,
        40035
    );
    assert_eq!(
        code(json!({"mobile": "13800000002", "dept_id_list": "1"})).await,
        40035
    );
    assert_eq!(
        code(json!({"name": "x".repeat(81), "mobile": "13800000002", "dept_id_list": "1"})).await,
        60112
    );
    assert_eq!(code(json!({"name": "B", "mobile": "13800000002", "dept_id_list": "1", "job_number": "9".repeat(51)})).await, 60123);
    assert_eq!(code(json!({"name": "B", "mobile": "13800000002", "dept_id_list": "1", "title": "t".repeat(201)})).await, 40035);
    assert_eq!(code(json!({"name": "B", "mobile": "13800000002", "dept_id_list": "1", "remark": "r".repeat(2001)})).await, 40035);
    assert_eq!(
        code(
            json!({"name": "B", "mobile": "13800000002", "dept_id_list": "1", "extension": "[1]"})
        )
        .await,
        60122
    );
    assert_eq!(
        code(
            json!({"userid": "bad id!", "name": "B", "mobile": "13800000002", "dept_id_list": "1"})
        )
        .await,
        40003
    );
    assert_eq!(code(json!({"name": "B", "mobile": "13800000002", "dept_id_list": "1", "manager_userid": "ghost"})).await, 60121);
    sim.ok(create, json!({"userid": "t", "name": "T", "mobile": "13800000003", "dept_id_list": "1", "telephone": "010-1234"}))
        .await;
    assert_eq!(code(json!({"name": "B", "mobile": "13800000002", "dept_id_list": "1", "telephone": "010-1234"})).await, 40035);

    // At most 100 departments per user.
    let mut ids = Vec::new();
    for i in 0..101 {
        ids.push(sim.dept(&format!("D{i}"), 1).await.to_string());
    }
    assert_eq!(
        code(json!({"name": "B", "mobile": "13800000002", "dept_id_list": ids.join(",")})).await,
        60110
    );
    let hundred = ids[..100].join(",");
    sim.ok(
        create,
        json!({"userid": "b", "name": "B", "mobile": "13800000002", "dept_id_list": hundred}),
    )
    .await;

    // Update rules.
    let update = "/topapi/v2/user/update";
    assert_eq!(
        sim.code(update, json!({"userid": "ghost", "name": "x"}))
            .await,
        60121
    );
    assert_eq!(
        sim.code(update, json!({"userid": "b", "email": "a@x.com"}))
            .await,
        60106
    );
    sim.ok(
        update,
        json!({"userid": "b", "email": "b@x.com", "manager_userid": "a"}),
    )
    .await;
    sim.ok(update, json!({"userid": "a", "email": "a2@x.com"}))
        .await;
    // The old address is free again.
    sim.ok(update, json!({"userid": "b", "email": "a@x.com"}))
        .await;
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn list_pages_with_cursor_and_size_limits() {
    let sim = Sim::with_org(0, 0).await;
    let d = sim.dept("Big", 1).await;
    for i in 0..25 {
        sim.user(
            &format!("u{i:02}"),
            &format!("139000000{i:02}"),
            &d.to_string(),
        )
        .await;
    }
    let list = "/topapi/v2/user/list";
    let mut seen = BTreeSet::new();
    let mut cursor = 0;
    let mut pages = 0;
    loop {
        let page = sim
            .ok(list, json!({"dept_id": d, "cursor": cursor, "size": 10}))
            .await;
        let result = &page["result"];
        for item in result["list"].as_array().expect("list") {
            assert!(seen.insert(item["userid"].as_str().expect("userid").to_owned()));
            assert_eq!(item["dept_order"], 0);
            assert_eq!(item["leader"], false);
        }
        pages += 1;
        if result["has_more"] == true {
            cursor = result["next_cursor"].as_i64().expect("next_cursor");
        } else {
            assert!(
                result.get("next_cursor").is_none(),
                "no next_cursor on the last page"
            );
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 25);

    assert_eq!(
        sim.code(list, json!({"dept_id": d, "cursor": 0, "size": 101}))
            .await,
        40035
    );
    assert_eq!(
        sim.code(list, json!({"dept_id": d, "cursor": 0, "size": 0}))
            .await,
        40035
    );
    assert_eq!(
        sim.code(list, json!({"dept_id": d, "cursor": -1, "size": 10}))
            .await,
        40035
    );
    assert_eq!(
        sim.code(list, json!({"dept_id": d, "size": 10})).await,
        40035
    );
    assert_eq!(
        sim.code(
            list,
            json!({"dept_id": d, "cursor": 0, "size": 10, "order_field": "nope"})
        )
        .await,
        40035
    );
    assert_eq!(
        sim.code(list, json!({"dept_id": 999, "cursor": 0, "size": 10}))
            .await,
        60003
    );
    let full = sim
        .ok(
            list,
            json!({"dept_id": d, "cursor": 0, "size": 100, "order_field": "entry_desc"}),
        )
        .await;
    assert_eq!(full["result"]["list"][0]["userid"], "u24");
    assert_eq!(full["result"]["has_more"], false);
    let past = sim
        .ok(list, json!({"dept_id": d, "cursor": 50, "size": 10}))
        .await;
    assert_eq!(past["result"]["list"], json!([]));

    let simple = sim
        .ok(
            "/topapi/user/listsimple",
            json!({"dept_id": d, "cursor": 20, "size": 10}),
        )
        .await;
    assert_eq!(simple["result"]["list"].as_array().map(Vec::len), Some(5));
    assert!(simple["result"]["list"][0]["name"].is_string());

    let count = sim
        .ok("/topapi/user/count", json!({"only_active": false}))
        .await;
    assert_eq!(count["result"]["count"], 25);
    let active = sim
        .ok("/topapi/user/count", json!({"only_active": "true"}))
        .await;
    assert_eq!(
        active["result"]["count"], 0,
        "API-created users are not activated"
    );
    assert_eq!(sim.code("/topapi/user/count", json!({})).await, 40035);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn extension_modes_and_force_update() {
    let sim = Sim::with_org(0, 0).await;
    sim.ok(
        "/topapi/v2/user/create",
        json!({"userid": "m", "name": "M", "mobile": "13800000009", "dept_id_list": "1"}),
    )
    .await;
    sim.ok(
        "/topapi/v2/user/create",
        json!({"userid": "e", "name": "E", "mobile": "13800000008", "dept_id_list": "1",
               "manager_userid": "m", "extension": {"a": "1"}}),
    )
    .await;
    let update = "/topapi/v2/user/update";
    let ext = |v: &Value| -> Value {
        serde_json::from_str(v["result"]["extension"].as_str().expect("extension")).expect("json")
    };
    sim.ok(
        update,
        json!({"userid": "e", "extension": {"b": "2"}, "ext_attrs_update_mode": 1}),
    )
    .await;
    let got = sim.ok("/topapi/v2/user/get", json!({"userid": "e"})).await;
    assert_eq!(ext(&got), json!({"a": "1", "b": "2"}));
    sim.ok(update, json!({"userid": "e", "extension": {"c": "3"}}))
        .await;
    let got = sim.ok("/topapi/v2/user/get", json!({"userid": "e"})).await;
    assert_eq!(ext(&got), json!({"c": "3"}));
    assert_eq!(got["result"]["manager_userid"], "m");
    sim.ok(
        update,
        json!({"userid": "e", "force_update_fields": "manager_userid"}),
    )
    .await;
    let got = sim.ok("/topapi/v2/user/get", json!({"userid": "e"})).await;
    assert!(got["result"].get("manager_userid").is_none());
    sim.handle.shutdown().await;
}
