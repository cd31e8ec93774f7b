//! How a department is pushed: create (marked with `dingsync:<oa id>`, found again by that
//! marker on a retry), update, delete, and DingTalk's refusals that only a neighbour's push can
//! cure (members and sub-departments still inside a department OA deleted, a cycle with an
//! administrator's concurrent move).

use dingtalk_client::ClientError;
use dingtalk_proto as wire;
use directory_model::{Department, DingDeptId, OaDeptId, OaUserId};
use directory_store::{EntityKind, Expect, Op, OutboxEntry, StoreError, WriteCtx};

use super::step::{Flow, Step, is_code, prior_attempt_may_have_succeeded};
use super::{Failpoint, Pusher};
use crate::translate::department::{
    DeptRefs, create_request, marked_oa_id, needs_manager_update, source_marker, update_request,
};
use crate::translate::ding;

impl Pusher {
    pub(super) async fn push_department(
        &self,
        entry: &OutboxEntry,
        id: OaDeptId,
    ) -> Result<Step, StoreError> {
        if let Some(why) = crate::branch_copies::skip_department(&self.store, id).await? {
            tracing::info!(dept = %id, "{why}; not pushed");
            return Ok(Step::Done);
        }
        if entry.op == Op::Delete {
            return self.delete_department(entry, id).await;
        }
        let Some(current) = self.store.get_department(id).await? else {
            // Deleted in OA since; its own delete entry follows this one.
            return Ok(Step::Done);
        };
        // `oa_dept` is the OA entity; `dept` is what this push makes DingTalk hold (and so the
        // base), which can lag behind OA in the managers (see `dept_refs`).
        let oa_dept = current.entity;
        if !self.dept_in_scope(&oa_dept).await? {
            tracing::debug!(dept = %id, "department out of scope; not pushed");
            return Ok(Step::Done);
        }
        if let Some(step) = self.rules_scope_dept(&oa_dept).await? {
            return Ok(step);
        }
        let (mut dept, base) = self.with_base(oa_dept.clone()).await?;
        let Some(parent) = dept.parent else {
            // The OA root is DingTalk's department 1, which nobody can update (60018).
            self.store.id_map_put(&id, &DingDeptId::ROOT).await?;
            return Ok(Step::Done);
        };
        let refs = match self.dept_refs(&mut dept, parent).await? {
            Flow::Continue(refs) => refs,
            Flow::Break(step) => return Ok(step),
        };
        let mut ding = self.store.ding_id_of(&id).await?;
        if ding.is_none() && entry.attempts > 1 {
            ding = match self.find_department(&dept, refs.parent).await {
                Ok(found) => found,
                // Listing the parent's children: the parent is gone from DingTalk.
                Err(e) if is_code(&e, &[wire::ErrCode::DEPT_NOT_FOUND]) => {
                    return Ok(parent_gone(id, &e));
                }
                Err(e) => return Ok(Step::from_client(&e)),
            };
        }
        let ding = match ding {
            Some(ding) => ding,
            None => {
                let created = self
                    .create_department(entry, &mut dept, oa_dept, current.version, &refs)
                    .await?;
                match created {
                    Flow::Continue(ding) => ding,
                    Flow::Break(step) => return Ok(step),
                }
            }
        };
        self.update_department(id, ding, &dept, &refs, base.as_ref())
            .await
    }

    /// The DingTalk ids `dept` references, or the wait for its parent. Managers whose own
    /// creation is still queued (it waits for this department) are left out, of the request and
    /// of `dept` (so of the base); the OA change that named them queued a later update of this
    /// department.
    async fn dept_refs(
        &self,
        dept: &mut Department,
        parent: OaDeptId,
    ) -> Result<Flow<DeptRefs>, StoreError> {
        let Some(parent_ding) = self.store.ding_id_of(&parent).await? else {
            let why = format!("parent department {parent} has no DingTalk id yet");
            let step = self
                .wait_for(EntityKind::Department, &parent.to_string(), why)
                .await?;
            return Ok(Flow::Break(step));
        };
        let mut managers = Vec::with_capacity(dept.managers.len());
        let mut known = Vec::with_capacity(dept.managers.len());
        for m in &dept.managers {
            if let Some(ding) = self.user_in_dingtalk(m).await? {
                managers.push(ding::wire_user(&ding));
                known.push(m.clone());
            }
        }
        dept.managers = known;
        Ok(Flow::Continue(DeptRefs {
            parent: ding::wire_dept(parent_ding),
            managers,
        }))
    }

    /// Creates the department in DingTalk (marking it in OA first); goes on with its new
    /// DingTalk id when the managers still need the follow-up update.
    async fn create_department(
        &self,
        entry: &OutboxEntry,
        dept: &mut Department,
        oa_dept: Department,
        version: i64,
        refs: &DeptRefs,
    ) -> Result<Flow<DingDeptId>, StoreError> {
        let id = dept.id;
        if dept.source_identifier.is_none() {
            // The OA side holds the marker too, so that the base (what both sides hold) equals
            // DingTalk's department and the echo event is a no-op. The marker is dingsync's own
            // bookkeeping, so the version stays: the ETag the OA client got from its create
            // must still be good for its next update (issue 18, B8).
            dept.source_identifier = Some(source_marker(id));
            let mut marked = oa_dept;
            marked.source_identifier = Some(source_marker(id));
            let ctx = WriteCtx::reconcile("pusher", self.clock.now_ms()).with_keep_version(true);
            match self
                .store
                .save_department(&ctx, marked, Expect::Version(version))
                .await
            {
                Ok(_) => {}
                Err(StoreError::VersionConflict { .. }) => {
                    return Ok(Flow::Break(Step::wait(
                        "department changed while being pushed",
                    )));
                }
                Err(e) => return Err(e),
            }
        }
        let marker = dept
            .source_identifier
            .clone()
            .unwrap_or_else(|| source_marker(id));
        let req = match create_request(dept, refs, &marker, &self.policy.rules) {
            Ok(req) => req,
            Err(e) => return Ok(Flow::Break(Step::Dead(super::user::mapping_failed(&e)))),
        };
        match self.client.dept_create(&req).await {
            Ok(new) => {
                let new = ding::dept(new);
                if self.crash_here(Failpoint::AfterAccept, entry) {
                    return Ok(Flow::Break(Step::Crash(Failpoint::AfterAccept)));
                }
                if !needs_manager_update(refs) {
                    self.store
                        .record_pushed(&id, &new, &*dept, self.clock.now_ms())
                        .await?;
                    return Ok(Flow::Break(Step::Done));
                }
                // Save the mapping before the manager update, so a failure there does not lose
                // the new department.
                self.store.id_map_put(&id, &new).await?;
                Ok(Flow::Continue(new))
            }
            Err(e)
                if is_code(
                    &e,
                    &[
                        wire::ErrCode::DEPT_NAME_EXISTS,
                        wire::ErrCode::DEPT_NAME_EXISTS_CURRENT,
                    ],
                ) && prior_attempt_may_have_succeeded(&e) =>
            {
                Ok(match self.find_department(dept, refs.parent).await {
                    Ok(Some(found)) => Flow::Continue(found),
                    Ok(None) => Flow::Break(Step::from_client(&e)),
                    Err(e) if is_code(&e, &[wire::ErrCode::DEPT_NOT_FOUND]) => {
                        Flow::Break(parent_gone(id, &e))
                    }
                    Err(e) => Flow::Break(Step::from_client(&e)),
                })
            }
            // An administrator deleted the parent in DingTalk after OA created this department
            // under it. The parent's deletion event, once applied, settles the OA side (see
            // `parent_gone`); the retry then pushes what OA holds by then.
            Err(e) if is_code(&e, &[wire::ErrCode::PARENT_DEPT_NOT_FOUND]) => {
                Ok(Flow::Break(parent_gone(id, &e)))
            }
            Err(e) => Ok(Flow::Break(Step::from_client(&e))),
        }
    }

    /// Makes DingTalk's department `ding` hold `dept`.
    async fn update_department(
        &self,
        id: OaDeptId,
        ding: DingDeptId,
        dept: &Department,
        refs: &DeptRefs,
        base: Option<&Department>,
    ) -> Result<Step, StoreError> {
        let req = match update_request(dept, ding::wire_dept(ding), refs, base, &self.policy.rules)
        {
            Ok(req) => req,
            Err(e) => return Ok(Step::Dead(super::user::mapping_failed(&e))),
        };
        match self.client.dept_update(&req).await {
            Ok(()) => {
                self.store
                    .record_pushed(&id, &ding, dept, self.clock.now_ms())
                    .await?;
                Ok(Step::Done)
            }
            // An administrator deleted it in DingTalk after OA changed it. Its deletion event
            // removes the OA department, after which the retry finds nothing to push; only if
            // that never happens does the entry become a dead letter (found by the convergence
            // property test: a dead letter for a department already gone on both sides).
            Err(e) if is_code(&e, &[wire::ErrCode::DEPT_NOT_FOUND]) => Ok(Step::wait(format!(
                "department {id} (DingTalk {ding}) no longer exists in DingTalk: {e}"
            ))),
            // A manager left DingTalk after OA named them; the leave event, once applied,
            // drops them from OA's managers and the retry sends the list without them (found
            // by the convergence property test: the entry was a dead letter at once).
            Err(e) if is_code(&e, &[wire::ErrCode::UNKNOWN_USERID_IN_LIST]) => {
                Ok(Step::wait(e.to_string()))
            }
            Err(e) if is_code(&e, &[wire::ErrCode::DEPT_CYCLE]) => {
                self.yield_move_to_dingtalk(id, ding, &e).await
            }
            Err(e) if is_code(&e, &[wire::ErrCode::PARENT_DEPT_NOT_FOUND]) => {
                Ok(parent_gone(id, &e))
            }
            Err(e) => Ok(Step::from_client(&e)),
        }
    }

    /// DingTalk refused OA's move of `id` because an administrator's concurrent move made it a
    /// cycle (OA put A under B while DingTalk put B under A). Both moves cannot stand and
    /// DingTalk's already did, so OA's move yields: the OA department takes DingTalk's parent,
    /// the conflict is recorded, and the entry is retried to push any other pending field.
    /// (Found by the convergence property test: a dead letter, and a cycle in OA's tree.)
    async fn yield_move_to_dingtalk(
        &self,
        id: OaDeptId,
        ding: DingDeptId,
        refused: &ClientError,
    ) -> Result<Step, StoreError> {
        let detail = match self.client.dept_get(ding::wire_dept(ding)).await {
            Ok(d) => d,
            Err(e) => return Ok(Step::from_client(&e)),
        };
        let ding_parent = match detail.parent_id {
            Some(p) => self.store.oa_id_of::<OaDeptId>(&ding::dept(p)).await?,
            None => None,
        };
        let (Some(ding_parent), Some(current)) =
            (ding_parent, self.store.get_department(id).await?)
        else {
            return Ok(Step::from_client(refused));
        };
        let now = self.clock.now_ms();
        let key = id.to_string();
        let mut dept = current.entity;
        let oa_parent = dept.parent;
        dept.parent = Some(ding_parent);
        let ctx = WriteCtx::dingtalk("pusher:conflict", now)
            .with_enqueue(false)
            .with_record_base(false);
        match self
            .store
            .save_department(&ctx, dept, Expect::Version(current.version))
            .await
        {
            Ok(_) => {}
            Err(StoreError::VersionConflict { .. }) => {
                return Ok(Step::wait("department changed while being pushed"));
            }
            Err(e) => return Err(e),
        }
        let base: Option<Department> = self.store.base_get(EntityKind::Department, &key).await?;
        let base_parent = base.as_ref().and_then(|b| b.parent);
        if let Some(mut base) = base {
            base.parent = Some(ding_parent);
            self.store
                .base_set(EntityKind::Department, &key, Some(&base), now)
                .await?;
        }
        let conflict = directory_model::Conflict {
            field: directory_model::DeptField::Parent,
            base: serde_json::json!(base_parent),
            oa: serde_json::json!(oa_parent),
            dingtalk: serde_json::json!(ding_parent),
            winner: directory_model::Side::DingTalk,
        };
        self.store
            .record_conflicts(EntityKind::Department, &key, &[conflict], now)
            .await?;
        tracing::warn!(dept = %id, "OA's move would make a cycle with DingTalk's; DingTalk's parent kept");
        Ok(Step::wait(refused.to_string()))
    }

    /// Finds a department this pusher may already have created under `parent`, in at most two
    /// calls: the parent's listing (the child carrying our marker, if the listing reports
    /// markers), else the one child with the same name — DingTalk keeps names unique among
    /// siblings, so that is the only child a create of ours could have made or clash with —
    /// whose details say whose it is. It is adopted unless it carries another department's
    /// marker.
    ///
    /// Reading every sibling's details to find the marker (as this did before) cost one call
    /// per sibling per retried create: ~7,600 `department/get`s for 135 creates after a kill -9
    /// (issue 18, B1). What that gave up: a department OA renamed between a create DingTalk
    /// accepted and its retry is not found by name, and is created again beside the first.
    async fn find_department(
        &self,
        dept: &Department,
        parent: wire::DingDeptId,
    ) -> Result<Option<DingDeptId>, ClientError> {
        let marker = dept
            .source_identifier
            .clone()
            .unwrap_or_else(|| source_marker(dept.id));
        let children = self.client.dept_list_sub(parent).await?;
        if let Some(c) = children
            .iter()
            .find(|c| c.source_identifier.as_deref() == Some(marker.as_str()))
        {
            return Ok(Some(ding::dept(c.dept_id)));
        }
        let Some(same_name) = children.iter().find(|c| c.name == dept.name) else {
            return Ok(None);
        };
        let theirs = match &same_name.source_identifier {
            Some(other) => Some(other.clone()),
            None => {
                self.client
                    .dept_get(same_name.dept_id)
                    .await?
                    .source_identifier
            }
        };
        // Another OA department's marker: not ours to adopt (the create's clash is reported).
        let ours = theirs
            .as_deref()
            .is_none_or(|t| t == marker || marked_oa_id(Some(t)).is_none());
        Ok(ours.then(|| ding::dept(same_name.dept_id)))
    }

    async fn delete_department(
        &self,
        entry: &OutboxEntry,
        id: OaDeptId,
    ) -> Result<Step, StoreError> {
        let Some(ding) = self.store.ding_id_of(&id).await? else {
            return Ok(Step::Done);
        };
        match self.client.dept_delete(ding::wire_dept(ding)).await {
            Ok(()) => {}
            Err(e) if is_code(&e, &[wire::ErrCode::DEPT_NOT_FOUND]) => {}
            Err(e)
                if is_code(
                    &e,
                    &[
                        wire::ErrCode::DEPT_HAS_MEMBERS,
                        wire::ErrCode::DEPT_HAS_CHILDREN,
                    ],
                ) =>
            {
                // DingTalk still has members or children OA moved away; their pushes or
                // events may still be on their way. Members OA already has elsewhere are
                // moved now: their own pushes can be queued behind this deletion (a member
                // the applier re-homed waits for the department's parent, whose update waits
                // for this deletion), which would wait forever (found by the convergence
                // property test).
                if is_code(&e, &[wire::ErrCode::DEPT_HAS_MEMBERS]) {
                    self.move_members_out(entry, id, ding).await?;
                } else {
                    self.move_children_out(entry, id, ding).await?;
                }
                return Ok(Step::wait(e.to_string()));
            }
            Err(e) => return Ok(Step::from_client(&e)),
        }
        self.store
            .record_push_deleted(&id, self.clock.now_ms())
            .await?;
        Ok(Step::Done)
    }

    /// Pushes every DingTalk sub-department of `ding` that OA has under another parent (the
    /// same deadlock as [`Pusher::move_members_out`], for a department the applier re-homed).
    async fn move_children_out(
        &self,
        entry: &OutboxEntry,
        id: OaDeptId,
        ding: DingDeptId,
    ) -> Result<(), StoreError> {
        let Ok(children) = self.client.dept_list_sub(ding::wire_dept(ding)).await else {
            return Ok(());
        };
        for c in children {
            let Some(oa) = self
                .store
                .oa_id_of::<OaDeptId>(&ding::dept(c.dept_id))
                .await?
            else {
                continue;
            };
            let Some(child) = self.store.get_department(oa).await? else {
                continue;
            };
            if child.entity.parent == Some(id) {
                continue;
            }
            let update = update_entry(entry, EntityKind::Department, oa.to_string());
            // As for members: the deletion is retried either way.
            let _ = Box::pin(self.push_department(&update, oa)).await?;
        }
        Ok(())
    }

    /// Pushes every DingTalk member of `ding` whom OA has in other departments only.
    async fn move_members_out(
        &self,
        entry: &OutboxEntry,
        id: OaDeptId,
        ding: DingDeptId,
    ) -> Result<(), StoreError> {
        let Ok(members) = self.client.user_list_ids(ding::wire_dept(ding)).await else {
            return Ok(());
        };
        for m in members {
            let Some(oa) = self.store.oa_id_of::<OaUserId>(&ding::user(&m)).await? else {
                continue;
            };
            let Some(user) = self.store.get_user(&oa).await? else {
                continue;
            };
            if user.entity.departments.iter().any(|d| d.dept == id) {
                continue;
            }
            let update = update_entry(entry, EntityKind::User, oa.0.clone());
            // Its outcome does not matter here: the deletion is retried either way, and the
            // user's own entry still runs.
            let _ = self.push_user(&update, oa).await?;
        }
        Ok(())
    }

    /// Whether a department is in the policy's OA-side scope (its chain of ancestors decides).
    pub(super) async fn dept_in_scope(&self, dept: &Department) -> Result<bool, StoreError> {
        if self.policy.scope.is_everything_oa() {
            return Ok(true);
        }
        let mut chain = vec![dept.id];
        let mut parent = dept.parent;
        while let Some(p) = parent {
            if chain.contains(&p) || chain.len() > 10_000 {
                break;
            }
            chain.push(p);
            parent = self
                .store
                .get_department(p)
                .await?
                .and_then(|d| d.entity.parent);
        }
        Ok(self.policy.scope.contains_oa_chain(&chain))
    }
}

/// An update entry for a neighbour of `entry`'s entity, pushed in the same attempt.
/// DingTalk answered 60004 (or 60003 to the listing of the parent's children): the parent OA named was deleted in DingTalk while OA created or
/// moved `id` under it. Waiting, not a dead letter: the deletion's event is on its way and its
/// application changes the OA side, after which the retry pushes the current state; only if
/// that never happens does the entry become a dead letter (found by the convergence property
/// test, issue 18: OA created a department under one DingTalk had just deleted, and the create
/// was a dead letter at once).
fn parent_gone(id: OaDeptId, e: &dingtalk_client::ClientError) -> Step {
    Step::wait(format!(
        "the parent of department {id} no longer exists in DingTalk: {e}"
    ))
}

fn update_entry(entry: &OutboxEntry, kind: EntityKind, oa_id: String) -> OutboxEntry {
    let mut update = entry.clone();
    update.kind = kind;
    update.oa_id = oa_id;
    update.op = Op::Update;
    update
}
