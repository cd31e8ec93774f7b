//! One typed method per DingTalk endpoint. Each is a thin mapping from arguments to the wire
//! request in `dingtalk-proto` and from the answer to the part a caller wants; the policy (token,
//! budget, retries) is in the core. Role assignment is split into DingTalk's per-call maxima here,
//! so callers can pass any number of roles and users.

use dingtalk_proto::{
    DingDeptId, DingRoleGroupId, DingRoleId, DingUserId, StatusResponse,
    callback::{FailedCallbacksResponse, RegisterCallbackRequest},
    dept::{
        DeptBrief, DeptCreateRequest, DeptCreateResult, DeptDetail, DeptIdList, DeptIdRequest,
        DeptListSubRequest, DeptParentIdList, DeptUpdateRequest, UserIdRequest, UserParentList,
    },
    role::{
        self, AddRoleGroupRequest, AddRoleGroupResponse, AddRoleRequest, AddRoleResponse,
        DeleteRoleRequest, GetRoleGroupRequest, GetRoleGroupResponse, GetRoleRequest,
        GetRoleResponse, OffsetPage, RoleDetail, RoleGroupDetail, RoleListResult, RoleMembersPage,
        RoleSimpleListRequest, RolesForEmpsRequest, UpdateRoleRequest,
    },
    user::{
        User, UserCountRequest, UserCountResult, UserCreateRequest, UserCreateResult,
        UserGetByMobileRequest, UserIdList, UserIdResult, UserListPage, UserListRequest,
        UserUpdateRequest,
    },
};

use crate::{ClientError, DingTalkClient, client::required};

/// The API paths, as DingTalk spells them (also the keys of [`crate::ClientStats`]).
pub mod paths {
    #![allow(missing_docs)]
    pub const GETTOKEN: &str = crate::client::GETTOKEN;
    pub const OAUTH_TOKEN: &str = crate::client::OAUTH_TOKEN;
    pub const DEPT_LISTSUB: &str = "/topapi/v2/department/listsub";
    pub const DEPT_LISTSUBID: &str = "/topapi/v2/department/listsubid";
    pub const DEPT_GET: &str = "/topapi/v2/department/get";
    pub const DEPT_CREATE: &str = "/topapi/v2/department/create";
    pub const DEPT_UPDATE: &str = "/topapi/v2/department/update";
    pub const DEPT_DELETE: &str = "/topapi/v2/department/delete";
    pub const DEPT_LISTPARENTBYDEPT: &str = "/topapi/v2/department/listparentbydept";
    pub const DEPT_LISTPARENTBYUSER: &str = "/topapi/v2/department/listparentbyuser";
    pub const USER_LIST: &str = "/topapi/v2/user/list";
    pub const USER_GET: &str = "/topapi/v2/user/get";
    pub const USER_CREATE: &str = "/topapi/v2/user/create";
    pub const USER_UPDATE: &str = "/topapi/v2/user/update";
    pub const USER_DELETE: &str = "/topapi/v2/user/delete";
    pub const USER_GETBYMOBILE: &str = "/topapi/v2/user/getbymobile";
    pub const USER_LISTID: &str = "/topapi/user/listid";
    pub const USER_COUNT: &str = "/topapi/user/count";
    pub const ROLE_LIST: &str = "/topapi/role/list";
    pub const ROLE_ADD_GROUP: &str = "/role/add_role_group";
    pub const ROLE_ADD: &str = "/role/add_role";
    pub const ROLE_UPDATE: &str = "/role/update_role";
    pub const ROLE_DELETE: &str = "/topapi/role/deleterole";
    pub const ROLE_GET_GROUP: &str = "/topapi/role/getrolegroup";
    pub const ROLE_GET: &str = "/topapi/role/getrole";
    pub const ROLE_ADD_FOR_EMPS: &str = "/topapi/role/addrolesforemps";
    pub const ROLE_REMOVE_FOR_EMPS: &str = "/topapi/role/removerolesforemps";
    pub const ROLE_SIMPLELIST: &str = "/topapi/role/simplelist";
    pub const CALLBACK_FAILED: &str = "/call_back/get_call_back_failed_result";
    pub const CALLBACK_REGISTER: &str = "/call_back/register_call_back";
}

use paths::*;

impl DingTalkClient {
    // ----- departments -------------------------------------------------------------------

    /// The immediate children of `parent` (`listsub`).
    pub async fn dept_list_sub(&self, parent: DingDeptId) -> Result<Vec<DeptBrief>, ClientError> {
        let req = DeptListSubRequest {
            dept_id: Some(parent),
            language: None,
        };
        self.call_result(DEPT_LISTSUB, &req).await
    }

    /// The ids of the immediate children of `parent` (`listsubid`).
    pub async fn dept_list_sub_ids(
        &self,
        parent: DingDeptId,
    ) -> Result<Vec<DingDeptId>, ClientError> {
        let list: DeptIdList = self
            .call_result(DEPT_LISTSUBID, &DeptIdRequest::new(parent))
            .await?;
        Ok(list.dept_id_list)
    }

    /// One department in full (`get`).
    pub async fn dept_get(&self, dept_id: DingDeptId) -> Result<DeptDetail, ClientError> {
        self.call_result(DEPT_GET, &DeptIdRequest::new(dept_id))
            .await
    }

    /// Creates a department and returns its server-assigned id.
    pub async fn dept_create(&self, req: &DeptCreateRequest) -> Result<DingDeptId, ClientError> {
        let created: DeptCreateResult = self.call_result(DEPT_CREATE, req).await?;
        Ok(created.dept_id)
    }

    /// Changes the fields set in `req`.
    pub async fn dept_update(&self, req: &DeptUpdateRequest) -> Result<(), ClientError> {
        self.call::<_, StatusResponse>(DEPT_UPDATE, req)
            .await
            .map(drop)
    }

    /// Deletes an empty department with no children.
    pub async fn dept_delete(&self, dept_id: DingDeptId) -> Result<(), ClientError> {
        self.call::<_, StatusResponse>(DEPT_DELETE, &DeptIdRequest::new(dept_id))
            .await
            .map(drop)
    }

    /// The chain from `dept_id` (first) up to the root (last).
    pub async fn dept_list_parents(
        &self,
        dept_id: DingDeptId,
    ) -> Result<Vec<DingDeptId>, ClientError> {
        let list: DeptParentIdList = self
            .call_result(DEPT_LISTPARENTBYDEPT, &DeptIdRequest::new(dept_id))
            .await?;
        Ok(list.parent_id_list)
    }

    /// One parent chain per department of `userid`.
    pub async fn dept_list_parents_by_user(
        &self,
        userid: &DingUserId,
    ) -> Result<Vec<Vec<DingDeptId>>, ClientError> {
        let list: UserParentList = self
            .call_result(DEPT_LISTPARENTBYUSER, &UserIdRequest::new(userid.clone()))
            .await?;
        Ok(list
            .parent_list
            .into_iter()
            .map(|c| c.parent_dept_id_list)
            .collect())
    }

    // ----- users -------------------------------------------------------------------------

    /// One page of a department's direct members (`v2/user/list`). See
    /// [`DingTalkClient::user_list`] for all pages as a stream.
    pub async fn user_list_page(
        &self,
        req: &UserListRequest,
    ) -> Result<UserListPage<User>, ClientError> {
        self.call_result(USER_LIST, req).await
    }

    /// One user in full (`v2/user/get`); 60121 if unknown.
    pub async fn user_get(&self, userid: &DingUserId) -> Result<User, ClientError> {
        self.call_result(USER_GET, &UserIdRequest::new(userid.clone()))
            .await
    }

    /// Creates a user; returns the (given or generated) userid and the unionId.
    pub async fn user_create(
        &self,
        req: &UserCreateRequest,
    ) -> Result<UserCreateResult, ClientError> {
        self.call_result(USER_CREATE, req).await
    }

    /// Changes the fields set in `req`.
    pub async fn user_update(&self, req: &UserUpdateRequest) -> Result<(), ClientError> {
        self.call::<_, StatusResponse>(USER_UPDATE, req)
            .await
            .map(drop)
    }

    /// Removes a user from the organisation.
    pub async fn user_delete(&self, userid: &DingUserId) -> Result<(), ClientError> {
        self.call::<_, StatusResponse>(USER_DELETE, &UserIdRequest::new(userid.clone()))
            .await
            .map(drop)
    }

    /// The employed user with this mobile; 60121 if none.
    pub async fn user_get_by_mobile(&self, mobile: &str) -> Result<DingUserId, ClientError> {
        let req = UserGetByMobileRequest {
            mobile: mobile.to_owned(),
        };
        let found: UserIdResult = self.call_result(USER_GETBYMOBILE, &req).await?;
        Ok(found.userid)
    }

    /// The userids of a department's direct members (no paging).
    pub async fn user_list_ids(&self, dept_id: DingDeptId) -> Result<Vec<DingUserId>, ClientError> {
        let list: UserIdList = self
            .call_result(USER_LISTID, &DeptIdRequest::new(dept_id))
            .await?;
        Ok(list.userid_list)
    }

    /// The number of users (`only_active`: activated ones only).
    pub async fn user_count(&self, only_active: bool) -> Result<i64, ClientError> {
        let count: UserCountResult = self
            .call_result(USER_COUNT, &UserCountRequest { only_active })
            .await?;
        Ok(count.count)
    }

    // ----- roles -------------------------------------------------------------------------

    /// One page of role groups with their roles (`topapi/role/list`, offset paging).
    pub async fn role_list_page(
        &self,
        offset: i64,
        size: i64,
    ) -> Result<RoleListResult, ClientError> {
        let req = OffsetPage {
            size: Some(size),
            offset: Some(offset),
        };
        self.call_result(ROLE_LIST, &req).await
    }

    /// Creates a role group.
    pub async fn role_group_add(&self, name: &str) -> Result<DingRoleGroupId, ClientError> {
        let resp: AddRoleGroupResponse = self
            .call(
                ROLE_ADD_GROUP,
                &AddRoleGroupRequest {
                    name: name.to_owned(),
                },
            )
            .await?;
        required(ROLE_ADD_GROUP, resp.group_id, "groupId")
    }

    /// Creates a role in a group; 34021 if the name is taken there.
    pub async fn role_add(
        &self,
        group_id: DingRoleGroupId,
        name: &str,
    ) -> Result<DingRoleId, ClientError> {
        let req = AddRoleRequest {
            role_name: name.to_owned(),
            group_id,
        };
        let resp: AddRoleResponse = self.call(ROLE_ADD, &req).await?;
        required(ROLE_ADD, resp.role_id, "roleId")
    }

    /// Renames a role.
    pub async fn role_update(&self, role_id: DingRoleId, name: &str) -> Result<(), ClientError> {
        let req = UpdateRoleRequest {
            role_id,
            role_name: name.to_owned(),
        };
        self.call::<_, StatusResponse>(ROLE_UPDATE, &req)
            .await
            .map(drop)
    }

    /// Deletes a role that has no members.
    pub async fn role_delete(&self, role_id: DingRoleId) -> Result<(), ClientError> {
        self.call::<_, StatusResponse>(ROLE_DELETE, &DeleteRoleRequest { role_id })
            .await
            .map(drop)
    }

    /// A role group with its roles.
    pub async fn role_group_get(
        &self,
        group_id: DingRoleGroupId,
    ) -> Result<RoleGroupDetail, ClientError> {
        let resp: GetRoleGroupResponse = self
            .call(ROLE_GET_GROUP, &GetRoleGroupRequest { group_id })
            .await?;
        required(ROLE_GET_GROUP, resp.role_group, "role_group")
    }

    /// A role's name and group.
    pub async fn role_get(&self, role_id: DingRoleId) -> Result<RoleDetail, ClientError> {
        let resp: GetRoleResponse = self.call(ROLE_GET, &GetRoleRequest { role_id }).await?;
        required(ROLE_GET, resp.role, "role")
    }

    /// Gives every user every role, in as many calls as DingTalk's maxima (20 roles × 20
    /// users) require. Stops at the first failure; calls before it have taken effect, and
    /// re-running is harmless.
    pub async fn roles_add_for_users(
        &self,
        roles: &[DingRoleId],
        users: &[DingUserId],
    ) -> Result<(), ClientError> {
        self.roles_for_users(ROLE_ADD_FOR_EMPS, roles, users, role::ROLE_ADD_MAX_USERS)
            .await
    }

    /// Takes every role from every user, in chunks of 20 roles × 100 users.
    pub async fn roles_remove_for_users(
        &self,
        roles: &[DingRoleId],
        users: &[DingUserId],
    ) -> Result<(), ClientError> {
        self.roles_for_users(
            ROLE_REMOVE_FOR_EMPS,
            roles,
            users,
            role::ROLE_REMOVE_MAX_USERS,
        )
        .await
    }

    async fn roles_for_users(
        &self,
        api: &'static str,
        roles: &[DingRoleId],
        users: &[DingUserId],
        max_users: usize,
    ) -> Result<(), ClientError> {
        for role_chunk in roles.chunks(role::ROLE_ASSIGN_MAX_ROLES) {
            for user_chunk in users.chunks(max_users) {
                let req = RolesForEmpsRequest {
                    role_ids: role_chunk.to_vec().into(),
                    user_ids: user_chunk.to_vec().into(),
                };
                self.call::<_, StatusResponse>(api, &req).await?;
            }
        }
        Ok(())
    }

    /// One page of a role's members (`simplelist`, offset paging).
    pub async fn role_members_page(
        &self,
        role_id: DingRoleId,
        offset: i64,
        size: i64,
    ) -> Result<RoleMembersPage, ClientError> {
        let req = RoleSimpleListRequest {
            role_id,
            size: Some(size),
            offset: Some(offset),
        };
        self.call_result(ROLE_SIMPLELIST, &req).await
    }

    // ----- callbacks ---------------------------------------------------------------------

    /// Events whose push failed (≤ 200 per call; reading them removes them). Check `has_more`
    /// and call again to drain.
    pub async fn failed_callbacks(&self) -> Result<FailedCallbacksResponse, ClientError> {
        self.call_get(CALLBACK_FAILED).await
    }

    /// Registers the callback URL (71006 if one is registered already).
    pub async fn register_callback(
        &self,
        req: &RegisterCallbackRequest,
    ) -> Result<(), ClientError> {
        self.call::<_, StatusResponse>(CALLBACK_REGISTER, req)
            .await
            .map(drop)
    }
}
