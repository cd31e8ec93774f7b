//! `/_sim` routes for pushes: the console-configured callback, push behaviour, the record of
//! every push, `check_url` on demand, and a wait for the pusher to be idle.
//!
//! The console-configured callback ("事件订阅 → HTTP推送" in DingTalk's developer console)
//! encrypts with the Client ID as owner key; saving it fires `check_url` and fails unless the
//! URL acknowledges, like the console's "save" button.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::PushSettingsPatch;
use super::pusher::{check_url, wait_idle};
use super::subscription::{ALL_TAGS, Kind, build_subscription};
use crate::admin::{WaitQuery, bad_body, bad_request, body_params};
use crate::state::{Shared, lock};

type SharedState = State<Arc<Shared>>;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/callback",
            get(callback_get).post(callback_set).delete(callback_delete),
        )
        .route("/callback/check_url", post(callback_check))
        .route("/push-settings", get(settings_get).post(settings_set))
        .route("/pushes", get(pushes))
        .route("/pushes/wait", post(pushes_wait))
}

fn rejected(code: i64, msg: &str) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        axum::Json(json!({"errcode": code, "errmsg": msg})),
    )
        .into_response()
}

async fn callback_get(State(shared): SharedState) -> Response {
    let state = lock(&shared.hub.state);
    let view = state
        .subscription
        .as_ref()
        .map(|s| s.public_json())
        .unwrap_or(Value::Null);
    axum::Json(json!({"callback": view})).into_response()
}

/// Body: `{"url", "token", "aes_key", "call_back_tag"?: [...]}` (all tags when omitted).
async fn callback_set(State(shared): SharedState, body: Bytes) -> Response {
    let Some(p) = body_params(&body) else {
        return bad_body();
    };
    let read = || -> Result<_, crate::error::Rejection> {
        let tags = p
            .array_list("call_back_tag")?
            .unwrap_or_else(|| ALL_TAGS.iter().map(|t| (*t).to_owned()).collect());
        Ok((
            tags,
            p.req_str("url")?,
            p.req_str("token")?,
            p.req_str("aes_key")?,
        ))
    };
    let (tags, url, token, aes_key) = match read() {
        Ok(v) => v,
        Err(r) => return rejected(r.code, &r.msg),
    };
    if lock(&shared.hub.state)
        .subscription
        .as_ref()
        .is_some_and(|s| s.kind == Kind::Registered)
    {
        return rejected(71006, "回调地址已经注册");
    }
    let sub = match build_subscription(
        Kind::Console,
        &url,
        tags,
        &token,
        &aes_key,
        &shared.config.client_id,
    ) {
        Ok(sub) => sub,
        Err(r) => return rejected(r.code, &r.msg),
    };
    if let Err(reason) = check_url(&shared, &sub).await {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({"errcode": 71009, "errmsg": "返回文本非success", "reason": reason})),
        )
            .into_response();
    }
    let view = sub.public_json();
    let mut state = lock(&shared.hub.state);
    if state
        .subscription
        .as_ref()
        .is_some_and(|s| s.kind == Kind::Registered)
    {
        return rejected(71006, "回调地址已经注册");
    }
    state.subscription = Some(Arc::new(sub));
    axum::Json(json!({"callback": view})).into_response()
}

async fn callback_delete(State(shared): SharedState) -> Response {
    let removed = lock(&shared.hub.state).subscription.take().is_some();
    axum::Json(json!({"removed": removed})).into_response()
}

async fn callback_check(State(shared): SharedState) -> Response {
    let sub = lock(&shared.hub.state).subscription.clone();
    let Some(sub) = sub else {
        return rejected(71007, "回调未注册");
    };
    match check_url(&shared, &sub).await {
        Ok(()) => axum::Json(json!({"acked": true})).into_response(),
        Err(reason) => axum::Json(json!({"acked": false, "error": reason})).into_response(),
    }
}

async fn settings_get(State(shared): SharedState) -> Response {
    let settings = lock(&shared.hub.state).settings.clone();
    axum::Json(settings).into_response()
}

async fn settings_set(State(shared): SharedState, body: Bytes) -> Response {
    let Ok(patch) = serde_json::from_slice::<PushSettingsPatch>(&body) else {
        return bad_request(
            "expected {dialect, msg_signature, timeout_ms, retry_scale, duplicate_rate, delay_ms, reorder_window_ms}",
        );
    };
    let mut state = lock(&shared.hub.state);
    match state.settings.apply(&patch) {
        Ok(()) => axum::Json(state.settings.clone()).into_response(),
        Err(reason) => bad_request(&reason),
    }
}

async fn pushes(State(shared): SharedState) -> Response {
    let state = lock(&shared.hub.state);
    axum::Json(json!({
        "pushes": state.records,
        "in_flight": state.in_flight,
        "failed_unread": state.failed.len(),
    }))
    .into_response()
}

/// Answers once every recorded event has been pushed to a final outcome (or the timeout).
async fn pushes_wait(State(shared): SharedState, Query(q): Query<WaitQuery>) -> Response {
    let idle = wait_idle(&shared, q.timeout()).await;
    axum::Json(json!({"idle": idle})).into_response()
}
