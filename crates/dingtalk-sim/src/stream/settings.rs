//! Run-time Stream behaviour (`/_sim/stream/settings`): which channel carries events, and the
//! timings of tickets, redelivery, pings and load-balancing disconnects.

use serde::{Deserialize, Serialize};

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
    pub(crate) fn http(self) -> bool {
        matches!(self, Delivery::Http | Delivery::Both)
    }
    pub(crate) fn stream(self) -> bool {
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
    pub(crate) fn apply(&mut self, p: &StreamSettingsPatch) -> Result<(), String> {
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
