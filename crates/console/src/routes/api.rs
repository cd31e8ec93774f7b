//! The admin JSON API under `/api/v1/admin`: the same backend calls and view structs as the
//! pages, so the CLI and scripts can do everything the console does. It authenticates with
//! the console's session cookie; a `POST` must also carry the session's CSRF token in
//! `X-CSRF-Token` (from `GET /api/v1/admin/me`). Errors are `{"error": {code, message}}`.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;

use super::html::{
    check_id, page_param, parse_audit_query, parse_department_query, parse_user_query,
};
use super::{AppState, request};
use crate::auth::{Role, Session};
use crate::backend::AdminBackend;
use crate::error::ConsoleError;
use crate::views::{Actor, ObjectKind, OperatorAction, PlanQuery};

/// One route of the admin API, as the service's OpenAPI document lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRoute {
    /// `get` or `post`.
    pub method: &'static str,
    /// The path, with `{id}` placeholders.
    pub path: &'static str,
    pub summary: &'static str,
}

/// Every route [`routes`] serves, for the OpenAPI document (a test checks each is served).
pub const ADMIN_API: &[ApiRoute] = &[
    ApiRoute {
        method: "get",
        path: "/api/v1/admin/me",
        summary: "The signed-in console user, their role and the CSRF token for POST",
    },
    ApiRoute {
        method: "get",
        path: "/api/v1/admin/overview",
        summary: "Health and readiness with reasons, DingTalk budget per API, token, events, backlogs, last runs",
    },
    ApiRoute {
        method: "get",
        path: "/api/v1/admin/users",
        summary: "User search (q: start of a name, or exact userid, mobile, job number, email; department; state; page), each row with its sync state",
    },
    ApiRoute {
        method: "get",
        path: "/api/v1/admin/users/{id}",
        summary: "One user: OA beside DingTalk (fetched live), id mapping, timeline",
    },
    ApiRoute {
        method: "get",
        path: "/api/v1/admin/departments",
        summary: "One level of the department tree (under: a department id, the top level without it; page), each with members, sub-departments and sync state",
    },
    ApiRoute {
        method: "get",
        path: "/api/v1/admin/departments/{id}",
        summary: "One department: both sides, id mapping, timeline",
    },
    ApiRoute {
        method: "get",
        path: "/api/v1/admin/roles",
        summary: "Role groups with their roles, holders and sync states",
    },
    ApiRoute {
        method: "get",
        path: "/api/v1/admin/roles/{id}",
        summary: "One role: both sides, id mapping, timeline",
    },
    ApiRoute {
        method: "get",
        path: "/api/v1/admin/role-groups/{id}",
        summary: "One role group: both sides, id mapping, timeline",
    },
    ApiRoute {
        method: "get",
        path: "/api/v1/admin/attention",
        summary: "Everything waiting for a person: held deletions, conflicts, ambiguous soft matches, dead letters",
    },
    ApiRoute {
        method: "get",
        path: "/api/v1/admin/plan",
        summary: "The last plan computed, with its age, as a diff of both sides (page: 200 entries a page); computes one in the background when there is none or it is stale",
    },
    ApiRoute {
        method: "get",
        path: "/api/v1/admin/runs",
        summary: "Run history (imports, reconciles, catch-ups), newest first, with progress of runs in progress",
    },
    ApiRoute {
        method: "get",
        path: "/api/v1/admin/runs/{id}",
        summary: "One run with its counts and log lines",
    },
    ApiRoute {
        method: "get",
        path: "/api/v1/admin/audit",
        summary: "Audit search by object, origin, actor and time",
    },
    ApiRoute {
        method: "get",
        path: "/api/v1/admin/settings",
        summary: "The effective configuration with each value's source, secrets redacted",
    },
    ApiRoute {
        method: "post",
        path: "/api/v1/admin/actions",
        summary: "An operator action (operator role, X-CSRF-Token header), as JSON {\"action\": …}: push_now, refetch, decide_deletion, accept_conflict, apply_other_side, link_soft_match {item, oa_id}, create_from_soft_match {item}, retry_dead_letter, drop_dead_letter, apply_plan, compute_plan, start_import, start_reconcile; audited with the user's name",
    },
];

pub(crate) fn routes<B: AdminBackend>() -> Router<AppState<B>> {
    Router::new()
        .route("/api/v1/admin/me", get(me::<B>))
        .route("/api/v1/admin/overview", get(overview::<B>))
        .route("/api/v1/admin/users", get(users::<B>))
        .route("/api/v1/admin/users/{id}", get(user::<B>))
        .route("/api/v1/admin/departments", get(departments::<B>))
        .route("/api/v1/admin/departments/{id}", get(department::<B>))
        .route("/api/v1/admin/roles", get(roles::<B>))
        .route("/api/v1/admin/roles/{id}", get(role::<B>))
        .route("/api/v1/admin/role-groups/{id}", get(role_group::<B>))
        .route("/api/v1/admin/attention", get(attention::<B>))
        .route("/api/v1/admin/plan", get(plan::<B>))
        .route("/api/v1/admin/runs", get(runs::<B>))
        .route("/api/v1/admin/runs/{id}", get(run::<B>))
        .route("/api/v1/admin/audit", get(audit::<B>))
        .route("/api/v1/admin/settings", get(settings::<B>))
        .route("/api/v1/admin/actions", post(act::<B>))
}

#[derive(Serialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize)]
struct ErrorDetail {
    code: &'static str,
    message: String,
}

pub(crate) fn error_json(error: ConsoleError) -> Response {
    let status = error.status();
    let body = ErrorBody {
        error: ErrorDetail {
            code: error.code(),
            message: error.public_message(),
        },
    };
    (status, Json(body)).into_response()
}

/// A JSON answer with the refreshed session cookie.
fn answer<B, T: Serialize>(
    s: &AppState<B>,
    session: &Session,
    result: Result<T, ConsoleError>,
) -> Response {
    match result {
        Ok(body) => (
            [(header::SET_COOKIE, request::session_cookie(s, session))],
            Json(body),
        )
            .into_response(),
        Err(error) => error_json(error),
    }
}

macro_rules! api_session {
    ($s:expr, $headers:expr) => {
        match request::session(&$s, &$headers) {
            Ok(session) => session,
            Err(error) => return error_json(error),
        }
    };
}

#[derive(Serialize)]
struct Me {
    user: String,
    role: Role,
    csrf_token: String,
}

async fn me<B: AdminBackend>(State(s): State<AppState<B>>, headers: HeaderMap) -> Response {
    let session = api_session!(s, headers);
    let me = Me {
        user: session.user.clone(),
        role: session.role,
        csrf_token: s.codec.csrf_token(&session.nonce),
    };
    answer(&s, &session, Ok(me))
}

async fn overview<B: AdminBackend>(State(s): State<AppState<B>>, headers: HeaderMap) -> Response {
    let session = api_session!(s, headers);
    let result = s.backend.overview().await.map_err(Into::into);
    answer(&s, &session, result)
}

async fn users<B: AdminBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let session = api_session!(s, headers);
    let result = match parse_user_query(&params) {
        Ok(query) => s.backend.users(&query).await.map_err(Into::into),
        Err(error) => Err(error),
    };
    answer(&s, &session, result)
}

async fn object<B: AdminBackend>(
    s: AppState<B>,
    headers: HeaderMap,
    kind: ObjectKind,
    id: String,
) -> Response {
    let session = api_session!(s, headers);
    let result = match check_id(&id, "id") {
        Ok(()) => s.backend.object(kind, &id).await.map_err(Into::into),
        Err(error) => Err(error),
    };
    answer(&s, &session, result)
}

async fn user<B: AdminBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    object(s, headers, ObjectKind::User, id).await
}

async fn department<B: AdminBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    object(s, headers, ObjectKind::Department, id).await
}

async fn role<B: AdminBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    object(s, headers, ObjectKind::Role, id).await
}

async fn role_group<B: AdminBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    object(s, headers, ObjectKind::RoleGroup, id).await
}

async fn roles<B: AdminBackend>(State(s): State<AppState<B>>, headers: HeaderMap) -> Response {
    let session = api_session!(s, headers);
    let result = s.backend.roles().await.map_err(Into::into);
    answer(&s, &session, result)
}

async fn departments<B: AdminBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let session = api_session!(s, headers);
    let result = match parse_department_query(&params) {
        Ok(query) => s.backend.departments(&query).await.map_err(Into::into),
        Err(error) => Err(error),
    };
    answer(&s, &session, result)
}

async fn attention<B: AdminBackend>(State(s): State<AppState<B>>, headers: HeaderMap) -> Response {
    let session = api_session!(s, headers);
    let result = s.backend.attention().await.map_err(Into::into);
    answer(&s, &session, result)
}

async fn plan<B: AdminBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let session = api_session!(s, headers);
    let result = match page_param(&params) {
        Ok(page) => s
            .backend
            .plan(&PlanQuery { page })
            .await
            .map_err(Into::into),
        Err(error) => Err(error),
    };
    answer(&s, &session, result)
}

async fn runs<B: AdminBackend>(State(s): State<AppState<B>>, headers: HeaderMap) -> Response {
    let session = api_session!(s, headers);
    let result = s.backend.runs().await.map_err(Into::into);
    answer(&s, &session, result)
}

async fn run<B: AdminBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let session = api_session!(s, headers);
    let result = match check_id(&id, "run") {
        Ok(()) => s.backend.run(&id).await.map_err(Into::into),
        Err(error) => Err(error),
    };
    answer(&s, &session, result)
}

async fn audit<B: AdminBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let session = api_session!(s, headers);
    let result = match parse_audit_query(&params) {
        Ok(query) => s.backend.audit(&query).await.map_err(Into::into),
        Err(error) => Err(error),
    };
    answer(&s, &session, result)
}

async fn settings<B: AdminBackend>(State(s): State<AppState<B>>, headers: HeaderMap) -> Response {
    let session = api_session!(s, headers);
    let result = s
        .backend
        .settings()
        .await
        .map(|view| view.redacted())
        .map_err(Into::into);
    answer(&s, &session, result)
}

async fn act<B: AdminBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let session = api_session!(s, headers);
    let token = headers
        .get("x-csrf-token")
        .and_then(|value| value.to_str().ok());
    if let Err(error) = request::check_csrf(&s, &session, token) {
        return error_json(error);
    }
    let action: OperatorAction = match serde_json::from_slice(&body) {
        Ok(action) => action,
        Err(error) => {
            return error_json(ConsoleError::bad_input(
                "body",
                format!("not an action: {error}"),
            ));
        }
    };
    if !session.role.may_act() {
        return error_json(ConsoleError::Forbidden {
            role: session.role.label(),
            action: action.describe(),
        });
    }
    let actor = Actor {
        name: session.user.clone(),
        role: session.role,
    };
    let result = s.backend.perform(&actor, &action).await.map_err(Into::into);
    answer(&s, &session, result)
}
