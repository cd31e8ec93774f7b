//! The one description of what the service serves: attribute definitions, schemas and resource
//! types. Discovery renders it; filters, PATCH, validation and projection consult it.

pub mod attribute;
pub mod catalog;
pub mod custom;
pub mod resource_type;

pub use attribute::{AttrType, Attribute, Mutability, Returned, Schema, Uniqueness};
pub use catalog::*;
pub use custom::{Catalog, CustomError, CustomExtension};
pub use resource_type::{GROUP, RESOURCE_TYPES, Resolved, ResourceType, USER};
