//! Test databases: a fresh SQLite file or a fresh PostgreSQL database per test, so the
//! conformance cases can run in parallel against both backends with the same code.

#![allow(dead_code)]

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};

use directory_store::{DatabaseUrl, Store};
use futures::FutureExt;
use sqlx::migrate::MigrateDatabase;

/// Where the PostgreSQL server's URL comes from.
pub const PG_ENV: &str = "DINGSYNC_TEST_PG_URL";
/// Set to 1 to skip the PostgreSQL half of the suite explicitly.
pub const SKIP_ENV: &str = "DINGSYNC_TEST_SKIP_PG";

/// A database that exists for one test.
pub struct TestDb {
    pub store: Store,
    /// Keeps the SQLite file's directory alive.
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL database to drop afterwards.
    pg_url: Option<DatabaseUrl>,
}

pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = DatabaseUrl::sqlite_file(&dir.path().join("directory.db"));
    let store = Store::connect_with(&url, Default::default())
        .await
        .expect("open SQLite store");
    TestDb {
        store,
        _dir: Some(dir),
        pg_url: None,
    }
}

fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "t_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos % 1_000_000_000
    )
}

/// A fresh PostgreSQL database, or None when the PostgreSQL half is explicitly skipped.
pub async fn postgres() -> Option<TestDb> {
    let Ok(admin) = std::env::var(PG_ENV) else {
        if std::env::var(SKIP_ENV).as_deref() == Ok("1") {
            eprintln!("{PG_ENV} unset and {SKIP_ENV}=1: skipping the PostgreSQL case");
            return None;
        }
        panic!(
            "{PG_ENV} is not set. The conformance suite must also run against PostgreSQL: start \
             one with `scripts/pg-throwaway.sh start /tmp/pg 54329` and export \
             {PG_ENV}=postgres://postgres@127.0.0.1:54329/postgres, or set {SKIP_ENV}=1 to skip."
        );
    };
    let admin = DatabaseUrl::parse(admin).expect("PostgreSQL URL");
    let url = admin.with_database(&unique_name());
    sqlx::any::install_default_drivers();
    sqlx::Any::create_database(url.expose())
        .await
        .unwrap_or_else(|e| panic!("create test database on {url}: {e}"));
    let store = Store::connect_with(&url, Default::default())
        .await
        .expect("open PostgreSQL store");
    Some(TestDb {
        store,
        _dir: None,
        pg_url: Some(url),
    })
}

impl TestDb {
    /// Runs `case` against this database, then drops the database even if the case panicked.
    pub async fn run<F, Fut>(self, case: F)
    where
        F: FnOnce(Store) -> Fut,
        Fut: Future<Output = ()>,
    {
        let result = AssertUnwindSafe(case(self.store.clone()))
            .catch_unwind()
            .await;
        self.store.close().await;
        if let Some(url) = &self.pg_url {
            let _ = sqlx::Any::force_drop_database(url.expose()).await;
        }
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    }
}

/// Generates one test per case and backend: `sqlite::<case>` and `postgres::<case>`.
#[macro_export]
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    $crate::support::sqlite().await.run(super::cases::$case).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    if let Some(db) = $crate::support::postgres().await {
                        db.run(super::cases::$case).await;
                    }
                }
            )*
        }
    };
}
