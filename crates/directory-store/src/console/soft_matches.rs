//! Ambiguous soft matches an import left out, kept until an operator decides each one on the
//! console's attention page ("link to this one" / "create new").
//!
//! The import does not guess (see the sync engine's `import::link`), so without this table
//! those people would only appear in one import report and then be forgotten. Each import
//! replaces the waiting list with what it found: a match it no longer finds ambiguous (OA fixed
//! the duplicate, or an operator linked it) stops waiting by itself.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{Sql, Store};
use crate::error::StoreError;

/// One ambiguous match as an import found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSoftMatch {
    /// The DingTalk userid left out.
    pub ding_userid: String,
    /// Their name in DingTalk.
    pub ding_name: String,
    /// The key that matched more than once (`mobile`, `job_number`, `email`), or `None` when
    /// the userid itself is an OA user linked to someone else.
    pub key: Option<String>,
    /// The OA user ids involved.
    pub candidates: Vec<String>,
}

/// One stored ambiguous match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoftMatchRecord {
    pub id: i64,
    pub found: NewSoftMatch,
    /// When the last import found it (Unix ms).
    pub seen_at_ms: i64,
    /// `link:<oa id>` or `create`, once decided.
    pub decision: Option<String>,
    pub decided_by: Option<String>,
}

const COLS: &str =
    "id, ding_userid, ding_name, match_key, candidates_json, seen_at_ms, decision, decided_by";

fn from_row(row: &AnyRow) -> Result<SoftMatchRecord, StoreError> {
    let candidates: String = row.try_get("candidates_json")?;
    Ok(SoftMatchRecord {
        id: row.try_get("id")?,
        found: NewSoftMatch {
            ding_userid: row.try_get("ding_userid")?,
            ding_name: row.try_get("ding_name")?,
            key: row.try_get("match_key")?,
            candidates: serde_json::from_str(&candidates)?,
        },
        seen_at_ms: row.try_get("seen_at_ms")?,
        decision: row.try_get("decision")?,
        decided_by: row.try_get("decided_by")?,
    })
}

impl Store {
    /// Replaces this org's undecided matches with those its import just found (in one
    /// transaction).
    pub async fn soft_matches_replace(
        &self,
        found: &[NewSoftMatch],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_queue().await?;
        Sql::new("DELETE FROM soft_matches WHERE decision IS NULL AND org = ")
            .bind(&*self.org)
            .query()
            .execute(&mut *tx)
            .await?;
        for m in found {
            Sql::new(
                "INSERT INTO soft_matches (org, ding_userid, ding_name, match_key, \
                 candidates_json, seen_at_ms) VALUES (",
            )
            .bind(&*self.org)
            .push(", ")
            .bind(m.ding_userid.as_str())
            .push(", ")
            .bind(m.ding_name.as_str())
            .push(", ")
            .bind(m.key.clone())
            .push(", ")
            .bind(serde_json::to_string(&m.candidates)?)
            .push(", ")
            .bind(now_ms)
            .push(
                ") ON CONFLICT (org, ding_userid) DO UPDATE SET ding_name = excluded.ding_name, \
                 match_key = excluded.match_key, candidates_json = excluded.candidates_json, \
                 seen_at_ms = excluded.seen_at_ms, decision = NULL, decided_by = NULL, \
                 decided_at_ms = NULL",
            )
            .query()
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Undecided matches, oldest first, at most `limit`.
    pub async fn soft_matches_waiting(
        &self,
        limit: u32,
    ) -> Result<Vec<SoftMatchRecord>, StoreError> {
        let rows = Sql::new(&format!(
            "SELECT {COLS} FROM soft_matches WHERE decision IS NULL ORDER BY id LIMIT "
        ))
        .bind(i64::from(limit.max(1)))
        .query()
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// How many matches wait for a decision.
    pub async fn soft_matches_waiting_count(&self) -> Result<i64, StoreError> {
        let row = Sql::new("SELECT COUNT(*) AS n FROM soft_matches WHERE decision IS NULL")
            .query()
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// One match.
    pub async fn soft_match_get(&self, id: i64) -> Result<Option<SoftMatchRecord>, StoreError> {
        let row = Sql::new(&format!("SELECT {COLS} FROM soft_matches WHERE id = "))
            .bind(id)
            .query()
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Records the decision on a waiting match; `false` when it was not waiting.
    pub async fn soft_match_decide(
        &self,
        id: i64,
        decision: &str,
        by: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = Sql::new("UPDATE soft_matches SET decision = ")
            .bind(decision)
            .push(", decided_by = ")
            .bind(by)
            .push(", decided_at_ms = ")
            .bind(now_ms)
            .push(" WHERE decision IS NULL AND id = ")
            .bind(id)
            .query()
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
