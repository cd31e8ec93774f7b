//! Counts the console's directory shows: members beside each department, holders beside
//! each role.

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

    /// Holders per role id (roles nobody holds are absent).
    pub async fn role_holder_counts(&self) -> Result<Vec<(i64, i64)>, StoreError> {
        let rows = Sql::new("SELECT role_id, COUNT(*) AS n FROM user_roles GROUP BY role_id")
            .query()
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("role_id")?, row.try_get("n")?)))
            .collect()
    }
}
