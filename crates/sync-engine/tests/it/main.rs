//! The engine's integration tests, against the simulator over real HTTP and a real SQLite or
//! PostgreSQL directory.
//!
//! One test binary per crate (issue 14): each former `tests/<name>.rs` is the module `<name>`
//! here, so a test once run as `--test <name> <test>` is now `--test it <name>::<test>`. One
//! binary links the crate and its dependencies once instead of once per file. No test needs a
//! binary of its own: nextest runs every test in its own process, so process-wide state (a
//! metrics recorder, a tracing default) cannot leak between tests; `.config/nextest.toml`
//! still runs the heavy modules one at a time.

mod apply;
mod branch_copies;
mod catchup;
mod claim;
mod common;
mod concurrent_apply;
mod convergence;
mod echo;
mod exclusive;
mod import;
mod import_scope;
mod mapping;
mod measure;
mod multi_apply;
mod multi_push;
mod plan;
mod postgres;
mod push;
mod push_bench;
mod push_identity;
mod pushes;
mod recovery;
mod safety_nets;
mod shared_budget;
mod stale_fetch;
mod support;
