//! Fidelity as third-party DingTalk clients see it (issue 18): the new API's paths and token
//! rules, `getbyunionid`, the old non-topapi contacts paths of `dingtalk-sdk` 1.3.8, unknown
//! paths that no client can take for a success, `diffInfo`, the fields the generated org and
//! `department/get` carry, and the `/_sim` route table.

use crate::common;

use common::Sim;
use dingtalk_sim::SimConfig;
use reqwest::Method;
use serde_json::{Value, json};

/// A new-API call: (HTTP status, body). `token` goes in `x-acs-dingtalk-access-token`.
async fn new_api(
    sim: &Sim,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut request = sim
        .http
        .request(method, format!("{}{path}", sim.base))
        .json(&body);
    if let Some(token) = token {
        request = request.header("x-acs-dingtalk-access-token", token);
    }
    let response = request.send().await.expect("answer");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A GET of an old oapi path with the token in the query: (HTTP status, body).
async fn old_get(sim: &Sim, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let response = sim
        .http
        .get(format!("{}{path}", sim.base))
        .query(&[("access_token", sim.token.as_str())])
        .query(query)
        .send()
        .await
        .expect("answer");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

#[tokio::test]
async fn unknown_paths_answer_http_404_on_every_family() {
    let sim = Sim::start(SimConfig::default()).await;
    let oapi = sim
        .http
        .post(format!("{}/microapp/nothing", sim.base))
        .query(&[("access_token", sim.token.as_str())])
        .send()
        .await
        .expect("answer");
    assert_eq!(oapi.status().as_u16(), 404);
    let body: Value = oapi.json().await.expect("JSON");
    assert_eq!(body["errcode"], 404);
    // The old TOP router dingtalk-sdk sends role calls to is not simulated: an honest 404.
    let (status, body) = old_get(
        &sim,
        "/router/rest",
        &[("method", "dingtalk.corp.role.list")],
    )
    .await;
    assert_eq!((status, body["errcode"].as_i64()), (404, Some(404)));
    // An unknown new-API path, even with a valid token: a 404 `code`, never a 200.
    let (status, body) = new_api(
        &sim,
        Method::POST,
        "/v1.0/contact/notexist",
        Some(&sim.token),
        json!({}),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["code"], "InvalidAction.NotFound");
    assert!(body["requestid"].is_string());
    // A known path with the wrong method is not that endpoint either.
    let (status, _) = new_api(
        &sim,
        Method::GET,
        "/v1.0/contact/users/search",
        Some(&sim.token),
        json!({}),
    )
    .await;
    assert_eq!(status, 404);
    // An unknown topapi method keeps DingTalk's errcode 22.
    assert_eq!(sim.code("/topapi/v2/user/notexist", json!({})).await, 22);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn new_api_refuses_missing_and_bad_tokens_with_4xx() {
    let sim = Sim::with_org(20, 3).await;
    let search = json!({"queryWord": "a", "offset": 0, "size": 10});
    // Token only in the query, as oapi takes it: the header is missing.
    let response = sim
        .http
        .post(format!("{}/v1.0/contact/users/search", sim.base))
        .query(&[("access_token", sim.token.as_str())])
        .json(&search)
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["code"], "AuthenticationFailed.MissingParameter");
    let (status, body) = new_api(
        &sim,
        Method::POST,
        "/v1.0/contact/users/search",
        Some("garbage"),
        search.clone(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("InvalidAuthentication"))
    );
    let (status, body) = new_api(
        &sim,
        Method::POST,
        "/v1.0/contact/departments/search",
        Some("garbage"),
        search,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("InvalidAuthentication"))
    );
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn users_and_departments_search_page_with_total_count() {
    let sim = Sim::with_org(0, 0).await;
    let a = sim.dept("搜索测试部", 1).await;
    let b = sim.dept("搜索测试二部", a).await;
    sim.dept("财务", 1).await;
    for (i, name) in ["林小搜", "林小搜", "王大搜"].iter().enumerate() {
        sim.ok(
            "/topapi/v2/user/create",
            json!({"userid": format!("s{i}"), "name": name, "mobile": format!("1380000000{i}"), "dept_id_list": "1"}),
        )
        .await;
    }
    let path = "/v1.0/contact/users/search";
    let token = Some(sim.token.as_str());
    let (status, page) = new_api(
        &sim,
        Method::POST,
        path,
        token,
        json!({"queryWord": "搜", "offset": 0, "size": 2}),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        page,
        json!({"hasMore": true, "totalCount": 3, "list": ["s0", "s1"]})
    );
    let (_, page) = new_api(
        &sim,
        Method::POST,
        path,
        token,
        json!({"queryWord": "搜", "offset": 2, "size": 2}),
    )
    .await;
    assert_eq!(
        page,
        json!({"hasMore": false, "totalCount": 3, "list": ["s2"]})
    );
    let (_, exact) = new_api(
        &sim,
        Method::POST,
        path,
        token,
        json!({"queryWord": "林小", "offset": 0, "size": 10, "fullMatchField": 1}),
    )
    .await;
    assert_eq!(exact["totalCount"], 0);
    let (status, bad) = new_api(
        &sim,
        Method::POST,
        path,
        token,
        json!({"queryWord": "搜", "offset": 0, "size": 101}),
    )
    .await;
    assert_eq!(
        (status, bad["code"].as_str()),
        (400, Some("invalidParameter"))
    );
    let (status, missing) = new_api(
        &sim,
        Method::POST,
        path,
        token,
        json!({"offset": 0, "size": 1}),
    )
    .await;
    assert_eq!(
        (status, missing["code"].as_str()),
        (400, Some("missingParameter"))
    );
    let (status, depts) = new_api(
        &sim,
        Method::POST,
        "/v1.0/contact/departments/search",
        token,
        json!({"queryWord": "搜索测试", "offset": 0, "size": 10}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        depts,
        json!({"hasMore": false, "totalCount": 2, "list": [a, b]})
    );
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn getbyunionid_finds_current_users_only() {
    let sim = Sim::with_org(5, 2).await;
    sim.user("u-union", "13900000001", "1").await;
    let user = sim
        .ok("/topapi/v2/user/get", json!({"userid": "u-union"}))
        .await;
    let unionid = user["result"]["unionid"]
        .as_str()
        .expect("unionid")
        .to_owned();
    let found = sim
        .ok("/topapi/user/getbyunionid", json!({"unionid": unionid}))
        .await;
    assert_eq!(
        found["result"],
        json!({"contact_type": 0, "userid": "u-union"})
    );
    assert!(found["request_id"].is_string());
    assert_eq!(
        sim.code("/topapi/user/getbyunionid", json!({"unionid": "nope"}))
            .await,
        60121
    );
    assert_eq!(
        sim.code("/topapi/user/getbyunionid", json!({})).await,
        40035
    );
    sim.ok("/topapi/v2/user/delete", json!({"userid": "u-union"}))
        .await;
    assert_eq!(
        sim.code("/topapi/user/getbyunionid", json!({"unionid": unionid}))
            .await,
        60121
    );
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn old_contacts_paths_of_dingtalk_sdk_answer_in_their_generation_shape() {
    let sim = Sim::with_org(0, 0).await;
    let created = sim
        .ok(
            "/department/create",
            json!({"name": "旧接口部", "parentid": "1", "order": "3", "createDeptGroup": true}),
        )
        .await;
    assert_eq!(created["errmsg"], "created");
    assert!(created.get("request_id").is_none() && created.get("result").is_none());
    let dept = created["id"].as_i64().expect("id");
    let child = sim
        .ok(
            "/department/create",
            json!({"name": "子部", "parentid": dept}),
        )
        .await;
    // The same rules as v2: a duplicate name under one parent is refused.
    assert_eq!(
        sim.code(
            "/department/create",
            json!({"name": "子部", "parentid": dept})
        )
        .await,
        60008
    );
    let user = sim
        .ok(
            "/user/create",
            json!({"userid": "old1", "name": "旧用户", "mobile": "13700000001", "department": [dept], "position": "工程师", "tel": "0571-1", "orderInDepts": format!("{{\"{dept}\": 7}}")}),
        )
        .await;
    assert_eq!(
        (user["errmsg"].as_str(), user["userid"].as_str()),
        (Some("created"), Some("old1"))
    );
    assert_eq!(
        sim.code(
            "/user/create",
            json!({"name": "x", "mobile": "13700000002"})
        )
        .await,
        40035
    );

    let (status, list) = old_get(&sim, "/department/list", &[("id", "1")]).await;
    assert_eq!(status, 200);
    assert_eq!(
        list["department"],
        json!([{"id": dept, "name": "旧接口部", "parentid": 1, "createDeptGroup": true, "autoAddUser": false}])
    );
    // dingtalk-sdk sends Python's `True`/`False`.
    let (_, shallow) = old_get(&sim, "/department/list", &[("fetch_child", "False")]).await;
    assert_eq!(shallow["department"], list["department"]);
    let (_, deep) = old_get(
        &sim,
        "/department/list",
        &[("id", "1"), ("fetch_child", "True")],
    )
    .await;
    assert_eq!(deep["department"].as_array().map(Vec::len), Some(2));
    assert_eq!(deep["department"][1]["id"], child["id"]);

    let (_, got) = old_get(&sim, "/user/get", &[("userid", "old1")]).await;
    assert_eq!(got["errcode"], 0, "{got}");
    assert_eq!(got["department"], json!([dept]));
    assert_eq!(got["position"], "工程师");
    assert_eq!(got["tel"], "0571-1");
    assert_eq!(got["orderInDepts"], json!(format!("{{\"{dept}\":7}}")));
    assert!(got["unionid"].is_string() && got["isAdmin"] == false);
    let (_, missing) = old_get(&sim, "/user/get", &[("userid", "ghost")]).await;
    assert_eq!(missing["errcode"], 60121);

    let dept_s = dept.to_string();
    let (_, simple) = old_get(
        &sim,
        "/user/simplelist",
        &[("department_id", dept_s.as_str())],
    )
    .await;
    assert_eq!(
        simple,
        json!({"errcode": 0, "errmsg": "ok", "hasMore": false, "userlist": [{"userid": "old1", "name": "旧用户"}]})
    );
    let (_, detail) = old_get(
        &sim,
        "/user/list",
        &[
            ("department_id", dept_s.as_str()),
            ("offset", "0"),
            ("size", "1"),
        ],
    )
    .await;
    assert_eq!(detail["userlist"][0]["order"], 7);
    assert_eq!(detail["userlist"][0]["isLeader"], false);
    let (_, too_big) = old_get(
        &sim,
        "/user/list",
        &[("department_id", dept_s.as_str()), ("size", "101")],
    )
    .await;
    assert_eq!(too_big["errcode"], 40035);
    // The reads take GET, the writes POST, as DingTalk documents them.
    let posted = sim.call("/user/get", json!({"userid": "old1"})).await;
    assert_eq!(posted["errcode"], 43001);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn user_modify_events_carry_diff_info() {
    let sim = Sim::with_org(0, 0).await;
    sim.user("d1", "13600000001", "1").await;
    sim.ok(
        "/topapi/v2/user/update",
        json!({"userid": "d1", "name": "新名字", "work_place": "上海"}),
    )
    .await;
    let (_, events) = sim.admin(Method::GET, "/events", None).await;
    let modify = events
        .as_array()
        .or_else(|| events["events"].as_array())
        .expect("events list")
        .iter()
        .find(|e| e["event_type"] == "user_modify_org")
        .cloned()
        .expect("a user_modify_org event");
    assert_eq!(
        modify["data"]["diffInfo"],
        json!({"userid": "d1", "prev": {"name": "User d1", "workPlace": ""}, "curr": {"name": "新名字", "workPlace": "上海"}})
    );
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn department_group_chat_avatar_and_generated_profile_fields() {
    let sim = Sim::with_org(60, 5).await;
    let with_group = sim
        .ok(
            "/topapi/v2/department/create",
            json!({"name": "有群", "parent_id": 1, "create_dept_group": true}),
        )
        .await["result"]["dept_id"]
        .as_i64()
        .expect("dept_id");
    let without = sim.dept("无群", 1).await;
    let got = sim
        .ok("/topapi/v2/department/get", json!({"dept_id": with_group}))
        .await;
    let chat = got["result"]["dept_group_chat_id"]
        .as_str()
        .expect("dept_group_chat_id");
    assert!(chat.starts_with("chat") && chat.len() == 36, "{chat}");
    let plain = sim
        .ok("/topapi/v2/department/get", json!({"dept_id": without}))
        .await;
    assert!(plain["result"].get("dept_group_chat_id").is_none());

    let users = sim.state().await["users"]
        .as_array()
        .cloned()
        .expect("users");
    let count = |key: &str| users.iter().filter(|u| u.get(key).is_some()).count();
    for key in ["avatar", "telephone", "remark", "org_email"] {
        let n = count(key);
        assert!(
            n > 0 && n < users.len(),
            "{key} on {n} of {} users",
            users.len()
        );
    }
    let with_avatar = users
        .iter()
        .find(|u| u.get("avatar").is_some())
        .expect("an avatar");
    assert!(
        with_avatar["avatar"]
            .as_str()
            .is_some_and(|a| a.starts_with("https://"))
    );
    let listed = sim
        .ok(
            "/topapi/v2/user/list",
            json!({"dept_id": 1, "cursor": 0, "size": 100}),
        )
        .await;
    assert!(
        listed["result"]["list"]
            .as_array()
            .expect("list")
            .iter()
            .any(|u| u.get("avatar").is_some())
    );
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn every_admin_route_in_the_table_is_served() {
    let sim = Sim::with_org(3, 1).await;
    let routes = dingtalk_sim::admin_routes();
    assert!(routes.len() > 30);
    for route in routes {
        let path = route.path.split('[').next().unwrap_or(route.path);
        let path = path
            .replace("{id}", "1")
            .replace("{userid}", "nobody")
            .replace("{org}", "0");
        let path = if path.contains("wait") {
            format!("{path}?timeout_ms=10")
        } else {
            path
        };
        let method = Method::from_bytes(route.method.as_bytes()).expect("method");
        let response = sim
            .http
            .request(method, format!("{}{path}", sim.base))
            .json(&json!({}))
            .send()
            .await
            .expect("answer");
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let unknown = status == 404 && body["errmsg"] == "请求的URI地址不存在";
        assert!(
            !unknown && status != 405,
            "{} {path} is in the table but not served ({status})",
            route.method
        );
    }
    let help = dingtalk_sim::admin_routes_help();
    assert!(help.contains("POST /_sim/users/{userid}/rehire"));
    assert_eq!(help.lines().count(), routes.len() + 1);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn emp_leave_records_list_who_left_in_the_window() {
    let sim = Sim::with_org(0, 0).await;
    for (userid, mobile) in [
        ("l1", "13500000001"),
        ("l2", "13500000002"),
        ("stay", "13500000003"),
    ] {
        sim.user(userid, mobile, "1").await;
    }
    for userid in ["l1", "l2"] {
        sim.ok("/topapi/v2/user/delete", json!({"userid": userid}))
            .await;
    }
    async fn leave_records(sim: &Sim, query: &str) -> (u16, Value) {
        let path = format!("/v1.0/contact/empLeaveRecords?{query}");
        new_api(sim, Method::GET, &path, Some(&sim.token), Value::Null).await
    }
    let get = |query| leave_records(&sim, query);
    let (status, first) = get("startTime=2000-01-01T00:00:00Z&maxResults=1").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["records"][0]["userId"], "l1");
    assert_eq!(first["records"][0]["name"], "User l1");
    assert_eq!(first["records"][0]["mobile"], "13500000001");
    assert!(
        first["records"][0]["leaveTime"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert_eq!(first["nextToken"], "1");
    let (_, second) = get("startTime=2000-01-01T00:00:00Z&maxResults=1&nextToken=1").await;
    assert_eq!(second["records"][0]["userId"], "l2");
    assert!(second.get("nextToken").is_none());
    let (_, none) =
        get("startTime=2000-01-01T00:00:00Z&endTime=2001-01-01T00:00:00Z&maxResults=50").await;
    assert_eq!(none, json!({"records": []}));
    let (status, bad) = get("startTime=yesterday&maxResults=5").await;
    assert_eq!(
        (status, bad["code"].as_str()),
        (400, Some("invalidParameter"))
    );
    let (status, bad) = get("startTime=2000-01-01T00:00:00Z&maxResults=51").await;
    assert_eq!(
        (status, bad["code"].as_str()),
        (400, Some("invalidParameter"))
    );
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn token_and_stream_paths_with_another_method_are_unknown_paths() {
    let sim = Sim::start(SimConfig::default()).await;
    let post = sim
        .http
        .post(format!("{}/gettoken", sim.base))
        .send()
        .await
        .expect("answer");
    assert_eq!(post.status().as_u16(), 404);
    assert_eq!(post.json::<Value>().await.expect("JSON")["errcode"], 404);
    for path in ["/v1.0/oauth2/accessToken", "/v1.0/gateway/connections/open"] {
        let get = sim
            .http
            .get(format!("{}{path}", sim.base))
            .send()
            .await
            .expect("answer");
        assert_eq!(get.status().as_u16(), 404, "{path}");
        assert_eq!(
            get.json::<Value>().await.expect("JSON")["code"],
            "InvalidAction.NotFound"
        );
    }
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn create_caps_each_outer_permit_list_at_50_and_update_caps_their_sum() {
    let sim = Sim::with_org(40, 40).await;
    let state = sim.state().await;
    let depts: Vec<String> = state["departments"]
        .as_array()
        .expect("departments")
        .iter()
        .take(30)
        .map(|d| d["dept_id"].to_string())
        .collect();
    let users: Vec<String> = state["users"]
        .as_array()
        .expect("users")
        .iter()
        .take(30)
        .map(|u| u["userid"].as_str().expect("userid").to_owned())
        .collect();
    let (depts, users) = (depts.join(","), users.join(","));
    let created = sim
        .ok(
            "/topapi/v2/department/create",
            json!({"name": "外部可见", "parent_id": 1, "outer_dept": true,
                   "outer_permit_depts": depts, "outer_permit_users": users}),
        )
        .await;
    let id = created["result"]["dept_id"].as_i64().expect("dept_id");
    let code = sim
        .code(
            "/topapi/v2/department/update",
            json!({"dept_id": id, "outer_permit_depts": depts, "outer_permit_users": users}),
        )
        .await;
    assert_eq!(code, 600109);
    sim.handle.shutdown().await;
}
