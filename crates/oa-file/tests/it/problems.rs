//! Every problem type, reported at once with the row and column the spreadsheet shows.

use oa_file::{FileKind, load_bytes};

use crate::helpers::{HEADER, cells, config, load_csv};

#[test]
fn every_problem_is_reported_with_its_row_and_column() {
    let rows = [
        "boss,老板,13900000001,boss@example.cn,B1,总经理,总部,,2015-03-01,",
        "badmobile,手机错,12345,,B2,,总部/销售部,boss,,",
        "boss,重复工号,13900000003,,B3,,总部/销售部,,,",
        "dupmobile,重复手机,13900000001,,B4,,总部/销售部,,,",
        "dupemail,重复邮箱,13900000005,BOSS@example.cn,B5,,总部/销售部,,,",
        "orphan,无上级,13900000006,,B6,,总部/销售部,nobody,,",
        "baddate,日期错,13900000007,,B7,,总部/销售部,,2020-13-45,",
        "ctrl,张\u{7}三,13900000008,,B8,,总部/销售部,,,",
        "baddept,部门错,13900000009,,B9,,总部/华东-一区,,,",
        "noname,,13900000010,,B10,,总部/销售部,,,",
        "noroot,根错,13900000011,,B11,,分公司/销售部,,,",
        "nomobile,无手机,,,B12,,总部/销售部,,,",
        "bademail,邮箱错,13900000013,not-an-email,B13,,总部/销售部,,,",
    ];
    let loaded = load_csv(&format!("{HEADER}\n{}\n", rows.join("\n")));
    let got = cells(&loaded.problems);
    let want = [
        (3, "手机号"),
        (4, "员工ID"),
        (5, "手机号"),
        (6, "邮箱"),
        (7, "直属上级"),
        (8, "入职日期"),
        (9, "姓名"),
        (10, "部门"),
        (11, "姓名"),
        (12, "部门"),
        (13, "手机号"),
        (14, "邮箱"),
    ];
    assert_eq!(got, want, "{:#?}", loaded.problems);
    let reason = |row: usize| {
        &loaded
            .problems
            .iter()
            .find(|p| p.row == row)
            .expect("row")
            .reason
    };
    assert!(reason(4).contains("row 2"), "{}", reason(4));
    assert!(reason(7).contains("nobody"));
    assert!(reason(8).contains("2020-13-45"));
    assert!(reason(9).contains("U+0007"));
    assert!(reason(10).contains("华东-一区"));
    assert!(reason(12).contains("总部"));
    // Only the good row is in the plan, and the plan is withheld while problems remain.
    assert_eq!(loaded.plan.users.len(), 1);
    assert_eq!(loaded.clone().into_plan().expect_err("problems").len(), 12);
}

#[test]
fn missing_columns_are_reported_on_the_header_row() {
    let mut config = config();
    config.columns.email = Some("电子邮件".into());
    config
        .columns
        .extension
        .insert("座机".into(), "座机".into());
    let text = format!("{HEADER}\nboss,老板,13900000001,,B1,,总部,,,\n");
    let loaded = load_bytes(text.as_bytes(), FileKind::Csv, &config).expect("load");
    assert_eq!(cells(&loaded.problems), [(1, "座机"), (1, "电子邮件")]);
    assert!(loaded.problems[1].reason.contains("load.columns.email"));
}

#[test]
fn manager_cycles_are_refused() {
    let text = format!(
        "{HEADER}\na,甲,13900000001,,,,总部,b,,\nb,乙,13900000002,,,,总部,a,,\nc,丙,13900000003,,,,总部,c,,\n"
    );
    let loaded = load_csv(&text);
    assert_eq!(
        cells(&loaded.problems),
        [
            (2, "直属上级"),
            (3, "直属上级"),
            (4, "直属上级"),
            (4, "直属上级")
        ],
        "{:#?}",
        loaded.problems
    );
}

#[test]
fn bad_config_names_every_key() {
    let mut config = config();
    config.columns.department_id = Some("部门ID".into());
    config.date_format = "%Q".into();
    config.path_separator = String::new();
    let err = load_bytes(b"x", FileKind::Csv, &config).expect_err("config");
    let text = err.to_string();
    for key in ["department_path", "date_format", "path_separator"] {
        assert!(text.contains(key), "{key} in {text}");
    }
}
