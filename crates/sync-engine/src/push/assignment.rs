//! How a role assignment is pushed: DingTalk is made to match whether the OA directory holds
//! the assignment *now*, so its create and delete entries are both idempotent and order-proof.

use directory_model::RoleAssignment;
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
