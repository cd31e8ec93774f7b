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
//! - A release is one statement, run in a spawned task after the answer, so the caller does not
//!   wait for it.
//! - Takes are batched: within a process, tasks asking for the same API path queue on a local
//!   gate, and the task at the gate takes as many slots as there are tasks waiting (up to
//!   `BATCH_MAX`) in one statement; the others get theirs from a local stock without a round
//!   trip. Measured before batching: one statement per call capped one instance at 330 calls/s
//!   against a bound of 485/s at qps 500, and added a round trip to every call of a crawl.
//!   A stocked slot is held in the database for `STOCK_TTL` longer than a call needs; one not
//!   used within `STOCK_TTL` is handed back unused (free at once: no call was made on it).
//! - When no slot is free the task at the gate sleeps until the earliest cooling slot frees
//!   (the database says when), or until a call of this process is answered. Only when every
//!   slot is held by a call in flight somewhere does it re-ask after a short pause
//!   (`IN_FLIGHT_RECHECK`): a call elsewhere ends at a time nobody can announce without a
//!   notification channel.
//!
//! Failure: a holder that dies frees its slots after `hold` (stock time + request timeout +
//! window); while the database is unreachable, callers wait and retry (never call DingTalk
//! unbudgeted).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dingtalk_client::budget::{Permit, RateBudget};
use directory_store::{SlotTake, Store};
use futures::future::BoxFuture;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Tasks of one process that may ask the database for slots of one API path at the same time.
/// `FOR UPDATE SKIP LOCKED` lets a couple of takers work side by side without waiting on each
/// other, so one slow statement does not stall the path.
const TAKERS: usize = 2;
/// Slots one statement takes at most.
const BATCH_MAX: usize = 32;
/// How long a slot taken for the stock may wait there for a caller.
const STOCK_TTL: Duration = Duration::from_millis(250);
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

/// A slot taken for a caller that has not come for it yet.
#[derive(Debug)]
struct Stocked {
    /// The slot's number.
    slot: i64,
    /// The holder it was taken under (released under the same).
    holder: Arc<str>,
    /// When the statement that took it was sent (before the database's time of taking, so the
    /// age measured from here is never too small).
    taken: Instant,
}

/// One API path's local state.
#[derive(Debug)]
struct PathState {
    /// Limits how many tasks of this process ask the database at once ([`TAKERS`]).
    gate: tokio::sync::Semaphore,
    /// Slots taken in a batch for the tasks waiting behind the one at the gate.
    stock: Mutex<VecDeque<Stocked>>,
    /// Tasks inside `acquire` for this path: the size of the next batch.
    waiting: AtomicUsize,
    /// Whether this process has made sure the path's slot rows exist.
    ensured: AtomicBool,
}

impl PathState {
    fn new() -> Self {
        Self {
            gate: tokio::sync::Semaphore::new(TAKERS),
            stock: Mutex::new(VecDeque::new()),
            waiting: AtomicUsize::new(0),
            ensured: AtomicBool::new(false),
        }
    }

    fn stock(&self) -> std::sync::MutexGuard<'_, VecDeque<Stocked>> {
        // A poisoned lock only means a panic elsewhere; the queue is still valid.
        self.stock.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Counts a task as waiting for as long as it is inside `acquire` (also when it is cancelled).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(counter)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The state behind every clone and permit.
struct Inner {
    /// Where the slots live (a pool of its own in the service, so a busy directory cannot
    /// delay budget statements).
    store: Store,
    /// Calls per API path per window; 0 is unlimited.
    qps: u32,
    /// How long a taken slot stays busy if its release never comes (the holder died): the
    /// longest it may wait in the stock, the longest a call can last, and the window it must be
    /// counted for afterwards.
    hold: Duration,
    /// How long a released slot stays busy: the window counted from the answer.
    window: Duration,
    /// This process's name in slot rows, e.g. `host:pid:random`.
    instance: String,
    /// Makes each permit's holder unique, so a late release never frees a successor's slot.
    next_permit: AtomicU64,
    /// Per API path: the gate, the stock of taken slots, and who is waiting.
    paths: Mutex<HashMap<String, Arc<PathState>>>,
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
                hold: STOCK_TTL + max_call + window,
                window,
                instance: instance.into(),
                next_permit: AtomicU64::new(0),
                paths: Mutex::new(HashMap::new()),
                released: Notify::new(),
            }),
        }
    }

    fn path(&self, api: &str) -> Arc<PathState> {
        // A poisoned lock only means a panic elsewhere; the map is still valid.
        let mut paths = self.inner.paths.lock().unwrap_or_else(|p| p.into_inner());
        paths
            .entry(api.to_owned())
            .or_insert_with(|| Arc::new(PathState::new()))
            .clone()
    }

    /// A slot from the stock that is still fresh; stale ones are handed back on the way.
    fn take_from_stock(&self, api: &str, path: &PathState) -> Option<(i64, Arc<str>)> {
        let mut stale = Vec::new();
        let found = {
            let mut stock = path.stock();
            loop {
                match stock.pop_front() {
                    Some(s) if s.taken.elapsed() < STOCK_TTL => break Some((s.slot, s.holder)),
                    Some(s) => stale.push(s),
                    None => break None,
                }
            }
        };
        for s in stale {
            release(&self.inner, api, s.slot, s.holder, Duration::ZERO);
        }
        found
    }

    /// Hands back whatever in the stock has gone stale (run [`STOCK_TTL`] after stocking, so
    /// slots nobody came for do not stay blocked until their hold runs out).
    fn sweep(&self, api: &str, path: &PathState) {
        let stale: Vec<Stocked> = {
            let mut stock = path.stock();
            let mut stale = Vec::new();
            stock.retain(|s| {
                s.taken.elapsed() < STOCK_TTL || {
                    stale.push(Stocked {
                        slot: s.slot,
                        holder: s.holder.clone(),
                        taken: s.taken,
                    });
                    false
                }
            });
            stale
        };
        for s in stale {
            release(&self.inner, api, s.slot, s.holder, Duration::ZERO);
        }
    }

    /// Takes up to `want` slots for `api` under `holder`, waiting as long as it takes for at
    /// least one; returns them with the time the successful statement was sent.
    async fn take(
        &self,
        api: &str,
        path: &PathState,
        holder: &str,
        want: usize,
    ) -> (Vec<i64>, Instant) {
        let inner = &self.inner;
        let mut error_pause = ERROR_PAUSE.0;
        loop {
            // Registered before asking, so a release between the answer and the wait is seen.
            let released = inner.released.notified();
            let sent = Instant::now();
            let answer = async {
                if !path.ensured.load(Ordering::SeqCst) {
                    inner.store.slots_ensure(api, inner.qps).await?;
                    path.ensured.store(true, Ordering::SeqCst);
                }
                let want = u32::try_from(want).unwrap_or(1);
                inner
                    .store
                    .slot_take(api, inner.qps, holder, inner.hold, want)
                    .await
            }
            .await;
            let wait = match answer {
                Ok(SlotTake::Taken(slots)) => return (slots, sent),
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

    /// A slot for one call: from the stock, or taken (in a batch for the tasks waiting).
    async fn obtain(&self, api: &str, path: &Arc<PathState>) -> (i64, Arc<str>) {
        loop {
            if let Some(found) = self.take_from_stock(api, path) {
                return found;
            }
            // The semaphore is never closed, so acquiring cannot fail; if it somehow did,
            // asking the database without the gate is still correct, only busier.
            let _turn = path.gate.acquire().await.ok();
            if let Some(found) = self.take_from_stock(api, path) {
                return found;
            }
            let want = path
                .waiting
                .load(Ordering::SeqCst)
                .div_ceil(TAKERS)
                .clamp(1, BATCH_MAX);
            let n = self.inner.next_permit.fetch_add(1, Ordering::Relaxed);
            let holder: Arc<str> = Arc::from(format!("{}#{n}", self.inner.instance));
            let (slots, sent) = self.take(api, path, &holder, want).await;
            let mut slots = slots.into_iter();
            let Some(mine) = slots.next() else {
                continue;
            };
            let extra: Vec<Stocked> = slots
                .map(|slot| Stocked {
                    slot,
                    holder: holder.clone(),
                    taken: sent,
                })
                .collect();
            if !extra.is_empty() {
                path.stock().extend(extra);
                let (budget, path, api) = (self.clone(), path.clone(), api.to_owned());
                tokio::spawn(async move {
                    tokio::time::sleep(STOCK_TTL).await;
                    budget.sweep(&api, &path);
                });
            }
            return (mine, holder);
        }
    }
}

impl RateBudget for SharedBudget {
    fn acquire<'a>(&'a self, api: &'a str) -> BoxFuture<'a, Permit> {
        Box::pin(async move {
            if self.inner.qps == 0 {
                return Permit::unlimited();
            }
            let path = self.path(api);
            let (slot, holder) = {
                let _waiting = Waiting::enter(&path.waiting);
                self.obtain(api, &path).await
            };
            let inner = Arc::clone(&self.inner);
            let api = api.to_owned();
            Permit::new(move || {
                let window = inner.window;
                release(&inner, &api, slot, holder, window);
            })
        })
    }
}

/// Starts the release of a slot, busy for `cooldown` from now (a permit's drop cannot wait).
/// Without a runtime, or if the database does not answer, the slot frees itself when its hold
/// runs out — later than needed, never earlier.
fn release(inner: &Arc<Inner>, api: &str, slot: i64, holder: Arc<str>, cooldown: Duration) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let (inner, api) = (Arc::clone(inner), api.to_owned());
    runtime.spawn(async move {
        match inner
            .store
            .slot_release(&api, slot, &holder, cooldown)
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
