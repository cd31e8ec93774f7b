//! Bringing a client's value into the shape the attribute's definition says, accepting the
//! deviations of real clients and rejecting the rest as `invalidValue` naming the path.
//!
//! Accepted deviations, each seen from a production client:
//! - booleans as the strings `"True"`/`"False"` (any case): Microsoft Entra ID's PATCH values;
//! - a single-valued attribute sent as a one-element array of `{"$ref": null, "value": x}`:
//!   Entra ID's older ("customappsso") job;
//! - a complex reference attribute (`manager`, our `parent`) sent as the bare id string, or as
//!   `{"value": id}`: Entra ID sends the manager both ways depending on the job's flags.
//!
//! `null` members inside objects are dropped: null means unassigned (RFC 7643 §2.5).

use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::json_keys::{get_ci, set_ci};
use crate::schema::{AttrType, Attribute};

/// The value for the whole attribute: an array for a multi-valued one.
pub(crate) fn coerce(value: &Value, attr: &Attribute, what: &str) -> Result<Value, ScimError> {
    if !attr.multi_valued {
        return coerce_one(value, attr, what);
    }
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let v = coerce_one(item, attr, what)?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(Value::Array(out))
}

/// One value of the attribute (an element, for a multi-valued one).
pub(crate) fn coerce_one(value: &Value, attr: &Attribute, what: &str) -> Result<Value, ScimError> {
    let value = match value {
        Value::Array(items) if items.len() == 1 && !attr.multi_valued => &items[0],
        other => other,
    };
    if value.is_null() {
        return Ok(Value::Null);
    }
    if attr.ty == AttrType::Complex {
        return coerce_complex(value, attr, what);
    }
    // `{"$ref": null, "value": x}` for a simple attribute carries x.
    let value = match value {
        Value::Object(o) => get_ci(o, "value").unwrap_or(value),
        other => other,
    };
    let ok = match (attr.ty, value) {
        (AttrType::Boolean, Value::Bool(_)) => true,
        (AttrType::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("true") => {
            return Ok(Value::Bool(true));
        }
        (AttrType::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("false") => {
            return Ok(Value::Bool(false));
        }
        (AttrType::Integer, Value::Number(n)) => n.is_i64() || n.is_u64(),
        (AttrType::Decimal, Value::Number(_)) => true,
        (
            AttrType::String | AttrType::Reference | AttrType::DateTime | AttrType::Binary,
            Value::String(_),
        ) => true,
        _ => false,
    };
    if ok {
        Ok(value.clone())
    } else {
        Err(ScimError::invalid_value(format!(
            "'{what}' must be {}, got {}",
            type_name(attr.ty),
            short(value)
        )))
    }
}

fn coerce_complex(value: &Value, attr: &Attribute, what: &str) -> Result<Value, ScimError> {
    match value {
        Value::String(_) | Value::Number(_) if attr.sub("value").is_some() => {
            let mut m = Map::new();
            m.insert("value".into(), value.clone());
            Ok(Value::Object(m))
        }
        Value::Object(o) => {
            let mut out = Map::new();
            for (k, v) in o {
                match attr.sub(k) {
                    Some(sub) => {
                        let c = coerce_one(v, sub, &format!("{what}.{}", sub.name))?;
                        if !c.is_null() {
                            set_ci(&mut out, sub.name, c);
                        }
                    }
                    // Sub-attributes we do not publish (e.g. `display`) are kept as sent.
                    None if !v.is_null() => {
                        out.insert(k.clone(), v.clone());
                    }
                    None => {}
                }
            }
            Ok(Value::Object(out))
        }
        other => Err(ScimError::invalid_value(format!(
            "'{what}' must be an object, got {}",
            short(other)
        ))),
    }
}

fn type_name(t: AttrType) -> &'static str {
    match t {
        AttrType::Boolean => "a boolean",
        AttrType::Integer => "an integer",
        AttrType::Decimal => "a number",
        AttrType::Complex => "an object",
        _ => "a string",
    }
}

/// The value for an error message, cut short so a large body does not flood the answer.
fn short(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ENTERPRISE_USER_SCHEMA, USER_SCHEMA};
    use serde_json::json;

    fn attr(name: &str) -> &'static Attribute {
        USER_SCHEMA
            .attribute(name)
            .or_else(|| ENTERPRISE_USER_SCHEMA.attribute(name))
            .unwrap()
    }

    #[test]
    fn entra_boolean_strings_become_booleans() {
        assert_eq!(
            coerce(&json!("False"), attr("active"), "active").unwrap(),
            json!(false)
        );
        assert_eq!(
            coerce(&json!("TRUE"), attr("active"), "active").unwrap(),
            json!(true)
        );
        let e = coerce(&json!("yes"), attr("active"), "active").unwrap_err();
        assert!(
            e.detail.contains("'active' must be a boolean"),
            "{}",
            e.detail
        );
        let emails = coerce(
            &json!([{"value": "a@b.c", "primary": "True"}]),
            attr("emails"),
            "emails",
        )
        .unwrap();
        assert_eq!(emails, json!([{"value": "a@b.c", "primary": true}]));
    }

    #[test]
    fn entra_legacy_array_wrapping_is_unwrapped() {
        let v = coerce(
            &json!([{"$ref": null, "value": "Babs"}]),
            attr("displayName"),
            "displayName",
        )
        .unwrap();
        assert_eq!(v, json!("Babs"));
    }

    #[test]
    fn manager_as_string_object_or_legacy_array() {
        for sent in [
            json!("u-9"),
            json!({"value": "u-9"}),
            json!([{"$ref": null, "value": "u-9"}]),
        ] {
            assert_eq!(
                coerce(&sent, attr("manager"), "manager").unwrap(),
                json!({"value": "u-9"}),
                "{sent}"
            );
        }
    }

    #[test]
    fn wrong_types_are_invalid_value_naming_the_path() {
        let e = coerce(&json!(12), attr("userName"), "userName").unwrap_err();
        assert_eq!(e.scim_type, Some(crate::ScimType::InvalidValue));
        assert!(
            e.detail.contains("'userName' must be a string"),
            "{}",
            e.detail
        );
        let e = coerce(&json!([{"value": 5}]), attr("emails"), "emails").unwrap_err();
        assert!(e.detail.contains("emails.value"), "{}", e.detail);
    }
}
