//! How a role assignment is pushed: DingTalk is made to match whether the OA directory holds
//! the assignment *now*, so its create and delete entries are both idempotent and order-proof.

use directory_model::{BUILTIN_ROLE_GROUP, OaRoleId, RoleAssignment, is_builtin_role};
use directory_store::{AssignmentQuery, EntityKind, StoreError};

use super::Pusher;
use super::step::{Step, is_not_found};
use crate::kind::assignment_key;
use crate::translate::ding;

impl Pusher {
    /// Makes DingTalk's assignment match the OA directory's current one (held or not).
    pub(super) async fn push_assignment(&self, a: RoleAssignment) -> Result<Step, StoreError> {
        let held = !self
            .store
            .list_assignments(&AssignmentQuery {
                user: Some(a.user.clone()),
                role: Some(a.role),
                limit: 1,
                ..AssignmentQuery::default()
            })
            .await?
            .items
            .is_empty();
        if let Some(name) = self.builtin_role_name(a.role).await? {
            // The user's deletion took their roles out of DingTalk with them.
            if !held && self.store.get_user(&a.user).await?.is_none() {
                return Ok(Step::Done);
            }
            return Ok(Step::Dead(builtin_refusal(&name)));
        }
        let Some(role) = self.store.ding_id_of(&a.role).await? else {
            if held {
                return self
                    .wait_for(
                        EntityKind::Role,
                        &a.role.to_string(),
                        format!("role {} has no DingTalk id yet", a.role),
                    )
                    .await;
            }
            // The role never reached DingTalk, so neither did the assignment.
            return Ok(Step::Done);
        };
        let user = ding::wire_user(&self.ding_user(&a.user).await?);
        let role = ding::wire_role(role);
        let result = if held {
            self.client.roles_add_for_users(&[role], &[user]).await
        } else {
            self.client.roles_remove_for_users(&[role], &[user]).await
        };
        match result {
            Ok(()) => {}
            // Removing a role from a user DingTalk no longer has: already the goal state.
            Err(e) if !held && is_not_found(&e) => {}
            // Giving a role to a user who has just left DingTalk: the leave event, once
            // applied, drops the user's roles in OA and the retry finds nothing to add (found
            // by the convergence property test: the entry was a dead letter at once).
            Err(e) if held && is_not_found(&e) => return Ok(Step::wait(e.to_string())),
            Err(e) => return Ok(Step::from_client(&e)),
        }
        let key = assignment_key(&a);
        let now = self.clock.now_ms();
        self.store
            .base_set(EntityKind::RoleAssignment, &key, held.then_some(&a), now)
            .await?;
        Ok(Step::Done)
    }
}

impl Pusher {
    /// The name of role `id` if it is one of DingTalk's built-in roles (its group is 默认).
    pub(super) async fn builtin_role_name(
        &self,
        id: OaRoleId,
    ) -> Result<Option<String>, StoreError> {
        let Some(role) = self.store.get_role(id).await? else {
            return Ok(None);
        };
        let Some(group) = self.store.get_role_group(role.entity.group).await? else {
            return Ok(None);
        };
        Ok(is_builtin_role(&role.entity, &group.entity).then_some(role.entity.name))
    }
}

/// The dead letter of an entry for a built-in role: no API call can change one, so DingTalk
/// is not asked (it would answer 23004 on every retry).
pub(super) fn builtin_refusal(name: &str) -> String {
    format!(
        "{name} is one of DingTalk's built-in roles (group {BUILTIN_ROLE_GROUP}); no API call \
         can assign, remove or change it (DingTalk answers 23004), so it is not sent: change \
         it in DingTalk's admin console, or undo it in OA and drop this dead letter"
    )
}
