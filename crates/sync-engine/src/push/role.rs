//! How a role is pushed: created by name in its group (found by name on a retry), renamed,
//! deleted. DingTalk has no API to move a role to another group; that is a dead letter.

use dingtalk_client::ClientError;
use dingtalk_proto as wire;
use directory_model::{DingRoleGroupId, DingRoleId, OaRoleId, Role};
use directory_store::{EntityKind, Op, OutboxEntry, StoreError};

use super::step::{Step, is_code};
use super::{Failpoint, Pusher};
use crate::translate::ding;

impl Pusher {
    pub(super) async fn push_role(
        &self,
        entry: &OutboxEntry,
        id: OaRoleId,
    ) -> Result<Step, StoreError> {
        let mapped = self.store.ding_id_of(&id).await?;
        if entry.op == Op::Delete {
            return self.delete_role(id, mapped).await;
        }
        let Some(current) = self.store.get_role(id).await? else {
            return Ok(Step::Done);
        };
        if let Some(name) = self.builtin_role_name(id).await? {
            return Ok(Step::Dead(super::assignment::builtin_refusal(&name)));
        }
        let (role, base) = self.with_base(current.entity).await?;
        let Some(group_ding) = self.store.ding_id_of(&role.group).await? else {
            return self
                .wait_for(
                    EntityKind::RoleGroup,
                    &role.group.to_string(),
                    format!("role group {} has no DingTalk id yet", role.group),
                )
                .await;
        };
        if let Some(ding) = mapped {
            if let Some(b) = &base
                && b.group != role.group
            {
                return Ok(Step::Dead(format!(
                    "DingTalk has no API to move role {ding} to another group"
                )));
            }
            return self.rename_role(&role, ding).await;
        }
        if entry.attempts > 1 {
            match self.find_role(group_ding, &role.name).await {
                Ok(Some(found)) => {
                    self.store
                        .record_pushed(&id, &found, &role, self.clock.now_ms())
                        .await?;
                    return Ok(Step::Done);
                }
                Ok(None) => {}
                Err(e) => return Ok(Step::from_client(&e)),
            }
        }
        match self
            .client
            .role_add(ding::wire_group(group_ding), &role.name)
            .await
        {
            Ok(new) => {
                if self.crash_here(Failpoint::AfterAccept, entry) {
                    return Ok(Step::Crash(Failpoint::AfterAccept));
                }
                self.store
                    .record_pushed(&id, &ding::role(new), &role, self.clock.now_ms())
                    .await?;
                Ok(Step::Done)
            }
            Err(e) => Ok(Step::from_client(&e)),
        }
    }

    /// Sends the role's name to DingTalk's role `ding`.
    async fn rename_role(&self, role: &Role, ding: DingRoleId) -> Result<Step, StoreError> {
        // The name is sent even when it equals the base: the applier moves the base to the
        // merged state when it queues a push for a field OA won, so an equal base does not
        // prove DingTalk holds the name (the convergence property test found a pending OA
        // rename skipped that way). Renaming a role to its own name is accepted.
        if let Err(e) = self
            .client
            .role_update(ding::wire_role(ding), &role.name)
            .await
        {
            return Ok(Step::from_client(&e));
        }
        self.store
            .record_pushed(&role.id, &ding, role, self.clock.now_ms())
            .await?;
        Ok(Step::Done)
    }

    async fn delete_role(
        &self,
        id: OaRoleId,
        mapped: Option<DingRoleId>,
    ) -> Result<Step, StoreError> {
        let Some(ding) = mapped else {
            return Ok(Step::Done);
        };
        match self.client.role_delete(ding::wire_role(ding)).await {
            Ok(()) => {}
            Err(e) if is_code(&e, &[wire::ErrCode::INVALID_ROLE_ID]) => {}
            Err(e) => return Ok(Step::from_client(&e)),
        }
        self.store
            .record_push_deleted(&id, self.clock.now_ms())
            .await?;
        Ok(Step::Done)
    }

    async fn find_role(
        &self,
        group: DingRoleGroupId,
        name: &str,
    ) -> Result<Option<DingRoleId>, ClientError> {
        let groups = self.client.role_list_all().await?;
        Ok(groups
            .iter()
            .filter(|g| ding::group(g.group_id) == group)
            .flat_map(|g| g.roles.iter())
            .find(|r| r.name == name)
            .map(|r| ding::role(r.id)))
    }
}
