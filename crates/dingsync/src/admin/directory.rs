//! `/console/users`, `/console/departments` and `/console/roles`: search, the department tree
//! and the role groups with their roles, each row with its sync state (dead-lettered, held,
//! conflicted, pending push or in sync).
//!
//! Every page stays a handful of indexed queries at 100,000 people: a search collects the ids
//! its indexed lookups match (bounded), a plain listing pages through ids with a count, and
//! only the fifty users a page draws are loaded whole. Sync states are looked up for exactly
//! the objects a page shows ([`States::of_ids`]); the state filter starts from what is
//! waiting (few rows) rather than from the directory.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use console::BackendError;
use console::views::{
    DepartmentNode, DepartmentQuery, DepartmentTree, DeptOption, RoleGroupRow, RoleRow, RoleTree,
    SyncState, UserList, UserQuery, UserRow,
};
use directory_model::{OaRoleGroupId, OaRoleId, Role, RoleGroup, User};
use directory_store::{EntityKind, RoleQuery, Waiting};

use super::{Admin, internal};

/// Rows a users page shows.
const PAGE_ROWS: usize = 50;
/// Matches each indexed lookup of a search collects before the page says "at least".
const SEARCH_CAP: u32 = 1000;

/// The sync state a waiting thing gives an object.
fn state_of(waiting: Option<Waiting>) -> SyncState {
    match waiting {
        Some(Waiting::DeadLetter) => SyncState::DeadLettered,
        Some(Waiting::HeldDeletion) => SyncState::Held,
        Some(Waiting::Conflict) => SyncState::Conflicted,
        Some(Waiting::PendingPush) => SyncState::PendingPush,
        None => SyncState::InSync,
    }
}

/// What is waiting for each of a page's objects (the most urgent thing per object).
#[derive(Debug, Default)]
pub struct States {
    waiting: HashMap<String, Waiting>,
}

impl States {
    /// The states of these objects of `kind`.
    pub async fn of_ids(
        admin: &Admin,
        kind: EntityKind,
        ids: &[String],
    ) -> Result<Self, BackendError> {
        let mut waiting: HashMap<String, Waiting> = HashMap::new();
        for (id, w) in admin.store.waiting_of(kind, ids).await.map_err(internal)? {
            let slot = waiting.entry(id).or_insert(w);
            *slot = (*slot).min(w);
        }
        Ok(Self { waiting })
    }

    /// The most urgent state of one object.
    pub fn of(&self, id: &str) -> SyncState {
        state_of(self.waiting.get(id).copied())
    }
}

/// The waiting thing a (non-`InSync`) state filter starts from.
fn waiting_for(state: SyncState) -> Option<Waiting> {
    match state {
        SyncState::DeadLettered => Some(Waiting::DeadLetter),
        SyncState::Held => Some(Waiting::HeldDeletion),
        SyncState::Conflicted => Some(Waiting::Conflict),
        SyncState::PendingPush => Some(Waiting::PendingPush),
        SyncState::InSync => None,
    }
}

/// Every user with something waiting on it (each kind capped at [`SEARCH_CAP`]).
async fn waiting_users(admin: &Admin) -> Result<BTreeSet<String>, BackendError> {
    let mut all = BTreeSet::new();
    for w in [
        Waiting::DeadLetter,
        Waiting::HeldDeletion,
        Waiting::Conflict,
        Waiting::PendingPush,
    ] {
        all.extend(
            admin
                .store
                .waiting_ids(EntityKind::User, w, SEARCH_CAP)
                .await
                .map_err(internal)?,
        );
    }
    Ok(all)
}

/// One page of the matching ids, their total, and whether the total is only a lower bound.
struct Matches {
    page: Vec<String>,
    total: u64,
    at_least: bool,
}

impl Matches {
    /// The page `page` of an id list already filtered.
    fn of_list(ids: Vec<String>, page: usize, capped: bool) -> Self {
        let total = ids.len() as u64;
        Self {
            page: ids
                .into_iter()
                .skip(page * PAGE_ROWS)
                .take(PAGE_ROWS)
                .collect(),
            total,
            at_least: capped,
        }
    }
}

pub async fn users(admin: &Admin, query: &UserQuery) -> Result<UserList, BackendError> {
    let department = match query
        .department
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        Some(text) => {
            let id = text.parse::<i64>().map_err(|_| BackendError::Invalid {
                field: "department".to_owned(),
                message: format!("{text:?} is not a department id (a whole number)"),
            })?;
            if admin
                .store
                .department_brief(id)
                .await
                .map_err(internal)?
                .is_none()
            {
                return Err(BackendError::Invalid {
                    field: "department".to_owned(),
                    message: format!("there is no department {id}"),
                });
            }
            Some(id)
        }
        None => None,
    };
    let q = query.q.as_deref().unwrap_or("").trim();
    let page = query.page as usize;
    let store = &admin.store;
    let matches = match (q.is_empty(), query.state) {
        (true, None) => Matches {
            page: store
                .console_user_page_ids(department, (page * PAGE_ROWS) as u64, PAGE_ROWS as u32)
                .await
                .map_err(internal)?,
            total: store
                .console_user_count(department)
                .await
                .map_err(internal)?
                .max(0) as u64,
            at_least: false,
        },
        (true, Some(SyncState::InSync)) => in_sync_page(admin, department, page).await?,
        (_, Some(state)) => {
            let mut ids = match waiting_for(state) {
                Some(w) => {
                    let waiting = store
                        .waiting_ids(EntityKind::User, w, SEARCH_CAP)
                        .await
                        .map_err(internal)?;
                    let waiting = match department {
                        Some(d) if q.is_empty() => store
                            .users_in_department(d, &waiting)
                            .await
                            .map_err(internal)?,
                        _ => waiting,
                    };
                    if q.is_empty() {
                        waiting
                    } else {
                        let found: HashSet<String> = store
                            .console_user_ids(q, department, SEARCH_CAP)
                            .await
                            .map_err(internal)?
                            .into_iter()
                            .collect();
                        waiting
                            .into_iter()
                            .filter(|id| found.contains(id))
                            .collect()
                    }
                }
                None => store
                    .console_user_ids(q, department, SEARCH_CAP)
                    .await
                    .map_err(internal)?,
            };
            let capped = ids.len() >= SEARCH_CAP as usize;
            let states = States::of_ids(admin, EntityKind::User, &ids).await?;
            ids.retain(|id| states.of(id) == state);
            Matches::of_list(ids, page, capped)
        }
        (false, None) => {
            let ids = store
                .console_user_ids(q, department, SEARCH_CAP)
                .await
                .map_err(internal)?;
            let capped = ids.len() >= SEARCH_CAP as usize;
            Matches::of_list(ids, page, capped)
        }
    };
    let users: Vec<User> = store
        .users_by_ids(&matches.page)
        .await
        .map_err(internal)?
        .into_iter()
        .map(|u| u.entity)
        .collect();
    let states = States::of_ids(admin, EntityKind::User, &matches.page).await?;
    // Names of just the departments the page's users are in.
    let mut dept_ids: Vec<i64> = users
        .iter()
        .flat_map(|u| u.departments.iter().map(|m| m.dept.0))
        .chain(department)
        .collect();
    dept_ids.sort_unstable();
    dept_ids.dedup();
    let names: BTreeMap<i64, String> = store
        .department_briefs(&dept_ids)
        .await
        .map_err(internal)?
        .into_iter()
        .map(|d| (d.id, d.name))
        .collect();
    let department = department.map(|id| DeptOption {
        id: id.to_string(),
        name: names.get(&id).cloned().unwrap_or_default(),
    });
    let rows: Vec<UserRow> = users
        .into_iter()
        .map(|user| user_row(user, &states, &names))
        .collect();
    Ok(UserList {
        rows,
        total: matches.total,
        total_is_lower_bound: matches.at_least,
        page: query.page,
        page_rows: PAGE_ROWS as u32,
        department,
    })
}

/// A page of users with nothing waiting, in id order, without a search: pages through the
/// directory's ids, stepping over the (few) users something waits on.
async fn in_sync_page(
    admin: &Admin,
    department: Option<i64>,
    page: usize,
) -> Result<Matches, BackendError> {
    let store = &admin.store;
    let mut waiting: Vec<String> = waiting_users(admin).await?.into_iter().collect();
    if let Some(d) = department {
        waiting = store
            .users_in_department(d, &waiting)
            .await
            .map_err(internal)?;
    }
    let all = store
        .console_user_count(department)
        .await
        .map_err(internal)?
        .max(0) as u64;
    let want = page * PAGE_ROWS;
    // The raw offset of the page's first in-sync user: `want` plus the waiting users before
    // it. A few rounds settle it, as the waiting users are few.
    let mut raw = want;
    for _ in 0..8 {
        let first = store
            .console_user_page_ids(department, raw as u64, 1)
            .await
            .map_err(internal)?;
        let Some(first) = first.first() else { break };
        let before = waiting.partition_point(|w| w.as_str() < first.as_str());
        if raw == want + before {
            break;
        }
        raw = want + before;
    }
    let waiting: HashSet<String> = waiting.into_iter().collect();
    let mut ids = Vec::with_capacity(PAGE_ROWS);
    let mut offset = raw as u64;
    while ids.len() < PAGE_ROWS {
        let chunk = store
            .console_user_page_ids(department, offset, (PAGE_ROWS * 2) as u32)
            .await
            .map_err(internal)?;
        if chunk.is_empty() {
            break;
        }
        offset += chunk.len() as u64;
        ids.extend(chunk.into_iter().filter(|id| !waiting.contains(id)));
    }
    ids.truncate(PAGE_ROWS);
    Ok(Matches {
        page: ids,
        total: all.saturating_sub(waiting.len() as u64),
        at_least: false,
    })
}

fn user_row(user: User, states: &States, names: &BTreeMap<i64, String>) -> UserRow {
    let state = states.of(user.id.as_str());
    UserRow {
        id: user.id.as_str().to_owned(),
        name: user.name,
        userid: Some(user.id.as_str().to_owned()),
        mobile: user
            .mobile
            .map(|m| format!("+{}-{}", m.country_code, m.number)),
        job_number: user.job_number,
        email: user.email,
        departments: user
            .departments
            .iter()
            .map(|m| {
                names
                    .get(&m.dept.0)
                    .cloned()
                    .unwrap_or_else(|| m.dept.0.to_string())
            })
            .collect(),
        state,
    }
}

/// Departments a tree level shows per page.
const LEVEL_ROWS: u32 = 100;
/// How deep the path to a department is followed (a cycle in bad data stops here).
const MAX_DEPTH: usize = 64;

/// One level of the tree: the path down to `under`, and a page of its sub-departments with
/// their members, sub-departments, DingTalk ids and sync states, each counted for just the
/// page's rows.
pub async fn departments(
    admin: &Admin,
    query: &DepartmentQuery,
) -> Result<DepartmentTree, BackendError> {
    let store = &admin.store;
    let under = match query
        .under
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        Some(text) => Some(text.parse::<i64>().map_err(|_| BackendError::Invalid {
            field: "under".to_owned(),
            message: format!("{text:?} is not a department id (a whole number)"),
        })?),
        None => None,
    };
    let mut path = Vec::new();
    let mut members = None;
    if let Some(id) = under {
        let mut next = Some(id);
        while let Some(id) = next {
            let Some(dept) = store.department_brief(id).await.map_err(internal)? else {
                break;
            };
            next = dept.parent.filter(|_| path.len() < MAX_DEPTH);
            path.push(DeptOption {
                id: dept.id.to_string(),
                name: dept.name,
            });
        }
        if path.is_empty() {
            return Err(BackendError::NotFound {
                what: "department",
                id: id.to_string(),
            });
        }
        path.reverse();
        members = Some(
            store
                .department_member_counts_of(&[id])
                .await
                .map_err(internal)?
                .first()
                .map_or(0, |(_, n)| (*n).max(0) as u64),
        );
    }
    let (level, total) = store
        .department_level(
            under,
            u64::from(query.page) * u64::from(LEVEL_ROWS),
            LEVEL_ROWS,
        )
        .await
        .map_err(internal)?;
    let ids: Vec<i64> = level.iter().map(|d| d.id).collect();
    let texts: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let counts = |pairs: Vec<(i64, i64)>| -> HashMap<i64, u64> {
        pairs
            .into_iter()
            .map(|(k, n)| (k, n.max(0) as u64))
            .collect()
    };
    let member_counts = counts(
        store
            .department_member_counts_of(&ids)
            .await
            .map_err(internal)?,
    );
    let child_counts = counts(
        store
            .department_child_counts_of(&ids)
            .await
            .map_err(internal)?,
    );
    let mapped: HashMap<String, String> = store
        .ding_ids_of(EntityKind::Department, &texts)
        .await
        .map_err(internal)?
        .into_iter()
        .collect();
    let states = States::of_ids(admin, EntityKind::Department, &texts).await?;
    let nodes = level
        .into_iter()
        .map(|dept| {
            let id = dept.id.to_string();
            DepartmentNode {
                dingtalk_id: mapped.get(&id).cloned(),
                members: member_counts.get(&dept.id).copied().unwrap_or(0),
                sub_departments: child_counts.get(&dept.id).copied().unwrap_or(0),
                state: states.of(&id),
                parent: dept.parent.map(|p| p.to_string()),
                name: dept.name,
                id,
            }
        })
        .collect();
    Ok(DepartmentTree {
        path,
        members,
        nodes,
        total: total.max(0) as u64,
        page: query.page,
        page_rows: LEVEL_ROWS,
    })
}

/// Every role group and role (a directory has tens to hundreds: one page, no paging).
pub async fn roles(admin: &Admin) -> Result<RoleTree, BackendError> {
    let store = &admin.store;
    let mut groups: Vec<RoleGroup> = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_role_groups(after, 1000)
            .await
            .map_err(internal)?;
        groups.extend(page.items.into_iter().map(|g| g.entity));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let mut roles: Vec<Role> = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_roles(&RoleQuery {
                after,
                limit: 1000,
                ..Default::default()
            })
            .await
            .map_err(internal)?;
        roles.extend(page.items.into_iter().map(|r| r.entity));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let group_ids: Vec<String> = groups.iter().map(|g| g.id.to_string()).collect();
    let role_ids: Vec<String> = roles.iter().map(|r| r.id.to_string()).collect();
    let group_states = States::of_ids(admin, EntityKind::RoleGroup, &group_ids).await?;
    let role_states = States::of_ids(admin, EntityKind::Role, &role_ids).await?;
    let group_map: HashMap<i64, i64> = store
        .id_map_all::<OaRoleGroupId>()
        .await
        .map_err(internal)?
        .into_iter()
        .map(|(oa, ding)| (oa.get(), ding.get()))
        .collect();
    let role_map: HashMap<i64, i64> = store
        .id_map_all::<OaRoleId>()
        .await
        .map_err(internal)?
        .into_iter()
        .map(|(oa, ding)| (oa.get(), ding.get()))
        .collect();
    let holders: HashMap<i64, i64> = store
        .role_holder_counts()
        .await
        .map_err(internal)?
        .into_iter()
        .collect();
    let mut by_group: BTreeMap<i64, Vec<RoleRow>> = BTreeMap::new();
    for role in roles {
        let id = role.id.to_string();
        by_group.entry(role.group.get()).or_default().push(RoleRow {
            state: role_states.of(&id),
            dingtalk_id: role_map.get(&role.id.get()).map(ToString::to_string),
            holders: holders.get(&role.id.get()).copied().unwrap_or(0).max(0) as u64,
            name: role.name,
            id,
        });
    }
    Ok(RoleTree {
        groups: groups
            .into_iter()
            .map(|group| {
                let id = group.id.to_string();
                RoleGroupRow {
                    state: group_states.of(&id),
                    dingtalk_id: group_map.get(&group.id.get()).map(ToString::to_string),
                    roles: by_group.remove(&group.id.get()).unwrap_or_default(),
                    name: group.name,
                    id,
                }
            })
            .collect(),
    })
}
