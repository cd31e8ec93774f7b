//! How a role group is pushed: created by name (found by name on a retry). DingTalk has no API
//! to rename or delete a role group, so those become dead letters that say what to do by hand.

use dingtalk_client::ClientError;
use directory_model::{DingRoleGroupId, OaRoleGroupId};
use directory_store::{Op, OutboxEntry, StoreError};

use super::step::Step;
use super::{Failpoint, Pusher};
use crate::translate::ding;

impl Pusher {
    pub(super) async fn push_role_group(
        &self,
        entry: &OutboxEntry,
        id: OaRoleGroupId,
    ) -> Result<Step, StoreError> {
        let mapped = self.store.ding_id_of(&id).await?;
        if entry.op == Op::Delete {
            return Ok(match mapped {
                None => Step::Done,
                Some(ding) => Step::Dead(format!(
                    "DingTalk has no API to delete role group {ding}; delete it in the admin \
                     console, then drop this dead letter"
                )),
            });
        }
        let Some(current) = self.store.get_role_group(id).await? else {
            return Ok(Step::Done);
        };
        let (group, base) = self.with_base(current.entity).await?;
        if let Some(ding) = mapped {
            return Ok(match base {
                Some(b) if b.name != group.name => Step::Dead(format!(
                    "DingTalk has no API to rename role group {ding} from {:?} to {:?}",
                    b.name, group.name
                )),
                _ => {
                    self.store
                        .record_pushed(&id, &ding, &group, self.clock.now_ms())
                        .await?;
                    Step::Done
                }
            });
        }
        if entry.attempts > 1 {
            match self.find_role_group(&group.name).await {
                Ok(Some(found)) => {
                    self.store
                        .record_pushed(&id, &found, &group, self.clock.now_ms())
                        .await?;
                    return Ok(Step::Done);
                }
                Ok(None) => {}
                Err(e) => return Ok(Step::from_client(&e)),
            }
        }
        match self.client.role_group_add(&group.name).await {
            Ok(new) => {
                if self.crash_here(Failpoint::AfterAccept, entry) {
                    return Ok(Step::Crash(Failpoint::AfterAccept));
                }
                self.store
                    .record_pushed(&id, &ding::group(new), &group, self.clock.now_ms())
                    .await?;
                Ok(Step::Done)
            }
            Err(e) => Ok(Step::from_client(&e)),
        }
    }

    async fn find_role_group(&self, name: &str) -> Result<Option<DingRoleGroupId>, ClientError> {
        let groups = self.client.role_list_all().await?;
        Ok(groups
            .iter()
            .find(|g| g.name == name)
            .map(|g| ding::group(g.group_id)))
    }
}
