//! `/console/attention`: everything waiting for a person — held deletions, undecided
//! conflicts, ambiguous soft matches of the last import, and dead letters with the entries
//! they block.

use console::BackendError;
use console::views::{
    Attention, BlockedEntry, ConflictItem, DeadLetterItem, HeldDeletion, HeldDeletionGroup,
    ObjectKind, Side, SoftMatchCandidate, SoftMatchItem,
};
use std::collections::HashMap;

use directory_store::{EntityKind, HoldState, Origin, QueueState};

use super::time::format_ms;
use super::{Admin, internal};

/// Dead letters and conflicts shown at most.
const LIST_CAP: u32 = 500;
/// Deletions listed per hold (a large import's hold can hold thousands; deciding the hold
/// decides them all).
const HOLD_ROWS: usize = 200;

pub fn object_kind(kind: EntityKind) -> ObjectKind {
    match kind {
        EntityKind::Department => ObjectKind::Department,
        EntityKind::Role => ObjectKind::Role,
        EntityKind::RoleGroup => ObjectKind::RoleGroup,
        EntityKind::User | EntityKind::RoleAssignment => ObjectKind::User,
    }
}

pub async fn count(admin: &Admin) -> Result<u64, BackendError> {
    let store = &admin.store;
    let held = store.held_deletions_count().await.map_err(internal)?;
    let conflicts = store.conflicts_undecided_count().await.map_err(internal)?;
    let (outbox_dead, inbox_dead) = store.dead_letter_counts().await.map_err(internal)?;
    let soft = store.soft_matches_waiting_count().await.map_err(internal)?;
    let mapping = u64::from(super::mapping_change::waiting(admin).await?.is_some());
    Ok((held + conflicts + outbox_dead + inbox_dead + soft).max(0) as u64 + mapping)
}

pub async fn attention(admin: &Admin) -> Result<Attention, BackendError> {
    let store = &admin.store;
    let holds = held_groups(admin).await?;
    let conflicts = store
        .conflicts_undecided(LIST_CAP)
        .await
        .map_err(internal)?
        .into_iter()
        .map(|c| {
            let text = |v: &serde_json::Value| match v {
                serde_json::Value::Null => None,
                serde_json::Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            };
            let (result, rule) = match c.winner {
                directory_model::Side::Oa => (text(&c.oa), "OA won (conflict_winner = oa)"),
                directory_model::Side::DingTalk => (
                    text(&c.dingtalk),
                    "DingTalk won (conflict_winner = dingtalk)",
                ),
            };
            ConflictItem {
                id: c.id.to_string(),
                kind: object_kind(c.kind),
                object_id: c.oa_id.clone(),
                name: c.oa_id.clone(),
                field: c.field.clone(),
                base: text(&c.base),
                oa: text(&c.oa),
                dingtalk: text(&c.dingtalk),
                result,
                rule: rule.to_owned(),
            }
        })
        .collect();
    Ok(Attention {
        holds,
        conflicts,
        soft_matches: soft_matches(admin).await?,
        dead_letters: dead_letters(admin).await?,
        mapping_change: super::mapping_change::waiting(admin).await?,
    })
}

/// Which hold a held deletion belongs to: one run's deletions share the side that asked
/// and the reason (which names the run's counts and threshold), so they are decided
/// together, as the run held them.
fn hold_key(hold: &directory_store::HeldDeletion) -> (Origin, &str) {
    (hold.origin, hold.reason.as_str())
}

/// The held deletions in the same hold as held deletion `id` (itself included), or `None`
/// when `id` is not waiting.
pub async fn same_hold(admin: &Admin, id: i64) -> Result<Option<Vec<i64>>, BackendError> {
    let held = admin
        .store
        .held_deletions(Some(HoldState::Held))
        .await
        .map_err(internal)?;
    let Some(first) = held.iter().find(|h| h.id == id) else {
        return Ok(None);
    };
    let key = hold_key(first);
    Ok(Some(
        held.iter()
            .filter(|h| hold_key(h) == key)
            .map(|h| h.id)
            .collect(),
    ))
}

/// Held deletions grouped by hold, oldest hold first, each object with its name.
async fn held_groups(admin: &Admin) -> Result<Vec<HeldDeletionGroup>, BackendError> {
    let store = &admin.store;
    let held = store
        .held_deletions(Some(HoldState::Held))
        .await
        .map_err(internal)?;
    let names = held_names(admin, &held).await?;
    let mut groups: Vec<((Origin, String), HeldDeletionGroup)> = Vec::new();
    for hold in &held {
        // A deletion that came from OA would delete in DingTalk, and the other way round.
        let side = match hold.origin {
            Origin::Oa => Side::DingTalk,
            _ => Side::Oa,
        };
        let entry = HeldDeletion {
            entry_id: hold.id.to_string(),
            kind: object_kind(hold.kind),
            object_id: hold.oa_id.clone(),
            name: names
                .get(&(hold.kind, hold.oa_id.clone()))
                .cloned()
                .unwrap_or_else(|| hold.oa_id.clone()),
            side,
        };
        let key = (hold.origin, hold.reason.clone());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, group)) if group.entries.len() >= HOLD_ROWS => group.more += 1,
            Some((_, group)) => group.entries.push(entry),
            None => groups.push((
                key,
                HeldDeletionGroup {
                    // The hold is named by its first deletion; deciding it decides them all.
                    hold_id: hold.id.to_string(),
                    reason: hold.reason.clone(),
                    created_at: format_ms(hold.created_at_ms),
                    entries: vec![entry],
                    more: 0,
                },
            )),
        }
    }
    Ok(groups.into_iter().map(|(_, g)| g).collect())
}

/// The names of held objects that are still in the directory (users and departments, read
/// in one query per kind; roles and role groups by id).
async fn held_names(
    admin: &Admin,
    held: &[directory_store::HeldDeletion],
) -> Result<HashMap<(EntityKind, String), String>, BackendError> {
    let store = &admin.store;
    let ids_of = |kind: EntityKind| -> Vec<String> {
        held.iter()
            .filter(|h| h.kind == kind)
            .map(|h| h.oa_id.clone())
            .collect()
    };
    let mut names = HashMap::new();
    for user in store
        .users_by_ids(&ids_of(EntityKind::User))
        .await
        .map_err(internal)?
    {
        names.insert(
            (EntityKind::User, user.entity.id.as_str().to_owned()),
            user.entity.name,
        );
    }
    let dept_ids: Vec<i64> = ids_of(EntityKind::Department)
        .iter()
        .filter_map(|id| id.parse().ok())
        .collect();
    for dept in store.department_briefs(&dept_ids).await.map_err(internal)? {
        names.insert((EntityKind::Department, dept.id.to_string()), dept.name);
    }
    for kind in [EntityKind::Role, EntityKind::RoleGroup] {
        for id in ids_of(kind) {
            let Ok(n) = id.parse::<i64>() else { continue };
            let name = match kind {
                EntityKind::Role => store
                    .get_role(directory_model::OaRoleId(n))
                    .await
                    .map_err(internal)?
                    .map(|r| r.entity.name),
                _ => store
                    .get_role_group(directory_model::OaRoleGroupId(n))
                    .await
                    .map_err(internal)?
                    .map(|g| g.entity.name),
            };
            if let Some(name) = name {
                names.insert((kind, id), name);
            }
        }
    }
    Ok(names)
}

/// The ambiguous matches the last import left out, each with its candidates' names.
async fn soft_matches(admin: &Admin) -> Result<Vec<SoftMatchItem>, BackendError> {
    let store = &admin.store;
    let mut items = Vec::new();
    for m in store
        .soft_matches_waiting(LIST_CAP)
        .await
        .map_err(internal)?
    {
        let key = m.found.key.as_deref().map(|k| k.replace('_', " "));
        let reason = match &key {
            Some(key) => format!(
                "Their {key} matches {} OA users, so the import did not guess which one they \
                 are and left them out (found {}).",
                m.found.candidates.len(),
                format_ms(m.seen_at_ms)
            ),
            None => format!(
                "Their userid is an OA user already linked to another DingTalk user, so the \
                 import left them out (found {}).",
                format_ms(m.seen_at_ms)
            ),
        };
        let mut candidates = Vec::new();
        for oa_id in &m.found.candidates {
            let name = store
                .get_user(&directory_model::OaUserId::new(oa_id.as_str()))
                .await
                .map_err(internal)?
                .map_or_else(|| oa_id.clone(), |u| u.entity.name);
            candidates.push(SoftMatchCandidate {
                oa_id: oa_id.clone(),
                name,
                matched_on: key.clone().unwrap_or_else(|| "userid".to_owned()),
            });
        }
        items.push(SoftMatchItem {
            id: m.id.to_string(),
            dingtalk_userid: m.found.ding_userid.clone(),
            dingtalk_name: m.found.ding_name.clone(),
            reason,
            candidates,
        });
    }
    Ok(items)
}

async fn dead_letters(admin: &Admin) -> Result<Vec<DeadLetterItem>, BackendError> {
    let store = &admin.store;
    let dead = store
        .outbox_list(Some(QueueState::Dead), None, LIST_CAP)
        .await
        .map_err(internal)?;
    let pending = store
        .outbox_list(Some(QueueState::Pending), None, LIST_CAP)
        .await
        .map_err(internal)?;
    let mut items = Vec::new();
    for d in dead {
        let error = d
            .last_error
            .clone()
            .unwrap_or_else(|| "no answer recorded".to_owned());
        // Later changes of the same object wait behind its dead letter (dependency order).
        let blocked = pending
            .iter()
            .filter(|p| p.kind == d.kind && p.oa_id == d.oa_id && p.id > d.id)
            .map(|p| BlockedEntry {
                id: p.id.to_string(),
                kind: object_kind(p.kind),
                object_id: p.oa_id.clone(),
                operation: p.op.as_str().to_owned(),
            })
            .collect();
        items.push(DeadLetterItem {
            id: d.id.to_string(),
            kind: object_kind(d.kind),
            object_id: d.oa_id.clone(),
            name: d.oa_id.clone(),
            operation: d.op.as_str().to_owned(),
            errcode: errcode(&error),
            errmsg: error,
            attempts: d.attempts.max(0) as u32,
            last_attempt_at: format_ms(d.next_attempt_at_ms),
            blocked,
        });
    }
    Ok(items)
}

fn errcode(error: &str) -> i64 {
    error
        .split(|c: char| !c.is_ascii_alphanumeric())
        .skip_while(|w| *w != "errcode")
        .nth(1)
        .and_then(|w| w.parse().ok())
        .unwrap_or(0)
}
