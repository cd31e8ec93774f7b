//! How a user is pushed: created under their OA id (so a repeated create answers 60102 and is
//! adopted), updated, removed when they leave or are deleted, re-created when DingTalk lost
//! them, and the department managers DingTalk silently drops when a user leaves a department.

use directory_model::{Department, DingUserId, OaUserId, User, UserState};
use directory_store::{EntityKind, Expect, Op, OutboxEntry, StoreError, WriteCtx};

use super::step::{Flow, Step, is_code, is_not_found};
use super::{Failpoint, Pusher};
use crate::translate::ding;
use crate::translate::user::{UserRefs, create_request, update_request};

/// What an attempt to create a user came to.
enum CreateOutcome {
    /// DingTalk created it; mapping and base are saved.
    Created,
    /// The userid exists already; update it instead.
    Exists,
    /// Stop with this step.
    Stop(Step),
}

impl Pusher {
    pub(super) async fn push_user(
        &self,
        entry: &OutboxEntry,
        id: OaUserId,
    ) -> Result<Step, StoreError> {
        if let Some(why) = crate::branch_copies::skip_user(&self.store, &id).await? {
            tracing::info!(user = %id, "{why}; not pushed");
            return Ok(Step::Done);
        }
        if entry.op == Op::Delete {
            return self.delete_user(&id, true).await;
        }
        let Some(current) = self.store.get_user(&id).await? else {
            // Deleted in OA since; its own delete entry follows. DingTalk loses the user now
            // rather than then: the update may have been a cascade moving the user out of a
            // department whose deletion is queued before the user's, and DingTalk refuses that
            // deletion (60005) while the user is still in it, so waiting for the user's delete
            // entry would wait forever (found by the convergence property test).
            if self.store.ding_id_of(&id).await?.is_some() {
                return self.delete_user(&id, false).await;
            }
            return Ok(Step::Done);
        };
        if !self.user_in_scope(&current.entity).await? {
            tracing::debug!(user = %id, "user out of scope; not pushed");
            return Ok(Step::Done);
        }
        if let Some(step) = self.rules_scope_user(&current.entity).await? {
            return Ok(step);
        }
        let mut entity = current.entity;
        // Several orgs: this org's DingTalk holds the user's memberships in its tree only, and
        // a user with none there left this org (only this membership goes).
        if !crate::org_scope::trim_user_to_org(&self.store, &mut entity).await? {
            if self.store.ding_id_of(&id).await?.is_some() {
                return self.delete_user(&id, true).await;
            }
            return Ok(Step::Done);
        }
        let (mut user, base) = self.with_base(entity).await?;
        if user.state == UserState::Left {
            return self.push_left(&id, &user).await;
        }
        let refs = match self.user_refs(&mut user).await? {
            Flow::Continue(refs) => refs,
            Flow::Break(step) => return Ok(step),
        };
        let mapped = self.store.ding_id_of(&id).await?;
        let userid = mapped
            .clone()
            .unwrap_or_else(|| DingUserId::new(id.as_str()));
        if mapped.is_none() {
            match self.create_user(entry, &user, &userid, &refs).await? {
                CreateOutcome::Created => return Ok(Step::Done),
                CreateOutcome::Exists => {}
                CreateOutcome::Stop(step) => return Ok(step),
            }
        }
        self.update_user(
            entry,
            &user,
            &userid,
            &refs,
            base.as_ref(),
            mapped.is_some(),
        )
        .await
    }

    /// A user who left: removed from DingTalk, mapping and base kept for a rehire.
    async fn push_left(&self, id: &OaUserId, user: &User) -> Result<Step, StoreError> {
        let step = self.delete_user(id, false).await?;
        if matches!(step, Step::Done)
            && let Some(ding) = self.store.ding_id_of(id).await?
        {
            self.store
                .record_pushed(id, &ding, user, self.clock.now_ms())
                .await?;
        }
        Ok(step)
    }

    /// The DingTalk ids `user` references, or the wait for a department. A manager whose
    /// creation is still queued is left out for now (of the request and of `user`), as for
    /// departments; the change that named them queued a later update of this user.
    async fn user_refs(&self, user: &mut User) -> Result<Flow<UserRefs>, StoreError> {
        let mut depts = Vec::with_capacity(user.departments.len());
        for m in &user.departments {
            match self.store.ding_id_of(&m.dept).await? {
                Some(d) => depts.push(ding::wire_dept(d)),
                None => {
                    let why = format!("department {} has no DingTalk id yet", m.dept);
                    let step = self
                        .wait_for(EntityKind::Department, &m.dept.to_string(), why)
                        .await?;
                    return Ok(Flow::Break(step));
                }
            }
        }
        let manager = match &user.manager {
            Some(m) => self.user_in_dingtalk(m).await?,
            None => None,
        };
        if manager.is_none() {
            user.manager = None;
        }
        let manager = manager.as_ref().map(ding::wire_user);
        Ok(Flow::Continue(UserRefs { depts, manager }))
    }

    /// Makes DingTalk's user `userid` hold `user` (re-creating it if DingTalk lost it).
    async fn update_user(
        &self,
        entry: &OutboxEntry,
        user: &User,
        userid: &DingUserId,
        refs: &UserRefs,
        base: Option<&User>,
        mapped: bool,
    ) -> Result<Step, StoreError> {
        let req = match update_request(
            user,
            &ding::wire_user(userid),
            refs,
            base,
            &self.policy.rules,
        ) {
            Ok(req) => req,
            Err(e) => return Ok(Step::Dead(mapping_failed(&e))),
        };
        match self.client.user_update(&req).await {
            Ok(()) => {}
            Err(e) if mapped && is_not_found(&e) => {
                // 60121 does not say whose id it did not find: the manager the request names
                // may have left, in which case the leave event clears OA's manager and the retry
                // succeeds (found by the convergence property test: re-creating the user failed
                // on the same manager and became a dead letter).
                if refs.manager.is_some()
                    && self.client.user_get(&ding::wire_user(userid)).await.is_ok()
                {
                    return Ok(Step::wait(format!(
                        "the manager is not in DingTalk (left?): {e}"
                    )));
                }
                // Mapped but gone (left in DingTalk, or deleted there): create it again.
                return match self.create_user(entry, user, userid, refs).await? {
                    CreateOutcome::Created => Ok(Step::Done),
                    CreateOutcome::Exists => Ok(Step::wait("user reappeared while being pushed")),
                    CreateOutcome::Stop(step) => Ok(step),
                };
            }
            // The create answered 60102 yet the userid is not found: DingTalk keeps the id
            // of a user who was deleted, and the OA user re-created under it needs another.
            Err(e) if is_code(&e, &[dingtalk_proto::ErrCode::DEPT_NOT_FOUND]) => {
                return Ok(Step::wait(format!("a department is gone in DingTalk: {e}")));
            }
            Err(e) if !mapped && is_not_found(&e) => {
                return self
                    .create_under_new_userid(entry, user, userid, refs, &e)
                    .await;
            }
            Err(e) => return Ok(Step::from_client(&e)),
        }
        self.store
            .record_pushed(&user.id, userid, user, self.clock.now_ms())
            .await?;
        if let Some(before) = base {
            self.restore_managers_of_left_departments(user, before)
                .await?;
        }
        Ok(Step::Done)
    }

    /// DingTalk drops a user from the managers of every department the user leaves, and sends
    /// no event for those departments. When OA still names the user as a manager there (OA
    /// allows a manager who is not a member, and so does DingTalk's department update), the
    /// department is queued for a push that sets its managers again; its base forgets the user,
    /// as DingTalk did, so a merge before that push sees OA as the side holding the manager.
    /// (The convergence property test found the manager silently dropped on DingTalk.)
    async fn restore_managers_of_left_departments(
        &self,
        user: &User,
        before: &User,
    ) -> Result<(), StoreError> {
        let now = self.clock.now_ms();
        for left in before
            .department_ids()
            .filter(|d| !user.departments.iter().any(|m| m.dept == *d))
        {
            let key = left.to_string();
            let Some(mut base) = self
                .store
                .base_get::<Department>(EntityKind::Department, &key)
                .await?
            else {
                continue;
            };
            if !base.managers.contains(&user.id) {
                continue;
            }
            base.managers.retain(|m| m != &user.id);
            self.store
                .base_set(EntityKind::Department, &key, Some(&base), now)
                .await?;
            let Some(oa) = self.store.get_department(left).await? else {
                continue;
            };
            if oa.entity.managers.contains(&user.id) {
                self.restore_manager(user, oa, now).await?;
            }
        }
        Ok(())
    }

    /// Queues the push that gives department `oa` its manager `user` back in DingTalk.
    async fn restore_manager(
        &self,
        user: &User,
        oa: directory_store::Versioned<Department>,
        now: i64,
    ) -> Result<(), StoreError> {
        let key = oa.entity.id.to_string();
        if oa.entity.parent.is_none() {
            // Nobody can update DingTalk's root department (60018): OA follows DingTalk.
            let mut root = oa.entity;
            root.managers.retain(|m| m != &user.id);
            let ctx = WriteCtx::reconcile("pusher", now)
                .with_enqueue(false)
                .with_record_base(false);
            match self
                .store
                .save_department(&ctx, root, Expect::Version(oa.version))
                .await
            {
                // A concurrent OA edit of the root wins; its own push settles it.
                Ok(_) | Err(StoreError::VersionConflict { .. }) => {}
                Err(e) => return Err(e),
            }
        } else {
            let value = serde_json::to_value(&oa.entity)?;
            let ctx = WriteCtx::reconcile("pusher", now).with_record_base(false);
            self.store
                .enqueue_push(&ctx, EntityKind::Department, &key, &value)
                .await?;
        }
        Ok(())
    }

    /// Creates `user` under `userid`; on 60102 (the userid exists, e.g. our own earlier attempt
    /// before a crash) reports [`CreateOutcome::Exists`] so the caller updates it instead.
    async fn create_user(
        &self,
        entry: &OutboxEntry,
        user: &User,
        userid: &DingUserId,
        refs: &UserRefs,
    ) -> Result<CreateOutcome, StoreError> {
        let req = match create_request(user, &ding::wire_user(userid), refs, &self.policy.rules) {
            Ok(req) => req,
            Err(refused) => return Ok(CreateOutcome::Stop(Step::Dead(refused.to_string()))),
        };
        match self.client.user_create(&req).await {
            Ok(created) => {
                if self.crash_here(Failpoint::AfterAccept, entry) {
                    return Ok(CreateOutcome::Stop(Step::Crash(Failpoint::AfterAccept)));
                }
                let ding = ding::user(&created.userid);
                self.store
                    .record_pushed(&user.id, &ding, user, self.clock.now_ms())
                    .await?;
                Ok(CreateOutcome::Created)
            }
            Err(e) if is_code(&e, &[dingtalk_proto::ErrCode::USERID_EXISTS]) => {
                Ok(CreateOutcome::Exists)
            }
            // A department the request names was deleted in DingTalk; its deletion event moves
            // the user in OA, and the retry sends that (found by the convergence property test,
            // issue 18: the create was a dead letter at once).
            Err(e) if is_code(&e, &[dingtalk_proto::ErrCode::DEPT_NOT_FOUND]) => Ok(
                CreateOutcome::Stop(Step::wait(format!("a department is gone in DingTalk: {e}"))),
            ),
            // The manager named in the request left DingTalk; its leave event clears OA's
            // manager and the retry creates the user without one.
            Err(e) if refs.manager.is_some() && is_not_found(&e) => Ok(CreateOutcome::Stop(
                Step::wait(format!("the manager is not in DingTalk (left?): {e}")),
            )),
            Err(e) => Ok(CreateOutcome::Stop(Step::from_client(&e))),
        }
    }

    /// Creates `user`, whose own userid DingTalk keeps for a deleted user (a user deleted in OA
    /// and created again with the same id: DingTalk has no API to re-hire them, and refuses the
    /// id with 60102 while `user/get` and `user/update` answer 60121), under `<id>.2`, `<id>.3`…
    /// The id map holds the new userid from then on. A candidate that exists and no other OA
    /// user owns is our own earlier attempt (a crash after DingTalk accepted it) and is
    /// adopted, so a retry never creates a second user (issue 18, B2).
    async fn create_under_new_userid(
        &self,
        entry: &OutboxEntry,
        user: &User,
        held: &DingUserId,
        refs: &UserRefs,
        refused: &dingtalk_client::ClientError,
    ) -> Result<Step, StoreError> {
        if refs.manager.is_some() && self.client.user_get(&ding::wire_user(held)).await.is_ok() {
            // The 60121 was about the manager the request names, not the user.
            return Ok(Step::wait(format!(
                "the manager is not in DingTalk (left?): {refused}"
            )));
        }
        for n in 2..=MAX_REISSUE {
            let candidate = reissued_userid(held, n);
            let other_owner = self.store.oa_id_of::<OaUserId>(&candidate).await?;
            if other_owner.as_ref().is_some_and(|o| o != &user.id)
                || self
                    .store
                    .get_user(&OaUserId::new(candidate.as_str()))
                    .await?
                    .is_some()
            {
                continue;
            }
            match self.create_user(entry, user, &candidate, refs).await? {
                CreateOutcome::Created => return Ok(Step::Done),
                CreateOutcome::Stop(step) => return Ok(step),
                CreateOutcome::Exists => {
                    match self.client.user_get(&ding::wire_user(&candidate)).await {
                        Ok(_) => {
                            return Box::pin(
                                self.update_user(entry, user, &candidate, refs, None, true),
                            )
                            .await;
                        }
                        // Held by another deleted user too: the next candidate.
                        Err(e) if is_not_found(&e) => {}
                        Err(e) => return Ok(Step::from_client(&e)),
                    }
                }
            }
        }
        Ok(Step::Dead(format!(
            "DingTalk keeps userid {held} and {} more for deleted users: {refused}",
            MAX_REISSUE - 1
        )))
    }

    /// Removes a user from DingTalk; `forget` also drops the mapping and base (the OA user is
    /// gone for good), otherwise they stay so a rehire maps to the same userid.
    async fn delete_user(&self, id: &OaUserId, forget: bool) -> Result<Step, StoreError> {
        let userid = self.ding_user(id).await?;
        match self.client.user_delete(&ding::wire_user(&userid)).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Ok(Step::from_client(&e)),
        }
        if forget {
            self.store
                .record_push_deleted(id, self.clock.now_ms())
                .await?;
        }
        Ok(Step::Done)
    }

    /// The DingTalk userid of an OA user: the id map's entry, or the OA id itself (users
    /// created by dingsync and users imported from DingTalk share their id).
    pub(super) async fn ding_user(&self, oa: &OaUserId) -> Result<DingUserId, StoreError> {
        Ok(self
            .store
            .ding_id_of(oa)
            .await?
            .unwrap_or_else(|| DingUserId::new(oa.as_str())))
    }

    /// The DingTalk userid of an OA user known to exist in DingTalk (mapped, or synced
    /// before: imported users have a base), or `None` while their creation is still queued.
    pub(super) async fn user_in_dingtalk(
        &self,
        oa: &OaUserId,
    ) -> Result<Option<DingUserId>, StoreError> {
        if let Some(ding) = self.store.ding_id_of(oa).await? {
            return Ok(Some(ding));
        }
        let base: Option<serde_json::Value> =
            self.store.base_get(EntityKind::User, oa.as_str()).await?;
        Ok(base.map(|_| DingUserId::new(oa.as_str())))
    }

    /// Whether a user is in scope: one of their departments is.
    async fn user_in_scope(&self, user: &User) -> Result<bool, StoreError> {
        if self.policy.scope.is_everything_oa() {
            return Ok(true);
        }
        for m in &user.departments {
            if let Some(d) = self.store.get_department(m.dept).await?
                && self.dept_in_scope(&d.entity).await?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Userids tried for one OA user whose own DingTalk keeps for a deleted user.
const MAX_REISSUE: usize = 9;

/// The `n`th userid for an OA user whose own userid `held` DingTalk keeps: `<held>.<n>`, the
/// stem shortened so the whole fits DingTalk's 64 characters.
fn reissued_userid(held: &DingUserId, n: usize) -> DingUserId {
    let suffix = format!(".{n}");
    let mut stem = held.as_str().to_owned();
    while stem.len() + suffix.len() > 64 {
        stem.pop();
    }
    DingUserId::new(format!("{stem}{suffix}"))
}

/// A dead letter's reason for a `[mapping]` expression that failed for this entity.
pub(super) fn mapping_failed(e: &mapping::MapError) -> String {
    format!(
        "the mapping failed for this entity: {}",
        crate::error_chain(e)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reissued_userids_fit_dingtalks_limit() {
        assert_eq!(
            reissued_userid(&DingUserId::new("alice"), 2).as_str(),
            "alice.2"
        );
        let long = DingUserId::new("x".repeat(64));
        let id = reissued_userid(&long, 3);
        assert_eq!(id.as_str().len(), 64);
        assert!(id.as_str().ends_with(".3"));
    }
}
