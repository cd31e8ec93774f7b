//! `/api/v1/users`: create, read, update (including moving between departments), delete and
//! list with the filters the OA system needs (name, department, mobile, job number,
//! updated-since, state).
//!
//! Mobile numbers travel as text in the form DingTalk accepts (`13800000000` for mainland
//! China, `+852-91234567` elsewhere) and are returned as `+code-number`, so the OA system never
//! has to know how the store splits them. Moving a user is a `PATCH` of `departments`; when the
//! old main department is no longer among them and no new one is given, the first listed
//! department becomes the main one.

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use directory_model::{Membership, Mobile, OaDeptId, OaUserId, User, UserState};
use directory_store::{StoreError, UserQuery, Versioned};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery, if_match, non_null, nullable, page_limit};
use super::{
    ApiState, Caller, Paged, entity_response, next_link, page_response, path_segment,
    retry_if_stale,
};

/// Employed or left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserStateView {
    /// Employed.
    Active,
    /// Has left; kept for history.
    Left,
}

impl From<UserState> for UserStateView {
    fn from(s: UserState) -> Self {
        match s {
            UserState::Active => Self::Active,
            UserState::Left => Self::Left,
        }
    }
}

impl From<UserStateView> for UserState {
    fn from(s: UserStateView) -> Self {
        match s {
            UserStateView::Active => Self::Active,
            UserStateView::Left => Self::Left,
        }
    }
}

/// A user's membership of one department.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MembershipBody {
    /// The department id (must exist).
    pub dept: i64,
    /// The title in that department (≤ 200 characters).
    #[serde(default)]
    pub title: Option<String>,
    /// Sort key within the department; larger first (DingTalk's user order).
    #[serde(default)]
    pub order: i64,
}

impl From<MembershipBody> for Membership {
    fn from(m: MembershipBody) -> Self {
        Self {
            dept: OaDeptId(m.dept),
            title: m.title,
            order: m.order,
        }
    }
}

impl From<Membership> for MembershipBody {
    fn from(m: Membership) -> Self {
        Self {
            dept: m.dept.get(),
            title: m.title,
            order: m.order,
        }
    }
}

/// A user's fields as the API shows them (in entity reads and in the change feed).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserFields {
    /// The OA id (also the DingTalk `userid`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Department memberships.
    pub departments: Vec<MembershipBody>,
    /// The main department.
    pub main_department: Option<i64>,
    /// The direct manager's user id.
    pub manager: Option<String>,
    /// Employee number.
    pub job_number: Option<String>,
    /// Mobile as `+code-number`.
    #[schema(example = "+86-13800000000")]
    pub mobile: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Organisation email.
    pub org_email: Option<String>,
    /// Telephone extension.
    pub telephone: Option<String>,
    /// Work place.
    pub work_place: Option<String>,
    /// Hire date (Unix milliseconds).
    pub hired_date_ms: Option<i64>,
    /// Remark.
    pub remark: Option<String>,
    /// Extension attributes.
    pub extension: BTreeMap<String, String>,
    /// Employed or left.
    pub state: UserStateView,
}

/// A user as the API shows it: their fields and the version.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// The user.
    #[serde(flatten)]
    pub user: UserFields,
    /// The version, also sent as the `ETag`.
    pub version: i64,
    /// When it last changed (Unix milliseconds).
    pub updated_at_ms: i64,
}

impl From<Versioned<User>> for UserView {
    fn from(v: Versioned<User>) -> Self {
        Self {
            user: v.entity.into(),
            version: v.version,
            updated_at_ms: v.updated_at_ms,
        }
    }
}

impl From<User> for UserFields {
    fn from(u: User) -> Self {
        Self {
            id: u.id.0,
            name: u.name,
            departments: u.departments.into_iter().map(Into::into).collect(),
            main_department: u.main_department.map(OaDeptId::get),
            manager: u.manager.map(|m| m.0),
            job_number: u.job_number,
            mobile: u
                .mobile
                .map(|m| format!("+{}-{}", m.country_code, m.number)),
            email: u.email,
            org_email: u.org_email,
            telephone: u.telephone,
            work_place: u.work_place,
            hired_date_ms: u.hired_date_ms,
            remark: u.remark,
            extension: u.extension,
            state: u.state.into(),
        }
    }
}

/// A user to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// The OA id (1–64 characters); used as the DingTalk `userid`.
    pub id: String,
    /// Display name (1–80 characters).
    pub name: String,
    /// Department memberships (1–100).
    pub departments: Vec<MembershipBody>,
    /// The main department (one of `departments`; default the first).
    pub main_department: Option<i64>,
    /// The direct manager's user id (must exist; no cycles).
    pub manager: Option<String>,
    /// Employee number (≤ 50 characters).
    pub job_number: Option<String>,
    /// Mobile: `13800000000` (mainland China) or `+852-91234567`; unique.
    pub mobile: Option<String>,
    /// Email (≤ 50 characters); unique.
    pub email: Option<String>,
    /// Organisation email (≤ 100 characters).
    pub org_email: Option<String>,
    /// Telephone extension (≤ 50 characters).
    pub telephone: Option<String>,
    /// Work place (≤ 100 characters).
    pub work_place: Option<String>,
    /// Hire date (Unix milliseconds).
    pub hired_date_ms: Option<i64>,
    /// Remark (≤ 2000 characters).
    pub remark: Option<String>,
    /// Extension attributes (their JSON ≤ 2000 characters).
    #[serde(default)]
    pub extension: BTreeMap<String, String>,
    /// Employed (default) or left.
    pub state: Option<UserStateView>,
}

/// Changes to a user (a JSON merge patch: absent fields stay, `null` clears). Changing
/// `departments` moves the user.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// New display name.
    #[serde(default, deserialize_with = "non_null")]
    pub name: Option<String>,
    /// The new, complete list of memberships (moves the user).
    #[serde(default, deserialize_with = "non_null")]
    pub departments: Option<Vec<MembershipBody>>,
    /// New main department.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>)]
    pub main_department: Option<Option<i64>>,
    /// New manager, or `null` for none.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub manager: Option<Option<String>>,
    /// New employee number, or `null`.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub job_number: Option<Option<String>>,
    /// New mobile, or `null`.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub mobile: Option<Option<String>>,
    /// New email, or `null`.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    /// New organisation email, or `null`.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub org_email: Option<Option<String>>,
    /// New telephone, or `null`.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub telephone: Option<Option<String>>,
    /// New work place, or `null`.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub work_place: Option<Option<String>>,
    /// New hire date, or `null`.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>)]
    pub hired_date_ms: Option<Option<i64>>,
    /// New remark, or `null`.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub remark: Option<Option<String>>,
    /// The new, complete set of extension attributes.
    #[serde(default, deserialize_with = "non_null")]
    pub extension: Option<BTreeMap<String, String>>,
    /// New state.
    #[serde(default, deserialize_with = "non_null")]
    pub state: Option<UserStateView>,
}

/// Sets `target` when the patch mentions the field.
fn set<T>(target: &mut T, value: &Option<T>)
where
    T: Clone,
{
    if let Some(v) = value {
        target.clone_from(v);
    }
}

impl UserPatch {
    fn apply(&self, u: &mut User) {
        set(&mut u.name, &self.name);
        if let Some(departments) = &self.departments {
            u.departments = departments.iter().cloned().map(Into::into).collect();
            // A move that drops the main department picks the first new one, unless the
            // patch names a main department itself.
            if self.main_department.is_none()
                && !u
                    .main_department
                    .is_some_and(|m| u.departments.iter().any(|d| d.dept == m))
            {
                u.main_department = u.departments.first().map(|m| m.dept);
            }
        }
        if let Some(main) = self.main_department {
            u.main_department = main.map(OaDeptId);
        }
        if let Some(manager) = &self.manager {
            u.manager = manager.as_deref().map(OaUserId::new);
        }
        set(&mut u.job_number, &self.job_number);
        if let Some(mobile) = &self.mobile {
            u.mobile = mobile.as_deref().map(Mobile::parse);
        }
        set(&mut u.email, &self.email);
        set(&mut u.org_email, &self.org_email);
        set(&mut u.telephone, &self.telephone);
        set(&mut u.work_place, &self.work_place);
        set(&mut u.hired_date_ms, &self.hired_date_ms);
        set(&mut u.remark, &self.remark);
        set(&mut u.extension, &self.extension);
        if let Some(state) = self.state {
            u.state = state.into();
        }
    }
}

/// Filters and paging of the user list.
#[derive(Debug, Clone, Default, Deserialize, Serialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserListQuery {
    /// Case-insensitive substring of the name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Only direct members of this department.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department: Option<i64>,
    /// Exact national mobile number (without country code).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mobile: Option<String>,
    /// Exact job number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_number: Option<String>,
    /// Only users changed at or after this time (Unix milliseconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_since: Option<i64>,
    /// Only users in this state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<UserStateView>,
    /// Keyset paging: only ids greater than this (the `next` link sets it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Page size, 1–1000 (default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("user {id:?} not found"))
}

/// Creates a user.
#[utoipa::path(post, path = "/api/v1/users", tag = "users",
    request_body = NewUser,
    responses(
        (status = 201, description = "Created; `ETag` and `Location` set", body = UserView, headers(("ETag" = String, description = "The version as a strong entity tag"))),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 409, description = "Id, mobile or email taken", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field, unknown department or manager, manager cycle", body = ErrorBody),
    ))]
pub async fn create_user(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<NewUser>,
) -> Result<Response, ApiError> {
    let departments: Vec<Membership> = body.departments.into_iter().map(Into::into).collect();
    let main_department = body
        .main_department
        .map(OaDeptId)
        .or_else(|| departments.first().map(|m| m.dept));
    let user = User {
        id: OaUserId::new(body.id),
        name: body.name,
        departments,
        main_department,
        manager: body.manager.map(OaUserId::new),
        job_number: body.job_number,
        mobile: body.mobile.as_deref().map(Mobile::parse),
        email: body.email,
        org_email: body.org_email,
        telephone: body.telephone,
        work_place: body.work_place,
        hired_date_ms: body.hired_date_ms,
        remark: body.remark,
        extension: body.extension,
        state: body.state.map_or(UserState::Active, Into::into),
    };
    let ctx = state.write_ctx(&caller);
    let saved = state.store.create_user(&ctx, user).await?;
    let loc = format!(
        "/api/v1/users/{}",
        path_segment(saved.value.entity.id.as_str())
    );
    Ok(entity_response(
        StatusCode::CREATED,
        saved.value.version,
        Some(loc),
        UserView::from(saved.value),
    ))
}

/// Reads one user.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "The OA user id")),
    responses(
        (status = 200, description = "The user; `ETag` set", body = UserView, headers(("ETag" = String, description = "The version as a strong entity tag"))),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ))]
pub async fn get_user(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let v = state
        .store
        .get_user(&OaUserId::new(id.as_str()))
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(entity_response(
        StatusCode::OK,
        v.version,
        None,
        UserView::from(v),
    ))
}

/// Updates or moves a user (merge patch; `If-Match` honoured when present).
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users",
    params(
        ("id" = String, Path, description = "The OA user id"),
        ("If-Match" = Option<String>, Header, description = "The `ETag` the change is based on"),
    ),
    request_body = UserPatch,
    responses(
        (status = 200, description = "Updated (or unchanged); new `ETag` set", body = UserView, headers(("ETag" = String, description = "The version as a strong entity tag"))),
        (status = 400, description = "Malformed JSON or If-Match", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "Mobile or email taken", body = ErrorBody),
        (status = 412, description = "Stale If-Match; nothing written", body = ErrorBody),
        (status = 415, description = "Body not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field, unknown department or manager, manager cycle", body = ErrorBody),
    ))]
pub async fn update_user(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(patch): ApiJson<UserPatch>,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    let user_id = OaUserId::new(id.as_str());
    // The attempt borrows these; the references are copied into each attempt's future.
    let (state, caller, patch, user_id, id) = (&state, &caller, &patch, &user_id, &id);
    retry_if_stale(expected, || async move {
        let current = state
            .store
            .get_user(user_id)
            .await?
            .ok_or_else(|| not_found(id))?;
        let mut user = current.entity;
        patch.apply(&mut user);
        let version = expected.unwrap_or(current.version);
        let saved = state
            .store
            .update_user(&state.write_ctx(caller), user, Some(version))
            .await?;
        Ok(entity_response(
            StatusCode::OK,
            saved.value.version,
            None,
            UserView::from(saved.value),
        ))
    })
    .await
}

/// Deletes a user and their role assignments (`If-Match` honoured).
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users",
    params(
        ("id" = String, Path, description = "The OA user id"),
        ("If-Match" = Option<String>, Header, description = "The `ETag` the deletion is based on"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "Still manages users or departments", body = ErrorBody),
        (status = 412, description = "Stale If-Match; nothing deleted", body = ErrorBody),
    ))]
pub async fn delete_user(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let expected = if_match(&headers)?;
    let ctx = state.write_ctx(&caller);
    state
        .store
        .delete_user(&ctx, &OaUserId::new(id.as_str()), expected)
        .await
        .map_err(|e| match e {
            StoreError::NotFound { .. } => not_found(&id),
            other => other.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists users by id, filtered and paged.
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    params(UserListQuery),
    responses(
        (status = 200, description = "One page; `Link: <next>; rel=\"next\"` when there is more", body = Paged<UserView>),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 422, description = "Unknown or malformed parameter", body = ErrorBody),
    ))]
pub async fn list_users(
    State(state): State<ApiState>,
    ApiQuery(mut q): ApiQuery<UserListQuery>,
) -> Result<Response, ApiError> {
    let limit = page_limit(q.limit)?;
    let page = state
        .store
        .list_users(&UserQuery {
            name_contains: q.name.clone(),
            department: q.department.map(OaDeptId),
            mobile: q.mobile.clone(),
            job_number: q.job_number.clone(),
            updated_since_ms: q.updated_since,
            state: q.state.map(Into::into),
            after: q.after.as_deref().map(OaUserId::new),
            limit,
        })
        .await?;
    let next = page.next.and_then(|after| {
        q.after = Some(after.0);
        next_link("/api/v1/users", &q)
    });
    let items: Vec<UserView> = page.items.into_iter().map(Into::into).collect();
    Ok(page_response(items, next))
}
