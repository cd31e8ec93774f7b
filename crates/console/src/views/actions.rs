//! Operator actions: the closed set of things the console (or a script on the admin API) may
//! ask the service to do. One enum, one dispatch (`AdminBackend::perform`), so every action
//! goes through the same role check, CSRF check and audit record.

use serde::{Deserialize, Serialize};

use super::common::ObjectKind;
use crate::auth::Role;

/// The signed-in person performing an action; the backend writes `name` to the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeletionDecision {
    Approve,
    Reject,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum OperatorAction {
    /// Push this object's OA state to DingTalk now.
    PushNow { kind: ObjectKind, id: String },
    /// Fetch this object from DingTalk now and merge it.
    Refetch { kind: ObjectKind, id: String },
    /// Decide one held deletion (`entry`), or every deletion of the hold when `entry` is `None`.
    DecideDeletion {
        hold: String,
        entry: Option<String>,
        decision: DeletionDecision,
    },
    /// Keep the merge's result for a recorded conflict.
    AcceptConflict { conflict: String },
    /// Apply the side's value the merge did not choose.
    ApplyOtherSide { conflict: String },
    /// Link an ambiguous soft match to this OA user.
    LinkSoftMatch { item: String, oa_id: String },
    /// Create a new OA user for the DingTalk user instead of linking.
    CreateFromSoftMatch { item: String },
    /// Retry a dead letter (after its cause was fixed); its blocked entries follow.
    RetryDeadLetter { dead_letter: String },
    /// Drop a dead letter; its blocked entries are released.
    DropDeadLetter { dead_letter: String },
    /// Apply the plan: every entry, or only `entries`. Deletions over the threshold need
    /// `confirm_deletions`, like `reconcile --yes`.
    ApplyPlan {
        entries: Option<Vec<String>>,
        confirm_deletions: bool,
    },
    /// Compute the plan again now, in the background (the plan page shows the last one
    /// computed, with its age, until the new one is ready).
    ComputePlan,
    /// Start a full import now.
    StartImport,
    /// Start a reconcile now: plan both sides and apply the plan, deletions over the
    /// threshold excepted (those stay held, as without `reconcile --yes`).
    StartReconcile,
    /// Approve the changed `[mapping]`/`[scope]` with this fingerprint: apply the plan it
    /// implies (held deletions included, like `reconcile --yes`) and record it as approved,
    /// so the held workers go on.
    ApproveMappingChange { fingerprint: String },
}

impl OperatorAction {
    /// A short description for audit records and messages.
    pub fn describe(&self) -> String {
        match self {
            OperatorAction::PushNow { kind, id } => format!("push {} {id} now", kind.label()),
            OperatorAction::Refetch { kind, id } => format!("re-fetch {} {id}", kind.label()),
            OperatorAction::DecideDeletion {
                hold,
                entry,
                decision,
            } => {
                let verb = match decision {
                    DeletionDecision::Approve => "approve",
                    DeletionDecision::Reject => "reject",
                };
                match entry {
                    Some(entry) => format!("{verb} held deletion {entry} of hold {hold}"),
                    None => format!("{verb} every deletion of hold {hold}"),
                }
            }
            OperatorAction::AcceptConflict { conflict } => format!("accept conflict {conflict}"),
            OperatorAction::ApplyOtherSide { conflict } => {
                format!("apply the other side of conflict {conflict}")
            }
            OperatorAction::LinkSoftMatch { item, oa_id } => {
                format!("link soft match {item} to {oa_id}")
            }
            OperatorAction::CreateFromSoftMatch { item } => {
                format!("create a new user for soft match {item}")
            }
            OperatorAction::RetryDeadLetter { dead_letter } => {
                format!("retry dead letter {dead_letter}")
            }
            OperatorAction::DropDeadLetter { dead_letter } => {
                format!("drop dead letter {dead_letter}")
            }
            OperatorAction::ApplyPlan { entries: None, .. } => "apply the whole plan".to_owned(),
            OperatorAction::ApplyPlan {
                entries: Some(entries),
                ..
            } => {
                format!("apply {} plan entries", entries.len())
            }
            OperatorAction::ComputePlan => "compute the plan".to_owned(),
            OperatorAction::StartImport => "start an import".to_owned(),
            OperatorAction::StartReconcile => "start a reconcile".to_owned(),
            OperatorAction::ApproveMappingChange { fingerprint } => {
                let short = fingerprint.get(..12).unwrap_or(fingerprint);
                format!("approve the mapping change {short}")
            }
        }
    }
}

/// What the backend reports back, shown to the operator as a notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionOutcome {
    pub message: String,
}
