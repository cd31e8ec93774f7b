//! Unit tests of the stream client's pure parts: backoff, the inbox payload, names, redaction.
//! The socket-level behaviour is tested against the simulator in `tests/stream.rs`.

use std::collections::BTreeSet;

use super::*;

#[test]
fn backoff_grows_caps_and_jitters_within_the_upper_half() {
    let b = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(2),
        multiplier: 2.0,
    };
    let mut rng = StdRng::seed_from_u64(9);
    for (failures, full) in [
        (1, 100u64),
        (2, 200),
        (3, 400),
        (5, 1600),
        (6, 2000),
        (40, 2000),
    ] {
        for _ in 0..50 {
            let d = b.delay(failures, &mut rng);
            let full = Duration::from_millis(full);
            assert!(d <= full && d >= full / 2, "{failures}: {d:?} vs {full:?}");
        }
    }
    let draws: BTreeSet<Duration> = (0..20).map(|_| b.delay(6, &mut rng)).collect();
    assert!(draws.len() > 10, "jitter varies the waits");
    let same = |seed| {
        let mut r = StdRng::seed_from_u64(seed);
        (0..5).map(|n| b.delay(n, &mut r)).collect::<Vec<_>>()
    };
    assert_eq!(same(3), same(3), "the RNG passed in decides the jitter");
}

#[test]
fn inbox_rows_parse_back_to_the_same_event_with_the_inbox_workers_reader() {
    let headers = StreamEventHeaders {
        event_id: Some("c7c7120f2c07419aebdba0318c8".into()),
        event_type: Some("user_add_org".into()),
        event_corp_id: Some("ding9f50b15b16741".into()),
        event_born_time: Some("1683533823336".into()),
    };
    for (event_type, data) in [
        (
            "user_add_org",
            r#"{"timeStamp":"1685501863357","userId":["015227"]}"#,
        ),
        ("org_dept_remove", r#"{"deptId":[5,6]}"#),
        (
            "label_user_change",
            r#"{"userIdList":["a"],"labelIdList":[9],"action":"add"}"#,
        ),
        (
            "label_conf_modify",
            r#"{"postLabelList":["{\"id\":9,\"name\":\"b\"}"],"preLabelList":["{\"id\":9,\"name\":\"a\"}"],"scope":"1","labelIdList":[9]}"#,
        ),
        ("org_change", "{}"),
    ] {
        let headers = StreamEventHeaders {
            event_type: Some(event_type.into()),
            ..headers.clone()
        };
        let from_stream = ContactEvent::from_stream(&headers, data).expect("stream parse");
        let row = directory_store::InboxEvent {
            id: 1,
            dedupe_key: dedupe_key(headers.event_id.as_deref(), data),
            event_type: event_type.into(),
            payload_json: inbox_payload(&headers, data),
            received_at_ms: 0,
            state: directory_store::QueueState::Pending,
            attempts: 0,
            next_attempt_at_ms: 0,
            claimed_by: None,
            claimed_until_ms: None,
            last_error: None,
        };
        let read = sync_engine::apply::parse_inbox_event(&row).expect("the worker reads it");
        assert_eq!(read, from_stream, "{event_type}: {}", row.payload_json);
        assert_eq!(read.born_at_ms, Some(1_683_533_823_336));
        // The key a parsed Stream event is stored under is the change's, as on the HTTP path.
        let key = from_stream.dedupe_key(&row.payload_json);
        assert!(
            key.starts_with(&format!("change:{event_type}:1683533823336:")),
            "{key}"
        );
    }
    assert_eq!(
        dedupe_key(Some("abc"), "x"),
        "event:abc",
        "same key format as the HTTP receiver"
    );
    assert!(dedupe_key(None, "x").starts_with("sha256:"));
}

#[test]
fn the_new_api_host_follows_the_legacy_one() {
    assert_eq!(
        api_base_for("https://oapi.dingtalk.com/"),
        "https://api.dingtalk.com"
    );
    assert_eq!(
        api_base_for("http://127.0.0.1:8080/"),
        "http://127.0.0.1:8080"
    );
}

#[test]
fn config_debug_hides_the_secret() {
    let cfg = StreamConfig::new("http://x", "id", "topsecretvalue");
    assert!(!format!("{cfg:?}").contains("topsecretvalue"));
}
