//! The service's integration tests: the OA API in-process, and the real `dingsync` binary as a
//! child process (started, SIGKILLed, restarted) against the simulator and real databases.
//!
//! One test binary per crate (issue 14): each former `tests/<name>.rs` is the module `<name>`
//! here, so a test once run as `--test <name> <test>` is now `--test it <name>::<test>`. One
//! binary links the crate and its dependencies once instead of once per file. No test needs a
//! binary of its own: nextest runs every test in its own process, so process-wide state (a
//! metrics recorder, a tracing default) cannot leak between tests; `.config/nextest.toml`
//! still runs the heavy modules one at a time.

mod api_bodies;
mod bench;
mod bench_mapping;
mod callback_load;
mod cli_flow;
mod common;
mod console;
mod crash_anywhere;
mod crash_intake;
mod demo;
mod faults;
mod hostile_api;
mod hostile_callbacks;
mod listeners;
mod load;
mod mapping_e2e;
mod multi_instance;
mod oa_api;
mod one_shot_budget;
mod packaging;
mod refused_writes;
mod reports;
mod scim;
mod secret_logs;
mod serve;
mod sim_cli;
mod stream;
mod stream_crash;
mod support;
