//! `/console/{users,departments,roles,role-groups}/{id}`: OA's values beside DingTalk's (fetched live, one
//! call, within the client's budget), the id mapping, and the timeline: directory changes
//! from the audit log (OA writes, applied DingTalk events, imports, reconciles), pushes and
//! DingTalk's answers from the outbox, merge conflicts, and operator actions, newest first.

use console::BackendError;
use console::views::{
    DingTalkAnswer, FieldComparison, IdMapping, MergeDecision, ObjectDetail, ObjectKind,
    TimelineEntry, TimelineKind,
};
use directory_model::{OaDeptId, OaRoleGroupId, OaRoleId, OaUserId, User};
use directory_store::{EntityKind, Origin};
use sync_engine::convert::ding;

use super::directory::States;
use super::time::format_ms;
use super::{Admin, internal};

pub fn entity_kind(kind: ObjectKind) -> EntityKind {
    match kind {
        ObjectKind::User => EntityKind::User,
        ObjectKind::Department => EntityKind::Department,
        ObjectKind::Role => EntityKind::Role,
        ObjectKind::RoleGroup => EntityKind::RoleGroup,
    }
}

pub async fn object(
    admin: &Admin,
    kind: ObjectKind,
    id: &str,
) -> Result<ObjectDetail, BackendError> {
    let not_found = || BackendError::NotFound {
        what: kind.label(),
        id: id.to_owned(),
    };
    let (name, fields, mapping, unavailable) = match kind {
        ObjectKind::User => {
            let user = admin
                .store
                .get_user(&OaUserId::new(id))
                .await
                .map_err(internal)?
                .ok_or_else(not_found)?
                .entity;
            user_sides(admin, user).await?
        }
        ObjectKind::Department => {
            let oa_id: i64 = id.parse().map_err(|_| not_found())?;
            let dept = admin
                .store
                .get_department(OaDeptId(oa_id))
                .await
                .map_err(internal)?
                .ok_or_else(not_found)?
                .entity;
            let ding = admin.store.ding_id_of(&dept.id).await.map_err(internal)?;
            let (theirs, unavailable) = match (ding, &admin.sync) {
                (Some(d), Some(sync)) => match sync.client.dept_get(ding::wire_dept(d)).await {
                    Ok(detail) => (Some(detail.name), None),
                    Err(e) => (None, Some(sync_engine::error_chain(&e))),
                },
                (None, _) => (None, Some("not linked to a DingTalk department".to_owned())),
                (_, None) => (None, Some("DingTalk is not configured".to_owned())),
            };
            let mapping = IdMapping {
                oa_id: id.to_owned(),
                dingtalk_id: ding.map(|d| d.0.to_string()),
                linked_at: None,
                linked_by: None,
            };
            let fields = vec![FieldComparison::new(
                "name",
                Some(dept.name.clone()),
                theirs,
            )];
            (dept.name, fields, mapping, unavailable)
        }
        ObjectKind::Role => role_sides(admin, id, not_found).await?,
        ObjectKind::RoleGroup => role_group_sides(admin, id, not_found).await?,
    };
    let mut mapping = mapping;
    if mapping.dingtalk_id.is_some() {
        let at = admin
            .store
            .linked_at_ms(entity_kind(kind), id)
            .await
            .map_err(internal)?;
        mapping.linked_at = Some(at.map_or_else(
            || "before this version recorded link times".to_owned(),
            format_ms,
        ));
    }
    let states = States::of_ids(admin, entity_kind(kind), &[id.to_owned()]).await?;
    let timeline = timeline(admin, entity_kind(kind), id).await?;
    Ok(ObjectDetail {
        kind,
        id: id.to_owned(),
        name,
        state: states.of(id),
        fields,
        dingtalk_fetched_at: unavailable.is_none().then(|| format_ms(admin.now_ms())),
        dingtalk_unavailable: unavailable,
        mapping,
        timeline,
    })
}

type Sides = (String, Vec<FieldComparison>, IdMapping, Option<String>);

/// A role: its name and group beside DingTalk's (`role/getrole`, one call).
async fn role_sides(
    admin: &Admin,
    id: &str,
    not_found: impl Fn() -> BackendError,
) -> Result<Sides, BackendError> {
    let oa_id = OaRoleId(id.parse().map_err(|_| not_found())?);
    let role = admin
        .store
        .get_role(oa_id)
        .await
        .map_err(internal)?
        .ok_or_else(&not_found)?
        .entity;
    let group_name = |group: OaRoleGroupId| async move {
        admin
            .store
            .get_role_group(group)
            .await
            .ok()
            .flatten()
            .map(|g| format!("{} ({})", g.entity.name, group))
    };
    let ding = admin.store.ding_id_of(&oa_id).await.map_err(internal)?;
    let (theirs, unavailable) = match (ding, &admin.sync) {
        (Some(d), Some(sync)) => match sync.client.role_get(ding::wire_role(d)).await {
            Ok(detail) => {
                // DingTalk names the group by its id; show the OA group it is linked to.
                let group = match admin
                    .store
                    .oa_id_of::<OaRoleGroupId>(&ding::group(detail.group_id))
                    .await
                    .map_err(internal)?
                {
                    Some(oa) => group_name(oa).await,
                    None => Some(format!("DingTalk group {} (not linked)", detail.group_id)),
                };
                (Some((detail.name, group)), None)
            }
            Err(e) => (None, Some(sync_engine::error_chain(&e))),
        },
        (None, _) => (None, Some("not linked to a DingTalk role".to_owned())),
        (_, None) => (None, Some("DingTalk is not configured".to_owned())),
    };
    let ours_group = group_name(role.group).await;
    let fields = match theirs {
        Some((name, group)) => vec![
            FieldComparison::new("name", Some(role.name.clone()), Some(name)),
            FieldComparison::new("group", ours_group, group),
        ],
        None => vec![
            FieldComparison {
                differs: false,
                ..FieldComparison::new("name", Some(role.name.clone()), None)
            },
            FieldComparison {
                differs: false,
                ..FieldComparison::new("group", ours_group, None)
            },
        ],
    };
    let mapping = IdMapping {
        oa_id: id.to_owned(),
        dingtalk_id: ding.map(|d| d.to_string()),
        linked_at: None,
        linked_by: None,
    };
    Ok((role.name, fields, mapping, unavailable))
}

/// A role group: its name beside DingTalk's (`role/getrolegroup`, one call).
async fn role_group_sides(
    admin: &Admin,
    id: &str,
    not_found: impl Fn() -> BackendError,
) -> Result<Sides, BackendError> {
    let oa_id = OaRoleGroupId(id.parse().map_err(|_| not_found())?);
    let group = admin
        .store
        .get_role_group(oa_id)
        .await
        .map_err(internal)?
        .ok_or_else(&not_found)?
        .entity;
    let ding = admin.store.ding_id_of(&oa_id).await.map_err(internal)?;
    let (theirs, unavailable) = match (ding, &admin.sync) {
        (Some(d), Some(sync)) => match sync.client.role_group_get(ding::wire_group(d)).await {
            Ok(detail) => (Some(detail.group_name), None),
            Err(e) => (None, Some(sync_engine::error_chain(&e))),
        },
        (None, _) => (None, Some("not linked to a DingTalk role group".to_owned())),
        (_, None) => (None, Some("DingTalk is not configured".to_owned())),
    };
    let field = FieldComparison::new("name", Some(group.name.clone()), theirs.clone());
    let fields = vec![FieldComparison {
        differs: field.differs && theirs.is_some(),
        ..field
    }];
    let mapping = IdMapping {
        oa_id: id.to_owned(),
        dingtalk_id: ding.map(|d| d.to_string()),
        linked_at: None,
        linked_by: None,
    };
    Ok((group.name, fields, mapping, unavailable))
}

async fn user_sides(admin: &Admin, user: User) -> Result<Sides, BackendError> {
    let ding = admin.store.ding_id_of(&user.id).await.map_err(internal)?;
    let (theirs, unavailable) = match (&ding, &admin.sync) {
        (Some(d), Some(sync)) => match sync.client.user_get(&ding::wire_user(d)).await {
            Ok(wire) => (Some(wire), None),
            Err(e) => (None, Some(sync_engine::error_chain(&e))),
        },
        (None, _) => (None, Some("not linked to a DingTalk user".to_owned())),
        (_, None) => (None, Some("DingTalk is not configured".to_owned())),
    };
    let t = theirs.as_ref();
    let mobile = user.mobile.as_ref().map(|m| m.number.clone());
    let fields = vec![
        FieldComparison::new("name", Some(user.name.clone()), t.map(|w| w.name.clone())),
        FieldComparison::new("mobile", mobile, t.and_then(|w| w.mobile.clone())),
        FieldComparison::new(
            "job_number",
            user.job_number.clone(),
            t.and_then(|w| w.job_number.clone()),
        ),
        FieldComparison::new("email", user.email.clone(), t.and_then(|w| w.email.clone())),
        FieldComparison::new(
            "telephone",
            user.telephone.clone(),
            t.and_then(|w| w.telephone.clone()),
        ),
        FieldComparison::new(
            "work_place",
            user.work_place.clone(),
            t.and_then(|w| w.work_place.clone()),
        ),
        FieldComparison::new(
            "remark",
            user.remark.clone(),
            t.and_then(|w| w.remark.clone()),
        ),
    ];
    let fields = if theirs.is_some() {
        fields
    } else {
        // Without DingTalk's side every field would show as different; show OA's alone.
        fields
            .into_iter()
            .map(|f| FieldComparison {
                differs: false,
                ..f
            })
            .collect()
    };
    let mapping = IdMapping {
        oa_id: user.id.as_str().to_owned(),
        dingtalk_id: ding.map(|d| d.0),
        linked_at: None,
        linked_by: None,
    };
    Ok((user.name, fields, mapping, unavailable))
}

fn text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Every recorded step of one object, newest first.
pub async fn timeline(
    admin: &Admin,
    kind: EntityKind,
    id: &str,
) -> Result<Vec<TimelineEntry>, BackendError> {
    let store = &admin.store;
    let mut entries: Vec<(i64, TimelineEntry)> = Vec::new();
    let entry = |at: i64, origin: String, kind: TimelineKind, summary: String| TimelineEntry {
        at: format_ms(at),
        origin,
        kind,
        summary,
        merge: None,
        answer: None,
    };
    for record in store.audit_of(kind, id).await.map_err(internal)? {
        let what = match record.origin {
            Origin::DingTalk => TimelineKind::EventReceived,
            Origin::Import => TimelineKind::Import,
            Origin::Reconcile => TimelineKind::PlanEntry,
            Origin::Oa => TimelineKind::OaWrite,
        };
        let summary = format!(
            "{} by {} ({})",
            record.op.as_str(),
            record.actor,
            changed_fields(record.before.as_ref(), record.after.as_ref())
        );
        entries.push((
            record.at_ms,
            entry(
                record.at_ms,
                record.origin.as_str().to_owned(),
                what,
                summary,
            ),
        ));
    }
    for push in store.outbox_of(kind, id, 200).await.map_err(internal)? {
        let mut e = entry(
            push.created_at_ms,
            "pusher".to_owned(),
            TimelineKind::Push,
            format!(
                "{} queued for DingTalk: {} after {} attempt(s)",
                push.op.as_str(),
                push.state.as_str(),
                push.attempts
            ),
        );
        if let Some(error) = &push.last_error {
            e.kind = TimelineKind::DingTalkAnswer;
            e.answer = Some(DingTalkAnswer {
                errcode: errcode_of(error),
                errmsg: error.clone(),
            });
        }
        entries.push((push.created_at_ms, e));
    }
    for conflict in store.conflicts_of(kind, id).await.map_err(internal)? {
        let winner = match conflict.winner {
            directory_model::Side::Oa => "OA",
            directory_model::Side::DingTalk => "DingTalk",
        };
        let mut e = entry(
            conflict.at_ms,
            "merge".to_owned(),
            TimelineKind::Merge,
            format!("both sides changed {}; {winner} won", conflict.field),
        );
        let result = match conflict.winner {
            directory_model::Side::Oa => text(&conflict.oa),
            directory_model::Side::DingTalk => text(&conflict.dingtalk),
        };
        e.merge = Some(MergeDecision {
            field: conflict.field.clone(),
            base: text(&conflict.base),
            dingtalk: text(&conflict.dingtalk),
            oa: text(&conflict.oa),
            result,
            rule: format!("conflict_winner = {}", winner.to_lowercase()),
        });
        entries.push((conflict.at_ms, e));
    }
    for action in store
        .operator_actions_of(kind.as_str(), id)
        .await
        .map_err(internal)?
    {
        entries.push((
            action.at_ms,
            entry(
                action.at_ms,
                format!("console:{}", action.actor),
                TimelineKind::OperatorAction,
                format!("{}: {}", action.action, action.outcome),
            ),
        ));
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.0));
    Ok(entries.into_iter().map(|(_, e)| e).collect())
}

/// DingTalk's `errcode` in a recorded error (`… errcode 60121 …`), else 0.
fn errcode_of(error: &str) -> i64 {
    error
        .split(|c: char| !c.is_ascii_alphanumeric())
        .skip_while(|w| *w != "errcode")
        .nth(1)
        .and_then(|w| w.parse().ok())
        .unwrap_or(0)
}

/// The top-level fields that differ between two states, or what happened when one is absent.
fn changed_fields(before: Option<&serde_json::Value>, after: Option<&serde_json::Value>) -> String {
    match (before, after) {
        (None, Some(_)) => "created".to_owned(),
        (Some(_), None) => "deleted".to_owned(),
        (Some(serde_json::Value::Object(b)), Some(serde_json::Value::Object(a))) => {
            let mut changed: Vec<String> = a
                .iter()
                .filter(|(k, v)| b.get(*k) != Some(*v))
                .map(|(k, v)| format!("{k} → {}", text(v).unwrap_or_else(|| "empty".into())))
                .collect();
            changed.extend(
                b.keys()
                    .filter(|k| !a.contains_key(*k))
                    .map(|k| format!("{k} → empty")),
            );
            if changed.is_empty() {
                "no field changed".to_owned()
            } else {
                changed.join(", ")
            }
        }
        _ => "changed".to_owned(),
    }
}
