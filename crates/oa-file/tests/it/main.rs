//! oa-file's integration tests: one binary, modules per concern.

mod helpers;
mod problems;
mod reading;
mod rerun;
mod robustness;
