//! The inbox worker around [`Applier::apply_event`]: claim, apply, and settle each event as
//! done, a later retry (with jittered backoff) or a dead letter.

use std::sync::Arc;

use directory_store::{InboxEvent, StoreError};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Applier, ApplyError, DrainStats, parse_inbox_event};
use crate::error_chain::error_chain;

impl Applier {
    /// Applies every event claimable now, then returns.
    pub async fn drain(&self) -> Result<DrainStats, StoreError> {
        let mut stats = DrainStats::default();
        loop {
            let now = self.ctx.now_ms();
            let claimed = self
                .ctx
                .store
                .inbox_claim(
                    &self.options.worker,
                    now,
                    self.options.lease_ms,
                    self.options.batch,
                )
                .await?;
            if claimed.is_empty() {
                return Ok(stats);
            }
            for event in claimed {
                self.process(&event, &mut stats).await?;
            }
        }
    }

    /// Drains, then waits for `wake` or the poll interval, until `cancel` fires.
    pub async fn run(
        &self,
        wake: Arc<Notify>,
        cancel: CancellationToken,
    ) -> Result<(), StoreError> {
        // A previous run of this worker that failed (the database went away mid-batch) left the
        // rest of its batch claimed; no other task applies under this worker name, so those
        // events are taken back now rather than after their lease.
        let released = self
            .ctx
            .store
            .inbox_release_claims(&self.options.worker, self.ctx.now_ms())
            .await?;
        if released > 0 {
            tracing::info!(
                released,
                "took back the claims of this worker's previous run"
            );
        }
        loop {
            if cancel.is_cancelled() {
                return Ok(());
            }
            let stats = self.drain().await?;
            if stats.events + stats.retried + stats.dead > 0 {
                tracing::debug!(?stats, "inbox drained");
            }
            tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                () = wake.notified() => {}
                () = tokio::time::sleep(self.options.poll_interval) => {}
            }
        }
    }

    /// Applies one claimed event and settles it in the inbox.
    async fn process(&self, event: &InboxEvent, stats: &mut DrainStats) -> Result<(), StoreError> {
        let result = match parse_inbox_event(event) {
            Ok(parsed) => self.apply_event(&parsed).await,
            Err(e) => Err(ApplyError::Event(e)),
        };
        match result {
            Ok(applied) => {
                stats.events += 1;
                stats.applied.add(applied);
                self.ctx
                    .store
                    .inbox_done(event.id, &self.options.worker, self.ctx.now_ms())
                    .await
            }
            Err(error) => self.failed(event, &error, stats).await,
        }
    }

    /// Puts a failed event back for a later attempt, or parks it as a dead letter.
    async fn failed(
        &self,
        event: &InboxEvent,
        error: &ApplyError,
        stats: &mut DrainStats,
    ) -> Result<(), StoreError> {
        let (store, worker) = (&self.ctx.store, self.options.worker.as_str());
        let now = self.ctx.now_ms();
        let text = error_chain(error);
        if error.is_retryable() && event.attempts < self.options.max_attempts {
            let attempt = u32::try_from(event.attempts.max(1) - 1).unwrap_or(u32::MAX);
            let throttled = matches!(error, ApplyError::Client(e) if e.is_throttle());
            let delay = match self.rng.lock() {
                Ok(mut rng) => self.options.backoff.delay(attempt, throttled, &mut *rng),
                Err(_) => self.options.backoff.base(attempt),
            };
            let at = now.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
            tracing::info!(event = event.id, error = %text, "event will be retried");
            stats.retried += 1;
            store
                .inbox_retry_later(event.id, worker, at, &text, now)
                .await
        } else {
            tracing::warn!(event = event.id, error = %text, "event is a dead letter");
            stats.dead += 1;
            store.inbox_dead_letter(event.id, worker, &text, now).await
        }
    }
}
