//! `/_sim/stream/...`: what a test or a demo uses to steer Stream mode and to read what happened
//! on it (connections, every delivery attempt with its ack, pings).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::StreamSettingsPatch;
use super::dispatcher::wait_idle;
use super::machine::Outgoing;
use crate::admin::{WaitQuery, bad_request};
use crate::state::{Shared, lock};

type SharedState = State<Arc<Shared>>;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/stream", get(view))
        .route("/stream/settings", get(settings_get).post(settings_set))
        .route("/stream/disconnect", post(disconnect))
        .route("/stream/drop", post(drop_conns))
        .route("/stream/stall", post(stall))
        .route("/stream/ping", post(ping))
        .route("/stream/tickets/expire", post(tickets_expire))
        .route("/stream/wait", post(wait))
}

/// `{"connection": id}` picks one connection; an empty body means all of them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Target {
    connection: Option<u64>,
}

fn target(body: &Bytes) -> Result<Target, Box<Response>> {
    if body.trim_ascii().is_empty() {
        return Ok(Target::default());
    }
    serde_json::from_slice(body)
        .map_err(|_| Box::new(bad_request("expected {\"connection\": id} or no body")))
}

async fn view(State(shared): SharedState) -> Response {
    let body = lock(&shared.stream.state).to_json();
    axum::Json(body).into_response()
}

async fn settings_get(State(shared): SharedState) -> Response {
    let settings = lock(&shared.stream.state).settings.clone();
    axum::Json(settings).into_response()
}

async fn settings_set(State(shared): SharedState, body: Bytes) -> Response {
    let Ok(patch) = serde_json::from_slice::<StreamSettingsPatch>(&body) else {
        return bad_request(
            "expected {delivery, redeliver_after_ms, disconnect_grace_ms, ticket_ttl_ms, ping_interval_ms, disconnect_after_ms, duplicate_rate}",
        );
    };
    match super::dispatcher::apply_settings(&shared, &patch) {
        Ok(settings) => axum::Json(settings).into_response(),
        Err(reason) => bad_request(&reason),
    }
}

/// Sends `disconnect` and closes the TCP connection after the grace period.
async fn disconnect(State(shared): SharedState, body: Bytes) -> Response {
    let target = match target(&body) {
        Ok(t) => t,
        Err(response) => return *response,
    };
    let told = lock(&shared.stream.state).disconnect(
        target.connection,
        shared.clock.now(),
        shared.clock.wall_ms(),
    );
    // The dispatcher closes them when the grace is over.
    shared.stream.worker.wake();
    axum::Json(json!({"disconnected": told})).into_response()
}

/// Closes the TCP connection at once, without a close frame.
async fn drop_conns(State(shared): SharedState, body: Bytes) -> Response {
    let target = match target(&body) {
        Ok(t) => t,
        Err(response) => return *response,
    };
    let dropped = lock(&shared.stream.state).cut(target.connection, || Outgoing::Drop);
    axum::Json(json!({"dropped": dropped})).into_response()
}

/// Leaves the connection open but silent in both directions, as a lost network does.
async fn stall(State(shared): SharedState, body: Bytes) -> Response {
    let target = match target(&body) {
        Ok(t) => t,
        Err(response) => return *response,
    };
    let stalled = lock(&shared.stream.state).cut(target.connection, || Outgoing::Stall);
    axum::Json(json!({"stalled": stalled})).into_response()
}

/// Sends a SYSTEM ping now.
async fn ping(State(shared): SharedState, body: Bytes) -> Response {
    let target = match target(&body) {
        Ok(t) => t,
        Err(response) => return *response,
    };
    let pinged = lock(&shared.stream.state).ping(target.connection, shared.clock.wall_ms());
    axum::Json(json!({"pinged": pinged})).into_response()
}

/// Every unused ticket stops working now.
async fn tickets_expire(State(shared): SharedState) -> Response {
    let expired = {
        let mut state = lock(&shared.stream.state);
        let n = state.tickets.len();
        state.tickets.clear();
        n
    };
    axum::Json(json!({"expired": expired})).into_response()
}

/// Answers once every recorded event has been acknowledged over Stream (or the timeout).
async fn wait(State(shared): SharedState, Query(q): Query<WaitQuery>) -> Response {
    let idle = wait_idle(&shared, q.timeout()).await;
    axum::Json(json!({"idle": idle})).into_response()
}
