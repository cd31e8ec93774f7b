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
//! The binary reads a `[load]` section into [`LoadConfig`]:
//!
//! ```toml
//! [load]
//! # sheet = "花名册"          # XLSX: the sheet to read (default: the first)
//! # encoding = "auto"         # CSV: auto (UTF-8 with/without BOM, else GB18030/GBK) | utf-8 | gb18030
//! # delimiter = ","
//! root_department = 1         # OA id of the existing root the paths hang under
//! root_segment = "总部"       # every path starts with the root's name; it is dropped
//! path_separator = "/"        # 总部/销售部/华东
//! # list_separator = ";"      # several departments in one cell; the first is the main one
//! date_format = "%Y-%m-%d"    # strftime; XLSX date cells are read as dates anyway
//! utc_offset_hours = 8        # a hired date is midnight at this offset
//!
//! [load.columns]              # column headers exactly as in the file's header row
//! user_id = "员工ID"
//! name = "姓名"
//! mobile = "手机号"
//! email = "邮箱"
//! job_number = "工号"
//! title = "职位"
//! department_path = "部门"    # or: department_id = "部门编号" (existing numeric OA ids)
//! manager_id = "直属上级"
//! hired_date = "入职日期"
//!
//! [load.columns.extension]    # extension key = column header
//! "工位" = "工位"
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
