//! The OA API's door for DingTalk's built-in roles (issue 18 B4).
//!
//! DingTalk refuses for good to assign, rename or delete 负责人, 主管, 主管理员 and 子管理员 or
//! their group 默认 (23004 / 34020). An OA write that does one of these used to be stored with
//! 201 and then dead-lettered on every push, so the role-group, role and assignment handlers ask
//! `directory-model`'s operation checks first and answer 422 `validation_failed` with the rule
//! `built_in` and the field at fault; nothing is written.
//!
//! The checks live in the model (they are pure); this module only loads what they judge (the
//! stored role and its group) and maps a refusal into the API's error. The store does not run
//! them itself because an import rightly brings the built-in roles and their holders in.

use directory_model::{OaRoleGroupId, OaRoleId, Role, RoleGroup, ValidationErrors};
use directory_store::{EntityKind, StoreError};

use super::ApiState;
use super::error::ApiError;

/// Maps a refusal by one of the model's operation checks to a 422 naming field and rule.
pub(super) fn refuse(
    kind: EntityKind,
    checked: Result<(), ValidationErrors>,
) -> Result<(), ApiError> {
    checked.map_err(|source| ApiError::Store(StoreError::Invalid { kind, source }))
}

/// The stored role group, if any.
pub(super) async fn group(
    state: &ApiState,
    id: OaRoleGroupId,
) -> Result<Option<RoleGroup>, ApiError> {
    Ok(state.store.get_role_group(id).await?.map(|v| v.entity))
}

/// The stored role and its group, if both exist.
pub(super) async fn role_and_group(
    state: &ApiState,
    id: OaRoleId,
) -> Result<Option<(Role, RoleGroup)>, ApiError> {
    let Some(role) = state.store.get_role(id).await?.map(|v| v.entity) else {
        return Ok(None);
    };
    Ok(group(state, role.group).await?.map(|g| (role, g)))
}
