//! Access-token endpoints: the legacy `GET /gettoken` and the newer
//! `POST /v1.0/oauth2/accessToken` (camelCase JSON, HTTP 400 with `{requestid, code, message}` on
//! failure instead of an `errcode`). Tokens and secrets are [`Secret`]s, so none of these types
//! can print one.

use serde::{Deserialize, Serialize};

use crate::{ApiStatus, Secret, envelope::has_status};

/// Query of `GET /gettoken`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GetTokenRequest {
    /// The app's Client ID (AppKey).
    pub appkey: String,
    /// The app's Client Secret (AppSecret).
    pub appsecret: Secret,
}

/// Answer of `GET /gettoken`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GetTokenResponse {
    /// Status; 40096 for bad credentials, 40035 for missing parameters.
    #[serde(flatten)]
    pub status: ApiStatus,
    /// The token, on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<Secret>,
    /// Lifetime in seconds (7200), on success.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt"
    )]
    pub expires_in: Option<i64>,
}
has_status!(GetTokenResponse);

/// Body of `POST /v1.0/oauth2/accessToken`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuthTokenRequest {
    /// Client ID.
    pub app_key: String,
    /// Client Secret.
    pub app_secret: Secret,
}

/// Success answer (HTTP 200) of `POST /v1.0/oauth2/accessToken`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuthTokenResponse {
    /// The token.
    pub access_token: Secret,
    /// Lifetime in seconds (7200).
    #[serde(deserialize_with = "crate::lenient::req")]
    pub expire_in: i64,
}

/// Error answer of every `api.dingtalk.com` (v1.0) endpoint: non-2xx HTTP with this body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewApiError {
    /// Request id (spelled `requestid`, all lower case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requestid: Option<String>,
    /// Machine code, e.g. `invalidClientIdOrSecret`, `InvalidAuthentication`.
    pub code: String,
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
}

impl NewApiError {
    /// The code for bad client credentials.
    pub const INVALID_CLIENT: &'static str = "invalidClientIdOrSecret";
    /// The code for an invalid token on a v1.0 call.
    pub const INVALID_AUTHENTICATION: &'static str = "InvalidAuthentication";
}
