//! Measurement (ignored by default): pushes per second for N OA changes against the simulator
//! at a given per-API rate limit, compared with the bound that limit sets.
//!
//! ```text
//! DINGSYNC_BENCH_N=1000 DINGSYNC_BENCH_QPS=20 \
//!   cargo test -p sync-engine --test it push_bench:: -- --ignored --nocapture
//! ```

// Helpers outside `#[test]` functions unwrap too: a failed fixture is a failed test.
#![allow(clippy::unwrap_used)]

use crate::support;

use std::time::Instant;

use dingtalk_sim::SimConfig;
use directory_model::{Department, Mobile, OaDeptId, OaUserId, User};
use support::World;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run with --ignored --nocapture"]
async fn pushes_per_second_against_the_rate_limit() {
    let n = env_or("DINGSYNC_BENCH_N", 400);
    let qps = env_or("DINGSYNC_BENCH_QPS", 20);
    let w = World::start(SimConfig {
        qps: u32::try_from(qps).unwrap(),
        ..SimConfig::default()
    })
    .await;
    w.store
        .create_department(
            &w.oa(),
            Department::new(OaDeptId(10), "Bench", Some(OaDeptId(1))),
        )
        .await
        .unwrap();
    w.pusher().drain().await.unwrap();
    let setup = Instant::now();
    for i in 0..n {
        let mut u = User::new(
            OaUserId::new(format!("b{i}")),
            format!("Bench {i}"),
            &[OaDeptId(10)],
        );
        u.mobile = Some(Mobile::mainland(format!("13{i:09}")));
        w.store.create_user(&w.oa(), u).await.unwrap();
    }
    println!(
        "queued {n} OA user creates in {:.2} s",
        setup.elapsed().as_secs_f64()
    );
    let calls_before = w.client.stats().total_calls();
    let started = Instant::now();
    let pusher = sync_engine::push::Pusher::new(
        &w.ctx(),
        5,
        sync_engine::push::PushConfig {
            concurrency: env_or("DINGSYNC_BENCH_CONCURRENCY", 16),
            batch: u32::try_from(env_or("DINGSYNC_BENCH_BATCH", 64)).unwrap(),
            ..sync_engine::push::PushConfig::default()
        },
    );
    let report = pusher.drain().await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    let calls = w.client.stats().total_calls() - calls_before;
    assert_eq!(report.pushed, n, "{report:?}");
    // One `v2/user/create` per user; the limit allows `qps` of them per second.
    let bound = n as f64 / qps as f64;
    println!(
        "pushed {n} user creates in {secs:.2} s = {:.1}/s; rate-limit bound {bound:.2} s \
         ({qps}/s); {calls} calls; {:.0}% of the bound",
        n as f64 / secs,
        100.0 * bound / secs
    );
    w.sim.shutdown().await;
}
