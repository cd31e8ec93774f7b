//! "Drain the workers": bounded waits until everything in flight has landed, so a test can
//! assert on final state instead of on a moment that depends on the machine's speed.
//!
//! Why it takes several quiet readings in a row: applying an event can queue a push, and a push
//! makes DingTalk send an event back, so one empty reading can fall between two steps of a chain.

use std::time::Duration;

use dingtalk_sim::SimHandle;
use directory_store::Store;
use reqwest::Method;

/// Entries waiting or leased in the inbox and in the outbox.
pub async fn queue_depths(store: &Store) -> (i64, i64) {
    let inbox = store.inbox_depth().await.expect("inbox depth");
    let outbox = store.outbox_depth().await.expect("outbox depth");
    (
        inbox.pending + inbox.claimed,
        outbox.pending + outbox.claimed,
    )
}

/// Waits until `store`'s inbox and outbox hold nothing, waiting or in progress. On timeout,
/// returns the last depths read.
pub async fn wait_drained(store: &Store, timeout: Duration) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let depths = (store.inbox_depth().await, store.outbox_depth().await);
        let last = match depths {
            (Ok(inbox), Ok(outbox)) => {
                if inbox.pending + inbox.claimed + outbox.pending + outbox.claimed == 0 {
                    return Ok(());
                }
                format!("inbox {inbox:?}, outbox {outbox:?}")
            }
            (inbox, outbox) => format!("inbox {inbox:?}, outbox {outbox:?}"),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(last);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until nothing moves: the simulator has no push in flight and an empty failed list, and
/// the service's inbox and outbox are empty, three readings in a row. On timeout, returns the
/// last reading. `DINGSYNC_CRASH_DEBUG` prints every reading.
pub async fn wait_quiet(
    sim: &SimHandle,
    http: &reqwest::Client,
    store: &Store,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut calm = 0;
    let mut last = String::new();
    while calm < 3 {
        if tokio::time::Instant::now() >= deadline {
            return Err(last);
        }
        let idle = sim.wait_pushes_idle(Duration::from_secs(5)).await;
        let pushes =
            crate::sim::call(http, &sim.base_url(), Method::GET, "/_sim/pushes", None).await;
        let failed = pushes["failed_unread"].as_u64().unwrap_or(u64::MAX);
        let (inbox, outbox) = queue_depths(store).await;
        last =
            format!("pushes idle: {idle}, failed list: {failed}, inbox: {inbox}, outbox: {outbox}");
        if std::env::var_os("DINGSYNC_CRASH_DEBUG").is_some() {
            eprintln!("quiet? {last}");
        }
        if idle && failed == 0 && inbox == 0 && outbox == 0 {
            calm += 1;
        } else {
            calm = 0;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}
