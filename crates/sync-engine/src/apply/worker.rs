//! The inbox worker around [`Applier::apply_event`]: claims events, applies several at once,
//! and settles each as done, a later retry (with jittered backoff) or a dead letter.
//!
//! # Concurrency
//! DingTalk's latency, not its budget, limits an applier that applies one event at a time: an
//! event costs at least one fetch, answered after a round trip, and the fetch budget allows
//! `qps` calls a second. To keep that budget busy the worker needs about `qps × t` events in
//! flight, `t` being the time one application takes (Little's law). So the width is derived,
//! `⌈qps × t⌉` between 1 and `qps`, with `t` the measured (exponentially smoothed) average of
//! the events applied so far; before the first one, one at a time. With no rate limit
//! (`qps = 0`) the width is the claim batch. `ApplyOptions::workers` fixes it instead (tests).
//!
//! Different entities are applied in parallel; one entity's events strictly one at a time and
//! in arrival order. Every event names its entities (its [`entity_locks`]); an event whose
//! entities are busy (an event naming one of them is in flight, or an earlier claimed event
//! still waits for one) waits, claimed, in this worker until they are free, and the worker
//! claims no more than its width in flight plus one batch waiting. Reference resolution inside
//! an application takes further entity locks ([`super::lock`]), so a task never writes an
//! entity another task is applying.
//!
//! The worker drives the events in flight while it claims (one `select!`), so one slow claim
//! never idles the budget. Each event's future settles its own inbox row.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use dingtalk_proto::events::{ContactEvent, EventError};
use directory_store::{InboxEvent, StoreError};
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Applier, ApplyError, DrainStats, entity_locks, parse_inbox_event};
use crate::error_chain::error_chain;

/// Weight of the newest application time in the smoothed average.
const SMOOTHING: f64 = 0.2;

/// The smoothed average time of one event's application, in seconds (`None` before the first).
#[derive(Debug, Default)]
pub(super) struct ApplyTime(Mutex<Option<f64>>);

impl ApplyTime {
    fn record(&self, seconds: f64) {
        let mut average = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *average = Some(match *average {
            None => seconds,
            Some(a) => a + SMOOTHING * (seconds - a),
        });
    }

    fn average(&self) -> Option<f64> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// How many events to apply at once: `⌈qps × seconds⌉` between 1 and `cap` (`qps` when it
/// limits, else `cap` alone).
pub(super) fn width(qps: u32, seconds: Option<f64>, cap: usize) -> usize {
    let cap = cap.max(1);
    if qps == 0 {
        return cap;
    }
    let Some(seconds) = seconds.filter(|s| s.is_finite() && *s > 0.0) else {
        return 1;
    };
    let wanted = (f64::from(qps) * seconds).ceil();
    let limit = cap.min(usize::try_from(qps).unwrap_or(usize::MAX));
    // `wanted` is positive and finite; a float beyond `limit` is simply `limit`.
    if wanted >= limit as f64 {
        limit
    } else {
        (wanted as usize).clamp(1, limit)
    }
}

/// A claimed event, read, with the entity locks its application starts with.
struct Claimed {
    event: InboxEvent,
    parsed: Result<ContactEvent, EventError>,
    keys: Vec<String>,
}

impl Claimed {
    fn new(event: InboxEvent) -> Self {
        let parsed = parse_inbox_event(&event);
        let keys = parsed.as_ref().map(entity_locks).unwrap_or_default();
        Self {
            event,
            parsed,
            keys,
        }
    }
}

/// What one event's application and settlement came to.
struct Settled {
    keys: Vec<String>,
    result: Result<DrainStats, StoreError>,
}

impl Applier {
    /// How many events this worker applies at once now (see the module doc).
    pub fn concurrency(&self) -> usize {
        if let Some(n) = self.options.workers {
            return n.max(1);
        }
        let batch = usize::try_from(self.options.batch).unwrap_or(usize::MAX);
        width(
            self.ctx.client.config().qps_per_api,
            self.apply_time.average(),
            batch,
        )
    }

    /// Applies every event claimable now, several at once, then returns.
    pub async fn drain(&self) -> Result<DrainStats, StoreError> {
        let mut stats = DrainStats::default();
        let mut in_flight = FuturesUnordered::new();
        let mut busy: HashSet<String> = HashSet::new();
        let mut waiting: VecDeque<Claimed> = VecDeque::new();
        let batch = usize::try_from(self.options.batch.max(1)).unwrap_or(usize::MAX);
        // Whether the last claim found nothing (claim again only after an event finished).
        let mut exhausted = false;
        loop {
            let width = self.concurrency();
            while let Some(next) = take_ready(&mut waiting, &busy, in_flight.len() < width) {
                busy.extend(next.keys.iter().cloned());
                in_flight.push(self.process(next));
            }
            if !exhausted && in_flight.len() < width && waiting.len() < batch {
                let limit = (width - in_flight.len()).min(batch - waiting.len());
                let claim = self.claim(limit);
                tokio::pin!(claim);
                let claimed = loop {
                    tokio::select! {
                        claimed = &mut claim => break claimed?,
                        Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                            settle(done, &mut busy, &mut stats)?;
                        }
                    }
                };
                exhausted = claimed.is_empty();
                waiting.extend(claimed.into_iter().map(Claimed::new));
                continue;
            }
            match in_flight.next().await {
                Some(done) => {
                    settle(done, &mut busy, &mut stats)?;
                    exhausted = false;
                }
                // Nothing in flight: whatever waits is free now, or nothing is left.
                None if waiting.is_empty() => return Ok(stats),
                None => {}
            }
        }
    }

    /// Claims up to `limit` events.
    async fn claim(&self, limit: usize) -> Result<Vec<InboxEvent>, StoreError> {
        self.ctx
            .store
            .inbox_claim(
                &self.options.worker,
                self.ctx.now_ms(),
                self.options.lease_ms,
                u32::try_from(limit).unwrap_or(u32::MAX),
            )
            .await
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
    async fn process(&self, claimed: Claimed) -> Settled {
        let Claimed {
            event,
            parsed,
            keys,
        } = claimed;
        let mut stats = DrainStats::default();
        let started = Instant::now();
        let result = match parsed {
            Ok(parsed) => self.apply_event(&parsed).await,
            Err(e) => Err(ApplyError::Event(e)),
        };
        self.apply_time.record(started.elapsed().as_secs_f64());
        let settled = match result {
            Ok(applied) => {
                stats.events += 1;
                stats.applied.add(applied);
                self.ctx
                    .store
                    .inbox_done(event.id, &self.options.worker, self.ctx.now_ms())
                    .await
            }
            Err(error) => self.failed(&event, &error, &mut stats).await,
        };
        Settled {
            keys,
            result: settled.map(|()| stats),
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

/// Takes the first waiting event that may start now: none of its entities busy or wanted by an
/// earlier waiting event (so one entity's events start in arrival order). `room`: whether
/// another event may start at all.
fn take_ready(
    waiting: &mut VecDeque<Claimed>,
    busy: &HashSet<String>,
    room: bool,
) -> Option<Claimed> {
    if !room {
        return None;
    }
    let mut wanted: HashSet<&str> = HashSet::new();
    let mut found = None;
    for (i, c) in waiting.iter().enumerate() {
        let free = c
            .keys
            .iter()
            .all(|k| !busy.contains(k) && !wanted.contains(k.as_str()));
        if free {
            found = Some(i);
            break;
        }
        wanted.extend(c.keys.iter().map(String::as_str));
    }
    found.and_then(|i| waiting.remove(i))
}

/// Counts a finished event and frees its entities.
fn settle(
    done: Settled,
    busy: &mut HashSet<String>,
    stats: &mut DrainStats,
) -> Result<(), StoreError> {
    for k in &done.keys {
        busy.remove(k);
    }
    let s = done.result?;
    stats.events += s.events;
    stats.retried += s.retried;
    stats.dead += s.dead;
    stats.applied.add(s.applied);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::{HashSet, VecDeque};

    use directory_store::{InboxEvent, QueueState};

    use super::{Claimed, parse_inbox_event, take_ready, width};

    fn claimed(id: i64, keys: &[&str]) -> Claimed {
        let event = InboxEvent {
            id,
            dedupe_key: id.to_string(),
            event_type: "user_modify_org".into(),
            payload_json: "{}".into(),
            received_at_ms: 0,
            state: QueueState::Claimed,
            attempts: 1,
            next_attempt_at_ms: 0,
            claimed_by: None,
            claimed_until_ms: None,
            last_error: None,
        };
        Claimed {
            parsed: parse_inbox_event(&event),
            event,
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        }
    }

    /// Starts what may start; returns the ids started.
    fn start(waiting: &mut VecDeque<Claimed>, busy: &mut HashSet<String>) -> Vec<i64> {
        let mut started = Vec::new();
        while let Some(c) = take_ready(waiting, busy, true) {
            busy.extend(c.keys.iter().cloned());
            started.push(c.event.id);
        }
        started
    }

    #[test]
    fn one_entity_waits_for_its_earlier_event_others_go_ahead() {
        let mut waiting: VecDeque<_> = [
            claimed(1, &["a"]),
            claimed(2, &["b"]),
            claimed(3, &["a"]),
            claimed(4, &["a", "c"]),
            claimed(5, &["c"]),
            claimed(6, &["d"]),
            claimed(7, &[]),
        ]
        .into();
        let mut busy = HashSet::new();
        // 3 waits for 1; 4 for 3; 5 waits for 4, which wants c first.
        assert_eq!(start(&mut waiting, &mut busy), vec![1, 2, 6, 7]);
        busy.remove("a");
        assert_eq!(start(&mut waiting, &mut busy), vec![3]);
        busy.remove("a");
        assert_eq!(start(&mut waiting, &mut busy), vec![4]);
        busy.remove("a");
        busy.remove("c");
        assert_eq!(start(&mut waiting, &mut busy), vec![5]);
        assert!(waiting.is_empty());
        // No room: nothing starts.
        let mut full: VecDeque<_> = [claimed(8, &["e"])].into();
        assert!(take_ready(&mut full, &HashSet::new(), false).is_none());
    }

    #[test]
    fn width_is_qps_times_the_application_time_within_bounds() {
        // 20 calls/s, 120 ms an event: 2.4 → 3 in flight.
        assert_eq!(width(20, Some(0.12), 32), 3);
        // Before anything was measured: one at a time.
        assert_eq!(width(20, None, 32), 1);
        // Never more than the budget allows in one window.
        assert_eq!(width(20, Some(5.0), 32), 20);
        // Nor more than the batch.
        assert_eq!(width(500, Some(1.0), 32), 32);
        // At least one.
        assert_eq!(width(20, Some(0.000_1), 32), 1);
        // No rate limit: the batch.
        assert_eq!(width(0, Some(0.1), 32), 32);
    }
}
