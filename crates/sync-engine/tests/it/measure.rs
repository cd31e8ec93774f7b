//! Import throughput for a 20,000-person organisation at DingTalk's standard 20 calls per
//! second per API and at 500, against the rate-limit bound. Ignored by default (the qps 20 run
//! takes about twenty minutes); run with
//! `cargo test -p sync-engine --test it measure:: -- --ignored --nocapture`.

use crate::common;

use common::Harness;
use dingtalk_sim::SimConfig;
use sync_engine::import::{self, ImportOptions, NoProgress};
use tokio_util::sync::CancellationToken;

async fn measure(qps: u32, user_details: bool) {
    let h = Harness::start(SimConfig {
        users: 20_000,
        depts: 400,
        qps,
        ..SimConfig::default()
    })
    .await;
    let options = ImportOptions {
        user_details,
        concurrency: 64,
        ..ImportOptions::default()
    };
    let report = import::import(&h.ctx, &options, &NoProgress, &CancellationToken::new())
        .await
        .expect("import");
    assert!(report.complete, "{:?}", report.failures);
    assert_eq!(report.users.created, 20_000);
    let c = &report.calls;
    println!(
        "qps {qps} details {user_details}: wall {:.1} s, bound {:.1} s, calls {} (minimum {}), throttled {}",
        report.wall_ms as f64 / 1000.0,
        c.min_wall_ms.unwrap_or(0) as f64 / 1000.0,
        c.total_made,
        c.total_minimum,
        c.throttled
    );
    for (api, made) in &c.made {
        println!(
            "  {api}: {made} (minimum {})",
            c.minimum.get(api).copied().unwrap_or(0)
        );
    }
    if user_details {
        // Without `v2/user/get` there are no managers or per-department titles to compare.
        common::assert_converged(&h).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "takes minutes; a measurement, not a check"]
async fn import_20k_at_qps_500() {
    measure(500, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "takes about twenty minutes; a measurement, not a check"]
async fn import_20k_at_qps_20() {
    measure(20, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn import_20k_at_qps_20_listing_only() {
    measure(20, false).await;
}

/// Events applied per second and the time one event takes from claim to applied, for 1,000
/// profile changes (each costs one `v2/user/get`, so at qps N the rate is at most N/s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn apply_1000_user_changes() {
    use reqwest::Method;
    use serde_json::json;
    use sync_engine::apply::{Applier, ApplyOptions, parse_inbox_event};

    let h = Harness::start(SimConfig {
        users: 2_000,
        depts: 50,
        qps: 0,
        ..SimConfig::default()
    })
    .await;
    common::import_all(&h.ctx).await;
    let cursor = h.get("/events").await["events"]
        .as_array()
        .and_then(|a| a.last())
        .and_then(|e| e["id"].as_u64())
        .unwrap_or(0);
    let state = h.state().await;
    let users = state["users"].as_array().expect("users").clone();
    for (i, u) in users.iter().take(1000).enumerate() {
        let id = u["userid"].as_str().expect("userid");
        h.admin(
            Method::PATCH,
            &format!("/users/{id}"),
            json!({"remark": format!("r{i}")}),
        )
        .await;
    }
    h.events_into_inbox(cursor).await;
    let applier = Applier::new(
        h.ctx.clone(),
        ApplyOptions {
            rng_seed: Some(1),
            ..ApplyOptions::default()
        },
    );
    // Per-event latency, applying one claimed event at a time.
    let mut latencies = Vec::new();
    let started = std::time::Instant::now();
    loop {
        let claimed = h
            .store
            .inbox_claim("measure", h.ctx.now_ms(), 60_000, 1)
            .await
            .expect("claim");
        let Some(event) = claimed.into_iter().next() else {
            break;
        };
        let t = std::time::Instant::now();
        let parsed = parse_inbox_event(&event).expect("event");
        applier.apply_event(&parsed).await.expect("apply");
        h.store
            .inbox_done(event.id, "measure", h.ctx.now_ms())
            .await
            .expect("done");
        latencies.push(t.elapsed());
    }
    let wall = started.elapsed();
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
    println!(
        "applied {} events in {:.2} s: {:.0} events/s; per event p50 {:?}, p99 {:?}",
        latencies.len(),
        wall.as_secs_f64(),
        latencies.len() as f64 / wall.as_secs_f64(),
        p(0.5),
        p(0.99)
    );
    common::assert_converged(&h).await;
}

/// Change-to-visible latency through the whole DingTalk → OA path: an administrator's change
/// in the simulator, DingTalk's encrypted push, the receiver's durable `inbox_put`, the applier
/// woken by it (fetching the user at qps 20) and the directory write. 150 changes, 10 a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn change_to_visible_latency() {
    use std::sync::Arc;

    use directory_store::{EntityKind, Origin};
    use reqwest::Method;
    use serde_json::json;
    use sync_engine::apply::{Applier, ApplyOptions};
    use sync_engine::{Clock, SystemClock};

    let h = Harness::start(SimConfig {
        users: 300,
        depts: 10,
        qps: 20,
        ..SimConfig::default()
    })
    .await;
    common::import_all(&h.ctx).await;
    let rx = common::receiver::subscribe(&h).await;
    let ctx = h.ctx.clone().with_clock(Arc::new(SystemClock));
    let applier = Arc::new(Applier::new(
        ctx,
        ApplyOptions {
            rng_seed: Some(1),
            ..ApplyOptions::default()
        },
    ));
    let cancel = CancellationToken::new();
    let worker = tokio::spawn({
        let (applier, cancel, wake) = (applier.clone(), cancel.clone(), rx.wake.clone());
        async move { applier.run(wake, cancel).await }
    });
    let users: Vec<String> = h.state().await["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["userid"].as_str().expect("userid").to_owned())
        .collect();
    let mut sent = Vec::new();
    for i in 0..150 {
        let userid = users[i % users.len()].clone();
        let at = SystemClock.now_ms();
        h.admin(
            Method::PATCH,
            &format!("/users/{userid}"),
            json!({"remark": format!("lat{i}")}),
        )
        .await;
        sent.push((userid, format!("lat{i}"), at));
        // Pacing the changes (10 per second), not waiting for a result.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        h.sim
            .wait_pushes_idle(std::time::Duration::from_secs(60))
            .await
    );
    // Let the worker finish what arrived (polling is fine in a measurement).
    for _ in 0..600 {
        let depth = h.store.inbox_depth().await.expect("depth");
        if depth.pending + depth.claimed == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    cancel.cancel();
    worker.await.expect("worker").expect("worker ok");
    let mut latencies = Vec::new();
    for (userid, remark, at) in &sent {
        let audit = h
            .store
            .audit_of(EntityKind::User, userid)
            .await
            .expect("audit");
        if let Some(row) = audit.iter().find(|a| {
            a.origin == Origin::DingTalk
                && a.after
                    .as_ref()
                    .is_some_and(|v| v["remark"] == json!(remark))
        }) {
            latencies.push(row.at_ms - at);
        }
    }
    latencies.sort_unstable();
    let p = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
    println!(
        "change-to-visible over {} of {} changes: p50 {} ms, p99 {} ms, max {} ms",
        latencies.len(),
        sent.len(),
        p(0.5),
        p(0.99),
        latencies.last().copied().unwrap_or(0)
    );
    assert_eq!(latencies.len(), sent.len(), "every change became visible");
}
