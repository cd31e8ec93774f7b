//! The crate's two error boundaries: loading a config ([`ConfigErrors`], every problem at once,
//! for `dingsync check`) and mapping one entity ([`MapError`], which the engine turns into a dead
//! letter for that entity while the rest of the sync goes on).

use std::fmt;

/// Where in an expression a compile problem is: line and column, both counted from 1 (the CEL
/// parser's convention, kept for problems this crate finds itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Position {
    /// Line within the expression text, from 1.
    pub line: u32,
    /// Column (in characters) within that line, from 1.
    pub column: u32,
}

/// One problem found while loading the `[mapping]` / `[scope]` config.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfigProblem {
    /// The dotted config key, e.g. `mapping.users.fields.job_number.to_dingtalk`.
    pub key: String,
    /// Where in the expression, for expression syntax errors.
    pub position: Option<Position>,
    /// What is wrong, in words.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some(p) => write!(
                f,
                "{} (line {}, column {}): {}",
                self.key, p.line, p.column, self.message
            ),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

/// Every problem of a config, so that an administrator fixes them in one round.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} problem(s) in the mapping/scope config:{}", .problems.len(), ProblemList(.problems))]
pub struct ConfigErrors {
    /// The problems, in config-key order.
    pub problems: Vec<ConfigProblem>,
}

struct ProblemList<'a>(&'a [ConfigProblem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in self.0 {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

/// Mapping or scoping one entity failed; the engine dead-letters that entity with this reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct MapError {
    /// The config key of the rule that failed, e.g. `mapping.users.fields.title.to_dingtalk`.
    pub key: String,
    /// Why it failed.
    #[source]
    pub reason: EvalError,
}

/// Why one expression failed for one entity.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// CEL raised an error (a missing key, no matching overload, division by zero, …).
    #[error("evaluation failed")]
    Execution(#[source] cel::ExecutionError),
    /// The expression produced a value of the wrong type for its target.
    #[error("produced {got}, which {target} cannot hold: {expected}")]
    WrongType {
        /// What the target accepts, as the type check said it.
        expected: String,
        /// What the expression produced (the value, shortened).
        got: String,
        /// The target (field or extension key).
        target: String,
    },
    /// The result is larger than the configured budget.
    #[error("result exceeds the size budget: {0}")]
    TooLarge(String),
    /// The entity could not be presented to CEL (should not happen for model entities).
    #[error("the entity could not be converted to CEL values: {0}")]
    Input(String),
}
