//! `/console/audit`: who changed what, when, from where.

use serde::{Deserialize, Serialize};

/// An audit search; every field optional. `from`/`to` are RFC 3339 times or dates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    /// An object id (OA or DingTalk) or name.
    pub object: Option<String>,
    pub origin: Option<String>,
    pub actor: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    /// Newest first.
    pub entries: Vec<AuditEntry>,
    /// More entries matched than are shown; narrow the search.
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: String,
    /// The person (console or API user) or process that acted.
    pub actor: String,
    pub origin: String,
    pub object_kind: String,
    pub object_id: String,
    pub action: String,
    pub detail: String,
}

impl AuditEntry {
    /// The kind in words (`role group`, not `role_group`).
    pub fn kind_label(&self) -> String {
        self.object_kind.replace('_', " ")
    }

    /// The object's console page, for the kinds that have one.
    pub fn href(&self) -> Option<String> {
        let segment = match self.object_kind.as_str() {
            "user" => "users",
            "department" => "departments",
            "role" => "roles",
            "role_group" => "role-groups",
            _ => return None,
        };
        (!self.object_id.is_empty()).then(|| format!("/console/{segment}/{}", self.object_id))
    }
}
