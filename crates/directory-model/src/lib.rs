//! The OA directory's domain model: entities, side-qualified ids, validation, diff and
//! three-way merge.
//!
//! This crate is pure (serde and thiserror only): no async runtime, no SQL, no HTTP and no
//! DingTalk JSON. The store persists these types, the sync engine converts DingTalk's wire types
//! into them, and the OA API validates requests with them, so all three agree on one meaning of
//! "a user" and "a change".
//!
//! # Layout
//! - [`ids`]: `Oa*Id` and `Ding*Id` newtypes; mixing the two sides is a compile error.
//! - [`entity`]: [`Department`], [`User`] (with [`Membership`] and [`Mobile`]), [`RoleGroup`],
//!   [`Role`], [`RoleAssignment`], and their generated field enums.
//! - [`fields`]: the [`FieldAccess`] trait that lets diff and merge work field by field with types
//!   intact.
//! - [`validate`]: DingTalk's documented limits, reporting every problem with a field path: the
//!   per-entity checks every write runs (lengths, formats, userid syntax, control characters)
//!   and the checks of OA operations on DingTalk's built-in roles.
//! - [`diff`]: whole-directory [`Snapshot`]s and their [`SnapshotDiff`] (for plan/reconcile).
//! - [`mod@merge`]: the per-entity three-way [`merge()`] against the last synced base, with
//!   per-field authority and recorded [`Conflict`]s.

pub mod diff;
pub mod entity;
pub mod fields;
pub mod ids;
pub mod merge;
pub mod validate;

pub use diff::{Changed, EntityDiff, Identified, SetDiff, Snapshot, SnapshotDiff};
pub use entity::{
    Department, DeptField, Membership, Mobile, Role, RoleAssignment, RoleField, RoleGroup,
    RoleGroupField, User, UserField, UserState,
};
pub use fields::FieldAccess;
pub use ids::{
    DingDeptId, DingRoleGroupId, DingRoleId, DingUserId, OaDeptId, OaRoleGroupId, OaRoleId,
    OaUserId,
};
pub use merge::{Authority, Conflict, MergePolicy, Merged, Side, merge};
pub use validate::{
    BUILTIN_ROLE_GROUP, BUILTIN_ROLES, Rule, ValidationError, ValidationErrors, has_control_char,
    is_builtin_role, is_builtin_role_group_name, is_builtin_role_name, is_valid_userid,
    validate_department, validate_role, validate_role_assignment, validate_role_change,
    validate_role_deletion, validate_role_group, validate_role_group_change,
    validate_role_group_deletion, validate_user,
};
