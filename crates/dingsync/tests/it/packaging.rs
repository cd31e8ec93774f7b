//! What an administrator installs beside the binary (issue 18, "Packaging"): the Grafana
//! dashboard uses only metrics the service has, the shell completions and the man page are
//! generated from the very command line the binary parses, and the container file (which no
//! engine here can build) is checked statically against the binary and its defaults.

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

/// The instructions of a Containerfile: (INSTRUCTION, arguments), continuation lines joined and
/// comments dropped (also inside a continued instruction, as the Dockerfile syntax says).
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let (instr, args) = current.split_once(' ').unwrap_or((current.as_str(), ""));
                out.push((instr.to_uppercase(), args.trim().to_owned()));
                current.clear();
            }
        }
    }
    out
}

/// The words of an exec-form (`["a", "b"]`) argument list.
fn exec_form(args: &str) -> Vec<String> {
    serde_json::from_str(args).unwrap_or_else(|e| panic!("not exec form: {args}: {e}"))
}

/// The container file cannot be built here (no container engine), so it is checked statically
/// against what the binary really has: a multi-stage build whose runtime stage is Debian slim,
/// the release binary copied from the build stage to the path the ENTRYPOINT runs, a non-root
/// user that exists, EXPOSE matching the listener the image configures and the default config,
/// a HEALTHCHECK on a route the service serves with a tool the image installs, and a CMD that
/// is a real subcommand.
#[test]
fn the_containerfile_builds_what_the_binary_needs() {
    let file = std::fs::read_to_string(repo().join("packaging/Containerfile"))
        .expect("packaging/Containerfile");
    let all = instructions(&file);
    let stages: Vec<usize> = all
        .iter()
        .enumerate()
        .filter(|(_, (i, _))| i == "FROM")
        .map(|(n, _)| n)
        .collect();
    assert!(stages.len() >= 2, "not a multi-stage build: {all:?}");
    let (build_from, build_name) = {
        let words: Vec<&str> = all[stages[0]].1.split_whitespace().collect();
        assert!(
            words.len() == 3 && words[1].eq_ignore_ascii_case("AS"),
            "the build stage is named: {words:?}"
        );
        (words[0].to_owned(), words[2].to_owned())
    };
    let runtime = &all[*stages.last().expect("a stage")..];
    let build = &all[stages[0]..stages[1]];
    let runtime_image = &runtime[0].1;
    assert!(
        runtime_image.contains("debian:") && runtime_image.ends_with("-slim"),
        "the runtime stage is Debian slim: {runtime_image}"
    );

    // The build stage's Rust is at least the workspace's rust-version.
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).expect("Cargo.toml");
    let msrv = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"').to_owned())
        .expect("workspace rust-version");
    let version_of =
        |v: &str| -> Vec<u32> { v.split('.').filter_map(|p| p.parse().ok()).collect() };
    let tag = build_from
        .rsplit_once(':')
        .map(|(_, t)| t.split('-').next().unwrap_or_default().to_owned())
        .expect("the build image is tagged");
    assert!(
        build_from.contains("rust:") && version_of(&tag) >= version_of(&msrv),
        "the build image {build_from} has Rust {msrv} or newer"
    );

    // The binary: built in release for the dingsync package, copied to the ENTRYPOINT's path.
    let run = build
        .iter()
        .filter(|(i, _)| i == "RUN")
        .map(|(_, a)| a.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        run.contains("cargo build --release") && run.contains("-p dingsync"),
        "{run}"
    );
    let copy = runtime
        .iter()
        .find(|(i, a)| i == "COPY" && a.starts_with("--from="))
        .map(|(_, a)| a.split_whitespace().collect::<Vec<_>>())
        .expect("the runtime stage copies from the build stage");
    assert_eq!(copy[0], format!("--from={build_name}"), "{copy:?}");
    let (built, installed) = (copy[1], copy[2]);
    assert!(
        run.contains(&format!("target/release/dingsync {built}")),
        "the build stage puts the binary at {built}: {run}"
    );
    let entrypoint = runtime
        .iter()
        .find(|(i, _)| i == "ENTRYPOINT")
        .map(|(_, a)| exec_form(a))
        .expect("ENTRYPOINT");
    assert_eq!(entrypoint, vec![installed.to_owned()]);

    // A non-root user that the runtime stage creates.
    let user = runtime
        .iter()
        .rfind(|(i, _)| i == "USER")
        .map(|(_, a)| a.split(':').next().unwrap_or_default().to_owned())
        .expect("USER");
    assert!(user != "root" && user != "0" && !user.is_empty(), "{user}");
    let runtime_run = runtime
        .iter()
        .filter(|(i, _)| i == "RUN")
        .map(|(_, a)| a.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        runtime_run.contains("useradd") && runtime_run.contains(&format!(" {user} ")),
        "the runtime stage creates {user}: {runtime_run}"
    );

    // EXPOSE is the port the image listens on, which is the default config's port.
    let listen = runtime
        .iter()
        .filter(|(i, _)| i == "ENV")
        .find_map(|(_, a)| a.strip_prefix("DINGSYNC_SERVER__LISTEN="))
        .map(|v| v.trim_matches('"').to_owned())
        .expect("ENV DINGSYNC_SERVER__LISTEN");
    let port = |addr: &str| -> u16 {
        addr.rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {addr}"))
    };
    let defaults = dingsync::config::Config::default();
    assert_eq!(
        port(&listen),
        port(&defaults.server.listen),
        "the image listens on the default port"
    );
    let mut expected = vec![port(&listen)];
    if !defaults.server.internal_listen.is_empty() {
        expected.push(port(&defaults.server.internal_listen));
    }
    let exposed: Vec<u16> = runtime
        .iter()
        .filter(|(i, _)| i == "EXPOSE")
        .flat_map(|(_, a)| {
            a.split_whitespace()
                .map(|p| port(&format!(":{}", p.trim_end_matches("/tcp"))))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(exposed, expected, "EXPOSE matches the default listeners");

    // HEALTHCHECK: a tool the image installs, on the listened port, on a route that exists.
    let health = runtime
        .iter()
        .find(|(i, _)| i == "HEALTHCHECK")
        .map(|(_, a)| a.clone())
        .expect("HEALTHCHECK");
    let cmd = exec_form(health.split_once("CMD").expect("HEALTHCHECK CMD").1.trim());
    assert!(
        runtime_run.contains(&format!("install -y --no-install-recommends {}", cmd[0]))
            || runtime_run.contains(&format!(" {} ", cmd[0])),
        "the image installs {}: {runtime_run}",
        cmd[0]
    );
    let url = cmd
        .iter()
        .find(|w| w.starts_with("http://"))
        .expect("a URL");
    let (authority, path) = url["http://".len()..].split_once('/').expect("a path");
    assert_eq!(port(authority), port(&listen), "{url}");
    let server =
        std::fs::read_to_string(repo().join("crates/dingsync/src/server.rs")).expect("server.rs");
    assert!(
        server.contains(&format!(".route(\"/{path}\"")),
        "the service serves /{path}"
    );

    // CMD names a real subcommand, and the default database lands in the WORKDIR volume.
    let cmd = runtime
        .iter()
        .find(|(i, _)| i == "CMD")
        .map(|(_, a)| exec_form(a))
        .expect("CMD");
    let help = dingsync(&[cmd[0].as_str(), "--help"]);
    assert!(
        help.status.success(),
        "`dingsync {}`: {}",
        cmd[0],
        text(&help)
    );
    let workdir = runtime
        .iter()
        .rfind(|(i, _)| i == "WORKDIR")
        .map(|(_, a)| a.clone())
        .expect("WORKDIR");
    let volume = runtime
        .iter()
        .find(|(i, _)| i == "VOLUME")
        .map(|(_, a)| exec_form(a))
        .expect("VOLUME");
    assert_eq!(volume, vec![workdir.clone()]);
    let db = defaults.database.url.expose().to_owned();
    assert!(
        db.starts_with("sqlite://") && !db["sqlite://".len()..].starts_with('/'),
        "the default database is relative to the WORKDIR ({workdir}): {db}"
    );
}

#[test]
fn the_containerfile_check_reads_continuations_and_comments() {
    let parsed = instructions("# c\nFROM a AS b\nRUN x \\\n  # inside\n  && y\n\nUSER u:u\n");
    assert_eq!(
        parsed,
        vec![
            ("FROM".into(), "a AS b".into()),
            ("RUN".into(), "x  && y".into()),
            ("USER".into(), "u:u".into()),
        ]
    );
}
