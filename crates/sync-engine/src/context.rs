//! The engine's shared context: the store, the DingTalk client, the policy and the clock that
//! every worker (import, apply, catch-up, push, plan) is handed.
//!
//! The clock is a trait object rather than `SystemTime::now()` calls scattered through the
//! engine, so tests can pin time (audit rows, retry schedules and leases become deterministic)
//! while production passes [`SystemClock`]. Everything in the context is cheap to clone, so a
//! worker task takes its own copy.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use dingtalk_client::DingTalkClient;
use directory_store::Store;

use crate::policy::{LiveThreshold, Policy};

/// A source of the current time in Unix milliseconds.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The real wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        // A clock before 1970 is a broken host; 0 keeps the engine running and is visibly wrong
        // in the audit log rather than a panic.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// A clock that only moves when told to, for tests.
#[derive(Debug, Default)]
pub struct ManualClock {
    /// The current time in Unix milliseconds.
    now_ms: AtomicI64,
}

impl ManualClock {
    /// A clock standing at `now_ms`.
    pub fn new(now_ms: i64) -> Self {
        Self {
            now_ms: AtomicI64::new(now_ms),
        }
    }

    /// Moves the clock forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.now_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sets the clock to `now_ms`.
    pub fn set(&self, now_ms: i64) {
        self.now_ms.store(now_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}

/// What every engine worker needs. Cheap to clone: the store is a pool handle, the client an
/// `Arc`, and the policy and clock are shared.
#[derive(Debug, Clone)]
pub struct SyncContext {
    /// The OA directory and the sync bookkeeping (id map, queues, base snapshots, audit).
    pub store: Store,
    /// DingTalk, with its token, rate budget and retries.
    pub client: DingTalkClient,
    /// What is synced and how conflicts and deletions are decided.
    pub policy: Arc<Policy>,
    /// The deletion threshold in effect (starts as `policy.deletions`; the service's SIGHUP
    /// replaces it live, for every clone of the context).
    pub deletions: LiveThreshold,
    /// The time source for audit rows, leases and retry schedules.
    pub clock: Arc<dyn Clock>,
    /// The name this process writes into audit rows and leases (`engine@host`, a test name).
    pub actor: String,
}

impl SyncContext {
    /// A context with the system clock and the actor name `engine`.
    pub fn new(store: Store, client: DingTalkClient, policy: Policy) -> Self {
        Self {
            store,
            client,
            deletions: LiveThreshold::new(policy.deletions),
            policy: Arc::new(policy),
            clock: Arc::new(SystemClock),
            actor: "engine".to_owned(),
        }
    }

    /// The same context with another clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The same context deciding deletions by `deletions` (a handle shared with whoever may
    /// change it, such as the service's reload and its SCIM endpoint).
    pub fn with_deletions(mut self, deletions: LiveThreshold) -> Self {
        self.deletions = deletions;
        self
    }

    /// The same context with another actor name.
    pub fn with_actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = actor.into();
        self
    }

    /// The current time from the context's clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1_000);
        assert_eq!(c.now_ms(), 1_000);
        c.advance(250);
        assert_eq!(c.now_ms(), 1_250);
        c.set(5);
        assert_eq!(c.now_ms(), 5);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now_ms() > 1_577_836_800_000);
    }
}
