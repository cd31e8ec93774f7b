//! A small callback receiver, standing in for the binary's `POST /callbacks/dingtalk`: it
//! verifies the signature, decrypts, parses the event, stores it in the inbox (acknowledging
//! only after the store returned, design invariant 1), wakes the applier and answers an
//! encrypted "success". While `up` is false it answers 503, so DingTalk's failed-push list fills.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use callback_crypto::CallbackCrypto;
use dingtalk_proto::events::ContactEvent;
use directory_store::{NewInboxEvent, Store};
use rand::SeedableRng;
use rand::rngs::StdRng;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::Harness;

const TOKEN: &str = "enginetesttoken1";
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

/// The receiving end.
pub struct Receiver {
    crypto: CallbackCrypto,
    store: Store,
    /// Acknowledge business events (true) or answer 503 (false).
    pub up: AtomicBool,
    /// Notified after every stored event (the applier's wake-up).
    pub wake: Arc<Notify>,
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
    if event.kind.event_type() != "check_url" {
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
        rx.wake.notify_one();
    }
    let reply = {
        let mut rng = rx.rng.lock().expect("rng");
        rx.crypto
            .encrypted_reply("success", "1800000000000", "replynonce", &mut *rng)
            .expect("reply")
    };
    Json(serde_json::to_value(reply).expect("reply JSON")).into_response()
}

/// Starts a receiver on port 0 and subscribes it as the simulator's console callback.
pub async fn subscribe(h: &Harness) -> Arc<Receiver> {
    let owner = h.sim.config().client_id.clone();
    let rx = Arc::new(Receiver {
        crypto: CallbackCrypto::new(TOKEN, AES_KEY, &owner).expect("crypto"),
        store: h.store.clone(),
        up: AtomicBool::new(true),
        wake: Arc::new(Notify::new()),
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
    rx
}
