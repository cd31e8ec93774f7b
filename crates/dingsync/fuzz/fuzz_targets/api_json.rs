//! Arbitrary request bodies through the OA API's router must be answered with a 2xx or a JSON
//! 4xx that names the field at fault, never a 5xx or a panic (`dingsync::api::probe`).
#![no_main]

use std::sync::OnceLock;

use dingsync::api::probe::BodyProbe;
use libfuzzer_sys::fuzz_target;

/// One probe (runtime, router, SQLite directory) for the whole run: opening a store per input
/// would make the fuzzer measure SQLite's start-up instead of the API.
static PROBE: OnceLock<BodyProbe> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let probe = PROBE.get_or_init(|| BodyProbe::new().unwrap_or_else(|e| panic!("probe: {e}")));
    let Some((&route, body)) = data.split_first() else {
        return;
    };
    if let Err(broken) = probe.check(route, body) {
        panic!("{broken}");
    }
});
