//! What an administrator installs beside the binary (issue 18, "Packaging"): the Grafana
//! dashboard uses only metrics the service has, and the shell completions and the man page are
//! generated from the very command line the binary parses.

use std::path::PathBuf;
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn check_dashboard(dashboard: &std::path::Path) -> Output {
    let root = repo();
    Command::new("python3")
        .arg(root.join("packaging/check-dashboard.py"))
        .arg(dashboard)
        .arg("--source")
        .arg(root.join("crates"))
        .output()
        .expect("python3 runs packaging/check-dashboard.py")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn every_metric_the_grafana_dashboard_uses_exists() {
    let out = check_dashboard(&repo().join("packaging/grafana/dingsync.json"));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(" 0 missing"), "{}", text(&out));
}

#[test]
fn the_dashboard_check_catches_a_metric_that_does_not_exist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bogus = dir.path().join("bogus.json");
    std::fs::write(
        &bogus,
        r#"{"panels":[{"targets":[{"expr":"sum(rate(dingsync_no_such_metric_total[5m]))"},
            {"expr":"dingsync_queue_depth"}]}]}"#,
    )
    .expect("write");
    let out = check_dashboard(&bogus);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("missing: dingsync_no_such_metric_total"),
        "{}",
        text(&out)
    );
    assert!(
        !text(&out).contains("missing: dingsync_queue_depth"),
        "{}",
        text(&out)
    );
}

fn dingsync(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dingsync"))
        .args(args)
        .env_remove("DINGSYNC_CONFIG")
        .output()
        .expect("run dingsync")
}

#[test]
fn completions_and_man_page_come_from_the_cli_definition() {
    for shell in ["bash", "zsh", "fish"] {
        let out = dingsync(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", text(&out));
        let script = String::from_utf8_lossy(&out.stdout);
        for word in ["dingsync", "dead-letters", "load", "dry-run"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    let man = dingsync(&["man"]);
    assert!(man.status.success(), "{}", text(&man));
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH dingsync"),
        "{page}"
    );
    for word in ["serve", "reconcile", "load", "completions"] {
        assert!(page.contains(word), "the man page lacks {word}");
    }
    let unknown = dingsync(&["completions", "cmd.exe"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));
}
