//! `bench events`: a burst of DingTalk-side changes, pushed to dingsync as callbacks, until the
//! OA directory shows every one; then single changes on an idle system for the latency.
//!
//! Each change is an administrator renaming a user through the simulator's `/_sim` routes. The
//! simulator pushes `user_modify_org`; the receiver stores it; the apply worker reads the user
//! with `v2/user/get` and writes the directory. A change is *visible* when the OA change feed
//! (`GET /api/v1/changes`, what the OA system follows) lists the user with the new name. Every
//! change needs one fetch, so the bound is `events ÷ qps` (the fetch API's budget).
//!
//! The idle changes are paced at half the fetch budget, so none waits for the rate limit.
//! The feed is polled every few milliseconds; that period is the resolution of the latencies
//! (and is small next to a fetch). The burst's latencies include queueing behind the budget, so
//! the reported `p50_ms`/`p99_ms` come from the idle phase, one change at a time, which is what
//! "how quickly a change shows up" means; the burst's are reported next to them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use dingtalk_client::endpoints::paths;
use reqwest::Method;
use serde_json::json;

use super::rig::{DbChoice, Rig, RigOptions};
use super::stats::{Latencies, calls_delta, rate_bound_s, round2};
use super::{BenchReport, load};
use crate::service::Service;

/// How often the OA change feed is polled.
const POLL: Duration = Duration::from_millis(5);

/// DingTalk's rate window plus a margin: waiting this long leaves the whole budget free, so a
/// phase starts on an idle system instead of behind the calls of the phase before.
const SETTLE: Duration = Duration::from_millis(1100);

/// `bench events` options.
#[derive(Debug, Clone, Args)]
pub struct EventsArgs {
    /// Changes in the burst (each renames a different user).
    #[arg(long, default_value_t = 400)]
    pub events: usize,
    /// Single changes on the idle system, for the latency percentiles.
    #[arg(long, default_value_t = 50)]
    pub idle_samples: usize,
    /// DingTalk's calls per second per API.
    #[arg(long, default_value_t = 20)]
    pub qps: u32,
    /// Latency the simulator adds to every call.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
}

impl Default for EventsArgs {
    fn default() -> Self {
        Self {
            events: 400,
            idle_samples: 50,
            qps: 20,
            latency_ms: 0,
        }
    }
}

/// Follows the OA change feed (also `bench reorg`'s).
pub(crate) struct Feed<'a> {
    /// The service.
    rig: &'a Rig,
    /// The last `seq` read.
    after: i64,
}

impl<'a> Feed<'a> {
    /// A reader of the feed from its start.
    pub(crate) fn new(rig: &'a Rig) -> Self {
        Self { rig, after: 0 }
    }

    /// Reads every change after the cursor; returns the new names of updated users.
    async fn user_names(&mut self) -> anyhow::Result<Vec<String>> {
        Ok(self
            .users()
            .await?
            .iter()
            .filter_map(|u| u["name"].as_str().map(str::to_owned))
            .collect())
    }

    /// Reads every change after the cursor; returns the users as they are after each change.
    pub(crate) async fn users(&mut self) -> anyhow::Result<Vec<serde_json::Value>> {
        let mut users = Vec::new();
        loop {
            let (status, page) = self
                .rig
                .oa_send(
                    Method::GET,
                    &format!("/changes?after={}&limit=1000", self.after),
                    None,
                )
                .await?;
            anyhow::ensure!(status.is_success(), "GET /changes: HTTP {status}: {page}");
            let items = page["items"].as_array().cloned().unwrap_or_default();
            for item in &items {
                if item["kind"] == "user" && item["after"].is_object() {
                    users.push(item["after"].clone());
                }
            }
            self.after = page["next_after"].as_i64().unwrap_or(self.after);
            if items.len() < 1000 {
                return Ok(users);
            }
        }
    }
}

/// What the burst phase measured.
struct Burst {
    /// From the first change sent to the last one visible.
    wall: Duration,
    /// How long sending the changes took.
    sent: Duration,
    /// Change-to-visible latency of each change.
    latencies: Latencies,
    /// DingTalk calls made during the burst.
    calls: std::collections::BTreeMap<String, u64>,
}

/// Runs the scenario.
pub async fn run(
    service: &dyn Service,
    args: &EventsArgs,
    db: &DbChoice,
) -> anyhow::Result<BenchReport> {
    anyhow::ensure!(args.events > 0, "--events must be at least 1");
    let users = args.events.max(args.idle_samples);
    let rig = Rig::start(
        service,
        &RigOptions {
            users,
            depts: (users / 15).max(1),
            qps: args.qps,
            latency_ms: args.latency_ms,
            workers: true,
            ..RigOptions::bench(db)
        },
    )
    .await?;
    anyhow::ensure!(rig.import().await?.complete, "the import was incomplete");
    rig.subscribe_callbacks().await?;
    let userids = sim_userids(&rig, users).await?;
    let mut feed = Feed::new(&rig);
    feed.user_names().await?;
    tokio::time::sleep(SETTLE).await;
    let burst = burst(&rig, &mut feed, &userids, args).await?;
    tokio::time::sleep(SETTLE).await;
    let idle = idle(&rig, &mut feed, &userids, args).await?;

    let min_calls = [(paths::USER_GET.to_owned(), args.events as u64)].into();
    let bound_s = rate_bound_s(&min_calls, args.qps);
    let mut out = BenchReport::new("events", db, burst.wall.as_secs_f64(), bound_s);
    out.calls = burst.calls;
    out.min_calls = min_calls;
    out.throughput_per_s = round2(args.events as f64 / burst.wall.as_secs_f64());
    out.p50_ms = idle.percentile(50.0);
    out.p99_ms = idle.percentile(99.0);
    out = out
        .with("events", args.events)
        .with("idle_samples", args.idle_samples)
        .with("qps", args.qps)
        .with("latency_ms", args.latency_ms)
        .with("changes_sent_s", round2(burst.sent.as_secs_f64()))
        .with("burst_p50_ms", burst.latencies.percentile(50.0))
        .with("burst_p99_ms", burst.latencies.percentile(99.0));
    rig.shutdown().await?;
    Ok(out)
}

/// The simulator's user ids (at least `users` of them).
async fn sim_userids(rig: &Rig, users: usize) -> anyhow::Result<Vec<String>> {
    let state = rig.sim_send(Method::GET, "/_sim/state", None).await?;
    let userids: Vec<String> = state["users"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u["userid"].as_str().map(str::to_owned))
        .collect();
    anyhow::ensure!(userids.len() >= users, "the simulator has too few users");
    Ok(userids)
}

/// An administrator renames `userid` to `name` in DingTalk.
async fn rename(rig: &Rig, userid: &str, name: &str) -> anyhow::Result<()> {
    rig.sim_send(
        Method::PATCH,
        &format!("/_sim/users/{userid}"),
        Some(json!({ "name": name })),
    )
    .await?;
    Ok(())
}

/// The burst: `args.events` renames at once, watched on the feed until every one is visible.
async fn burst(
    rig: &Rig,
    feed: &mut Feed<'_>,
    userids: &[String],
    args: &EventsArgs,
) -> anyhow::Result<Burst> {
    let calls_before = rig.sim_calls().await?;
    let patience =
        Duration::from_secs_f64(args.events as f64 / f64::from(args.qps.max(1)) * 3.0 + 60.0);
    let started = Instant::now();
    let changed_at = std::sync::Mutex::new(HashMap::new());
    let changes = load::run(args.events, 8, |i| {
        let changed_at = &changed_at;
        async move {
            let userid = userids.get(i).context("user index")?;
            let name = format!("Bench Burst {i}");
            rename(rig, userid, &name).await?;
            changed_at
                .lock()
                .map_err(|_| anyhow::anyhow!("a writer panicked"))?
                .insert(name, Instant::now());
            Ok(())
        }
    });
    let watch = async {
        let mut visible_at = HashMap::new();
        let mut tick = tokio::time::interval(POLL);
        while visible_at.len() < args.events {
            tick.tick().await;
            for name in feed.user_names().await? {
                if name.starts_with("Bench Burst ") {
                    visible_at.entry(name).or_insert_with(Instant::now);
                }
            }
            anyhow::ensure!(
                started.elapsed() < patience,
                "only {} of {} changes visible after {patience:?}",
                visible_at.len(),
                args.events
            );
        }
        anyhow::Ok(visible_at)
    };
    let (changes, visible_at) = tokio::try_join!(changes, watch)?;
    let wall = started.elapsed();
    let changed_at = changed_at
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a writer panicked"))?;
    let mut latencies = Latencies::default();
    for (name, seen) in &visible_at {
        if let Some(changed) = changed_at.get(name) {
            latencies.record(seen.saturating_duration_since(*changed));
        }
    }
    let calls = calls_delta(&calls_before, &rig.sim_calls().await?);
    Ok(Burst {
        wall,
        sent: changes.wall,
        latencies,
        calls,
    })
}

/// One change at a time on an idle system, each watched until visible.
async fn idle(
    rig: &Rig,
    feed: &mut Feed<'_>,
    userids: &[String],
    args: &EventsArgs,
) -> anyhow::Result<Latencies> {
    let mut idle = Latencies::default();
    // Idle means the fetch budget is never the wait: one change per two budget slots, so the
    // samples themselves never fill a rate window.
    let mut pace = tokio::time::interval(Duration::from_secs_f64(2.0 / f64::from(args.qps.max(1))));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for k in 0..args.idle_samples {
        pace.tick().await;
        let userid = userids.get(k).context("user index")?;
        let name = format!("Bench Idle {k}");
        rename(rig, userid, &name).await?;
        let changed = Instant::now();
        let mut tick = tokio::time::interval(POLL);
        loop {
            tick.tick().await;
            if feed.user_names().await?.contains(&name) {
                idle.record(changed.elapsed());
                break;
            }
            anyhow::ensure!(
                changed.elapsed() < Duration::from_secs(60),
                "idle change {k} not visible after 60 s"
            );
        }
    }
    Ok(idle)
}
