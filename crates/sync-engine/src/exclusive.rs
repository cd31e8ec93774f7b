//! Jobs that one instance at a time may run: catch-up and the scheduled reconcile.
//!
//! With several instances on one database, every instance schedules these jobs, yet running
//! them twice at once is wrong or wasteful: DingTalk's failed-push list is consumed by reading
//! it (two readers would split it, and a reader that dies mid-page loses what it read), and a
//! reconcile is a full crawl of DingTalk. So a round runs under a lease row (the store's
//! `leases`, as the import does): taken for `ttl`, renewed every `ttl / 3` while the job runs,
//! released at the end. An instance that finds the lease held skips its round; if the holder
//! dies, its lease expires after `ttl` and the next instance whose schedule fires takes over.
//!
//! Lease times are the engine's clock (the context's, so tests drive it); hosts must keep their
//! clocks synchronised to well under `ttl / 3`, which NTP does by orders of magnitude.
//!
//! A round that another instance finished less than `min_gap` ago is skipped too (the time is
//! kept in `sync_state`), so three instances with a daily reconcile reconcile once a day, not
//! three times.

use std::future::Future;
use std::time::Duration;

use directory_store::StoreError;

use crate::context::SyncContext;

/// One exclusive job's settings.
#[derive(Debug, Clone)]
pub struct ExclusiveJob {
    /// The lease's name (and the `sync_state` key prefix of its last run).
    pub name: String,
    /// How long the lease lasts without a renewal, so how long a dead holder blocks the job.
    pub ttl: Duration,
    /// A round within this time after the last finished one is skipped (zero: never).
    pub min_gap: Duration,
}

impl ExclusiveJob {
    /// A job named `name` with a 60 s lease and no minimum gap.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ttl: Duration::from_secs(60),
            min_gap: Duration::ZERO,
        }
    }

    fn last_run_key(&self) -> String {
        format!("{}:last_finished_ms", self.name)
    }
}

/// What became of a round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Round<T> {
    /// This instance ran the job.
    Ran(T),
    /// Another instance holds the lease; the round was skipped.
    Held,
    /// The job finished less than `min_gap` ago; the round was skipped.
    Recent,
    /// The lease was taken over while the job ran (this instance stalled past the ttl); the job
    /// was stopped.
    Lost,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

/// Runs `work` if this instance (`holder`, unique per instance) gets `job`'s lease; see the
/// module doc. `work` is dropped (stopped) if the lease is lost.
pub async fn run_exclusive<T, E, Fut>(
    ctx: &SyncContext,
    job: &ExclusiveJob,
    holder: &str,
    work: Fut,
) -> Result<Round<T>, E>
where
    Fut: Future<Output = Result<T, E>>,
    E: From<StoreError>,
{
    let store = &ctx.store;
    let ttl = ms(job.ttl);
    if !store
        .lease_acquire(&job.name, holder, ctx.now_ms(), ttl)
        .await?
    {
        return Ok(Round::Held);
    }
    if !job.min_gap.is_zero()
        && let Some(last) = store.state_get(&job.last_run_key()).await?
        && let Ok(last) = last.parse::<i64>()
        && ctx.now_ms().saturating_sub(last) < ms(job.min_gap)
    {
        store.lease_release(&job.name, holder).await?;
        return Ok(Round::Recent);
    }
    let renew_every = (job.ttl / 3).max(Duration::from_millis(10));
    let mut renew =
        tokio::time::interval_at(tokio::time::Instant::now() + renew_every, renew_every);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut work = std::pin::pin!(work);
    let outcome = loop {
        tokio::select! {
            result = &mut work => break Some(result),
            _ = renew.tick() => {
                match store.lease_acquire(&job.name, holder, ctx.now_ms(), ttl).await {
                    Ok(true) => {}
                    Ok(false) => break None,
                    Err(e) => {
                        // Without renewals the lease would run out under a running job; stop
                        // rather than risk a second runner.
                        release(ctx, job, holder).await;
                        return Err(e.into());
                    }
                }
            }
        }
    };
    let Some(result) = outcome else {
        tracing::warn!(
            job = job.name,
            "lost the lease while running (stalled past its ttl?); stopped"
        );
        return Ok(Round::Lost);
    };
    if result.is_ok() && !job.min_gap.is_zero() {
        store
            .state_set(&job.last_run_key(), &ctx.now_ms().to_string(), ctx.now_ms())
            .await?;
    }
    release(ctx, job, holder).await;
    result.map(Round::Ran)
}

async fn release(ctx: &SyncContext, job: &ExclusiveJob, holder: &str) {
    if let Err(error) = ctx.store.lease_release(&job.name, holder).await {
        tracing::warn!(job = job.name, %error, "could not release a lease; it expires by itself");
    }
}
