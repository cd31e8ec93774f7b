//! The rate budget: how many calls per API path this process may make, shared by every task.
//!
//! DingTalk allows each app `qps` calls per API in any sliding 1 s window, counted when calls
//! *arrive*, and answers 90018 beyond that. Learning the limit from 90018s wastes calls and a
//! second each time, so the client takes a [`Permit`] before every call instead. [`RateBudget`]
//! is the seam: the in-process [`SlidingWindowBudget`] is the default, and a budget shared by
//! several instances (through the database) can replace it without touching the client.
//!
//! Why permits and not just start times: the client cannot see when a call arrives, only when it
//! left and when its answer came back. Spacing *start* times by a window fails as soon as one
//! call is delayed on its way (a busy CPU, a new connection) and arrives next to the following
//! batch — the first version of this module did exactly that and drew 90018s under load. What
//! the client does know is that a call arrived before its answer did. So a permit occupies its
//! slot while the call is in flight and for one window after the answer; the next call on that
//! slot starts no earlier than `answer + window ≥ arrival + window`, whatever the jitter. At most
//! `qps` calls are in flight or recently answered per path, and the cost is one round trip per
//! window, a few percent against a real server.

use std::{
    collections::{HashMap, VecDeque},
    fmt,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::future::BoxFuture;
use tokio::{sync::Notify, time::Instant};

/// Something that hands out permission to call an API path. Implementations must be cheap to
/// call concurrently.
pub trait RateBudget: Send + Sync + fmt::Debug {
    /// Waits until one more call to `api` fits the budget. Hold the permit until the answer
    /// has arrived (or the call was abandoned), then drop it.
    fn acquire<'a>(&'a self, api: &'a str) -> BoxFuture<'a, Permit>;
}

/// Permission for one call; dropping it tells the budget the call is over.
pub struct Permit {
    /// What to do when the call is over (nothing for unlimited budgets).
    on_release: Option<Box<dyn FnOnce() + Send>>,
}

impl Permit {
    /// A permit that runs `on_release` when dropped.
    pub fn new(on_release: impl FnOnce() + Send + 'static) -> Self {
        Self {
            on_release: Some(Box::new(on_release)),
        }
    }

    /// A permit with nothing to release.
    pub fn unlimited() -> Self {
        Self { on_release: None }
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").finish_non_exhaustive()
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(release) = self.on_release.take() {
            release();
        }
    }
}

/// The slots of one API path.
#[derive(Debug, Default)]
struct Slots {
    /// Calls granted and not yet answered.
    in_flight: usize,
    /// When recent calls were answered, oldest first; each blocks its slot for one window.
    answered: VecDeque<Instant>,
}

/// What a caller must do before asking again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Go ahead: the slot is taken.
    Granted,
    /// Sleep until this instant, when the oldest answered slot frees up.
    Until(Instant),
    /// Every slot is in flight; wait for an answer.
    ForAnswer,
}

impl Slots {
    /// Tries to take a slot at `now`.
    fn try_grant(&mut self, now: Instant, qps: usize, window: Duration) -> Wait {
        while self.answered.front().is_some_and(|&t| t + window <= now) {
            self.answered.pop_front();
        }
        if self.in_flight + self.answered.len() < qps {
            self.in_flight += 1;
            return Wait::Granted;
        }
        match self.answered.front() {
            Some(&oldest) => Wait::Until(oldest + window),
            None => Wait::ForAnswer,
        }
    }

    /// Marks one call answered at `now`.
    fn release(&mut self, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.answered.push_back(now);
    }
}

/// The state shared between the budget and its outstanding permits.
#[derive(Debug)]
struct Shared {
    /// Calls allowed per window and path; 0 disables the budget.
    qps: usize,
    /// The window length (DingTalk's 1 s, optionally plus a margin).
    window: Duration,
    /// Slots per path.
    paths: Mutex<HashMap<String, Slots>>,
    /// Woken whenever a call is answered, for callers waiting on [`Wait::ForAnswer`].
    answered: Notify,
}

impl Shared {
    fn slots<R>(&self, api: &str, f: impl FnOnce(&mut Slots) -> R) -> R {
        // A poisoned lock only means a panic elsewhere mid-update; the counts are still a valid
        // (if conservative) record.
        let mut paths = self.paths.lock().unwrap_or_else(|p| p.into_inner());
        f(paths.entry(api.to_owned()).or_default())
    }
}

/// An exact, jitter-proof sliding-window budget for one process (see the module doc).
#[derive(Debug, Clone)]
pub struct SlidingWindowBudget {
    /// Shared with every permit so a dropped permit can free its slot.
    shared: Arc<Shared>,
}

impl SlidingWindowBudget {
    /// A budget of `qps` calls per `window` for every API path; `qps == 0` is unlimited.
    pub fn new(qps: u32, window: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                qps: qps as usize,
                window,
                paths: Mutex::new(HashMap::new()),
                answered: Notify::new(),
            }),
        }
    }
}

impl RateBudget for SlidingWindowBudget {
    fn acquire<'a>(&'a self, api: &'a str) -> BoxFuture<'a, Permit> {
        Box::pin(async move {
            let shared = &self.shared;
            if shared.qps == 0 {
                return Permit::unlimited();
            }
            loop {
                // Register for wake-ups before looking, so an answer between the look and the
                // wait is not missed.
                let notified = shared.answered.notified();
                match shared.slots(api, |s| {
                    s.try_grant(Instant::now(), shared.qps, shared.window)
                }) {
                    Wait::Granted => break,
                    Wait::Until(at) => tokio::time::sleep_until(at).await,
                    Wait::ForAnswer => notified.await,
                }
            }
            let shared = Arc::clone(shared);
            let api = api.to_owned();
            Permit::new(move || {
                shared.slots(&api, |s| s.release(Instant::now()));
                shared.answered.notify_waiters();
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_secs(1);

    #[test]
    fn slots_fill_then_wait_for_answers_then_for_the_window() {
        let t0 = Instant::now();
        let mut s = Slots::default();
        for _ in 0..3 {
            assert_eq!(s.try_grant(t0, 3, W), Wait::Granted);
        }
        assert_eq!(s.try_grant(t0, 3, W), Wait::ForAnswer, "all in flight");
        let answered = t0 + Duration::from_millis(200);
        s.release(answered);
        // The slot frees one window after the answer, not after the start.
        assert_eq!(s.try_grant(answered, 3, W), Wait::Until(answered + W));
        assert_eq!(s.try_grant(answered + W, 3, W), Wait::Granted);
    }

    #[test]
    fn arrivals_are_a_window_apart_whatever_the_delay_in_flight() {
        // Model: each call arrives at some point between its grant and its answer. Whatever
        // that point is, the answer-based slot keeps any `qps + 1` consecutive arrivals more
        // than a window apart.
        let t0 = Instant::now();
        let mut s = Slots::default();
        let qps = 4;
        let mut arrivals = Vec::new();
        let mut now = t0;
        let mut pending: Vec<(Instant, Instant)> = Vec::new(); // (arrival, answer)
        for i in 0..40u64 {
            loop {
                match s.try_grant(now, qps, W) {
                    Wait::Granted => break,
                    Wait::Until(at) => now = at,
                    Wait::ForAnswer => {
                        pending.sort_by_key(|p| p.1);
                        let (_, answer) = pending.remove(0);
                        // The budget learns of the answer when it comes, never earlier.
                        now = now.max(answer);
                        s.release(now);
                    }
                }
            }
            // Wildly varying transit: up to 700 ms to arrive, answered 10 ms after arriving.
            let arrival = now + Duration::from_millis((i * 389) % 700);
            arrivals.push(arrival);
            pending.push((arrival, arrival + Duration::from_millis(10)));
        }
        arrivals.sort();
        for pair in arrivals.windows(qps + 1) {
            assert!(
                pair[qps] - pair[0] >= W,
                "{} arrivals within {:?}",
                qps + 1,
                pair[qps] - pair[0]
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn permits_gate_calls_per_path() {
        let budget = SlidingWindowBudget::new(2, W);
        let t0 = Instant::now();
        let a1 = budget.acquire("/a").await;
        let a2 = budget.acquire("/a").await;
        let _b = budget.acquire("/b").await;
        assert_eq!(Instant::now(), t0, "within budget: no waiting");
        let waiter = {
            let budget = budget.clone();
            tokio::spawn(async move {
                let _p = budget.acquire("/a").await;
                Instant::now()
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(a1); // answered at t0 + 300 ms
        let granted = waiter.await.unwrap();
        assert_eq!(granted, t0 + Duration::from_millis(300) + W);
        drop(a2);
    }

    #[tokio::test(start_paused = true)]
    async fn zero_qps_is_unlimited() {
        let budget = SlidingWindowBudget::new(0, W);
        let t0 = Instant::now();
        let permits: Vec<_> =
            futures::future::join_all((0..1000).map(|_| budget.acquire("/a"))).await;
        assert_eq!(permits.len(), 1000);
        assert_eq!(Instant::now(), t0);
    }
}
