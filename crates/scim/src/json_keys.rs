//! Case-insensitive member lookup in JSON objects.
//!
//! SCIM attribute names are case-insensitive (RFC 7643 §2.1) but JSON keys are not, so every
//! read and write of a resource goes through these helpers: an exact match first (the common
//! case, and the one that keeps a client's own spelling), then a case-insensitive scan.

use serde_json::{Map, Value};

/// The key actually present in `map` that matches `name`.
pub fn key_ci(map: &Map<String, Value>, name: &str) -> Option<String> {
    if map.contains_key(name) {
        return Some(name.to_owned());
    }
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

/// The member called `name`, any case.
pub fn get_ci<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    match map.get(name) {
        Some(v) => Some(v),
        None => map
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v),
    }
}

/// The member called `name`, any case, mutably.
pub fn get_ci_mut<'a>(map: &'a mut Map<String, Value>, name: &str) -> Option<&'a mut Value> {
    let key = key_ci(map, name)?;
    map.get_mut(&key)
}

/// Removes the member called `name`, any case; returns its value.
pub fn remove_ci(map: &mut Map<String, Value>, name: &str) -> Option<Value> {
    let key = key_ci(map, name)?;
    map.remove(&key)
}

/// Sets `name` to `value`, replacing a member spelled in another case; the schema's spelling
/// `name` wins, so responses use canonical names.
pub fn set_ci(map: &mut Map<String, Value>, name: &str, value: Value) {
    if let Some(old) = key_ci(map, name).filter(|k| k != name) {
        map.remove(&old);
    }
    map.insert(name.to_owned(), value);
}

/// Whether a value counts as unassigned (RFC 7643 §2.5): null, or an empty array or object.
pub fn is_unassigned(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lookups_ignore_case_and_set_uses_the_schema_spelling() {
        let Value::Object(mut m) = json!({"UserName": "a", "active": true}) else {
            unreachable!()
        };
        assert_eq!(get_ci(&m, "username"), Some(&json!("a")));
        set_ci(&mut m, "userName", json!("b"));
        assert_eq!(m.get("userName"), Some(&json!("b")));
        assert!(!m.contains_key("UserName"));
        assert_eq!(remove_ci(&mut m, "ACTIVE"), Some(json!(true)));
        assert!(m.is_empty() || m.len() == 1);
    }
}
