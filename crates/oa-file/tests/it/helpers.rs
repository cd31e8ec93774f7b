//! The config the fixtures are written for, and small readers.

use std::path::PathBuf;

use oa_file::{FileKind, LoadConfig, Loaded, Problem};

pub const HEADER: &str = "员工ID,姓名,手机号,邮箱,工号,职位,部门,直属上级,入职日期,工位";

/// The crate's documented example config, which the fixtures are written for.
pub fn config() -> LoadConfig {
    let text = include_str!("../../load.example.toml");
    let config: LoadConfig = toml::from_str::<toml::Table>(text)
        .expect("toml")
        .remove("load")
        .expect("[load]")
        .try_into()
        .expect("config");
    config.check().expect("the example passes its own check");
    config
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
