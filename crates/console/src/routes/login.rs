//! Signing in and out. The sign-in form is CSRF-protected too: `GET` sets a short-lived signed
//! cookie holding a nonce and puts the matching token in the form, so a login cannot be
//! forced from another site. A failed sign-in answers 401 with the form again; repeated
//! failures are throttled per name and per address.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::AppState;
use super::html::error_page;
use super::request::{self, ClientAddr, LOGIN_COOKIE, SESSION_COOKIE};
use crate::auth::session::random_nonce;
use crate::backend::AdminBackend;
use crate::error::ConsoleError;
use crate::pages::LoginPage;

/// How long a sign-in form stays valid.
const LOGIN_FORM_SECS: u64 = 3600;

/// Draws the sign-in form with a fresh nonce, answering with `status`.
fn login_form<B>(
    s: &AppState<B>,
    status: StatusCode,
    username: &str,
    error: Option<String>,
) -> Response {
    let nonce = random_nonce(&mut rand::thread_rng());
    let cookie_value = s.codec.sign("login", nonce.as_bytes());
    let cookie = request::set_cookie(
        s,
        LOGIN_COOKIE,
        &cookie_value,
        "/console/login",
        LOGIN_FORM_SECS,
    );
    let page = LoginPage {
        csrf: s.codec.csrf_token(&nonce),
        username: username.to_owned(),
        error,
    };
    match page.render() {
        Ok(body) => (status, [(header::SET_COOKIE, cookie)], Html(body)).into_response(),
        Err(error) => error_page(s, error.into(), None),
    }
}

pub(crate) async fn form<B: AdminBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if request::session(&s, &headers).is_ok() {
        return Redirect::to("/console").into_response();
    }
    let expired = params.contains_key("expired").then(|| {
        ConsoleError::SessionExpired {
            idle_minutes: s.codec.idle_timeout_secs() / 60,
        }
        .public_message()
    });
    login_form(&s, StatusCode::OK, "", expired)
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

/// Whether the form's token matches the nonce in the sign-in cookie.
fn login_csrf_ok<B>(s: &AppState<B>, headers: &HeaderMap, token: &str) -> bool {
    let Some(cookie) = request::cookie(headers, LOGIN_COOKIE) else {
        return false;
    };
    let Ok(nonce) = s.codec.verify("login", cookie) else {
        return false;
    };
    let nonce = String::from_utf8_lossy(&nonce);
    s.codec.csrf_ok(&nonce, token)
}

pub(crate) async fn submit<B: AdminBackend>(
    State(s): State<AppState<B>>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let name = form.username.trim();
    if !login_csrf_ok(&s, &headers, &form.csrf) {
        let message = ConsoleError::CsrfRejected.public_message();
        return login_form(&s, StatusCode::FORBIDDEN, name, Some(message));
    }
    if name.is_empty() || form.password.is_empty() {
        let message = "Enter both your user name and your password.".to_owned();
        return login_form(&s, StatusCode::BAD_REQUEST, name, Some(message));
    }
    let now = s.config.clock.now();
    if let Err(wait_secs) = s.throttle.check(name, addr, now) {
        let error = ConsoleError::Throttled {
            minutes: wait_secs.div_ceil(60),
        };
        return login_form(
            &s,
            StatusCode::TOO_MANY_REQUESTS,
            name,
            Some(error.public_message()),
        );
    }
    let user = match s.backend.console_user(name).await {
        Ok(user) => user,
        Err(error) => return error_page(&s, error.into(), None),
    };
    let verified = match &user {
        Some(user) => user.password_hash.verify(&form.password),
        None => {
            crate::auth::password::verify_dummy(&form.password);
            false
        }
    };
    let Some(user) = user.filter(|_| verified) else {
        s.throttle.record_failure(name, addr, now);
        tracing::info!(user = name, ?addr, "console: failed sign-in");
        let message = "The user name or password is wrong.".to_owned();
        return login_form(&s, StatusCode::UNAUTHORIZED, name, Some(message));
    };
    s.throttle.record_success(name);
    let session = s
        .codec
        .start(&user.name, user.role, now, &mut rand::thread_rng());
    let clear_login = request::set_cookie(&s, LOGIN_COOKIE, "", "/console/login", 0);
    let headers = axum::response::AppendHeaders([
        (header::SET_COOKIE, request::session_cookie(&s, &session)),
        (header::SET_COOKIE, clear_login),
    ]);
    (headers, Redirect::to("/console")).into_response()
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

pub(crate) async fn logout<B: AdminBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    let session = match request::session(&s, &headers) {
        Ok(session) => session,
        Err(_) => return Redirect::to("/console/login").into_response(),
    };
    if let Err(error) = request::check_csrf(&s, &session, Some(&form.csrf)) {
        return error_page(&s, error, None);
    }
    let clear = request::set_cookie(&s, SESSION_COOKIE, "", "/", 0);
    (
        [(header::SET_COOKIE, clear)],
        Redirect::to("/console/login"),
    )
        .into_response()
}
