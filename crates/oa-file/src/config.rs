//! The `[load]` configuration section: which column holds what, and how to read it.
//!
//! HR exports differ in every column name and in how they write a department ("总部/销售部/华东",
//! "销售部>华东", or a numeric id). Rather than guess, the operator names the columns once in the
//! config file and the loader refuses a file that lacks one of them, so a renamed column in next
//! month's export is an error on row 1, not a directory of users without mobiles.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::problem::ConfigError;

/// The `[load]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadConfig {
    /// Which column holds which field.
    pub columns: Columns,
    /// XLSX only: the sheet to read; the first sheet when absent.
    #[serde(default)]
    pub sheet: Option<String>,
    /// CSV only: how the bytes are encoded.
    #[serde(default)]
    pub encoding: CsvEncoding,
    /// CSV only: the field delimiter (one ASCII character).
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// The OA id of the existing root department under which the paths hang.
    #[serde(default = "default_root")]
    pub root_department: i64,
    /// When every path starts with the root's own name (`总部/销售部`), that name; the first
    /// segment must then equal it and is dropped.
    #[serde(default)]
    pub root_segment: Option<String>,
    /// What separates the departments of one path.
    #[serde(default = "default_path_separator")]
    pub path_separator: String,
    /// When one department cell may name several departments (`销售部/华东;市场部`), what
    /// separates them; the first is the main department. One department per cell when absent.
    #[serde(default)]
    pub list_separator: Option<String>,
    /// How the hired-date column writes a date, in `strftime` syntax (`%Y-%m-%d`, `%Y/%m/%d`,
    /// `%Y年%m月%d日`). XLSX date cells are read as dates whatever this says.
    #[serde(default = "default_date_format")]
    pub date_format: String,
    /// The hired date becomes midnight at this UTC offset, in hours (China: 8).
    #[serde(default = "default_utc_offset")]
    pub utc_offset_hours: i8,
}

/// Column headers, exactly as the file's first row writes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Columns {
    /// The user id (becomes the OA user id and the DingTalk `userid`). Required.
    pub user_id: String,
    /// The display name. Required.
    pub name: String,
    /// The mobile number (DingTalk requires one). Required.
    pub mobile: String,
    /// Email.
    #[serde(default)]
    pub email: Option<String>,
    /// Employee number.
    #[serde(default)]
    pub job_number: Option<String>,
    /// The title, set on every membership of the row.
    #[serde(default)]
    pub title: Option<String>,
    /// A department path such as `总部/销售部/华东`; departments are created from the paths.
    /// Exactly one of `department_path` and `department_id` must be set.
    #[serde(default)]
    pub department_path: Option<String>,
    /// A numeric OA department id of a department that already exists.
    #[serde(default)]
    pub department_id: Option<String>,
    /// The direct manager's user id (a user of the same file).
    #[serde(default)]
    pub manager_id: Option<String>,
    /// The hired date, read with `date_format`.
    #[serde(default)]
    pub hired_date: Option<String>,
    /// Extension fields: extension key → column header.
    #[serde(default)]
    pub extension: BTreeMap<String, String>,
}

/// How a CSV file is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CsvEncoding {
    /// UTF-8 (with or without a BOM) when the bytes are valid UTF-8, else GB18030 (a superset
    /// of GBK and GB2312, what Chinese HR systems and Excel's "CSV" on a Chinese Windows write).
    #[default]
    Auto,
    /// UTF-8, with or without a BOM; invalid bytes are an error.
    Utf8,
    /// GB18030 / GBK.
    Gb18030,
}

fn default_delimiter() -> char {
    ','
}
fn default_root() -> i64 {
    1
}
fn default_path_separator() -> String {
    "/".to_owned()
}
fn default_date_format() -> String {
    "%Y-%m-%d".to_owned()
}
fn default_utc_offset() -> i8 {
    8
}

/// Which department source the columns name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeptSource<'a> {
    Path(&'a str),
    Id(&'a str),
}

impl LoadConfig {
    /// Checks what serde cannot: every problem at once, each naming its key.
    pub fn check(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let mut bad = |key: &str, reason: &str| problems.push(format!("load.{key}: {reason}"));
        match (&self.columns.department_path, &self.columns.department_id) {
            (Some(_), Some(_)) => bad(
                "columns.department_path",
                "set either department_path or department_id, not both",
            ),
            (None, None) => bad(
                "columns.department_path",
                "set department_path or department_id",
            ),
            _ => {}
        }
        if !self.delimiter.is_ascii() || self.delimiter.is_ascii_control() && self.delimiter != '\t'
        {
            bad(
                "delimiter",
                "must be one printable ASCII character or a tab",
            );
        }
        if self.path_separator.is_empty() {
            bad("path_separator", "must not be empty");
        }
        if self.list_separator.as_deref() == Some("") {
            bad("list_separator", "must not be empty");
        }
        if self.list_separator.as_deref() == Some(self.path_separator.as_str()) {
            bad("list_separator", "must differ from path_separator");
        }
        if !(-12..=14).contains(&self.utc_offset_hours) {
            bad("utc_offset_hours", "must be between -12 and 14");
        }
        if chrono::format::StrftimeItems::new(&self.date_format)
            .parse()
            .is_err()
        {
            bad("date_format", "is not a valid strftime format");
        }
        for (key, header) in self.headers() {
            if header.trim().is_empty() {
                bad(&format!("columns.{key}"), "must name a column");
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(problems))
        }
    }

    /// Every configured column as (config key, header).
    pub(crate) fn headers(&self) -> Vec<(String, &str)> {
        let c = &self.columns;
        let mut out = vec![
            ("user_id".to_owned(), c.user_id.as_str()),
            ("name".to_owned(), c.name.as_str()),
            ("mobile".to_owned(), c.mobile.as_str()),
        ];
        for (key, header) in [
            ("email", &c.email),
            ("job_number", &c.job_number),
            ("title", &c.title),
            ("department_path", &c.department_path),
            ("department_id", &c.department_id),
            ("manager_id", &c.manager_id),
            ("hired_date", &c.hired_date),
        ] {
            if let Some(h) = header {
                out.push((key.to_owned(), h.as_str()));
            }
        }
        for (key, header) in &c.extension {
            out.push((format!("extension.{key}"), header.as_str()));
        }
        out
    }

    pub(crate) fn dept_source(&self) -> Option<DeptSource<'_>> {
        match (&self.columns.department_path, &self.columns.department_id) {
            (Some(p), None) => Some(DeptSource::Path(p)),
            (None, Some(i)) => Some(DeptSource::Id(i)),
            _ => None,
        }
    }
}
