//! `/console/users` and `/console/departments`: search and the tree, each row with its sync
//! state (dead-lettered, held, conflicted, pending push or in sync).
//!
//! The states come from the queues and decisions waiting, loaded once per page into a
//! [`States`] index (bounded: the first thousand of each), so a page costs a few queries
//! whatever the directory's size.

use std::collections::{BTreeMap, HashSet};

use console::BackendError;
use console::views::{
    DepartmentNode, DepartmentTree, DeptOption, SyncState, UserList, UserQuery, UserRow,
};
use directory_model::{Department, OaDeptId, OaUserId, User};
use directory_store::{DeptQuery, EntityKind, HoldState, QueueState};

use super::{Admin, internal};

/// Rows a users page shows.
const PAGE_ROWS: usize = 50;
/// Matches a search counts before it says "at least".
const SEARCH_CAP: u32 = 1000;
/// How many of each waiting thing the state index loads.
const STATE_CAP: u32 = 1000;

/// What is waiting for each object, by (kind, OA id).
#[derive(Debug, Default)]
pub struct States {
    dead: HashSet<(EntityKind, String)>,
    held: HashSet<(EntityKind, String)>,
    conflicted: HashSet<(EntityKind, String)>,
    pending: HashSet<(EntityKind, String)>,
}

impl States {
    pub async fn load(admin: &Admin) -> Result<Self, BackendError> {
        let store = &admin.store;
        let key = |kind: EntityKind, id: &str| (kind, id.to_owned());
        let mut states = States::default();
        for entry in store
            .outbox_list(Some(QueueState::Dead), None, STATE_CAP)
            .await
            .map_err(internal)?
        {
            states.dead.insert(key(entry.kind, &entry.oa_id));
        }
        for entry in store
            .outbox_list(Some(QueueState::Pending), None, STATE_CAP)
            .await
            .map_err(internal)?
        {
            states.pending.insert(key(entry.kind, &entry.oa_id));
        }
        for hold in store
            .held_deletions(Some(HoldState::Held))
            .await
            .map_err(internal)?
        {
            states.held.insert(key(hold.kind, &hold.oa_id));
        }
        for conflict in store
            .conflicts_undecided(STATE_CAP)
            .await
            .map_err(internal)?
        {
            states
                .conflicted
                .insert(key(conflict.kind, &conflict.oa_id));
        }
        Ok(states)
    }

    /// The most urgent state of one object.
    pub fn of(&self, kind: EntityKind, id: &str) -> SyncState {
        let key = (kind, id.to_owned());
        if self.dead.contains(&key) {
            SyncState::DeadLettered
        } else if self.held.contains(&key) {
            SyncState::Held
        } else if self.conflicted.contains(&key) {
            SyncState::Conflicted
        } else if self.pending.contains(&key) {
            SyncState::PendingPush
        } else {
            SyncState::InSync
        }
    }
}

pub async fn users(admin: &Admin, query: &UserQuery) -> Result<UserList, BackendError> {
    let department = match query.department.as_deref().filter(|d| !d.is_empty()) {
        Some(text) => Some(OaDeptId(text.parse().map_err(|_| {
            BackendError::Invalid {
                field: "department".to_owned(),
                message: format!("{text:?} is not a department id"),
            }
        })?)),
        None => None,
    };
    let found = search(admin, query.q.as_deref().unwrap_or("").trim(), department).await?;
    let states = States::load(admin).await?;
    let names = department_names(admin).await?;
    let mut rows: Vec<UserRow> = found
        .into_iter()
        .map(|user| user_row(user, &states, &names))
        .filter(|row| query.state.is_none_or(|state| row.state == state))
        .collect();
    let total = rows.len() as u64;
    rows.truncate(PAGE_ROWS);
    let mut departments: Vec<DeptOption> = names
        .into_iter()
        .map(|(id, name)| DeptOption {
            id: id.to_string(),
            name,
        })
        .collect();
    departments.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(UserList {
        rows,
        total,
        departments,
    })
}

/// Users matching `q` by exact userid, mobile, job number or email, or by a part of the name.
async fn search(
    admin: &Admin,
    q: &str,
    department: Option<OaDeptId>,
) -> Result<Vec<User>, BackendError> {
    let store = &admin.store;
    let mut found: BTreeMap<String, User> = BTreeMap::new();
    let base = directory_store::UserQuery {
        department,
        limit: SEARCH_CAP,
        ..Default::default()
    };
    let mut queries = vec![directory_store::UserQuery {
        name_contains: (!q.is_empty()).then(|| q.to_owned()),
        ..base.clone()
    }];
    if !q.is_empty() {
        let digits = q.trim_start_matches('+').rsplit('-').next().unwrap_or(q);
        queries.push(directory_store::UserQuery {
            mobile: Some(digits.to_owned()),
            ..base.clone()
        });
        queries.push(directory_store::UserQuery {
            job_number: Some(q.to_owned()),
            ..base.clone()
        });
        let mut exact = vec![q.to_owned()];
        if q.contains('@') {
            exact.extend(
                store
                    .user_ids_by_email(q, SEARCH_CAP)
                    .await
                    .map_err(internal)?,
            );
        }
        for id in exact {
            if let Some(user) = store
                .get_user(&OaUserId::new(id))
                .await
                .map_err(internal)?
                .filter(|u| {
                    department.is_none_or(|d| u.entity.departments.iter().any(|m| m.dept == d))
                })
            {
                found.insert(user.entity.id.as_str().to_owned(), user.entity);
            }
        }
    }
    for query in queries {
        let page = store.list_users(&query).await.map_err(internal)?;
        for user in page.items {
            found.insert(user.entity.id.as_str().to_owned(), user.entity);
        }
    }
    Ok(found.into_values().collect())
}

fn user_row(user: User, states: &States, names: &BTreeMap<i64, String>) -> UserRow {
    let state = states.of(EntityKind::User, user.id.as_str());
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

/// Every department, in id order.
pub async fn all_departments(admin: &Admin) -> Result<Vec<Department>, BackendError> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = admin
            .store
            .list_departments(&DeptQuery {
                after,
                limit: 1000,
                ..Default::default()
            })
            .await
            .map_err(internal)?;
        all.extend(page.items.into_iter().map(|d| d.entity));
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(all),
        }
    }
}

async fn department_names(admin: &Admin) -> Result<BTreeMap<i64, String>, BackendError> {
    Ok(all_departments(admin)
        .await?
        .into_iter()
        .map(|d| (d.id.0, d.name))
        .collect())
}

pub async fn departments(admin: &Admin) -> Result<DepartmentTree, BackendError> {
    let all = all_departments(admin).await?;
    let states = States::load(admin).await?;
    let members: BTreeMap<i64, i64> = admin
        .store
        .department_member_counts()
        .await
        .map_err(internal)?
        .into_iter()
        .collect();
    let mapped: BTreeMap<i64, i64> = admin
        .store
        .id_map_all::<OaDeptId>()
        .await
        .map_err(internal)?
        .into_iter()
        .map(|(oa, ding)| (oa.0, ding.0))
        .collect();
    let ids: HashSet<i64> = all.iter().map(|d| d.id.0).collect();
    let mut children: BTreeMap<Option<i64>, Vec<&Department>> = BTreeMap::new();
    for dept in &all {
        // A parent outside the directory (DingTalk's root) makes a top-level department.
        let parent = dept.parent.map(|p| p.0).filter(|p| ids.contains(p));
        children.entry(parent).or_default().push(dept);
    }
    for list in children.values_mut() {
        list.sort_by_key(|d| (d.order, d.id.0));
    }
    let mut nodes = Vec::with_capacity(all.len());
    let mut stack: Vec<(&Department, u32)> = children
        .get(&None)
        .map(|roots| roots.iter().rev().map(|d| (*d, 0)).collect())
        .unwrap_or_default();
    while let Some((dept, depth)) = stack.pop() {
        nodes.push(DepartmentNode {
            id: dept.id.0.to_string(),
            name: dept.name.clone(),
            parent: dept.parent.map(|p| p.0.to_string()),
            depth,
            dingtalk_id: mapped.get(&dept.id.0).map(ToString::to_string),
            members: members.get(&dept.id.0).copied().unwrap_or(0) as u64,
            state: states.of(EntityKind::Department, &dept.id.0.to_string()),
        });
        if let Some(kids) = children.get(&Some(dept.id.0)) {
            stack.extend(kids.iter().rev().map(|d| (*d, depth + 1)));
        }
    }
    Ok(DepartmentTree { nodes })
}
