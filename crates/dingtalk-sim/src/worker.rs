//! The background-task plumbing both event channels share: the HTTP pusher
//! (`callback_delivery`) and the Stream dispatcher (`stream`) each run tasks that are woken when
//! events are recorded, report progress so a test can wait for "idle", and stop with the
//! simulator. Written once here so the two channels cannot drift in how they wait or stop.

use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;

/// One channel's tasks and their signals.
#[derive(Debug)]
pub(crate) struct Worker {
    /// Wakes the channel's main task (events recorded, a connection opened, an ack came).
    wake: Notify,
    /// Bumped on every progress step, so waiters can re-check "idle".
    progress: watch::Sender<u64>,
    /// Every task of the channel, so shutdown can wait for them.
    pub tracker: TaskTracker,
    /// Cancels every task on shutdown.
    pub stop: CancellationToken,
}

impl Worker {
    pub(crate) fn new(stop: CancellationToken) -> Self {
        Self {
            wake: Notify::new(),
            progress: watch::channel(0).0,
            tracker: TaskTracker::new(),
            stop,
        }
    }

    /// Tells the main task something changed.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Waits until woken; returns false when the simulator stops first.
    pub(crate) async fn woken(&self) -> bool {
        tokio::select! {
            () = self.stop.cancelled() => false,
            () = self.wake.notified() => true,
        }
    }

    /// Waits until woken or until `clock` reads `at` (never, for `None`); returns false when
    /// the simulator stops first.
    pub(crate) async fn woken_or_until(&self, clock: &Clock, at: Option<Instant>) -> bool {
        let due = async {
            match at {
                Some(at) => clock.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = self.stop.cancelled() => false,
            () = self.wake.notified() => true,
            () = due => true,
        }
    }

    /// Waits `wait` of `clock`'s time unless the simulator stops first; returns false when
    /// stopping.
    pub(crate) async fn sleep_or_stop(&self, clock: &Clock, wait: Duration) -> bool {
        if wait.is_zero() {
            return !self.stop.is_cancelled();
        }
        tokio::select! {
            () = self.stop.cancelled() => false,
            () = clock.sleep(wait) => true,
        }
    }

    /// Records a progress step.
    pub(crate) fn bump(&self) {
        self.progress.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Waits until `idle` holds (re-checked on every progress step) or `timeout` of real time
    /// passes; returns whether it holds. The timeout is the caller's patience, not simulated
    /// time, so it is a real wait.
    pub(crate) async fn wait_for(&self, timeout: Duration, idle: impl Fn() -> bool) -> bool {
        let mut progress = self.progress.subscribe();
        let waited = tokio::time::timeout(timeout, async {
            loop {
                progress.borrow_and_update();
                if idle() {
                    return;
                }
                if progress.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        waited.is_ok() && idle()
    }

    /// Closes the tracker and waits for every task to end (they stop when cancelled).
    pub(crate) async fn wait_stopped(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }
}
