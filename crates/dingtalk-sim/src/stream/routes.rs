//! The two DingTalk routes of Stream mode: registration (`POST /v1.0/gateway/connections/open`)
//! and the WebSocket endpoint (`GET /connect?ticket=…`), plus the task that runs one connection.
//!
//! Registration is anonymous (the credentials are in the body) and answers like the rest of
//! the new API: HTTP 200 `{"endpoint","ticket"}`, or an HTTP error with
//! `{"requestid","code","message"}` — 401 `authFailed` for wrong credentials (observed), 400
//! for a body that is not JSON or lacks a field. The endpoint is built from the request's `Host`,
//! so it is right whatever address the simulator was reached at.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::Query;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::machine::Outgoing;
use crate::envelope::new_api_error;
use crate::state::{Shared, lock};

/// `POST /v1.0/gateway/connections/open`.
pub(crate) async fn open(
    Extension(shared): Extension<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&body) else {
        return new_api_error(
            &shared.request_id(),
            StatusCode::BAD_REQUEST,
            "MissingParameter",
            "body is mandatory",
        );
    };
    let text = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
    let (Some(client_id), Some(client_secret)) = (text("clientId"), text("clientSecret")) else {
        lock(&shared.stream.state).refused += 1;
        return new_api_error(
            &shared.request_id(),
            StatusCode::BAD_REQUEST,
            "MissingParameter",
            "缺少参数 clientId 或 clientSecret",
        );
    };
    if client_id != shared.config.client_id || client_secret != shared.config.client_secret {
        lock(&shared.stream.state).refused += 1;
        return new_api_error(
            &shared.request_id(),
            StatusCode::UNAUTHORIZED,
            "authFailed",
            "鉴权失败",
        );
    }
    let Some(subscriptions) = body
        .get("subscriptions")
        .and_then(Value::as_array)
        .filter(|s| !s.is_empty())
    else {
        lock(&shared.stream.state).refused += 1;
        return new_api_error(
            &shared.request_id(),
            StatusCode::BAD_REQUEST,
            "MissingParameter",
            "缺少参数 subscriptions",
        );
    };
    // EVENT subscriptions only support topic `*`; which events arrive is chosen in the console
    // (here: every contacts event).
    let events = subscriptions.iter().any(|s| {
        s.get("type").and_then(Value::as_str) == Some("EVENT")
            && s.get("topic").and_then(Value::as_str) == Some("*")
    });
    let ua = text("ua").unwrap_or_default();
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return new_api_error(
            &shared.request_id(),
            StatusCode::BAD_REQUEST,
            "MissingParameter",
            "Host header is mandatory",
        );
    };
    let endpoint = format!("ws://{host}/connect");
    let ticket = lock(&shared.stream.state).issue_ticket(shared.clock.now(), events, ua);
    shared.stream.worker.bump();
    axum::Json(json!({"endpoint": endpoint, "ticket": ticket})).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct ConnectQuery {
    ticket: Option<String>,
}

/// `GET /connect?ticket=…`: redeems the ticket and upgrades to a WebSocket.
pub(crate) async fn connect(
    Extension(shared): Extension<Arc<Shared>>,
    Query(q): Query<ConnectQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let redeemed = {
        let mut state = lock(&shared.stream.state);
        q.ticket
            .as_deref()
            .and_then(|t| state.redeem(t, shared.clock.now()))
    };
    shared.stream.worker.bump();
    let Some(ticket) = redeemed else {
        return new_api_error(
            &shared.request_id(),
            StatusCode::UNAUTHORIZED,
            "invalidTicket",
            "ticket is invalid, used or expired",
        );
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let id =
        lock(&shared.stream.state).open(ticket, tx, shared.clock.now(), shared.clock.wall_ms());
    tracing::debug!(id, "stream connection accepted");
    let failed = Arc::clone(&shared);
    let tracker = shared.stream.worker.tracker.clone();
    ws.on_failed_upgrade(move |error| {
        tracing::debug!(%error, id, "stream upgrade failed");
        lock(&failed.stream.state).close(id, "upgrade failed", failed.clock.wall_ms());
    })
    .on_upgrade(move |socket| {
        // Tracked so the simulator's shutdown waits for the connection to be closed.
        tracker.track_future(run_connection(shared, id, socket, rx))
    })
}

/// Runs one connection: writes what the dispatcher and admin routes send, reads acks, and ends
/// on close, error, drop or shutdown (marking the connection closed and waking the dispatcher).
async fn run_connection(
    shared: Arc<Shared>,
    id: u64,
    mut socket: WebSocket,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
) {
    shared.stream.worker.wake();
    let reason = loop {
        tokio::select! {
            () = shared.stream.worker.stop.cancelled() => break "simulator stopped",
            out = rx.recv() => match out {
                Some(Outgoing::Frame(text)) => {
                    if let Err(error) = socket.send(Message::Text(text.into())).await {
                        tracing::debug!(%error, id, "stream send failed");
                        break "send failed";
                    }
                }
                Some(Outgoing::Drop) | None => break "dropped",
                Some(Outgoing::Stall) => {
                    // Hold the socket without polling it (so not even pings are answered)
                    // until told to drop it or stopped.
                    loop {
                        tokio::select! {
                            () = shared.stream.worker.stop.cancelled() => break,
                            out = rx.recv() => if matches!(out, Some(Outgoing::Drop) | None) { break },
                        }
                    }
                    break "stalled";
                }
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let due = lock(&shared.stream.state).on_upstream(id, text.as_str(), shared.clock.now(), shared.clock.wall_ms());
                    shared.stream.worker.bump();
                    // Only a duplicate to send makes anything due sooner.
                    if due {
                        shared.stream.worker.wake();
                    }
                }
                Some(Ok(Message::Close(_))) | None => break "closed by client",
                Some(Err(error)) => {
                    tracing::debug!(%error, id, "stream receive failed");
                    break "receive failed";
                }
                // WebSocket pings are answered by the library; binary frames mean nothing here.
                Some(Ok(_)) => {}
            },
        }
    };
    lock(&shared.stream.state).close(id, reason, shared.clock.wall_ms());
    shared.stream.worker.bump();
    shared.stream.worker.wake();
    tracing::debug!(id, reason, "stream connection closed");
}
