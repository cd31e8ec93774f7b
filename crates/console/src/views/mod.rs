//! The admin model: one serde-serialisable view struct per console page.
//!
//! These structs are both what the HTML templates render and the bodies of the admin JSON API
//! (`/api/v1/admin/...`), so a script sees exactly what an administrator sees. The backend
//! (`crate::AdminBackend`) fills them; the console only formats them. Times are RFC 3339 UTC
//! strings as the service formats them, durations are milliseconds, ages are seconds.

mod actions;
mod attention;
mod audit;
mod common;
mod directory;
mod mapping_change;
mod object;
mod overview;
mod plan;
mod runs;
mod settings;

pub use actions::{ActionOutcome, Actor, DeletionDecision, OperatorAction};
pub use attention::{
    Attention, BlockedEntry, ConflictItem, DeadLetterItem, HeldDeletion, HeldDeletionGroup,
    SoftMatchCandidate, SoftMatchItem,
};
pub use audit::{AuditEntry, AuditPage, AuditQuery};
pub use common::{Check, ObjectKind, Outcome, Side, SyncState};
pub use directory::{
    DepartmentNode, DepartmentQuery, DepartmentTree, DeptOption, RoleGroupRow, RoleRow, RoleTree,
    UserList, UserQuery, UserRow,
};
pub use mapping_change::MappingChange;
pub use object::{
    DingTalkAnswer, FieldComparison, IdMapping, MergeDecision, ObjectDetail, TimelineEntry,
    TimelineKind,
};
pub use overview::{ApiBudget, Backlog, EventChannel, Overview, TokenState};
pub use plan::{FieldChange, PlanComputing, PlanEntry, PlanGroup, PlanOp, PlanQuery, PlanView};
pub use runs::{LogLine, Progress, RunDetail, RunKind, RunList, RunSummary, SideCounts};
pub use settings::{Setting, SettingSource, SettingValue, SettingsView, key_is_secret};
