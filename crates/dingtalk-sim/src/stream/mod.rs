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

pub(crate) mod admin;
mod frames;
pub(crate) mod routes;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::IteratorRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::events::{EventLog, EventRecord};

/// Which channel carries events to the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// HTTP push to the callback subscription only (the default, as before Stream existed).
    #[default]
    Http,
    /// Stream only.
    Stream,
    /// Both, each independently.
    Both,
}

impl Delivery {
    fn http(self) -> bool {
        matches!(self, Delivery::Http | Delivery::Both)
    }
    fn stream(self) -> bool {
        matches!(self, Delivery::Stream | Delivery::Both)
    }
}

/// Run-time Stream behaviour (`/_sim/stream/settings`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StreamSettings {
    pub delivery: Delivery,
    /// Wait after an unanswered or refused attempt before sending the event again, in ms.
    pub redeliver_after_ms: u64,
    /// Time between `disconnect` and closing the TCP connection, in ms (DingTalk: 10 s).
    pub disconnect_grace_ms: u64,
    /// Lifetime of a registration ticket, in ms (DingTalk: 90 s).
    pub ticket_ttl_ms: u64,
    /// Interval of SYSTEM `ping` frames to every connection, in ms; 0 turns them off.
    pub ping_interval_ms: u64,
    /// Load balancing: every connection is sent `disconnect` this long after it opened, in ms;
    /// 0 (the default) only on request (`/_sim/stream/disconnect`).
    pub disconnect_after_ms: u64,
    /// Probability that an acknowledged event is sent once more anyway (same `eventId`, new
    /// `messageId`): DingTalk warns that duplicates happen even after an ack.
    pub duplicate_rate: f64,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            delivery: Delivery::Http,
            redeliver_after_ms: 60_000,
            disconnect_grace_ms: 10_000,
            ticket_ttl_ms: 90_000,
            ping_interval_ms: 30_000,
            disconnect_after_ms: 0,
            duplicate_rate: 0.0,
        }
    }
}

/// A partial update of [`StreamSettings`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSettingsPatch {
    pub delivery: Option<Delivery>,
    pub redeliver_after_ms: Option<u64>,
    pub disconnect_grace_ms: Option<u64>,
    pub ticket_ttl_ms: Option<u64>,
    pub ping_interval_ms: Option<u64>,
    pub disconnect_after_ms: Option<u64>,
    pub duplicate_rate: Option<f64>,
}

impl StreamSettings {
    fn apply(&mut self, p: &StreamSettingsPatch) -> Result<(), String> {
        if p.redeliver_after_ms == Some(0) {
            return Err("redeliver_after_ms must be positive".to_owned());
        }
        if let Some(rate) = p.duplicate_rate
            && !(0.0..=1.0).contains(&rate)
        {
            return Err(format!(
                "duplicate_rate must be within 0.0..=1.0, got {rate}"
            ));
        }
        if let Some(v) = p.duplicate_rate {
            self.duplicate_rate = v;
        }
        if let Some(v) = p.delivery {
            self.delivery = v;
        }
        if let Some(v) = p.redeliver_after_ms {
            self.redeliver_after_ms = v;
        }
        if let Some(v) = p.disconnect_grace_ms {
            self.disconnect_grace_ms = v;
        }
        if let Some(v) = p.ticket_ttl_ms {
            self.ticket_ttl_ms = v;
        }
        if let Some(v) = p.ping_interval_ms {
            self.ping_interval_ms = v;
        }
        if let Some(v) = p.disconnect_after_ms {
            self.disconnect_after_ms = v;
        }
        Ok(())
    }
}

/// What a connection's task is told to do.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// Send this text frame.
    Frame(String),
    /// Close the TCP connection now, without a WebSocket close frame.
    Drop,
    /// Stop reading and writing but keep the TCP connection open: a half-open connection as a
    /// lost network leaves it (not even WebSocket pings are answered).
    Stall,
}

/// A ticket waiting to be used.
#[derive(Debug, Clone)]
struct Ticket {
    /// When it stops being valid.
    expires: Instant,
    /// Whether the registration subscribed to EVENT `*` (only such connections get events).
    events: bool,
    /// The client's `ua`, kept for the connection view.
    ua: String,
}

/// One WebSocket connection, open or closed (kept for `/_sim/stream`).
#[derive(Debug)]
struct Conn {
    /// The wire name, sent as the `connectionId` header.
    name: String,
    /// Feeds the connection's task; `None` once closed.
    tx: Option<mpsc::UnboundedSender<Outgoing>>,
    /// Subscribed to EVENT `*`.
    events: bool,
    /// Sent `disconnect`: receives no new events.
    draining: bool,
    /// When the server closes it (set by `disconnect`, grace included).
    close_at: Option<Instant>,
    /// When it opened, for the periodic load-balancing `disconnect`.
    opened: Instant,
    ua: String,
    opened_at_ms: i64,
    closed_at_ms: Option<i64>,
    /// Why it closed (client, drop, disconnect grace over, error).
    close_reason: Option<String>,
}

impl Conn {
    fn is_open(&self) -> bool {
        self.tx.is_some()
    }
    fn send(&self, out: Outgoing) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.send(out).is_ok())
    }
}

/// Where one undelivered event stands.
#[derive(Debug, Clone)]
enum Stage {
    /// To be sent at (or after) this instant, to any eligible connection.
    Waiting(Instant),
    /// Sent as `message_id`; if not acknowledged by `deadline`, sent again.
    Sent {
        message_id: String,
        deadline: Instant,
    },
}

/// An event not yet acknowledged.
#[derive(Debug, Clone)]
struct Pending {
    event: EventRecord,
    /// Stable across redeliveries.
    event_id: String,
    /// Attempts made so far.
    attempts: u32,
    /// Whether one more copy is still to be sent after the ack (the duplicate setting).
    duplicate_due: bool,
    stage: Stage,
}

/// One delivery attempt and its answer, for `/_sim/stream`.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRecord {
    pub message_id: String,
    /// The event-log id (`GET /_sim/events`).
    pub log_id: u64,
    pub event_id: String,
    pub event_type: String,
    pub connection_id: u64,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub sent_at_ms: i64,
    /// `awaiting`, `acked`, `refused` (answered but not success), `timed_out`, `superseded`
    /// (answered after the event was already sent again).
    pub outcome: &'static str,
    /// The ack's code and `data.status`, when one came.
    pub ack_code: Option<i64>,
    pub ack_status: Option<String>,
    pub answered_at_ms: Option<i64>,
}

/// One SYSTEM ping and whether it was answered correctly.
#[derive(Debug, Clone, Serialize)]
pub struct PingRecord {
    pub message_id: String,
    pub connection_id: u64,
    pub opaque: String,
    pub sent_at_ms: i64,
    /// `None` until answered; then whether code was 200 and `opaque` echoed.
    pub echoed: Option<bool>,
}

/// What a `messageId` refers to.
#[derive(Debug, Clone, Copy)]
enum Sent {
    /// Index into `deliveries`.
    Delivery(usize),
    /// Index into `pings`.
    Ping(usize),
}

/// The Stream side's mutable state; every method takes `now` so the logic is testable.
#[derive(Debug)]
pub(crate) struct StreamState {
    settings: StreamSettings,
    /// Unused tickets.
    tickets: HashMap<String, Ticket>,
    /// Registrations accepted and refused, for tests of re-registration.
    registered: u64,
    refused: u64,
    /// Tickets presented at `/connect` and refused (unknown, used or expired).
    tickets_refused: u64,
    /// Every connection so far by id (from 1).
    conns: BTreeMap<u64, Conn>,
    /// Id of the last event taken from the log.
    cursor: u64,
    /// Events taken but not yet acknowledged, by log id (so delivery follows log order).
    pending: BTreeMap<u64, Pending>,
    /// Every attempt so far.
    deliveries: Vec<DeliveryRecord>,
    pings: Vec<PingRecord>,
    /// Every `messageId` sent.
    sent: HashMap<String, Sent>,
    /// Upstream messages that were not a valid ack of anything we sent.
    stray: Vec<Value>,
    /// When the next round of pings is due.
    next_ping: Option<Instant>,
    /// Sequence for `messageId`s.
    next_message: u64,
    /// `eventUnifiedAppId` of this app (uuid-like, from the seed).
    unified_app_id: String,
    /// The simulator's seed, from which every event's `eventId` is derived (shared with the
    /// HTTP pusher, so one event has one id on both channels).
    seed: u64,
    /// Seeded source of tickets, message ids and connection choices, so runs repeat.
    rng: StdRng,
}

/// Lowers `next` to `at` when `at` is sooner.
fn earliest(next: &mut Option<Instant>, at: Instant) {
    *next = Some(next.map_or(at, |n| n.min(at)));
}

fn uuid_like(rng: &mut StdRng) -> String {
    let hex = |rng: &mut StdRng, n: usize| -> String {
        (0..n)
            .map(|_| char::from(b"0123456789abcdef"[rng.gen_range(0..16)]))
            .collect()
    };
    format!(
        "{}-{}-{}-{}-{}",
        hex(rng, 8),
        hex(rng, 4),
        hex(rng, 4),
        hex(rng, 4),
        hex(rng, 12)
    )
}

impl StreamState {
    fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5743_EA11);
        let unified_app_id = uuid_like(&mut rng);
        Self {
            settings: StreamSettings::default(),
            tickets: HashMap::new(),
            registered: 0,
            refused: 0,
            tickets_refused: 0,
            conns: BTreeMap::new(),
            cursor: 0,
            pending: BTreeMap::new(),
            deliveries: Vec::new(),
            pings: Vec::new(),
            sent: HashMap::new(),
            stray: Vec::new(),
            next_ping: None,
            next_message: 1,
            unified_app_id,
            seed,
            rng,
        }
    }

    /// Issues a single-use ticket.
    fn issue_ticket(&mut self, now: Instant, events: bool, ua: String) -> String {
        let ticket = uuid_like(&mut self.rng);
        // Forget tickets that can no longer be used, so the map stays small.
        self.tickets.retain(|_, t| t.expires > now);
        self.tickets.insert(
            ticket.clone(),
            Ticket {
                expires: now + Duration::from_millis(self.settings.ticket_ttl_ms),
                events,
                ua,
            },
        );
        self.registered += 1;
        ticket
    }

    /// Takes a ticket for a connection; `None` when unknown, used or expired.
    fn redeem(&mut self, ticket: &str, now: Instant) -> Option<Ticket> {
        match self.tickets.remove(ticket) {
            Some(t) if t.expires > now => Some(t),
            _ => {
                self.tickets_refused += 1;
                None
            }
        }
    }

    /// Opens a connection record for a redeemed ticket.
    fn open(
        &mut self,
        ticket: Ticket,
        tx: mpsc::UnboundedSender<Outgoing>,
        now: Instant,
        wall_ms: i64,
    ) -> u64 {
        let id = self.conns.keys().next_back().map_or(1, |last| last + 1);
        self.conns.insert(
            id,
            Conn {
                name: format!("sim-conn-{id}-{}", &self.unified_app_id[..8]),
                tx: Some(tx),
                events: ticket.events,
                draining: false,
                close_at: None,
                opened: now,
                ua: ticket.ua,
                opened_at_ms: wall_ms,
                closed_at_ms: None,
                close_reason: None,
            },
        );
        id
    }

    /// Marks a connection closed (its task ended).
    fn close(&mut self, id: u64, reason: &str, wall_ms: i64) {
        if let Some(conn) = self.conns.get_mut(&id)
            && conn.tx.take().is_some()
        {
            conn.closed_at_ms = Some(wall_ms);
            conn.close_reason = Some(reason.to_owned());
        }
    }

    fn message_id(&mut self, wall_ms: i64) -> String {
        let seq = self.next_message;
        self.next_message += 1;
        format!(
            "{:08x}_{seq}_{wall_ms:x}_{:04x}",
            self.rng.r#gen::<u32>(),
            self.rng.r#gen::<u16>()
        )
    }

    /// Takes new events from the log (only while Stream delivery is on).
    fn take_events(&mut self, log: &EventLog, now: Instant) {
        let new: Vec<EventRecord> = log.since(self.cursor).to_vec();
        let Some(last) = new.last().map(|e| e.id) else {
            return;
        };
        self.cursor = last;
        if !self.settings.delivery.stream() {
            return;
        }
        for event in new {
            let event_id = crate::events::event_id(self.seed, event.id);
            let duplicate_due = self
                .rng
                .gen_bool(self.settings.duplicate_rate.clamp(0.0, 1.0));
            self.pending.insert(
                event.id,
                Pending {
                    event,
                    event_id,
                    attempts: 0,
                    duplicate_due,
                    stage: Stage::Waiting(now),
                },
            );
        }
    }

    /// Connections that may receive a new event.
    fn eligible(&self) -> Vec<u64> {
        self.conns
            .iter()
            .filter(|(_, c)| c.is_open() && c.events && !c.draining)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Sends what is due (first attempts, redeliveries, pings); returns when to look again.
    fn step(&mut self, now: Instant, wall_ms: i64, corp_id: &str) -> Option<Instant> {
        let redeliver = Duration::from_millis(self.settings.redeliver_after_ms);
        // Unanswered attempts past their deadline become due again.
        for (log_id, p) in &mut self.pending {
            if let Stage::Sent {
                message_id,
                deadline,
            } = &p.stage
                && *deadline <= now
            {
                if let Some(Sent::Delivery(i)) = self.sent.get(message_id) {
                    let record = &mut self.deliveries[*i];
                    if record.outcome == "awaiting" {
                        record.outcome = "timed_out";
                    }
                }
                tracing::debug!(
                    log_id,
                    "stream event not acknowledged in time; redelivering"
                );
                p.stage = Stage::Waiting(now);
            }
        }
        let mut next: Option<Instant> = None;
        // Load balancing: connections past their lifetime are told to go.
        if self.settings.disconnect_after_ms > 0 {
            let life = Duration::from_millis(self.settings.disconnect_after_ms);
            let due: Vec<u64> = self
                .conns
                .iter()
                .filter(|(_, c)| c.is_open() && !c.draining && c.opened + life <= now)
                .map(|(id, _)| *id)
                .collect();
            for id in due {
                self.disconnect(Some(id), now, wall_ms);
            }
            for c in self.conns.values().filter(|c| c.is_open() && !c.draining) {
                earliest(&mut next, c.opened + life);
            }
        }
        // Drained connections whose grace is over are closed.
        for conn in self.conns.values().filter(|c| c.is_open()) {
            match conn.close_at {
                Some(at) if at <= now => {
                    let _ = conn.send(Outgoing::Drop);
                }
                Some(at) => earliest(&mut next, at),
                None => {}
            }
        }
        let eligible = self.eligible();
        let mut due: Vec<u64> = Vec::new();
        for (log_id, p) in &self.pending {
            match &p.stage {
                Stage::Waiting(at) if *at <= now => due.push(*log_id),
                Stage::Waiting(at) | Stage::Sent { deadline: at, .. } => earliest(&mut next, *at),
            }
        }
        if !eligible.is_empty() {
            for log_id in due {
                let Some(&conn_id) = eligible.iter().choose(&mut self.rng) else {
                    break;
                };
                let message_id = self.message_id(wall_ms);
                let Some(p) = self.pending.get_mut(&log_id) else {
                    continue;
                };
                let Some(conn) = self.conns.get(&conn_id) else {
                    continue;
                };
                let frame = frames::event_frame(
                    &p.event,
                    &frames::EventMeta {
                        event_id: &p.event_id,
                        message_id: &message_id,
                        corp_id,
                        unified_app_id: &self.unified_app_id,
                        connection_id: &conn.name,
                        now_ms: wall_ms,
                    },
                );
                // A send fails only when the connection's task has just ended; the deadline
                // then brings the event back like any unanswered attempt.
                let _ = conn.send(Outgoing::Frame(frame));
                p.attempts += 1;
                let deadline = now + redeliver;
                p.stage = Stage::Sent {
                    message_id: message_id.clone(),
                    deadline,
                };
                earliest(&mut next, deadline);
                self.sent
                    .insert(message_id.clone(), Sent::Delivery(self.deliveries.len()));
                self.deliveries.push(DeliveryRecord {
                    message_id,
                    log_id,
                    event_id: p.event_id.clone(),
                    event_type: p.event.change.event_type().to_owned(),
                    connection_id: conn_id,
                    attempt: p.attempts,
                    sent_at_ms: wall_ms,
                    outcome: "awaiting",
                    ack_code: None,
                    ack_status: None,
                    answered_at_ms: None,
                });
            }
        }
        if self.settings.ping_interval_ms > 0 {
            let interval = Duration::from_millis(self.settings.ping_interval_ms);
            let at = *self.next_ping.get_or_insert(now + interval);
            if at <= now {
                self.ping(None, wall_ms);
                self.next_ping = Some(now + interval);
            }
            earliest(&mut next, self.next_ping.unwrap_or(now + interval));
        } else {
            self.next_ping = None;
        }
        next
    }

    /// Sends a SYSTEM ping to one open connection or all; returns the connections pinged.
    fn ping(&mut self, only: Option<u64>, wall_ms: i64) -> Vec<u64> {
        let targets: Vec<u64> = self
            .conns
            .iter()
            .filter(|(id, c)| c.is_open() && only.is_none_or(|o| o == **id))
            .map(|(id, _)| *id)
            .collect();
        for id in &targets {
            let message_id = self.message_id(wall_ms);
            let opaque = uuid_like(&mut self.rng);
            let Some(conn) = self.conns.get(id) else {
                continue;
            };
            let frame = frames::system_frame(
                "ping",
                &message_id,
                &conn.name,
                wall_ms,
                &json!({"opaque": opaque}),
            );
            let _ = conn.send(Outgoing::Frame(frame));
            self.sent
                .insert(message_id.clone(), Sent::Ping(self.pings.len()));
            self.pings.push(PingRecord {
                message_id,
                connection_id: *id,
                opaque,
                sent_at_ms: wall_ms,
                echoed: None,
            });
        }
        targets
    }

    /// Sends `disconnect` to one open connection or all, stops new deliveries to them and
    /// schedules their close after the grace period; returns the connections told.
    fn disconnect(&mut self, only: Option<u64>, now: Instant, wall_ms: i64) -> Vec<u64> {
        let grace = Duration::from_millis(self.settings.disconnect_grace_ms);
        let targets: Vec<u64> = self
            .conns
            .iter()
            .filter(|(id, c)| c.is_open() && !c.draining && only.is_none_or(|o| o == **id))
            .map(|(id, _)| *id)
            .collect();
        for id in &targets {
            let message_id = self.message_id(wall_ms);
            if let Some(conn) = self.conns.get_mut(id) {
                let frame = frames::system_frame(
                    "disconnect",
                    &message_id,
                    &conn.name,
                    wall_ms,
                    &json!({"reason": "connection is expired"}),
                );
                conn.draining = true;
                conn.close_at = Some(now + grace);
                let _ = conn.send(Outgoing::Frame(frame));
            }
        }
        targets
    }

    /// Closes (`Drop`) or stalls (`Stall`) one open connection or all at once; returns the
    /// connections affected.
    fn cut(&mut self, only: Option<u64>, how: fn() -> Outgoing) -> Vec<u64> {
        let targets: Vec<u64> = self
            .conns
            .iter()
            .filter(|(id, c)| c.is_open() && only.is_none_or(|o| o == **id))
            .map(|(id, _)| *id)
            .collect();
        for id in &targets {
            if let Some(conn) = self.conns.get(id) {
                let _ = conn.send(how());
            }
        }
        targets
    }

    /// Handles one upstream text message of connection `conn_id`; returns whether something
    /// became due at once (a duplicate to send), so the dispatcher must run.
    fn on_upstream(&mut self, conn_id: u64, text: &str, now: Instant, wall_ms: i64) -> bool {
        let ack = match frames::parse_ack(text) {
            Ok(ack) => ack,
            Err(reason) => {
                self.stray
                    .push(json!({"connection_id": conn_id, "error": reason, "text": text}));
                return false;
            }
        };
        match self.sent.get(&ack.message_id).copied() {
            Some(Sent::Ping(i)) => {
                let record = &mut self.pings[i];
                let echoed = ack.code == Some(200)
                    && ack.data.get("opaque").and_then(Value::as_str)
                        == Some(record.opaque.as_str());
                record.echoed = Some(echoed);
            }
            Some(Sent::Delivery(i)) => {
                let record = &mut self.deliveries[i];
                if record.answered_at_ms.is_some() {
                    // A second answer to one attempt changes nothing.
                    return false;
                }
                record.answered_at_ms = Some(wall_ms);
                record.ack_code = ack.code;
                record.ack_status = ack.status.clone();
                let current = self.pending.get(&record.log_id).is_some_and(|p| {
                    matches!(&p.stage, Stage::Sent { message_id, .. } if *message_id == ack.message_id)
                });
                if !current {
                    record.outcome = "superseded";
                    return false;
                }
                if ack.is_success() {
                    record.outcome = "acked";
                    let log_id = record.log_id;
                    if let Some(p) = self.pending.get_mut(&log_id)
                        && p.duplicate_due
                    {
                        p.duplicate_due = false;
                        p.stage = Stage::Waiting(now);
                        return true;
                    }
                    self.pending.remove(&log_id);
                } else {
                    record.outcome = "refused";
                    if let Some(p) = self.pending.get_mut(&record.log_id) {
                        p.stage = Stage::Waiting(
                            now + Duration::from_millis(self.settings.redeliver_after_ms),
                        );
                    }
                }
            }
            None => self.stray.push(
                json!({"connection_id": conn_id, "error": "unknown messageId", "text": text}),
            ),
        }
        false
    }

    /// Whether every event taken from a log of `logged` entries has been acknowledged.
    fn idle(&self, logged: u64) -> bool {
        self.cursor >= logged && self.pending.is_empty()
    }

    /// The view served by `GET /_sim/stream`.
    fn to_json(&self) -> Value {
        let conns: Vec<Value> = self
            .conns
            .iter()
            .map(|(id, c)| {
                json!({
                    "id": id,
                    "connection_id": c.name,
                    "open": c.is_open(),
                    "events": c.events,
                    "draining": c.draining,
                    "ua": c.ua,
                    "opened_at_ms": c.opened_at_ms,
                    "closed_at_ms": c.closed_at_ms,
                    "close_reason": c.close_reason,
                })
            })
            .collect();
        json!({
            "settings": self.settings,
            "registrations": {"accepted": self.registered, "refused": self.refused,
                              "tickets_refused": self.tickets_refused},
            "connections": conns,
            "pending": self.pending.len(),
            "deliveries": self.deliveries,
            "pings": self.pings,
            "stray": self.stray,
        })
    }
}

/// The Stream machinery shared by the routes, the connection tasks and the dispatcher.
#[derive(Debug)]
pub(crate) struct StreamHub {
    state: Mutex<StreamState>,
    /// Wakes the dispatcher (events recorded, connection opened, ack received).
    wake: Notify,
    /// Bumped on every change, so waiters can re-check "idle".
    progress: watch::Sender<u64>,
    /// The dispatcher, the connection tasks and the disconnect timers.
    tracker: TaskTracker,
    stop: CancellationToken,
}

impl StreamHub {
    pub(crate) fn new(seed: u64, stop: CancellationToken) -> Self {
        Self {
            state: Mutex::new(StreamState::new(seed)),
            wake: Notify::new(),
            progress: watch::channel(0).0,
            tracker: TaskTracker::new(),
            stop,
        }
    }

    /// Whether the HTTP pusher should push (the `delivery` setting).
    pub(crate) fn delivers_http(&self) -> bool {
        crate::server::lock(&self.state).settings.delivery.http()
    }

    /// Tells the dispatcher something changed.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    fn bump(&self) {
        self.progress.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Waits for every Stream task to end (they stop when cancelled).
    pub(crate) async fn wait_stopped(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// Applies a settings patch and wakes the dispatcher; returns the settings now in force.
pub(crate) fn apply_settings(
    shared: &crate::server::Shared,
    patch: &StreamSettingsPatch,
) -> Result<StreamSettings, String> {
    let result = {
        let mut state = crate::server::lock(&shared.stream.state);
        state.settings.apply(patch).map(|()| state.settings.clone())
    };
    shared.stream.wake();
    result
}

/// Starts the dispatcher.
pub(crate) fn spawn_dispatcher(shared: std::sync::Arc<crate::server::Shared>) {
    let tracker = shared.stream.tracker.clone();
    tracker.spawn(async move {
        let hub = &shared.stream;
        loop {
            let next = {
                let now = Instant::now();
                let wall = crate::server::wall_ms();
                let events = crate::server::lock(&shared.events);
                let mut state = crate::server::lock(&hub.state);
                state.take_events(&events, now);
                drop(events);
                state.step(now, wall, &shared.config.corp_id)
            };
            hub.bump();
            let sleep = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = hub.stop.cancelled() => break,
                () = hub.wake.notified() => {}
                () = sleep => {}
            }
        }
    });
}

/// Waits until every event recorded so far has been acknowledged over Stream (or `timeout`
/// passes); returns whether that happened.
pub(crate) async fn wait_idle(shared: &crate::server::Shared, timeout: Duration) -> bool {
    let mut progress = shared.stream.progress.subscribe();
    let check = || {
        let logged = crate::server::lock(&shared.events).entries.len() as u64;
        crate::server::lock(&shared.stream.state).idle(logged)
    };
    let waited = tokio::time::timeout(timeout, async {
        loop {
            progress.borrow_and_update();
            if check() {
                return;
            }
            if progress.changed().await.is_err() {
                return;
            }
        }
    })
    .await;
    waited.is_ok() && check()
}

#[cfg(test)]
mod tests;
