//! The Stream side's state machine: tickets, connections, pending events and every attempt,
//! with `now` (the clock's instant and Unix ms) passed into every method so the rules are
//! unit-tested without sockets or a real clock (`machine/tests.rs`).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::IteratorRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::frames;
#[cfg(test)]
use super::settings::Delivery;
use super::settings::StreamSettings;
use crate::events::{EventLog, EventRecord};

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
pub(super) struct Ticket {
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
    pub(super) settings: StreamSettings,
    /// Unused tickets.
    pub(super) tickets: HashMap<String, Ticket>,
    /// Registrations accepted and refused, for tests of re-registration.
    registered: u64,
    pub(super) refused: u64,
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
    pub(super) fn new(seed: u64) -> Self {
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
    pub(super) fn issue_ticket(&mut self, now: Instant, events: bool, ua: String) -> String {
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

    /// Whether this corp issued `ticket` and it is still unused (the fleet routes `/connect`
    /// by it).
    pub(crate) fn holds_ticket(&self, ticket: &str) -> bool {
        self.tickets.contains_key(ticket)
    }

    /// Takes a ticket for a connection; `None` when unknown, used or expired.
    pub(super) fn redeem(&mut self, ticket: &str, now: Instant) -> Option<Ticket> {
        match self.tickets.remove(ticket) {
            Some(t) if t.expires > now => Some(t),
            _ => {
                self.tickets_refused += 1;
                None
            }
        }
    }

    /// Opens a connection record for a redeemed ticket.
    pub(super) fn open(
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
    pub(super) fn close(&mut self, id: u64, reason: &str, wall_ms: i64) {
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
    pub(super) fn take_events(&mut self, log: &EventLog, now: Instant) {
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
        self.open_conns(None, |c| c.events && !c.draining)
    }

    /// The open connections (only `only`, when given) that also pass `keep`.
    fn open_conns(&self, only: Option<u64>, keep: impl Fn(&Conn) -> bool) -> Vec<u64> {
        self.conns
            .iter()
            .filter(|(id, c)| c.is_open() && only.is_none_or(|o| o == **id) && keep(c))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Sends what is due (first attempts, redeliveries, pings); returns when to look again.
    pub(super) fn step(&mut self, now: Instant, wall_ms: i64, corp_id: &str) -> Option<Instant> {
        self.expire_unanswered(now);
        let mut next: Option<Instant> = None;
        self.balance_load(now, wall_ms, &mut next);
        self.close_drained(now, &mut next);
        self.send_due(now, wall_ms, corp_id, &mut next);
        self.ping_if_due(now, wall_ms, &mut next);
        next
    }

    /// Unanswered attempts past their deadline become due again.
    fn expire_unanswered(&mut self, now: Instant) {
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
    }

    /// Load balancing: connections past their lifetime are told to go.
    fn balance_load(&mut self, now: Instant, wall_ms: i64, next: &mut Option<Instant>) {
        if self.settings.disconnect_after_ms == 0 {
            return;
        }
        let life = Duration::from_millis(self.settings.disconnect_after_ms);
        let due = self.open_conns(None, |c| !c.draining && c.opened + life <= now);
        for id in due {
            self.disconnect(Some(id), now, wall_ms);
        }
        for c in self.conns.values().filter(|c| c.is_open() && !c.draining) {
            earliest(next, c.opened + life);
        }
    }

    /// Drained connections whose grace is over are closed.
    fn close_drained(&self, now: Instant, next: &mut Option<Instant>) {
        for conn in self.conns.values().filter(|c| c.is_open()) {
            match conn.close_at {
                Some(at) if at <= now => {
                    let _ = conn.send(Outgoing::Drop);
                }
                Some(at) => earliest(next, at),
                None => {}
            }
        }
    }

    /// Sends every due event to a randomly chosen eligible connection.
    fn send_due(&mut self, now: Instant, wall_ms: i64, corp_id: &str, next: &mut Option<Instant>) {
        let eligible = self.eligible();
        let mut due: Vec<u64> = Vec::new();
        for (log_id, p) in &self.pending {
            match &p.stage {
                Stage::Waiting(at) if *at <= now => due.push(*log_id),
                Stage::Waiting(at) | Stage::Sent { deadline: at, .. } => earliest(next, *at),
            }
        }
        if eligible.is_empty() {
            return;
        }
        for log_id in due {
            let Some(&conn_id) = eligible.iter().choose(&mut self.rng) else {
                break;
            };
            if let Some(deadline) = self.send_event(log_id, conn_id, now, wall_ms, corp_id) {
                earliest(next, deadline);
            }
        }
    }

    /// Sends one pending event to one connection and records the attempt; returns its
    /// redelivery deadline.
    fn send_event(
        &mut self,
        log_id: u64,
        conn_id: u64,
        now: Instant,
        wall_ms: i64,
        corp_id: &str,
    ) -> Option<Instant> {
        let redeliver = Duration::from_millis(self.settings.redeliver_after_ms);
        let message_id = self.message_id(wall_ms);
        let p = self.pending.get_mut(&log_id)?;
        let conn = self.conns.get(&conn_id)?;
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
        // A send fails only when the connection's task has just ended; the deadline then
        // brings the event back like any unanswered attempt.
        let _ = conn.send(Outgoing::Frame(frame));
        p.attempts += 1;
        let deadline = now + redeliver;
        p.stage = Stage::Sent {
            message_id: message_id.clone(),
            deadline,
        };
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
        Some(deadline)
    }

    /// Pings every connection when the interval is over.
    fn ping_if_due(&mut self, now: Instant, wall_ms: i64, next: &mut Option<Instant>) {
        if self.settings.ping_interval_ms == 0 {
            self.next_ping = None;
            return;
        }
        let interval = Duration::from_millis(self.settings.ping_interval_ms);
        let at = *self.next_ping.get_or_insert(now + interval);
        if at <= now {
            self.ping(None, wall_ms);
            self.next_ping = Some(now + interval);
        }
        earliest(next, self.next_ping.unwrap_or(now + interval));
    }

    /// Sends a SYSTEM ping to one open connection or all; returns the connections pinged.
    pub(super) fn ping(&mut self, only: Option<u64>, wall_ms: i64) -> Vec<u64> {
        let targets = self.open_conns(only, |_| true);
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
    pub(super) fn disconnect(&mut self, only: Option<u64>, now: Instant, wall_ms: i64) -> Vec<u64> {
        let grace = Duration::from_millis(self.settings.disconnect_grace_ms);
        let targets = self.open_conns(only, |c| !c.draining);
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
    pub(super) fn cut(&mut self, only: Option<u64>, how: fn() -> Outgoing) -> Vec<u64> {
        let targets = self.open_conns(only, |_| true);
        for id in &targets {
            if let Some(conn) = self.conns.get(id) {
                let _ = conn.send(how());
            }
        }
        targets
    }

    /// Handles one upstream text message of connection `conn_id`; returns whether something
    /// became due at once (a duplicate to send), so the dispatcher must run.
    pub(super) fn on_upstream(
        &mut self,
        conn_id: u64,
        text: &str,
        now: Instant,
        wall_ms: i64,
    ) -> bool {
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
    pub(super) fn idle(&self, logged: u64) -> bool {
        self.cursor >= logged && self.pending.is_empty()
    }

    /// The view served by `GET /_sim/stream`.
    pub(super) fn to_json(&self) -> Value {
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

#[cfg(test)]
mod tests;
