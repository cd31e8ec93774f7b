//! The OA-facing HTTP API under `/api/v1`: the directory's CRUD, moves, lists and change feed.
//!
//! This is the left-hand side of the bridge (issue 4, part 3): the OA system reads and writes
//! its contacts here, and every write lands in the store together with its outbox entry, from
//! which the pusher takes it to DingTalk. The module holds no SQL and no DingTalk detail: it
//! decodes, authenticates, maps the wire shape to `directory-model` types, calls
//! `directory-store`, and maps the result (or the refusal) back to HTTP.
//!
//! Conventions every route follows:
//! - Entities carry `version`; reads and writes return it as a strong `ETag` (`"7"`).
//! - `PATCH` and `DELETE` honour `If-Match` when present (412 and nothing written if stale)
//!   and work without it. A `PATCH` without `If-Match` still never loses a concurrent write:
//!   it is applied to the version it read and re-applied to the newer one if that changed.
//! - `PATCH` bodies are JSON merge patches: an absent field stays, `null` clears it (and is
//!   refused with 422 for a field that cannot be empty, such as `name` or `parent`).
//! - Lists are keyset-paged by id (`after`, `limit` ≤ 1000) and return `next`, the URL of the
//!   next page (also as a `Link: <…>; rel="next"` header), `null` on the last page.
//! - Errors are JSON (see [`error`]); request bodies refuse unknown fields.
//!
//! # Layout
//! - [`error`]: [`ApiError`] and the `{"error":{code,message,fields}}` body; the only place
//!   that decides statuses.
//! - [`extract`]: JSON and query extractors with field-level errors, `If-Match` / `ETag`, the
//!   body limit.
//! - [`auth`]: [`ApiToken`] (digest only, redacted) and the bearer middleware.
//! - [`departments`], [`users`], [`role_groups`], [`roles`], [`role_assignments`], [`changes`]: the
//!   routes, each with its request and response types.
//! - [`openapi`]: the OpenAPI document, built from the handlers' annotations by the same router
//!   that serves them, so the two cannot drift apart.
//! - [`metrics`]: request counts and latency per route.
//! - [`probe`]: hostile-body probing through the real router in-process, shared by the fuzz
//!   target and the CI property test.

pub mod auth;
mod builtin_roles;
pub mod changes;
pub mod departments;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod openapi;
pub mod probe;
pub mod role_assignments;
pub mod role_groups;
pub mod roles;
pub mod users;

use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Extension, Json};
use directory_store::{Store, StoreError, WriteCtx};
use serde::Serialize;

pub use auth::{ApiToken, Caller, TokenList};
pub use error::ApiError;

pub use crate::clock::{Clock, IntoClock, SharedClock, system_clock};

/// What the OA API needs from the service.
#[derive(Clone)]
pub struct ApiState {
    /// The OA directory: every read and write goes through it.
    pub store: Store,
    /// The accepted bearer tokens; empty means nobody gets in (401 for everything but the
    /// OpenAPI document). Replaced live on SIGHUP.
    pub tokens: TokenList,
    /// Timestamps for writes (the audit log's `at_ms`, `updated_since` filters).
    pub clock: SharedClock,
}

impl ApiState {
    /// State with the wall clock.
    pub fn new(store: Store, tokens: Vec<ApiToken>) -> Self {
        Self {
            store,
            tokens: TokenList::new(tokens),
            clock: system_clock(),
        }
    }

    /// Replaces the clock (the service's own; a pinned one in tests).
    pub fn with_clock(mut self, clock: impl IntoClock) -> Self {
        self.clock = clock.into_clock();
        self
    }

    /// The write context of an OA write by `caller`, stamped now.
    fn write_ctx(&self, caller: &Caller) -> WriteCtx {
        WriteCtx::oa(caller.actor(), self.clock.now_ms())
    }
}

impl fmt::Debug for ApiState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiState")
            .field("store", &self.store)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

/// The OA API, with every route under `/api/v1`. Mount it with `Router::merge` into the
/// service's router (it sets no router-level fallback, so the service may have its own).
pub fn router(state: ApiState) -> Router {
    let (protected, doc) = openapi::routes().split_for_parts();
    // Unknown paths under /api/v1 answer in the API's JSON shape (after authentication, like
    // every other path there). A catch-all route rather than a router fallback keeps this
    // router mergeable into a service router that has its own fallback.
    let protected = protected
        .route("/api/v1/{*rest}", any(not_found))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    let public = Router::new()
        .route("/api/v1/openapi.json", get(openapi::openapi_json))
        .layer(Extension(Arc::new(doc)));
    Router::new()
        .merge(public)
        .merge(protected)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(metrics::record))
        .layer(DefaultBodyLimit::max(extract::BODY_LIMIT))
        .layer(axum::middleware::from_fn(auth::hide_credentials))
        .with_state(state)
}

/// Unknown paths get the same JSON error shape as everything else.
async fn not_found() -> ApiError {
    ApiError::NotFound("no such route; see /api/v1/openapi.json".to_owned())
}

/// How often a `PATCH` without `If-Match` is tried when another writer commits between its
/// read and its write. Each retry means someone else committed, so this only runs out under a
/// write storm on one entity; the client then gets the 412.
const PATCH_ATTEMPTS: usize = 3;

/// Runs one read-modify-write `attempt` of a `PATCH`. With `If-Match` a stale version is the
/// client's 412; without it, the client asked for "apply my fields to whatever is current",
/// so a version conflict (someone wrote between our read and our write) re-runs the attempt
/// on the newer state instead of overwriting that write with stale fields.
async fn retry_if_stale<T, F>(
    if_match: Option<i64>,
    mut attempt: impl FnMut() -> F,
) -> Result<T, ApiError>
where
    F: Future<Output = Result<T, ApiError>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Err(ApiError::Store(StoreError::VersionConflict { .. }))
                if if_match.is_none() && tries < PATCH_ATTEMPTS => {}
            other => return other,
        }
    }
}

/// A known path with a method it does not serve: JSON like every other error.
async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// A response carrying one entity and its `ETag`.
fn entity_response<T: Serialize>(
    status: StatusCode,
    version: i64,
    location: Option<String>,
    body: T,
) -> Response {
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::ETAG, extract::etag(version));
    if let Some(loc) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LOCATION, loc);
    }
    response
}

/// A page of a list, and where the next one is.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Paged<T> {
    /// This page's items, in id order.
    pub items: Vec<T>,
    /// The URL of the next page, or `null` on the last page.
    pub next: Option<String>,
}

/// A list response: the page as JSON and a `Link` header to the next page.
fn page_response<T: Serialize>(items: Vec<T>, next: Option<String>) -> Response {
    let link = next
        .as_ref()
        .and_then(|n| HeaderValue::from_str(&format!("<{n}>; rel=\"next\"")).ok());
    let mut response = Json(Paged { items, next }).into_response();
    if let Some(link) = link {
        response.headers_mut().insert(header::LINK, link);
    }
    response
}

/// The URL of the next page: the same query with `after` moved on.
fn next_link<Q: Serialize>(path: &str, query: &Q) -> Option<String> {
    // Query types hold only strings and numbers, which always encode.
    serde_urlencoded::to_string(query)
        .ok()
        .map(|q| format!("{path}?{q}"))
}

/// Percent-encodes one path segment (user ids may contain anything).
fn path_segment(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use directory_store::EntityKind;

    use super::*;

    fn stale() -> ApiError {
        ApiError::Store(StoreError::VersionConflict {
            kind: EntityKind::Department,
            id: "2".into(),
            expected: 1,
            actual: 2,
        })
    }

    #[tokio::test]
    async fn patch_without_if_match_is_reapplied_after_a_concurrent_write() {
        let tries = Cell::new(0);
        let result = retry_if_stale(None, || async {
            tries.set(tries.get() + 1);
            if tries.get() == 1 {
                Err(stale())
            } else {
                Ok("saved")
            }
        })
        .await;
        assert_eq!(result.ok(), Some("saved"));
        assert_eq!(tries.get(), 2);
    }

    #[tokio::test]
    async fn patch_with_if_match_is_never_retried() {
        let tries = Cell::new(0);
        let result: Result<(), _> = retry_if_stale(Some(1), || async {
            tries.set(tries.get() + 1);
            Err(stale())
        })
        .await;
        assert!(matches!(
            result,
            Err(ApiError::Store(StoreError::VersionConflict { .. }))
        ));
        assert_eq!(tries.get(), 1);
    }

    #[tokio::test]
    async fn retries_are_bounded_and_other_errors_pass_through() {
        let tries = Cell::new(0);
        let result: Result<(), _> = retry_if_stale(None, || async {
            tries.set(tries.get() + 1);
            Err(stale())
        })
        .await;
        assert!(result.is_err());
        assert_eq!(tries.get(), PATCH_ATTEMPTS);

        let tries = Cell::new(0);
        let result: Result<(), _> = retry_if_stale(None, || async {
            tries.set(tries.get() + 1);
            Err(ApiError::NotFound("gone".into()))
        })
        .await;
        assert!(matches!(result, Err(ApiError::NotFound(_))));
        assert_eq!(tries.get(), 1);
    }
}
