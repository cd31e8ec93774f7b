//! Reads an OA or HR system's export (CSV or XLSX) into directory-model entities, for the first
//! load of the OA side: `dingsync load FILE [--dry-run]`.
//!
//! A company starting with dingsync has its people in a spreadsheet, not in DingTalk. This crate
//! turns that spreadsheet into the departments and users of the OA directory, held to the same
//! validation as the OA API, and reports every problem at once as (row, column, reason) so the
//! operator fixes the file in one sitting. It is pure: no async runtime, no HTTP, no SQL. The
//! binary owns the file path, the config file and the store.
//!
//! # Config
//! The binary reads a `[load]` section into [`LoadConfig`] (`load.example.toml`, which the
//! tests load their fixtures with):
//!
//! ```toml
#![doc = include_str!("../load.example.toml")]
//! ```
//!
//! # How `dingsync load FILE [--dry-run]` uses it
//! 1. [`load_path`] (or [`load_bytes`]) → [`Loaded`]: the [`LoadPlan`] and every [`Problem`].
//!    A [`LoadError`] means the file or config is unusable as a whole.
//! 2. `--dry-run`: print the problems (row, column, reason) and, when there are none, the
//!    counts of [`LoadPlan::diff`] against the directory; write nothing. Exit non-zero if any.
//! 3. A real run refuses while there are problems ([`Loaded::into_plan`]); otherwise it reads
//!    the current departments and users from the store, takes [`LoadPlan::diff`], and writes
//!    [`LoadDiff`] in its order — created departments, updated departments, created users,
//!    updated users — in batches through the store's ordinary create/update calls, so each
//!    write is validated and queued in the outbox exactly like an API write. A re-run finds
//!    nothing to do ([`LoadDiff::is_noop`]).
//!
//! # Layout
//! - [`config`]: the `[load]` section and its consistency check.
//! - [`table`]: CSV (encodings) and XLSX bytes → one header + rows [`Table`].
//! - [`departments`]: the tree implied by the paths; ids derived from the path.
//! - `rows`: one row → one user, with the model's validation mapped to column headers.
//! - `load`: the whole file; checks across rows (duplicates, managers); users ordered
//!   managers-first.
//! - [`plan`]: [`LoadPlan`] and its [`LoadDiff`] against the current directory.
//! - [`problem`]: [`Problem`] (a cell to fix) and [`LoadError`] (the file as a whole).

pub mod config;
pub mod departments;
mod load;
pub mod plan;
pub mod problem;
mod rows;
pub mod table;

pub use config::{Columns, CsvEncoding, LoadConfig};
pub use departments::{PlannedDepartment, derived_dept_id};
pub use load::{Loaded, load_bytes, load_path, load_table};
pub use plan::{LoadDiff, LoadPlan, PlannedUser};
pub use problem::{ConfigError, LoadError, Problem};
pub use table::{Cell, FileKind, Row, Table};
