//! The HTTP face of the simulator: it only assembles the router from the route modules —
//! DingTalk's own paths (the token endpoints, Stream registration and `/connect`, and every
//! business call) plus the `/_sim` admin routes. It is the top floor: nothing imports it but
//! `lib.rs`, so route modules share state through `state`, not through here.
//!
//! Several corps share the one listener (`fleet`): DingTalk's paths first pass
//! [`route_to_corp`], which hands the handler the state of the corp the request's credentials,
//! token or ticket belong to; `/_sim/...` acts on org 0 and `/_sim/orgs/{n}/...` on org `n`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::call::{add_latency, dingtalk_call};
use crate::fleet::Fleet;
use crate::state::Shared;
use crate::token_routes::{get_token, new_token};
use crate::{admin, callback_delivery, fleet_admin, stream};

/// The complete router.
pub(crate) fn router(fleet: Arc<Fleet>) -> Router {
    // Every DingTalk answer (success, error, throttle or fault) waits `latency_ms`; the admin
    // routes do not.
    // A known path called with another method is, to DingTalk's gateway, a path it does not
    // have: it falls through to the business-call fallback's unknown-path answer (HTTP 404 with
    // DingTalk's body) instead of an empty 405.
    let dingtalk = Router::new()
        .route("/gettoken", get(get_token).fallback(dingtalk_call))
        .route(
            "/v1.0/oauth2/accessToken",
            post(new_token).fallback(dingtalk_call),
        )
        .route(
            "/v1.0/gateway/connections/open",
            post(stream::routes::open).fallback(dingtalk_call),
        )
        .fallback(dingtalk_call)
        .layer(axum::middleware::from_fn(add_latency));
    let per_corp = Router::new()
        .route("/connect", get(stream::routes::connect))
        .merge(dingtalk)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&fleet),
            route_to_corp,
        ));
    let mut app = Router::new().nest(
        "/_sim",
        corp_admin(&fleet.corps[0]).merge(fleet_admin::routes(Arc::clone(&fleet))),
    );
    for corp in &fleet.corps {
        app = app.nest(&format!("/_sim/orgs/{}", corp.index), corp_admin(corp));
    }
    app.merge(per_corp)
}

/// The `/_sim` routes that act on one corp.
fn corp_admin(corp: &Arc<Shared>) -> Router {
    admin::routes()
        .merge(callback_delivery::admin::routes())
        .merge(stream::admin::routes())
        .with_state(Arc::clone(corp))
}

/// Hands the request the state of its corp (see `Fleet::corp_for`). With one corp nothing is
/// read; with several, the body is read once here and put back for the handler.
async fn route_to_corp(
    State(fleet): State<Arc<Fleet>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(denied) = ip_denied(&fleet, &request) {
        return denied;
    }
    let (mut parts, body) = request.into_parts();
    let body = if fleet.corps.len() == 1 {
        body
    } else {
        let Ok(bytes) = axum::body::to_bytes(body, 4 * 1024 * 1024).await else {
            return StatusCode::PAYLOAD_TOO_LARGE.into_response();
        };
        let corp = Arc::clone(fleet.corp_for(&parts, &bytes));
        parts.extensions.insert(corp);
        axum::body::Body::from(bytes)
    };
    if fleet.corps.len() == 1 {
        parts.extensions.insert(Arc::clone(&fleet.corps[0]));
    }
    next.run(Request::from_parts(parts, body)).await
}

/// DingTalk's per-IP limit (`ip_limit`), before the request reaches any corp: `Some` is the
/// gateway's deny answer. A request without a peer address (a router served without connect
/// info) counts under the unspecified address, so the limit still applies.
fn ip_denied(fleet: &Fleet, request: &Request) -> Option<Response> {
    let ip = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |c| {
            c.0.ip()
        });
    let now = fleet.corps[0].clock.now();
    let denied = crate::state::lock(&fleet.ip).admit(ip, now).err()?;
    let uuid = crate::gateway::random_hex(&mut crate::state::lock(&fleet.corps[0].gate).rng, 32);
    let body = serde_json::json!({
        "status": 1111,
        "wait": denied.wait_minutes(),
        "source": "x5",
        "punish": "deny",
        "uuid": uuid,
    });
    Some((StatusCode::OK, axum::Json(body)).into_response())
}
