//! A minimal DingTalk callback receiver for tests: verifies the signature, decrypts, and either
//! acknowledges with the encrypted `success` or refuses business events (so that they end up in
//! DingTalk's failed list, which the client's catch-up endpoint reads).

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{
    Json,
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::post,
};
use callback_crypto::CallbackCrypto;
use rand::{SeedableRng, rngs::StdRng};
use serde_json::Value;

/// The signing token the tests register.
pub const TOKEN: &str = "clienttesttoken1";
/// The 43-character AES key the tests register.
pub const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

pub struct Receiver {
    crypto: CallbackCrypto,
    /// Acknowledge business events (check_url is always acknowledged).
    pub ack_events: AtomicBool,
    /// Every decrypted event, in arrival order.
    pub events: Mutex<Vec<Value>>,
    rng: Mutex<StdRng>,
}

impl Receiver {
    /// Starts a receiver on a port-0 listener; frames must end in `owner_key`.
    pub async fn start(owner_key: &str) -> (Arc<Self>, String) {
        let rx = Arc::new(Self {
            crypto: CallbackCrypto::new(TOKEN, AES_KEY, owner_key).expect("valid test crypto"),
            ack_events: AtomicBool::new(true),
            events: Mutex::new(Vec::new()),
            rng: Mutex::new(StdRng::seed_from_u64(11)),
        });
        let app = axum::Router::new()
            .route("/cb", post(receive))
            .with_state(Arc::clone(&rx));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind port 0");
        let url = format!("http://{}/cb", listener.local_addr().expect("local addr"));
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("receiver serves");
        });
        (rx, url)
    }
}

async fn receive(
    State(rx): State<Arc<Receiver>>,
    Query(query): Query<HashMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    let param = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| query.get(*n).cloned())
            .unwrap_or_default()
    };
    let signature = param(&["signature", "msg_signature"]);
    let timestamp = param(&["timestamp", "timeStamp"]);
    let nonce = param(&["nonce"]);
    let encrypt = body["encrypt"].as_str().unwrap_or_default().to_owned();
    if rx
        .crypto
        .verify_signature(&signature, &timestamp, &nonce, &encrypt)
        .is_err()
    {
        return (StatusCode::FORBIDDEN, "bad signature").into_response();
    }
    let Ok(plain) = rx.crypto.decrypt(&encrypt) else {
        return (StatusCode::BAD_REQUEST, "undecryptable").into_response();
    };
    let event: Value = serde_json::from_str(&plain).unwrap_or(Value::Null);
    let is_check = event["EventType"] == "check_url";
    rx.events.lock().expect("events lock").push(event);
    if !is_check && !rx.ack_events.load(Ordering::SeqCst) {
        return (StatusCode::INTERNAL_SERVER_ERROR, "refusing").into_response();
    }
    let mut rng = rx.rng.lock().expect("rng lock");
    match rx
        .crypto
        .encrypted_reply("success", &timestamp, "replynonce", &mut *rng)
    {
        Ok(reply) => Json(reply).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "cannot reply").into_response(),
    }
}
