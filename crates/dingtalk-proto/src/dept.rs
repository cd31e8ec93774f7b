//! Department endpoints (`/topapi/v2/department/...`).
//!
//! Requests use snake_case JSON; the permit and manager lists on create/update are comma-joined
//! strings ([`CommaList`]) while the same lists come back as arrays in `get`. Every optional field
//! is omitted when unset, because DingTalk treats a present field as "change this".

use serde::{Deserialize, Serialize};

use crate::{CommaList, DingDeptId, DingUserId};

/// The `language` parameter of read calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Language {
    /// Simplified Chinese (the default).
    #[serde(rename = "zh_CN")]
    ZhCn,
    /// English.
    #[serde(rename = "en_US")]
    EnUs,
}

/// Body of `listsub` (immediate children) and `listsubid`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeptListSubRequest {
    /// The parent; DingTalk defaults to the root when absent (`listsub` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dept_id: Option<DingDeptId>,
    /// Language of names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
}

/// One child in the `listsub` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeptBrief {
    /// The department.
    pub dept_id: DingDeptId,
    /// Its name.
    pub name: String,
    /// Its parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<DingDeptId>,
    /// Whether a department group chat was created.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt"
    )]
    pub create_dept_group: Option<bool>,
    /// Whether new members are added to the group chat automatically.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt"
    )]
    pub auto_add_user: Option<bool>,
    /// External mapping key (TOP doc lists it; not returned to third-party apps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_identifier: Option<String>,
    /// Department tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<String>,
    /// Whether the department comes from a union organisation.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt"
    )]
    pub from_union_org: Option<bool>,
    /// Extension text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext: Option<String>,
}

/// `result` of `listsubid`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeptIdList {
    /// Immediate child ids.
    pub dept_id_list: Vec<DingDeptId>,
}

/// Body of `get`, `delete`, `listsubid` and `listparentbydept`: one department id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeptIdRequest {
    /// The department.
    pub dept_id: DingDeptId,
    /// Language of names (`get` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
}

impl DeptIdRequest {
    /// A request for one department, default language.
    pub fn new(dept_id: DingDeptId) -> Self {
        Self {
            dept_id,
            language: None,
        }
    }
}

/// `result` of `get`: the full department.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeptDetail {
    /// The department.
    pub dept_id: DingDeptId,
    /// Its name.
    pub name: String,
    /// Its parent (absent for the root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<DingDeptId>,
    /// External mapping key set on create/update; how dingsync finds its own departments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_identifier: Option<String>,
    /// Whether a department group chat exists.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt"
    )]
    pub create_dept_group: Option<bool>,
    /// Whether new members join the group chat automatically.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt"
    )]
    pub auto_add_user: Option<bool>,
    /// Department tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<String>,
    /// Whether it comes from a union organisation.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt"
    )]
    pub from_union_org: Option<bool>,
    /// Sort order among siblings; smaller sorts first.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt"
    )]
    pub order: Option<i64>,
    /// The group chat id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dept_group_chat_id: Option<String>,
    /// Whether the group chat includes sub-departments.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt"
    )]
    pub group_contain_sub_dept: Option<bool>,
    /// Owner of the group chat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_dept_owner: Option<String>,
    /// Department managers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dept_manager_userid_list: Option<Vec<DingUserId>>,
    /// Whether the department is restricted ("outer").
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt"
    )]
    pub outer_dept: Option<bool>,
    /// Departments allowed to see a restricted department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outer_permit_depts: Option<Vec<DingDeptId>>,
    /// Users allowed to see a restricted department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outer_permit_users: Option<Vec<DingUserId>>,
    /// Whether the department is hidden.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt"
    )]
    pub hide_dept: Option<bool>,
    /// Departments allowed to see a hidden department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dept_permits: Option<Vec<DingDeptId>>,
    /// Users allowed to see a hidden department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_permits: Option<Vec<DingUserId>>,
    /// Whether join requests are approved automatically.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt"
    )]
    pub auto_approve_apply: Option<bool>,
    /// Department code (≤ 30 chars).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Number of members, sub-departments included.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt"
    )]
    pub member_count: Option<i64>,
    /// Number of direct members.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt"
    )]
    pub owning_member_count: Option<i64>,
    /// Description (observed in real answers, not in the doc).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brief: Option<String>,
    /// Union-organisation extras, kept opaque.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub union_dept_ext: Option<serde_json::Value>,
}

/// Body of `create`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeptCreateRequest {
    /// 1–64 chars, no `-`, `,` or `，`; unique among siblings.
    pub name: String,
    /// The parent department.
    pub parent_id: DingDeptId,
    /// Hide the department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hide_dept: Option<bool>,
    /// Departments that may see a hidden department ("123,456").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dept_permits: Option<CommaList<DingDeptId>>,
    /// Users that may see a hidden department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_permits: Option<CommaList<DingUserId>>,
    /// Restrict the department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outer_dept: Option<bool>,
    /// Restricted members see only themselves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outer_dept_only_self: Option<bool>,
    /// Users that may see a restricted department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outer_permit_users: Option<CommaList<DingUserId>>,
    /// Departments that may see a restricted department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outer_permit_depts: Option<CommaList<DingDeptId>>,
    /// Create a department group chat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_dept_group: Option<bool>,
    /// Approve join requests automatically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_approve_apply: Option<bool>,
    /// Sort order; smaller first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<i64>,
    /// External mapping key; dingsync puts its OA id here to find the department after a crash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_identifier: Option<String>,
}

impl DeptCreateRequest {
    /// A create request with only the required fields.
    pub fn new(name: impl Into<String>, parent_id: DingDeptId) -> Self {
        Self {
            name: name.into(),
            parent_id,
            hide_dept: None,
            dept_permits: None,
            user_permits: None,
            outer_dept: None,
            outer_dept_only_self: None,
            outer_permit_users: None,
            outer_permit_depts: None,
            create_dept_group: None,
            auto_approve_apply: None,
            order: None,
            source_identifier: None,
        }
    }
}

/// `result` of `create`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeptCreateResult {
    /// The new department's server-assigned id.
    pub dept_id: DingDeptId,
}

/// Body of `update`: the id plus only the fields to change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeptUpdateRequest {
    /// The department (not the root: 60018).
    pub dept_id: DingDeptId,
    /// New parent (moves the department; a cycle is 60010).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<DingDeptId>,
    /// Hide the department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hide_dept: Option<bool>,
    /// Departments that may see a hidden department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dept_permits: Option<CommaList<DingDeptId>>,
    /// Users that may see a hidden department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_permits: Option<CommaList<DingUserId>>,
    /// Create a department group chat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_dept_group: Option<bool>,
    /// Sort order; smaller first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<i64>,
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// External mapping key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_identifier: Option<String>,
    /// Restrict the department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outer_dept: Option<bool>,
    /// Users that may see a restricted department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outer_permit_users: Option<CommaList<DingUserId>>,
    /// Departments that may see a restricted department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outer_permit_depts: Option<CommaList<DingDeptId>>,
    /// Restricted members see only themselves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outer_dept_only_self: Option<bool>,
    /// Language of the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
    /// New members join the group chat automatically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_add_user: Option<bool>,
    /// Approve join requests automatically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_approve_apply: Option<bool>,
    /// Department managers ("a,b").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dept_manager_userid_list: Option<CommaList<DingUserId>>,
    /// Group chat includes sub-departments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_contain_sub_dept: Option<bool>,
    /// Group chat includes restricted members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_contain_outer_dept: Option<bool>,
    /// Group chat includes hidden members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_contain_hidden_dept: Option<bool>,
    /// Owner of the group chat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_dept_owner: Option<String>,
    /// Fields to clear when sent empty (`"dept_manager_userid_list"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_update_fields: Option<String>,
    /// Department code (≤ 30 chars).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl DeptUpdateRequest {
    /// An update of `dept_id` that changes nothing yet; set the fields to change.
    pub fn new(dept_id: DingDeptId) -> Self {
        Self {
            dept_id,
            parent_id: None,
            hide_dept: None,
            dept_permits: None,
            user_permits: None,
            create_dept_group: None,
            order: None,
            name: None,
            source_identifier: None,
            outer_dept: None,
            outer_permit_users: None,
            outer_permit_depts: None,
            outer_dept_only_self: None,
            language: None,
            auto_add_user: None,
            auto_approve_apply: None,
            dept_manager_userid_list: None,
            group_contain_sub_dept: None,
            group_contain_outer_dept: None,
            group_contain_hidden_dept: None,
            org_dept_owner: None,
            force_update_fields: None,
            code: None,
        }
    }
}

/// `result` of `listparentbydept`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeptParentIdList {
    /// The queried department first, the root last.
    pub parent_id_list: Vec<DingDeptId>,
}

/// Body of `listparentbyuser`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserIdRequest {
    /// The user.
    pub userid: DingUserId,
    /// Language of names (`user/get` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
}

impl UserIdRequest {
    /// A request about one user, default language.
    pub fn new(userid: DingUserId) -> Self {
        Self {
            userid,
            language: None,
        }
    }
}

/// `result` of `listparentbyuser`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserParentList {
    /// One chain per department the user belongs to.
    pub parent_list: Vec<ParentChain>,
}

/// One chain of `listparentbyuser`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParentChain {
    /// From the user's department up to the root.
    pub parent_dept_id_list: Vec<DingDeptId>,
}
