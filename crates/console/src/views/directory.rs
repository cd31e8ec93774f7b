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
    /// The departments the filter offers.
    pub departments: Vec<DeptOption>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeptOption {
    pub id: String,
    pub name: String,
}

/// The department tree flattened in pre-order: each node's `depth` places it under the
/// nearest earlier node of depth - 1, so a page renders it with one loop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepartmentTree {
    pub nodes: Vec<DepartmentNode>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepartmentNode {
    /// The OA id, used in `/console/departments/{id}`.
    pub id: String,
    pub name: String,
    pub parent: Option<String>,
    pub depth: u32,
    pub dingtalk_id: Option<String>,
    pub members: u64,
    pub state: SyncState,
}

impl DepartmentNode {
    /// Indentation for the tree, in `rem`, capped so deep trees stay readable at 200% zoom.
    pub fn indent_rem(&self) -> u32 {
        self.depth.min(12) * 2
    }
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
