//! Counts the console's department tree shows beside each department.

use sqlx::Row;

use crate::db::{Sql, Store};
use crate::error::StoreError;

impl Store {
    /// Direct members per department id (departments without members are absent).
    pub async fn department_member_counts(&self) -> Result<Vec<(i64, i64)>, StoreError> {
        let rows = Sql::new("SELECT dept_id, COUNT(*) AS n FROM user_departments GROUP BY dept_id")
            .query()
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("dept_id")?, row.try_get("n")?)))
            .collect()
    }
}
