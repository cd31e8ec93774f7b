//! The seam between the bench and the service it measures.
//!
//! The bench must measure the real service (`dingsync`'s `Application`, the code `serve` runs),
//! yet `dingsync` is the package that offers `dingsync bench`, so it depends on this crate and
//! this crate cannot depend back on it (Cargo forbids a package cycle). So this crate says what it
//! needs — [`Service`]: "start yourself against this simulator with these settings, on a free
//! port, until this token is cancelled" — and `dingsync` implements it with `Application`. The
//! trait is one method wide on purpose: everything else the bench does goes through the
//! service's public surfaces (the OA API, the callback receiver, the engine's `SyncContext`).

use std::net::SocketAddr;
use std::path::PathBuf;

use dingtalk_proto::Secret;
use directory_store::DatabaseUrl;
use futures::future::BoxFuture;
use sync_engine::SyncContext;
use tokio_util::sync::CancellationToken;

/// The settings a [`Rig`](crate::rig::Rig) varies; everything else is the service's default.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// DingTalk's per-API limit the service's client keeps to.
    pub qps: u32,
    /// The directory's database (created already).
    pub database_url: DatabaseUrl,
    /// The bearer token the OA API accepts.
    pub api_token: Secret,
    /// The bearer token SCIM accepts (its own: the service refuses one shared with the API).
    pub scim_token: Secret,
    /// The callback token the receiver verifies signatures with.
    pub callback_token: Secret,
    /// The callback AES key.
    pub aes_key: Secret,
    /// Whether the background workers (apply, push, catch-up) run.
    pub workers: bool,
    /// Seconds between catch-up runs (large to keep a bench's call counts its own).
    pub catchup_interval_secs: u64,
    /// Whether events arrive over Stream mode instead of the HTTP callback.
    pub stream_events: bool,
    /// A TOML file whose `[mapping]` and `[scope]` the service runs with (`--mapping`); none:
    /// the identity mapping.
    pub mapping: Option<PathBuf>,
}

/// A started service.
#[derive(Debug)]
pub struct RunningService {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The path of its DingTalk callback receiver (`/callbacks/dingtalk`).
    pub callback_path: &'static str,
    /// The sync engine's context, for running an import or a plan in-process.
    pub ctx: SyncContext,
    /// The service itself; it ends when the stop token passed to [`Service::start`] is
    /// cancelled.
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Starts the service the bench measures (see the module doc for why this is a trait).
pub trait Service: Send + Sync {
    /// Starts the service against `sim` with `spec` on a free port; it runs until `stop`.
    fn start<'a>(
        &'a self,
        sim: &'a dingtalk_sim::SimHandle,
        spec: &'a ServiceSpec,
        stop: CancellationToken,
    ) -> BoxFuture<'a, anyhow::Result<RunningService>>;
}
