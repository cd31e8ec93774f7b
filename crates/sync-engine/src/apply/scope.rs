//! `[scope.to_oa]` when a DingTalk event is applied: a DingTalk entity out of scope is not
//! brought into OA (the event is done, nothing written). One that was synced before stays in
//! OA until `plan` / `reconcile` delete it there, under the deletion threshold, so a scope
//! change never deletes entity by entity here. A predicate that fails to evaluate is a
//! conversion error: the event becomes a dead letter with the reason.

use dingtalk_proto::{dept::DeptDetail, user::User as WireUser};
use directory_model::{DingDeptId, User};

use super::{Applier, ApplyError};
use crate::translate::{self, ConvertError, IdMap, ding};

impl Applier {
    /// Whether a DingTalk user (`user`, in DingTalk's values) is in `[scope.to_oa.users]`.
    pub(super) async fn rules_user_in_scope(
        &self,
        wire: &WireUser,
        user: &User,
    ) -> Result<bool, ApplyError> {
        let rules = &self.ctx.policy.rules;
        if !rules.scopes_dingtalk_users() {
            return Ok(true);
        }
        let chains = self
            .ctx
            .client
            .dept_list_parents_by_user(&wire.userid)
            .await?;
        let mut ancestors: Vec<DingDeptId> = Vec::new();
        for d in chains.into_iter().flatten().map(ding::dept) {
            if !ancestors.contains(&d) {
                ancestors.push(d);
            }
        }
        Ok(rules
            .dingtalk_user_in_scope(user, &ancestors)
            .map_err(ConvertError::from)?)
    }

    /// Whether a DingTalk department is in `[scope.to_oa.departments]`.
    pub(super) async fn rules_dept_in_scope(
        &self,
        wire: &DeptDetail,
        ids: &IdMap,
    ) -> Result<bool, ApplyError> {
        let rules = &self.ctx.policy.rules;
        if !rules.scopes_dingtalk_departments() || ding::dept(wire.dept_id) == DingDeptId::ROOT {
            return Ok(true);
        }
        let chain: Vec<DingDeptId> = self
            .ctx
            .client
            .dept_list_parents(wire.dept_id)
            .await?
            .into_iter()
            .map(ding::dept)
            .collect();
        let dept = translate::department::scope_view(wire, ids);
        Ok(rules
            .dingtalk_department_in_scope(&dept, &chain)
            .map_err(ConvertError::from)?)
    }
}
