//! SCIM 2.0 protocol layer (RFC 7643 / RFC 7644), WIP.

pub mod attr_path;
pub mod error;
pub mod filter;
pub mod json_keys;
pub mod patch;
pub mod schema;

pub use error::{ScimError, ScimType};
