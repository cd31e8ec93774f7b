//! The task that drives the Stream state machine: it takes new events from the log, sends what
//! is due, and sleeps (on the simulator's clock) until the machine's next deadline or until
//! woken by a new event, connection or ack. Also the settings change and the "idle" wait.

use std::sync::Arc;
use std::time::Duration;

use super::settings::{StreamSettings, StreamSettingsPatch};
use crate::state::{Shared, lock};

/// Applies a settings patch and wakes the dispatcher; returns the settings now in force.
pub(crate) fn apply_settings(
    shared: &Shared,
    patch: &StreamSettingsPatch,
) -> Result<StreamSettings, String> {
    let result = {
        let mut state = lock(&shared.stream.state);
        state.settings.apply(patch).map(|()| state.settings.clone())
    };
    shared.stream.worker.wake();
    result
}

/// Starts the dispatcher.
pub(crate) fn spawn_dispatcher(shared: Arc<Shared>) {
    let tracker = shared.stream.worker.tracker.clone();
    tracker.spawn(async move {
        let hub = &shared.stream;
        loop {
            let next = {
                let now = shared.clock.now();
                let wall = shared.clock.wall_ms();
                let events = lock(&shared.events);
                let mut state = lock(&hub.state);
                state.take_events(&events, now);
                drop(events);
                state.step(now, wall, &shared.config.corp_id)
            };
            hub.worker.bump();
            if !hub.worker.woken_or_until(&shared.clock, next).await {
                break;
            }
        }
    });
}

/// Waits until every event recorded so far has been acknowledged over Stream (or `timeout`
/// passes); returns whether that happened.
pub(crate) async fn wait_idle(shared: &Shared, timeout: Duration) -> bool {
    shared
        .stream
        .worker
        .wait_for(timeout, || {
            let logged = lock(&shared.events).entries.len() as u64;
            lock(&shared.stream.state).idle(logged)
        })
        .await
}
