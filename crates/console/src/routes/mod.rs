//! The axum router: HTML under `/console`, JSON under `/api/v1/admin`, both over the same
//! `AdminBackend` calls. Routes mirror URLs: `html.rs` the pages, `login.rs` signing in and
//! out, `act.rs` the one form endpoint for operator actions, `api.rs` the JSON API, and
//! `request.rs` the cookie, session and CSRF plumbing they share.

mod act;
mod api;
mod assets;
mod html;
mod login;
mod request;

pub use api::{ADMIN_API, ApiRoute};
pub(crate) const SESSION_COOKIE_NAME: &str = request::SESSION_COOKIE;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};

use crate::auth::{LoginThrottle, SessionCodec};
use crate::backend::AdminBackend;
use crate::config::ConsoleConfig;

/// State shared by every handler.
#[derive(Debug)]
pub(crate) struct Shared<B> {
    pub backend: Arc<B>,
    pub codec: SessionCodec,
    pub throttle: LoginThrottle,
    pub config: ConsoleConfig,
}

pub(crate) type AppState<B> = Arc<Shared<B>>;

/// The console and the admin API, ready to be merged into the service's router (mount it at
/// the root: it owns the `/console` and `/api/v1/admin` prefixes).
pub fn router<B: AdminBackend>(backend: Arc<B>, config: ConsoleConfig) -> Router {
    let codec = SessionCodec::new(
        config.session_key.clone(),
        config.idle_timeout_secs,
        config.max_session_secs,
    );
    let throttle = LoginThrottle::new(config.throttle);
    let state = Arc::new(Shared {
        backend,
        codec,
        throttle,
        config,
    });
    let console = Router::new()
        .route("/console", get(html::overview::<B>))
        .route(
            "/console/login",
            get(login::form::<B>).post(login::submit::<B>),
        )
        .route("/console/logout", post(login::logout::<B>))
        .route("/console/users", get(html::users::<B>))
        .route("/console/users/{id}", get(html::user::<B>))
        .route("/console/departments", get(html::departments::<B>))
        .route("/console/departments/{id}", get(html::department::<B>))
        .route("/console/roles", get(html::roles::<B>))
        .route("/console/roles/{id}", get(html::role::<B>))
        .route("/console/role-groups/{id}", get(html::role_group::<B>))
        .route("/console/attention", get(html::attention::<B>))
        .route("/console/plan", get(html::plan::<B>))
        .route("/console/runs", get(html::runs::<B>))
        .route("/console/runs/{id}", get(html::run::<B>))
        .route("/console/audit", get(html::audit::<B>))
        .route("/console/settings", get(html::settings::<B>))
        .route("/console/act", post(act::submit::<B>))
        .route("/console/assets/{file}", get(assets::serve))
        .fallback(html::not_found::<B>);
    console
        .merge(api::routes::<B>())
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// Headers every console response carries: no framing, no sniffing, nothing from elsewhere
/// (the console loads only its own embedded assets), and no caching of pages.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let fixed = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}
