//! The rate budget shared through PostgreSQL: several "instances" (each its own store pool,
//! client and budget, as separate `dingsync serve` processes would have) crawl one simulator
//! together and never draw a 90018, because together they stay within one budget.
//!
//! Skipped when `DINGSYNC_TEST_PG_URL` is unset. The measurements (`--ignored`) print the cost
//! of one take + release and crawl throughput at qps 20 and 500 with one and three instances:
//! `cargo test -p sync-engine --test it shared_budget:: -- --ignored --nocapture --test-threads 1`.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Harness;
use dingtalk_client::{ClientConfig, CrawlOptions, DingTalkClient, RateBudget};
use dingtalk_sim::SimConfig;
use directory_store::{SlotTake, Store, StoreOptions};
use serde_json::Value;
use sync_engine::SharedBudget;

/// One simulated instance: its own pool, budget and client.
struct Instance {
    store: Store,
    budget: Arc<SharedBudget>,
    client: DingTalkClient,
}

async fn instance(h: &Harness, name: &str, qps: u32) -> Instance {
    instance_with(h, name, qps, true).await
}

/// An instance with the shared budget, or (`shared == false`) the in-process one.
async fn instance_with(h: &Harness, name: &str, qps: u32, shared: bool) -> Instance {
    let store = Store::connect_with(
        h.store.url(),
        StoreOptions {
            // As `dingsync serve` opens it (`BUDGET_CONNECTIONS`).
            max_connections: 6,
            ..StoreOptions::default()
        },
    )
    .await
    .expect("instance store");
    let sim = h.sim.config();
    let mut cfg = ClientConfig::new(sim.client_id.clone(), sim.client_secret.clone())
        .with_base_url(h.base.clone());
    cfg.qps_per_api = qps;
    let budget = Arc::new(SharedBudget::new(
        store.clone(),
        qps,
        cfg.rate_window,
        cfg.request_timeout,
        name,
    ));
    let client = if shared {
        DingTalkClient::with_budget(cfg, budget.clone()).expect("client")
    } else {
        DingTalkClient::new(cfg).expect("client")
    };
    Instance {
        store,
        budget,
        client,
    }
}

async fn throttled(h: &Harness) -> (u64, u64) {
    let calls: Value = h.get("/calls").await;
    (
        calls["total"]["calls"].as_u64().unwrap_or(0),
        calls["total"]["throttled"].as_u64().unwrap_or(u64::MAX),
    )
}

async fn pg(config: SimConfig) -> Option<Harness> {
    let h = Harness::on_postgres(config).await;
    if h.is_none() {
        eprintln!("DINGSYNC_TEST_PG_URL unset: skipping the PostgreSQL case");
    }
    h
}

/// The permits of one budget are visible to the others: with every slot held by instance A,
/// instance B's store sees no free slot, and B's acquire completes only after A's call ended
/// (and cooled down).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permits_are_shared_between_instances() {
    let Some(h) = pg(SimConfig {
        users: 5,
        depts: 2,
        qps: 0,
        ..SimConfig::default()
    })
    .await
    else {
        return;
    };
    let a = instance(&h, "a", 2).await;
    let b = instance(&h, "b", 2).await;
    let p1 = a.budget.acquire("/x").await;
    let p2 = a.budget.acquire("/x").await;
    match b
        .store
        .slot_take("/x", 2, "probe", Duration::from_secs(1), 1)
        .await
        .expect("take")
    {
        SlotTake::Busy {
            cooling: None,
            held: Some(_),
        } => {}
        other => panic!("A holds both slots, yet B's store answered {other:?}"),
    }
    let waiting = {
        let budget = b.budget.clone();
        tokio::spawn(async move {
            let _permit = budget.acquire("/x").await;
            Instant::now()
        })
    };
    let released = Instant::now();
    drop(p1);
    let granted = waiting.await.expect("B's acquire");
    // B waited for A's release plus the cooling window (measured on the database clock, so
    // allow for the rounding of a millisecond).
    assert!(
        granted.duration_since(released) >= Duration::from_millis(1000),
        "B got a slot {:?} after A's release",
        granted.duration_since(released)
    );
    drop(p2);
}

/// Three instances crawl the same organisation at once with a shared budget of 20/s: the
/// simulator (20/s per API) throttles none of their calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_crawling_together_draw_no_90018() {
    let qps = 20;
    let Some(h) = pg(SimConfig {
        users: 150,
        depts: 12,
        qps,
        ..SimConfig::default()
    })
    .await
    else {
        return;
    };
    let mut instances = Vec::new();
    for i in 0..3 {
        instances.push(instance(&h, &format!("inst{i}"), qps).await);
    }
    let crawls = instances.iter().map(|i| {
        i.client.crawl(CrawlOptions {
            concurrency: 16,
            roles: true,
        })
    });
    let snaps = futures::future::join_all(crawls).await;
    for s in &snaps {
        let snap = s.as_ref().expect("crawl");
        assert_eq!(snap.departments.len(), 12);
    }
    let (calls, throttled) = throttled(&h).await;
    assert!(calls > 60, "the crawls made {calls} calls");
    assert_eq!(throttled, 0, "{calls} calls, {throttled} answered 90018");
    for i in &instances {
        let stats = i.client.stats();
        let retried: u64 = stats.endpoints.values().map(|e| e.throttles).sum();
        assert_eq!(retried, 0, "the client saw throttles");
    }
}

/// Take + release latency, one task after another (the budget's own cost per call).
async fn take_release_cost(store: &Store) {
    store.slots_ensure("/bench", 1_000).await.expect("ensure");
    let mut samples = Vec::new();
    for i in 0..2_000 {
        let t = Instant::now();
        let holder = format!("h{i}");
        let slot = match store
            .slot_take("/bench", 1_000, &holder, Duration::from_secs(6), 1)
            .await
            .expect("take")
        {
            SlotTake::Taken(s) => s[0],
            busy => panic!("no slot: {busy:?}"),
        };
        store
            .slot_release("/bench", slot, &holder, Duration::ZERO)
            .await
            .expect("release");
        samples.push(t.elapsed());
    }
    samples.sort_unstable();
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p) as usize];
    println!(
        "take+release (PostgreSQL, sequential): p50 {:?}, p99 {:?}, max {:?}",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
}

async fn crawl_measure(qps: u32, instances: usize, users: usize, latency_ms: u64, shared: bool) {
    let Some(h) = pg(SimConfig {
        users,
        depts: users / 50,
        qps,
        latency_ms,
        ..SimConfig::default()
    })
    .await
    else {
        return;
    };
    let mut all = Vec::new();
    for i in 0..instances {
        all.push(instance_with(&h, &format!("inst{i}"), qps, shared).await);
    }
    if instances == 1 && shared {
        take_release_cost(&all[0].store).await;
    }
    let started = Instant::now();
    let crawls = all.iter().map(|i| {
        i.client.crawl(CrawlOptions {
            concurrency: 64,
            roles: true,
        })
    });
    for s in futures::future::join_all(crawls).await {
        s.expect("crawl");
    }
    let wall = started.elapsed();
    let calls: Value = h.get("/calls").await;
    let (total, throttled) = (
        calls["total"]["calls"].as_u64().unwrap_or(0),
        calls["total"]["throttled"].as_u64().unwrap_or(0),
    );
    // The bound: the busiest API path's calls at qps per window of 1.01 s (the first qps calls
    // go at once).
    let busiest = calls["by_path"]
        .as_object()
        .map(|m| {
            m.values()
                .map(|c| c["calls"].as_u64().unwrap_or(0))
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0);
    // qps 0 is the no-limit reference: what the crawls cost on this machine with no budget.
    let bound = if qps == 0 {
        0.0
    } else {
        ((busiest as f64 / f64::from(qps)).ceil() - 1.0).max(0.0) * 1.01
    };
    println!(
        "crawl qps {qps}, {} budget, {instances} instance(s), {users} users, latency {latency_ms} ms: {total} calls \
         in {:.2} s, busiest path {busiest} calls (bound {bound:.2} s, ratio {:.2}), throttled {throttled}",
        if shared { "shared" } else { "local" },
        wall.as_secs_f64(),
        bound / wall.as_secs_f64(),
    );
    assert_eq!(throttled, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn measure_crawl_qps_20() {
    crawl_measure(20, 1, 1_000, 0, false).await;
    crawl_measure(20, 1, 1_000, 0, true).await;
    crawl_measure(20, 3, 1_000, 0, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn measure_crawl_qps_500() {
    crawl_measure(0, 3, 20_000, 20, false).await;
    crawl_measure(500, 1, 20_000, 20, false).await;
    crawl_measure(500, 1, 20_000, 20, true).await;
    crawl_measure(500, 3, 20_000, 20, true).await;
}

/// `calls` calls of one API path (`department/get`), 64 tasks per instance: calls per second
/// against the budget's bound, for the in-process budget and the shared one.
async fn hammer(qps: u32, instances: usize, calls: usize, latency_ms: u64, shared: bool) {
    let Some(h) = pg(SimConfig {
        users: 10,
        depts: 2,
        qps,
        latency_ms,
        ..SimConfig::default()
    })
    .await
    else {
        return;
    };
    let mut all = Vec::new();
    for i in 0..instances {
        let inst = instance_with(&h, &format!("inst{i}"), qps, shared).await;
        // The token first, so the measurement is of the API path alone.
        inst.client.ensure_token().await.expect("token");
        all.push(inst);
    }
    let left = std::sync::atomic::AtomicUsize::new(calls);
    let started = Instant::now();
    let tasks = all.iter().flat_map(|inst| {
        let left = &left;
        (0..64).map(move |_| async move {
            while left
                .fetch_update(
                    std::sync::atomic::Ordering::SeqCst,
                    std::sync::atomic::Ordering::SeqCst,
                    |n| n.checked_sub(1),
                )
                .is_ok()
            {
                inst.client
                    .dept_get(dingtalk_proto::DingDeptId(1))
                    .await
                    .expect("department/get");
            }
        })
    });
    futures::future::join_all(tasks).await;
    let wall = started.elapsed().as_secs_f64();
    let (_, throttled) = throttled(&h).await;
    // Each slot carries one call per (round trip + 1.01 s window); the first qps calls go at
    // once, the last ones end one round trip after their start.
    let rtt = latency_ms as f64 / 1000.0;
    let bound = ((calls as f64 / f64::from(qps)).ceil() - 1.0).max(0.0) * (1.01 + rtt) + rtt;
    println!(
        "hammer qps {qps}, {} budget, {instances} instance(s), latency {latency_ms} ms: {calls} \
         calls in {wall:.2} s = {:.0}/s (bound {bound:.2} s, ratio {:.2}), throttled {throttled}",
        if shared { "shared" } else { "local" },
        calls as f64 / wall,
        bound / wall,
    );
    assert_eq!(throttled, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn measure_hammer() {
    for (qps, calls) in [(20, 200), (500, 5_000)] {
        hammer(qps, 1, calls, 20, false).await;
        hammer(qps, 1, calls, 20, true).await;
        hammer(qps, 3, calls, 20, true).await;
    }
}
