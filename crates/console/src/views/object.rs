//! `/console/{users,departments,roles}/{id}`: one object's two sides, its id mapping and its
//! timeline, answering "what happened to this, and why".

use serde::{Deserialize, Serialize};

use super::common::{ObjectKind, SyncState};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectDetail {
    pub kind: ObjectKind,
    /// The OA id.
    pub id: String,
    pub name: String,
    pub state: SyncState,
    /// OA's value beside DingTalk's, field by field.
    pub fields: Vec<FieldComparison>,
    /// When DingTalk's side was fetched (live, within the budget).
    pub dingtalk_fetched_at: Option<String>,
    /// Why DingTalk's side could not be fetched now (budget, fault), when it could not.
    pub dingtalk_unavailable: Option<String>,
    pub mapping: IdMapping,
    /// Newest first.
    pub timeline: Vec<TimelineEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldComparison {
    pub field: String,
    pub oa: Option<String>,
    pub dingtalk: Option<String>,
    /// Computed from the two values by [`FieldComparison::new`], never trusted from elsewhere.
    pub differs: bool,
}

impl FieldComparison {
    pub fn new(field: impl Into<String>, oa: Option<String>, dingtalk: Option<String>) -> Self {
        let differs = oa != dingtalk;
        FieldComparison {
            field: field.into(),
            oa,
            dingtalk,
            differs,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMapping {
    pub oa_id: String,
    pub dingtalk_id: Option<String>,
    /// When and how the two were linked (`import`, `soft match on mobile`, `created by push`…).
    pub linked_at: Option<String>,
    pub linked_by: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimelineKind {
    EventReceived,
    OaWrite,
    Push,
    DingTalkAnswer,
    Merge,
    PlanEntry,
    /// A change an import wrote (creating or linking the object, or taking a side's value).
    Import,
    OperatorAction,
}

impl TimelineKind {
    pub fn label(&self) -> &'static str {
        match self {
            TimelineKind::EventReceived => "DingTalk event",
            TimelineKind::OaWrite => "OA write",
            TimelineKind::Push => "push",
            TimelineKind::DingTalkAnswer => "DingTalk answer",
            TimelineKind::Merge => "merge decision",
            TimelineKind::PlanEntry => "plan entry",
            TimelineKind::Import => "import",
            TimelineKind::OperatorAction => "operator action",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub at: String,
    /// Who or what caused it: `dingtalk`, `oa-api`, `import`, `reconcile`, `pusher`, `console:NAME`.
    pub origin: String,
    pub kind: TimelineKind,
    pub summary: String,
    /// For merge decisions: the three inputs, the result and the rule that won.
    pub merge: Option<MergeDecision>,
    /// For DingTalk answers: its error code and message.
    pub answer: Option<DingTalkAnswer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeDecision {
    pub field: String,
    pub base: Option<String>,
    pub dingtalk: Option<String>,
    pub oa: Option<String>,
    pub result: Option<String>,
    pub rule: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DingTalkAnswer {
    pub errcode: i64,
    pub errmsg: String,
}
