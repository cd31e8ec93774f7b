//! Events delivered the way DingTalk delivers them: the simulator pushes encrypted, signed
//! callbacks to a small receiver in this test (verify, decrypt, `inbox_put`, answer an
//! encrypted "success" — what the binary's callback route does), and, when the receiver is
//! down, DingTalk's failed-push list is read back by catch-up.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use callback_crypto::CallbackCrypto;
use common::{Harness, assert_converged};
use dingtalk_proto::events::ContactEvent;
use dingtalk_sim::SimConfig;
use directory_store::{NewInboxEvent, Store};
use rand::SeedableRng;
use rand::rngs::StdRng;
use reqwest::Method;
use serde_json::{Value, json};
use sync_engine::apply::{Applier, ApplyOptions};
use sync_engine::catchup::catch_up;
use sync_engine::import::{self, ImportOptions, NoProgress};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "enginetesttoken1";
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

/// The receiving end: acknowledges (after storing) while `up`, answers 503 otherwise.
struct Receiver {
    crypto: CallbackCrypto,
    store: Store,
    up: AtomicBool,
    rng: std::sync::Mutex<StdRng>,
}

async fn receive(
    State(rx): State<Arc<Receiver>>,
    Query(query): Query<HashMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    let encrypt = body["encrypt"].as_str().unwrap_or_default();
    let signature = query
        .get("signature")
        .or_else(|| query.get("msg_signature"))
        .map_or("", String::as_str);
    let timestamp = query.get("timestamp").map_or("", String::as_str);
    let nonce = query.get("nonce").map_or("", String::as_str);
    if rx
        .crypto
        .verify_signature(signature, timestamp, nonce, encrypt)
        .is_err()
    {
        return (axum::http::StatusCode::FORBIDDEN, "bad signature").into_response();
    }
    let Ok(plaintext) = rx.crypto.decrypt(encrypt) else {
        return (axum::http::StatusCode::BAD_REQUEST, "bad ciphertext").into_response();
    };
    let Ok(event) = ContactEvent::from_http_json(&plaintext) else {
        return (axum::http::StatusCode::BAD_REQUEST, "bad event").into_response();
    };
    let is_check = event.kind.event_type() == "check_url";
    if !is_check {
        if !rx.up.load(Ordering::SeqCst) {
            return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
        }
        let key = event
            .event_id
            .clone()
            .unwrap_or_else(|| format!("plain:{plaintext}"));
        rx.store
            .inbox_put(NewInboxEvent {
                dedupe_key: key,
                event_type: event.kind.event_type().to_owned(),
                payload_json: plaintext,
                received_at_ms: 1,
            })
            .await
            .expect("inbox_put");
    }
    let reply = {
        let mut rng = rx.rng.lock().expect("rng");
        rx.crypto
            .encrypted_reply("success", "1800000000000", "replynonce", &mut *rng)
            .expect("reply")
    };
    Json(serde_json::to_value(reply).expect("reply JSON")).into_response()
}

/// Imports the simulator's org, subscribes a receiver as the console callback, and returns
/// the receiver with an applier.
async fn subscribed() -> (Harness, Arc<Receiver>, Applier) {
    let h = Harness::start(SimConfig {
        users: 30,
        depts: 4,
        qps: 0,
        ..SimConfig::default()
    })
    .await;
    import::import(
        &h.ctx,
        &ImportOptions::default(),
        &NoProgress,
        &CancellationToken::new(),
    )
    .await
    .expect("import");
    let owner = h.sim.config().client_id.clone();
    let rx = Arc::new(Receiver {
        crypto: CallbackCrypto::new(TOKEN, AES_KEY, &owner).expect("crypto"),
        store: h.store.clone(),
        up: AtomicBool::new(true),
        rng: std::sync::Mutex::new(StdRng::seed_from_u64(3)),
    });
    let app = axum::Router::new()
        .route("/callbacks/dingtalk", post(receive))
        .with_state(Arc::clone(&rx));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/callbacks/dingtalk",
        listener.local_addr().expect("addr")
    );
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("receiver serves");
    });
    h.admin(
        Method::POST,
        "/callback",
        json!({"url": url, "token": TOKEN, "aes_key": AES_KEY}),
    )
    .await;
    let applier = Applier::new(
        h.ctx.clone(),
        ApplyOptions {
            rng_seed: Some(2),
            ..ApplyOptions::default()
        },
    );
    (h, rx, applier)
}

async fn changes(h: &Harness) {
    let state = h.state().await;
    let user = |i: usize| {
        state["users"][i]["userid"]
            .as_str()
            .expect("userid")
            .to_owned()
    };
    let dept = state["departments"][1]["dept_id"]
        .as_i64()
        .expect("dept_id");
    h.admin(
        Method::POST,
        "/users",
        json!({"userid": "pushed1", "name": "推送", "mobile": "13600000001",
               "dept_id_list": dept.to_string(), "manager_userid": user(1)}),
    )
    .await;
    h.admin(
        Method::PATCH,
        &format!("/users/{}", user(2)),
        json!({"title": "经理"}),
    )
    .await;
    h.admin(Method::DELETE, &format!("/users/{}", user(3)), json!({}))
        .await;
    h.admin(
        Method::PATCH,
        &format!("/depts/{dept}"),
        json!({"name": "推送部"}),
    )
    .await;
}

async fn wait_idle(h: &Harness) {
    assert!(
        h.sim
            .wait_pushes_idle(std::time::Duration::from_secs(60))
            .await,
        "pushes did not settle"
    );
}

#[tokio::test]
async fn pushed_events_reach_the_directory() {
    let (h, _rx, applier) = subscribed().await;
    changes(&h).await;
    wait_idle(&h).await;
    let stats = applier.drain().await.expect("drain");
    assert!(stats.events >= 4, "{stats:?}");
    assert_eq!(stats.dead + stats.retried, 0, "{stats:?}");
    assert_converged(&h).await;
}

#[tokio::test]
async fn events_missed_while_down_are_caught_up_from_the_failed_list() {
    let (h, rx, applier) = subscribed().await;
    h.admin(
        Method::POST,
        "/push-settings",
        json!({"retry_scale": 0.001}),
    )
    .await;
    rx.up.store(false, Ordering::SeqCst);
    changes(&h).await;
    wait_idle(&h).await;
    assert_eq!(
        h.store.inbox_depth().await.unwrap().pending,
        0,
        "nothing arrived"
    );
    let report = catch_up(&h.ctx).await.expect("catch-up");
    assert!(report.stored >= 4, "{report:?}");
    let stats = applier.drain().await.expect("drain");
    assert_eq!(stats.dead + stats.retried, 0, "{stats:?}");
    assert_converged(&h).await;
    // The list was emptied by reading it.
    let again = catch_up(&h.ctx).await.expect("catch-up");
    assert_eq!(again.stored, 0);
}
