//! sync-engine: keeps the OA directory and DingTalk Contacts equal.
//!
//! DingTalk → OA: a full [`import`] walks DingTalk's organisation and writes the directory;
//! afterwards DingTalk's events land in the inbox (the binary's callback route, or [`catchup`]
//! from DingTalk's failed-push list) and [`apply`] turns each into a three-way merge of
//! DingTalk's *current* state, the OA entity and the last synced base. Every translation
//! between DingTalk's wire shapes and the model, in both directions, goes through
//! [`translate`], every configurable decision through [`policy`], and every worker receives a
//! [`context::SyncContext`].
//!
//! OA → DingTalk and both ways: the [`push`] module drains the outbox into DingTalk in
//! dependency order, idempotently (a crash between DingTalk's acceptance and saving the id map
//! never creates a duplicate: creates look before they create on retry), with backoff and dead
//! letters; the [`plan`] module snapshots both sides, compares them with the base three ways,
//! prints what reconcile would change on each side (table or JSON, with the same validation as
//! a real run and the deletion threshold) and applies it on request.
//!
//! Apply, push and plan are organised by entity kind: "how is a department pushed?" is
//! `push/department.rs`, "how is it applied?" `apply/department.rs`, "how is it translated?"
//! `translate/department.rs`. What every kind shares is written once over the `kind` module's
//! `SyncedKind` trait, which the four kinds (departments, users, role groups, roles) implement.
//!
//! # Layout
//! - [`context`]: [`SyncContext`] (store, client, policy, clock) and the [`Clock`] seam.
//! - [`policy`]: [`Policy`] — scope, field authority, deletion threshold, soft-match order.
//! - `kind`: the `SyncedKind` trait of the four kinds and `for_each_kind`, the one place that
//!   lists them; the store's id text of a role assignment.
//! - [`approval`]: the approved `[mapping]`/`[scope]` fingerprint; a changed one holds the
//!   writing workers until `reconcile --yes`.
//! - [`rules`]: [`rules::Rules`], the compiled `[mapping]` and `[scope]` expressions (the
//!   `mapping` crate) and how a mapped value meets the sync: agreement reads back exactly,
//!   `on_create` fields never travel after the create. `translate` applies them.
//! - [`translate`]: DingTalk wire types ↔ model entities, one file per kind with both
//!   directions (`from_wire` through an [`IdMap`], with the rules that make an agreeing state
//!   convert back to the OA entity exactly; the pusher's request builders), and [`translate::ding`],
//!   the id newtypes of the two crates. [`convert`] keeps its old names.
//! - [`import`]: the full import — concurrent crawl, linking and soft match, batched writes
//!   with a resumable checkpoint, deletions only from a complete crawl and under the threshold.
//! - [`push`]: the outbox pusher ([`push::Pusher`]) with failpoints for crash tests; one file
//!   per kind (`push/department.rs`, `user.rs`, `role_group.rs`, `role.rs`, `assignment.rs`)
//!   and `step.rs`, what an attempt came to.
//! - [`org_scope`]: one DingTalk organization's subtree of the shared OA directory, for plan.
//! - [`plan`]: [`plan::plan`] (`plan/build.rs`, over `plan/view.rs`, DingTalk's crawl in OA
//!   ids), [`plan::reconcile`] (`plan/reconcile.rs`) and the table (`plan/render.rs`).
//! - [`apply`]: the inbox worker (`apply/worker.rs`) — read any payload dialect
//!   (`apply/payload.rs`), fetch current state, resolve references first, merge three ways
//!   (`apply/merge.rs`) under entity locks (`apply/lock.rs`), write / push / record conflicts;
//!   one file per kind (`apply/department.rs`, `user.rs`, `role.rs`).
//! - [`catchup`]: DingTalk's failed-push list into the inbox.
//! - [`exclusive`]: [`exclusive::run_exclusive`], a job round under a lease so that one
//!   instance at a time runs catch-up or the scheduled reconcile.
//! - [`shared_budget`]: [`SharedBudget`], the DingTalk rate budget shared by every instance on
//!   one database (the client's `RateBudget` on the store's rate slots).
//! - [`error_chain`](mod@error_chain): [`error_chain()`], an error and its causes on one line,
//!   for logs and dead letters (the binary uses the same one).
pub mod apply;
pub mod approval;
pub mod branch_copies;
pub mod catchup;
pub mod context;
pub mod error_chain;
pub mod exclusive;
pub mod import;
mod kind;
pub mod org_scope;
pub mod plan;
pub mod policy;
pub mod push;
pub mod rules;
pub mod shared_budget;
pub mod translate;

/// The DingTalk → model half of [`translate`] under the names it had before `translate`
/// existed, so that callers of `sync_engine::convert` keep compiling.
pub mod convert {
    pub use crate::translate::department::from_wire as department;
    pub use crate::translate::role::{group_from_wire as role_group, role_from_wire as role};
    pub use crate::translate::user::from_wire as user;
    pub use crate::translate::{ConvertError, IdMap, ding};
}

pub use apply::{Applier, ApplyError, ApplyOptions};
pub use catchup::catch_up;
pub use context::{Clock, ManualClock, SyncContext, SystemClock};
pub use error_chain::error_chain;
pub use import::{ImportError, ImportOptions, ImportProgress, ImportReport, import};
pub use policy::{DeletionThreshold, LiveThreshold, MatchKey, Policy, Scope, SoftMatch};
pub use shared_budget::SharedBudget;
pub use translate::{ConvertError, IdMap};
