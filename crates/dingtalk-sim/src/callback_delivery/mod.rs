//! Callback delivery: DingTalk's HTTP event push to a subscribed callback URL, from the sending
//! side. (Named so, not "push", because in this workspace "push" is the engine sending OA
//! changes to DingTalk.)
//!
//! A background pusher walks the event log (`crate::events`) with its own cursor. For each new
//! event whose tag the current subscription wants, it builds the plaintext in the configured
//! dialect, encrypts and signs it with `callback-crypto`, and POSTs
//! `url?signature&timestamp&nonce` (or `msg_signature`) with body `{"encrypt": …}`.
//!
//! A push counts as acknowledged only if the receiver answers HTTP 200 with the JSON
//! `{msg_signature, timeStamp, nonce, encrypt}`, the signature verifies with the subscription's
//! token, and `encrypt` decrypts (with the subscription's owner key) to exactly `success`.
//! Anything else — network error, timeout, other status, bad JSON, bad signature, other text —
//! is a failure. A failed push is retried after 10 s and again 30 s later (DingTalk's documented
//! schedule; a run-time `retry_scale` shrinks it for tests), then lands in the failed list that
//! `get_call_back_failed_result` serves.
//!
//! Events made while nothing is subscribed are not pushed later (DingTalk does not queue for
//! subscribers that did not exist). Without reordering, first attempts go out one at a time in
//! log order; retries run on their own so one failing event does not hold back the rest.
//! On request the pusher also duplicates pushes (same `eventId`), delays them, or reorders them
//! (each first attempt waits a random time within a window, so later events overtake earlier
//! ones). Every attempt is recorded with its outcome for `/_sim/pushes`.
//!
//! Choices where DingTalk's behaviour is UNCONFIRMED (the stricter plausible one): a push or
//! `check_url` must be answered within 1500 ms (the shorter of the two documented deadlines,
//! settable); the failed list is filled as soon as the last retry fails rather than 3–5 minutes
//! later; a failed `register_call_back`/`update_call_back` URL check answers 71009.
//!
//! Files: `subscription` (who is subscribed and with which keys), `settings` (run-time
//! behaviour), `hub` (the channel's state, held by `state::Shared`), `pusher` (the background
//! task, retries and `check_url`), `send` (one encrypted POST and the reply check), `payload`
//! (plaintext dialects), `api` (`/call_back/...`) and `admin` (`/_sim` routes).

pub(crate) mod admin;
pub(crate) mod api;
pub(crate) mod hub;
mod payload;
pub(crate) mod pusher;
mod send;
mod settings;
mod subscription;

pub use self::settings::{PushSettings, PushSettingsPatch};
