//! The secret values the test suite configures, in one list, for two greps:
//! - `scripts/test.sh` keeps the output of every test of a full run and fails if any value
//!   listed between the `BEGIN`/`END` markers below appears in it (it reads this file, so the
//!   list has one quoted value per line);
//! - dingsync's `tests/it/secret_logs.rs` runs the real binary at `RUST_LOG=trace` through its
//!   error paths and greps its output for these values and for the access tokens the simulator
//!   issued.
//!
//! Why a list rather than a marker substring: the values are those the tests already use
//! (DingTalk's published test vectors, the simulator's default secret, the OA API's test token),
//! and renaming them in every test would touch code other suites own. A new test secret belongs
//! here. Values short or common enough to occur by chance (DingTalk's sample token `123456`)
//! are left out: a grep for them would fail on ids, not on leaks.

/// Every secret value a test configures that is distinctive enough to grep for.
pub const TEST_SECRETS: &[&str] = &[
    // BEGIN test secrets (scripts/test.sh reads the quoted values up to END)
    "dingsimclientsecret",
    "crashtesttoken42",
    "Zq3xV9kLm2Pw8Rt5Yb1Nc7Hd4Jf6Gs0Ae2Ui9Oo3Kl7",
    "oa-api-token-Hq8Wz3Lp9Xc2Vb7N",
    "test-token-0123456789abcdef",
    "flow-test-client-secret",
    "wrong-secret-value",
    "wrongsecretvalue",
    "topsecretvalue",
    "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus",
    "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7",
    "1234567890123456789012345678901234567890123",
    "trace-wrong-client-secret-Kp4s",
    "trace-oa-token-Vn7q2Lx9",
    "probe-token-not-a-secret",
    // END test secrets
];

/// The secrets (from [`TEST_SECRETS`] and `extra`) that occur in `text`.
pub fn leaked(text: &str, extra: &[String]) -> Vec<String> {
    TEST_SECRETS
        .iter()
        .map(|s| (*s).to_owned())
        .chain(extra.iter().cloned())
        .filter(|s| !s.is_empty() && text.contains(s.as_str()))
        .collect()
}
