//! SCIM error responses (RFC 7644 §3.12).
//!
//! Every failure this crate reports is a [`ScimError`]: the HTTP status, the optional `scimType`
//! keyword and a human-readable `detail` that names the offending field, parameter or position.
//! The service serialises it with [`ScimError::to_json`] and answers with [`ScimError::status`],
//! so a client always gets the body shape §3.12 requires (including `status` as a string).

use serde_json::{Value, json};

/// The `Error` message schema URN.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// The `scimType` keywords of RFC 7644 §3.12 (table 9). All of them go with status 400 except
/// `uniqueness` (409).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    /// The filter syntax was invalid, or the filter names an unsupported comparison.
    InvalidFilter,
    /// The filter yields more results than the server is willing to compute.
    TooMany,
    /// One or more attribute values are already in use or reserved.
    Uniqueness,
    /// The attempted modification is not compatible with the attribute's mutability.
    Mutability,
    /// The request body structure was invalid or did not conform to the schema.
    InvalidSyntax,
    /// The `path` attribute was invalid or malformed.
    InvalidPath,
    /// The `path` did not yield an attribute or value that could be operated on.
    NoTarget,
    /// A required value was missing, or the value given was not compatible.
    InvalidValue,
    /// The specified SCIM protocol version is not supported.
    InvalidVers,
    /// The request cannot be completed because of sensitive information in the URI.
    Sensitive,
}

impl ScimType {
    /// The keyword as it appears in the `scimType` member.
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::Sensitive => "sensitive",
        }
    }

    /// The HTTP status §3.12 pairs with the keyword.
    pub fn status(self) -> u16 {
        match self {
            ScimType::Uniqueness => 409,
            _ => 400,
        }
    }
}

/// A SCIM error: what the client sees as the `Error` body and the HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SCIM {status}{}: {detail}", scim_type.map(|t| format!(" {}", t.as_str())).unwrap_or_default())]
pub struct ScimError {
    /// The HTTP status code (400, 401, 403, 404, 409, 412, 413, 500, 501).
    pub status: u16,
    /// The `scimType` keyword, for the 400/409 errors that have one.
    pub scim_type: Option<ScimType>,
    /// What went wrong, naming the field, parameter or filter position. Never holds secrets.
    pub detail: String,
}

impl ScimError {
    /// An error with a `scimType`, at the status §3.12 gives it.
    pub fn typed(scim_type: ScimType, detail: impl Into<String>) -> Self {
        ScimError {
            status: scim_type.status(),
            scim_type: Some(scim_type),
            detail: detail.into(),
        }
    }

    /// `invalidFilter` at a position of the filter text (a 0-based byte offset; the same as the
    /// character position for the ASCII that filters are written in).
    pub fn invalid_filter(position: usize, detail: impl std::fmt::Display) -> Self {
        Self::typed(
            ScimType::InvalidFilter,
            format!("invalid filter at position {position}: {detail}"),
        )
    }

    /// 400 `invalidValue`.
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::typed(ScimType::InvalidValue, detail)
    }

    /// 400 `invalidSyntax`.
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::typed(ScimType::InvalidSyntax, detail)
    }

    /// 400 `invalidPath`.
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::typed(ScimType::InvalidPath, detail)
    }

    /// 400 `noTarget`.
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::typed(ScimType::NoTarget, detail)
    }

    /// 400 `mutability`.
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::typed(ScimType::Mutability, detail)
    }

    /// 409 `uniqueness`.
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::typed(ScimType::Uniqueness, detail)
    }

    /// An error with a status and no `scimType` (404, 412, 413, 501, ...).
    pub fn status(status: u16, detail: impl Into<String>) -> Self {
        ScimError {
            status,
            scim_type: None,
            detail: detail.into(),
        }
    }

    /// 404 for a resource, schema or resource type that does not exist.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::status(404, detail)
    }

    /// 412: the `If-Match` version no longer matches (RFC 7644 §3.14).
    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::status(412, detail)
    }

    /// 501: an operation the service does not implement (bulk, sort, root `/.search`).
    pub fn not_implemented(detail: impl Into<String>) -> Self {
        Self::status(501, detail)
    }

    /// The `Error` body. `status` is a string, as RFC 7644 §3.12 specifies.
    pub fn to_json(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let (Some(t), Some(map)) = (self.scim_type, body.as_object_mut()) {
            map.insert("scimType".into(), Value::String(t.as_str().into()));
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniqueness_is_409_and_the_rest_400() {
        assert_eq!(ScimError::uniqueness("userName taken").status, 409);
        assert_eq!(ScimError::no_target("x").status, 400);
        assert_eq!(ScimError::invalid_filter(3, "x").status, 400);
    }

    #[test]
    fn body_has_string_status_and_scim_type() {
        let body = ScimError::mutability("id is readOnly").to_json();
        assert_eq!(body["status"], "400");
        assert_eq!(body["scimType"], "mutability");
        assert_eq!(body["schemas"][0], ERROR_SCHEMA);
        let body = ScimError::not_found("no such user").to_json();
        assert_eq!(body["status"], "404");
        assert!(body.get("scimType").is_none());
    }

    #[test]
    fn filter_errors_name_the_position() {
        let e = ScimError::invalid_filter(7, "expected an operator");
        assert!(e.detail.contains("position 7"), "{}", e.detail);
        assert_eq!(e.scim_type, Some(ScimType::InvalidFilter));
    }
}
