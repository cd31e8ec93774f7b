//! `[scope.to_oa]` in the import: DingTalk entities out of it never reach the OA directory.
//!
//! The predicates run before anything is linked or written — on the departments once the walk
//! is done, on each listed user as it arrives — so an entity out of scope is never linked,
//! soft-matched or written. One the OA directory already holds (it
//! entered while it was in scope) is then missing from the crawl like one DingTalk deleted, and
//! phase 5 handles it the same way: a department is deleted and a user marked `Left`, both under
//! the deletion threshold and its holds (issue 19: leaving the scope is a deletion). Entering the
//! scope again is an ordinary create.
//!
//! A department out of scope takes its memberships with it; an in-scope department below it
//! hangs from its nearest in-scope ancestor (as with the subtree scope), and a user left with no
//! in-scope department is out of scope too. A predicate that fails for one entity leaves that
//! entity out and is recorded as a failure (so the crawl counts as incomplete and nothing is
//! deleted on its strength); a user's failure is also dead-lettered with its reason.

use std::collections::HashSet;

use dingtalk_proto::{DingDeptId, user::User as WireUser};
use directory_model::DingDeptId as ModelDeptId;

use super::crawl::Crawl;
use crate::plan::DingParents;
use crate::rules::Rules;
use crate::translate::{self, IdMap};

/// Leaves the departments out of `[scope.to_oa.departments]` out of `crawl`.
pub(super) fn departments(crawl: &mut Crawl, ids: &IdMap, rules: &Rules) {
    if !rules.scopes_dingtalk_departments() {
        return;
    }
    let parents = DingParents::of(&crawl.depts);
    let mut out: HashSet<DingDeptId> = HashSet::new();
    let mut failures = Vec::new();
    for d in &crawl.depts {
        if d.dept_id == DingDeptId::ROOT {
            continue;
        }
        let mut chain = Vec::new();
        parents.chain(d.dept_id.0, &mut chain);
        let view = translate::department::scope_view(d, ids);
        match rules.dingtalk_department_in_scope(&view, &chain) {
            Ok(true) => {}
            Ok(false) => {
                out.insert(d.dept_id);
            }
            Err(e) => {
                failures.push(format!(
                    "department {} not imported: the scope failed: {}",
                    d.dept_id,
                    crate::error_chain(&e)
                ));
                out.insert(d.dept_id);
            }
        }
    }
    // A failure makes the crawl incomplete, so nothing is deleted on its strength (the
    // import reports the crawl's failures).
    crawl.failures.extend(failures);
    if out.is_empty() {
        return;
    }
    crawl.depts.retain(|d| !out.contains(&d.dept_id));
    for d in &mut crawl.depts {
        let mut parent = d.parent_id;
        while let Some(p) = parent.filter(|p| out.contains(p)) {
            parent = parents.parent(p.0).map(DingDeptId);
        }
        if d.parent_id.is_some() {
            d.parent_id = Some(parent.unwrap_or(DingDeptId::ROOT));
        }
    }
    crawl.seen_depts.retain(|d| !out.contains(d));
    crawl.scoped_out_depts = out;
}

/// Narrows a listed user to the departments the import takes (in the walk's scope and not left
/// out by `[scope.to_oa.departments]`); `None` when that leaves none of the user's departments.
pub(super) fn memberships(mut u: WireUser, crawl: &Crawl) -> Option<WireUser> {
    let had = u.dept_id_list.as_ref().is_some_and(|l| !l.is_empty());
    let keep = |d: &DingDeptId| crawl.in_scope.contains(d) && !crawl.scoped_out_depts.contains(d);
    if let Some(list) = &mut u.dept_id_list {
        list.retain(keep);
    }
    if let Some(list) = &mut u.dept_order_list {
        list.retain(|o| !crawl.scoped_out_depts.contains(&o.dept_id));
    }
    if had && u.dept_id_list.as_ref().is_none_or(Vec::is_empty) {
        return None;
    }
    Some(u)
}

/// Whether `[scope.to_oa.users]` takes the user; `ids` must know the in-scope departments
/// (after they are linked). `Err`: the predicate failed (the reason).
pub(super) fn user(
    u: &WireUser,
    ids: &IdMap,
    rules: &Rules,
    parents: &DingParents,
) -> Result<bool, String> {
    if !rules.scopes_dingtalk_users() {
        return Ok(true);
    }
    let mut ancestors: Vec<ModelDeptId> = Vec::new();
    for d in u.dept_id_list.iter().flatten() {
        parents.chain(d.0, &mut ancestors);
    }
    translate::user::scope_view(u, ids)
        .map_err(|e| crate::error_chain(&e))
        .and_then(|view| {
            rules
                .dingtalk_user_in_scope(&view, &ancestors)
                .map_err(|e| crate::error_chain(&e))
        })
}
