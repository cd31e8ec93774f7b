//! Shared test helpers: a simulator on a port-0 listener, a client pointed at it, and the
//! `/_sim` admin calls tests use to look behind the API (state, call counts, settings).

#![allow(dead_code)]

pub mod receiver;

use std::time::Duration;

use dingtalk_client::{Backoff, ClientConfig, DingTalkClient};
use dingtalk_sim::{SimConfig, SimHandle};
use serde_json::Value;

/// A running simulator plus an HTTP client for its admin routes.
pub struct Sim {
    pub handle: SimHandle,
    pub base: String,
    pub http: reqwest::Client,
}

impl Sim {
    pub async fn start(config: SimConfig) -> Self {
        let handle = testkit::sim::start(config).await;
        let base = handle.base_url();
        Self {
            handle,
            base,
            http: testkit::http::client(),
        }
    }

    /// A client configuration for this simulator: its credentials, a fixed jitter seed and
    /// backoff short enough for tests.
    pub fn client_config(&self) -> ClientConfig {
        let cfg = self.handle.config();
        let mut client = ClientConfig::new(cfg.client_id.clone(), cfg.client_secret.clone())
            .with_base_url(self.base.clone());
        client.qps_per_api = cfg.qps;
        client.rng_seed = Some(7);
        client.backoff = Backoff {
            initial: Duration::from_millis(20),
            multiplier: 2.0,
            max: Duration::from_millis(500),
            throttle_floor: Duration::from_secs(1),
        };
        client
    }

    pub fn client(&self) -> DingTalkClient {
        DingTalkClient::new(self.client_config()).expect("client builds")
    }

    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let path = format!("/_sim{path}");
        let (status, body) =
            testkit::sim::request(&self.http, &self.base, method, &path, body.as_ref()).await;
        (status.as_u16(), body)
    }

    pub async fn state(&self) -> Value {
        self.admin(reqwest::Method::GET, "/state", None).await.1
    }

    pub async fn calls(&self) -> Value {
        self.admin(reqwest::Method::GET, "/calls", None).await.1
    }

    pub async fn settings(&self, patch: Value) {
        let (status, body) = self
            .admin(reqwest::Method::POST, "/settings", Some(patch))
            .await;
        assert_eq!(status, 200, "{body}");
    }

    pub async fn expire_tokens(&self) {
        let (status, body) = self
            .admin(reqwest::Method::POST, "/tokens/expire", None)
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// A token fetched directly, for raw-HTTP tests.
    pub async fn raw_token(&self) -> String {
        testkit::sim::fetch_token(&self.http, &self.handle).await
    }

    /// Shortens DingTalk's push retry schedule (10 s, 30 s) so failed events land quickly.
    pub async fn fast_push_retries(&self) {
        let (status, body) = self
            .admin(
                reqwest::Method::POST,
                "/push-settings",
                Some(serde_json::json!({"retry_scale": 0.001})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// Waits until every event was pushed to a final outcome.
    pub async fn wait_pushes(&self) {
        assert!(
            self.handle.wait_pushes_idle(Duration::from_secs(30)).await,
            "pushes did not settle"
        );
    }

    pub async fn shutdown(self) {
        self.handle.shutdown().await;
    }
}
