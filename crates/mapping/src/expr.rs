//! Compiling CEL once at load and evaluating it within a budget.
//!
//! Every expression of the config goes through one [`Compiler`], which collects problems instead
//! of returning at the first, so `dingsync check` can list them all with their keys. Evaluation
//! builds one CEL context per entity (the entity as a map under its variable name) and checks the
//! size of what each expression produced against [`Limits`]; CEL offers no way to interrupt a
//! running program, but without loops or recursion its running time is bounded by the expression
//! and input sizes, which the limits also bound.

use std::sync::Arc;

use cel::{Context, Env, Program, Value};

use crate::config::Limits;
use crate::error::{ConfigProblem, EvalError, MapError, Position};
use crate::free_vars::{line_column, unknown_variables};

/// Collects compiled programs and every problem met on the way.
pub(crate) struct Compiler {
    env: Arc<Env>,
    limits: Limits,
    pub(crate) problems: Vec<ConfigProblem>,
}

impl Compiler {
    /// A compiler over CEL's standard library plus the strings extension (`substring`,
    /// `replace`, `lowerAscii`, `split`, `join`, …), which mappings of names and codes need.
    pub(crate) fn new(limits: Limits) -> Self {
        let mut env = Env::stdlib();
        let mut problems = Vec::new();
        if let Err(e) = env.add_extension(cel::extensions::strings) {
            problems.push(ConfigProblem {
                key: "mapping".into(),
                position: None,
                message: format!("the CEL strings extension could not be loaded: {e}"),
            });
        }
        Self {
            env: Arc::new(env),
            limits,
            problems,
        }
    }

    pub(crate) fn env(&self) -> CelEnv {
        CelEnv(Arc::clone(&self.env))
    }

    /// Records a problem that is not a syntax error (unknown field, misplaced option).
    pub(crate) fn problem(&mut self, key: &str, message: impl Into<String>) {
        self.problems.push(ConfigProblem {
            key: key.to_owned(),
            position: None,
            message: message.into(),
        });
    }

    /// Compiles `text` (the value of config key `key`), or records why it cannot be.
    /// `allowed` are the variables the expression will be given at evaluation.
    pub(crate) fn compile(&mut self, key: &str, text: &str, allowed: &[&str]) -> Option<Expr> {
        if text.chars().count() > self.limits.max_expression_chars {
            let limit = self.limits.max_expression_chars;
            self.problem(key, format!("expression longer than {limit} characters"));
            return None;
        }
        match self.env.compile(text) {
            Ok(program) => {
                let unknown = unknown_variables(program.expression(), allowed);
                if unknown.is_empty() {
                    return Some(Expr {
                        key: key.to_owned(),
                        program: Arc::new(program),
                    });
                }
                for (name, id) in unknown {
                    let position = program.source_info().offset_for(id).map(|(start, _)| {
                        let (line, column) = line_column(text, start);
                        Position { line, column }
                    });
                    self.problems.push(ConfigProblem {
                        key: key.to_owned(),
                        position,
                        message: format!(
                            "unknown variable `{name}`; this expression is given {}",
                            allowed.join(", ")
                        ),
                    });
                }
                None
            }
            Err(errors) => {
                for e in errors.errors {
                    self.problems.push(ConfigProblem {
                        key: key.to_owned(),
                        position: Some(Position {
                            line: u32::try_from(e.pos.0).unwrap_or(0),
                            column: u32::try_from(e.pos.1).unwrap_or(0),
                        }),
                        message: e.msg,
                    });
                }
                None
            }
        }
    }
}

/// The CEL environment programs were compiled for and run in (shared; `Env` has no `Debug`).
#[derive(Clone)]
pub(crate) struct CelEnv(Arc<Env>);

impl std::fmt::Debug for CelEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CelEnv(stdlib + strings)")
    }
}

/// One compiled expression with the config key it came from (for error messages).
#[derive(Debug, Clone)]
pub(crate) struct Expr {
    pub(crate) key: String,
    program: Arc<Program>,
}

impl Expr {
    /// Runs the program in `ctx` and checks the result against `limits`.
    pub(crate) fn eval(&self, ctx: &Context<'_, '_>, limits: &Limits) -> Result<Value, MapError> {
        let value = self
            .program
            .execute(ctx)
            .map_err(|e| self.fail(EvalError::Execution(e)))?;
        let mut items = 0usize;
        check_size(&value, limits, &mut items).map_err(|e| self.fail(e))?;
        Ok(value)
    }

    pub(crate) fn fail(&self, reason: EvalError) -> MapError {
        MapError {
            key: self.key.clone(),
            reason,
        }
    }
}

/// A fresh evaluation context with the strings extension and `name` bound to `entity`.
pub(crate) fn context_for<'a, T: serde::Serialize>(
    env: &CelEnv,
    name: &str,
    entity: &T,
    key: &str,
) -> Result<Context<'a, 'a>, MapError> {
    let mut ctx = Context::with_env(Arc::clone(&env.0));
    let value = cel::to_value(entity).map_err(|e| MapError {
        key: key.to_owned(),
        reason: EvalError::Input(e.to_string()),
    })?;
    ctx.add_variable_from_value(name, value);
    Ok(ctx)
}

/// Walks a result, failing once a string or the item count is over budget.
fn check_size(value: &Value, limits: &Limits, items: &mut usize) -> Result<(), EvalError> {
    match value {
        Value::String(s) if s.len() > limits.max_string_bytes => Err(EvalError::TooLarge(format!(
            "a string of {} bytes (limit {})",
            s.len(),
            limits.max_string_bytes
        ))),
        Value::Bytes(b) if b.len() > limits.max_string_bytes => Err(EvalError::TooLarge(format!(
            "{} bytes (limit {})",
            b.len(),
            limits.max_string_bytes
        ))),
        Value::List(list) => {
            *items += list.len();
            over_items(*items, limits)?;
            list.iter().try_for_each(|v| check_size(v, limits, items))
        }
        Value::Map(map) => {
            *items += map.map.len();
            over_items(*items, limits)?;
            map.map
                .values()
                .try_for_each(|v| check_size(v, limits, items))
        }
        _ => Ok(()),
    }
}

fn over_items(items: usize, limits: &Limits) -> Result<(), EvalError> {
    if items > limits.max_items {
        Err(EvalError::TooLarge(format!(
            "{items} list/map items (limit {})",
            limits.max_items
        )))
    } else {
        Ok(())
    }
}

/// A short description of a value for a type error (never the whole of a large value).
pub(crate) fn describe(value: &Value) -> String {
    let text = format!("{value:?}");
    match text.char_indices().nth(80) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}
