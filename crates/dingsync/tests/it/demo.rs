//! `dingsync demo`, the README's first command, run as a user runs it: the real binary, on
//! embedded defaults, must converge both ways and exit 0 — over HTTP push and over Stream.

use std::process::Command;

fn run_demo(events: &str) -> (bool, String) {
    run_demo_with(events, "150")
}

fn run_demo_with(events: &str, users: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dingsync"))
        .args([
            "demo",
            "--users",
            users,
            "--qps",
            "1000",
            "--timeout-secs",
            "60",
            "--events",
            events,
        ])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (
        out.status.success(),
        format!("{stdout}\n--- stderr ---\n{stderr}"),
    )
}

#[test]
fn demo_converges_over_http_push() {
    let (ok, output) = run_demo("http");
    assert!(ok, "{output}");
    assert!(
        output.contains("no differences: OA and DingTalk agree"),
        "{output}"
    );
    for step in ["Demo Lab", "demo.alice", "dt.bob", "leaves the company"] {
        assert!(output.contains(step), "missing {step:?} in:\n{output}");
    }
}

#[test]
fn demo_converges_over_stream_mode() {
    let (ok, output) = run_demo("stream");
    assert!(ok, "{output}");
    assert!(output.contains("connected (see /readyz)"), "{output}");
    assert!(
        output.contains("no differences: OA and DingTalk agree"),
        "{output}"
    );
}

/// Issue 5's end-to-end bar: a 5,000-person organization imported, then every seed step pushed
/// from the OA API (department under a parent, role group, role, a user with title, manager,
/// role and extension), DingTalk-side changes arriving by events alone, and a full plan of both
/// sides that finds nothing to do.
#[test]
fn five_thousand_people_import_then_both_ways() {
    let (ok, output) = run_demo_with("http", "5000");
    assert!(ok, "{output}");
    assert!(output.contains("users:       5000 created"), "{output}");
    assert!(
        output.contains("no differences: OA and DingTalk agree"),
        "{output}"
    );
}
