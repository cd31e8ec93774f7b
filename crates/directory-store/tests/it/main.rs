//! The store's integration tests: the conformance suite and the rate slots, each case on SQLite and
//! on PostgreSQL.
//!
//! One test binary per crate (issue 14): each former `tests/<name>.rs` is the module `<name>`
//! here, so a test once run as `--test <name> <test>` is now `--test it <name>::<test>`. One
//! binary links the crate and its dependencies once instead of once per file. No test needs a
//! binary of its own: nextest runs every test in its own process, so process-wide state (a
//! metrics recorder, a tracing default) cannot leak between tests; `.config/nextest.toml`
//! still runs the heavy modules one at a time.

#[macro_use]
mod support;
mod conformance;
mod orgs;
mod schema;
mod slots;
mod upgrade;
