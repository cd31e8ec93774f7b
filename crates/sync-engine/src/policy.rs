//! The sync policy: what is synchronised, who owns which field, when a deletion is too large to
//! apply without a human, and how a first import links people who already exist in OA.
//!
//! It is a plain data struct with documented defaults (the binary fills it from the config file),
//! so that every decision the engine makes from configuration is visible in one place and can be
//! unit-tested without I/O. The defaults are those of `design.md`: everything in scope, every
//! field shared with OA winning conflicts, deletions held above 10 % or 500 (whichever is
//! smaller), soft match by mobile, then job number, then email.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use directory_model::{
    DeptField, DingDeptId, MergePolicy, OaDeptId, RoleField, RoleGroupField, UserField,
};
use serde::{Deserialize, Serialize};

/// Everything configurable about how the two sides are kept equal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Policy {
    /// Which department subtrees take part in the sync.
    pub scope: Scope,
    /// Field authority and conflict winner for users.
    pub users: MergePolicy<UserField>,
    /// Field authority and conflict winner for departments.
    pub departments: MergePolicy<DeptField>,
    /// Field authority and conflict winner for role groups.
    pub role_groups: MergePolicy<RoleGroupField>,
    /// Field authority and conflict winner for roles.
    pub roles: MergePolicy<RoleField>,
    /// When mirrored deletions are held for confirmation (design invariant 6): the threshold a
    /// [`crate::SyncContext`] starts with. The one in effect is the context's
    /// [`crate::SyncContext::deletions`], which a configuration reload may change live.
    pub deletions: DeletionThreshold,
    /// How a first import links DingTalk users to OA users that already exist.
    pub soft_match: SoftMatch,
    /// The `[mapping]` and `[scope]` expressions (none: identity, everything in scope). Not
    /// serialized: compiled from the config by the binary.
    #[serde(skip)]
    pub rules: crate::rules::Rules,
}

/// Department subtrees included in or excluded from the sync, on either side.
///
/// A department is in scope when the *nearest* listed ancestor-or-self is an include, or when no
/// listed department is on its chain and the include list is empty. So `include = [A]`,
/// `exclude = [B]` with B under A syncs A's subtree except B's; `exclude = [C]` alone syncs
/// everything but C's subtree (a school's home-school tree, say). DingTalk-side subtrees are
/// named by DingTalk id (what an administrator sees in the console), OA-side ones by OA id; an
/// entity is synced only if it is in scope on the side it is read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Scope {
    /// DingTalk subtrees to include (empty: the whole organisation).
    pub include: BTreeSet<DingDeptId>,
    /// DingTalk subtrees to leave alone.
    pub exclude: BTreeSet<DingDeptId>,
    /// OA subtrees to include (empty: the whole directory).
    pub oa_include: BTreeSet<OaDeptId>,
    /// OA subtrees to leave alone.
    pub oa_exclude: BTreeSet<OaDeptId>,
}

impl Scope {
    /// Whether the DingTalk side has no restriction at all (no ancestry lookups needed).
    pub fn is_everything(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    /// Whether the OA side has no restriction at all.
    pub fn is_everything_oa(&self) -> bool {
        self.oa_include.is_empty() && self.oa_exclude.is_empty()
    }

    /// Decides a DingTalk department from its chain of ids, itself first and the root last
    /// (the shape of `listparentbydept`).
    pub fn contains_chain(&self, chain: &[DingDeptId]) -> bool {
        decide(chain, &self.include, &self.exclude)
    }

    /// Decides an OA department from its chain of ids, itself first and the root last.
    pub fn contains_oa_chain(&self, chain: &[OaDeptId]) -> bool {
        decide(chain, &self.oa_include, &self.oa_exclude)
    }
}

fn decide<T: Ord>(chain: &[T], include: &BTreeSet<T>, exclude: &BTreeSet<T>) -> bool {
    for id in chain {
        if exclude.contains(id) {
            return false;
        }
        if include.contains(id) {
            return true;
        }
    }
    include.is_empty()
}

/// The size above which mirrored deletions are held (design invariant 6): more than
/// `max_fraction` of the entities of a kind, or more than `max_count`, whichever is smaller.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeletionThreshold {
    /// The largest share of a kind that may disappear in one run (0.10 = 10 %).
    pub max_fraction: f64,
    /// The largest number that may disappear in one run.
    pub max_count: usize,
}

impl Default for DeletionThreshold {
    fn default() -> Self {
        Self {
            max_fraction: 0.10,
            max_count: 500,
        }
    }
}

impl DeletionThreshold {
    /// Whether deleting `deleting` of `total` entities must be held for confirmation.
    pub fn must_hold(&self, deleting: usize, total: usize) -> bool {
        if deleting == 0 {
            return false;
        }
        // deleting / total > fraction, written without dividing so that total = 0 needs no case.
        let by_fraction = (deleting as f64) > self.max_fraction * (total as f64);
        by_fraction || deleting > self.max_count
    }
}

/// The deletion threshold in effect, shared by every clone: the service's SIGHUP sets a new one
/// and the next decision (a plan, an import's deletions, a SCIM deactivation) uses it, without
/// a restart. Reading it copies the value out, so a decision never sees half of a change.
#[derive(Debug, Clone)]
pub struct LiveThreshold(Arc<RwLock<DeletionThreshold>>);

impl LiveThreshold {
    /// A threshold starting at `start`.
    pub fn new(start: DeletionThreshold) -> Self {
        Self(Arc::new(RwLock::new(start)))
    }

    /// The threshold in effect now.
    pub fn get(&self) -> DeletionThreshold {
        // A poisoned lock only means a panic elsewhere; the value is a plain copy.
        *self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the threshold for every holder of this handle.
    pub fn set(&self, threshold: DeletionThreshold) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = threshold;
    }
}

impl Default for LiveThreshold {
    fn default() -> Self {
        Self::new(DeletionThreshold::default())
    }
}

/// A property by which a DingTalk user may be recognised as an existing OA user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKey {
    /// The same mobile number (country code and number).
    Mobile,
    /// The same job (employee) number.
    JobNumber,
    /// The same email address (compared case-insensitively).
    Email,
}

impl MatchKey {
    /// The name used in configuration and reports (`mobile`, `job_number`, `email`).
    pub fn label(self) -> &'static str {
        match self {
            MatchKey::Mobile => "mobile",
            MatchKey::JobNumber => "job_number",
            MatchKey::Email => "email",
        }
    }
}

/// How a first import links DingTalk users to OA users who are already there.
///
/// The userid is always tried first (an OA user whose id *is* the DingTalk userid is the same
/// person); then each key in `order`. A key that matches more than one OA user, or an OA user
/// already linked to someone else, is reported as ambiguous and not guessed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SoftMatch {
    /// The keys to try after the userid, in order.
    pub order: Vec<MatchKey>,
}

impl Default for SoftMatch {
    fn default() -> Self {
        Self {
            order: vec![MatchKey::Mobile, MatchKey::JobNumber, MatchKey::Email],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[i64]) -> Vec<DingDeptId> {
        v.iter().copied().map(DingDeptId).collect()
    }

    #[test]
    fn default_scope_takes_everything() {
        let s = Scope::default();
        assert!(s.is_everything());
        assert!(s.contains_chain(&ids(&[5, 3, 1])));
        assert!(s.contains_oa_chain(&[OaDeptId(9)]));
    }

    #[test]
    fn nearest_listed_ancestor_decides() {
        let s = Scope {
            include: [DingDeptId(3)].into(),
            exclude: [DingDeptId(5)].into(),
            ..Scope::default()
        };
        assert!(s.contains_chain(&ids(&[3, 1])));
        assert!(s.contains_chain(&ids(&[4, 3, 1])));
        assert!(!s.contains_chain(&ids(&[5, 3, 1])));
        assert!(!s.contains_chain(&ids(&[6, 5, 3, 1])));
        assert!(!s.contains_chain(&ids(&[7, 1])), "outside the include list");
        assert!(!s.contains_chain(&ids(&[1])));
    }

    #[test]
    fn exclude_alone_cuts_one_subtree() {
        let s = Scope {
            exclude: [DingDeptId(8)].into(),
            ..Scope::default()
        };
        assert!(s.contains_chain(&ids(&[2, 1])));
        assert!(!s.contains_chain(&ids(&[9, 8, 1])));
    }

    #[test]
    fn threshold_is_the_smaller_of_fraction_and_count() {
        let t = DeletionThreshold::default();
        assert!(!t.must_hold(0, 0));
        assert!(!t.must_hold(10, 100), "exactly 10 % is allowed");
        assert!(t.must_hold(11, 100));
        assert!(
            !t.must_hold(500, 100_000),
            "500 of 100k is under both limits"
        );
        assert!(t.must_hold(501, 100_000), "over 500 even though under 10 %");
        assert!(t.must_hold(20, 100), "the 20 % case of the acceptance test");
        assert!(
            t.must_hold(1, 0),
            "deleting from nothing is always suspicious"
        );
    }

    #[test]
    fn policy_reads_from_partial_json_with_defaults() {
        let p: Policy = serde_json::from_str(
            r#"{"users":{"winner":"dingtalk","authority":{"mobile":"dingtalk"}},
                "deletions":{"max_count":50}}"#,
        )
        .unwrap();
        assert_eq!(p.users.winner, directory_model::Side::DingTalk);
        assert_eq!(p.deletions.max_count, 50);
        assert!((p.deletions.max_fraction - 0.10).abs() < f64::EPSILON);
        assert_eq!(p.soft_match, SoftMatch::default());
        assert_eq!(p.departments, MergePolicy::default());
    }
}
