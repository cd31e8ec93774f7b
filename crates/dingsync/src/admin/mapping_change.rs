//! A changed `[mapping]`/`[scope]` on the attention page, and its approval from the console or
//! the admin API (`POST /api/v1/admin/actions` with `{"action": "approve_mapping_change",
//! "fingerprint": …}`): the console's `dingsync reconcile --yes` for a mapping change.
//!
//! Approving does what the command does, in the same order: plan, apply the whole plan with
//! its held deletions (the operator confirmed them by approving), and only if nothing failed
//! record the running rules as approved (`sync_engine::approval`), which releases the held
//! workers. The action names the fingerprint the operator saw, so a config changed again in
//! the meantime is refused rather than approved unseen.

use console::BackendError;
use console::views::{ActionOutcome, Actor, MappingChange};
use sync_engine::approval;
use sync_engine::plan::reconcile;
use sync_engine::push::{PushConfig, Pusher};

use super::runs::{Recorder, Summary};
use super::{Admin, internal, plan};

/// The waiting change, if one waits (two reads of `sync_state`: cheap enough for every page).
pub async fn waiting(admin: &Admin) -> Result<Option<MappingChange>, BackendError> {
    let Some(sync) = &admin.sync else {
        return Ok(None);
    };
    let rules = &sync.policy.rules;
    if !approval::pending(&admin.store, rules)
        .await
        .map_err(internal)?
    {
        return Ok(None);
    }
    Ok(Some(MappingChange {
        approved: approval::approved(&admin.store).await.map_err(internal)?,
        running: approval::fingerprint_of(rules),
        reason: "[mapping]/[scope] changed since they were last approved: nothing is synced \
                 until the plan the change implies is applied and the change approved"
            .to_owned(),
    }))
}

/// Applies the plan the running rules imply and approves them.
pub async fn approve(
    admin: &Admin,
    actor: &Actor,
    fingerprint: &str,
) -> Result<ActionOutcome, BackendError> {
    let sync = admin.sync()?;
    let Some(change) = waiting(admin).await? else {
        return Err(BackendError::Refused(
            "no mapping change waits for approval".to_owned(),
        ));
    };
    if change.running != fingerprint {
        return Err(BackendError::Refused(format!(
            "the service now runs mapping {}, not the {} you approved: look at the plan again",
            short(&change.running),
            short(fingerprint)
        )));
    }
    let current = plan::current(admin).await?;
    let mut run = Recorder::start(admin, "reconcile", &format!("console:{}", actor.name)).await?;
    let pusher = Pusher::new(sync, rand::random(), PushConfig::default());
    let (applied, failures) = match reconcile(sync, &pusher, &current, true).await {
        Ok(report) => (report.applied, report.failed),
        Err(e) => (0, vec![sync_engine::error_chain(&e)]),
    };
    run.log("info", format!("applied {applied} change(s)"));
    for f in &failures {
        run.log("error", f.clone());
    }
    let id = run.id();
    run.finish(&Summary::default(), &failures, None).await?;
    if !failures.is_empty() {
        return Err(BackendError::Refused(format!(
            "applied {applied} change(s) but {} failed (run {id}), so the mapping change is not \
             approved yet: {}",
            failures.len(),
            failures.join("; ")
        )));
    }
    approval::approve(&admin.store, &sync.policy.rules, admin.now_ms())
        .await
        .map_err(internal)?;
    Ok(ActionOutcome {
        message: format!(
            "applied {applied} change(s) (run {id}); mapping {} is approved and the held \
             workers go on",
            short(fingerprint)
        ),
    })
}

fn short(fingerprint: &str) -> &str {
    fingerprint.get(..12).unwrap_or(fingerprint)
}
