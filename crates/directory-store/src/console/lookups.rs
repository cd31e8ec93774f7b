//! Small reads the console's pages need at 100,000 people without scanning: users by exact
//! email (the `users_email` index), the newest event the inbox received (the callback card's
//! "last event"), and the size of the history tables (what retention keeps; `bench console`
//! reports it after a simulated month).

use sqlx::Row;

use crate::db::{Sql, Store};
use crate::error::StoreError;
use crate::url::Backend;

/// The tables whose rows are history the console shows and retention prunes.
pub const HISTORY_TABLES: [&str; 6] = [
    "audit",
    "outbox",
    "runs",
    "conflicts",
    "operator_actions",
    "held_deletions",
];

impl Store {
    /// The ids of users whose email is exactly `email` (as stored, or lower-cased), at most
    /// `limit`.
    pub async fn user_ids_by_email(
        &self,
        email: &str,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let rows = Sql::new("SELECT id FROM users WHERE email = ")
            .bind(email)
            .push(" OR email = ")
            .bind(email.to_lowercase())
            .push(" ORDER BY id LIMIT ")
            .bind(i64::from(limit.max(1)))
            .query()
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("id")?))
            .collect()
    }

    /// When the newest inbox entry was received (Unix ms), or `None` for an empty inbox.
    pub async fn inbox_newest_received_ms(&self) -> Result<Option<i64>, StoreError> {
        let row = Sql::new("SELECT MAX(received_at_ms) AS newest FROM inbox")
            .query()
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("newest")?)
    }

    /// Row counts of [`HISTORY_TABLES`], in that order.
    pub async fn history_row_counts(&self) -> Result<Vec<(&'static str, i64)>, StoreError> {
        let mut counts = Vec::with_capacity(HISTORY_TABLES.len());
        for table in HISTORY_TABLES {
            let row = Sql::new(&format!("SELECT COUNT(*) AS n FROM {table}"))
                .query()
                .fetch_one(&self.pool)
                .await?;
            counts.push((table, row.try_get("n")?));
        }
        Ok(counts)
    }

    /// The whole database's size in bytes (SQLite: pages in use times page size, after a
    /// checkpoint of the write-ahead log; PostgreSQL: `pg_database_size`).
    pub async fn database_bytes(&self) -> Result<i64, StoreError> {
        match self.backend() {
            Backend::Sqlite => {
                Sql::new("PRAGMA wal_checkpoint(TRUNCATE)")
                    .query()
                    .execute(&self.pool)
                    .await?;
                let row = Sql::new(
                    "SELECT (SELECT page_count FROM pragma_page_count()) * \
                     (SELECT page_size FROM pragma_page_size()) AS bytes",
                )
                .query()
                .fetch_one(&self.pool)
                .await?;
                Ok(row.try_get("bytes")?)
            }
            Backend::Postgres => {
                let row = Sql::new("SELECT pg_database_size(current_database())::BIGINT AS bytes")
                    .query()
                    .fetch_one(&self.pool)
                    .await?;
                Ok(row.try_get("bytes")?)
            }
        }
    }
}
