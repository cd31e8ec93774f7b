//! A changed `[mapping]`/`[scope]` waiting for approval (issue 19), as the attention page lists
//! it. The service holds its writing workers until the plan the change implies is applied and
//! the change approved: `dingsync reconcile --yes` on the command line, or the
//! [`OperatorAction::ApproveMappingChange`](super::OperatorAction::ApproveMappingChange) action
//! here (the same admin API call for a script). The plan itself is the plan page's, field by
//! field; this item only says that a change waits and which one, so the attention page stays
//! cheap (it does not crawl DingTalk).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingChange {
    /// The fingerprint of the rules last approved (`identity`: no rules).
    pub approved: String,
    /// The fingerprint of the rules the service runs with; the approval names it, so an
    /// operator never approves a change other than the one they saw.
    pub running: String,
    /// What waits, in plain words.
    pub reason: String,
}
