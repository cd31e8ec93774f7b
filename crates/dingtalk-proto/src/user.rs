//! User endpoints (`/topapi/v2/user/...`, `/topapi/user/...`).
//!
//! [`User`] is the one shape for both `v2/user/list` items and `v2/user/get`: the two share most
//! fields, `list` adds `dept_order`/`leader` for the listed department and `get` adds the
//! per-department lists, roles and manager. Absent fields mean "no value" (or no permission to
//! see it), never "empty string". On create the department list is a comma string while
//! responses carry arrays; `extension` is a JSON object encoded as a string both ways.

use serde::{Deserialize, Serialize};

use crate::{CommaList, DingDeptId, DingRoleId, DingUserId, dept::Language};

/// `order_field` of `v2/user/list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserOrderField {
    /// By entry time, ascending.
    EntryAsc,
    /// By entry time, descending.
    EntryDesc,
    /// By modification time, ascending.
    ModifyAsc,
    /// By modification time, descending.
    ModifyDesc,
    /// The administrator's custom order (DingTalk's default).
    Custom,
}

/// Body of `v2/user/list` (and `user/listsimple`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserListRequest {
    /// The department (direct members only).
    pub dept_id: DingDeptId,
    /// Where to start; 0 for the first page, then the previous `next_cursor`.
    pub cursor: i64,
    /// Page size, at most [`Self::MAX_SIZE`].
    pub size: i64,
    /// Sort order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_field: Option<UserOrderField>,
    /// Include users with restricted visibility.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contain_access_limit: Option<bool>,
    /// Language of names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
}

impl UserListRequest {
    /// The largest page DingTalk serves (a larger `size` is 40035).
    pub const MAX_SIZE: i64 = 100;

    /// A first-page request of the largest size.
    pub fn first_page(dept_id: DingDeptId) -> Self {
        Self {
            dept_id,
            cursor: 0,
            size: Self::MAX_SIZE,
            order_field: None,
            contain_access_limit: None,
            language: None,
        }
    }
}

/// `result` of `v2/user/list` and `user/listsimple`: one page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserListPage<T> {
    /// Whether another page follows.
    #[serde(deserialize_with = "crate::lenient::req")]
    pub has_more: bool,
    /// The cursor of the next page; absent on the last page.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt"
    )]
    pub next_cursor: Option<i64>,
    /// The users of this page.
    #[serde(default = "Vec::new")]
    pub list: Vec<T>,
}

/// An item of `user/listsimple`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserSimple {
    /// The user.
    pub userid: DingUserId,
    /// Their name.
    pub name: String,
}

/// A `(dept_id, order)` pair (`dept_order_list`). On user update a larger order sorts earlier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeptOrder {
    /// The department.
    pub dept_id: DingDeptId,
    /// The user's order in it.
    #[serde(deserialize_with = "crate::lenient::req")]
    pub order: i64,
}

/// A `(dept_id, title)` pair (`dept_title_list`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeptTitle {
    /// The department.
    pub dept_id: DingDeptId,
    /// The user's title in it.
    pub title: String,
}

/// A `(dept_id, leader)` pair (`leader_in_dept`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeptLeader {
    /// The department.
    pub dept_id: DingDeptId,
    /// Whether the user leads it.
    #[serde(deserialize_with = "crate::lenient::req")]
    pub leader: bool,
}

/// A role held by a user (`role_list` of `v2/user/get`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRole {
    /// The role.
    pub id: DingRoleId,
    /// Its name.
    pub name: String,
    /// The name of its group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
}

/// A user as `v2/user/list` items and `v2/user/get` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// The user id.
    pub userid: DingUserId,
    /// Cross-app id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unionid: Option<String>,
    /// Display name.
    pub name: String,
    /// Avatar URL; absent for the default avatar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
    /// Country code of `mobile` ("86").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_code: Option<String>,
    /// The manager (`get` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager_userid: Option<DingUserId>,
    /// Mobile without country code; only with the field permission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile: Option<String>,
    /// Whether the mobile is hidden from colleagues.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt"
    )]
    pub hide_mobile: Option<bool>,
    /// Extension phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telephone: Option<String>,
    /// Job number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_number: Option<String>,
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Email; only with the field permission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Work place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_place: Option<String>,
    /// Remark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
    /// Whether this is an exclusive (enterprise-owned) account.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt"
    )]
    pub exclusive_account: Option<bool>,
    /// Organisation email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_email: Option<String>,
    /// Departments the user belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dept_id_list: Option<Vec<DingDeptId>>,
    /// Order in the listed department (`list` only).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt"
    )]
    pub dept_order: Option<i64>,
    /// Order per department (`get` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dept_order_list: Option<Vec<DeptOrder>>,
    /// Title per department (`get`; not in the documented field list, but what the create and
    /// update requests set, and what a server that reports it reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dept_title_list: Option<Vec<DeptTitle>>,
    /// Extension fields: a JSON object encoded as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
    /// Hire date, ms since the epoch.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt"
    )]
    pub hired_date: Option<i64>,
    /// Whether the user has activated DingTalk.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt"
    )]
    pub active: Option<bool>,
    /// Whether the user passed real-name authentication (`get` only).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt"
    )]
    pub real_authed: Option<bool>,
    /// Senior-mode flag (`get` only).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt"
    )]
    pub senior: Option<bool>,
    /// Whether the user is an administrator.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt"
    )]
    pub admin: Option<bool>,
    /// Whether the user is the boss.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt"
    )]
    pub boss: Option<bool>,
    /// Whether the user leads the listed department (`list` only).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt"
    )]
    pub leader: Option<bool>,
    /// Leadership per department (`get` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_in_dept: Option<Vec<DeptLeader>>,
    /// Roles held (`get` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_list: Option<Vec<UserRole>>,
    /// Union-organisation extras, kept opaque.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub union_emp_ext: Option<serde_json::Value>,
}

/// Body of `v2/user/create`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserCreateRequest {
    /// 1–64 chars, unique; generated by DingTalk when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userid: Option<DingUserId>,
    /// ≤ 80 chars.
    pub name: String,
    /// Unique in the organisation; `+xx-…` outside mainland China.
    pub mobile: String,
    /// Hide the mobile from colleagues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hide_mobile: Option<bool>,
    /// ≤ 50 chars, unique.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telephone: Option<String>,
    /// ≤ 50 chars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_number: Option<String>,
    /// ≤ 200 chars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// ≤ 50 chars, unique.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// ≤ 100 chars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_email: Option<String>,
    /// `profession` or `base`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_email_type: Option<String>,
    /// ≤ 100 chars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_place: Option<String>,
    /// ≤ 2000 chars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
    /// At most 100 departments, sent as "2,3,4".
    pub dept_id_list: CommaList<DingDeptId>,
    /// Order per department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dept_order_list: Option<Vec<DeptOrder>>,
    /// Title per department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dept_title_list: Option<Vec<DeptTitle>>,
    /// Extension fields as a JSON-encoded string, ≤ 2000 chars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
    /// Senior mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub senior_mode: Option<bool>,
    /// Hire date, ms since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hired_date: Option<i64>,
    /// The manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager_userid: Option<DingUserId>,
    /// Login email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_email: Option<String>,
    /// Positions per department, kept opaque.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dept_position_list: Option<serde_json::Value>,
    /// Localised extension fields, kept opaque.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_i18n: Option<serde_json::Value>,
}

impl UserCreateRequest {
    /// A create request with only the required fields.
    pub fn new(
        name: impl Into<String>,
        mobile: impl Into<String>,
        dept_id_list: impl IntoIterator<Item = DingDeptId>,
    ) -> Self {
        Self {
            userid: None,
            name: name.into(),
            mobile: mobile.into(),
            hide_mobile: None,
            telephone: None,
            job_number: None,
            title: None,
            email: None,
            org_email: None,
            org_email_type: None,
            work_place: None,
            remark: None,
            dept_id_list: CommaList::new(dept_id_list),
            dept_order_list: None,
            dept_title_list: None,
            extension: None,
            senior_mode: None,
            hired_date: None,
            manager_userid: None,
            login_email: None,
            dept_position_list: None,
            extension_i18n: None,
        }
    }
}

/// `result` of `v2/user/create`. Note the camelCase `unionId`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserCreateResult {
    /// The user id (given or generated).
    pub userid: DingUserId,
    /// Cross-app id.
    #[serde(rename = "unionId", default, skip_serializing_if = "Option::is_none")]
    pub union_id: Option<String>,
}

/// Body of `v2/user/update`: the id plus only the fields to change. The mobile cannot be changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserUpdateRequest {
    /// The user.
    pub userid: DingUserId,
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Hide the mobile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hide_mobile: Option<bool>,
    /// Extension phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telephone: Option<String>,
    /// Job number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_number: Option<String>,
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Organisation email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_email: Option<String>,
    /// `profession` or `base`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_email_type: Option<String>,
    /// Work place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_place: Option<String>,
    /// Remark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
    /// The departments (replaces the memberships).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dept_id_list: Option<CommaList<DingDeptId>>,
    /// Order per department (larger sorts earlier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dept_order_list: Option<Vec<DeptOrder>>,
    /// Title per department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dept_title_list: Option<Vec<DeptTitle>>,
    /// Extension fields as a JSON-encoded string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
    /// Senior mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub senior_mode: Option<bool>,
    /// Hire date, ms since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hired_date: Option<i64>,
    /// The manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager_userid: Option<DingUserId>,
    /// Login email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_email: Option<String>,
    /// 0 replaces all extension fields (default), 1 merges them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext_attrs_update_mode: Option<i64>,
    /// Language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
    /// Fields to clear (`"manager_userid"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_update_fields: Option<String>,
}

impl UserUpdateRequest {
    /// An update of `userid` that changes nothing yet; set the fields to change.
    pub fn new(userid: DingUserId) -> Self {
        Self {
            userid,
            name: None,
            hide_mobile: None,
            telephone: None,
            job_number: None,
            title: None,
            email: None,
            org_email: None,
            org_email_type: None,
            work_place: None,
            remark: None,
            dept_id_list: None,
            dept_order_list: None,
            dept_title_list: None,
            extension: None,
            senior_mode: None,
            hired_date: None,
            manager_userid: None,
            login_email: None,
            ext_attrs_update_mode: None,
            language: None,
            force_update_fields: None,
        }
    }
}

/// Body of `v2/user/getbymobile`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserGetByMobileRequest {
    /// The mobile number (employed users only).
    pub mobile: String,
}

/// `result` of `v2/user/getbymobile`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserIdResult {
    /// The user.
    pub userid: DingUserId,
}

/// `result` of `user/listid`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserIdList {
    /// Direct members of the department.
    #[serde(default = "Vec::new")]
    pub userid_list: Vec<DingUserId>,
}

/// Body of `user/count`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserCountRequest {
    /// `true` counts activated users only.
    pub only_active: bool,
}

/// `result` of `user/count`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserCountResult {
    /// The number of users.
    #[serde(deserialize_with = "crate::lenient::req")]
    pub count: i64,
}
