//! Catch-up: DingTalk's failed-push list into the inbox.
//!
//! When DingTalk cannot deliver an event (our service was down, the answer was not "success")
//! it retries twice and then parks the event in a list that `call_back/get_call_back_failed_result`
//! returns, at most 200 at a time. The applier treats a listed event like a pushed one (it only
//! names ids, and the applier fetches current state anyway).
//!
//! # Dedupe
//! Each entry is stored under [`ContactEvent::dedupe_key`]: event type, sorted ids and event
//! time, the key the HTTP receiver and the Stream client build for the same change. So an event
//! that was pushed, stored and acknowledged too late for DingTalk (which then retried it and
//! listed it as failed) ends as one inbox row, and reading the same entry twice stores it once.
//! An entry we cannot parse is stored under a digest of its text (the applier dead-letters it
//! visibly rather than it vanishing here).
//!
//! # The residual loss window
//! Reading the list is destructive as far as the documentation lets us tell (UNCONFIRMED, and
//! the simulator behaves so): once a page is in our hands DingTalk no longer has it. So:
//! - every entry of a page is committed to the inbox (one short transaction each, so a crash
//!   mid-page keeps the entries already stored) before the next page is asked for;
//! - a failing store is retried a few times with backoff (a locked SQLite file, a PostgreSQL
//!   restart) before the page is given up;
//! - when it is given up, catch-up stops without reading further (the rest of the list stays
//!   safe at DingTalk), logs what was lost (event types and ids, which are not secrets), and
//!   returns [`CatchupError::Store`] with the count.
//!
//! What remains: a SIGKILL, power loss or a store outage outlasting the retries between
//! receiving a page and committing its last entry loses the uncommitted entries of that one
//! page – up to 200 events, a page being DingTalk's choice (the legacy endpoint takes no page
//! size). Those changes are not lost from DingTalk, only their events: the scheduled reconcile
//! (`sync.reconcile_interval_secs`) or `dingsync reconcile` finds them by comparing both sides.
//! The window is one HTTP answer's parse plus at most 200 commits, milliseconds on SQLite.
//!
//! Call it at start-up and periodically; with the HTTP push working it finds nothing.

use std::time::Duration;

use dingtalk_client::ClientError;
use dingtalk_proto::callback::FailedCallback;
use dingtalk_proto::events::ContactEvent;
use directory_store::{InboxPut, NewInboxEvent, StoreError};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::context::SyncContext;

/// Pages read per call at most, so a misbehaving `has_more` cannot loop forever.
const MAX_PAGES: usize = 1000;

/// Attempts to store one entry before its page is given up; with [`STORE_BACKOFF`] doubling,
/// the store gets about 3 s to come back.
const STORE_ATTEMPTS: u32 = 5;

/// Wait before the second attempt to store an entry; doubled before each further one.
const STORE_BACKOFF: Duration = Duration::from_millis(200);

/// Why catch-up stopped.
#[derive(Debug, thiserror::Error)]
pub enum CatchupError {
    /// DingTalk's failed list could not be read (nothing was handed over, nothing is lost).
    #[error("could not read DingTalk's failed-push list")]
    Client(#[from] ClientError),
    /// Entries of a page that DingTalk already handed over could not be stored; they are lost
    /// as events (a reconcile finds their changes). Reading stopped there.
    #[error(
        "could not store a failed-push entry in the inbox; {lost} entries of the page are lost"
    )]
    Store {
        /// Entries of the page not stored (the failing one and those after it).
        lost: usize,
        /// The last store error.
        #[source]
        source: StoreError,
    },
}

/// What a catch-up found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CatchupReport {
    /// Pages read.
    pub pages: usize,
    /// Entries stored in the inbox.
    pub stored: usize,
    /// Entries already in the inbox (stored from a push, or read before).
    pub duplicates: usize,
}

/// Reads the failed-push list until it is empty and stores every entry in the inbox, each page
/// committed before the next is read.
pub async fn catch_up(ctx: &SyncContext) -> Result<CatchupReport, CatchupError> {
    let mut report = CatchupReport::default();
    while report.pages < MAX_PAGES {
        let page = ctx.client.failed_callbacks().await?;
        report.pages += 1;
        let entries = page.failed_list.unwrap_or_default();
        for (index, entry) in entries.iter().enumerate() {
            match store_entry(ctx, entry).await {
                Ok(InboxPut::Stored(_)) => report.stored += 1,
                Ok(InboxPut::Duplicate) => report.duplicates += 1,
                Err(source) => {
                    let lost = &entries[index..];
                    for entry in lost {
                        tracing::error!(
                            event_type = entry.call_back_tag,
                            event_time = entry.event_time,
                            payload = %entry.payload().unwrap_or(&serde_json::Value::Null),
                            "failed-push entry lost: DingTalk handed it over and it could not \
                             be stored; a reconcile will find its change"
                        );
                    }
                    return Err(CatchupError::Store {
                        lost: lost.len(),
                        source,
                    });
                }
            }
        }
        if !page.has_more.unwrap_or(false) || entries.is_empty() {
            break;
        }
    }
    Ok(report)
}

/// Stores one entry, retrying a failing store with backoff.
async fn store_entry(ctx: &SyncContext, entry: &FailedCallback) -> Result<InboxPut, StoreError> {
    let event = inbox_event(ctx, entry);
    let mut wait = STORE_BACKOFF;
    let mut attempt = 1;
    loop {
        match ctx.store.inbox_put(event.clone()).await {
            Ok(put) => return Ok(put),
            Err(error) if attempt < STORE_ATTEMPTS => {
                tracing::warn!(
                    error = %error,
                    attempt,
                    "storing a failed-push entry failed; retrying"
                );
                tokio::time::sleep(wait).await;
                wait *= 2;
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

/// The inbox row of one entry: `{"failed_callback": {call_back_tag, event_time, payload}}`
/// (what `apply::parse_inbox_event` reads), under the change's dedupe key.
fn inbox_event(ctx: &SyncContext, entry: &FailedCallback) -> NewInboxEvent {
    let payload = entry.payload().cloned().unwrap_or(serde_json::Value::Null);
    let body = serde_json::json!({
        "failed_callback": {
            "call_back_tag": entry.call_back_tag,
            "event_time": entry.event_time,
            "payload": payload,
        }
    });
    let text = body.to_string();
    let dedupe_key = match ContactEvent::from_failed_callback(
        &entry.call_back_tag,
        entry.event_time,
        &payload,
    ) {
        Ok(event) => event.dedupe_key(&text),
        // Unreadable: stored all the same, so the applier's dead letter shows it.
        Err(_) => format!("failed:{}", hex::encode(Sha256::digest(text.as_bytes()))),
    };
    NewInboxEvent {
        dedupe_key,
        event_type: entry.call_back_tag.clone(),
        payload_json: text,
        received_at_ms: ctx.now_ms(),
    }
}
