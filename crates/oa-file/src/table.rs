//! Reading a CSV or XLSX file into one [`Table`] of header + rows, the only thing the rest of
//! the crate sees, so CSV and XLSX are validated by the same code.
//!
//! Row numbers are the ones a person sees in Excel or WPS: the header is row 1. For XLSX that
//! includes any blank rows above the used range; for CSV it is the record's position (a quoted
//! cell spanning two lines is still one row, as a spreadsheet program shows it).

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use chrono::NaiveDate;

use crate::config::{CsvEncoding, LoadConfig};
use crate::problem::LoadError;

/// One cell's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Text (XLSX numbers are written as the text Excel would show for a general cell).
    Text(String),
    /// An XLSX date cell.
    Date(NaiveDate),
}

impl Cell {
    /// The text of the cell; a date as `YYYY-MM-DD`.
    pub fn text(&self) -> String {
        match self {
            Cell::Text(t) => t.clone(),
            Cell::Date(d) => d.format("%Y-%m-%d").to_string(),
        }
    }
}

/// One data row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The row number as the spreadsheet shows it (header = 1).
    pub number: usize,
    /// Cells, by column index; a short row has fewer.
    pub cells: Vec<Cell>,
}

/// A header row and the data rows below it. Fully blank rows, and rows above the header, are
/// skipped.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    /// The header cells, trimmed.
    pub headers: Vec<String>,
    /// The header's row number (1 unless an XLSX sheet starts lower).
    pub header_row: usize,
    /// The data rows.
    pub rows: Vec<Row>,
}

/// The kinds of file the loader reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// Comma- (or configured-delimiter-) separated text.
    Csv,
    /// An Office Open XML workbook.
    Xlsx,
}

impl FileKind {
    /// The kind named by a file name's extension (case-insensitive).
    pub fn from_path(path: &std::path::Path) -> Result<Self, LoadError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        match ext.as_str() {
            "csv" | "txt" => Ok(Self::Csv),
            "xlsx" | "xlsm" => Ok(Self::Xlsx),
            _ => Err(LoadError::UnsupportedFormat(path.display().to_string())),
        }
    }
}

/// Reads a whole file's bytes as a table.
pub fn read_table(bytes: &[u8], kind: FileKind, config: &LoadConfig) -> Result<Table, LoadError> {
    match kind {
        FileKind::Csv => read_csv(bytes, config),
        FileKind::Xlsx => read_xlsx(bytes, config),
    }
}

/// Decodes CSV bytes to text: UTF-8 (BOM dropped) or GB18030.
fn decode(bytes: &[u8], encoding: CsvEncoding) -> Result<String, LoadError> {
    let utf8 = |b: &[u8]| {
        let b = b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b);
        std::str::from_utf8(b).map(str::to_owned)
    };
    let gb = |b: &[u8]| {
        let (text, _, had_errors) = encoding_rs::GB18030.decode(b);
        if had_errors {
            Err(LoadError::Encoding("GB18030/GBK"))
        } else {
            Ok(text.into_owned())
        }
    };
    match encoding {
        CsvEncoding::Utf8 => utf8(bytes).map_err(|_| LoadError::Encoding("UTF-8")),
        CsvEncoding::Gb18030 => gb(bytes),
        CsvEncoding::Auto => utf8(bytes).or_else(|_| gb(bytes)),
    }
}

fn read_csv(bytes: &[u8], config: &LoadConfig) -> Result<Table, LoadError> {
    let text = decode(bytes, config.encoding)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(u8::try_from(config.delimiter).unwrap_or(b','))
        .from_reader(text.as_bytes());
    let mut raw = Vec::new();
    // A spreadsheet shows every line as a row, blank ones included, but a quoted cell's line
    // breaks stay inside one row. The csv crate skips blank lines, so the row is counted here:
    // line breaks before the record's first byte, less those quoted inside earlier records.
    let bytes = text.as_bytes();
    let (mut scanned, mut breaks, mut quoted_breaks) = (0usize, 0usize, 0usize);
    for record in reader.records() {
        let record = record.map_err(LoadError::Csv)?;
        let mut start = record
            .position()
            .map_or(0, |p| usize::try_from(p.byte()).unwrap_or(usize::MAX))
            .min(bytes.len());
        // The position may point at the previous record's line terminator.
        while start < bytes.len() && matches!(bytes[start], b'\r' | b'\n') {
            start += 1;
        }
        if start > scanned {
            breaks += line_breaks(&bytes[scanned..start]);
            scanned = start;
        }
        let number = breaks.saturating_sub(quoted_breaks) + 1;
        quoted_breaks += record.iter().map(line_breaks_str).sum::<usize>();
        let cells: Vec<Cell> = record.iter().map(|c| Cell::Text(c.to_owned())).collect();
        raw.push((number, cells));
    }
    into_table(raw, &config.columns.user_id)
}

/// Line breaks as a spreadsheet counts them: `\n`, `\r\n`, or a lone `\r`.
fn line_breaks(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .enumerate()
        .filter(|(i, b)| **b == b'\n' || (**b == b'\r' && bytes.get(i + 1) != Some(&b'\n')))
        .count()
}

fn line_breaks_str(text: &str) -> usize {
    line_breaks(text.as_bytes())
}

fn read_xlsx(bytes: &[u8], config: &LoadConfig) -> Result<Table, LoadError> {
    let mut book: Xlsx<_> =
        calamine::open_workbook_from_rs(Cursor::new(bytes)).map_err(LoadError::Xlsx)?;
    let names = book.sheet_names();
    let sheet = match &config.sheet {
        Some(wanted) if names.contains(wanted) => wanted.clone(),
        Some(wanted) => {
            return Err(LoadError::NoSuchSheet {
                wanted: wanted.clone(),
                available: names,
            });
        }
        None => names.first().cloned().ok_or(LoadError::Empty)?,
    };
    let range = book.worksheet_range(&sheet).map_err(LoadError::Xlsx)?;
    let (first_row, first_col) = range.start().unwrap_or((0, 0));
    let mut raw = Vec::new();
    for (index, row) in range.rows().enumerate() {
        // Columns left of the used range are empty; keep indices aligned with what Excel shows.
        let mut cells = vec![Cell::Text(String::new()); first_col as usize];
        cells.extend(row.iter().map(xlsx_cell));
        raw.push((first_row as usize + index + 1, cells));
    }
    into_table(raw, &config.columns.user_id)
}

/// Builds the table from the non-blank rows: the header is the first row holding the
/// configured user-id header (HR exports often put a title or notes above it), or the first
/// row when none does, so the missing columns are reported against what the file has.
fn into_table(raw: Vec<(usize, Vec<Cell>)>, key_header: &str) -> Result<Table, LoadError> {
    let mut raw: Vec<(usize, Vec<Cell>)> = raw
        .into_iter()
        .filter(|(_, cells)| {
            !cells
                .iter()
                .all(|c| matches!(c, Cell::Text(t) if t.trim().is_empty()))
        })
        .collect();
    let clean = |c: &Cell| {
        c.text()
            .trim()
            .trim_start_matches('\u{feff}')
            .trim()
            .to_owned()
    };
    let header_at = raw
        .iter()
        .position(|(_, cells)| cells.iter().any(|c| clean(c) == key_header.trim()))
        .unwrap_or(0);
    if raw.is_empty() {
        return Err(LoadError::Empty);
    }
    let rows = raw.split_off(header_at + 1);
    let (header_row, header_cells) = raw.pop().ok_or(LoadError::Empty)?;
    Ok(Table {
        headers: header_cells.iter().map(clean).collect(),
        header_row,
        rows: rows
            .into_iter()
            .map(|(number, cells)| Row { number, cells })
            .collect(),
    })
}

fn xlsx_cell(data: &Data) -> Cell {
    match data {
        Data::Empty => Cell::Text(String::new()),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => Cell::Text(s.clone()),
        Data::Int(i) => Cell::Text(i.to_string()),
        // A mobile number typed into a general cell is a float; Excel shows it without ".0".
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => Cell::Text(format!("{f:.0}")),
        Data::Float(f) => Cell::Text(f.to_string()),
        Data::Bool(b) => Cell::Text(b.to_string()),
        Data::DateTime(dt) => {
            let (y, m, d, ..) = dt.to_ymd_hms_milli();
            match NaiveDate::from_ymd_opt(i32::from(y), u32::from(m), u32::from(d)) {
                Some(date) if dt.is_datetime() => Cell::Date(date),
                _ => Cell::Text(dt.as_f64().to_string()),
            }
        }
        Data::Error(e) => Cell::Text(format!("#{e:?}")),
    }
}
