//! The HTTP edge of SCIM: `application/scim+json` responses with `ETag` and `Location`, the
//! bearer check (the OA API's digest-only, constant-time comparison over SCIM's own tokens),
//! store refusals as RFC 7644 §3.12 errors, and RFC 3339 timestamps.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use directory_store::StoreError;
use scim::ScimError;
use serde_json::Value;

use crate::api::auth::authenticate;

use super::ScimState;

/// A SCIM JSON response with extra headers.
pub fn scim_json(
    status: StatusCode,
    body: &Value,
    extra: &[(header::HeaderName, String)],
) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/scim+json"),
    );
    for (k, v) in extra {
        if let Ok(v) = HeaderValue::from_str(v) {
            r.headers_mut().insert(k.clone(), v);
        }
    }
    r
}

/// A SCIM error response.
pub fn err(e: ScimError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    scim_json(status, &e.to_json(), &[])
}

/// A 200 with `body`.
pub fn ok(body: &Value) -> Response {
    scim_json(StatusCode::OK, body, &[])
}

/// The caller's actor for the audit log (`scim:<token name>`), or the 401.
pub fn caller(state: &ScimState, headers: &HeaderMap) -> Result<String, ScimError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        })
        .ok_or_else(|| ScimError::status(401, "a bearer token is required"))?;
    authenticate(&state.settings.tokens, &presented)
        .map(|t| format!("scim:{}", t.name()))
        .ok_or_else(|| ScimError::status(401, "unknown bearer token"))
}

/// A store refusal as a SCIM error: clashes are 409 `uniqueness`, bad values 400
/// `invalidValue` naming the field, a stale version 412; the store's own failures are an opaque
/// 500 (the cause chain goes to the log, not to the client).
pub fn store_error(e: StoreError) -> ScimError {
    match &e {
        StoreError::DuplicateMobile { .. }
        | StoreError::DuplicateEmail { .. }
        | StoreError::DuplicateUserName { .. }
        | StoreError::DuplicateDepartmentName { .. }
        | StoreError::AlreadyExists { .. } => {
            ScimError::uniqueness(format!("{} is taken: {e}", e.field().unwrap_or("a value")))
        }
        StoreError::VersionConflict { .. } => {
            ScimError::precondition_failed("the resource changed; read it again")
        }
        StoreError::NotFound { .. } => ScimError::not_found(e.to_string()),
        _ if e.is_client_error() => ScimError::invalid_value(format!(
            "{}: {}",
            e.field().unwrap_or("resource"),
            sync_engine::error_chain(&e)
        )),
        _ => {
            tracing::error!(error = %sync_engine::error_chain(&e), "SCIM request failed in the store");
            ScimError::status(500, "internal error; see the service log")
        }
    }
}

/// Unix milliseconds as RFC 3339 UTC (`2026-12-07T10:00:00.000Z`).
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_796_637_600_123), "2026-12-07T10:00:00.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
