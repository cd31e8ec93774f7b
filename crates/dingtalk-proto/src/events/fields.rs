//! The lenient reading of an event's fields: one serde struct whose aliases cover every
//! dialect's letter case, and the scalar readers that accept numbers sent as strings and strings
//! sent as numbers. Kept apart from `mod.rs`, which decides what an event *is*.

use serde::Deserialize;
use serde::de::{self, Deserializer};
use serde_json::{Map, Value};

use super::*;

/// Every field any dialect may carry; the aliases cover the PascalCase / lowerCamel split.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Fields {
    #[serde(
        rename = "eventId",
        alias = "EventId",
        default,
        deserialize_with = "opt_string"
    )]
    pub(super) event_id: Option<String>,
    #[serde(
        rename = "CorpId",
        alias = "corpId",
        alias = "corpid",
        default,
        deserialize_with = "opt_string"
    )]
    pub(super) corp_id: Option<String>,
    #[serde(
        rename = "EventTime",
        alias = "eventTime",
        default,
        deserialize_with = "opt_i64"
    )]
    pub(super) event_time: Option<i64>,
    /// The legacy dialect's `TimeStamp` (string in real pushes, number in the 2016 docs).
    #[serde(rename = "TimeStamp", default, deserialize_with = "opt_i64")]
    pub(super) legacy_time_stamp: Option<i64>,
    /// The new dialects' business `timeStamp`; kept apart from `TimeStamp` so a payload with
    /// both is not a duplicate-field error.
    #[serde(rename = "timeStamp", default, deserialize_with = "opt_i64")]
    pub(super) time_stamp: Option<i64>,
    #[serde(
        rename = "UserId",
        alias = "userId",
        alias = "userid",
        default,
        deserialize_with = "string_list"
    )]
    pub(super) user_ids: Vec<String>,
    #[serde(
        rename = "OptStaffId",
        alias = "optStaffId",
        default,
        deserialize_with = "opt_string"
    )]
    pub(super) operator: Option<String>,
    #[serde(
        rename = "DeptId",
        alias = "deptId",
        // Failed-push entries spell it in lower case, like their `userid` and `corpid`.
        alias = "deptid",
        default,
        deserialize_with = "i64_list"
    )]
    pub(super) dept_ids: Vec<i64>,
    #[serde(
        rename = "UserIdList",
        alias = "userIdList",
        default,
        deserialize_with = "string_list"
    )]
    pub(super) user_id_list: Vec<String>,
    #[serde(
        rename = "LabelIdList",
        alias = "labelIdList",
        default,
        deserialize_with = "i64_list"
    )]
    pub(super) label_ids: Vec<i64>,
    #[serde(
        rename = "PreLabelList",
        alias = "preLabelList",
        default,
        deserialize_with = "labels"
    )]
    pub(super) pre_labels: Vec<LabelSnapshot>,
    #[serde(
        rename = "PostLabelList",
        alias = "postLabelList",
        default,
        deserialize_with = "labels"
    )]
    pub(super) post_labels: Vec<LabelSnapshot>,
    #[serde(
        rename = "action",
        alias = "Action",
        default,
        deserialize_with = "opt_string"
    )]
    pub(super) action: Option<String>,
    #[serde(
        rename = "scope",
        alias = "Scope",
        default,
        deserialize_with = "opt_string"
    )]
    pub(super) scope: Option<String>,
    #[serde(
        rename = "diffInfo",
        alias = "DiffInfo",
        default,
        deserialize_with = "diffs"
    )]
    pub(super) diff: Vec<UserDiff>,
}

impl Fields {
    /// Reads the fields of a known event type; unknown types skip field parsing entirely so a
    /// surprising shape there cannot cause an error.
    pub(super) fn parse(event_type: &str, value: &Value) -> Result<Self, EventError> {
        if !is_known(event_type) {
            // Meta fields are still useful for unknown types; ignore their errors too.
            return Ok(Self {
                event_id: meta_string(value, &["eventId", "EventId"]),
                corp_id: meta_string(value, &["CorpId", "corpId", "corpid"]),
                event_time: meta_i64(value, &["EventTime", "eventTime"]),
                legacy_time_stamp: meta_i64(value, &["TimeStamp"]),
                time_stamp: meta_i64(value, &["timeStamp"]),
                ..Self::default()
            });
        }
        Self::deserialize(value).map_err(|source| EventError::Fields {
            event_type: event_type.to_owned(),
            source,
        })
    }

    /// Builds the typed kind; `raw` is only kept for [`EventKind::Unknown`].
    pub(super) fn into_kind(self, event_type: String, raw: Value) -> EventKind {
        let change = UserChange {
            user_ids: user_ids(self.user_ids),
            operator: self.operator.map(DingUserId::new),
        };
        let dept_ids = || self.dept_ids.iter().copied().map(DingDeptId).collect();
        let label_ids = || self.label_ids.iter().copied().map(DingRoleId).collect();
        match event_type.as_str() {
            "user_add_org" => EventKind::UserAddOrg(change),
            "user_modify_org" => EventKind::UserModifyOrg {
                change,
                diff: self.diff,
            },
            "user_leave_org" => EventKind::UserLeaveOrg(change),
            "user_active_org" => EventKind::UserActiveOrg(change),
            "org_admin_add" => EventKind::OrgAdminAdd(change),
            "org_admin_remove" => EventKind::OrgAdminRemove(change),
            "org_dept_create" => EventKind::OrgDeptCreate {
                dept_ids: dept_ids(),
            },
            "org_dept_modify" => EventKind::OrgDeptModify {
                dept_ids: dept_ids(),
            },
            "org_dept_remove" => EventKind::OrgDeptRemove {
                dept_ids: dept_ids(),
            },
            "label_user_change" => EventKind::LabelUserChange {
                user_ids: user_ids(self.user_id_list),
                label_ids: label_ids(),
                action: match self.action.as_deref() {
                    Some("add") => LabelAction::Add,
                    Some("remove") => LabelAction::Remove,
                    other => LabelAction::Other(other.unwrap_or_default().to_owned()),
                },
            },
            "label_conf_add" => EventKind::LabelConfAdd {
                label_ids: label_ids(),
                scope: self.scope,
            },
            "label_conf_modify" => EventKind::LabelConfModify {
                label_ids: label_ids(),
                scope: self.scope,
                before: self.pre_labels,
                after: self.post_labels,
            },
            "label_conf_del" => EventKind::LabelConfDel {
                label_ids: label_ids(),
                scope: self.scope,
            },
            "org_change" => EventKind::OrgChange,
            "org_remove" => EventKind::OrgRemove,
            "check_url" => EventKind::CheckUrl,
            _ => EventKind::Unknown { event_type, raw },
        }
    }
}

/// Wraps wire userids in their newtype.
pub(super) fn user_ids(ids: Vec<String>) -> Vec<DingUserId> {
    ids.into_iter().map(DingUserId::new).collect()
}

/// The event types [`Fields::into_kind`] maps to a typed variant.
pub(super) fn is_known(event_type: &str) -> bool {
    matches!(
        event_type,
        "user_add_org"
            | "user_modify_org"
            | "user_leave_org"
            | "user_active_org"
            | "org_admin_add"
            | "org_admin_remove"
            | "org_dept_create"
            | "org_dept_modify"
            | "org_dept_remove"
            | "label_user_change"
            | "label_conf_add"
            | "label_conf_modify"
            | "label_conf_del"
            | "org_change"
            | "org_remove"
            | "check_url"
    )
}

/// The first of `keys` holding a scalar, as text; for unknown events, where nothing may fail.
pub(super) fn meta_string(value: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| {
        value
            .get(k)
            .and_then(|v| scalar_string(v.clone()).ok().flatten())
    })
}

/// The first of `keys` holding an integer or a decimal string.
pub(super) fn meta_i64(value: &Value, keys: &[&str]) -> Option<i64> {
    keys.iter().find_map(|k| {
        value
            .get(k)
            .and_then(|v| scalar_i64(v.clone()).ok().flatten())
    })
}

/// A JSON scalar as text: strings as is, numbers and booleans printed, `null` as absent.
pub(super) fn scalar_string(v: Value) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        other => Err(format!(
            "expected a string or number, found {}",
            kind_of(&other)
        )),
    }
}

/// A JSON integer or a string holding one; `null` or an empty string as absent.
pub(super) fn scalar_i64(v: Value) -> Result<Option<i64>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("{n} is not a 64-bit integer")),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| format!("{s:?} is not an integer")),
        other => Err(format!("expected an integer, found {}", kind_of(&other))),
    }
}

/// A list from an array, a single scalar (some senders unwrap one-element lists) or `null`.
pub(super) fn list(v: Value) -> Result<Vec<Value>, String> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => Ok(items),
        Value::Object(_) => Err("expected a list, found an object".to_owned()),
        scalar => Ok(vec![scalar]),
    }
}

pub(super) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

pub(super) fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    scalar_string(Value::deserialize(d)?).map_err(de::Error::custom)
}

pub(super) fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    scalar_i64(Value::deserialize(d)?).map_err(de::Error::custom)
}

pub(super) fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    list(Value::deserialize(d)?)
        .and_then(|items| {
            items
                .into_iter()
                .filter_map(|item| scalar_string(item).transpose())
                .collect()
        })
        .map_err(de::Error::custom)
}

pub(super) fn i64_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i64>, D::Error> {
    list(Value::deserialize(d)?)
        .and_then(|items| {
            items
                .into_iter()
                .filter_map(|item| scalar_i64(item).transpose())
                .collect()
        })
        .map_err(de::Error::custom)
}

/// Label snapshots: each item a JSON-encoded string (as DingTalk sends) or already an object.
pub(super) fn labels<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<LabelSnapshot>, D::Error> {
    let items = list(Value::deserialize(d)?).map_err(de::Error::custom)?;
    Ok(items.into_iter().map(label_snapshot).collect())
}

pub(super) fn label_snapshot(item: Value) -> LabelSnapshot {
    let raw = match item {
        Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
        other => other,
    };
    LabelSnapshot {
        id: raw
            .get("id")
            .and_then(|v| scalar_i64(v.clone()).ok().flatten())
            .map(DingRoleId),
        name: raw.get("name").and_then(Value::as_str).map(str::to_owned),
        raw,
    }
}

/// `diffInfo`: documented as one object, modelled as an array by third-party code, possibly a
/// JSON-encoded string like the label lists; all three are accepted.
pub(super) fn diffs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<UserDiff>, D::Error> {
    let value = match Value::deserialize(d)? {
        Value::String(s) => serde_json::from_str(&s).map_err(de::Error::custom)?,
        other => other,
    };
    let items = match value {
        Value::Object(_) => vec![value],
        other => list(other).map_err(de::Error::custom)?,
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::Object(mut obj) => {
                let user_id = obj
                    .remove("userid")
                    .or_else(|| obj.remove("userId"))
                    .map(scalar_string)
                    .transpose()
                    .map_err(de::Error::custom)?
                    .flatten();
                Ok(UserDiff {
                    user_id: user_id.map(DingUserId::new),
                    prev: object_field(&mut obj, "prev").map_err(de::Error::custom)?,
                    curr: object_field(&mut obj, "curr").map_err(de::Error::custom)?,
                })
            }
            other => Err(de::Error::custom(format!(
                "diffInfo entry must be an object, found {}",
                kind_of(&other)
            ))),
        })
        .collect()
}

pub(super) fn object_field(
    obj: &mut Map<String, Value>,
    key: &str,
) -> Result<Map<String, Value>, String> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m),
        Some(other) => Err(format!(
            "diffInfo.{key} must be an object, found {}",
            kind_of(&other)
        )),
    }
}
