//! The real `dingsync` binary (or any program) as a child process with a clean environment.
//!
//! Why: the service reads `DINGSYNC_<SECTION>__<KEY>` variables and `RUST_LOG` over its config
//! file, so a variable in the environment of whoever runs the tests would silently change what a
//! test runs. A test that wants such a variable sets it on the returned command. The path of the
//! binary comes from the caller (`env!("CARGO_BIN_EXE_dingsync")` exists only in dingsync's own
//! tests), so this crate does not depend on the binary's crate.

use std::ffi::OsStr;
use std::process::Stdio;

use tokio::process::Command;

/// `program` with no `DINGSYNC_*` and no `RUST_LOG` variable from the test's environment, no
/// stdin, and killed when the handle is dropped (a failing test leaves no process behind).
pub fn clean_command(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("DINGSYNC_") {
            command.env_remove(key);
        }
    }
    command
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}
