//! Console users: a name, a role label and the argon2 PHC string the console made. Passwords
//! are hashed by the console crate before they get here, so no plain password is ever stored.

use sqlx::Row;

use crate::db::{Sql, Store};
use crate::error::StoreError;

/// One console user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleUserRow {
    /// The sign-in name.
    pub name: String,
    /// `viewer` or `operator` (the console parses it).
    pub role: String,
    /// The argon2 PHC string.
    pub password_phc: String,
}

impl Store {
    /// Adds a console user, or replaces the role and password of an existing one.
    pub async fn console_user_put(
        &self,
        name: &str,
        role: &str,
        password_phc: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        Sql::new(
            "INSERT INTO console_users (name, role, password_phc, created_at_ms, updated_at_ms) \
             VALUES (",
        )
        .bind(name)
        .push(", ")
        .bind(role)
        .push(", ")
        .bind(password_phc)
        .push(", ")
        .bind(now_ms)
        .push(", ")
        .bind(now_ms)
        .push(
            ") ON CONFLICT (name) DO UPDATE SET role = excluded.role, \
             password_phc = excluded.password_phc, updated_at_ms = excluded.updated_at_ms",
        )
        .query()
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The console user with this exact name.
    pub async fn console_user_get(&self, name: &str) -> Result<Option<ConsoleUserRow>, StoreError> {
        let row = Sql::new("SELECT name, role, password_phc FROM console_users WHERE name = ")
            .bind(name)
            .query()
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(ConsoleUserRow {
                name: r.try_get("name")?,
                role: r.try_get("role")?,
                password_phc: r.try_get("password_phc")?,
            })
        })
        .transpose()
    }
}
