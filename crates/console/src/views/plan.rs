//! `/console/plan`: what a reconcile would do now, on both sides, as a field diff.

use serde::{Deserialize, Serialize};

use super::common::{ObjectKind, Side};

/// Which page of the plan to show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanQuery {
    /// Zero-based page of [`PlanView::page_rows`] entries.
    pub page: u32,
}

/// The plan the page shows. Computing a plan reads all of DingTalk (seconds to minutes at
/// 100,000 people), so the page shows the last plan computed, with its age, and computes a
/// new one in the background; `ready` is false until a first plan exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanView {
    /// When the plan shown was computed (empty before the first one).
    pub generated_at: String,
    /// Grouped by side, then by entity kind.
    pub groups: Vec<PlanGroup>,
    /// Deletions above this count need explicit confirmation (as `reconcile --yes`).
    pub deletion_threshold: u64,
    /// Whether a plan has been computed (`groups` is one); false while the first computes.
    #[serde(default = "ready_default")]
    pub ready: bool,
    /// Seconds since the plan shown was computed.
    #[serde(default)]
    pub age_secs: u64,
    /// How long computing the plan shown took, in milliseconds.
    #[serde(default)]
    pub took_ms: u64,
    /// A computation under way.
    #[serde(default)]
    pub computing: Option<PlanComputing>,
    /// Why the last computation failed, when it did (the plan shown, if any, is older).
    /// Absent from the JSON when nothing failed (an `error` key reads as a failed call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The page of entries `groups` holds, and entries per page (0: every entry).
    #[serde(default)]
    pub page: u32,
    #[serde(default)]
    pub page_rows: u32,
    /// Entries and deletions in the whole plan (all pages).
    #[serde(default)]
    pub entries_total: u64,
    #[serde(default)]
    pub deletions_total: u64,
}

fn ready_default() -> bool {
    true
}

/// A plan being computed in the background.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanComputing {
    pub started_at: String,
    pub elapsed_secs: u64,
    /// How long the previous computation took (an estimate of this one), when known.
    pub expected_secs: Option<u64>,
}

impl PlanComputing {
    /// Estimated progress in percent (the elapsed share of the previous computation's time,
    /// capped at 99 as the estimate can be short), when there is an estimate.
    pub fn percent(&self) -> Option<u64> {
        self.expected_secs
            .filter(|e| *e > 0)
            .map(|e| (self.elapsed_secs * 100 / e).min(99))
    }
}

impl PlanView {
    /// A page with no plan yet.
    pub fn not_ready(computing: Option<PlanComputing>, error: Option<String>) -> Self {
        Self {
            generated_at: String::new(),
            groups: Vec::new(),
            deletion_threshold: 0,
            ready: false,
            age_secs: 0,
            took_ms: 0,
            computing,
            error,
            page: 0,
            page_rows: 0,
            entries_total: 0,
            deletions_total: 0,
        }
    }

    /// How long computing the plan shown took, as "1.2 s".
    pub fn took(&self) -> String {
        format!("{:.1} s", self.took_ms as f64 / 1000.0)
    }

    /// Entries in the whole plan.
    pub fn entries(&self) -> u64 {
        self.entries_total
    }

    /// The 1-based numbers of the first and last entries this page shows.
    pub fn shown(&self) -> (u64, u64) {
        let first = u64::from(self.page) * u64::from(self.page_rows);
        let here: usize = self.groups.iter().map(|group| group.entries.len()).sum();
        (first + 1, first + here as u64)
    }

    /// Whether the plan has more entries than this page shows.
    pub fn paged(&self) -> bool {
        let (_, last) = self.shown();
        self.page > 0 || last < self.entries_total
    }

    /// The previous page's link.
    pub fn prev_href(&self) -> Option<String> {
        (self.page > 0).then(|| format!("/console/plan?page={}", self.page - 1))
    }

    /// The next page's link.
    pub fn next_href(&self) -> Option<String> {
        let (_, last) = self.shown();
        (last < self.entries_total).then(|| format!("/console/plan?page={}", self.page + 1))
    }

    /// Deletions in the whole plan.
    pub fn deletions(&self) -> u64 {
        self.deletions_total
    }

    pub fn over_threshold(&self) -> bool {
        self.deletions() > self.deletion_threshold
    }

    pub fn is_empty(&self) -> bool {
        self.entries_total == 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanGroup {
    /// The side the entries would change.
    pub side: Side,
    pub kind: ObjectKind,
    /// This page's entries of the group.
    pub entries: Vec<PlanEntry>,
    /// Entries of the group in the whole plan.
    #[serde(default)]
    pub total: u64,
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
