//! `/console/attention`: one inbox for everything a person must decide, each with its reason.

use serde::{Deserialize, Serialize};

use super::common::{ObjectKind, Side};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attention {
    pub holds: Vec<HeldDeletionGroup>,
    pub conflicts: Vec<ConflictItem>,
    pub soft_matches: Vec<SoftMatchItem>,
    /// Each with the blocked entries waiting on it.
    pub dead_letters: Vec<DeadLetterItem>,
    /// A changed `[mapping]`/`[scope]` whose implied plan is held until approved.
    #[serde(default)]
    pub mapping_change: Option<super::MappingChange>,
}

impl Attention {
    /// Items waiting for a decision (each held deletion counts, blocked entries do not: they
    /// clear with their dead letter).
    pub fn count(&self) -> u64 {
        let held: usize = self.holds.iter().map(HeldDeletionGroup::size).sum();
        let mapping = usize::from(self.mapping_change.is_some());
        (held + self.conflicts.len() + self.soft_matches.len() + self.dead_letters.len() + mapping)
            as u64
    }
}

/// Deletions held back because one run wanted to delete more than the threshold allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldDeletionGroup {
    pub hold_id: String,
    /// Why it was held, in plain words.
    pub reason: String,
    pub created_at: String,
    /// The hold's deletions, at most a page of them.
    pub entries: Vec<HeldDeletion>,
    /// Deletions of the hold beyond those listed (deciding the hold decides them too).
    #[serde(default)]
    pub more: usize,
}

impl HeldDeletionGroup {
    /// Deletions in the hold.
    pub fn size(&self) -> usize {
        self.entries.len() + self.more
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldDeletion {
    pub entry_id: String,
    pub kind: ObjectKind,
    pub object_id: String,
    pub name: String,
    /// The side the deletion would be applied to.
    pub side: Side,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictItem {
    pub id: String,
    pub kind: ObjectKind,
    pub object_id: String,
    pub name: String,
    pub field: String,
    pub base: Option<String>,
    pub oa: Option<String>,
    pub dingtalk: Option<String>,
    /// What the merge kept.
    pub result: Option<String>,
    /// The rule that chose it.
    pub rule: String,
}

/// An import found a DingTalk user that could be one of several OA users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftMatchItem {
    pub id: String,
    pub dingtalk_userid: String,
    pub dingtalk_name: String,
    pub reason: String,
    pub candidates: Vec<SoftMatchCandidate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftMatchCandidate {
    pub oa_id: String,
    pub name: String,
    /// Which fields matched (`mobile`, `email`, `job number`).
    pub matched_on: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterItem {
    pub id: String,
    pub kind: ObjectKind,
    pub object_id: String,
    pub name: String,
    /// What was being done (`create`, `update`, `delete`).
    pub operation: String,
    pub errcode: i64,
    pub errmsg: String,
    pub attempts: u32,
    pub last_attempt_at: String,
    pub blocked: Vec<BlockedEntry>,
}

/// An outbox entry that waits because an earlier entry for the same object is dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockedEntry {
    pub id: String,
    pub kind: ObjectKind,
    pub object_id: String,
    pub operation: String,
}
