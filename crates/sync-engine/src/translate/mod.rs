//! Every translation between DingTalk's wire types and the directory model, both directions.
//!
//! **DingTalk → model** (`from_wire` in each kind's file): the three-way merge compares
//! DingTalk's state with the OA entity and the base field by field, so conversion must be *exact
//! and stable*: converting DingTalk's view of an entity that both sides agree on must give back
//! the OA entity bit for bit, or every event would look like a change (an echo loop, design
//! invariant 5). DingTalk does not report everything the OA model holds, so a few rules fill the
//! gaps, and the model → DingTalk half follows the same rules when it writes:
//!
//! - **Ids**: every DingTalk id goes through an [`IdMap`]; an id with no link is an error
//!   ([`ConvertError::Unmapped`]) that the caller resolves (import allocates, apply fetches the
//!   missing entity first). Nothing is guessed.
//! - **Membership order and main department**: DingTalk lists a user's departments in its own
//!   order and has no "main department" field. Memberships that the OA entity (the *hint*)
//!   already has keep the hint's order, new ones follow in DingTalk's order; the main department
//!   is the hint's if the user is still there, else the first membership.
//! - **Titles**: DingTalk has one `title` per user and optionally `dept_title_list`. When the
//!   per-department list is reported it is authoritative (a membership not in it has no title);
//!   otherwise the main membership gets `title` and the others keep the hint's title, because
//!   DingTalk said nothing about them. The pusher therefore sends `dept_title_list` for every
//!   titled membership and `title` = the main membership's title.
//! - **Managers of a department** keep the hint's order where the sets agree.
//! - **Empty text** (`""`) is "no value", as DingTalk omits fields with no value.
//! - **Extension** is a JSON object encoded as a string; values that are not strings are kept as
//!   their JSON text, and an extension that is not a JSON object is dropped with a warning
//!   (refusing the whole user would block every later event for them).
//!
//! **The `[mapping]`** ([`crate::rules`]) is applied at this boundary and nowhere else: DingTalk's
//! entity is first read in the model's shape (DingTalk's values), then mapped to OA's values;
//! an OA entity is mapped to DingTalk's values inside the request builders. Ids, memberships'
//! departments, managers and parents are never mapped, only translated through the id map.
//!
//! **Model → DingTalk** (`*_request` in each kind's file): pure request builders for the
//! pusher. The pusher first resolves every OA id an entity references to its DingTalk id and
//! hands the results in as `*Refs`; these functions only decide which wire field carries what,
//! so unit tests pin every field the guide shows without a server. The pusher always sends the
//! *whole current* OA entity, never a stored diff, so a retried or coalesced push converges on
//! the same DingTalk state. DingTalk's update treats an absent or empty field as "keep", so
//! clearing a field needs `force_update_fields`; a field is named there only when it is empty
//! now and the base (what DingTalk was last known to hold) had a value, or for the manager,
//! which the guide documents as clearable this way.
//!
//! # Layout
//! - [`ding`]: `dingtalk-proto`'s DingTalk id newtypes ↔ the model's (the two crates
//!   deliberately do not depend on each other, so the same id has two spellings).
//! - [`IdMap`] (`id_map.rs`): an in-memory copy of (part of) the store's id map, so that
//!   conversion is a pure function.
//! - [`department`], [`user`], [`role`]: each kind's translation in both directions, so the
//!   rules one direction relies on sit next to the other direction that must honour them.

pub mod department;
mod id_map;
pub mod role;
pub mod user;

use directory_store::EntityKind;

pub use id_map::IdMap;

/// Why a DingTalk entity could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// A referenced DingTalk entity has no OA counterpart in the id map yet.
    #[error("DingTalk {kind} {ding_id} has no OA counterpart in the id map")]
    Unmapped {
        /// Which kind of entity.
        kind: EntityKind,
        /// Its DingTalk id, as text.
        ding_id: String,
    },
    /// A `[mapping]` expression failed for this entity (the entity is dead-lettered; the rest
    /// of the sync goes on).
    #[error("the mapping failed for this entity")]
    Mapping(#[from] mapping::MapError),
}

/// Conversions between `dingtalk-proto`'s id newtypes and the model's: the same numbers and
/// strings, spelled by two crates that deliberately do not depend on each other.
pub mod ding {
    use dingtalk_proto as wire;
    use directory_model as model;

    /// A wire department id as the model's.
    pub fn dept(id: wire::DingDeptId) -> model::DingDeptId {
        model::DingDeptId(id.0)
    }
    /// A model department id as the wire's.
    pub fn wire_dept(id: model::DingDeptId) -> wire::DingDeptId {
        wire::DingDeptId(id.0)
    }
    /// A wire userid as the model's.
    pub fn user(id: &wire::DingUserId) -> model::DingUserId {
        model::DingUserId(id.0.clone())
    }
    /// A model userid as the wire's.
    pub fn wire_user(id: &model::DingUserId) -> wire::DingUserId {
        wire::DingUserId(id.0.clone())
    }
    /// A wire role id as the model's.
    pub fn role(id: wire::DingRoleId) -> model::DingRoleId {
        model::DingRoleId(id.0)
    }
    /// A model role id as the wire's.
    pub fn wire_role(id: model::DingRoleId) -> wire::DingRoleId {
        wire::DingRoleId(id.0)
    }
    /// A wire role group id as the model's.
    pub fn group(id: wire::DingRoleGroupId) -> model::DingRoleGroupId {
        model::DingRoleGroupId(id.0)
    }
    /// A model role group id as the wire's.
    pub fn wire_group(id: model::DingRoleGroupId) -> wire::DingRoleGroupId {
        wire::DingRoleGroupId(id.0)
    }
}

/// `Some(text)` unless the text is empty (DingTalk's "no value").
fn text(value: Option<&String>) -> Option<String> {
    value.filter(|s| !s.is_empty()).cloned()
}

/// Reorders `items` so that those also in `hint` come first in the hint's order, followed by
/// the rest in their own order. Keeps an unchanged set in a stable order across conversions.
fn align<T: Clone, K: PartialEq>(items: Vec<T>, hint: &[K], key: impl Fn(&T) -> K) -> Vec<T> {
    let mut rest = items;
    let mut out = Vec::with_capacity(rest.len());
    for h in hint {
        if let Some(pos) = rest.iter().position(|t| key(t) == *h) {
            out.push(rest.remove(pos));
        }
    }
    out.extend(rest);
    out
}
