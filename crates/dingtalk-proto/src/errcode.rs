//! DingTalk's numeric error codes and the status fields every legacy (oapi) answer carries.
//!
//! Every oapi answer, success or failure, is HTTP 200 with `errcode`/`errmsg` and, on the TOP
//! gateway (`/topapi/...`), a `request_id`. Failures behind the TOP gateway come as `errcode: 88`
//! with the real code in `sub_code` (a string), so every classification here looks at both. The
//! three questions a caller asks are answered by [`ErrCode::is_retryable`] (will the same call
//! succeed later?), [`ErrCode::is_token_invalid`] (fetch a new token and replay?) and
//! [`ErrCode::is_validation`] (the request itself is wrong; retrying cannot fix it).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A DingTalk `errcode`. Unknown codes are kept as they are; the constants name the ones sync
/// cares about (see `dingtalk-api.md` §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ErrCode(#[serde(deserialize_with = "crate::lenient::req")] pub i64);

impl Default for ErrCode {
    fn default() -> Self {
        Self::OK
    }
}

impl fmt::Display for ErrCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[allow(missing_docs)]
impl ErrCode {
    pub const OK: Self = Self(0);
    /// System busy; retry later.
    pub const SYSTEM_BUSY: Self = Self(-1);
    /// Call timeout inside DingTalk (TOP `isp.top-remote-connection-timeout`).
    pub const CALL_TIMEOUT: Self = Self(15);
    /// Unknown TOP method name.
    pub const INVALID_METHOD: Self = Self(22);
    /// TOP gateway error; the real code is in `sub_code`, none means auth-service timeout.
    pub const GATEWAY: Self = Self(88);
    pub const URI_NOT_FOUND: Self = Self(404);
    /// Listed for `deleterole` and `addrolesforemps` without a documented meaning; the
    /// simulator uses it for "role still has members". A resend can't change the answer.
    pub const ROLE_OPERATION_REFUSED: Self = Self(1002);
    /// Listed for `addrolesforemps` without a documented meaning.
    pub const ROLE_ASSIGN_FAILED: Self = Self(12012);
    pub const SYSTEM_LABEL: Self = Self(23004);
    pub const INVALID_ROLE_ID: Self = Self(33011);
    pub const INVALID_USERID: Self = Self(33012);
    pub const ROLE_EMPTY: Self = Self(34018);
    pub const INVALID_GROUP_ID: Self = Self(34020);
    pub const ROLE_NAME_EXISTS: Self = Self(34021);
    pub const PARAM_ERROR: Self = Self(40000);
    /// Wrong secret or invalid token.
    pub const INVALID_CREDENTIAL: Self = Self(40001);
    pub const ILLEGAL_USERID: Self = Self(40003);
    pub const ILLEGAL_DEPT_ID: Self = Self(40009);
    pub const ILLEGAL_PARENT_DEPT_ID: Self = Self(40010);
    pub const ILLEGAL_ORDER: Self = Self(40011);
    /// Invalid access token.
    pub const INVALID_TOKEN: Self = Self(40014);
    pub const MOBILE_IN_TOO_MANY_ORGS: Self = Self(40019);
    pub const DEPT_MEMBER_LIMIT: Self = Self(40023);
    pub const UNKNOWN_USERID_IN_LIST: Self = Self(40031);
    pub const ILLEGAL_PARAMETER: Self = Self(40035);
    pub const ILLEGAL_OFFSET: Self = Self(40068);
    pub const ILLEGAL_SIZE: Self = Self(40069);
    pub const INVALID_CORP_CREDENTIALS: Self = Self(40089);
    pub const INVALID_APP_CREDENTIALS: Self = Self(40096);
    pub const NEEDS_INVITATION: Self = Self(40103);
    pub const INVALID_MOBILE: Self = Self(40104);
    pub const MISSING_TOKEN: Self = Self(41001);
    /// Access token expired.
    pub const TOKEN_EXPIRED: Self = Self(42001);
    pub const NEEDS_AUTHORIZATION: Self = Self(43007);
    pub const USER_OUT_OF_SCOPE: Self = Self(50002);
    pub const DEPT_OUT_OF_SCOPE: Self = Self(50004);
    pub const ILLEGAL_DEPT_NAME: Self = Self(60001);
    pub const DEPT_DEPTH_LIMIT: Self = Self(60002);
    pub const DEPT_NOT_FOUND: Self = Self(60003);
    pub const PARENT_DEPT_NOT_FOUND: Self = Self(60004);
    pub const DEPT_HAS_MEMBERS: Self = Self(60005);
    pub const DEPT_HAS_CHILDREN: Self = Self(60006);
    pub const CANNOT_DELETE_ROOT: Self = Self(60007);
    /// Duplicate department name under the parent (2016 table; what clients in the wild see).
    pub const DEPT_NAME_EXISTS: Self = Self(60008);
    pub const DEPT_NAME_ILLEGAL_CHARS: Self = Self(60009);
    pub const DEPT_CYCLE: Self = Self(60010);
    pub const NO_API_PERMISSION: Self = Self(60011);
    pub const DEPT_ID_EXISTS: Self = Self(60016);
    pub const CANNOT_UPDATE_ROOT: Self = Self(60018);
    pub const DEPT_USERS_FETCH_FAILED: Self = Self(60019);
    pub const IP_NOT_WHITELISTED: Self = Self(60020);
    /// Duplicate department name under the parent (current table).
    pub const DEPT_NAME_EXISTS_CURRENT: Self = Self(60021);
    pub const USERID_EXISTS: Self = Self(60102);
    pub const ILLEGAL_MOBILE: Self = Self(60103);
    pub const MOBILE_EXISTS: Self = Self(60104);
    pub const ILLEGAL_EMAIL: Self = Self(60105);
    pub const EMAIL_EXISTS: Self = Self(60106);
    pub const LOGIN_MOBILE_EXISTS: Self = Self(60107);
    pub const DEPT_PERMIT_INVALID: Self = Self(60109);
    pub const TOO_MANY_DEPTS: Self = Self(60110);
    pub const USERID_NOT_EXIST: Self = Self(60111);
    pub const ILLEGAL_USER_NAME: Self = Self(60112);
    /// User not found (observed as the generic not-found).
    pub const USER_NOT_FOUND: Self = Self(60121);
    pub const ILLEGAL_EXTATTR: Self = Self(60122);
    pub const ILLEGAL_JOB_NUMBER: Self = Self(60123);
    pub const CALLBACK_ALREADY_REGISTERED: Self = Self(71006);
    pub const CALLBACK_NOT_REGISTERED: Self = Self(71007);
    pub const CALLBACK_NOT_SUCCESS: Self = Self(71009);
    pub const CALLBACK_DOMAIN_NOT_ALLOWED: Self = Self(71013);
    pub const ALL_CALLS_BANNED: Self = Self(90001);
    /// Global per-API QPS exceeded (all apps); a ~1 s penalty.
    pub const API_GLOBAL_QPS: Self = Self(90002);
    pub const ORG_TOO_OFTEN: Self = Self(90005);
    pub const CORP_TOO_OFTEN: Self = Self(90006);
    pub const TOO_MANY_CORPIDS: Self = Self(90017);
    /// Per-app per-API QPS exceeded.
    pub const APP_API_QPS: Self = Self(90018);
    pub const MONTHLY_QUOTA: Self = Self(90020);
    pub const SYSTEM_ERROR: Self = Self(400001);
    pub const INVALID_PARAMETER: Self = Self(400002);
    pub const ROLE_LIST_ERROR: Self = Self(400043);
    pub const DEPT_PERMIT_LIST_INVALID: Self = Self(600109);
    pub const EMPTY_PARAMETER: Self = Self(660000);

    /// Codes that mean "the request is wrong as sent"; resending it unchanged cannot succeed.
    const VALIDATION: &'static [Self] = &[
        Self::INVALID_METHOD,
        Self::URI_NOT_FOUND,
        Self::ROLE_OPERATION_REFUSED,
        Self::ROLE_ASSIGN_FAILED,
        Self::SYSTEM_LABEL,
        Self::INVALID_ROLE_ID,
        Self::INVALID_USERID,
        Self::ROLE_EMPTY,
        Self::INVALID_GROUP_ID,
        Self::ROLE_NAME_EXISTS,
        Self::PARAM_ERROR,
        Self::ILLEGAL_USERID,
        Self::ILLEGAL_DEPT_ID,
        Self::ILLEGAL_PARENT_DEPT_ID,
        Self::ILLEGAL_ORDER,
        Self::MOBILE_IN_TOO_MANY_ORGS,
        Self::DEPT_MEMBER_LIMIT,
        Self::UNKNOWN_USERID_IN_LIST,
        Self::ILLEGAL_PARAMETER,
        Self::ILLEGAL_OFFSET,
        Self::ILLEGAL_SIZE,
        Self::NEEDS_INVITATION,
        Self::INVALID_MOBILE,
        Self::ILLEGAL_DEPT_NAME,
        Self::DEPT_DEPTH_LIMIT,
        Self::DEPT_NOT_FOUND,
        Self::PARENT_DEPT_NOT_FOUND,
        Self::DEPT_HAS_MEMBERS,
        Self::DEPT_HAS_CHILDREN,
        Self::CANNOT_DELETE_ROOT,
        Self::DEPT_NAME_EXISTS,
        Self::DEPT_NAME_ILLEGAL_CHARS,
        Self::DEPT_CYCLE,
        Self::DEPT_ID_EXISTS,
        Self::CANNOT_UPDATE_ROOT,
        Self::DEPT_NAME_EXISTS_CURRENT,
        Self::USERID_EXISTS,
        Self::ILLEGAL_MOBILE,
        Self::MOBILE_EXISTS,
        Self::ILLEGAL_EMAIL,
        Self::EMAIL_EXISTS,
        Self::LOGIN_MOBILE_EXISTS,
        Self::DEPT_PERMIT_INVALID,
        Self::TOO_MANY_DEPTS,
        Self::USERID_NOT_EXIST,
        Self::ILLEGAL_USER_NAME,
        Self::USER_NOT_FOUND,
        Self::ILLEGAL_EXTATTR,
        Self::ILLEGAL_JOB_NUMBER,
        Self::CALLBACK_ALREADY_REGISTERED,
        Self::CALLBACK_NOT_REGISTERED,
        Self::INVALID_PARAMETER,
        Self::DEPT_PERMIT_LIST_INVALID,
        Self::EMPTY_PARAMETER,
    ];

    /// True for success.
    pub fn is_ok(self) -> bool {
        self == Self::OK
    }

    /// The code that decides, looking through the TOP gateway's `88` to a numeric `sub_code`.
    pub fn effective(self, sub_code: Option<&str>) -> Self {
        match sub_code.and_then(|s| s.trim().parse::<i64>().ok()) {
            Some(sub) if self == Self::GATEWAY => Self(sub),
            _ => self,
        }
    }

    /// Will the same call succeed later? System busy (-1), DingTalk-internal timeout (15),
    /// throttling (90018, 90002, and the per-minute 90005/90006), and `88` without a `sub_code`
    /// (auth-service timeout).
    pub fn is_retryable(self, sub_code: Option<&str>) -> bool {
        if self == Self::GATEWAY {
            return sub_code.is_none_or(|s| s.trim().is_empty());
        }
        matches!(self, Self::SYSTEM_BUSY | Self::CALL_TIMEOUT) || self.is_throttle(sub_code)
    }

    /// Is this a rate-limit answer (so the wait should be at least DingTalk's 1 s window)?
    pub fn is_throttle(self, sub_code: Option<&str>) -> bool {
        matches!(
            self.effective(sub_code),
            Self::APP_API_QPS | Self::API_GLOBAL_QPS | Self::ORG_TOO_OFTEN | Self::CORP_TOO_OFTEN
        )
    }

    /// Does the token need refreshing? 40014, 42001, 40001, or `88` with `sub_code` 40014/42001.
    pub fn is_token_invalid(self, sub_code: Option<&str>) -> bool {
        match self {
            Self::INVALID_TOKEN | Self::TOKEN_EXPIRED | Self::INVALID_CREDENTIAL => true,
            Self::GATEWAY => matches!(
                self.effective(sub_code),
                Self::INVALID_TOKEN | Self::TOKEN_EXPIRED
            ),
            _ => false,
        }
    }

    /// Is the request itself wrong (bad field, clash, missing entity), so no retry can fix it?
    pub fn is_validation(self, sub_code: Option<&str>) -> bool {
        Self::VALIDATION.contains(&self.effective(sub_code))
    }

    /// Does this code say "the thing you are creating already exists"? After an ambiguous
    /// failure of an earlier attempt, this may mean the earlier attempt succeeded.
    pub fn is_already_exists(self, sub_code: Option<&str>) -> bool {
        matches!(
            self.effective(sub_code),
            Self::DEPT_NAME_EXISTS
                | Self::DEPT_NAME_EXISTS_CURRENT
                | Self::DEPT_ID_EXISTS
                | Self::USERID_EXISTS
                | Self::MOBILE_EXISTS
                | Self::EMAIL_EXISTS
                | Self::LOGIN_MOBILE_EXISTS
                | Self::ROLE_NAME_EXISTS
        )
    }

    /// Does this code say "no such entity"?
    pub fn is_not_found(self, sub_code: Option<&str>) -> bool {
        matches!(
            self.effective(sub_code),
            Self::DEPT_NOT_FOUND
                | Self::USER_NOT_FOUND
                | Self::USERID_NOT_EXIST
                | Self::INVALID_USERID
                | Self::INVALID_ROLE_ID
        )
    }
}

/// The status fields of every legacy (oapi) answer. On success `errcode` is 0; on failure the
/// other fields say why. Flattened into every response type so fixtures round-trip exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiStatus {
    /// The error code; 0 on success. Absent on a few answers, read as 0.
    #[serde(default)]
    pub errcode: ErrCode,
    /// Human-readable message (`"ok"` on success), often Chinese.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errmsg: Option<String>,
    /// The TOP gateway's real code under `errcode: 88`, a string such as `"40014"`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt_text"
    )]
    pub sub_code: Option<String>,
    /// The TOP gateway's message for `sub_code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_msg: Option<String>,
    /// The request id DingTalk support asks for (TOP gateway answers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ApiStatus {
    /// True when `errcode` is 0.
    pub fn is_ok(&self) -> bool {
        self.errcode.is_ok()
    }

    /// The code that decides, looking through `88` to `sub_code`.
    pub fn effective_code(&self) -> ErrCode {
        self.errcode.effective(self.sub_code.as_deref())
    }

    /// See [`ErrCode::is_retryable`].
    pub fn is_retryable(&self) -> bool {
        self.errcode.is_retryable(self.sub_code.as_deref())
    }

    /// See [`ErrCode::is_throttle`].
    pub fn is_throttle(&self) -> bool {
        self.errcode.is_throttle(self.sub_code.as_deref())
    }

    /// See [`ErrCode::is_token_invalid`].
    pub fn is_token_invalid(&self) -> bool {
        self.errcode.is_token_invalid(self.sub_code.as_deref())
    }

    /// See [`ErrCode::is_validation`].
    pub fn is_validation(&self) -> bool {
        self.errcode.is_validation(self.sub_code.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_codes() {
        for code in [-1, 15, 90018, 90002] {
            assert!(ErrCode(code).is_retryable(None), "{code}");
        }
        assert!(ErrCode::GATEWAY.is_retryable(None));
        assert!(ErrCode::GATEWAY.is_retryable(Some("")));
        assert!(!ErrCode::GATEWAY.is_retryable(Some("40014")));
        assert!(!ErrCode::MOBILE_EXISTS.is_retryable(None));
        assert!(!ErrCode::OK.is_retryable(None));
    }

    #[test]
    fn token_invalid_codes() {
        for code in [40014, 42001, 40001] {
            assert!(ErrCode(code).is_token_invalid(None), "{code}");
        }
        assert!(ErrCode::GATEWAY.is_token_invalid(Some("40014")));
        assert!(ErrCode::GATEWAY.is_token_invalid(Some("42001")));
        assert!(!ErrCode::GATEWAY.is_token_invalid(Some("40000")));
        assert!(!ErrCode::GATEWAY.is_token_invalid(None));
        assert!(!ErrCode::SYSTEM_BUSY.is_token_invalid(None));
    }

    #[test]
    fn validation_codes_are_never_retryable() {
        for code in [60104, 60008, 60021, 60102, 60003, 60121, 34021, 40035] {
            let c = ErrCode(code);
            assert!(c.is_validation(None), "{code}");
            assert!(!c.is_retryable(None), "{code}");
        }
        assert!(ErrCode::GATEWAY.is_validation(Some("60003")));
        assert!(!ErrCode::APP_API_QPS.is_validation(None));
    }

    #[test]
    fn status_parses_gateway_errors() {
        let s: ApiStatus = serde_json::from_str(
            r#"{"errcode":88,"sub_code":"40014","sub_msg":"x","errmsg":"y","request_id":"abc"}"#,
        )
        .unwrap();
        assert!(s.is_token_invalid());
        assert_eq!(s.effective_code(), ErrCode::INVALID_TOKEN);
        let s: ApiStatus = serde_json::from_str(r#"{"errcode":"0","errmsg":"ok"}"#).unwrap();
        assert!(s.is_ok());
    }

    #[test]
    fn already_exists_and_not_found() {
        assert!(ErrCode::DEPT_NAME_EXISTS.is_already_exists(None));
        assert!(ErrCode::USERID_EXISTS.is_already_exists(None));
        assert!(!ErrCode::DEPT_NOT_FOUND.is_already_exists(None));
        assert!(ErrCode::USER_NOT_FOUND.is_not_found(None));
        assert!(ErrCode::DEPT_NOT_FOUND.is_not_found(None));
    }
}
