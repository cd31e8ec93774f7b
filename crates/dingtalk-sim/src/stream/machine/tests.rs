//! Unit tests of the Stream state machine, with `now` passed in (the socket side is covered by
//! `tests/stream.rs`).

use super::*;
use crate::org::Change;

const CORP: &str = "dingcorp";

fn state() -> StreamState {
    let mut s = StreamState::new(7);
    s.settings.delivery = Delivery::Stream;
    s.settings.ping_interval_ms = 0;
    s.settings.redeliver_after_ms = 1000;
    s
}

fn log_of(n: usize) -> EventLog {
    let mut log = EventLog::default();
    for i in 0..n {
        log.record(
            vec![Change::UserAdd(vec![format!("u{i}")])],
            crate::events::Origin::Admin,
            1_000 + i as i64,
        );
    }
    log
}

/// Opens a connection and returns its id and the receiving end of its frames.
fn connect(s: &mut StreamState, now: Instant) -> (u64, mpsc::UnboundedReceiver<Outgoing>) {
    let ticket = s.issue_ticket(now, true, "test".into());
    let t = s.redeem(&ticket, now).expect("fresh ticket");
    let (tx, rx) = mpsc::unbounded_channel();
    (s.open(t, tx, now, 0), rx)
}

fn frames(rx: &mut mpsc::UnboundedReceiver<Outgoing>) -> Vec<Value> {
    let mut out = Vec::new();
    while let Ok(Outgoing::Frame(text)) = rx.try_recv() {
        out.push(serde_json::from_str(&text).expect("frame is JSON"));
    }
    out
}

fn ack(message_id: &str, code: i64, status: &str) -> String {
    json!({"code": code, "headers": {"messageId": message_id, "contentType": "application/json"},
           "message": "OK", "data": json!({"status": status}).to_string()})
    .to_string()
}

#[test]
fn tickets_are_single_use_and_expire() {
    let now = Instant::now();
    let mut s = state();
    s.settings.ticket_ttl_ms = 90_000;
    let a = s.issue_ticket(now, true, String::new());
    assert!(s.redeem(&a, now).is_some());
    assert!(s.redeem(&a, now).is_none(), "second use refused");
    let b = s.issue_ticket(now, true, String::new());
    assert!(
        s.redeem(&b, now + Duration::from_secs(90)).is_none(),
        "expired at 90 s"
    );
    let c = s.issue_ticket(now, true, String::new());
    assert!(s.redeem(&c, now + Duration::from_secs(89)).is_some());
    assert!(s.redeem("made-up", now).is_none());
    assert_eq!(s.tickets_refused, 3);
}

#[test]
fn events_wait_for_a_connection_then_go_in_order() {
    let now = Instant::now();
    let mut s = state();
    s.take_events(&log_of(3), now);
    assert!(s.step(now, 0, CORP).is_none(), "nothing to wake for");
    assert!(s.deliveries.is_empty());
    let (_, mut rx) = connect(&mut s, now);
    s.step(now, 0, CORP);
    let sent = frames(&mut rx);
    let users: Vec<Value> = sent
        .iter()
        .map(|f| serde_json::from_str::<Value>(f["data"].as_str().expect("string")).expect("json")["userId"][0].clone())
        .collect();
    assert_eq!(users, vec![json!("u0"), json!("u1"), json!("u2")]);
}

#[test]
fn unacked_and_later_events_are_redelivered_with_the_same_event_id() {
    let now = Instant::now();
    let mut s = state();
    let (conn, mut rx) = connect(&mut s, now);
    s.take_events(&log_of(3), now);
    let deadline = s.step(now, 0, CORP).expect("a redelivery deadline");
    assert_eq!(deadline, now + Duration::from_millis(1000));
    let first = frames(&mut rx);
    let mid = |f: &Value| f["headers"]["messageId"].as_str().expect("id").to_owned();
    // Event 0: acked. Event 1: LATER (Java style). Event 2: no answer.
    s.on_upstream(conn, &ack(&mid(&first[0]), 200, "SUCCESS"), now, 1);
    s.on_upstream(conn, &ack(&mid(&first[1]), 200, "LATER"), now, 1);
    assert_eq!(s.pending.len(), 2);
    // Nothing is due before the timeout.
    s.step(now + Duration::from_millis(999), 2, CORP);
    assert!(frames(&mut rx).is_empty());
    s.step(now + Duration::from_millis(1000), 3, CORP);
    let again = frames(&mut rx);
    assert_eq!(again.len(), 2);
    assert_eq!(
        again[0]["headers"]["eventId"],
        first[1]["headers"]["eventId"]
    );
    assert_eq!(
        again[1]["headers"]["eventId"],
        first[2]["headers"]["eventId"]
    );
    assert_ne!(
        mid(&again[0]),
        mid(&first[1]),
        "a new messageId per attempt"
    );
    let outcomes: Vec<&str> = s.deliveries.iter().map(|d| d.outcome).collect();
    assert_eq!(
        outcomes,
        vec!["acked", "refused", "timed_out", "awaiting", "awaiting"]
    );
    // A late answer to the superseded attempt does not count; the current one does.
    s.on_upstream(conn, &ack(&mid(&first[2]), 200, "SUCCESS"), now, 4);
    assert_eq!(s.deliveries[2].outcome, "superseded");
    assert_eq!(s.pending.len(), 2);
    for f in &again {
        s.on_upstream(conn, &ack(&mid(f), 200, "SUCCESS"), now, 5);
    }
    assert!(s.idle(3));
}

#[test]
fn each_event_goes_to_one_of_several_connections_and_draining_ones_get_none() {
    let now = Instant::now();
    let mut s = state();
    let (a, mut rx_a) = connect(&mut s, now);
    let (b, mut rx_b) = connect(&mut s, now);
    s.take_events(&log_of(40), now);
    s.step(now, 0, CORP);
    let (fa, fb) = (frames(&mut rx_a), frames(&mut rx_b));
    assert_eq!(fa.len() + fb.len(), 40, "each event exactly once");
    assert!(!fa.is_empty() && !fb.is_empty(), "both connections used");
    assert_eq!(s.disconnect(Some(a), now, 0), vec![a]);
    let told = frames(&mut rx_a);
    assert_eq!(told[0]["type"], "SYSTEM");
    assert_eq!(told[0]["headers"]["topic"], "disconnect");
    let mut more = EventLog::default();
    for e in log_of(40).entries {
        more.entries.push(e);
    }
    more.record(
        vec![Change::DeptCreate(vec![9]); 10],
        crate::events::Origin::Api,
        5,
    );
    s.take_events(&more, now);
    s.step(now, 0, CORP);
    assert!(
        frames(&mut rx_a).is_empty(),
        "draining connection gets nothing new"
    );
    assert_eq!(frames(&mut rx_b).len(), 10);
    let _ = b;
}

#[test]
fn pings_expect_the_opaque_echoed_and_http_only_takes_nothing() {
    let now = Instant::now();
    let mut s = state();
    let (conn, mut rx) = connect(&mut s, now);
    assert_eq!(s.ping(None, 0), vec![conn]);
    let ping = frames(&mut rx).remove(0);
    assert_eq!(ping["headers"]["topic"], "ping");
    let data = ping["data"].as_str().expect("string").to_owned();
    let echo = json!({"code": 200, "headers": {"messageId": ping["headers"]["messageId"]},
                      "message": "OK", "data": data})
    .to_string();
    s.on_upstream(conn, &echo, now, 0);
    assert_eq!(s.pings[0].echoed, Some(true));

    let mut off = state();
    off.settings.delivery = Delivery::Http;
    off.take_events(&log_of(2), now);
    assert!(off.pending.is_empty());
    assert!(off.idle(2));
}

#[test]
fn disconnected_connections_close_after_the_grace_and_old_ones_are_rotated() {
    let now = Instant::now();
    let mut s = state();
    s.settings.disconnect_grace_ms = 10_000;
    s.settings.disconnect_after_ms = 60_000;
    let (a, mut rx) = connect(&mut s, now);
    // The dispatcher wakes when the connection's life is over.
    assert_eq!(s.step(now, 0, CORP), Some(now + Duration::from_secs(60)));
    let later = now + Duration::from_secs(60);
    assert_eq!(
        s.step(later, 0, CORP),
        Some(later + Duration::from_secs(10)),
        "then when its grace is over"
    );
    let told = frames(&mut rx);
    assert_eq!(told.len(), 1);
    assert_eq!(told[0]["headers"]["topic"], "disconnect");
    assert!(s.conns[&a].draining);
    s.step(later + Duration::from_millis(9_999), 0, CORP);
    assert!(
        rx.try_recv().is_err(),
        "not closed before the grace is over"
    );
    s.step(later + Duration::from_secs(10), 0, CORP);
    assert!(matches!(rx.try_recv(), Ok(Outgoing::Drop)));
}

#[test]
fn duplicates_after_an_ack_keep_the_event_id() {
    let now = Instant::now();
    let mut s = state();
    s.settings.duplicate_rate = 1.0;
    let (conn, mut rx) = connect(&mut s, now);
    s.take_events(&log_of(1), now);
    s.step(now, 0, CORP);
    let first = frames(&mut rx).remove(0);
    let mid = |f: &Value| f["headers"]["messageId"].as_str().expect("id").to_owned();
    assert!(s.on_upstream(conn, &ack(&mid(&first), 200, "SUCCESS"), now, 1));
    s.step(now, 0, CORP);
    let copy = frames(&mut rx).remove(0);
    assert_eq!(copy["headers"]["eventId"], first["headers"]["eventId"]);
    assert_ne!(mid(&copy), mid(&first));
    assert!(!s.on_upstream(conn, &ack(&mid(&copy), 200, "SUCCESS"), now, 2));
    assert!(s.idle(1), "one duplicate only");
}
