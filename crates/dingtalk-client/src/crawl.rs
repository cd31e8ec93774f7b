//! A full read of the organisation: the department tree (`listsub`, breadth first), the members
//! of every department (`v2/user/list`, pages of 100), and the roles with their members.
//!
//! Each API family has its own rate budget at DingTalk, so the families run at the same time:
//! users of a department are listed as soon as the department is discovered (pipelined with the
//! tree walk), and roles are crawled alongside. Within a family up to `concurrency` calls are in
//! flight, enough to keep the budget busy when latency is high. The full import in the sync
//! engine builds on this; it is here so the client's throughput can be measured on its own.

use std::collections::{BTreeMap, VecDeque};

use dingtalk_proto::{
    DingDeptId, DingRoleId, DingUserId,
    dept::DeptBrief,
    role::{RoleGroup, RoleMember},
    user::User,
};
use futures::{StreamExt, TryStreamExt, stream::FuturesUnordered};

use crate::{ClientError, DingTalkClient};

/// How to crawl.
#[derive(Debug, Clone, Copy)]
pub struct CrawlOptions {
    /// Calls in flight per API family.
    pub concurrency: usize,
    /// Also read role groups, roles and role members.
    pub roles: bool,
}

impl Default for CrawlOptions {
    fn default() -> Self {
        Self {
            concurrency: 16,
            roles: true,
        }
    }
}

/// Everything a crawl read.
#[derive(Debug, Clone, Default)]
pub struct OrgSnapshot {
    /// Every department below the root, parents before children.
    pub departments: Vec<DeptBrief>,
    /// Every user, once, however many departments they are in.
    pub users: BTreeMap<DingUserId, User>,
    /// Number of (department, member) pairs seen.
    pub memberships: usize,
    /// Role groups with their roles.
    pub role_groups: Vec<RoleGroup>,
    /// Members per role.
    pub role_members: BTreeMap<DingRoleId, Vec<RoleMember>>,
}

impl DingTalkClient {
    /// Reads the whole organisation; see the module doc for the order of calls.
    pub async fn crawl(&self, options: CrawlOptions) -> Result<OrgSnapshot, ClientError> {
        let concurrency = options.concurrency.max(1);
        let (tree, roles) = tokio::join!(self.crawl_tree_and_users(concurrency), async {
            if options.roles {
                self.crawl_roles(concurrency).await.map(Some)
            } else {
                Ok(None)
            }
        });
        let mut snapshot = tree?;
        if let Some((groups, members)) = roles? {
            snapshot.role_groups = groups;
            snapshot.role_members = members;
        }
        Ok(snapshot)
    }

    async fn crawl_tree_and_users(&self, concurrency: usize) -> Result<OrgSnapshot, ClientError> {
        let mut snapshot = OrgSnapshot::default();
        // Departments whose children / members are still to be listed.
        let mut to_walk = VecDeque::from([DingDeptId::ROOT]);
        let mut to_list = VecDeque::from([DingDeptId::ROOT]);
        let mut walking = FuturesUnordered::new();
        let mut listing = FuturesUnordered::new();
        loop {
            while walking.len() < concurrency {
                let Some(dept) = to_walk.pop_front() else {
                    break;
                };
                walking.push(self.dept_list_sub(dept));
            }
            while listing.len() < concurrency {
                let Some(dept) = to_list.pop_front() else {
                    break;
                };
                listing.push(self.user_list_all(dept));
            }
            if walking.is_empty() && listing.is_empty() {
                return Ok(snapshot);
            }
            tokio::select! {
                Some(children) = walking.next(), if !walking.is_empty() => {
                    for child in children? {
                        to_walk.push_back(child.dept_id);
                        to_list.push_back(child.dept_id);
                        snapshot.departments.push(child);
                    }
                }
                Some(members) = listing.next(), if !listing.is_empty() => {
                    for user in members? {
                        snapshot.memberships += 1;
                        snapshot.users.entry(user.userid.clone()).or_insert(user);
                    }
                }
            }
        }
    }

    async fn crawl_roles(
        &self,
        concurrency: usize,
    ) -> Result<(Vec<RoleGroup>, BTreeMap<DingRoleId, Vec<RoleMember>>), ClientError> {
        let groups = self.role_list_all().await?;
        let role_ids: Vec<DingRoleId> = groups
            .iter()
            .flat_map(|g| g.roles.iter().map(|r| r.id))
            .collect();
        let members =
            futures::stream::iter(role_ids)
                .map(|role| async move {
                    Ok::<_, ClientError>((role, self.role_members_all(role).await?))
                })
                .buffer_unordered(concurrency)
                .try_collect()
                .await?;
        Ok((groups, members))
    }
}
