//! Reading a client's resource for `POST` (create) and `PUT` (replace), RFC 7644 §3.3, §3.5.1.
//!
//! The body is brought into the published schema's shape (types coerced with the same client
//! leniencies as PATCH, names in the schema's spelling), server-owned and readOnly members are
//! dropped (RFC 7643 §7: readOnly values a client sends "SHALL be ignored"), and required
//! attributes are checked. Attributes the schema does not define are dropped too and listed in
//! [`Prepared::ignored`]: IdPs send extras (Okta: `locale`, `password`), and failing their whole
//! provisioning for them helps nobody; the service logs or audits the list instead.

use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::json_keys::{get_ci, is_unassigned, set_ci};
use crate::patch::coerce_for_write;
use crate::schema::{Attribute, COMMON_ATTRIBUTES, Mutability, ResourceType, Schema};

/// A resource ready to store, and the members that were ignored.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// The resource without `id` and `meta` (the service adds them on the way out).
    pub resource: Value,
    /// Paths of members the schema does not define, as the client spelled them.
    pub ignored: Vec<String>,
}

/// Prepares a `POST` body.
pub fn prepare_create(body: &Value, rt: &ResourceType) -> Result<Prepared, ScimError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax(format!("a {} must be a JSON object", rt.name)))?;
    check_schemas(obj, rt)?;
    let mut out = Map::new();
    let mut ignored = Vec::new();
    for (key, value) in obj {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if let Some(ext) = rt.extension(key) {
            let ext_obj = prepare_extension(ext, value, &mut ignored)?;
            if !ext_obj.is_empty() {
                out.insert(ext.id.to_owned(), Value::Object(ext_obj));
            }
            continue;
        }
        let attr = COMMON_ATTRIBUTES
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(key))
            .or_else(|| rt.schema.attribute(key));
        match attr {
            Some(attr) => put_attr(&mut out, attr, value, attr.name)?,
            None => ignored.push(key.clone()),
        }
    }
    check_required(&out, rt.schema)?;
    let mut schemas = vec![Value::String(rt.schema.id.to_owned())];
    schemas.extend(
        rt.extensions
            .iter()
            .filter(|e| out.contains_key(e.id))
            .map(|e| Value::String(e.id.to_owned())),
    );
    out.insert("schemas".into(), Value::Array(schemas));
    Ok(Prepared {
        resource: Value::Object(out),
        ignored,
    })
}

/// Prepares a `PUT` body against the stored resource: as for create, then immutable attributes
/// must keep their value (once set) and readOnly ones are carried over from `current`.
pub fn prepare_replace(
    current: &Value,
    body: &Value,
    rt: &ResourceType,
) -> Result<Prepared, ScimError> {
    let mut prepared = prepare_create(body, rt)?;
    let (Some(cur), Some(new)) = (current.as_object(), prepared.resource.as_object_mut()) else {
        return Ok(prepared);
    };
    for attr in rt.schema.attributes {
        let old = get_ci(cur, attr.name).filter(|v| !is_unassigned(v));
        match attr.mutability {
            Mutability::Immutable => {
                if let Some(old) = old
                    && get_ci(new, attr.name) != Some(old)
                {
                    return Err(ScimError::mutability(format!(
                        "'{}' is immutable",
                        attr.name
                    )));
                }
            }
            Mutability::ReadOnly => {
                if let Some(old) = old {
                    set_ci(new, attr.name, old.clone());
                }
            }
            _ => {}
        }
    }
    Ok(prepared)
}

fn check_schemas(obj: &Map<String, Value>, rt: &ResourceType) -> Result<(), ScimError> {
    let listed = get_ci(obj, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|a| {
            a.iter().any(|s| {
                s.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(rt.schema.id))
            })
        });
    if listed {
        Ok(())
    } else {
        Err(ScimError::invalid_syntax(format!(
            "'schemas' must list {}",
            rt.schema.id
        )))
    }
}

fn prepare_extension(
    ext: &Schema,
    value: &Value,
    ignored: &mut Vec<String>,
) -> Result<Map<String, Value>, ScimError> {
    let obj = value
        .as_object()
        .ok_or_else(|| ScimError::invalid_value(format!("'{}' must be an object", ext.id)))?;
    let mut out = Map::new();
    for (key, v) in obj
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("schemas"))
    {
        match ext.attribute(key) {
            Some(attr) => put_attr(&mut out, attr, v, &format!("{}:{}", ext.id, attr.name))?,
            None => ignored.push(format!("{}:{key}", ext.id)),
        }
    }
    Ok(out)
}

/// Coerces and stores one attribute; readOnly ones are skipped.
fn put_attr(
    out: &mut Map<String, Value>,
    attr: &Attribute,
    value: &Value,
    what: &str,
) -> Result<(), ScimError> {
    if attr.mutability == Mutability::ReadOnly {
        return Ok(());
    }
    let v = coerce_for_write(value, attr, what)?;
    if !is_unassigned(&v) {
        set_ci(out, attr.name, v);
    }
    Ok(())
}

fn check_required(out: &Map<String, Value>, schema: &Schema) -> Result<(), ScimError> {
    for attr in schema
        .attributes
        .iter()
        .filter(|a| a.required && a.mutability != Mutability::ReadOnly)
    {
        let present =
            get_ci(out, attr.name).is_some_and(|v| !is_unassigned(v) && v.as_str() != Some(""));
        if !present {
            return Err(ScimError::invalid_value(format!(
                "'{}' is required",
                attr.name
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{GROUP, USER};
    use serde_json::json;

    const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
    const EXT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    #[test]
    fn create_coerces_drops_read_only_and_lists_the_ignored() {
        // Okta's create, with its extras.
        let body = json!({
            "schemas": [CORE, EXT], "id": "client-chosen", "meta": {"resourceType": "User"},
            "UserName": "isabella@example.com", "active": "True",
            "name": {"givenName": "Isabella", "familyName": "Ng"},
            "emails": [{"primary": true, "value": "isabella@example.com", "type": "work"}],
            "locale": "en-US", "password": "hunter2", "groups": [],
            EXT: {"department": "Sales/East", "costCenter": "4130", "badge": "7"}
        });
        let p = prepare_create(&body, &USER).unwrap();
        let r = &p.resource;
        assert_eq!(r["userName"], "isabella@example.com");
        assert_eq!(r["active"], true);
        assert!(r.get("id").is_none() && r.get("meta").is_none() && r.get("groups").is_none());
        assert_eq!(r["locale"], "en-US");
        assert_eq!(
            r[EXT],
            json!({"department": "Sales/East", "costCenter": "4130"})
        );
        assert_eq!(r["schemas"], json!([CORE, EXT]));
        assert_eq!(
            p.ignored,
            vec!["password".to_owned(), format!("{EXT}:badge")]
        );
        // The ignored list names members, never their values (passwords stay out of logs).
        assert!(!format!("{:?}", p.ignored).contains("hunter2"));
    }

    #[test]
    fn create_rejects_what_scim_sanity_sends_as_bad_bodies() {
        let e = prepare_create(&json!({"not": "a scim resource"}), &USER).unwrap_err();
        assert_eq!(
            (e.status, e.scim_type),
            (400, Some(crate::ScimType::InvalidSyntax))
        );
        let e = prepare_create(
            &json!({"schemas": [CORE], "name": {"givenName": "x"}}),
            &USER,
        )
        .unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.detail.contains("'userName' is required"), "{}", e.detail);
        let e = prepare_create(
            &json!({"schemas": [CORE], "userName": "a", "active": "perhaps"}),
            &USER,
        )
        .unwrap_err();
        assert!(e.detail.contains("'active'"), "{}", e.detail);
        let e = prepare_create(
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"]}),
            &GROUP,
        )
        .unwrap_err();
        assert!(
            e.detail.contains("'displayName' is required"),
            "{}",
            e.detail
        );
    }

    #[test]
    fn replace_keeps_read_only_from_the_stored_resource() {
        let current =
            json!({"schemas": [CORE], "id": "u-1", "userName": "a", "groups": [{"value": "g-1"}]});
        let body = json!({"schemas": [CORE], "userName": "b", "groups": []});
        let p = prepare_replace(&current, &body, &USER).unwrap();
        assert_eq!(p.resource["userName"], "b");
        assert_eq!(p.resource["groups"], json!([{"value": "g-1"}]));
    }
}
