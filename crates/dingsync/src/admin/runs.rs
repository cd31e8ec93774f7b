//! `/console/runs`: the run history from the store's `runs` table. Runs the console starts
//! are recorded here (opened when they start, so a run in progress shows, and closed with an
//! honest outcome: `partial` when some part failed, with what failed). While a run works, its
//! progress is its stored summary (`Summary::progress`), written at most twice a second, so
//! every instance's runs page and the page's polling script see the same figures.

use console::BackendError;
use console::views::{
    LogLine, Outcome, Progress, RunDetail, RunKind, RunList, RunSummary, Side, SideCounts,
};
use std::sync::{Arc, Mutex, PoisonError};

use directory_store::{RunRecord, RunStart, Store};
use serde::{Deserialize, Serialize};
use sync_engine::import::{ImportPhase, ImportProgress};

use super::time::format_ms;
use super::{Admin, internal};
use crate::clock::SharedClock;

/// What a run stores as its summary: its progress while it works, its counts once done.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    pub counts: Vec<SideCounts>,
    pub dingtalk_calls: u64,
    pub throttles: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
}

impl Summary {
    /// An import's counts (OA's side: it writes the directory), calls and throttles.
    pub fn of_import(report: &sync_engine::import::ImportReport) -> Self {
        Summary {
            counts: vec![SideCounts {
                side: Side::Oa,
                created: (report.users.created + report.departments.created) as u64,
                changed: (report.users.updated + report.departments.updated) as u64,
                deleted: (report.deletions.users_left.len()
                    + report.deletions.departments_deleted.len()) as u64,
                held: report.deletions.held as u64,
                failed: report.failures.len() as u64,
            }],
            dingtalk_calls: report.calls.total_made,
            throttles: report.calls.throttled,
            progress: None,
        }
    }
}

/// A reconcile's counts per side: what the plan had for it, and what failed.
pub fn plan_counts(
    plan: &sync_engine::plan::Plan,
    report: &sync_engine::plan::ReconcileReport,
) -> Vec<SideCounts> {
    use sync_engine::plan::{Action, Target};
    [(Target::Oa, Side::Oa), (Target::DingTalk, Side::DingTalk)]
        .into_iter()
        .map(|(target, side)| {
            let items: Vec<_> = plan.items_for(target).collect();
            let count =
                |a: Action| items.iter().filter(|i| i.action == a && !i.held).count() as u64;
            let failed = report
                .failed
                .iter()
                .filter(|f| items.iter().any(|i| f.contains(&i.name)))
                .count() as u64;
            SideCounts {
                side,
                created: count(Action::Create),
                changed: count(Action::Update),
                deleted: count(Action::Delete),
                held: items.iter().filter(|i| i.held).count() as u64,
                failed,
            }
        })
        .collect()
}

/// Opens a run the CLI started (`dingsync import` / `reconcile`), so the runs page lists it
/// beside the console's. Recording is best effort: a run history that cannot be written is
/// warned about, never a reason to refuse the run itself.
pub async fn start_cli(store: &Store, kind: &str) -> Option<Recorder> {
    match Recorder::start_in(store, crate::clock::system_clock(), kind, "cli").await {
        Ok(run) => Some(run),
        Err(e) => {
            tracing::warn!(error = %e, kind, "could not record the run in the run history");
            None
        }
    }
}

/// Closes a CLI run (see [`start_cli`]), warning when it cannot be recorded.
pub async fn finish_cli(
    run: Option<Recorder>,
    summary: &Summary,
    failures: &[String],
    fatal: Option<String>,
) {
    let Some(mut run) = run else { return };
    for f in failures {
        run.log("error", f.clone());
    }
    if let Some(why) = &fatal {
        run.log("error", why.clone());
    }
    if let Err(e) = run.finish(summary, failures, fatal).await {
        tracing::warn!(error = %e, "could not record the run's outcome in the run history");
    }
}

/// How often a run's progress is written to the store.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

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
        progress: outcome.is_none().then(|| {
            parsed.progress.clone().unwrap_or_else(|| Progress {
                done: 0,
                total: None,
                stage: "starting".to_owned(),
            })
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

/// A run being recorded: by the console (runs it starts) and by the CLI's `import` and
/// `reconcile`, so the runs page shows every run, whoever started it.
pub struct Recorder {
    id: i64,
    log: Vec<LogLine>,
    store: Store,
    clock: SharedClock,
}

impl Recorder {
    pub async fn start(admin: &Admin, kind: &str, started_by: &str) -> Result<Self, BackendError> {
        Self::start_in(&admin.store, admin.clock.clone(), kind, started_by).await
    }

    /// Opens a run in `store` (what the CLI uses: it has no console).
    pub async fn start_in(
        store: &Store,
        clock: SharedClock,
        kind: &str,
        started_by: &str,
    ) -> Result<Self, BackendError> {
        let id = store
            .run_start(&RunStart {
                kind,
                started_by,
                started_at_ms: clock.now_ms(),
            })
            .await
            .map_err(internal)?;
        Ok(Self {
            id,
            log: Vec::new(),
            store: store.clone(),
            clock,
        })
    }

    pub fn id(&self) -> i64 {
        self.id
    }

    /// Keeps `latest`'s progress in the store until the returned task is aborted.
    pub fn follow(&self, latest: LatestProgress) -> tokio::task::JoinHandle<()> {
        let (store, id) = (self.store.clone(), self.id);
        tokio::spawn(async move {
            let mut written: Option<Progress> = None;
            loop {
                tokio::time::sleep(PROGRESS_EVERY).await;
                let now = latest.get();
                if now.is_none() || now == written {
                    continue;
                }
                let summary = Summary {
                    progress: now.clone(),
                    ..Summary::default()
                };
                let Ok(json) = serde_json::to_string(&summary) else {
                    continue;
                };
                if let Err(e) = store.run_progress(id, &json).await {
                    tracing::warn!(run = id, error = %e, "could not record a run's progress");
                }
                written = now;
            }
        })
    }

    pub fn log(&mut self, level: &str, message: impl Into<String>) {
        self.log.push(LogLine {
            at: format_ms(self.clock.now_ms()),
            level: level.to_owned(),
            message: message.into(),
        });
    }

    /// Closes the run: `ok` without failures, `partial` with some, `failed` when `fatal`.
    pub async fn finish(
        self,
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
        self.store
            .run_finish(
                self.id,
                self.clock.now_ms(),
                outcome,
                failure.as_deref(),
                &summary,
                &log,
            )
            .await
            .map_err(internal)
    }
}

/// A run's latest progress, set by the work and read by [`Recorder::follow`]'s task.
#[derive(Debug, Clone, Default)]
pub struct LatestProgress(Arc<Mutex<Option<Progress>>>);

impl LatestProgress {
    pub fn set(&self, stage: &str, done: u64, total: Option<u64>) {
        let progress = Progress {
            done,
            total,
            stage: stage.to_owned(),
        };
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(progress);
    }

    fn get(&self) -> Option<Progress> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The import reports its phases here (quickly: it only replaces the latest value).
impl ImportProgress for LatestProgress {
    fn report(&self, p: &sync_engine::import::Progress) {
        let (users_total, written) = (p.users_total as u64, p.users_written as u64);
        match p.phase {
            ImportPhase::Crawl => self.set(
                "reading DingTalk (users listed)",
                p.users_listed as u64,
                None,
            ),
            ImportPhase::Link => self.set("linking departments", p.departments as u64, None),
            ImportPhase::Users => self.set("writing users", written, Some(users_total)),
            ImportPhase::Roles => self.set("writing roles", users_total, Some(users_total)),
            ImportPhase::Deletions => {
                self.set("mirroring deletions", users_total, Some(users_total))
            }
            ImportPhase::Done => self.set("finishing", users_total, Some(users_total)),
        }
    }
}
