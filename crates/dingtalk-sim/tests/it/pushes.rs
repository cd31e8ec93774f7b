//! Event pushes over real HTTP, received by a tiny DingTalk-callback receiver written here with
//! `callback-crypto`: registration, dialects, acknowledgement checks, retries, the failed list,
//! duplicates and reordering.

use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::routing::post;
use callback_crypto::CallbackCrypto;
use common::Sim;
use rand::SeedableRng;
use rand::rngs::StdRng;
use reqwest::Method;
use serde_json::{Value, json};

pub(crate) const TOKEN: &str = "receivertoken1";
pub(crate) const AES_KEY: &str = "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus";
const IDLE: Duration = Duration::from_secs(30);

/// How the receiver answers business events (`check_url` is always acknowledged).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Mode {
    Ack,
    /// Answer the encrypted text "fail" instead of "success".
    WrongText,
    /// Answer HTTP 500.
    ServerError,
    /// Fail the first N business events, then acknowledge.
    FailFirst(usize),
}

pub(crate) struct Receiver {
    crypto: CallbackCrypto,
    mode: Mutex<Mode>,
    /// Every decrypted business event that was acknowledged, in arrival order.
    pub(crate) inbox: Mutex<Vec<Value>>,
    /// Every request's query parameters and decrypted text, acknowledged or not.
    seen: Mutex<Vec<(HashMap<String, String>, Value)>>,
    rng: Mutex<StdRng>,
}

async fn receive(
    State(rx): State<Arc<Receiver>>,
    Query(query): Query<HashMap<String, String>>,
    Json(body): Json<Value>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let encrypt = body["encrypt"].as_str().unwrap_or_default().to_owned();
    let signature = query
        .get("signature")
        .or_else(|| query.get("msg_signature"))
        .cloned()
        .unwrap_or_default();
    let timestamp = query.get("timestamp").cloned().unwrap_or_default();
    let nonce = query.get("nonce").cloned().unwrap_or_default();
    if rx
        .crypto
        .verify_signature(&signature, &timestamp, &nonce, &encrypt)
        .is_err()
    {
        return (axum::http::StatusCode::FORBIDDEN, "bad signature").into_response();
    }
    let Ok(text) = rx.crypto.decrypt(&encrypt) else {
        return (axum::http::StatusCode::BAD_REQUEST, "bad ciphertext").into_response();
    };
    let event: Value = serde_json::from_str(&text).expect("pushed JSON");
    rx.seen
        .lock()
        .expect("lock")
        .push((query.clone(), event.clone()));
    let is_check = event["EventType"] == "check_url";
    let mut reply_text = "success";
    if !is_check {
        let mut mode = rx.mode.lock().expect("lock");
        match *mode {
            Mode::Ack => {}
            Mode::WrongText => reply_text = "fail",
            Mode::ServerError => {
                return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "down").into_response();
            }
            Mode::FailFirst(0) => *mode = Mode::Ack,
            Mode::FailFirst(n) => {
                *mode = Mode::FailFirst(n - 1);
                reply_text = "fail";
            }
        }
        if reply_text == "success" {
            rx.inbox.lock().expect("lock").push(event);
        }
    }
    let reply_ts = "1700000000000";
    let reply_nonce = "replynonce123456";
    let mut rng = rx.rng.lock().expect("lock");
    let reply = rx
        .crypto
        .encrypted_reply(reply_text, reply_ts, reply_nonce, &mut *rng)
        .expect("reply");
    Json(serde_json::to_value(reply).expect("reply json")).into_response()
}

/// Starts a receiver whose frames must end in `owner_key`; returns it and its URL.
pub(crate) async fn receiver(owner_key: &str, mode: Mode) -> (Arc<Receiver>, String) {
    let rx = Arc::new(Receiver {
        crypto: CallbackCrypto::new(TOKEN, AES_KEY, owner_key).expect("crypto"),
        mode: Mutex::new(mode),
        inbox: Mutex::new(Vec::new()),
        seen: Mutex::new(Vec::new()),
        rng: Mutex::new(StdRng::seed_from_u64(5)),
    });
    let app = axum::Router::new()
        .route("/cb", post(receive))
        .with_state(Arc::clone(&rx));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/cb", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("receiver serves");
    });
    (rx, url)
}

async fn console_callback(sim: &Sim, url: &str) {
    let (status, body) = sim
        .admin(
            Method::POST,
            "/callback",
            Some(json!({"url": url, "token": TOKEN, "aes_key": AES_KEY})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

async fn pushes(sim: &Sim) -> Vec<Value> {
    let (_, body) = sim.admin(Method::GET, "/pushes", None).await;
    body["pushes"].as_array().expect("pushes").clone()
}

async fn events(sim: &Sim) -> Vec<Value> {
    let (_, body) = sim.admin(Method::GET, "/events", None).await;
    body["events"].as_array().expect("events").clone()
}

async fn push_settings(sim: &Sim, patch: Value) {
    let (status, body) = sim.admin(Method::POST, "/push-settings", Some(patch)).await;
    assert_eq!(status, 200, "{body}");
}

/// A few administrator changes covering users, departments and roles.
async fn admin_story(sim: &Sim) {
    let (_, d) = sim
        .admin(
            Method::POST,
            "/depts",
            Some(json!({"name": "Story", "parent_id": 1})),
        )
        .await;
    let dept = d["result"]["dept_id"].as_i64().expect("dept");
    sim.admin(
        Method::POST,
        "/users",
        Some(json!({"userid": "s1", "name": "S", "mobile": "13500000001", "dept_id_list": dept.to_string()})),
    )
    .await;
    sim.admin(Method::PATCH, "/users/s1", Some(json!({"title": "Lead"})))
        .await;
    let (_, g) = sim
        .admin(Method::POST, "/role-groups", Some(json!({"name": "SG"})))
        .await;
    let (_, r) = sim
        .admin(
            Method::POST,
            "/roles",
            Some(json!({"roleName": "SR", "groupId": g["groupId"]})),
        )
        .await;
    let role = r["roleId"].as_i64().expect("role");
    sim.admin(
        Method::POST,
        "/roles/assign",
        Some(json!({"roleIds": role.to_string(), "userIds": "s1"})),
    )
    .await;
    sim.admin(Method::DELETE, "/users/s1", None).await;
    sim.admin(Method::DELETE, &format!("/depts/{dept}"), None)
        .await;
}

#[tokio::test]
async fn console_callback_delivers_every_event_in_order_legacy_dialect() {
    let sim = Sim::with_org(5, 2).await;
    let (rx, url) = receiver("dingsimclientid", Mode::Ack).await;
    console_callback(&sim, &url).await;
    // Saving the callback fired check_url.
    assert_eq!(
        rx.seen.lock().expect("lock")[0].1,
        json!({"EventType": "check_url"})
    );

    admin_story(&sim).await;
    let api_dept = sim.dept("From Api", 1).await;
    assert!(sim.handle.wait_pushes_idle(IDLE).await);

    let log = events(&sim).await;
    let inbox = rx.inbox.lock().expect("lock").clone();
    let types: Vec<&str> = inbox
        .iter()
        .filter_map(|e| e["EventType"].as_str())
        .collect();
    let expected: Vec<&str> = log
        .iter()
        .filter_map(|e| e["event_type"].as_str())
        .collect();
    assert_eq!(types, expected, "every event, in log order");
    assert_eq!(
        types,
        vec![
            "org_dept_create",
            "user_add_org",
            "user_modify_org",
            "label_conf_add",
            "label_user_change",
            "user_leave_org",
            "org_dept_remove",
            "org_dept_create"
        ]
    );
    let first = &inbox[0];
    assert_eq!(first["CorpId"], "dingsimcorpid");
    assert!(
        first["TimeStamp"].is_string(),
        "legacy TimeStamp is a string"
    );
    assert!(first["DeptId"][0].is_i64());
    assert_eq!(inbox[1]["UserId"], json!(["s1"]));
    assert!(
        inbox[1]["OptStaffId"].is_string(),
        "admin changes carry the operator"
    );
    assert_eq!(inbox[4]["action"], "add");
    assert_eq!(inbox[7]["DeptId"], json!([api_dept]));
    assert!(inbox[7].get("OptStaffId").is_none());

    // Every acknowledged push is in the inbox, and the query used the documented names.
    let records = pushes(&sim).await;
    let acked: Vec<&Value> = records
        .iter()
        .filter(|p| p["acked"] == true && p["event_type"] != "check_url")
        .collect();
    assert_eq!(acked.len(), inbox.len());
    for push in acked {
        assert!(inbox.contains(&push["plaintext"]), "{push}");
    }
    for (query, _) in rx.seen.lock().expect("lock").iter() {
        assert!(
            query.contains_key("signature")
                && query.contains_key("timestamp")
                && query.contains_key("nonce")
        );
    }
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn new_dialect_msg_signature_and_duplicates() {
    let sim = Sim::with_org(0, 0).await;
    let (rx, url) = receiver("dingsimclientid", Mode::Ack).await;
    console_callback(&sim, &url).await;
    push_settings(
        &sim,
        json!({"dialect": "new", "msg_signature": true, "duplicate_rate": 1.0}),
    )
    .await;
    sim.dept("Dup", 1).await;
    assert!(sim.handle.wait_pushes_idle(IDLE).await);
    let inbox = rx.inbox.lock().expect("lock").clone();
    assert_eq!(inbox.len(), 2, "pushed twice");
    assert_eq!(inbox[0], inbox[1], "a duplicate is the same event");
    let event = &inbox[0];
    assert_eq!(event["EventType"], "org_dept_create");
    assert!(event["EventTime"].is_i64());
    assert!(event["eventId"].as_str().is_some_and(|id| id.len() == 32));
    assert!(event["BizId"].is_string());
    assert!(event["deptId"][0].is_i64());
    let query = rx
        .seen
        .lock()
        .expect("lock")
        .last()
        .expect("a request")
        .0
        .clone();
    assert!(query.contains_key("msg_signature") && !query.contains_key("signature"));
    let records = pushes(&sim).await;
    assert_eq!(records.iter().filter(|p| p["duplicate"] == true).count(), 1);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn failed_pushes_are_retried_then_listed_once() {
    let sim = Sim::with_org(0, 0).await;
    let (rx, url) = receiver("dingsimclientid", Mode::WrongText).await;
    console_callback(&sim, &url).await;
    push_settings(&sim, json!({"retry_scale": 0.001})).await;
    for i in 0..205 {
        sim.dept(&format!("F{i}"), 1).await;
    }
    assert!(sim.handle.wait_pushes_idle(IDLE).await);
    assert!(rx.inbox.lock().expect("lock").is_empty());
    let records = pushes(&sim).await;
    let events_pushed: Vec<&Value> = records
        .iter()
        .filter(|p| p["event_type"] != "check_url")
        .collect();
    assert_eq!(
        events_pushed.len(),
        205 * 3,
        "first attempt + two retries each"
    );
    assert!(events_pushed.iter().all(|p| p["acked"] == false));
    assert!(
        events_pushed
            .iter()
            .any(|p| p["error"].as_str().is_some_and(|e| e.contains("success")))
    );

    let url = "/call_back/get_call_back_failed_result";
    let get = |sim: &Sim| {
        let request = sim
            .http
            .get(format!("{}{}", sim.base, url))
            .query(&[("access_token", sim.token.as_str())]);
        async move {
            request
                .send()
                .await
                .expect("answer")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    let first = get(&sim).await;
    assert_eq!(first["errcode"], 0, "{first}");
    assert_eq!(first["failed_list"].as_array().map(Vec::len), Some(200));
    assert_eq!(first["has_more"], true);
    let entry = &first["failed_list"][0];
    assert_eq!(entry["call_back_tag"], "org_dept_create");
    assert!(entry["event_time"].is_i64());
    assert_eq!(entry["org_dept_create"]["corpid"], "dingsimcorpid");
    let second = get(&sim).await;
    assert_eq!(second["failed_list"].as_array().map(Vec::len), Some(5));
    assert_eq!(second["has_more"], false);
    let third = get(&sim).await;
    assert_eq!(third["failed_list"], json!([]), "reading removes them");
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn a_retry_that_succeeds_is_not_listed_and_http_errors_count_as_failures() {
    let sim = Sim::with_org(0, 0).await;
    let (rx, url) = receiver("dingsimclientid", Mode::FailFirst(1)).await;
    console_callback(&sim, &url).await;
    push_settings(&sim, json!({"retry_scale": 0.001})).await;
    sim.dept("Retry", 1).await;
    assert!(sim.handle.wait_pushes_idle(IDLE).await);
    let records = pushes(&sim).await;
    let attempts: Vec<(i64, bool)> = records
        .iter()
        .filter(|p| p["event_type"] == "org_dept_create")
        .map(|p| (p["attempt"].as_i64().expect("attempt"), p["acked"] == true))
        .collect();
    assert_eq!(attempts, vec![(1, false), (2, true)]);
    assert_eq!(rx.inbox.lock().expect("lock").len(), 1);

    *rx.mode.lock().expect("lock") = Mode::ServerError;
    sim.dept("Down", 1).await;
    assert!(sim.handle.wait_pushes_idle(IDLE).await);
    let records = pushes(&sim).await;
    let down: Vec<&Value> = records
        .iter()
        .filter(|p| p["event_type"] == "org_dept_create" && p["push_id"] != records[1]["push_id"])
        .filter(|p| p["error"].as_str().is_some_and(|e| e.contains("500")))
        .collect();
    assert_eq!(down.len(), 3);
    let (_, body) = sim.admin(Method::GET, "/pushes", None).await;
    assert_eq!(body["failed_unread"], 1);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn register_call_back_api_uses_the_corp_id_and_checks_the_url() {
    let sim = Sim::with_org(0, 0).await;
    let (rx, url) = receiver("dingsimcorpid", Mode::Ack).await;
    let register = json!({"call_back_tag": ["org_dept_create", "user_add_org"], "token": TOKEN, "aes_key": AES_KEY, "url": url});
    let ok = sim
        .call("/call_back/register_call_back", register.clone())
        .await;
    assert_eq!(ok, json!({"errcode": 0, "errmsg": "ok"}));
    assert_eq!(
        sim.code("/call_back/register_call_back", register.clone())
            .await,
        71006
    );
    let get: Value = sim
        .http
        .get(format!("{}/call_back/get_call_back", sim.base))
        .query(&[("access_token", sim.token.as_str())])
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(get["url"], url.as_str());
    assert_eq!(
        get["call_back_tag"],
        json!(["org_dept_create", "user_add_org"])
    );

    // Only subscribed tags are pushed.
    let d = sim.dept("Tagged", 1).await;
    sim.ok(
        "/topapi/v2/department/update",
        json!({"dept_id": d, "name": "Renamed"}),
    )
    .await;
    assert!(sim.handle.wait_pushes_idle(IDLE).await);
    let inbox = rx.inbox.lock().expect("lock").clone();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["EventType"], "org_dept_create");

    // A URL that does not acknowledge check_url is refused.
    let (_, bad_url) = receiver("someoneelse", Mode::Ack).await;
    let update = json!({"call_back_tag": ["user_add_org"], "token": TOKEN, "aes_key": AES_KEY, "url": bad_url});
    assert_eq!(sim.code("/call_back/update_call_back", update).await, 71009);
    let bad_key =
        json!({"call_back_tag": ["user_add_org"], "token": TOKEN, "aes_key": "short", "url": url});
    assert_eq!(
        sim.code("/call_back/update_call_back", bad_key).await,
        900004
    );

    let delete: Value = sim
        .http
        .get(format!("{}/call_back/delete_call_back", sim.base))
        .query(&[("access_token", sim.token.as_str())])
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(delete["errcode"], 0);
    let again: Value = sim
        .http
        .get(format!("{}/call_back/get_call_back", sim.base))
        .query(&[("access_token", sim.token.as_str())])
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(again["errcode"], 71007);
    // POST where DingTalk wants GET.
    assert_eq!(sim.code("/call_back/get_call_back", json!({})).await, 43001);
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn reordering_delivers_everything_out_of_order() {
    let sim = Sim::with_org(0, 0).await;
    let (rx, url) = receiver("dingsimclientid", Mode::Ack).await;
    console_callback(&sim, &url).await;
    push_settings(&sim, json!({"reorder_window_ms": 400})).await;
    for i in 0..12 {
        sim.dept(&format!("R{i}"), 1).await;
    }
    assert!(sim.handle.wait_pushes_idle(IDLE).await);
    let inbox = rx.inbox.lock().expect("lock").clone();
    let arrived: Vec<i64> = inbox
        .iter()
        .map(|e| e["DeptId"][0].as_i64().expect("id"))
        .collect();
    let mut sorted = arrived.clone();
    sorted.sort_unstable();
    let logged: Vec<i64> = events(&sim)
        .await
        .iter()
        .map(|e| e["data"]["deptId"][0].as_i64().expect("id"))
        .collect();
    assert_eq!(sorted, logged, "everything arrived exactly once");
    assert_ne!(arrived, logged, "but not in log order");
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn console_check_url_and_rejections() {
    let sim = Sim::with_org(0, 0).await;
    let (status, body) = sim.admin(Method::POST, "/callback/check_url", None).await;
    assert_eq!((status, body["errcode"].clone()), (422, json!(71007)));
    let (_, wrong_owner) = receiver("dingsimcorpid", Mode::Ack).await;
    let (status, body) = sim
        .admin(
            Method::POST,
            "/callback",
            Some(json!({"url": wrong_owner, "token": TOKEN, "aes_key": AES_KEY})),
        )
        .await;
    assert_eq!(
        status, 422,
        "console callbacks use the client id as owner key: {body}"
    );
    assert_eq!(body["errcode"], 71009);

    let (rx, url) = receiver("dingsimclientid", Mode::Ack).await;
    console_callback(&sim, &url).await;
    let (_, body) = sim.admin(Method::POST, "/callback/check_url", None).await;
    assert_eq!(body["acked"], true);
    assert_eq!(rx.seen.lock().expect("lock").len(), 2);
    let (_, view) = sim.admin(Method::GET, "/callback", None).await;
    assert_eq!(view["callback"]["kind"], "console");
    assert!(
        !view.to_string().contains(TOKEN),
        "no secrets in the admin view"
    );
    // The API cannot register over a console callback.
    let register =
        json!({"call_back_tag": ["user_add_org"], "token": TOKEN, "aes_key": AES_KEY, "url": url});
    assert_eq!(
        sim.code("/call_back/register_call_back", register).await,
        71006
    );
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn shutdown_abandons_pending_retries() {
    let sim = Sim::with_org(0, 0).await;
    let (_rx, url) = receiver("dingsimclientid", Mode::WrongText).await;
    console_callback(&sim, &url).await;
    sim.dept("Pending", 1).await;
    // Wait (bounded) for the first attempt; its retry is then 10 s away.
    let mut attempted = false;
    for _ in 0..200 {
        if pushes(&sim)
            .await
            .iter()
            .any(|p| p["event_type"] == "org_dept_create")
        {
            attempted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(attempted);
    assert!(
        !sim.handle.wait_pushes_idle(Duration::from_millis(10)).await,
        "a retry is pending"
    );
    tokio::time::timeout(Duration::from_secs(30), sim.handle.shutdown())
        .await
        .expect("shutdown does not wait for the 10 s retry");
}

#[tokio::test]
async fn delay_holds_every_push_back() {
    let sim = Sim::with_org(0, 0).await;
    let (rx, url) = receiver("dingsimclientid", Mode::Ack).await;
    console_callback(&sim, &url).await;
    push_settings(&sim, json!({"delay_ms": 150})).await;
    let started = std::time::Instant::now();
    sim.dept("Late1", 1).await;
    sim.dept("Late2", 1).await;
    assert!(sim.handle.wait_pushes_idle(IDLE).await);
    // A lower bound: two pushes, each held 150 ms, one after the other.
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(rx.inbox.lock().expect("lock").len(), 2);
    sim.handle.shutdown().await;
}
