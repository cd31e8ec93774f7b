//! `dingsync plan` and `dingsync reconcile`: snapshot both sides, compare them with the base,
//! say what would change where, and apply it on request.
//!
//! Per entity the plan is a three-way comparison of the OA directory, DingTalk (translated into
//! OA ids, see `view`) and the base (what both sides last agreed on):
//! - equal on both sides: nothing to do;
//! - both present: the model's three-way [`merge()`](directory_model::merge) decides every field (a side that differs
//!   from the base changed it; both changed differently → the configured winner, recorded as a
//!   conflict); without a base (never synced) the winner's side is taken whole;
//! - only in OA: with a base DingTalk deleted it (delete in OA), without one it was never pushed
//!   (create in DingTalk); OA users who left are expected to be absent from DingTalk;
//! - only in DingTalk: with a base OA deleted it (delete in DingTalk), without one it is new
//!   (create in OA).
//!
//! The plan runs the same validation as a real push ([`validate_department`](directory_model::validate_department) and friends) on
//! everything it would send to DingTalk and lists the problems per item, and applies the
//! deletion threshold (design invariant 6): if the deletions on one side exceed 10% of that
//! side's users or departments, or 500, they are *held* and [`reconcile`] skips them unless the
//! caller confirms.
//!
//! Reconcile applies OA-side changes through the store (origin `reconcile`, no outbox entry)
//! and DingTalk-side changes through the pusher's own code path (so creates stay idempotent and
//! the id map and base are saved the same way), in dependency order.

//!
//! # Layout
//! This file holds the plan's types; `build.rs` compares the sides (every kind through one
//! generic comparison), `view.rs` reads DingTalk's side, `render.rs` prints the table and
//! `reconcile.rs` applies a plan.

mod build;
mod reconcile;
mod render;
mod scoped;
mod view;

use dingtalk_client::ClientError;
use directory_model::{Snapshot, User};
use directory_store::{EntityKind, StoreError};
use serde::Serialize;

use self::view::Unmapped;

pub use self::build::plan;
pub use self::reconcile::{ReconcileReport, reconcile};
pub(crate) use self::scoped::DingParents;

/// Why a plan or a reconcile could not run.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Reading DingTalk failed (the plan needs a complete snapshot).
    #[error("could not read DingTalk")]
    DingTalk(#[source] ClientError),
    /// The directory store failed.
    #[error("the directory store failed")]
    Store(#[from] StoreError),
}

/// Where a planned change happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// In the OA directory.
    Oa,
    /// In DingTalk.
    #[serde(rename = "dingtalk")]
    DingTalk,
}

/// What a planned change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The entity appears.
    Create,
    /// Some fields change.
    Update,
    /// The entity goes away.
    Delete,
}

/// One planned change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanItem {
    /// Where.
    pub target: Target,
    /// What.
    pub action: Action,
    /// Which kind of entity.
    pub kind: EntityKind,
    /// The OA id (absent for DingTalk entities OA does not have yet).
    pub oa_id: Option<String>,
    /// The DingTalk id, for DingTalk entities OA does not have yet.
    pub ding_id: Option<String>,
    /// A readable name.
    pub name: String,
    /// The fields that change (updates).
    pub fields: Vec<String>,
    /// Each field of `fields`, in the same order, with the value the target side holds now
    /// and the value the change writes (updates; empty otherwise).
    pub changes: Vec<FieldChange>,
    /// Fields both sides changed differently; the winner's value is planned.
    pub conflicts: Vec<String>,
    /// What validation says about the state this item would write (a real run refuses it).
    pub problems: Vec<String>,
    /// A deletion held by the threshold: applied only with confirmation.
    pub held: bool,
}

impl PlanItem {
    /// An item with no fields, conflicts or problems, not held, named by its OA id.
    pub(crate) fn new(
        target: Target,
        action: Action,
        kind: EntityKind,
        oa_id: Option<String>,
        name: String,
    ) -> Self {
        Self {
            target,
            action,
            kind,
            oa_id,
            ding_id: None,
            name,
            fields: Vec::new(),
            changes: Vec::new(),
            conflicts: Vec::new(),
            problems: Vec::new(),
            held: false,
        }
    }
}

/// One field of an update: what the target side holds now and what the change writes.
///
/// Values are the entity's JSON (ids are OA ids on both sides, see `view`). Entities carry no
/// credentials, so nothing is redacted here; unprintable characters reach the administrator
/// only through the CLI's escaping (the table) or JSON's own (`--json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    /// The field's snake_case name (as in `fields`).
    pub field: String,
    /// The target side's value now.
    pub old: serde_json::Value,
    /// The value the change writes.
    pub new: serde_json::Value,
}

/// Counts per side, for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Departments in the OA directory.
    pub oa_departments: usize,
    /// Users in the OA directory (active).
    pub oa_users: usize,
    /// Departments in DingTalk (root excluded).
    pub dingtalk_departments: usize,
    /// Users in DingTalk.
    pub dingtalk_users: usize,
    /// DingTalk API calls the snapshot took.
    pub dingtalk_calls: u64,
}

/// What reconcile would do, in the order it would do it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// The changes.
    pub items: Vec<PlanItem>,
    /// Whether deletions are held by the threshold.
    pub deletions_held: bool,
    /// Sizes of both sides.
    pub totals: Totals,
    /// DingTalk-side data reconcile needs to create DingTalk-only entities in OA.
    #[serde(skip)]
    unmapped: Vec<Unmapped>,
    /// DingTalk users to create in OA.
    #[serde(skip)]
    new_users: Vec<User>,
    /// The merged entities reconcile writes to OA, by kind and id (assignments unused).
    #[serde(skip)]
    oa_writes: Snapshot,
}

/// How to plan; the winner, field authority and deletion threshold come from the context's
/// [`crate::policy::Policy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanOptions {
    /// DingTalk calls in flight while reading.
    pub concurrency: usize,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self { concurrency: 16 }
    }
}

impl Plan {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The items aimed at one side.
    pub fn items_for(&self, target: Target) -> impl Iterator<Item = &PlanItem> {
        self.items.iter().filter(move |i| i.target == target)
    }

    /// The plan as JSON (`dingsync plan --json`).
    pub fn to_json(&self) -> serde_json::Value {
        // Plain data with string keys: serializing cannot fail.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}
