//! The `[scim]` section as the handlers use it: tokens as digests (never the text), and the
//! mapping choices — what a Group is, what `active=false` does, where departments named by the
//! Enterprise `department` string live.

use directory_model::OaDeptId;
use serde::{Deserialize, Serialize};

use crate::api::ApiToken;

/// What a SCIM Group becomes in the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupsAs {
    /// A department; members are memberships.
    #[default]
    Departments,
    /// A role in the role group `role_group`; members are role assignments.
    Roles,
}

/// What `active=false` does to the OA user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Leave {
    /// Delete the OA user (and so the DingTalk user); the SCIM resource stays, inactive, so
    /// `active=true` re-creates the same user under the same id.
    #[default]
    Delete,
    /// Keep the OA user with state `left`.
    Left,
}

/// How the Enterprise `department` string names a department.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DepartmentPath {
    /// A path from `create_under` split on this separator (`Sales/East`); a one-part path is a
    /// plain name.
    Path(String),
    /// One department name under `create_under`, taken whole.
    Name,
}

/// The `[scim]` settings, resolved.
#[derive(Debug, Clone)]
pub struct ScimSettings {
    /// Accepted bearer tokens (digests); empty means SCIM is off (401 for everything).
    pub tokens: Vec<ApiToken>,
    /// What a Group is.
    pub groups: GroupsAs,
    /// With `groups = "roles"`: the name of the role group the roles live in.
    pub role_group: String,
    /// What `active=false` does.
    pub leave: Leave,
    /// How the Enterprise `department` string is read.
    pub department_path: DepartmentPath,
    /// Where users without a department go, and under which department the ones named by the
    /// Enterprise `department` string (and Groups without a parent) are found or created.
    pub create_under: OaDeptId,
    /// SCIM attributes copied into the user's DingTalk `extension`: (attribute path, extension
    /// key). A path is a core attribute (`nickName`, `name.middleName`) or a schema URN and an
    /// attribute (`urn:...:enterprise:2.0:User:costCenter`).
    pub extension: Vec<(String, String)>,
    /// The resource types and schemas served: the built-in ones, and User extensions with
    /// their own URN that `extension` maps (so they are kept, resolvable and published).
    pub catalog: scim::schema::Catalog,
    /// Largest accepted request body, bytes.
    pub max_body_bytes: usize,
    /// Largest page a list returns.
    pub max_results: usize,
    /// The deletion threshold (`[sync]`'s, the engine's live handle, so a SIGHUP that changes
    /// it applies here too): a deactivation that would take more users out of the directory
    /// within `deletion_window_ms` than it allows is held for an operator.
    pub deletions: sync_engine::LiveThreshold,
    /// How far back deactivations count as one wave, ms.
    pub deletion_window_ms: i64,
}

impl Default for ScimSettings {
    fn default() -> Self {
        Self {
            tokens: Vec::new(),
            groups: GroupsAs::Departments,
            role_group: "SCIM".into(),
            leave: Leave::Delete,
            department_path: DepartmentPath::Path("/".into()),
            create_under: OaDeptId(1),
            extension: default_extension(),
            catalog: scim::schema::Catalog::standard(),
            max_body_bytes: 1 << 20,
            max_results: 1000,
            deletions: sync_engine::LiveThreshold::default(),
            deletion_window_ms: 60 * 60 * 1000,
        }
    }
}

/// The Enterprise User attributes that have no field of their own, carried into `extension`
/// under their SCIM names unless `[scim.extension]` says otherwise.
pub fn default_extension() -> Vec<(String, String)> {
    ["costCenter", "organization", "division"]
        .into_iter()
        .map(|a| (format!("{ENTERPRISE}:{a}"), a.to_owned()))
        .collect()
}

/// The Enterprise User extension's schema URN.
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
