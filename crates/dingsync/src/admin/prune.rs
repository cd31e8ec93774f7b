//! Drops history older than `[console] history_retention_days` (default 180) once an hour, so
//! the audit log, run history and finished queue entries do not grow without bound.

use std::time::Duration;

use directory_store::Store;
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;

const EVERY: Duration = Duration::from_secs(3600);

/// Starts the pruning task; it stops when `cancel` fires.
pub fn spawn_pruner(
    store: Store,
    clock: SharedClock,
    retention_days: u32,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let keep_ms = i64::from(retention_days) * 24 * 3600 * 1000;
        loop {
            let before = clock.now_ms() - keep_ms;
            match store.prune_history(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, retention_days, "pruned old history"),
                Err(e) => {
                    tracing::warn!(error = %sync_engine::error_chain(&e), "could not prune history")
                }
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(EVERY) => {}
            }
        }
    })
}
