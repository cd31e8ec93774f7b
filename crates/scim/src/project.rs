//! `attributes` / `excludedAttributes` (RFC 7644 §3.9, §3.4.2.5): which attributes a response
//! carries.
//!
//! `id`, `schemas` and `meta` are always returned, whatever the parameters say (the service
//! needs them to answer ETags and locations, and clients to address the resource); attributes
//! whose definition says `returned: always` are too, and `returned: never` ones never are.

use serde_json::{Map, Value};

use crate::attr_path::AttrPath;
use crate::error::ScimError;
use crate::json_keys::{get_ci, is_unassigned, key_ci, remove_ci};
use crate::schema::{Attribute, Resolved, ResourceType, Returned, Schema};

/// What a response should carry, parsed from the query parameters.
#[derive(Debug, Clone, Default)]
pub struct Projection {
    attributes: Vec<Resolved>,
    excluded: Vec<Resolved>,
}

const ALWAYS: [&str; 3] = ["id", "schemas", "meta"];

impl Projection {
    /// Parses the comma-separated parameters; an unknown or malformed name is `invalidValue`
    /// naming the parameter and the name.
    pub fn from_params(
        attributes: Option<&str>,
        excluded: Option<&str>,
        rt: &ResourceType,
    ) -> Result<Self, ScimError> {
        Ok(Projection {
            attributes: parse_list("attributes", attributes, rt)?,
            excluded: parse_list("excludedAttributes", excluded, rt)?,
        })
    }

    /// The projected copy of `resource`.
    pub fn apply(&self, resource: &Value, rt: &ResourceType) -> Value {
        let Some(src) = resource.as_object() else {
            return resource.clone();
        };
        let mut out = if self.attributes.is_empty() {
            src.clone()
        } else {
            self.pick_requested(src, rt)
        };
        for r in &self.excluded {
            exclude(&mut out, r);
        }
        drop_never_returned(&mut out, rt);
        Value::Object(out)
    }

    fn pick_requested(&self, src: &Map<String, Value>, rt: &ResourceType) -> Map<String, Value> {
        let mut out = Map::new();
        for name in ALWAYS {
            if let Some(k) = key_ci(src, name) {
                out.insert(k.clone(), src[&k].clone());
            }
        }
        for attr in rt
            .schema
            .attributes
            .iter()
            .filter(|a| a.returned == Returned::Always)
        {
            copy_attr(src, &mut out, attr, None);
        }
        for r in &self.attributes {
            match r {
                Resolved::Extension(ext) => {
                    if let Some(v) = get_ci(src, ext.id) {
                        out.insert(ext.id.to_owned(), v.clone());
                    }
                }
                Resolved::Attribute {
                    extension: None,
                    attr,
                    sub,
                } => copy_attr(src, &mut out, attr, *sub),
                Resolved::Attribute {
                    extension: Some(ext),
                    attr,
                    sub,
                } => copy_into_extension(src, &mut out, ext, attr, *sub),
            }
        }
        out
    }
}

fn parse_list(
    param: &str,
    text: Option<&str>,
    rt: &ResourceType,
) -> Result<Vec<Resolved>, ScimError> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(str::trim)
        // `schemas` is not an attribute but is always returned; naming it changes nothing.
        .filter(|s| !s.is_empty() && !s.eq_ignore_ascii_case("schemas"))
        .map(|name| {
            let path = AttrPath::parse(name)
                .map_err(|(_, msg)| ScimError::invalid_value(format!("'{param}': {msg}")))?;
            rt.resolve(&path)
                .map_err(|msg| ScimError::invalid_value(format!("'{param}': {msg}")))
        })
        .collect()
}

fn copy_into_extension(
    src: &Map<String, Value>,
    out: &mut Map<String, Value>,
    ext: &Schema,
    attr: &Attribute,
    sub: Option<&Attribute>,
) {
    let Some(Value::Object(src_ext)) = get_ci(src, ext.id) else {
        return;
    };
    let entry = out
        .entry(ext.id.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(dst_ext) = entry {
        copy_attr(src_ext, dst_ext, attr, sub);
    }
    if out.get(ext.id).is_some_and(is_unassigned) {
        out.remove(ext.id);
    }
}

/// Copies `attr` (or only its `sub` in each value) from `src` into `out`, merging with what an
/// earlier name already copied (`emails.value,emails.type`).
fn copy_attr(
    src: &Map<String, Value>,
    out: &mut Map<String, Value>,
    attr: &Attribute,
    sub: Option<&Attribute>,
) {
    let Some(v) = get_ci(src, attr.name) else {
        return;
    };
    let Some(sub) = sub else {
        out.insert(attr.name.to_owned(), v.clone());
        return;
    };
    let only = |item: &Value| -> Value {
        let mut m = Map::new();
        if let Some(x) = item.as_object().and_then(|o| get_ci(o, sub.name)) {
            m.insert(sub.name.to_owned(), x.clone());
        }
        Value::Object(m)
    };
    let picked = match v {
        Value::Array(items) => Value::Array(items.iter().map(only).collect()),
        other => only(other),
    };
    match (out.get_mut(attr.name), picked) {
        (Some(Value::Array(have)), Value::Array(new)) => {
            for (h, n) in have.iter_mut().zip(new) {
                if let (Some(h), Value::Object(n)) = (h.as_object_mut(), n) {
                    h.extend(n);
                }
            }
        }
        (Some(Value::Object(have)), Value::Object(new)) => have.extend(new),
        (_, picked) => {
            out.insert(attr.name.to_owned(), picked);
        }
    }
}

fn exclude(out: &mut Map<String, Value>, r: &Resolved) {
    match r {
        Resolved::Extension(ext) => {
            remove_ci(out, ext.id);
        }
        Resolved::Attribute {
            extension,
            attr,
            sub,
        } => {
            if ALWAYS.iter().any(|a| a.eq_ignore_ascii_case(attr.name))
                || attr.returned == Returned::Always
            {
                return;
            }
            let container = match extension {
                None => Some(&mut *out),
                Some(ext) => {
                    crate::json_keys::get_ci_mut(out, ext.id).and_then(Value::as_object_mut)
                }
            };
            let Some(container) = container else { return };
            match sub {
                None => {
                    remove_ci(container, attr.name);
                }
                Some(sub) => match crate::json_keys::get_ci_mut(container, attr.name) {
                    Some(Value::Array(items)) => {
                        for item in items.iter_mut().filter_map(Value::as_object_mut) {
                            remove_ci(item, sub.name);
                        }
                    }
                    Some(Value::Object(obj)) => {
                        remove_ci(obj, sub.name);
                    }
                    _ => {}
                },
            }
            if let Some(ext) = extension
                && crate::json_keys::get_ci(out, ext.id).is_some_and(is_unassigned)
            {
                remove_ci(out, ext.id);
            }
        }
    }
}

fn drop_never_returned(out: &mut Map<String, Value>, rt: &ResourceType) {
    for attr in rt
        .schema
        .attributes
        .iter()
        .filter(|a| a.returned == Returned::Never)
    {
        remove_ci(out, attr.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{GROUP, USER};
    use serde_json::json;

    const EXT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", EXT],
            "id": "u-1", "meta": {"resourceType": "User"},
            "userName": "b", "displayName": "B", "title": "T",
            "emails": [{"value": "a@x", "type": "work"}, {"value": "b@x", "type": "home"}],
            EXT: {"department": "S", "employeeNumber": "7"}
        })
    }

    fn project(attrs: Option<&str>, excl: Option<&str>) -> Value {
        Projection::from_params(attrs, excl, &USER)
            .unwrap()
            .apply(&user(), &USER)
    }

    #[test]
    fn attributes_keeps_the_named_and_the_always_returned() {
        let out = project(Some("displayName,emails.value"), None);
        assert_eq!(
            out,
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", EXT],
                "id": "u-1", "meta": {"resourceType": "User"},
                "displayName": "B",
                "emails": [{"value": "a@x"}, {"value": "b@x"}]
            })
        );
        let out = project(
            Some(&format!("{EXT}:department,emails.type,EMAILS.value")),
            None,
        );
        assert_eq!(out[EXT], json!({"department": "S"}));
        assert_eq!(
            out["emails"],
            json!([{"type": "work", "value": "a@x"}, {"type": "home", "value": "b@x"}])
        );
    }

    #[test]
    fn excluded_attributes_cannot_remove_id_schemas_or_meta() {
        let out = project(None, Some("id,meta,schemas,emails,title"));
        assert_eq!(out["id"], "u-1");
        assert!(out.get("meta").is_some() && out.get("schemas").is_some());
        assert!(out.get("emails").is_none() && out.get("title").is_none());
        assert_eq!(out["displayName"], "B");
        let out = project(
            None,
            Some(&format!("{EXT}:department,{EXT}:employeeNumber")),
        );
        assert!(out.get(EXT).is_none());
        let group = json!({"id": "g", "displayName": "S", "members": [{"value": "u"}]});
        let out = Projection::from_params(None, Some("members"), &GROUP)
            .unwrap()
            .apply(&group, &GROUP);
        assert_eq!(out, json!({"id": "g", "displayName": "S"}));
    }

    #[test]
    fn unknown_names_are_errors_naming_the_parameter() {
        let e = Projection::from_params(Some("nickname2"), None, &USER).unwrap_err();
        assert!(
            e.detail.contains("'attributes'") && e.detail.contains("nickname2"),
            "{}",
            e.detail
        );
        let e = Projection::from_params(None, Some("emails.nope"), &USER).unwrap_err();
        assert!(e.detail.contains("'excludedAttributes'"), "{}", e.detail);
    }
}
