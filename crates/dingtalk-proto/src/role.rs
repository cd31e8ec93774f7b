//! Role ("label") endpoints, whose wire shapes vary wildly by vintage:
//! `topapi/role/list` and `simplelist` answer camelCase (`hasMore`, `groupId`) inside `result`;
//! `role/add_role_group`, `role/add_role` and `role/update_role` put their fields at the top level
//! with camelCase requests; `getrolegroup` answers `role_group` and `getrole` answers `role` with
//! no `result` wrapper; assignment takes comma-joined `roleIds`/`userIds`.

use serde::{Deserialize, Serialize};

use crate::{
    ApiStatus, CommaList, DingDeptId, DingRoleGroupId, DingRoleId, DingUserId, envelope::has_status,
};

/// Body of `topapi/role/list` and `topapi/role/simplelist` paging (offset based).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OffsetPage {
    /// Page size; paging only takes effect when both fields are set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// Offset from 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
}

/// Largest `size` of `topapi/role/list` (40069 above).
pub const ROLE_LIST_MAX_SIZE: i64 = 200;
/// Largest `size` of `topapi/role/simplelist`.
pub const ROLE_SIMPLELIST_MAX_SIZE: i64 = 100;
/// Most roles per `addrolesforemps`/`removerolesforemps` call.
pub const ROLE_ASSIGN_MAX_ROLES: usize = 20;
/// Most users per `addrolesforemps` call.
pub const ROLE_ADD_MAX_USERS: usize = 20;
/// Most users per `removerolesforemps` call.
pub const ROLE_REMOVE_MAX_USERS: usize = 100;

/// `result` of `topapi/role/list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleListResult {
    /// Whether another page follows.
    #[serde(rename = "hasMore", deserialize_with = "crate::lenient::req")]
    pub has_more: bool,
    /// Role groups with their roles.
    #[serde(default = "Vec::new")]
    pub list: Vec<RoleGroup>,
}

/// A role group in `topapi/role/list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleGroup {
    /// The group.
    #[serde(rename = "groupId")]
    pub group_id: DingRoleGroupId,
    /// Its name ("默认" for the built-in group).
    pub name: String,
    /// Its roles.
    #[serde(default = "Vec::new")]
    pub roles: Vec<RoleBrief>,
}

impl RoleGroup {
    /// The name of the built-in group whose roles can't be renamed, deleted or assigned.
    pub const BUILTIN_NAME: &'static str = "默认";
}

/// A role inside a [`RoleGroup`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleBrief {
    /// The role.
    pub id: DingRoleId,
    /// Its name.
    pub name: String,
}

/// Body of `role/add_role_group`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddRoleGroupRequest {
    /// The group name.
    pub name: String,
}

/// Answer of `role/add_role_group` (top-level `groupId`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddRoleGroupResponse {
    /// Status.
    #[serde(flatten)]
    pub status: ApiStatus,
    /// The new group, on success.
    #[serde(rename = "groupId", default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<DingRoleGroupId>,
}

/// Body of `role/add_role`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddRoleRequest {
    /// The role name; unique in its group (34021).
    pub role_name: String,
    /// The group (34020 if unknown).
    pub group_id: DingRoleGroupId,
}

/// Answer of `role/add_role` (top-level `roleId`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddRoleResponse {
    /// Status.
    #[serde(flatten)]
    pub status: ApiStatus,
    /// The new role, on success.
    #[serde(rename = "roleId", default, skip_serializing_if = "Option::is_none")]
    pub role_id: Option<DingRoleId>,
}

/// Body of `role/update_role`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateRoleRequest {
    /// The role (33011 if unknown).
    pub role_id: DingRoleId,
    /// The new name.
    pub role_name: String,
}

/// Body of `topapi/role/deleterole`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeleteRoleRequest {
    /// The role; it must have no members.
    pub role_id: DingRoleId,
}

/// Body of `topapi/role/getrolegroup`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GetRoleGroupRequest {
    /// The group.
    pub group_id: DingRoleGroupId,
}

/// Answer of `topapi/role/getrolegroup` (`role_group` at top level, no `result`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GetRoleGroupResponse {
    /// Status.
    #[serde(flatten)]
    pub status: ApiStatus,
    /// The group, on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_group: Option<RoleGroupDetail>,
}

/// The `role_group` of `getrolegroup`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleGroupDetail {
    /// The group's name.
    pub group_name: String,
    /// Its roles.
    #[serde(default = "Vec::new")]
    pub roles: Vec<RoleGroupRole>,
}

/// A role inside `getrolegroup`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleGroupRole {
    /// The role.
    pub role_id: DingRoleId,
    /// Its name.
    pub role_name: String,
}

/// Body of `topapi/role/getrole` (camelCase `roleId`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetRoleRequest {
    /// The role.
    pub role_id: DingRoleId,
}

/// Answer of `topapi/role/getrole` (`role` at top level, no `result`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GetRoleResponse {
    /// Status.
    #[serde(flatten)]
    pub status: ApiStatus,
    /// The role, on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<RoleDetail>,
}

/// The `role` of `getrole`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleDetail {
    /// The role's name.
    pub name: String,
    /// Its group.
    #[serde(rename = "groupId")]
    pub group_id: DingRoleGroupId,
}

/// Body of `addrolesforemps` / `removerolesforemps`: comma-joined ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolesForEmpsRequest {
    /// At most [`ROLE_ASSIGN_MAX_ROLES`] roles.
    #[serde(rename = "roleIds")]
    pub role_ids: CommaList<DingRoleId>,
    /// At most [`ROLE_ADD_MAX_USERS`] (add) or [`ROLE_REMOVE_MAX_USERS`] (remove) users.
    #[serde(rename = "userIds")]
    pub user_ids: CommaList<DingUserId>,
}

/// Body of `topapi/role/simplelist`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleSimpleListRequest {
    /// The role.
    pub role_id: DingRoleId,
    /// Page size, at most [`ROLE_SIMPLELIST_MAX_SIZE`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// Offset from 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
}

/// `result` of `topapi/role/simplelist`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleMembersPage {
    /// Whether another page follows.
    #[serde(rename = "hasMore", deserialize_with = "crate::lenient::req")]
    pub has_more: bool,
    /// Cursor some SDKs model; paging is by offset.
    #[serde(
        rename = "nextCursor",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt"
    )]
    pub next_cursor: Option<i64>,
    /// Members of this page.
    #[serde(default = "Vec::new")]
    pub list: Vec<RoleMember>,
}

/// A member in `simplelist`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleMember {
    /// The user.
    pub userid: DingUserId,
    /// Their name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The departments the role applies to for this user.
    #[serde(
        rename = "manageScopes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub manage_scopes: Option<Vec<ManageScope>>,
}

/// A department scope of a role member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManageScope {
    /// The department.
    pub dept_id: DingDeptId,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

has_status!(
    AddRoleGroupResponse,
    AddRoleResponse,
    GetRoleGroupResponse,
    GetRoleResponse
);
