//! The two legacy callback-management endpoints event catch-up uses:
//! `GET /call_back/get_call_back_failed_result` (events whose push failed; the payload key varies
//! by event kind, so it is kept as a JSON map) and `POST /call_back/register_call_back`.

use serde::{Deserialize, Serialize};

use crate::{ApiStatus, Secret, envelope::has_status};

/// Answer of `get_call_back_failed_result` (fields at top level; ≤ 200 events per call).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedCallbacksResponse {
    /// Status.
    #[serde(flatten)]
    pub status: ApiStatus,
    /// Whether more failed events are waiting.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt"
    )]
    pub has_more: Option<bool>,
    /// The failed events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_list: Option<Vec<FailedCallback>>,
}

/// One failed event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedCallback {
    /// The event type, e.g. `user_add_org`.
    pub call_back_tag: String,
    /// When it happened, ms since the epoch.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::lenient::opt"
    )]
    pub event_time: Option<i64>,
    /// The payload under a kind-specific key (`user_add_org`, `roleLabelChange`,
    /// `callbackData`, …), kept as the JSON it is.
    #[serde(flatten)]
    pub data: serde_json::Map<String, serde_json::Value>,
}

impl FailedCallback {
    /// The payload object for this event's tag, falling back to the generic `callbackData` key.
    pub fn payload(&self) -> Option<&serde_json::Value> {
        self.data
            .get(&self.call_back_tag)
            .or_else(|| self.data.get("callbackData"))
            .or_else(|| self.data.get("roleLabelChange"))
    }
}

/// Body of `register_call_back`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterCallbackRequest {
    /// Event types to subscribe.
    pub call_back_tag: Vec<String>,
    /// The signing token.
    pub token: Secret,
    /// The 43-char EncodingAESKey.
    pub aes_key: Secret,
    /// The receiving URL.
    pub url: String,
}

has_status!(FailedCallbacksResponse);
