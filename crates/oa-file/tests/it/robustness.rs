//! Never a panic on any input, and the 100,000-row throughput figure.

use std::time::Instant;

use oa_file::{FileKind, load_bytes};
use proptest::prelude::*;

use crate::helpers::{HEADER, config};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = load_bytes(&bytes, FileKind::Csv, &config());
        let _ = load_bytes(&bytes, FileKind::Xlsx, &config());
    }

    #[test]
    fn random_rows_under_a_real_header_never_panic(
        rows in proptest::collection::vec(
            proptest::collection::vec("[^\n\"]{0,12}|总部(/[\u{4e00}-\u{4e10}-,]{0,3}){0,4}", 0..12),
            0..20,
        )
    ) {
        let mut text = format!("{HEADER}\n");
        for row in rows {
            text.push_str(&row.join(","));
            text.push('\n');
        }
        let loaded = load_bytes(text.as_bytes(), FileKind::Csv, &config());
        if let Ok(loaded) = loaded {
            // Every problem points at a data row or the header, and a column.
            for p in &loaded.problems {
                prop_assert!(p.row >= 1 && !p.column.is_empty());
            }
        }
    }
}

/// `cargo nextest run -p oa-file --run-ignored only throughput --no-capture`
#[test]
#[ignore = "measurement: prints rows/s for 100,000 rows"]
fn throughput_100k_rows() {
    let mut text = format!("{HEADER}\n");
    for i in 0..100_000u32 {
        let manager = if i == 0 {
            String::new()
        } else {
            format!("u{}", i / 10)
        };
        text.push_str(&format!(
            "u{i},员工{i},1{:010},u{i}@example.cn,J{i},工程师,总部/事业部{}/部门{}/小组{},{manager},2020-01-{:02},W{i}\n",
            i, i % 7, i % 50, i % 400, i % 28 + 1
        ));
    }
    let start = Instant::now();
    let table =
        oa_file::table::read_table(text.as_bytes(), FileKind::Csv, &config()).expect("read");
    let read = start.elapsed();
    let loaded = oa_file::load_table(&table, &config());
    let took = start.elapsed();
    assert_eq!(loaded.problems, vec![]);
    assert_eq!(loaded.plan.users.len(), 100_000);
    let plan = loaded.into_plan().expect("plan");
    let diff_start = Instant::now();
    let diff = plan.diff(&[], &[]);
    let diffed = diff_start.elapsed();
    assert_eq!(diff.create_users.len(), 100_000);
    println!(
        "oa-file: 100,000 rows ({} MB CSV, {} departments) in {:.2} s = {:.0} rows/s \
         (reading {:.2} s, rows to entities {:.2} s); diff against an empty directory {:.2} s",
        text.len() / 1_000_000,
        plan.departments.len(),
        took.as_secs_f64(),
        100_000.0 / took.as_secs_f64(),
        read.as_secs_f64(),
        (took - read).as_secs_f64(),
        diffed.as_secs_f64(),
    );
}
