//! The state every route and background task shares, and the few steps on it that more than one
//! route takes (a request id, a call count, the gateway's verdict, running an org operation).
//!
//! It is the ground floor of the crate: it imports the pure state types below it (the org, the
//! gateway, the event log, the two channels' hubs, the clock) and nothing that handles a
//! request, so every route module can import it without an import circle.

use std::sync::{Mutex, Weak};
use std::time::Duration;

use rand::rngs::StdRng;

use crate::call_log::CallLog;
use crate::callback_delivery::hub::Hub;
use crate::clock::Clock;
use crate::config::{Settings, SimConfig};
use crate::error::Outcome;
use crate::events::{EventLog, Origin};
use crate::gateway::{self, CallOutcome, CallStats, Pass, RateLimiter, TokenCheck, TokenStore};
use crate::org::Org;
use crate::stream::hub::StreamHub;

/// Route modules lock through here; the leaf is `crate::lock`.
pub(crate) use crate::lock::lock;

/// The state of one organization (corp), shared by every request routed to it. (A simulator
/// serving several corps holds one per corp in its `Fleet`; with one corp, this is all of it.)
#[derive(Debug)]
pub(crate) struct Shared {
    /// Which corp of the fleet this is (0 = the first, the one `/_sim/...` acts on).
    pub index: usize,
    /// The fleet, to copy this corp's changes into its trunks (`org::union`); weak, because the
    /// fleet owns this state, and a trait so this floor does not import the one above it.
    pub fleet: Weak<dyn Propagate>,
    /// This corp's configuration (credentials, corp id, seed), derived by
    /// `SimConfig::for_org`.
    pub config: SimConfig,
    /// Where every time the simulator reads comes from (see `clock`).
    pub clock: Clock,
    /// The org; one lock, because DingTalk's writes are atomic per call.
    pub org: Mutex<Org>,
    /// Gateway state, separate from the org so throttled calls never wait for the org lock.
    pub gate: Mutex<Gate>,
    /// Every change, in order, as contacts events.
    pub events: Mutex<EventLog>,
    /// The callback subscription and the HTTP pusher's state.
    pub hub: Hub,
    /// Stream mode: tickets, connections and the event dispatcher.
    pub stream: StreamHub,
}

/// What a corp's state asks of the fleet above it after a change: copy corp `index` into the
/// corps it is a branch of (`fleet::Fleet` implements it).
pub(crate) trait Propagate: std::fmt::Debug + Send + Sync {
    fn propagate(&self, index: usize);
}

/// The gateway's mutable state.
#[derive(Debug)]
pub(crate) struct Gate {
    /// Run-time settings (`/_sim/settings`).
    pub settings: Settings,
    /// The app's access token.
    pub tokens: TokenStore,
    /// Per-path sliding windows.
    pub limiter: RateLimiter,
    /// Per-path counts for `/_sim/calls`.
    pub stats: CallStats,
    /// When each call started and was answered, for `/_sim/calls/log`.
    pub log: CallLog,
    /// Source of tokens, request ids and fault draws (seeded, so runs repeat).
    pub rng: StdRng,
}

impl Shared {
    /// A fresh DingTalk request id.
    pub(crate) fn request_id(&self) -> String {
        gateway::request_id(&mut lock(&self.gate).rng)
    }

    /// Counts one call of `path` for `/_sim/calls`.
    pub(crate) fn record_call(&self, path: &str, outcome: CallOutcome) {
        lock(&self.gate).stats.record(path, outcome);
    }

    /// Applies the rate limit (counting a refusal) and draws a fault; `None` means throttled.
    pub(crate) fn gate_pass(&self, path: &str) -> Option<Pass> {
        let now = self.clock.now();
        let mut gate = lock(&self.gate);
        let qps = gate.settings.qps;
        if !gate.limiter.admit(path, now, qps) {
            gate.stats.record(path, CallOutcome::Throttled);
            return None;
        }
        let rate = gate.settings.fault_rate;
        let fault = gateway::draw_fault(&mut gate.rng, rate);
        Some(Pass {
            fault,
            slow: Duration::from_millis(gate.settings.slow_answer_ms),
        })
    }

    /// Issues the app's access token for the current `token_ttl_secs`; returns it and its
    /// lifetime.
    pub(crate) fn issue_token(&self) -> (String, Duration) {
        let now = self.clock.now();
        let mut gate = lock(&self.gate);
        let ttl = Duration::from_secs(gate.settings.token_ttl_secs);
        let Gate { tokens, rng, .. } = &mut *gate;
        tokens.issue(now, ttl, rng)
    }

    /// Whether `token` is the app's current, unexpired access token.
    pub(crate) fn check_token(&self, token: Option<&str>) -> TokenCheck {
        let now = self.clock.now();
        lock(&self.gate).tokens.check(token, now)
    }

    /// Runs an operation under the org lock and records its changes as events (stamped with
    /// the clock's time), then wakes both event channels, and copies the changes into the
    /// corps this one is a branch of.
    pub(crate) fn run<T>(
        &self,
        op: impl FnOnce(&mut Org) -> Outcome<T>,
        origin: Origin,
    ) -> Outcome<T> {
        let (result, changed) = self.run_here(op, origin);
        if changed && let Some(fleet) = self.fleet.upgrade() {
            fleet.propagate(self.index);
        }
        result
    }

    /// [`Shared::run`] without the copy into trunks; also says whether anything changed.
    pub(crate) fn run_here<T>(&self, op: impl FnOnce(&mut Org) -> T, origin: Origin) -> (T, bool) {
        let (result, changes) = {
            let mut org = lock(&self.org);
            let result = op(&mut org);
            (result, org.take_changes())
        };
        let changed = !changes.is_empty();
        if changed {
            lock(&self.events).record(changes, origin, self.clock.wall_ms());
            self.hub.worker.wake();
            self.stream.worker.wake();
        }
        (result, changed)
    }
}
