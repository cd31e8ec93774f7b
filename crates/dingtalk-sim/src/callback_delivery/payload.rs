//! The plaintext of a pushed event, in the dialect the subscription asks for, and the shape of
//! an entry of the failed-push list.
//!
//! Two HTTP dialects exist (`dingtalk-api.md` §6) and which one an app receives is UNCONFIRMED,
//! so both are built and a setting chooses:
//! - **legacy** (register_call_back era): PascalCase meta, `TimeStamp` as a *string* of
//!   milliseconds (as real pushes carry it), `UserId`/`DeptId`/`UserIdList`/`LabelIdList`
//!   business fields, `OptStaffId` when an administrator made the change;
//! - **new** (console-configured HTTP push): `EventType`, `EventTime` (number), `CorpId`,
//!   `BizId`, `eventId`, `timeStamp` (string) plus lowerCamel business fields (the same as
//!   Stream's `data`, so `user_modify_org` carries `diffInfo`, see `org::user_diff`; the legacy
//!   dialect has no such field).
//!
//! `label_conf_modify` carries its before/after roles as arrays of JSON-encoded *strings*, as
//! observed. Failed-list entries follow the documented example (`{"call_back_tag", "event_time",
//! "<tag>": {"userid": […], "corpid": …}}`); department events use `deptid` by analogy, and role
//! events sit under `roleLabelChange` as documented.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::org::Change;

/// Which plaintext shape pushes use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// PascalCase, `TimeStamp` string, no event id.
    #[default]
    Legacy,
    /// `EventType`/`EventTime`/`CorpId`/`BizId`/`eventId` + lowerCamel fields.
    New,
}

/// What a push describes besides the change itself.
#[derive(Debug, Clone)]
pub struct Meta<'a> {
    pub corp_id: &'a str,
    /// When the change happened (Unix ms).
    pub time_ms: i64,
    /// Unique id of the event (new dialect); duplicates of one event share it.
    pub event_id: &'a str,
    /// The administrator who made the change, if one did.
    pub operator: Option<&'a str>,
}

fn json_strings(items: &[Value]) -> Vec<Value> {
    items.iter().map(|v| Value::String(v.to_string())).collect()
}

/// The decrypted body of one pushed event.
pub fn plaintext(change: &Change, meta: &Meta<'_>, dialect: Dialect) -> Value {
    match dialect {
        Dialect::Legacy => legacy_plaintext(change, meta),
        Dialect::New => new_plaintext(change, meta),
    }
}

/// The legacy dialect: PascalCase keys, ids under `UserId`/`DeptId`, the time as a string.
fn legacy_plaintext(change: &Change, meta: &Meta<'_>) -> Value {
    let mut m = Map::new();
    let event_type = change.event_type();
    m.insert("CorpId".into(), json!(meta.corp_id));
    m.insert("EventType".into(), json!(event_type));
    match change {
        Change::UserAdd(ids) | Change::UserModify(ids, _) | Change::UserLeave(ids) => {
            m.insert("UserId".into(), json!(ids));
            if let Some(op) = meta.operator {
                m.insert("OptStaffId".into(), json!(op));
            }
        }
        Change::DeptCreate(ids) | Change::DeptModify(ids) | Change::DeptRemove(ids) => {
            m.insert("DeptId".into(), json!(ids));
        }
        Change::LabelMembership {
            users,
            labels,
            action,
        } => {
            m.insert("UserIdList".into(), json!(users));
            m.insert("LabelIdList".into(), json!(labels));
            m.insert("action".into(), json!(action));
        }
        Change::LabelConfAdd(ids) | Change::LabelConfDel(ids) => {
            m.insert("LabelIdList".into(), json!(ids));
            m.insert("scope".into(), json!("1"));
        }
        Change::LabelConfModify { labels, pre, post } => {
            m.insert("LabelIdList".into(), json!(labels));
            m.insert("scope".into(), json!("1"));
            m.insert("PreLabelList".into(), json!(json_strings(pre)));
            m.insert("PostLabelList".into(), json!(json_strings(post)));
        }
    }
    m.insert("TimeStamp".into(), json!(meta.time_ms.to_string()));
    Value::Object(m)
}

/// The new dialect: camelCase keys, `eventId` and `BizId`, the time as a number too.
fn new_plaintext(change: &Change, meta: &Meta<'_>) -> Value {
    let mut m = Map::new();
    let event_type = change.event_type();
    m.insert("EventType".into(), json!(event_type));
    m.insert("EventTime".into(), json!(meta.time_ms));
    m.insert("CorpId".into(), json!(meta.corp_id));
    m.insert(
        "BizId".into(),
        json!(format!(
            "{}{}",
            meta.time_ms,
            &meta.event_id[..6.min(meta.event_id.len())]
        )),
    );
    m.insert("eventId".into(), json!(meta.event_id));
    m.insert("timeStamp".into(), json!(meta.time_ms.to_string()));
    match change {
        Change::UserModify(ids, diff) => {
            m.insert("userId".into(), json!(ids));
            m.insert("diffInfo".into(), diff.clone());
        }
        Change::UserAdd(ids) | Change::UserLeave(ids) => {
            m.insert("userId".into(), json!(ids));
        }
        Change::DeptCreate(ids) | Change::DeptModify(ids) | Change::DeptRemove(ids) => {
            m.insert("deptId".into(), json!(ids));
        }
        Change::LabelMembership {
            users,
            labels,
            action,
        } => {
            m.insert("userIdList".into(), json!(users));
            m.insert("labelIdList".into(), json!(labels));
            m.insert("action".into(), json!(action));
        }
        Change::LabelConfAdd(ids) => {
            m.insert("labelIdList".into(), json!(ids));
            m.insert("scope".into(), json!("1"));
        }
        Change::LabelConfDel(ids) => {
            m.insert("labelIdList".into(), json!(ids));
        }
        Change::LabelConfModify { labels, pre, post } => {
            m.insert("labelIdList".into(), json!(labels));
            m.insert("scope".into(), json!("1"));
            m.insert("preLabelList".into(), json!(json_strings(pre)));
            m.insert("postLabelList".into(), json!(json_strings(post)));
        }
    }
    Value::Object(m)
}

/// One entry of `get_call_back_failed_result`'s `failed_list`.
pub fn failed_entry(change: &Change, corp_id: &str, time_ms: i64) -> Value {
    let tag = change.event_type();
    let (key, data) = match change {
        Change::UserAdd(ids) | Change::UserModify(ids, _) | Change::UserLeave(ids) => {
            (tag, json!({"userid": ids, "corpid": corp_id}))
        }
        Change::DeptCreate(ids) | Change::DeptModify(ids) | Change::DeptRemove(ids) => {
            (tag, json!({"deptid": ids, "corpid": corp_id}))
        }
        Change::LabelMembership {
            users,
            labels,
            action,
        } => (
            "roleLabelChange",
            json!({"userIdList": users, "labelIdList": labels, "action": action, "corpid": corp_id}),
        ),
        Change::LabelConfAdd(ids) | Change::LabelConfDel(ids) => (
            "roleLabelChange",
            json!({"labelIdList": ids, "scope": "1", "corpid": corp_id}),
        ),
        Change::LabelConfModify { labels, pre, post } => (
            "roleLabelChange",
            json!({"labelIdList": labels, "scope": "1", "corpid": corp_id,
                   "preLabelList": json_strings(pre), "postLabelList": json_strings(post)}),
        ),
    };
    let mut m = Map::new();
    m.insert("call_back_tag".into(), json!(tag));
    m.insert("event_time".into(), json!(time_ms));
    m.insert(key.into(), data);
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta<'static> {
        Meta {
            corp_id: "dingcorp",
            time_ms: 1_640_921_671_286,
            event_id: "c7c7120f2c07419aebdba0318c8",
            operator: Some("manager164"),
        }
    }

    #[test]
    fn new_dialect_user_modify_carries_diff_info_and_legacy_does_not() {
        let diff = json!({"userid": "u1", "prev": {"name": "a"}, "curr": {"name": "b"}});
        let change = Change::UserModify(vec!["u1".into()], diff.clone());
        assert_eq!(plaintext(&change, &meta(), Dialect::New)["diffInfo"], diff);
        assert!(
            plaintext(&change, &meta(), Dialect::Legacy)
                .get("diffInfo")
                .is_none()
        );
    }

    #[test]
    fn legacy_user_event_matches_the_observed_example() {
        let v = plaintext(
            &Change::UserAdd(vec!["184919295227658120".into()]),
            &meta(),
            Dialect::Legacy,
        );
        assert_eq!(
            v,
            json!({"CorpId":"dingcorp","EventType":"user_add_org","UserId":["184919295227658120"],
                   "OptStaffId":"manager164","TimeStamp":"1640921671286"})
        );
    }

    #[test]
    fn new_dialect_has_ids_and_camel_fields() {
        let v = plaintext(&Change::DeptRemove(vec![5]), &meta(), Dialect::New);
        assert_eq!(v["EventType"], "org_dept_remove");
        assert_eq!(v["EventTime"], 1_640_921_671_286i64);
        assert_eq!(v["eventId"], "c7c7120f2c07419aebdba0318c8");
        assert_eq!(v["deptId"], json!([5]));
        assert_eq!(v["timeStamp"], "1640921671286");
        assert!(v["BizId"].is_string());
    }

    #[test]
    fn label_modify_lists_are_json_strings_and_failed_entries_are_keyed() {
        let change = Change::LabelConfModify {
            labels: vec![9],
            pre: vec![json!({"id": 9, "name": "a"})],
            post: vec![json!({"id": 9, "name": "b"})],
        };
        let v = plaintext(&change, &meta(), Dialect::Legacy);
        let post = v["PostLabelList"][0].as_str().expect("a JSON string");
        assert_eq!(
            serde_json::from_str::<Value>(post).expect("json")["name"],
            "b"
        );
        let failed = failed_entry(&Change::UserLeave(vec!["u".into()]), "dingcorp", 7);
        assert_eq!(
            failed,
            json!({"call_back_tag":"user_leave_org","event_time":7,"user_leave_org":{"userid":["u"],"corpid":"dingcorp"}})
        );
        let role = failed_entry(&change, "dingcorp", 7);
        assert_eq!(role["roleLabelChange"]["labelIdList"], json!([9]));
    }
}
