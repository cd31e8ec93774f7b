//! Request decoding at the HTTP edge: JSON bodies, query strings, `If-Match` and `ETag`.
//!
//! axum's own `Json` and `Query` extractors answer bad input with plain-text bodies and, for a
//! wrong type deep in a body, a message that does not say which field it was. The OA system
//! needs the field, so these extractors decode through `serde_path_to_error` and turn every
//! failure into an [`ApiError`] naming it: an unknown field (request types use
//! `deny_unknown_fields`), a missing one, a wrong type. The body size limit itself is enforced
//! by axum's `DefaultBodyLimit` layer (see `mod.rs`); reading past it surfaces here as a 413.

use axum::body::Bytes;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::error::{ApiError, FieldError};

/// The largest request body the OA API reads (1 MiB): far above any single entity (a user with
/// 100 departments and a full extension is under 30 KiB), far below what could hurt the server.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// A JSON request body, decoded with field-level errors.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        check_json_content_type(req.headers())?;
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge { limit: BODY_LIMIT }
            } else {
                ApiError::BadRequest(FieldError::new("body", "malformed", rejection.body_text()))
            }
        })?;
        decode_json(&bytes).map(ApiJson)
    }
}

/// Refuses bodies that do not say they are JSON (`application/json`, optionally with
/// parameters, or any `+json` type such as `application/merge-patch+json`).
fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let is_json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(value.to_owned()))
    }
}

/// Decodes a JSON document, naming the field of the first problem.
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every request body is an object. serde's derived structs also accept a JSON array, read
    // positionally, so `["Ops", 1]` would otherwise pass as a department with fields nobody
    // named (found by the body fuzzing).
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        serde::de::IgnoredAny::deserialize(&mut de)
            .and_then(|_| de.end())
            .map_err(|e| json_error(String::new(), e))?;
        return Err(ApiError::Invalid(vec![FieldError::new(
            "body",
            "invalid_type",
            "the body must be a JSON object",
        )]));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| json_error(e.path().to_string(), e.into_inner()))?;
    // Trailing garbage after the document is a syntax error, not something to ignore.
    de.end().map_err(|e| json_error(String::new(), e))?;
    Ok(value)
}

fn json_error(path: String, e: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => ApiError::Invalid(vec![data_error(&path, &e.to_string())]),
        Category::Syntax | Category::Eof | Category::Io => ApiError::BadRequest(FieldError::new(
            "body",
            "malformed",
            format!("the body is not valid JSON: {e}"),
        )),
    }
}

/// Turns serde's data error into a field error. serde reports unknown and missing fields by
/// message only (`unknown field `x`, expected …`), so the field name is taken from between the
/// first pair of backticks and appended to the path of the object that held it.
fn data_error(path: &str, message: &str) -> FieldError {
    // serde_path_to_error prints the root as ".".
    let path = if path == "." { "" } else { path };
    let join = |name: &str| {
        if path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    let quoted = message.split('`').nth(1);
    // serde_json appends " at line L column C"; the field path says more to a client.
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .to_owned();
    if message.starts_with("unknown field") {
        // An empty key is still a field the client sent; it is named `""` so the answer
        // names something (found by the body fuzzing).
        let name = match quoted.unwrap_or("") {
            "" => "\"\"",
            name => name,
        };
        // For an unknown field the path already ends with it.
        let field = if path.ends_with(name) && !name.is_empty() {
            path.to_owned()
        } else {
            join(name)
        };
        FieldError::new(field, "unknown_field", message)
    } else if message.starts_with("missing field") {
        FieldError::new(join(quoted.unwrap_or("")), "required", message)
    } else {
        let field = if path.is_empty() { "body" } else { path };
        FieldError::new(field, "invalid_type", message)
    }
}

/// A query string, decoded with field-level errors; request types use `deny_unknown_fields`
/// so that a misspelt filter is refused rather than silently ignored.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        decode_query(query).map(ApiQuery)
    }
}

/// Decodes a query string, naming the parameter of the first problem.
pub fn decode_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        ApiError::Invalid(vec![data_error(&path, &e.into_inner().to_string())])
    })
}

/// A path parameter. One that does not parse (`/departments/abc`: an id that is not a number)
/// is a malformed request, not a missing entity: 400 `bad_request` naming the parameter and the
/// type it must have, in the API's JSON shape rather than axum's plain-text 404 (issue 18).
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_owned());
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|r| path_rejection(r, route.as_deref()))
    }
}

/// The API's answer to a path that axum could not decode into the handler's parameters.
/// `route` (`/api/v1/departments/{id}`) names the parameter when axum does not: it reports a
/// route's only parameter without its name.
fn path_rejection(rejection: PathRejection, route: Option<&str>) -> ApiError {
    let PathRejection::FailedToDeserializePathParams(failed) = &rejection else {
        return ApiError::NotFound(format!("no such entity: {}", rejection.body_text()));
    };
    let (param, value, expected) = match failed.kind() {
        ErrorKind::ParseErrorAtKey {
            key,
            value,
            expected_type,
        } => (key.clone(), value, *expected_type),
        ErrorKind::ParseErrorAtIndex {
            index,
            value,
            expected_type,
        } => (
            route_params(route)
                .nth(*index)
                .map_or_else(|| format!("path[{index}]"), str::to_owned),
            value,
            *expected_type,
        ),
        ErrorKind::ParseError {
            value,
            expected_type,
        } => (
            only_param(route).unwrap_or("path").to_owned(),
            value,
            *expected_type,
        ),
        _ => return ApiError::NotFound(format!("no such entity: {}", rejection.body_text())),
    };
    let wanted = if expected_type_is_integer(expected) {
        "an integer id"
    } else {
        expected
    };
    ApiError::BadRequest(FieldError::new(
        param,
        "invalid_type",
        format!("must be {wanted}, got {value:?}"),
    ))
}

/// The names of a route's `{parameters}`, in order.
fn route_params(route: Option<&str>) -> impl Iterator<Item = &str> {
    route
        .unwrap_or("")
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
}

/// The name of a route's only `{parameter}`, if it has exactly one.
fn only_param(route: Option<&str>) -> Option<&str> {
    let mut params = route_params(route);
    let first = params.next()?;
    params.next().is_none().then_some(first)
}

fn expected_type_is_integer(name: &str) -> bool {
    matches!(name, "i64" | "i32" | "u32" | "u64" | "usize")
}

/// Checks a client-chosen id (role groups, roles): ids start at 1.
pub fn positive_id(id: Option<i64>) -> Result<(), ApiError> {
    match id {
        Some(id) if id < 1 => Err(ApiError::Invalid(vec![FieldError::new(
            "id",
            "out_of_range",
            format!("ids start at 1, got {id}"),
        )])),
        _ => Ok(()),
    }
}

/// Checks a page size: 1 to 1000, 100 when absent.
pub fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(100),
        Some(n @ 1..=1000) => Ok(n),
        Some(n) => Err(ApiError::Invalid(vec![FieldError::new(
            "limit",
            "out_of_range",
            format!("must be between 1 and 1000, got {n}"),
        )])),
    }
}

/// The version an `If-Match` header demands, if any.
///
/// Accepts one strong entity tag as produced by [`etag`] (`"7"`); `*` (any current version)
/// means no version check. A weak tag can never match under `If-Match` (RFC 9110 §13.1.1), and
/// anything else is malformed: both are refused rather than ignored, because ignoring a
/// precondition the client meant to set would silently allow a lost update.
pub fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    if text == "*" {
        return Ok(None);
    }
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .and_then(|t| t.parse::<i64>().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::BadRequest(FieldError::new(
                "If-Match",
                "malformed",
                format!("expected an ETag such as \"3\" as returned by this API, got {text:?}"),
            ))
        })
}

/// The `ETag` of an entity at `version`.
pub fn etag(version: i64) -> HeaderValue {
    // Digits and quotes are always a valid header value.
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// Deserializes a field that distinguishes "absent" (`None`, via `#[serde(default)]`) from
/// "explicitly null" (`Some(None)`), as a JSON merge patch needs to clear a value.
pub fn nullable<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

/// Deserializes a merge-patch field that may be absent (`None`, via `#[serde(default)]`) but
/// not `null`: the field cannot be empty, and silently ignoring the `null` would hide a client
/// bug, so it is refused as a wrong type naming the field.
pub fn non_null<'de, D, T>(de: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(de).map(Some)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // fields are only decoded
    struct Outer {
        name: String,
        #[serde(default)]
        items: Vec<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        dept: i64,
    }

    fn field_error(result: Result<Outer, ApiError>) -> FieldError {
        match result {
            Err(ApiError::Invalid(mut fields)) => fields.remove(0),
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn unknown_fields_are_named_with_their_path() {
        let e = field_error(decode_json(br#"{"name":"a","nmae":"b"}"#));
        assert_eq!((e.field.as_str(), e.rule), ("nmae", "unknown_field"));
        let e = field_error(decode_json(br#"{"name":"a","items":[{"dept":1,"x":2}]}"#));
        assert_eq!((e.field.as_str(), e.rule), ("items[0].x", "unknown_field"));
    }

    #[test]
    fn wrong_types_and_missing_fields_are_named() {
        let e = field_error(decode_json(br#"{"name":"a","items":[{"dept":"one"}]}"#));
        assert_eq!(
            (e.field.as_str(), e.rule),
            ("items[0].dept", "invalid_type")
        );
        let e = field_error(decode_json(br#"{"items":[]}"#));
        assert_eq!((e.field.as_str(), e.rule), ("name", "required"));
        let e = field_error(decode_json(br#"{"name":"a","items":[{}]}"#));
        assert_eq!((e.field.as_str(), e.rule), ("items[0].dept", "required"));
    }

    #[test]
    fn syntax_errors_and_trailing_garbage_are_bad_requests() {
        assert!(matches!(
            decode_json::<Outer>(br#"{"name":"#),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            decode_json::<Outer>(br#"{"name":"a"} x"#),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn query_errors_name_the_parameter() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Q {
            limit: Option<u32>,
        }
        let q: Q = decode_query("limit=5").unwrap();
        assert_eq!(q.limit, Some(5));
        match decode_query::<Q>("limit=many") {
            Err(ApiError::Invalid(f)) => assert_eq!(f[0].field, "limit"),
            other => panic!("{other:?}"),
        }
        match decode_query::<Q>("limt=5") {
            Err(ApiError::Invalid(f)) => {
                assert_eq!((f[0].field.as_str(), f[0].rule), ("limt", "unknown_field"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn if_match_accepts_strong_tags_and_star_only() {
        let mut h = HeaderMap::new();
        assert_eq!(if_match(&h).unwrap(), None);
        h.insert(header::IF_MATCH, etag(7));
        assert_eq!(if_match(&h).unwrap(), Some(7));
        h.insert(header::IF_MATCH, HeaderValue::from_static("*"));
        assert_eq!(if_match(&h).unwrap(), None);
        h.insert(header::IF_MATCH, HeaderValue::from_static("W/\"7\""));
        assert!(if_match(&h).is_err());
        h.insert(header::IF_MATCH, HeaderValue::from_static("7"));
        assert!(if_match(&h).is_err());
    }

    #[test]
    fn content_type_must_be_json() {
        let mut h = HeaderMap::new();
        assert!(check_json_content_type(&h).is_err());
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(check_json_content_type(&h).is_ok());
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/merge-patch+json"),
        );
        assert!(check_json_content_type(&h).is_ok());
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(check_json_content_type(&h).is_err());
    }
}
