//! SCIM Group ↔ OA department (`[scim] groups = "departments"`), and the Enterprise User's
//! `department` string resolved to a department.
//!
//! A Group is a department: `displayName` is its name (characters DingTalk refuses in a
//! department name, `-` `,` `，`, become `_`; cut to 64), the parent is dingsync's Group
//! extension `parent.value` (an OA department id; default `create_under`), and members are
//! memberships: a member added to the Group gains the department, a member removed loses it
//! (and lands in `create_under` if it was their last one). Member ids that are no OA user
//! (a nested Group, a user the client never provisioned here) are kept in SCIM only.

use std::collections::BTreeSet;

use directory_model::{Department, Membership, OaDeptId, OaUserId};
use directory_store::{
    DeptQuery, EntityKind, ScimResource, ScimWrite, StoreError, UserQuery, WriteCtx,
};
use scim::ScimError;
use serde_json::Value;

use super::ScimState;
use super::http::store_error;
use super::settings::DepartmentPath;
use super::users::{member, text};

/// The kind under which groups are kept in `scim_resources`.
pub const KIND: &str = "Group";

const DINGSYNC_GROUP: &str = "urn:dingsync:params:scim:schemas:extension:2.0:Group";

/// A department name DingTalk accepts, made from a client's name.
fn dept_name(name: &str) -> String {
    name.trim()
        .chars()
        .map(|c| {
            if matches!(c, '-' | ',' | '，') {
                '_'
            } else {
                c
            }
        })
        .take(64)
        .collect()
}

/// The member ids a Group resource lists (`members[].value`).
pub(super) fn member_ids(r: &Value) -> BTreeSet<String> {
    member(r, "members")
        .and_then(Value::as_array)
        .map(|ms| {
            ms.iter()
                .filter_map(|m| text(m, "value").map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The member ids the stored resource `id` of `kind` listed (none when there is none yet).
pub(super) async fn stored_member_ids(
    state: &ScimState,
    kind: &str,
    id: &str,
) -> Result<BTreeSet<String>, ScimError> {
    let stored = state.store.scim_get(kind, id).await.map_err(store_error)?;
    Ok(stored
        .and_then(|o| serde_json::from_str::<Value>(&o.body_json).ok())
        .map(|v| member_ids(&v))
        .unwrap_or_default())
}

/// The department `name` directly under `parent`, if there is one (names compare
/// case-insensitively, as DingTalk's uniqueness among siblings does).
async fn child_named(
    state: &ScimState,
    parent: OaDeptId,
    name: &str,
) -> Result<Option<OaDeptId>, StoreError> {
    let page = state
        .store
        .list_departments(&DeptQuery {
            name_contains: Some(name.to_owned()),
            parent: Some(parent),
            limit: 1000,
            ..DeptQuery::default()
        })
        .await?;
    Ok(page
        .items
        .into_iter()
        .find(|d| d.entity.name.eq_ignore_ascii_case(name))
        .map(|d| d.entity.id))
}

/// A fresh department id.
async fn new_dept_id(state: &ScimState) -> Result<OaDeptId, ScimError> {
    state
        .store
        .allocate_ids(EntityKind::Department, 1)
        .await
        .map(OaDeptId)
        .map_err(store_error)
}

/// Resolves the Enterprise `department` string (`Sales/East`, or one name) to a department
/// under `create_under`, creating the missing ones. A name the directory refuses is logged
/// and gives `None`: the user then keeps the department they had.
pub async fn resolve_department(
    state: &ScimState,
    actor: &str,
    path: &str,
) -> Result<Option<OaDeptId>, ScimError> {
    let parts: Vec<String> = match &state.settings.department_path {
        DepartmentPath::Path(sep) => path.split(sep.as_str()).map(dept_name).collect(),
        DepartmentPath::Name => vec![dept_name(path)],
    };
    let mut at = state.settings.create_under;
    for part in parts.iter().filter(|p| !p.is_empty()) {
        match find_or_create(state, actor, at, part).await {
            Ok(id) => at = id,
            Err(e) if e.is_client_error() => {
                tracing::info!(department = path, reason = %sync_engine::error_chain(&e),
                    "SCIM department path refused by the directory; user not moved");
                return Ok(None);
            }
            Err(e) => return Err(store_error(e)),
        }
    }
    Ok(Some(at))
}

/// The department `name` under `parent`, created if missing. IdPs provision many users at
/// once, so two requests often create the same department together: the one that loses the
/// race (the directory refuses a second sibling of that name) takes the winner's.
async fn find_or_create(
    state: &ScimState,
    actor: &str,
    parent: OaDeptId,
    name: &str,
) -> Result<OaDeptId, StoreError> {
    if let Some(id) = child_named(state, parent, name).await? {
        return Ok(id);
    }
    let id = state
        .store
        .allocate_ids(EntityKind::Department, 1)
        .await
        .map(OaDeptId)?;
    let ctx = WriteCtx::oa(actor, state.clock.now_ms());
    match state
        .store
        .create_department(&ctx, Department::new(id, name, Some(parent)))
        .await
    {
        Ok(_) => Ok(id),
        Err(e @ StoreError::DuplicateDepartmentName { .. }) => {
            Ok(child_named(state, parent, name).await?.ok_or(e)?)
        }
        Err(e) => Err(e),
    }
}

/// The parent named by the Group extension, or `create_under`.
fn parent_of(state: &ScimState, r: &Value) -> Result<OaDeptId, ScimError> {
    let Some(value) = member(r, DINGSYNC_GROUP)
        .and_then(|e| member(e, "parent"))
        .and_then(|p| text(p, "value"))
    else {
        return Ok(state.settings.create_under);
    };
    value.parse::<i64>().map(OaDeptId).map_err(|_| {
        ScimError::invalid_value(format!(
            "{DINGSYNC_GROUP}:parent.value: {value:?} is not a Group id"
        ))
    })
}

/// Creates or replaces the Group `id` (a new one when `None`): the department, then the
/// membership changes, then the SCIM resource.
pub async fn save(
    state: &ScimState,
    actor: &str,
    id: Option<&str>,
    resource: &Value,
) -> Result<ScimResource, ScimError> {
    let name = text(resource, "displayName")
        .ok_or_else(|| ScimError::invalid_value("displayName is required"))?;
    let parent = parent_of(state, resource)?;
    let ctx = WriteCtx::oa(actor, state.clock.now_ms());
    let (dept_id, old_members) = match id {
        Some(id) => {
            let dept_id = id
                .parse::<i64>()
                .map(OaDeptId)
                .map_err(|_| ScimError::not_found(format!("no Group {id:?}")))?;
            let old = stored_member_ids(state, KIND, id).await?;
            let current = state
                .store
                .get_department(dept_id)
                .await
                .map_err(store_error)?
                .ok_or_else(|| ScimError::not_found(format!("no Group {id:?}")))?;
            let mut dept = current.entity;
            dept.name = dept_name(name);
            dept.parent = Some(parent);
            state
                .store
                .update_department(&ctx, dept, Some(current.version))
                .await
                .map_err(store_error)?;
            (dept_id, old)
        }
        None => {
            let dept_id = new_dept_id(state).await?;
            let dept = Department::new(dept_id, dept_name(name), Some(parent));
            state
                .store
                .create_department(&ctx, dept)
                .await
                .map_err(store_error)?;
            (dept_id, BTreeSet::new())
        }
    };
    let new_members = member_ids(resource);
    for uid in new_members.difference(&old_members) {
        set_membership(state, &ctx, uid, dept_id, true).await?;
    }
    for uid in old_members.difference(&new_members) {
        set_membership(state, &ctx, uid, dept_id, false).await?;
    }
    put_resource(
        state,
        KIND,
        &dept_id.get().to_string(),
        resource,
        ctx.now_ms,
    )
    .await
}

/// Records the IdP's view of a Group resource (of either mode's `kind`) under `id`.
pub(super) async fn put_resource(
    state: &ScimState,
    kind: &str,
    id: &str,
    resource: &Value,
    now_ms: i64,
) -> Result<ScimResource, ScimError> {
    let body = resource.to_string();
    state
        .store
        .scim_put(
            ScimWrite {
                kind,
                id,
                user_name: None,
                external_id: text(resource, "externalId"),
                body_json: &body,
            },
            now_ms,
        )
        .await
        .map_err(store_error)
}

/// Adds or removes user `uid`'s membership of `dept`; a user left with none goes to
/// `create_under`. Ids that are no OA user are skipped (see the module doc).
async fn set_membership(
    state: &ScimState,
    ctx: &WriteCtx,
    uid: &str,
    dept: OaDeptId,
    add: bool,
) -> Result<(), ScimError> {
    for _ in 0..3 {
        let Some(current) = state
            .store
            .get_user(&OaUserId::new(uid))
            .await
            .map_err(store_error)?
        else {
            return Ok(());
        };
        let mut user = current.entity;
        let has = user.departments.iter().any(|m| m.dept == dept);
        if has == add {
            return Ok(());
        }
        if add {
            user.departments.push(Membership::new(dept));
        } else {
            user.departments.retain(|m| m.dept != dept);
            if user.departments.is_empty() {
                user.departments
                    .push(Membership::new(state.settings.create_under));
            }
            if user.main_department == Some(dept) {
                user.main_department = user.departments.first().map(|m| m.dept);
            }
        }
        if user.main_department.is_none() {
            user.main_department = user.departments.first().map(|m| m.dept);
        }
        match state
            .store
            .update_user(ctx, user, Some(current.version))
            .await
        {
            Ok(_) => return Ok(()),
            Err(StoreError::VersionConflict { .. }) => {}
            Err(e) => return Err(store_error(e)),
        }
    }
    Err(ScimError::status(
        409,
        format!("user {uid:?} kept changing; retry"),
    ))
}

/// Deletes the Group: its members leave the department, then the department goes (refused
/// with 409 while it has sub-departments), then the SCIM resource.
pub async fn delete(state: &ScimState, actor: &str, id: &str) -> Result<(), ScimError> {
    let dept_id = id
        .parse::<i64>()
        .map(OaDeptId)
        .map_err(|_| ScimError::not_found(format!("no Group {id:?}")))?;
    if dept_id == state.settings.create_under {
        // Its members would be moved into itself, forever.
        return Err(ScimError::status(
            409,
            "this Group is scim.create_under, where users without a department go; it stays",
        ));
    }
    let ctx = WriteCtx::oa(actor, state.clock.now_ms());
    loop {
        let page = state
            .store
            .list_users(&UserQuery {
                department: Some(dept_id),
                limit: 1000,
                ..UserQuery::default()
            })
            .await
            .map_err(store_error)?;
        if page.items.is_empty() {
            break;
        }
        for u in page.items {
            set_membership(state, &ctx, u.entity.id.as_str(), dept_id, false).await?;
        }
    }
    match state
        .store
        .delete_department(&ctx, dept_id, None, false)
        .await
    {
        Ok(_) | Err(StoreError::NotFound { .. }) => {}
        Err(e) if e.is_client_error() => {
            return Err(ScimError::status(409, sync_engine::error_chain(&e)));
        }
        Err(e) => return Err(store_error(e)),
    }
    state.store.scim_delete(KIND, id).await.map_err(store_error)
}
