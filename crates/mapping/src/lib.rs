//! Field mapping and scope as CEL expressions: the pure layer of issue 19.
//!
//! Every OA system names things differently (job numbers with a prefix, titles from a code
//! table, a field that DingTalk keeps in its `extension` JSON, contractors that must not sync).
//! This crate turns the `[mapping]` and `[scope]` config sections into compiled rules and applies
//! them to one entity at a time. It is pure: no async runtime, no SQL, no HTTP. Expressions are
//! compiled once by [`load`], which reports every problem with its config key and position; a
//! failing evaluation for one entity is a [`MapError`] naming the rule, which the engine
//! dead-letters while the rest of the sync goes on.
//!
//! # How the engine calls it (phase 2)
//! - **Load / `check`**: the binary deserializes `[mapping]` into [`MappingConfig`] and `[scope]`
//!   into [`ScopeConfig`] and calls [`load`]; [`ConfigErrors`] lists every problem. It stores
//!   [`Loaded::fingerprint`]; a different one at start means the implied plan is held.
//! - **Import (DingTalk → OA)**: for each DingTalk user/department already in the model's shape,
//!   [`Scope::includes_dingtalk_user`] / [`Scope::includes_dingtalk_department`] decide whether it
//!   takes part (out of scope = deleted on the OA side, subject to the deletion threshold), then
//!   [`Mapping::user_to_oa`] / [`Mapping::department_to_oa`] give OA's values. Soft matching on a
//!   first import compares the mapped values by [`Mapping::soft_match`], in order.
//! - **Apply / merge**: the three-way merge runs on OA-side values with
//!   [`Mapping::user_policy`] / [`Mapping::department_policy`] as owners and winner.
//! - **Push (OA → DingTalk)**: [`Scope::includes_oa_user`] / [`Scope::includes_oa_department`]
//!   filter, [`Mapping::user_to_dingtalk`] / [`Mapping::department_to_dingtalk`] give DingTalk's
//!   values; on an update, [`Mapped::for_update`] keeps the existing values of `on_create` fields.
//! - **Plan**: the same calls over every entity, diffing mapped values against each side, give the
//!   plan field by field; `dingsync mapping test` prints one entity's values before and after and
//!   the [`ScopeDecision`]'s rules.
//!
//! # The expressions
//! A field expression sees the *other* side's entity as `user` or `dept`, in the model's JSON
//! form: every field present, absent optionals as `null`, `mobile` as
//! `{country_code, number}`, `departments` as `[{dept, title, order}]`, `extension` as a string
//! map, `state` as `"active"`/`"left"`. A plain field name instead of an expression copies that
//! field. A result is converted back through the field's serde type, so a wrong shape is an
//! error naming the field. Scope predicates also see `ancestors` (see [`scope`]). CEL's standard
//! library, optional values (`user.extension.?code.orValue("")`) and the strings extension
//! (`substring`, `replace`, `lowerAscii`, `split`, `join`, …) are available.
//!
//! # Config shape, worked example
//! From `crates/mapping/mapping.example.toml`, which a test loads and checks rule by rule:
//!
#![doc = concat!("```toml\n", include_str!("../mapping.example.toml"), "```\n")]
//!
//! # Layout
//! - [`config`]: the serde model of `[mapping]` and `[scope]`, with defaults = today's behaviour.
//! - `expr`: compiling (collecting every problem) and bounded evaluation of CEL.
//! - `free_vars`: the load-time check that an expression uses only variables it is given.
//! - `kind`: per entity kind, its CEL variable and typed field writes.
//! - [`mod@mapping`]: the compiled mapping, [`Mapped`] results and the merge policy it implies.
//! - [`mod@scope`]: the compiled scope and its per-rule [`ScopeDecision`].
//! - [`mod@fingerprint`]: the stable hash of the effective config.
//! - [`error`]: [`ConfigErrors`] (load) and [`MapError`] (one entity).

pub mod config;
pub mod error;
mod expr;
pub mod fingerprint;
mod free_vars;
mod kind;
pub mod mapping;
pub mod scope;

pub use config::{
    Apply, ExtensionRule, FieldRule, KindMappingConfig, Limits, MappingConfig, ScopeConfig,
    ScopeRules,
};
pub use error::{ConfigErrors, ConfigProblem, EvalError, MapError, Position};
pub use fingerprint::{Fingerprint, fingerprint};
pub use mapping::{DEFAULT_SOFT_MATCH, Direction, Mapped, MappedDepartment, MappedUser, Mapping};
pub use scope::{RuleOutcome, Scope, ScopeDecision};

/// A loaded `[mapping]` + `[scope]`.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The compiled mapping.
    pub mapping: Mapping,
    /// The compiled scope.
    pub scope: Scope,
    /// The fingerprint of both, as they take effect.
    pub fingerprint: Fingerprint,
}

/// Compiles both sections, reporting every problem of either at once.
pub fn load(mapping: &MappingConfig, scope: &ScopeConfig) -> Result<Loaded, ConfigErrors> {
    let mut compiler = expr::Compiler::new(mapping.limits);
    let compiled_mapping = Mapping::compile(mapping, &mut compiler);
    let compiled_scope = Scope::compile(scope, mapping.limits, &mut compiler);
    match (compiled_mapping, compiled_scope) {
        (Some(m), Some(s)) if compiler.problems.is_empty() => Ok(Loaded {
            mapping: m,
            scope: s,
            fingerprint: fingerprint(mapping, scope),
        }),
        _ => {
            let mut problems = compiler.problems;
            problems.sort_by(|a, b| a.key.cmp(&b.key));
            Err(ConfigErrors { problems })
        }
    }
}
