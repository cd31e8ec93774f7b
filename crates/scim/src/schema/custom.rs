//! Extension schemas the service configures at run time, and the [`Catalog`] that serves them.
//!
//! HR systems and IdPs define their own User extensions (`urn:...:extension:acme:2.0:User`
//! with `costCenter`, `badgeNumber`, ...). The built-in schemas are constants; a configured
//! extension becomes one more [`Schema`] of the User resource type, so that writes keep its
//! attributes (instead of dropping them as unknown), PATCH paths and filters resolve them, and
//! `/Schemas` and `/ResourceTypes` publish them — one description for all of it, as for the
//! built-in ones.
//!
//! The whole protocol layer works on `&'static` schemas; a catalog with custom extensions is
//! built once from the configuration and leaked (a few hundred bytes per configuration load).

use super::attribute::{Attribute, Schema};
use super::catalog::{ALL_SCHEMAS, ENTERPRISE_USER_SCHEMA};
use super::resource_type::{GROUP, ResourceType, USER};

/// One configured User extension: its schema URN and its (string) attributes, each with what
/// it is for (its description in `/Schemas`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomExtension {
    /// The schema URN, e.g. `urn:ietf:params:scim:schemas:extension:acme:2.0:User`.
    pub urn: String,
    /// (attribute name, description).
    pub attributes: Vec<(String, String)>,
}

/// Why a custom extension cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustomError {
    /// The URN is not one (RFC 7643 §10.2: schema ids are URNs).
    #[error("{urn:?} is not a schema URN (it must start with \"urn:\")")]
    NotUrn {
        /// The offending URN.
        urn: String,
    },
    /// The URN is one the service defines itself.
    #[error("{urn:?} is a built-in schema; it cannot be redefined")]
    BuiltIn {
        /// The offending URN.
        urn: String,
    },
    /// An attribute name SCIM could not address.
    #[error(
        "{urn}: attribute {name:?} is not a simple attribute name (a letter, then letters, digits, \
         '-', '_' or '$')"
    )]
    BadName {
        /// The extension.
        urn: String,
        /// The offending name.
        name: String,
    },
}

/// The resource types and schemas the service serves.
#[derive(Debug, Clone, Copy)]
pub struct Catalog {
    /// `User`, with its extensions.
    pub user: &'static ResourceType,
    /// `Group`.
    pub group: &'static ResourceType,
    /// The configured extensions (listed in `/Schemas` after the built-in resource schemas).
    pub custom: &'static [&'static Schema],
}

impl Default for Catalog {
    fn default() -> Self {
        Self::standard()
    }
}

impl Catalog {
    /// The built-in schemas only.
    pub const fn standard() -> Self {
        Self {
            user: &USER,
            group: &GROUP,
            custom: &[],
        }
    }

    /// The built-in schemas and `extensions` on User. An empty list gives [`Catalog::standard`]
    /// without allocating.
    pub fn with_user_extensions(extensions: &[CustomExtension]) -> Result<Self, CustomError> {
        if extensions.is_empty() {
            return Ok(Self::standard());
        }
        let mut schemas: Vec<&'static Schema> = Vec::with_capacity(extensions.len());
        for ext in extensions {
            check(ext)?;
            let attributes: Vec<Attribute> = ext
                .attributes
                .iter()
                .map(|(name, description)| Attribute::string(leak(name), leak(description)))
                .collect();
            let schema = Schema {
                id: leak(&ext.urn),
                name: leak(schema_name(&ext.urn)),
                description: "A User extension configured in dingsync's [scim.extension]; its \
                              attributes are carried into the DingTalk extension.",
                attributes: Box::leak(attributes.into_boxed_slice()),
            };
            schemas.push(Box::leak(Box::new(schema)));
        }
        let custom: &'static [&'static Schema] = Box::leak(schemas.into_boxed_slice());
        let mut user_extensions: Vec<&'static Schema> = vec![&ENTERPRISE_USER_SCHEMA];
        user_extensions.extend(custom.iter().copied());
        let user = ResourceType {
            extensions: Box::leak(user_extensions.into_boxed_slice()),
            ..USER
        };
        Ok(Self {
            user: Box::leak(Box::new(user)),
            group: &GROUP,
            custom,
        })
    }

    /// The resource types, in the order `/ResourceTypes` lists them.
    pub fn resource_types(&self) -> [&'static ResourceType; 2] {
        [self.user, self.group]
    }

    /// The resource type named `name` (`User`, `Group`).
    pub fn resource_type(&self, name: &str) -> Option<&'static ResourceType> {
        self.resource_types().into_iter().find(|rt| rt.name == name)
    }

    /// Every schema `/Schemas` lists: the built-in resource schemas and extensions, the
    /// configured extensions, then the discovery schemas.
    pub fn schemas(&self) -> Vec<&'static Schema> {
        let (resources, discovery) = ALL_SCHEMAS.split_at(4);
        resources
            .iter()
            .chain(self.custom)
            .chain(discovery)
            .copied()
            .collect()
    }
}

fn leak(text: &str) -> &'static str {
    Box::leak(text.to_owned().into_boxed_str())
}

/// The schema's `name`: the URN's part before the resource name (`acme` of
/// `urn:...:extension:acme:2.0:User`), else its last part.
fn schema_name(urn: &str) -> &str {
    let parts: Vec<&str> = urn.split(':').collect();
    match parts.as_slice() {
        [.., name, version, _resource]
            if version.chars().all(|c| c.is_ascii_digit() || c == '.') =>
        {
            name
        }
        [.., last] => last,
        [] => urn,
    }
}

fn check(ext: &CustomExtension) -> Result<(), CustomError> {
    let urn = &ext.urn;
    if !urn.to_ascii_lowercase().starts_with("urn:") || urn.len() <= 4 {
        return Err(CustomError::NotUrn { urn: urn.clone() });
    }
    let built_in = ALL_SCHEMAS.iter().any(|s| s.id.eq_ignore_ascii_case(urn));
    if built_in {
        return Err(CustomError::BuiltIn { urn: urn.clone() });
    }
    for (name, _) in &ext.attributes {
        let mut chars = name.chars();
        let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '$'));
        if !ok {
            return Err(CustomError::BadName {
                urn: urn.clone(),
                name: name.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::ENTERPRISE_USER_SCHEMA_ID;

    const ACME: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:User";

    fn acme() -> CustomExtension {
        CustomExtension {
            urn: ACME.into(),
            attributes: vec![("costCenter".into(), "cost center".into())],
        }
    }

    #[test]
    fn a_custom_extension_is_one_more_user_schema() {
        let c = Catalog::with_user_extensions(&[acme()]).unwrap();
        assert_eq!(
            c.user.schema_ids().collect::<Vec<_>>(),
            [USER.schema.id, ENTERPRISE_USER_SCHEMA_ID, ACME]
        );
        let ext = c
            .user
            .extension(&ACME.to_uppercase())
            .expect("found by URN");
        assert_eq!(ext.name, "acme");
        assert!(ext.attribute("COSTCENTER").is_some());
        let ids: Vec<&str> = c.schemas().iter().map(|s| s.id).collect();
        assert_eq!(ids.len(), ALL_SCHEMAS.len() + 1);
        assert_eq!(ids[4], ACME, "after the resource schemas: {ids:?}");
        // The standard catalog is untouched.
        assert_eq!(Catalog::standard().user.extensions.len(), 1);
    }

    #[test]
    fn bad_extensions_are_refused_with_the_reason() {
        let mut e = acme();
        e.urn = "acme".into();
        assert!(matches!(
            Catalog::with_user_extensions(&[e]),
            Err(CustomError::NotUrn { .. })
        ));
        let mut e = acme();
        e.urn = ENTERPRISE_USER_SCHEMA_ID.into();
        assert!(matches!(
            Catalog::with_user_extensions(&[e]),
            Err(CustomError::BuiltIn { .. })
        ));
        let mut e = acme();
        e.attributes = vec![("cost.center".into(), String::new())];
        let err = Catalog::with_user_extensions(&[e]).unwrap_err();
        assert!(err.to_string().contains("cost.center"), "{err}");
    }
}
