//! Trunk/branch organizations (上下级组织): the branch's departments and members that DingTalk
//! copies into the trunk's contacts, recognised so that they are imported like any other
//! department and person, but never pushed back to the trunk, which cannot edit them
//! (`dingtalk-api.md` §9: "the trunk cannot edit them"; the simulator refuses with 60011).
//!
//! How a copy is recognised:
//! - a **department** by `from_union_org: true` on `department/get` and `listsub` items (or a
//!   `union_dept_ext` naming the branch department it copies);
//! - a **user** by `union_emp_ext.union_emp_map_list` on `user/get` (the branch identity it
//!   copies), or — since `v2/user/list` carries no `union_emp_ext` — by being listed only in
//!   copied departments: DingTalk refuses to put a trunk user in a copied department, so a
//!   user whose every department is a copy is a copy.
//!
//! What is kept: the DingTalk ids of copied departments, in the store's `sync_state` under
//! [`STATE_KEY`] (replaced by every complete import, added to by department events), so that the
//! pusher of any process — `serve` after a one-shot `import` — knows them. Only the push asks
//! (through [`Verdict`]); import and apply merely record. An OA change to a copy, or to a
//! department or person placed only under copies, stays in OA and is not pushed (the log says
//! why); DingTalk keeps the branch's version, and the next import or event brings it back.
//!
//! The pure predicates ([`dept_is_copy`], [`user_is_copy`], [`BranchCopies`], [`Verdict`]) are
//! unit-tested. The pusher pays one `sync_state` read per department or user entry (and id-map
//! reads only in an org that has copies); it is not cached, because a copy found by an import
//! in another process must stop the very next push.

use std::collections::BTreeSet;

use dingtalk_proto::{
    dept::{DeptBrief, DeptDetail},
    user::User as WireUser,
};
use directory_model::{Department, DingDeptId, OaDeptId, OaUserId, User};
use directory_store::{EntityKind, Store, StoreError};

/// Where the ids of copied departments are kept (`sync_state`).
pub const STATE_KEY: &str = "branch_copies.depts";

/// Whether a department read with `department/get` is a branch's copy.
pub fn dept_is_copy(d: &DeptDetail) -> bool {
    d.from_union_org == Some(true) || d.union_dept_ext.as_ref().is_some_and(non_empty)
}

/// Whether a `listsub` item is a branch's copy.
pub fn brief_is_copy(d: &DeptBrief) -> bool {
    d.from_union_org == Some(true)
}

/// Whether a DingTalk user is a branch's copy: `union_emp_ext` names a branch identity, or
/// every department they are listed in is a copy.
pub fn user_is_copy(u: &WireUser, copies: &BranchCopies) -> bool {
    let mapped = u
        .union_emp_ext
        .as_ref()
        .and_then(|ext| ext.get("union_emp_map_list"))
        .and_then(|list| list.as_array())
        .is_some_and(|list| !list.is_empty());
    mapped
        || u.dept_id_list.as_ref().is_some_and(|depts| {
            !depts.is_empty() && depts.iter().all(|d| copies.holds(DingDeptId(d.0)))
        })
}

fn non_empty(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => false,
        serde_json::Value::Object(m) => !m.is_empty(),
        serde_json::Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// The DingTalk ids of the departments a branch copied into this (trunk) org.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BranchCopies {
    depts: BTreeSet<i64>,
}

impl BranchCopies {
    /// The copies among `depts` (an import's crawl).
    pub fn from_details<'a>(depts: impl IntoIterator<Item = &'a DeptDetail>) -> Self {
        Self {
            depts: depts
                .into_iter()
                .filter(|d| dept_is_copy(d))
                .map(|d| d.dept_id.0)
                .collect(),
        }
    }

    /// Whether `id` is a copied department.
    pub fn holds(&self, id: DingDeptId) -> bool {
        self.depts.contains(&id.0)
    }

    /// Whether there are none (the org is no trunk).
    pub fn is_empty(&self) -> bool {
        self.depts.is_empty()
    }

    fn to_json(&self) -> String {
        serde_json::to_string(&self.depts).unwrap_or_else(|_| "[]".to_owned())
    }

    fn from_json(text: &str) -> Self {
        // An unreadable value reads as "no copies": the push then tries, and DingTalk's
        // refusal (60011) dead-letters the entry with its reason, which is visible.
        Self {
            depts: serde_json::from_str(text).unwrap_or_default(),
        }
    }

    /// The copies kept in `store`.
    pub async fn load(store: &Store) -> Result<Self, StoreError> {
        Ok(store
            .state_get(STATE_KEY)
            .await?
            .map(|t| Self::from_json(&t))
            .unwrap_or_default())
    }

    /// Replaces the copies kept in `store` (what a complete import read).
    pub async fn save(&self, store: &Store, now_ms: i64) -> Result<(), StoreError> {
        store.state_set(STATE_KEY, &self.to_json(), now_ms).await
    }

    /// Records `dept` as a copy or not (a department event's fetch); writes only on a change.
    pub async fn note(store: &Store, dept: &DeptDetail, now_ms: i64) -> Result<(), StoreError> {
        let mut copies = Self::load(store).await?;
        let changed = if dept_is_copy(dept) {
            copies.depts.insert(dept.dept_id.0)
        } else {
            copies.depts.remove(&dept.dept_id.0)
        };
        if changed {
            copies.save(store, now_ms).await?;
        }
        Ok(())
    }
}

/// The push's question: may this OA entity go to DingTalk? `Some(reason)` when it is a copy.
#[derive(Debug, Clone, Copy)]
pub struct Verdict<'a> {
    copies: &'a BranchCopies,
}

impl<'a> Verdict<'a> {
    pub fn new(copies: &'a BranchCopies) -> Self {
        Self { copies }
    }

    /// An OA department whose DingTalk id (`mapped`) is a copy, or a new one whose parent's
    /// (`parent`) is: DingTalk refuses to change the one and to create under the other.
    pub fn department(
        &self,
        dept: &Department,
        mapped: Option<DingDeptId>,
        parent: Option<DingDeptId>,
    ) -> Option<String> {
        let copy = |id: Option<DingDeptId>| id.is_some_and(|d| self.copies.holds(d));
        if copy(mapped) || (mapped.is_none() && copy(parent)) {
            return Some(format!(
                "department {} is copied from a branch organization into this trunk; DingTalk \
                 lets only the branch change it",
                dept.id
            ));
        }
        None
    }

    /// An OA user whose every department (`depts`, their DingTalk ids) is a copy.
    pub fn user(&self, user: &User, depts: &[Option<DingDeptId>]) -> Option<String> {
        let all_copies = !depts.is_empty()
            && depts
                .iter()
                .all(|d| d.is_some_and(|d| self.copies.holds(d)));
        all_copies.then(|| {
            format!(
                "user {} is a branch organization's member copied into this trunk; DingTalk lets \
                 only the branch change them",
                user.id
            )
        })
    }
}

/// Records what an import read: the copies among `depts` replace the kept ones after a
/// `complete` crawl, and are added to them after an incomplete one (a failed page is no proof
/// that a copy went away).
pub async fn record_crawl(
    store: &Store,
    depts: &[DeptDetail],
    complete: bool,
    now_ms: i64,
) -> Result<(), StoreError> {
    let mut found = BranchCopies::from_details(depts);
    if !complete {
        found.depts.extend(BranchCopies::load(store).await?.depts);
    }
    let kept = BranchCopies::load(store).await?;
    if found != kept {
        found.save(store, now_ms).await?;
    }
    Ok(())
}

/// Whether the push must leave OA department `id` alone (its entry, whatever the op);
/// `Some(reason)` if so. One state read; the id map only in an org that has copies.
pub async fn skip_department(store: &Store, id: OaDeptId) -> Result<Option<String>, StoreError> {
    let copies = BranchCopies::load(store).await?;
    if copies.is_empty() {
        return Ok(None);
    }
    let mapped = store.ding_id_of(&id).await?;
    let current = store.get_department(id).await?.map(|d| d.entity);
    let parent = match current.as_ref().and_then(|d| d.parent) {
        Some(p) => store.ding_id_of(&p).await?,
        None => None,
    };
    let dept = current.unwrap_or_else(|| Department::new(id, "", None));
    Ok(Verdict::new(&copies).department(&dept, mapped, parent))
}

/// Whether the push must leave OA user `id` alone; `Some(reason)` if so. A deleted user is
/// judged by their last synced state (the base).
pub async fn skip_user(store: &Store, id: &OaUserId) -> Result<Option<String>, StoreError> {
    let copies = BranchCopies::load(store).await?;
    if copies.is_empty() {
        return Ok(None);
    }
    let user: Option<User> = match store.get_user(id).await? {
        Some(u) => Some(u.entity),
        None => store.base_get(EntityKind::User, id.as_str()).await?,
    };
    let Some(user) = user else {
        return Ok(None);
    };
    let mut depts = Vec::with_capacity(user.departments.len());
    for m in &user.departments {
        depts.push(store.ding_id_of(&m.dept).await?);
    }
    Ok(Verdict::new(&copies).user(&user, &depts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn detail(value: serde_json::Value) -> DeptDetail {
        serde_json::from_value(value).expect("detail")
    }

    fn copies(ids: &[i64]) -> BranchCopies {
        BranchCopies {
            depts: ids.iter().copied().collect(),
        }
    }

    #[test]
    fn departments_are_copies_by_from_union_org_or_union_dept_ext() {
        let own =
            detail(json!({"dept_id": 2, "name": "Own", "parent_id": 1, "from_union_org": false}));
        let flagged =
            detail(json!({"dept_id": 3, "name": "B", "parent_id": 1, "from_union_org": true}));
        let ext = detail(json!({"dept_id": 4, "name": "C", "parent_id": 3,
            "union_dept_ext": {"corp_id": "dingbranch", "dept_id": 7}}));
        assert!(!dept_is_copy(&own));
        assert!(dept_is_copy(&flagged));
        assert!(dept_is_copy(&ext));
        assert_eq!(
            BranchCopies::from_details([&own, &flagged, &ext]),
            copies(&[3, 4])
        );
        let brief: DeptBrief = serde_json::from_value(
            json!({"dept_id": 3, "name": "B", "parent_id": 1, "from_union_org": true}),
        )
        .expect("brief");
        assert!(brief_is_copy(&brief));
    }

    #[test]
    fn users_are_copies_by_union_emp_ext_or_by_living_only_in_copies() {
        let c = copies(&[3, 4]);
        let user = |v: serde_json::Value| -> WireUser { serde_json::from_value(v).expect("user") };
        let mapped = user(json!({"userid": "u1", "name": "A", "dept_id_list": [2],
            "union_emp_ext": {"userid": "u1", "corp_id": "dingtrunk",
                "union_emp_map_list": [{"userid": "b9", "corp_id": "dingbranch"}]}}));
        let only_copies = user(json!({"userid": "u2", "name": "B", "dept_id_list": [3, 4]}));
        let mixed = user(json!({"userid": "u3", "name": "C", "dept_id_list": [2, 3]}));
        let empty_ext = user(json!({"userid": "u4", "name": "D", "dept_id_list": [2],
            "union_emp_ext": {}}));
        assert!(user_is_copy(&mapped, &c));
        assert!(user_is_copy(&only_copies, &c));
        assert!(!user_is_copy(&mixed, &c));
        assert!(!user_is_copy(&empty_ext, &c));
    }

    #[test]
    fn the_push_leaves_copies_and_what_sits_only_under_them() {
        let c = copies(&[30]);
        let v = Verdict::new(&c);
        let dept = Department::new(OaDeptId(5), "Copied", Some(OaDeptId(1)));
        assert!(
            v.department(&dept, Some(DingDeptId(30)), Some(DingDeptId(1)))
                .is_some()
        );
        // A new OA department under a copy: DingTalk refuses creating it there.
        assert!(v.department(&dept, None, Some(DingDeptId(30))).is_some());
        // An own department (even one that moved under a copy in OA) is still pushed, and
        // DingTalk's answer is what the operator sees.
        assert!(
            v.department(&dept, Some(DingDeptId(31)), Some(DingDeptId(30)))
                .is_none()
        );
        assert!(v.department(&dept, None, Some(DingDeptId(1))).is_none());

        let user = User::new(OaUserId::new("p1"), "P", &[OaDeptId(5)]);
        let reason = v.user(&user, &[Some(DingDeptId(30))]).expect("a copy");
        assert!(
            reason.contains("p1") && reason.contains("branch"),
            "{reason}"
        );
        assert!(
            v.user(&user, &[Some(DingDeptId(30)), Some(DingDeptId(2))])
                .is_none()
        );
        assert!(v.user(&user, &[None]).is_none());
        assert!(v.user(&user, &[]).is_none());
    }

    #[test]
    fn stored_text_round_trips_and_garbage_reads_as_none() {
        let c = copies(&[3, 9]);
        assert_eq!(BranchCopies::from_json(&c.to_json()), c);
        assert!(BranchCopies::from_json("not json").is_empty());
    }
}
