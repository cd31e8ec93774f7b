//! `bench recovery`: how long a push backlog takes to drain after the pusher was killed in the
//! middle of it, and what the recovery costs DingTalk per entity (issue 18, B1).
//!
//! The OA system writes `changes` entities through the OA API: departments (a few parents
//! with many children each, so a retried create has many siblings) and users in them. A pusher
//! then works on the backlog until `killed_after` creates were accepted by DingTalk; from then
//! on every create DingTalk accepts is "lost" as by a kill -9 between DingTalk's answer and
//! saving the id map, and the round stops with its entries still claimed. The restarted pusher
//! (another worker, as after a restart with a new process id) takes them over once their lease
//! ran out and drains the queue. Reported: the drain time from the restart against the bound
//! (the creates still to make at the rate limit, plus the lease wait), and the DingTalk calls
//! per recovered entity; before issue 18 a retried department create read every sibling.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use dingtalk_client::endpoints::paths;
use reqwest::Method;
use serde_json::json;
use sync_engine::push::{Failpoint, FailpointHook, PushConfig, Pusher};
use tokio_util::sync::CancellationToken;

use super::api::user_body;
use super::rig::{DbChoice, Rig, RigOptions};
use super::stats::{calls_delta, round2};
use super::{BenchReport, round3};
use crate::service::Service;

/// `bench recovery` options.
#[derive(Debug, Clone, Args)]
pub struct RecoveryArgs {
    /// OA changes queued: about half departments, half users.
    #[arg(long, default_value_t = 258)]
    pub changes: usize,
    /// Creates DingTalk accepts before the kill.
    #[arg(long, default_value_t = 40)]
    pub killed_after: usize,
    /// DingTalk's calls per second per API.
    #[arg(long, default_value_t = 20)]
    pub qps: u32,
    /// The killed pusher's claim lease, seconds (the restarted one waits it out).
    #[arg(long, default_value_t = 5)]
    pub lease_s: u64,
}

/// Parent departments the created departments are spread over.
const PARENTS: usize = 3;

/// Runs the scenario.
///
/// Over 80 lines on purpose: it reads as the scenario's script (queue, push until the kill,
/// restart, drain, report) top to bottom, and each step is a few lines of calls; split, the
/// steps would pass the whole world between them.
pub async fn run(
    service: &dyn Service,
    args: &RecoveryArgs,
    db: &DbChoice,
) -> anyhow::Result<BenchReport> {
    anyhow::ensure!(
        args.changes >= 2 * PARENTS,
        "--changes must be at least {}",
        2 * PARENTS
    );
    let rig = Rig::start(
        service,
        &RigOptions {
            users: 0,
            depts: 0,
            qps: args.qps,
            latency_ms: 0,
            workers: false,
            ..RigOptions::bench(db)
        },
    )
    .await?;
    rig.import()
        .await
        .context("the import of the empty organization failed")?;
    let root = rig.root_department().await?;
    let depts = args.changes / 2;
    let users = args.changes - depts;
    let mut dept_ids = Vec::with_capacity(depts);
    for i in 0..depts {
        let parent = if i < PARENTS {
            root
        } else {
            dept_ids[i % PARENTS]
        };
        let body = json!({"name": format!("Recovery {i}"), "parent": parent});
        let (status, body) = rig
            .oa_send(Method::POST, "/departments", Some(&body))
            .await?;
        anyhow::ensure!(
            status.is_success(),
            "POST /departments: HTTP {status}: {body}"
        );
        dept_ids.push(body["id"].as_i64().context("the created department's id")?);
    }
    for i in 0..users {
        let dept = dept_ids[i % dept_ids.len()];
        let (status, body) = rig
            .oa_send(Method::POST, "/users", Some(&user_body(i, dept)))
            .await?;
        anyhow::ensure!(status.is_success(), "POST /users: HTTP {status}: {body}");
    }

    // The pusher that is killed: from the `killed_after`th accepted create on, every create
    // DingTalk accepts is lost, and the round ends with its entries claimed.
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let killed_after = args.killed_after;
    let hook: FailpointHook = Arc::new(move |point, _| {
        point == Failpoint::AfterAccept && counter.fetch_add(1, Ordering::SeqCst) >= killed_after
    });
    let lease = Duration::from_secs(args.lease_s);
    let killed = Pusher::new(
        &rig.ctx,
        1,
        PushConfig {
            worker: "bench:killed:pusher".into(),
            lease,
            ..PushConfig::default()
        },
    )
    .with_failpoint(hook);
    anyhow::ensure!(
        killed.drain().await.is_err(),
        "the backlog drained before the kill; raise --changes or lower --killed-after"
    );
    let queued = rig.store.outbox_depth().await?;
    let left = usize::try_from(queued.pending + queued.claimed).unwrap_or(0);
    let calls_before = rig.sim_calls().await?;

    let started = Instant::now();
    let cancel = CancellationToken::new();
    let restarted = Pusher::new(
        &rig.ctx,
        2,
        PushConfig {
            worker: "bench:restarted:pusher".into(),
            idle_poll: Duration::from_millis(50),
            ..PushConfig::default()
        },
    );
    let worker = {
        let cancel = cancel.clone();
        tokio::spawn(async move { restarted.run(cancel).await })
    };
    let patience = lease
        + Duration::from_secs_f64(left as f64 / f64::from(args.qps.max(1)) * 20.0)
        + Duration::from_secs(60);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let drained = loop {
        tick.tick().await;
        let depth = rig.store.outbox_depth().await?;
        if depth.pending + depth.claimed == 0 {
            break Ok(depth.dead);
        }
        if started.elapsed() > patience {
            break Err(anyhow::anyhow!(
                "the outbox did not drain within {patience:?} ({} left)",
                depth.pending + depth.claimed
            ));
        }
    };
    let wall = started.elapsed();
    cancel.cancel();
    worker.await.context("the restarted pusher panicked")??;
    let dead = drained?;
    anyhow::ensure!(dead == 0, "{dead} pushes ended as dead letters");

    let calls = calls_delta(&calls_before, &rig.sim_calls().await?);
    let total: u64 = calls.values().sum();
    let lookups = calls.get(paths::DEPT_GET).copied().unwrap_or(0)
        + calls.get(paths::DEPT_LISTSUB).copied().unwrap_or(0)
        + calls.get(paths::USER_GET).copied().unwrap_or(0);
    // Each entity left needs one create (or one look-up, when DingTalk has it already); the
    // busiest API is the department one.
    let dept_left = calls.get(paths::DEPT_CREATE).copied().unwrap_or(0).max(1);
    let bound_s = lease.as_secs_f64() + dept_left as f64 / f64::from(args.qps.max(1));
    let per_entity = total as f64 / left.max(1) as f64;

    let mut out = BenchReport::new("recovery", db, wall.as_secs_f64(), Some(bound_s));
    out.calls = calls;
    out.throughput_per_s = round2(left as f64 / wall.as_secs_f64());
    out = out
        .with("changes", args.changes)
        .with("left_at_kill", left)
        .with("qps", args.qps)
        .with("lease_s", args.lease_s)
        .with("calls_per_entity", round3(per_entity))
        .with(
            "lookups_per_entity",
            round3(lookups as f64 / left.max(1) as f64),
        );
    rig.shutdown().await?;
    Ok(out)
}
