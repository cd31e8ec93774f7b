//! Hostile-body probing of the OA API, shared by the cargo-fuzz target (`crates/dingsync/fuzz`)
//! and the in-CI property test (`tests/api_bodies.rs`), so both exercise the very same check.
//!
//! Why the real router rather than the decoding functions alone: a body's journey includes the
//! content-type check, the body limit, `serde_path_to_error`, the handler's mapping to the model,
//! validation and the store's own rules. A panic or a 500 in any of them is a finding, and a
//! refusal that does not say which field is at fault breaks the API's contract. So a probe sends
//! one request through [`router`](super::router) in-process (tower's `oneshot`, no socket) over
//! a throwaway SQLite directory, and [`BodyProbe::check`] states what must hold:
//! - the answer is never a 5xx;
//! - every refusal is the API's JSON error with a code and a message;
//! - a 400 or 422 names at least one field (`body` for unreadable JSON, else the path of the
//!   field at fault).
//!
//! Accepted bodies are written: the directory fills up over a fuzzing run, which only makes
//! later inputs meet more state (conflicts, references that now exist).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::body::Body;
use axum::http::{Method, Request, header};
use directory_model::{Department, OaDeptId};
use directory_store::{DatabaseUrl, Store, StoreOptions, WriteCtx};
use tower::ServiceExt;

use super::{ApiState, ApiToken};

/// The bearer token the probe's API accepts (a test value, not a secret).
const PROBE_TOKEN: &str = "probe-token-not-a-secret";

/// The routes that take a JSON body, as (method, path). The first byte of a fuzz input picks
/// one (modulo the length).
pub const BODY_ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/v1/departments"),
    ("PATCH", "/api/v1/departments/1"),
    ("PATCH", "/api/v1/departments/2"),
    ("POST", "/api/v1/users"),
    ("PATCH", "/api/v1/users/u1"),
    ("POST", "/api/v1/role-groups"),
    ("PATCH", "/api/v1/role-groups/1"),
    ("POST", "/api/v1/roles"),
    ("PATCH", "/api/v1/roles/1"),
    ("POST", "/api/v1/role-assignments"),
];

/// Why a probe could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The runtime could not start.
    #[error("could not start a runtime")]
    Runtime(#[source] std::io::Error),
    /// The temporary directory could not be made.
    #[error("could not create a temporary directory")]
    TempDir(#[source] std::io::Error),
    /// The store could not be opened or seeded.
    #[error("could not open or seed the probe's store")]
    Store(#[from] directory_store::StoreError),
}

/// An OA API over a throwaway SQLite directory, answering requests in-process.
pub struct BodyProbe {
    /// Runs the router's futures; current-thread, so a probe is cheap and deterministic.
    runtime: tokio::runtime::Runtime,
    /// The API under test, mounted exactly as the service mounts it.
    router: axum::Router,
    /// Keeps the SQLite file alive for the probe's lifetime.
    _dir: tempfile::TempDir,
}

impl fmt::Debug for BodyProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyProbe").finish_non_exhaustive()
    }
}

/// What one probe request answered.
#[derive(Debug, Clone)]
pub struct ProbeAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The body, parsed as JSON when it is JSON.
    pub body: serde_json::Value,
}

impl BodyProbe {
    /// A probe over a fresh directory holding the root department 1, department 2 under it,
    /// user `u1`, role group 1 and role 1 (so the `PATCH` routes have something to change).
    pub fn new() -> Result<Self, ProbeError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ProbeError::Runtime)?;
        let dir = tempfile::tempdir().map_err(ProbeError::TempDir)?;
        let url = DatabaseUrl::sqlite_file(&dir.path().join("probe.db"));
        let store = runtime.block_on(seeded_store(&url))?;
        let clock = Arc::new(AtomicI64::new(1_700_000_000_000));
        let state = ApiState::new(store, vec![ApiToken::new("probe", PROBE_TOKEN)])
            .with_clock(Arc::new(move || clock.fetch_add(1, Ordering::Relaxed)));
        Ok(Self {
            runtime,
            router: super::router(state),
            _dir: dir,
        })
    }

    /// Sends `body` to the route `BODY_ROUTES[route % len]` with a JSON content type and a
    /// valid token, and returns the answer.
    pub fn send(&self, route: u8, body: &[u8]) -> ProbeAnswer {
        let (method, path) = BODY_ROUTES[usize::from(route) % BODY_ROUTES.len()];
        self.send_to(method, path, "application/json", body)
    }

    /// Sends one request with the probe's token.
    pub fn send_to(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> ProbeAnswer {
        let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::POST);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::AUTHORIZATION, format!("Bearer {PROBE_TOKEN}"))
            .body(Body::from(body.to_vec()));
        let Ok(request) = request else {
            return ProbeAnswer {
                status: 0,
                body: serde_json::Value::Null,
            };
        };
        self.runtime.block_on(async {
            let response = match self.router.clone().oneshot(request).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            let status = response.status().as_u16();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap_or_default();
            let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(&bytes).into())
            });
            ProbeAnswer { status, body }
        })
    }

    /// Sends `body` as [`BodyProbe::send`] does and checks the answer against the contract in
    /// the module documentation; `Err` says what broke it.
    pub fn check(&self, route: u8, body: &[u8]) -> Result<ProbeAnswer, String> {
        let answer = self.send(route, body);
        check_answer(&answer)?;
        Ok(answer)
    }
}

/// The contract every answer to a body keeps (see the module documentation).
pub fn check_answer(answer: &ProbeAnswer) -> Result<(), String> {
    let status = answer.status;
    if !(200..500).contains(&status) {
        return Err(format!("status {status}: {}", answer.body));
    }
    if status < 400 {
        return Ok(());
    }
    let error = &answer.body["error"];
    let code = error["code"].as_str().unwrap_or("");
    let message = error["message"].as_str().unwrap_or("");
    if code.is_empty() || message.is_empty() {
        return Err(format!(
            "status {status} without a JSON error: {}",
            answer.body
        ));
    }
    if status == 400 || status == 422 {
        let named = error["fields"].as_array().is_some_and(|f| {
            f.iter()
                .any(|f| f["field"].as_str().is_some_and(|n| !n.is_empty()))
        });
        if !named {
            return Err(format!("status {status} names no field: {}", answer.body));
        }
    }
    Ok(())
}

async fn seeded_store(url: &DatabaseUrl) -> Result<Store, directory_store::StoreError> {
    let store = Store::connect_with(url, StoreOptions::default()).await?;
    let ctx = WriteCtx::import("probe", 1_700_000_000_000);
    store
        .create_department(&ctx, Department::new(OaDeptId(1), "Root", None))
        .await?;
    store
        .create_department(
            &ctx,
            Department::new(OaDeptId(2), "Sales", Some(OaDeptId(1))),
        )
        .await?;
    let user = directory_model::User::new(
        directory_model::OaUserId::new("u1"),
        "User One",
        &[OaDeptId(2)],
    );
    store.create_user(&ctx, user).await?;
    store
        .save_role_group(
            &ctx,
            directory_model::RoleGroup {
                id: directory_model::OaRoleGroupId(1),
                name: "Functions".into(),
            },
            directory_store::Expect::Absent,
        )
        .await?;
    store
        .save_role(
            &ctx,
            directory_model::Role {
                id: directory_model::OaRoleId(1),
                group: directory_model::OaRoleGroupId(1),
                name: "Reviewer".into(),
            },
            directory_store::Expect::Absent,
        )
        .await?;
    Ok(store)
}
