//! The Stream state that `state::Shared` holds: the state machine behind its lock, plus the
//! tasks that drive it (the dispatcher, the connection tasks and the disconnect timers).

use std::sync::Mutex;

use tokio_util::sync::CancellationToken;

use super::machine::StreamState;
use crate::lock::lock;
use crate::worker::Worker;

/// The Stream machinery shared by the routes, the connection tasks and the dispatcher.
#[derive(Debug)]
pub(crate) struct StreamHub {
    pub(super) state: Mutex<StreamState>,
    /// The dispatcher's wake-up (events recorded, connection opened, ack received), progress
    /// and shutdown.
    pub worker: Worker,
}

impl StreamHub {
    pub(crate) fn new(seed: u64, stop: CancellationToken) -> Self {
        Self {
            state: Mutex::new(StreamState::new(seed)),
            worker: Worker::new(stop),
        }
    }

    /// Whether this corp issued `ticket` and it is still unused.
    pub(crate) fn holds_ticket(&self, ticket: &str) -> bool {
        lock(&self.state).holds_ticket(ticket)
    }

    /// Whether the HTTP pusher should push (the `delivery` setting).
    pub(crate) fn delivers_http(&self) -> bool {
        lock(&self.state).settings.delivery.http()
    }
}
