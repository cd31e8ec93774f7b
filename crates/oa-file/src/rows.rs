//! One row → one [`User`] (and the departments its paths imply), with every problem of the row.
//!
//! Only checks that need nothing but the row live here; the ones across rows (duplicates,
//! managers) are in [`crate::load`]. The model's own [`validate_user`] runs on the finished
//! user, so the file is held to exactly the rules the OA API applies; its field paths are mapped
//! back to the column headers the operator knows.

use std::collections::BTreeMap;

use chrono::{FixedOffset, NaiveDate, NaiveTime, TimeZone};
use directory_model::{Membership, Mobile, OaDeptId, OaUserId, User, validate_user};

use crate::config::{DeptSource, LoadConfig};
use crate::departments::Tree;
use crate::problem::Problem;
use crate::table::{Cell, Row};

/// Where each configured column is in the file.
#[derive(Debug, Clone)]
pub(crate) struct ColumnIndex {
    /// Config key → (header, index).
    pub(crate) by_key: BTreeMap<String, (String, usize)>,
}

impl ColumnIndex {
    pub(crate) fn header<'a>(&'a self, key: &'a str) -> &'a str {
        self.by_key.get(key).map_or(key, |(h, _)| h.as_str())
    }

    fn cell<'r>(&self, row: &'r Row, key: &str) -> Option<&'r Cell> {
        let (_, index) = self.by_key.get(key)?;
        row.cells.get(*index)
    }

    /// The trimmed text of a configured column; empty when unmapped or missing.
    fn text(&self, row: &Row, key: &str) -> String {
        self.cell(row, key)
            .map(|c| c.text().trim().to_owned())
            .unwrap_or_default()
    }
}

/// What one row turned into.
#[derive(Debug)]
pub(crate) struct RowUser {
    pub(crate) row: usize,
    pub(crate) user: User,
    pub(crate) ok: bool,
}

/// Builds the row's user, adding its departments to `tree` and its problems to `problems`.
///
/// Slightly over 80 lines: the cell-by-cell reading of one row, in column order, with each
/// problem reported where the cell is read.
pub(crate) fn row_user(
    row: &Row,
    cols: &ColumnIndex,
    config: &LoadConfig,
    tree: &mut Tree,
    problems: &mut Vec<Problem>,
) -> RowUser {
    let before = problems.len();
    let mut bad = |key: &str, reason: String| {
        problems.push(Problem::new(row.number, cols.header(key), reason));
    };
    for key in cols.by_key.keys() {
        if let Some(Cell::Text(t)) = cols.cell(row, key)
            && let Some(c) = t.chars().find(|c| c.is_control())
        {
            bad(
                key,
                format!("contains the control character U+{:04X}", c as u32),
            );
        }
    }
    let id = cols.text(row, "user_id");
    let mut user = User::new(OaUserId::new(id), cols.text(row, "name"), &[]);
    let mobile = cols.text(row, "mobile");
    user.mobile = (!mobile.is_empty()).then(|| Mobile::parse(&mobile));
    // The model accepts a user without a mobile (an IdP may send it later, and the push waits
    // as a dead letter naming the field); a first load from the HR system is the source of the
    // mobile, so a row without one is a problem of the file.
    if mobile.is_empty() {
        bad(
            "mobile",
            "DingTalk requires a mobile number to create a user".to_owned(),
        );
    }
    let opt = |key: &str| Some(cols.text(row, key)).filter(|t| !t.is_empty());
    user.email = opt("email");
    user.job_number = opt("job_number");
    user.manager = opt("manager_id").map(OaUserId::new);
    for key in config.columns.extension.keys() {
        if let Some(value) = opt(&format!("extension.{key}")) {
            user.extension.insert(key.clone(), value);
        }
    }
    if let Some(cell) = cols.cell(row, "hired_date") {
        match hired_ms(cell, config) {
            Ok(ms) => user.hired_date_ms = ms,
            Err(reason) => bad("hired_date", reason),
        }
    }
    let title = opt("title");
    match departments(row, cols, config, tree) {
        Ok(depts) => {
            user.departments = depts
                .iter()
                .map(|d| Membership {
                    dept: *d,
                    title: title.clone(),
                    order: 0,
                })
                .collect();
            user.main_department = depts.first().copied();
        }
        Err(reasons) => reasons.into_iter().for_each(|r| bad(dept_key(config), r)),
    }
    let no_dept_problem = problems.len() == before
        || problems[before..]
            .iter()
            .all(|p| p.column != cols.header(dept_key(config)));
    if let Err(errors) = validate_user(&user) {
        for e in errors.errors() {
            let key = field_key(&e.field, config);
            // An empty department list after a refused path is already reported.
            if key == dept_key(config) && !no_dept_problem {
                continue;
            }
            // One problem per cell: a cell the reading already refused (a control character)
            // is not reported again by the model's validation of the same value.
            let header = cols.header(&key);
            if problems[before..].iter().any(|p| p.column == header) {
                continue;
            }
            let mut bad = |key: &str, reason: String| {
                problems.push(Problem::new(row.number, cols.header(key), reason));
            };
            bad(&key, e.message.clone());
        }
    }
    RowUser {
        row: row.number,
        user,
        ok: problems.len() == before,
    }
}

fn dept_key(config: &LoadConfig) -> &'static str {
    match config.dept_source() {
        Some(DeptSource::Id(_)) => "department_id",
        _ => "department_path",
    }
}

/// The config key of the column a model field path came from.
fn field_key(field: &str, config: &LoadConfig) -> String {
    match field {
        "id" => "user_id".to_owned(),
        "name" | "mobile" | "email" | "job_number" => field.to_owned(),
        "manager" => "manager_id".to_owned(),
        f if f.ends_with(".title") => "title".to_owned(),
        f if f.starts_with("departments") || f == "main_department" => dept_key(config).to_owned(),
        // The model checks the extension map as a whole; name it by its first column.
        _ => config
            .columns
            .extension
            .keys()
            .next()
            .map_or_else(|| "user_id".to_owned(), |k| format!("extension.{k}")),
    }
}

/// The row's departments: paths resolved through `tree`, or numeric ids.
fn departments(
    row: &Row,
    cols: &ColumnIndex,
    config: &LoadConfig,
    tree: &mut Tree,
) -> Result<Vec<OaDeptId>, Vec<String>> {
    let cell = cols.text(row, dept_key(config));
    if cell.is_empty() {
        return Ok(Vec::new());
    }
    let entries: Vec<&str> = match &config.list_separator {
        Some(sep) => cell.split(sep.as_str()).map(str::trim).collect(),
        None => vec![cell.as_str()],
    };
    let mut ids = Vec::new();
    let mut reasons = Vec::new();
    for entry in entries.into_iter().filter(|e| !e.is_empty()) {
        let id = match config.dept_source() {
            Some(DeptSource::Id(_)) => entry
                .parse::<i64>()
                .map(OaDeptId)
                .map_err(|_| vec![format!("{entry:?} is not a numeric department id")]),
            _ => path_segments(entry, config).and_then(|path| {
                if path.is_empty() {
                    Ok(OaDeptId(config.root_department))
                } else {
                    tree.insert(&path, row.number)
                }
            }),
        };
        match id {
            Ok(id) => ids.push(id),
            Err(r) => reasons.extend(r),
        }
    }
    if reasons.is_empty() {
        Ok(ids)
    } else {
        Err(reasons)
    }
}

/// Splits a path, checks and drops the root segment; an empty result means the root itself.
fn path_segments(entry: &str, config: &LoadConfig) -> Result<Vec<String>, Vec<String>> {
    let mut segments: Vec<String> = entry
        .split(config.path_separator.as_str())
        .map(|s| s.trim().to_owned())
        .collect();
    if segments.iter().any(String::is_empty) {
        return Err(vec![format!("{entry:?} has an empty department name")]);
    }
    if let Some(root) = &config.root_segment {
        if segments.first() != Some(root) {
            return Err(vec![format!(
                "{entry:?} does not start with the root department {root:?}"
            )]);
        }
        segments.remove(0);
    }
    Ok(segments)
}

/// The hired date as Unix milliseconds at midnight in the configured offset.
fn hired_ms(cell: &Cell, config: &LoadConfig) -> Result<Option<i64>, String> {
    let date = match cell {
        Cell::Date(d) => *d,
        Cell::Text(t) if t.trim().is_empty() => return Ok(None),
        Cell::Text(t) => {
            NaiveDate::parse_from_str(t.trim(), &config.date_format).map_err(|_| {
                format!(
                    "{:?} is not a date in the format {:?}",
                    t.trim(),
                    config.date_format
                )
            })?
        }
    };
    let offset = FixedOffset::east_opt(i32::from(config.utc_offset_hours) * 3600)
        .ok_or_else(|| "the configured UTC offset is out of range".to_owned())?;
    offset
        .from_local_datetime(&date.and_time(NaiveTime::MIN))
        .single()
        .map(|t| Some(t.timestamp_millis()))
        .ok_or_else(|| format!("{date} has no midnight at the configured offset"))
}
