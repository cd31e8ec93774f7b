//! The run history behind `/console/runs`: one row per import, reconcile or catch-up, opened
//! when it starts (so a run in progress shows) and closed with an honest outcome, a summary
//! (counts per side, DingTalk calls) and its log lines, both JSON the service chooses.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{Sql, Store};
use crate::error::StoreError;

/// What starting a run records.
#[derive(Debug, Clone)]
pub struct RunStart<'a> {
    /// `import`, `reconcile` or `catch_up`.
    pub kind: &'a str,
    /// `schedule`, `cli` or `console:NAME`.
    pub started_by: &'a str,
    pub started_at_ms: i64,
}

/// One run as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub id: i64,
    pub kind: String,
    pub started_by: String,
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    /// `ok`, `partial` or `failed`; `None` while running.
    pub outcome: Option<String>,
    pub failure: Option<String>,
    pub summary_json: String,
    pub log_json: String,
}

const RUN_COLS: &str = "id, kind, started_by, started_at_ms, finished_at_ms, outcome, failure, \
                        summary_json, log_json";

fn run_from_row(row: &AnyRow) -> Result<RunRecord, StoreError> {
    Ok(RunRecord {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        started_by: row.try_get("started_by")?,
        started_at_ms: row.try_get("started_at_ms")?,
        finished_at_ms: row.try_get("finished_at_ms")?,
        outcome: row.try_get("outcome")?,
        failure: row.try_get("failure")?,
        summary_json: row.try_get("summary_json")?,
        log_json: row.try_get("log_json")?,
    })
}

impl Store {
    /// Opens a run of this handle's org; returns its id.
    pub async fn run_start(&self, start: &RunStart<'_>) -> Result<i64, StoreError> {
        let row = Sql::new(
            "INSERT INTO runs (org, kind, started_by, started_at_ms, summary_json, log_json) \
             VALUES (",
        )
        .bind(&*self.org)
        .push(", ")
        .bind(start.kind)
        .push(", ")
        .bind(start.started_by)
        .push(", ")
        .bind(start.started_at_ms)
        .push(", '{}', '[]') RETURNING id")
        .query()
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Closes a run with its outcome, what failed, its summary and its log.
    pub async fn run_finish(
        &self,
        id: i64,
        finished_at_ms: i64,
        outcome: &str,
        failure: Option<&str>,
        summary_json: &str,
        log_json: &str,
    ) -> Result<(), StoreError> {
        Sql::new("UPDATE runs SET finished_at_ms = ")
            .bind(finished_at_ms)
            .push(", outcome = ")
            .bind(outcome)
            .push(", failure = ")
            .bind(failure)
            .push(", summary_json = ")
            .bind(summary_json)
            .push(", log_json = ")
            .bind(log_json)
            .push(" WHERE id = ")
            .bind(id)
            .query()
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Replaces a running run's summary (its progress so far); a finished run is left as it
    /// is, so a late progress write cannot overwrite the final summary.
    pub async fn run_progress(&self, id: i64, summary_json: &str) -> Result<(), StoreError> {
        Sql::new("UPDATE runs SET summary_json = ")
            .bind(summary_json)
            .push(" WHERE finished_at_ms IS NULL AND id = ")
            .bind(id)
            .query()
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The newest runs first, without their logs (`log_json` is empty: a list shows no log
    /// lines, and an import's log can be long; [`Store::run_get`] has it).
    pub async fn runs_recent(&self, limit: u32) -> Result<Vec<RunRecord>, StoreError> {
        let cols = RUN_COLS.replace("log_json", "'' AS log_json");
        let rows = Sql::new(&format!("SELECT {cols} FROM runs ORDER BY id DESC LIMIT "))
            .bind(i64::from(limit.max(1)))
            .query()
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// One run.
    pub async fn run_get(&self, id: i64) -> Result<Option<RunRecord>, StoreError> {
        let row = Sql::new(&format!("SELECT {RUN_COLS} FROM runs WHERE id = "))
            .bind(id)
            .query()
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(run_from_row).transpose()
    }
}
