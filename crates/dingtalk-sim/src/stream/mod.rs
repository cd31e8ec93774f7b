//! Stream mode from the sending side: registration tickets, WebSocket connections, and the
//! dispatcher that delivers contacts events over them (`dingtalk-api.md` §7).
//!
//! An app registers with `POST /v1.0/gateway/connections/open` and gets a ticket (single use,
//! valid 90 s) plus the endpoint; it then opens `GET /connect?ticket=…` as a WebSocket. Several
//! connections per app may be open; the dispatcher walks the event log with its own cursor and
//! sends each event to *one* randomly chosen connection that subscribed to EVENT `*` and is not
//! being drained.
//!
//! Every delivery attempt gets a fresh `messageId` while the event keeps its `eventId` (the
//! same id the HTTP push's new dialect carries, see `events::event_id`), and only an
//! ack naming the *current* attempt's `messageId` counts. An event that is not acknowledged
//! within the redelivery timeout, or is answered with anything but success (`LATER`, code 500,
//! 404), is sent again after that timeout, to whichever connection is then chosen. Events wait
//! while no connection is open (DingTalk keeps retrying; it does not drop them).
//!
//! `disconnect` (SYSTEM frame, for load balancing) stops new deliveries to that connection and
//! closes its TCP after a grace period (10 s by DingTalk; settable), without a close frame; acks
//! still count until then. It is sent on request, or to every connection once it has lived
//! `disconnect_after_ms` (DingTalk's own period is UNCONFIRMED; off by default).
//! `/_sim/stream/drop` closes a connection's TCP at once; `/_sim/stream/stall` leaves it open
//! but silent (a lost network), so only the client's keepalive can notice.
//!
//! On request (`duplicate_rate`) an acknowledged event is sent once more with its `eventId`,
//! as DingTalk warns can happen.
//!
//! Choices where DingTalk's behaviour is UNCONFIRMED (the stricter plausible one): redelivery
//! 60 s after an unanswered or refused attempt (the Node SDK says "within 60 s"); an ack after
//! the redelivery (for a superseded `messageId`) is recorded but does not count; a connection
//! that closes does not speed up redelivery of what it held; a ticket refused at `/connect`
//! answers HTTP 401; server pings every 30 s.
//!
//! Whether events go by HTTP push, by Stream or both is the `delivery` setting
//! (`/_sim/stream/settings`); events recorded while Stream is off are never sent by Stream.
//!
//! Files: `settings` (run-time behaviour), `machine` (the state machine, clock passed in),
//! `hub` (the machine plus its tasks, held by `state::Shared`), `dispatcher` (the task that
//! drives the machine), `frames` (the wire frames and ack rules), `routes` (registration and
//! `/connect`) and `admin` (`/_sim/stream`).

pub(crate) mod admin;
pub(crate) mod dispatcher;
mod frames;
pub(crate) mod hub;
mod machine;
pub(crate) mod routes;
mod settings;

pub use self::settings::{Delivery, StreamSettings, StreamSettingsPatch};
