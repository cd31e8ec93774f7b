//! PATCH on multi-valued attributes: whole lists, value filters (`members[value eq "x"]`,
//! `emails[type eq "work"].value`) and sub-attributes of every value.
//!
//! Choices where RFC 7644 leaves room or real clients need it:
//! - `add` never duplicates: a value equal to one present (for attributes whose `value`
//!   sub-attribute is caseExact, like `members`, the same `value`) is left alone, so replaying a
//!   provisioning run changes nothing.
//! - `add`/`replace` through a filter that matches nothing, when the filter is a conjunction of
//!   `eq` on sub-attributes, creates the value the filter describes: Entra ID sends
//!   `{"op":"Add","path":"emails[type eq \"work\"].value","value":"..."}` to set a work e-mail
//!   the user does not have yet. Any other filter matching nothing is `noTarget`.
//! - `remove` through a filter that matches nothing succeeds and changes nothing (idempotent).
//! - `remove` of a whole multi-valued attribute *with* a value removes only the listed values:
//!   Entra ID removes group members as `{"op":"Remove","path":"members","value":[{"value":"id"}]}`.
//! - A value marked `primary: true` demotes the others (RFC 7643 §2.4: at most one primary).

use serde_json::{Map, Value};

use super::coerce::{coerce, coerce_one};
use super::request::OpKind;
use crate::error::ScimError;
use crate::filter::{CompValue, CompareOp, Filter, matches_value};
use crate::json_keys::{get_ci, get_ci_mut, remove_ci, set_ci};
use crate::schema::Attribute;

/// The attribute's values, taken out of the container (an absent attribute has none).
fn take_items(container: &mut Map<String, Value>, attr: &Attribute) -> Vec<Value> {
    match remove_ci(container, attr.name) {
        Some(Value::Array(items)) => items,
        Some(Value::Null) | None => Vec::new(),
        Some(other) => vec![other],
    }
}

/// Puts the values back; an empty list leaves the attribute unassigned.
fn put_items(container: &mut Map<String, Value>, attr: &Attribute, items: Vec<Value>) {
    if !items.is_empty() {
        container.insert(attr.name.to_owned(), Value::Array(items));
    }
}

/// Whether two values are the same value of `attr` (see the module doc).
fn same_item(a: &Value, b: &Value, attr: &Attribute) -> bool {
    if a == b {
        return true;
    }
    let Some(value_sub) = attr.sub("value").filter(|s| s.case_exact) else {
        return false;
    };
    match (
        a.as_object().and_then(|o| get_ci(o, value_sub.name)),
        b.as_object().and_then(|o| get_ci(o, value_sub.name)),
    ) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

fn is_primary(v: &Value) -> bool {
    v.as_object().and_then(|o| get_ci(o, "primary")) == Some(&Value::Bool(true))
}

/// Sets `primary: false` on every value but the one at `keep` (if any other was primary).
fn demote_primaries(items: &mut [Value], keep: usize) {
    for (i, item) in items.iter_mut().enumerate() {
        if i != keep
            && is_primary(item)
            && let Some(o) = item.as_object_mut()
        {
            set_ci(o, "primary", Value::Bool(false));
        }
    }
}

/// A whole multi-valued attribute (`path: "emails"`, `path: "members"`).
pub(crate) fn apply_multi(
    container: &mut Map<String, Value>,
    kind: OpKind,
    attr: &Attribute,
    value: &Value,
    text: &str,
) -> Result<(), ScimError> {
    let mut items = take_items(container, attr);
    let given = if value.is_null() {
        Vec::new()
    } else {
        as_items(coerce(value, attr, text)?)
    };
    match kind {
        OpKind::Remove if given.is_empty() => items.clear(),
        OpKind::Remove => items.retain(|item| !given.iter().any(|g| same_item(item, g, attr))),
        OpKind::Replace => {
            if given.iter().filter(|v| is_primary(v)).count() > 1 {
                put_items(container, attr, items);
                return Err(ScimError::invalid_value(format!(
                    "'{text}': at most one value may be primary"
                )));
            }
            items = given;
        }
        OpKind::Add => {
            for g in given {
                if !items.iter().any(|item| same_item(item, &g, attr)) {
                    let primary = is_primary(&g);
                    items.push(g);
                    if primary {
                        let last = items.len() - 1;
                        demote_primaries(&mut items, last);
                    }
                }
            }
        }
    }
    put_items(container, attr, items);
    Ok(())
}

fn as_items(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// A sub-attribute of every value, e.g. `emails.type` without a filter.
pub(crate) fn apply_to_every_sub(
    container: &mut Map<String, Value>,
    kind: OpKind,
    attr: &Attribute,
    sub: &Attribute,
    value: &Value,
    text: &str,
) -> Result<(), ScimError> {
    let v = if kind == OpKind::Remove {
        Value::Null
    } else {
        coerce_one(value, sub, text)?
    };
    let Some(Value::Array(items)) = get_ci_mut(container, attr.name) else {
        return match kind {
            OpKind::Remove => Ok(()),
            _ => Err(ScimError::no_target(format!(
                "'{text}': '{}' has no values",
                attr.name
            ))),
        };
    };
    for item in items.iter_mut() {
        if let Some(o) = item.as_object_mut() {
            set_or_remove(o, sub, v.clone());
        }
    }
    Ok(())
}

fn set_or_remove(obj: &mut Map<String, Value>, sub: &Attribute, v: Value) {
    if v.is_null() {
        remove_ci(obj, sub.name);
    } else {
        set_ci(obj, sub.name, v);
    }
}

/// The values a value filter selects, e.g. `members[value eq "x"]` or
/// `emails[type eq "work"].value`.
pub(crate) fn apply_filtered(
    container: &mut Map<String, Value>,
    kind: OpKind,
    attr: &'static Attribute,
    filter: &Filter,
    sub: Option<&'static Attribute>,
    value: &Value,
    text: &str,
) -> Result<(), ScimError> {
    let mut items = take_items(container, attr);
    let result = apply_filtered_items(&mut items, kind, attr, filter, sub, value, text);
    put_items(container, attr, items);
    result
}

fn apply_filtered_items(
    items: &mut Vec<Value>,
    kind: OpKind,
    attr: &'static Attribute,
    filter: &Filter,
    sub: Option<&'static Attribute>,
    value: &Value,
    text: &str,
) -> Result<(), ScimError> {
    let mut selected = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if matches_value(filter, item, attr)
            .map_err(|e| ScimError::invalid_path(format!("'{text}': {}", e.detail)))?
        {
            selected.push(i);
        }
    }
    if kind == OpKind::Remove {
        match sub {
            None => {
                let mut i = 0;
                items.retain(|_| {
                    i += 1;
                    !selected.contains(&(i - 1))
                });
            }
            Some(sub) => {
                for &i in &selected {
                    if let Some(o) = items[i].as_object_mut() {
                        remove_ci(o, sub.name);
                    }
                }
            }
        }
        return Ok(());
    }
    if selected.is_empty() {
        let Some(mut fresh) = element_from_filter(filter, attr) else {
            return Err(ScimError::no_target(format!(
                "'{text}': no value matches the filter"
            )));
        };
        write_into(&mut fresh, OpKind::Add, attr, sub, value, text)?;
        items.push(Value::Object(fresh));
        selected.push(items.len() - 1);
    } else {
        for &i in &selected {
            let Some(obj) = items[i].as_object_mut() else {
                continue;
            };
            write_into(obj, kind, attr, sub, value, text)?;
        }
    }
    if let Some(&last) = selected.iter().rev().find(|&&i| is_primary(&items[i])) {
        demote_primaries(items, last);
    }
    Ok(())
}

/// Writes `value` into one selected element: a sub-attribute, or the element itself (`add`
/// merges, `replace` replaces).
fn write_into(
    obj: &mut Map<String, Value>,
    kind: OpKind,
    attr: &Attribute,
    sub: Option<&Attribute>,
    value: &Value,
    text: &str,
) -> Result<(), ScimError> {
    match sub {
        Some(sub) => {
            let v = coerce_one(value, sub, text)?;
            set_or_remove(obj, sub, v);
        }
        None => {
            let Value::Object(new) = coerce_one(value, attr, text)? else {
                return Err(ScimError::invalid_value(format!(
                    "'{text}' needs an object value"
                )));
            };
            if kind == OpKind::Replace {
                obj.clear();
            }
            for (k, v) in new {
                set_ci(obj, &k, v);
            }
        }
    }
    Ok(())
}

/// The element a filter of `eq` comparisons joined by `and` describes, e.g.
/// `type eq "work"` → `{"type": "work"}`; `None` for any other filter.
fn element_from_filter(filter: &Filter, attr: &Attribute) -> Option<Map<String, Value>> {
    match filter {
        Filter::Compare(path, CompareOp::Eq, lit) if path.urn.is_none() && path.sub.is_none() => {
            let sub = attr.sub(&path.name)?;
            let v = match lit {
                CompValue::Str(s) => Value::String(s.clone()),
                CompValue::Bool(b) => Value::Bool(*b),
                CompValue::Number(n) => Value::Number(n.clone()),
                CompValue::Null => return None,
            };
            let mut m = Map::new();
            m.insert(sub.name.to_owned(), v);
            Some(m)
        }
        Filter::And(a, b) => {
            let mut m = element_from_filter(a, attr)?;
            m.extend(element_from_filter(b, attr)?);
            Some(m)
        }
        _ => None,
    }
}
