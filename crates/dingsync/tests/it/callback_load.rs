//! Load measurement (ignored by default): how many pushes per second one `dingsync serve` on
//! SQLite accepts end to end — signature verified, decrypted, parsed, committed to the inbox,
//! encrypted `success` returned — and the p50/p99 latency, with N requests in flight from a
//! load generator in this process. The same server's `/healthz` under the same generator is the
//! ceiling: what the process, the HTTP stack and the generator cost with no work behind them.
//!
//! ```text
//! cargo test -p dingsync --test it callback_load:: -- --ignored --nocapture
//! # against a release binary built beforehand:
//! cargo build --release -p dingsync
//! DINGSYNC_LOAD_BIN=target/release/dingsync cargo test -p dingsync --test it callback_load:: -- --ignored --nocapture
//! ```
//! `DINGSYNC_LOAD_REQUESTS` (default 5000) and `DINGSYNC_LOAD_CONCURRENCY` (default 32) tune it.
//! Every push is unique (its own `eventId`), so each one is a real insert, and the test checks
//! that the inbox holds all of them afterwards.

use crate::support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use directory_store::Store;
use futures::StreamExt as _;
use serde_json::json;
use support::{Pusher, Service, ServiceConfig, SignedPush};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Throughput and latency of one run.
#[derive(Debug)]
struct Measured {
    per_sec: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

fn summarize(mut latencies: Vec<Duration>, elapsed: Duration) -> Measured {
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1)];
    Measured {
        per_sec: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        max: at(1.0),
    }
}

/// Sends every push with `concurrency` in flight; each must be acknowledged.
async fn push_all(
    http: &reqwest::Client,
    url: &str,
    pusher: &Pusher,
    pushes: Vec<SignedPush>,
    concurrency: usize,
) -> Measured {
    let started = Instant::now();
    let latencies: Vec<Duration> = futures::stream::iter(pushes)
        .map(|push| async move {
            let sent = Instant::now();
            let (status, reply) = support::send_push(http, url, &push).await;
            let took = sent.elapsed();
            assert!(
                status.is_success() && pusher.is_success_reply(&reply),
                "not acknowledged: {status} {reply}"
            );
            took
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    summarize(latencies, started.elapsed())
}

/// `GET /healthz` `count` times with `concurrency` in flight.
async fn health_all(
    http: &reqwest::Client,
    url: &str,
    count: usize,
    concurrency: usize,
) -> Measured {
    let started = Instant::now();
    let latencies: Vec<Duration> = futures::stream::iter(0..count)
        .map(|_| async move {
            let sent = Instant::now();
            let response = http.get(url).send().await.expect("healthz");
            assert!(response.status().is_success());
            response.bytes().await.expect("healthz body");
            sent.elapsed()
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    summarize(latencies, started.elapsed())
}

fn pushes(pusher: &mut Pusher, prefix: &str, count: usize) -> Vec<SignedPush> {
    (0..count)
        .map(|n| {
            let now = support::now_ms();
            let event = json!({
                "EventType": "user_modify_org",
                "EventTime": now,
                "CorpId": "dingload",
                "eventId": format!("{prefix}{n:020}"),
                "timeStamp": now.to_string(),
                "userId": [format!("user{}", n % 5000)],
            });
            pusher.push(&event.to_string(), &now.to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement, not a check; run it on purpose (see the module doc)"]
async fn callbacks_per_second_on_sqlite() {
    let requests = env_or("DINGSYNC_LOAD_REQUESTS", 5000);
    let concurrency = env_or("DINGSYNC_LOAD_CONCURRENCY", 32);
    let warmup = 200;
    let binary = std::env::var_os("DINGSYNC_LOAD_BIN").map(PathBuf::from);
    let sim = support::start_sim(20, 3, 5).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = ServiceConfig::for_sim(&sim, dir.path());
    let mut service = Service::start_binary(binary.as_deref(), &config, &[]).await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("HTTP client");
    let url = config.callback_url();
    let mut pusher = Pusher::new(&config.client_id, 7);

    let warm = pushes(&mut pusher, "warm", warmup);
    push_all(&http, &url, &pusher, warm, concurrency).await;
    let measured_pushes = pushes(&mut pusher, "load", requests);
    let callbacks = push_all(&http, &url, &pusher, measured_pushes, concurrency).await;
    let health = health_all(
        &http,
        &format!("{}/healthz", config.base()),
        requests,
        concurrency,
    )
    .await;

    let store = Store::connect(&config.database_url())
        .await
        .expect("open the database");
    let stored = support::whole_inbox(&store).await.len();
    assert_eq!(
        stored,
        warmup + requests,
        "every acknowledged push is stored"
    );
    store.close().await;
    service.kill().await;
    sim.shutdown().await;

    let which = binary.map_or_else(
        || "debug (cargo test profile)".to_owned(),
        |b| b.display().to_string(),
    );
    eprintln!(
        "binary {which}; {requests} requests, {concurrency} in flight\n\
         callbacks: {:.0}/s, p50 {:?}, p99 {:?}, max {:?}\n\
         healthz:   {:.0}/s, p50 {:?}, p99 {:?}, max {:?}",
        callbacks.per_sec,
        callbacks.p50,
        callbacks.p99,
        callbacks.max,
        health.per_sec,
        health.p50,
        health.p99,
        health.max
    );
    assert!(callbacks.per_sec > 0.0 && health.per_sec > 0.0);
}
