//! The `[mapping]` and `[scope]` config model, as the binary deserializes it from TOML.
//!
//! Everything is optional: an empty `[mapping]` is today's fixed behaviour (identity on every
//! field, both sides own everything, OA wins conflicts, soft match by mobile, job number, email)
//! and an empty `[scope]` takes everything. Field names and expressions are kept as text here and
//! checked by [`crate::load`], which reports every problem with its key rather than stopping at the
//! first, as serde would.

use std::collections::BTreeMap;

use directory_model::{Authority, Side};
use serde::{Deserialize, Serialize};

/// The `[mapping]` section.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MappingConfig {
    /// `[mapping.users]`.
    pub users: KindMappingConfig,
    /// `[mapping.departments]`.
    pub departments: KindMappingConfig,
    /// `[mapping.limits]`: the evaluation budget.
    pub limits: Limits,
}

/// How one entity kind maps.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KindMappingConfig {
    /// Who wins a field both sides changed to different values (for fields owned by `both`).
    /// Absent: the service-wide `sync.conflict_winner`.
    pub winner: Option<Side>,
    /// Users only: the fields tried, in order, to link a DingTalk user to an existing OA user on
    /// a first import (after the userid). `None` keeps today's `mobile, job_number, email`.
    pub soft_match: Option<Vec<String>>,
    /// Per-field rules, keyed by the model's field name (`job_number`, `name`, …). Fields not
    /// listed map by identity, are owned by both sides and are applied always.
    pub fields: BTreeMap<String, FieldRule>,
    /// Users only: rules for single keys of DingTalk's `extension` JSON, keyed by extension name.
    /// They run after `fields.extension`, replacing (or, on `null`, removing) that one key.
    pub extension: BTreeMap<String, ExtensionRule>,
}

/// The rule for one field.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FieldRule {
    /// The DingTalk value, from the OA entity: a CEL expression over `user` / `dept`, or a plain
    /// field name (copy that OA field). Absent: the same field, unchanged.
    pub to_dingtalk: Option<String>,
    /// The OA value, from the DingTalk entity, the same way.
    pub to_oa: Option<String>,
    /// Which side's edits count.
    pub owner: Authority,
    /// Whether the mapped value is written on every change or only when the entity is created.
    pub apply: Apply,
}

/// The rule for one key of the `extension` JSON.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExtensionRule {
    /// DingTalk's `extension[key]`, from the OA user; `null` leaves the key out.
    pub to_dingtalk: Option<String>,
    /// OA's `extension[key]`, from the DingTalk user; `null` leaves the key out.
    pub to_oa: Option<String>,
    /// Whether it is written on every change or only on create.
    pub apply: Apply,
}

/// When a mapped value is written to the other side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Apply {
    /// On create and on every update (the default).
    #[default]
    Always,
    /// Only when the entity is created; later updates keep the other side's value.
    OnCreate,
}

/// Bounds on what one evaluation may produce. CEL itself has no unbounded loops (comprehensions
/// run over finite lists), so these bound the size of values rather than the running time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Longest expression text accepted at load.
    pub max_expression_chars: usize,
    /// Largest string (bytes) one expression may produce, anywhere in its result.
    pub max_string_bytes: usize,
    /// Most items (list entries plus map entries, counted through nesting) in one result.
    pub max_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // DingTalk's longest text field is the 2000-character remark; 8 KiB leaves room for
        // multi-byte text. 1000 items is ten times the 100-department membership limit.
        Self {
            max_expression_chars: 4096,
            max_string_bytes: 8192,
            max_items: 1000,
        }
    }
}

/// The `[scope]` section: named predicates per direction and kind. An entity is in scope when
/// all of its kind's predicates are true (none: everything is in scope).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScopeConfig {
    /// Predicates over OA entities: which of them are synced into DingTalk.
    pub to_dingtalk: ScopeRules,
    /// Predicates over DingTalk entities: which of them are synced into OA.
    pub to_oa: ScopeRules,
}

/// Named predicates for users and departments.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScopeRules {
    /// Rule name → CEL predicate over `user` and `ancestors`.
    pub users: BTreeMap<String, String>,
    /// Rule name → CEL predicate over `dept` and `ancestors`.
    pub departments: BTreeMap<String, String>,
}
