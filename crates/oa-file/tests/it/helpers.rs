//! The config the fixtures are written for, and small readers.

use std::path::PathBuf;

use oa_file::{FileKind, LoadConfig, Loaded, Problem};

pub const HEADER: &str = "员工ID,姓名,手机号,邮箱,工号,职位,部门,直属上级,入职日期,工位";

pub fn config() -> LoadConfig {
    toml::from_str::<toml::Table>(
        r#"
        [load]
        root_department = 1
        root_segment = "总部"
        [load.columns]
        user_id = "员工ID"
        name = "姓名"
        mobile = "手机号"
        email = "邮箱"
        job_number = "工号"
        title = "职位"
        department_path = "部门"
        manager_id = "直属上级"
        hired_date = "入职日期"
        [load.columns.extension]
        "工位" = "工位"
        "#,
    )
    .expect("toml")
    .remove("load")
    .expect("section")
    .try_into()
    .expect("config")
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Loads CSV text (UTF-8) with the fixture config.
pub fn load_csv(text: &str) -> Loaded {
    oa_file::load_bytes(text.as_bytes(), FileKind::Csv, &config()).expect("load")
}

/// The problems as (row, column) pairs, for assertions.
pub fn cells(problems: &[Problem]) -> Vec<(usize, &str)> {
    problems
        .iter()
        .map(|p| (p.row, p.column.as_str()))
        .collect()
}
