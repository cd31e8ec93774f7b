//! `/_sim/...`: the routes a test or a demo uses to act as a DingTalk administrator, read the
//! simulator's state and change its settings. They need no DingTalk token.
//!
//! Writes here run the very same `Org` operations as the DingTalk API (same fields, same
//! validation, same error codes) and record events the same way; the only differences are that
//! a rejected write answers HTTP 422 (so a test notices it) with the DingTalk `errcode`/`errmsg`
//! body, and that these calls are neither rate limited, faulted, delayed nor counted.
//! The route list is in the crate documentation.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::Handler;
use crate::config::SettingsPatch;
use crate::envelope::{Family, success_body};
use crate::events::Origin;
use crate::gateway::CallStats;
use crate::params::Params;
use crate::state::{Shared, lock};

type SharedState = State<Arc<Shared>>;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/state", get(state))
        .route("/calls", get(calls))
        .route("/calls/log", get(calls_log))
        .route("/calls/reset", post(calls_reset))
        .route("/settings", get(settings).post(settings_update))
        .route("/tokens/expire", post(tokens_expire))
        .route("/events", get(events))
        .route("/depts", post(dept_create))
        .route("/depts/{id}", patch(dept_update).delete(dept_delete))
        .route("/users", post(user_create))
        .route("/users/{userid}", patch(user_update).delete(user_leave))
        .route("/users/{userid}/rehire", post(user_rehire))
        .route("/role-groups", post(group_create))
        .route("/roles", post(role_create))
        .route("/roles/{id}", patch(role_update).delete(role_delete))
        .route("/roles/assign", post(role_assign))
        .route("/roles/unassign", post(role_unassign))
}

/// A 400 answer naming what is wrong (`{"error": ...}`), for every `/_sim` route.
pub(crate) fn bad_request(error: &str) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(json!({"error": error}))).into_response()
}

/// `?timeout_ms=N` of the `/_sim/.../wait` routes.
#[derive(Debug, Deserialize)]
pub(crate) struct WaitQuery {
    /// How long to wait at most (default 10 s).
    timeout_ms: Option<u64>,
}

impl WaitQuery {
    /// The wait asked for, 10 s when not given.
    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.unwrap_or(10_000))
    }
}

/// A 400 answer for a body that is not a JSON object.
pub(crate) fn bad_body() -> Response {
    bad_request("the body must be a JSON object")
}

/// Reads a JSON-object body; an empty body is an empty object.
pub(crate) fn body_params(body: &Bytes) -> Option<Params> {
    if body.trim_ascii().is_empty() {
        return Some(Params::default());
    }
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| Params::from_json(v).ok())
}

/// Runs one operation as the administrator and answers it.
fn admin_op(shared: &Shared, handler: Handler, params: &Params) -> Response {
    match shared.run(|org| handler(org, params), Origin::Admin) {
        Ok(reply) => axum::Json(success_body(Family::Top, reply, None)).into_response(),
        Err(rejection) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({"errcode": rejection.code, "errmsg": rejection.msg})),
        )
            .into_response(),
    }
}

/// Runs an operation whose body is the DingTalk request, plus one field taken from the path.
fn with_body(
    shared: &Shared,
    handler: Handler,
    body: &Bytes,
    path_field: Option<(&str, Value)>,
) -> Response {
    let Some(mut params) = body_params(body) else {
        return bad_body();
    };
    if let Some((name, value)) = path_field {
        params.insert(name, value);
    }
    admin_op(shared, handler, &params)
}

async fn state(State(shared): SharedState) -> Response {
    let state = lock(&shared.org).state_json();
    axum::Json(state).into_response()
}

async fn calls(State(shared): SharedState) -> Response {
    let gate = lock(&shared.gate);
    let mut total = crate::gateway::CallCounts::default();
    for c in gate.stats.by_path.values() {
        total.calls += c.calls;
        total.ok += c.ok;
        total.errors += c.errors;
        total.throttled += c.throttled;
        total.faulted += c.faulted;
    }
    axum::Json(json!({"total": total, "by_path": gate.stats.by_path})).into_response()
}

async fn calls_log(State(shared): SharedState) -> Response {
    let gate = lock(&shared.gate);
    let calls: Vec<_> = gate.log.calls().collect();
    axum::Json(json!({ "calls": calls })).into_response()
}

async fn calls_reset(State(shared): SharedState) -> Response {
    let mut gate = lock(&shared.gate);
    gate.stats = CallStats::default();
    gate.log = crate::call_log::CallLog::default();
    axum::Json(json!({"ok": true})).into_response()
}

async fn settings(State(shared): SharedState) -> Response {
    let settings = lock(&shared.gate).settings.clone();
    axum::Json(settings).into_response()
}

async fn settings_update(State(shared): SharedState, body: Bytes) -> Response {
    let Ok(patch) = serde_json::from_slice::<SettingsPatch>(&body) else {
        return bad_request(
            "expected {qps, latency_ms, fault_rate, token_ttl_secs, slow_answer_ms}",
        );
    };
    let mut gate = lock(&shared.gate);
    match gate.settings.apply(&patch) {
        Ok(()) => axum::Json(gate.settings.clone()).into_response(),
        Err(reason) => bad_request(&reason),
    }
}

async fn tokens_expire(State(shared): SharedState) -> Response {
    lock(&shared.gate).tokens.expire_all();
    axum::Json(json!({"ok": true})).into_response()
}

/// `?after=N` skips the first N events, so a test can read only what its own step caused.
#[derive(Debug, serde::Deserialize)]
struct EventsQuery {
    after: Option<u64>,
}

async fn events(State(shared): SharedState, Query(q): Query<EventsQuery>) -> Response {
    let log = lock(&shared.events);
    let list: Vec<Value> = log
        .since(q.after.unwrap_or(0))
        .iter()
        .map(|e| e.to_json())
        .collect();
    axum::Json(json!({"events": list})).into_response()
}

fn id_value(raw: &str) -> Value {
    raw.parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::String(raw.to_owned()))
}

async fn dept_create(State(shared): SharedState, body: Bytes) -> Response {
    with_body(&shared, |o, p| o.dept_create(p), &body, None)
}

async fn dept_update(State(shared): SharedState, Path(id): Path<String>, body: Bytes) -> Response {
    with_body(
        &shared,
        |o, p| o.dept_update(p),
        &body,
        Some(("dept_id", id_value(&id))),
    )
}

async fn dept_delete(State(shared): SharedState, Path(id): Path<String>) -> Response {
    with_body(
        &shared,
        |o, p| o.dept_delete(p),
        &Bytes::new(),
        Some(("dept_id", id_value(&id))),
    )
}

async fn user_create(State(shared): SharedState, body: Bytes) -> Response {
    with_body(&shared, |o, p| o.user_create(p), &body, None)
}

async fn user_update(
    State(shared): SharedState,
    Path(userid): Path<String>,
    body: Bytes,
) -> Response {
    with_body(
        &shared,
        |o, p| o.user_update(p),
        &body,
        Some(("userid", Value::String(userid))),
    )
}

async fn user_leave(State(shared): SharedState, Path(userid): Path<String>) -> Response {
    with_body(
        &shared,
        |o, p| o.user_delete(p),
        &Bytes::new(),
        Some(("userid", Value::String(userid))),
    )
}

async fn user_rehire(
    State(shared): SharedState,
    Path(userid): Path<String>,
    body: Bytes,
) -> Response {
    with_body(
        &shared,
        |o, p| o.user_rehire(p),
        &body,
        Some(("userid", Value::String(userid))),
    )
}

async fn group_create(State(shared): SharedState, body: Bytes) -> Response {
    with_body(&shared, |o, p| o.role_add_group(p), &body, None)
}

async fn role_create(State(shared): SharedState, body: Bytes) -> Response {
    with_body(&shared, |o, p| o.role_add(p), &body, None)
}

async fn role_update(State(shared): SharedState, Path(id): Path<String>, body: Bytes) -> Response {
    with_body(
        &shared,
        |o, p| o.role_update(p),
        &body,
        Some(("roleId", id_value(&id))),
    )
}

async fn role_delete(State(shared): SharedState, Path(id): Path<String>) -> Response {
    with_body(
        &shared,
        |o, p| o.role_delete(p),
        &Bytes::new(),
        Some(("role_id", id_value(&id))),
    )
}

async fn role_assign(State(shared): SharedState, body: Bytes) -> Response {
    with_body(&shared, |o, p| o.role_add_for_emps(p), &body, None)
}

async fn role_unassign(State(shared): SharedState, body: Bytes) -> Response {
    with_body(&shared, |o, p| o.role_remove_for_emps(p), &body, None)
}
