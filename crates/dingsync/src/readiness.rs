//! Whether DingTalk is reachable, as `/readyz` reports it (issue 18 B7).
//!
//! Why a real call: the access token is cached for two hours, so "can we get a token" stayed
//! true while DingTalk was paused or gone, and `/readyz` kept answering 200 "ready" while
//! nothing could be synced. The probe reads the root department (one cheap call, bounded by
//! [`PROBE_TIMEOUT`]).
//!
//! Why a grace period: one failed call is a blip (a DingTalk deploy, a dropped connection, a
//! moment of saturated budget); a load balancer that drops the service for it makes things
//! worse. So an unreachable DingTalk is "ready, degraded" (200, with the reason in the body)
//! until it has failed for `[dingtalk] ready_grace_secs`, then 503 with since when and why. The
//! first success ends the failure. Refused credentials are not a blip: not ready at once.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use dingtalk_client::{ClientError, DingTalkClient};

/// How long one probe may take before it counts as a failure.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What `/readyz` says about DingTalk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The probe succeeded.
    Reachable,
    /// Failing, but for less than the grace period: still ready; the text says why.
    Degraded(String),
    /// Not ready; the text says since when and why.
    NotReady(String),
}

/// The failure streak of DingTalk probes; cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct Reachability {
    grace: Duration,
    /// When the current streak of failures began (Unix ms).
    failing_since_ms: Arc<Mutex<Option<i64>>>,
}

impl Reachability {
    /// No failure yet; `grace` is how long failures are tolerated.
    pub fn new(grace: Duration) -> Self {
        Self {
            grace,
            failing_since_ms: Arc::default(),
        }
    }

    /// Folds one probe's outcome at `now_ms` into the streak. `refused` is a failure that no
    /// waiting cures (credentials refused).
    pub fn observe(&self, outcome: Result<(), (String, bool)>, now_ms: i64) -> Verdict {
        let mut since = self
            .failing_since_ms
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (error, refused) = match outcome {
            Ok(()) => {
                *since = None;
                return Verdict::Reachable;
            }
            Err(e) => e,
        };
        let started = *since.get_or_insert(now_ms);
        let for_ms = now_ms.saturating_sub(started).max(0);
        let grace_ms = i64::try_from(self.grace.as_millis()).unwrap_or(i64::MAX);
        let started_at = crate::commands::rfc3339(started);
        if refused {
            Verdict::NotReady(format!("dingtalk: {error}"))
        } else if for_ms >= grace_ms {
            Verdict::NotReady(format!(
                "dingtalk: unreachable since {started_at} ({}s, longer than the {}s grace \
                 period, [dingtalk] ready_grace_secs): {error}",
                for_ms / 1000,
                self.grace.as_secs()
            ))
        } else {
            Verdict::Degraded(format!(
                "dingtalk: failing since {started_at} ({}s, within the {}s grace period): {error}",
                for_ms / 1000,
                self.grace.as_secs()
            ))
        }
    }

    /// Probes DingTalk with `client` and folds the outcome in.
    pub async fn probe(&self, client: &DingTalkClient, now_ms: i64) -> Verdict {
        let call = async {
            client.ensure_token().await?;
            client
                .dept_get(dingtalk_proto::DingDeptId::ROOT)
                .await
                .map(drop)
        };
        let outcome = match tokio::time::timeout(PROBE_TIMEOUT, call).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err((e.to_string(), matches!(e, ClientError::Auth { .. }))),
            Err(_) => Err((format!("no answer within {PROBE_TIMEOUT:?}"), false)),
        };
        self.observe(outcome, now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_tolerated_for_the_grace_period_then_reported_with_since_when() {
        let r = Reachability::new(Duration::from_secs(30));
        let down = || Err(("could not reach DingTalk".to_owned(), false));
        assert_eq!(r.observe(Ok(()), 0), Verdict::Reachable);
        assert!(
            matches!(r.observe(down(), 1_000), Verdict::Degraded(m) if m.contains("could not reach"))
        );
        assert!(matches!(r.observe(down(), 30_999), Verdict::Degraded(_)));
        let Verdict::NotReady(m) = r.observe(down(), 31_000) else {
            panic!("not ready after the grace period");
        };
        assert!(
            m.contains("since 1970-01-01T00:00:01Z") && m.contains("30s"),
            "{m}"
        );
        assert_eq!(r.observe(Ok(()), 32_000), Verdict::Reachable);
        // A new streak starts from scratch.
        assert!(matches!(r.observe(down(), 40_000), Verdict::Degraded(_)));
        // Refused credentials: not ready at once.
        let refused = Err(("DingTalk refused the app credentials".to_owned(), true));
        assert!(matches!(r.observe(refused, 40_001), Verdict::NotReady(_)));
    }
}
