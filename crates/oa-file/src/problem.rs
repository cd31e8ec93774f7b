//! What can go wrong, split the way the caller acts on it.
//!
//! A [`Problem`] is about the data: one cell (or one column) that the operator fixes in the
//! spreadsheet; all of them are collected so one `--dry-run` lists everything. A [`LoadError`] is
//! about the file or the config as a whole (not a spreadsheet at all, a missing sheet, a bad
//! config) and stops the load.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One problem with one cell, as the spreadsheet shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Problem {
    /// The row number the spreadsheet shows: the header is row 1, the first data row is row 2.
    pub row: usize,
    /// The column header, as written in the file.
    pub column: String,
    /// A human-readable sentence.
    pub reason: String,
}

impl Problem {
    pub(crate) fn new(row: usize, column: &str, reason: impl Into<String>) -> Self {
        Self {
            row,
            column: column.to_owned(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "row {}, column {}: {}",
            self.row, self.column, self.reason
        )
    }
}

/// Problems with the `[load]` config section, each naming its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid [load] configuration: {}", .0.join("; "))]
pub struct ConfigError(pub Vec<String>);

/// The file or the config cannot be loaded at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The config section is inconsistent.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The file could not be read from disk.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file name ends neither in `.csv` nor in `.xlsx`.
    #[error("unsupported file type {0:?}; expected .csv or .xlsx")]
    UnsupportedFormat(String),
    /// The CSV is not in the configured encoding.
    #[error("the file is not valid {0}")]
    Encoding(&'static str),
    /// The CSV could not be parsed.
    #[error("malformed CSV")]
    Csv(#[source] csv::Error),
    /// The XLSX workbook could not be opened or read.
    #[error("unreadable XLSX workbook")]
    Xlsx(#[source] calamine::XlsxError),
    /// The configured sheet does not exist.
    #[error("the workbook has no sheet named {wanted:?} (it has {available:?})")]
    NoSuchSheet {
        /// The configured name.
        wanted: String,
        /// The sheets the workbook has.
        available: Vec<String>,
    },
    /// There is no header row.
    #[error("the file is empty: no header row")]
    Empty,
}
