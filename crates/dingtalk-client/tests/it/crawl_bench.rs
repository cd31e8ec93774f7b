//! Throughput of a full crawl of a 20,000-person organisation at DingTalk's standard limit
//! (20 calls per second per API) and at a generous one (500), against the simulator.
//!
//! Ignored by default (the qps=20 run takes about a minute); run with
//! `cargo test -p dingtalk-client --test it crawl_bench:: -- --ignored --nocapture --test-threads 1`.
//! Each run prints the wall time, the calls per API, and the lower bound the rate limit allows:
//! for each API its calls ÷ qps seconds, the bound being the largest of those, since the API
//! families run concurrently.

use crate::common;

use std::time::Instant;

use common::Sim;
use dingtalk_client::{CrawlOptions, endpoints::paths};
use dingtalk_sim::SimConfig;

const USERS: usize = 20_000;
const DEPTS: usize = 1_000;

async fn measure(qps: u32) {
    let sim = Sim::start(SimConfig {
        qps,
        users: USERS,
        depts: DEPTS,
        seed: 2026,
        ..SimConfig::default()
    })
    .await;
    let client = sim.client();
    client.ensure_token().await.expect("token");
    let started = Instant::now();
    let snapshot = client
        .crawl(CrawlOptions {
            concurrency: 32,
            roles: true,
        })
        .await
        .expect("crawl");
    let wall = started.elapsed();

    let counts = sim.handle.counts();
    assert_eq!(
        snapshot.users.len() as u64,
        counts["users"].as_u64().expect("users")
    );
    assert_eq!(
        snapshot.departments.len() as u64 + 1,
        counts["departments"].as_u64().expect("departments")
    );
    let calls = sim.calls().await;
    assert_eq!(
        calls["total"]["throttled"], 0,
        "no 90018 with a matching budget: {calls}"
    );

    let stats = client.stats();
    println!("\n== crawl of {USERS} users / {DEPTS} departments at qps={qps} ==");
    println!("wall time: {:.2} s", wall.as_secs_f64());
    let mut bound: f64 = 0.0;
    for (api, e) in &stats.endpoints {
        if *api == paths::GETTOKEN {
            continue;
        }
        let secs = e.calls as f64 / f64::from(qps);
        bound = bound.max(secs);
        println!(
            "  {api:<40} {:>6} calls  ≥ {secs:>7.2} s at {qps}/s",
            e.calls
        );
    }
    println!("total calls: {}", stats.total_calls());
    println!(
        "rate-limit lower bound: {bound:.2} s; achieved {:.0}% of it",
        100.0 * bound / wall.as_secs_f64()
    );
    println!(
        "users: {}, memberships: {}, roles with members: {}",
        snapshot.users.len(),
        snapshot.memberships,
        snapshot.role_members.len()
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: about a minute; run explicitly"]
async fn crawl_20k_at_qps_20() {
    measure(20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run explicitly"]
async fn crawl_20k_at_qps_500() {
    measure(500).await;
}
