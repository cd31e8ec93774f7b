//! Recovery after a crash (issue 18, B1): a retried department create costs at most one
//! listing and one `department/get`, however many siblings it has; and a round never pushes
//! an entry after the lease of its claim ran out.

// Helpers outside `#[test]` functions unwrap too: a failed fixture is a failed test.
#![allow(clippy::unwrap_used)]

use crate::support;

use std::sync::{Arc, Mutex};

use dingtalk_sim::SimConfig;
use directory_model::{Department, OaDeptId};
use directory_store::QueueState;
use reqwest::Method;
use serde_json::{Value, json};
use support::{World, find};
use sync_engine::Clock;
use sync_engine::push::{FailpointHook, PushConfig, Pusher};

/// Siblings the retried department has in DingTalk.
const SIBLINGS: i64 = 30;

/// The simulator's calls of one API path.
async fn calls_of(w: &World, path: &str) -> u64 {
    let (_, body) = w.admin(Method::GET, "/calls", json!({})).await;
    body["by_path"][path]["calls"].as_u64().unwrap_or(0)
}

/// A parent department with [`SIBLINGS`] children, all pushed.
async fn parent_with_children(w: &World) {
    let s = &w.store;
    s.create_department(
        &w.oa(),
        Department::new(OaDeptId(10), "Parent", Some(OaDeptId(1))),
    )
    .await
    .unwrap();
    for i in 0..SIBLINGS {
        let d = Department::new(OaDeptId(100 + i), format!("Child {i}"), Some(OaDeptId(10)));
        s.create_department(&w.oa(), d).await.unwrap();
    }
    let r = w.pusher().drain().await.unwrap();
    assert_eq!(r.dead_lettered, 0, "{r:?}");
}

#[tokio::test]
async fn a_retried_create_looks_up_by_name_not_by_reading_every_sibling() {
    let w = World::start(SimConfig::default()).await;
    parent_with_children(&w).await;
    // Two creates a killed process had claimed: one DingTalk never saw, one it accepted
    // before the kill (the id map was never saved).
    for (id, name) in [(200, "Never sent"), (201, "Accepted before the kill")] {
        w.store
            .create_department(
                &w.oa(),
                Department::new(OaDeptId(id), name, Some(OaDeptId(10))),
            )
            .await
            .unwrap();
    }
    let claimed = w
        .store
        .outbox_claim_ready("killed", w.clock.now_ms(), 60_000, 100)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    let parent = w.store.ding_id_of(&OaDeptId(10)).await.unwrap().unwrap();
    let (status, body) = w
        .admin(
            Method::POST,
            "/depts",
            json!({"name": "Accepted before the kill", "parent_id": parent.0,
                   "source_identifier": "dingsync:201"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    w.clock.advance(3_600_000);

    let (gets, lists) = (
        calls_of(&w, "/topapi/v2/department/get").await,
        calls_of(&w, "/topapi/v2/department/listsub").await,
    );
    let r = w.pusher().drain().await.unwrap();
    assert_eq!(r.dead_lettered, 0, "{r:?}");
    let gets = calls_of(&w, "/topapi/v2/department/get").await - gets;
    let lists = calls_of(&w, "/topapi/v2/department/listsub").await - lists;
    assert!(lists <= 2, "one listing per retried create, {lists} made");
    assert!(
        gets <= 2,
        "at most one department/get per retried create, {gets} made for {SIBLINGS} siblings"
    );
    let state = w.state().await;
    for name in ["Never sent", "Accepted before the kill"] {
        assert_eq!(
            find(&state, "departments", "name", &json!(name)).len(),
            1,
            "{name}"
        );
    }
    w.finish().await;
}

#[tokio::test]
async fn a_round_starts_no_push_after_its_lease_ran_out() {
    let w = World::start(SimConfig::default()).await;
    let lease_ms: i64 = 10_000;
    for i in 0..4 {
        let d = Department::new(OaDeptId(20 + i), format!("Slow {i}"), Some(OaDeptId(1)));
        w.store.create_department(&w.oa(), d).await.unwrap();
    }
    // Every accepted create takes 60% of the lease (a slow, throttled DingTalk).
    let late: Arc<Mutex<Vec<String>>> = Arc::default();
    let (clock, seen) = (w.clock.clone(), late.clone());
    let hook: FailpointHook = Arc::new(move |_, entry| {
        if entry
            .claimed_until_ms
            .is_some_and(|until| clock.now_ms() > until)
        {
            seen.lock().unwrap().push(entry.oa_id.clone());
        }
        clock.advance(lease_ms * 6 / 10);
        false
    });
    let pusher = Pusher::new(
        &w.ctx(),
        3,
        PushConfig {
            worker: "slow".into(),
            lease: std::time::Duration::from_millis(lease_ms as u64),
            concurrency: 1,
            ..PushConfig::default()
        },
    )
    .with_failpoint(hook);
    let round = pusher.run_once().await.unwrap();
    assert_eq!(round.claimed, 4);
    assert!(round.pushed < 4, "{round:?}");
    assert!(
        late.lock().unwrap().is_empty(),
        "pushed past the lease: {late:?}"
    );
    let claimed = w
        .store
        .outbox_list(Some(QueueState::Claimed), None, 100)
        .await
        .unwrap();
    assert!(
        claimed.is_empty(),
        "unstarted entries are given back: {claimed:#?}"
    );
    // The rest is pushed by the next rounds.
    let r = pusher.drain().await.unwrap();
    assert_eq!(r.dead_lettered, 0, "{r:?}");
    assert!(
        late.lock().unwrap().is_empty(),
        "pushed past the lease: {late:?}"
    );
    let state: Value = w.state().await;
    for i in 0..4 {
        assert_eq!(
            find(&state, "departments", "name", &json!(format!("Slow {i}"))).len(),
            1
        );
    }
    w.finish().await;
}
