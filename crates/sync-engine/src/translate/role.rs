//! Role groups and roles: entries of DingTalk's `role/list` ↔ the model's [`RoleGroup`] and
//! [`Role`]. DingTalk creates and renames them from a name alone (`role/add_role_group`,
//! `role/add_role`, `role/update_role`), so only this direction needs a translation.

use dingtalk_proto::{DingRoleGroupId as WireGroupId, role as wire_role};
use directory_model::{Role, RoleGroup};

use super::{ConvertError, IdMap, ding};

/// A DingTalk role group (from `role/list`) as an OA role group.
pub fn group_from_wire(
    wire: &wire_role::RoleGroup,
    ids: &IdMap,
) -> Result<RoleGroup, ConvertError> {
    Ok(RoleGroup {
        id: ids.need_group(ding::group(wire.group_id))?,
        name: wire.name.clone(),
    })
}

/// A DingTalk role (an entry of a `role/list` group) as an OA role.
pub fn role_from_wire(
    wire: &wire_role::RoleBrief,
    group: WireGroupId,
    ids: &IdMap,
) -> Result<Role, ConvertError> {
    Ok(Role {
        id: ids.need_role(ding::role(wire.id))?,
        group: ids.need_group(ding::group(group))?,
        name: wire.name.clone(),
    })
}
