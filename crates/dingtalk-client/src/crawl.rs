//! A full read of the organisation: the department tree (`listsub`, breadth first), the members
//! of every department (`v2/user/list`, pages of 100), and the roles with their members.
//!
//! Each API family has its own rate budget at DingTalk, so the families run at the same time:
//! users of a department are listed as soon as the department is discovered (pipelined with the
//! tree walk), and roles are crawled alongside. Within a family up to `concurrency` calls are in
//! flight, enough to keep the budget busy when latency is high.
//!
//! The organisation keeps changing during a crawl (a 20,000-person crawl at DingTalk's standard
//! limit takes about a minute). A department or role deleted between being discovered and being
//! listed answers "not found"; that is not a failure of the crawl, so it is recorded in
//! [`OrgSnapshot::vanished_departments`] / [`OrgSnapshot::vanished_roles`] and skipped. The
//! events for those deletions bring the directory up to date afterwards. The full import in the sync
//! engine builds on this; it is here so the client's throughput can be measured on its own.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use dingtalk_proto::{
    DingDeptId, DingRoleId, DingUserId, ErrCode,
    dept::DeptBrief,
    role::{RoleGroup, RoleMember},
    user::User,
};
use futures::{StreamExt, stream::FuturesUnordered};

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
    /// Departments that were discovered but gone (60003) by the time they were listed.
    pub vanished_departments: BTreeSet<DingDeptId>,
    /// Roles that were listed but gone (33011) by the time their members were read.
    pub vanished_roles: BTreeSet<DingRoleId>,
}

/// `Ok(None)` for "not found" with `gone`, so a vanished entity is skipped, not fatal.
fn unless_gone<T>(result: Result<T, ClientError>, gone: ErrCode) -> Result<Option<T>, ClientError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(err) if err.errcode() == Some(gone) => Ok(None),
        Err(err) => Err(err),
    }
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
        if let Some(roles) = roles? {
            snapshot.role_groups = roles.groups;
            snapshot.role_members = roles.members;
            snapshot.vanished_roles = roles.vanished;
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
                walking.push(async move { (dept, self.dept_list_sub(dept).await) });
            }
            while listing.len() < concurrency {
                let Some(dept) = to_list.pop_front() else {
                    break;
                };
                listing.push(async move { (dept, self.user_list_all(dept).await) });
            }
            if walking.is_empty() && listing.is_empty() {
                return Ok(snapshot);
            }
            tokio::select! {
                Some((dept, children)) = walking.next(), if !walking.is_empty() => {
                    let Some(children) = unless_gone(children, ErrCode::DEPT_NOT_FOUND)? else {
                        snapshot.vanished_departments.insert(dept);
                        continue;
                    };
                    for child in children {
                        to_walk.push_back(child.dept_id);
                        to_list.push_back(child.dept_id);
                        snapshot.departments.push(child);
                    }
                }
                Some((dept, members)) = listing.next(), if !listing.is_empty() => {
                    let Some(members) = unless_gone(members, ErrCode::DEPT_NOT_FOUND)? else {
                        snapshot.vanished_departments.insert(dept);
                        continue;
                    };
                    for user in members {
                        snapshot.memberships += 1;
                        snapshot.users.entry(user.userid.clone()).or_insert(user);
                    }
                }
            }
        }
    }

    async fn crawl_roles(&self, concurrency: usize) -> Result<RolesSeen, ClientError> {
        let groups = self.role_list_all().await?;
        let role_ids: Vec<DingRoleId> = groups
            .iter()
            .flat_map(|g| g.roles.iter().map(|r| r.id))
            .collect();
        let mut seen = RolesSeen {
            groups,
            ..RolesSeen::default()
        };
        let mut members = futures::stream::iter(role_ids)
            .map(|role| async move { (role, self.role_members_all(role).await) })
            .buffer_unordered(concurrency);
        while let Some((role, result)) = members.next().await {
            match unless_gone(result, ErrCode::INVALID_ROLE_ID)? {
                Some(list) => {
                    seen.members.insert(role, list);
                }
                None => {
                    seen.vanished.insert(role);
                }
            }
        }
        Ok(seen)
    }
}

/// What the role half of a crawl read.
#[derive(Debug, Default)]
struct RolesSeen {
    /// Role groups with their roles.
    groups: Vec<RoleGroup>,
    /// Members per role.
    members: BTreeMap<DingRoleId, Vec<RoleMember>>,
    /// Roles gone before their members were read.
    vanished: BTreeSet<DingRoleId>,
}
