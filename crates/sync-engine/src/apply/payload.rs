//! Reading an inbox row back into a [`ContactEvent`], whichever way the event arrived.
//!
//! The inbox stores each event's text as it arrived: the decrypted HTTP push (either dialect)
//! as is; a Stream event as `{"stream": {"headers": {...}, "data": "<data string>"}}`; an entry
//! of the failed-push list (see [`crate::catchup`]) as `{"failed_callback": {...}}`.

use dingtalk_proto::events::{ContactEvent, EventError, StreamEventHeaders};
use directory_store::InboxEvent;

/// Reads a stored inbox event in any of the formats described in the module doc.
pub fn parse_inbox_event(event: &InboxEvent) -> Result<ContactEvent, EventError> {
    let value: serde_json::Value =
        serde_json::from_str(&event.payload_json).map_err(|source| EventError::Json { source })?;
    if let Some(failed) = value.get("failed_callback") {
        let tag = failed
            .get("call_back_tag")
            .and_then(|t| t.as_str())
            .unwrap_or(event.event_type.as_str());
        let time = failed.get("event_time").and_then(serde_json::Value::as_i64);
        let payload = failed.get("payload").unwrap_or(&serde_json::Value::Null);
        return ContactEvent::from_failed_callback(tag, time, payload);
    }
    if let Some(stream) = value.get("stream") {
        let headers: StreamEventHeaders = stream
            .get("headers")
            .cloned()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|source| EventError::Json { source })?
            .unwrap_or_default();
        let data = stream.get("data").and_then(|d| d.as_str()).unwrap_or("{}");
        return ContactEvent::from_stream(&headers, data);
    }
    ContactEvent::from_http_json(&event.payload_json)
}
