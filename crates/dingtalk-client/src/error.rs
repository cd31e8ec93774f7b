//! [`ClientError`]: everything that can go wrong talking to DingTalk, shaped for the decisions a
//! caller makes — retry later, fix the request, fix the credentials, or look before re-creating.
//!
//! Nothing here can hold a secret: requests are never stored, and transport errors are stripped
//! of their URL (which carries `access_token` or `appsecret` in its query) before they are kept.

use std::time::Duration;

use dingtalk_proto::{ApiStatus, ErrCode};

/// A failed call to DingTalk.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// DingTalk answered with a non-zero `errcode`.
    #[error(
        "DingTalk {api} answered errcode {errcode}{}: {errmsg}{}",
        sub_code.as_deref().map(|s| format!(" (sub_code {s})")).unwrap_or_default(),
        request_id.as_deref().map(|r| format!(" [request_id {r}]")).unwrap_or_default()
    )]
    Api {
        /// The API path, e.g. `/topapi/v2/user/get`.
        api: &'static str,
        /// The code (for TOP gateway errors: 88, with the real code in `sub_code`).
        errcode: ErrCode,
        /// The TOP gateway's real code.
        sub_code: Option<String>,
        /// DingTalk's message (`sub_msg` when there is one).
        errmsg: String,
        /// DingTalk's request id, for support tickets.
        request_id: Option<String>,
        /// An earlier attempt of this call failed in a way that leaves its outcome unknown
        /// (timeout, 5xx), so an "already exists" / "not found" answer may be that attempt's
        /// doing: look the entity up before treating it as a conflict.
        prior_attempt_may_have_succeeded: bool,
    },
    /// DingTalk refused our credentials (bad client id / secret) when issuing a token.
    #[error("DingTalk refused the app credentials on {api}: {code}: {message}")]
    Auth {
        /// The token endpoint.
        api: &'static str,
        /// `40096`, `40089`, `invalidClientIdOrSecret`, …
        code: String,
        /// DingTalk's message.
        message: String,
    },
    /// An HTTP status DingTalk's business answers never use (gateway errors, 5xx, 4xx).
    #[error("DingTalk {api} answered HTTP {status}")]
    Http {
        /// The API path.
        api: &'static str,
        /// The HTTP status.
        status: u16,
    },
    /// DingTalk's gateway refused this egress IP for calling too often over every app and API
    /// (10,000 calls per 20 s): its deny JSON (`"punish":"deny"`) instead of an answer, for
    /// about `wait_minutes`. Raise no call rate until then; `[dingtalk] ip_budget` prevents it.
    #[error(
        "DingTalk's gateway refused this IP on {api} for calling too often over all apps and APIs \
         (10,000 calls per 20 s); it is blocked for about {wait_minutes} min"
    )]
    IpDenied {
        /// The API path.
        api: &'static str,
        /// The deny body's `wait`.
        wait_minutes: u64,
    },
    /// No answer within the request timeout.
    #[error("DingTalk {api} did not answer within {timeout:?}")]
    Timeout {
        /// The API path.
        api: &'static str,
        /// The timeout that elapsed.
        timeout: Duration,
    },
    /// The connection failed or broke.
    #[error("could not reach DingTalk for {api}")]
    Transport {
        /// The API path.
        api: &'static str,
        /// The cause, with its URL removed.
        #[source]
        source: reqwest::Error,
    },
    /// The answer was not the JSON this endpoint documents.
    #[error("DingTalk {api} answered something that is not its documented JSON")]
    Decode {
        /// The API path.
        api: &'static str,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The request could not be serialised (a bug, not a DingTalk problem).
    #[error("could not encode the request for {api}")]
    Encode {
        /// The API path.
        api: &'static str,
        /// The serialisation error.
        #[source]
        source: serde_json::Error,
    },
    /// The HTTP client could not be built from the configuration.
    #[error("could not build the HTTP client")]
    Build(#[source] reqwest::Error),
}

impl ClientError {
    /// Builds the [`ClientError::Api`] for a failed status.
    pub(crate) fn from_status(api: &'static str, status: &ApiStatus) -> Self {
        Self::Api {
            api,
            errcode: status.errcode,
            sub_code: status.sub_code.clone(),
            errmsg: status
                .sub_msg
                .clone()
                .or_else(|| status.errmsg.clone())
                .unwrap_or_default(),
            request_id: status.request_id.clone(),
            prior_attempt_may_have_succeeded: false,
        }
    }

    /// Wraps a transport error, removing the URL (its query holds the token or the secret).
    pub(crate) fn from_reqwest(api: &'static str, timeout: Duration, err: reqwest::Error) -> Self {
        if err.is_timeout() {
            Self::Timeout { api, timeout }
        } else {
            Self::Transport {
                api,
                source: err.without_url(),
            }
        }
    }

    /// The API path this error came from (`None` for [`ClientError::Build`]).
    pub fn api(&self) -> Option<&'static str> {
        match self {
            Self::Api { api, .. }
            | Self::Auth { api, .. }
            | Self::Http { api, .. }
            | Self::IpDenied { api, .. }
            | Self::Timeout { api, .. }
            | Self::Transport { api, .. }
            | Self::Decode { api, .. }
            | Self::Encode { api, .. } => Some(api),
            Self::Build(_) => None,
        }
    }

    /// The DingTalk error code, looking through the TOP gateway's 88 to its `sub_code`.
    pub fn errcode(&self) -> Option<ErrCode> {
        match self {
            Self::Api {
                errcode, sub_code, ..
            } => Some(errcode.effective(sub_code.as_deref())),
            _ => None,
        }
    }

    /// Will the same call plausibly succeed later? Busy/throttled/timeout answers, HTTP 5xx and
    /// 429, timeouts and broken connections — never validation errors or bad credentials.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api {
                errcode, sub_code, ..
            } => errcode.is_retryable(sub_code.as_deref()),
            Self::Http { status, .. } => *status >= 500 || *status == 429,
            Self::Timeout { .. } | Self::IpDenied { .. } => true,
            // A request that could not even be built (a malformed base URL) fails the same way
            // every time.
            Self::Transport { source, .. } => !source.is_builder(),
            Self::Auth { .. } | Self::Decode { .. } | Self::Encode { .. } | Self::Build(_) => false,
        }
    }

    /// Is this a rate-limit answer (wait at least DingTalk's 1 s window)?
    pub fn is_throttle(&self) -> bool {
        match self {
            Self::Api {
                errcode, sub_code, ..
            } => errcode.is_throttle(sub_code.as_deref()),
            Self::Http { status, .. } => *status == 429,
            Self::IpDenied { .. } => true,
            _ => false,
        }
    }

    /// Does the access token need replacing?
    pub fn is_token_invalid(&self) -> bool {
        match self {
            Self::Api {
                errcode, sub_code, ..
            } => errcode.is_token_invalid(sub_code.as_deref()),
            _ => false,
        }
    }

    /// Is the request itself wrong, so that retrying it unchanged cannot help?
    pub fn is_validation(&self) -> bool {
        match self {
            Self::Api {
                errcode, sub_code, ..
            } => errcode.is_validation(sub_code.as_deref()),
            _ => false,
        }
    }

    /// Did DingTalk perhaps process the request even though we saw a failure (the answer was
    /// lost or late)? True for timeouts, 5xx and connections that broke after sending.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            Self::Timeout { .. } => true,
            Self::Http { status, .. } => *status >= 500,
            Self::Transport { source, .. } => !source.is_connect(),
            _ => false,
        }
    }

    /// Marks an API error as following an attempt whose outcome is unknown.
    pub(crate) fn after_unknown_outcome(mut self) -> Self {
        if let Self::Api {
            prior_attempt_may_have_succeeded,
            ..
        } = &mut self
        {
            *prior_attempt_may_have_succeeded = true;
        }
        self
    }
}

/// The deny JSON of DingTalk's gateway (`{"status":1111,"wait":5,"source":"x5",
/// "punish":"deny","uuid":…}`), sent instead of any answer when an IP calls too often; it has no
/// `errcode`, so read as a normal answer it would look like a success.
#[derive(serde::Deserialize)]
struct GatewayDeny {
    punish: String,
    #[serde(default)]
    wait: Option<serde_json::Value>,
}

/// [`ClientError::IpDenied`] when `body` is the gateway's deny JSON.
pub(crate) fn gateway_deny(api: &'static str, body: &[u8]) -> Option<ClientError> {
    // Cheap pre-check: every business answer is parsed again by its caller.
    if body.len() > 512 || !body.windows(8).any(|w| w == b"\"punish\"") {
        return None;
    }
    let deny: GatewayDeny = serde_json::from_slice(body).ok()?;
    if deny.punish != "deny" {
        return None;
    }
    let wait_minutes = match deny.wait {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .unwrap_or(5);
    Some(ClientError::IpDenied { api, wait_minutes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(errcode: i64, sub_code: Option<&str>) -> ClientError {
        ClientError::Api {
            api: "/topapi/v2/user/get",
            errcode: ErrCode(errcode),
            sub_code: sub_code.map(str::to_owned),
            errmsg: "m".to_owned(),
            request_id: Some("rid123".to_owned()),
            prior_attempt_may_have_succeeded: false,
        }
    }

    #[test]
    fn classification() {
        assert!(api_error(90018, None).is_retryable());
        assert!(api_error(90018, None).is_throttle());
        let deny = br#"{"status":1111,"wait":5,"source":"x5","punish":"deny","uuid":"9ff0e7e2346aabb5a8bcbb7c93c71636"}"#;
        let denied = gateway_deny("/gettoken", deny).expect("the gateway's deny body");
        assert!(denied.is_throttle() && denied.is_retryable());
        assert!(denied.to_string().contains("5 min"), "{denied}");
        assert!(gateway_deny("/gettoken", br#"{"errcode":0,"errmsg":"ok"}"#).is_none());
        assert!(api_error(88, None).is_retryable());
        assert!(!api_error(88, Some("40014")).is_retryable());
        assert!(api_error(88, Some("40014")).is_token_invalid());
        assert!(api_error(60104, None).is_validation());
        assert!(!api_error(60104, None).is_retryable());
        assert_eq!(api_error(88, Some("60011")).errcode(), Some(ErrCode(60011)));
        let http = ClientError::Http {
            api: "/x",
            status: 502,
        };
        assert!(http.is_retryable() && http.outcome_unknown());
        assert!(
            !ClientError::Http {
                api: "/x",
                status: 404
            }
            .is_retryable()
        );
        let timeout = ClientError::Timeout {
            api: "/x",
            timeout: Duration::from_secs(1),
        };
        assert!(timeout.is_retryable() && timeout.outcome_unknown());
    }

    #[test]
    fn display_names_code_api_and_request_id() {
        let text = api_error(88, Some("40014")).to_string();
        assert!(text.contains("/topapi/v2/user/get"), "{text}");
        assert!(
            text.contains("88") && text.contains("40014") && text.contains("rid123"),
            "{text}"
        );
    }

    #[test]
    fn prior_attempt_flag_is_set_only_on_api_errors() {
        let e = api_error(60008, None).after_unknown_outcome();
        assert!(matches!(
            e,
            ClientError::Api {
                prior_attempt_may_have_succeeded: true,
                ..
            }
        ));
        let e = ClientError::Http {
            api: "/x",
            status: 502,
        }
        .after_unknown_outcome();
        assert!(matches!(e, ClientError::Http { .. }));
    }
}
