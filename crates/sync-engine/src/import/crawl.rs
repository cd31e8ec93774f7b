//! Reading DingTalk's organisation for the import: the department tree (`listsub`), every
//! department in full (`department/get`) and the roles with their members — each API family
//! with its own calls in flight, so the families share nothing but the wall clock. Every
//! in-scope department is handed to the member listing ([`super::listing`]) the moment the walk
//! finds it, so members are listed (and their details read) while the walk goes on.
//!
//! Unlike the client's own `crawl()`, a failed call does not end the crawl: it is recorded and
//! the crawl goes on, because most of an organisation is still worth importing when one page
//! failed. A crawl with any failure is *incomplete*, and the importer never deletes anything on
//! the strength of an incomplete crawl (absence from a failed page is not absence).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use dingtalk_client::{ClientError, DingTalkClient};
use dingtalk_proto::{
    DingDeptId, DingRoleId,
    dept::{DeptBrief, DeptDetail},
    role::{RoleGroup, RoleMember},
};
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{ImportError, ImportPhase, Progress, ProgressSink};
use crate::policy::Scope;
use crate::translate::ding;

/// Everything the crawl read.
#[derive(Debug, Default)]
pub(crate) struct Crawl {
    /// Departments to import, in full, parents before children (the root first).
    pub depts: Vec<DeptDetail>,
    /// Every department the walk found in the scope's subtree (a listed user's memberships
    /// outside it are not the OA directory's business).
    pub in_scope: HashSet<DingDeptId>,
    /// Role groups with their roles.
    pub role_groups: Vec<RoleGroup>,
    /// Members per role (only roles whose listing succeeded).
    pub role_members: BTreeMap<DingRoleId, Vec<RoleMember>>,
    /// What failed, one line per failed call (after the client's own retries).
    pub failures: Vec<String>,
    /// Whether the role list and every role's members were read.
    pub roles_complete: bool,
    /// Every department the walk saw, in scope or not (so scope never reads as deletion).
    pub seen_depts: HashSet<DingDeptId>,
    /// Direct members listed per department (for the minimum number of list pages).
    pub members_per_dept: HashMap<DingDeptId, usize>,
    /// Departments `[scope.to_oa.departments]` left out (see `import::scoped`): the OA
    /// directory's members of them left the scope with them.
    pub scoped_out_depts: HashSet<DingDeptId>,
}

impl Crawl {
    /// Whether every call succeeded, so absence means absence.
    pub fn complete(&self) -> bool {
        self.failures.is_empty()
    }
}

/// The tree walk's knowledge of one department.
#[derive(Debug, Clone, Copy)]
struct Node {
    /// Its parent as `listsub` reported it (`None` for the root).
    parent: Option<DingDeptId>,
    /// Whether the scope includes it.
    in_scope: bool,
}

/// One `listsub` call, tagged with its department.
async fn walk(
    client: DingTalkClient,
    id: DingDeptId,
) -> (DingDeptId, Result<Vec<DeptBrief>, ClientError>) {
    (id, client.dept_list_sub(id).await)
}

/// One `department/get` call, tagged with its department.
async fn detail(
    client: DingTalkClient,
    id: DingDeptId,
) -> (DingDeptId, Result<DeptDetail, ClientError>) {
    (id, client.dept_get(id).await)
}

/// The chain from `id` up to the root, from what the walk has seen.
fn chain(nodes: &HashMap<DingDeptId, Node>, id: DingDeptId) -> Vec<directory_model::DingDeptId> {
    let mut out = Vec::new();
    let mut at = Some(id);
    while let Some(d) = at {
        out.push(ding::dept(d));
        at = nodes.get(&d).and_then(|n| n.parent);
        if out.len() > nodes.len() + 1 {
            break; // A cycle in DingTalk's answers; the chain so far decides.
        }
    }
    out
}

/// The tree walk and the department reads, each family with up to `concurrency` calls in
/// flight. One loop drives both because the walk feeds the reads' queue as results arrive (a
/// listed child is walked and read next); the member listing runs beside it, fed by `to_list`
/// (dropped when the walk ends). The roles are read beside it too ([`roles`]).
pub(crate) async fn tree(
    client: &DingTalkClient,
    scope: &Scope,
    concurrency: usize,
    to_list: mpsc::UnboundedSender<DingDeptId>,
    progress: &ProgressSink<'_>,
    cancel: &CancellationToken,
) -> Result<Crawl, ImportError> {
    let concurrency = concurrency.max(1);
    let root = DingDeptId::ROOT;
    let mut nodes: HashMap<DingDeptId, Node> = HashMap::new();
    let root_in_scope = scope.contains_chain(&[ding::dept(root)]);
    nodes.insert(
        root,
        Node {
            parent: None,
            in_scope: root_in_scope,
        },
    );
    let mut to_walk = VecDeque::from([root]);
    // The root is always read in full: it anchors the OA tree even when out of scope.
    let mut to_get = VecDeque::from([root]);
    if root_in_scope {
        // The listing has stopped only if the import is failing anyway.
        let _ = to_list.send(root);
    }
    let mut walking = FuturesUnordered::new();
    let mut getting = FuturesUnordered::new();
    let mut details: HashMap<DingDeptId, DeptDetail> = HashMap::new();
    let mut discovered_order: Vec<DingDeptId> = vec![root];
    let mut failures = Vec::new();
    loop {
        while walking.len() < concurrency {
            let Some(d) = to_walk.pop_front() else { break };
            walking.push(walk(client.clone(), d));
        }
        while getting.len() < concurrency {
            let Some(d) = to_get.pop_front() else { break };
            getting.push(detail(client.clone(), d));
        }
        if walking.is_empty() && getting.is_empty() {
            break;
        }
        tokio::select! {
            () = cancel.cancelled() => return Err(ImportError::Cancelled),
            Some((parent, result)) = walking.next(), if !walking.is_empty() => match result {
                Ok(children) => {
                    for child in children {
                        if nodes.contains_key(&child.dept_id) {
                            continue;
                        }
                        nodes.insert(child.dept_id, Node { parent: Some(parent), in_scope: false });
                        let in_scope = scope.contains_chain(&chain(&nodes, child.dept_id));
                        if let Some(n) = nodes.get_mut(&child.dept_id) {
                            n.in_scope = in_scope;
                        }
                        discovered_order.push(child.dept_id);
                        to_walk.push_back(child.dept_id);
                        if in_scope {
                            to_get.push_back(child.dept_id);
                            let _ = to_list.send(child.dept_id);
                        }
                    }
                    progress.emit(Progress {
                        phase: ImportPhase::Crawl,
                        departments: nodes.len(),
                        users_listed: progress.listed(),
                        ..Progress::default()
                    });
                }
                Err(e) => failures.push(format!("listing sub-departments of {parent}: {e}")),
            },
            Some((id, result)) = getting.next(), if !getting.is_empty() => match result {
                Ok(d) => { details.insert(id, d); }
                Err(e) => failures.push(format!("reading department {id}: {e}")),
            },
        }
    }
    drop(to_list);
    let depts = in_scope_details(discovered_order, details, &nodes, &mut failures);
    Ok(Crawl {
        depts,
        failures,
        seen_depts: nodes.keys().copied().collect(),
        in_scope: nodes
            .iter()
            .filter(|(_, n)| n.in_scope)
            .map(|(d, _)| *d)
            .collect(),
        ..Crawl::default()
    })
}

/// The departments to import, parents before children: the discovery order of a
/// breadth-first walk. An in-scope department under an out-of-scope parent hangs from its
/// nearest in-scope ancestor (or the root), so the OA tree stays connected.
///
/// A department whose parent could not be read is left out with its whole subtree (and a
/// failure recorded): hanging it elsewhere would move it in OA, and writing it would reference
/// a parent the OA directory may not have. The crawl is incomplete anyway; the next import
/// takes the subtree.
fn in_scope_details(
    discovered_order: Vec<DingDeptId>,
    mut details: HashMap<DingDeptId, DeptDetail>,
    nodes: &HashMap<DingDeptId, Node>,
    failures: &mut Vec<String>,
) -> Vec<DeptDetail> {
    let root = DingDeptId::ROOT;
    let mut depts = Vec::new();
    let mut included: HashSet<DingDeptId> = HashSet::new();
    for id in discovered_order {
        let in_scope = nodes.get(&id).is_some_and(|n| n.in_scope);
        if id != root && !in_scope {
            continue;
        }
        let Some(mut d) = details.remove(&id) else {
            continue;
        };
        if id != root {
            let mut parent = nodes.get(&id).and_then(|n| n.parent);
            while let Some(p) = parent {
                if p == root || nodes.get(&p).is_some_and(|n| n.in_scope) {
                    break;
                }
                parent = nodes.get(&p).and_then(|n| n.parent);
            }
            let parent = parent.unwrap_or(root);
            if !included.contains(&parent) {
                failures.push(format!(
                    "department {id} not imported: its parent {parent} could not be read"
                ));
                continue;
            }
            d.parent_id = Some(parent);
        }
        included.insert(id);
        depts.push(d);
    }
    depts
}

/// The role groups, the members per role whose listing succeeded, and the failures.
pub(crate) type RolePart = (
    Vec<RoleGroup>,
    BTreeMap<DingRoleId, Vec<RoleMember>>,
    Vec<String>,
);

/// Reads the role groups with their roles, and every role's members.
pub(crate) async fn roles(client: &DingTalkClient, concurrency: usize) -> RolePart {
    let groups = match client.role_list_all().await {
        Ok(g) => g,
        Err(e) => {
            return (
                Vec::new(),
                BTreeMap::new(),
                vec![format!("listing roles: {e}")],
            );
        }
    };
    let ids: Vec<DingRoleId> = groups
        .iter()
        .flat_map(|g| g.roles.iter().map(|r| r.id))
        .collect();
    let results: Vec<(DingRoleId, Result<Vec<RoleMember>, ClientError>)> =
        futures::stream::iter(ids)
            .map(|role| {
                let client = client.clone();
                async move { (role, client.role_members_all(role).await) }
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
    let mut members = BTreeMap::new();
    let mut failures = Vec::new();
    for (role, result) in results {
        match result {
            Ok(list) => {
                members.insert(role, list);
            }
            Err(e) => failures.push(format!("listing members of role {role}: {e}")),
        }
    }
    (groups, members, failures)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail(id: i64) -> DeptDetail {
        serde_json::from_value(serde_json::json!({"dept_id": id, "name": format!("d{id}")}))
            .expect("a department detail")
    }

    /// Root 1 → 2 → 3, and 1 → 4; the detail of 2 was not read.
    fn tree() -> (Vec<DingDeptId>, HashMap<DingDeptId, Node>) {
        let node = |parent: Option<i64>| Node {
            parent: parent.map(DingDeptId),
            in_scope: true,
        };
        let nodes = HashMap::from([
            (DingDeptId(1), node(None)),
            (DingDeptId(2), node(Some(1))),
            (DingDeptId(3), node(Some(2))),
            (DingDeptId(4), node(Some(1))),
        ]);
        ((1..=4).map(DingDeptId).collect(), nodes)
    }

    #[test]
    fn a_department_whose_parent_was_not_read_is_left_out_with_its_subtree() {
        let (order, nodes) = tree();
        let details = HashMap::from([
            (DingDeptId(1), detail(1)),
            (DingDeptId(3), detail(3)),
            (DingDeptId(4), detail(4)),
        ]);
        let mut failures = Vec::new();
        let depts = in_scope_details(order, details, &nodes, &mut failures);
        let ids: Vec<i64> = depts.iter().map(|d| d.dept_id.0).collect();
        assert_eq!(ids, vec![1, 4]);
        assert_eq!(depts[1].parent_id, Some(DingDeptId(1)));
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(failures[0].contains("department 3") && failures[0].contains("parent 2"));
    }

    #[test]
    fn every_department_read_is_kept_under_its_parent() {
        let (order, nodes) = tree();
        let details: HashMap<_, _> = (1..=4).map(|i| (DingDeptId(i), detail(i))).collect();
        let mut failures = Vec::new();
        let depts = in_scope_details(order, details, &nodes, &mut failures);
        assert_eq!(depts.len(), 4);
        assert_eq!(depts[2].parent_id, Some(DingDeptId(2)));
        assert!(failures.is_empty());
    }
}
