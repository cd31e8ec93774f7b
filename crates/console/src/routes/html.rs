//! The HTML pages. Each handler signs the request in (`begin`), asks the backend for its
//! view, and draws it (`finish`); a failure anywhere becomes an error page with a plain
//! message, inside the usual navigation when someone is signed in.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::request::{self, NOTICE_COOKIE, SESSION_COOKIE};
use super::{AppState, Shared, api};
use crate::auth::Session;
use crate::backend::AdminBackend;
use crate::error::ConsoleError;
use crate::pages::{
    AttentionPage, AuditPageView, Chrome, DepartmentsPage, ErrorPage, ObjectPage, OverviewPage,
    PlanPage, RolesPage, RunPage, RunsPage, SettingsPage, UsersPage,
};
use crate::views::{AuditQuery, DepartmentQuery, ObjectKind, PlanQuery, SyncState, UserQuery};

/// The error page (or, for a missing or expired session, the way to the sign-in form).
pub(crate) fn error_page<B>(
    shared: &Shared<B>,
    error: ConsoleError,
    chrome: Option<Chrome>,
) -> Response {
    match error {
        ConsoleError::SignInRequired => Redirect::to("/console/login").into_response(),
        ConsoleError::SessionExpired { .. } => {
            let clear = request::set_cookie(shared, SESSION_COOKIE, "", "/", 0);
            (
                [(header::SET_COOKIE, clear)],
                Redirect::to("/console/login?expired=1"),
            )
                .into_response()
        }
        error => {
            let status = error.status();
            let page = ErrorPage {
                chrome,
                status: status.as_u16(),
                title: error.title().to_owned(),
                message: error.public_message(),
            };
            let body = page.render().unwrap_or_else(|_| {
                "<!doctype html><title>Error</title><p>Something went wrong.</p>".to_owned()
            });
            (status, Html(body)).into_response()
        }
    }
}

/// Signs the request in and builds the page chrome; on failure, the response to send.
pub(crate) async fn begin<B: AdminBackend>(
    shared: &Shared<B>,
    headers: &HeaderMap,
    active: &'static str,
    here: String,
) -> Result<(Session, Chrome), Response> {
    let session = request::session(shared, headers).map_err(|e| error_page(shared, e, None))?;
    let chrome = request::chrome(shared, &session, headers, active, here)
        .await
        .map_err(|e| error_page(shared, e, None))?;
    Ok((session, chrome))
}

/// Sends a drawn page (or its error page), refreshing the session cookie and consuming the
/// one-time notice.
pub(crate) fn finish<B>(
    shared: &Shared<B>,
    session: &Session,
    chrome: Chrome,
    draw: impl FnOnce(Chrome) -> Result<String, ConsoleError>,
) -> Response {
    let had_notice = chrome.notice.is_some();
    let mut response = match draw(chrome.clone()) {
        Ok(body) => Html(body).into_response(),
        Err(error) => error_page(shared, error, Some(chrome)),
    };
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, request::session_cookie(shared, session));
    if had_notice {
        headers.append(
            header::SET_COOKIE,
            request::set_cookie(shared, NOTICE_COOKIE, "", "/console", 0),
        );
    }
    response
}

macro_rules! signed_in {
    ($shared:expr, $headers:expr, $active:expr, $here:expr) => {
        match begin(&$shared, &$headers, $active, $here).await {
            Ok(pair) => pair,
            Err(response) => return response,
        }
    };
}

pub(crate) async fn overview<B: AdminBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
) -> Response {
    let (session, chrome) = signed_in!(s, headers, "overview", "/console".to_owned());
    let view = s.backend.overview().await;
    finish(&s, &session, chrome, |chrome| {
        Ok(OverviewPage {
            chrome,
            view: &view?,
        }
        .render()?)
    })
}

/// Reads an optional text parameter: blank means absent; at most 200 characters.
pub(crate) fn text_param(
    params: &HashMap<String, String>,
    field: &str,
) -> Result<Option<String>, ConsoleError> {
    let Some(value) = params
        .get(field)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    if value.chars().count() > 200 || value.chars().any(char::is_control) {
        return Err(ConsoleError::bad_input(
            field,
            "must be at most 200 printable characters",
        ));
    }
    Ok(Some(value.to_owned()))
}

pub(crate) fn parse_user_query(
    params: &HashMap<String, String>,
) -> Result<UserQuery, ConsoleError> {
    let state = match text_param(params, "state")? {
        None => None,
        Some(slug) => Some(SyncState::from_slug(&slug).ok_or_else(|| {
            ConsoleError::bad_input(
                "state",
                format!("\"{slug}\" is not a sync state; use one of in_sync, pending_push, held, conflicted, dead_lettered"),
            )
        })?),
    };
    let page = page_param(params)?;
    Ok(UserQuery {
        q: text_param(params, "q")?,
        department: text_param(params, "department")?,
        state,
        page,
    })
}

pub(crate) async fn users<B: AdminBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let (session, chrome) = signed_in!(s, headers, "directory", uri.to_string());
    let query = match parse_user_query(&params) {
        Ok(query) => query,
        Err(error) => return finish(&s, &session, chrome, |_| Err(error)),
    };
    let view = s.backend.users(&query).await;
    finish(&s, &session, chrome, |chrome| {
        let page = UsersPage {
            chrome,
            view: &view?,
            query: &query,
            states: SyncState::ALL,
        };
        Ok(page.render()?)
    })
}

/// A whole-number page parameter (0 when absent).
pub(crate) fn page_param(params: &HashMap<String, String>) -> Result<u32, ConsoleError> {
    match text_param(params, "page")? {
        None => Ok(0),
        Some(page) => page
            .parse()
            .map_err(|_| ConsoleError::bad_input("page", "must be a whole number from 0")),
    }
}

pub(crate) fn parse_department_query(
    params: &HashMap<String, String>,
) -> Result<DepartmentQuery, ConsoleError> {
    let under = text_param(params, "under")?;
    if let Some(under) = &under {
        check_id(under, "under")?;
    }
    Ok(DepartmentQuery {
        under,
        page: page_param(params)?,
    })
}

pub(crate) async fn departments<B: AdminBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let (session, chrome) = signed_in!(s, headers, "directory", uri.to_string());
    let query = match parse_department_query(&params) {
        Ok(query) => query,
        Err(error) => return finish(&s, &session, chrome, |_| Err(error)),
    };
    let view = s.backend.departments(&query).await;
    finish(&s, &session, chrome, |chrome| {
        Ok(DepartmentsPage {
            chrome,
            view: &view?,
        }
        .render()?)
    })
}

pub(crate) async fn roles<B: AdminBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
) -> Response {
    let (session, chrome) = signed_in!(s, headers, "directory", "/console/roles".to_owned());
    let view = s.backend.roles().await;
    finish(&s, &session, chrome, |chrome| {
        Ok(RolesPage {
            chrome,
            view: &view?,
        }
        .render()?)
    })
}

/// Checks an id from a URL: 1 to 128 printable characters.
pub(crate) fn check_id(id: &str, field: &str) -> Result<(), ConsoleError> {
    if id.is_empty() || id.chars().count() > 128 || id.chars().any(char::is_control) {
        return Err(ConsoleError::bad_input(
            field,
            "must be 1 to 128 printable characters",
        ));
    }
    Ok(())
}

async fn object<B: AdminBackend>(
    s: AppState<B>,
    headers: HeaderMap,
    kind: ObjectKind,
    id: String,
) -> Response {
    let here = format!("/console/{}/{id}", kind.segment());
    let (session, chrome) = signed_in!(s, headers, "directory", here);
    if let Err(error) = check_id(&id, "id") {
        return finish(&s, &session, chrome, |_| Err(error));
    }
    let view = s.backend.object(kind, &id).await;
    finish(&s, &session, chrome, |chrome| {
        Ok(ObjectPage {
            chrome,
            view: &view?,
        }
        .render()?)
    })
}

pub(crate) async fn user<B: AdminBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    object(s, headers, ObjectKind::User, id).await
}

pub(crate) async fn department<B: AdminBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    object(s, headers, ObjectKind::Department, id).await
}

pub(crate) async fn role<B: AdminBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    object(s, headers, ObjectKind::Role, id).await
}

pub(crate) async fn role_group<B: AdminBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    object(s, headers, ObjectKind::RoleGroup, id).await
}

pub(crate) async fn attention<B: AdminBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
) -> Response {
    let (session, chrome) = signed_in!(s, headers, "attention", "/console/attention".to_owned());
    let view = s.backend.attention().await;
    finish(&s, &session, chrome, |chrome| {
        Ok(AttentionPage {
            chrome,
            view: &view?,
        }
        .render()?)
    })
}

pub(crate) async fn plan<B: AdminBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let (session, chrome) = signed_in!(s, headers, "plan", uri.to_string());
    let query = match page_param(&params) {
        Ok(page) => PlanQuery { page },
        Err(error) => return finish(&s, &session, chrome, |_| Err(error)),
    };
    let view = s.backend.plan(&query).await;
    finish(&s, &session, chrome, |chrome| {
        Ok(PlanPage {
            chrome,
            view: &view?,
        }
        .render()?)
    })
}

pub(crate) async fn runs<B: AdminBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
) -> Response {
    let (session, chrome) = signed_in!(s, headers, "runs", "/console/runs".to_owned());
    let view = s.backend.runs().await;
    finish(&s, &session, chrome, |chrome| {
        Ok(RunsPage {
            chrome,
            view: &view?,
        }
        .render()?)
    })
}

pub(crate) async fn run<B: AdminBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (session, chrome) = signed_in!(s, headers, "runs", format!("/console/runs/{id}"));
    if let Err(error) = check_id(&id, "run") {
        return finish(&s, &session, chrome, |_| Err(error));
    }
    let view = s.backend.run(&id).await;
    finish(&s, &session, chrome, |chrome| {
        Ok(RunPage {
            chrome,
            view: &view?,
        }
        .render()?)
    })
}

/// `from`/`to` must at least start like a date, so a typo is named instead of matching nothing.
fn check_time(value: &Option<String>, field: &str) -> Result<(), ConsoleError> {
    let Some(value) = value else { return Ok(()) };
    let bytes = value.as_bytes();
    let date_like = bytes.len() >= 10
        && bytes[..10].iter().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                *b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if date_like {
        Ok(())
    } else {
        Err(ConsoleError::bad_input(
            field,
            format!("\"{value}\" is not a date; use 2026-12-07 or 2026-12-07T14:30:00Z"),
        ))
    }
}

pub(crate) fn parse_audit_query(
    params: &HashMap<String, String>,
) -> Result<AuditQuery, ConsoleError> {
    let query = AuditQuery {
        object: text_param(params, "object")?,
        origin: text_param(params, "origin")?,
        actor: text_param(params, "actor")?,
        from: text_param(params, "from")?,
        to: text_param(params, "to")?,
    };
    check_time(&query.from, "from")?;
    check_time(&query.to, "to")?;
    Ok(query)
}

pub(crate) async fn audit<B: AdminBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let (session, chrome) = signed_in!(s, headers, "audit", uri.to_string());
    let query = match parse_audit_query(&params) {
        Ok(query) => query,
        Err(error) => return finish(&s, &session, chrome, |_| Err(error)),
    };
    let view = s.backend.audit(&query).await;
    finish(&s, &session, chrome, |chrome| {
        Ok(AuditPageView {
            chrome,
            view: &view?,
            query: &query,
        }
        .render()?)
    })
}

pub(crate) async fn settings<B: AdminBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
) -> Response {
    let (session, chrome) = signed_in!(s, headers, "settings", "/console/settings".to_owned());
    let view = s.backend.settings().await.map(|view| view.redacted());
    finish(&s, &session, chrome, |chrome| {
        Ok(SettingsPage {
            chrome,
            view: &view?,
        }
        .render()?)
    })
}

/// Unknown paths: JSON under the API prefix, an error page elsewhere.
pub(crate) async fn not_found<B: AdminBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> Response {
    let error = ConsoleError::NotFound {
        what: format!("page at {}", uri.path()),
    };
    if uri.path().starts_with("/api/") {
        return api::error_json(error);
    }
    match begin(&s, &headers, "", uri.path().to_owned()).await {
        Ok((session, chrome)) => finish(&s, &session, chrome, |_| Err(error)),
        Err(_) => {
            let mut response = error_page(&s, error, None);
            *response.status_mut() = StatusCode::NOT_FOUND;
            response
        }
    }
}
