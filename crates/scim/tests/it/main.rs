//! The scim crate's integration tests: one binary, one module per concern.
//! `quirks` replays real clients' request shapes; `patch_rfc` pins RFC 7644 §3.5.2 behaviour;
//! `laws` holds the property tests.

mod laws;
mod patch_rfc;
mod quirks;
mod support;
