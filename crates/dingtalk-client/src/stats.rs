//! Per-endpoint counters: the hooks the service exports to Prometheus and shows on its admin
//! page (calls, errors, throttles, retries, token refreshes, and the last error per endpoint).
//!
//! Failures are also sorted by kind, because an operator reading them after an incident asks
//! "was DingTalk down, slow, unreachable or just throttling us?": a *fault* is a failure the
//! client retries that is not a throttle (system busy `-1`, HTTP 5xx, a timeout, a broken
//! connection), counted once per kind.
//!
//! Counting is a short critical section per HTTP attempt, negligible next to the request itself,
//! so a plain mutex beats a pile of atomics here and keeps the snapshot consistent.

use std::{collections::BTreeMap, sync::Mutex};

use crate::ClientError;

/// Counters of one API path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// HTTP attempts made (retries and token replays included).
    pub calls: u64,
    /// Attempts that failed for any reason.
    pub errors: u64,
    /// Attempts answered with a throttle (90018, 90002, 90005, 90006, HTTP 429).
    pub throttles: u64,
    /// Retries scheduled after a retryable failure.
    pub retries: u64,
    /// Calls replayed once after the token was refreshed.
    pub token_replays: u64,
    /// Attempts answered "system busy" (`-1`), a gateway call timeout, or an HTTP 5xx.
    pub server_errors: u64,
    /// Attempts that got no answer within the request timeout.
    pub timeouts: u64,
    /// Attempts whose connection could not be made or broke.
    pub transport_errors: u64,
    /// The last failure, rendered (never contains secrets).
    pub last_error: Option<String>,
}

impl EndpointStats {
    /// Server errors, timeouts and broken connections together.
    pub fn faults(&self) -> u64 {
        self.server_errors + self.timeouts + self.transport_errors
    }
}

/// A snapshot of every endpoint's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Counters per API path.
    pub endpoints: BTreeMap<&'static str, EndpointStats>,
    /// Access tokens fetched (the first one and every refresh, ahead of expiry or after a
    /// rejection).
    pub token_fetches: u64,
}

impl ClientStats {
    /// Total attempts over all endpoints.
    pub fn total_calls(&self) -> u64 {
        self.endpoints.values().map(|e| e.calls).sum()
    }

    /// Total throttle answers over all endpoints.
    pub fn total_throttles(&self) -> u64 {
        self.endpoints.values().map(|e| e.throttles).sum()
    }

    /// Total retries over all endpoints.
    pub fn total_retries(&self) -> u64 {
        self.endpoints.values().map(|e| e.retries).sum()
    }

    /// Total faults (server errors, timeouts, broken connections) over all endpoints.
    pub fn total_faults(&self) -> u64 {
        self.endpoints.values().map(EndpointStats::faults).sum()
    }

    /// The counters of one path (zero if it was never called).
    pub fn endpoint(&self, api: &str) -> EndpointStats {
        self.endpoints.get(api).cloned().unwrap_or_default()
    }
}

/// The live counters behind [`ClientStats`].
#[derive(Debug, Default)]
pub(crate) struct StatsRecorder {
    /// Counters per path; a snapshot clones this map.
    endpoints: Mutex<BTreeMap<&'static str, EndpointStats>>,
    /// Tokens fetched; not per path because the token belongs to the whole client.
    token_fetches: std::sync::atomic::AtomicU64,
}

impl StatsRecorder {
    fn with<R>(&self, api: &'static str, f: impl FnOnce(&mut EndpointStats) -> R) -> R {
        // A poisoned lock only means a panic elsewhere mid-increment; counters stay usable.
        let mut map = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        f(map.entry(api).or_default())
    }

    pub(crate) fn call(&self, api: &'static str) {
        self.with(api, |e| e.calls += 1);
    }

    pub(crate) fn error(&self, api: &'static str, err: &ClientError) {
        let rendered = err.to_string();
        let throttle = err.is_throttle();
        let fault = FaultKind::of(err);
        self.with(api, |e| {
            e.errors += 1;
            if throttle {
                e.throttles += 1;
            }
            match fault {
                Some(FaultKind::Server) => e.server_errors += 1,
                Some(FaultKind::Timeout) => e.timeouts += 1,
                Some(FaultKind::Transport) => e.transport_errors += 1,
                None => {}
            }
            e.last_error = Some(rendered);
        });
    }

    pub(crate) fn retry(&self, api: &'static str) {
        self.with(api, |e| e.retries += 1);
    }

    pub(crate) fn token_replay(&self, api: &'static str) {
        self.with(api, |e| e.token_replays += 1);
    }

    pub(crate) fn token_fetch(&self) {
        self.token_fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> ClientStats {
        let map = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        ClientStats {
            endpoints: map.clone(),
            token_fetches: self
                .token_fetches
                .load(std::sync::atomic::Ordering::Relaxed),
        }
    }
}

/// How a retryable, non-throttle failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FaultKind {
    /// DingTalk answered, but with "busy" or a 5xx.
    Server,
    /// DingTalk did not answer in time.
    Timeout,
    /// The connection failed or broke.
    Transport,
}

impl FaultKind {
    fn of(err: &ClientError) -> Option<Self> {
        if !err.is_retryable() || err.is_throttle() {
            return None;
        }
        Some(match err {
            ClientError::Timeout { .. } => Self::Timeout,
            ClientError::Transport { .. } => Self::Transport,
            _ => Self::Server,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_last_error() {
        let rec = StatsRecorder::default();
        rec.call("/a");
        rec.call("/a");
        rec.error(
            "/a",
            &ClientError::Http {
                api: "/a",
                status: 502,
            },
        );
        rec.error(
            "/a",
            &ClientError::Api {
                api: "/a",
                errcode: dingtalk_proto::ErrCode::APP_API_QPS,
                sub_code: None,
                errmsg: "too fast".into(),
                request_id: None,
                prior_attempt_may_have_succeeded: false,
            },
        );
        rec.error(
            "/a",
            &ClientError::Timeout {
                api: "/a",
                timeout: std::time::Duration::from_secs(5),
            },
        );
        rec.error(
            "/a",
            &ClientError::Api {
                api: "/a",
                errcode: dingtalk_proto::ErrCode(60003),
                sub_code: None,
                errmsg: "no such user".into(),
                request_id: None,
                prior_attempt_may_have_succeeded: false,
            },
        );
        rec.retry("/a");
        rec.token_fetch();
        let snap = rec.snapshot();
        let a = snap.endpoint("/a");
        assert_eq!((a.calls, a.errors, a.throttles, a.retries), (2, 4, 1, 1));
        // The 502 and the timeout are faults; the throttle and the validation error are not.
        assert_eq!((a.server_errors, a.timeouts, a.transport_errors), (1, 1, 0));
        assert_eq!(snap.total_faults(), 2);
        assert_eq!(snap.total_retries(), 1);
        assert_eq!(snap.token_fetches, 1);
        assert!(a.last_error.unwrap().contains("60003"));
        assert_eq!(snap.total_calls(), 2);
        assert_eq!(snap.endpoint("/never").calls, 0);
    }
}
