//! `/api/v1/role-assignments`: who holds which role.
//!
//! Assignments have no fields and no version: one is created by `POST {user, role}` (200 if the
//! user already held the role, 201 otherwise) and removed by
//! `DELETE /role-assignments/{role}/{user}`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use directory_model::{OaRoleId, OaUserId, RoleAssignment, validate_role_assignment};
use directory_store::{AssignmentQuery, EntityKind, Outcome};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::builtin_roles::{self, refuse};
use super::error::{ApiError, ErrorBody, FieldError, addressed};
use super::extract::{ApiJson, ApiPath, ApiQuery, page_limit};
use super::{ApiState, Caller, Paged, next_link, page_response};

/// One user holding one role.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignmentBody {
    /// The user id (must exist).
    pub user: String,
    /// The role id (must exist).
    pub role: i64,
}

impl From<RoleAssignment> for AssignmentBody {
    fn from(a: RoleAssignment) -> Self {
        Self {
            user: a.user.0,
            role: a.role.get(),
        }
    }
}

/// Filters and paging of the assignment list, ordered by (role, user).
#[derive(Debug, Clone, Default, Deserialize, Serialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AssignmentListQuery {
    /// Only this user's roles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Only this role's holders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<i64>,
    /// Keyset paging, with `after_user`: after this role…
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_role: Option<i64>,
    /// …and this user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_user: Option<String>,
    /// Page size, 1–1000 (default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

// -- assignments -------------------------------------------------------------------------------

/// Gives a user a role (200 if they already held it).
#[utoipa::path(post, path = "/api/v1/role-assignments", tag = "roles",
    request_body = AssignmentBody,
    responses(
        (status = 201, description = "Assigned", body = AssignmentBody),
        (status = 200, description = "The user already held the role; nothing written", body = AssignmentBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 422, description = "Unknown user or role", body = ErrorBody),
    ))]
pub async fn create_assignment(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<AssignmentBody>,
) -> Result<(StatusCode, Json<AssignmentBody>), ApiError> {
    not_builtin(&state, &body.user, body.role).await?;
    let ctx = state.write_ctx(&caller);
    let outcome = state
        .store
        .assign_role(
            &ctx,
            &OaUserId::new(body.user.as_str()),
            OaRoleId(body.role),
        )
        .await?;
    let status = if outcome == Outcome::Unchanged {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(body)))
}

/// Takes a role from a user.
#[utoipa::path(delete, path = "/api/v1/role-assignments/{role}/{user}", tag = "roles",
    params(
        ("role" = i64, Path, description = "The OA role id"),
        ("user" = String, Path, description = "The OA user id"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 404, description = "The user does not hold the role", body = ErrorBody),
    ))]
pub async fn delete_assignment(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    ApiPath((role, user)): ApiPath<(i64, String)>,
) -> Result<StatusCode, ApiError> {
    not_builtin(&state, &user, role).await?;
    let ctx = state.write_ctx(&caller);
    let outcome = state
        .store
        .unassign_role(&ctx, &OaUserId::new(user.as_str()), OaRoleId(role))
        .await
        .map_err(|e| {
            addressed(e, || {
                ApiError::NotFound(format!("user {user:?} does not hold role {role}"))
            })
        })?;
    if outcome == Outcome::Unchanged {
        return Err(ApiError::NotFound(format!(
            "user {user:?} does not hold role {role}"
        )));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Refuses giving or taking one of DingTalk's built-in roles (422 `built_in` on `role`).
async fn not_builtin(state: &ApiState, user: &str, role: i64) -> Result<(), ApiError> {
    let Some((role, group)) = builtin_roles::role_and_group(state, OaRoleId(role)).await? else {
        return Ok(());
    };
    let assignment = RoleAssignment {
        user: OaUserId::new(user),
        role: role.id,
    };
    refuse(
        EntityKind::RoleAssignment,
        validate_role_assignment(&assignment, &role, &group),
    )
}

/// Lists role assignments by (role, user).
#[utoipa::path(get, path = "/api/v1/role-assignments", tag = "roles",
    params(AssignmentListQuery),
    responses(
        (status = 200, description = "One page", body = Paged<AssignmentBody>),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 422, description = "Unknown or malformed parameter", body = ErrorBody),
    ))]
pub async fn list_assignments(
    State(state): State<ApiState>,
    ApiQuery(mut q): ApiQuery<AssignmentListQuery>,
) -> Result<Response, ApiError> {
    let limit = page_limit(q.limit)?;
    let after = match (q.after_role, &q.after_user) {
        (Some(role), Some(user)) => Some(RoleAssignment {
            user: OaUserId::new(user.as_str()),
            role: OaRoleId(role),
        }),
        (None, None) => None,
        _ => {
            return Err(ApiError::Invalid(vec![FieldError::new(
                "after_user",
                "required",
                "after_role and after_user go together (copy them from the next link)",
            )]));
        }
    };
    let page = state
        .store
        .list_assignments(&AssignmentQuery {
            user: q.user.as_deref().map(OaUserId::new),
            role: q.role.map(OaRoleId),
            after,
            limit,
        })
        .await?;
    let next = page.next.and_then(|after| {
        q.after_role = Some(after.role.get());
        q.after_user = Some(after.user.0);
        next_link("/api/v1/role-assignments", &q)
    });
    let items: Vec<AssignmentBody> = page.items.into_iter().map(Into::into).collect();
    Ok(page_response(items, next))
}
