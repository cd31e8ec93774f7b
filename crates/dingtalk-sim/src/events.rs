//! The ordered log of contacts events the org's changes produce.
//!
//! Every successful write (through the DingTalk API or `/_sim`) appends one entry per
//! [`Change`]. The log is the single source of what happened: `GET /_sim/events` serves it, and
//! the pusher walks it with its own cursor, so an event is never lost between "changed" and
//! "pushed" and tests can compare what was pushed against what happened.

use serde_json::{Value, json};

use crate::org::Change;

/// Who made a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A DingTalk API call (the app itself).
    Api,
    /// A `/_sim` administrator action (someone in the DingTalk admin console).
    Admin,
    /// DingTalk copying a branch corp's change into this (trunk) corp (`org::union`).
    Union,
}

impl Origin {
    fn as_str(self) -> &'static str {
        match self {
            Origin::Api => "api",
            Origin::Admin => "admin",
            Origin::Union => "union",
        }
    }
}

/// One event.
#[derive(Debug, Clone)]
pub struct EventRecord {
    /// Position in the log, from 1.
    pub id: u64,
    pub change: Change,
    pub origin: Origin,
    /// When it happened, in Unix milliseconds (DingTalk's `TimeStamp`/`EventTime`).
    pub time_ms: i64,
}

impl EventRecord {
    /// The record as served by `GET /_sim/events`.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "event_type": self.change.event_type(),
            "origin": self.origin.as_str(),
            "time_ms": self.time_ms,
            "data": change_data(&self.change),
        })
    }
}

/// The business fields of a change, in the lowerCamel names of DingTalk's newer payloads.
pub fn change_data(change: &Change) -> Value {
    match change {
        Change::UserModify(ids, diff) => json!({"userId": ids, "diffInfo": diff}),
        Change::UserAdd(ids) | Change::UserLeave(ids) => json!({"userId": ids}),
        Change::DeptCreate(ids) | Change::DeptModify(ids) | Change::DeptRemove(ids) => {
            json!({"deptId": ids})
        }
        Change::LabelMembership {
            users,
            labels,
            action,
        } => json!({"userIdList": users, "labelIdList": labels, "action": action}),
        Change::LabelConfAdd(ids) | Change::LabelConfDel(ids) => json!({"labelIdList": ids}),
        Change::LabelConfModify { labels, pre, post } => json!({
            "labelIdList": labels,
            "preLabelList": pre,
            "postLabelList": post,
        }),
    }
}

/// DingTalk's `eventId` for the log entry `log_id`: 32 hex digits, derived from the simulator's
/// seed so runs repeat. One event has one id on every channel (HTTP push in the new dialect and
/// Stream) and on every retry or redelivery, which is what lets a receiver dedupe across them.
pub fn event_id(seed: u64, log_id: u64) -> String {
    // SplitMix64: a fixed, well-mixed bijection, so distinct log ids give distinct ids.
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    let high = mix(seed ^ 0xE7E7_1D00);
    format!(
        "{:016x}{:016x}",
        mix(high ^ log_id),
        mix(log_id ^ high.rotate_left(17))
    )
}

/// The log itself.
#[derive(Debug, Default)]
pub struct EventLog {
    /// Every event so far, oldest first; `entries[i].id == i + 1`.
    pub entries: Vec<EventRecord>,
}

impl EventLog {
    /// Appends the changes of one call.
    ///
    /// Each event gets a time after the previous event's, even within one millisecond: a
    /// receiver keys a change by type, ids and event time (the failed-push list has no event
    /// id), so two changes of one user in one millisecond (a profile edit and, from another
    /// call, its manager leaving) would otherwise read as one change delivered twice.
    pub fn record(&mut self, changes: Vec<Change>, origin: Origin, time_ms: i64) {
        for change in changes {
            let id = self.entries.len() as u64 + 1;
            let time_ms = self
                .entries
                .last()
                .map_or(time_ms, |last| time_ms.max(last.time_ms + 1));
            self.entries.push(EventRecord {
                id,
                change,
                origin,
                time_ms,
            });
        }
    }

    /// Events after `after` (an id), oldest first.
    pub fn since(&self, after: u64) -> &[EventRecord] {
        let start = usize::try_from(after)
            .unwrap_or(usize::MAX)
            .min(self.entries.len());
        &self.entries[start..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_sequential_and_since_skips_seen_events() {
        let mut log = EventLog::default();
        log.record(
            vec![
                Change::DeptCreate(vec![5]),
                Change::UserAdd(vec!["u".into()]),
            ],
            Origin::Api,
            1,
        );
        log.record(vec![Change::DeptRemove(vec![5])], Origin::Admin, 2);
        assert_eq!(
            log.entries.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(log.since(2).len(), 1);
        assert_eq!(log.since(9).len(), 0);
        assert_eq!(log.entries[1].to_json()["data"]["userId"][0], "u");
    }

    #[test]
    fn event_ids_are_stable_distinct_and_hex() {
        assert_eq!(event_id(1, 5), event_id(1, 5));
        assert_ne!(event_id(1, 5), event_id(1, 6));
        assert_ne!(event_id(1, 5), event_id(2, 5));
        let id = event_id(1, 5);
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
