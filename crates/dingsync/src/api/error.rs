//! The OA API's error type and its JSON body.
//!
//! Why one enum with a hand-written status mapping: an OA developer reads these errors, so every
//! refusal needs a *stable* machine code, the field at fault and a sentence; and the store's
//! "your request is wrong" variants must become 4xx responses while everything unexpected becomes
//! an opaque 500 whose cause chain goes only to the log (it can name tables, paths and hosts).
//!
//! Codes (the `error.code` string) and their statuses:
//!
//! | code | status | when |
//! |---|---|---|
//! | `bad_request` | 400 | malformed JSON syntax, malformed header or path |
//! | `unauthorized` | 401 | no or unknown bearer token |
//! | `not_found` | 404 | no such entity or route |
//! | `method_not_allowed` | 405 | the path exists, the method does not |
//! | `conflict` | 409 | id / name / mobile / email taken, or the entity still has dependants |
//! | `precondition_failed` | 412 | `If-Match` names a version that is no longer current |
//! | `payload_too_large` | 413 | body above the limit |
//! | `unsupported_media_type` | 415 | body not `application/json` |
//! | `validation_failed` | 422 | a field breaks a rule: limits, formats, unknown references, cycles, unknown JSON fields, wrong types |
//! | `internal` | 500 | anything else (details in the log only) |
//! | `database_unavailable` | 503 | the database is locked, restarting or unreachable; nothing was written, retry after `Retry-After` seconds |

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use directory_model::Rule;
use directory_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::ops_stats::{Site, Unavailable};
use sync_engine::error_chain;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error itself.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable machine-readable code (see the API description for the list).
    #[schema(example = "validation_failed")]
    pub code: &'static str,
    /// A human-readable sentence.
    pub message: String,
    /// Every problem with a request field, when the error is about fields.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
}

/// One problem with one request field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field's path in the request, e.g. `mobile`, `departments[2].dept`, or a query
    /// parameter or header name.
    pub field: String,
    /// The rule it broke: `required`, `too_long`, `too_many`, `forbidden_character`,
    /// `malformed`, `duplicate`, `not_listed`, `self_reference`, `unknown_reference`, `cycle`,
    /// `taken`, `unknown_field`, `invalid_type`, `has_dependants`, `stale_version`, `out_of_range`,
    /// `conflict`.
    pub rule: &'static str,
    /// A human-readable sentence.
    pub message: String,
}

impl FieldError {
    /// A field error from its three parts.
    pub fn new(field: impl Into<String>, rule: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            rule,
            message: message.into(),
        }
    }
}

/// Everything an OA API handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The store refused or failed the operation; [`ApiError::status_and_code`] decides which.
    #[error("store operation failed")]
    Store(#[source] StoreError),
    /// The request could be decoded but some fields are unacceptable (422).
    #[error("invalid request: {}", summary(.0))]
    Invalid(Vec<FieldError>),
    /// The request is malformed beyond field level: bad JSON syntax, a malformed header (400).
    #[error("bad request: {0:?}")]
    BadRequest(FieldError),
    /// The addressed entity does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The path exists but not with this method (405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// No or an unknown bearer token (401).
    #[error("missing or unknown bearer token")]
    Unauthorized {
        /// Whether a token was presented (then it is `invalid_token` per RFC 6750).
        presented: bool,
        /// Whether the service has no token configured at all (then no token can work, and
        /// the answer says so instead of inviting the caller to try another).
        none_configured: bool,
    },
    /// The body is larger than the limit (413).
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body is not JSON (415).
    #[error("unsupported content type {0:?}")]
    UnsupportedMediaType(String),
}

fn summary(fields: &[FieldError]) -> String {
    fields
        .iter()
        .map(|f| format!("{}: {}", f.field, f.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Maps the store's "no such entity" to the API's 404 for the addressed entity.
pub fn addressed(e: StoreError, missing: impl FnOnce() -> ApiError) -> ApiError {
    match e {
        StoreError::NotFound { .. } => missing(),
        other => other.into(),
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// The API rule name of a model validation rule.
fn rule_name(rule: &Rule) -> &'static str {
    match rule {
        Rule::Required => "required",
        Rule::TooLong { .. } => "too_long",
        Rule::TooMany { .. } => "too_many",
        Rule::ForbiddenCharacter { .. } => "forbidden_character",
        Rule::Malformed => "malformed",
        Rule::Duplicate => "duplicate",
        Rule::NotListed => "not_listed",
        Rule::SelfReference => "self_reference",
        Rule::BuiltIn => "built_in",
    }
}

const UNPROCESSABLE: (StatusCode, &str) = (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
const CONFLICT: (StatusCode, &str) = (StatusCode::CONFLICT, "conflict");

/// How a store error looks to the OA system: status, code and the fields at fault. `None` means
/// the store itself failed (a 500).
fn store_error_parts(e: &StoreError) -> Option<(StatusCode, &'static str, Vec<FieldError>)> {
    let one = |field: &str, rule: &'static str| vec![FieldError::new(field, rule, e.to_string())];
    let field = e.field().unwrap_or("id");
    let (status, code, fields) = match e {
        StoreError::Invalid { source, .. } => {
            let fields = source
                .errors()
                .iter()
                .map(|v| FieldError::new(v.field.clone(), rule_name(&v.rule), v.message.clone()))
                .collect();
            (UNPROCESSABLE.0, UNPROCESSABLE.1, fields)
        }
        StoreError::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found", Vec::new()),
        StoreError::AlreadyExists { .. }
        | StoreError::DuplicateDepartmentName { .. }
        | StoreError::DuplicateMobile { .. }
        | StoreError::DuplicateEmail { .. }
        | StoreError::DuplicateRoleName { .. } => (CONFLICT.0, CONFLICT.1, one(field, "taken")),
        StoreError::UnknownParent { .. }
        | StoreError::UnknownDepartment { .. }
        | StoreError::UnknownUser { .. }
        | StoreError::UnknownRoleGroup { .. }
        | StoreError::UnknownRole { .. } => (
            UNPROCESSABLE.0,
            UNPROCESSABLE.1,
            one(field, "unknown_reference"),
        ),
        StoreError::SecondRoot => (UNPROCESSABLE.0, UNPROCESSABLE.1, one(field, "required")),
        StoreError::DepartmentCycle { .. } | StoreError::ManagerCycle { .. } => {
            (UNPROCESSABLE.0, UNPROCESSABLE.1, one(field, "cycle"))
        }
        // Deleting something others still depend on: the request is fine, the state is not.
        // The department variants name `cascade`, the switch that makes the delete possible.
        StoreError::HasChildren { .. } | StoreError::HasMembers { .. } => {
            (CONFLICT.0, CONFLICT.1, one("cascade", "has_dependants"))
        }
        StoreError::DeleteRoot
        | StoreError::RoleHasMembers { .. }
        | StoreError::GroupHasRoles { .. }
        | StoreError::UserIsManager { .. } => (CONFLICT.0, CONFLICT.1, one("id", "has_dependants")),
        StoreError::VersionConflict { .. } => (
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
            one("If-Match", "stale_version"),
        ),
        other if other.is_client_error() => (CONFLICT.0, CONFLICT.1, one(field, "conflict")),
        _ => return None,
    };
    Some((status, code, fields))
}

impl ApiError {
    /// The response status and stable code; `None` fields for non-field errors.
    fn parts(&self) -> (StatusCode, &'static str, String, Vec<FieldError>) {
        match self {
            Self::Store(e) if e.is_unavailable() => (
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "the database is briefly unavailable (locked, restarting or unreachable); \
                 nothing was written, retry the request shortly"
                    .to_owned(),
                Vec::new(),
            ),
            Self::Store(e) => match store_error_parts(e) {
                Some((status, code, fields)) => (status, code, e.to_string(), fields),
                None => internal(),
            },
            Self::Invalid(fields) => (
                UNPROCESSABLE.0,
                UNPROCESSABLE.1,
                format!("the request is invalid: {}", summary(fields)),
                fields.clone(),
            ),
            Self::BadRequest(field) => (
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("{}: {}", field.field, field.message),
                vec![field.clone()],
            ),
            Self::NotFound(what) => (StatusCode::NOT_FOUND, "not_found", what.clone(), Vec::new()),
            Self::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this path does not accept this method; see /api/v1/openapi.json".to_owned(),
                Vec::new(),
            ),
            Self::Unauthorized {
                none_configured, ..
            } => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                if *none_configured {
                    "no OA API token is configured on this service, so every call is refused; \
                     the administrator sets [api] tokens or tokens_file (or \
                     DINGSYNC_API__TOKENS) and restarts"
                        .to_owned()
                } else {
                    "send a valid API token as `Authorization: Bearer <token>`".to_owned()
                },
                Vec::new(),
            ),
            Self::PayloadTooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the request body is larger than the limit of {limit} bytes"),
                Vec::new(),
            ),
            Self::UnsupportedMediaType(got) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("send the body as `Content-Type: application/json` (got {got:?})"),
                Vec::new(),
            ),
        }
    }
}

/// The opaque 500: the cause stays in the log.
fn internal() -> (StatusCode, &'static str, String, Vec<FieldError>) {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error; the cause is in the service log".to_owned(),
        Vec::new(),
    )
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message, fields) = self.parts();
        if status.is_server_error() {
            tracing::error!(error = %error_chain(&self), "OA API request failed");
        } else {
            tracing::debug!(%code, %message, "OA API request refused");
        }
        let mut response = (
            status,
            Json(ErrorBody {
                error: ErrorDetail {
                    code,
                    message,
                    fields,
                },
            }),
        )
            .into_response();
        if let Self::Store(e) = &self
            && status == StatusCode::SERVICE_UNAVAILABLE
        {
            Unavailable::mark(&mut response, Site::Api, e);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // Long enough for a lock or a restart to pass, short enough not to stall the caller.
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        }
        if let Self::Unauthorized { presented, .. } = self {
            let challenge = if presented {
                r#"Bearer realm="dingsync", error="invalid_token""#
            } else {
                r#"Bearer realm="dingsync""#
            };
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use directory_model::{OaDeptId, ValidationError, ValidationErrors};
    use directory_store::EntityKind;

    use super::*;

    #[test]
    fn validation_errors_keep_every_field() {
        let e = ApiError::from(StoreError::Invalid {
            kind: EntityKind::User,
            source: ValidationErrors(vec![
                ValidationError {
                    field: "mobile".into(),
                    rule: Rule::Malformed,
                    message: "bad".into(),
                },
                ValidationError {
                    field: "name".into(),
                    rule: Rule::TooLong { max: 80 },
                    message: "long".into(),
                },
            ]),
        });
        let (status, code, _, fields) = e.parts();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(code, "validation_failed");
        let names: Vec<_> = fields.iter().map(|f| (f.field.as_str(), f.rule)).collect();
        assert_eq!(names, vec![("mobile", "malformed"), ("name", "too_long")]);
    }

    #[test]
    fn store_failures_are_opaque() {
        let e = ApiError::from(StoreError::Corrupt {
            table: "users",
            id: "u1".into(),
            detail: "column pool_secret unreadable".into(),
        });
        let (status, code, message, fields) = e.parts();
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(code, "internal");
        assert!(!message.contains("pool"), "{message}");
        assert!(fields.is_empty());
    }

    #[test]
    fn cycles_and_stale_versions_name_their_field() {
        let cycle = ApiError::from(StoreError::DepartmentCycle {
            id: OaDeptId(2),
            parent: OaDeptId(3),
        });
        let (status, _, _, fields) = cycle.parts();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(fields[0].field, "parent");
        assert_eq!(fields[0].rule, "cycle");
        let stale = ApiError::from(StoreError::VersionConflict {
            kind: EntityKind::Department,
            id: "2".into(),
            expected: 1,
            actual: 2,
        });
        let (status, code, _, fields) = stale.parts();
        assert_eq!(status, StatusCode::PRECONDITION_FAILED);
        assert_eq!(code, "precondition_failed");
        assert_eq!(fields[0].field, "If-Match");
    }
}
