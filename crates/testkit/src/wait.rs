//! Polling with a deadline.
//!
//! Why: some state has no event a test could await (another process's SQLite file, a simulator
//! reached over HTTP), so tests poll it; a deadline turns "never" into a failure with a message
//! instead of a hung run.

use std::future::Future;
use std::time::Duration;

/// Polls `condition` every `every` until it holds or `timeout` passes; returns whether it held.
pub async fn poll_until<F, Fut>(timeout: Duration, every: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if condition().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(every).await;
    }
}
