//! DingTalk's answer envelopes: the success and error bodies of the two oapi families, the
//! new API's `{requestid, code, message}` errors, and the gateway's 502 page.
//!
//! It sits below the org and the routes: the business rules answer a [`Reply`] and never see
//! an envelope, and every route wraps that reply here, so a family's shape is written once.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// What a successful operation answers, before the envelope is added.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// The payload goes under `result`.
    Result(Value),
    /// No payload (`{"errcode":0,"errmsg":"ok",...}` only).
    Nothing,
    /// These fields go at the top level, next to `errcode`.
    Fields(Map<String, Value>),
}

/// How a path authenticates and shapes its envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `/topapi/...`: auth errors are `88` with a `sub_code`; answers carry `request_id`.
    Top,
    /// Other oapi paths: auth errors are plain `40014`; no `request_id`.
    Legacy,
}

/// A JSON answer with DingTalk's content type for the family.
pub(crate) fn json_response(status: StatusCode, family: Family, body: Value) -> Response {
    let content_type = match family {
        Family::Top => "application/json;charset=UTF-8",
        Family::Legacy => "application/json",
    };
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
        .headers_mut()
        .insert(header::SERVER, HeaderValue::from_static("DingTalk/1.0.0"));
    response
}

/// The gateway's own 502 page (a fault), HTML like nginx's.
pub(crate) fn bad_gateway() -> Response {
    let mut response = (
        StatusCode::BAD_GATEWAY,
        "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>",
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    response
}

/// An error body in the family's shape.
pub(crate) fn error_body(
    family: Family,
    code: i64,
    msg: &str,
    request_id: Option<String>,
) -> Value {
    let mut m = Map::new();
    m.insert("errcode".into(), json!(code));
    m.insert("errmsg".into(), json!(msg));
    if let (Family::Top, Some(id)) = (family, request_id) {
        m.insert("request_id".into(), json!(id));
    }
    Value::Object(m)
}

/// An error of the new API (`api.dingtalk.com`): HTTP status + `{requestid, code, message}`;
/// the new API spells its request ids in upper case.
pub(crate) fn new_api_error(
    request_id: &str,
    status: StatusCode,
    code: &str,
    message: &str,
) -> Response {
    json_response(
        status,
        Family::Legacy,
        json!({"requestid": request_id.to_uppercase(), "code": code, "message": message}),
    )
}

/// The success envelope of the family.
pub(crate) fn success_body(family: Family, reply: Reply, request_id: Option<String>) -> Value {
    let mut m = Map::new();
    m.insert("errcode".into(), json!(0));
    m.insert("errmsg".into(), json!("ok"));
    match reply {
        Reply::Result(v) => {
            m.insert("result".into(), v);
        }
        Reply::Nothing => {}
        Reply::Fields(fields) => m.extend(fields),
    }
    if let (Family::Top, Some(id)) = (family, request_id) {
        m.insert("request_id".into(), json!(id));
    }
    Value::Object(m)
}
