//! SCIM 2.0 at `/scim/v2` (issue 17): identity providers (Entra ID, Okta, ...) and HR systems
//! provision the OA directory here, and dingsync takes it to DingTalk like any `/api/v1` write.
//!
//! The protocol (schemas, filters, PATCH quirks, projection, paging, ETags, error bodies) is the
//! `scim` crate's; this module only maps SCIM resources onto the OA directory and back. Every
//! write goes through the same store calls as `/api/v1` (one transaction with its audit row and
//! outbox entry, the directory's validation, the deletion threshold downstream), with the actor
//! `scim:<token name>`. What the OA model has no field for (`userName`, `externalId`, the raw
//! Enterprise `department`, the rest of the resource) is kept in the store's `scim_resources`
//! beside the entity, so reads give back what the client wrote.
//!
//! # Layout
//! - [`settings`]: [`ScimSettings`], the `[scim]` configuration as the handlers use it.
//! - [`http`]: responses (`application/scim+json`, `ETag`, `Location`), auth, store errors as
//!   SCIM errors, timestamps.
//! - [`routes`]: the router, discovery and the generic collection / item handlers.
//! - [`users`]: User ↔ OA user, including `active` and the Enterprise `department` path.
//! - [`groups`]: Group ↔ OA department (members are memberships, the parent from dingsync's
//!   Group extension).
//! - [`roles`]: Group ↔ OA role (`groups = "roles"`; members are role assignments).

pub mod groups;
pub mod http;
pub mod roles;
pub mod routes;
pub mod settings;
pub mod users;

pub use routes::router;
pub use settings::{GroupsAs, Leave, ScimSettings};

use std::sync::Arc;

use directory_store::Store;

use crate::clock::SharedClock;

/// What the SCIM handlers share.
#[derive(Clone, Debug)]
pub struct ScimState {
    /// The OA directory.
    pub store: Store,
    /// The `[scim]` settings (tokens as digests only).
    pub settings: Arc<ScimSettings>,
    /// Write times (audit `at_ms`, `meta.lastModified`).
    pub clock: SharedClock,
}
