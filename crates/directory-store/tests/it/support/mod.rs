//! The conformance macro: one generated test per case and backend, so every case runs in
//! parallel against a fresh SQLite file and a fresh PostgreSQL database with the same code. The
//! databases come from `testkit::db`.

pub use testkit::db::TempDb;

/// A fresh SQLite store.
pub async fn sqlite() -> TempDb {
    TempDb::sqlite().await
}

/// A fresh PostgreSQL store, or `None` when the PostgreSQL half is explicitly skipped
/// (`DINGSYNC_TEST_SKIP_PG=1`); fails when the server is not configured.
pub async fn postgres() -> Option<TempDb> {
    TempDb::postgres().await
}

/// Generates one test per case and backend: `sqlite::<case>` and `postgres::<case>`.
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
