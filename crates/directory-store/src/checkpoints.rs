//! Small named values the engine keeps between runs: the position of an interrupted import
//! (`import_checkpoints`, JSON chosen by the importer) and the key/value `sync_state` table
//! (cursors and markers). Both are a text under a name, upserted with the time of the write;
//! names are per organization (`Store::scoped`).

use sqlx::Row;

use crate::db::{Sql, Store};
use crate::error::StoreError;

/// A table of named text values: its name and its key and value columns.
#[derive(Debug, Clone, Copy)]
struct Named {
    table: &'static str,
    key: &'static str,
    value: &'static str,
}

const SYNC_STATE: Named = Named {
    table: "sync_state",
    key: "key",
    value: "value",
};

const CHECKPOINTS: Named = Named {
    table: "import_checkpoints",
    key: "name",
    value: "cursor_json",
};

impl Store {
    /// The value stored under `key` in `t`.
    async fn named_get(&self, t: Named, key: &str) -> Result<Option<String>, StoreError> {
        let row = Sql::new(&format!(
            "SELECT {} FROM {} WHERE {} = ",
            t.value, t.table, t.key
        ))
        .bind(self.scoped(key).as_ref())
        .query()
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get(t.value)).transpose()?)
    }

    /// Stores `value` under `key` in `t`, replacing what was there.
    async fn named_set(
        &self,
        t: Named,
        key: &str,
        value: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let Named {
            table,
            key: key_col,
            value: value_col,
        } = t;
        Sql::new(&format!(
            "INSERT INTO {table} ({key_col}, {value_col}, updated_at_ms) VALUES ("
        ))
        .bind(self.scoped(key).as_ref())
        .push(", ")
        .bind(value)
        .push(", ")
        .bind(now_ms)
        .push(&format!(
            ") ON CONFLICT ({key_col}) DO UPDATE SET {value_col} = excluded.{value_col}, \
             updated_at_ms = excluded.updated_at_ms"
        ))
        .query()
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A value of the `sync_state` table.
    pub async fn state_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.named_get(SYNC_STATE, key).await
    }

    /// Sets a value of the `sync_state` table.
    pub async fn state_set(&self, key: &str, value: &str, now_ms: i64) -> Result<(), StoreError> {
        self.named_set(SYNC_STATE, key, value, now_ms).await
    }

    /// The saved position of an interrupted import (JSON chosen by the importer).
    pub async fn checkpoint_get(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.named_get(CHECKPOINTS, name).await
    }

    /// Saves an import position.
    pub async fn checkpoint_set(
        &self,
        name: &str,
        cursor_json: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.named_set(CHECKPOINTS, name, cursor_json, now_ms).await
    }

    /// Forgets an import position (the import finished).
    pub async fn checkpoint_clear(&self, name: &str) -> Result<(), StoreError> {
        Sql::new("DELETE FROM import_checkpoints WHERE name = ")
            .bind(self.scoped(name).as_ref())
            .query()
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
