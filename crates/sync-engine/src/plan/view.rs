//! DingTalk's side of a plan: a crawl translated into the OA model and OA ids.
//!
//! The crawl reads departments with `listsub` (then `department/get` for the fields `listsub`
//! lacks: order, visibility, managers, source identifier), users with `v2/user/list`, and roles
//! with their members. Entities the id map knows become model entities keyed by OA id, so the
//! plan can diff them field by field against the OA directory and the base; entities it does not
//! know are kept aside as DingTalk-only (reconcile would create them in OA).
//!
//! Translation is [`crate::translate`]'s, the same rules event application uses, with the OA
//! entity as the hint. `v2/user/list` does not show a user's manager nor their order and title
//! per department (only `title`, the main department's); convert keeps the hint's order and
//! titles where DingTalk says nothing, and the manager is copied from OA here, so the plan never
//! claims a drift it cannot see. Users share ids on both sides (design decision), so an
//! unmapped DingTalk user maps to the OA user with the same id.

use std::collections::HashSet;

use dingtalk_client::{ClientError, CrawlOptions, DingTalkClient, OrgSnapshot};
use dingtalk_proto as wire;
use directory_model::{DingDeptId, DingUserId, OaUserId, RoleAssignment, Snapshot, User};
use directory_store::{EntityKind, Store};
use futures::{StreamExt, TryStreamExt};

use super::PlanError;
use crate::translate::{self, IdMap, ding};

/// DingTalk's built-in role group (负责人, 主管, 主管理员, 子管理员): its roles cannot be renamed,
/// deleted or assigned through the API, so an unmapped one is not planned for OA.
const BUILTIN_GROUP: &str = "默认";

/// A DingTalk entity the id map does not know.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Unmapped {
    /// A department, with its DingTalk parent.
    Department(Box<wire::dept::DeptDetail>),
    /// A role group and its name.
    RoleGroup(wire::DingRoleGroupId, String),
    /// A role, its name and its group.
    Role(wire::DingRoleId, String, wire::DingRoleGroupId),
}

/// DingTalk's state in OA terms.
#[derive(Debug, Default)]
pub(crate) struct DingView {
    /// Mapped entities DingTalk reports in a way that cannot be translated (e.g. a mapped
    /// department moved under a department OA does not know yet): kind, OA id, why.
    pub untranslatable: Vec<(EntityKind, String, String)>,
    /// Entities known to the id map (users: by shared id), in OA ids.
    pub snapshot: Snapshot,
    /// Entities DingTalk has and the id map does not know, parents before children.
    pub unmapped: Vec<Unmapped>,
    /// DingTalk users with no OA user of the same id (reconcile would create them in OA).
    pub new_users: Vec<User>,
    /// Calls the crawl made (for the report).
    pub calls: u64,
    /// Users and departments DingTalk holds with other values than OA's map to although
    /// OA-side values agree (a changed `[mapping]`). See `Rules::user_drift`.
    pub drift: Vec<super::scoped::Drift>,
}

/// Reads DingTalk and translates it; `oa` supplies the fields a crawl cannot observe.
pub(crate) async fn dingtalk_view(
    store: &Store,
    client: &DingTalkClient,
    oa: &Snapshot,
    concurrency: usize,
    rules: &crate::rules::Rules,
    pending: bool,
) -> Result<DingView, PlanError> {
    let calls_before = client.stats().total_calls();
    let crawl = client
        .crawl(CrawlOptions {
            concurrency,
            roles: true,
        })
        .await
        .map_err(PlanError::DingTalk)?;
    // Owned ids (not `&DeptBrief`) keep the stream's future `Send` for every lifetime, so a
    // plan can run inside a spawned task (the scheduled reconcile).
    let ids: Vec<_> = crawl.departments.iter().map(|d| d.dept_id).collect();
    let details: Vec<wire::dept::DeptDetail> = futures::stream::iter(ids)
        .map(|id| client.dept_get(id))
        .buffered(concurrency.max(1))
        .try_collect()
        .await
        .map_err(|e: ClientError| PlanError::DingTalk(e))?;

    let mut ids = IdMap::load_all(store).await?;
    let linked_in_store = link_users_by_id(&crawl, &mut ids);
    let mut view = DingView::default();
    // DingTalk's root cannot be changed through the API; compare the OA root with itself.
    if let Some(root) = ids
        .oa_dept(DingDeptId::ROOT)
        .and_then(|r| oa.departments.get(&r))
    {
        view.snapshot.departments.insert(root.id, root.clone());
    }
    let parents = super::scoped::DingParents::of(&details);
    let details = super::scoped::departments_in_scope(
        details,
        &ids,
        rules,
        &parents,
        &mut view.untranslatable,
    );
    let reading = super::scoped::Reading {
        rules,
        parents: &parents,
        pending,
    };
    view.add_departments(details, &ids, oa, &reading);
    view.add_users(&crawl, &ids, oa, &linked_in_store, &reading);
    view.add_roles(&crawl, &ids);
    view.calls = client.stats().total_calls().saturating_sub(calls_before);
    Ok(view)
}

/// Users share their id on both sides (design decision): a DingTalk user the map does not
/// know is the OA user of the same id, existing or not. Returns the users the store links
/// (one linked but absent from OA was deleted there).
fn link_users_by_id(crawl: &OrgSnapshot, ids: &mut IdMap) -> HashSet<String> {
    let mut linked_in_store = HashSet::new();
    for userid in crawl.users.keys() {
        let ding = DingUserId::new(userid.as_str());
        if ids.oa_user(&ding).is_some() {
            linked_in_store.insert(userid.as_str().to_owned());
        } else if ids.ding_user(&OaUserId::new(userid.as_str())).is_none() {
            ids.insert_user(OaUserId::new(userid.as_str()), ding);
        }
    }
    linked_in_store
}

impl DingView {
    /// The crawled departments: mapped ones translated, the others kept aside.
    fn add_departments(
        &mut self,
        details: Vec<wire::dept::DeptDetail>,
        ids: &IdMap,
        oa: &Snapshot,
        reading: &super::scoped::Reading<'_>,
    ) {
        for d in details {
            let Some(id) = ids.oa_dept(ding::dept(d.dept_id)) else {
                self.unmapped.push(Unmapped::Department(Box::new(d)));
                continue;
            };
            match super::scoped::read_department(&d, ids, oa.departments.get(&id), reading) {
                Ok((dept, drift)) => {
                    self.drift.extend(drift);
                    self.snapshot.departments.insert(id, dept);
                }
                Err(e) => self.untranslatable.push((
                    EntityKind::Department,
                    id.to_string(),
                    crate::error_chain(&e),
                )),
            }
        }
    }

    /// The crawled users, OA's manager kept where the listing does not show one.
    fn add_users(
        &mut self,
        crawl: &OrgSnapshot,
        ids: &IdMap,
        oa: &Snapshot,
        linked_in_store: &HashSet<String>,
        reading: &super::scoped::Reading<'_>,
    ) {
        let (rules, parents, pending) = (reading.rules, reading.parents, reading.pending);
        for (userid, u) in &crawl.users {
            let Some(id) = ids.oa_user(&DingUserId::new(userid.as_str())).cloned() else {
                continue;
            };
            let oa_user = oa.users.get(&id);
            let read = match super::scoped::read_user(u, ids, oa_user, rules, parents) {
                Ok(Some(read)) => read,
                Ok(None) => continue, // out of `[scope.to_oa]`: as if DingTalk did not have it
                Err(e) => {
                    self.untranslatable.push((
                        EntityKind::User,
                        id.to_string(),
                        crate::error_chain(&e),
                    ));
                    continue;
                }
            };
            if let Some(drift) = super::scoped::drift(&read, oa_user, rules) {
                self.drift.push(drift);
            }
            let read_back = if pending {
                rules.user_to_oa_pending(read.dingtalk, oa_user, read.expected)
            } else {
                rules.user_to_oa(read.dingtalk, oa_user, read.expected)
            };
            let mut user = match read_back {
                Ok(user) => user,
                Err(e) => {
                    self.untranslatable.push((
                        EntityKind::User,
                        id.to_string(),
                        crate::error_chain(&e),
                    ));
                    continue;
                }
            };
            // `v2/user/list` does not report the manager: not observable, keep OA's.
            if u.manager_userid.is_none() {
                user.manager = oa_user.and_then(|o| o.manager.clone());
            }
            if oa_user.is_some() || linked_in_store.contains(userid.as_str()) {
                self.snapshot.users.insert(id, user);
            } else {
                self.new_users.push(user);
            }
        }
    }

    /// The crawled role groups, roles and their members.
    fn add_roles(&mut self, crawl: &OrgSnapshot, ids: &IdMap) {
        for g in &crawl.role_groups {
            let mapped_group = ids.oa_group(ding::group(g.group_id));
            if g.name == BUILTIN_GROUP && mapped_group.is_none() {
                continue;
            }
            match translate::role::group_from_wire(g, ids) {
                Ok(group) => {
                    self.snapshot.role_groups.insert(group.id, group);
                }
                Err(_) => self
                    .unmapped
                    .push(Unmapped::RoleGroup(g.group_id, g.name.clone())),
            }
            for r in &g.roles {
                let role = match translate::role::role_from_wire(r, g.group_id, ids) {
                    Ok(role) => role,
                    Err(_) => {
                        self.unmapped
                            .push(Unmapped::Role(r.id, r.name.clone(), g.group_id));
                        continue;
                    }
                };
                for m in crawl.role_members.get(&r.id).into_iter().flatten() {
                    if let Some(user) = ids.oa_user(&DingUserId::new(m.userid.as_str())) {
                        self.snapshot.assignments.insert(RoleAssignment {
                            user: user.clone(),
                            role: role.id,
                        });
                    }
                }
                self.snapshot.roles.insert(role.id, role);
            }
        }
    }
}
