//! `/api/v1/roles`: roles, each in one role group.
//!
//! Roles follow the same conventions as departments (ids allocated when absent,
//! `ETag`/`If-Match`, merge-patch updates); a role someone holds cannot be deleted.

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use directory_model::{
    OaRoleGroupId, OaRoleId, Role, validate_role, validate_role_change, validate_role_deletion,
};
use directory_store::{EntityKind, Expect, RoleQuery, StoreError, Versioned};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::builtin_roles::{self, refuse};
use super::error::{ApiError, ErrorBody, addressed};
use super::extract::{ApiJson, ApiPath, ApiQuery, if_match, non_null, page_limit, positive_id};
use super::{ApiState, Caller, Paged, entity_response, next_link, page_response, retry_if_stale};

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

fn role_not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("role {id} not found"))
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
    if let Some(group) = builtin_roles::group(&state, role.group).await? {
        refuse(
            EntityKind::Role,
            validate_role_change(None, (&role, &group)),
        )?;
    }
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
        let mut role = current.entity.clone();
        if let Some(group) = patch.group {
            role.group = OaRoleGroupId(group);
        }
        if let Some(name) = &patch.name {
            role.name.clone_from(name);
        }
        let old_group = builtin_roles::group(state, current.entity.group).await?;
        if let Some(new_group) = builtin_roles::group(state, role.group).await? {
            let before = old_group.as_ref().map(|g| (&current.entity, g));
            refuse(
                EntityKind::Role,
                validate_role_change(before, (&role, &new_group)),
            )?;
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
    if let Some((role, group)) = builtin_roles::role_and_group(&state, OaRoleId(id)).await? {
        refuse(EntityKind::Role, validate_role_deletion(&role, &group))?;
    }
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
