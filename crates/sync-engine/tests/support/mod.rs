//! Shared fixtures of the engine's integration tests: a real simulator on port 0, a real SQLite
//! directory in a temporary folder, a client pointed at the simulator, and helpers to read the
//! simulator's state.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use dingtalk_client::{Backoff, ClientConfig, DingTalkClient};
use dingtalk_sim::{SimConfig, SimHandle};
use directory_model::{DingDeptId, OaDeptId};
use directory_store::{DatabaseUrl, Store, WriteCtx};
use serde_json::Value;
use sync_engine::push::{PushConfig, Pusher};
use sync_engine::{Clock, ManualClock, Policy, SyncContext};

/// The fixed start of every test clock (2026-01-01).
pub const T0: i64 = 1_767_225_600_000;

/// One test's world.
pub struct World {
    pub sim: SimHandle,
    pub store: Store,
    pub client: DingTalkClient,
    pub clock: Arc<ManualClock>,
    pub http: reqwest::Client,
    /// Keeps the SQLite file alive.
    _dir: tempfile::TempDir,
    /// The PostgreSQL database to drop at the end, when the test runs on PostgreSQL.
    pg_url: Option<DatabaseUrl>,
}

/// Where the PostgreSQL server's URL comes from (as for the store's conformance suite).
pub const PG_ENV: &str = "DINGSYNC_TEST_PG_URL";

/// Which database a world uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    /// A SQLite file in a temporary folder.
    Sqlite,
    /// A fresh database on the server named by [`PG_ENV`].
    Postgres,
}

/// A client configuration for the simulator with fast retries.
pub fn client_config(sim: &SimHandle) -> ClientConfig {
    let mut cfg = ClientConfig::new(&sim.config().client_id, sim.config().client_secret.clone())
        .with_base_url(sim.base_url());
    cfg.qps_per_api = sim.config().qps;
    cfg.backoff = Backoff {
        initial: Duration::from_millis(20),
        multiplier: 2.0,
        max: Duration::from_millis(200),
        throttle_floor: Duration::from_millis(1000),
    };
    cfg.rng_seed = Some(7);
    cfg
}

impl World {
    /// A simulator started with `config`, an empty directory holding only the root department
    /// (mapped to DingTalk's department 1), and a client.
    pub async fn start(config: SimConfig) -> World {
        Self::start_on(Db::Sqlite, config).await.unwrap()
    }

    /// Like [`World::start`] on the chosen database; `None` (with a note) when PostgreSQL is
    /// asked for and [`PG_ENV`] is not set.
    pub async fn start_on(db: Db, config: SimConfig) -> Option<World> {
        if db == Db::Postgres && std::env::var(PG_ENV).is_err() {
            eprintln!(
                "{PG_ENV} is not set: skipping the PostgreSQL case (scripts/test.sh sets it)"
            );
            return None;
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim = dingtalk_sim::start(config, listener).await.unwrap();
        let client = DingTalkClient::new(client_config(&sim)).unwrap();
        Some(Self::with_client_on(db, sim, client).await)
    }

    pub async fn with_client(sim: SimHandle, client: DingTalkClient) -> World {
        Self::with_client_on(Db::Sqlite, sim, client).await
    }

    pub async fn with_client_on(db: Db, sim: SimHandle, client: DingTalkClient) -> World {
        let dir = tempfile::tempdir().unwrap();
        let (url, pg_url) = match db {
            Db::Sqlite => (
                DatabaseUrl::sqlite_file(&dir.path().join("directory.db")),
                None,
            ),
            Db::Postgres => {
                let admin = DatabaseUrl::parse(std::env::var(PG_ENV).unwrap()).unwrap();
                let url = admin.with_database(&unique_name());
                sqlx::any::install_default_drivers();
                <sqlx::Any as sqlx::migrate::MigrateDatabase>::create_database(url.expose())
                    .await
                    .unwrap();
                (url.clone(), Some(url))
            }
        };
        let store = Store::connect_with(&url, Default::default()).await.unwrap();
        let ctx = WriteCtx::import("test", T0);
        store
            .create_department(
                &ctx,
                directory_model::Department::new(OaDeptId(1), "Acme", None),
            )
            .await
            .unwrap();
        store
            .id_map_put(&OaDeptId(1), &DingDeptId::ROOT)
            .await
            .unwrap();
        World {
            sim,
            store,
            client,
            clock: Arc::new(ManualClock::new(T0)),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            _dir: dir,
            pg_url,
        }
    }

    /// Stops the simulator and drops the PostgreSQL database, if any.
    pub async fn finish(self) {
        self.sim.shutdown().await;
        self.store.close().await;
        if let Some(url) = &self.pg_url {
            let _ =
                <sqlx::Any as sqlx::migrate::MigrateDatabase>::force_drop_database(url.expose())
                    .await;
        }
    }

    /// An OA write context at the current test time.
    pub fn oa(&self) -> WriteCtx {
        WriteCtx::oa("test", self.clock.now_ms())
    }

    /// The engine context over this world (default policy, the test clock).
    pub fn ctx(&self) -> SyncContext {
        SyncContext::new(self.store.clone(), self.client.clone(), Policy::default())
            .with_clock(self.clock.clone())
            .with_actor("test")
    }

    /// A pusher with test settings.
    pub fn pusher(&self) -> Pusher {
        Pusher::new(
            &self.ctx(),
            11,
            PushConfig {
                worker: "test-pusher".into(),
                ..PushConfig::default()
            },
        )
    }

    /// `GET /_sim/state`.
    pub async fn state(&self) -> Value {
        self.http
            .get(format!("{}/_sim/state", self.sim.base_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A `/_sim` admin call with a JSON body; returns the status and the body.
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .request(method, format!("{}/_sim{path}", self.sim.base_url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

fn unique_name() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!(
        "engine_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        rand::random::<u32>()
    )
}

/// Elements of `state[list]` whose `key` equals `value`.
pub fn find<'a>(state: &'a Value, list: &str, key: &str, value: &Value) -> Vec<&'a Value> {
    state[list]
        .as_array()
        .map(|a| a.iter().filter(|x| &x[key] == value).collect())
        .unwrap_or_default()
}
