//! The simulator's integration tests, over real HTTP and WebSocket on port-0 listeners.
//!
//! One test binary per crate (issue 14): each former `tests/<name>.rs` is the module `<name>`
//! here, so a test once run as `--test <name> <test>` is now `--test it <name>::<test>`. One
//! binary links the crate and its dependencies once instead of once per file. No test needs a
//! binary of its own: nextest runs every test in its own process, so process-wide state (a
//! metrics recorder, a tracing default) cannot leak between tests; `.config/nextest.toml`
//! still runs the heavy modules one at a time.

mod admin;
mod common;
mod departments;
mod fidelity;
mod gateway;
mod orgs;
mod pushes;
mod roles;
mod stream;
mod tokens;
mod unions;
mod users;
