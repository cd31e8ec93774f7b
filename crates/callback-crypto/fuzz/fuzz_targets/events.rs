//! Parsing arbitrary plaintexts and Stream frames as contacts events must return an error or an
//! event, never panic.
#![no_main]

use dingtalk_proto::events::ContactEvent;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(event) = ContactEvent::from_http_json(text) {
        // A parsed event's type is the payload's EventType (or eventType), unescaped.
        let value: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
        let named = value
            .get("EventType")
            .or_else(|| value.get("eventType"))
            .and_then(serde_json::Value::as_str);
        assert_eq!(named, Some(event.kind.event_type()));
    }
    let _ = ContactEvent::from_stream_frame(text);
});
