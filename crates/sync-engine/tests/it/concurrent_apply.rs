//! Concurrent event application (issue 15), on SQLite and on PostgreSQL: events of different
//! users are applied in parallel, the events of one user one at a time. Read from the
//! simulator's own call log (`/_sim/calls/log`: the positions at which each `user/get` started
//! and was answered, after the simulator's latency), not from any timing. The width is the
//! derived one: DingTalk's budget (20 calls/s) times the measured time an event takes.

use crate::common;

use common::{Harness, assert_converged};
use dingtalk_client::endpoints::paths;
use dingtalk_sim::SimConfig;
use reqwest::Method;
use serde_json::{Value, json};
use sync_engine::apply::{Applier, ApplyOptions};

/// Users renamed once each, and how often the one busy user is renamed.
const SPREAD: usize = 8;
const REPEATS: usize = 4;
/// The fetch budget (DingTalk's default tier).
const QPS: u32 = 20;

fn config() -> SimConfig {
    SimConfig {
        users: 20,
        depts: 3,
        qps: QPS,
        ..SimConfig::default()
    }
}

/// One `user/get` from the call log: (userid, started, answered).
fn fetches(log: &Value) -> Vec<(String, u64, u64)> {
    log["calls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["path"] == paths::USER_GET)
        .map(|c| {
            (
                c["subject"].as_str().expect("userid").to_owned(),
                c["started"].as_u64().expect("started"),
                c["answered"]
                    .as_u64()
                    .expect("answered: the drain waited for it"),
            )
        })
        .collect()
}

/// The most `user/get` calls that were in flight at one time.
fn peak_overlap(calls: &[(String, u64, u64)]) -> usize {
    calls
        .iter()
        .map(|(_, start, _)| {
            calls
                .iter()
                .filter(|(_, s, a)| s <= start && start < a)
                .count()
        })
        .max()
        .unwrap_or(0)
}

async fn renames_apply_concurrently_per_user(h: Harness) {
    common::import_all(&h.ctx).await;
    let state = h.state().await;
    let user = |i: usize| {
        state["users"][i]["userid"]
            .as_str()
            .expect("userid")
            .to_owned()
    };
    let cursor = h.get("/events").await["events"]
        .as_array()
        .and_then(|a| a.last())
        .and_then(|e| e["id"].as_u64())
        .unwrap_or(0);
    let busy = user(0);
    for round in 0..REPEATS {
        h.admin(
            Method::PATCH,
            &format!("/users/{busy}"),
            json!({"name": format!("Busy {round}")}),
        )
        .await;
    }
    for i in 1..=SPREAD {
        h.admin(
            Method::PATCH,
            &format!("/users/{}", user(i)),
            json!({"name": format!("Spread {i}")}),
        )
        .await;
    }
    h.events_into_inbox(cursor).await;
    // Every answer takes a while, so calls that can overlap do.
    h.admin(Method::POST, "/settings", json!({"latency_ms": 150}))
        .await;
    h.admin(Method::POST, "/calls/reset", json!({})).await;

    let applier = Applier::new(
        h.ctx.clone(),
        ApplyOptions {
            rng_seed: Some(3),
            ..ApplyOptions::default()
        },
    );
    let stats = applier.drain().await.expect("drain");
    assert_eq!((stats.retried, stats.dead), (0, 0), "{stats:?}");
    assert_eq!(stats.events, REPEATS + SPREAD, "{stats:?}");

    let calls = fetches(&h.get("/calls/log").await);
    let mine: Vec<_> = calls.iter().filter(|c| c.0 == busy).cloned().collect();
    assert!(
        mine.len() >= REPEATS,
        "a fetch per event of {busy}: {calls:?}"
    );
    assert_eq!(
        peak_overlap(&mine),
        1,
        "one user's events are applied one at a time: {mine:?}"
    );
    let peak = peak_overlap(&calls);
    assert!(
        peak > 1,
        "different users' events are applied in parallel (peak {peak}): {calls:?}"
    );
    assert!(
        peak <= QPS as usize,
        "never more at once than the budget allows in a window (peak {peak})"
    );
    let width = applier.concurrency();
    assert!(
        width > 1 && width <= QPS as usize,
        "the derived width (qps x measured time) is {width}"
    );
    h.admin(Method::POST, "/settings", json!({"latency_ms": 0}))
        .await;
    assert_converged(&h).await;
}

#[tokio::test]
async fn on_sqlite() {
    renames_apply_concurrently_per_user(Harness::start(config()).await).await;
}

#[tokio::test]
async fn on_postgres() {
    let Some(h) = Harness::on_postgres(config()).await else {
        eprintln!("DINGSYNC_TEST_PG_URL unset: skipping the PostgreSQL case");
        return;
    };
    renames_apply_concurrently_per_user(h).await;
}
