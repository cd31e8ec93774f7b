//! Per-endpoint counters: the hooks the service exports to Prometheus and shows on its admin
//! page (calls, errors, throttles, retries, token refreshes, and the last error per endpoint).
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
    /// The last failure, rendered (never contains secrets).
    pub last_error: Option<String>,
}

/// A snapshot of every endpoint's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Counters per API path.
    pub endpoints: BTreeMap<&'static str, EndpointStats>,
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
        self.with(api, |e| {
            e.errors += 1;
            if throttle {
                e.throttles += 1;
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

    pub(crate) fn snapshot(&self) -> ClientStats {
        let map = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        ClientStats {
            endpoints: map.clone(),
        }
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
        rec.retry("/a");
        let snap = rec.snapshot();
        let a = snap.endpoint("/a");
        assert_eq!((a.calls, a.errors, a.throttles, a.retries), (2, 2, 1, 1));
        assert!(a.last_error.unwrap().contains("90018"));
        assert_eq!(snap.total_calls(), 2);
        assert_eq!(snap.endpoint("/never").calls, 0);
    }
}
