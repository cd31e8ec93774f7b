//! `/api/v1/role-groups`, `/api/v1/roles` and `/api/v1/role-assignments`.
//!
//! Role groups and roles follow the same conventions as departments (ids allocated when absent,
//! `ETag`/`If-Match`, merge-patch updates). Assignments have no fields and no version: one is
//! created by `POST {user, role}` (200 if the user already held the role, 201 otherwise) and
//! removed by `DELETE /role-assignments/{role}/{user}`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Json};
use directory_model::{
    OaRoleGroupId, OaRoleId, OaUserId, Role, RoleAssignment, RoleGroup, validate_role,
    validate_role_group,
};
use directory_store::{
    AssignmentQuery, EntityKind, Expect, Outcome, RoleQuery, StoreError, Versioned,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody, FieldError};
use super::extract::{ApiJson, ApiPath, ApiQuery, if_match, non_null, page_limit};
use super::{ApiState, Caller, Paged, entity_response, next_link, page_response, retry_if_stale};

/// A role group's fields as the API shows them.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleGroupFields {
    /// The OA id.
    pub id: i64,
    /// Display name.
    pub name: String,
}

impl From<RoleGroup> for RoleGroupFields {
    fn from(g: RoleGroup) -> Self {
        Self {
            id: g.id.get(),
            name: g.name,
        }
    }
}

/// A role group as the API shows it: its fields and its version.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleGroupView {
    /// The role group.
    #[serde(flatten)]
    pub group: RoleGroupFields,
    /// The version, also sent as the `ETag`.
    pub version: i64,
    /// When it last changed (Unix milliseconds).
    pub updated_at_ms: i64,
}

impl From<Versioned<RoleGroup>> for RoleGroupView {
    fn from(v: Versioned<RoleGroup>) -> Self {
        Self {
            group: v.entity.into(),
            version: v.version,
            updated_at_ms: v.updated_at_ms,
        }
    }
}

/// A role group to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRoleGroup {
    /// The OA id (≥ 1); allocated when absent.
    pub id: Option<i64>,
    /// Display name.
    pub name: String,
}

/// Changes to a role group.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleGroupPatch {
    /// New display name.
    #[serde(default, deserialize_with = "non_null")]
    pub name: Option<String>,
}

/// A role's fields as the API shows them.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleFields {
    /// The OA id.
    pub id: i64,
    /// The role group.
    pub group: i64,
    /// Display name, unique within the group.
    pub name: String,
}

impl From<Role> for RoleFields {
    fn from(r: Role) -> Self {
        Self {
            id: r.id.get(),
            group: r.group.get(),
            name: r.name,
        }
    }
}

/// A role as the API shows it: its fields and its version.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleView {
    /// The role.
    #[serde(flatten)]
    pub role: RoleFields,
    /// The version, also sent as the `ETag`.
    pub version: i64,
    /// When it last changed (Unix milliseconds).
    pub updated_at_ms: i64,
}

impl From<Versioned<Role>> for RoleView {
    fn from(v: Versioned<Role>) -> Self {
        Self {
            role: v.entity.into(),
            version: v.version,
            updated_at_ms: v.updated_at_ms,
        }
    }
}

/// A role to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    /// The OA id (≥ 1); allocated when absent.
    pub id: Option<i64>,
    /// The role group (must exist).
    pub group: i64,
    /// Display name, unique within the group.
    pub name: String,
}

/// Changes to a role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolePatch {
    /// Move the role to another group.
    #[serde(default, deserialize_with = "non_null")]
    pub group: Option<i64>,
    /// New display name.
    #[serde(default, deserialize_with = "non_null")]
    pub name: Option<String>,
}

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

/// Paging of the role group list.
#[derive(Debug, Clone, Default, Deserialize, Serialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RoleGroupListQuery {
    /// Keyset paging: only ids greater than this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// Page size, 1–1000 (default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// Filters and paging of the role list.
#[derive(Debug, Clone, Default, Deserialize, Serialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RoleListQuery {
    /// Only roles of this group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<i64>,
    /// Keyset paging: only ids greater than this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// Page size, 1–1000 (default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
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

fn positive_id(id: Option<i64>) -> Result<(), ApiError> {
    match id {
        Some(id) if id < 1 => Err(ApiError::Invalid(vec![FieldError::new(
            "id",
            "out_of_range",
            format!("ids start at 1, got {id}"),
        )])),
        _ => Ok(()),
    }
}

fn group_not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("role group {id} not found"))
}

fn role_not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("role {id} not found"))
}

/// Maps the store's "no such entity" to the API's 404 for the addressed entity.
fn addressed(e: StoreError, missing: impl FnOnce() -> ApiError) -> ApiError {
    match e {
        StoreError::NotFound { .. } => missing(),
        other => other.into(),
    }
}

// -- role groups -------------------------------------------------------------------------------

/// Creates a role group.
#[utoipa::path(post, path = "/api/v1/role-groups", tag = "roles",
    request_body = NewRoleGroup,
    responses(
        (status = 201, description = "Created; `ETag` and `Location` set", body = RoleGroupView, headers(("ETag" = String, description = "The version as a strong entity tag"))),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 409, description = "Id taken", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    ))]
pub async fn create_role_group(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<NewRoleGroup>,
) -> Result<Response, ApiError> {
    positive_id(body.id)?;
    let mut group = RoleGroup {
        id: OaRoleGroupId(body.id.unwrap_or(0)),
        name: body.name,
    };
    if body.id.is_none() {
        validate_role_group(&group).map_err(|source| StoreError::Invalid {
            kind: EntityKind::RoleGroup,
            source,
        })?;
        group.id = OaRoleGroupId(state.store.allocate_ids(EntityKind::RoleGroup, 1).await?);
    }
    let ctx = state.write_ctx(&caller);
    let saved = state
        .store
        .save_role_group(&ctx, group, Expect::Absent)
        .await?;
    let loc = format!("/api/v1/role-groups/{}", saved.value.entity.id);
    Ok(entity_response(
        StatusCode::CREATED,
        saved.value.version,
        Some(loc),
        RoleGroupView::from(saved.value),
    ))
}

/// Reads one role group.
#[utoipa::path(get, path = "/api/v1/role-groups/{id}", tag = "roles",
    params(("id" = i64, Path, description = "The OA role group id")),
    responses(
        (status = 200, description = "The role group; `ETag` set", body = RoleGroupView, headers(("ETag" = String, description = "The version as a strong entity tag"))),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 404, description = "No such role group", body = ErrorBody),
    ))]
pub async fn get_role_group(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let v = state
        .store
        .get_role_group(OaRoleGroupId(id))
        .await?
        .ok_or_else(|| group_not_found(id))?;
    Ok(entity_response(
        StatusCode::OK,
        v.version,
        None,
        RoleGroupView::from(v),
    ))
}

/// Renames a role group (`If-Match` honoured when present).
#[utoipa::path(patch, path = "/api/v1/role-groups/{id}", tag = "roles",
    params(
        ("id" = i64, Path, description = "The OA role group id"),
        ("If-Match" = Option<String>, Header, description = "The `ETag` the change is based on"),
    ),
    request_body = RoleGroupPatch,
    responses(
        (status = 200, description = "Updated; new `ETag` set", body = RoleGroupView, headers(("ETag" = String, description = "The version as a strong entity tag"))),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 404, description = "No such role group", body = ErrorBody),
        (status = 412, description = "Stale If-Match; nothing written", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    ))]
pub async fn update_role_group(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<i64>,
    headers: HeaderMap,
    ApiJson(patch): ApiJson<RoleGroupPatch>,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    // The attempt borrows these; the references are copied into each attempt's future.
    let (state, caller, patch) = (&state, &caller, &patch);
    retry_if_stale(expected, || async move {
        let current = state
            .store
            .get_role_group(OaRoleGroupId(id))
            .await?
            .ok_or_else(|| group_not_found(id))?;
        let mut group = current.entity;
        if let Some(name) = &patch.name {
            group.name.clone_from(name);
        }
        let expect = Expect::Version(expected.unwrap_or(current.version));
        let saved = state
            .store
            .save_role_group(&state.write_ctx(caller), group, expect)
            .await
            .map_err(|e| addressed(e, || group_not_found(id)))?;
        Ok(entity_response(
            StatusCode::OK,
            saved.value.version,
            None,
            RoleGroupView::from(saved.value),
        ))
    })
    .await
}

/// Deletes a role group; refused while it holds roles (`If-Match` honoured).
#[utoipa::path(delete, path = "/api/v1/role-groups/{id}", tag = "roles",
    params(
        ("id" = i64, Path, description = "The OA role group id"),
        ("If-Match" = Option<String>, Header, description = "The `ETag` the deletion is based on"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 404, description = "No such role group", body = ErrorBody),
        (status = 409, description = "Still holds roles", body = ErrorBody),
        (status = 412, description = "Stale If-Match; nothing deleted", body = ErrorBody),
    ))]
pub async fn delete_role_group(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<i64>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let expected = if_match(&headers)?;
    let ctx = state.write_ctx(&caller);
    state
        .store
        .delete_role_group(&ctx, OaRoleGroupId(id), expected)
        .await
        .map_err(|e| addressed(e, || group_not_found(id)))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists role groups by id.
#[utoipa::path(get, path = "/api/v1/role-groups", tag = "roles",
    params(RoleGroupListQuery),
    responses(
        (status = 200, description = "One page", body = Paged<RoleGroupView>),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 422, description = "Unknown or malformed parameter", body = ErrorBody),
    ))]
pub async fn list_role_groups(
    State(state): State<ApiState>,
    ApiQuery(mut q): ApiQuery<RoleGroupListQuery>,
) -> Result<Response, ApiError> {
    let limit = page_limit(q.limit)?;
    let page = state
        .store
        .list_role_groups(q.after.map(OaRoleGroupId), limit)
        .await?;
    let next = page.next.and_then(|after| {
        q.after = Some(after.get());
        next_link("/api/v1/role-groups", &q)
    });
    let items: Vec<RoleGroupView> = page.items.into_iter().map(Into::into).collect();
    Ok(page_response(items, next))
}

// -- roles -------------------------------------------------------------------------------------

/// Creates a role.
#[utoipa::path(post, path = "/api/v1/roles", tag = "roles",
    request_body = NewRole,
    responses(
        (status = 201, description = "Created; `ETag` and `Location` set", body = RoleView, headers(("ETag" = String, description = "The version as a strong entity tag"))),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 409, description = "Id or name in the group taken", body = ErrorBody),
        (status = 422, description = "Invalid field or unknown group", body = ErrorBody),
    ))]
pub async fn create_role(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<NewRole>,
) -> Result<Response, ApiError> {
    positive_id(body.id)?;
    let mut role = Role {
        id: OaRoleId(body.id.unwrap_or(0)),
        group: OaRoleGroupId(body.group),
        name: body.name,
    };
    if body.id.is_none() {
        validate_role(&role).map_err(|source| StoreError::Invalid {
            kind: EntityKind::Role,
            source,
        })?;
        role.id = OaRoleId(state.store.allocate_ids(EntityKind::Role, 1).await?);
    }
    let ctx = state.write_ctx(&caller);
    let saved = state.store.save_role(&ctx, role, Expect::Absent).await?;
    let loc = format!("/api/v1/roles/{}", saved.value.entity.id);
    Ok(entity_response(
        StatusCode::CREATED,
        saved.value.version,
        Some(loc),
        RoleView::from(saved.value),
    ))
}

/// Reads one role.
#[utoipa::path(get, path = "/api/v1/roles/{id}", tag = "roles",
    params(("id" = i64, Path, description = "The OA role id")),
    responses(
        (status = 200, description = "The role; `ETag` set", body = RoleView, headers(("ETag" = String, description = "The version as a strong entity tag"))),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 404, description = "No such role", body = ErrorBody),
    ))]
pub async fn get_role(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let v = state
        .store
        .get_role(OaRoleId(id))
        .await?
        .ok_or_else(|| role_not_found(id))?;
    Ok(entity_response(
        StatusCode::OK,
        v.version,
        None,
        RoleView::from(v),
    ))
}

/// Renames a role or moves it to another group (`If-Match` honoured when present).
#[utoipa::path(patch, path = "/api/v1/roles/{id}", tag = "roles",
    params(
        ("id" = i64, Path, description = "The OA role id"),
        ("If-Match" = Option<String>, Header, description = "The `ETag` the change is based on"),
    ),
    request_body = RolePatch,
    responses(
        (status = 200, description = "Updated; new `ETag` set", body = RoleView, headers(("ETag" = String, description = "The version as a strong entity tag"))),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 404, description = "No such role", body = ErrorBody),
        (status = 409, description = "Name in the group taken", body = ErrorBody),
        (status = 412, description = "Stale If-Match; nothing written", body = ErrorBody),
        (status = 422, description = "Invalid field or unknown group", body = ErrorBody),
    ))]
pub async fn update_role(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<i64>,
    headers: HeaderMap,
    ApiJson(patch): ApiJson<RolePatch>,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    // The attempt borrows these; the references are copied into each attempt's future.
    let (state, caller, patch) = (&state, &caller, &patch);
    retry_if_stale(expected, || async move {
        let current = state
            .store
            .get_role(OaRoleId(id))
            .await?
            .ok_or_else(|| role_not_found(id))?;
        let mut role = current.entity;
        if let Some(group) = patch.group {
            role.group = OaRoleGroupId(group);
        }
        if let Some(name) = &patch.name {
            role.name.clone_from(name);
        }
        let expect = Expect::Version(expected.unwrap_or(current.version));
        let saved = state
            .store
            .save_role(&state.write_ctx(caller), role, expect)
            .await
            .map_err(|e| addressed(e, || role_not_found(id)))?;
        Ok(entity_response(
            StatusCode::OK,
            saved.value.version,
            None,
            RoleView::from(saved.value),
        ))
    })
    .await
}

/// Deletes a role; refused while users hold it (`If-Match` honoured).
#[utoipa::path(delete, path = "/api/v1/roles/{id}", tag = "roles",
    params(
        ("id" = i64, Path, description = "The OA role id"),
        ("If-Match" = Option<String>, Header, description = "The `ETag` the deletion is based on"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 404, description = "No such role", body = ErrorBody),
        (status = 409, description = "Users still hold it", body = ErrorBody),
        (status = 412, description = "Stale If-Match; nothing deleted", body = ErrorBody),
    ))]
pub async fn delete_role(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<i64>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let expected = if_match(&headers)?;
    let ctx = state.write_ctx(&caller);
    state
        .store
        .delete_role(&ctx, OaRoleId(id), expected)
        .await
        .map_err(|e| addressed(e, || role_not_found(id)))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists roles by id.
#[utoipa::path(get, path = "/api/v1/roles", tag = "roles",
    params(RoleListQuery),
    responses(
        (status = 200, description = "One page", body = Paged<RoleView>),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 422, description = "Unknown or malformed parameter", body = ErrorBody),
    ))]
pub async fn list_roles(
    State(state): State<ApiState>,
    ApiQuery(mut q): ApiQuery<RoleListQuery>,
) -> Result<Response, ApiError> {
    let limit = page_limit(q.limit)?;
    let page = state
        .store
        .list_roles(&RoleQuery {
            group: q.group.map(OaRoleGroupId),
            after: q.after.map(OaRoleId),
            limit,
        })
        .await?;
    let next = page.next.and_then(|after| {
        q.after = Some(after.get());
        next_link("/api/v1/roles", &q)
    });
    let items: Vec<RoleView> = page.items.into_iter().map(Into::into).collect();
    Ok(page_response(items, next))
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
