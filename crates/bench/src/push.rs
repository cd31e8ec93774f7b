//! `bench push`: OA changes pushed to DingTalk, against the rate-limit bound.
//!
//! The OA system creates `changes` users through the OA API as fast as the API takes them; the
//! push worker turns each outbox entry into a `v2/user/create` call. The run ends when the
//! outbox is empty. Each create costs one call, so the bound is `changes ÷ qps`. The latency of
//! one change is from the OA API's answer to the moment the simulator recorded the user's
//! creation (both read the same machine clock).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use dingtalk_client::endpoints::paths;
use reqwest::Method;
use sync_engine::{Clock as _, SystemClock};

use super::api::user_body;
use super::rig::{DbChoice, Rig, RigOptions};
use super::stats::{Latencies, calls_delta, rate_bound_s, round2};
use super::{BenchReport, load};
use crate::service::Service;

/// `bench push` options.
#[derive(Debug, Clone, Args)]
pub struct PushArgs {
    /// Users the OA system creates.
    #[arg(long, default_value_t = 1000)]
    pub changes: usize,
    /// DingTalk's calls per second per API.
    #[arg(long, default_value_t = 20)]
    pub qps: u32,
    /// Latency the simulator adds to every call.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Run the service with this file's `[mapping]` and `[scope]`; the report names it.
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<std::path::PathBuf>,
}

impl Default for PushArgs {
    fn default() -> Self {
        Self {
            changes: 1000,
            qps: 20,
            latency_ms: 0,
            mapping: None,
        }
    }
}

/// Runs the scenario.
pub async fn run(
    service: &dyn Service,
    args: &PushArgs,
    db: &DbChoice,
) -> anyhow::Result<BenchReport> {
    let rig = Rig::start(
        service,
        &RigOptions {
            users: 0,
            depts: 0,
            qps: args.qps,
            latency_ms: args.latency_ms,
            workers: true,
            mapping: args.mapping.clone(),
            ..RigOptions::bench(db)
        },
    )
    .await?;
    rig.import()
        .await
        .context("the import of the empty organization failed")?;
    let root = rig.root_department().await?;
    let calls_before = rig.sim_calls().await?;
    let events_before = sim_events(&rig, 0).await?.len();

    let started = Instant::now();
    let written_ms = write_users(&rig, args.changes, root).await?;
    let writes_s = started.elapsed().as_secs_f64();
    // The outbox drains at the rate limit; give it three times the bound before giving up.
    let patience =
        Duration::from_secs_f64(args.changes as f64 / f64::from(args.qps.max(1)) * 3.0 + 60.0);
    rig.wait_drained(started, patience).await?;
    let wall = started.elapsed();

    let calls = calls_delta(&calls_before, &rig.sim_calls().await?);
    let min_calls = [(paths::USER_CREATE.to_owned(), args.changes as u64)].into();
    let bound_s = rate_bound_s(&min_calls, args.qps);
    let latencies = push_latencies(&rig, events_before, &written_ms).await?;
    anyhow::ensure!(
        latencies.len() == args.changes,
        "{} users created in DingTalk, {} expected",
        latencies.len(),
        args.changes
    );

    let mut out = BenchReport::new("push", db, wall.as_secs_f64(), bound_s);
    out.calls = calls;
    out.min_calls = min_calls;
    out.throughput_per_s = round2(args.changes as f64 / wall.as_secs_f64());
    out.p50_ms = latencies.percentile(50.0);
    out.p99_ms = latencies.percentile(99.0);
    out = out
        .with("mapping", rig.mapping_report())
        .with("changes", args.changes)
        .with("qps", args.qps)
        .with("latency_ms", args.latency_ms)
        .with("oa_writes_s", round2(writes_s));
    rig.shutdown().await?;
    Ok(out)
}

/// Creates `changes` users through the OA API; returns when each was written (Unix ms).
async fn write_users(rig: &Rig, changes: usize, root: i64) -> anyhow::Result<HashMap<String, i64>> {
    let written_ms = std::sync::Mutex::new(HashMap::new());
    load::run(changes, 8, |i| {
        let written_ms = &written_ms;
        async move {
            let (status, body) = rig
                .oa_send(Method::POST, "/users", Some(&user_body(i, root)))
                .await?;
            anyhow::ensure!(status.is_success(), "POST /users: HTTP {status}: {body}");
            written_ms
                .lock()
                .map_err(|_| anyhow::anyhow!("a writer panicked"))?
                .insert(format!("bench{i}"), SystemClock.now_ms());
            Ok(())
        }
    })
    .await?;
    written_ms
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a writer panicked"))
}

/// Write-to-DingTalk latency of each user: from the OA write to the simulator's
/// `user_add_org` event for it.
async fn push_latencies(
    rig: &Rig,
    events_before: usize,
    written_ms: &HashMap<String, i64>,
) -> anyhow::Result<Latencies> {
    let mut latencies = Latencies::default();
    for event in sim_events(rig, events_before).await? {
        if event["event_type"] != "user_add_org" {
            continue;
        }
        let created_ms = event["time_ms"].as_i64().unwrap_or(0);
        for userid in event["data"]["userId"].as_array().into_iter().flatten() {
            if let Some(w) = userid.as_str().and_then(|u| written_ms.get(u)) {
                let ms = u64::try_from(created_ms.saturating_sub(*w)).unwrap_or(0);
                latencies.record(Duration::from_millis(ms));
            }
        }
    }
    Ok(latencies)
}

/// The simulator's event log after the first `after` events.
pub async fn sim_events(rig: &Rig, after: usize) -> anyhow::Result<Vec<serde_json::Value>> {
    let body = rig
        .sim_send(Method::GET, &format!("/_sim/events?after={after}"), None)
        .await?;
    Ok(body["events"].as_array().cloned().unwrap_or_default())
}
