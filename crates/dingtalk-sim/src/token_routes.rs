//! DingTalk's two token endpoints: `GET /gettoken` (oapi, `{errcode, access_token, expires_in}`)
//! and `POST /v1.0/oauth2/accessToken` (the new API, `{accessToken, expireIn}`). Both pass the
//! gateway (rate limit, faults, slow answers) like any other call and issue the same one token
//! of the app (see `gateway::TokenStore`).

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::call::{delayed, throttled};
use crate::envelope::{Family, bad_gateway, error_body, json_response, new_api_error};
use crate::gateway::{CallOutcome, Fault};
use crate::params::Params;
use crate::state::Shared;

/// `GET /gettoken?appkey=&appsecret=` (also the older `corpid`/`corpsecret` pair).
pub(crate) async fn get_token(Extension(shared): Extension<Arc<Shared>>, uri: Uri) -> Response {
    const PATH: &str = "/gettoken";
    let params = Params::parse(uri.query(), None, b"").unwrap_or_default();
    let Some(pass) = shared.gate_pass(PATH) else {
        return throttled(&shared, Family::Legacy);
    };
    let legacy = |code: i64, msg: &str| {
        json_response(
            StatusCode::OK,
            Family::Legacy,
            error_body(Family::Legacy, code, msg, None),
        )
    };
    let (response, outcome) = match pass.fault {
        Some(Fault::SystemBusy) => (legacy(-1, "系统繁忙"), CallOutcome::Faulted),
        Some(Fault::BadGateway) => (bad_gateway(), CallOutcome::Faulted),
        _ => match check_oapi_credentials(&shared, &params) {
            Ok(()) => {
                let (token, ttl) = shared.issue_token();
                let body = json!({"errcode": 0, "access_token": token, "errmsg": "ok", "expires_in": ttl.as_secs()});
                (
                    json_response(StatusCode::OK, Family::Legacy, body),
                    CallOutcome::Ok,
                )
            }
            Err((code, msg)) => (legacy(code, msg), CallOutcome::Error),
        },
    };
    shared.record_call(PATH, outcome);
    delayed(&pass, response).await
}

/// Checks `appkey`/`appsecret` (or the older `corpid`/`corpsecret`); the error is DingTalk's
/// code and message for the pair given.
fn check_oapi_credentials(shared: &Shared, params: &Params) -> Result<(), (i64, &'static str)> {
    let config = &shared.config;
    match (params.str("appkey"), params.str("corpid")) {
        (Some(key), _) => (key == config.client_id
            && params.str("appsecret").as_deref() == Some(config.client_secret.as_str()))
        .then_some(())
        .ok_or((40096, "不合法的appKey或appSecret")),
        (None, Some(corp)) => (corp == config.corp_id
            && params.str("corpsecret").as_deref() == Some(config.client_secret.as_str()))
        .then_some(())
        .ok_or((40089, "不合法的corpId或corpSecret")),
        (None, None) => Err((40035, "缺少参数 corpid or appkey")),
    }
}

/// `POST /v1.0/oauth2/accessToken` with JSON `{appKey, appSecret}`.
pub(crate) async fn new_token(
    Extension(shared): Extension<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const PATH: &str = "/v1.0/oauth2/accessToken";
    let Some(pass) = shared.gate_pass(PATH) else {
        return new_api_error(
            &shared.request_id(),
            StatusCode::FORBIDDEN,
            "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
            "应用调用该接口的QPS超过限制",
        );
    };
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/json"));
    let error = |status, code, message| new_api_error(&shared.request_id(), status, code, message);
    let (response, outcome) = match pass.fault {
        Some(Fault::SystemBusy) => (
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "unknownError",
                "未知错误",
            ),
            CallOutcome::Faulted,
        ),
        Some(Fault::BadGateway) => (bad_gateway(), CallOutcome::Faulted),
        _ if !is_json => (
            error(
                StatusCode::BAD_REQUEST,
                "MissingParameter",
                "body is mandatory",
            ),
            CallOutcome::Error,
        ),
        _ => match check_new_api_credentials(&shared, &body) {
            Ok(()) => {
                let (token, ttl) = shared.issue_token();
                let body = json!({"accessToken": token, "expireIn": ttl.as_secs()});
                (
                    json_response(StatusCode::OK, Family::Legacy, body),
                    CallOutcome::Ok,
                )
            }
            Err((code, message)) => (
                error(StatusCode::BAD_REQUEST, code, message),
                CallOutcome::Error,
            ),
        },
    };
    shared.record_call(PATH, outcome);
    delayed(&pass, response).await
}

/// Checks the JSON body's `appKey`/`appSecret`; the error is the new API's code and message.
fn check_new_api_credentials(
    shared: &Shared,
    body: &[u8],
) -> Result<(), (&'static str, &'static str)> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    match (field("appKey"), field("appSecret")) {
        (Some(key), Some(secret))
            if key == shared.config.client_id && secret == shared.config.client_secret =>
        {
            Ok(())
        }
        (Some(_), Some(_)) => Err(("invalidClientIdOrSecret", "无效的clientId或者clientSecret")),
        _ => Err(("MissingParameter", "缺少参数 appKey 或 appSecret")),
    }
}
