//! Arbitrary request bodies against the OA API (issue 9 §4), in CI: the same check the cargo-fuzz
//! target `api_json` runs (`dingsync::api::probe`), fed by proptest instead of libFuzzer so every
//! CI run covers it. Three generators: raw bytes; JSON documents built from the fields the API
//! knows, with values of every type (so decoding gets past the syntax and meets wrong types,
//! unknown fields, nulls and out-of-range numbers); and documents nested deeper than the JSON
//! parser's recursion limit. Each answer must be a 2xx or a JSON 4xx, never a 5xx or a panic,
//! and a 400/422 must name the field at fault. `PROPTEST_CASES` raises the case count.

use dingsync::api::probe::{BODY_ROUTES, BodyProbe};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Field names the request types know (plus a few they do not), so generated objects hit real
/// fields with wrong values as often as unknown ones.
const FIELDS: &[&str] = &[
    "id",
    "name",
    "parent",
    "order",
    "managers",
    "hide",
    "outer",
    "departments",
    "dept",
    "title",
    "main_department",
    "manager",
    "job_number",
    "mobile",
    "email",
    "org_email",
    "telephone",
    "work_place",
    "hired_date_ms",
    "remark",
    "extension",
    "state",
    "group",
    "user",
    "role",
    "source_identifier",
    "__proto__",
    "",
    "名字",
];

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The properties' configuration. Saved failures live next to this file
/// (`api_bodies.proptest-regressions`) and are replayed before new cases: the default
/// persistence (`SourceParallel`) looks for a `main.rs` upwards and, since the tests are
/// modules of `tests/it/main.rs`, read `tests/proptest-regressions/api_bodies.txt` instead, so
/// the seeds saved here never ran again (the convergence test had the same fault).
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(256),
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::default()
    }
}

/// The saved failures are where the properties' configuration looks for them (a seed that is
/// never loaded is never replayed).
#[test]
fn saved_failures_are_replayed() {
    let persistence = config()
        .failure_persistence
        .expect("persistence configured");
    let seeds = persistence.load_persisted_failures2(Some(file!()));
    let saved = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/it/api_bodies.proptest-regressions"),
    )
    .expect("the regressions file");
    let lines = saved.lines().filter(|l| l.starts_with("cc ")).count();
    assert!(lines > 0, "no saved seed in the file");
    assert_eq!(seeds.len(), lines, "saved seeds found by the configuration");
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        Just(json!(0)),
        ".{0,40}".prop_map(Value::String),
        Just(Value::String("x".repeat(70_000))),
        Just(json!("13800000000")),
        Just(json!("active")),
    ]
}

fn document() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(FIELDS), inner), 0..8).prop_map(|pairs| {
                let mut m = Map::new();
                for (k, v) in pairs {
                    m.insert((*k).to_owned(), v);
                }
                Value::Object(m)
            }),
        ]
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_are_refused_cleanly(route in any::<u8>(), body in prop::collection::vec(any::<u8>(), 0..512)) {
        let probe = probe();
        if let Err(e) = probe.check(route, &body) {
            prop_assert!(false, "{} {}: {e}", BODY_ROUTES[usize::from(route) % BODY_ROUTES.len()].1, String::from_utf8_lossy(&body));
        }
    }

    #[test]
    fn json_documents_of_any_shape_are_answered_cleanly(route in any::<u8>(), doc in document()) {
        let probe = probe();
        let body = serde_json::to_vec(&doc).unwrap_or_default();
        if let Err(e) = probe.check(route, &body) {
            prop_assert!(false, "{} {doc}: {e}", BODY_ROUTES[usize::from(route) % BODY_ROUTES.len()].1);
        }
    }
}

thread_local! {
    /// One probe per test thread: opening a store per case would dominate the run time, and
    /// a directory that fills up as cases are accepted only adds state for later cases to meet.
    static PROBE: &'static BodyProbe = Box::leak(Box::new(
        BodyProbe::new().unwrap_or_else(|e| panic!("probe: {e}")),
    ));
}

fn probe() -> &'static BodyProbe {
    PROBE.with(|p| *p)
}

#[test]
fn deeply_nested_and_huge_documents_are_refused_with_a_field() {
    let probe = probe();
    for route in 0..BODY_ROUTES.len() {
        let route = u8::try_from(route).unwrap_or(0);
        // Far past serde_json's recursion limit (128), and not an object at all.
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let answer = probe
            .check(route, deep.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(answer.status, 400 | 422), "{}", answer.body);
        assert_eq!(answer.body["error"]["fields"][0]["field"], "body");
        let deep_object = format!("{}1{}", "{\"name\":".repeat(5_000), "}".repeat(5_000));
        let answer = probe
            .check(route, deep_object.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(answer.status, 400 | 422), "{}", answer.body);
        // Over the 1 MiB limit: 413 with the JSON error, whatever the content.
        let huge = format!("{{\"name\":\"{}\"}}", "x".repeat(1024 * 1024 + 10));
        let answer = probe
            .check(route, huge.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(answer.status, 413, "{}", answer.body);
        assert_eq!(answer.body["error"]["code"], "payload_too_large");
    }
}

#[test]
fn arrays_and_empty_keys_are_refused_naming_a_field() {
    let probe = probe();
    // serde reads a JSON array positionally into a struct; the API must not.
    let answer = probe
        .check(0, br#"[null, "Ops", 1]"#)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.status, 422, "{}", answer.body);
    assert_eq!(answer.body["error"]["fields"][0]["field"], "body");
    let answer = probe
        .check(0, br#"{"": 1, "name": "Ops", "parent": 1}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.status, 422, "{}", answer.body);
    assert_eq!(answer.body["error"]["fields"][0]["field"], "\"\"");
}

#[test]
fn a_known_field_with_a_wrong_type_is_named_by_its_path() {
    let probe = probe();
    // POST /api/v1/users with a department membership whose `dept` is a string.
    let body = json!({"id": "z", "name": "Z", "departments": [{"dept": "two"}]});
    let answer = probe
        .check(3, body.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.status, 422, "{}", answer.body);
    assert_eq!(
        answer.body["error"]["fields"][0]["field"], "departments[0].dept",
        "{}",
        answer.body
    );
}
