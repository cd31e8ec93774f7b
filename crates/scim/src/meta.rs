//! Resource metadata (RFC 7643 §3.1) and versions as weak ETags with `If-Match`
//! (RFC 7644 §3.14).
//!
//! The service owns `id`, `meta` and the revision counter; this module only renders them and
//! compares versions, so the rules live in one place.

use serde_json::{Value, json};

use crate::error::ScimError;
use crate::json_keys::set_ci;
use crate::schema::ResourceType;

/// A resource version, rendered as a weak entity tag `W/"<revision>"`. The service bumps the
/// revision on every change it commits, so equal tags mean equal state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version(String);

impl Version {
    /// The version of a stored revision.
    pub fn from_revision(revision: u64) -> Self {
        Version(format!("W/\"{revision}\""))
    }

    /// The `meta.version` / `ETag` text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The opaque part, for comparison: weak comparison ignores the `W/` prefix (RFC 7232 §2.3.2).
    fn opaque(tag: &str) -> &str {
        let tag = tag.trim();
        tag.strip_prefix("W/").unwrap_or(tag).trim_matches('"')
    }

    /// Whether an `If-Match` / `If-None-Match` header value (a list of tags, or `*`) names
    /// this version.
    pub fn matches_header(&self, header: &str) -> bool {
        let mine = Self::opaque(&self.0);
        header
            .split(',')
            .any(|t| t.trim() == "*" || Self::opaque(t) == mine)
    }
}

/// Checks an `If-Match` header before a write: absent passes; otherwise the current version
/// must be listed, else 412 Precondition Failed (RFC 7644 §3.14).
pub fn check_if_match(if_match: Option<&str>, current: &Version) -> Result<(), ScimError> {
    match if_match {
        Some(h) if !current.matches_header(h) => Err(ScimError::precondition_failed(format!(
            "If-Match {h} does not match the current version {}",
            current.as_str()
        ))),
        _ => Ok(()),
    }
}

/// What the service knows about a stored resource beyond its attributes.
#[derive(Debug, Clone)]
pub struct Meta {
    /// RFC 3339 UTC timestamps, always in one format (see `filter` on comparing them).
    pub created: String,
    pub last_modified: String,
    pub version: Version,
}

/// The resource's URL: `{base_url}{endpoint}/{id}`, e.g. `https://h/scim/v2/Users/u-1`.
pub fn location(base_url: &str, rt: &ResourceType, id: &str) -> String {
    format!("{}{}/{id}", base_url.trim_end_matches('/'), rt.endpoint)
}

/// Sets the server-owned members of a resource about to be returned: `id`, `meta` and
/// `schemas` (the core schema first, then each extension the resource holds).
pub fn finish_resource(
    resource: &mut Value,
    rt: &ResourceType,
    base_url: &str,
    id: &str,
    meta: &Meta,
) {
    let Some(obj) = resource.as_object_mut() else {
        return;
    };
    let mut schemas = vec![Value::String(rt.schema.id.to_owned())];
    for ext in rt.extensions {
        if crate::json_keys::get_ci(obj, ext.id)
            .is_some_and(|v| !crate::json_keys::is_unassigned(v))
        {
            schemas.push(Value::String(ext.id.to_owned()));
        }
    }
    set_ci(obj, "schemas", Value::Array(schemas));
    set_ci(obj, "id", Value::String(id.to_owned()));
    set_ci(
        obj,
        "meta",
        json!({
            "resourceType": rt.name,
            "created": meta.created,
            "lastModified": meta.last_modified,
            "location": location(base_url, rt, id),
            "version": meta.version.as_str(),
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::USER;

    #[test]
    fn if_match_compares_weakly_and_accepts_star_and_lists() {
        let v = Version::from_revision(7);
        assert_eq!(v.as_str(), "W/\"7\"");
        assert!(check_if_match(None, &v).is_ok());
        assert!(check_if_match(Some("W/\"7\""), &v).is_ok());
        assert!(check_if_match(Some("\"7\""), &v).is_ok());
        assert!(check_if_match(Some("*"), &v).is_ok());
        assert!(check_if_match(Some("W/\"6\", W/\"7\""), &v).is_ok());
        let e = check_if_match(Some("W/\"6\""), &v).unwrap_err();
        assert_eq!(e.status, 412);
    }

    #[test]
    fn finish_sets_id_meta_and_schemas() {
        let mut r = json!({"userName": "a", "id": "spoofed",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "S"}});
        let meta = Meta {
            created: "c".into(),
            last_modified: "m".into(),
            version: Version::from_revision(2),
        };
        finish_resource(&mut r, &USER, "https://h/scim/v2/", "u-1", &meta);
        assert_eq!(r["id"], "u-1");
        assert_eq!(r["meta"]["location"], "https://h/scim/v2/Users/u-1");
        assert_eq!(r["meta"]["resourceType"], "User");
        assert_eq!(r["meta"]["version"], "W/\"2\"");
        assert_eq!(
            r["schemas"],
            json!([
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
            ])
        );
    }
}
