//! `bench import`: the full import, against the rate-limit bound and against the same import
//! made "the way DingTalk's guide sketches it" — strictly one call after another.
//!
//! The two run side by side, each against its own simulator with the same seed (so the same
//! organization and the same per-API budget), so a noisy machine slows both alike and the ratio
//! holds. The bound is the issue's: for each API family the calls the data requires divided by
//! the budget, the largest of them. The engine's own estimate (`engine_min_wall_s`, the same
//! bound now that the user reads overlap the listing) is reported next to it.
//!
//! The sequential crawl walks the tree with `listsub`, reads each department, lists each
//! department's members page by page, reads each user, then the roles and their members — one
//! awaited call at a time through the same [`DingTalkClient`] (same budget, same retries).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use dingtalk_client::DingTalkClient;
use dingtalk_proto::{DingDeptId, DingUserId};

use super::rig::{DbChoice, Rig, RigOptions, start_sim};
use super::stats::{rate_bound_s, round2};
use super::{BenchReport, round3};
use crate::service::Service;

/// `bench import` options.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// People in the simulated organization.
    #[arg(long, default_value_t = 2000)]
    pub users: usize,
    /// Departments below the root (default: one per 15 people).
    #[arg(long)]
    pub depts: Option<usize>,
    /// DingTalk's calls per second per API.
    #[arg(long, default_value_t = 20)]
    pub qps: u32,
    /// Latency the simulator adds to every call.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Skip the sequential comparison run.
    #[arg(long)]
    pub no_sequential: bool,
    /// Run the service with this file's `[mapping]` and `[scope]` (e.g.
    /// `docs/examples/mapping-ten-rules.toml`); the report names the file and the fingerprint.
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
}

/// What the sequential crawl did.
#[derive(Debug)]
struct SequentialRun {
    /// Wall time, seconds.
    wall_s: f64,
    /// Calls made.
    calls: u64,
    /// Users read.
    users: usize,
}

/// Runs the scenario.
pub async fn run(
    service: &dyn Service,
    args: &ImportArgs,
    db: &DbChoice,
) -> anyhow::Result<BenchReport> {
    let depts = args.depts.unwrap_or((args.users / 15).max(1));
    let options = RigOptions {
        users: args.users,
        depts,
        qps: args.qps,
        latency_ms: args.latency_ms,
        workers: false,
        mapping: args.mapping.clone(),
        ..RigOptions::bench(db)
    };
    let rig = Rig::start(service, &options).await?;
    let engine = async {
        let started = Instant::now();
        let report = rig.import().await?;
        anyhow::Ok((report, started.elapsed().as_secs_f64()))
    };
    let sequential = async {
        if args.no_sequential {
            return anyhow::Ok(None);
        }
        sequential_import(&options).await.map(Some)
    };
    let ((report, wall_s), sequential) = tokio::try_join!(engine, sequential)?;
    anyhow::ensure!(
        report.complete,
        "the import was incomplete: {:?}",
        report.failures
    );
    let bound_s = rate_bound_s(&report.calls.minimum, args.qps);
    let mut out = BenchReport::new("import", db, wall_s, bound_s);
    let people = report.users.created + report.users.updated + report.users.unchanged;
    out.throughput_per_s = round2(people as f64 / wall_s.max(f64::EPSILON));
    out.calls = report.calls.made.clone();
    out.min_calls = report.calls.minimum.clone();
    out.sequential_wall_s = sequential.as_ref().map(|s| round3(s.wall_s));
    let calls_ratio = report.calls.total_made as f64 / report.calls.total_minimum.max(1) as f64;
    out = out
        .with("mapping", rig.mapping_report())
        .with("users", args.users)
        .with("depts", depts)
        .with("qps", args.qps)
        .with("latency_ms", args.latency_ms)
        .with("people_imported", people)
        .with("total_calls", report.calls.total_made)
        .with("total_min_calls", report.calls.total_minimum)
        .with("calls_over_min", round2(calls_ratio * 100.0) / 100.0)
        .with("throttled", report.calls.throttled)
        .with(
            "engine_min_wall_s",
            report.calls.min_wall_ms.map(|ms| ms as f64 / 1000.0),
        );
    if let Some(s) = &sequential {
        out = out
            .with("sequential_calls", s.calls)
            .with("sequential_users", s.users)
            .with(
                "speedup_over_sequential",
                round2(s.wall_s / wall_s.max(f64::EPSILON)),
            );
    }
    rig.shutdown().await?;
    Ok(out)
}

/// The same import one call after another, against its own simulator.
async fn sequential_import(options: &RigOptions) -> anyhow::Result<SequentialRun> {
    let qps = options.qps;
    let sim = start_sim(options).await?;
    let mut config = dingtalk_client::ClientConfig::new(
        sim.config().client_id.clone(),
        sim.config().client_secret.clone(),
    )
    .with_base_url(sim.base_url());
    config.qps_per_api = qps;
    let client = DingTalkClient::new(config).context("cannot build the DingTalk client")?;
    let started = Instant::now();
    let read = crawl_one_by_one(&client).await;
    let wall_s = started.elapsed().as_secs_f64();
    let calls = client.stats().total_calls();
    sim.shutdown().await;
    Ok(SequentialRun {
        wall_s,
        calls,
        users: read?,
    })
}

/// The guide's walk: tree, departments, members, each user, roles; returns the users read.
async fn crawl_one_by_one(client: &DingTalkClient) -> anyhow::Result<usize> {
    let mut queue = VecDeque::from([DingDeptId(1)]);
    let mut depts = Vec::new();
    while let Some(dept) = queue.pop_front() {
        depts.push(dept);
        for child in client.dept_list_sub(dept).await? {
            queue.push_back(child.dept_id);
        }
    }
    let mut userids: BTreeSet<DingUserId> = BTreeSet::new();
    for dept in &depts {
        client.dept_get(*dept).await?;
        for user in client.user_list_all(*dept).await? {
            userids.insert(user.userid);
        }
    }
    for userid in &userids {
        client.user_get(userid).await?;
    }
    let mut members = BTreeMap::new();
    for group in client.role_list_all().await? {
        for role in group.roles {
            members.insert(role.id, client.role_members_all(role.id).await?.len());
        }
    }
    Ok(userids.len())
}
