//! One organization's part of the OA directory (issue 20), for the whole-directory views of
//! plan and reconcile, and for the import's linking (so an org never soft-matches its people to
//! another org's).
//!
//! The OA directory is shared by every DingTalk organization of a deployment, but each org's
//! DingTalk holds only its own subtree: the OA department its root is linked to (see
//! `directory_store::Store::org_roots`) and everything under it. Compared whole, org B's plan
//! would see org A's departments and people as "OA has them, DingTalk lacks them" and create
//! them in B. So the OA snapshot is cut to the org's subtree first: its departments, the users
//! with a membership there (keeping only those memberships: a person in two orgs is, for each
//! org, a member of its departments only), and their role assignments. Role groups and roles
//! stay whole: every corp has its own.
//!
//! A deployment with one linked root (one org, or several before their first imports) is left
//! as it is, so a single-org directory plans exactly as before.

use std::collections::BTreeSet;

use directory_model::{OaDeptId, Snapshot, User};
use directory_store::{Store, StoreError};

/// How far up a department's parents are followed (a cycle cannot loop forever).
const MAX_DEPTH: usize = 64;

/// Cuts `oa` to the subtree of `store`'s org (see the module doc).
pub async fn restrict_to_org(store: &Store, oa: &mut Snapshot) -> Result<(), StoreError> {
    let roots = store.org_roots().await?;
    if roots.len() <= 1 {
        return Ok(());
    }
    let org = store.org();
    let mine: BTreeSet<i64> = roots
        .iter()
        .filter(|(_, orgs)| orgs.iter().any(|o| o == org))
        .map(|(id, _)| *id)
        .collect();
    let root_of = |start: OaDeptId| -> Option<i64> {
        let mut at = start;
        for _ in 0..MAX_DEPTH {
            if roots.contains_key(&at.0) {
                return Some(at.0);
            }
            at = oa.departments.get(&at)?.parent?;
        }
        None
    };
    let kept: BTreeSet<OaDeptId> = oa
        .departments
        .keys()
        .copied()
        .filter(|d| root_of(*d).is_some_and(|r| mine.contains(&r)))
        .collect();
    oa.departments.retain(|id, _| kept.contains(id));
    oa.users.retain(|_, u| {
        u.departments.retain(|m| kept.contains(&m.dept));
        if u.main_department.is_some_and(|d| !kept.contains(&d)) {
            u.main_department = None;
        }
        !u.departments.is_empty()
    });
    let users = &oa.users;
    oa.assignments.retain(|a| users.contains_key(&a.user));
    Ok(())
}

/// Cuts `user`'s memberships to the subtree of `store`'s org, for a push to that org's
/// DingTalk; returns whether any remain (none: the user is not, or no longer, in this org, and
/// the push removes them from its DingTalk). A deployment with one linked root leaves `user`
/// as it is.
pub async fn trim_user_to_org(store: &Store, user: &mut User) -> Result<bool, StoreError> {
    let roots = store.org_roots().await?;
    if roots.len() <= 1 {
        return Ok(true);
    }
    let org = store.org();
    let mut kept = Vec::with_capacity(user.departments.len());
    for m in user.departments.drain(..) {
        let mut at = Some(m.dept);
        let mut mine = false;
        for _ in 0..MAX_DEPTH {
            let Some(d) = at else { break };
            if let Some(orgs) = roots.get(&d.0) {
                mine = orgs.iter().any(|o| o == org);
                break;
            }
            at = store.get_department(d).await?.and_then(|v| v.entity.parent);
        }
        if mine {
            kept.push(m);
        }
    }
    user.departments = kept;
    if user
        .main_department
        .is_some_and(|d| !user.departments.iter().any(|m| m.dept == d))
    {
        user.main_department = None;
    }
    Ok(!user.departments.is_empty())
}
