//! Several organizations (corps) in one simulator, over real HTTP: each with its own
//! credentials, tokens, id space, rate limits, settings, callback pushes and Stream gateway, and
//! a token of one corp never reaching another's data.

use std::time::Duration;

use dingtalk_sim::{SimConfig, SimHandle};
use reqwest::Method;
use serde_json::{Value, json};

const IDLE: Duration = Duration::from_secs(30);

/// A client of one org: its token, and its admin prefix.
pub struct OrgClient {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
    /// `/_sim/orgs/{n}`.
    pub admin_prefix: String,
    pub corp_id: String,
}

impl OrgClient {
    /// Fetches org `index`'s token with its own credentials.
    pub async fn of(handle: &SimHandle, index: usize) -> OrgClient {
        let org = handle.org(index).expect("org exists");
        let config = org.config();
        let http = testkit::http::client();
        let base = handle.base_url();
        let body: Value = http
            .get(format!("{base}/gettoken"))
            .query(&[
                ("appkey", config.client_id.as_str()),
                ("appsecret", config.client_secret.as_str()),
            ])
            .send()
            .await
            .expect("gettoken answers")
            .json()
            .await
            .expect("JSON");
        assert_eq!(body["errcode"], 0, "{body}");
        OrgClient {
            token: body["access_token"].as_str().expect("token").to_owned(),
            admin_prefix: format!("/_sim/orgs/{index}"),
            corp_id: config.corp_id.clone(),
            http,
            base,
        }
    }

    /// POSTs a JSON body to a DingTalk path with this org's token.
    pub async fn call(&self, path: &str, body: Value) -> Value {
        self.http
            .post(format!("{}{path}", self.base))
            .query(&[("access_token", self.token.as_str())])
            .json(&body)
            .send()
            .await
            .expect("call answers")
            .json()
            .await
            .expect("JSON answer")
    }

    pub async fn ok(&self, path: &str, body: Value) -> Value {
        let answer = self.call(path, body.clone()).await;
        assert_eq!(answer["errcode"], 0, "{path} {body} -> {answer}");
        answer
    }

    pub async fn code(&self, path: &str, body: Value) -> i64 {
        self.call(path, body).await["errcode"]
            .as_i64()
            .expect("numeric errcode")
    }

    /// A `/_sim/orgs/{n}` call; (status, body).
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let path = format!("{}{path}", self.admin_prefix);
        let (status, body) =
            testkit::sim::request(&self.http, &self.base, method, &path, body.as_ref()).await;
        (status.as_u16(), body)
    }

    pub async fn state(&self) -> Value {
        self.admin(Method::GET, "/state", None).await.1
    }
}

/// A simulator serving `orgs` corps, each generated with `users`/`depts`, no rate limit.
pub async fn start(orgs: usize, users: usize, depts: usize) -> SimHandle {
    testkit::sim::start(SimConfig {
        orgs,
        users,
        depts,
        qps: 0,
        ..SimConfig::default()
    })
    .await
}

fn userids(state: &Value) -> Vec<String> {
    state["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["userid"].as_str().expect("userid").to_owned())
        .collect()
}

#[tokio::test]
async fn each_org_has_its_own_credentials_tokens_and_ids() {
    let handle = start(3, 4, 2).await;
    assert_eq!(handle.orgs(), 3);
    assert!(handle.org(3).is_none());
    let orgs = [
        OrgClient::of(&handle, 0).await,
        OrgClient::of(&handle, 1).await,
        OrgClient::of(&handle, 2).await,
    ];
    assert_ne!(orgs[0].token, orgs[1].token);
    assert_ne!(orgs[1].token, orgs[2].token);
    assert_eq!(orgs[0].corp_id, handle.config().corp_id);
    assert_ne!(orgs[1].corp_id, orgs[0].corp_id);

    // Org 1's client id with org 0's secret is no credential at all.
    let http = &orgs[0].http;
    let mixed: Value = http
        .get(format!("{}/gettoken", handle.base_url()))
        .query(&[
            (
                "appkey",
                handle.org(1).expect("org 1").config().client_id.as_str(),
            ),
            ("appsecret", handle.config().client_secret.as_str()),
        ])
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(mixed["errcode"], 40096, "{mixed}");
    // The new API's token endpoint picks the corp by appKey too.
    let org2 = handle.org(2).expect("org 2");
    let new_token: Value = http
        .post(format!("{}/v1.0/oauth2/accessToken", handle.base_url()))
        .json(&json!({"appKey": org2.config().client_id, "appSecret": org2.config().client_secret}))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(
        new_token["accessToken"],
        orgs[2].token.as_str(),
        "{new_token}"
    );

    // Each org's root is its own corp, named after it.
    for (i, org) in orgs.iter().enumerate() {
        let root = org
            .ok("/topapi/v2/department/get", json!({"dept_id": 1}))
            .await;
        let name = handle.org(i).expect("org").config().corp_name.clone();
        assert_eq!(root["result"]["name"], name.as_str());
    }

    // The same userid and mobile may exist in two corps (ids are per corp) ...
    for org in &orgs[1..] {
        org.ok(
            "/topapi/v2/user/create",
            json!({"userid": "zhangsan", "name": format!("张三 {}", org.corp_id),
                   "mobile": "13800000001", "dept_id_list": "1"}),
        )
        .await;
    }
    // ... and a token reads only its own corp: org 0 has no zhangsan, org 2's is org 2's.
    assert_eq!(
        orgs[0]
            .code("/topapi/v2/user/get", json!({"userid": "zhangsan"}))
            .await,
        60121
    );
    let two = orgs[2]
        .ok("/topapi/v2/user/get", json!({"userid": "zhangsan"}))
        .await;
    assert_eq!(two["result"]["name"], format!("张三 {}", orgs[2].corp_id));
    let zero_ids = userids(&orgs[0].state().await);
    assert!(!zero_ids.contains(&"zhangsan".to_owned()));
    assert_eq!(zero_ids.len(), 4);
    assert!(userids(&orgs[1].state().await).contains(&"zhangsan".to_owned()));
    // `/_sim/state` is org 0.
    let (_, plain) =
        testkit::sim::request(http, &handle.base_url(), Method::GET, "/_sim/state", None).await;
    assert_eq!(userids(&plain), zero_ids);

    // A department of org 1 is not found with org 0's token, whichever family asks.
    let d = orgs[1]
        .ok(
            "/topapi/v2/department/create",
            json!({"name": "Only in one", "parent_id": 1}),
        )
        .await["result"]["dept_id"]
        .as_i64()
        .expect("dept id");
    let dept_ids = |state: &Value| -> Vec<i64> {
        state["departments"]
            .as_array()
            .expect("departments")
            .iter()
            .map(|d| d["dept_id"].as_i64().expect("id"))
            .collect()
    };
    if !dept_ids(&orgs[0].state().await).contains(&d) {
        assert_eq!(
            orgs[0]
                .code("/topapi/v2/department/get", json!({"dept_id": d}))
                .await,
            60003
        );
    }
    // The new API's header token is routed the same way.
    // (The word is org 1's corp id, in the name of org 1's zhangsan only.)
    let word = orgs[1].corp_id.clone();
    let search = |org: &OrgClient| {
        org.http
            .post(format!("{}/v1.0/contact/users/search", org.base))
            .header("x-acs-dingtalk-access-token", org.token.clone())
            .json(&json!({"queryWord": word, "offset": 0, "size": 10}))
            .send()
    };
    let found: Value = search(&orgs[1])
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(found["list"], json!(["zhangsan"]), "{found}");
    let none: Value = search(&orgs[0])
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(none["totalCount"], 0, "{none}");

    // A token no corp issued is refused as in a one-corp simulator.
    let stranger = OrgClient {
        token: "0123456789abcdef0123456789abcdef".to_owned(),
        ..OrgClient::of(&handle, 0).await
    };
    let refused = stranger
        .call("/topapi/v2/user/get", json!({"userid": "zhangsan"}))
        .await;
    assert_eq!(refused["errcode"], 88, "{refused}");
    assert_eq!(refused["sub_code"], "40014", "{refused}");

    let (_, listing) =
        testkit::sim::request(http, &handle.base_url(), Method::GET, "/_sim/orgs", None).await;
    let listed = listing["orgs"].as_array().expect("orgs");
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[1]["corp_id"], orgs[1].corp_id.as_str());
    assert!(
        !listing.to_string().contains(&org2.config().client_secret),
        "no secrets in /_sim/orgs"
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn rate_limits_settings_tokens_and_counts_are_per_org() {
    let handle = start(2, 0, 0).await;
    let zero = OrgClient::of(&handle, 0).await;
    let one = OrgClient::of(&handle, 1).await;
    let (status, _) = one
        .admin(Method::POST, "/settings", Some(json!({"qps": 1})))
        .await;
    assert_eq!(status, 200);
    let (_, zero_settings) = zero.admin(Method::GET, "/settings", None).await;
    assert_eq!(zero_settings["qps"], 0, "org 0 keeps its own limit");

    let list = json!({"dept_id": 1});
    assert_eq!(
        one.code("/topapi/v2/department/listsub", list.clone())
            .await,
        0
    );
    assert_eq!(
        one.code("/topapi/v2/department/listsub", list.clone())
            .await,
        90018,
        "org 1's second call within the second is throttled"
    );
    for _ in 0..3 {
        assert_eq!(
            zero.code("/topapi/v2/department/listsub", list.clone())
                .await,
            0
        );
    }
    let (_, calls_one) = one.admin(Method::GET, "/calls", None).await;
    let (_, calls_zero) = zero.admin(Method::GET, "/calls", None).await;
    assert_eq!(calls_one["total"]["throttled"], 1, "{calls_one}");
    assert_eq!(calls_zero["total"]["throttled"], 0, "{calls_zero}");
    // Both fetched a token; org 0 made three listings.
    assert_eq!(
        calls_zero["by_path"]["/topapi/v2/department/listsub"]["calls"],
        3
    );

    // Expiring org 1's tokens leaves org 0's working.
    let (status, _) = one.admin(Method::POST, "/tokens/expire", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        zero.code("/topapi/v2/department/listsub", list.clone())
            .await,
        0
    );
    let expired = one.call("/topapi/v2/department/listsub", list).await;
    assert_eq!(expired["sub_code"], "40014", "{expired}");
    handle.shutdown().await;
}

#[tokio::test]
async fn each_org_pushes_to_its_own_subscription_with_its_own_keys() {
    use crate::pushes::{AES_KEY, Mode, TOKEN, receiver};
    let handle = start(2, 0, 0).await;
    let zero = OrgClient::of(&handle, 0).await;
    let one = OrgClient::of(&handle, 1).await;
    // Console-configured callbacks use the app's client id as the owner key.
    let (rx_zero, url_zero) = receiver(&handle.config().client_id, Mode::Ack).await;
    let one_config = handle.org(1).expect("org 1").config().clone();
    let (rx_one, url_one) = receiver(&one_config.client_id, Mode::Ack).await;
    for (org, url) in [(&zero, &url_zero), (&one, &url_one)] {
        let (status, body) = org
            .admin(
                Method::POST,
                "/callback",
                Some(json!({"url": url, "token": TOKEN, "aes_key": AES_KEY})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let created = one
        .ok(
            "/topapi/v2/department/create",
            json!({"name": "Pushed", "parent_id": 1}),
        )
        .await["result"]["dept_id"]
        .clone();
    assert!(handle.org(1).expect("org 1").wait_pushes_idle(IDLE).await);
    assert!(handle.wait_pushes_idle(IDLE).await);
    let inbox_one = rx_one.inbox.lock().expect("lock").clone();
    assert_eq!(inbox_one.len(), 1, "{inbox_one:?}");
    assert_eq!(inbox_one[0]["EventType"], "org_dept_create");
    assert_eq!(inbox_one[0]["CorpId"], one_config.corp_id.as_str());
    assert_eq!(inbox_one[0]["DeptId"], json!([created]));
    assert!(
        rx_zero.inbox.lock().expect("lock").is_empty(),
        "org 0 saw nothing of org 1's change"
    );
    let (_, events_zero) = zero.admin(Method::GET, "/events", None).await;
    assert_eq!(events_zero["events"], json!([]));
    handle.shutdown().await;
}

#[tokio::test]
async fn each_org_has_its_own_stream_gateway() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let handle = start(2, 0, 0).await;
    let one = OrgClient::of(&handle, 1).await;
    let config = handle.org(1).expect("org 1").config().clone();
    let org1 = handle.org(1).expect("org 1");
    org1.set_stream_settings(
        &serde_json::from_value(json!({"delivery": "stream", "ping_interval_ms": 0}))
            .expect("patch"),
    )
    .expect("settings");
    let opened: Value = one
        .http
        .post(format!("{}/v1.0/gateway/connections/open", one.base))
        .json(
            &json!({"clientId": config.client_id, "clientSecret": config.client_secret,
                      "subscriptions": [{"type": "EVENT", "topic": "*"}]}),
        )
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    let endpoint = opened["endpoint"].as_str().expect("endpoint");
    let ticket = opened["ticket"].as_str().expect("ticket");
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{endpoint}?ticket={ticket}"))
        .await
        .expect("WebSocket opens");
    one.ok(
        "/topapi/v2/department/create",
        json!({"name": "Streamed", "parent_id": 1}),
    )
    .await;
    let frame = loop {
        let message = tokio::time::timeout(IDLE, ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("readable");
        if let Message::Text(text) = message {
            let frame: Value = serde_json::from_str(text.as_str()).expect("JSON");
            if frame["type"] == "EVENT" {
                break frame;
            }
        }
    };
    assert_eq!(frame["headers"]["eventCorpId"], config.corp_id.as_str());
    let (_, view_one) = one.admin(Method::GET, "/stream", None).await;
    let (_, view_zero) =
        testkit::sim::request(&one.http, &one.base, Method::GET, "/_sim/stream", None).await;
    assert_eq!(
        view_one["connections"].as_array().map(Vec::len),
        Some(1),
        "{view_one}"
    );
    assert_eq!(
        view_zero["connections"].as_array().map(Vec::len),
        Some(0),
        "{view_zero}"
    );
    drop(ws);
    handle.shutdown().await;
}

#[tokio::test]
async fn orgs_are_validated() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let refused = dingtalk_sim::start(
        SimConfig {
            orgs: 0,
            ..SimConfig::default()
        },
        listener,
    )
    .await;
    assert!(refused.is_err());
}
