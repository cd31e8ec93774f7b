//! The background work of `dingsync serve`: applying DingTalk's events from the inbox, pushing
//! OA changes from the outbox, catching up on pushes DingTalk gave up on, and the scheduled
//! reconcile.
//!
//! Each worker is a loop owned by a [`tokio::task::JoinSet`] and stopped by one
//! [`CancellationToken`]; a worker that fails logs the cause chain and is restarted after a pause
//! rather than taking the service down, because a database blip must not stop the sync for good.
//! The engine's own loops (`Applier::run`, `Pusher::run`) poll their queues, so an inbox or outbox
//! row committed by any instance is picked up without a wake-up call; the callback route also
//! wakes this instance's applier (`apply_wake`) so its own events are applied at once.
//!
//! Catch-up and the scheduled reconcile run under a lease (`sync_engine::exclusive`): with
//! several instances on one database only one runs a round, another takes over when the holder
//! dies (after the lease's ttl), and a round another instance finished recently is skipped.
//! Skipped rounds are logged at debug and counted in `dingsync_job_rounds_total{job,outcome}`.

use std::sync::Arc;
use std::time::Duration;

use sync_engine::apply::{Applier, ApplyOptions};
use sync_engine::exclusive::{ExclusiveJob, Round, run_exclusive};
use sync_engine::plan::{PlanOptions, plan, reconcile};
use sync_engine::push::{PushConfig, Pusher};
use sync_engine::{Policy, SyncContext};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Winner};
use crate::telemetry::Telemetry;

/// How long a failed worker waits before it starts again.
const RESTART_PAUSE: Duration = Duration::from_secs(5);

/// How often queue depths and DingTalk call counters are exported to `/metrics`.
const GAUGE_EVERY: Duration = Duration::from_secs(5);

/// Exports what the store and the DingTalk client know as Prometheus gauges and counters:
/// queue depths (by state), held deletions, and calls / errors / throttles per DingTalk API.
async fn export_gauges(ctx: &SyncContext) -> anyhow::Result<()> {
    let inbox = ctx.store.inbox_depth().await?;
    let outbox = ctx.store.outbox_depth().await?;
    for (queue, depth) in [("inbox", inbox), ("outbox", outbox)] {
        for (state, n) in [
            ("pending", depth.pending),
            ("claimed", depth.claimed),
            ("dead", depth.dead),
        ] {
            metrics::gauge!("dingsync_queue_depth", "queue" => queue, "state" => state)
                .set(n as f64);
        }
    }
    let held = ctx
        .store
        .held_deletions(Some(directory_store::HoldState::Held))
        .await?;
    metrics::gauge!("dingsync_held_deletions").set(held.len() as f64);
    for (api, stats) in ctx.client.stats().endpoints {
        metrics::counter!("dingsync_dingtalk_calls_total", "api" => api).absolute(stats.calls);
        metrics::counter!("dingsync_dingtalk_errors_total", "api" => api).absolute(stats.errors);
        metrics::counter!("dingsync_dingtalk_throttles_total", "api" => api)
            .absolute(stats.throttles);
    }
    Ok(())
}

/// The engine policy the configuration asks for.
pub fn policy(config: &Config) -> Policy {
    use directory_model::{MergePolicy, Side};
    let winner = match config.sync.conflict_winner {
        Winner::Oa => Side::Oa,
        Winner::Dingtalk => Side::DingTalk,
    };
    let mut policy = Policy {
        users: MergePolicy::with_winner(winner),
        departments: MergePolicy::with_winner(winner),
        role_groups: MergePolicy::with_winner(winner),
        roles: MergePolicy::with_winner(winner),
        ..Policy::default()
    };
    policy.deletions = deletion_threshold(config);
    policy.scope.include = config
        .sync
        .include_depts
        .iter()
        .map(|&d| directory_model::DingDeptId(d))
        .collect();
    policy.scope.exclude = config
        .sync
        .exclude_depts
        .iter()
        .map(|&d| directory_model::DingDeptId(d))
        .collect();
    crate::config::mapping::apply_to_policy(&mut policy, config.rules.clone());
    policy
}

/// The deletion threshold the configuration asks for (`[sync] deletion_max_*`).
pub fn deletion_threshold(config: &Config) -> sync_engine::DeletionThreshold {
    sync_engine::DeletionThreshold {
        max_fraction: config.sync.deletion_max_percent / 100.0,
        max_count: config.sync.deletion_max_count,
    }
}

/// Starts every worker; they stop when `cancel` fires (await the returned set to know when).
pub fn spawn(
    ctx: SyncContext,
    config: &Config,
    instance: &str,
    apply_wake: Arc<Notify>,
    shared: &crate::server::Shared,
    cancel: &CancellationToken,
) -> JoinSet<()> {
    let mut set = Supervisor {
        tasks: JoinSet::new(),
        telemetry: shared.telemetry.clone(),
    };
    spawn_apply(&mut set, &ctx, config, instance, apply_wake, cancel);
    let pusher = spawn_push(&mut set, &ctx, config, instance, cancel);
    spawn_catch_up(&mut set, &ctx, config, instance, cancel);
    spawn_gauges(&mut set, &ctx, shared.stats.clone(), cancel);
    spawn_reconcile(&mut set, ctx, config, instance, pusher, cancel);
    set.tasks
}

/// The apply worker: applies stored DingTalk events as they arrive (woken by `apply_wake`).
fn spawn_apply(
    set: &mut Supervisor,
    ctx: &SyncContext,
    config: &Config,
    instance: &str,
    apply_wake: Arc<Notify>,
    cancel: &CancellationToken,
) {
    let applier = Arc::new(Applier::new(
        ctx.clone(),
        ApplyOptions {
            worker: format!("{instance}:apply"),
            lease_ms: i64::try_from(config.sync.claim_lease_secs.saturating_mul(1000))
                .unwrap_or(i64::MAX),
            ..ApplyOptions::default()
        },
    ));
    let wake = apply_wake;
    let gate = crate::mapping_cmd::Gate::new(ctx);
    supervise(set, "apply", cancel.clone(), move |cancel| {
        let (applier, wake, gate) = (applier.clone(), wake.clone(), gate.clone());
        async move {
            if !gate.wait(&cancel).await? {
                return Ok(());
            }
            applier.run(wake, cancel).await.map_err(anyhow::Error::from)
        }
    });
}

/// The push worker: sends queued OA changes to DingTalk; returns the pusher reconcile shares.
fn spawn_push(
    set: &mut Supervisor,
    ctx: &SyncContext,
    config: &Config,
    instance: &str,
    cancel: &CancellationToken,
) -> Arc<Pusher> {
    let pusher = Arc::new(Pusher::new(
        ctx,
        rand::random(),
        PushConfig {
            worker: format!("{instance}:push"),
            // Larger rounds than the engine's defaults (16 in flight, 64 per round): each round
            // ends in one transaction before the next claim, so at a high rate limit with
            // network latency small rounds leave the budget idle (`dingsync bench push --qps 500
            // --latency-ms 20`: 353/s -> 418/s of a 500/s bound).
            concurrency: 64,
            batch: 256,
            lease: Duration::from_secs(config.sync.claim_lease_secs),
            ..PushConfig::default()
        },
    ));
    {
        let pusher = pusher.clone();
        let gate = crate::mapping_cmd::Gate::new(ctx);
        supervise(set, "push", cancel.clone(), move |cancel| {
            let (pusher, gate) = (pusher.clone(), gate.clone());
            async move {
                if !gate.wait(&cancel).await? {
                    return Ok(());
                }
                pusher.run(cancel).await.map_err(anyhow::Error::from)
            }
        });
    }
    pusher
}

/// The catch-up worker: fetches the events DingTalk failed to push, once per interval across
/// all instances.
fn spawn_catch_up(
    set: &mut Supervisor,
    ctx: &SyncContext,
    config: &Config,
    instance: &str,
    cancel: &CancellationToken,
) {
    let catchup_every = Duration::from_secs(config.events.catchup_interval_secs);
    {
        let ctx = ctx.clone();
        let holder = format!("{instance}:catch-up");
        // A round another instance finished within half an interval is as good as ours (the
        // failed-push list is one list for the whole app).
        let job = ExclusiveJob {
            min_gap: catchup_every / 2,
            ..ExclusiveJob::new("catch-up")
        };
        supervise(set, "catch-up", cancel.clone(), move |cancel| {
            let (ctx, holder, job) = (ctx.clone(), holder.clone(), job.clone());
            async move {
                loop {
                    free_lease_of_dead_holder(&ctx, &job.name).await?;
                    let round = run_exclusive(&ctx, &job, &holder, async {
                        sync_engine::catchup::catch_up(&ctx)
                            .await
                            .map_err(anyhow::Error::from)
                    })
                    .await?;
                    if let Round::Ran(report) = &round {
                        tracing::info!(?report, "caught up with DingTalk's failed pushes");
                    }
                    count_round("catch-up", &round);
                    if catchup_every.is_zero() {
                        cancel.cancelled().await;
                        return Ok(());
                    }
                    tokio::select! {
                        () = cancel.cancelled() => return Ok(()),
                        () = tokio::time::sleep(catchup_every) => {}
                    }
                }
            }
        });
    }
}

/// The gauges: the operations snapshot and the queue gauges, every [`GAUGE_EVERY`].
fn spawn_gauges(
    set: &mut Supervisor,
    ctx: &SyncContext,
    stats: crate::ops_stats::OpsStats,
    cancel: &CancellationToken,
) {
    {
        let ctx = ctx.clone();
        supervise(set, "gauges", cancel.clone(), move |cancel| {
            let (ctx, stats) = (ctx.clone(), stats.clone());
            async move {
                loop {
                    crate::ops_stats::tick(&ctx, &stats).await;
                    export_gauges(&ctx).await?;
                    tokio::select! {
                        () = cancel.cancelled() => return Ok(()),
                        () = tokio::time::sleep(GAUGE_EVERY) => {}
                    }
                }
            }
        });
    }
}

/// The scheduled reconcile (when `sync.reconcile_interval_secs` is not 0), once per interval
/// across all instances.
fn spawn_reconcile(
    set: &mut Supervisor,
    ctx: SyncContext,
    config: &Config,
    instance: &str,
    pusher: Arc<Pusher>,
    cancel: &CancellationToken,
) {
    let reconcile_every = Duration::from_secs(config.sync.reconcile_interval_secs);
    if !reconcile_every.is_zero() {
        let holder = format!("{instance}:reconcile");
        // A reconcile is a full crawl: with several instances it runs once per interval, by
        // whichever instance's timer fires first (a round within 90% of the interval after
        // the last one is skipped). Its lease outlives a stalled crawl page comfortably.
        let job = ExclusiveJob {
            ttl: Duration::from_secs(300),
            min_gap: reconcile_every.mul_f64(0.9),
            ..ExclusiveJob::new("reconcile")
        };
        let gate = crate::mapping_cmd::Gate::new(&ctx);
        supervise(set, "reconcile", cancel.clone(), move |cancel| {
            let (ctx, pusher, holder, job, gate) = (
                ctx.clone(),
                pusher.clone(),
                holder.clone(),
                job.clone(),
                gate.clone(),
            );
            async move {
                if !gate.wait(&cancel).await? {
                    return Ok(());
                }
                loop {
                    tokio::select! {
                        () = cancel.cancelled() => return Ok(()),
                        () = tokio::time::sleep(reconcile_every) => {}
                    }
                    let round = run_exclusive(&ctx, &job, &holder, async {
                        let plan = plan(&ctx, PlanOptions::default()).await?;
                        // Scheduled runs never confirm held deletions: that takes a person.
                        let report = reconcile(&ctx, &pusher, &plan, false).await?;
                        metrics::counter!("dingsync_reconcile_drift_total")
                            .increment(plan.items.len() as u64);
                        tracing::info!(drift = plan.items.len(), ?report, "scheduled reconcile");
                        Ok::<_, anyhow::Error>(())
                    })
                    .await?;
                    count_round("reconcile", &round);
                }
            }
        });
    }
}

/// Frees the lease of job `name` when its holder is a process on this host that no longer
/// runs (a service killed with -9 and restarted), so the restarted service runs the job at
/// once instead of waiting out the lease's ttl: a catch-up delayed by a minute left events
/// DingTalk failed to push unfetched while everything else looked quiet (`crash_anywhere`).
async fn free_lease_of_dead_holder(ctx: &SyncContext, name: &str) -> anyhow::Result<()> {
    if let Some((holder, _)) = ctx.store.lease_holder(name).await?
        && crate::server::holder_is_dead_local_process(&holder)
    {
        ctx.store.lease_release(name, &holder).await?;
        tracing::info!(%holder, job = name, "took over the lease of a process that no longer runs");
    }
    Ok(())
}

/// Counts (and for skips, logs at debug) what became of an exclusive job's round.
fn count_round<T>(job: &'static str, round: &Round<T>) {
    let outcome = match round {
        Round::Ran(_) => "ran",
        Round::Held => "held",
        Round::Recent => "recent",
        Round::Lost => "lost",
    };
    if !matches!(round, Round::Ran(_)) {
        tracing::debug!(
            job,
            outcome,
            "round skipped: another instance runs this job"
        );
    }
    metrics::counter!("dingsync_job_rounds_total", "job" => job, "outcome" => outcome).increment(1);
}

/// The workers' tasks, each recording its metrics into the service's [`Telemetry`].
struct Supervisor {
    /// The running workers.
    tasks: JoinSet<()>,
    /// The service's metrics recorder.
    telemetry: Telemetry,
}

/// Runs `work` until it returns `Ok` or `cancel` fires; an error is logged and the work restarted.
fn supervise<F, Fut>(set: &mut Supervisor, name: &'static str, cancel: CancellationToken, work: F)
where
    F: Fn(CancellationToken) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    set.tasks.spawn(set.telemetry.scope(async move {
        while !cancel.is_cancelled() {
            match work(cancel.clone()).await {
                Ok(()) => return,
                Err(error) => {
                    metrics::counter!("dingsync_worker_failures_total", "worker" => name)
                        .increment(1);
                    tracing::error!(
                        worker = name,
                        error = format!("{error:#}"),
                        "worker failed; restarting"
                    );
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep(RESTART_PAUSE) => {}
                    }
                }
            }
        }
    }));
}
