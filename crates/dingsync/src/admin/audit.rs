//! `/console/audit`: directory changes (the audit log) and operator actions together, newest
//! first, searched by object, origin, actor and time.

use console::BackendError;
use console::views::{AuditEntry, AuditPage, AuditQuery};
use directory_store::AuditSearch;

use super::time::{format_ms, parse_date};
use super::{Admin, internal};

const PAGE: usize = 200;

fn date(field: &str, text: Option<&String>) -> Result<Option<i64>, BackendError> {
    match text.map(|t| t.trim()).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => parse_date(t)
            .map(Some)
            .ok_or_else(|| BackendError::Invalid {
                field: field.to_owned(),
                message: format!("{t:?} is not a date like 2026-12-07 or 2026-12-07 15:30"),
            }),
    }
}

fn nonempty(text: Option<&String>) -> Option<String> {
    text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

pub async fn search(admin: &Admin, query: &AuditQuery) -> Result<AuditPage, BackendError> {
    let from_ms = date("from", query.from.as_ref())?;
    let to_ms = date("to", query.to.as_ref())?;
    let object = nonempty(query.object.as_ref());
    let actor = nonempty(query.actor.as_ref());
    let origin = nonempty(query.origin.as_ref());
    let mut entries: Vec<(i64, AuditEntry)> = Vec::new();
    let console_only = origin.as_deref() == Some("console");
    if !console_only {
        let search = AuditSearch {
            oa_id: object.clone(),
            origin: origin.clone(),
            actor_contains: actor.clone(),
            from_ms,
            to_ms,
            limit: PAGE as u32 + 1,
        };
        for r in admin.store.audit_search(&search).await.map_err(internal)? {
            entries.push((
                r.at_ms,
                AuditEntry {
                    at: format_ms(r.at_ms),
                    actor: r.actor.clone(),
                    origin: r.origin.as_str().to_owned(),
                    object_kind: r.kind.as_str().to_owned(),
                    object_id: r.oa_id.clone(),
                    action: r.op.as_str().to_owned(),
                    detail: String::new(),
                },
            ));
        }
    }
    if origin.is_none() || console_only {
        let actions = admin
            .store
            .operator_actions_search(
                actor.as_deref(),
                object.as_deref(),
                from_ms,
                to_ms,
                PAGE as u32 + 1,
            )
            .await
            .map_err(internal)?;
        for a in actions {
            entries.push((
                a.at_ms,
                AuditEntry {
                    at: format_ms(a.at_ms),
                    actor: a.actor.clone(),
                    origin: "console".to_owned(),
                    object_kind: a.kind.clone().unwrap_or_default(),
                    object_id: a.oa_id.clone().unwrap_or_default(),
                    action: a.action.clone(),
                    detail: a.outcome.clone(),
                },
            ));
        }
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.0));
    let truncated = entries.len() > PAGE;
    entries.truncate(PAGE);
    Ok(AuditPage {
        entries: entries.into_iter().map(|(_, e)| e).collect(),
        truncated,
    })
}
