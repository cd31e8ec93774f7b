//! `/console/runs`: the run history from the store's `runs` table. Runs the console starts
//! are recorded here (opened when they start, so a run in progress shows, and closed with an
//! honest outcome: `partial` when some part failed, with what failed).

use console::BackendError;
use console::views::{
    LogLine, Outcome, Progress, RunDetail, RunKind, RunList, RunSummary, SideCounts,
};
use directory_store::{RunRecord, RunStart};
use serde::{Deserialize, Serialize};

use super::time::format_ms;
use super::{Admin, internal};

/// What a finished run stores as its summary.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    pub counts: Vec<SideCounts>,
    pub dingtalk_calls: u64,
    pub throttles: u64,
}

fn kind(text: &str) -> RunKind {
    match text {
        "import" => RunKind::Import,
        "catch_up" => RunKind::CatchUp,
        _ => RunKind::Reconcile,
    }
}

fn summary(record: &RunRecord) -> RunSummary {
    let parsed: Summary = serde_json::from_str(&record.summary_json).unwrap_or_default();
    let outcome = record.outcome.as_deref().map(|o| match o {
        "ok" => Outcome::Ok,
        "partial" => Outcome::Partial,
        _ => Outcome::Failed,
    });
    RunSummary {
        id: record.id.to_string(),
        kind: kind(&record.kind),
        started_at: format_ms(record.started_at_ms),
        finished_at: record.finished_at_ms.map(format_ms),
        duration_ms: record
            .finished_at_ms
            .map(|end| (end - record.started_at_ms).max(0) as u64),
        outcome,
        failure: record.failure.clone(),
        counts: parsed.counts,
        dingtalk_calls: parsed.dingtalk_calls,
        throttles: parsed.throttles,
        progress: outcome.is_none().then(|| Progress {
            done: 0,
            total: None,
            stage: "running".to_owned(),
        }),
        started_by: record.started_by.clone(),
    }
}

pub async fn recent(admin: &Admin, limit: u32) -> Result<Vec<RunSummary>, BackendError> {
    let records = admin.store.runs_recent(limit).await.map_err(internal)?;
    Ok(records.iter().map(summary).collect())
}

pub async fn list(admin: &Admin) -> Result<RunList, BackendError> {
    Ok(RunList {
        runs: recent(admin, 100).await?,
    })
}

pub async fn detail(admin: &Admin, id: &str) -> Result<RunDetail, BackendError> {
    let not_found = || BackendError::NotFound {
        what: "run",
        id: id.to_owned(),
    };
    let number: i64 = id.parse().map_err(|_| not_found())?;
    let record = admin
        .store
        .run_get(number)
        .await
        .map_err(internal)?
        .ok_or_else(not_found)?;
    let log: Vec<LogLine> = serde_json::from_str(&record.log_json).unwrap_or_default();
    Ok(RunDetail {
        summary: summary(&record),
        log,
    })
}

/// A run being recorded.
pub struct Recorder {
    id: i64,
    log: Vec<LogLine>,
}

impl Recorder {
    pub async fn start(admin: &Admin, kind: &str, started_by: &str) -> Result<Self, BackendError> {
        let id = admin
            .store
            .run_start(&RunStart {
                kind,
                started_by,
                started_at_ms: admin.now_ms(),
            })
            .await
            .map_err(internal)?;
        Ok(Self {
            id,
            log: Vec::new(),
        })
    }

    pub fn id(&self) -> i64 {
        self.id
    }

    pub fn log(&mut self, admin: &Admin, level: &str, message: impl Into<String>) {
        self.log.push(LogLine {
            at: format_ms(admin.now_ms()),
            level: level.to_owned(),
            message: message.into(),
        });
    }

    /// Closes the run: `ok` without failures, `partial` with some, `failed` when `fatal`.
    pub async fn finish(
        self,
        admin: &Admin,
        summary: &Summary,
        failures: &[String],
        fatal: Option<String>,
    ) -> Result<(), BackendError> {
        let (outcome, failure) = match (&fatal, failures.is_empty()) {
            (Some(why), _) => ("failed", Some(why.clone())),
            (None, true) => ("ok", None),
            (None, false) => (
                "partial",
                Some(format!(
                    "{} failed: {}",
                    failures.len(),
                    failures.join("; ")
                )),
            ),
        };
        let log = serde_json::to_string(&self.log).map_err(internal)?;
        let summary = serde_json::to_string(summary).map_err(internal)?;
        admin
            .store
            .run_finish(
                self.id,
                admin.now_ms(),
                outcome,
                failure.as_deref(),
                &summary,
                &log,
            )
            .await
            .map_err(internal)
    }
}
