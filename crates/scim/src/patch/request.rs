//! Reading a `PatchOp` request body (RFC 7644 §3.5.2) as real clients send it.
//!
//! Leniencies, each for a client that needs it: `op` is case-insensitive (Entra ID sends
//! `"Replace"`, `"Add"`, `"Remove"`); the `Operations` member is found in any case; a missing
//! `schemas` member is tolerated (the operations say what the body is). Anything else malformed
//! is `invalidSyntax` naming the operation's index.

use serde_json::Value;

use super::path::PatchPath;
use crate::error::ScimError;
use crate::json_keys::get_ci;

/// The `PatchOp` message schema URN.
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// The three PATCH operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Add,
    Remove,
    Replace,
}

/// One operation of a `PatchOp`.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub op: OpKind,
    pub path: Option<PatchPath>,
    pub value: Option<Value>,
}

/// Parses a `PatchOp` body into its operations, in order.
pub fn parse_patch_request(body: &Value) -> Result<Vec<Operation>, ScimError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("a PATCH body must be a PatchOp object"))?;
    if let Some(schemas) = get_ci(obj, "schemas") {
        let ok = schemas.as_array().is_some_and(|a| {
            a.iter().any(|s| {
                s.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(PATCH_OP_SCHEMA))
            })
        });
        if !ok {
            return Err(ScimError::invalid_syntax(format!(
                "'schemas' must list {PATCH_OP_SCHEMA}"
            )));
        }
    }
    let ops = get_ci(obj, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::invalid_syntax("'Operations' must be an array of operations"))?;
    if ops.is_empty() {
        return Err(ScimError::invalid_syntax("'Operations' is empty"));
    }
    ops.iter()
        .enumerate()
        .map(|(i, op)| parse_operation(i, op))
        .collect()
}

fn parse_operation(i: usize, op: &Value) -> Result<Operation, ScimError> {
    let obj = op
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax(format!("Operations[{i}] must be an object")))?;
    let kind = match get_ci(obj, "op")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("add") => OpKind::Add,
        Some("remove") => OpKind::Remove,
        Some("replace") => OpKind::Replace,
        Some(other) => {
            return Err(ScimError::invalid_syntax(format!(
                "Operations[{i}].op '{other}' is not add, remove or replace"
            )));
        }
        None => {
            return Err(ScimError::invalid_syntax(format!(
                "Operations[{i}].op is missing"
            )));
        }
    };
    let path = match get_ci(obj, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(PatchPath::parse(s.trim()).map_err(|e| ScimError {
            detail: format!("Operations[{i}]: {}", e.detail),
            ..e
        })?),
        Some(_) => {
            return Err(ScimError::invalid_path(format!(
                "Operations[{i}].path must be a string"
            )));
        }
    };
    let value = get_ci(obj, "value").cloned();
    if kind != OpKind::Remove && value.is_none() {
        return Err(ScimError::invalid_value(format!(
            "Operations[{i}]: {kind:?} needs a value"
        )));
    }
    if kind == OpKind::Remove && path.is_none() {
        return Err(ScimError::no_target(format!(
            "Operations[{i}]: remove needs a path"
        )));
    }
    Ok(Operation {
        op: kind,
        path,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ops_are_case_insensitive() {
        let ops = parse_patch_request(&json!({
            "schemas": [PATCH_OP_SCHEMA],
            "Operations": [
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "ADD", "value": {"title": "x"}},
                {"op": "remove", "path": "title"}
            ]
        }))
        .unwrap();
        let kinds: Vec<_> = ops.iter().map(|o| o.op).collect();
        assert_eq!(kinds, [OpKind::Replace, OpKind::Add, OpKind::Remove]);
        assert!(ops[1].path.is_none());
    }

    #[test]
    fn malformed_bodies_name_the_operation() {
        let cases = [
            (json!([]), "PatchOp object"),
            (json!({"Operations": []}), "empty"),
            (
                json!({"schemas": ["x"], "Operations": [{"op": "add", "value": 1}]}),
                "schemas",
            ),
            (
                json!({"Operations": [{"op": "move", "path": "a"}]}),
                "Operations[0].op 'move'",
            ),
            (
                json!({"Operations": [{"op": "add", "path": "a", "value": 1}, {"op": "add", "path": "b"}]}),
                "Operations[1]",
            ),
            (
                json!({"Operations": [{"op": "remove"}]}),
                "remove needs a path",
            ),
            (
                json!({"Operations": [{"op": "add", "path": "a[", "value": 1}]}),
                "Operations[0]",
            ),
        ];
        for (body, needle) in cases {
            let e = parse_patch_request(&body).unwrap_err();
            assert!(e.detail.contains(needle), "{body}: {}", e.detail);
            assert_eq!(e.status, 400);
        }
    }
}
