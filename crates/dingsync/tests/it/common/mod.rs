//! Test support for the OA API: a real router on a real socket (port 0) over a real database
//! (a fresh SQLite file, or a fresh PostgreSQL database when `DINGSYNC_TEST_PG_URL` is set), a
//! small HTTP client, and a fingerprint of everything a refused write must leave untouched.
//!
//! The router is `dingsync::api`, the same code `serve` mounts.

#![allow(dead_code)] // each test module uses a different part

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use directory_model::Snapshot;
use directory_store::{OutboxEntry, Store};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use testkit::db::TempDb;

pub use dingsync::api;

use api::{ApiState, ApiToken};

/// The token every test client sends.
pub const TOKEN: &str = "test-token-0123456789abcdef";

/// A running OA API over its own database.
pub struct App {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The directory behind the API, for assertions that bypass HTTP.
    pub store: Store,
    /// The clock the API stamps writes with; tests move it.
    pub clock: Arc<AtomicI64>,
    client: reqwest::Client,
    /// The database behind `store`, dropped by [`App::stop`].
    db: TempDb,
    server: tokio::task::JoinHandle<()>,
}

/// A decoded response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The `ETag` header.
    pub fn etag(&self) -> String {
        self.header("etag")
    }

    /// A header as text ("" when absent).
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    }

    /// The `(field, rule)` pairs of an error body.
    pub fn fields(&self) -> Vec<(String, String)> {
        self.body["error"]["fields"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|f| {
                        (
                            f["field"].as_str().unwrap_or("").to_owned(),
                            f["rule"].as_str().unwrap_or("").to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl App {
    /// The API over a fresh SQLite file.
    pub async fn sqlite() -> App {
        Self::start(TempDb::sqlite().await).await
    }

    /// The API over a fresh PostgreSQL database; `None` when skipped explicitly
    /// (`DINGSYNC_TEST_SKIP_PG=1`), a failure when no server is configured.
    pub async fn postgres() -> Option<App> {
        Some(Self::start(TempDb::postgres().await?).await)
    }

    async fn start(db: TempDb) -> App {
        let store = db.store.clone();
        let clock = Arc::new(AtomicI64::new(1_700_000_000_000));
        let ticks = clock.clone();
        let state = ApiState::new(store.clone(), vec![ApiToken::new("hr", TOKEN)])
            .with_clock(Arc::new(move || ticks.load(Ordering::SeqCst)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind port 0");
        let addr = listener.local_addr().expect("local addr");
        // Mounted the way the service mounts it: merged into a router with routes and a
        // fallback of its own.
        let router = axum::Router::new()
            .route("/healthz", axum::routing::get(|| async { "ok" }))
            .fallback(|| async { (reqwest::StatusCode::NOT_FOUND, "service fallback") })
            .merge(api::router(state));
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("serve");
        });
        App {
            base: format!("http://{addr}"),
            store,
            clock,
            client: testkit::http::client(),
            db,
            server,
        }
    }

    /// Stops the server and drops a PostgreSQL database.
    pub async fn stop(self) {
        self.server.abort();
        self.db.close().await;
    }

    /// Sends a request with the test token; `path` may be absolute or start with `/`.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(b);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Self::decode(req.send().await.expect("send")).await
    }

    /// A raw request (no token unless given), for auth and body-limit tests.
    pub async fn raw(&self, req: reqwest::RequestBuilder) -> Reply {
        Self::decode(req.send().await.expect("send")).await
    }

    /// A request builder against this app without credentials.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{}", self.base, path))
    }

    async fn decode(resp: reqwest::Response) -> Reply {
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(&body), &[]).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PATCH, path, Some(&body), &[]).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None, &[]).await
    }

    /// Everything a refused write must leave alone.
    pub async fn fingerprint(&self) -> Fingerprint {
        Fingerprint {
            directory: self.store.snapshot().await.expect("snapshot"),
            feed_head: self.store.latest_seq().await.expect("latest seq"),
            outbox: self
                .store
                .outbox_list(None, None, 100_000)
                .await
                .expect("outbox"),
        }
    }

    /// A small organisation: Acme(1) ⊃ R&D(2) ⊃ Backend(4), Acme ⊃ Sales(3); alice in R&D,
    /// bob in Backend managed by alice.
    pub async fn seed(&self) {
        for (body, expect) in [
            (serde_json::json!({"id": 1, "name": "Acme"}), 201),
            (
                serde_json::json!({"id": 2, "name": "R&D", "parent": 1}),
                201,
            ),
            (
                serde_json::json!({"id": 3, "name": "Sales", "parent": 1}),
                201,
            ),
            (
                serde_json::json!({"id": 4, "name": "Backend", "parent": 2}),
                201,
            ),
        ] {
            let r = self.post("/api/v1/departments", body).await;
            assert_eq!(r.status.as_u16(), expect, "{:?}", r.body);
        }
        let r = self
            .post(
                "/api/v1/users",
                serde_json::json!({"id": "alice", "name": "Alice", "departments": [{"dept": 2}],
                    "mobile": "13800000001", "email": "alice@acme.example", "job_number": "A1"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let r = self
            .post(
                "/api/v1/users",
                serde_json::json!({"id": "bob", "name": "Bob", "departments": [{"dept": 4, "title": "Engineer"}],
                    "manager": "alice", "mobile": "+852-91234567", "email": "bob@acme.example"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
}

/// The directory, the change feed's head and the outbox at one moment.
#[derive(Debug, PartialEq)]
pub struct Fingerprint {
    pub directory: Snapshot,
    pub feed_head: i64,
    pub outbox: Vec<OutboxEntry>,
}
