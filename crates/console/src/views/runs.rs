//! `/console/runs`: imports, reconciles and catch-ups with honest outcomes and their logs.

use serde::{Deserialize, Serialize};

use super::common::{Outcome, Side};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunList {
    /// Newest first.
    pub runs: Vec<RunSummary>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    Import,
    Reconcile,
    CatchUp,
}

impl RunKind {
    pub fn label(&self) -> &'static str {
        match self {
            RunKind::Import => "import",
            RunKind::Reconcile => "reconcile",
            RunKind::CatchUp => "catch-up",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub id: String,
    pub kind: RunKind,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub duration_ms: Option<u64>,
    /// `None` while the run is in progress.
    pub outcome: Option<Outcome>,
    /// What failed, in plain words, when the outcome is partial or failed.
    pub failure: Option<String>,
    /// One row per side.
    pub counts: Vec<SideCounts>,
    pub dingtalk_calls: u64,
    pub throttles: u64,
    /// Set while the run is in progress.
    pub progress: Option<Progress>,
    /// Who started it (`schedule`, `cli`, `console:NAME`).
    pub started_by: String,
}

impl RunSummary {
    pub fn outcome_label(&self) -> &'static str {
        self.outcome.map_or("running", |outcome| outcome.label())
    }

    pub fn outcome_tone(&self) -> &'static str {
        self.outcome.map_or("info", |outcome| outcome.tone())
    }

    /// "1 h 2 min", "3 min 4 s", "850 ms", or "—" while running.
    pub fn duration_text(&self) -> String {
        let Some(ms) = self.duration_ms else {
            return "—".to_owned();
        };
        let secs = ms / 1000;
        match secs {
            0 => format!("{ms} ms"),
            1..=59 => format!("{secs} s"),
            60..=3599 => format!("{} min {} s", secs / 60, secs % 60),
            _ => format!("{} h {} min", secs / 3600, (secs % 3600) / 60),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideCounts {
    pub side: Side,
    pub created: u64,
    pub changed: u64,
    pub deleted: u64,
    pub held: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub done: u64,
    /// `None` while the total is not known yet (a crawl still discovering pages).
    pub total: Option<u64>,
    /// What it is doing now (`crawling departments`, `writing users`).
    pub stage: String,
}

impl Progress {
    pub fn percent(&self) -> u64 {
        match self.total {
            Some(total) if total > 0 => (self.done.min(total) * 100) / total,
            _ => 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunDetail {
    pub summary: RunSummary,
    pub log: Vec<LogLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub at: String,
    /// `info`, `warn` or `error`.
    pub level: String,
    pub message: String,
}
