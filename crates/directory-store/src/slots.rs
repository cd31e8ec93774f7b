//! Rate slots: named counting semaphores whose permits stay busy for a while after release,
//! shared by every process that uses the same database.
//!
//! Why it exists: several service instances on one PostgreSQL database must share one rate
//! budget towards an outside API (DingTalk allows an app N calls per API per second, not N per
//! instance). The store knows nothing of DingTalk; it offers the mechanism: `capacity` rows per
//! name, each free when its `busy_until_ms` has passed.
//!
//! - [`Store::slot_take`] takes free slots (one or a batch) in **one statement** (`FOR UPDATE SKIP LOCKED` on
//!   PostgreSQL, so concurrent takers never wait on each other) and marks it busy until
//!   `now + hold` — if the holder dies without releasing, the slot frees itself after `hold`.
//!   When no slot is free it answers how long until the earliest cooling slot frees, so the
//!   caller sleeps exactly that long instead of polling.
//! - [`Store::slot_release`] marks the slot busy until `now + cooldown` (the answer-based window
//!   of the rate budget), but only if the caller still holds it.
//!
//! Where the slots live ([`Store::connect_rate_slots`]): on PostgreSQL in the database itself
//! (row locks, no store-wide lock). On SQLite in a **sidecar file** of their own beside the
//! database (`<file>-budget`): SQLite has one write lock per file, and with the slots in the
//! directory's file every slot taken or released queued behind the import's batch writes (and
//! they behind it) until the busy timeout — "database is locked" in `crash_anywhere` and the
//! 5,000-person demo. In a file of their own the slot writes are tiny transactions that wait only
//! for each other, every process on the host opening the same database opens the same sidecar,
//! and the directory's writes never wait for the budget. Losing the sidecar loses nothing: a
//! slot's state is at most one window plus one call old.
//!
//! "now" is the **database server's clock** (PostgreSQL `clock_timestamp()`, SQLite
//! `julianday('now')`), never the caller's: with several hosts, a skewed host clock would
//! otherwise free slots early and let more than `capacity` calls through in one window. The
//! waits handed back are differences on that one clock, so they mean the same on every host.
//! Times are rounded so that a slot is never considered free early: "now" is floored when
//! comparing and release stamps add one millisecond.

use std::time::Duration;

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{Store, StoreOptions};
use crate::error::StoreError;
use crate::url::{Backend, DatabaseUrl};

/// The database clock in Unix milliseconds (floored), as an SQL expression per backend.
fn now_expr(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "(floor(extract(epoch FROM clock_timestamp()) * 1000))::bigint",
        Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
    }
}

/// The answer of [`Store::slot_take`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotTake {
    /// The slots with these numbers (at least one, in order) are now held by the caller.
    Taken(Vec<i64>),
    /// Every slot is busy.
    Busy {
        /// How long until the earliest *released* slot cools down (none is cooling: `None`).
        cooling: Option<Duration>,
        /// How long until the earliest *held* slot expires by itself (none is held: `None`).
        /// A held slot usually frees much earlier, when its holder releases it.
        held: Option<Duration>,
    },
}

/// A duration from a millisecond difference on the database clock (0 if already past).
fn millis(ms: Option<i64>) -> Option<Duration> {
    ms.map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

/// Suffix of the SQLite sidecar file that holds the rate slots (see the module doc).
pub const SQLITE_SIDECAR_SUFFIX: &str = "-budget";

/// The sidecar's schema: the `rate_slots` table of migration 0003, created if missing (every
/// process opening the sidecar runs it; there is nothing else in the file to migrate).
const SQLITE_SIDECAR_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS rate_slots (\
    name TEXT NOT NULL, slot INTEGER NOT NULL, busy_until_ms INTEGER NOT NULL, holder TEXT, \
    PRIMARY KEY (name, slot)); \
    CREATE INDEX IF NOT EXISTS rate_slots_free ON rate_slots (name, busy_until_ms);";

impl Store {
    /// Opens where the rate slots of the database at `url` live, for [`Store::slot_take`] and
    /// [`Store::slot_release`] only: on PostgreSQL the database itself (a pool of its own,
    /// `options`); on SQLite the sidecar file beside it (`<file>-budget`, created with its one
    /// table if missing), so slot writes never contend with the directory's for the database's
    /// write lock. `None` for an in-memory SQLite database, which no other process can share.
    pub async fn connect_rate_slots(
        url: &DatabaseUrl,
        options: StoreOptions,
    ) -> Result<Option<Self>, StoreError> {
        match url.backend() {
            Backend::Postgres => Ok(Some(Self::connect_with(url, options).await?)),
            Backend::Sqlite => {
                let Some(side) = url.sqlite_sidecar(SQLITE_SIDECAR_SUFFIX) else {
                    return Ok(None);
                };
                let store = Self::open(&side, options).await?;
                sqlx::raw_sql(SQLITE_SIDECAR_SCHEMA)
                    .execute(&store.pool)
                    .await?;
                Ok(Some(store))
            }
        }
    }

    /// Makes sure slots `0..capacity` of `name` exist (idempotent; existing slots keep their
    /// state). Slots numbered `capacity` or more are ignored by takers that pass this capacity.
    pub async fn slots_ensure(&self, name: &str, capacity: u32) -> Result<(), StoreError> {
        if capacity == 0 {
            return Ok(());
        }
        // One statement for any capacity: a recursive series, valid in both dialects (SQLite's
        // upsert after a SELECT needs a WHERE clause to parse).
        sqlx::query(
            "WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n + 1 < $2) \
             INSERT INTO rate_slots (name, slot, busy_until_ms, holder) \
             SELECT $1, n, 0, NULL FROM g WHERE 1 = 1 ON CONFLICT (name, slot) DO NOTHING",
        )
        .bind(name.to_owned())
        .bind(i64::from(capacity))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes up to `max` free slots of `name` (among `0..capacity`) for `holder`, each busy
    /// until the database's now + `hold`; or says how long the busy slots have left. Call
    /// [`Store::slots_ensure`] once first.
    pub async fn slot_take(
        &self,
        name: &str,
        capacity: u32,
        holder: &str,
        hold: Duration,
        max: u32,
    ) -> Result<SlotTake, StoreError> {
        let hold_ms = i64::try_from(hold.as_millis()).unwrap_or(i64::MAX / 4);
        let rows = match self.backend {
            Backend::Postgres => {
                self.take_rows_postgres(name, capacity, holder, hold_ms, max)
                    .await?
            }
            Backend::Sqlite => {
                self.take_rows_sqlite(name, capacity, holder, hold_ms, max)
                    .await?
            }
        };
        let mut slots = Vec::new();
        let mut busy = SlotTake::Busy {
            cooling: None,
            held: None,
        };
        for row in &rows {
            match row.try_get::<Option<i64>, _>("slot")? {
                Some(slot) => slots.push(slot),
                None => {
                    busy = SlotTake::Busy {
                        cooling: millis(row.try_get("cooling_ms")?),
                        held: millis(row.try_get("held_ms")?),
                    }
                }
            }
        }
        if slots.is_empty() {
            return Ok(busy);
        }
        slots.sort_unstable();
        Ok(SlotTake::Taken(slots))
    }

    /// [`Store::slot_take`] on PostgreSQL: the taken slots (one row each) and one row
    /// reporting the busy ones.
    async fn take_rows_postgres(
        &self,
        name: &str,
        capacity: u32,
        holder: &str,
        hold_ms: i64,
        max: u32,
    ) -> Result<Vec<AnyRow>, StoreError> {
        let now = now_expr(self.backend);
        // One round trip: take the longest-free slots (one row each), then one row
        // reporting the busy ones. The report reads the snapshot before the update; it
        // matters only when nothing was taken.
        let text = format!(
            "WITH clock AS (SELECT {now} AS now_ms), \
             free AS (SELECT s.slot FROM rate_slots s, clock \
               WHERE s.name = $1 AND s.slot < $2 AND s.busy_until_ms <= clock.now_ms \
               ORDER BY s.busy_until_ms, s.slot LIMIT $5 FOR UPDATE OF s SKIP LOCKED), \
             taken AS (UPDATE rate_slots r SET busy_until_ms = clock.now_ms + $3, \
               holder = $4 FROM free, clock WHERE r.name = $1 AND r.slot = free.slot \
               RETURNING r.slot) \
             SELECT slot, CAST(NULL AS BIGINT) AS cooling_ms, \
               CAST(NULL AS BIGINT) AS held_ms FROM taken \
             UNION ALL \
             SELECT CAST(NULL AS BIGINT), \
               (SELECT MIN(busy_until_ms) FROM rate_slots \
                 WHERE name = $1 AND slot < $2 AND holder IS NULL) \
                 - (SELECT now_ms FROM clock), \
               (SELECT MIN(busy_until_ms) FROM rate_slots \
                 WHERE name = $1 AND slot < $2 AND holder IS NOT NULL) \
                 - (SELECT now_ms FROM clock)"
        );
        Ok(sqlx::query(&text)
            .bind(name.to_owned())
            .bind(i64::from(capacity))
            .bind(hold_ms)
            .bind(holder.to_owned())
            .bind(i64::from(max.max(1)))
            .fetch_all(&self.pool)
            .await?)
    }

    /// [`Store::slot_take`] on SQLite: the taken slots (one row each) and one row reporting the
    /// busy ones.
    async fn take_rows_sqlite(
        &self,
        name: &str,
        capacity: u32,
        holder: &str,
        hold_ms: i64,
        max: u32,
    ) -> Result<Vec<AnyRow>, StoreError> {
        let now = now_expr(self.backend);
        // SQLite has one writer; the immediate transaction makes look-then-take atomic.
        let mut tx = self.begin_queue().await?;
        let now_ms: i64 = sqlx::query(&format!("SELECT {now} AS now_ms"))
            .fetch_one(&mut *tx)
            .await?
            .try_get("now_ms")?;
        let mut rows = sqlx::query(
            "UPDATE rate_slots SET busy_until_ms = $1 + $2, holder = $3 \
             WHERE name = $4 AND slot IN (SELECT slot FROM rate_slots WHERE name = $4 \
               AND slot < $5 AND busy_until_ms <= $1 \
               ORDER BY busy_until_ms, slot LIMIT $6) \
             RETURNING slot, NULL AS cooling_ms, NULL AS held_ms",
        )
        .bind(now_ms)
        .bind(hold_ms)
        .bind(holder.to_owned())
        .bind(name.to_owned())
        .bind(i64::from(capacity))
        .bind(i64::from(max.max(1)))
        .fetch_all(&mut *tx)
        .await?;
        rows.push(
            sqlx::query(
                "SELECT NULL AS slot, \
               MIN(CASE WHEN holder IS NULL THEN busy_until_ms END) - $1 AS cooling_ms, \
               MIN(CASE WHEN holder IS NOT NULL THEN busy_until_ms END) - $1 AS held_ms \
             FROM rate_slots WHERE name = $2 AND slot < $3",
            )
            .bind(now_ms)
            .bind(name.to_owned())
            .bind(i64::from(capacity))
            .fetch_one(&mut *tx)
            .await?,
        );
        tx.commit().await?;
        Ok(rows)
    }

    /// Releases `slot` of `name` held by `holder`: it stays busy for `cooldown` from the
    /// database's now. False (and nothing changes) if the slot is no longer the holder's — its
    /// hold expired and someone else took it.
    pub async fn slot_release(
        &self,
        name: &str,
        slot: i64,
        holder: &str,
        cooldown: Duration,
    ) -> Result<bool, StoreError> {
        let cooldown_ms = i64::try_from(cooldown.as_millis()).unwrap_or(i64::MAX / 4);
        // The extra millisecond rounds the floored clock up, so the window is never short.
        let text = format!(
            "UPDATE rate_slots SET busy_until_ms = {} + 1 + $1, holder = NULL \
             WHERE name = $2 AND slot = $3 AND holder = $4",
            now_expr(self.backend)
        );
        let n = sqlx::query(&text)
            .bind(cooldown_ms)
            .bind(name.to_owned())
            .bind(slot)
            .bind(holder.to_owned())
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// The database server's clock in Unix milliseconds (what slots are timed by).
    pub async fn db_now_ms(&self) -> Result<i64, StoreError> {
        let row = sqlx::query(&format!("SELECT {} AS now_ms", now_expr(self.backend)))
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("now_ms")?)
    }
}
