//! sync-engine: keeps the OA directory and DingTalk Contacts equal.
//!
//! DingTalk → OA: a full [`import`] walks DingTalk's organisation and writes the directory;
//! afterwards DingTalk's events land in the inbox (the binary's callback route, or [`catchup`]
//! from DingTalk's failed-push list) and [`apply`] turns each into a three-way merge of
//! DingTalk's *current* state, the OA entity and the last synced base. Every translation
//! between DingTalk's wire shapes and the model goes through [`convert`], every configurable
//! decision through [`policy`], and every worker receives a [`context::SyncContext`].
//!
//! OA → DingTalk and both ways: the [`push`] module drains the outbox into DingTalk in
//! dependency order, idempotently (a crash between DingTalk's acceptance and saving the id map
//! never creates a duplicate: creates look before they create on retry), with backoff and dead
//! letters; the [`plan`] module snapshots both sides, compares them with the base three ways,
//! prints what reconcile would change on each side (table or JSON, with the same validation as
//! a real run and the deletion threshold) and applies it on request.
//!
//! # Layout
//! - [`context`]: [`SyncContext`] (store, client, policy, clock) and the [`Clock`] seam.
//! - [`policy`]: [`Policy`] — scope, field authority, deletion threshold, soft-match order.
//! - [`convert`]: DingTalk wire types → model entities through an [`IdMap`], with the rules
//!   that make an agreeing state convert back to the OA entity exactly (no echo loops).
//! - [`import`]: the full import — concurrent crawl, linking and soft match, batched writes
//!   with a resumable checkpoint, deletions only from a complete crawl and under the threshold.
//! - [`push`]: the outbox pusher ([`push::Pusher`]) with failpoints for crash tests, and
//!   `push::build`, the pure model → DingTalk request builders.
//! - [`plan`]: [`plan::plan`] and [`plan::reconcile`], and `plan::view`, DingTalk's crawl
//!   translated into the OA model through the id map.
//! - [`apply`]: the inbox worker — parse any payload dialect, fetch current state, resolve
//!   references first, three-way merge, write / push / record conflicts; retries and dead letters.
//! - [`catchup`]: DingTalk's failed-push list into the inbox.
//! - [`exclusive`]: [`exclusive::run_exclusive`], a job round under a lease so that one
//!   instance at a time runs catch-up or the scheduled reconcile.
//! - [`shared_budget`]: [`SharedBudget`], the DingTalk rate budget shared by every instance on
//!   one database (the client's `RateBudget` on the store's rate slots).
pub mod apply;
pub mod catchup;
pub mod context;
pub mod error_chain;
pub mod exclusive;
pub mod import;
mod kind;
pub mod plan;
pub mod policy;
pub mod push;
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
pub use translate::{ConvertError, IdMap};
pub use import::{ImportError, ImportOptions, ImportProgress, ImportReport, import};
pub use policy::{DeletionThreshold, MatchKey, Policy, Scope, SoftMatch};
pub use shared_budget::SharedBudget;
