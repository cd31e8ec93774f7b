//! Events delivered the way DingTalk delivers them: the simulator pushes encrypted, signed
//! callbacks to a small receiver in this test (verify, decrypt, `inbox_put`, answer an
//! encrypted "success" — what the binary's callback route does), and, when the receiver is
//! down, DingTalk's failed-push list is read back by catch-up.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::{Harness, assert_converged, receiver};
use dingtalk_sim::SimConfig;
use reqwest::Method;
use serde_json::json;
use sync_engine::apply::{Applier, ApplyOptions};
use sync_engine::catchup::catch_up;

/// Imports the simulator's org, subscribes a receiver as the console callback, and returns
/// the receiver with an applier.
async fn subscribed() -> (Harness, Arc<receiver::Receiver>, Applier) {
    let h = Harness::start(SimConfig {
        users: 30,
        depts: 4,
        qps: 0,
        ..SimConfig::default()
    })
    .await;
    common::import_all(&h.ctx).await;
    let rx = receiver::subscribe(&h).await;
    let applier = Applier::new(
        h.ctx.clone(),
        ApplyOptions {
            rng_seed: Some(2),
            ..ApplyOptions::default()
        },
    );
    (h, rx, applier)
}

async fn changes(h: &Harness) {
    let state = h.state().await;
    let user = |i: usize| {
        state["users"][i]["userid"]
            .as_str()
            .expect("userid")
            .to_owned()
    };
    let dept = state["departments"][1]["dept_id"]
        .as_i64()
        .expect("dept_id");
    h.admin(
        Method::POST,
        "/users",
        json!({"userid": "pushed1", "name": "推送", "mobile": "13600000001",
               "dept_id_list": dept.to_string(), "manager_userid": user(1)}),
    )
    .await;
    h.admin(
        Method::PATCH,
        &format!("/users/{}", user(2)),
        json!({"title": "经理"}),
    )
    .await;
    h.admin(Method::DELETE, &format!("/users/{}", user(3)), json!({}))
        .await;
    h.admin(
        Method::PATCH,
        &format!("/depts/{dept}"),
        json!({"name": "推送部"}),
    )
    .await;
}

async fn wait_idle(h: &Harness) {
    assert!(
        h.sim
            .wait_pushes_idle(std::time::Duration::from_secs(60))
            .await,
        "pushes did not settle"
    );
}

#[tokio::test]
async fn pushed_events_reach_the_directory() {
    let (h, _rx, applier) = subscribed().await;
    changes(&h).await;
    wait_idle(&h).await;
    let stats = applier.drain().await.expect("drain");
    assert!(stats.events >= 4, "{stats:?}");
    assert_eq!(stats.dead + stats.retried, 0, "{stats:?}");
    assert_converged(&h).await;
}

#[tokio::test]
async fn events_missed_while_down_are_caught_up_from_the_failed_list() {
    let (h, rx, applier) = subscribed().await;
    h.admin(
        Method::POST,
        "/push-settings",
        json!({"retry_scale": 0.001}),
    )
    .await;
    rx.up.store(false, Ordering::SeqCst);
    changes(&h).await;
    wait_idle(&h).await;
    assert_eq!(
        h.store.inbox_depth().await.unwrap().pending,
        0,
        "nothing arrived"
    );
    let report = catch_up(&h.ctx).await.expect("catch-up");
    assert!(report.stored >= 4, "{report:?}");
    let stats = applier.drain().await.expect("drain");
    assert_eq!(stats.dead + stats.retried, 0, "{stats:?}");
    assert_converged(&h).await;
    // The list was emptied by reading it.
    let again = catch_up(&h.ctx).await.expect("catch-up");
    assert_eq!(again.stored, 0);
}
