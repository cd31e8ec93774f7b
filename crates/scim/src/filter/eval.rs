//! Evaluating a filter against a resource's JSON.
//!
//! Rules (RFC 7644 §3.4.2.2): a comparison on a multi-valued attribute holds if it holds for
//! any value; a complex attribute named without a sub-attribute compares its `value`
//! sub-attribute; strings compare case-insensitively unless the attribute is `caseExact`;
//! `eq null` holds when the attribute is unassigned; `ne` is the negation of `eq`; ordering and
//! substring operators on booleans are an `invalidFilter` error. `dateTime` values compare as
//! strings, which orders them correctly because the service writes every timestamp in one
//! format (UTC, `Z`, fixed fraction) and clients filter with values copied from `meta`.

use serde_json::{Map, Value};

use super::{CompValue, CompareOp, Filter};
use crate::attr_path::AttrPath;
use crate::error::ScimError;
use crate::json_keys::{get_ci, is_unassigned};
use crate::schema::{AttrType, Attribute, Resolved, ResourceType};

/// Whether `resource` (a User or Group as JSON) matches `filter`.
pub fn matches(filter: &Filter, resource: &Value, rt: &ResourceType) -> Result<bool, ScimError> {
    let Some(root) = resource.as_object() else {
        return Ok(false);
    };
    eval(filter, &Scope::Resource { root, rt })
}

/// Whether one value of the complex attribute `attr` matches a value filter (the part inside
/// `attr[...]`); PATCH uses it to select the values a path like `members[value eq "x"]` names.
pub(crate) fn matches_value(
    filter: &Filter,
    elem: &Value,
    attr: &'static Attribute,
) -> Result<bool, ScimError> {
    eval(filter, &Scope::Element { elem, attr })
}

/// Where paths are resolved: a whole resource, or one value inside `attr[...]`.
enum Scope<'a> {
    Resource {
        root: &'a Map<String, Value>,
        rt: &'a ResourceType,
    },
    Element {
        elem: &'a Value,
        attr: &'static Attribute,
    },
}

fn eval(filter: &Filter, scope: &Scope<'_>) -> Result<bool, ScimError> {
    match filter {
        Filter::And(a, b) => Ok(eval(a, scope)? && eval(b, scope)?),
        Filter::Or(a, b) => Ok(eval(a, scope)? || eval(b, scope)?),
        Filter::Not(a) => Ok(!eval(a, scope)?),
        Filter::Present(path) => Ok(leaves(path, scope)?
            .0
            .iter()
            .any(|v| !is_unassigned(v) && *v != &Value::String(String::new()))),
        Filter::Compare(path, op, value) => {
            let (values, leaf) = leaves(path, scope)?;
            compare_any(&values, leaf, *op, value, path)
        }
        Filter::ValuePath(path, inner) => {
            let Scope::Resource { .. } = scope else {
                return Err(ScimError::invalid_filter(0, "value paths cannot be nested"));
            };
            let (attr, container) = attribute_in(path, scope)?;
            if attr.ty != AttrType::Complex {
                return Err(ScimError::typed(
                    crate::ScimType::InvalidFilter,
                    format!(
                        "'{}' is not complex, so it cannot take a value filter",
                        attr.name
                    ),
                ));
            }
            let Some(v) = container.and_then(|c| get_ci(c, attr.name)) else {
                return Ok(false);
            };
            let elems: Vec<&Value> = match v {
                Value::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            for elem in elems {
                if eval(inner, &Scope::Element { elem, attr })? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
    }
}

/// The attribute a path names in `scope` (ignoring its sub-attribute) and the object holding it.
/// An attribute's definition and the object that holds it (`None` if that object is absent).
type Located<'a> = (&'static Attribute, Option<&'a Map<String, Value>>);

fn attribute_in<'a>(path: &AttrPath, scope: &Scope<'a>) -> Result<Located<'a>, ScimError> {
    let unknown = |msg: String| ScimError::typed(crate::ScimType::InvalidFilter, msg);
    match scope {
        Scope::Resource { root, rt } => match rt.resolve(path).map_err(unknown)? {
            Resolved::Extension(s) => {
                Err(unknown(format!("'{}' is a schema, not an attribute", s.id)))
            }
            Resolved::Attribute {
                extension: None,
                attr,
                ..
            } => Ok((attr, Some(*root))),
            Resolved::Attribute {
                extension: Some(ext),
                attr,
                ..
            } => Ok((attr, get_ci(root, ext.id).and_then(Value::as_object))),
        },
        Scope::Element { elem, attr: parent } => {
            if path.urn.is_some() || path.sub.is_some() {
                return Err(unknown(format!(
                    "'{path}' inside '{}[...]' must be a sub-attribute name",
                    parent.name
                )));
            }
            let attr = parent.sub(&path.name).ok_or_else(|| {
                unknown(format!(
                    "'{}' has no sub-attribute '{}'",
                    parent.name, path.name
                ))
            })?;
            Ok((attr, elem.as_object()))
        }
    }
}

/// The values a path reaches, flattened over multi-valued attributes, and the attribute that
/// describes them.
fn leaves<'a>(
    path: &AttrPath,
    scope: &Scope<'a>,
) -> Result<(Vec<&'a Value>, &'static Attribute), ScimError> {
    let (attr, container) = attribute_in(path, scope)?;
    let sub = match (scope, &path.sub) {
        (Scope::Resource { .. }, Some(s)) => attr.sub(s),
        _ => None,
    };
    let mut out = Vec::new();
    let Some(v) = container.and_then(|c| get_ci(c, attr.name)) else {
        return Ok((out, sub.unwrap_or(attr)));
    };
    let items: Vec<&Value> = match v {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    // A complex attribute compared as a whole compares its `value` (RFC 7644 §3.4.2.2).
    let descend = sub.or_else(|| {
        if attr.ty == AttrType::Complex {
            attr.sub("value")
        } else {
            None
        }
    });
    for item in items {
        match descend {
            Some(s) => {
                if let Some(x) = item.as_object().and_then(|o| get_ci(o, s.name)) {
                    out.push(x);
                }
            }
            None => out.push(item),
        }
    }
    Ok((out, descend.unwrap_or(attr)))
}

fn compare_any(
    values: &[&Value],
    attr: &Attribute,
    op: CompareOp,
    lit: &CompValue,
    path: &AttrPath,
) -> Result<bool, ScimError> {
    let present: Vec<&Value> = values.iter().copied().filter(|v| !v.is_null()).collect();
    if let CompValue::Null = lit {
        return match op {
            CompareOp::Eq => Ok(present.is_empty()),
            CompareOp::Ne => Ok(!present.is_empty()),
            _ => Err(ScimError::typed(
                crate::ScimType::InvalidFilter,
                format!("'{path}': only eq and ne compare with null"),
            )),
        };
    }
    if attr.ty == AttrType::Boolean && !matches!(op, CompareOp::Eq | CompareOp::Ne) {
        return Err(ScimError::typed(
            crate::ScimType::InvalidFilter,
            format!("'{path}' is boolean: only eq, ne and pr apply"),
        ));
    }
    if op == CompareOp::Ne {
        return Ok(!present
            .iter()
            .any(|v| compare_one(v, attr, CompareOp::Eq, lit)));
    }
    Ok(present.iter().any(|v| compare_one(v, attr, op, lit)))
}

fn compare_one(v: &Value, attr: &Attribute, op: CompareOp, lit: &CompValue) -> bool {
    use std::cmp::Ordering;
    let ordering: Option<Ordering> = match (v, lit) {
        (Value::Bool(a), CompValue::Bool(b)) => return op == CompareOp::Eq && a == b,
        (Value::Number(a), CompValue::Number(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b)) => a.partial_cmp(&b),
            _ => None,
        },
        (Value::String(a), CompValue::Str(b)) => {
            let (a, b) = if attr.case_exact {
                (a.clone(), b.clone())
            } else {
                (a.to_lowercase(), b.to_lowercase())
            };
            match op {
                CompareOp::Co => return a.contains(&b),
                CompareOp::Sw => return a.starts_with(&b),
                CompareOp::Ew => return a.ends_with(&b),
                _ => Some(a.cmp(&b)),
            }
        }
        _ => None,
    };
    let Some(ord) = ordering else {
        return false;
    };
    match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Le => ord != Ordering::Greater,
        // Substring operators on numbers, and `ne` (handled by the caller), do not reach here.
        CompareOp::Ne | CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::parse_filter;
    use crate::schema::{GROUP, USER};
    use serde_json::json;

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "id": "u-1",
            "externalId": "EXT-1",
            "userName": "Bjensen@Example.com",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "displayName": "Babs Jensen",
            "active": true,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "meta": {"resourceType": "User", "lastModified": "2026-12-07T10:00:00.000Z"},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "701984", "department": "Sales/East",
                "manager": {"value": "u-9"}
            }
        })
    }

    fn m(text: &str) -> bool {
        let f = parse_filter(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        matches(&f, &user(), &USER).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn string_operators_fold_case_unless_case_exact() {
        assert!(m(r#"userName eq "bjensen@example.com""#));
        assert!(m(r#"USERNAME Eq "BJENSEN@EXAMPLE.COM""#));
        assert!(
            m(r#"userName sw "bjen""#) && m(r#"userName ew ".COM""#) && m(r#"userName co "@exa""#)
        );
        assert!(!m(r#"userName ne "bjensen@example.com""#));
        // externalId and id are caseExact.
        assert!(m(r#"externalId eq "EXT-1""#));
        assert!(!m(r#"externalId eq "ext-1""#));
        assert!(m(r#"displayName gt "Babs A" and displayName lt "Babs K""#));
    }

    #[test]
    fn multi_valued_sub_attributes_and_value_paths() {
        assert!(m(r#"emails.value eq "babs@jensen.org""#));
        assert!(m(r#"emails eq "babs@jensen.org""#));
        assert!(m(r#"emails[type eq "work" and value co "example"]"#));
        assert!(!m(r#"emails[type eq "home" and value co "example"]"#));
        assert!(m(r#"emails.type ne "other""#));
        assert!(m(r#"emails[primary eq true]"#));
    }

    #[test]
    fn presence_null_booleans_and_logic() {
        assert!(m("title eq null") && !m("title pr") && m("name.givenName pr"));
        assert!(m("active eq true") && !m("active eq false"));
        assert!(m(
            r#"not (userName eq "x") and (title pr or active eq true)"#
        ));
        let e = matches(&parse_filter("active gt true").unwrap(), &user(), &USER).unwrap_err();
        assert_eq!(e.scim_type, Some(crate::ScimType::InvalidFilter));
    }

    #[test]
    fn extension_attributes_by_urn() {
        assert!(m(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#
        ));
        assert!(m(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "u-9""#
        ));
        assert!(m(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName pr"#
        ));
        assert!(m(r#"meta.lastModified gt "2026-12-07T09:59:59.000Z""#));
    }

    #[test]
    fn unknown_attributes_are_invalid_filters_naming_them() {
        let e = matches(
            &parse_filter(r#"nickname2 eq "x""#).unwrap(),
            &user(),
            &USER,
        )
        .unwrap_err();
        assert!(e.detail.contains("nickname2"), "{}", e.detail);
        let group = json!({"displayName": "Sales", "members": [{"value": "u-1"}]});
        let f = parse_filter(r#"members[value eq "u-1"]"#).unwrap();
        assert!(matches(&f, &group, &GROUP).unwrap());
        let f = parse_filter(r#"members.value eq "u-2""#).unwrap();
        assert!(!matches(&f, &group, &GROUP).unwrap());
    }
}
