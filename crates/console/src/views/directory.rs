//! `/console/users` (search), `/console/departments` (the tree) and `/console/roles` (role
//! groups with their roles).

use serde::{Deserialize, Serialize};

use super::common::SyncState;

/// A user search. Every field is optional; `q` matches name, userid, mobile, job number or email.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserQuery {
    pub q: Option<String>,
    /// OA department id; matches members of that department.
    pub department: Option<String>,
    pub state: Option<SyncState>,
    /// Zero-based page of 50 rows.
    pub page: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRow {
    /// The OA id, used in `/console/users/{id}`.
    pub id: String,
    pub name: String,
    /// DingTalk's userid, once mapped.
    pub userid: Option<String>,
    pub mobile: Option<String>,
    pub job_number: Option<String>,
    pub email: Option<String>,
    /// Names of the user's departments.
    pub departments: Vec<String>,
    pub state: SyncState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserList {
    pub rows: Vec<UserRow>,
    /// Matches in total (the rows are one page of them).
    pub total: u64,
    /// Whether `total` is only a lower bound (a search stops counting at its cap).
    #[serde(default)]
    pub total_is_lower_bound: bool,
    /// The zero-based page these rows are.
    #[serde(default)]
    pub page: u32,
    /// Rows per page.
    #[serde(default)]
    pub page_rows: u32,
    /// The department the list is filtered by, with its name (`None` without a filter).
    #[serde(default)]
    pub department: Option<DeptOption>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeptOption {
    pub id: String,
    pub name: String,
}

/// Which level of the department tree to show: the sub-departments of `under` (the top
/// level without it), one page of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepartmentQuery {
    /// OA department id.
    pub under: Option<String>,
    /// Zero-based page of [`DepartmentTree::page_rows`] rows.
    pub page: u32,
}

/// One level of the department tree: the way down to it and a page of its departments.
/// A whole tree of a large organization (thousands of departments) is neither readable nor
/// cheap to count, so the page walks it a level at a time, like a file browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepartmentTree {
    /// From the top level down to the department whose sub-departments are listed (empty at
    /// the top level).
    pub path: Vec<DeptOption>,
    /// Direct members of the last department of `path`.
    pub members: Option<u64>,
    /// One page of the level's departments, in display order.
    pub nodes: Vec<DepartmentNode>,
    /// Departments on this level in all.
    pub total: u64,
    pub page: u32,
    pub page_rows: u32,
}

impl DepartmentTree {
    /// The department whose level this is (`None` at the top level).
    pub fn current(&self) -> Option<&DeptOption> {
        self.path.last()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepartmentNode {
    /// The OA id, used in `/console/departments/{id}`.
    pub id: String,
    pub name: String,
    pub parent: Option<String>,
    pub dingtalk_id: Option<String>,
    /// Direct members.
    pub members: u64,
    /// Direct sub-departments.
    pub sub_departments: u64,
    pub state: SyncState,
}

/// Every role group with its roles, in id order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleTree {
    pub groups: Vec<RoleGroupRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleGroupRow {
    /// The OA id, used in `/console/role-groups/{id}`.
    pub id: String,
    pub name: String,
    pub dingtalk_id: Option<String>,
    pub state: SyncState,
    pub roles: Vec<RoleRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRow {
    /// The OA id, used in `/console/roles/{id}`.
    pub id: String,
    pub name: String,
    pub dingtalk_id: Option<String>,
    /// How many people hold the role.
    pub holders: u64,
    pub state: SyncState,
}
