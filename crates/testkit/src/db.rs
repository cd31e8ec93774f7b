//! A database that exists for one test: a SQLite file in a temporary folder, or a fresh
//! database on the PostgreSQL server named by `DINGSYNC_TEST_PG_URL`, dropped afterwards.
//!
//! Why a fresh database per test: tests run in parallel (nextest runs each in its own process),
//! and a shared database would make one test's rows another's surprise. Why PostgreSQL must be
//! asked for explicitly: the suites that run both backends must not pass by skipping one
//! silently, so [`TempDb::postgres`] fails when the server is not configured unless
//! `DINGSYNC_TEST_SKIP_PG=1` says the skip is meant; [`TempDb::postgres_if_configured`] is for
//! the suites that have always treated PostgreSQL as optional.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use directory_store::{DatabaseUrl, Store, StoreOptions};
use futures::FutureExt as _;
use sqlx::migrate::MigrateDatabase as _;

/// Where the PostgreSQL server's URL comes from (`scripts/test.sh` sets it).
pub const PG_ENV: &str = "DINGSYNC_TEST_PG_URL";
/// Set to 1 to skip the PostgreSQL cases explicitly.
pub const SKIP_ENV: &str = "DINGSYNC_TEST_SKIP_PG";

/// Which database a test uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temporary folder.
    Sqlite,
    /// A fresh database on the server named by [`PG_ENV`].
    Postgres,
}

/// A database created for one test. Call [`TempDb::close`] (or use [`TempDb::run`]) to drop a
/// PostgreSQL database; the SQLite folder goes when the value is dropped.
#[derive(Debug)]
pub struct TempDb {
    /// Where the database is, for a service started on it.
    pub url: DatabaseUrl,
    /// The store, opened and migrated.
    pub store: Store,
    /// Keeps the SQLite file's folder alive; the folder also holds what else a test writes
    /// (config files, logs).
    dir: tempfile::TempDir,
    /// The PostgreSQL database to drop afterwards.
    pg_url: Option<DatabaseUrl>,
}

/// A database name no other test (in this process or another) uses at the same time.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The PostgreSQL server's URL, or `None` when [`SKIP_ENV`] is 1; panics with how to start one
/// otherwise.
fn required_server() -> Option<DatabaseUrl> {
    let Ok(admin) = std::env::var(PG_ENV) else {
        if std::env::var(SKIP_ENV).as_deref() == Ok("1") {
            eprintln!("{PG_ENV} unset and {SKIP_ENV}=1: skipping the PostgreSQL case");
            return None;
        }
        panic!(
            "{PG_ENV} is not set. This suite must also run against PostgreSQL: run it through \
             `scripts/test.sh` (it starts a throwaway PostgreSQL), or start one with \
             `scripts/pg-throwaway.sh start /tmp/pg 54329` and export \
             {PG_ENV}=postgres://postgres@127.0.0.1:54329/postgres, or set {SKIP_ENV}=1 to skip."
        );
    };
    Some(DatabaseUrl::parse(admin).expect("PostgreSQL URL"))
}

/// Creates a fresh database on the server at `admin` and returns its URL.
pub async fn create_postgres_database(admin: &DatabaseUrl, prefix: &str) -> DatabaseUrl {
    let url = admin.with_database(&unique_name(prefix));
    sqlx::any::install_default_drivers();
    sqlx::Any::create_database(url.expose())
        .await
        .unwrap_or_else(|e| panic!("create test database on {url}: {e}"));
    url
}

/// Drops a database made by [`create_postgres_database`], even while a pool still holds it.
pub async fn drop_postgres_database(url: &DatabaseUrl) {
    sqlx::any::install_default_drivers();
    let _ = sqlx::Any::force_drop_database(url.expose()).await;
}

impl TempDb {
    /// A fresh SQLite file.
    pub async fn sqlite() -> TempDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = DatabaseUrl::sqlite_file(&dir.path().join("directory.db"));
        Self::open(url, dir, None).await
    }

    /// A fresh PostgreSQL database; `None` only when [`SKIP_ENV`] is 1, a panic when the server
    /// is not configured.
    pub async fn postgres() -> Option<TempDb> {
        let admin = required_server()?;
        Some(Self::postgres_on(&admin).await)
    }

    /// A fresh PostgreSQL database when [`PG_ENV`] is set; `None` (with a note) otherwise.
    pub async fn postgres_if_configured() -> Option<TempDb> {
        let Ok(admin) = std::env::var(PG_ENV) else {
            eprintln!(
                "{PG_ENV} is not set: skipping the PostgreSQL case (scripts/test.sh sets it)"
            );
            return None;
        };
        let admin = DatabaseUrl::parse(admin).expect("PostgreSQL URL");
        Some(Self::postgres_on(&admin).await)
    }

    /// [`TempDb::sqlite`] or [`TempDb::postgres_if_configured`].
    pub async fn on(backend: Backend) -> Option<TempDb> {
        match backend {
            Backend::Sqlite => Some(Self::sqlite().await),
            Backend::Postgres => Self::postgres_if_configured().await,
        }
    }

    async fn postgres_on(admin: &DatabaseUrl) -> TempDb {
        let url = create_postgres_database(admin, "t").await;
        let dir = tempfile::tempdir().expect("temp dir");
        Self::open(url.clone(), dir, Some(url)).await
    }

    async fn open(url: DatabaseUrl, dir: tempfile::TempDir, pg_url: Option<DatabaseUrl>) -> TempDb {
        let store = Store::connect_with(&url, StoreOptions::default())
            .await
            .unwrap_or_else(|e| panic!("open the store at {url}: {e}"));
        TempDb {
            url,
            store,
            dir,
            pg_url,
        }
    }

    /// A temporary folder that lives as long as the database.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Closes the store and drops a PostgreSQL database.
    pub async fn close(self) {
        self.store.close().await;
        if let Some(url) = &self.pg_url {
            drop_postgres_database(url).await;
        }
    }

    /// Runs `case` against this database, then closes it (dropping a PostgreSQL database) even
    /// if the case panicked.
    pub async fn run<F, Fut>(self, case: F)
    where
        F: FnOnce(Store) -> Fut,
        Fut: Future<Output = ()>,
    {
        let result = AssertUnwindSafe(case(self.store.clone()))
            .catch_unwind()
            .await;
        self.close().await;
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    }
}
