//! Catch-up's loss window (issue 3, gap B): reading DingTalk's failed-push list hands the
//! entries over (the simulator, like DingTalk as far as we can tell, forgets what it returned),
//! so a store that fails between reading a page and committing it loses at most that page –
//! catch-up must not read on, and what it has not read must still be at DingTalk afterwards.

use crate::common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Harness, receiver};
use dingtalk_sim::SimConfig;
use directory_store::{Store, StoreOptions};
use reqwest::Method;
use serde_json::json;
use sync_engine::SyncContext;
use sync_engine::catchup::{CatchupError, catch_up};

/// More than two pages of the list (a page is at most 200 entries).
const EVENTS: usize = 450;

/// Entries the simulator still holds.
async fn failed_unread(h: &Harness) -> u64 {
    h.get("/pushes").await["failed_unread"]
        .as_u64()
        .expect("failed_unread")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_failure_mid_catch_up_loses_at_most_the_page_in_flight() {
    let h = Harness::start(SimConfig {
        users: 5,
        depts: 1,
        qps: 0,
        ..SimConfig::default()
    })
    .await;
    let rx = receiver::subscribe(&h).await;
    h.admin(
        Method::POST,
        "/push-settings",
        json!({"retry_scale": 0.0001}),
    )
    .await;
    rx.up.store(false, Ordering::SeqCst);
    for n in 0..EVENTS {
        h.admin(
            Method::POST,
            "/depts",
            json!({"name": format!("补{n}"), "parent_id": 1}),
        )
        .await;
    }
    assert!(
        h.sim.wait_pushes_idle(Duration::from_secs(120)).await,
        "pushes did not settle"
    );
    assert_eq!(failed_unread(&h).await, EVENTS as u64);

    // The database goes away after the service started reading: the first page is in our hands
    // and cannot be committed (the retries fail too, the pool stays closed).
    h.store.close().await;
    let error = catch_up(&h.ctx).await.expect_err("the store is closed");
    let CatchupError::Store { lost, .. } = error else {
        panic!("expected a store error, got {error:?}");
    };
    assert_eq!(lost, 200, "the whole first page is lost, nothing more");
    assert_eq!(
        failed_unread(&h).await,
        (EVENTS - 200) as u64,
        "catch-up stopped reading after the failed page"
    );

    // Back up: the rest arrives, exactly once.
    let url = h.db.url.clone();
    let store = Store::connect_with(&url, StoreOptions::default())
        .await
        .expect("store reopens");
    let ctx = SyncContext::new(store.clone(), h.ctx.client.clone(), Default::default());
    let report = catch_up(&ctx).await.expect("catch-up");
    assert_eq!(report.stored, EVENTS - 200, "{report:?}");
    assert_eq!(report.pages, 2, "{report:?}");
    assert_eq!(
        store.inbox_depth().await.expect("depth").pending,
        (EVENTS - 200) as i64
    );
    assert_eq!(failed_unread(&h).await, 0);
}
