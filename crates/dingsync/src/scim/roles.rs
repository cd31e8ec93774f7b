//! SCIM Group ↔ OA role (`[scim] groups = "roles"`), for IdPs whose groups say what people
//! *do* (approvers, finance, on-call) rather than where they sit.
//!
//! A Group is a role in one role group, `[scim] role_group` (default `SCIM`, found by name or
//! created on first use): `displayName` is the role's name (cut to 64 characters), its id is the
//! role's OA id, and members are role assignments — a member added gains the role, a member
//! removed loses it. As with departments, member ids that are no OA user (a nested Group, a
//! user provisioned elsewhere) are kept in SCIM only. Deleting the Group takes the role from
//! its holders, then deletes it. Each request is one store transaction (the role, its
//! assignments and the SCIM resource), so a refusal leaves nothing half-written. DingTalk gets
//! all of it through the pusher like any OA write.
//!
//! Groups kept as roles are stored under their own kind, [`KIND`], so switching the mode never
//! reads a department's Group as a role or the other way round.

use std::collections::BTreeSet;

use directory_model::{OaRoleGroupId, OaRoleId, OaUserId, Role, RoleGroup};
use directory_store::{
    EntityKind, Expect, ScimChange, ScimResource, ScimWrite, StoreError, WriteCtx,
};
use scim::ScimError;
use serde_json::Value;

use super::ScimState;
use super::groups::{member_ids, stored_member_ids};
use super::http::store_error;
use super::users::text;

/// The kind under which Groups that are roles are kept in `scim_resources`.
pub const KIND: &str = "Role";

/// A role name from a client's `displayName`.
fn role_name(name: &str) -> String {
    name.trim().chars().take(64).collect()
}

/// The role group SCIM roles live in, created on first use. Two first uses at once may both
/// create it; the later finds the earlier's by name (the lower id) from then on.
async fn role_group(state: &ScimState, actor: &str) -> Result<OaRoleGroupId, ScimError> {
    let name = state.settings.role_group.as_str();
    let find = || async {
        let mut after = None;
        loop {
            let page = state
                .store
                .list_role_groups(after, 1000)
                .await
                .map_err(store_error)?;
            if let Some(g) = page.items.iter().find(|g| g.entity.name == name) {
                return Ok::<_, ScimError>(Some(g.entity.id));
            }
            match page.next {
                Some(n) => after = Some(n),
                None => return Ok(None),
            }
        }
    };
    if let Some(id) = find().await? {
        return Ok(id);
    }
    let id = state
        .store
        .allocate_ids(EntityKind::RoleGroup, 1)
        .await
        .map(OaRoleGroupId)
        .map_err(store_error)?;
    let ctx = WriteCtx::oa(actor, state.clock.now_ms());
    let group = RoleGroup {
        id,
        name: name.to_owned(),
    };
    state
        .store
        .save_role_group(&ctx, group, Expect::Absent)
        .await
        .map_err(store_error)?;
    Ok(find().await?.unwrap_or(id))
}

/// The role id a Group id names.
fn role_id(id: &str) -> Result<OaRoleId, ScimError> {
    id.parse::<i64>()
        .map(OaRoleId)
        .map_err(|_| ScimError::not_found(format!("no Group {id:?}")))
}

/// Creates or replaces the Group `id` (a new one when `None`): the role, its assignment
/// changes and the SCIM resource, in one store transaction, so a refusal of any part (a name
/// the directory refuses, a member deleted meanwhile) leaves none of it behind.
pub async fn save(
    state: &ScimState,
    actor: &str,
    id: Option<&str>,
    resource: &Value,
) -> Result<ScimResource, ScimError> {
    let name = text(resource, "displayName")
        .ok_or_else(|| ScimError::invalid_value("displayName is required"))?;
    let ctx = WriteCtx::oa(actor, state.clock.now_ms());
    let new_members = member_ids(resource);
    let (role, expect, old_members) = match id {
        Some(id) => {
            let rid = role_id(id)?;
            let old = stored_member_ids(state, KIND, id).await?;
            let current = state
                .store
                .get_role(rid)
                .await
                .map_err(store_error)?
                .ok_or_else(|| ScimError::not_found(format!("no Group {id:?}")))?;
            let mut role = current.entity;
            role.name = role_name(name);
            (role, Expect::Version(current.version), old)
        }
        None => {
            let group = role_group(state, actor).await?;
            let rid = state
                .store
                .allocate_ids(EntityKind::Role, 1)
                .await
                .map(OaRoleId)
                .map_err(store_error)?;
            let role = Role {
                id: rid,
                group,
                name: role_name(name),
            };
            (role, Expect::Absent, BTreeSet::new())
        }
    };
    let mut grant = Vec::new();
    for uid in new_members.difference(&old_members) {
        let user = OaUserId::new(uid.as_str());
        // Ids that are no OA user are kept in SCIM only (see the module doc).
        if state
            .store
            .get_user(&user)
            .await
            .map_err(store_error)?
            .is_some()
        {
            grant.push(user);
        }
    }
    let revoke: Vec<OaUserId> = old_members
        .difference(&new_members)
        .map(|u| OaUserId::new(u.as_str()))
        .collect();
    let key = role.id.get().to_string();
    let body = resource.to_string();
    let write = ScimWrite {
        kind: KIND,
        id: &key,
        user_name: None,
        external_id: text(resource, "externalId"),
        body_json: &body,
    };
    let change = ScimChange::SaveRole {
        role,
        expect,
        grant,
        revoke,
    };
    state
        .store
        .scim_save(&ctx, change, write)
        .await
        .map_err(|e| match e {
            // A member deleted between the check and the write.
            StoreError::UnknownUser { id, .. } => unknown_member(id.as_str()),
            e => store_error(e),
        })
}

fn unknown_member(id: &str) -> ScimError {
    ScimError::invalid_value(format!(
        "members[value eq {id:?}]: the User was deleted while the Group was written; retry"
    ))
}

/// Deletes the Group: its holders lose the role, the role goes, and so does the SCIM resource,
/// in one store transaction.
pub async fn delete(state: &ScimState, actor: &str, id: &str) -> Result<(), ScimError> {
    let rid = role_id(id)?;
    let ctx = WriteCtx::oa(actor, state.clock.now_ms());
    match state
        .store
        .scim_remove(&ctx, ScimChange::DeleteRole(rid), KIND, id)
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if e.is_client_error() => Err(ScimError::status(409, sync_engine::error_chain(&e))),
        Err(e) => Err(store_error(e)),
    }
}
