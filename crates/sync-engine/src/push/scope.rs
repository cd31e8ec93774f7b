//! `[scope.to_dingtalk]` in the pusher: an OA entity out of scope is not pushed. One that was
//! pushed before stays in DingTalk until `plan` / `reconcile` delete it there, under the
//! deletion threshold (so a scope change that removes many is held, never applied entity by
//! entity here). A predicate that fails to evaluate dead-letters the entry with the reason.

use directory_model::{Department, OaDeptId, User};
use directory_store::StoreError;

use super::Pusher;
use super::step::Step;

impl Pusher {
    /// `Some(step)` when `user` must not be pushed: out of scope, or its predicate failed.
    pub(super) async fn rules_scope_user(&self, user: &User) -> Result<Option<Step>, StoreError> {
        let rules = &self.policy.rules;
        if !rules.scopes_oa_users() {
            return Ok(None);
        }
        let mut ancestors = Vec::new();
        for m in &user.departments {
            for d in self.oa_chain(m.dept).await? {
                if !ancestors.contains(&d) {
                    ancestors.push(d);
                }
            }
        }
        Ok(verdict(
            rules.oa_user_in_scope(user, &ancestors),
            "user",
            user.id.as_str(),
        ))
    }

    /// `Some(step)` when `dept` must not be pushed.
    pub(super) async fn rules_scope_dept(
        &self,
        dept: &Department,
    ) -> Result<Option<Step>, StoreError> {
        let rules = &self.policy.rules;
        if !rules.scopes_oa_departments() || dept.parent.is_none() {
            return Ok(None);
        }
        let chain = self.oa_chain(dept.id).await?;
        Ok(verdict(
            rules.oa_department_in_scope(dept, &chain),
            "department",
            &dept.id.to_string(),
        ))
    }

    /// An OA department and the departments above it, self first.
    async fn oa_chain(&self, id: OaDeptId) -> Result<Vec<OaDeptId>, StoreError> {
        let mut chain = vec![id];
        let mut parent = self
            .store
            .get_department(id)
            .await?
            .and_then(|d| d.entity.parent);
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
        Ok(chain)
    }
}

fn verdict(result: Result<bool, mapping::MapError>, noun: &str, id: &str) -> Option<Step> {
    match result {
        Ok(true) => None,
        Ok(false) => {
            tracing::debug!(%id, "{noun} out of [scope.to_dingtalk]; not pushed");
            Some(Step::Done)
        }
        Err(e) => Some(Step::Dead(format!(
            "the scope failed for this entity: {}",
            crate::error_chain(&e)
        ))),
    }
}
