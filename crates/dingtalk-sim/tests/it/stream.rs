//! Stream mode over real sockets: registration, tickets, the WebSocket frames field by field,
//! every SDK's ack shape, redelivery, several connections, ping, disconnect and drop. The client
//! here is written with `tokio-tungstenite` directly from `dingtalk-api.md` §7.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::Sim;
use futures::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Generous bound on any single wait, so a broken simulator fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(20);

/// A simulator with Stream delivery on, pings off and a short redelivery timeout.
async fn stream_sim(redeliver_after_ms: u64) -> Sim {
    let sim = Sim::with_org(0, 0).await;
    let (status, body) = sim
        .admin(
            Method::POST,
            "/stream/settings",
            Some(json!({"delivery": "stream", "ping_interval_ms": 0,
                        "redeliver_after_ms": redeliver_after_ms})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    sim
}

/// `POST /v1.0/gateway/connections/open`; returns (HTTP status, body).
async fn open(sim: &Sim, body: Value) -> (u16, Value) {
    let response = sim
        .http
        .post(format!("{}/v1.0/gateway/connections/open", sim.base))
        .header("Accept", "application/json")
        .json(&body)
        .send()
        .await
        .expect("open answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

fn registration(sim: &Sim) -> Value {
    let config = sim.handle.config();
    json!({
        "clientId": config.client_id,
        "clientSecret": config.client_secret,
        "subscriptions": [{"type": "EVENT", "topic": "*"},
                          {"type": "CALLBACK", "topic": "/v1.0/im/bot/messages/get"}],
        "ua": "dingtalk-sim-test/1.0",
        "localIp": "127.0.0.1",
    })
}

async fn register(sim: &Sim) -> (String, String) {
    let (status, body) = open(sim, registration(sim)).await;
    assert_eq!(status, 200, "{body}");
    (
        body["endpoint"].as_str().expect("endpoint").to_owned(),
        body["ticket"].as_str().expect("ticket").to_owned(),
    )
}

async fn connect(sim: &Sim) -> Ws {
    let (endpoint, ticket) = register(sim).await;
    let (ws, _) = tokio_tungstenite::connect_async(format!("{endpoint}?ticket={ticket}"))
        .await
        .expect("WebSocket opens");
    ws
}

/// The next text frame, parsed.
async fn next_frame(ws: &mut Ws) -> Value {
    loop {
        let message = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("a frame in time")
            .expect("connection open")
            .expect("frame readable");
        if let Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).expect("frame is JSON");
        }
    }
}

async fn send_json(ws: &mut Ws, value: Value) {
    ws.send(Message::Text(value.to_string().into()))
        .await
        .expect("send");
}

/// The documented ack (Node SDK shape).
fn ack(frame: &Value, code: i64, status: &str) -> Value {
    json!({"code": code,
           "headers": {"messageId": frame["headers"]["messageId"], "contentType": "application/json"},
           "message": "OK",
           "data": json!({"status": status, "message": "ok"}).to_string()})
}

async fn stream_view(sim: &Sim) -> Value {
    sim.admin(Method::GET, "/stream", None).await.1
}

async fn wait_idle(sim: &Sim) {
    let (_, body) = sim
        .admin(Method::POST, "/stream/wait?timeout_ms=20000", None)
        .await;
    assert_eq!(body["idle"], true, "{}", stream_view(sim).await);
}

async fn add_dept(sim: &Sim, name: &str) {
    let (status, body) = sim
        .admin(
            Method::POST,
            "/depts",
            Some(json!({"name": name, "parent_id": 1})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn registration_checks_credentials_and_answers_an_endpoint_and_ticket() {
    let sim = stream_sim(60_000).await;
    let mut bad = registration(&sim);
    bad["clientSecret"] = json!("wrong");
    let (status, body) = open(&sim, bad).await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "authFailed");
    assert!(body["requestid"].is_string() && body["message"].is_string());

    let mut missing = registration(&sim);
    missing
        .as_object_mut()
        .expect("object")
        .remove("subscriptions");
    assert_eq!(open(&sim, missing).await.0, 400);

    let (endpoint, ticket) = register(&sim).await;
    assert_eq!(
        endpoint,
        format!("ws://{}/connect", sim.handle.local_addr())
    );
    let parts: Vec<usize> = ticket.split('-').map(str::len).collect();
    assert_eq!(parts, vec![8, 4, 4, 4, 12], "uuid-like ticket {ticket}");
    let view = stream_view(&sim).await;
    assert_eq!(view["registrations"]["accepted"], 1);
    assert_eq!(view["registrations"]["refused"], 2);
}

#[tokio::test]
async fn a_ticket_is_single_use_and_expires() {
    let sim = stream_sim(60_000).await;
    let (endpoint, ticket) = register(&sim).await;
    let url = format!("{endpoint}?ticket={ticket}");
    let _first = tokio_tungstenite::connect_async(&url)
        .await
        .expect("first use works");
    let refused = |result: Result<_, tokio_tungstenite::tungstenite::Error>| match result {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("connection accepted"),
    };
    assert_eq!(refused(tokio_tungstenite::connect_async(&url).await), 401);

    // A ticket past its lifetime (0 ms here, 90 s by default) is refused too.
    sim.admin(
        Method::POST,
        "/stream/settings",
        Some(json!({"ticket_ttl_ms": 0})),
    )
    .await;
    let (endpoint, ticket) = register(&sim).await;
    assert_eq!(
        refused(tokio_tungstenite::connect_async(format!("{endpoint}?ticket={ticket}")).await),
        401
    );
    let missing = tokio_tungstenite::connect_async(format!("{endpoint}?ticket=nope")).await;
    assert_eq!(refused(missing), 401);
    assert_eq!(
        stream_view(&sim).await["registrations"]["tickets_refused"],
        3
    );
}

#[tokio::test]
async fn event_frames_match_the_documented_shape_field_by_field() {
    let sim = stream_sim(60_000).await;
    let mut ws = connect(&sim).await;
    let created = sim.dept("研发部", 1).await;
    let frame = next_frame(&mut ws).await;
    assert_eq!(frame["specVersion"], "1.0");
    assert_eq!(frame["type"], "EVENT");
    let headers = frame["headers"].as_object().expect("headers object");
    for (name, value) in headers {
        assert!(value.is_string(), "header {name} is {value}, not a string");
    }
    for name in [
        "topic",
        "messageId",
        "contentType",
        "time",
        "eventType",
        "eventId",
        "eventCorpId",
        "eventBornTime",
        "eventUnifiedAppId",
    ] {
        assert!(headers.contains_key(name), "missing header {name}");
    }
    assert_eq!(headers["topic"], "*");
    assert_eq!(headers["contentType"], "application/json");
    assert_eq!(headers["eventType"], "org_dept_create");
    assert_eq!(headers["eventCorpId"], "dingsimcorpid");
    assert!(
        headers["time"]
            .as_str()
            .expect("time")
            .parse::<i64>()
            .is_ok()
    );
    assert!(
        headers["eventBornTime"]
            .as_str()
            .expect("born")
            .parse::<i64>()
            .is_ok()
    );
    let data_text = frame["data"].as_str().expect("data is a JSON string");
    let data: Value = serde_json::from_str(data_text).expect("data parses");
    assert_eq!(data, json!({"deptId": [created]}));

    send_json(&mut ws, ack(&frame, 200, "SUCCESS")).await;
    wait_idle(&sim).await;
    let view = stream_view(&sim).await;
    let delivery = &view["deliveries"][0];
    assert_eq!(delivery["outcome"], "acked");
    assert_eq!(delivery["event_id"], headers["eventId"]);
    assert_eq!(delivery["ack_code"], 200);

    // A user event carries timeStamp and userId in data.
    sim.user("streamuser1", "13800000001", "1").await;
    let frame = next_frame(&mut ws).await;
    assert_eq!(frame["headers"]["eventType"], "user_add_org");
    let data: Value = serde_json::from_str(frame["data"].as_str().expect("string")).expect("json");
    assert_eq!(data["userId"], json!(["streamuser1"]));
    assert!(data["timeStamp"].is_string());
}

#[tokio::test]
async fn acks_of_every_sdk_shape_are_judged_and_refusals_redelivered() {
    let sim = stream_sim(200).await;
    let mut ws = connect(&sim).await;
    for i in 0..5 {
        add_dept(&sim, &format!("ack{i}")).await;
    }
    let mut first = Vec::new();
    for _ in 0..5 {
        first.push(next_frame(&mut ws).await);
    }
    let msg = |f: &Value| f["headers"]["messageId"].clone();
    // 0: Node/documented success. 1: Python (200, echoes the data, no status) = success.
    send_json(&mut ws, ack(&first[0], 200, "SUCCESS")).await;
    send_json(
        &mut ws,
        json!({"code": 200, "headers": {"messageId": msg(&first[1])}, "message": "OK",
               "data": first[1]["data"]}),
    )
    .await;
    // 2: Java LATER (200 + status LATER). 3: Go LATER (500). 4: no answer at all.
    send_json(&mut ws, ack(&first[2], 200, "LATER")).await;
    send_json(
        &mut ws,
        json!({"code": 500, "headers": {"messageId": msg(&first[3])}, "message": "later",
               "data": "{\"status\":\"LATER\",\"message\":\"later\"}"}),
    )
    .await;
    // 2, 3 and 4 come back with their eventId and a new messageId; ack them now.
    let mut redelivered = BTreeMap::new();
    while redelivered.len() < 3 {
        let frame = next_frame(&mut ws).await;
        let event_id = frame["headers"]["eventId"].as_str().expect("id").to_owned();
        send_json(&mut ws, ack(&frame, 200, "SUCCESS")).await;
        redelivered.insert(event_id, frame);
    }
    let expected: BTreeSet<String> = first[2..]
        .iter()
        .map(|f| f["headers"]["eventId"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(
        redelivered.keys().cloned().collect::<BTreeSet<_>>(),
        expected
    );
    for f in &first[2..] {
        let again = &redelivered[f["headers"]["eventId"].as_str().expect("id")];
        assert_ne!(msg(again), msg(f));
    }
    wait_idle(&sim).await;
    let view = stream_view(&sim).await;
    let outcomes: Vec<&str> = view["deliveries"]
        .as_array()
        .expect("list")
        .iter()
        .map(|d| d["outcome"].as_str().expect("outcome"))
        .collect();
    assert_eq!(
        &outcomes[..5],
        ["acked", "acked", "refused", "refused", "timed_out"]
    );
    assert_eq!(outcomes.iter().filter(|o| **o == "acked").count(), 5);
}

#[tokio::test]
async fn each_event_goes_to_exactly_one_of_several_connections() {
    let sim = stream_sim(60_000).await;
    let a = connect(&sim).await;
    let b = connect(&sim).await;
    for i in 0..30 {
        add_dept(&sim, &format!("spread{i}")).await;
    }
    // Read and ack on both connections concurrently until every event is acknowledged.
    let reader = |mut ws: Ws| async move {
        let mut seen = Vec::new();
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Text(text) = message {
                let frame: Value = serde_json::from_str(text.as_str()).expect("JSON");
                seen.push(frame["headers"]["eventId"].as_str().expect("id").to_owned());
                send_json(&mut ws, ack(&frame, 200, "SUCCESS")).await;
            }
        }
        seen
    };
    let task_a = tokio::spawn(reader(a));
    let task_b = tokio::spawn(reader(b));
    wait_idle(&sim).await;
    sim.admin(Method::POST, "/stream/drop", None).await;
    let mut all = Vec::new();
    let mut used = 0;
    for task in [task_a, task_b] {
        let seen = task.await.expect("reader");
        used += usize::from(!seen.is_empty());
        all.extend(seen);
    }
    let distinct: BTreeSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 30, "no event sent twice");
    assert_eq!(distinct.len(), 30);
    assert_eq!(used, 2, "events were spread over both connections");
}

#[tokio::test]
async fn ping_must_echo_opaque_and_disconnect_drains_then_closes() {
    let sim = stream_sim(60_000).await;
    sim.admin(
        Method::POST,
        "/stream/settings",
        Some(json!({"disconnect_grace_ms": 100})),
    )
    .await;
    let mut a = connect(&sim).await;
    let (_, pinged) = sim.admin(Method::POST, "/stream/ping", None).await;
    assert_eq!(pinged["pinged"], json!([1]));
    let ping = next_frame(&mut a).await;
    assert_eq!(ping["type"], "SYSTEM");
    assert_eq!(ping["headers"]["topic"], "ping");
    let opaque: Value = serde_json::from_str(ping["data"].as_str().expect("string")).expect("json");
    assert!(opaque["opaque"].is_string());
    send_json(
        &mut a,
        json!({"code": 200, "headers": {"messageId": ping["headers"]["messageId"],
               "contentType": "application/json"}, "message": "OK", "data": ping["data"]}),
    )
    .await;

    let (_, told) = sim
        .admin(
            Method::POST,
            "/stream/disconnect",
            Some(json!({"connection": 1})),
        )
        .await;
    assert_eq!(told["disconnected"], json!([1]));
    let frame = next_frame(&mut a).await;
    assert_eq!(frame["type"], "SYSTEM");
    assert_eq!(frame["headers"]["topic"], "disconnect");
    let reason: Value =
        serde_json::from_str(frame["data"].as_str().expect("string")).expect("json");
    assert!(reason["reason"].is_string());
    // The server closes the TCP connection after the grace period: the stream ends.
    let ended = tokio::time::timeout(PATIENCE, async {
        loop {
            match a.next().await {
                Some(Ok(Message::Text(_))) => {}
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "connection closed after disconnect");

    // A new connection takes the events.
    let mut b = connect(&sim).await;
    add_dept(&sim, "afterdisconnect").await;
    let frame = next_frame(&mut b).await;
    assert_eq!(frame["type"], "EVENT");
    send_json(&mut b, ack(&frame, 200, "SUCCESS")).await;
    wait_idle(&sim).await;
    let view = stream_view(&sim).await;
    assert_eq!(view["pings"][0]["echoed"], true);
    assert_eq!(view["connections"][0]["open"], false);
    assert_eq!(view["connections"][0]["draining"], true);
    assert_eq!(view["connections"][1]["open"], true);
}

#[tokio::test]
async fn drop_closes_at_once_and_unacked_events_survive_for_the_next_connection() {
    let sim = stream_sim(200).await;
    let mut a = connect(&sim).await;
    add_dept(&sim, "droppedone").await;
    let lost = next_frame(&mut a).await;
    let (_, dropped) = sim.admin(Method::POST, "/stream/drop", None).await;
    assert_eq!(dropped["dropped"], json!([1]));
    let end = tokio::time::timeout(PATIENCE, a.next())
        .await
        .expect("ends in time");
    assert!(
        !matches!(end, Some(Ok(Message::Text(_)))),
        "no more frames after a drop"
    );
    let mut b = connect(&sim).await;
    let again = next_frame(&mut b).await;
    assert_eq!(again["headers"]["eventId"], lost["headers"]["eventId"]);
    send_json(&mut b, ack(&again, 200, "SUCCESS")).await;
    wait_idle(&sim).await;
}

#[tokio::test]
async fn http_delivery_is_the_default_and_sends_nothing_by_stream() {
    let sim = Sim::with_org(0, 0).await;
    let (_, settings) = sim.admin(Method::GET, "/stream/settings", None).await;
    assert_eq!(settings["delivery"], "http");
    assert_eq!(settings["ticket_ttl_ms"], 90_000);
    assert_eq!(settings["disconnect_grace_ms"], 10_000);
    let mut ws = connect(&sim).await;
    add_dept(&sim, "httponly").await;
    // Switch Stream on: only events recorded from now on go by Stream.
    sim.admin(
        Method::POST,
        "/stream/settings",
        Some(json!({"delivery": "both", "ping_interval_ms": 0})),
    )
    .await;
    add_dept(&sim, "both").await;
    let frame = next_frame(&mut ws).await;
    let data: Value = serde_json::from_str(frame["data"].as_str().expect("string")).expect("json");
    let state = sim.state().await;
    let both_id = state["departments"]
        .as_array()
        .expect("departments")
        .iter()
        .find(|d| d["name"] == "both")
        .map(|d| d["dept_id"].clone())
        .expect("created");
    assert_eq!(data["deptId"], json!([both_id]));
    send_json(&mut ws, ack(&frame, 200, "SUCCESS")).await;
    wait_idle(&sim).await;
    assert_eq!(
        stream_view(&sim).await["deliveries"]
            .as_array()
            .expect("list")
            .len(),
        1
    );
}

#[tokio::test]
async fn settings_can_be_set_through_the_handle_and_are_validated() {
    use dingtalk_sim::{Delivery, StreamSettingsPatch};
    let sim = Sim::with_org(0, 0).await;
    let now = sim
        .handle
        .set_stream_settings(&StreamSettingsPatch {
            delivery: Some(Delivery::Stream),
            ..Default::default()
        })
        .expect("valid patch");
    assert_eq!(now.delivery, Delivery::Stream);
    let (_, settings) = sim.admin(Method::GET, "/stream/settings", None).await;
    assert_eq!(settings["delivery"], "stream");
    let refused = sim.handle.set_stream_settings(&StreamSettingsPatch {
        duplicate_rate: Some(2.0),
        ..Default::default()
    });
    assert!(refused.is_err());
    let (status, _) = sim
        .admin(
            Method::POST,
            "/stream/settings",
            Some(json!({"redeliver_after_ms": 0})),
        )
        .await;
    assert_eq!(status, 400);
}
