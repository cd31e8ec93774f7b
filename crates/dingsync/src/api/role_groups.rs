//! `/api/v1/role-groups`: the groups roles live in.
//!
//! Role groups follow the same conventions as departments (ids allocated when absent,
//! `ETag`/`If-Match`, merge-patch updates); a group with roles cannot be deleted.

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use directory_model::{
    OaRoleGroupId, RoleGroup, validate_role_group, validate_role_group_change,
    validate_role_group_deletion,
};
use directory_store::{EntityKind, Expect, StoreError, Versioned};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::builtin_roles::{self, refuse};
use super::error::{ApiError, ErrorBody, addressed};
use super::extract::{ApiJson, ApiPath, ApiQuery, if_match, non_null, page_limit, positive_id};
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

pub(super) fn group_not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("role group {id} not found"))
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
    refuse(
        EntityKind::RoleGroup,
        validate_role_group_change(None, &group),
    )?;
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
        let mut group = current.entity.clone();
        if let Some(name) = &patch.name {
            group.name.clone_from(name);
        }
        refuse(
            EntityKind::RoleGroup,
            validate_role_group_change(Some(&current.entity), &group),
        )?;
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
    if let Some(group) = builtin_roles::group(&state, OaRoleGroupId(id)).await? {
        refuse(EntityKind::RoleGroup, validate_role_group_deletion(&group))?;
    }
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
