//! The rate budget: how many calls per API path this process may start, shared by every task.
//!
//! DingTalk allows each app `qps` calls per API in any sliding 1 s window and answers 90018
//! beyond that. Learning the limit from 90018s wastes calls and a second each time, so the client
//! reserves a slot before every call instead. [`RateBudget`] is the seam: the in-process
//! [`SlidingWindowBudget`] is the default, and a budget shared by several instances (through the
//! database) can replace it without touching the client.
//!
//! The sliding window is kept exactly, as reservations: for each path we remember the start
//! times of the last `qps` calls (some may be in the future: reservations made by tasks that are
//! still waiting). A new call may start at `max(now, (qps-th latest start) + window)`. Start times
//! are therefore non-decreasing and any `window` holds at most `qps` starts, which is the
//! server's rule with `window` ≥ 1 s. Reserving at a future instant also makes waiting fair
//! (first come, first served) without a wake-up storm.

use std::{
    collections::{HashMap, VecDeque},
    fmt,
    sync::Mutex,
    time::Duration,
};

use futures::future::BoxFuture;
use tokio::time::Instant;

/// Something that hands out permission to call an API path. Implementations must be cheap to
/// call concurrently; `acquire` resolves when the caller may send its request.
pub trait RateBudget: Send + Sync + fmt::Debug {
    /// Waits until one more call to `api` fits the budget, and records it.
    fn acquire<'a>(&'a self, api: &'a str) -> BoxFuture<'a, ()>;
}

/// An exact sliding-window budget for one process.
#[derive(Debug)]
pub struct SlidingWindowBudget {
    /// Calls allowed per window and path; 0 disables the budget.
    qps: u32,
    /// The window length (≥ the server's 1 s, plus a margin for network jitter).
    window: Duration,
    /// Start times of the last `qps` calls per path, oldest first.
    starts: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl SlidingWindowBudget {
    /// A budget of `qps` calls per `window` for every API path.
    pub fn new(qps: u32, window: Duration) -> Self {
        Self {
            qps,
            window,
            starts: Mutex::new(HashMap::new()),
        }
    }

    /// Reserves the next start time for `api` at or after `now`.
    fn reserve(&self, api: &str, now: Instant) -> Instant {
        if self.qps == 0 {
            return now;
        }
        // A poisoned lock only means another task panicked mid-update; the deque is still a
        // valid (if conservative) record, so keep using it.
        let mut starts = self
            .starts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let queue = starts.entry(api.to_owned()).or_default();
        next_start(queue, now, self.qps as usize, self.window)
    }
}

/// The pure core: given the last `qps` start times, when may the next call start? Records it.
fn next_start(
    queue: &mut VecDeque<Instant>,
    now: Instant,
    qps: usize,
    window: Duration,
) -> Instant {
    let start = if queue.len() < qps {
        // Fewer than `qps` calls ever: only keep starts in order.
        queue.back().map_or(now, |&last| last.max(now))
    } else {
        let oldest = queue.pop_front().unwrap_or(now);
        (oldest + window).max(now)
    };
    queue.push_back(start);
    start
}

impl RateBudget for SlidingWindowBudget {
    fn acquire<'a>(&'a self, api: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let start = self.reserve(api, Instant::now());
            tokio::time::sleep_until(start).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts the most starts inside any half-open window of length `window`.
    fn max_in_window(starts: &[Instant], window: Duration) -> usize {
        starts
            .iter()
            .map(|&s| starts.iter().filter(|&&t| t >= s && t < s + window).count())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn never_more_than_qps_in_any_window_under_a_burst() {
        let t0 = Instant::now();
        let window = Duration::from_secs(1);
        let mut queue = VecDeque::new();
        // 95 callers arrive at once, then 30 more trickle in.
        let mut starts: Vec<Instant> = (0..95)
            .map(|_| next_start(&mut queue, t0, 20, window))
            .collect();
        for i in 0..30 {
            starts.push(next_start(
                &mut queue,
                t0 + Duration::from_millis(i * 37),
                20,
                window,
            ));
        }
        assert_eq!(max_in_window(&starts, window), 20);
        assert!(
            starts.windows(2).all(|w| w[0] <= w[1]),
            "starts are ordered"
        );
        // The first 20 go at once; the 21st waits exactly one window.
        assert_eq!(starts[19], t0);
        assert_eq!(starts[20], t0 + window);
        // 125 calls at 20 per second need 6 full windows after the first.
        assert_eq!(*starts.last().unwrap(), t0 + window * 6);
    }

    #[test]
    fn idle_time_is_not_banked() {
        let t0 = Instant::now();
        let window = Duration::from_secs(1);
        let mut queue = VecDeque::new();
        for _ in 0..5 {
            next_start(&mut queue, t0, 5, window);
        }
        // Long after the window, calls start immediately again...
        let later = t0 + Duration::from_secs(10);
        assert_eq!(next_start(&mut queue, later, 5, window), later);
        // ...but only up to the budget.
        for _ in 0..4 {
            assert_eq!(next_start(&mut queue, later, 5, window), later);
        }
        assert_eq!(next_start(&mut queue, later, 5, window), later + window);
    }

    #[tokio::test(start_paused = true)]
    async fn paths_have_separate_budgets_and_waiters_sleep() {
        let budget = SlidingWindowBudget::new(2, Duration::from_secs(1));
        let t0 = Instant::now();
        budget.acquire("/a").await;
        budget.acquire("/a").await;
        budget.acquire("/b").await;
        assert_eq!(Instant::now(), t0, "within budget: no waiting");
        budget.acquire("/a").await;
        assert_eq!(
            Instant::now(),
            t0 + Duration::from_secs(1),
            "third /a call waits a window"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn zero_qps_is_unlimited() {
        let budget = SlidingWindowBudget::new(0, Duration::from_secs(1));
        let t0 = Instant::now();
        for _ in 0..1000 {
            budget.acquire("/a").await;
        }
        assert_eq!(Instant::now(), t0);
    }
}
