//! How a user is applied: fetched with `user/get` (60121 or 40103: the user left), their
//! departments and manager applied first when the directory does not know them yet, merged,
//! then their role assignments; and the OA-side cleanups DingTalk does silently (managers
//! dropped from departments the user left, memberships of departments OA deleted).

use std::collections::BTreeSet;

use dingtalk_proto::{ErrCode, user::User as WireUser};
use directory_model::{DingDeptId, DingUserId, OaDeptId, OaUserId, User};
use directory_store::{EntityKind, StoreError, Versioned};

use super::lock::Held;
use super::{Applied, Applier, ApplyError, Boxed, MAX_DEPTH, deeper, is_code};
use crate::import::mark_left;
use crate::translate::{self, IdMap, ding};

impl Applier {
    /// Brings one user to DingTalk's current state (including their roles).
    pub fn sync_user(
        &self,
        userid: DingUserId,
        depth: u32,
    ) -> Boxed<'_, Result<Applied, ApplyError>> {
        Box::pin(async move {
            let held = Held::default();
            self.user(userid, depth, &held).await
        })
    }

    /// [`Applier::sync_user`] under the user's entity lock.
    pub(super) fn user<'a>(
        &'a self,
        userid: DingUserId,
        depth: u32,
        held: &'a Held,
    ) -> Boxed<'a, Result<Applied, ApplyError>> {
        Box::pin(async move {
            let lock = super::user_lock(&userid);
            self.locked(held, &lock, self.user_locked(userid, depth, held))
                .await
        })
    }

    fn user_locked<'a>(
        &'a self,
        userid: DingUserId,
        depth: u32,
        held: &'a Held,
    ) -> Boxed<'a, Result<Applied, ApplyError>> {
        Box::pin(async move {
            let store = &self.ctx.store;
            let known = store.oa_id_of::<OaUserId>(&userid).await?;
            // Read before DingTalk is; see `merge_and_write`.
            let base_before: Option<User> = match &known {
                Some(id) => store.base_get(EntityKind::User, id.as_str()).await?,
                None => None,
            };
            let wire = match self.ctx.client.user_get(&ding::wire_user(&userid)).await {
                Ok(w) => w,
                Err(e)
                    if is_code(&e, ErrCode::USER_NOT_FOUND)
                        || is_code(&e, ErrCode::INVALID_USERID) =>
                {
                    // Gone from DingTalk: the user left (or never existed).
                    return self.user_left(known.as_ref()).await;
                }
                Err(e) => return Err(e.into()),
            };
            if !self.user_in_scope(&wire).await? {
                return Ok(Applied::ignored());
            }
            let mut total = self.user_refs_first(&userid, &wire, depth, held).await?;
            let oa_id = match known {
                Some(id) => id,
                None => self.link_new_user(&userid).await?,
            };
            let (ids, wire) = self.user_ids(&oa_id, &userid, wire).await?;
            let current = store.get_user(&oa_id).await?;
            let hint = current.as_ref().map(|c| &c.entity);
            let rules = &self.ctx.policy.rules;
            let read = translate::user::read_wire(&wire, &ids, hint, rules)?;
            if !self.rules_user_in_scope(&wire, &read.dingtalk).await? {
                return Ok(total);
            }
            let mut converted = rules
                .user_to_oa(read.dingtalk, hint, read.expected)
                .map_err(translate::ConvertError::from)?;
            let rehomed = self.rehome_from_deleted(&mut converted).await?;
            let managed = self
                .managed_candidates(&converted, current.as_ref())
                .await?;
            total.add(
                self.merge_and_write(current, converted, Some(base_before))
                    .await?,
            );
            total.add(
                self.recheck_managed(&oa_id, &wire, managed, depth, held)
                    .await?,
            );
            if rehomed && let Some(now) = store.get_user(&oa_id).await? {
                // DingTalk must move the user too, or the pending deletion stays refused.
                self.queue_push(&now.entity).await?;
                total.pushes += 1;
            }
            if store.get_user(&oa_id).await?.is_none() {
                // Deleted in OA, its deletion on its way to DingTalk: no roles to give it (the
                // convergence property test found an assignment left on a deleted user).
                return Ok(total);
            }
            let roles: Vec<directory_model::DingRoleId> = wire
                .role_list
                .iter()
                .flatten()
                .map(|r| ding::role(r.id))
                .collect();
            total.add(self.sync_user_roles(&oa_id, &roles, depth, held).await?);
            Ok(total)
        })
    }

    /// DingTalk no longer has the user: the OA user (if any) left.
    async fn user_left(&self, known: Option<&OaUserId>) -> Result<Applied, ApplyError> {
        let Some(oa_id) = known else {
            return Ok(Applied::ignored());
        };
        let left = mark_left(&self.ctx, &self.write_ctx(), oa_id).await?;
        Ok(Applied {
            writes: usize::from(left),
            ..Applied::default()
        })
    }

    /// Whether one of the user's departments is in the policy's scope.
    async fn user_in_scope(&self, wire: &WireUser) -> Result<bool, ApplyError> {
        if self.ctx.policy.scope.is_everything() {
            return Ok(true);
        }
        let chains = self
            .ctx
            .client
            .dept_list_parents_by_user(&wire.userid)
            .await?;
        Ok(chains.iter().any(|c| {
            let chain: Vec<DingDeptId> = c.iter().copied().map(ding::dept).collect();
            self.ctx.policy.scope.contains_chain(&chain)
        }))
    }

    /// Applies the departments and the manager the user references that the directory does
    /// not know yet (their create events may still be behind in the queue).
    async fn user_refs_first(
        &self,
        userid: &DingUserId,
        wire: &WireUser,
        depth: u32,
        held: &Held,
    ) -> Result<Applied, ApplyError> {
        let store = &self.ctx.store;
        let mut total = Applied::default();
        let mut ids = IdMap::default();
        let depts: Vec<DingDeptId> = wire
            .dept_id_list
            .iter()
            .flatten()
            .map(|d| ding::dept(*d))
            .collect();
        ids.load_refs(store, depts.iter().copied(), []).await?;
        for d in &depts {
            if ids.oa_dept(*d).is_none() {
                let next = deeper(depth, EntityKind::Department, d)?;
                total.add(self.dept(*d, next, held).await?);
            }
        }
        if let Some(m) = wire.manager_userid.as_ref().filter(|m| !m.0.is_empty()) {
            let m = ding::user(m);
            ids.load_refs(store, [], [m.clone()]).await?;
            if ids.oa_user(&m).is_none() && m != *userid {
                let next = deeper(depth, EntityKind::User, &m)?;
                total.add(self.user(m.clone(), next, held).await?);
            }
        }
        Ok(total)
    }

    /// The id map the conversion of `wire` needs, and `wire` without the departments that stay
    /// unlinked (out of scope: not the directory's business).
    async fn user_ids(
        &self,
        oa_id: &OaUserId,
        userid: &DingUserId,
        mut wire: WireUser,
    ) -> Result<(IdMap, WireUser), StoreError> {
        // Collected first: an iterator borrowing `wire` would make this future not `Send`.
        let depts: Vec<DingDeptId> = wire
            .dept_id_list
            .iter()
            .flatten()
            .map(|d| ding::dept(*d))
            .collect();
        let manager: Option<DingUserId> = wire.manager_userid.as_ref().map(ding::user);
        let mut ids = IdMap::default();
        ids.insert_user(oa_id.clone(), userid.clone());
        ids.load_refs(&self.ctx.store, depts, manager).await?;
        if let Some(list) = &mut wire.dept_id_list {
            list.retain(|d| ids.oa_dept(ding::dept(*d)).is_some());
        }
        Ok((ids, wire))
    }

    /// The departments OA may name this user a manager of: those the user is in, was in (OA's
    /// entity), or was in when last synced (the base). Read before the merge moves the base.
    async fn managed_candidates(
        &self,
        converted: &User,
        current: Option<&Versioned<User>>,
    ) -> Result<BTreeSet<OaDeptId>, StoreError> {
        let mut candidates: BTreeSet<OaDeptId> = converted.department_ids().collect();
        if let Some(c) = current {
            candidates.extend(c.entity.department_ids());
        }
        if let Some(b) = self
            .ctx
            .store
            .base_get::<User>(EntityKind::User, converted.id.as_str())
            .await?
        {
            candidates.extend(b.department_ids());
        }
        Ok(candidates)
    }

    /// DingTalk drops a user from the managers of a department they leave, and sends no event
    /// for that department (a later push may even bring the user back, without the manager
    /// role). So every department OA says this user manages, among `candidates`, is read again
    /// when DingTalk's `leader_in_dept` disagrees (found by the convergence property test: OA
    /// kept a manager DingTalk had dropped).
    async fn recheck_managed(
        &self,
        oa_id: &OaUserId,
        wire: &WireUser,
        candidates: BTreeSet<OaDeptId>,
        depth: u32,
        held: &Held,
    ) -> Result<Applied, ApplyError> {
        let store = &self.ctx.store;
        let leads: BTreeSet<i64> = wire
            .leader_in_dept
            .iter()
            .flatten()
            .filter(|l| l.leader)
            .map(|l| l.dept_id.0)
            .collect();
        let mut total = Applied::default();
        for d in candidates {
            if depth < MAX_DEPTH
                && let Some(dept) = store.get_department(d).await?
                && dept.entity.managers.contains(oa_id)
                && let Some(ding) = store.ding_id_of(&d).await?
                && !leads.contains(&ding.0)
            {
                // Under this event's locks: the department may name this user again.
                total.add(self.dept(ding, depth + 1, held).await?);
            }
        }
        Ok(total)
    }

    /// Moves memberships of departments OA deleted (still linked, their deletion waiting in
    /// the outbox) to the nearest ancestor OA still has, as OA's cascade did with the members
    /// it knew; returns whether any moved. Without this a user DingTalk added to such a
    /// department before the deletion reached it lands in a department OA no longer has, and
    /// DingTalk refuses the deletion forever (60005; found by the convergence property test).
    async fn rehome_from_deleted(&self, user: &mut User) -> Result<bool, StoreError> {
        let mut moved = false;
        let mut kept: Vec<directory_model::Membership> = Vec::with_capacity(user.departments.len());
        for m in std::mem::take(&mut user.departments) {
            let dept = self.nearest_surviving(m.dept).await?;
            if dept != m.dept {
                moved = true;
                if user.main_department == Some(m.dept) {
                    user.main_department = Some(dept);
                }
            }
            if !kept.iter().any(|k| k.dept == dept) {
                kept.push(directory_model::Membership { dept, ..m });
            }
        }
        user.departments = kept;
        Ok(moved)
    }

    /// Links a DingTalk user the id map does not know: the OA user of the same id (an OA-created
    /// user whose push has not saved its link yet), or a new OA user under that id.
    async fn link_new_user(&self, userid: &DingUserId) -> Result<OaUserId, ApplyError> {
        let oa_id = OaUserId::new(userid.as_str());
        self.ctx.store.id_map_put(&oa_id, userid).await?;
        Ok(oa_id)
    }
}
