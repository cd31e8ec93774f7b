//! The import and event application on PostgreSQL (the several-instances backend), when
//! `DINGSYNC_TEST_PG_URL` names a server (`scripts/pg-throwaway.sh` starts one); skipped
//! otherwise. Each case gets its own database.

use crate::common;

use common::{Harness, assert_converged};
use dingtalk_sim::SimConfig;
use reqwest::Method;
use serde_json::json;
use sync_engine::apply::{Applier, ApplyOptions};

#[tokio::test]
async fn import_then_events_converge_on_postgres() {
    let Some(h) = Harness::on_postgres(SimConfig {
        users: 80,
        depts: 8,
        qps: 0,
        ..SimConfig::default()
    })
    .await
    else {
        eprintln!("DINGSYNC_TEST_PG_URL unset: skipping the PostgreSQL case");
        return;
    };
    let report = common::import_all(&h.ctx).await;
    assert!(report.complete);
    assert_converged(&h).await;
    let cursor = h.get("/events").await["events"]
        .as_array()
        .and_then(|a| a.last())
        .and_then(|e| e["id"].as_u64())
        .unwrap_or(0);
    let state = h.state().await;
    let user = state["users"][4]["userid"]
        .as_str()
        .expect("userid")
        .to_owned();
    let dept = state["departments"][2]["dept_id"]
        .as_i64()
        .expect("dept id");
    h.admin(
        Method::PATCH,
        &format!("/users/{user}"),
        json!({"name": "PG 改名"}),
    )
    .await;
    h.admin(
        Method::PATCH,
        &format!("/depts/{dept}"),
        json!({"name": "PG 部"}),
    )
    .await;
    h.admin(
        Method::DELETE,
        &format!(
            "/users/{}",
            state["users"][5]["userid"].as_str().expect("userid")
        ),
        json!({}),
    )
    .await;
    h.events_into_inbox(cursor).await;
    let applier = Applier::new(
        h.ctx.clone(),
        ApplyOptions {
            rng_seed: Some(4),
            ..ApplyOptions::default()
        },
    );
    let stats = applier.drain().await.expect("drain");
    assert_eq!(stats.dead + stats.retried, 0, "{stats:?}");
    assert_converged(&h).await;
}
