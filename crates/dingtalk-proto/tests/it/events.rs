//! Contacts event payloads transcribed from dingtalk-api.md §6, every type in every dialect:
//! (a) legacy HTTP, (b) new HTTP, (c) Stream headers + `data`.

use dingtalk_proto::events::{
    ContactEvent, EventError, EventKind, LabelAction, StreamEventHeaders, UserChange,
};
use dingtalk_proto::{DingDeptId, DingRoleId, DingUserId};
use serde_json::json;

const CORP: &str = "dingc7c5220f5f4ba8c1";

fn legacy(body: &str) -> ContactEvent {
    ContactEvent::from_http_json(body).unwrap_or_else(|e| panic!("{body}: {e:?}"))
}

fn stream(event_type: &str, data: &str) -> ContactEvent {
    let headers = StreamEventHeaders {
        event_id: Some("c7c7120f2c07419ebdba0318c8".into()),
        event_type: Some(event_type.into()),
        event_corp_id: Some(CORP.into()),
        event_born_time: Some("1683533823336".into()),
    };
    ContactEvent::from_stream(&headers, data).unwrap_or_else(|e| panic!("{data}: {e:?}"))
}

fn users(ids: &[&str], operator: Option<&str>) -> UserChange {
    UserChange {
        user_ids: uids(ids),
        operator: operator.map(DingUserId::new),
    }
}

fn uids(ids: &[&str]) -> Vec<DingUserId> {
    ids.iter().copied().map(DingUserId::new).collect()
}

fn depts(ids: &[i64]) -> Vec<DingDeptId> {
    ids.iter().copied().map(DingDeptId).collect()
}

fn roles(ids: &[i64]) -> Vec<DingRoleId> {
    ids.iter().copied().map(DingRoleId).collect()
}

// ---- (a) legacy HTTP ----------------------------------------------------------------------

#[test]
fn legacy_user_events_observed_shape() {
    let e = legacy(
        r#"{"CorpId":"dingc7c5220f5f4ba8c1","EventType":"user_add_org","UserId":["184919295227658120"],"OptStaffId":"manager164","TimeStamp":"1640921671286"}"#,
    );
    assert_eq!(e.event_id, None);
    assert_eq!(e.corp_id.as_deref(), Some(CORP));
    assert_eq!(e.born_at_ms, Some(1_640_921_671_286));
    assert_eq!(
        e.kind,
        EventKind::UserAddOrg(users(&["184919295227658120"], Some("manager164")))
    );

    for (ty, expect) in [
        ("user_modify_org", "user_modify_org"),
        ("user_leave_org", "user_leave_org"),
        ("user_active_org", "user_active_org"),
        ("org_admin_add", "org_admin_add"),
        ("org_admin_remove", "org_admin_remove"),
    ] {
        let body = format!(
            r#"{{"CorpId":"{CORP}","EventType":"{ty}","UserId":["u1","u2"],"TimeStamp":"1640921671286"}}"#
        );
        let e = legacy(&body);
        assert_eq!(e.kind.event_type(), expect);
        let change = match e.kind {
            EventKind::UserModifyOrg { change, diff } => {
                assert!(diff.is_empty());
                change
            }
            EventKind::UserLeaveOrg(c)
            | EventKind::UserActiveOrg(c)
            | EventKind::OrgAdminAdd(c)
            | EventKind::OrgAdminRemove(c) => c,
            other => panic!("{ty}: {other:?}"),
        };
        assert_eq!(change, users(&["u1", "u2"], None));
    }
}

#[test]
fn legacy_timestamp_may_be_a_number() {
    // The 2016 documentation example sends TimeStamp as a number.
    let e = legacy(
        r#"{"EventType":"user_leave_org","TimeStamp":1640921671286,"UserId":["u9"],"CorpId":"ding1"}"#,
    );
    assert_eq!(e.born_at_ms, Some(1_640_921_671_286));
}

#[test]
fn legacy_department_events() {
    for (ty, dept_ids) in [
        ("org_dept_create", vec![100_001_i64]),
        ("org_dept_modify", vec![100_001, 2]),
        ("org_dept_remove", vec![7]),
    ] {
        let body = json!({"CorpId": CORP, "EventType": ty, "DeptId": dept_ids, "TimeStamp": "1640921671286"});
        let e = legacy(&body.to_string());
        let got = match e.kind {
            EventKind::OrgDeptCreate { dept_ids }
            | EventKind::OrgDeptModify { dept_ids }
            | EventKind::OrgDeptRemove { dept_ids } => dept_ids,
            other => panic!("{ty}: {other:?}"),
        };
        assert_eq!(got, depts(&dept_ids), "{ty}");
        assert_eq!(e.corp_id.as_deref(), Some(CORP));
    }
}

#[test]
fn legacy_label_user_change() {
    let e = legacy(
        r#"{"CorpId":"ding1","EventType":"label_user_change","UserIdList":["u1","u2"],"LabelIdList":[2393865715],"action":"add","TimeStamp":"1640921671286"}"#,
    );
    assert_eq!(
        e.kind,
        EventKind::LabelUserChange {
            user_ids: uids(&["u1", "u2"]),
            label_ids: roles(&[2_393_865_715]),
            action: LabelAction::Add,
        }
    );
    let e = legacy(
        r#"{"CorpId":"ding1","EventType":"label_user_change","UserIdList":["u1"],"LabelIdList":[1],"action":"remove","TimeStamp":"1"}"#,
    );
    assert!(matches!(
        e.kind,
        EventKind::LabelUserChange {
            action: LabelAction::Remove,
            ..
        }
    ));
}

#[test]
fn legacy_label_conf_add_and_del() {
    let e = legacy(
        r#"{"CorpId":"ding1","EventType":"label_conf_add","LabelIdList":[2393865715],"scope":"1","TimeStamp":"1640921671286"}"#,
    );
    assert_eq!(
        e.kind,
        EventKind::LabelConfAdd {
            label_ids: roles(&[2_393_865_715]),
            scope: Some("1".into()),
        }
    );
    let e = legacy(
        r#"{"CorpId":"ding1","EventType":"label_conf_del","LabelIdList":[11,12],"scope":"1","TimeStamp":"1640921671286"}"#,
    );
    assert_eq!(
        e.kind,
        EventKind::LabelConfDel {
            label_ids: roles(&[11, 12]),
            scope: Some("1".into()),
        }
    );
}

#[test]
fn legacy_label_conf_modify_decodes_json_string_snapshots() {
    let body = json!({
        "CorpId": "ding1",
        "EventType": "label_conf_modify",
        "scope": "1",
        "PostLabelList": ["{\"hidden\":false,\"name\":\"财务\",\"id\":2393865715,\"extraInfo\":{}}"],
        "PreLabelList": ["{\"hidden\":false,\"deleted\":false,\"color\":-1,\"level\":1,\"scope\":1,\"parentId\":1507365040,\"name\":\"会计\",\"id\":2393865715,\"extraInfo\":{}}"],
        "TimeStamp": "1640921671286"
    });
    let e = legacy(&body.to_string());
    let EventKind::LabelConfModify {
        label_ids,
        scope,
        before,
        after,
    } = e.kind
    else {
        panic!("{:?}", e.kind);
    };
    assert!(label_ids.is_empty());
    assert_eq!(scope.as_deref(), Some("1"));
    assert_eq!(after[0].id, Some(DingRoleId(2_393_865_715)));
    assert_eq!(after[0].name.as_deref(), Some("财务"));
    assert_eq!(before[0].name.as_deref(), Some("会计"));
    assert_eq!(before[0].raw["parentId"], 1_507_365_040_i64);
}

#[test]
fn legacy_org_events_and_check_url() {
    let e = legacy(r#"{"CorpId":"ding1","EventType":"org_change","TimeStamp":"1640921671286"}"#);
    assert_eq!(e.kind, EventKind::OrgChange);
    let e = legacy(r#"{"CorpId":"ding1","EventType":"org_remove","TimeStamp":"1640921671286"}"#);
    assert_eq!(e.kind, EventKind::OrgRemove);
    let e = legacy(r#"{"EventType":"check_url"}"#);
    assert_eq!(
        e,
        ContactEvent {
            event_id: None,
            corp_id: None,
            kind: EventKind::CheckUrl,
            born_at_ms: None,
        }
    );
}

// ---- (b) new HTTP -------------------------------------------------------------------------

#[test]
fn new_http_user_add_org_from_the_docs() {
    let e = legacy(
        r#"{"EventType":"user_add_org","EventTime":1663143335567,"CorpId":"ding9f50b15b","BizId":"1663xx35567","eventId":"c7c7120f2c07","timeStamp":"1685501863357","userId":["015xxxx227"]}"#,
    );
    assert_eq!(e.event_id.as_deref(), Some("c7c7120f2c07"));
    assert_eq!(e.corp_id.as_deref(), Some("ding9f50b15b"));
    // EventTime (the event's birth) wins over the business timeStamp.
    assert_eq!(e.born_at_ms, Some(1_663_143_335_567));
    assert_eq!(e.kind, EventKind::UserAddOrg(users(&["015xxxx227"], None)));
}

/// Wraps lowerCamel business fields in the new HTTP meta.
fn new_http(ty: &str, business: serde_json::Value) -> ContactEvent {
    let mut body = json!({
        "EventType": ty, "EventTime": 1_663_143_335_567_i64, "CorpId": CORP,
        "BizId": "biz-1", "eventId": "evt-1",
    });
    let map = body.as_object_mut().expect("built as an object");
    for (k, v) in business.as_object().expect("callers pass objects") {
        map.insert(k.clone(), v.clone());
    }
    let e = legacy(&body.to_string());
    assert_eq!(e.event_id.as_deref(), Some("evt-1"), "{ty}");
    assert_eq!(e.born_at_ms, Some(1_663_143_335_567), "{ty}");
    e
}

#[test]
fn new_http_every_type() {
    let diff = json!({"userid": "u1", "prev": {"name": "张三"}, "curr": {"name": "张三丰"}});
    let cases: Vec<(&str, serde_json::Value, EventKind)> = vec![
        (
            "user_add_org",
            json!({"timeStamp": "1", "userId": ["u1"]}),
            EventKind::UserAddOrg(users(&["u1"], None)),
        ),
        (
            "user_leave_org",
            json!({"timeStamp": "1", "userId": ["u1"]}),
            EventKind::UserLeaveOrg(users(&["u1"], None)),
        ),
        (
            "user_active_org",
            json!({"userId": ["u1"]}),
            EventKind::UserActiveOrg(users(&["u1"], None)),
        ),
        (
            "org_admin_add",
            json!({"userId": ["u1"]}),
            EventKind::OrgAdminAdd(users(&["u1"], None)),
        ),
        (
            "org_admin_remove",
            json!({"userId": ["u1"]}),
            EventKind::OrgAdminRemove(users(&["u1"], None)),
        ),
        (
            "org_dept_create",
            json!({"deptId": [5]}),
            EventKind::OrgDeptCreate {
                dept_ids: depts(&[5]),
            },
        ),
        (
            "org_dept_modify",
            json!({"deptId": [5]}),
            EventKind::OrgDeptModify {
                dept_ids: depts(&[5]),
            },
        ),
        (
            "org_dept_remove",
            json!({"deptId": [5]}),
            EventKind::OrgDeptRemove {
                dept_ids: depts(&[5]),
            },
        ),
        (
            "label_user_change",
            json!({"userIdList": ["u1"], "labelIdList": [9], "action": "add"}),
            EventKind::LabelUserChange {
                user_ids: uids(&["u1"]),
                label_ids: roles(&[9]),
                action: LabelAction::Add,
            },
        ),
        (
            "label_conf_add",
            json!({"scope": "1", "labelIdList": [9]}),
            EventKind::LabelConfAdd {
                label_ids: roles(&[9]),
                scope: Some("1".into()),
            },
        ),
        (
            "label_conf_del",
            json!({"labelIdList": [9]}),
            EventKind::LabelConfDel {
                label_ids: roles(&[9]),
                scope: None,
            },
        ),
        ("org_change", json!({}), EventKind::OrgChange),
        ("org_remove", json!({}), EventKind::OrgRemove),
    ];
    for (ty, business, expected) in cases {
        assert_eq!(new_http(ty, business).kind, expected, "{ty}");
    }
    let e = new_http(
        "user_modify_org",
        json!({"timeStamp": "1", "userId": ["u1"], "diffInfo": diff}),
    );
    let EventKind::UserModifyOrg { change, diff } = e.kind else {
        panic!()
    };
    assert_eq!(change.user_ids, uids(&["u1"]));
    assert_eq!(diff[0].user_id, Some(DingUserId::new("u1")));
    assert_eq!(diff[0].prev["name"], "张三");
    assert_eq!(diff[0].curr["name"], "张三丰");

    let e = new_http(
        "label_conf_modify",
        json!({"postLabelList": ["{\"name\":\"b\",\"id\":9}"], "preLabelList": ["{\"name\":\"a\",\"id\":9}"], "scope": "1", "labelIdList": [9]}),
    );
    let EventKind::LabelConfModify {
        label_ids,
        before,
        after,
        ..
    } = e.kind
    else {
        panic!()
    };
    assert_eq!(label_ids, roles(&[9]));
    assert_eq!(
        (before[0].name.as_deref(), after[0].name.as_deref()),
        (Some("a"), Some("b"))
    );
}

// ---- (c) Stream ---------------------------------------------------------------------------

#[test]
fn stream_envelope_example_from_the_docs() {
    let e = stream(
        "user_add_org",
        r#"{"timeStamp":"1685501863357","userId":["015xxxx227"]}"#,
    );
    assert_eq!(e.event_id.as_deref(), Some("c7c7120f2c07419ebdba0318c8"));
    assert_eq!(e.corp_id.as_deref(), Some(CORP));
    // The envelope's eventBornTime wins over the data's timeStamp.
    assert_eq!(e.born_at_ms, Some(1_683_533_823_336));
    assert_eq!(e.kind, EventKind::UserAddOrg(users(&["015xxxx227"], None)));
}

#[test]
fn stream_every_type() {
    let cases: [(&str, &str, EventKind); 14] = [
        (
            "user_add_org",
            r#"{"timeStamp":"1","userId":["u1"]}"#,
            EventKind::UserAddOrg(users(&["u1"], None)),
        ),
        (
            "user_leave_org",
            r#"{"timeStamp":"1","userId":["u1"]}"#,
            EventKind::UserLeaveOrg(users(&["u1"], None)),
        ),
        (
            "org_admin_add",
            r#"{"timeStamp":"1","userId":["u1"]}"#,
            EventKind::OrgAdminAdd(users(&["u1"], None)),
        ),
        (
            "org_admin_remove",
            r#"{"timeStamp":"1","userId":["u1"]}"#,
            EventKind::OrgAdminRemove(users(&["u1"], None)),
        ),
        (
            "user_active_org",
            r#"{"userId":["u1"]}"#,
            EventKind::UserActiveOrg(users(&["u1"], None)),
        ),
        (
            "org_dept_create",
            r#"{"deptId":[3]}"#,
            EventKind::OrgDeptCreate {
                dept_ids: depts(&[3]),
            },
        ),
        (
            "org_dept_modify",
            r#"{"deptId":[3]}"#,
            EventKind::OrgDeptModify {
                dept_ids: depts(&[3]),
            },
        ),
        (
            "org_dept_remove",
            r#"{"deptId":[3]}"#,
            EventKind::OrgDeptRemove {
                dept_ids: depts(&[3]),
            },
        ),
        (
            "label_user_change",
            r#"{"userIdList":["u1"],"labelIdList":[4],"action":"add"}"#,
            EventKind::LabelUserChange {
                user_ids: uids(&["u1"]),
                label_ids: roles(&[4]),
                action: LabelAction::Add,
            },
        ),
        (
            "label_conf_add",
            r#"{"scope":"1","labelIdList":[4]}"#,
            EventKind::LabelConfAdd {
                label_ids: roles(&[4]),
                scope: Some("1".into()),
            },
        ),
        (
            "label_conf_del",
            r#"{"labelIdList":[4]}"#,
            EventKind::LabelConfDel {
                label_ids: roles(&[4]),
                scope: None,
            },
        ),
        ("org_change", "{}", EventKind::OrgChange),
        ("org_remove", "{}", EventKind::OrgRemove),
        // TP code reads optStaffId inside Stream data.
        (
            "user_add_org",
            r#"{"userId":["u1"],"optStaffId":"boss"}"#,
            EventKind::UserAddOrg(users(&["u1"], Some("boss"))),
        ),
    ];
    for (ty, data, expected) in cases {
        assert_eq!(stream(ty, data).kind, expected, "{ty} {data}");
    }
}

#[test]
fn stream_user_modify_org_diff_info_object_or_array() {
    let object = r#"{"timeStamp":"1","userId":["u1"],"diffInfo":{"userid":"u1","prev":{"name":"a","hiredDate":1600000000000},"curr":{"name":"b","hiredDate":1700000000000}}}"#;
    let array = r#"{"timeStamp":"1","userId":["u1"],"diffInfo":[{"userid":"u1","prev":{"name":"a"},"curr":{"name":"b"}}]}"#;
    for data in [object, array] {
        let EventKind::UserModifyOrg { change, diff } = stream("user_modify_org", data).kind else {
            panic!("{data}");
        };
        assert_eq!(change.user_ids, uids(&["u1"]));
        assert_eq!(diff.len(), 1);
        assert_eq!(diff[0].prev["name"], "a");
        assert_eq!(diff[0].curr["name"], "b");
    }
}

#[test]
fn stream_label_conf_modify() {
    let data = json!({
        "postLabelList": ["{\"hidden\":false,\"name\":\"新\",\"id\":2393865715,\"extraInfo\":{}}"],
        "preLabelList": ["{\"hidden\":false,\"name\":\"旧\",\"id\":2393865715,\"extraInfo\":{}}"],
        "scope": "1",
        "labelIdList": [2393865715_i64]
    });
    let EventKind::LabelConfModify {
        label_ids,
        scope,
        before,
        after,
    } = stream("label_conf_modify", &data.to_string()).kind
    else {
        panic!()
    };
    assert_eq!(label_ids, roles(&[2_393_865_715]));
    assert_eq!(scope.as_deref(), Some("1"));
    assert_eq!(before[0].name.as_deref(), Some("旧"));
    assert_eq!(after[0].name.as_deref(), Some("新"));
}

#[test]
fn stream_whole_frame() {
    let frame = r#"{"specVersion":"1.0","type":"EVENT","headers":{"topic":"*","messageId":"213d841d_972_1898bb26334_70a7","contentType":"application/json","time":"1693221579964","eventType":"org_dept_remove","eventId":"e-9","eventCorpId":"ding1","eventBornTime":"1683533823336","eventUnifiedAppId":"bbb381b6"},"data":"{\"deptId\":[12]}"}"#;
    let e = ContactEvent::from_stream_frame(frame).unwrap();
    assert_eq!(e.event_id.as_deref(), Some("e-9"));
    assert_eq!(e.corp_id.as_deref(), Some("ding1"));
    assert_eq!(e.born_at_ms, Some(1_683_533_823_336));
    assert_eq!(
        e.kind,
        EventKind::OrgDeptRemove {
            dept_ids: depts(&[12])
        }
    );
}

// ---- tolerance and failures ---------------------------------------------------------------

#[test]
fn numbers_as_strings_and_strings_as_numbers() {
    let e = legacy(
        r#"{"EventType":"org_dept_modify","CorpId":"ding1","DeptId":["12"," 13 ",14],"TimeStamp":"1640921671286"}"#,
    );
    assert_eq!(
        e.kind,
        EventKind::OrgDeptModify {
            dept_ids: depts(&[12, 13, 14])
        }
    );
    let e = legacy(
        r#"{"EventType":"user_add_org","UserId":[1234567890123,"u2"],"EventTime":"1663143335567"}"#,
    );
    assert_eq!(
        e.kind,
        EventKind::UserAddOrg(users(&["1234567890123", "u2"], None))
    );
    assert_eq!(e.born_at_ms, Some(1_663_143_335_567));
    let e = legacy(r#"{"EventType":"label_conf_add","LabelIdList":["2393865715"],"scope":1}"#);
    assert_eq!(
        e.kind,
        EventKind::LabelConfAdd {
            label_ids: roles(&[2_393_865_715]),
            scope: Some("1".into())
        }
    );
}

#[test]
fn nulls_and_missing_lists_are_empty() {
    let e = legacy(r#"{"EventType":"user_leave_org","UserId":null,"OptStaffId":null}"#);
    assert_eq!(e.kind, EventKind::UserLeaveOrg(UserChange::default()));
    let e = legacy(r#"{"EventType":"org_dept_create"}"#);
    assert_eq!(
        e.kind,
        EventKind::OrgDeptCreate {
            dept_ids: depts(&[])
        }
    );
}

#[test]
fn unknown_types_are_kept_whole_never_errors() {
    let body = r#"{"EventType":"user_dept_change","CorpId":"ding1","eventId":"x1","EventTime":{"weird":true},"whatever":[1,{"a":2}]}"#;
    let e = legacy(body);
    assert_eq!(e.event_id.as_deref(), Some("x1"));
    assert_eq!(e.corp_id.as_deref(), Some("ding1"));
    assert_eq!(e.born_at_ms, None);
    let EventKind::Unknown { event_type, raw } = &e.kind else {
        panic!("{e:?}")
    };
    assert_eq!(event_type, "user_dept_change");
    assert_eq!(e.kind.event_type(), "user_dept_change");
    assert_eq!(raw["whatever"][1]["a"], 2);

    let e = stream("bpms_task_change", r#"{"processInstanceId":"p1"}"#);
    assert!(matches!(e.kind, EventKind::Unknown { .. }));
}

#[test]
fn malformed_payloads_are_errors() {
    assert!(matches!(
        ContactEvent::from_http_json("{not json"),
        Err(EventError::Json { .. })
    ));
    assert!(matches!(
        ContactEvent::from_http_json("[1,2]"),
        Err(EventError::NotAnObject)
    ));
    assert!(matches!(
        ContactEvent::from_http_json(r#"{"CorpId":"ding1"}"#),
        Err(EventError::MissingEventType)
    ));
    assert!(matches!(
        ContactEvent::from_http_json(r#"{"EventType":42}"#),
        Err(EventError::MissingEventType)
    ));
    for body in [
        r#"{"EventType":"org_dept_create","DeptId":["abc"]}"#,
        r#"{"EventType":"org_dept_create","DeptId":{"id":1}}"#,
        r#"{"EventType":"user_add_org","UserId":[{"id":"u1"}]}"#,
        r#"{"EventType":"user_modify_org","UserId":["u1"],"diffInfo":[1]}"#,
        r#"{"EventType":"user_modify_org","UserId":["u1"],"diffInfo":{"prev":[1]}}"#,
        r#"{"EventType":"org_dept_create","DeptId":[1.5]}"#,
    ] {
        let err = ContactEvent::from_http_json(body).unwrap_err();
        assert!(matches!(err, EventError::Fields { .. }), "{body}: {err:?}");
    }
    let headers = StreamEventHeaders::default();
    assert!(matches!(
        ContactEvent::from_stream(&headers, r#"{"deptId":[1]}"#),
        Err(EventError::MissingEventType)
    ));
    assert!(matches!(
        ContactEvent::from_stream(&headers, r#""a string""#),
        Err(EventError::NotAnObject)
    ));
}

// ---- failed-push catch-up -----------------------------------------------------------------

#[test]
fn failed_callback_entry_from_the_docs() {
    let payload = json!({"userid": ["zhangsan"], "corpid": "ding1"});
    let e = ContactEvent::from_failed_callback("user_add_org", Some(1_606_126_433_000), &payload)
        .unwrap();
    assert_eq!(e.corp_id.as_deref(), Some("ding1"));
    assert_eq!(e.born_at_ms, Some(1_606_126_433_000));
    assert_eq!(e.kind, EventKind::UserAddOrg(users(&["zhangsan"], None)));

    let as_text = json!("{\"DeptId\":[4],\"CorpId\":\"ding1\"}");
    let e = ContactEvent::from_failed_callback("org_dept_remove", None, &as_text).unwrap();
    assert_eq!(
        e.kind,
        EventKind::OrgDeptRemove {
            dept_ids: depts(&[4])
        }
    );

    // Department entries use the list's lower-case spelling, like `userid` and `corpid`.
    let lower = json!({"deptid": [7, 8], "corpid": "ding1"});
    let e = ContactEvent::from_failed_callback("org_dept_create", None, &lower).unwrap();
    assert_eq!(
        e.kind,
        EventKind::OrgDeptCreate {
            dept_ids: depts(&[7, 8])
        }
    );
    assert!(matches!(
        ContactEvent::from_failed_callback("org_dept_remove", None, &json!([1])),
        Err(EventError::NotAnObject)
    ));
}

/// One DingTalk change has one dedupe key on every path it can take: legacy HTTP push, new
/// HTTP push (with an `eventId`), Stream, and the failed-push list (no `eventId`, another
/// shape) – so a push that was stored and then also listed as failed is stored once.
#[test]
fn one_change_has_one_dedupe_key_on_every_path() {
    let time = 1_640_921_671_286_i64;
    let legacy = format!(
        r#"{{"CorpId":"{CORP}","EventType":"user_modify_org","UserId":["b","a"],"OptStaffId":"m","TimeStamp":"{time}"}}"#
    );
    let new = format!(
        r#"{{"EventType":"user_modify_org","EventTime":{time},"CorpId":"{CORP}","BizId":"x","eventId":"e-1","timeStamp":"99","userId":["a","b"]}}"#
    );
    let headers = StreamEventHeaders {
        event_id: Some("e-1".into()),
        event_type: Some("user_modify_org".into()),
        event_corp_id: Some(CORP.into()),
        event_born_time: Some(time.to_string()),
    };
    let stream_data = r#"{"timeStamp":"99","userId":["a","b"]}"#;
    let failed_payload = json!({"userid": ["a", "b"], "corpid": CORP});

    let keys = [
        ContactEvent::from_http_json(&legacy)
            .expect("legacy")
            .dedupe_key(&legacy),
        ContactEvent::from_http_json(&new)
            .expect("new")
            .dedupe_key(&new),
        ContactEvent::from_stream(&headers, stream_data)
            .expect("stream")
            .dedupe_key(stream_data),
        ContactEvent::from_failed_callback("user_modify_org", Some(time), &failed_payload)
            .expect("failed list")
            .dedupe_key("{}"),
    ];
    assert!(
        keys[0].starts_with("change:user_modify_org:1640921671286:"),
        "{}",
        keys[0]
    );
    assert!(keys.iter().all(|k| *k == keys[0]), "{keys:#?}");

    // Another time, other ids or another type is another change.
    let other_time =
        ContactEvent::from_failed_callback("user_modify_org", Some(time + 1), &failed_payload)
            .expect("parse")
            .dedupe_key("");
    let other_ids = ContactEvent::from_failed_callback(
        "user_modify_org",
        Some(time),
        &json!({"userid": ["a"], "corpid": CORP}),
    )
    .expect("parse")
    .dedupe_key("");
    let other_type =
        ContactEvent::from_failed_callback("user_leave_org", Some(time), &failed_payload)
            .expect("parse")
            .dedupe_key("");
    for other in [&other_time, &other_ids, &other_type] {
        assert_ne!(*other, keys[0]);
    }
    assert_ne!(other_time, other_ids);

    // Role membership: the action is part of the change.
    let added = ContactEvent::from_failed_callback(
        "label_user_change",
        Some(time),
        &json!({"userIdList": ["a"], "labelIdList": [9], "action": "add"}),
    )
    .expect("parse")
    .dedupe_key("");
    let removed = ContactEvent::from_failed_callback(
        "label_user_change",
        Some(time),
        &json!({"userIdList": ["a"], "labelIdList": [9], "action": "remove"}),
    )
    .expect("parse")
    .dedupe_key("");
    assert_ne!(added, removed);
}

/// Events whose ids we cannot read, or without a time, keep the id or digest key.
#[test]
fn dedupe_key_falls_back_to_event_id_then_digest() {
    let unknown = r#"{"EventType":"user_dept_change","eventId":"u-1","EventTime":5}"#;
    assert_eq!(
        ContactEvent::from_http_json(unknown)
            .expect("parse")
            .dedupe_key(unknown),
        "event:u-1"
    );
    let timeless = r#"{"EventType":"user_add_org","UserId":["a"]}"#;
    let key = ContactEvent::from_http_json(timeless)
        .expect("parse")
        .dedupe_key(timeless);
    assert!(key.starts_with("sha256:"), "{key}");
    let other = r#"{"EventType":"user_add_org","UserId":["b"]}"#;
    assert_ne!(
        key,
        ContactEvent::from_http_json(other)
            .expect("parse")
            .dedupe_key(other)
    );
}
