//! Request parameters the way DingTalk's TOP gateway reads them.
//!
//! DingTalk takes a parameter from the query string or from the body, and the body may be JSON
//! or `application/x-www-form-urlencoded` (the official curl examples send everything, even
//! `access_token`, as form fields). Numbers sent as strings are accepted, and structured fields
//! (`dept_order_list`, `extension`) arrive as JSON values in a JSON body but as JSON *text* in a
//! form body. [`Params`] merges all of that into one map of `serde_json::Value`s and offers typed
//! accessors that answer the documented "bad parameter" code instead of panicking.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::{Outcome, Rejection};

/// The merged parameters of one request (body fields win over query fields of the same name).
#[derive(Debug, Default, Clone)]
pub struct Params {
    /// Field name to raw value; form and query values are JSON strings.
    values: BTreeMap<String, Value>,
}

/// Why a body could not be read as parameters at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// The body claims to be JSON but is not a JSON object.
    NotJsonObject,
    /// The body is not valid form encoding.
    BadForm,
}

impl Params {
    /// Builds the parameters of a request from its raw query string, content type and body.
    pub fn parse(
        query: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Self, BodyError> {
        let mut values = BTreeMap::new();
        if let Some(query) = query {
            let pairs: Vec<(String, String)> =
                serde_urlencoded::from_str(query).map_err(|_| BodyError::BadForm)?;
            for (k, v) in pairs {
                values.insert(k, Value::String(v));
            }
        }
        let trimmed = body.trim_ascii();
        if !trimmed.is_empty() {
            let is_form = content_type
                .map(|ct| ct.to_ascii_lowercase().contains("x-www-form-urlencoded"))
                .unwrap_or(false);
            if is_form {
                let pairs: Vec<(String, String)> =
                    serde_urlencoded::from_bytes(trimmed).map_err(|_| BodyError::BadForm)?;
                for (k, v) in pairs {
                    values.insert(k, Value::String(v));
                }
            } else {
                // DingTalk reads any non-form body as JSON (clients often omit the header).
                match serde_json::from_slice::<Value>(trimmed) {
                    Ok(Value::Object(map)) => {
                        for (k, v) in map {
                            values.insert(k, v);
                        }
                    }
                    _ => return Err(BodyError::NotJsonObject),
                }
            }
        }
        Ok(Self { values })
    }

    /// Builds parameters from a JSON object (used by the `/_sim` admin routes).
    pub fn from_json(value: Value) -> Result<Self, BodyError> {
        match value {
            Value::Object(map) => Ok(Self {
                values: map.into_iter().collect(),
            }),
            _ => Err(BodyError::NotJsonObject),
        }
    }

    /// Sets one parameter (used when a route carries an id in its path).
    /// The value as given, if any (for renaming a parameter between API generations).
    pub fn raw(&self, name: &str) -> Option<&Value> {
        self.values.get(name).filter(|v| !v.is_null())
    }

    pub fn insert(&mut self, name: &str, value: Value) {
        self.values.insert(name.to_owned(), value);
    }

    /// Whether the parameter is present at all (even empty).
    pub fn has(&self, name: &str) -> bool {
        self.values.get(name).is_some_and(|v| !v.is_null())
    }

    /// A text parameter; numbers and booleans are turned into their text.
    pub fn str(&self, name: &str) -> Option<String> {
        match self.values.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// A required text parameter that must not be empty.
    pub fn req_str(&self, name: &str) -> Outcome<String> {
        match self.str(name) {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(Rejection::param(name)),
        }
    }

    /// An integer parameter, given as a JSON number or as a numeric string.
    pub fn i64(&self, name: &str) -> Outcome<Option<i64>> {
        match self.values.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| Rejection::param(name)),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => s
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| Rejection::param(name)),
            Some(_) => Err(Rejection::param(name)),
        }
    }

    /// A required integer parameter.
    pub fn req_i64(&self, name: &str) -> Outcome<i64> {
        self.i64(name)?.ok_or_else(|| Rejection::param(name))
    }

    /// A boolean parameter: `true`/`false` as JSON or text, or 1/0.
    pub fn bool(&self, name: &str) -> Outcome<Option<bool>> {
        match self.values.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(0) => Ok(Some(false)),
                Some(1) => Ok(Some(true)),
                _ => Err(Rejection::param(name)),
            },
            Some(Value::String(s)) => match s.trim() {
                "true" | "1" => Ok(Some(true)),
                "false" | "0" => Ok(Some(false)),
                "" => Ok(None),
                _ => Err(Rejection::param(name)),
            },
            Some(_) => Err(Rejection::param(name)),
        }
    }

    /// A list DingTalk takes as one comma-separated string ("a,b"), or a single number.
    ///
    /// A JSON array is refused (40035): the documented type is a string, and whether the
    /// gateway would coerce an array is UNCONFIRMED, so the stricter reading is taken.
    pub fn str_list(&self, name: &str) -> Outcome<Option<Vec<String>>> {
        match self.values.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(split_commas(s))),
            Some(Value::Number(n)) => Ok(Some(vec![n.to_string()])),
            Some(_) => Err(Rejection::param(name)),
        }
    }

    /// A list DingTalk takes as a JSON array (`call_back_tag`); a comma string is read too,
    /// since form bodies cannot carry arrays.
    pub fn array_list(&self, name: &str) -> Outcome<Option<Vec<String>>> {
        match self.values.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(split_commas(s))),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.trim().to_owned()),
                    Value::Number(n) => Ok(n.to_string()),
                    _ => Err(Rejection::param(name)),
                })
                .collect::<Outcome<Vec<_>>>()
                .map(|v| Some(v.into_iter().filter(|s| !s.is_empty()).collect())),
            Some(_) => Err(Rejection::param(name)),
        }
    }

    /// A list of integers as DingTalk takes them: "1,2,3" or one number (see [`Params::str_list`]).
    pub fn i64_list(&self, name: &str) -> Outcome<Option<Vec<i64>>> {
        let Some(items) = self.str_list(name)? else {
            return Ok(None);
        };
        items
            .iter()
            .map(|s| s.parse::<i64>().map_err(|_| Rejection::param(name)))
            .collect::<Outcome<Vec<_>>>()
            .map(Some)
    }

    /// A structured parameter: a JSON value, or JSON text (as form bodies carry it).
    pub fn json(&self, name: &str) -> Outcome<Option<Value>> {
        match self.values.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => serde_json::from_str(s)
                .map(Some)
                .map_err(|_| Rejection::param(name)),
            Some(other) => Ok(Some(other.clone())),
        }
    }
}

fn split_commas(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_body_and_query_merge_and_numbers_as_strings_parse() {
        let params = Params::parse(
            Some("access_token=abc&dept_id=5"),
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            b"name=%E7%A0%94%E5%8F%91&parent_id=1&dept_id_list=2,3",
        )
        .expect("valid form");
        assert_eq!(params.str("access_token").as_deref(), Some("abc"));
        assert_eq!(params.req_i64("dept_id"), Ok(5));
        assert_eq!(params.str("name").as_deref(), Some("研发"));
        assert_eq!(params.i64_list("dept_id_list"), Ok(Some(vec![2, 3])));
    }

    #[test]
    fn json_body_accepts_strings_for_numbers_and_arrays() {
        let params = Params::parse(
            None,
            Some("application/json"),
            br#"{"dept_id":"123","size":10,"flags":"true","ids":[1,"2"],"ext":"{\"a\":\"b\"}"}"#,
        )
        .expect("valid json");
        assert_eq!(params.req_i64("dept_id"), Ok(123));
        assert_eq!(params.req_i64("size"), Ok(10));
        assert_eq!(params.bool("flags"), Ok(Some(true)));
        assert_eq!(params.i64_list("ids").map_err(|r| r.code), Err(40035));
        assert_eq!(
            params.array_list("ids"),
            Ok(Some(vec!["1".to_owned(), "2".to_owned()]))
        );
        assert_eq!(params.json("ext"), Ok(Some(serde_json::json!({"a":"b"}))));
    }

    #[test]
    fn malformed_values_are_rejected_with_40035() {
        let params =
            Params::parse(None, None, br#"{"dept_id":"abc","b":"maybe"}"#).expect("valid json");
        assert_eq!(params.i64("dept_id").map_err(|r| r.code), Err(40035));
        assert_eq!(params.bool("b").map_err(|r| r.code), Err(40035));
        assert_eq!(params.req_str("missing").map_err(|r| r.code), Err(40035));
        assert_eq!(
            Params::parse(None, None, b"[1,2]").map(|_| ()),
            Err(BodyError::NotJsonObject)
        );
    }
}
