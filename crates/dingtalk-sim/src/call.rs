//! The trip of one DingTalk business call, in the order a real one takes it: find the endpoint
//! (unknown topapi method → 22, unknown path → 404 body), check the HTTP method, read the
//! parameters from query and body, check the access token, apply the per-API rate limit (90018),
//! maybe inject a fault, run the operation under the org lock (recording the resulting changes
//! as events), and hold a slow-faulted answer back. The latency layer here adds `latency_ms` to
//! every DingTalk answer, errors included, and marks the call answered in the call log
//! (`call_log`). Locks are never held across an `.await`.

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::api::{self, Route};
use crate::call_log::LoggedCallId;
use crate::envelope::{Family, bad_gateway, error_body, json_response, success_body};
use crate::error::Rejection;
use crate::events::Origin;
use crate::gateway::{self, CallOutcome, Fault, Pass, TokenCheck};
use crate::params::Params;
use crate::state::{Shared, lock};
use crate::{callback_delivery, new_api};

/// Delays the answer by the current `latency_ms` (a real wait: it models the network).
pub(crate) async fn add_latency(
    Extension(shared): Extension<Arc<Shared>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let latency = Duration::from_millis(lock(&shared.gate).settings.latency_ms);
    let response = next.run(request).await;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(logged) = response.extensions().get::<LoggedCallId>() {
        lock(&shared.gate).log.answered(*logged);
    }
    response
}

/// The 90018 answer in the family's shape.
pub(crate) fn throttled(shared: &Shared, family: Family) -> Response {
    let id = shared.request_id();
    json_response(
        StatusCode::OK,
        family,
        error_body(family, 90018, gateway::THROTTLED_MSG, Some(id)),
    )
}

/// Holds a slow-faulted answer back past DingTalk's gateway timeout (the latency layer adds
/// `latency_ms` to every answer separately). A real wait, like the latency.
pub(crate) async fn delayed(pass: &Pass, response: Response) -> Response {
    if pass.fault == Some(Fault::Slow) && !pass.slow.is_zero() {
        tokio::time::sleep(pass.slow).await;
    }
    response
}

/// Which endpoint a known path is: a business operation, or the callback-registration API.
#[derive(Clone)]
enum Endpoint {
    Business(Route),
    Callback(Method),
}

/// Every other path: the DingTalk business endpoints.
pub(crate) async fn dingtalk_call(
    Extension(shared): Extension<Arc<Shared>>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let Ok(body) = axum::body::to_bytes(body, 4 * 1024 * 1024).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);

    let endpoint = match (api::route(&path), callback_delivery::api::method_of(&path)) {
        (Some(route), _) => Endpoint::Business(route),
        (None, Some(method)) => Endpoint::Callback(method),
        (None, None) if path.starts_with("/v1.0/") => {
            return new_api::call(&shared, &parts, &body).await;
        }
        (None, None) => return unknown_path(&shared, &path),
    };
    let call = Call {
        shared: &shared,
        path: &path,
        family: match &endpoint {
            Endpoint::Business(route) => route.family,
            Endpoint::Callback(_) => Family::Legacy,
        },
    };
    let params = match call.admit(
        &endpoint,
        &parts.method,
        parts.uri.query(),
        content_type.as_deref(),
        &body,
    ) {
        Ok(params) => params,
        Err(response) => return *response,
    };
    call.execute(&endpoint, &params).await
}

/// One known call on its way through the gateway.
struct Call<'a> {
    shared: &'a Arc<Shared>,
    path: &'a str,
    family: Family,
}

impl Call<'_> {
    /// A request id, for the families that carry one.
    fn request_id(&self) -> Option<String> {
        (self.family == Family::Top).then(|| self.shared.request_id())
    }

    /// A DingTalk error answer in the family's shape.
    fn reject(&self, r: &Rejection) -> Response {
        json_response(
            StatusCode::OK,
            self.family,
            error_body(self.family, r.code, &r.msg, self.request_id()),
        )
    }

    /// Counts a refused call and answers its rejection.
    fn refuse(&self, r: &Rejection) -> Response {
        self.shared.record_call(self.path, CallOutcome::Error);
        self.reject(r)
    }

    /// The checks before the gateway: HTTP method, readable parameters, a valid token.
    fn admit(
        &self,
        endpoint: &Endpoint,
        method: &Method,
        query: Option<&str>,
        content_type: Option<&str>,
        body: &Bytes,
    ) -> Result<Params, Box<Response>> {
        let wanted = match endpoint {
            Endpoint::Callback(method) => method.clone(),
            Endpoint::Business(route) if route.get => Method::GET,
            Endpoint::Business(_) => Method::POST,
        };
        if *method != wanted {
            return Err(Box::new(if wanted == Method::GET {
                self.refuse(&Rejection::new(43001, "需要GET请求"))
            } else {
                self.refuse(&Rejection::new(43002, "需要POST请求"))
            }));
        }
        let Ok(params) = Params::parse(query, content_type, body) else {
            return Err(Box::new(self.refuse(&Rejection::param("body"))));
        };
        let token = self
            .shared
            .check_token(params.str("access_token").as_deref());
        if token != TokenCheck::Valid {
            self.shared.record_call(self.path, CallOutcome::Error);
            return Err(Box::new(self.token_refused(token)));
        }
        Ok(params)
    }

    /// The answer to a missing, unknown or expired token, in the family's words.
    fn token_refused(&self, token: TokenCheck) -> Response {
        let body = match (self.family, token) {
            (Family::Top, TokenCheck::Missing) => json!({
                "errcode": 88, "sub_code": "40000", "sub_msg": "access_token is blank",
                "errmsg": "ding talk error[subcode=40000,submsg=access_token is blank]",
                "request_id": self.shared.request_id(),
            }),
            (Family::Top, _) => json!({
                "errcode": 88, "sub_code": "40014", "sub_msg": "不合法的access_token",
                "errmsg": "ding talk error[subcode=40014,submsg=不合法的access_token]",
                "request_id": self.shared.request_id(),
            }),
            (Family::Legacy, TokenCheck::Missing) => {
                json!({"errcode": 41001, "errmsg": "缺少参数access_token"})
            }
            (Family::Legacy, _) => json!({"errcode": 40014, "errmsg": "不合法的access_token"}),
        };
        json_response(StatusCode::OK, self.family, body)
    }

    /// The gateway (rate limit, faults), then the operation itself and its answer.
    async fn execute(&self, endpoint: &Endpoint, params: &Params) -> Response {
        let Some(pass) = self.shared.gate_pass(self.path) else {
            return throttled(self.shared, self.family);
        };
        let subject = params.str("userid").or_else(|| params.str("dept_id"));
        let logged = lock(&self.shared.gate).log.start(self.path, subject);
        let mut response = self.answer(endpoint, params, &pass).await;
        response.extensions_mut().insert(logged);
        response
    }

    /// The answer of a call that passed the gateway: its fault, or the operation's result.
    async fn answer(&self, endpoint: &Endpoint, params: &Params, pass: &Pass) -> Response {
        match pass.fault {
            Some(Fault::SystemBusy) => {
                self.shared.record_call(self.path, CallOutcome::Faulted);
                let response = self.reject(&Rejection::new(-1, "系统繁忙"));
                return delayed(pass, response).await;
            }
            Some(Fault::BadGateway) => {
                self.shared.record_call(self.path, CallOutcome::Faulted);
                return delayed(pass, bad_gateway()).await;
            }
            Some(Fault::Slow) | None => {}
        }
        let result = match endpoint {
            Endpoint::Business(route) => self
                .shared
                .run(|org| (route.handler)(org, params), Origin::Api),
            Endpoint::Callback(_) => {
                callback_delivery::api::handle(self.shared, self.path, params).await
            }
        };
        let outcome = match (&result, pass.fault) {
            (_, Some(Fault::Slow)) => CallOutcome::Faulted,
            (Ok(_), _) => CallOutcome::Ok,
            (Err(_), _) => CallOutcome::Error,
        };
        self.shared.record_call(self.path, outcome);
        let response = match result {
            Ok(reply) => json_response(
                StatusCode::OK,
                self.family,
                success_body(self.family, reply, self.request_id()),
            ),
            Err(rejection) => self.reject(&rejection),
        };
        delayed(pass, response).await
    }
}

/// The answer to a path DingTalk does not have: errcode 22 naming the TOP method for a
/// `/topapi/` path, a 404 body otherwise. The 404 body comes with HTTP **404**, not the 200 the
/// probe saw on real DingTalk: a client that only checks the HTTP status (the new SDKs do) must
/// never take a path the simulator does not have for a success (issue 18). (`/v1.0/` paths get
/// the new API's 404 in `new_api`.)
fn unknown_path(shared: &Shared, path: &str) -> Response {
    let (family, body) = if path.starts_with("/topapi/") {
        let method = api::top_method_name(path);
        let sub_msg = format!("不合法ApiName，ApiName = {method}");
        (
            Family::Top,
            json!({
                "errcode": 22,
                "sub_msg": sub_msg,
                "errmsg": format!("Invalid method[submsg={sub_msg}]"),
                "request_id": shared.request_id(),
            }),
        )
    } else {
        (
            Family::Legacy,
            json!({"errcode": 404, "errmsg": "请求的URI地址不存在"}),
        )
    };
    let status = match family {
        Family::Top => StatusCode::OK,
        Family::Legacy => StatusCode::NOT_FOUND,
    };
    shared.record_call(path, CallOutcome::Error);
    json_response(status, family, body)
}
