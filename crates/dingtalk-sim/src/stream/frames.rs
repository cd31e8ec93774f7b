//! The JSON of Stream mode, built and read by hand from `dingtalk-api.md` §7 and §6(c).
//!
//! Kept pure (no sockets, no clock) so every field can be pinned by a unit test:
//! - downstream frames (`specVersion`, `type`, `headers` whose values are all *strings*, and
//!   `data`, itself a JSON-encoded *string*);
//! - the business `data` of a contacts event in Stream's lowerCamel shape (no HTTP meta such as
//!   `EventType`/`CorpId`: in Stream those travel as headers);
//! - the verdict on a client's acknowledgement. The official SDKs answer in different shapes
//!   (Java: code 200 + `status:LATER`; Go: code 500 + `LATER`; Python: code 200 echoing the
//!   event's data with no status; Node: 200 + `status`), so an ack is judged by `code` and the
//!   optional `status` only: success iff code is 200 and status is absent or `SUCCESS`.

use serde_json::{Value, json};

use crate::events::EventRecord;
use crate::org::Change;

/// What a downstream EVENT frame says besides the event itself.
#[derive(Debug, Clone)]
pub(crate) struct EventMeta<'a> {
    /// Unique per event, identical across redeliveries (the client's dedupe key).
    pub event_id: &'a str,
    /// Unique per delivery attempt; the ack must echo it.
    pub message_id: &'a str,
    pub corp_id: &'a str,
    pub unified_app_id: &'a str,
    pub connection_id: &'a str,
    /// When the frame is sent (Unix ms), the `time` header.
    pub now_ms: i64,
}

/// The `data` fields of a contacts event in Stream mode (§6(c)).
pub(crate) fn event_data(change: &Change, time_ms: i64) -> Value {
    let time_stamp = time_ms.to_string();
    let json_strings = |items: &[Value]| -> Vec<Value> {
        items.iter().map(|v| Value::String(v.to_string())).collect()
    };
    match change {
        Change::UserModify(ids, diff) => {
            json!({"timeStamp": time_stamp, "userId": ids, "diffInfo": diff})
        }
        Change::UserAdd(ids) | Change::UserLeave(ids) => {
            json!({"timeStamp": time_stamp, "userId": ids})
        }
        Change::DeptCreate(ids) | Change::DeptModify(ids) | Change::DeptRemove(ids) => {
            json!({"deptId": ids})
        }
        Change::LabelMembership {
            users,
            labels,
            action,
        } => json!({"userIdList": users, "labelIdList": labels, "action": action}),
        Change::LabelConfAdd(ids) => json!({"scope": "1", "labelIdList": ids}),
        Change::LabelConfDel(ids) => json!({"labelIdList": ids}),
        Change::LabelConfModify { labels, pre, post } => json!({
            "postLabelList": json_strings(post),
            "preLabelList": json_strings(pre),
            "scope": "1",
            "labelIdList": labels,
        }),
    }
}

/// A downstream EVENT frame for one delivery attempt of `event`.
pub(crate) fn event_frame(event: &EventRecord, meta: &EventMeta<'_>) -> String {
    json!({
        "specVersion": "1.0",
        "type": "EVENT",
        "headers": {
            "topic": "*",
            "messageId": meta.message_id,
            "contentType": "application/json",
            "time": meta.now_ms.to_string(),
            "connectionId": meta.connection_id,
            "eventType": event.change.event_type(),
            "eventId": meta.event_id,
            "eventCorpId": meta.corp_id,
            "eventBornTime": event.time_ms.to_string(),
            "eventUnifiedAppId": meta.unified_app_id,
        },
        "data": event_data(&event.change, event.time_ms).to_string(),
    })
    .to_string()
}

/// A SYSTEM frame (`ping` or `disconnect`) with its `data` object.
pub(crate) fn system_frame(
    topic: &str,
    message_id: &str,
    connection_id: &str,
    now_ms: i64,
    data: &Value,
) -> String {
    json!({
        "specVersion": "1.0",
        "type": "SYSTEM",
        "headers": {
            "topic": topic,
            "messageId": message_id,
            "contentType": "application/json",
            "time": now_ms.to_string(),
            "connectionId": connection_id,
        },
        "data": data.to_string(),
    })
    .to_string()
}

/// What a client's upstream message says.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ack {
    /// The `messageId` it answers.
    pub message_id: String,
    /// Its `code` (a number; a numeric string is tolerated).
    pub code: Option<i64>,
    /// `data.status` when `data` is an object (or a JSON string of one) that has it.
    pub status: Option<String>,
    /// `data`, parsed when it is a JSON string, as sent otherwise.
    pub data: Value,
}

impl Ack {
    /// Success iff code 200 and status absent or `SUCCESS` (case-insensitive).
    pub fn is_success(&self) -> bool {
        self.code == Some(200)
            && self
                .status
                .as_deref()
                .is_none_or(|s| s.eq_ignore_ascii_case("SUCCESS"))
    }
}

/// Reads an upstream text message; `Err` says why it is not an acknowledgement.
pub(crate) fn parse_ack(text: &str) -> Result<Ack, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let message_id = value
        .get("headers")
        .and_then(|h| h.get("messageId"))
        .and_then(Value::as_str)
        .ok_or("no headers.messageId")?
        .to_owned();
    let code = match value.get("code") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    let data = match value.get("data") {
        Some(Value::String(s)) => {
            serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone()))
        }
        Some(other) => other.clone(),
        None => Value::Null,
    };
    let status = data
        .get("status")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(Ack {
        message_id,
        code,
        status,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Origin;

    fn record(change: Change) -> EventRecord {
        EventRecord {
            id: 7,
            change,
            origin: Origin::Admin,
            time_ms: 1_683_533_823_336,
        }
    }

    fn meta() -> EventMeta<'static> {
        EventMeta {
            event_id: "c7c7120f2c07419aebdba0318c8",
            message_id: "213d841d_972_1898bb26334_70a7",
            corp_id: "dingcorp",
            unified_app_id: "bbb381b6-f01a-4c2b-9d58-58daac000000",
            connection_id: "conn-1",
            now_ms: 1_693_221_579_964,
        }
    }

    #[test]
    fn user_modify_data_carries_diff_info() {
        let diff = json!({"userid": "u1", "prev": {"name": "a"}, "curr": {"name": "b"}});
        let data = event_data(&Change::UserModify(vec!["u1".into()], diff.clone()), 5);
        assert_eq!(
            data,
            json!({"timeStamp": "5", "userId": ["u1"], "diffInfo": diff})
        );
    }

    #[test]
    fn event_frame_has_string_headers_and_a_string_data() {
        let frame = event_frame(&record(Change::UserAdd(vec!["015227".into()])), &meta());
        let v: Value = serde_json::from_str(&frame).expect("JSON");
        assert_eq!(v["specVersion"], "1.0");
        assert_eq!(v["type"], "EVENT");
        let h = &v["headers"];
        assert!(
            h.as_object()
                .expect("object")
                .values()
                .all(Value::is_string)
        );
        assert_eq!(h["topic"], "*");
        assert_eq!(h["eventType"], "user_add_org");
        assert_eq!(h["eventId"], "c7c7120f2c07419aebdba0318c8");
        assert_eq!(h["eventCorpId"], "dingcorp");
        assert_eq!(h["eventBornTime"], "1683533823336");
        assert_eq!(h["time"], "1693221579964");
        assert_eq!(h["messageId"], "213d841d_972_1898bb26334_70a7");
        assert_eq!(h["contentType"], "application/json");
        let data: Value =
            serde_json::from_str(v["data"].as_str().expect("a string")).expect("JSON inside");
        assert_eq!(
            data,
            json!({"timeStamp": "1683533823336", "userId": ["015227"]})
        );
    }

    #[test]
    fn data_is_lower_camel_without_http_meta() {
        let d = event_data(&Change::DeptRemove(vec![5]), 1);
        assert_eq!(d, json!({"deptId": [5]}));
        let d = event_data(
            &Change::LabelConfModify {
                labels: vec![9],
                pre: vec![json!({"id": 9, "name": "a"})],
                post: vec![json!({"id": 9, "name": "b"})],
            },
            1,
        );
        assert_eq!(d["scope"], "1");
        let post: Value =
            serde_json::from_str(d["postLabelList"][0].as_str().expect("JSON string"))
                .expect("parses");
        assert_eq!(post["name"], "b");
        for key in ["EventType", "CorpId", "eventId", "EventTime"] {
            assert!(d.get(key).is_none(), "{key} leaked into Stream data");
        }
    }

    #[test]
    fn acks_of_every_sdk_are_judged_by_code_and_status() {
        let ack = |text: &str| parse_ack(text).expect("an ack");
        // Node / documented: 200 + SUCCESS.
        assert!(ack(r#"{"code":200,"headers":{"messageId":"m"},"message":"OK","data":"{\"status\":\"SUCCESS\",\"message\":\"ok\"}"}"#).is_success());
        // Python: 200, echoes the event's data, no status.
        assert!(ack(r#"{"code":200,"headers":{"messageId":"m"},"message":"OK","data":"{\"deptId\":[1]}"}"#).is_success());
        // No data at all.
        assert!(ack(r#"{"code":200,"headers":{"messageId":"m"}}"#).is_success());
        // Java: 200 + LATER.
        assert!(
            !ack(r#"{"code":200,"headers":{"messageId":"m"},"data":"{\"status\":\"LATER\"}"}"#)
                .is_success()
        );
        // Go: 500 + LATER.
        assert!(!ack(r#"{"code":500,"headers":{"messageId":"m"},"message":"later","data":"{\"status\":\"LATER\",\"message\":\"later\"}"}"#).is_success());
        // 404 (topic not handled).
        assert!(!ack(r#"{"code":404,"headers":{"messageId":"m"}}"#).is_success());
        // data as an object rather than a string, code as a string.
        assert!(
            ack(r#"{"code":"200","headers":{"messageId":"m"},"data":{"status":"SUCCESS"}}"#)
                .is_success()
        );
        assert!(parse_ack(r#"{"code":200}"#).is_err());
        assert!(parse_ack("nope").is_err());
    }
}
