//! Resource types (RFC 7643 §6) and the resolution of attribute paths against them.
//!
//! Resolution is where "attribute names are case-insensitive" and "an attribute may be
//! qualified by its schema URN" are implemented once, for filters, PATCH paths and projections
//! alike.

use super::attribute::{Attribute, Schema};
use super::catalog::{
    COMMON_ATTRIBUTES, DINGSYNC_GROUP_SCHEMA, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA,
};
use crate::attr_path::AttrPath;

/// A resource type the service serves: `User` at `/Users`, `Group` at `/Groups`.
#[derive(Debug, Clone, Copy)]
pub struct ResourceType {
    pub name: &'static str,
    pub endpoint: &'static str,
    pub description: &'static str,
    pub schema: &'static Schema,
    /// The extensions; none is required of a client.
    pub extensions: &'static [&'static Schema],
}

pub const USER: ResourceType = ResourceType {
    name: "User",
    endpoint: "/Users",
    description: "People, provisioned to DingTalk Contacts.",
    schema: &USER_SCHEMA,
    extensions: &[&ENTERPRISE_USER_SCHEMA],
};

pub const GROUP: ResourceType = ResourceType {
    name: "Group",
    endpoint: "/Groups",
    description: "Departments (or roles), provisioned to DingTalk Contacts.",
    schema: &GROUP_SCHEMA,
    extensions: &[&DINGSYNC_GROUP_SCHEMA],
};

/// The resource types served, in the order `/ResourceTypes` lists them.
pub const RESOURCE_TYPES: &[&ResourceType] = &[&USER, &GROUP];

/// What an attribute path designates once resolved.
#[derive(Debug, Clone, Copy)]
pub enum Resolved {
    /// A whole extension object, e.g. `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`.
    Extension(&'static Schema),
    /// An attribute, with the extension that holds it (`None`: the resource's top level) and the
    /// sub-attribute named after a `.`, if any.
    Attribute {
        extension: Option<&'static Schema>,
        attr: &'static Attribute,
        sub: Option<&'static Attribute>,
    },
}

impl ResourceType {
    /// The extension schema with this URN, case-insensitively.
    pub fn extension(&self, urn: &str) -> Option<&'static Schema> {
        self.extensions
            .iter()
            .copied()
            .find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// The schemas of this type: core first, then extensions.
    pub fn schema_ids(&self) -> impl Iterator<Item = &'static str> + '_ {
        std::iter::once(self.schema.id).chain(self.extensions.iter().map(|s| s.id))
    }

    fn unique_extension_attribute(
        &self,
        name: &str,
    ) -> (Option<&'static Schema>, Option<&'static Attribute>) {
        let mut found = self
            .extensions
            .iter()
            .filter_map(|ext| ext.attribute(name).map(|a| (*ext, a)));
        match (found.next(), found.next()) {
            (Some((ext, a)), None) => (Some(ext), Some(a)),
            _ => (None, None),
        }
    }

    /// Resolves a path against this type. The error names what is unknown, for the caller to
    /// wrap as `invalidFilter` or `invalidPath`.
    pub fn resolve(&self, path: &AttrPath) -> Result<Resolved, String> {
        let (extension, name) = match &path.urn {
            None => (None, path.name.as_str()),
            Some(urn) if urn.eq_ignore_ascii_case(self.schema.id) => (None, path.name.as_str()),
            Some(urn) => match self.extension(urn) {
                Some(ext) => (Some(ext), path.name.as_str()),
                None => {
                    // `urn:...:enterprise:2.0:User` splits as urn `...:2.0` + name `User`.
                    let whole = format!("{urn}:{}", path.name);
                    return match self.extension(&whole) {
                        Some(ext) if path.sub.is_none() => Ok(Resolved::Extension(ext)),
                        _ => Err(format!("unknown schema '{urn}' for {}", self.name)),
                    };
                }
            },
        };
        let (extension, attr) = match extension {
            Some(ext) => (Some(ext), ext.attribute(name)),
            None => match COMMON_ATTRIBUTES
                .iter()
                .find(|a| a.name.eq_ignore_ascii_case(name))
                .or_else(|| self.schema.attribute(name))
            {
                Some(a) => (None, Some(a)),
                // An unqualified name that only an extension defines (Entra ID's older job
                // sends `manager` bare) resolves there when exactly one extension has it.
                None => self.unique_extension_attribute(name),
            },
        };
        let attr = attr.ok_or_else(|| format!("unknown attribute '{name}' for {}", self.name))?;
        let sub = match &path.sub {
            None => None,
            Some(s) => Some(
                attr.sub(s)
                    .ok_or_else(|| format!("'{}' has no sub-attribute '{s}'", attr.name))?,
            ),
        };
        Ok(Resolved::Attribute {
            extension,
            attr,
            sub,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(rt: &ResourceType, text: &str) -> Result<Resolved, String> {
        rt.resolve(&AttrPath::parse(text).map_err(|e| e.1)?)
    }

    #[test]
    fn names_resolve_case_insensitively_and_with_urns() {
        for text in [
            "username",
            "USERNAME",
            "urn:ietf:params:scim:schemas:core:2.0:User:userName",
        ] {
            match resolve(&USER, text) {
                Ok(Resolved::Attribute {
                    extension: None,
                    attr,
                    sub: None,
                }) => {
                    assert_eq!(attr.name, "userName")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        match resolve(
            &USER,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        ) {
            Ok(Resolved::Attribute {
                extension: Some(ext),
                attr,
                sub: Some(sub),
            }) => {
                assert_eq!(
                    (ext.name, attr.name, sub.name),
                    ("EnterpriseUser", "manager", "value")
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            resolve(
                &USER,
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
            ),
            Ok(Resolved::Extension(_))
        ));
        assert!(matches!(
            resolve(
                &GROUP,
                "urn:dingsync:params:scim:schemas:extension:2.0:Group:parent"
            ),
            Ok(Resolved::Attribute {
                extension: Some(_),
                ..
            })
        ));
    }

    #[test]
    fn unknown_names_are_named_in_the_error() {
        let e = resolve(&USER, "nickname2").unwrap_err();
        assert!(e.contains("nickname2"), "{e}");
        let e = resolve(&USER, "emails.nope").unwrap_err();
        assert!(e.contains("nope"), "{e}");
        let e = resolve(
            &GROUP,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        )
        .unwrap_err();
        assert!(e.contains("unknown schema"), "{e}");
    }
}
