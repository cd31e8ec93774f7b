//! The simulator's one source of time.
//!
//! Every time the simulator *reads* (token expiry, the rate limiter's one-second windows, ticket
//! lifetimes, Stream redelivery deadlines and pings, push retry waits, event and attempt
//! timestamps) comes from the [`Clock`] held in the shared state, never from `Instant::now()`
//! or `SystemTime::now()` directly. That way a test can start the simulator with
//! [`Clock::settable`] and move time forward by hours in a millisecond (a token expiring, a
//! redelivery coming due) instead of sleeping.
//!
//! Waits that model the *network* are left on real time on purpose: the `latency_ms` added to
//! every answer, a slow fault holding an answer back, and the deadline of one HTTP push. They
//! stand for time spent on a wire, which a settable clock does not control; a test that froze
//! them would hang instead of being deterministic.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

/// Where the simulator reads the time. Cloning shares the same clock (a test keeps one clone to
/// move the time the running simulator sees).
#[derive(Clone)]
pub struct Clock {
    source: Source,
}

#[derive(Clone)]
enum Source {
    /// The machine's clocks.
    System,
    /// Time that moves only when [`Clock::advance`] is called.
    Settable(Arc<Settable>),
}

/// The state of a settable clock.
struct Settable {
    /// The current (monotonic) instant and the matching Unix milliseconds.
    now: Mutex<(Instant, i64)>,
    /// Wakes sleepers when the time moves.
    moved: Notify,
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::System => f.write_str("Clock::System"),
            Source::Settable(_) => f.write_str("Clock::Settable"),
        }
    }
}

impl Clock {
    /// The machine's clocks (the default).
    pub fn system() -> Self {
        Self {
            source: Source::System,
        }
    }

    /// A clock that starts at the machine's current time and then stands still until
    /// [`Clock::advance`] moves it.
    pub fn settable() -> Self {
        let start = (Instant::now(), system_wall_ms());
        Self {
            source: Source::Settable(Arc::new(Settable {
                now: Mutex::new(start),
                moved: Notify::new(),
            })),
        }
    }

    /// Moves a settable clock forward by `by` and wakes everything waiting on it; the system
    /// clock cannot be moved, so this does nothing there.
    pub fn advance(&self, by: Duration) {
        if let Source::Settable(s) = &self.source {
            {
                let mut now = s.now.lock().unwrap_or_else(PoisonError::into_inner);
                now.0 += by;
                now.1 = now
                    .1
                    .saturating_add(i64::try_from(by.as_millis()).unwrap_or(i64::MAX));
            }
            s.moved.notify_waiters();
        }
    }

    /// The current instant, for deadlines and windows.
    pub fn now(&self) -> Instant {
        match &self.source {
            Source::System => Instant::now(),
            Source::Settable(s) => s.now.lock().unwrap_or_else(PoisonError::into_inner).0,
        }
    }

    /// Milliseconds since the Unix epoch, for the timestamps DingTalk puts in events and frames.
    pub fn wall_ms(&self) -> i64 {
        match &self.source {
            Source::System => system_wall_ms(),
            Source::Settable(s) => s.now.lock().unwrap_or_else(PoisonError::into_inner).1,
        }
    }

    /// Waits until the clock reads `at` or later.
    pub async fn sleep_until(&self, at: Instant) {
        match &self.source {
            Source::System => tokio::time::sleep_until(at.into()).await,
            Source::Settable(s) => loop {
                // Register as a waiter before checking, so an advance between the check and
                // the wait is not missed (`notify_waiters` wakes only registered waiters).
                let moved = s.moved.notified();
                tokio::pin!(moved);
                moved.as_mut().enable();
                if self.now() >= at {
                    return;
                }
                moved.await;
            },
        }
    }

    /// Waits for `wait` of this clock's time.
    pub async fn sleep(&self, wait: Duration) {
        self.sleep_until(self.now() + wait).await;
    }
}

/// The machine's Unix milliseconds (0 before 1970, which no real clock reads).
fn system_wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn settable_clock_moves_only_when_advanced_and_wakes_sleepers() {
        let clock = Clock::settable();
        let (t0, w0) = (clock.now(), clock.wall_ms());
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(clock.now(), t0);
        assert_eq!(clock.wall_ms(), w0);

        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move { clock.sleep(Duration::from_secs(3600)).await })
        };
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::from_secs(1800));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::from_secs(1800));
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .expect("the sleeper wakes once the hour has passed")
            .expect("the sleeper does not panic");
        assert_eq!(clock.now(), t0 + Duration::from_secs(3600));
        assert_eq!(clock.wall_ms(), w0 + 3_600_000);
    }

    #[test]
    fn system_clock_ignores_advance() {
        let clock = Clock::system();
        let before = clock.now();
        clock.advance(Duration::from_secs(3600));
        assert!(clock.now() < before + Duration::from_secs(60));
    }
}
