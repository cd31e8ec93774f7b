//! Catch-up: DingTalk's failed-push list into the inbox.
//!
//! When DingTalk cannot deliver an event (our service was down, the answer was not "success")
//! it retries twice and then parks the event in a list that `call_back/get_call_back_failed_result`
//! returns, at most 200 at a time. Reading the list removes what it returned (as far as the
//! documentation lets us tell), so each entry is stored in the inbox immediately, before the next
//! page is read; the applier then treats it like any pushed event (it only names ids, and the
//! applier fetches current state anyway). The entries carry no event id, so the dedupe key is a
//! SHA-256 of the tag, time and payload: reading the same failure twice stores it once.
//!
//! Call it at start-up and periodically; with the HTTP push working it finds nothing.

use dingtalk_client::ClientError;
use directory_store::{InboxPut, NewInboxEvent, StoreError};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::context::SyncContext;

/// Pages read per call at most, so a misbehaving `has_more` cannot loop forever.
const MAX_PAGES: usize = 1000;

/// Why catch-up stopped.
#[derive(Debug, thiserror::Error)]
pub enum CatchupError {
    /// DingTalk's failed list could not be read.
    #[error("could not read DingTalk's failed-push list")]
    Client(#[from] ClientError),
    /// An entry could not be stored (it may be lost: DingTalk already handed it over).
    #[error("could not store a failed-push entry in the inbox")]
    Store(#[from] StoreError),
}

/// What a catch-up found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CatchupReport {
    /// Pages read.
    pub pages: usize,
    /// Entries stored in the inbox.
    pub stored: usize,
    /// Entries already in the inbox.
    pub duplicates: usize,
}

/// Reads the failed-push list until it is empty and stores every entry in the inbox.
pub async fn catch_up(ctx: &SyncContext) -> Result<CatchupReport, CatchupError> {
    let mut report = CatchupReport::default();
    while report.pages < MAX_PAGES {
        let page = ctx.client.failed_callbacks().await?;
        report.pages += 1;
        let entries = page.failed_list.unwrap_or_default();
        for entry in &entries {
            let payload = entry.payload().cloned().unwrap_or(serde_json::Value::Null);
            let body = serde_json::json!({
                "failed_callback": {
                    "call_back_tag": entry.call_back_tag,
                    "event_time": entry.event_time,
                    "payload": payload,
                }
            });
            let text = body.to_string();
            let digest = Sha256::digest(text.as_bytes());
            let put = ctx
                .store
                .inbox_put(NewInboxEvent {
                    dedupe_key: format!("failed:{}", hex::encode(digest)),
                    event_type: entry.call_back_tag.clone(),
                    payload_json: text,
                    received_at_ms: ctx.now_ms(),
                })
                .await?;
            match put {
                InboxPut::Stored(_) => report.stored += 1,
                InboxPut::Duplicate => report.duplicates += 1,
            }
        }
        if !page.has_more.unwrap_or(false) || entries.is_empty() {
            break;
        }
    }
    Ok(report)
}
