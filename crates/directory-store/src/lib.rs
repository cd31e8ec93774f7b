//! All of dingsync's SQL: the OA directory, the OA↔DingTalk id map, the outbox and inbox, base
//! snapshots, the audit log / change feed, and sync bookkeeping — on SQLite (default, WAL) or
//! PostgreSQL (several instances), chosen by URL.
//!
//! The central promise: every directory write commits together with its audit row and, for OA
//! writes, its outbox entry (design invariant 2); a refused write leaves nothing behind.
//! Callers say where a write comes from with a [`WriteCtx`]; the store decides nothing about
//! sync policy beyond that.
//!
//! ```no_run
//! # async fn demo() -> Result<(), directory_store::StoreError> {
//! use directory_model::{Department, OaDeptId};
//! use directory_store::{Store, WriteCtx};
//! let store = Store::connect("sqlite:///var/lib/dingsync/dingsync.db?mode=rwc").await?;
//! let ctx = WriteCtx::oa("api:hr-system", 1_700_000_000_000);
//! store.create_department(&ctx, Department::new(OaDeptId(1), "Acme", None)).await?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`url`]: [`DatabaseUrl`] (password never printed) and [`Backend`].
//! - [`error`]: [`StoreError`], whose client-error variants mirror DingTalk's refusals and name
//!   the offending field; [`EntityKind`].
//! - `db`: [`Store`] itself — connecting, embedded migrations per backend, the write lock, and
//!   the small placeholder-numbering SQL builder (why `sqlx::Any`: see that module).
//! - `rows`: entity ↔ row mapping and multi-row writes, shared by everything below.
//! - [`journal`]: [`WriteCtx`] / [`Origin`] / [`Op`], and recording audit + outbox + base in the
//!   caller's transaction.
//! - [`directory`]: the OA-facing writes with referential rules ([`Expect`], [`Saved`]), deletes,
//!   listings with filters and keyset paging, snapshots.
//! - [`batch`]: the importer's batch upserts.
//! - [`queue`]: the outbox (claimed in dependency order) and the inbox (deduplicated), with
//!   leases, retries and dead letters.
//! - [`sync`]: id map, base snapshots, change feed, merge conflicts, checkpoints, leases, held
//!   deletions, key/value state.
//! - [`slots`]: named counting semaphores timed by the database's clock ([`SlotTake`]), the
//!   mechanism behind the rate budget that several instances share.
//! - `engine_support`: what the sync engine's pusher and reconcile need on top (a push's id
//!   mapping and base in one transaction, whole-kind id-map and base reads).

pub mod batch;
mod db;
pub mod directory;
mod engine_support;
pub mod error;
pub mod journal;
pub mod queue;
mod rows;
pub mod slots;
pub mod sync;
pub mod url;

pub use batch::BatchReport;
pub use db::{Store, StoreOptions};
pub use directory::{
    AssignmentQuery, DeleteReport, DeptQuery, Expect, Outcome, Page, RoleQuery, Saved, UserQuery,
};
pub use error::{EntityKind, StoreError};
pub use journal::{Op, Origin, WriteCtx};
pub use queue::{InboxEvent, InboxPut, NewInboxEvent, OutboxEntry, QueueDepth, QueueState};
pub use rows::Versioned;
pub use slots::SlotTake;
pub use sync::{AuditRecord, ConflictRecord, HeldDeletion, HoldState, MappedId};
pub use url::{Backend, DatabaseUrl};
