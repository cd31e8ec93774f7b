//! `/console`: is the sync healthy, is DingTalk's budget holding, is anything piling up.

use serde::{Deserialize, Serialize};

use super::common::Check;
use super::runs::RunSummary;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    pub health: Check,
    pub readiness: Check,
    /// One row per DingTalk API family with its own budget.
    pub budgets: Vec<ApiBudget>,
    pub token: TokenState,
    pub events: EventChannel,
    /// Inbox, outbox and failed list.
    pub backlogs: Vec<Backlog>,
    /// The most recent import, reconcile and catch-up (at most one of each).
    pub last_runs: Vec<RunSummary>,
    /// Everything waiting for a person (same count as the attention page).
    pub attention_count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiBudget {
    pub api: String,
    /// The configured ceiling, calls per second.
    pub qps_limit: f64,
    /// Calls per second over the last minute.
    pub calls_per_sec: f64,
    /// Answers `90018` (or equivalent) received in the last hour.
    pub throttles: u64,
    pub retries: u64,
    pub faults: u64,
}

impl ApiBudget {
    /// Use of the budget in whole percent, for the meter.
    pub fn percent(&self) -> u64 {
        if self.qps_limit <= 0.0 {
            return 0;
        }
        ((self.calls_per_sec / self.qps_limit) * 100.0)
            .clamp(0.0, 100.0)
            .round() as u64
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenState {
    pub valid: bool,
    /// Seconds until the cached access token expires, when one is held.
    pub expires_in_secs: Option<u64>,
    /// Why it is not valid (DingTalk's answer to the last refresh), or empty.
    pub reason: String,
}

/// How DingTalk's events reach us: a Stream connection or the HTTP callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventChannel {
    /// `stream` or `callback`.
    pub mode: String,
    /// For a Stream: connected now. For a callback: the last push was accepted.
    pub healthy: bool,
    /// When the last event was accepted, if ever.
    pub last_event_at: Option<String>,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backlog {
    /// `inbox`, `outbox` or `failed`.
    pub queue: String,
    pub count: u64,
    /// Age of the oldest entry, seconds; `None` when empty.
    pub oldest_age_secs: Option<u64>,
}
