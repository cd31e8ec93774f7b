//! PATCH (RFC 7644 §3.5.2): reading a `PatchOp` body, resolving its paths and applying
//! `add` / `remove` / `replace` to a resource's JSON, with the known client quirks.
//!
//! - [`request`]: the body → [`Operation`]s (case-insensitive `op`).
//! - [`path`]: `attr[.sub]`, `attr[filter][.sub]`, URN-qualified.
//! - `coerce`: values into the attribute's shape (Entra's `"False"`, manager as a string).
//! - `apply`: targets, mutability, single-valued attributes and extensions.
//! - `multi`: multi-valued attributes and value filters.

mod apply;
mod coerce;
mod multi;
pub mod path;
pub mod request;

use serde_json::Value;

pub use apply::apply_operations;
pub use path::PatchPath;
pub use request::{OpKind, Operation, PATCH_OP_SCHEMA, parse_patch_request};

use crate::error::ScimError;
use crate::schema::{Attribute, ResourceType};

/// Coerces a whole attribute's value as `POST`/`PUT` bodies need it, with the same client
/// leniencies as PATCH values.
pub(crate) fn coerce_for_write(
    value: &Value,
    attr: &Attribute,
    what: &str,
) -> Result<Value, ScimError> {
    coerce::coerce(value, attr, what)
}

/// Applies a `PatchOp` request body to `resource` and returns the new resource, or the SCIM
/// error of the first operation that fails (nothing is applied then).
///
/// The caller keeps `id`, `meta` and `schemas` authoritative: this function never changes
/// `id` or `meta` (both readOnly), and adds or removes an extension's URN in `schemas` as the
/// extension object appears or disappears.
pub fn apply_patch(resource: &Value, body: &Value, rt: &ResourceType) -> Result<Value, ScimError> {
    let ops = parse_patch_request(body)?;
    apply_operations(resource, &ops, rt)
}
