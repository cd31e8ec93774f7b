//! What an import reports: counts per kind, soft matches, deletions, and the calls it made
//! against the fewest the organisation needs.

use std::collections::BTreeMap;

use directory_model::{OaDeptId, OaRoleGroupId, OaRoleId, OaUserId};
use serde::Serialize;

use super::{AmbiguousMatch, SoftMatched};

/// Counts of one entity kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct KindCounts {
    /// New in OA.
    pub created: usize,
    /// Changed in OA.
    pub updated: usize,
    /// Already equal.
    pub unchanged: usize,
}

impl KindCounts {
    pub(super) fn count<T: PartialEq>(&mut self, before: Option<&T>, after: &T) {
        match before {
            None => self.created += 1,
            Some(b) if b == after => self.unchanged += 1,
            Some(_) => self.updated += 1,
        }
    }
}

/// What the deletion phase did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeletionReport {
    /// Deletions were skipped because the crawl was incomplete.
    pub skipped_incomplete_crawl: bool,
    /// Users marked left (or that would be, in a dry run).
    pub users_left: Vec<OaUserId>,
    /// Departments deleted (or that would be).
    pub departments_deleted: Vec<OaDeptId>,
    /// Roles deleted (or that would be).
    pub roles_deleted: Vec<OaRoleId>,
    /// Role groups deleted (or that would be).
    pub role_groups_deleted: Vec<OaRoleGroupId>,
    /// Deletions held for confirmation because they crossed the threshold.
    pub held: usize,
}

/// Calls made against the minimum the organisation requires.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CallReport {
    /// Attempts per API path (retries included).
    pub made: BTreeMap<String, u64>,
    /// The fewest calls per API path that read the same data.
    pub minimum: BTreeMap<String, u64>,
    /// Sum of `made`.
    pub total_made: u64,
    /// Sum of `minimum`.
    pub total_minimum: u64,
    /// Throttle answers seen (should be 0: the budget paces calls).
    pub throttled: u64,
    /// The shortest wall time the per-API rate limit allows for the minimum calls, in ms
    /// (`None` when the client has no limit).
    pub min_wall_ms: Option<u64>,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Nothing was written.
    pub dry_run: bool,
    /// Every call succeeded.
    pub complete: bool,
    /// The failed calls, one line each.
    pub failures: Vec<String>,
    /// Resumed after this userid (an earlier run was interrupted).
    pub resumed_after: Option<String>,
    /// Departments.
    pub departments: KindCounts,
    /// Users.
    pub users: KindCounts,
    /// Role groups.
    pub role_groups: KindCounts,
    /// Roles.
    pub roles: KindCounts,
    /// Assignments added and removed.
    pub assignments_added: usize,
    /// Assignments removed.
    pub assignments_removed: usize,
    /// DingTalk users linked to OA users that existed before.
    pub soft_matched: Vec<SoftMatched>,
    /// DingTalk users not imported because their match was ambiguous.
    pub ambiguous: Vec<AmbiguousMatch>,
    /// Users whose `[mapping]` failed: (userid, reason). Each is also a dead letter (an inbox
    /// event for the user), so fixing the mapping and retrying it brings the user in.
    pub mapping_failures: Vec<(String, String)>,
    /// Users listed but gone by the time they were read (they left during the import).
    pub vanished: usize,
    /// Deletions.
    pub deletions: DeletionReport,
    /// Calls.
    pub calls: CallReport,
    /// Wall time, ms.
    pub wall_ms: u64,
}
