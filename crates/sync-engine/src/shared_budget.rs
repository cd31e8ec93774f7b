//! The DingTalk rate budget shared by every instance on one database.
//!
//! DingTalk allows an app `qps` calls per API per second — for the app, not per process. With
//! several `dingsync serve` instances, each keeping its own in-process budget of `qps` would
//! allow `instances × qps` and draw 90018s. [`SharedBudget`] implements the client's
//! [`RateBudget`] on the store's rate slots (`directory_store::slots`): `qps` slots per API path,
//! each taken for the duration of a call and released to cool down one window after the answer,
//! exactly the rule of the in-process `SlidingWindowBudget` (see `dingtalk_client::budget`), but
//! timed by the database server's clock and visible to every instance.
//!
//! Costs and how they are kept small:
//! - One statement to take a slot, one to release it (the release runs in a spawned task after
//!   the answer, so the caller does not wait for it).
//! - Within a process, tasks asking for the same API queue on a local gate, so only a few of
//!   them ([`TAKERS`]) talk to the database at a time: a crawl with 64 tasks in flight does not
//!   send 64 competing statements per freed slot.
//! - When no slot is free the gate holder sleeps until the earliest cooling slot frees (the
//!   database says when), or until a call of this process is answered. Only when every slot is
//!   held by a call in flight somewhere does it re-ask after a short pause ([`IN_FLIGHT_RECHECK`]),
//!   because a call elsewhere ends at a time nobody can announce without a notification channel.
//!
//! Failure: a holder that dies frees its slot after `hold` (request timeout + window); while the
//! database is unreachable, callers wait and retry (never call DingTalk unbudgeted).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dingtalk_client::budget::{Permit, RateBudget};
use directory_store::{SlotTake, Store};
use futures::future::BoxFuture;
use tokio::sync::Notify;

/// Tasks of one process that may ask the database for slots of one API path at the same time:
/// one statement at a time would cap a process at one take per round trip (measured: 330
/// calls/s against a bound of 485/s at qps 500), and `FOR UPDATE SKIP LOCKED` lets a few
/// takers work side by side without waiting on each other.
const TAKERS: usize = 4;
/// How soon the gate holder asks again when every slot is held by a call in flight elsewhere.
const IN_FLIGHT_RECHECK: Duration = Duration::from_millis(20);
/// The first and the longest pause after the database failed to answer.
const ERROR_PAUSE: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(2));

/// A rate budget of `qps` calls per API path per window for every process sharing the store.
#[derive(Clone)]
pub struct SharedBudget {
    /// Shared with every permit, which releases its slot through it.
    inner: Arc<Inner>,
}

/// The state behind every clone and permit.
struct Inner {
    /// Where the slots live (a pool of its own in the service, so a busy directory cannot
    /// delay budget statements).
    store: Store,
    /// Calls per API path per window; 0 is unlimited.
    qps: u32,
    /// How long a taken slot stays busy if its release never comes (the holder died): the
    /// longest a call can last, plus the window it must be counted for afterwards.
    hold: Duration,
    /// How long a released slot stays busy: the window counted from the answer.
    window: Duration,
    /// This process's name in slot rows, e.g. `host:pid:random`.
    instance: String,
    /// Makes each permit's holder unique, so a late release never frees a successor's slot.
    next_permit: AtomicU64,
    /// API paths whose slot rows this process has already made sure exist.
    ensured: Mutex<HashSet<String>>,
    /// One gate per API path: the tasks holding its [`TAKERS`] permits are the only ones of
    /// this process asking the database for that path.
    gates: Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
    /// Woken when a call of this process is answered (its slot starts cooling).
    released: Notify,
}

impl fmt::Debug for SharedBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedBudget")
            .field("qps", &self.inner.qps)
            .field("window", &self.inner.window)
            .field("hold", &self.inner.hold)
            .field("instance", &self.inner.instance)
            .finish_non_exhaustive()
    }
}

impl SharedBudget {
    /// A budget of `qps` calls per path per `window` (counted from each answer), in `store`'s
    /// rate slots. `max_call` is the longest a call can take (the client's request timeout);
    /// `instance` names this process in slot rows (unique per process).
    pub fn new(
        store: Store,
        qps: u32,
        window: Duration,
        max_call: Duration,
        instance: impl Into<String>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                qps,
                hold: max_call + window,
                window,
                instance: instance.into(),
                next_permit: AtomicU64::new(0),
                ensured: Mutex::new(HashSet::new()),
                gates: Mutex::new(HashMap::new()),
                released: Notify::new(),
            }),
        }
    }

    fn gate(&self, api: &str) -> Arc<tokio::sync::Semaphore> {
        // A poisoned lock only means a panic elsewhere; the map is still valid.
        let mut gates = self.inner.gates.lock().unwrap_or_else(|p| p.into_inner());
        gates
            .entry(api.to_owned())
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(TAKERS)))
            .clone()
    }

    async fn ensure(&self, api: &str) -> Result<(), directory_store::StoreError> {
        let known = self
            .inner
            .ensured
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(api);
        if !known {
            self.inner.store.slots_ensure(api, self.inner.qps).await?;
            self.inner
                .ensured
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(api.to_owned());
        }
        Ok(())
    }

    /// Takes a slot for `api`, waiting as long as it takes.
    async fn take(&self, api: &str, holder: &str) -> i64 {
        let inner = &self.inner;
        let mut error_pause = ERROR_PAUSE.0;
        loop {
            // Registered before asking, so a release between the answer and the wait is seen.
            let released = inner.released.notified();
            let answer = match self.ensure(api).await {
                Ok(()) => {
                    inner
                        .store
                        .slot_take(api, inner.qps, holder, inner.hold)
                        .await
                }
                Err(e) => Err(e),
            };
            let wait = match answer {
                Ok(SlotTake::Taken(slot)) => return slot,
                Ok(SlotTake::Busy { cooling, held }) => {
                    error_pause = ERROR_PAUSE.0;
                    let recheck = held.map(|h| h.min(IN_FLIGHT_RECHECK));
                    // Never zero: a slot locked by a concurrent taker looks free in the report.
                    match (cooling, recheck) {
                        (Some(c), Some(r)) => c.min(r),
                        (Some(d), None) | (None, Some(d)) => d,
                        (None, None) => IN_FLIGHT_RECHECK,
                    }
                    .max(Duration::from_millis(1))
                }
                Err(error) => {
                    tracing::warn!(
                        api,
                        error = %error,
                        "the shared rate budget cannot reach the database; waiting"
                    );
                    let pause = error_pause;
                    error_pause = (error_pause * 2).min(ERROR_PAUSE.1);
                    pause
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = released => {}
            }
        }
    }
}

impl RateBudget for SharedBudget {
    fn acquire<'a>(&'a self, api: &'a str) -> BoxFuture<'a, Permit> {
        Box::pin(async move {
            if self.inner.qps == 0 {
                return Permit::unlimited();
            }
            let n = self.inner.next_permit.fetch_add(1, Ordering::Relaxed);
            let holder = format!("{}#{n}", self.inner.instance);
            let slot = {
                let gate = self.gate(api);
                // The semaphore is never closed, so acquiring cannot fail; if it somehow did,
                // asking the database without the gate is still correct, only busier.
                let _turn = gate.acquire().await.ok();
                self.take(api, &holder).await
            };
            let inner = Arc::clone(&self.inner);
            let api = api.to_owned();
            Permit::new(move || release(inner, api, slot, holder))
        })
    }
}

/// Starts the release of a slot (the permit's drop cannot wait). Without a runtime, or if the
/// database does not answer, the slot frees itself when its hold runs out — later than
/// needed, never earlier.
fn release(inner: Arc<Inner>, api: String, slot: i64, holder: String) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        match inner
            .store
            .slot_release(&api, slot, &holder, inner.window)
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::debug!(api, slot, "rate slot expired before its release"),
            Err(error) => tracing::warn!(
                api,
                error = %error,
                "could not release a rate slot; it frees itself when its hold runs out"
            ),
        }
        inner.released.notify_waiters();
    });
}
