//! `/console`: health and readiness with their reasons, DingTalk's budget per API, the token,
//! how events arrive, the queues' backlogs with their oldest entry's age, and the last runs.
//!
//! Calls per second come from the client's cumulative counters, sampled at each look at the
//! overview: the rate is the difference to the previous sample (kept at most a minute), so the
//! figure is "recently", not "since start". Throttles, retries and faults are since the
//! service started, as the client counts them.

use std::collections::BTreeMap;
use std::sync::PoisonError;
use std::time::Duration;

use console::BackendError;
use console::views::{ApiBudget, Backlog, Check, EventChannel, Overview, RunKind, TokenState};
use directory_store::QueueState;

use super::time::format_ms;
use super::{Admin, attention, internal, runs};
use crate::stream::StreamState;

/// How long the readiness probe waits for the database.
const DB_PROBE: Duration = Duration::from_secs(2);

pub async fn overview(admin: &Admin) -> Result<Overview, BackendError> {
    let readiness = readiness(admin).await;
    let backlogs = backlogs(admin).await?;
    let recent = runs::recent(admin, 50).await?;
    let last_runs = [RunKind::Import, RunKind::Reconcile, RunKind::CatchUp]
        .into_iter()
        .filter_map(|kind| recent.iter().find(|run| run.kind == kind).cloned())
        .collect();
    Ok(Overview {
        health: Check {
            ok: true,
            reason: "the service answers requests".to_owned(),
        },
        readiness,
        budgets: budgets(admin),
        token: token(admin).await,
        events: events(admin).await?,
        backlogs,
        last_runs,
        attention_count: attention::count(admin).await?,
    })
}

/// The same checks as `/readyz`, with the reason in words.
async fn readiness(admin: &Admin) -> Check {
    let mut problems = Vec::new();
    match tokio::time::timeout(DB_PROBE, admin.store.db_now_ms()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => problems.push(format!("database: {}", sync_engine::error_chain(&e))),
        Err(_) => problems.push(format!("database: no answer within {DB_PROBE:?}")),
    }
    if let Some(sync) = &admin.sync
        && let Err(e) = sync.client.ensure_token().await
    {
        problems.push(format!("DingTalk: {}", sync_engine::error_chain(&e)));
    }
    if let Some(stream) = &admin.stream {
        let status = stream.borrow().clone();
        if !status.is_ready() {
            problems.push(format!(
                "Stream: not connected ({})",
                status.last_error.as_deref().unwrap_or("connecting")
            ));
        }
    }
    if problems.is_empty() {
        Check {
            ok: true,
            reason: "the database answers, DingTalk gives a token and events can arrive".into(),
        }
    } else {
        Check {
            ok: false,
            reason: problems.join("; "),
        }
    }
}

/// The previous sample of call counters: (when, calls per API).
pub type Sample = (i64, BTreeMap<String, u64>);

fn budgets(admin: &Admin) -> Vec<ApiBudget> {
    let Some(sync) = &admin.sync else {
        return Vec::new();
    };
    let stats = sync.client.stats();
    let now = admin.now_ms();
    let calls: BTreeMap<String, u64> = stats
        .endpoints
        .iter()
        .map(|(api, e)| ((*api).to_owned(), e.calls))
        .collect();
    let mut last = admin
        .budget_sample
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let previous = last
        .clone()
        .filter(|(at, _)| now - at <= 60_000 && now > *at);
    *last = Some((now, calls.clone()));
    let qps = f64::from(admin.config.dingtalk.qps.max(1));
    stats
        .endpoints
        .iter()
        .map(|(api, e)| {
            let rate = previous.as_ref().map_or(0.0, |(at, before)| {
                let before = before.get(*api).copied().unwrap_or(0);
                e.calls.saturating_sub(before) as f64 * 1000.0 / (now - at) as f64
            });
            ApiBudget {
                api: (*api).to_owned(),
                qps_limit: qps,
                calls_per_sec: (rate * 10.0).round() / 10.0,
                throttles: e.throttles,
                retries: e.retries,
                faults: e.server_errors + e.timeouts + e.transport_errors,
            }
        })
        .collect()
}

async fn token(admin: &Admin) -> TokenState {
    let Some(sync) = &admin.sync else {
        return TokenState {
            valid: false,
            expires_in_secs: None,
            reason: "DingTalk is not configured ([dingtalk] client_id)".to_owned(),
        };
    };
    match sync.client.ensure_token().await {
        Ok(()) => TokenState {
            valid: true,
            expires_in_secs: None,
            reason: format!(
                "held; {} token fetch(es) since start",
                sync.client.stats().token_fetches
            ),
        },
        Err(e) => TokenState {
            valid: false,
            expires_in_secs: None,
            reason: sync_engine::error_chain(&e),
        },
    }
}

/// How events arrive. In callback mode nothing but the pushes themselves says whether
/// DingTalk reaches us, so the card shows when the inbox last received one.
async fn events(admin: &Admin) -> Result<EventChannel, BackendError> {
    let Some(stream) = &admin.stream else {
        let newest = admin
            .store
            .inbox_newest_received_ms()
            .await
            .map_err(internal)?;
        return Ok(EventChannel {
            mode: "callback".to_owned(),
            healthy: true,
            last_event_at: newest.map(format_ms),
            detail: "DingTalk pushes events to POST /callbacks/dingtalk".to_owned(),
        });
    };
    let status = stream.borrow().clone();
    let detail = match &status.state {
        StreamState::Connected { since_ms } => format!("connected since {}", format_ms(*since_ms)),
        StreamState::BackingOff {
            retry_at_ms,
            failures,
        } => format!(
            "{failures} failed session(s) in a row; next attempt {}: {}",
            format_ms(*retry_at_ms),
            status.last_error.as_deref().unwrap_or("unknown error")
        ),
        other => format!("{other:?}").to_lowercase(),
    };
    Ok(EventChannel {
        mode: "stream".to_owned(),
        healthy: status.is_ready(),
        last_event_at: status.last_event_at_ms.map(format_ms),
        detail: format!("{detail}; {} event(s) stored", status.events_stored),
    })
}

async fn backlogs(admin: &Admin) -> Result<Vec<Backlog>, BackendError> {
    let store = &admin.store;
    let now = admin.now_ms();
    let age = |at: Option<i64>| at.map(|at| ((now - at).max(0) / 1000) as u64);
    let (inbox, outbox) = store.console_queue_depths().await.map_err(internal)?;
    let oldest_inbox = store
        .inbox_list(Some(QueueState::Pending), None, 1)
        .await
        .map_err(internal)?;
    let oldest_outbox = store
        .outbox_list(Some(QueueState::Pending), None, 1)
        .await
        .map_err(internal)?;
    let oldest_dead = store
        .outbox_list(Some(QueueState::Dead), None, 1)
        .await
        .map_err(internal)?;
    let oldest_dead_in = store
        .inbox_list(Some(QueueState::Dead), None, 1)
        .await
        .map_err(internal)?;
    let dead_at = [
        oldest_dead.first().map(|e| e.created_at_ms),
        oldest_dead_in.first().map(|e| e.received_at_ms),
    ]
    .into_iter()
    .flatten()
    .min();
    Ok(vec![
        Backlog {
            queue: "inbox".to_owned(),
            count: (inbox.pending + inbox.claimed) as u64,
            oldest_age_secs: age(oldest_inbox.first().map(|e| e.received_at_ms)),
        },
        Backlog {
            queue: "outbox".to_owned(),
            count: (outbox.pending + outbox.claimed) as u64,
            oldest_age_secs: age(oldest_outbox.first().map(|e| e.created_at_ms)),
        },
        Backlog {
            queue: "failed".to_owned(),
            count: (inbox.dead + outbox.dead) as u64,
            oldest_age_secs: age(dead_at),
        },
    ])
}
