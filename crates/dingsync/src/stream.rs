//! The Stream-mode event receiver: an outbound WebSocket to DingTalk instead of a public
//! callback URL (`dingtalk-api.md` §7), for deployments that DingTalk cannot reach.
//!
//! One task ([`run`]) loops over *sessions*. A session registers (`POST
//! /v1.0/gateway/connections/open` with the client id and secret → endpoint + ticket; tickets
//! are single use and live 90 s, so every session registers afresh), opens the WebSocket, and
//! then handles frames one at a time:
//! - SYSTEM `ping` → answered with code 200 echoing the `data` (its `opaque`);
//! - SYSTEM `disconnect` (DingTalk load balancing) → the session ends cleanly and the next one
//!   starts at once, before DingTalk closes the old TCP connection 10 s later;
//! - EVENT → parsed with [`ContactEvent::from_stream`], stored in the inbox, and only then
//!   acknowledged (invariant 1). If the store fails the ack says `LATER`, so DingTalk sends the
//!   event again; a crash between storing and acking makes DingTalk redeliver, and the dedupe
//!   key drops the copy. The key is [`ContactEvent::dedupe_key`] (type, ids, event time) exactly
//!   as the HTTP receiver and catch-up build it, so an event that arrives both ways, at two
//!   instances or also through the failed-push list is stored once.
//!
//! Frames are handled strictly in order and a shutdown is only noticed between frames, so an
//! event is never acked without being stored, nor stored and then left unanswered by choice.
//!
//! A session that fails (registration refused, network loss, a connection dropped without
//! `disconnect`, a keepalive ping left unanswered) is followed by exponential backoff with
//! jitter ([`Backoff`]); the count resets once a session has connected. The state (connecting /
//! connected / backing off, with the last error) is published on a `watch` channel for
//! `/readyz` and `dingsync status`, and as `dingsync_stream_*` metrics.
//!
//! What goes into the inbox is the format the inbox worker reads
//! (`sync_engine::apply::parse_inbox_event`): `{"stream": {"headers": {eventId, eventType,
//! eventCorpId, eventBornTime}, "data": "<the data string as it arrived>"}}`. An event whose
//! fields cannot be parsed is stored all the same (the worker's parse fails again and
//! dead-letters it, visibly) rather than refused for ever or dropped.

use std::fmt;
use std::time::Duration;

use dingtalk_proto::events::{ContactEvent, StreamEventHeaders};
use directory_store::{InboxPut, NewInboxEvent, Store};
use futures::{SinkExt as _, StreamExt as _};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;

/// The registration path on DingTalk's new API host.
const OPEN_PATH: &str = "/v1.0/gateway/connections/open";

pub use crate::clock::{Clock, IntoClock, SharedClock, system_clock};
use sync_engine::error_chain;

/// Exponential backoff with jitter between failed sessions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The wait after the first failure (before jitter).
    pub initial: Duration,
    /// The longest wait (before jitter).
    pub max: Duration,
    /// How much each further failure multiplies the wait.
    pub multiplier: f64,
}

impl Default for Backoff {
    /// 1 s doubling to 60 s: the Go SDK's ceiling, with a shorter start because one failed
    /// session (often a `disconnect` race) is common and cheap to retry.
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            multiplier: 2.0,
        }
    }
}

impl Backoff {
    /// The wait after `failures` consecutive failures (≥ 1): the capped exponential value,
    /// jittered uniformly within its upper half so that many instances restarted together do
    /// not reconnect in step, while the wait never drops below half the schedule.
    pub fn delay(&self, failures: u32, rng: &mut impl Rng) -> Duration {
        let exponent = i32::try_from(failures.saturating_sub(1)).unwrap_or(i32::MAX);
        let base = self.initial.as_secs_f64() * self.multiplier.max(1.0).powi(exponent);
        let capped = base.min(self.max.as_secs_f64()).max(0.0);
        if capped <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(rng.gen_range(capped / 2.0..=capped))
    }
}

/// What the stream client needs to know.
#[derive(Clone)]
pub struct StreamConfig {
    /// DingTalk's new API host, where registration lives (`https://api.dingtalk.com`; the
    /// simulator's base URL locally).
    pub api_base_url: String,
    /// The app's Client ID (AppKey).
    pub client_id: String,
    /// The app's Client Secret (AppSecret); never printed.
    pub client_secret: String,
    /// Sent as `ua` when registering, so DingTalk's side can tell clients apart.
    pub ua: String,
    /// Sent as `localIp` when registering (informational).
    pub local_ip: Option<String>,
    /// Waits between failed sessions.
    pub backoff: Backoff,
    /// With no frame for this long the client sends a WebSocket ping (Go SDK: 120 s).
    pub idle_timeout: Duration,
    /// A connection that answers nothing this long after our ping is given up (Go SDK: 5 s).
    pub pong_timeout: Duration,
    /// Limit on registering and on opening the WebSocket.
    pub connect_timeout: Duration,
}

impl StreamConfig {
    /// Defaults for everything but where and who.
    pub fn new(api_base_url: &str, client_id: &str, client_secret: &str) -> Self {
        Self {
            api_base_url: api_base_url.trim_end_matches('/').to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            ua: format!("dingsync/{}", env!("CARGO_PKG_VERSION")),
            local_ip: None,
            backoff: Backoff::default(),
            idle_timeout: Duration::from_secs(120),
            pong_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

impl fmt::Debug for StreamConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamConfig")
            .field("api_base_url", &self.api_base_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("ua", &self.ua)
            .field("local_ip", &self.local_ip)
            .field("backoff", &self.backoff)
            .field("idle_timeout", &self.idle_timeout)
            .field("pong_timeout", &self.pong_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// The new-API host that belongs to a legacy-API base URL: `https://oapi.dingtalk.com` →
/// `https://api.dingtalk.com` (where Stream registration lives); any other URL (the simulator,
/// a proxy) serves both and is returned unchanged.
pub fn api_base_for(oapi_base_url: &str) -> String {
    let trimmed = oapi_base_url.trim_end_matches('/');
    match reqwest::Url::parse(trimmed) {
        Ok(url) if url.host_str() == Some("oapi.dingtalk.com") => {
            "https://api.dingtalk.com".to_owned()
        }
        _ => trimmed.to_owned(),
    }
}

/// Where the client stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum StreamState {
    /// Not started yet.
    Starting,
    /// Asking DingTalk for a ticket.
    Registering,
    /// Opening the WebSocket.
    Connecting,
    /// Receiving events since this time (Unix ms).
    Connected { since_ms: i64 },
    /// Waiting before the next attempt, after `failures` failed sessions in a row.
    BackingOff { retry_at_ms: i64, failures: u32 },
    /// Shut down.
    Stopped,
}

/// The client's state and counters, published for readiness, metrics and `dingsync status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamStatus {
    pub state: StreamState,
    /// Why the last session failed (the whole cause chain; never a secret).
    pub last_error: Option<String>,
    /// WebSocket connections opened so far.
    pub connections: u64,
    /// Events stored in the inbox.
    pub events_stored: u64,
    /// Events that were already in the inbox (redeliveries, the other channel, another
    /// instance).
    pub events_duplicate: u64,
    /// Events stored raw because they could not be parsed.
    pub events_malformed: u64,
    /// Events answered `LATER` because the store failed.
    pub events_deferred: u64,
    /// When the last event was received (Unix ms).
    pub last_event_at_ms: Option<i64>,
}

impl Default for StreamStatus {
    fn default() -> Self {
        Self {
            state: StreamState::Starting,
            last_error: None,
            connections: 0,
            events_stored: 0,
            events_duplicate: 0,
            events_malformed: 0,
            events_deferred: 0,
            last_event_at_ms: None,
        }
    }
}

impl StreamStatus {
    /// Ready means events can arrive: a connection is open.
    pub fn is_ready(&self) -> bool {
        matches!(self.state, StreamState::Connected { .. })
    }
}

/// Why a session ended badly. Every variant is retried with backoff; the distinction is for
/// logs, metrics and the status line.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The registration request did not get an answer.
    #[error("stream registration request failed")]
    Register(#[source] reqwest::Error),
    /// DingTalk answered the registration with an error (401 `authFailed`: wrong client id or
    /// secret).
    #[error("stream registration refused: HTTP {status}, code {code}: {message}")]
    RegisterRefused {
        status: u16,
        code: String,
        message: String,
    },
    /// The registration answer was not `{"endpoint","ticket"}`.
    #[error("stream registration answer is not {{endpoint, ticket}}")]
    RegisterAnswer(#[source] reqwest::Error),
    /// The endpoint is not a URL.
    #[error("stream endpoint {endpoint:?} is not a URL")]
    Endpoint {
        endpoint: String,
        #[source]
        source: UrlError,
    },
    /// Registering or opening the WebSocket took longer than `connect_timeout`.
    #[error("timed out after {0:?} opening the stream connection")]
    ConnectTimeout(Duration),
    /// The WebSocket handshake failed (a refused ticket is an HTTP 401 here).
    #[error("opening the stream WebSocket failed")]
    Connect(#[source] tungstenite::Error),
    /// Reading or writing the open WebSocket failed.
    #[error("the stream WebSocket failed")]
    Socket(#[source] tungstenite::Error),
    /// DingTalk closed the connection without `disconnect` first.
    #[error("DingTalk closed the stream connection")]
    Closed,
    /// Nothing came back after a keepalive ping.
    #[error("no answer to a keepalive ping within {0:?}")]
    Keepalive(Duration),
}

/// The URL parser's error, named through reqwest so no extra dependency is needed.
type UrlError = <reqwest::Url as std::str::FromStr>::Err;

/// How a session ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Shutdown was requested.
    Shutdown,
    /// DingTalk sent `disconnect`: reconnect now.
    Disconnect,
}

/// Runs the stream client until `shutdown`, publishing its state on `status`, with the
/// service's `clock` and an entropy-seeded RNG for jitter; see [`run_with`] to pass the RNG in.
pub async fn run(
    cfg: StreamConfig,
    store: Store,
    shutdown: CancellationToken,
    status: watch::Sender<StreamStatus>,
    clock: SharedClock,
) {
    run_with(cfg, store, shutdown, status, clock, StdRng::from_entropy()).await;
}

/// [`run`] with the clock and the jitter RNG passed in.
pub async fn run_with(
    cfg: StreamConfig,
    store: Store,
    shutdown: CancellationToken,
    status: watch::Sender<StreamStatus>,
    clock: impl IntoClock,
    rng: StdRng,
) {
    let http = match reqwest::Client::builder()
        .timeout(cfg.connect_timeout)
        .build()
    {
        Ok(http) => http,
        Err(error) => {
            // Only a broken TLS backend fails here; nothing can be received without it.
            tracing::error!(error = %error_chain(&error), "stream client cannot build its HTTP client");
            status.send_modify(|s| {
                s.state = StreamState::Stopped;
                s.last_error = Some(error_chain(&error));
            });
            return;
        }
    };
    let mut client = Client {
        cfg,
        store,
        http,
        status,
        clock: clock.into_clock(),
        rng,
        shutdown,
    };
    client.run().await;
}

/// One running client.
struct Client {
    cfg: StreamConfig,
    /// Where events go before they are acked.
    store: Store,
    /// For registration.
    http: reqwest::Client,
    /// Published state.
    status: watch::Sender<StreamStatus>,
    /// `received_at_ms` and status times.
    clock: SharedClock,
    /// Backoff jitter.
    rng: StdRng,
    shutdown: CancellationToken,
}

/// What to do after one frame.
enum Step {
    /// Send this answer (if any) and go on.
    Reply(Option<String>),
    /// DingTalk asked us to reconnect.
    Disconnect,
}

impl Client {
    async fn run(&mut self) {
        let mut failures: u32 = 0;
        while !self.shutdown.is_cancelled() {
            let connections_before = self.status.borrow().connections;
            let outcome = self.session().await;
            metrics::gauge!("dingsync_stream_connected").set(0.0);
            let connected = self.status.borrow().connections > connections_before;
            if connected {
                failures = 0;
            }
            match outcome {
                Ok(End::Shutdown) => break,
                Ok(End::Disconnect) => {
                    metrics::counter!("dingsync_stream_disconnects_total", "reason" => "server")
                        .increment(1);
                    tracing::info!("DingTalk asked the stream client to reconnect");
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let text = error_chain(&error);
                    metrics::counter!("dingsync_stream_disconnects_total", "reason" => "error")
                        .increment(1);
                    let wait = self.cfg.backoff.delay(failures, &mut self.rng);
                    let retry_at_ms = self
                        .clock
                        .now_ms()
                        .saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
                    tracing::warn!(error = %text, failures, ?wait, "stream session failed; backing off");
                    self.status.send_modify(|s| {
                        s.state = StreamState::BackingOff {
                            retry_at_ms,
                            failures,
                        };
                        s.last_error = Some(text);
                    });
                    tokio::select! {
                        () = self.shutdown.cancelled() => break,
                        () = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
        self.status.send_modify(|s| s.state = StreamState::Stopped);
        tracing::info!("stream client stopped");
    }

    fn set_state(&self, state: StreamState) {
        self.status.send_modify(|s| s.state = state);
    }

    /// Registers, connects and serves one connection.
    async fn session(&mut self) -> Result<End, StreamError> {
        self.set_state(StreamState::Registering);
        let (endpoint, ticket) = tokio::select! {
            () = self.shutdown.cancelled() => return Ok(End::Shutdown),
            registered = self.register() => registered?,
        };
        let mut url = reqwest::Url::parse(&endpoint).map_err(|source| StreamError::Endpoint {
            endpoint: endpoint.clone(),
            source,
        })?;
        url.query_pairs_mut().append_pair("ticket", &ticket);
        self.set_state(StreamState::Connecting);
        let limit = self.cfg.connect_timeout;
        let connecting =
            tokio::time::timeout(limit, tokio_tungstenite::connect_async(url.as_str()));
        let (mut ws, _) = tokio::select! {
            () = self.shutdown.cancelled() => return Ok(End::Shutdown),
            opened = connecting => opened
                .map_err(|_| StreamError::ConnectTimeout(limit))?
                .map_err(StreamError::Connect)?,
        };
        let since_ms = self.clock.now_ms();
        self.status.send_modify(|s| {
            s.state = StreamState::Connected { since_ms };
            s.connections += 1;
        });
        metrics::counter!("dingsync_stream_connections_total").increment(1);
        metrics::gauge!("dingsync_stream_connected").set(1.0);
        tracing::info!(endpoint = %endpoint, "stream connected");
        self.serve(&mut ws).await
    }

    /// `POST /v1.0/gateway/connections/open` → (endpoint, ticket).
    async fn register(&self) -> Result<(String, String), StreamError> {
        let mut body = json!({
            "clientId": self.cfg.client_id,
            "clientSecret": self.cfg.client_secret,
            "subscriptions": [{"type": "EVENT", "topic": "*"}],
            "ua": self.cfg.ua,
        });
        if let Some(ip) = &self.cfg.local_ip {
            body["localIp"] = json!(ip);
        }
        let response = self
            .http
            .post(format!("{}{OPEN_PATH}", self.cfg.api_base_url))
            // Without Accept the gateway may answer XML (Node SDK note).
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&body)
            .send()
            .await
            .map_err(StreamError::Register)?;
        let status = response.status();
        if !status.is_success() {
            metrics::counter!("dingsync_stream_registrations_total", "outcome" => "refused")
                .increment(1);
            // The error body is `{"requestid","code","message"}`; it never echoes the secret.
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let field = |name: &str| {
                body.get(name)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned()
            };
            return Err(StreamError::RegisterRefused {
                status: status.as_u16(),
                code: field("code"),
                message: field("message"),
            });
        }
        #[derive(Deserialize)]
        struct Opened {
            endpoint: String,
            ticket: String,
        }
        let opened: Opened = response.json().await.map_err(StreamError::RegisterAnswer)?;
        metrics::counter!("dingsync_stream_registrations_total", "outcome" => "ok").increment(1);
        Ok((opened.endpoint, opened.ticket))
    }

    /// Handles frames until the connection ends.
    async fn serve<S>(&mut self, ws: &mut S) -> Result<End, StreamError>
    where
        S: futures::Stream<Item = Result<Message, tungstenite::Error>>
            + futures::Sink<Message, Error = tungstenite::Error>
            + Unpin,
    {
        let mut awaiting_pong = false;
        loop {
            let wait = if awaiting_pong {
                self.cfg.pong_timeout
            } else {
                self.cfg.idle_timeout
            };
            let next = tokio::select! {
                () = self.shutdown.cancelled() => {
                    // A clean close tells DingTalk to stop sending here at once.
                    let _ = ws.close().await;
                    return Ok(End::Shutdown);
                }
                next = tokio::time::timeout(wait, ws.next()) => next,
            };
            let message = match next {
                Err(_idle) if awaiting_pong => return Err(StreamError::Keepalive(wait)),
                Err(_idle) => {
                    ws.send(Message::Ping(Default::default()))
                        .await
                        .map_err(StreamError::Socket)?;
                    awaiting_pong = true;
                    continue;
                }
                Ok(None) => return Err(StreamError::Closed),
                Ok(Some(Err(error))) => return Err(StreamError::Socket(error)),
                Ok(Some(Ok(message))) => message,
            };
            awaiting_pong = false;
            match message {
                Message::Text(text) => match self.on_frame(text.as_str()).await {
                    Step::Reply(Some(reply)) => ws
                        .send(Message::Text(reply.into()))
                        .await
                        .map_err(StreamError::Socket)?,
                    Step::Reply(None) => {}
                    Step::Disconnect => {
                        let _ = ws.close().await;
                        return Ok(End::Disconnect);
                    }
                },
                Message::Close(_) => return Err(StreamError::Closed),
                // Pings are answered by tungstenite; pongs only needed to arrive.
                _ => {}
            }
        }
    }

    /// Handles one text frame and says what to answer.
    async fn on_frame(&mut self, text: &str) -> Step {
        let frame: Frame = match serde_json::from_str(text) {
            Ok(frame) => frame,
            Err(error) => {
                tracing::warn!(error = %error, "unreadable stream frame ignored");
                return Step::Reply(None);
            }
        };
        let header = |name: &str| frame.headers.get(name).and_then(Value::as_str);
        let message_id = header("messageId").unwrap_or_default().to_owned();
        let data = match &frame.data {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        match (frame.kind.as_str(), header("topic")) {
            ("SYSTEM", Some("ping")) => {
                metrics::counter!("dingsync_stream_pings_total").increment(1);
                Step::Reply(Some(reply(&message_id, 200, "OK", data)))
            }
            ("SYSTEM", Some("disconnect")) => Step::Disconnect,
            ("SYSTEM", topic) => {
                tracing::debug!(?topic, "stream SYSTEM frame ignored");
                Step::Reply(None)
            }
            ("EVENT", _) => {
                let headers = StreamEventHeaders {
                    event_id: header("eventId").map(str::to_owned),
                    event_type: header("eventType").map(str::to_owned),
                    event_corp_id: header("eventCorpId").map(str::to_owned),
                    event_born_time: header("eventBornTime").map(str::to_owned),
                };
                let status = match self.store_event(&headers, &data).await {
                    Ok(()) => "SUCCESS",
                    Err(()) => "LATER",
                };
                let ack = json!({"status": status, "message": status.to_lowercase()});
                Step::Reply(Some(reply(&message_id, 200, "OK", ack.to_string())))
            }
            (kind, topic) => {
                // CALLBACK (bots, cards) or something new: not subscribed, so "not handled".
                tracing::debug!(kind, ?topic, "stream frame of an unhandled type");
                Step::Reply(Some(reply(&message_id, 404, "not handled", String::new())))
            }
        }
    }

    /// Stores one event; `Err` means the store failed and the event must be answered `LATER`.
    async fn store_event(&mut self, headers: &StreamEventHeaders, data: &str) -> Result<(), ()> {
        let now_ms = self.clock.now_ms();
        let payload_json = inbox_payload(headers, data);
        let (event_type, dedupe, malformed) = match ContactEvent::from_stream(headers, data) {
            Ok(event) => (
                event.kind.event_type().to_owned(),
                event.dedupe_key(&payload_json),
                false,
            ),
            Err(error) => {
                tracing::warn!(
                    error = %error_chain(&error),
                    event_type = headers.event_type.as_deref(),
                    event_id = headers.event_id.as_deref(),
                    "stream event could not be parsed; storing it for the dead-letter list"
                );
                let event_type = headers.event_type.clone();
                (
                    event_type.unwrap_or_else(|| "unknown".to_owned()),
                    dedupe_key(headers.event_id.as_deref(), &payload_json),
                    true,
                )
            }
        };
        let new = NewInboxEvent {
            dedupe_key: dedupe,
            event_type,
            payload_json,
            received_at_ms: now_ms,
        };
        let event_type = new.event_type.clone();
        match self.store.inbox_put(new).await {
            Ok(put) => {
                let outcome = match (put, malformed) {
                    (InboxPut::Duplicate, _) => "duplicate",
                    (InboxPut::Stored(_), true) => "malformed",
                    (InboxPut::Stored(_), false) => "stored",
                };
                metrics::counter!("dingsync_stream_events_total", "outcome" => outcome)
                    .increment(1);
                tracing::debug!(
                    event_type,
                    event_id = headers.event_id.as_deref(),
                    outcome,
                    "stream event accepted"
                );
                self.status.send_modify(|s| {
                    s.last_event_at_ms = Some(now_ms);
                    match outcome {
                        "duplicate" => s.events_duplicate += 1,
                        "malformed" => s.events_malformed += 1,
                        _ => s.events_stored += 1,
                    }
                });
                Ok(())
            }
            Err(error) => {
                metrics::counter!("dingsync_stream_events_total", "outcome" => "deferred")
                    .increment(1);
                tracing::error!(
                    error = %error_chain(&error),
                    event_type,
                    "storing a stream event failed; asking DingTalk to send it later"
                );
                self.status.send_modify(|s| {
                    s.events_deferred += 1;
                    s.last_event_at_ms = Some(now_ms);
                });
                Err(())
            }
        }
    }
}

/// The parts of a downstream frame the client reads.
#[derive(Debug, Deserialize)]
struct Frame {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    headers: Map<String, Value>,
    #[serde(default)]
    data: Value,
}

/// An upstream answer to the frame `message_id`.
fn reply(message_id: &str, code: u16, message: &str, data: String) -> String {
    json!({
        "code": code,
        "headers": {"messageId": message_id, "contentType": "application/json"},
        "message": message,
        "data": data,
    })
    .to_string()
}

/// The inbox dedupe key of an event whose fields could not be parsed (a parsed one uses
/// [`ContactEvent::dedupe_key`], as the HTTP receiver and catch-up do): `event:<eventId>`, or a
/// digest of the bytes when DingTalk gave no id.
pub fn dedupe_key(event_id: Option<&str>, bytes: &str) -> String {
    match event_id {
        Some(id) if !id.is_empty() => format!("event:{id}"),
        _ => format!("sha256:{}", hex::encode(Sha256::digest(bytes.as_bytes()))),
    }
}

/// The inbox row of a Stream event, in the format the inbox worker reads:
/// `{"stream": {"headers": {…}, "data": "<data string>"}}`. Only the event's own headers are
/// kept (not `messageId` or `time`, which change on every redelivery), so redeliveries of an
/// event without an id still produce the same bytes and the same digest key.
pub fn inbox_payload(headers: &StreamEventHeaders, data: &str) -> String {
    let mut kept = Map::new();
    for (name, value) in [
        ("eventId", &headers.event_id),
        ("eventType", &headers.event_type),
        ("eventCorpId", &headers.event_corp_id),
        ("eventBornTime", &headers.event_born_time),
    ] {
        if let Some(value) = value {
            kept.insert(name.into(), json!(value));
        }
    }
    json!({"stream": {"headers": kept, "data": data}}).to_string()
}

#[cfg(test)]
mod tests;
