//! The whole load: locate the columns, build every row, then the checks across rows.
//!
//! Every problem is collected (never the first one only), because the operator fixes the
//! spreadsheet in one sitting; the plan is handed out only when there is none, so the binary
//! cannot half-load a file it has reported as broken.

use std::collections::{BTreeMap, BTreeSet};

use directory_model::OaDeptId;

use crate::config::LoadConfig;
use crate::departments::Tree;
use crate::plan::{LoadPlan, PlannedUser};
use crate::problem::{LoadError, Problem};
use crate::rows::{ColumnIndex, RowUser, row_user};
use crate::table::{FileKind, Table, read_table};

/// The outcome of reading a file: the plan and every problem found.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// What the valid rows describe (complete only when `problems` is empty).
    pub plan: LoadPlan,
    /// Every problem, sorted by row then column.
    pub problems: Vec<Problem>,
    /// How many data rows the file has.
    pub rows: usize,
}

impl Loaded {
    /// The plan, if no row has a problem.
    pub fn into_plan(self) -> Result<LoadPlan, Vec<Problem>> {
        if self.problems.is_empty() {
            Ok(self.plan)
        } else {
            Err(self.problems)
        }
    }
}

/// Reads the file at `path` (`.csv` or `.xlsx`) with `config`.
pub fn load_path(path: &std::path::Path, config: &LoadConfig) -> Result<Loaded, LoadError> {
    let kind = FileKind::from_path(path)?;
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.display().to_string(),
        source,
    })?;
    load_bytes(&bytes, kind, config)
}

/// Reads a file's bytes with `config`.
pub fn load_bytes(bytes: &[u8], kind: FileKind, config: &LoadConfig) -> Result<Loaded, LoadError> {
    config.check()?;
    let table = read_table(bytes, kind, config)?;
    Ok(load_table(&table, config))
}

/// Turns a table into a plan and its problems. `config` must have passed [`LoadConfig::check`].
pub fn load_table(table: &Table, config: &LoadConfig) -> Loaded {
    let root = OaDeptId(config.root_department);
    let mut problems = Vec::new();
    let cols = match locate_columns(table, config) {
        Ok(cols) => cols,
        Err(missing) => {
            return Loaded {
                plan: LoadPlan::empty(root),
                problems: missing,
                rows: table.rows.len(),
            };
        }
    };
    let mut tree = Tree::new(root);
    let mut users: Vec<RowUser> = table
        .rows
        .iter()
        .map(|row| row_user(row, &cols, config, &mut tree, &mut problems))
        .collect();
    check_unique(&mut users, &cols, &mut problems);
    check_managers(&mut users, &cols, &mut problems);
    problems.sort();
    let users = managers_first(users.into_iter().filter(|u| u.ok).collect());
    Loaded {
        plan: LoadPlan::new(root, tree.into_parent_first(), users, config),
        problems,
        rows: table.rows.len(),
    }
}

/// Finds every configured header; a missing or repeated one is a problem on the header row.
fn locate_columns(table: &Table, config: &LoadConfig) -> Result<ColumnIndex, Vec<Problem>> {
    let mut by_key = BTreeMap::new();
    let mut problems = Vec::new();
    for (key, header) in config.headers() {
        let found: Vec<usize> = (0..table.headers.len())
            .filter(|i| table.headers[*i] == header.trim())
            .collect();
        match found.as_slice() {
            [index] => {
                by_key.insert(key, (header.to_owned(), *index));
            }
            [] => problems.push(Problem::new(
                table.header_row,
                header,
                format!("column not found (configured as load.columns.{key})"),
            )),
            _ => problems.push(Problem::new(
                table.header_row,
                header,
                format!("{} columns have this header", found.len()),
            )),
        }
    }
    problems.sort();
    if problems.is_empty() {
        Ok(ColumnIndex { by_key })
    } else {
        Err(problems)
    }
}

/// User id, mobile and email must be unique across rows; later rows are the ones reported.
fn check_unique(users: &mut [RowUser], cols: &ColumnIndex, problems: &mut Vec<Problem>) {
    let mut seen: BTreeMap<(&str, String), usize> = BTreeMap::new();
    let mut refused = BTreeSet::new();
    for (i, u) in users.iter().enumerate() {
        let keys = [
            ("user_id", Some(u.user.id.as_str().to_owned())),
            ("mobile", u.user.mobile.as_ref().map(|m| m.to_dingtalk())),
            ("email", u.user.email.as_ref().map(|e| e.to_lowercase())),
        ];
        for (key, value) in keys {
            let Some(value) = value.filter(|v| !v.is_empty()) else {
                continue;
            };
            if let Some(first) = seen.get(&(key, value.clone())) {
                problems.push(Problem::new(
                    u.row,
                    cols.header(key),
                    format!("{value:?} is already used on row {first}"),
                ));
                refused.insert(i);
            } else {
                seen.insert((key, value), u.row);
            }
        }
    }
    for i in refused {
        users[i].ok = false;
    }
}

/// Every manager must be a user of the file, and management must not go round in a circle
/// (the store refuses both).
fn check_managers(users: &mut [RowUser], cols: &ColumnIndex, problems: &mut Vec<Problem>) {
    let index: BTreeMap<&str, usize> = users
        .iter()
        .enumerate()
        .map(|(i, u)| (u.user.id.as_str(), i))
        .rev()
        .collect();
    let mut refused = BTreeSet::new();
    for (i, u) in users.iter().enumerate() {
        let Some(manager) = &u.user.manager else {
            continue;
        };
        if !index.contains_key(manager.as_str()) {
            problems.push(Problem::new(
                u.row,
                cols.header("manager_id"),
                format!("manager {manager:?} is not a user of this file"),
            ));
            refused.insert(i);
            continue;
        }
        // Walk up at most users.len() steps; coming back to `i` is a cycle.
        let mut at = index[manager.as_str()];
        for _ in 0..users.len() {
            if at == i {
                problems.push(Problem::new(
                    u.row,
                    cols.header("manager_id"),
                    format!("manager {manager:?} is (indirectly) managed by this user"),
                ));
                refused.insert(i);
                break;
            }
            match users[at]
                .user
                .manager
                .as_ref()
                .and_then(|m| index.get(m.as_str()))
            {
                Some(next) => at = *next,
                None => break,
            }
        }
    }
    for i in refused {
        users[i].ok = false;
    }
}

/// Orders users so that each one's manager comes before them (the store needs the manager to
/// exist). Managers not in the list (refused rows) are ignored.
fn managers_first(users: Vec<RowUser>) -> Vec<PlannedUser> {
    let mut by_id: BTreeMap<String, RowUser> = BTreeMap::new();
    let mut order = Vec::new();
    for u in users {
        order.push(u.user.id.as_str().to_owned());
        by_id.insert(u.user.id.as_str().to_owned(), u);
    }
    let mut out = Vec::with_capacity(order.len());
    for id in order {
        // Collect the chain of not-yet-placed managers, then place it top-down.
        let mut chain = Vec::new();
        let mut next = Some(id);
        while let Some(current) = next.take() {
            let Some(u) = by_id.remove(&current) else {
                break;
            };
            next = u.user.manager.as_ref().map(|m| m.as_str().to_owned());
            chain.push(u);
        }
        out.extend(chain.into_iter().rev().map(|u| PlannedUser {
            row: u.row,
            user: u.user,
        }));
    }
    out
}
