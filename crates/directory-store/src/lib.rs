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
//! The crate is split by concept: each file holds one table family's SQL together with the
//! `impl Store` block that wraps it, so "how is X stored?" is answered in one place.
//!
//! Foundations:
//! - [`url`]: [`DatabaseUrl`] (password never printed) and [`Backend`].
//! - [`error`]: [`StoreError`], whose client-error variants mirror DingTalk's refusals and name
//!   the offending field; [`EntityKind`].
//! - `db`: [`Store`] itself — connecting, embedded migrations per backend, the write lock, and
//!   the small placeholder-numbering SQL builder (why `sqlx::Any`: see that module).
//! - `rows`: entity ↔ row mapping and multi-row writes, shared by everything below.
//! - [`journal`]: [`WriteCtx`] / [`Origin`] / [`Op`], and recording audit + outbox + base in the
//!   caller's transaction.
//!
//! The directory:
//! - [`directory`]: the OA-facing writes with referential rules ([`Expect`], [`Saved`]), one
//!   file per kind (`department`, `user`, `role`, `assignment`) and `read` for listings with
//!   filters and keyset paging, and snapshots.
//! - [`batch`]: the importer's batch upserts.
//!
//! Sync bookkeeping:
//! - [`id_map`]: the OA↔DingTalk id map ([`MappedId`]), single and bulk, and the pusher's
//!   "mapped and synced" record in one transaction.
//! - `base`: base snapshots, the base of the three-way merge.
//! - [`audit`]: the audit log read back as a change feed ([`AuditRecord`]).
//! - [`conflicts`]: merge conflicts, for operators and in the audit log ([`ConflictRecord`]).
//! - [`console`]: the admin console's users, run history, timeline sources, audit search,
//!   conflict decisions and history pruning.
//! - [`held_deletions`]: deletions held for an operator ([`HeldDeletion`], [`HoldState`]).
//! - `checkpoints`: import positions and the key/value sync state.
//! - `leases`: named leases, so one instance imports or reconciles at a time.
//! - [`scim_resources`]: what SCIM clients sent for the users and groups they provision
//!   ([`ScimResource`]), beside the OA entities they map to.
//! - [`scim_holds`]: what an operator's decision on a deletion SCIM held does.
//! - [`slots`]: named counting semaphores timed by the database's clock ([`SlotTake`]), the
//!   mechanism behind the rate budget that several instances share.
//!
//! The queues:
//! - `claims`: the life cycle the two queues share (claim, lease, finish, retry, dead-letter,
//!   release), written once ([`QueueState`], [`QueueDepth`]).
//! - [`outbox`]: OA changes to push, claimed in dependency order ([`OutboxEntry`]).
//! - [`inbox`]: DingTalk events to apply, deduplicated ([`InboxEvent`]).

pub mod audit;
mod base;
pub mod batch;
mod checkpoints;
mod claims;
pub mod conflicts;
pub mod console;
mod db;
pub mod directory;
pub mod error;
pub mod held_deletions;
pub mod id_map;
pub mod inbox;
pub mod journal;
mod leases;
pub mod outbox;
mod rows;
pub mod scim_holds;
pub mod scim_resources;
pub mod slots;
pub mod url;

pub use audit::AuditRecord;
pub use batch::BatchReport;
pub use claims::{QueueDepth, QueueState};
pub use conflicts::ConflictRecord;
pub use console::{
    AuditBrief, AuditSearch, ConsoleUserRow, DeptBrief, NewSoftMatch, OperatorActionRecord,
    RunRecord, RunStart, SoftMatchRecord, Waiting,
};
pub use db::{DEFAULT_ORG, Store, StoreOptions};
pub use directory::{
    AssignmentQuery, DeleteReport, DeptQuery, Expect, Outcome, Page, RoleQuery, Saved, UserQuery,
};
pub use error::{EntityKind, StoreError};
pub use held_deletions::{HeldDeletion, HoldState};
pub use id_map::MappedId;
pub use inbox::{InboxEvent, InboxPut, NewInboxEvent};
pub use journal::{Op, Origin, WriteCtx};
pub use outbox::OutboxEntry;
pub use rows::Versioned;
pub use scim_holds::ScimLeave;
pub use scim_resources::{SCIM_HOLD_REASON, ScimChange, ScimDepartures, ScimResource, ScimWrite};
pub use slots::SlotTake;
pub use url::{Backend, DatabaseUrl};
