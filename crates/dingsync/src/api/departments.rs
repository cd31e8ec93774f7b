//! `/api/v1/departments`: create, read, update (rename, reorder, move), delete and list.
//!
//! Moving a department is a `PATCH` of its `parent`; the store refuses an unknown parent and a
//! move under the department's own subtree (a cycle), as DingTalk would (60004, 60010).
//! Deleting refuses a department that still has sub-departments or members unless
//! `?cascade=true`, which deletes the whole subtree and moves members who would be left without
//! a department to the subtree's parent.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Json};
use directory_model::{Department, OaDeptId, OaUserId, validate_department};
use directory_store::{DeleteReport, DeptQuery, EntityKind, StoreError, Versioned};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody, FieldError};
use super::extract::{ApiJson, ApiPath, ApiQuery, if_match, non_null, page_limit};
use super::{ApiState, Caller, Paged, entity_response, next_link, page_response, retry_if_stale};

/// A department's fields as the API shows them (in entity reads and in the change feed).
#[derive(Debug, Serialize, ToSchema)]
pub struct DepartmentFields {
    /// The OA id.
    pub id: i64,
    /// Display name (1–64 characters, no `-`, `,` or `，`).
    pub name: String,
    /// The parent department; `null` only for the root.
    pub parent: Option<i64>,
    /// Sort key among siblings; smaller first.
    pub order: i64,
    /// The managers' user ids.
    pub managers: Vec<String>,
    /// The key dingsync gives the department in DingTalk (set by dingsync, read-only here).
    pub source_identifier: Option<String>,
    /// Hidden from the contacts list.
    pub hide: bool,
    /// Members see only this department.
    pub outer: bool,
}

impl From<Department> for DepartmentFields {
    fn from(d: Department) -> Self {
        Self {
            id: d.id.get(),
            name: d.name,
            parent: d.parent.map(OaDeptId::get),
            order: d.order,
            managers: d.managers.into_iter().map(|m| m.0).collect(),
            source_identifier: d.source_identifier,
            hide: d.hide,
            outer: d.outer,
        }
    }
}

/// A department as the API shows it: its fields and its version.
#[derive(Debug, Serialize, ToSchema)]
pub struct DepartmentView {
    /// The department.
    #[serde(flatten)]
    pub department: DepartmentFields,
    /// The version, also sent as the `ETag`.
    pub version: i64,
    /// When it last changed (Unix milliseconds).
    pub updated_at_ms: i64,
}

impl From<Versioned<Department>> for DepartmentView {
    fn from(v: Versioned<Department>) -> Self {
        Self {
            department: v.entity.into(),
            version: v.version,
            updated_at_ms: v.updated_at_ms,
        }
    }
}

/// A department to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDepartment {
    /// The OA id (≥ 1); allocated by dingsync when absent.
    pub id: Option<i64>,
    /// Display name (1–64 characters, no `-`, `,` or `，`).
    pub name: String,
    /// The parent; absent only when creating the root.
    pub parent: Option<i64>,
    /// Sort key among siblings (default 0).
    #[serde(default)]
    pub order: i64,
    /// The managers' user ids (each must exist).
    #[serde(default)]
    pub managers: Vec<String>,
    /// Hidden from the contacts list (default false).
    #[serde(default)]
    pub hide: bool,
    /// Members see only this department (default false).
    #[serde(default)]
    pub outer: bool,
}

/// Changes to a department (a JSON merge patch: absent fields stay as they are; none of these
/// fields can be `null`). Changing
/// `parent` moves the department.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DepartmentPatch {
    /// New display name.
    #[serde(default, deserialize_with = "non_null")]
    pub name: Option<String>,
    /// New parent (moves the department with its subtree).
    #[serde(default, deserialize_with = "non_null")]
    pub parent: Option<i64>,
    /// New sort key.
    #[serde(default, deserialize_with = "non_null")]
    pub order: Option<i64>,
    /// The new, complete list of managers.
    #[serde(default, deserialize_with = "non_null")]
    pub managers: Option<Vec<String>>,
    /// New hidden flag.
    #[serde(default, deserialize_with = "non_null")]
    pub hide: Option<bool>,
    /// New outer flag.
    #[serde(default, deserialize_with = "non_null")]
    pub outer: Option<bool>,
}

impl DepartmentPatch {
    fn apply(&self, d: &mut Department) {
        if let Some(name) = &self.name {
            d.name.clone_from(name);
        }
        if let Some(parent) = self.parent {
            d.parent = Some(OaDeptId(parent));
        }
        if let Some(order) = self.order {
            d.order = order;
        }
        if let Some(managers) = &self.managers {
            d.managers = managers.iter().map(OaUserId::new).collect();
        }
        if let Some(hide) = self.hide {
            d.hide = hide;
        }
        if let Some(outer) = self.outer {
            d.outer = outer;
        }
    }
}

/// Filters and paging of the department list.
#[derive(Debug, Clone, Default, Deserialize, Serialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DepartmentListQuery {
    /// Case-insensitive substring of the name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Only direct children of this department.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<i64>,
    /// Only departments changed at or after this time (Unix milliseconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_since: Option<i64>,
    /// Keyset paging: only ids greater than this (the `next` link sets it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// Page size, 1–1000 (default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// Options of a department deletion.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteDepartmentQuery {
    /// Also delete the whole subtree; members left without a department move to the deleted
    /// department's parent. Without it, a department with sub-departments or members is
    /// refused (409, field `cascade`).
    pub cascade: Option<bool>,
}

/// What a department deletion removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeleteDepartmentView {
    /// Deleted departments, deepest first.
    pub deleted_departments: Vec<i64>,
    /// Users whose memberships changed because their department was deleted.
    pub users_moved: Vec<String>,
}

impl From<DeleteReport> for DeleteDepartmentView {
    fn from(r: DeleteReport) -> Self {
        Self {
            deleted_departments: r.departments.into_iter().map(OaDeptId::get).collect(),
            users_moved: r.users_moved.into_iter().map(|u| u.0).collect(),
        }
    }
}

fn location(id: OaDeptId) -> String {
    format!("/api/v1/departments/{id}")
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("department {id} not found"))
}

/// Creates a department.
#[utoipa::path(post, path = "/api/v1/departments", tag = "departments",
    request_body = NewDepartment,
    responses(
        (status = 201, description = "Created; `ETag` and `Location` set", body = DepartmentView, headers(("ETag" = String, description = "The version as a strong entity tag"))),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 409, description = "Id or sibling name taken", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field, unknown parent or manager", body = ErrorBody),
    ))]
pub async fn create_department(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<NewDepartment>,
) -> Result<Response, ApiError> {
    let mut dept = Department::new(
        OaDeptId(body.id.unwrap_or(0)),
        body.name,
        body.parent.map(OaDeptId),
    );
    dept.order = body.order;
    dept.managers = body.managers.into_iter().map(OaUserId::new).collect();
    dept.hide = body.hide;
    dept.outer = body.outer;
    match body.id {
        Some(id) if id < 1 => {
            return Err(ApiError::Invalid(vec![FieldError::new(
                "id",
                "out_of_range",
                format!("department ids start at 1, got {id}"),
            )]));
        }
        Some(_) => {}
        None => {
            // Check the fields before taking an id from the counter, so a request refused for
            // its fields leaves even the counter alone.
            validate_department(&dept).map_err(|source| StoreError::Invalid {
                kind: EntityKind::Department,
                source,
            })?;
            dept.id = OaDeptId(state.store.allocate_ids(EntityKind::Department, 1).await?);
        }
    }
    let ctx = state.write_ctx(&caller);
    let saved = state.store.create_department(&ctx, dept).await?;
    let version = saved.value.version;
    let loc = location(saved.value.entity.id);
    Ok(entity_response(
        StatusCode::CREATED,
        version,
        Some(loc),
        DepartmentView::from(saved.value),
    ))
}

/// Reads one department.
#[utoipa::path(get, path = "/api/v1/departments/{id}", tag = "departments",
    params(("id" = i64, Path, description = "The OA department id")),
    responses(
        (status = 200, description = "The department; `ETag` set", body = DepartmentView, headers(("ETag" = String, description = "The version as a strong entity tag"))),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 404, description = "No such department", body = ErrorBody),
    ))]
pub async fn get_department(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let v = state
        .store
        .get_department(OaDeptId(id))
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(entity_response(
        StatusCode::OK,
        v.version,
        None,
        DepartmentView::from(v),
    ))
}

/// Updates or moves a department (merge patch; `If-Match` honoured when present).
#[utoipa::path(patch, path = "/api/v1/departments/{id}", tag = "departments",
    params(
        ("id" = i64, Path, description = "The OA department id"),
        ("If-Match" = Option<String>, Header, description = "The `ETag` the change is based on"),
    ),
    request_body = DepartmentPatch,
    responses(
        (status = 200, description = "Updated (or unchanged); new `ETag` set", body = DepartmentView, headers(("ETag" = String, description = "The version as a strong entity tag"))),
        (status = 400, description = "Malformed JSON or If-Match", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 404, description = "No such department", body = ErrorBody),
        (status = 409, description = "Sibling name taken", body = ErrorBody),
        (status = 412, description = "Stale If-Match; nothing written", body = ErrorBody),
        (status = 415, description = "Body not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field, unknown parent or manager, cycle", body = ErrorBody),
    ))]
pub async fn update_department(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<i64>,
    headers: HeaderMap,
    ApiJson(patch): ApiJson<DepartmentPatch>,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    // The attempt borrows these; the references are copied into each attempt's future.
    let (state, caller, patch) = (&state, &caller, &patch);
    retry_if_stale(expected, || async move {
        let current = state
            .store
            .get_department(OaDeptId(id))
            .await?
            .ok_or_else(|| not_found(id))?;
        let mut dept = current.entity;
        patch.apply(&mut dept);
        // With If-Match the client's version is checked; without, the version just read is,
        // so a concurrent write is never overwritten with stale fields.
        let version = expected.unwrap_or(current.version);
        let saved = state
            .store
            .update_department(&state.write_ctx(caller), dept, Some(version))
            .await?;
        Ok(entity_response(
            StatusCode::OK,
            saved.value.version,
            None,
            DepartmentView::from(saved.value),
        ))
    })
    .await
}

/// Deletes a department (`?cascade=true` for a subtree with members; `If-Match` honoured).
#[utoipa::path(delete, path = "/api/v1/departments/{id}", tag = "departments",
    params(
        ("id" = i64, Path, description = "The OA department id"),
        ("If-Match" = Option<String>, Header, description = "The `ETag` the deletion is based on"),
        DeleteDepartmentQuery,
    ),
    responses(
        (status = 200, description = "Deleted; what was removed", body = DeleteDepartmentView),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 404, description = "No such department", body = ErrorBody),
        (status = 409, description = "Has sub-departments or members (use cascade), or is the root", body = ErrorBody),
        (status = 412, description = "Stale If-Match; nothing deleted", body = ErrorBody),
    ))]
pub async fn delete_department(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<DeleteDepartmentQuery>,
    headers: HeaderMap,
) -> Result<Json<DeleteDepartmentView>, ApiError> {
    let expected = if_match(&headers)?;
    let ctx = state.write_ctx(&caller);
    let report = state
        .store
        .delete_department(&ctx, OaDeptId(id), expected, q.cascade.unwrap_or(false))
        .await
        .map_err(|e| match e {
            StoreError::NotFound { .. } => not_found(id),
            other => other.into(),
        })?;
    Ok(Json(report.into()))
}

/// Lists departments by id, filtered and paged.
#[utoipa::path(get, path = "/api/v1/departments", tag = "departments",
    params(DepartmentListQuery),
    responses(
        (status = 200, description = "One page; `Link: <next>; rel=\"next\"` when there is more", body = Paged<DepartmentView>),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 422, description = "Unknown or malformed parameter", body = ErrorBody),
    ))]
pub async fn list_departments(
    State(state): State<ApiState>,
    ApiQuery(mut q): ApiQuery<DepartmentListQuery>,
) -> Result<Response, ApiError> {
    let limit = page_limit(q.limit)?;
    let page = state
        .store
        .list_departments(&DeptQuery {
            name_contains: q.name.clone(),
            parent: q.parent.map(OaDeptId),
            updated_since_ms: q.updated_since,
            after: q.after.map(OaDeptId),
            limit,
        })
        .await?;
    let next = page.next.and_then(|after| {
        q.after = Some(after.get());
        next_link("/api/v1/departments", &q)
    });
    let items: Vec<DepartmentView> = page.items.into_iter().map(Into::into).collect();
    Ok(page_response(items, next))
}
