//! dingtalk-sim: a faithful local DingTalk (Contacts) for the demo, the tests and the benchmarks,
//! and for anyone who wants to point the real service at something that is not production.
//!
//! It is an *independent oracle*: it builds and reads DingTalk's JSON itself (with
//! `serde_json::Value`) from the facts in `shared/dingtalk-api.md`, and never imports the
//! project's wire types or client, so a mistake in those is caught here instead of mirrored.
//! It is never easier than DingTalk: where the facts are UNCONFIRMED it takes the stricter
//! plausible behaviour, and each such choice is documented in the module that makes it
//! (`org` for the business rules, `gateway` for tokens and throttling).
//!
//! ```no_run
//! # async fn demo() -> Result<(), dingtalk_sim::SimError> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(dingtalk_sim::SimError::Listener)?;
//! let sim = dingtalk_sim::start(dingtalk_sim::SimConfig { users: 200, depts: 20, ..Default::default() }, listener).await?;
//! println!("DingTalk at {}", sim.base_url());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # DingTalk routes
//! Same paths, bodies and codes as DingTalk (`oapi.dingtalk.com` and, for the token,
//! `api.dingtalk.com`):
//! - `GET /gettoken?appkey&appsecret` (or `corpid&corpsecret`), `POST /v1.0/oauth2/accessToken`;
//! - `POST /topapi/v2/department/{listsub,listsubid,get,create,update,delete,listparentbydept,listparentbyuser}`;
//! - `POST /topapi/v2/user/{list,get,create,update,delete,getbymobile}`,
//!   `POST /topapi/user/{listid,listsimple,count,getbyunionid}`;
//! - the generation before topapi v2 that `dingtalk-sdk` 1.3.8 calls: `GET /department/list`,
//!   `POST /department/create`, `GET /user/{get,simplelist,list}`, `POST /user/create`;
//! - the new API's contact lookups (`x-acs-dingtalk-access-token` header):
//!   `POST /v1.0/contact/{users,departments}/search`, `GET /v1.0/contact/empLeaveRecords`;
//! - `POST /topapi/role/{list,deleterole,getrolegroup,getrole,addrolesforemps,removerolesforemps,simplelist}`,
//!   `POST /role/{add_role_group,add_role,update_role}`;
//! - `POST /call_back/{register_call_back,update_call_back}`,
//!   `GET /call_back/{get_call_back,delete_call_back,get_call_back_failed_result}`.
//!
//! - Stream mode (`api.dingtalk.com`): `POST /v1.0/gateway/connections/open` (credentials and
//!   subscriptions → endpoint + single-use ticket), then the WebSocket `GET /connect?ticket=…`.
//! - 上下级组织: `POST /topapi/org/union/{branch,trunk}/get` (the corps linked below / above).
//!
//! # Several organizations
//! [`SimConfig::orgs`] corps share the one address, as every corp shares DingTalk's hosts: the
//! credentials, token or Stream ticket a request carries decide which corp answers it, so a token
//! of one corp never reaches another's data (see `fleet`). Each corp has its own credentials
//! ([`SimConfig::for_org`]), ids, token, rate limits and settings, event log, callback
//! subscription and Stream gateway; `/_sim/orgs/{n}/...` administers corp `n`, and
//! [`SimHandle::org`] is its handle. Trunk/branch links (`POST /_sim/unions`) copy a branch's
//! departments and members into the trunk, read-only there (see `org::union`).
//!
//! Any other path (or a known path with another method) answers HTTP **404** — `{"errcode":404}`
//! on oapi paths, `{"code":"InvalidAction.NotFound"}` on `/v1.0/` paths; an unknown `/topapi/`
//! method keeps DingTalk's `errcode 22` — so no client can take a path the simulator lacks for
//! a success.
//!
//! Every change, through the API or `/_sim`, becomes a contacts event that is pushed (encrypted
//! and signed) to the subscribed callback URL, or sent over Stream, or both (the `delivery`
//! setting); see `callback_delivery` and `stream` for the rules. (The HTTP channel is called
//! callback delivery, not "push", because in this workspace "push" is the engine sending OA
//! changes to DingTalk; the `/_sim/push...` route names stay as they were.)
//!
//! # Admin routes (`/_sim`, no token; JSON in and out)
//! Listed, with what each does, in one table: [`admin_routes`] (printed by `dingsync sim --help`
//! and the start banner, [`admin_routes_help`]). They read and change the org, the call counts,
//! the settings, the event log, the callback subscription and pushes, and Stream.
//!
//! A write answers `{"errcode":0,...}` with HTTP 200, or HTTP 422 with DingTalk's
//! `{"errcode","errmsg"}` when a rule refuses it.
//!
//! # Time
//! Every time the simulator reads comes from one [`Clock`] held in the shared state: token
//! expiry, the rate limiter's windows, Stream tickets, redelivery deadlines and pings, push
//! retry waits, and the timestamps of events, push attempts and Stream frames. [`start`] uses
//! the machine's clock; [`start_with_clock`] takes another, and [`Clock::settable`] is one a
//! test moves by hand (`advance`), so an hour passes in a millisecond. Waits that stand for the
//! network stay on real time: `latency_ms`, a slow fault's hold, one push's HTTP deadline, and
//! the patience of the `wait_*_idle` drains. (With a settable clock standing still, every call
//! falls in the same one-second rate window until the clock moves.)
//!
//! # Layout
//! Floors, each importing only the ones below it, so there is no import circle among the
//! modules (checked by a grep-based map of every `crate::`/`super::` path; a folder's `mod.rs`
//! only declares its files and re-exports its public types):
//!
//! 1. Leaves — pure types and rules, no shared state:
//!    - `clock`: [`Clock`], the one source of time (system or settable).
//!    - `lock`: poison-tolerant `Mutex` locking.
//!    - `error`: [`SimError`] for starting, and the `Rejection` (DingTalk errcode) the rules
//!      answer.
//!    - `config`: [`SimConfig`] (what to start) and the run-time [`Settings`] subset.
//!    - `params`: reads parameters the way DingTalk does (query or body, JSON or form, numbers
//!      as strings).
//!    - `envelope`: the `Reply` an operation answers and the envelopes of DingTalk's answer
//!      families (TOP, legacy oapi, the new API's errors, the gateway's 502).
//!    - `org`: the org and every business rule, shared by the API and the admin routes so both
//!      obey the same rules — `dept`, `role`, and users as `user` (writes), `user_fields` (the
//!      field rules create and update share), `user_read` (get, list, count) and `user_diff`
//!      (the `diffInfo` of a modify event); `legacy_contacts` serves the pre-v2 paths with the
//!      same rules; `union` is the trunk's read-only copy of a branch corp.
//!    - `admin_routes`: the table of the `/_sim` routes (docs, `--help`, banner).
//!    - `generate`: the deterministic sample-org generator.
//!    - `gateway`: tokens, the rate limit, faults, request ids, call counts (plain state; the
//!      instant and the RNG are passed in).
//!    - `events`: the ordered log of contacts events that changes produce.
//!    - `api`: which path runs which `Org` operation, and in which envelope family.
//!    - `worker`: the wake / progress / stop plumbing both event channels' tasks share.
//!    - `callback_delivery::{subscription, settings, payload, send, hub}` and
//!      `stream::{settings, frames, machine, hub}`: each channel's state and rules, with no
//!      reference to the shared state.
//! 2. `state`: `Shared`, what every request and task of one corp holds (config, clock, org, gateway, event
//!    log, the two channels' hubs), and the steps more than one route takes on it (request id,
//!    call count, gateway verdict, token issue and check, running an operation and recording
//!    its events).
//!    `fleet` sits on it: every corp's `Shared`, which corp a request is for, and the
//!    trunk/branch links and their copying.
//! 3. Routes and tasks, each importing `state` (and `fleet`) and leaves:
//!    - `fleet_admin`: `/_sim/orgs` and `/_sim/unions`.
//!    - `call`: the trip of one DingTalk business call through the gateway, and the latency
//!      layer.
//!    - `token_routes`: `/gettoken` and `/v1.0/oauth2/accessToken`.
//!    - `new_api`: the other `/v1.0/` paths (the header token, the new API's errors, the contact
//!      searches, and `leave_records`).
//!    - `admin`: the `/_sim` routes for the org, calls, settings and events (and the small
//!      helpers every `/_sim` route answers with).
//!    - `callback_delivery`: the HTTP event push to a subscribed callback URL — `pusher` (the
//!      background task with its retries, failed list and `check_url`), `api`
//!      (`/call_back/...`), `admin` (`/_sim/callback`, `/_sim/push-settings`, `/_sim/pushes`).
//!    - `stream`: Stream mode — `dispatcher` (the task that drives the state machine),
//!      `routes` (registration and the `/connect` WebSocket), `admin` (`/_sim/stream/...`).
//! 4. `server`: only assembles the router from the route modules; `lib.rs` starts it all.

mod admin;
mod admin_routes;
mod api;
mod call;
mod call_log;
mod callback_delivery;
mod clock;
#[cfg(test)]
mod clock_tests;
mod config;
mod envelope;
mod error;
mod events;
mod fleet;
mod fleet_admin;
mod gateway;
mod generate;
mod ip_limit;
mod lock;
mod new_api;
mod org;
mod params;
mod server;
mod state;
mod stream;
mod token_routes;
mod worker;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use crate::admin_routes::{AdminRoute, admin_routes, admin_routes_help};
pub use crate::clock::Clock;
pub use crate::config::{MAX_ORGS, Settings, SettingsPatch, SimConfig};
pub use crate::error::SimError;
pub use crate::stream::{Delivery, StreamSettings, StreamSettingsPatch};

use crate::events::EventLog;
use crate::fleet::Fleet;
use crate::gateway::{CallStats, RateLimiter, TokenStore};
use crate::state::{Gate, Shared};

/// A running simulator. Dropping it without [`SimHandle::shutdown`] leaves the server running
/// until the runtime stops.
///
/// Its methods that take no org act on org 0 (the only one unless [`SimConfig::orgs`] is more);
/// [`SimHandle::org`] gives the same for any org.
#[derive(Debug)]
pub struct SimHandle {
    /// Where the simulator listens.
    addr: SocketAddr,
    /// Every corp's shared state.
    fleet: Arc<Fleet>,
    /// The configuration it was started with.
    config: SimConfig,
    /// Stops the server when cancelled.
    stop: CancellationToken,
    /// The server task, awaited on shutdown so the port is free afterwards.
    task: JoinHandle<()>,
}

/// One organization (corp) of a running simulator.
#[derive(Debug, Clone, Copy)]
pub struct OrgHandle<'a> {
    base_url: &'a SocketAddr,
    shared: &'a Arc<Shared>,
}

impl OrgHandle<'_> {
    /// Which org this is (0 = the first).
    pub fn index(&self) -> usize {
        self.shared.index
    }

    /// This org's configuration: its credentials, corp id and name (see [`SimConfig::for_org`]).
    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }

    /// `http://127.0.0.1:<port>/_sim/orgs/<n>`: the prefix of this org's admin routes (every
    /// `/_sim/...` route of [`admin_routes`] that acts on one org exists under it).
    pub fn admin_url(&self) -> String {
        format!("http://{}/_sim/orgs/{}", self.base_url, self.shared.index)
    }

    /// Counts of the org's entities right now.
    pub fn counts(&self) -> serde_json::Value {
        lock::lock(&self.shared.org).counts()
    }

    /// [`SimHandle::wait_pushes_idle`] for this org.
    pub async fn wait_pushes_idle(&self, timeout: std::time::Duration) -> bool {
        callback_delivery::pusher::wait_idle(self.shared, timeout).await
    }

    /// [`SimHandle::set_stream_settings`] for this org.
    pub fn set_stream_settings(
        &self,
        patch: &StreamSettingsPatch,
    ) -> Result<StreamSettings, String> {
        stream::dispatcher::apply_settings(self.shared, patch)
    }

    /// [`SimHandle::wait_stream_idle`] for this org.
    pub async fn wait_stream_idle(&self, timeout: std::time::Duration) -> bool {
        stream::dispatcher::wait_idle(self.shared, timeout).await
    }
}

impl SimHandle {
    /// `http://127.0.0.1:<port>`: what a client uses in place of `https://oapi.dingtalk.com`
    /// (and of `https://api.dingtalk.com`). Every org is served there; the credentials decide
    /// which one a client talks to.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the simulator listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The configuration it was started with (org 0's; run-time changes are in
    /// `/_sim/settings`).
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// How many orgs it serves.
    pub fn orgs(&self) -> usize {
        self.fleet.corps.len()
    }

    /// Org `index`, or `None` past the last.
    pub fn org(&self, index: usize) -> Option<OrgHandle<'_>> {
        self.fleet.corps.get(index).map(|shared| OrgHandle {
            base_url: &self.addr,
            shared,
        })
    }

    /// Org 0.
    fn first(&self) -> OrgHandle<'_> {
        OrgHandle {
            base_url: &self.addr,
            shared: &self.fleet.corps[0],
        }
    }

    /// Counts of org 0's entities right now.
    pub fn counts(&self) -> serde_json::Value {
        self.first().counts()
    }

    /// Waits until every recorded event has been pushed to a final outcome (acknowledged, or
    /// failed after its retries), or `timeout` passes; returns whether it became idle. This is
    /// the drain a test calls before checking what its receiver got.
    pub async fn wait_pushes_idle(&self, timeout: std::time::Duration) -> bool {
        self.first().wait_pushes_idle(timeout).await
    }

    /// Stops accepting connections, lets in-flight answers finish, stops every org's pusher
    /// (pending retries are abandoned) and waits for all of it.
    pub async fn shutdown(self) {
        self.stop.cancel();
        if let Err(error) = self.task.await {
            tracing::warn!(%error, "simulator task ended abnormally");
        }
        for corp in &self.fleet.corps {
            corp.hub.worker.wait_stopped().await;
            corp.stream.worker.wait_stopped().await;
        }
    }

    /// Changes the Stream settings (as `POST /_sim/stream/settings` does), e.g. to deliver
    /// events by Stream instead of HTTP push; returns the settings now in force, or why the
    /// patch was refused.
    pub fn set_stream_settings(
        &self,
        patch: &StreamSettingsPatch,
    ) -> Result<StreamSettings, String> {
        self.first().set_stream_settings(patch)
    }

    /// Waits until every recorded event has been acknowledged over Stream, or `timeout`
    /// passes; returns whether that happened. Only meaningful while `delivery` includes Stream.
    pub async fn wait_stream_idle(&self, timeout: std::time::Duration) -> bool {
        self.first().wait_stream_idle(timeout).await
    }
}

/// Generates the org and serves DingTalk on `listener` (bind it yourself; port 0 is fine),
/// reading the machine's clocks.
pub async fn start(
    config: SimConfig,
    listener: tokio::net::TcpListener,
) -> Result<SimHandle, SimError> {
    start_with_clock(config, listener, Clock::system()).await
}

/// [`start`] with the clock every simulated time is read from: a test passes
/// [`Clock::settable`] (keeping a clone) to expire tokens, come to retry and redelivery times,
/// or stamp events without sleeping.
pub async fn start_with_clock(
    config: SimConfig,
    listener: tokio::net::TcpListener,
    clock: Clock,
) -> Result<SimHandle, SimError> {
    config.validate()?;
    let addr = listener.local_addr().map_err(SimError::Listener)?;
    let stop = CancellationToken::new();
    // Everything fallible first (generation, the pushers' HTTP clients), then the fleet.
    let mut parts = Vec::with_capacity(config.orgs);
    for index in 0..config.orgs {
        let corp = config.for_org(index);
        let mut org = generate_org(&corp).await?;
        org.corp_id = corp.corp_id.clone();
        let hub = callback_delivery::hub::Hub::new(corp.seed, stop.clone())?;
        parts.push((corp, org, hub));
    }
    let fleet = Arc::new_cyclic(|weak| Fleet {
        corps: parts
            .into_iter()
            .enumerate()
            .map(|(index, (corp, org, hub))| {
                let seed = corp.seed;
                Arc::new(Shared {
                    index,
                    fleet: weak.clone() as std::sync::Weak<dyn state::Propagate>,
                    gate: Mutex::new(Gate {
                        settings: Settings::from_config(&corp),
                        tokens: TokenStore::default(),
                        limiter: RateLimiter::default(),
                        stats: CallStats::default(),
                        log: crate::call_log::CallLog::default(),
                        rng: StdRng::seed_from_u64(seed.wrapping_add(0x9E37_79B9)),
                    }),
                    org: Mutex::new(org),
                    events: Mutex::new(EventLog::default()),
                    hub,
                    stream: stream::hub::StreamHub::new(seed, stop.clone()),
                    clock: clock.clone(),
                    config: corp,
                })
            })
            .collect(),
        unions: Mutex::new(Vec::new()),
        ip: Mutex::new(ip_limit::IpLimiter::new(ip_limit::IpLimitSettings {
            ip_qps: config.ip_qps,
            ..ip_limit::IpLimitSettings::default()
        })),
    });
    for corp in &fleet.corps {
        callback_delivery::pusher::spawn_pusher(Arc::clone(corp));
        stream::dispatcher::spawn_dispatcher(Arc::clone(corp));
    }
    let app = server::router(Arc::clone(&fleet));
    let signal = stop.clone();
    let task = tokio::spawn(async move {
        // The peer address is what DingTalk's per-IP limit counts by (`ip_limit`).
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(signal.cancelled_owned())
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "simulator server failed");
        }
    });
    tracing::info!(%addr, orgs = config.orgs, "DingTalk simulator listening");
    Ok(SimHandle {
        addr,
        fleet,
        config,
        stop,
        task,
    })
}

/// Builds the configured sample org. Generating 100k users takes a moment of CPU, so it runs
/// off the async worker threads.
async fn generate_org(config: &SimConfig) -> Result<org::Org, SimError> {
    let (users, depts, seed) = (config.users, config.depts, config.seed);
    let corp_name = config.corp_name.clone();
    let dup_code = config.dup_dept_name_errcode;
    tokio::task::spawn_blocking(move || {
        let mut org = org::Org::new(&corp_name, seed, dup_code);
        generate::populate(&mut org, users, depts, seed);
        org
    })
    .await
    .map_err(SimError::Generation)
}
