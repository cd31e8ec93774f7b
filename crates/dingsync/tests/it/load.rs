//! `dingsync load FILE [--dry-run]` with the real binary: a dry run lists every problem and
//! writes nothing, a real run writes through the OA write path (validated, queued in the outbox
//! like an API write), a re-run changes nothing; the same for an XLSX export (issue 18).

use std::path::{Path, PathBuf};
use std::process::Output;

use directory_model::{Department, OaDeptId};
use directory_store::{Store, WriteCtx};

const HEADER: &str = "员工ID,姓名,手机号,邮箱,工号,职位,部门,直属上级,入职日期,工位";

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../oa-file/tests/fixtures/staff-utf8.csv")
}

/// A config file: the database in `dir` and oa-file's documented `[load]` example.
fn write_config(dir: &Path) -> PathBuf {
    let db = format!("sqlite://{}?mode=rwc", dir.join("d.db").display());
    let example = include_str!("../../../oa-file/load.example.toml");
    let path = dir.join("dingsync.toml");
    std::fs::write(&path, format!("[database]\nurl = {db:?}\n\n{example}")).expect("config");
    path
}

/// The directory with its root department (what an import or the OA system makes first).
async fn store_with_root(dir: &Path) -> Store {
    let url = format!("sqlite://{}?mode=rwc", dir.join("d.db").display());
    let store = Store::connect(&url).await.expect("store");
    store
        .create_department(
            &WriteCtx::dingtalk("test", 0),
            Department::new(OaDeptId(1), "总部", None),
        )
        .await
        .expect("root");
    store
}

async fn load(config: &Path, file: &Path, dry_run: bool) -> Output {
    let mut cmd = testkit::process::clean_command(env!("CARGO_BIN_EXE_dingsync"));
    cmd.arg("--config").arg(config).arg("load").arg(file);
    if dry_run {
        cmd.arg("--dry-run");
    }
    cmd.output().await.expect("run dingsync load")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn sizes(store: &Store) -> (i64, i64, i64) {
    let (depts, users) = store.counts().await.expect("counts");
    let (_, outbox) = testkit::drain::queue_depths(store).await;
    (depts, users, outbox)
}

fn data_rows(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).expect("fixture");
    text.trim_start_matches('\u{feff}')
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

#[tokio::test]
async fn dry_run_lists_every_problem_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path());
    let store = store_with_root(dir.path()).await;
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        format!(
            "{HEADER}\nboss,老板,13900000001,,B1,总经理,总部,,2015-03-01,\n\
             badmobile,手机错,12345,,B2,,总部/销售部,boss,,\n\
             orphan,无上级,13900000006,,B6,,总部/销售部,nobody,,\n"
        ),
    )
    .expect("write");
    for dry_run in [true, false] {
        let out = load(&config, &bad, dry_run).await;
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let printed = text(&out);
        assert!(printed.contains("row 3, column 手机号"), "{printed}");
        assert!(printed.contains("row 4, column 直属上级"), "{printed}");
        assert!(printed.contains("2 problem(s)"), "{printed}");
        assert_eq!(
            sizes(&store).await,
            (1, 0, 0),
            "nothing written (dry run {dry_run})"
        );
    }
    let good = load(&config, &fixture(), true).await;
    assert!(good.status.success(), "{}", text(&good));
    let rows = data_rows(&fixture()).len();
    assert!(
        text(&good).contains(&format!("create {rows} user(s)")),
        "{}",
        text(&good)
    );
    assert_eq!(
        sizes(&store).await,
        (1, 0, 0),
        "a clean dry run writes nothing either"
    );
}

#[tokio::test]
async fn a_real_run_writes_like_the_api_and_a_rerun_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path());
    let store = store_with_root(dir.path()).await;
    let rows = data_rows(&fixture()).len() as i64;
    let first = load(&config, &fixture(), false).await;
    assert!(first.status.success(), "{}", text(&first));
    let (depts, users, outbox) = sizes(&store).await;
    assert_eq!(users, rows, "{}", text(&first));
    assert!(depts > 1, "departments made from the paths");
    assert_eq!(
        outbox,
        depts - 1 + users,
        "every write queued for DingTalk once"
    );
    let user = store
        .get_user(&directory_model::OaUserId::new("lina"))
        .await
        .expect("read")
        .expect("lina loaded");
    assert_eq!(
        user.entity.manager.as_ref().map(|m| m.as_str()),
        Some("wangfang")
    );

    let again = load(&config, &fixture(), false).await;
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("already holds"), "{}", text(&again));
    assert_eq!(
        sizes(&store).await,
        (depts, users, outbox),
        "a re-run changes nothing"
    );
}

#[tokio::test]
async fn an_xlsx_export_loads_the_same_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path());
    let store = store_with_root(dir.path()).await;
    let rows = data_rows(&fixture());
    let xlsx = dir.path().join("staff.xlsx");
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in HEADER.split(',').enumerate() {
        sheet.write_string(0, c as u16, h).expect("header");
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            if !v.is_empty() {
                sheet.write_string(r as u32 + 1, c as u16, v).expect("cell");
            }
        }
    }
    book.save(&xlsx).expect("save xlsx");
    let dry = load(&config, &xlsx, true).await;
    assert!(dry.status.success(), "{}", text(&dry));
    assert_eq!(sizes(&store).await, (1, 0, 0));
    let real = load(&config, &xlsx, false).await;
    assert!(real.status.success(), "{}", text(&real));
    let (_, users, _) = sizes(&store).await;
    assert_eq!(users, rows.len() as i64);
    let again = load(&config, &xlsx, false).await;
    assert!(text(&again).contains("already holds"), "{}", text(&again));
}
