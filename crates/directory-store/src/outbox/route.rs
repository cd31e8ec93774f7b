//! Which DingTalk organization an OA change is pushed to (issue 20).
//!
//! Each org's DingTalk root (department 1) is linked in that org's id map to an OA department;
//! an OA entity belongs to the org whose root's subtree holds it. A department is pushed to the
//! org whose root is its nearest linked ancestor (itself included); a user to every org holding
//! one of their departments, before or after the change (so leaving an org reaches that org,
//! and a person in departments of two orgs is pushed to both); a role assignment to the orgs of
//! its user; role groups and roles to every org (each corp has its own roles).
//!
//! Only a write through the unscoped handle (the OA API, SCIM, `load`: org [`DEFAULT_ORG`]) is
//! routed: what an org's engine queues for itself (OA won a conflict) goes to that org. Until
//! some org has linked its root (a single-org deployment before its first import), or when no
//! root holds the entity, the writer's org is the target, exactly as before orgs existed.

use std::collections::{BTreeMap, BTreeSet};

use directory_model::{Department, User};
use sqlx::{AnyConnection, Row};

use crate::db::{DEFAULT_ORG, Sql};
use crate::error::{EntityKind, StoreError};
use crate::journal::Change;

/// How far up the tree an ancestor walk goes before giving up (DingTalk allows 15 levels).
const MAX_DEPTH: usize = 64;

/// The orgs `change`, written by a handle of `writer`, is pushed to (at least one).
pub(crate) async fn targets(
    conn: &mut AnyConnection,
    writer: &str,
    change: &Change,
) -> Result<Vec<String>, StoreError> {
    if writer != DEFAULT_ORG {
        return Ok(vec![writer.to_owned()]);
    }
    let roots = org_roots(conn).await?;
    if roots.is_empty() {
        return Ok(vec![writer.to_owned()]);
    }
    let mut orgs: BTreeSet<String> = BTreeSet::new();
    match change.kind {
        EntityKind::Department => {
            let start = change
                .oa_id
                .parse::<i64>()
                .ok()
                .filter(|_| change.after.is_some());
            // A deleted department's row is gone: start from its parent as it was.
            let start = match start {
                Some(id) => Some(id),
                None => department_in(change.before.as_ref())
                    .and_then(|d| d.parent)
                    .map(|p| p.0),
            };
            if let Some(id) = start {
                orgs.extend(org_of(conn, &roots, id).await?);
            }
            if let Some(root_orgs) = change
                .oa_id
                .parse::<i64>()
                .ok()
                .and_then(|id| roots.get(&id))
            {
                orgs.extend(root_orgs.iter().cloned());
            }
        }
        EntityKind::User => {
            let mut depts = BTreeSet::new();
            for body in [change.before.as_ref(), change.after.as_ref()] {
                if let Some(u) = body.and_then(|b| serde_json::from_value::<User>(b.clone()).ok()) {
                    depts.extend(u.departments.iter().map(|m| m.dept.0));
                }
            }
            for d in depts {
                orgs.extend(org_of(conn, &roots, d).await?);
            }
        }
        EntityKind::RoleAssignment => {
            // `role:user`: the user's current departments decide.
            let user = change.oa_id.split_once(':').map_or("", |(_, u)| u);
            let rows = Sql::new("SELECT dept_id FROM user_departments WHERE user_id = ")
                .bind(user)
                .query()
                .fetch_all(&mut *conn)
                .await?;
            for r in rows {
                let d: i64 = r.try_get("dept_id")?;
                orgs.extend(org_of(conn, &roots, d).await?);
            }
        }
        EntityKind::RoleGroup | EntityKind::Role => {
            orgs.extend(roots.values().flatten().cloned());
        }
    }
    if orgs.is_empty() {
        orgs.insert(writer.to_owned());
    }
    Ok(orgs.into_iter().collect())
}

fn department_in(body: Option<&serde_json::Value>) -> Option<Department> {
    body.and_then(|b| serde_json::from_value(b.clone()).ok())
}

/// Each linked OA root department and the orgs it is the root of.
async fn org_roots(conn: &mut AnyConnection) -> Result<BTreeMap<i64, Vec<String>>, StoreError> {
    let rows = Sql::new("SELECT org, oa_id FROM id_map WHERE kind = ")
        .bind(EntityKind::Department.as_str())
        .push(" AND ding_id = '1'")
        .query()
        .fetch_all(&mut *conn)
        .await?;
    let mut roots: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for r in rows {
        let oa: String = r.try_get("oa_id")?;
        if let Ok(id) = oa.parse::<i64>() {
            roots.entry(id).or_default().push(r.try_get("org")?);
        }
    }
    Ok(roots)
}

/// The orgs whose root is the nearest linked ancestor of OA department `dept` (itself included).
async fn org_of(
    conn: &mut AnyConnection,
    roots: &BTreeMap<i64, Vec<String>>,
    dept: i64,
) -> Result<Vec<String>, StoreError> {
    let mut at = dept;
    for _ in 0..MAX_DEPTH {
        if let Some(orgs) = roots.get(&at) {
            return Ok(orgs.clone());
        }
        let row = Sql::new("SELECT parent_id FROM departments WHERE id = ")
            .bind(at)
            .query()
            .fetch_optional(&mut *conn)
            .await?;
        match row
            .map(|r| r.try_get::<Option<i64>, _>("parent_id"))
            .transpose()?
        {
            Some(Some(parent)) => at = parent,
            _ => break,
        }
    }
    Ok(Vec::new())
}

impl crate::db::Store {
    /// Every org's linked root: each OA department that some org's DingTalk root (department
    /// 1) is linked to, with those orgs. Across all orgs, whatever this handle's org.
    pub async fn org_roots(&self) -> Result<BTreeMap<i64, Vec<String>>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        org_roots(&mut conn).await
    }
}
