//! The HTTP receiver for DingTalk's event push: `POST /callbacks/dingtalk`.
//!
//! DingTalk signs and encrypts each push (dingtalk-api.md §5) and counts anything but an
//! encrypted `success` as a failure, retrying twice (after 10 s and 30 s) before parking the
//! event in its failed list. The receiver's one job is to turn a push into a durable inbox row
//! *before* saying `success` (invariant 1): if the store is down we answer 503 (locked,
//! restarting or unreachable, see `StoreError::is_unavailable`; 500 for any other store
//! failure) and let DingTalk retry, and a crash after the ack loses nothing because the row is already committed. All the
//! real work – fetching the entity, merging, writing – happens later in the inbox worker, so the
//! handler stays well inside DingTalk's 1.5–2.5 s deadline.
//!
//! The checks run cheapest and most trustworthy first: query parameters, body shape, signature
//! (which authenticates timestamp, nonce and ciphertext together), timestamp window, decryption
//! (which checks the owner key), then event parsing. Every refusal is a 4xx, one `tracing` line
//! with the reason and the error chain (the crypto and event errors never contain the token,
//! the key or plaintext; an unknown owner key is named, as it is an app key or corp id, not a
//! secret), and one increment of `dingsync_callbacks_rejected_total{reason}`; nothing is
//! written. A store failure is a 503 / 500 counted in `dingsync_callbacks_failed_total{reason}`;
//! accepted pushes count in `dingsync_callbacks_received_total{outcome}` (`stored`,
//! `duplicate`, `check_url`).
//!
//! Duplicates are expected (DingTalk retries; a push whose `success` it missed is retried or
//! listed as failed although we stored it), so each event is stored under
//! [`ContactEvent::dedupe_key`] – one key per DingTalk change built from its type, ids and event
//! time, which Stream intake and catch-up from the failed list build alike – and a duplicate is
//! acknowledged like a fresh one.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use callback_crypto::{CallbackCrypto, CryptoError, EncryptedReply, check_timestamp};
use dingtalk_proto::events::{ContactEvent, EventError, EventKind};
use directory_store::{InboxPut, NewInboxEvent, Store, StoreError};
use rand::Rng as _;
use rand::distributions::Alphanumeric;
use serde::Deserialize;

/// The route DingTalk is configured to push to.
pub const CALLBACK_PATH: &str = "/callbacks/dingtalk";

/// Pushes are a few hundred bytes; anything near this is not DingTalk.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// The text DingTalk requires, encrypted, as the acknowledgement.
const SUCCESS: &str = "success";

use crate::clock::IntoClock;
pub use crate::clock::{Clock, SharedClock, system_clock};
use crate::ops_stats::{Site, Unavailable};
use sync_engine::error_chain;

/// What the callback route needs; cheap to clone (everything is shared).
#[derive(Clone)]
pub struct CallbackState {
    /// Verifies, decrypts and encrypts for the one app whose pushes we accept.
    crypto: Arc<CallbackCrypto>,
    /// Where accepted events are committed before we acknowledge them.
    store: Store,
    /// How far a push's timestamp may be from now (either way) before it is refused.
    window: Duration,
    /// "Now", for the timestamp window and the reply's `timeStamp`.
    clock: SharedClock,
    /// Wakes the apply worker when an event is stored, so it applies it now rather than at its
    /// next poll (which would add up to a second to every change's way into the directory).
    wake: Option<Arc<tokio::sync::Notify>>,
}

impl std::fmt::Debug for CallbackState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `CallbackCrypto`'s own Debug redacts the token and key.
        f.debug_struct("CallbackState")
            .field("crypto", &self.crypto)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl CallbackState {
    /// Bundles the receiver's dependencies. `window` is `callback.timestamp_window_secs`.
    pub fn new(
        crypto: CallbackCrypto,
        store: Store,
        window: Duration,
        clock: impl IntoClock,
    ) -> Self {
        Self {
            crypto: Arc::new(crypto),
            store,
            window,
            clock: clock.into_clock(),
            wake: None,
        }
    }

    /// Signals `wake` after each newly stored event (the apply worker waits on it).
    pub fn with_wake(mut self, wake: Arc<tokio::sync::Notify>) -> Self {
        self.wake = Some(wake);
        self
    }
}

impl CallbackState {
    /// The receiver as `config` describes it: `callback.token`, `callback.aes_key`, the owner
    /// key (`callback.owner_key`, else the client id) and `callback.timestamp_window_secs`.
    ///
    /// `Ok(None)` when neither token nor key is set: callbacks are not configured and the route
    /// should not be mounted. One without the other is an error, as is a malformed key.
    pub fn from_config(
        config: &crate::config::Config,
        store: Store,
        clock: SharedClock,
    ) -> Result<Option<Self>, CryptoError> {
        let section = &config.callback;
        let (token, aes_key) = (section.token.expose(), section.aes_key.expose());
        if token.is_empty() && aes_key.is_empty() {
            return Ok(None);
        }
        let crypto = CallbackCrypto::new(token, aes_key, config.owner_key())?;
        let window = Duration::from_secs(section.timestamp_window_secs);
        Ok(Some(Self::new(crypto, store, window, clock)))
    }
}

/// The callback route, ready to be merged into the service's router.
pub fn router(state: CallbackState) -> Router {
    router_at(state, CALLBACK_PATH)
}

/// The callback route at `path` (one org of several: `/callbacks/dingtalk/{org}`).
pub fn router_at(state: CallbackState, path: &str) -> Router {
    Router::new()
        .route(path, post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// The query string DingTalk sends; both spellings of each name are in use (§5.2 CONFLICT).
#[derive(Debug, Deserialize)]
struct PushQuery {
    signature: Option<String>,
    msg_signature: Option<String>,
    timestamp: Option<String>,
    #[serde(rename = "timeStamp")]
    time_stamp: Option<String>,
    nonce: Option<String>,
}

/// The request body: `{"encrypt":"<base64>"}`.
#[derive(Debug, Deserialize)]
struct PushBody {
    encrypt: String,
}

/// Why a push was refused or could not be stored. One variant per distinct answer.
#[derive(Debug, thiserror::Error)]
enum CallbackError {
    /// A query parameter is missing.
    #[error("missing query parameter {0}")]
    MissingParameter(&'static str),
    /// The query string cannot be read.
    #[error("unreadable query string")]
    MalformedQuery(#[source] QueryRejection),
    /// The body could not be read (over the size limit, or the connection failed).
    #[error("request body could not be read")]
    UnreadableBody(#[source] BytesRejection),
    /// The body is not `{"encrypt": "…"}`.
    #[error("request body is not {{\"encrypt\":…}}")]
    MalformedBody(#[source] serde_json::Error),
    /// Signature, timestamp, decryption or owner key failed.
    #[error("callback crypto check failed")]
    Crypto(#[source] CryptoError),
    /// The decrypted plaintext is not a contacts event we can read.
    #[error("decrypted payload is not a readable event")]
    MalformedEvent(#[source] EventError),
    /// The event could not be committed; DingTalk must retry.
    #[error("could not store the event in the inbox")]
    Store(#[source] StoreError),
    /// The acknowledgement could not be built (an empty nonce cannot happen with our own).
    #[error("could not encrypt the acknowledgement")]
    Reply(#[source] CryptoError),
}

impl CallbackError {
    /// Low-cardinality label for `dingsync_callbacks_rejected_total{reason}`.
    fn reason(&self) -> &'static str {
        match self {
            Self::MissingParameter(_) | Self::MalformedQuery(_) => "missing_parameter",
            Self::UnreadableBody(_) => "unreadable_body",
            Self::MalformedBody(_) => "malformed_body",
            Self::Crypto(e) => e.reason(),
            Self::MalformedEvent(_) => "malformed_event",
            Self::Store(e) if e.is_unavailable() => "database_unavailable",
            Self::Store(_) => "store_error",
            Self::Reply(_) => "reply_error",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::MissingParameter(_)
            | Self::MalformedQuery(_)
            | Self::MalformedBody(_)
            | Self::MalformedEvent(_) => StatusCode::BAD_REQUEST,
            // Mostly 413 (over the limit); the rejection knows its own status.
            Self::UnreadableBody(rejection) => rejection.status(),
            Self::Crypto(_) => StatusCode::FORBIDDEN,
            // Not stored, and it will pass: DingTalk's retry (10 s, 30 s) or catch-up brings it.
            Self::Store(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            Self::Store(_) | Self::Reply(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for CallbackError {
    fn into_response(self) -> Response {
        let reason = self.reason();
        let status = self.status();
        let chain = error_chain(&self);
        if status.is_server_error() {
            metrics::counter!("dingsync_callbacks_failed_total", "reason" => reason).increment(1);
            tracing::error!(reason, error = %chain, "callback not acknowledged; DingTalk will retry");
        } else {
            metrics::counter!("dingsync_callbacks_rejected_total", "reason" => reason).increment(1);
            tracing::warn!(reason, error = %chain, "callback rejected");
        }
        // The body names the reason only; details stay in our logs.
        let mut response = (status, Json(serde_json::json!({ "error": reason }))).into_response();
        if let Self::Store(e) = &self
            && status == StatusCode::SERVICE_UNAVAILABLE
        {
            Unavailable::mark(&mut response, Site::Callback, e);
        }
        response
    }
}

async fn receive(
    State(state): State<CallbackState>,
    query: Result<Query<PushQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<EncryptedReply>, CallbackError> {
    // Every field is optional, so this only fails on an unreadable query string (such as a
    // repeated name); the missing-parameter checks below say which one matters.
    let Query(query) = query.map_err(CallbackError::MalformedQuery)?;
    let signature = query
        .signature
        .or(query.msg_signature)
        .ok_or(CallbackError::MissingParameter("signature"))?;
    let timestamp = query
        .timestamp
        .or(query.time_stamp)
        .ok_or(CallbackError::MissingParameter("timestamp"))?;
    let nonce = query
        .nonce
        .ok_or(CallbackError::MissingParameter("nonce"))?;
    let body = body.map_err(CallbackError::UnreadableBody)?;
    let PushBody { encrypt } =
        serde_json::from_slice(&body).map_err(CallbackError::MalformedBody)?;

    let crypto = &state.crypto;
    crypto
        .verify_signature(&signature, &timestamp, &nonce, &encrypt)
        .map_err(CallbackError::Crypto)?;
    let now_ms = state.clock.now_ms();
    check_timestamp(&timestamp, now_ms, state.window).map_err(CallbackError::Crypto)?;
    let plaintext = crypto.decrypt(&encrypt).map_err(CallbackError::Crypto)?;
    let event = ContactEvent::from_http_json(&plaintext).map_err(CallbackError::MalformedEvent)?;

    if matches!(event.kind, EventKind::CheckUrl) {
        // Nothing to store: DingTalk only wants to see that we hold the token and key.
        metrics::counter!("dingsync_callbacks_received_total", "outcome" => "check_url")
            .increment(1);
        tracing::info!("callback URL check answered");
        return reply_success(&state, now_ms).map(Json);
    }

    let event_type = event.kind.event_type().to_owned();
    let put = state
        .store
        .inbox_put(NewInboxEvent {
            dedupe_key: event.dedupe_key(&plaintext),
            event_type: event_type.clone(),
            payload_json: plaintext,
            received_at_ms: now_ms,
        })
        .await
        .map_err(CallbackError::Store)?;
    // Committed (or already there): only now may DingTalk hear `success` (invariant 1).
    let outcome = match put {
        InboxPut::Stored(_) => {
            if let Some(wake) = &state.wake {
                wake.notify_one();
            }
            "stored"
        }
        InboxPut::Duplicate => "duplicate",
    };
    metrics::counter!("dingsync_callbacks_received_total", "outcome" => outcome).increment(1);
    tracing::info!(
        event_type,
        event_id = event.event_id.as_deref(),
        outcome,
        "callback event accepted"
    );
    reply_success(&state, now_ms).map(Json)
}

/// The encrypted `success`, signed with a fresh timestamp and a 16-character nonce as the
/// official Java helper does.
fn reply_success(state: &CallbackState, now_ms: i64) -> Result<EncryptedReply, CallbackError> {
    // The nonce and the ciphertext's random prefix only need to be unpredictable; nothing
    // depends on their values (tests check the reply by decrypting it), so the thread RNG at
    // this edge is enough.
    let mut rng = rand::thread_rng();
    let nonce: String = (0..16)
        .map(|_| char::from(rng.sample(Alphanumeric)))
        .collect();
    state
        .crypto
        .encrypted_reply(SUCCESS, &now_ms.to_string(), &nonce, &mut rng)
        .map_err(CallbackError::Reply)
}

#[cfg(test)]
mod tests;
