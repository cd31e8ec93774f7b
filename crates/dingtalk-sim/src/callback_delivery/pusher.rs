//! The background pusher: it walks the event log with its own cursor, turns each event the
//! subscription wants into deliveries (one, or two with the duplicate setting), sends them, and
//! retries failures after 10 s and 30 s (scaled by `retry_scale`) before putting them in the
//! failed list. Also `check_url`, which goes out the same way.
//!
//! Retry waits and attempt timestamps read the simulator's clock, so a test on a settable clock
//! drives the retry schedule by advancing it. The deadline of one POST is a real wait (it is
//! time on the wire).

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::hub::PushRecord;
use super::payload;
use super::send::send;
use super::subscription::Subscription;
use crate::events::{self, EventRecord, Origin};
use crate::state::{Shared, lock};

/// Starts the background pusher.
pub(crate) fn spawn_pusher(shared: Arc<Shared>) {
    let tracker = shared.hub.worker.tracker.clone();
    tracker.spawn(async move {
        while shared.hub.worker.woken().await {
            drain_log(&shared).await;
        }
    });
}

/// Waits until every recorded event has been taken and every delivery is final, or `timeout`
/// passes; returns whether it became idle.
pub(crate) async fn wait_idle(shared: &Shared, timeout: Duration) -> bool {
    shared
        .hub
        .worker
        .wait_for(timeout, || {
            let logged = lock(&shared.events).entries.len() as u64;
            let state = lock(&shared.hub.state);
            state.cursor >= logged && state.in_flight == 0
        })
        .await
}

/// One delivery to make.
struct Job {
    push_id: u64,
    event: EventRecord,
    duplicate: bool,
    plaintext: Value,
    rng: StdRng,
    /// Wait before the first attempt (delay + reorder jitter).
    first_wait: Duration,
}

/// Takes every new event from the log and delivers it.
async fn drain_log(shared: &Arc<Shared>) {
    loop {
        let batch: Vec<EventRecord> = {
            let cursor = lock(&shared.hub.state).cursor;
            lock(&shared.events).since(cursor).to_vec()
        };
        let Some(last) = batch.last().map(|e| e.id) else {
            return;
        };
        let Some((subscription, reorder, jobs)) = plan_jobs(shared, batch, last) else {
            continue;
        };
        for job in jobs {
            if reorder {
                let shared = Arc::clone(shared);
                let sub = Arc::clone(&subscription);
                shared.hub.worker.tracker.clone().spawn(async move {
                    if let Some(job) = first_attempt(&shared, &sub, job).await {
                        retry(&shared, &sub, job).await;
                    }
                });
            } else if let Some(job) = first_attempt(shared, &subscription, job).await {
                // First attempts go out in log order; retries run on their own so one failing
                // event does not hold back the rest.
                let shared = Arc::clone(shared);
                let sub = Arc::clone(&subscription);
                shared.hub.worker.tracker.clone().spawn(async move {
                    retry(&shared, &sub, job).await;
                });
            }
        }
    }
}

/// Moves the cursor past `batch` and makes its deliveries; `None` when nothing is subscribed
/// (or delivery is Stream-only), else the subscription, whether to reorder, and the jobs.
fn plan_jobs(
    shared: &Shared,
    batch: Vec<EventRecord>,
    last: u64,
) -> Option<(Arc<Subscription>, bool, Vec<Job>)> {
    let operator = admin_operator(shared);
    let planned = {
        let mut state = lock(&shared.hub.state);
        state.cursor = last;
        // With Stream-only delivery the pusher still moves its cursor, so switching back
        // to HTTP does not replay what Stream already carried.
        let subscription = state
            .subscription
            .clone()
            .filter(|_| shared.stream.delivers_http());
        let settings = state.settings.clone();
        subscription.map(|sub| {
            let mut jobs = Vec::new();
            for event in batch {
                if !sub.tags.contains(event.change.event_type()) {
                    continue;
                }
                let copies = if state.rng.gen_bool(settings.duplicate_rate.clamp(0.0, 1.0)) {
                    2
                } else {
                    1
                };
                let plaintext = plaintext_of(shared, &event, operator.as_deref(), &settings);
                for copy in 0..copies {
                    let jitter = if settings.reorder_window_ms > 0 {
                        state.rng.gen_range(0..settings.reorder_window_ms)
                    } else {
                        0
                    };
                    let push_id = state.take_push_id();
                    state.in_flight += 1;
                    let seed = state.rng.r#gen();
                    jobs.push(Job {
                        push_id,
                        event: event.clone(),
                        duplicate: copy > 0,
                        plaintext: plaintext.clone(),
                        rng: StdRng::seed_from_u64(seed),
                        first_wait: Duration::from_millis(settings.delay_ms + jitter),
                    });
                }
            }
            (sub, settings.reorder_window_ms > 0, jobs)
        })
    };
    shared.hub.worker.bump();
    planned
}

/// The decrypted body of one event in the configured dialect.
fn plaintext_of(
    shared: &Shared,
    event: &EventRecord,
    operator: Option<&str>,
    settings: &super::PushSettings,
) -> Value {
    let event_id = events::event_id(shared.config.seed, event.id);
    let operator = (event.origin == Origin::Admin)
        .then_some(operator)
        .flatten();
    payload::plaintext(
        &event.change,
        &payload::Meta {
            corp_id: &shared.config.corp_id,
            time_ms: event.time_ms,
            event_id: &event_id,
            operator,
        },
        settings.dialect,
    )
}

/// The userid shown as `OptStaffId` for administrator changes: the org's first admin.
fn admin_operator(shared: &Shared) -> Option<String> {
    let org = lock(&shared.org);
    org.users
        .values()
        .find(|u| u.admin)
        .map(|u| u.userid.clone())
}

/// Waits the job's first wait and sends the first attempt; returns the job when it failed (so
/// it is retried), `None` when it was acknowledged or the simulator is stopping.
async fn first_attempt(shared: &Shared, sub: &Subscription, mut job: Job) -> Option<Job> {
    if !shared
        .hub
        .worker
        .sleep_or_stop(&shared.clock, job.first_wait)
        .await
    {
        return None;
    }
    if attempt(shared, sub, &mut job, 1).await {
        finish(shared, None);
        return None;
    }
    Some(job)
}

/// The two retries (after 10 s, then 30 s, scaled), then the failed list.
async fn retry(shared: &Shared, sub: &Subscription, mut job: Job) {
    for (number, base) in [(2u32, 10.0f64), (3, 30.0)] {
        let scale = lock(&shared.hub.state).settings.retry_scale;
        let wait = Duration::from_secs_f64(base * scale);
        if !shared.hub.worker.sleep_or_stop(&shared.clock, wait).await {
            return;
        }
        if attempt(shared, sub, &mut job, number).await {
            finish(shared, None);
            return;
        }
    }
    let entry = payload::failed_entry(&job.event.change, &shared.config.corp_id, job.event.time_ms);
    finish(shared, Some(entry));
}

/// Marks one delivery final (putting it in the failed list when it failed).
fn finish(shared: &Shared, failed: Option<Value>) {
    {
        let mut state = lock(&shared.hub.state);
        state.in_flight = state.in_flight.saturating_sub(1);
        if let Some(entry) = failed {
            state.failed.push_back(entry);
        }
    }
    shared.hub.worker.bump();
}

/// One HTTP attempt of a delivery; records it and returns whether it was acknowledged.
async fn attempt(shared: &Shared, sub: &Subscription, job: &mut Job, number: u32) -> bool {
    let record = PushRecord {
        push_id: job.push_id,
        event_id: Some(job.event.id),
        event_type: job.event.change.event_type().to_owned(),
        attempt: number,
        duplicate: job.duplicate,
        at_ms: 0,
        acked: false,
        error: None,
        plaintext: job.plaintext.clone(),
    };
    send_recorded(shared, sub, record, &mut job.rng)
        .await
        .is_ok()
}

/// Sends `{"EventType":"check_url"}` to a subscription and records it; `Err` says why the URL
/// is not accepted.
pub(crate) async fn check_url(shared: &Shared, sub: &Subscription) -> Result<(), String> {
    let (push_id, seed) = {
        let mut state = lock(&shared.hub.state);
        let push_id = state.take_push_id();
        let seed: u64 = state.rng.r#gen();
        (push_id, seed)
    };
    let record = PushRecord {
        push_id,
        event_id: None,
        event_type: "check_url".to_owned(),
        attempt: 1,
        duplicate: false,
        at_ms: 0,
        acked: false,
        error: None,
        plaintext: json!({"EventType": "check_url"}),
    };
    send_recorded(shared, sub, record, &mut StdRng::seed_from_u64(seed)).await
}

/// Sends `record.plaintext` with the current settings, stamped with the clock's time, and
/// records the attempt with its outcome for `/_sim/pushes`.
async fn send_recorded(
    shared: &Shared,
    sub: &Subscription,
    mut record: PushRecord,
    rng: &mut StdRng,
) -> Result<(), String> {
    let (timeout, msg_signature) = {
        let state = lock(&shared.hub.state);
        (
            Duration::from_millis(state.settings.timeout_ms),
            state.settings.msg_signature,
        )
    };
    record.at_ms = shared.clock.wall_ms();
    let result = send(
        &shared.hub.http,
        sub,
        &record.plaintext.to_string(),
        record.at_ms,
        msg_signature,
        timeout,
        rng,
    )
    .await;
    record.acked = result.is_ok();
    record.error = result.as_ref().err().cloned();
    lock(&shared.hub.state).records.push(record);
    shared.hub.worker.bump();
    result
}
