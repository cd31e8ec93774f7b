//! The compiled `[scope]`: named predicates that decide, per direction, which entities take part.
//!
//! Each predicate sees the entity (`user` or `dept`, in its serde form) and `ancestors`: the ids
//! of the departments above it on the side it is read from, self first for a department, the
//! union over its departments for a user. So "outside subtree 42" is `!(42 in ancestors)`, and
//! the engine, which already walks department chains for today's subtree scope, passes them in.
//! All predicates are evaluated (not short-circuited) so `dingsync mapping test` can print each.

use std::collections::BTreeMap;

use cel::Value;
use directory_model::{Department, DingDeptId, OaDeptId, User};
use serde::Serialize;

use crate::config::{Limits, ScopeConfig};
use crate::error::{EvalError, MapError};
use crate::expr::{CelEnv, Compiler, Expr, context_for, describe};
use crate::kind::Kind;

/// The variable holding the ancestry ids.
const ANCESTORS: &str = "ancestors";

/// One predicate's verdict for one entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleOutcome {
    /// The rule's name in the config.
    pub name: String,
    /// Whether the predicate held.
    pub matched: bool,
}

/// Whether an entity is in scope, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScopeDecision {
    /// In scope: every rule matched (or there are none).
    pub included: bool,
    /// Every rule of the entity's kind and direction, in name order.
    pub rules: Vec<RuleOutcome>,
}

#[derive(Debug, Clone, Default)]
struct Rules {
    users: Vec<(String, Expr)>,
    departments: Vec<(String, Expr)>,
}

/// The compiled `[scope]` section.
#[derive(Debug, Clone)]
pub struct Scope {
    to_dingtalk: Rules,
    to_oa: Rules,
    limits: Limits,
    env: CelEnv,
}

impl Scope {
    /// Compiles `config`, adding every problem to `compiler`; `None` if there was any.
    pub(crate) fn compile(config: &ScopeConfig, limits: Limits, c: &mut Compiler) -> Option<Self> {
        let before = c.problems.len();
        let to_dingtalk = compile_rules(&config.to_dingtalk, "scope.to_dingtalk", c);
        let to_oa = compile_rules(&config.to_oa, "scope.to_oa", c);
        if c.problems.len() > before {
            return None;
        }
        Some(Self {
            to_dingtalk,
            to_oa,
            limits,
            env: c.env(),
        })
    }

    /// Whether an OA user is synced into DingTalk; `ancestors` are the OA ids above its
    /// departments (themselves included).
    pub fn includes_oa_user(
        &self,
        user: &User,
        ancestors: &[OaDeptId],
    ) -> Result<ScopeDecision, MapError> {
        let ids: Vec<i64> = ancestors.iter().map(|d| d.get()).collect();
        self.decide(&self.to_dingtalk.users, user, ids)
    }

    /// Whether a DingTalk user is synced into OA; `ancestors` are DingTalk department ids.
    pub fn includes_dingtalk_user(
        &self,
        user: &User,
        ancestors: &[DingDeptId],
    ) -> Result<ScopeDecision, MapError> {
        let ids: Vec<i64> = ancestors.iter().map(|d| d.get()).collect();
        self.decide(&self.to_oa.users, user, ids)
    }

    /// Whether an OA department is synced into DingTalk; `ancestors` is its OA chain, self first.
    pub fn includes_oa_department(
        &self,
        dept: &Department,
        ancestors: &[OaDeptId],
    ) -> Result<ScopeDecision, MapError> {
        let ids: Vec<i64> = ancestors.iter().map(|d| d.get()).collect();
        self.decide(&self.to_dingtalk.departments, dept, ids)
    }

    /// Whether a DingTalk department is synced into OA; `ancestors` is its DingTalk chain.
    pub fn includes_dingtalk_department(
        &self,
        dept: &Department,
        ancestors: &[DingDeptId],
    ) -> Result<ScopeDecision, MapError> {
        let ids: Vec<i64> = ancestors.iter().map(|d| d.get()).collect();
        self.decide(&self.to_oa.departments, dept, ids)
    }

    /// Whether OA users are filtered (`[scope.to_dingtalk.users]` has a rule).
    pub fn scopes_oa_users(&self) -> bool {
        !self.to_dingtalk.users.is_empty()
    }

    /// Whether OA departments are filtered.
    pub fn scopes_oa_departments(&self) -> bool {
        !self.to_dingtalk.departments.is_empty()
    }

    /// Whether DingTalk users are filtered (`[scope.to_oa.users]` has a rule).
    pub fn scopes_dingtalk_users(&self) -> bool {
        !self.to_oa.users.is_empty()
    }

    /// Whether DingTalk departments are filtered.
    pub fn scopes_dingtalk_departments(&self) -> bool {
        !self.to_oa.departments.is_empty()
    }

    /// Whether no rule at all is configured (the engine can skip ancestry lookups).
    pub fn is_everything(&self) -> bool {
        [&self.to_dingtalk, &self.to_oa]
            .iter()
            .all(|r| r.users.is_empty() && r.departments.is_empty())
    }

    fn decide<K: Kind>(
        &self,
        rules: &[(String, Expr)],
        entity: &K,
        ancestors: Vec<i64>,
    ) -> Result<ScopeDecision, MapError> {
        let mut outcomes = Vec::with_capacity(rules.len());
        if let Some((_, first)) = rules.first() {
            let mut ctx = context_for(&self.env, K::VAR, entity, &first.key)?;
            ctx.add_variable_from_value(ANCESTORS, ancestors);
            for (name, expr) in rules {
                let matched = match expr.eval(&ctx, &self.limits)? {
                    Value::Bool(b) => b,
                    other => {
                        return Err(expr.fail(EvalError::WrongType {
                            expected: "a bool".into(),
                            got: describe(&other),
                            target: format!("scope rule {name}"),
                        }));
                    }
                };
                outcomes.push(RuleOutcome {
                    name: name.clone(),
                    matched,
                });
            }
        }
        Ok(ScopeDecision {
            included: outcomes.iter().all(|o| o.matched),
            rules: outcomes,
        })
    }
}

fn compile_rules(config: &crate::config::ScopeRules, section: &str, c: &mut Compiler) -> Rules {
    let mut compile = |kind: &str, var: &str, rules: &BTreeMap<String, String>| {
        rules
            .iter()
            .filter_map(|(name, text)| {
                let key = format!("{section}.{kind}.{name}");
                c.compile(&key, text, &[var, ANCESTORS])
                    .map(|e| (name.clone(), e))
            })
            .collect::<Vec<_>>()
    };
    Rules {
        users: compile("users", "user", &config.users),
        departments: compile("departments", "dept", &config.departments),
    }
}
