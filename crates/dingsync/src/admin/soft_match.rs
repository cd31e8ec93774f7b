//! Deciding an ambiguous soft match the import left out (the attention page's "link to this
//! one" / "none of these: create new", and `POST /api/v1/admin/actions` with
//! `link_soft_match` / `create_from_soft_match`).
//!
//! Linking writes the id map entry the import would have written had the match been unique,
//! then applies the DingTalk user as an event would (the merge decides each field by the
//! usual rules). Creating applies the DingTalk user unlinked, which makes a new OA user whose
//! id is the userid, exactly as the import does for a DingTalk user it matches to nobody.
//! Both refuse when the state moved on since the import (already linked, already decided,
//! the candidate gone), saying what changed.

use console::BackendError;
use console::views::{ActionOutcome, Actor};
use directory_model::{DingUserId, OaUserId};
use directory_store::SoftMatchRecord;
use sync_engine::{Applier, ApplyOptions};

use super::{Admin, internal};

/// The match, if it still waits.
async fn waiting(admin: &Admin, id: i64) -> Result<SoftMatchRecord, BackendError> {
    let record = admin
        .store
        .soft_match_get(id)
        .await
        .map_err(internal)?
        .ok_or_else(|| BackendError::NotFound {
            what: "soft match",
            id: id.to_string(),
        })?;
    if let Some(decision) = &record.decision {
        return Err(BackendError::Refused(format!(
            "soft match {id} was already decided ({decision}, by {})",
            record.decided_by.as_deref().unwrap_or("someone")
        )));
    }
    Ok(record)
}

/// Refuses when the DingTalk user got linked since the import.
async fn not_linked_yet(admin: &Admin, ding: &DingUserId) -> Result<(), BackendError> {
    if let Some(oa) = admin
        .store
        .oa_id_of::<OaUserId>(ding)
        .await
        .map_err(internal)?
    {
        return Err(BackendError::Refused(format!(
            "DingTalk user {ding} is already linked to OA user {oa}"
        )));
    }
    Ok(())
}

async fn decided(
    admin: &Admin,
    id: i64,
    decision: &str,
    actor: &Actor,
) -> Result<(), BackendError> {
    let by = format!("console:{}", actor.name);
    if admin
        .store
        .soft_match_decide(id, decision, &by, admin.now_ms())
        .await
        .map_err(internal)?
    {
        Ok(())
    } else {
        Err(BackendError::Refused(format!(
            "soft match {id} was decided by someone else meanwhile"
        )))
    }
}

pub async fn link(
    admin: &Admin,
    actor: &Actor,
    id: i64,
    oa_id: &str,
) -> Result<ActionOutcome, BackendError> {
    let record = waiting(admin, id).await?;
    if !record.found.candidates.iter().any(|c| c == oa_id) {
        return Err(BackendError::Invalid {
            field: "oa_id".to_owned(),
            message: format!(
                "{oa_id:?} is not one of this match's candidates ({})",
                record.found.candidates.join(", ")
            ),
        });
    }
    let store = &admin.store;
    let oa = OaUserId::new(oa_id);
    if store.get_user(&oa).await.map_err(internal)?.is_none() {
        return Err(BackendError::Refused(format!(
            "OA user {oa_id} no longer exists"
        )));
    }
    if let Some(other) = store.ding_id_of(&oa).await.map_err(internal)? {
        return Err(BackendError::Refused(format!(
            "OA user {oa_id} is already linked to DingTalk user {other}"
        )));
    }
    let ding = DingUserId::new(record.found.ding_userid.as_str());
    not_linked_yet(admin, &ding).await?;
    store.id_map_put(&oa, &ding).await.map_err(internal)?;
    decided(admin, id, &format!("link:{oa_id}"), actor).await?;
    let merged = match &admin.sync {
        Some(sync) => Applier::new(sync.clone(), ApplyOptions::default())
            .sync_user(ding.clone(), 0)
            .await
            .map(|_| "; DingTalk's values merged".to_owned())
            .unwrap_or_else(|e| {
                format!(
                    "; merging DingTalk's values failed ({}), the next import or event merges them",
                    sync_engine::error_chain(&e)
                )
            }),
        None => String::new(),
    };
    Ok(ActionOutcome {
        message: format!("DingTalk user {ding} linked to OA user {oa_id}{merged}"),
    })
}

pub async fn create(admin: &Admin, actor: &Actor, id: i64) -> Result<ActionOutcome, BackendError> {
    let record = waiting(admin, id).await?;
    let sync = admin.sync()?;
    let store = &admin.store;
    let ding = DingUserId::new(record.found.ding_userid.as_str());
    not_linked_yet(admin, &ding).await?;
    let same_id = OaUserId::new(ding.as_str());
    if store.get_user(&same_id).await.map_err(internal)?.is_some() {
        return Err(BackendError::Refused(format!(
            "OA already has a user with id {same_id}, linked to another DingTalk user, so a new \
             one cannot take that id; link one of the candidates, or free the id in OA first"
        )));
    }
    let applied = Applier::new(sync.clone(), ApplyOptions::default())
        .sync_user(ding.clone(), 0)
        .await;
    if store.get_user(&same_id).await.map_err(internal)?.is_none() {
        // Nothing was created: take back the link the applier made for it, so the next
        // import sees the match as before.
        store.id_map_remove(&same_id).await.map_err(internal)?;
        let why = match applied {
            Err(e) => sync_engine::error_chain(&e),
            Ok(_) => "DingTalk's answer put them outside the synced scope".to_owned(),
        };
        return Err(BackendError::Refused(format!(
            "DingTalk user {ding} could not be created in OA: {why}"
        )));
    }
    decided(admin, id, "create", actor).await?;
    Ok(ActionOutcome {
        message: format!("DingTalk user {ding} created in OA as a new user {same_id}"),
    })
}
