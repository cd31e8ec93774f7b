//! `bench api`: the OA API's own speed — creating users (each a validated, journaled write that
//! also queues an outbox entry) and reading them back — with per-request latency.
//!
//! The workers are off so the pushes the writes queue do not compete with the API for the
//! database; the push path has its own scenario. There is no rate limit between the OA system
//! and dingsync, so there is no bound: the figures are throughput and latency.

use anyhow::Context;
use clap::Args;
use reqwest::Method;
use serde_json::json;

use super::rig::{DbChoice, Rig, RigOptions};
use super::stats::{Latencies, round2};
use super::{BenchReport, load};
use crate::service::Service;

/// `bench api` options.
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Users created (one `POST /users` each).
    #[arg(long, default_value_t = 2000)]
    pub writes: usize,
    /// User reads (`GET /users/{id}`), spread over the created users.
    #[arg(long, default_value_t = 10_000)]
    pub reads: usize,
}

impl Default for ApiArgs {
    fn default() -> Self {
        Self {
            concurrency: 16,
            writes: 2000,
            reads: 10_000,
        }
    }
}

/// The body of the `i`-th user the bench creates (in department `dept`).
pub fn user_body(i: usize, dept: i64) -> serde_json::Value {
    json!({
        "id": format!("bench{i}"),
        "name": format!("Bench User {i}"),
        "mobile": format!("137{:08}", i % 100_000_000),
        "departments": [{"dept": dept, "title": "Engineer"}],
    })
}

/// Runs the scenario.
pub async fn run(
    service: &dyn Service,
    args: &ApiArgs,
    db: &DbChoice,
) -> anyhow::Result<BenchReport> {
    anyhow::ensure!(args.writes > 0, "--writes must be at least 1");
    let rig = Rig::start(
        service,
        &RigOptions {
            users: 0,
            depts: 0,
            // Only the import of the empty organization calls DingTalk.
            qps: 500,
            latency_ms: 0,
            workers: false,
            ..RigOptions::bench(db)
        },
    )
    .await?;
    // The import gives the directory its root department.
    rig.import()
        .await
        .context("the import of the empty organization failed")?;
    let root = rig.root_department().await?;

    let writes = load::run(args.writes, args.concurrency, |i| {
        let rig = &rig;
        async move {
            let (status, body) = rig
                .oa_send(Method::POST, "/users", Some(&user_body(i, root)))
                .await?;
            anyhow::ensure!(status.is_success(), "POST /users: HTTP {status}: {body}");
            Ok(())
        }
    })
    .await?;
    let reads = load::run(args.reads, args.concurrency, |i| {
        let rig = &rig;
        let id = format!("bench{}", i % args.writes);
        async move {
            let (status, body) = rig
                .oa_send(Method::GET, &format!("/users/{id}"), None)
                .await?;
            anyhow::ensure!(
                status.is_success() && body["id"] == id.as_str(),
                "GET /users/{id}: HTTP {status}: {body}"
            );
            Ok(())
        }
    })
    .await?;

    let wall = writes.wall + reads.wall;
    let mut all = Latencies::default();
    all.extend(writes.latencies.clone());
    all.extend(reads.latencies.clone());
    let mut out = BenchReport::new("api", db, wall.as_secs_f64(), None);
    out.throughput_per_s = round2((args.writes + args.reads) as f64 / wall.as_secs_f64());
    out.p50_ms = all.percentile(50.0);
    out.p99_ms = all.percentile(99.0);
    out = out
        .with("concurrency", args.concurrency)
        .with("writes", args.writes)
        .with("reads", args.reads)
        .with("writes_per_s", writes.per_s())
        .with("write_p50_ms", writes.latencies.percentile(50.0))
        .with("write_p99_ms", writes.latencies.percentile(99.0))
        .with("reads_per_s", reads.per_s())
        .with("read_p50_ms", reads.latencies.percentile(50.0))
        .with("read_p99_ms", reads.latencies.percentile(99.0));
    rig.shutdown().await?;
    Ok(out)
}
