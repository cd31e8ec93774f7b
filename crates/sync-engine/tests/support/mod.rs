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
use sync_engine::push::{ManualClock, PushConfig, Pusher};

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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim = dingtalk_sim::start(config, listener).await.unwrap();
        let client = DingTalkClient::new(client_config(&sim)).unwrap();
        Self::with_client(sim, client).await
    }

    pub async fn with_client(sim: SimHandle, client: DingTalkClient) -> World {
        let dir = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::sqlite_file(&dir.path().join("directory.db"));
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
        }
    }

    /// An OA write context at the current test time.
    pub fn oa(&self) -> WriteCtx {
        WriteCtx::oa("test", sync_engine::push::Clock::now_ms(&*self.clock))
    }

    /// A pusher with test settings.
    pub fn pusher(&self) -> Pusher {
        Pusher::new(
            self.store.clone(),
            self.client.clone(),
            self.clock.clone(),
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

/// Elements of `state[list]` whose `key` equals `value`.
pub fn find<'a>(state: &'a Value, list: &str, key: &str, value: &Value) -> Vec<&'a Value> {
    state[list]
        .as_array()
        .map(|a| a.iter().filter(|x| &x[key] == value).collect())
        .unwrap_or_default()
}
