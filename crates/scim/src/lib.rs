//! SCIM 2.0 (RFC 7643 / RFC 7644) as a pure protocol layer: JSON in, JSON or a SCIM error out.
//! No HTTP server, no SQL, no async; serde, serde_json and thiserror only.
//!
//! dingsync serves SCIM so that identity providers (Entra ID, Okta, ...) and HR systems can
//! provision DingTalk through it. Everything the protocol decides — what the schemas say, what a
//! filter selects, what a PATCH does, which attributes a response carries — lives here, tested
//! against the request shapes real clients send, so the service only maps resources to its
//! directory and back.
//!
//! # Layout
//! - [`schema`]: the one description of the served attributes (types, mutability, caseExact,
//!   required, uniqueness), the schemas (User + Enterprise User, Group + dingsync's Group
//!   extension with `parent`) and the resource types; path resolution (case-insensitive,
//!   URN-qualified) for everything else.
//! - [`discovery`]: `ServiceProviderConfig`, `ResourceTypes`, `Schemas`, rendered from
//!   [`schema`] and [`discovery::ServiceConfig`], so they tell the truth.
//! - [`filter`]: the filter parser (errors carry the position) and evaluator over a resource's
//!   JSON.
//! - [`patch`]: PatchOp parsing and application, with Entra ID's and Okta's quirks.
//! - [`write`]: POST/PUT bodies → a resource to store (coerced, readOnly dropped, required
//!   checked, unknown members listed).
//! - [`project`]: `attributes` / `excludedAttributes`.
//! - [`list`]: `startIndex`/`count` paging and `ListResponse`.
//! - [`meta`]: `meta`, locations, weak-ETag versions and `If-Match`.
//! - [`error`]: [`ScimError`], the RFC 7644 §3.12 error body and status.
//! - [`attr_path`], [`json_keys`]: attribute paths and case-insensitive JSON member access.
//!
//! The service (`dingsync::scim`) serves this crate at `/scim/v2`; its test
//! `scim::both_conformance_suites_pass_against_the_real_service` runs `scripts/scim-suites.sh`
//! (scim2-tester and scim-sanity's strict probe) against it.
//!
//! # How the service plugs in (phase 2)
//! The service keeps its own model (OA users, departments, roles) and converts at the edge:
//! - **Read** (`GET /Users/{id}`, `GET /Users?filter=...`): the service renders each stored
//!   entity as a SCIM resource [`serde_json::Value`] (its mapping: `userName`, `name`, `emails`,
//!   `phoneNumbers`, the enterprise `department` path, ...), calls [`meta::finish_resource`]
//!   with its id, timestamps and revision, keeps those for which [`filter::matches`] holds,
//!   pages with [`list::Page`] and projects with [`project::Projection`]. A store-side
//!   pre-filter (e.g. `userName eq` / `externalId eq` by index, as IdPs query before every
//!   create) is an optimisation the service may add; `filter::matches` stays the judge.
//! - **Create / replace**: [`write::prepare_create`] / [`write::prepare_replace`] give a
//!   normalised resource; the service maps it onto its entity, validates with the directory's
//!   rules, and answers a clash (userName, mobile, e-mail) with [`ScimError::uniqueness`] (409).
//! - **PATCH**: the service renders the current resource, checks `If-Match` with
//!   [`meta::check_if_match`], calls [`patch::apply_patch`], and stores the result through the
//!   same path as PUT — inside one store transaction, so the outbox, audit, deletion threshold
//!   and holds apply exactly as for `/api/v1`. `active` going false is the "left" transition.
//! - **Discovery**: [`discovery`] functions are the bodies of the three endpoints.
//! - Errors: every function returns [`ScimError`]; the handler answers
//!   `ScimError::status` with `ScimError::to_json` and `Content-Type: application/scim+json`.

pub mod attr_path;
pub mod discovery;
pub mod error;
pub mod filter;
pub mod json_keys;
pub mod list;
pub mod meta;
pub mod patch;
pub mod project;
pub mod schema;
pub mod write;

pub use error::{ScimError, ScimType};
