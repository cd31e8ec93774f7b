//! Cookie, session and CSRF plumbing shared by the handlers.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};

use super::Shared;
use crate::auth::{Session, SessionError};
use crate::backend::AdminBackend;
use crate::error::ConsoleError;
use crate::pages::Chrome;

pub(crate) const SESSION_COOKIE: &str = "dingsync_session";
pub(crate) const LOGIN_COOKIE: &str = "dingsync_login";
pub(crate) const NOTICE_COOKIE: &str = "dingsync_notice";

/// The value of one cookie from the request's `Cookie` headers.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value with the console's attributes: `HttpOnly`, `SameSite=Strict`, and
/// `Secure` when configured. `max_age` 0 deletes the cookie.
pub(crate) fn set_cookie<B>(
    shared: &Shared<B>,
    name: &str,
    value: &str,
    path: &str,
    max_age: u64,
) -> HeaderValue {
    let secure = if shared.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    );
    // Every part is ours (base64url, hex, percent-encoded), so this never fails; an empty
    // header just leaves the cookie unset.
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static(""))
}

/// The signed-in session, refreshed to now, or why there is none.
pub(crate) fn session<B>(shared: &Shared<B>, headers: &HeaderMap) -> Result<Session, ConsoleError> {
    let cookie = cookie(headers, SESSION_COOKIE).ok_or(ConsoleError::SignInRequired)?;
    match shared.codec.decode(cookie, shared.config.clock.now()) {
        Ok(session) => Ok(session),
        Err(SessionError::Expired) => Err(ConsoleError::SessionExpired {
            idle_minutes: shared.codec.idle_timeout_secs() / 60,
        }),
        Err(SessionError::Malformed | SessionError::BadSignature) => {
            Err(ConsoleError::SignInRequired)
        }
    }
}

/// The refreshed session cookie, so the idle timeout counts from this request.
pub(crate) fn session_cookie<B>(shared: &Shared<B>, session: &Session) -> HeaderValue {
    let value = shared.codec.encode(session);
    set_cookie(
        shared,
        SESSION_COOKIE,
        &value,
        "/",
        shared.config.max_session_secs,
    )
}

/// Checks a submitted CSRF token against the session.
pub(crate) fn check_csrf<B>(
    shared: &Shared<B>,
    session: &Session,
    token: Option<&str>,
) -> Result<(), ConsoleError> {
    match token {
        Some(token) if shared.codec.csrf_ok(&session.nonce, token) => Ok(()),
        _ => Err(ConsoleError::CsrfRejected),
    }
}

/// The notice left by the last action, percent-decoded.
pub(crate) fn notice(headers: &HeaderMap) -> Option<String> {
    let raw = cookie(headers, NOTICE_COOKIE)?;
    let decoded: String = form_urlencoded::parse(format!("n={raw}").as_bytes())
        .map(|(_, value)| value.into_owned())
        .next()?;
    (!decoded.is_empty()).then_some(decoded)
}

/// The page chrome for a signed-in session.
pub(crate) async fn chrome<B: AdminBackend>(
    shared: &Shared<B>,
    session: &Session,
    headers: &HeaderMap,
    active: &'static str,
    here: String,
) -> Result<Chrome, ConsoleError> {
    let attention = shared.backend.attention_count().await?;
    Ok(Chrome {
        user: session.user.clone(),
        role: session.role.label(),
        may_act: session.role.may_act(),
        active,
        attention,
        csrf: shared.codec.csrf_token(&session.nonce),
        notice: notice(headers),
        here,
    })
}

/// The client's address, when the server was started with connect info (it is, in
/// `dingsync serve`; a test calling the router directly has none, and throttling then falls
/// back to the name alone).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let addr = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        Ok(ClientAddr(addr))
    }
}

/// A path inside the console to return to after a form, or the overview: never another site.
pub(crate) fn safe_return(path: Option<&str>) -> String {
    match path {
        Some(path)
            if path.starts_with("/console")
                && !path.contains("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            path.to_owned()
        }
        _ => "/console".to_owned(),
    }
}
