//! Contacts events, parsed from all three payload dialects into one typed [`ContactEvent`].
//!
//! DingTalk delivers the same contacts events in three shapes (dingtalk-api.md §6):
//!
//! - **(a) legacy HTTP** (`register_call_back` era): PascalCase meta and business fields
//!   (`EventType`, `CorpId`, `UserId`, `DeptId`, `TimeStamp` as a string *or* a number), no
//!   event id;
//! - **(b) new HTTP** (console-configured push): PascalCase meta (`EventType`, `EventTime`,
//!   `CorpId`, `BizId`) plus `eventId` and lowerCamel business fields (`userId`, `deptId`, …);
//! - **(c) Stream**: meta in the envelope headers (`eventId`, `eventType`, `eventCorpId`,
//!   `eventBornTime`, all strings) and lowerCamel business fields in `data`, itself a JSON
//!   string.
//!
//! One serde struct with aliases reads the business fields of all three, because the dialects
//! differ only in letter case and in where the meta lives. Parsing is deliberately forgiving
//! about what real pushes are seen to vary in – numbers sent as strings and strings as numbers,
//! `null` for an absent list, `diffInfo` as one object or as an array – but an event type we do
//! not model is never an error: it becomes [`EventKind::Unknown`] with the raw JSON, so a new
//! DingTalk event cannot make the receiver refuse pushes. A *known* type whose fields have the
//! wrong shape is an error, because guessing would make the sync act on ids that are not there.
//!
//! Events carry ids, not state: the sync engine fetches the current entity for each id. The
//! extra details kept here (`diffInfo`, label snapshots, operator) are for logs and audit.

use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use thiserror::Error;

use crate::ids::{DingDeptId, DingRoleId, DingUserId};

mod fields;
use fields::*;

/// Why a payload could not be turned into a [`ContactEvent`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EventError {
    /// The text is not JSON, or (for Stream) the envelope is not the expected object.
    #[error("event payload is not valid JSON")]
    Json {
        /// The parser's complaint, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// The payload is JSON but not an object.
    #[error("event payload is not a JSON object")]
    NotAnObject,
    /// Neither the payload nor the envelope names an event type.
    #[error("event payload has no EventType")]
    MissingEventType,
    /// A known event type whose fields have the wrong shape.
    #[error("fields of {event_type} event are malformed")]
    Fields {
        /// The wire name of the event type.
        event_type: String,
        /// Which field and why.
        #[source]
        source: serde_json::Error,
    },
}

/// One contacts event, whichever dialect it arrived in.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactEvent {
    /// DingTalk's unique event id (`eventId`); absent in the legacy dialect and in `check_url`.
    pub event_id: Option<String>,
    /// The organization the event belongs to (`CorpId` / `eventCorpId`); absent in `check_url`.
    pub corp_id: Option<String>,
    /// What happened, with the ids it happened to.
    pub kind: EventKind,
    /// When DingTalk produced the event, in Unix milliseconds: `EventTime` or `eventBornTime`
    /// when present, else the business `TimeStamp` / `timeStamp`.
    pub born_at_ms: Option<i64>,
}

/// The contacts event types dingsync understands, plus a catch-all.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EventKind {
    /// `user_add_org`: users joined the organization.
    UserAddOrg(UserChange),
    /// `user_modify_org`: user profiles changed; `diff` holds DingTalk's before/after details
    /// when the payload carries `diffInfo` (new dialects only).
    UserModifyOrg {
        /// Which users changed and who changed them.
        change: UserChange,
        /// One entry per `diffInfo` object; empty when there was none.
        diff: Vec<UserDiff>,
    },
    /// `user_leave_org`: users left the organization.
    UserLeaveOrg(UserChange),
    /// `user_active_org`: users activated their account.
    UserActiveOrg(UserChange),
    /// `org_admin_add`: users became administrators.
    OrgAdminAdd(UserChange),
    /// `org_admin_remove`: users stopped being administrators.
    OrgAdminRemove(UserChange),
    /// `org_dept_create`: departments were created.
    OrgDeptCreate {
        /// DingTalk department ids.
        dept_ids: Vec<DingDeptId>,
    },
    /// `org_dept_modify`: departments changed.
    OrgDeptModify {
        /// DingTalk department ids.
        dept_ids: Vec<DingDeptId>,
    },
    /// `org_dept_remove`: departments were removed.
    OrgDeptRemove {
        /// DingTalk department ids.
        dept_ids: Vec<DingDeptId>,
    },
    /// `label_user_change`: users were added to or removed from roles ("labels").
    LabelUserChange {
        /// The users whose roles changed.
        user_ids: Vec<DingUserId>,
        /// The role ids involved.
        label_ids: Vec<DingRoleId>,
        /// Whether the users gained or lost the roles.
        action: LabelAction,
    },
    /// `label_conf_add`: roles or role groups were created.
    LabelConfAdd {
        /// The new role (or role group) ids.
        label_ids: Vec<DingRoleId>,
        /// DingTalk's `scope` (seen as `"1"`); meaning undocumented.
        scope: Option<String>,
    },
    /// `label_conf_modify`: roles or role groups changed.
    LabelConfModify {
        /// The changed role (or role group) ids (new dialects only; the legacy one lists them
        /// in the snapshots).
        label_ids: Vec<DingRoleId>,
        /// DingTalk's `scope`.
        scope: Option<String>,
        /// The roles before the change.
        before: Vec<LabelSnapshot>,
        /// The roles after the change.
        after: Vec<LabelSnapshot>,
    },
    /// `label_conf_del`: roles or role groups were deleted.
    LabelConfDel {
        /// The deleted role (or role group) ids.
        label_ids: Vec<DingRoleId>,
        /// DingTalk's `scope`.
        scope: Option<String>,
    },
    /// `org_change`: organization settings changed.
    OrgChange,
    /// `org_remove`: the organization was dissolved.
    OrgRemove,
    /// `check_url`: DingTalk is validating the callback URL.
    CheckUrl,
    /// Any other event type, kept whole so nothing is lost.
    Unknown {
        /// The event type as sent.
        event_type: String,
        /// The payload: the whole plaintext for HTTP push, the parsed `data` for Stream.
        raw: Value,
    },
}

impl EventKind {
    /// The wire name of this event type (`user_add_org`, …).
    pub fn event_type(&self) -> &str {
        match self {
            Self::UserAddOrg(_) => "user_add_org",
            Self::UserModifyOrg { .. } => "user_modify_org",
            Self::UserLeaveOrg(_) => "user_leave_org",
            Self::UserActiveOrg(_) => "user_active_org",
            Self::OrgAdminAdd(_) => "org_admin_add",
            Self::OrgAdminRemove(_) => "org_admin_remove",
            Self::OrgDeptCreate { .. } => "org_dept_create",
            Self::OrgDeptModify { .. } => "org_dept_modify",
            Self::OrgDeptRemove { .. } => "org_dept_remove",
            Self::LabelUserChange { .. } => "label_user_change",
            Self::LabelConfAdd { .. } => "label_conf_add",
            Self::LabelConfModify { .. } => "label_conf_modify",
            Self::LabelConfDel { .. } => "label_conf_del",
            Self::OrgChange => "org_change",
            Self::OrgRemove => "org_remove",
            Self::CheckUrl => "check_url",
            Self::Unknown { event_type, .. } => event_type,
        }
    }
}

/// The users an event is about, and who made the change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserChange {
    /// DingTalk userids (`UserId` / `userId`).
    pub user_ids: Vec<DingUserId>,
    /// The operator's userid (`OptStaffId`); absent for HR-module hires and in most Stream
    /// payloads.
    pub operator: Option<DingUserId>,
}

/// One `diffInfo` entry of `user_modify_org`: the changed profile fields before and after.
///
/// The field set inside `prev`/`curr` is open-ended (`name`, `managerUserid`, `hiredDate`,
/// `telephone`, `email`, `jobNumber`, `workPlace`, `extFields`, `remark`, …) and their types
/// vary, so they stay JSON.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserDiff {
    /// The user the diff belongs to (`userid`), when given.
    pub user_id: Option<DingUserId>,
    /// Field values before the change.
    pub prev: Map<String, Value>,
    /// Field values after the change.
    pub curr: Map<String, Value>,
}

/// Whether a `label_user_change` added or removed roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelAction {
    /// `"add"`.
    Add,
    /// `"remove"` (presumed; unconfirmed by the docs).
    Remove,
    /// Anything else, or no action at all (empty string).
    Other(String),
}

/// One role as described inside `label_conf_modify`'s `PreLabelList` / `PostLabelList`, which
/// DingTalk sends as JSON-encoded strings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelSnapshot {
    /// The role (or role group) id, when the snapshot has one.
    pub id: Option<DingRoleId>,
    /// The role name, when the snapshot has one.
    pub name: Option<String>,
    /// The whole snapshot (`hidden`, `extraInfo`, `color`, `parentId`, …); a string that was
    /// not valid JSON is kept as a JSON string.
    pub raw: Value,
}

/// The meta headers of a Stream EVENT frame (all strings on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamEventHeaders {
    /// `eventId`: unique per event, the dedupe key.
    pub event_id: Option<String>,
    /// `eventType`: the event type name.
    pub event_type: Option<String>,
    /// `eventCorpId`: the organization.
    pub event_corp_id: Option<String>,
    /// `eventBornTime`: Unix milliseconds, as a decimal string.
    pub event_born_time: Option<String>,
}

impl ContactEvent {
    /// Parses the decrypted plaintext of an HTTP push, legacy (a) or new (b) dialect.
    pub fn from_http_json(plaintext: &str) -> Result<Self, EventError> {
        let value: Value =
            serde_json::from_str(plaintext).map_err(|source| EventError::Json { source })?;
        let Value::Object(map) = &value else {
            return Err(EventError::NotAnObject);
        };
        let event_type = map
            .get("EventType")
            .or_else(|| map.get("eventType"))
            .and_then(Value::as_str)
            .ok_or(EventError::MissingEventType)?
            .to_owned();
        let fields = Fields::parse(&event_type, &value)?;
        let born_at_ms = fields
            .event_time
            .or(fields.legacy_time_stamp)
            .or(fields.time_stamp);
        Ok(Self {
            event_id: fields.event_id.clone(),
            corp_id: fields.corp_id.clone(),
            born_at_ms,
            kind: fields.into_kind(event_type, value),
        })
    }

    /// Parses a Stream event from its envelope headers and its `data` string (c).
    ///
    /// The headers win over anything repeated inside `data`; a type missing from the headers
    /// is looked up in `data` as a last resort.
    pub fn from_stream(headers: &StreamEventHeaders, data: &str) -> Result<Self, EventError> {
        let value: Value = if data.trim().is_empty() {
            Value::Object(Map::new())
        } else {
            serde_json::from_str(data).map_err(|source| EventError::Json { source })?
        };
        if !value.is_object() {
            return Err(EventError::NotAnObject);
        }
        let event_type = headers
            .event_type
            .clone()
            .or_else(|| {
                ["eventType", "EventType"]
                    .iter()
                    .find_map(|k| value.get(k).and_then(Value::as_str).map(str::to_owned))
            })
            .ok_or(EventError::MissingEventType)?;
        let fields = Fields::parse(&event_type, &value)?;
        let header_born = headers
            .event_born_time
            .as_deref()
            .and_then(|t| t.trim().parse::<i64>().ok());
        Ok(Self {
            event_id: headers.event_id.clone().or_else(|| fields.event_id.clone()),
            corp_id: headers
                .event_corp_id
                .clone()
                .or_else(|| fields.corp_id.clone()),
            born_at_ms: header_born
                .or(fields.event_time)
                .or(fields.time_stamp)
                .or(fields.legacy_time_stamp),
            kind: fields.into_kind(event_type, value),
        })
    }

    /// Parses one entry of the failed-push list (`get_call_back_failed_result`), whose payload
    /// sits under a kind-specific key with lowercase fields (`{"userid":[…],"corpid":…}`).
    ///
    /// `payload` may also be a JSON-encoded string, as the list's `callbackData` key sometimes
    /// holds.
    pub fn from_failed_callback(
        call_back_tag: &str,
        event_time_ms: Option<i64>,
        payload: &Value,
    ) -> Result<Self, EventError> {
        let value = match payload {
            Value::String(text) => {
                serde_json::from_str(text).map_err(|source| EventError::Json { source })?
            }
            Value::Null => Value::Object(Map::new()),
            other => other.clone(),
        };
        if !value.is_object() {
            return Err(EventError::NotAnObject);
        }
        let fields = Fields::parse(call_back_tag, &value)?;
        Ok(Self {
            event_id: fields.event_id.clone(),
            corp_id: fields.corp_id.clone(),
            born_at_ms: event_time_ms
                .or(fields.event_time)
                .or(fields.legacy_time_stamp)
                .or(fields.time_stamp),
            kind: fields.into_kind(call_back_tag.to_owned(), value),
        })
    }

    /// The inbox dedupe key of this event: one key per DingTalk change, the same whichever way
    /// the change reached us (HTTP push in either dialect, Stream, the failed-push list) and on
    /// every retry or redelivery.
    ///
    /// The failed-push list carries no `eventId`, so an id-based key cannot match an entry there
    /// with the push it failed to deliver (DingTalk may list a push whose late answer it missed
    /// and which we stored). What every path does carry is the event type, the ids it names and
    /// the event time, so the key is `change:<type>:<time>:<digest of the sorted ids>`. Which
    /// time: `EventTime` (new HTTP), `eventBornTime` (Stream), `TimeStamp` (legacy HTTP, its only
    /// time) and the list's `event_time` — the list's field is named after `EventTime`, and the
    /// documented examples show the business `timeStamp` is a different value, so it is used
    /// only when nothing else is there ([`ContactEvent::born_at_ms`]'s order). That these are
    /// one value across paths is our reading, not documented (dingtalk-api.md §5.5, §6): if they
    /// ever differ, one change is stored twice and applied twice, which is harmless because
    /// applying fetches current state — never a loss.
    ///
    /// Two *different* changes share a key only when they have the same type, the same ids and
    /// the same millisecond; whichever copy is applied fetches the entity after both happened
    /// (an event is delivered after its change is made), so nothing is lost by keeping one.
    ///
    /// Without a time, or for `check_url` and unknown types (whose ids we cannot read), the key
    /// falls back to `event:<eventId>` and then to `sha256:<digest of raw>`, `raw` being the
    /// bytes as received (a retry repeats them).
    pub fn dedupe_key(&self, raw: &str) -> String {
        if let Some(identity) = self.change_identity() {
            let time = self.born_at_ms.unwrap_or_default();
            let digest = Sha256::digest(identity.as_bytes());
            // 128 bits of the digest keep the key short for any number of ids.
            return format!(
                "change:{}:{time}:{}",
                self.kind.event_type(),
                hex::encode(&digest[..16])
            );
        }
        match &self.event_id {
            Some(id) if !id.is_empty() => format!("event:{id}"),
            _ => format!("sha256:{}", hex::encode(Sha256::digest(raw.as_bytes()))),
        }
    }

    /// The canonical text of what changed (type, time, sorted ids), when the event has a time
    /// and a kind whose ids we read; see [`ContactEvent::dedupe_key`].
    fn change_identity(&self) -> Option<String> {
        let time = self.born_at_ms?;
        let sorted_users = |ids: &[DingUserId]| {
            let mut ids: Vec<&str> = ids.iter().map(DingUserId::as_str).collect();
            ids.sort_unstable();
            ids.dedup();
            ids.join(",")
        };
        let sorted_numbers = |ids: &mut Vec<i64>| {
            ids.sort_unstable();
            ids.dedup();
            ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
        };
        let depts = |ids: &[DingDeptId]| sorted_numbers(&mut ids.iter().map(|d| d.0).collect());
        let labels = |ids: &[DingRoleId]| sorted_numbers(&mut ids.iter().map(|r| r.0).collect());
        let ids = match &self.kind {
            EventKind::UserAddOrg(change)
            | EventKind::UserModifyOrg { change, .. }
            | EventKind::UserLeaveOrg(change)
            | EventKind::UserActiveOrg(change)
            | EventKind::OrgAdminAdd(change)
            | EventKind::OrgAdminRemove(change) => {
                format!("users={}", sorted_users(&change.user_ids))
            }
            EventKind::OrgDeptCreate { dept_ids }
            | EventKind::OrgDeptModify { dept_ids }
            | EventKind::OrgDeptRemove { dept_ids } => format!("depts={}", depts(dept_ids)),
            EventKind::LabelUserChange {
                user_ids,
                label_ids,
                action,
            } => {
                let action = match action {
                    LabelAction::Add => "add",
                    LabelAction::Remove => "remove",
                    LabelAction::Other(other) => other.as_str(),
                };
                format!(
                    "users={};labels={};action={action}",
                    sorted_users(user_ids),
                    labels(label_ids)
                )
            }
            EventKind::LabelConfAdd { label_ids, .. }
            | EventKind::LabelConfDel { label_ids, .. } => {
                format!("labels={}", labels(label_ids))
            }
            EventKind::LabelConfModify {
                label_ids,
                before,
                after,
                ..
            } => {
                // The legacy dialect may name the roles only inside its snapshots.
                let mut ids: Vec<i64> = label_ids.iter().map(|r| r.0).collect();
                if ids.is_empty() {
                    ids = after
                        .iter()
                        .chain(before)
                        .filter_map(|s| s.id)
                        .map(|r| r.0)
                        .collect();
                }
                format!("labels={}", sorted_numbers(&mut ids))
            }
            EventKind::OrgChange | EventKind::OrgRemove => String::new(),
            EventKind::CheckUrl | EventKind::Unknown { .. } => return None,
        };
        Some(format!("{}|{time}|{ids}", self.kind.event_type()))
    }

    /// Parses a whole Stream EVENT frame (`{"headers":{…},"data":"<JSON string>"}`).
    pub fn from_stream_frame(frame: &str) -> Result<Self, EventError> {
        /// The parts of a frame this parser needs.
        #[derive(Deserialize)]
        struct Frame {
            #[serde(default)]
            headers: StreamEventHeaders,
            #[serde(default)]
            data: String,
        }
        let frame: Frame =
            serde_json::from_str(frame).map_err(|source| EventError::Json { source })?;
        Self::from_stream(&frame.headers, &frame.data)
    }
}
