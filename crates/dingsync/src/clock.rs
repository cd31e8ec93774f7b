//! The wall clock, passed into the parts of the service that stamp or check times (the OA API,
//! the callback receiver, the Stream client), so tests can pin "now" instead of sleeping.

use std::sync::Arc;

/// "Now" in Unix milliseconds.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system wall clock, for production.
pub fn system_clock() -> Clock {
    Arc::new(now_ms)
}

/// The system time in Unix milliseconds. A host clock before 1970 is broken; it reads as 0,
/// which makes every callback stale (loud in metrics and logs) rather than accepting replays.
pub fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}
