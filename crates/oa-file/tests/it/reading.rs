//! Realistic fixtures in UTF-8 (with BOM), GBK and XLSX read to the same plan.

use directory_model::{Mobile, OaDeptId, OaUserId};
use oa_file::{FileKind, LoadPlan, derived_dept_id, load_bytes, load_path};

use crate::helpers::{HEADER, config, fixture};

fn path(s: &str) -> Vec<String> {
    s.split('/').map(str::to_owned).collect()
}

fn check_fixture_plan(plan: &LoadPlan) {
    assert_eq!(plan.users.len(), 20);
    assert_eq!(plan.departments.len(), 14);
    // Parent first.
    for (i, d) in plan.departments.iter().enumerate() {
        let parent = d.department.parent.expect("parent");
        assert!(
            parent == OaDeptId(1)
                || plan.departments[..i]
                    .iter()
                    .any(|p| p.department.id == parent),
            "{:?} before its parent",
            d.path
        );
    }
    let shanghai = derived_dept_id(OaDeptId(1), &path("销售部/华东/上海"));
    let chen = plan
        .users
        .iter()
        .find(|u| u.user.id == OaUserId::new("chenjing"))
        .expect("chenjing");
    assert_eq!(chen.row, 6);
    assert_eq!(chen.user.name, "陈静");
    assert_eq!(chen.user.main_department, Some(shanghai));
    assert_eq!(chen.user.departments[0].title.as_deref(), Some("销售代表"));
    assert_eq!(chen.user.manager, Some(OaUserId::new("lina")));
    assert_eq!(chen.user.extension["工位"], "B-203");
    // 2020-11-02 00:00 at UTC+8.
    assert_eq!(chen.user.hired_date_ms, Some(1_604_246_400_000));
    let boss = &plan.users[0];
    assert_eq!(boss.user.id, OaUserId::new("zhangwei"));
    assert_eq!(boss.user.main_department, Some(OaDeptId(1)));
    let luo = plan
        .users
        .iter()
        .find(|u| u.user.id == OaUserId::new("luoping"))
        .expect("luoping");
    assert_eq!(luo.user.mobile, Some(Mobile::parse("+852-91234567")));
    // Every manager comes before the people they manage.
    for (i, u) in plan.users.iter().enumerate() {
        if let Some(m) = &u.user.manager {
            assert!(
                plan.users[..i].iter().any(|p| &p.user.id == m),
                "{m} after {}",
                u.user.id
            );
        }
    }
}

#[test]
fn utf8_csv_with_bom() {
    let loaded = load_path(&fixture("staff-utf8.csv"), &config()).expect("load");
    assert_eq!(loaded.problems, vec![]);
    assert_eq!(loaded.rows, 20);
    check_fixture_plan(&loaded.plan);
}

#[test]
fn gbk_csv_reads_to_the_same_plan() {
    let utf8 = load_path(&fixture("staff-utf8.csv"), &config()).expect("utf8");
    let gbk = load_path(&fixture("staff-gbk.csv"), &config()).expect("gbk");
    assert_eq!(gbk.problems, vec![]);
    assert_eq!(gbk.plan, utf8.plan);
}

#[test]
fn forced_utf8_refuses_gbk_bytes() {
    let mut config = config();
    config.encoding = oa_file::CsvEncoding::Utf8;
    let bytes = std::fs::read(fixture("staff-gbk.csv")).expect("read");
    let err = load_bytes(&bytes, FileKind::Csv, &config).expect_err("not utf-8");
    assert!(err.to_string().contains("UTF-8"), "{err}");
}

/// Writes the UTF-8 fixture as a workbook: numbers as numbers, dates as date cells, the
/// header on row 3 under a title row, as HR exports often do.
fn fixture_xlsx() -> Vec<u8> {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let text = std::fs::read_to_string(fixture("staff-utf8.csv")).expect("read");
    let text = text.trim_start_matches('\u{feff}');
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("花名册").expect("name");
    sheet
        .write_string(0, 0, "员工花名册 2026-12")
        .expect("title");
    let date = Format::new().set_num_format("yyyy-mm-dd");
    for (r, line) in text.lines().enumerate() {
        let row = r as u32 + 2;
        for (c, cell) in line.split(',').enumerate() {
            let c = c as u16;
            if r > 0 && c == 8 {
                let d = ExcelDateTime::parse_from_str(cell).expect("date");
                sheet
                    .write_datetime_with_format(row, c, &d, &date)
                    .expect("write");
            } else if r > 0 && c == 2 && !cell.starts_with('+') {
                sheet
                    .write_number(row, c, cell.parse::<f64>().expect("mobile"))
                    .expect("write");
            } else if !cell.is_empty() {
                sheet.write_string(row, c, cell).expect("write");
            }
        }
    }
    book.save_to_buffer().expect("save")
}

#[test]
fn xlsx_reads_to_the_same_plan_with_spreadsheet_row_numbers() {
    let utf8 = load_path(&fixture("staff-utf8.csv"), &config()).expect("utf8");
    let bytes = fixture_xlsx();
    let loaded = load_bytes(&bytes, FileKind::Xlsx, &config()).expect("xlsx");
    assert_eq!(loaded.problems, vec![]);
    // The header is on row 3, so every data row is two further down than in the CSV.
    let mut shifted = utf8.plan.clone();
    shifted.users.iter_mut().for_each(|u| u.row += 2);
    shifted
        .departments
        .iter_mut()
        .for_each(|d| d.first_row += 2);
    assert_eq!(loaded.plan, shifted);
}

#[test]
fn xlsx_missing_sheet_is_named() {
    let mut config = config();
    config.sheet = Some("员工".into());
    let err = load_bytes(&fixture_xlsx(), FileKind::Xlsx, &config).expect_err("no sheet");
    assert!(err.to_string().contains("花名册"), "{err}");
}

#[test]
fn header_only_and_empty_files() {
    let loaded = crate::helpers::load_csv(&format!("{HEADER}\n"));
    assert!(loaded.problems.is_empty());
    assert!(loaded.plan.users.is_empty());
    let err = load_bytes(b"", FileKind::Csv, &config()).expect_err("empty");
    assert!(matches!(err, oa_file::LoadError::Empty));
}

#[test]
fn csv_row_numbers_count_blank_lines_and_not_quoted_line_breaks() {
    let text =
        format!("{HEADER}\na,甲,13900000001,,,\"备注\n第二行\",总部,,,\n\nb,乙,12345,,,,总部,,,\n");
    let loaded = crate::helpers::load_csv(&text);
    // Row 2 holds a cell with a line break; row 3 is blank; b is on row 4.
    assert_eq!(
        crate::helpers::cells(&loaded.problems)[..],
        [(2, "职位"), (4, "手机号")]
    );
}
