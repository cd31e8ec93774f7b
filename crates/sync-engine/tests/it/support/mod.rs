//! Shared fixtures of the engine's integration tests: a real simulator on port 0, a real SQLite
//! directory in a temporary folder, a client pointed at the simulator, and helpers to read the
//! simulator's state.

#![allow(dead_code)] // each test module uses a different part

use std::sync::Arc;
use std::time::Duration;

use dingtalk_client::{Backoff, ClientConfig, DingTalkClient};
use dingtalk_sim::{SimConfig, SimHandle};
use directory_model::{DingDeptId, OaDeptId};
use directory_store::{Store, WriteCtx};
use serde_json::Value;
use sync_engine::push::{PushConfig, Pusher};
use sync_engine::{Clock, ManualClock, Policy, SyncContext};
use testkit::db::TempDb;

/// The fixed start of every test clock (2026-01-01).
pub const T0: i64 = 1_767_225_600_000;

/// One test's world.
pub struct World {
    pub sim: SimHandle,
    pub store: Store,
    pub client: DingTalkClient,
    pub clock: Arc<ManualClock>,
    pub http: reqwest::Client,
    /// The database behind `store`, dropped by [`World::finish`].
    db: TempDb,
}

/// Which database a world uses.
pub use testkit::db::Backend as Db;

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
        Self::start_on(Db::Sqlite, config)
            .await
            .expect("SQLite is always available")
    }

    /// Like [`World::start`] on the chosen database; `None` (with a note) when PostgreSQL is
    /// asked for and `DINGSYNC_TEST_PG_URL` is not set.
    pub async fn start_on(db: Db, config: SimConfig) -> Option<World> {
        let db = TempDb::on(db).await?;
        let sim = testkit::sim::start(config).await;
        let client = DingTalkClient::new(client_config(&sim)).expect("a client for the simulator");
        Some(Self::assemble(db, sim, client).await)
    }

    pub async fn with_client(sim: SimHandle, client: DingTalkClient) -> World {
        Self::assemble(TempDb::sqlite().await, sim, client).await
    }

    async fn assemble(db: TempDb, sim: SimHandle, client: DingTalkClient) -> World {
        let store = db.store.clone();
        let ctx = WriteCtx::import("test", T0);
        store
            .create_department(
                &ctx,
                directory_model::Department::new(OaDeptId(1), "Acme", None),
            )
            .await
            .expect("the root department is written");
        store
            .id_map_put(&OaDeptId(1), &DingDeptId::ROOT)
            .await
            .expect("the root department is mapped");
        World {
            sim,
            store,
            client,
            clock: Arc::new(ManualClock::new(T0)),
            http: testkit::http::client(),
            db,
        }
    }

    /// Stops the simulator and drops the PostgreSQL database, if any.
    pub async fn finish(self) {
        self.sim.shutdown().await;
        self.db.close().await;
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
        testkit::sim::state(&self.http, &self.sim.base_url()).await
    }

    /// A `/_sim` admin call with a JSON body; returns the status and the body.
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let (status, body) = testkit::sim::request(
            &self.http,
            &self.sim.base_url(),
            method,
            &format!("/_sim{path}"),
            Some(&body),
        )
        .await;
        (status.as_u16(), body)
    }
}

/// Elements of `state[list]` whose `key` equals `value`.
pub fn find<'a>(state: &'a Value, list: &str, key: &str, value: &Value) -> Vec<&'a Value> {
    state[list]
        .as_array()
        .map(|a| a.iter().filter(|x| &x[key] == value).collect())
        .unwrap_or_default()
}
