//! How a department is applied: fetched with `department/get` (60003: it is gone), its parent
//! and managers applied first when the directory does not know them yet, linked on first
//! sight (by the `dingsync:` marker or as DingTalk's root), merged; a parent OA deleted is
//! replaced by the nearest surviving ancestor.

use dingtalk_proto::{ErrCode, dept::DeptDetail};
use directory_model::{Department, DingDeptId, DingUserId, OaDeptId};
use directory_store::{DeptQuery, EntityKind, Expect, StoreError, UserQuery};

use super::lock::Held;
use super::{Applied, Applier, ApplyError, Boxed, deeper, is_code};
use crate::import::{delete_departments, link};
use crate::translate::department::marked_oa_id;
use crate::translate::{self, IdMap, ding};

impl Applier {
    /// Brings one department to DingTalk's current state (or removes it).
    pub fn sync_dept(&self, id: DingDeptId, depth: u32) -> Boxed<'_, Result<Applied, ApplyError>> {
        Box::pin(async move {
            let held = Held::default();
            self.dept(id, depth, &held).await
        })
    }

    /// [`Applier::sync_dept`] under the department's entity lock.
    pub(super) fn dept<'a>(
        &'a self,
        id: DingDeptId,
        depth: u32,
        held: &'a Held,
    ) -> Boxed<'a, Result<Applied, ApplyError>> {
        Box::pin(async move {
            let lock = super::dept_lock(id);
            self.locked(held, &lock, self.dept_locked(id, depth, held))
                .await
        })
    }

    fn dept_locked<'a>(
        &'a self,
        id: DingDeptId,
        depth: u32,
        held: &'a Held,
    ) -> Boxed<'a, Result<Applied, ApplyError>> {
        Box::pin(async move {
            let store = &self.ctx.store;
            let known = store.oa_id_of::<OaDeptId>(&id).await?;
            // Read before DingTalk is; see `merge_and_write`.
            let base_before: Option<Department> = match known {
                Some(oa) => {
                    store
                        .base_get(EntityKind::Department, &oa.to_string())
                        .await?
                }
                None => None,
            };
            let wire = match self.ctx.client.dept_get(ding::wire_dept(id)).await {
                Ok(w) => w,
                Err(e) if is_code(&e, ErrCode::DEPT_NOT_FOUND) => {
                    if let Some(oa) = known {
                        self.gone_contents(oa, depth, held).await?;
                    }
                    return self.dept_gone(known).await;
                }
                Err(e) => return Err(e.into()),
            };
            if !self.dept_in_scope(id).await? {
                return Ok(Applied::ignored());
            }
            crate::branch_copies::BranchCopies::note(store, &wire, self.ctx.now_ms()).await?;
            let mut total = self.parent_first(id, &wire, depth, held).await?;
            let oa_id = match known {
                Some(k) => k,
                None => self.link_new_dept(&wire).await?,
            };
            let (ids, wire, managers) = self.dept_ids(oa_id, id, wire, depth, held).await?;
            total.add(managers);
            if !self.rules_dept_in_scope(&wire, &ids).await? {
                return Ok(total);
            }
            let current = store.get_department(oa_id).await?;
            let mut converted = translate::department::from_wire(
                &wire,
                &ids,
                current.as_ref().map(|c| &c.entity),
                &self.ctx.policy.rules,
            )?;
            // A parent OA deleted (its deletion still queued): the nearest surviving ancestor,
            // and DingTalk is told, as for users in `rehome_from_deleted`.
            let mut rehomed = false;
            if let Some(parent) = converted.parent {
                let surviving = self.nearest_surviving(parent).await?;
                rehomed = surviving != parent;
                converted.parent = Some(surviving);
            }
            total.add(
                self.merge_and_write(current, converted, Some(base_before))
                    .await?,
            );
            if rehomed && let Some(now) = store.get_department(oa_id).await? {
                self.queue_push(&now.entity).await?;
                total.pushes += 1;
            }
            Ok(total)
        })
    }

    /// DingTalk no longer has the department: the OA department (if any) goes, with its
    /// subtree.
    async fn dept_gone(&self, known: Option<OaDeptId>) -> Result<Applied, ApplyError> {
        let store = &self.ctx.store;
        let Some(oa_id) = known else {
            return Ok(Applied::ignored());
        };
        if store.get_department(oa_id).await?.is_none() {
            store.id_map_remove(&oa_id).await?;
            return Ok(Applied::ignored());
        }
        delete_departments(&self.ctx, &self.write_ctx(), &[oa_id]).await?;
        Ok(Applied {
            writes: 1,
            ..Applied::default()
        })
    }

    /// Before OA mirrors DingTalk's deletion of `oa_id`: DingTalk deletes only an empty
    /// department (60005, 60006), so whatever OA still has in it is either stale or OA's own
    /// change not pushed yet, and cascading the deletion over it would delete in OA what
    /// DingTalk still has. The mapped sub-departments and members are first brought to
    /// DingTalk's state (an administrator's move out is applied); a sub-department that OA
    /// itself moved in is then moved up to the nearest surviving ancestor, as the cascade does
    /// with members, and pushed. (Found by the convergence property test, issue 18: a move
    /// delivered but not applied, then the old parent deleted, left a user in a department OA
    /// had cascaded away; an OA move under a department DingTalk deleted lost the department
    /// in OA only.)
    async fn gone_contents(
        &self,
        oa_id: OaDeptId,
        depth: u32,
        held: &Held,
    ) -> Result<(), ApplyError> {
        let store = &self.ctx.store;
        let next = deeper(depth, EntityKind::Department, &oa_id)?;
        let children = store
            .list_departments(&DeptQuery {
                parent: Some(oa_id),
                limit: 1000,
                ..DeptQuery::default()
            })
            .await?
            .items;
        let members = store
            .list_users(&UserQuery {
                department: Some(oa_id),
                limit: 1000,
                ..UserQuery::default()
            })
            .await?
            .items;
        for u in members {
            if let Some(ding) = store.ding_id_of(&u.entity.id).await? {
                self.user(ding, next, held).await?;
            }
        }
        let up = match store
            .get_department(oa_id)
            .await?
            .and_then(|d| d.entity.parent)
        {
            Some(parent) => self.nearest_surviving(parent).await?,
            None => return Ok(()),
        };
        for child in children {
            let Some(ding) = store.ding_id_of(&child.entity.id).await? else {
                continue;
            };
            self.dept(ding, next, held).await?;
            let Some(now) = store.get_department(child.entity.id).await? else {
                continue;
            };
            if now.entity.parent != Some(oa_id) {
                continue;
            }
            let mut moved = now.entity;
            moved.parent = Some(up);
            let wctx = self.write_ctx().with_record_base(false);
            match store
                .save_department(&wctx, moved.clone(), Expect::Version(now.version))
                .await
            {
                Ok(_) => self.queue_push(&moved).await?,
                // Changed meanwhile: the cascade decides, as before.
                Err(StoreError::VersionConflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Whether the department's chain of ancestors is in the policy's scope.
    async fn dept_in_scope(&self, id: DingDeptId) -> Result<bool, ApplyError> {
        if self.ctx.policy.scope.is_everything() || id == DingDeptId::ROOT {
            return Ok(true);
        }
        let chain: Vec<DingDeptId> = self
            .ctx
            .client
            .dept_list_parents(ding::wire_dept(id))
            .await?
            .into_iter()
            .map(ding::dept)
            .collect();
        Ok(self.ctx.policy.scope.contains_chain(&chain))
    }

    /// Applies the parent first when the directory does not know it yet.
    async fn parent_first(
        &self,
        id: DingDeptId,
        wire: &DeptDetail,
        depth: u32,
        held: &Held,
    ) -> Result<Applied, ApplyError> {
        if let Some(parent) = wire.parent_id.map(ding::dept)
            && id != DingDeptId::ROOT
            && self
                .ctx
                .store
                .oa_id_of::<OaDeptId>(&parent)
                .await?
                .is_none()
        {
            let next = deeper(depth, EntityKind::Department, &parent)?;
            return self.dept(parent, next, held).await;
        }
        Ok(Applied::default())
    }

    /// The id map the conversion of `wire` needs (applying managers the directory does not
    /// know yet first), `wire` without the managers that stay unknown (outside the scope, so
    /// not in the directory), and what applying the managers did.
    async fn dept_ids(
        &self,
        oa_id: OaDeptId,
        id: DingDeptId,
        mut wire: DeptDetail,
        depth: u32,
        held: &Held,
    ) -> Result<(IdMap, DeptDetail, Applied), ApplyError> {
        let store = &self.ctx.store;
        let managers: Vec<DingUserId> = wire
            .dept_manager_userid_list
            .iter()
            .flatten()
            .map(ding::user)
            .collect();
        let mut ids = IdMap::default();
        ids.insert_dept(oa_id, id);
        ids.load_refs(
            store,
            wire.parent_id.map(ding::dept),
            managers.iter().cloned(),
        )
        .await?;
        let mut applied = Applied::default();
        for m in &managers {
            if ids.oa_user(m).is_none() {
                let next = deeper(depth, EntityKind::User, m)?;
                applied.add(self.user(m.clone(), next, held).await?);
            }
        }
        ids.load_refs(store, [], managers.iter().cloned()).await?;
        if let Some(list) = &mut wire.dept_manager_userid_list {
            list.retain(|u| ids.oa_user(&ding::user(u)).is_some());
        }
        Ok((ids, wire, applied))
    }

    /// Links a DingTalk department the id map does not know: the OA department its
    /// `dingsync:<id>` source identifier names (an OA-created department whose push has not
    /// saved its link yet), the OA root for DingTalk's root, or a freshly allocated OA id.
    async fn link_new_dept(&self, wire: &DeptDetail) -> Result<OaDeptId, ApplyError> {
        let store = &self.ctx.store;
        let id = ding::dept(wire.dept_id);
        let candidate = if id == DingDeptId::ROOT {
            // Rare (once per directory), so reading the whole directory is fine.
            link::only_root(&store.snapshot().await?.departments)
        } else {
            match marked_oa_id(wire.source_identifier.as_deref()) {
                Some(n) if store.get_department(n).await?.is_some() => Some(n),
                _ => None,
            }
        };
        let candidate = match candidate {
            Some(c) if store.ding_id_of(&c).await?.is_none() => Some(c),
            _ => None,
        };
        let oa_id = match candidate {
            Some(c) => c,
            None => OaDeptId(store.allocate_ids(EntityKind::Department, 1).await?),
        };
        store.id_map_put(&oa_id, &id).await?;
        Ok(oa_id)
    }

    /// `dept` if OA has it, else its nearest ancestor OA still has (walking the base, which
    /// remembers deleted departments' parents), else `dept` itself.
    pub(super) async fn nearest_surviving(&self, dept: OaDeptId) -> Result<OaDeptId, StoreError> {
        let store = &self.ctx.store;
        let mut at = dept;
        for _ in 0..32 {
            if store.get_department(at).await?.is_some() {
                return Ok(at);
            }
            let base: Option<Department> = store
                .base_get(EntityKind::Department, &at.to_string())
                .await?;
            match base.and_then(|b| b.parent) {
                Some(parent) => at = parent,
                None => break,
            }
        }
        Ok(dept)
    }
}
