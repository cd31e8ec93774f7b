//! `/console/plan`: what a reconcile would do now, on both sides, as a field diff.

use serde::{Deserialize, Serialize};

use super::common::{ObjectKind, Side};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanView {
    pub generated_at: String,
    /// Grouped by side, then by entity kind.
    pub groups: Vec<PlanGroup>,
    /// Deletions above this count need explicit confirmation (as `reconcile --yes`).
    pub deletion_threshold: u64,
}

impl PlanView {
    pub fn deletions(&self) -> u64 {
        let deletes = self.groups.iter().flat_map(|group| &group.entries);
        deletes.filter(|entry| entry.op == PlanOp::Delete).count() as u64
    }

    pub fn over_threshold(&self) -> bool {
        self.deletions() > self.deletion_threshold
    }

    pub fn is_empty(&self) -> bool {
        self.groups.iter().all(|group| group.entries.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanGroup {
    /// The side the entries would change.
    pub side: Side,
    pub kind: ObjectKind,
    pub entries: Vec<PlanEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanOp {
    Create,
    Update,
    Delete,
}

impl PlanOp {
    pub fn label(&self) -> &'static str {
        match self {
            PlanOp::Create => "create",
            PlanOp::Update => "update",
            PlanOp::Delete => "delete",
        }
    }

    pub fn tone(&self) -> &'static str {
        match self {
            PlanOp::Create => "ok",
            PlanOp::Update => "info",
            PlanOp::Delete => "bad",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanEntry {
    /// Stable id of the entry, as sent back in a selection.
    pub id: String,
    pub object_id: String,
    pub name: String,
    pub op: PlanOp,
    pub changes: Vec<FieldChange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
}
