//! The HTTP face of the simulator: it only assembles the router from the route modules —
//! DingTalk's own paths (the token endpoints, Stream registration and `/connect`, and every
//! business call) plus the `/_sim` admin routes. It is the top floor: nothing imports it but
//! `lib.rs`, so route modules share state through `state`, not through here.

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::call::{add_latency, dingtalk_call};
use crate::state::Shared;
use crate::token_routes::{get_token, new_token};
use crate::{admin, callback_delivery, stream};

/// The complete router.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
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
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            add_latency,
        ));
    Router::new()
        .nest(
            "/_sim",
            admin::routes()
                .merge(callback_delivery::admin::routes())
                .merge(stream::admin::routes()),
        )
        .route("/connect", get(stream::routes::connect))
        .merge(dingtalk)
        .with_state(shared)
}
