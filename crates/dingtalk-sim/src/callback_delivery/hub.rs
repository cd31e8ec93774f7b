//! The state of callback delivery that `state::Shared` holds: the subscription, the settings,
//! the pusher's cursor and counters, every attempt and the failed list. Plain data plus the
//! background-task plumbing; the logic that uses it is in `pusher`, `api` and `admin`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::settings::PushSettings;
use super::subscription::Subscription;
use crate::error::SimError;
use crate::lock::lock;
use crate::worker::Worker;

/// One delivery attempt, for `/_sim/pushes`.
#[derive(Debug, Clone, Serialize)]
pub struct PushRecord {
    /// Identifies the delivery (all attempts of one push share it).
    pub push_id: u64,
    /// The event-log id, or `None` for a `check_url`.
    pub event_id: Option<u64>,
    pub event_type: String,
    /// 1 for the first attempt, 2 and 3 for the retries.
    pub attempt: u32,
    /// True for the extra copy sent by the duplicate setting.
    pub duplicate: bool,
    /// When the attempt was sent (Unix ms).
    pub at_ms: i64,
    /// Whether the receiver acknowledged it correctly.
    pub acked: bool,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// The decrypted body that was sent.
    pub plaintext: Value,
}

/// The pusher's mutable state.
#[derive(Debug)]
pub(crate) struct HubState {
    /// The one callback subscription of the app, if any.
    pub subscription: Option<Arc<Subscription>>,
    pub settings: PushSettings,
    /// Id of the last event the pusher has taken from the log.
    pub cursor: u64,
    /// Deliveries started but not yet final (acked or in the failed list).
    pub in_flight: usize,
    /// Next `push_id`.
    next_push_id: u64,
    /// Every attempt so far.
    pub records: Vec<PushRecord>,
    /// Pushes that failed every retry, oldest first, until read.
    pub failed: VecDeque<Value>,
    /// Seeds per-delivery RNGs (nonces, AES prefixes) so runs repeat; event ids come from
    /// `events::event_id`, shared with Stream.
    pub rng: StdRng,
}

impl HubState {
    /// A fresh `push_id` (a delivery and all its attempts, or one `check_url`).
    pub(crate) fn take_push_id(&mut self) -> u64 {
        let id = self.next_push_id;
        self.next_push_id += 1;
        id
    }
}

/// The callback-delivery machinery shared by the server, the admin routes and the background
/// tasks.
#[derive(Debug)]
pub(crate) struct Hub {
    pub state: Mutex<HubState>,
    /// The pusher's wake-up, progress and shutdown.
    pub worker: Worker,
    /// The HTTP client pushes go out with.
    pub http: reqwest::Client,
}

impl Hub {
    pub(crate) fn new(seed: u64, stop: CancellationToken) -> Result<Self, SimError> {
        // Pushes go straight to the subscribed URL: a proxy from the environment would turn
        // a loopback receiver into someone else's problem.
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(SimError::HttpClient)?;
        Ok(Self {
            state: Mutex::new(HubState {
                subscription: None,
                settings: PushSettings::default(),
                cursor: 0,
                in_flight: 0,
                next_push_id: 1,
                records: Vec::new(),
                failed: VecDeque::new(),
                rng: StdRng::seed_from_u64(seed ^ 0xCA11_BAC4),
            }),
            worker: Worker::new(stop),
            http,
        })
    }

    /// Takes up to 200 entries from the failed list; returns them and whether more remain.
    pub(crate) fn take_failed(&self) -> (Vec<Value>, bool) {
        let mut state = lock(&self.state);
        let n = state.failed.len().min(200);
        let taken: Vec<Value> = state.failed.drain(..n).collect();
        (taken, !state.failed.is_empty())
    }
}
