//! The `dingsync` service as a library, so the binary, the demo and the end-to-end tests build
//! the very same application. `main.rs` is only the command line.
//!
//! # Layout
//! - [`admin`]: the admin console's backend over the store, the engine and the service's
//!   state, mounted by `serve` at `/console` (issue 16).
//! - [`bench`]: `dingsync bench`: mounts the `dingsync-bench` crate's scenarios (issue 8) on the
//!   real service through [`local::Local`].
//! - [`callback`]: `POST /callbacks/dingtalk`, DingTalk's event push: verify, decrypt, store in
//!   the inbox, then acknowledge.
//! - [`api`]: the OA-facing HTTP API under `/api/v1` (CRUD, change feed, OpenAPI).
//! - [`clock`]: the service's one clock (the engine's `Clock`), shared by the engine, the API,
//!   the receiver and the Stream client, so tests pin time.
//! - [`commands`]: the one-shot commands (import, plan, reconcile, status, dead-letters).
//! - [`config`]: the TOML + environment configuration, validated all at once, secrets redacted.
//! - [`demo`]: `dingsync demo`, both-way sync end to end on embedded defaults, as named steps.
//! - [`import_progress`]: the import's progress for a person: a spinner on a terminal, timed
//!   lines off one.
//! - [`load_cmd`]: `dingsync load FILE [--dry-run]`, the first load of the OA side from a
//!   CSV/XLSX export, through the same validation and outbox as the OA API.
//! - [`local`]: the service started in-process against a simulator, for `demo` and `bench`.
//! - [`mapping_cmd`]: `dingsync mapping test`, and the gate that holds the writing workers
//!   while a changed `[mapping]`/`[scope]` waits for `reconcile --yes`.
//! - [`ops_stats`]: what the service went through (DingTalk retries, faults, throttles, token
//!   fetches; database outages), persisted for `dingsync status` and exported to `/metrics`.
//! - [`orgs`]: several DingTalk organizations (`[[orgs]]`, issue 20): one runtime per org.
//! - [`readiness`]: DingTalk's reachability for `/readyz`, with a grace period.
//! - [`reload`]: SIGHUP for `serve`: re-read the configuration, apply the API tokens live, name what needs a restart.
//! - [`server`]: `dingsync serve` — [`server::Application`] (build → port → run until stopped),
//!   and [`server::Shared`], the clock, recorder and counters its parts share.
//! - [`scim`]: SCIM 2.0 at `/scim/v2` (issue 17): IdPs provision the OA directory.
//! - [`sim_cmd`]: `dingsync sim`, the standalone DingTalk simulator.
//! - [`stream`]: Stream mode, the outbound WebSocket alternative to the callback: register,
//!   connect, store each event in the inbox, then acknowledge; reconnect with backoff.
//! - [`workers`]: the background workers of `serve` (apply, push, catch-up, reconcile).
//! - [`telemetry`]: one service's Prometheus recorder, entered by the service's futures.
//! - [`term`]: the one escape of unprintable characters every CLI line goes through.

pub mod admin;
pub mod api;
pub mod bench;
pub mod budgets;
pub mod callback;
pub mod clock;
pub mod commands;
pub mod config;
pub mod demo;
pub mod import_progress;
pub mod load_cmd;
pub mod local;
pub mod mapping_cmd;
pub mod ops_stats;
pub mod orgs;
pub mod readiness;
pub mod reload;
pub mod scim;
pub mod server;
pub mod sim_cmd;
pub mod stream;
pub mod telemetry;
pub mod term;
pub mod workers;
