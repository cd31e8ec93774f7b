//! The service's one clock: the sync engine's [`Clock`], shared by every part of the service that
//! stamps or checks times (the engine, the OA API, the callback receiver, the Stream client, the
//! operations counters), so tests pin "now" in one place instead of sleeping.
//!
//! Tests may also hand in a plain closure returning Unix milliseconds (see [`IntoClock`]); it
//! becomes the same kind of shared clock.

use std::fmt;
use std::sync::Arc;

pub use sync_engine::{Clock, ManualClock, SystemClock};

/// The clock as the service's parts hold it.
pub type SharedClock = Arc<dyn Clock>;

/// The system wall clock, for production.
pub fn system_clock() -> SharedClock {
    Arc::new(SystemClock)
}

/// Anything the service's parts accept as their clock: a [`SharedClock`], or an `Arc` of a
/// closure returning Unix milliseconds (how tests move time).
pub trait IntoClock {
    /// The shared clock.
    fn into_clock(self) -> SharedClock;
}

impl IntoClock for SharedClock {
    fn into_clock(self) -> SharedClock {
        self
    }
}

impl<F: Fn() -> i64 + Send + Sync + 'static> IntoClock for Arc<F> {
    fn into_clock(self) -> SharedClock {
        Arc::new(FnClock(self))
    }
}

/// A closure as a [`Clock`].
struct FnClock<F>(Arc<F>);

impl<F: Fn() -> i64 + Send + Sync> Clock for FnClock<F> {
    fn now_ms(&self) -> i64 {
        (self.0)()
    }
}

impl<F> fmt::Debug for FnClock<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnClock")
    }
}
