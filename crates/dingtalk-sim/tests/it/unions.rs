//! Trunk / branch organizations (上下级组织) over real HTTP: a branch's departments and members
//! appear in the trunk's contacts with their own trunk ids, marked `from_union_org` and
//! `union_emp_ext`, follow every branch change, and cannot be edited by the trunk.

use reqwest::Method;
use serde_json::{Value, json};

use crate::orgs::{OrgClient, start};

/// `POST /_sim/unions`; (status, body).
async fn link(client: &OrgClient, body: Value) -> (u16, Value) {
    let (status, body) = testkit::sim::request(
        &client.http,
        &client.base,
        Method::POST,
        "/_sim/unions",
        Some(&body),
    )
    .await;
    (status.as_u16(), body)
}

/// The trunk's children of `dept` (listsub items).
async fn children(trunk: &OrgClient, dept: i64) -> Vec<Value> {
    trunk
        .ok("/topapi/v2/department/listsub", json!({"dept_id": dept}))
        .await["result"]
        .as_array()
        .expect("list")
        .clone()
}

fn id_of(item: &Value) -> i64 {
    item["dept_id"].as_i64().expect("dept_id")
}

#[tokio::test]
async fn branch_members_appear_in_the_trunk_and_cannot_be_edited_there() {
    let handle = start(2, 0, 0).await;
    let trunk = OrgClient::of(&handle, 0).await;
    let branch = OrgClient::of(&handle, 1).await;
    let branch_name = handle.org(1).expect("org 1").config().corp_name.clone();
    let sales = branch
        .ok(
            "/topapi/v2/department/create",
            json!({"name": "Branch Sales", "parent_id": 1}),
        )
        .await["result"]["dept_id"]
        .as_i64()
        .expect("id");
    branch
        .ok(
            "/topapi/v2/user/create",
            json!({"userid": "b1", "name": "Branch One", "mobile": "13900000001",
                   "dept_id_list": sales.to_string()}),
        )
        .await;
    // The trunk's own person with the same mobile: the same human may be in both corps.
    trunk
        .ok(
            "/topapi/v2/user/create",
            json!({"userid": "t1", "name": "Trunk One", "mobile": "13900000001", "dept_id_list": "1"}),
        )
        .await;
    assert!(children(&trunk, 1).await.is_empty());

    let (status, body) = link(&trunk, json!({"trunk": 0, "branch": 1})).await;
    assert_eq!(status, 200, "{body}");

    // The branch's root sits under the trunk's root, named after the branch corp.
    let top = children(&trunk, 1).await;
    assert_eq!(top.len(), 1, "{top:?}");
    assert_eq!(top[0]["name"], branch_name.as_str());
    assert_eq!(top[0]["from_union_org"], true);
    let copy_root = id_of(&top[0]);
    let below = children(&trunk, copy_root).await;
    assert_eq!(below.len(), 1, "{below:?}");
    assert_eq!(below[0]["name"], "Branch Sales");
    let copy_sales = id_of(&below[0]);
    let detail = trunk
        .ok("/topapi/v2/department/get", json!({"dept_id": copy_sales}))
        .await["result"]
        .clone();
    assert_eq!(detail["from_union_org"], true);
    assert_eq!(
        detail["union_dept_ext"],
        json!({"corp_id": branch.corp_id, "dept_id": sales})
    );
    // A trunk department of its own is not from a union org.
    let own = trunk
        .ok("/topapi/v2/department/get", json!({"dept_id": 1}))
        .await["result"]
        .clone();
    assert_eq!(own["from_union_org"], false);
    assert!(own.get("union_dept_ext").is_none());

    // The member, with a trunk userid of its own and the cross-corp identity map.
    let page = trunk
        .ok(
            "/topapi/v2/user/list",
            json!({"dept_id": copy_sales, "cursor": 0, "size": 10}),
        )
        .await;
    let list = page["result"]["list"].as_array().expect("list").clone();
    assert_eq!(list.len(), 1, "{page}");
    assert_eq!(list[0]["name"], "Branch One");
    let copy = list[0]["userid"].as_str().expect("userid").to_owned();
    assert_ne!(copy, "b1", "the trunk copy has its own userid");
    let got = trunk
        .ok("/topapi/v2/user/get", json!({"userid": copy}))
        .await["result"]
        .clone();
    assert_eq!(
        got["union_emp_ext"],
        json!({"userid": copy, "corp_id": trunk.corp_id,
               "union_emp_map_list": [{"userid": "b1", "corp_id": branch.corp_id}]})
    );
    assert_eq!(got["dept_id_list"], json!([copy_sales]));
    // The branch's own record and the trunk's own person carry no union map.
    let own_b1 = branch
        .ok("/topapi/v2/user/get", json!({"userid": "b1"}))
        .await["result"]
        .clone();
    assert!(own_b1.get("union_emp_ext").is_none());
    let t1 = trunk
        .ok("/topapi/v2/user/get", json!({"userid": "t1"}))
        .await["result"]
        .clone();
    assert!(t1.get("union_emp_ext").is_none());

    // The link APIs.
    let branches = trunk.ok("/topapi/org/union/branch/get", json!({})).await;
    assert_eq!(
        branches["result"],
        json!([{"union_corpid": branch.corp_id, "union_org_name": branch_name}])
    );
    let trunks = branch.ok("/topapi/org/union/trunk/get", json!({})).await;
    assert_eq!(trunks["result"][0]["corpid"], trunk.corp_id.as_str());
    assert_eq!(
        trunk.ok("/topapi/org/union/trunk/get", json!({})).await["result"],
        json!([])
    );

    // The trunk cannot change any of it, by API or as an administrator.
    let refused = [
        trunk
            .code("/topapi/v2/user/update", json!({"userid": copy, "name": "Renamed"}))
            .await,
        trunk
            .code("/topapi/v2/user/delete", json!({"userid": copy}))
            .await,
        trunk
            .code(
                "/topapi/v2/department/update",
                json!({"dept_id": copy_sales, "name": "Renamed"}),
            )
            .await,
        trunk
            .code("/topapi/v2/department/delete", json!({"dept_id": copy_sales}))
            .await,
        trunk
            .code(
                "/topapi/v2/department/create",
                json!({"name": "Inside", "parent_id": copy_sales}),
            )
            .await,
        trunk
            .code(
                "/topapi/v2/user/create",
                json!({"name": "New", "mobile": "13900000002", "dept_id_list": copy_sales.to_string()}),
            )
            .await,
        trunk
            .code(
                "/topapi/v2/user/update",
                json!({"userid": "t1", "dept_id_list": copy_sales.to_string()}),
            )
            .await,
        trunk
            .code(
                "/topapi/v2/department/update",
                json!({"dept_id": copy_root, "parent_id": 1, "name": "Moved"}),
            )
            .await,
    ];
    assert_eq!(refused, [60011; 8]);
    let (status, body) = trunk
        .admin(
            Method::PATCH,
            &format!("/users/{copy}"),
            Some(json!({"name": "Admin rename"})),
        )
        .await;
    assert_eq!((status, body["errcode"].clone()), (422, json!(60011)));
    // Nor can the trunk's administrator bring someone back into a copied department.
    trunk
        .ok("/topapi/v2/user/delete", json!({"userid": "t1"}))
        .await;
    let (status, body) = trunk
        .admin(
            Method::POST,
            "/users/t1/rehire",
            Some(json!({"dept_id_list": copy_sales.to_string()})),
        )
        .await;
    assert_eq!((status, body["errcode"].clone()), (422, json!(60011)));
    let (status, body) = trunk
        .admin(Method::POST, "/users/t1/rehire", Some(json!({})))
        .await;
    assert_eq!(status, 200, "{body}");

    // Branch changes follow into the trunk before the branch's call answers.
    let events_before = trunk.admin(Method::GET, "/events", None).await.1["events"]
        .as_array()
        .expect("events")
        .len();
    branch
        .ok(
            "/topapi/v2/user/update",
            json!({"userid": "b1", "name": "Branch One Renamed", "title": "Lead"}),
        )
        .await;
    let got = trunk
        .ok("/topapi/v2/user/get", json!({"userid": copy}))
        .await["result"]
        .clone();
    assert_eq!(got["name"], "Branch One Renamed");
    assert_eq!(got["title"], "Lead");
    branch
        .ok(
            "/topapi/v2/department/update",
            json!({"dept_id": sales, "name": "Branch Sales East"}),
        )
        .await;
    assert_eq!(
        children(&trunk, copy_root).await[0]["name"],
        "Branch Sales East"
    );
    branch
        .ok("/topapi/v2/user/delete", json!({"userid": "b1"}))
        .await;
    assert_eq!(
        trunk
            .code("/topapi/v2/user/get", json!({"userid": copy}))
            .await,
        60121
    );
    let events = trunk.admin(Method::GET, "/events", None).await.1["events"]
        .as_array()
        .expect("events")
        .clone();
    let new: Vec<(String, String)> = events[events_before..]
        .iter()
        .map(|e| {
            (
                e["event_type"].as_str().expect("type").to_owned(),
                e["origin"].as_str().expect("origin").to_owned(),
            )
        })
        .collect();
    let union = |t: &str| (t.to_owned(), "union".to_owned());
    assert_eq!(
        new,
        vec![
            union("user_modify_org"),
            union("org_dept_modify"),
            union("user_leave_org")
        ]
    );
    // The trunk's own person was never touched.
    assert_eq!(
        trunk
            .ok("/topapi/v2/user/get", json!({"userid": "t1"}))
            .await["result"]["name"],
        "Trunk One"
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn links_follow_dingtalks_limits_and_unlinking_removes_the_copies() {
    let handle = start(6, 2, 1).await;
    let zero = OrgClient::of(&handle, 0).await;
    let refusals = [
        json!({"trunk": 0, "branch": 0}),
        json!({"trunk": 0, "branch": 9}),
        json!({"trunk": 0, "branch": 1, "parent_dept_id": 99}),
        json!({"trunk": 0}),
        json!({"trunk": 0, "branch": 1, "extra": true}),
    ];
    for body in refusals {
        let (status, answer) = link(&zero, body.clone()).await;
        assert_eq!(status, 400, "{body} -> {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    // A chain of four levels: 0 ← 1 ← 2 ← 3.
    for (trunk, branch) in [(0, 1), (1, 2), (2, 3)] {
        let (status, answer) = link(&zero, json!({"trunk": trunk, "branch": branch})).await;
        assert_eq!(status, 200, "{answer}");
    }
    for (body, why) in [
        (json!({"trunk": 0, "branch": 1}), "already linked"),
        (json!({"trunk": 3, "branch": 0}), "cycle"),
        (json!({"trunk": 3, "branch": 4}), "a fifth level"),
    ] {
        let (status, answer) = link(&zero, body).await;
        assert_eq!(status, 400, "{why}: {answer}");
    }
    // Org 3's people reach org 0 through 2 and 1: each level copies what it sees.
    let count_union = |state: &Value| {
        state["users"]
            .as_array()
            .expect("users")
            .iter()
            .filter(|u| u.get("union_emp_ext").is_some())
            .count()
    };
    let zero_state = zero.state().await;
    // 0 sees copies of 1's 2 people, 2's 2 and 3's 2 (through the chain).
    assert_eq!(count_union(&zero_state), 6, "{}", zero_state["users"]);

    let (_, listed) =
        testkit::sim::request(&zero.http, &zero.base, Method::GET, "/_sim/unions", None).await;
    assert_eq!(listed["unions"].as_array().map(Vec::len), Some(3));

    // Unlinking 1 from 0 removes every copy from 0, and nothing else.
    let (status, answer) = testkit::sim::request(
        &zero.http,
        &zero.base,
        Method::DELETE,
        "/_sim/unions",
        Some(&json!({"trunk": 0, "branch": 1})),
    )
    .await;
    assert_eq!(status.as_u16(), 200, "{answer}");
    let after = zero.state().await;
    assert_eq!(count_union(&after), 0);
    assert_eq!(after["users"].as_array().map(Vec::len), Some(2));
    assert!(
        after["departments"]
            .as_array()
            .expect("departments")
            .iter()
            .all(|d| d["from_union_org"] == false)
    );
    assert_eq!(
        zero.ok("/topapi/org/union/branch/get", json!({})).await["result"],
        json!([])
    );
    // Org 1 still has its copies of 2 and 3.
    let one = OrgClient::of(&handle, 1).await;
    assert_eq!(count_union(&one.state().await), 4);
    handle.shutdown().await;
}
