//! `perform`: every operator action, checked against the current state and written to the
//! operator audit log with the console user's name — refused and failed attempts too, so
//! the log shows what was tried, not only what worked.

use console::BackendError;
use console::views::{ActionOutcome, Actor, DeletionDecision, ObjectKind, OperatorAction};
use directory_model::OaUserId;
use directory_store::{EntityKind, Op, OperatorActionRecord, QueueState};
use sync_engine::plan::{Target, reconcile};
use sync_engine::push::{PushConfig, Pusher};
use sync_engine::{Applier, ApplyOptions, ImportOptions};
use tokio_util::sync::CancellationToken;

use super::object::entity_kind;
use super::runs::{LatestProgress, Recorder, Summary};
use super::{Admin, internal, plan, soft_match};

pub async fn perform(
    admin: &Admin,
    actor: &Actor,
    action: &OperatorAction,
) -> Result<ActionOutcome, BackendError> {
    let result = dispatch(admin, actor, action).await;
    let (kind, oa_id) = subject(admin, action).await;
    let outcome = match &result {
        Ok(done) => done.message.clone(),
        Err(BackendError::Internal(_)) => "failed: the service could not complete it".to_owned(),
        Err(refused) => format!("refused: {refused}"),
    };
    admin
        .store
        .operator_action_record(&OperatorActionRecord {
            id: 0,
            at_ms: admin.now_ms(),
            actor: actor.name.clone(),
            kind,
            oa_id,
            action: action.describe(),
            outcome,
        })
        .await
        .map_err(internal)?;
    result
}

/// The object an action concerns, for its audit record and the object's timeline.
async fn subject(admin: &Admin, action: &OperatorAction) -> (Option<String>, Option<String>) {
    let of = |kind: EntityKind, id: &str| (Some(kind.as_str().to_owned()), Some(id.to_owned()));
    match action {
        OperatorAction::PushNow { kind, id } | OperatorAction::Refetch { kind, id } => {
            of(entity_kind(*kind), id)
        }
        OperatorAction::DecideDeletion { hold, entry, .. } => {
            let id: i64 = entry.as_deref().unwrap_or(hold).parse().unwrap_or(-1);
            let holds = admin.store.held_deletions(None).await.unwrap_or_default();
            holds
                .iter()
                .find(|h| h.id == id)
                .map_or((None, None), |h| of(h.kind, &h.oa_id))
        }
        OperatorAction::RetryDeadLetter { dead_letter }
        | OperatorAction::DropDeadLetter { dead_letter } => {
            let id: i64 = dead_letter.parse().unwrap_or(-1);
            match admin.store.outbox_get(id).await {
                Ok(Some(entry)) => of(entry.kind, &entry.oa_id),
                _ => (None, None),
            }
        }
        OperatorAction::AcceptConflict { conflict }
        | OperatorAction::ApplyOtherSide { conflict } => {
            let id: i64 = conflict.parse().unwrap_or(-1);
            match admin.store.conflict_get(id).await {
                Ok(Some(c)) => of(c.kind, &c.oa_id),
                _ => (None, None),
            }
        }
        OperatorAction::LinkSoftMatch { oa_id, .. } => of(EntityKind::User, oa_id),
        OperatorAction::CreateFromSoftMatch { item } => {
            let id: i64 = item.parse().unwrap_or(-1);
            match admin.store.soft_match_get(id).await {
                Ok(Some(m)) => of(EntityKind::User, &m.found.ding_userid),
                _ => (None, None),
            }
        }
        _ => (None, None),
    }
}

fn number(field: &str, text: &str) -> Result<i64, BackendError> {
    text.parse().map_err(|_| BackendError::Invalid {
        field: field.to_owned(),
        message: format!("{text:?} is not a number"),
    })
}

fn done(message: impl Into<String>) -> Result<ActionOutcome, BackendError> {
    Ok(ActionOutcome {
        message: message.into(),
    })
}

async fn dispatch(
    admin: &Admin,
    actor: &Actor,
    action: &OperatorAction,
) -> Result<ActionOutcome, BackendError> {
    let store = &admin.store;
    let now = admin.now_ms();
    match action {
        OperatorAction::PushNow { kind, id } => push_now(admin, *kind, id).await,
        OperatorAction::Refetch { kind, id } => refetch(admin, *kind, id).await,
        OperatorAction::DecideDeletion {
            hold,
            entry,
            decision,
        } => {
            let approve = *decision == DeletionDecision::Approve;
            let ids = match entry {
                Some(entry) => vec![number("entry", entry)?],
                // A whole hold: every deletion still held with it.
                None => {
                    let hold = number("hold", hold)?;
                    super::attention::same_hold(admin, hold)
                        .await?
                        .ok_or_else(|| {
                            BackendError::Refused(format!(
                                "held deletion {hold} is no longer waiting"
                            ))
                        })?
                }
            };
            decide_deletions(admin, actor, &ids, approve).await
        }
        OperatorAction::AcceptConflict { conflict } => {
            let id = number("conflict", conflict)?;
            if !store
                .conflict_decide(id, &actor.name, now)
                .await
                .map_err(internal)?
            {
                return Err(BackendError::Refused(format!(
                    "conflict {id} was already decided"
                )));
            }
            done(format!("conflict {id}: the merge's result stays"))
        }
        OperatorAction::ApplyOtherSide { conflict } => {
            apply_other_side(admin, actor, &number("conflict", conflict)?).await
        }
        OperatorAction::LinkSoftMatch { item, oa_id } => {
            soft_match::link(admin, actor, number("item", item)?, oa_id).await
        }
        OperatorAction::CreateFromSoftMatch { item } => {
            soft_match::create(admin, actor, number("item", item)?).await
        }
        OperatorAction::RetryDeadLetter { dead_letter } => {
            let id = number("dead_letter", dead_letter)?;
            store
                .outbox_retry_dead(id, now)
                .await
                .map_err(refused_or_internal)?;
            let pushed = drain_pushes(admin).await;
            // The retry ran at once: when DingTalk refused it again, say so and why, instead
            // of a "queued" that reads like success.
            if let Ok(Some(entry)) = store.outbox_get(id).await
                && entry.state == QueueState::Dead
            {
                return Err(BackendError::Refused(format!(
                    "dead letter {id} was retried and DingTalk refused it again: {}; fix the \
                     cause, then retry",
                    entry.last_error.as_deref().unwrap_or("no answer recorded")
                )));
            }
            done(format!("dead letter {id} queued again{pushed}"))
        }
        OperatorAction::DropDeadLetter { dead_letter } => {
            let id = number("dead_letter", dead_letter)?;
            store
                .outbox_drop_dead(id)
                .await
                .map_err(refused_or_internal)?;
            done(format!("dead letter {id} dropped"))
        }
        OperatorAction::ApplyPlan {
            entries,
            confirm_deletions,
        } => {
            let outcome = apply_plan(admin, actor, entries.as_deref(), *confirm_deletions).await;
            // What the page showed is applied (or partly): show the plan as it is now.
            admin.plans.invalidate(admin);
            outcome
        }
        OperatorAction::ComputePlan => {
            admin.sync()?;
            admin.plans.refresh(admin);
            done("computing the plan in the background; the plan page shows it when it is ready")
        }
        OperatorAction::StartImport => start_import(admin, actor).await,
        OperatorAction::StartReconcile => start_reconcile(admin, actor).await,
        OperatorAction::ApproveMappingChange { fingerprint } => {
            super::mapping_change::approve(admin, actor, fingerprint).await
        }
    }
}

fn refused_or_internal(e: directory_store::StoreError) -> BackendError {
    if e.is_client_error() {
        BackendError::Refused(e.to_string())
    } else {
        internal(e)
    }
}

/// Pushes what is queued now, so a retried dead letter's result shows at once.
async fn drain_pushes(admin: &Admin) -> String {
    let Some(sync) = &admin.sync else {
        return String::new();
    };
    let pusher = Pusher::new(sync, rand::random(), PushConfig::default());
    match pusher.drain().await {
        Ok(report) => format!(
            "; {} change(s) pushed to DingTalk, {} to retry later, {} refused",
            report.pushed, report.retried, report.dead_lettered
        ),
        Err(e) => format!("; the push failed: {}", sync_engine::error_chain(&e)),
    }
}

async fn push_now(
    admin: &Admin,
    kind: ObjectKind,
    id: &str,
) -> Result<ActionOutcome, BackendError> {
    let sync = admin.sync()?;
    let pusher = Pusher::new(sync, rand::random(), PushConfig::default());
    match pusher
        .push_now(entity_kind(kind), id, Op::Update)
        .await
        .map_err(internal)?
    {
        Ok(()) => done(format!("{} {id} pushed to DingTalk", kind.label())),
        Err(why) => Err(BackendError::Refused(format!("DingTalk refused: {why}"))),
    }
}

async fn refetch(admin: &Admin, kind: ObjectKind, id: &str) -> Result<ActionOutcome, BackendError> {
    let sync = admin.sync()?;
    let applier = Applier::new(sync.clone(), ApplyOptions::default());
    match kind {
        ObjectKind::User => {
            let ding = store_ding_user(admin, id).await?;
            applier.sync_user(ding, 0).await.map_err(internal)?;
        }
        ObjectKind::Department => {
            let oa: i64 = number("id", id)?;
            let ding = admin
                .store
                .ding_id_of(&directory_model::OaDeptId(oa))
                .await
                .map_err(internal)?
                .ok_or_else(|| BackendError::Refused(format!("department {id} is not linked")))?;
            applier.sync_dept(ding, 0).await.map_err(internal)?;
        }
        ObjectKind::Role | ObjectKind::RoleGroup => {
            applier.sync_roles().await.map(|_| ()).map_err(internal)?
        }
    }
    done(format!(
        "{} {id} re-fetched from DingTalk and merged",
        kind.label()
    ))
}

/// Approves or rejects these held deletions, then applies what approving an import's
/// deletions leaves to apply (once for all of them).
async fn decide_deletions(
    admin: &Admin,
    actor: &Actor,
    ids: &[i64],
    approve: bool,
) -> Result<ActionOutcome, BackendError> {
    let by = format!("console:{}", actor.name);
    let mut from_dingtalk = 0usize;
    let mut in_oa = 0usize;
    let mut refused = Vec::new();
    for &id in ids {
        let held = admin
            .store
            .resolve_held_deletion(id, approve, &by, admin.now_ms())
            .await;
        match held {
            Ok(held) if held.origin == directory_store::Origin::Oa => in_oa += 1,
            Ok(_) => from_dingtalk += 1,
            Err(directory_store::StoreError::EntryNotFound { .. }) => {
                refused.push(format!("held deletion {id} is no longer waiting"));
            }
            // Approving a deletion the OA side asked for applies it at once; the directory
            // may refuse it (the user still manages others, say).
            Err(e) if e.is_client_error() => refused.push(format!(
                "held deletion {id} stays held: {}",
                sync_engine::error_chain(&e)
            )),
            Err(e) => return Err(internal(e)),
        }
    }
    let decided = in_oa + from_dingtalk;
    if decided == 0 {
        return Err(BackendError::Refused(refused.join("; ")));
    }
    let what = match ids {
        [one] => format!("held deletion {one}"),
        _ => format!("{decided} held deletion(s)"),
    };
    let mut message = if !approve {
        format!("{what} rejected; nothing is deleted")
    } else {
        let mut parts = Vec::new();
        if in_oa > 0 {
            parts.push("applied in OA; the push takes it to DingTalk".to_owned());
        }
        if from_dingtalk > 0 {
            let applied = match &admin.sync {
                Some(sync) => sync_engine::import::apply_approved_deletions(sync)
                    .await
                    .map_err(internal)?,
                None => 0,
            };
            parts.push(format!("{applied} deletion(s) applied"));
        }
        format!("{what} approved; {}", parts.join("; "))
    };
    if !refused.is_empty() {
        message.push_str(&format!(" ({})", refused.join("; ")));
    }
    done(message)
}

async fn store_ding_user(
    admin: &Admin,
    id: &str,
) -> Result<directory_model::DingUserId, BackendError> {
    admin
        .store
        .ding_id_of(&OaUserId::new(id))
        .await
        .map_err(internal)?
        .ok_or_else(|| BackendError::Refused(format!("user {id} is not linked to DingTalk")))
}

async fn apply_plan(
    admin: &Admin,
    actor: &Actor,
    selection: Option<&[String]>,
    confirm: bool,
) -> Result<ActionOutcome, BackendError> {
    let sync = admin.sync()?;
    let current = plan::current(admin).await?;
    if current.items.iter().any(|i| i.held) && !confirm {
        return Err(BackendError::Refused(
            "this plan deletes more than the threshold allows; tick the confirmation to apply \
             its deletions too (like reconcile --yes)"
                .to_owned(),
        ));
    }
    let mut run = Recorder::start(admin, "reconcile", &format!("console:{}", actor.name)).await?;
    let pusher = Pusher::new(sync, rand::random(), PushConfig::default());
    let mut failures = Vec::new();
    let mut applied = 0usize;
    match selection {
        None => match reconcile(sync, &pusher, &current, confirm).await {
            Ok(report) => {
                applied = report.applied;
                failures = report.failed;
            }
            Err(e) => failures.push(sync_engine::error_chain(&e)),
        },
        Some(ids) => {
            for (index, item) in current.items.iter().enumerate() {
                if !ids.contains(&plan::entry_id(&current, index)) {
                    continue;
                }
                let (Target::DingTalk, Some(oa_id)) = (item.target, item.oa_id.as_deref()) else {
                    failures.push(format!(
                        "{} {}: OA-side entries are applied with the whole plan",
                        item.kind.as_str().replace('_', " "),
                        item.name
                    ));
                    continue;
                };
                let op = match item.action {
                    sync_engine::plan::Action::Create => Op::Create,
                    sync_engine::plan::Action::Update => Op::Update,
                    sync_engine::plan::Action::Delete => Op::Delete,
                };
                match pusher
                    .push_now(item.kind, oa_id, op)
                    .await
                    .map_err(internal)?
                {
                    Ok(()) => applied += 1,
                    Err(why) => failures.push(format!(
                        "{} {oa_id}: {why}",
                        item.kind.as_str().replace('_', " ")
                    )),
                }
            }
        }
    }
    run.log("info", format!("applied {applied} change(s)"));
    for f in &failures {
        run.log("error", f.clone());
    }
    let summary = Summary::default();
    let id = run.id();
    run.finish(&summary, &failures, None).await?;
    if failures.is_empty() {
        done(format!("applied {applied} change(s) (run {id})"))
    } else {
        done(format!(
            "applied {applied} change(s); {} failed (run {id}): {}",
            failures.len(),
            failures.join("; ")
        ))
    }
}

async fn start_import(admin: &Admin, actor: &Actor) -> Result<ActionOutcome, BackendError> {
    let sync = admin.sync()?.clone();
    let run = Recorder::start(admin, "import", &format!("console:{}", actor.name)).await?;
    let id = run.id();
    // The engine's import future is not `Send` (higher-ranked borrows inside it), so it runs
    // on a thread of its own, driven by the service's runtime; its progress goes to the store
    // for the runs page.
    let handle = tokio::runtime::Handle::current();
    std::thread::spawn(move || {
        handle.block_on(async move {
            let mut run = run;
            let latest = LatestProgress::default();
            latest.set("starting", 0, None);
            let follower = run.follow(latest.clone());
            let result = sync_engine::import(
                &sync,
                &ImportOptions::default(),
                &latest,
                &CancellationToken::new(),
            )
            .await;
            follower.abort();
            let (summary, failures, fatal) = match result {
                Ok(report) => {
                    run.log("info", crate::commands::import_summary(&report));
                    let summary = Summary::of_import(&report);
                    (summary, report.failures, None)
                }
                Err(e) => (
                    Summary::default(),
                    Vec::new(),
                    Some(sync_engine::error_chain(&e)),
                ),
            };
            if let Err(e) = run.finish(&summary, &failures, fatal).await {
                tracing::warn!(error = %e, "could not record the import run");
            }
        })
    });
    done(format!(
        "import started (run {id}); follow it on the runs page"
    ))
}

/// A reconcile started from the runs page: the plan of both sides, then applying it (held
/// deletions stay held), as a task of the service; its progress goes to the runs page.
async fn start_reconcile(admin: &Admin, actor: &Actor) -> Result<ActionOutcome, BackendError> {
    let sync = admin.sync()?.clone();
    let run = Recorder::start(admin, "reconcile", &format!("console:{}", actor.name)).await?;
    let id = run.id();
    let admin = admin.clone();
    tokio::spawn(async move {
        let mut run = run;
        let latest = LatestProgress::default();
        latest.set("planning: reading both sides", 0, None);
        let follower = run.follow(latest.clone());
        let calls_before = sync.client.stats().total_calls();
        let throttles_before = sync.client.stats().total_throttles();
        let (summary, failures, fatal) = match plan::current(&admin).await {
            Err(BackendError::Internal(e)) => (
                Summary::default(),
                Vec::new(),
                Some(sync_engine::error_chain(&*e)),
            ),
            Err(e) => (Summary::default(), Vec::new(), Some(e.to_string())),
            Ok(current) => {
                latest.set("applying the plan", 0, Some(current.items.len() as u64));
                run.log(
                    "info",
                    format!("the plan has {} entries", current.items.len()),
                );
                let pusher = Pusher::new(&sync, rand::random(), PushConfig::default());
                match reconcile(&sync, &pusher, &current, false).await {
                    Ok(report) => {
                        run.log(
                            "info",
                            format!(
                                "applied {}; {} held deletion(s) left for confirmation",
                                report.applied, report.skipped_held
                            ),
                        );
                        let summary = Summary {
                            counts: super::runs::plan_counts(&current, &report),
                            dingtalk_calls: sync.client.stats().total_calls() - calls_before,
                            throttles: sync.client.stats().total_throttles() - throttles_before,
                            progress: None,
                        };
                        (summary, report.failed, None)
                    }
                    Err(e) => (
                        Summary::default(),
                        Vec::new(),
                        Some(sync_engine::error_chain(&e)),
                    ),
                }
            }
        };
        follower.abort();
        for f in &failures {
            run.log("error", f.clone());
        }
        if let Err(e) = run.finish(&summary, &failures, fatal).await {
            tracing::warn!(error = %e, "could not record the reconcile run");
        }
    });
    done(format!(
        "reconcile started (run {id}); follow it on the runs page"
    ))
}

/// Counts per side of an applied plan: what it created, changed and deleted (held deletions
/// as held), and the failures of each side (a failure names its side's entity).
/// Resolves a conflict the other way: the value the merge did not choose is written to OA
/// (as an OA write by the operator, so the pusher takes it to DingTalk), and the conflict is
/// marked decided.
async fn apply_other_side(
    admin: &Admin,
    actor: &Actor,
    id: &i64,
) -> Result<ActionOutcome, BackendError> {
    let store = &admin.store;
    let conflict = store
        .conflict_get(*id)
        .await
        .map_err(internal)?
        .ok_or_else(|| BackendError::NotFound {
            what: "conflict",
            id: id.to_string(),
        })?;
    let other = match conflict.winner {
        directory_model::Side::Oa => conflict.dingtalk.clone(),
        directory_model::Side::DingTalk => conflict.oa.clone(),
    };
    let ctx = directory_store::WriteCtx::oa(format!("console:{}", actor.name), admin.now_ms());
    let field = conflict.field.as_str();
    match conflict.kind {
        EntityKind::User => {
            let saved = store
                .get_user(&OaUserId::new(conflict.oa_id.as_str()))
                .await
                .map_err(internal)?
                .ok_or_else(|| {
                    BackendError::Refused(format!("user {} no longer exists", conflict.oa_id))
                })?;
            let user = with_field(&saved.entity, field, other)?;
            store
                .update_user(&ctx, user, Some(saved.version))
                .await
                .map_err(refused_or_internal)?;
        }
        EntityKind::Department => {
            let oa: i64 = number("conflict", &conflict.oa_id)?;
            let saved = store
                .get_department(directory_model::OaDeptId(oa))
                .await
                .map_err(internal)?
                .ok_or_else(|| {
                    BackendError::Refused(format!("department {oa} no longer exists"))
                })?;
            let dept = with_field(&saved.entity, field, other)?;
            store
                .update_department(&ctx, dept, Some(saved.version))
                .await
                .map_err(refused_or_internal)?;
        }
        other => {
            return Err(BackendError::Refused(format!(
                "a {} conflict cannot be turned around here; change it through the OA API",
                other.as_str()
            )));
        }
    }
    store
        .conflict_decide(*id, &actor.name, admin.now_ms())
        .await
        .map_err(internal)?;
    let pushed = drain_pushes(admin).await;
    done(format!(
        "conflict {id}: {field} now has the other side's value in OA{pushed}"
    ))
}

/// `entity` with its top-level `field` set to `value` (through its serde form, the shape the
/// merge recorded the conflict in).
fn with_field<T: serde::Serialize + serde::de::DeserializeOwned>(
    entity: &T,
    field: &str,
    value: serde_json::Value,
) -> Result<T, BackendError> {
    let mut json = serde_json::to_value(entity).map_err(internal)?;
    let Some(slot) = json.as_object_mut().and_then(|o| o.get_mut(field)) else {
        return Err(BackendError::Refused(format!(
            "{field} is not a field this console can set; change it through the OA API"
        )));
    };
    *slot = value;
    serde_json::from_value(json).map_err(|e| BackendError::Invalid {
        field: field.to_owned(),
        message: format!("the other side's value does not fit: {e}"),
    })
}
