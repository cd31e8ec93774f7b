//! Applying PATCH operations to a resource's JSON (RFC 7644 §3.5.2): resolving each path to a
//! target, checking mutability, then dispatching on the target's shape. Multi-valued targets
//! (with or without a value filter) are in [`super::multi`].
//!
//! The whole request applies to a copy and either all of it succeeds or the first failing
//! operation's error is returned (prefixed with `Operations[i]`), so a failed PATCH changes
//! nothing, as §3.5.2 requires.

use serde_json::{Map, Value};

use super::coerce::{coerce, coerce_one};
use super::multi::{apply_filtered, apply_multi, apply_to_every_sub};
use super::path::PatchPath;
use super::request::{OpKind, Operation};
use crate::error::ScimError;
use crate::filter::Filter;
use crate::json_keys::{get_ci, get_ci_mut, remove_ci, set_ci};
use crate::schema::{Attribute, Mutability, Resolved, ResourceType, Schema};

/// What a path designates, resolved against the resource type.
pub(crate) enum Target {
    /// A whole extension object.
    Extension(&'static Schema),
    Attr {
        ext: Option<&'static Schema>,
        attr: &'static Attribute,
        filter: Option<Filter>,
        sub: Option<&'static Attribute>,
        /// The path as the client wrote it, for messages.
        text: String,
    },
}

/// Applies `ops` in order to a copy of `resource`; returns the new resource.
pub fn apply_operations(
    resource: &Value,
    ops: &[Operation],
    rt: &ResourceType,
) -> Result<Value, ScimError> {
    let mut root = resource
        .as_object()
        .cloned()
        .ok_or_else(|| ScimError::invalid_syntax("the resource to patch is not an object"))?;
    for (i, op) in ops.iter().enumerate() {
        apply_one(&mut root, op, rt).map_err(|e| ScimError {
            detail: format!("Operations[{i}]: {}", e.detail),
            ..e
        })?;
    }
    Ok(Value::Object(root))
}

fn apply_one(
    root: &mut Map<String, Value>,
    op: &Operation,
    rt: &ResourceType,
) -> Result<(), ScimError> {
    let null = Value::Null;
    let value = op.value.as_ref().unwrap_or(&null);
    match &op.path {
        Some(path) => {
            let target = resolve_target(path, &path_text(path), rt)?;
            apply_at(root, op.op, &target, value)
        }
        None if op.op == OpKind::Remove => Err(ScimError::no_target("remove needs a path")),
        // Without a path the value is a partial resource: each member is an attribute path
        // (Okta sends `{"active": false}`, Entra ID `{"name.givenName": ..., "urn:...:employeeNumber": ...}`).
        None => {
            let obj = value.as_object().ok_or_else(|| {
                ScimError::invalid_value(format!(
                    "{:?} without a path needs an object value",
                    op.op
                ))
            })?;
            for (key, v) in obj {
                if key.eq_ignore_ascii_case("schemas") {
                    continue;
                }
                let path = PatchPath::parse(key)?;
                let target = resolve_target(&path, key, rt)?;
                apply_at(root, op.op, &target, v)?;
            }
            Ok(())
        }
    }
}

fn path_text(p: &PatchPath) -> String {
    let mut s = p.attr.to_string();
    if let Some(f) = &p.filter {
        s.push_str(&format!("[{f}]"));
    }
    if let Some(sub) = &p.sub_after_filter {
        s.push('.');
        s.push_str(sub);
    }
    s
}

pub(crate) fn resolve_target(
    path: &PatchPath,
    text: &str,
    rt: &ResourceType,
) -> Result<Target, ScimError> {
    let bad = |msg: String| ScimError::invalid_path(format!("path '{text}': {msg}"));
    match rt.resolve(&path.attr).map_err(bad)? {
        Resolved::Extension(ext) if path.filter.is_none() => Ok(Target::Extension(ext)),
        Resolved::Extension(ext) => Err(bad(format!(
            "'{}' is a schema, not a multi-valued attribute",
            ext.id
        ))),
        Resolved::Attribute {
            extension,
            attr,
            sub,
        } => {
            let sub = match (&path.sub_after_filter, sub) {
                (Some(name), _) => Some(attr.sub(name).ok_or_else(|| {
                    bad(format!("'{}' has no sub-attribute '{name}'", attr.name))
                })?),
                (None, sub) => sub,
            };
            if path.filter.is_some() && (!attr.multi_valued || attr.sub_attributes.is_empty()) {
                return Err(bad(format!(
                    "'{}' is not a multi-valued complex attribute",
                    attr.name
                )));
            }
            Ok(Target::Attr {
                ext: extension,
                attr,
                filter: path.filter.clone(),
                sub,
                text: text.to_owned(),
            })
        }
    }
}

/// Applies one operation at a resolved target.
pub(crate) fn apply_at(
    root: &mut Map<String, Value>,
    kind: OpKind,
    target: &Target,
    value: &Value,
) -> Result<(), ScimError> {
    match target {
        Target::Extension(ext) => apply_extension(root, kind, ext, value),
        Target::Attr {
            ext: None,
            attr,
            filter,
            sub,
            text,
        } => {
            check_mutability(root, kind, attr, filter.as_ref(), *sub, value, text)?;
            apply_in(root, kind, attr, filter.as_ref(), *sub, value, text)
        }
        Target::Attr {
            ext: Some(ext),
            attr,
            filter,
            sub,
            text,
        } => {
            // Work on the extension object out of the resource, and put it back only if it
            // still holds something, keeping `schemas` in step.
            let mut obj = match remove_ci(root, ext.id) {
                Some(Value::Object(o)) => o,
                _ => Map::new(),
            };
            let result = check_mutability(&obj, kind, attr, filter.as_ref(), *sub, value, text)
                .and_then(|()| apply_in(&mut obj, kind, attr, filter.as_ref(), *sub, value, text));
            put_extension(root, ext, obj);
            result
        }
    }
}

fn apply_extension(
    root: &mut Map<String, Value>,
    kind: OpKind,
    ext: &'static Schema,
    value: &Value,
) -> Result<(), ScimError> {
    if kind == OpKind::Remove {
        remove_ci(root, ext.id);
        put_extension(root, ext, Map::new());
        return Ok(());
    }
    let obj = value
        .as_object()
        .ok_or_else(|| ScimError::invalid_value(format!("'{}' must be an object", ext.id)))?;
    for (key, v) in obj {
        // scim2-tester (pydantic models) serialises an extension object with its own `schemas`.
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        let attr = ext.attribute(key).ok_or_else(|| {
            ScimError::invalid_path(format!("'{}' has no attribute '{key}'", ext.id))
        })?;
        let target = Target::Attr {
            ext: Some(ext),
            attr,
            filter: None,
            sub: None,
            text: format!("{}:{}", ext.id, attr.name),
        };
        apply_at(root, kind, &target, v)?;
    }
    Ok(())
}

/// Puts an extension object back (if non-empty) and lists or unlists its URN in `schemas`.
fn put_extension(root: &mut Map<String, Value>, ext: &'static Schema, obj: Map<String, Value>) {
    let present = !obj.is_empty();
    if present {
        set_ci(root, ext.id, Value::Object(obj));
    }
    let schemas = match get_ci_mut(root, "schemas") {
        Some(Value::Array(a)) => a,
        _ => return,
    };
    let listed = schemas
        .iter()
        .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(ext.id)));
    if present && !listed {
        schemas.push(Value::String(ext.id.to_owned()));
    } else if !present && listed {
        schemas.retain(|s| !s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(ext.id)));
    }
}

/// readOnly targets may only be "written" with the value they already hold (clients echo
/// `id` or `meta` back); immutable ones may be set once and never removed or changed; required
/// ones may not be removed.
fn check_mutability(
    container: &Map<String, Value>,
    kind: OpKind,
    attr: &Attribute,
    filter: Option<&Filter>,
    sub: Option<&Attribute>,
    value: &Value,
    text: &str,
) -> Result<(), ScimError> {
    let whole = filter.is_none() && sub.is_none();
    let current = get_ci(container, attr.name);
    let unchanged =
        || whole && kind != OpKind::Remove && coerce(value, attr, text).ok().as_ref() == current;
    let effective = sub
        .map(|s| s.mutability)
        .filter(|_| !whole)
        .unwrap_or(attr.mutability);
    let name = sub
        .map(|s| format!("{}.{}", attr.name, s.name))
        .unwrap_or_else(|| attr.name.to_owned());
    match effective {
        Mutability::ReadOnly if !unchanged() => {
            Err(ScimError::mutability(format!("'{name}' is readOnly")))
        }
        Mutability::Immutable => {
            let unset = current.is_none_or(crate::json_keys::is_unassigned);
            if kind == OpKind::Remove || !((unset && whole) || unchanged()) {
                Err(ScimError::mutability(format!("'{name}' is immutable")))
            } else {
                Ok(())
            }
        }
        _ if kind == OpKind::Remove && whole && attr.required => Err(ScimError::invalid_value(
            format!("'{name}' is required and cannot be removed"),
        )),
        _ => Ok(()),
    }
}

/// Dispatches on the target's shape inside its container (the resource or an extension object).
fn apply_in(
    container: &mut Map<String, Value>,
    kind: OpKind,
    attr: &'static Attribute,
    filter: Option<&Filter>,
    sub: Option<&'static Attribute>,
    value: &Value,
    text: &str,
) -> Result<(), ScimError> {
    match (filter, attr.multi_valued, sub) {
        (Some(f), _, _) => apply_filtered(container, kind, attr, f, sub, value, text),
        (None, true, Some(sub)) => apply_to_every_sub(container, kind, attr, sub, value, text),
        (None, true, None) => apply_multi(container, kind, attr, value, text),
        (None, false, Some(sub)) => apply_sub(container, kind, attr, sub, value, text),
        (None, false, None) => apply_single(container, kind, attr, value, text),
    }
}

/// A single-valued attribute as a whole. Replacing a complex one merges the given
/// sub-attributes and leaves the others (RFC 7644 §3.5.2.3); adding one does the same.
fn apply_single(
    container: &mut Map<String, Value>,
    kind: OpKind,
    attr: &Attribute,
    value: &Value,
    text: &str,
) -> Result<(), ScimError> {
    if kind == OpKind::Remove {
        remove_ci(container, attr.name);
        return Ok(());
    }
    let v = coerce(value, attr, text)?;
    match (v, get_ci_mut(container, attr.name)) {
        (Value::Null, _) => {
            if kind == OpKind::Replace {
                remove_ci(container, attr.name);
            }
        }
        (Value::Object(new), Some(Value::Object(old))) => {
            for (k, v) in new {
                set_ci(old, &k, v);
            }
        }
        (v, _) => set_ci(container, attr.name, v),
    }
    Ok(())
}

/// A sub-attribute of a single-valued complex attribute, e.g. `name.givenName`.
fn apply_sub(
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
    if v.is_null() {
        if let Some(Value::Object(obj)) = get_ci_mut(container, attr.name) {
            remove_ci(obj, sub.name);
            if obj.is_empty() {
                remove_ci(container, attr.name);
            }
        }
        return Ok(());
    }
    match get_ci_mut(container, attr.name) {
        Some(Value::Object(obj)) => set_ci(obj, sub.name, v),
        _ => {
            let mut obj = Map::new();
            obj.insert(sub.name.to_owned(), v);
            set_ci(container, attr.name, Value::Object(obj));
        }
    }
    Ok(())
}
