//! `dingsync demo`, the README's first command, run as a user runs it: the real binary, on
//! embedded defaults, must converge both ways and exit 0 — over HTTP push and over Stream.

use std::process::Command;

fn run_demo(events: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dingsync"))
        .args([
            "demo",
            "--users",
            "150",
            "--qps",
            "200",
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
