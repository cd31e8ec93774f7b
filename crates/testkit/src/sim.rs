//! The simulator in-process, on a port-0 listener, and its `/_sim` administrator routes.
//!
//! Why in-process and on port 0: tests run in parallel, so a fixed port would collide; and an
//! in-process simulator starts in milliseconds and stops with the test. Tests that need the
//! simulator as a separate program run `dingsync sim` themselves.

use dingtalk_sim::{SimConfig, SimHandle};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Starts a simulator with `config` on `127.0.0.1:0`.
pub async fn start(config: SimConfig) -> SimHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind port 0");
    dingtalk_sim::start(config, listener)
        .await
        .expect("simulator starts")
}

/// Starts a simulator whose org has `users` people in `depts` departments, generated from
/// `seed`, with the default settings otherwise.
pub async fn start_org(users: usize, depts: usize, seed: u64) -> SimHandle {
    start(SimConfig {
        users,
        depts,
        seed,
        ..SimConfig::default()
    })
    .await
}

/// Sends `method path` (a path below the simulator's base URL, e.g. `/_sim/state`) with an
/// optional JSON body; returns the status and the JSON answer (`null` when it is not JSON).
pub async fn request(
    http: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = http.request(method.clone(), format!("{base}{path}"));
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Like [`request`], failing the test on anything but 2xx; returns the JSON answer.
pub async fn call(
    http: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Value {
    let (status, answer) = request(http, base, method.clone(), path, body).await;
    assert!(status.is_success(), "{method} {path}: {status} {answer}");
    answer
}

/// `GET /_sim/state`: the simulator's whole org.
pub async fn state(http: &reqwest::Client, base: &str) -> Value {
    call(http, base, Method::GET, "/_sim/state", None).await
}

/// An access token from the simulator's legacy `GET /gettoken`, with its own credentials.
pub async fn fetch_token(http: &reqwest::Client, sim: &SimHandle) -> String {
    let config = sim.config();
    let body: Value = http
        .get(format!("{}/gettoken", sim.base_url()))
        .query(&[
            ("appkey", config.client_id.as_str()),
            ("appsecret", config.client_secret.as_str()),
        ])
        .send()
        .await
        .expect("gettoken answers")
        .json()
        .await
        .expect("gettoken answers JSON");
    assert_eq!(body["errcode"], 0, "{body}");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}
