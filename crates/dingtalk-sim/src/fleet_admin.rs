//! `/_sim/orgs` and `/_sim/unions`: the routes that see the whole fleet — which corps the
//! simulator serves, and the trunk/branch links between them (see `fleet`). The routes of one
//! corp are `/_sim/orgs/{n}/...` (and `/_sim/...` for org 0), served by `admin` and the
//! channels' admin modules.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use crate::admin::bad_request;
use crate::fleet::{Fleet, UnionLink};
use crate::org::ROOT_DEPT;

type FleetState = State<Arc<Fleet>>;

pub(crate) fn routes(fleet: Arc<Fleet>) -> Router {
    Router::new()
        .route("/orgs", get(orgs))
        .route("/unions", get(unions).post(link).delete(unlink))
        .route("/ip", get(ip).post(set_ip))
        .with_state(fleet)
}

/// Every corp: its index, corp id, client id, name and admin prefix (no secrets; org `n`'s are
/// derived as `SimConfig::for_org` documents).
async fn orgs(State(fleet): FleetState) -> Response {
    let list: Vec<_> = fleet
        .corps
        .iter()
        .map(|c| {
            json!({
                "org": c.index,
                "corp_id": c.config.corp_id,
                "client_id": c.config.client_id,
                "corp_name": c.config.corp_name,
                "admin": format!("/_sim/orgs/{}", c.index),
            })
        })
        .collect();
    axum::Json(json!({"orgs": list})).into_response()
}

async fn unions(State(fleet): FleetState) -> Response {
    axum::Json(json!({"unions": fleet.links()})).into_response()
}

/// The body of `POST` / `DELETE /_sim/unions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkBody {
    trunk: usize,
    branch: usize,
    /// Only for `POST`: the trunk department the branch's copy sits under (default: root).
    parent_dept_id: Option<i64>,
}

fn link_body(body: &Bytes) -> Result<LinkBody, String> {
    serde_json::from_slice(body).map_err(|e| {
        format!("the body must be {{\"trunk\": n, \"branch\": m, \"parent_dept_id\"?: id}}: {e}")
    })
}

async fn link(State(fleet): FleetState, body: Bytes) -> Response {
    let body = match link_body(&body) {
        Ok(body) => body,
        Err(error) => return bad_request(&error),
    };
    let link = UnionLink {
        trunk: body.trunk,
        branch: body.branch,
        parent_dept_id: body.parent_dept_id.unwrap_or(ROOT_DEPT),
    };
    match fleet.link(link.clone()) {
        Ok(()) => axum::Json(json!({"errcode": 0, "union": link})).into_response(),
        Err(error) => bad_request(&error),
    }
}

async fn unlink(State(fleet): FleetState, body: Bytes) -> Response {
    let body = match link_body(&body) {
        Ok(body) => body,
        Err(error) => return bad_request(&error),
    };
    match fleet.unlink(body.trunk, body.branch) {
        Ok(link) => axum::Json(json!({"errcode": 0, "removed": link})).into_response(),
        Err(error) => bad_request(&error),
    }
}

/// `GET /_sim/ip`: the per-IP limit's settings and counts (`ip_limit`).
async fn ip(State(fleet): FleetState) -> Response {
    let now = fleet.corps[0].clock.now();
    let limiter = crate::state::lock(&fleet.ip);
    axum::Json(json!({
        "settings": limiter.settings,
        "counts": limiter.counts,
        "banned": limiter.any_banned(now),
    }))
    .into_response()
}

/// `POST /_sim/ip`: changes `per_20s`, `ip_qps`, `ban_secs`; `lift_bans: true` ends every ban.
async fn set_ip(State(fleet): FleetState, body: Bytes) -> Response {
    let patch: crate::ip_limit::IpLimitPatch = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return bad_request(&format!(
                "expected {{per_20s?, ip_qps?, ban_secs?, lift_bans?}}: {e}"
            ));
        }
    };
    let mut limiter = crate::state::lock(&fleet.ip);
    limiter.apply(&patch);
    axum::Json(json!({"errcode": 0, "settings": limiter.settings})).into_response()
}
