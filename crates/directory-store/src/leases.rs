//! Named leases in the database, so that among several instances only one imports or
//! reconciles at a time. A lease is held until a time the holder chose; a holder that dies
//! simply lets it run out. Names are per organization (`Store::scoped`).

use sqlx::Row;

use crate::db::{Sql, Store};
use crate::error::StoreError;

impl Store {
    /// Takes or renews the lease `name` for `holder` until `now_ms + ttl_ms`; false if another
    /// holder's lease is still running. Used so that only one instance imports or reconciles.
    pub async fn lease_acquire(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let row = Sql::new("INSERT INTO leases (name, holder, until_ms) VALUES (")
            .bind(self.scoped(name).as_ref())
            .push(", ")
            .bind(holder)
            .push(", ")
            .bind(now_ms.saturating_add(ttl_ms))
            .push(
                ") ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                 until_ms = excluded.until_ms WHERE leases.holder = excluded.holder \
                 OR leases.until_ms <= ",
            )
            .bind(now_ms)
            .push(" RETURNING holder")
            .query()
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// The current holder of lease `name` and when it runs out, if anyone holds it (for an
    /// operator's message, and for taking over from a holder known to be dead).
    pub async fn lease_holder(&self, name: &str) -> Result<Option<(String, i64)>, StoreError> {
        let row = Sql::new("SELECT holder, until_ms FROM leases WHERE name = ")
            .bind(self.scoped(name).as_ref())
            .query()
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(Some((r.try_get("holder")?, r.try_get("until_ms")?))),
            None => Ok(None),
        }
    }

    /// Gives up a lease held by `holder` (no-op otherwise).
    pub async fn lease_release(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        Sql::new("DELETE FROM leases WHERE name = ")
            .bind(self.scoped(name).as_ref())
            .push(" AND holder = ")
            .bind(holder)
            .query()
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
