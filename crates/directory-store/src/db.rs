//! Connecting, migrating, and the small SQL toolkit the other modules share.
//!
//! # Why `sqlx::Any`
//! The store speaks to SQLite and PostgreSQL through `sqlx::Any` with one set of portable SQL
//! statements, instead of an enum over two typed pools. Nearly every statement is identical in
//! both dialects (`$1` placeholders work in SQLite too, and both support `ON CONFLICT` and
//! `RETURNING`), so one code path means one behaviour to test; the few places that differ (claiming
//! with `FOR UPDATE SKIP LOCKED`, the write lock) branch on [`Backend`]. The price is that `Any`
//! only carries integers, floats, text and bytes, so booleans are stored as 0/1 and timestamps as
//! Unix milliseconds, and that sqlx's `QueryBuilder` cannot be used (it emits `?` for `Any`),
//! hence the tiny [`Sql`] builder below that numbers placeholders itself.
//!
//! # Why writes are serialized
//! Every directory write runs in a transaction that first takes the store-wide write lock
//! (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: a transaction-scoped advisory lock). That makes the
//! check-then-write referential rules (unknown parent, duplicate mobile, cycles) race-free without
//! encoding each of them as a constraint, and it makes audit sequence numbers commit in order, so a
//! change-feed reader holding a cursor can never miss a row that committed late. OA writes come at
//! human rates and imports come in large batches, so the serialization costs nothing that matters.
//! Queue operations (claiming, acknowledging) do not take the lock.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::any::{AnyArguments, AnyConnectOptions, AnyPoolOptions};
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AnyPool, Executor, Transaction};

use crate::error::StoreError;
use crate::url::{Backend, DatabaseUrl};

/// The SQLite migrations, embedded so the binary needs no files beside it.
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "directory",
        include_str!("../migrations/sqlite/0001_directory.sql"),
    ),
    (
        2,
        "conflicts",
        include_str!("../migrations/sqlite/0002_conflicts.sql"),
    ),
    (
        3,
        "rate_slots",
        include_str!("../migrations/sqlite/0003_rate_slots.sql"),
    ),
    (
        4,
        "scim_resources",
        include_str!("../migrations/sqlite/0004_scim_resources.sql"),
    ),
    (
        5,
        "console",
        include_str!("../migrations/sqlite/0005_console.sql"),
    ),
    (
        6,
        "console_lookups",
        include_str!("../migrations/sqlite/0006_console_lookups.sql"),
    ),
    (
        7,
        "scim_holds",
        include_str!("../migrations/sqlite/0007_scim_holds.sql"),
    ),
    (
        8,
        "orgs",
        include_str!("../migrations/sqlite/0008_orgs.sql"),
    ),
    (
        9,
        "console_speed",
        include_str!("../migrations/sqlite/0009_console_speed.sql"),
    ),
];

/// The PostgreSQL migrations (same versions and meaning as the SQLite ones).
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "directory",
        include_str!("../migrations/postgres/0001_directory.sql"),
    ),
    (
        2,
        "conflicts",
        include_str!("../migrations/postgres/0002_conflicts.sql"),
    ),
    (
        3,
        "rate_slots",
        include_str!("../migrations/postgres/0003_rate_slots.sql"),
    ),
    (
        4,
        "scim_resources",
        include_str!("../migrations/postgres/0004_scim_resources.sql"),
    ),
    (
        5,
        "console",
        include_str!("../migrations/postgres/0005_console.sql"),
    ),
    (
        6,
        "console_lookups",
        include_str!("../migrations/postgres/0006_console_lookups.sql"),
    ),
    (
        7,
        "scim_holds",
        include_str!("../migrations/postgres/0007_scim_holds.sql"),
    ),
    (
        8,
        "orgs",
        include_str!("../migrations/postgres/0008_orgs.sql"),
    ),
    (
        9,
        "console_speed",
        include_str!("../migrations/postgres/0009_console_speed.sql"),
    ),
];

/// The organization of a deployment without `[[orgs]]`, and of every row written before
/// organizations existed (migration 0008).
pub const DEFAULT_ORG: &str = "default";

/// The advisory-lock key that serializes directory writes on PostgreSQL ("dingsync" in ASCII).
const WRITE_LOCK_KEY: i64 = 0x6469_6e67_7379_6e63;

/// The embedded migrations of one backend up to a version (all: `i64::MAX`), as a sqlx
/// migration source.
#[derive(Debug)]
struct Embedded(Backend, i64);

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(self) -> BoxFuture<'s, Result<Vec<Migration>, BoxDynError>> {
        let set = match self.0 {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        };
        let up_to = self.1;
        let migrations = set
            .iter()
            .filter(|(version, _, _)| *version <= up_to)
            .map(|(version, name, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*name),
                    MigrationType::Simple,
                    Cow::Borrowed(*sql),
                    false,
                )
            })
            .collect();
        Box::pin(async move { Ok(migrations) })
    }
}

/// Connection settings beyond the URL.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Pool size. SQLite has one writer anyway; readers benefit from a few connections.
    pub max_connections: u32,
    /// How long a SQLite statement waits for the write lock before failing.
    pub sqlite_busy_timeout: Duration,
    /// How long to wait for a free pool connection.
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            sqlite_busy_timeout: Duration::from_secs(30),
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

/// The OA directory and the sync bookkeeping, in SQLite or PostgreSQL.
///
/// Cheap to clone (the pool is shared). `Debug` shows the backend and the redacted URL only.
#[derive(Clone)]
pub struct Store {
    /// The connection pool.
    pub(crate) pool: AnyPool,
    /// The dialect, for the few statements that differ.
    pub(crate) backend: Backend,
    /// Where we are connected, for log lines (prints without the password).
    url: DatabaseUrl,
    /// The DingTalk organization whose bookkeeping this handle reads and writes (see
    /// [`Store::for_org`]).
    pub(crate) org: Arc<str>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .field("url", &self.url)
            .field("org", &self.org)
            .field("connections", &self.pool.size())
            .finish()
    }
}

impl Store {
    /// Connects to `url` (`sqlite://path?mode=rwc` or `postgres://…`) and applies migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(&DatabaseUrl::parse(url)?, StoreOptions::default()).await
    }

    /// Connects with explicit options and applies migrations.
    pub async fn connect_with(
        url: &DatabaseUrl,
        options: StoreOptions,
    ) -> Result<Self, StoreError> {
        let store = Self::open(url, options).await?;
        store.migrate().await?;
        tracing::debug!(url = %store.url, "directory store ready");
        Ok(store)
    }

    /// Connects (SQLite: WAL, busy timeout) without applying migrations.
    pub(crate) async fn open(url: &DatabaseUrl, options: StoreOptions) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = url.backend();
        let connect: AnyConnectOptions = url.expose().parse()?;
        let busy_ms = options.sqlite_busy_timeout.as_millis();
        let pool = AnyPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers proceed while one writer commits; NORMAL sync is
                        // durable across application crashes (WAL is fsynced at checkpoints).
                        let pragmas = format!(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {busy_ms};"
                        );
                        conn.execute(pragmas.as_str()).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(connect)
            .await?;
        Ok(Self {
            pool,
            backend,
            url: url.clone(),
            org: Arc::from(DEFAULT_ORG),
        })
    }

    /// Applies pending migrations (idempotent; run by `connect`).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.migrate_up_to(i64::MAX).await
    }

    /// Applies the migrations up to `version` only.
    async fn migrate_up_to(&self, version: i64) -> Result<(), StoreError> {
        let migrator = Migrator::new(Embedded(self.backend, version))
            .await
            .map_err(StoreError::Migrate)?;
        migrator.run(&self.pool).await.map_err(StoreError::Migrate)
    }

    /// Connects and applies the migrations up to `version` only, leaving the database as the
    /// release whose last migration that was left it: for upgrade tests, which then fill it
    /// and open it with [`Store::connect_with`] as the new release would.
    #[doc(hidden)]
    pub async fn connect_at_version(url: &DatabaseUrl, version: i64) -> Result<Self, StoreError> {
        let store = Self::open(url, StoreOptions::default()).await?;
        store.migrate_up_to(version).await?;
        Ok(store)
    }

    /// The same database scoped to the DingTalk organization `org` (a `[[orgs]]` name): the id
    /// map, base snapshots, inbox, outbox, held deletions, conflicts, soft matches, runs,
    /// leases, checkpoints and sync state it reads and writes are that org's; the OA directory
    /// and the audit log are shared by all orgs. Cheap: the pool is shared.
    ///
    /// Why a scoped handle rather than an `org` argument on every method: everything the engine
    /// does for one org goes through one handle, so no call site can mix two orgs' DingTalk ids,
    /// and a single-org deployment (org [`DEFAULT_ORG`]) is exactly what it was before.
    pub fn for_org(&self, org: &str) -> Store {
        Store {
            org: Arc::from(org),
            ..self.clone()
        }
    }

    /// The organization this handle is scoped to ([`DEFAULT_ORG`] unless [`Store::for_org`]).
    pub fn org(&self) -> &str {
        &self.org
    }

    /// `name` (of a lease, checkpoint or sync-state key) as stored for this handle's org: the
    /// default org's names are unchanged (so a single-org database reads as before), another
    /// org's carry the prefix `org/<name>:`.
    pub(crate) fn scoped<'a>(&self, name: &'a str) -> Cow<'a, str> {
        if &*self.org == DEFAULT_ORG {
            Cow::Borrowed(name)
        } else {
            Cow::Owned(format!("org/{}:{name}", self.org))
        }
    }

    /// The dialect in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL (prints without the password).
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts a directory write transaction holding the store-wide write lock (see module doc).
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        match self.backend {
            Backend::Sqlite => Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                // The lock function returns `void`, which `Any` cannot decode, so select a
                // constant from it instead.
                Sql::new("SELECT 1 AS locked FROM (SELECT pg_advisory_xact_lock(")
                    .bind(WRITE_LOCK_KEY)
                    .push(")) AS l")
                    .query()
                    .execute(&mut *tx)
                    .await?;
                Ok(tx)
            }
        }
    }

    /// Starts a transaction for queue operations (no write lock on PostgreSQL; SQLite still
    /// needs `IMMEDIATE` so that a read-then-write transaction cannot fail with a stale snapshot).
    pub(crate) async fn begin_queue(&self) -> Result<Transaction<'static, Any>, StoreError> {
        match self.backend {
            Backend::Sqlite => Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres => Ok(self.pool.begin().await?),
        }
    }
}

/// A value bound to a placeholder. `Any` needs concrete types, and dynamic statements need one
/// type for every argument, so this enum carries the two we use.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    /// A nullable 64-bit integer.
    Int(Option<i64>),
    /// A nullable text.
    Text(Option<String>),
}

impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::Int(Some(v))
    }
}
impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Self {
        Val::Int(v)
    }
}
impl From<bool> for Val {
    fn from(v: bool) -> Self {
        Val::Int(Some(i64::from(v)))
    }
}
impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::Text(Some(v))
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::Text(Some(v.to_owned()))
    }
}
impl From<&String> for Val {
    fn from(v: &String) -> Self {
        Val::Text(Some(v.clone()))
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Self {
        Val::Text(v)
    }
}
impl From<Option<&str>> for Val {
    fn from(v: Option<&str>) -> Self {
        Val::Text(v.map(str::to_owned))
    }
}

/// A statement under construction with numbered placeholders.
///
/// Placeholders are `$n`, which both backends accept. Statements with thousands of arguments
/// (multi-row inserts, long `IN` lists) use SQLite's anonymous `?` instead when talking to
/// SQLite: SQLite treats `$n` and `?n` as *named* parameters and binding thousands of them is
/// quadratic (measured on an 8,000-argument insert: ~310 ms with `$n` or `?n`, ~30 ms with `?`).
/// Anonymous placeholders are numbered in order of appearance, which is exactly the order in
/// which this builder binds.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sql {
    text: String,
    args: Vec<Val>,
    /// Emit SQLite's anonymous `?` instead of `$n`.
    question_marks: bool,
}

impl Sql {
    /// Starts with literal SQL.
    pub(crate) fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            args: Vec::new(),
            question_marks: false,
        }
    }

    /// Starts with literal SQL, using the placeholder form that is cheapest on `conn`'s backend.
    /// For statements with many arguments.
    pub(crate) fn new_for(text: &str, conn: &AnyConnection) -> Self {
        Self {
            question_marks: conn.backend_name() == "SQLite",
            ..Self::new(text)
        }
    }

    /// The SQL text so far.
    #[cfg(test)]
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// Appends literal SQL.
    pub(crate) fn push(mut self, text: &str) -> Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub(crate) fn bind(mut self, value: impl Into<Val>) -> Self {
        self.bind_mut(value);
        self
    }

    /// Appends literal SQL in place (for loops).
    pub(crate) fn push_mut(&mut self, text: &str) {
        self.text.push_str(text);
    }

    /// Appends a placeholder bound to `value` in place (for loops).
    pub(crate) fn bind_mut(&mut self, value: impl Into<Val>) {
        self.args.push(value.into());
        if self.question_marks {
            self.text.push('?');
        } else {
            // Writing to a String cannot fail.
            let _ = write!(self.text, "${}", self.args.len());
        }
    }

    /// Appends `(v1, v2, …)` as placeholders.
    pub(crate) fn bind_list<V: Into<Val>>(&mut self, values: impl IntoIterator<Item = V>) {
        self.text.push('(');
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.bind_mut(v);
        }
        self.text.push(')');
    }

    /// The executable query.
    pub(crate) fn query(&self) -> Query<'_, Any, AnyArguments<'_>> {
        let mut q = sqlx::query(&self.text);
        for a in &self.args {
            q = match a {
                Val::Int(v) => q.bind(*v),
                Val::Text(v) => q.bind(v.clone()),
            };
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_bind_order() {
        let mut sql = Sql::new("SELECT * FROM t WHERE a = ")
            .bind(1i64)
            .push(" AND b IN ");
        sql.bind_list(["x", "y"]);
        assert_eq!(sql.text(), "SELECT * FROM t WHERE a = $1 AND b IN ($2, $3)");
        assert_eq!(sql.args.len(), 3);
    }

    #[test]
    fn embedded_migrations_cover_both_backends_with_the_same_versions() {
        let versions = |set: &[(i64, &str, &str)]| set.iter().map(|m| m.0).collect::<Vec<_>>();
        assert_eq!(versions(SQLITE_MIGRATIONS), versions(POSTGRES_MIGRATIONS));
        assert!(versions(SQLITE_MIGRATIONS).windows(2).all(|w| w[0] < w[1]));
    }
}
