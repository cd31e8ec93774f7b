//! Import throughput for a 20,000-person organisation at DingTalk's standard 20 calls per
//! second per API and at 500, against the rate-limit bound. Ignored by default (the qps 20 run
//! takes about twenty minutes); run with
//! `cargo test -p sync-engine --test measure -- --ignored --nocapture`.

mod common;

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
