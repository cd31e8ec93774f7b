//! Applying events with two instances on one PostgreSQL database: an entity is applied by one
//! worker at a time (the entity lock), and two appliers draining while DingTalk keeps changing
//! the same people still end with the directory equal to DingTalk.

use crate::common;

use std::time::Duration;

use common::{Harness, assert_converged};
use dingtalk_sim::SimConfig;
use directory_store::{Store, StoreOptions};
use reqwest::Method;
use serde_json::json;
use sync_engine::SyncContext;
use sync_engine::apply::{Applier, ApplyOptions};

async fn imported() -> Option<Harness> {
    let Some(h) = Harness::on_postgres(SimConfig {
        users: 30,
        depts: 4,
        qps: 0,
        ..SimConfig::default()
    })
    .await
    else {
        eprintln!("DINGSYNC_TEST_PG_URL unset: skipping the PostgreSQL case");
        return None;
    };
    let report = common::import_all(&h.ctx).await;
    assert!(report.complete);
    Some(h)
}

fn last_event(events: &serde_json::Value) -> u64 {
    events["events"]
        .as_array()
        .and_then(|a| a.last())
        .and_then(|e| e["id"].as_u64())
        .unwrap_or(0)
}

/// A second instance's applier, with its own pool and worker name.
async fn second_instance(h: &Harness, worker: &str) -> Applier {
    let store = Store::connect_with(h.store.url(), StoreOptions::default())
        .await
        .expect("second pool");
    Applier::new(
        SyncContext {
            store,
            ..h.ctx.clone()
        },
        ApplyOptions {
            worker: worker.to_owned(),
            rng_seed: Some(9),
            lock_wait: Duration::from_millis(30),
            ..ApplyOptions::default()
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entity_being_applied_elsewhere_waits_for_it() {
    let Some(h) = imported().await else { return };
    let cursor = last_event(&h.get("/events").await);
    let userid = h.state().await["users"][3]["userid"]
        .as_str()
        .expect("userid")
        .to_owned();
    h.admin(
        Method::PATCH,
        &format!("/users/{userid}"),
        json!({"name": "新名字"}),
    )
    .await;
    h.events_into_inbox(cursor).await;

    // Instance A is in the middle of applying this user (it holds the entity lock).
    let lock = format!("apply:user:{userid}");
    assert!(
        h.store
            .lease_acquire(&lock, "host-a:1:aa:apply", h.ctx.now_ms(), 60_000)
            .await
            .expect("lease")
    );
    let b = second_instance(&h, "host-b:2:bb:apply").await;
    let stats = b.drain().await.expect("drain");
    assert_eq!((stats.events, stats.retried), (0, 1), "{stats:?}");
    let oa = h
        .store
        .get_user(&directory_model::OaUserId::new(userid.as_str()))
        .await
        .expect("get")
        .expect("user");
    assert_ne!(oa.entity.name, "新名字", "B applied while A held the user");

    // A finishes; B's retry applies the event.
    h.store
        .lease_release(&lock, "host-a:1:aa:apply")
        .await
        .expect("release");
    h.clock.advance(600_000);
    let stats = b.drain().await.expect("drain");
    assert_eq!((stats.events, stats.retried, stats.dead), (1, 0, 0));
    assert_converged(&h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_appliers_racing_over_the_same_people_converge() {
    let Some(h) = imported().await else { return };
    let users: Vec<String> = h.state().await["users"]
        .as_array()
        .expect("users")
        .iter()
        .take(4)
        .map(|u| u["userid"].as_str().expect("userid").to_owned())
        .collect();
    let a = second_instance(&h, "host-a:1:aa:apply").await;
    let b = second_instance(&h, "host-b:2:bb:apply").await;
    let mut cursor = last_event(&h.get("/events").await);
    let done = std::sync::atomic::AtomicBool::new(false);
    // DingTalk keeps renaming the same four people while both instances apply, so fetches and
    // writes of the two instances interleave.
    let dingtalk = async {
        for round in 0..12 {
            for u in &users {
                h.admin(
                    Method::PATCH,
                    &format!("/users/{u}"),
                    json!({"name": format!("第{round}轮 {u}")}),
                )
                .await;
                cursor = h.events_into_inbox(cursor).await;
            }
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
    };
    let applying = |applier: &'static str| {
        let me = if applier == "a" { &a } else { &b };
        let done = &done;
        async move {
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                me.drain().await.expect("drains");
                tokio::task::yield_now().await;
            }
        }
    };
    tokio::join!(dingtalk, applying("a"), applying("b"));
    // Retries come due when the clock passes their backoff.
    for _ in 0..20 {
        let depth = h.store.inbox_depth().await.expect("depth");
        if depth.pending + depth.claimed == 0 {
            break;
        }
        h.clock.advance(600_000);
        let (ra, rb) = tokio::join!(a.drain(), b.drain());
        ra.expect("A drains");
        rb.expect("B drains");
    }
    let depth = h.store.inbox_depth().await.expect("depth");
    assert_eq!(depth.pending + depth.claimed + depth.dead, 0, "{depth:?}");
    assert_converged(&h).await;
}
