//! The new API's business paths (`api.dingtalk.com`, `/v1.0/...`) other than the token and
//! Stream registration, which have their own routes.
//!
//! The facts (`dingtalk-api.md` §9) say the v1.0 contact endpoints are ancillary: user and
//! department reads and writes stay on topapi. The ones simulated here are the server-side
//! lookups a third-party client makes with an app token:
//! - `POST /v1.0/contact/users/search` `{queryWord, offset, size, fullMatchField?}` →
//!   `{hasMore, totalCount, list: [userid]}` (name contains the word; `fullMatchField: 1` means
//!   the whole name);
//! - `POST /v1.0/contact/departments/search` `{queryWord, offset, size}` →
//!   `{hasMore, totalCount, list: [deptId]}`;
//! - `GET /v1.0/contact/empLeaveRecords?startTime&endTime&nextToken&maxResults` → who left when
//!   (`leave_records`).
//!
//! The new API's rules, unlike oapi's: the token travels only in the header
//! `x-acs-dingtalk-access-token` (a `?access_token=` or `Authorization: Bearer` is refused with
//! 400 `AuthenticationFailed.MissingParameter`, [PROBE] P7/P10); a bad or expired token is 400
//! `InvalidAuthentication`; errors are a non-2xx status with `{requestid, code, message}`, never
//! a 200. Every other `/v1.0/` path (or a known path with another method) is not simulated and
//! answers HTTP 404 `{"code":"InvalidAction.NotFound"}` — stricter than the 200 `errcode 404`
//! the probe saw, so no client can take it for a success.
//!
//! Choices where the facts are silent: `offset` and `size` are required and `size` is 1–100
//! (400 `invalidParameter` naming the field otherwise); matches are listed in id order;
//! `users/search` with `fullMatchField` other than 1 matches by substring.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::call::delayed;
use crate::envelope::{Family, bad_gateway, json_response, new_api_error};
use crate::gateway::{CallOutcome, Fault, TokenCheck};
use crate::org::Org;
use crate::state::{Shared, lock};

mod leave_records;

/// The header the new API reads the access token from.
pub const TOKEN_HEADER: &str = "x-acs-dingtalk-access-token";

/// Largest `size` of the search endpoints.
const MAX_SEARCH_SIZE: i64 = 100;

/// A refused new-API call: HTTP status, `code`, `message`.
pub(crate) type Refusal = (StatusCode, &'static str, String);

/// One simulated new-API endpoint: it reads the JSON body (POST) or the query as an object
/// (GET).
type Handler = fn(&Shared, &Value) -> Result<Value, Refusal>;

/// The endpoint for `method path`, or `None` when it is not simulated.
fn route(method: &Method, path: &str) -> Option<Handler> {
    match (method.as_str(), path) {
        ("POST", "/v1.0/contact/users/search") => Some(|s, b| lock(&s.org).search_users(b)),
        ("POST", "/v1.0/contact/departments/search") => Some(|s, b| lock(&s.org).search_depts(b)),
        ("GET", "/v1.0/contact/empLeaveRecords") => Some(leave_records::list),
        _ => None,
    }
}

/// Serves a `/v1.0/` path that has no route of its own.
pub(crate) async fn call(shared: &Arc<Shared>, parts: &Parts, body: &Bytes) -> Response {
    let path = parts.uri.path();
    let error = |status, code: &str, message: &str| {
        new_api_error(&shared.request_id(), status, code, message)
    };
    let Some(handler) = route(&parts.method, path) else {
        shared.record_call(path, CallOutcome::Error);
        return error(
            StatusCode::NOT_FOUND,
            "InvalidAction.NotFound",
            "请求的URI地址不存在",
        );
    };
    let token = parts
        .headers
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok());
    match shared.check_token(token) {
        TokenCheck::Valid => {}
        TokenCheck::Missing => {
            shared.record_call(path, CallOutcome::Error);
            return error(
                StatusCode::BAD_REQUEST,
                "AuthenticationFailed.MissingParameter",
                "缺少参数：x-acs-dingtalk-access-token",
            );
        }
        TokenCheck::Invalid => {
            shared.record_call(path, CallOutcome::Error);
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidAuthentication",
                "不合法的access_token",
            );
        }
    }
    let Some(pass) = shared.gate_pass(path) else {
        return error(
            StatusCode::FORBIDDEN,
            "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
            "应用调用该接口的QPS超过限制",
        );
    };
    match pass.fault {
        Some(Fault::SystemBusy) => {
            shared.record_call(path, CallOutcome::Faulted);
            let response = error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "unknownError",
                "未知错误",
            );
            return delayed(&pass, response).await;
        }
        Some(Fault::BadGateway) => {
            shared.record_call(path, CallOutcome::Faulted);
            return delayed(&pass, bad_gateway()).await;
        }
        Some(Fault::Slow) | None => {}
    }
    let input = if parts.method == Method::GET {
        query_object(parts)
    } else {
        json_body(parts, body)
    };
    let result = input.and_then(|input| handler(shared, &input));
    let outcome = match (&result, pass.fault) {
        (_, Some(Fault::Slow)) => CallOutcome::Faulted,
        (Ok(_), _) => CallOutcome::Ok,
        (Err(_), _) => CallOutcome::Error,
    };
    shared.record_call(path, outcome);
    let response = match result {
        Ok(value) => json_response(StatusCode::OK, Family::Legacy, value),
        Err((status, code, message)) => error(status, code, &message),
    };
    delayed(&pass, response).await
}

/// The query string as a JSON object of strings.
fn query_object(parts: &Parts) -> Result<Value, Refusal> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(parts.uri.query().unwrap_or(""))
        .map_err(|_| invalid("query"))?;
    Ok(Value::Object(
        pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
    ))
}

/// The JSON body; the new API takes nothing else ("body is mandatory").
fn json_body(parts: &Parts, body: &Bytes) -> Result<Value, Refusal> {
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/json"));
    let parsed = is_json
        .then(|| serde_json::from_slice::<Value>(body).ok())
        .flatten()
        .filter(Value::is_object);
    parsed.ok_or((
        StatusCode::BAD_REQUEST,
        "MissingParameter",
        "body is mandatory".to_owned(),
    ))
}

/// A required integer field (numbers sent as strings accepted, as everywhere in DingTalk).
pub(crate) fn int_field(body: &Value, name: &str) -> Result<i64, Refusal> {
    let value = body.get(name).ok_or_else(|| {
        (
            StatusCode::BAD_REQUEST,
            "missingParameter",
            format!("缺少参数 {name}"),
        )
    })?;
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
        .ok_or_else(|| invalid(name))
}

pub(crate) fn invalid(name: &str) -> Refusal {
    (
        StatusCode::BAD_REQUEST,
        "invalidParameter",
        format!("参数 {name} 不合法"),
    )
}

/// `queryWord`, `offset` and `size` of a search, checked.
fn search_page(body: &Value) -> Result<(String, usize, usize), Refusal> {
    let word = body
        .get("queryWord")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .ok_or((
            StatusCode::BAD_REQUEST,
            "missingParameter",
            "缺少参数 queryWord".to_owned(),
        ))?;
    let offset = usize::try_from(int_field(body, "offset")?).map_err(|_| invalid("offset"))?;
    let size = int_field(body, "size")?;
    if !(1..=MAX_SEARCH_SIZE).contains(&size) {
        return Err(invalid("size"));
    }
    let size = usize::try_from(size).map_err(|_| invalid("size"))?;
    Ok((word.to_owned(), offset, size))
}

/// One page of search hits in the new API's shape.
fn search_result(hits: Vec<Value>, offset: usize, size: usize) -> Value {
    let total = hits.len();
    let list: Vec<Value> = hits.into_iter().skip(offset).take(size).collect();
    json!({
        "hasMore": offset.saturating_add(size) < total,
        "totalCount": total,
        "list": list,
    })
}

impl Org {
    /// `POST /v1.0/contact/users/search`: current users whose name contains `queryWord` (or is
    /// it, with `fullMatchField: 1`).
    fn search_users(&self, body: &Value) -> Result<Value, Refusal> {
        let (word, offset, size) = search_page(body)?;
        let exact = body
            .get("fullMatchField")
            .is_some_and(|v| v.as_i64() == Some(1) || v.as_str() == Some("1"));
        let hits = self
            .users
            .values()
            .filter(|u| {
                if exact {
                    u.name == word
                } else {
                    u.name.contains(&word)
                }
            })
            .map(|u| json!(u.userid))
            .collect();
        Ok(search_result(hits, offset, size))
    }

    /// `POST /v1.0/contact/departments/search`: departments whose name contains `queryWord`.
    fn search_depts(&self, body: &Value) -> Result<Value, Refusal> {
        let (word, offset, size) = search_page(body)?;
        let hits = self
            .depts
            .values()
            .filter(|d| d.name.contains(&word))
            .map(|d| json!(d.id))
            .collect();
        Ok(search_result(hits, offset, size))
    }
}
