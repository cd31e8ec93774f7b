//! The OA API over real HTTP (port 0) and a real database: happy paths, every bad input of
//! issue 4 (each refused with the field named, and neither directory, outbox nor change feed
//! changed), paging, filters, the change feed, authentication, the OpenAPI document, metrics,
//! and an `#[ignore]`d load measurement.

use crate::common;

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{App, Reply, TOKEN};
use directory_model::{Department, OaDeptId};
use directory_store::WriteCtx;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Asserts a refusal: status, code, and that `field` is among the named fields.
fn assert_refused(r: &Reply, status: u16, code: &str, field: &str) {
    assert_eq!(r.status.as_u16(), status, "{:#}", r.body);
    assert_eq!(r.code(), code, "{:#}", r.body);
    assert!(
        r.fields().iter().any(|(f, _)| f == field),
        "expected field {field:?} in {:#}",
        r.body
    );
    assert!(
        !r.body["error"]["message"].as_str().unwrap_or("").is_empty(),
        "errors carry a message: {:#}",
        r.body
    );
}

// ---------------------------------------------------------------------------------------------
// Happy paths
// ---------------------------------------------------------------------------------------------

async fn departments_crud_and_move(app: App) {
    app.seed().await;
    // Create with an allocated id.
    let r = app
        .post(
            "/api/v1/departments",
            json!({"name": "Ops", "parent": 1, "order": 5}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:#}", r.body);
    let id = r.body["id"].as_i64().expect("id");
    assert!(
        id > 4,
        "allocated ids do not collide with chosen ones: {id}"
    );
    assert_eq!(r.etag(), "\"1\"");
    assert_eq!(r.header("location"), format!("/api/v1/departments/{id}"));
    assert_eq!(r.body["order"], 5);

    let got = app.get(&format!("/api/v1/departments/{id}")).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["name"], "Ops");
    assert_eq!(got.etag(), "\"1\"");

    // Rename with If-Match, then move under Sales (without If-Match).
    let r = app
        .send(
            Method::PATCH,
            &format!("/api/v1/departments/{id}"),
            Some(&json!({"name": "Operations"})),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:#}", r.body);
    assert_eq!(r.etag(), "\"2\"");
    let r = app
        .patch(&format!("/api/v1/departments/{id}"), json!({"parent": 3}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:#}", r.body);
    assert_eq!(r.body["parent"], 3);
    assert_eq!(r.body["name"], "Operations");
    let stored = app
        .store
        .get_department(OaDeptId(id))
        .await
        .expect("read")
        .expect("present");
    assert_eq!(stored.entity.parent, Some(OaDeptId(3)));

    // An empty patch changes nothing and keeps the version.
    let r = app
        .patch(&format!("/api/v1/departments/{id}"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.etag(), format!("\"{}\"", stored.version));

    // Delete the leaf.
    let r = app.delete(&format!("/api/v1/departments/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{:#}", r.body);
    assert_eq!(r.body["deleted_departments"], json!([id]));
    let r = app.get(&format!("/api/v1/departments/{id}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "not_found");
    app.stop().await;
}

#[tokio::test]
async fn sqlite_departments_crud_and_move() {
    departments_crud_and_move(App::sqlite().await).await;
}

#[tokio::test]
async fn postgres_departments_crud_and_move() {
    if let Some(app) = App::postgres().await {
        departments_crud_and_move(app).await;
    }
}

async fn users_crud_and_move(app: App) {
    app.seed().await;
    let r = app.get("/api/v1/users/bob").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["mobile"], "+852-91234567");
    assert_eq!(r.body["manager"], "alice");
    assert_eq!(r.body["departments"][0]["title"], "Engineer");
    assert_eq!(r.body["main_department"], 4);
    let etag = r.etag();

    // Move bob from Backend to Sales and R&D, clear his email; main department follows.
    let r = app
        .send(
            Method::PATCH,
            "/api/v1/users/bob",
            Some(
                &json!({"departments": [{"dept": 3}, {"dept": 2, "title": "Lead"}], "email": null}),
            ),
            &[("if-match", etag.as_str())],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:#}", r.body);
    assert_eq!(r.body["main_department"], 3);
    assert_eq!(r.body["email"], Value::Null);
    assert_eq!(r.body["mobile"], "+852-91234567", "absent fields stay");
    assert_ne!(r.etag(), etag);
    let bob = app
        .store
        .get_user(&directory_model::OaUserId::new("bob"))
        .await
        .expect("read")
        .expect("present");
    assert_eq!(
        bob.entity.department_ids().collect::<Vec<_>>(),
        vec![OaDeptId(3), OaDeptId(2)]
    );
    assert_eq!(bob.entity.email, None);

    // The freed email can be taken by someone else.
    let r = app
        .post(
            "/api/v1/users",
            json!({"id": "carol", "name": "Carol", "departments": [{"dept": 3}],
                   "email": "bob@acme.example", "state": "active", "mobile": "13800000003",
                   "extension": {"desk": "3F-12"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:#}", r.body);
    assert_eq!(r.header("location"), "/api/v1/users/carol");
    assert_eq!(r.body["extension"]["desk"], "3F-12");

    // Delete bob (no one reports to him).
    let r = app.delete("/api/v1/users/bob").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:#}", r.body);
    assert_eq!(
        app.get("/api/v1/users/bob").await.status,
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

#[tokio::test]
async fn sqlite_users_crud_and_move() {
    users_crud_and_move(App::sqlite().await).await;
}

#[tokio::test]
async fn postgres_users_crud_and_move() {
    if let Some(app) = App::postgres().await {
        users_crud_and_move(app).await;
    }
}

#[tokio::test]
async fn roles_groups_and_assignments() {
    let app = App::sqlite().await;
    app.seed().await;
    let g = app
        .post("/api/v1/role-groups", json!({"name": "Job titles"}))
        .await;
    assert_eq!(g.status, StatusCode::CREATED, "{:#}", g.body);
    let gid = g.body["id"].as_i64().expect("group id");
    let r = app
        .post("/api/v1/roles", json!({"group": gid, "name": "Finance"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:#}", r.body);
    let rid = r.body["id"].as_i64().expect("role id");
    assert_eq!(r.etag(), "\"1\"");

    let r = app
        .post(
            "/api/v1/role-assignments",
            json!({"user": "alice", "role": rid}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:#}", r.body);
    let again = app
        .post(
            "/api/v1/role-assignments",
            json!({"user": "alice", "role": rid}),
        )
        .await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "assigning twice writes nothing"
    );
    let list = app.get("/api/v1/role-assignments?user=alice").await;
    assert_eq!(list.body["items"], json!([{"user": "alice", "role": rid}]));

    // A role with members cannot be deleted; rename works.
    let r = app.delete(&format!("/api/v1/roles/{rid}")).await;
    assert_refused(&r, 409, "conflict", "id");
    let r = app
        .patch(
            &format!("/api/v1/roles/{rid}"),
            json!({"name": "Accounting"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:#}", r.body);
    assert_eq!(r.body["name"], "Accounting");

    let r = app
        .delete(&format!("/api/v1/role-assignments/{rid}/alice"))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:#}", r.body);
    let r = app
        .delete(&format!("/api/v1/role-assignments/{rid}/alice"))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.delete(&format!("/api/v1/roles/{rid}")).await.status,
        StatusCode::NO_CONTENT
    );
    let r = app
        .patch(
            &format!("/api/v1/role-groups/{gid}"),
            json!({"name": "Titles"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:#}", r.body);
    assert_eq!(
        app.delete(&format!("/api/v1/role-groups/{gid}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&format!("/api/v1/role-groups/{gid}")).await.status,
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

#[tokio::test]
async fn cascade_delete_removes_the_subtree_and_rehomes_members() {
    let app = App::sqlite().await;
    app.seed().await;
    let r = app.delete("/api/v1/departments/2?cascade=true").await;
    assert_eq!(r.status, StatusCode::OK, "{:#}", r.body);
    let deleted: BTreeSet<i64> = r.body["deleted_departments"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    assert_eq!(deleted, BTreeSet::from([2, 4]));
    let alice = app.get("/api/v1/users/alice").await;
    assert_eq!(alice.body["departments"][0]["dept"], 1, "{:#}", alice.body);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Bad input: a 4xx naming the field, and nothing changed
// ---------------------------------------------------------------------------------------------

/// One bad request and what it must get.
struct Bad {
    what: &'static str,
    method: Method,
    path: String,
    body: Value,
    headers: Vec<(&'static str, String)>,
    status: u16,
    code: &'static str,
    field: &'static str,
    rule: Option<&'static str>,
}

fn bad(
    what: &'static str,
    method: Method,
    path: &str,
    body: Value,
    status: u16,
    code: &'static str,
    field: &'static str,
) -> Bad {
    Bad {
        what,
        method,
        path: path.to_owned(),
        body,
        headers: Vec::new(),
        status,
        code,
        field,
        rule: None,
    }
}

impl Bad {
    fn rule(mut self, rule: &'static str) -> Self {
        self.rule = Some(rule);
        self
    }

    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }
}

fn user(id: &str, extra: Value) -> Value {
    let mut body = json!({"id": id, "name": "New Person", "departments": [{"dept": 3}],
                         "mobile": "13800000099"});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    body
}

fn bad_cases(stale_etag: &str) -> Vec<Bad> {
    use Method as M;
    let d = "/api/v1/departments";
    let u = "/api/v1/users";
    let many: Vec<Value> = (1..=101).map(|i| json!({"dept": i})).collect();
    vec![
        bad(
            "unknown parent",
            M::POST,
            d,
            json!({"name": "X", "parent": 999}),
            422,
            "validation_failed",
            "parent",
        )
        .rule("unknown_reference"),
        bad(
            "cycle by move",
            M::PATCH,
            "/api/v1/departments/2",
            json!({"parent": 4}),
            422,
            "validation_failed",
            "parent",
        )
        .rule("cycle"),
        bad(
            "move under itself",
            M::PATCH,
            "/api/v1/departments/2",
            json!({"parent": 2}),
            422,
            "validation_failed",
            "parent",
        ),
        bad(
            "delete with children",
            M::DELETE,
            "/api/v1/departments/2",
            Value::Null,
            409,
            "conflict",
            "cascade",
        )
        .rule("has_dependants"),
        bad(
            "delete with people",
            M::DELETE,
            "/api/v1/departments/4",
            Value::Null,
            409,
            "conflict",
            "cascade",
        ),
        bad(
            "delete the root",
            M::DELETE,
            "/api/v1/departments/1?cascade=true",
            Value::Null,
            409,
            "conflict",
            "id",
        ),
        bad(
            "duplicate sibling name",
            M::POST,
            d,
            json!({"name": "Sales", "parent": 1}),
            409,
            "conflict",
            "name",
        )
        .rule("taken"),
        bad(
            "rename onto a sibling",
            M::PATCH,
            "/api/v1/departments/3",
            json!({"name": "R&D"}),
            409,
            "conflict",
            "name",
        ),
        bad(
            "name too long",
            M::POST,
            d,
            json!({"name": "x".repeat(65), "parent": 1}),
            422,
            "validation_failed",
            "name",
        )
        .rule("too_long"),
        bad(
            "forbidden character",
            M::POST,
            d,
            json!({"name": "R-D", "parent": 1}),
            422,
            "validation_failed",
            "name",
        )
        .rule("forbidden_character"),
        bad(
            "empty name",
            M::POST,
            d,
            json!({"name": " ", "parent": 1}),
            422,
            "validation_failed",
            "name",
        )
        .rule("required"),
        bad(
            "second root",
            M::POST,
            d,
            json!({"name": "Other corp"}),
            422,
            "validation_failed",
            "parent",
        ),
        bad(
            "unknown department manager",
            M::POST,
            d,
            json!({"name": "Y", "parent": 1, "managers": ["ghost"]}),
            422,
            "validation_failed",
            "managers[0]",
        ),
        bad(
            "malformed mobile",
            M::POST,
            u,
            user("p1", json!({"mobile": "12345"})),
            422,
            "validation_failed",
            "mobile",
        )
        .rule("malformed"),
        bad(
            "malformed email",
            M::POST,
            u,
            user("p1", json!({"email": "not-an-email"})),
            422,
            "validation_failed",
            "email",
        )
        .rule("malformed"),
        bad(
            "duplicate userid",
            M::POST,
            u,
            user("alice", json!({})),
            409,
            "conflict",
            "id",
        )
        .rule("taken"),
        bad(
            "duplicate mobile",
            M::POST,
            u,
            user("p1", json!({"mobile": "13800000001"})),
            409,
            "conflict",
            "mobile",
        ),
        bad(
            "duplicate email",
            M::POST,
            u,
            user("p1", json!({"email": "alice@acme.example"})),
            409,
            "conflict",
            "email",
        ),
        bad(
            "duplicate email by update",
            M::PATCH,
            "/api/v1/users/bob",
            json!({"email": "alice@acme.example"}),
            409,
            "conflict",
            "email",
        ),
        bad(
            "more than 100 departments",
            M::POST,
            u,
            user("p1", json!({"departments": many})),
            422,
            "validation_failed",
            "departments",
        )
        .rule("too_many"),
        bad(
            "no department",
            M::POST,
            u,
            user("p1", json!({"departments": []})),
            422,
            "validation_failed",
            "departments",
        ),
        bad(
            "unknown department",
            M::POST,
            u,
            user("p1", json!({"departments": [{"dept": 77}]})),
            422,
            "validation_failed",
            "departments[0].dept",
        ),
        bad(
            "unknown manager",
            M::POST,
            u,
            user("p1", json!({"manager": "ghost"})),
            422,
            "validation_failed",
            "manager",
        )
        .rule("unknown_reference"),
        bad(
            "manager cycle",
            M::PATCH,
            "/api/v1/users/alice",
            json!({"manager": "bob"}),
            422,
            "validation_failed",
            "manager",
        )
        .rule("cycle"),
        bad(
            "own manager",
            M::PATCH,
            "/api/v1/users/alice",
            json!({"manager": "alice"}),
            422,
            "validation_failed",
            "manager",
        ),
        bad(
            "oversized extension",
            M::POST,
            u,
            user("p1", json!({"extension": {"notes": "x".repeat(2100)}})),
            422,
            "validation_failed",
            "extension",
        )
        .rule("too_long"),
        bad(
            "main department not listed",
            M::POST,
            u,
            user("p1", json!({"main_department": 2})),
            422,
            "validation_failed",
            "main_department",
        ),
        bad(
            "unknown JSON field",
            M::POST,
            d,
            json!({"name": "Z", "parent": 1, "colour": "red"}),
            422,
            "validation_failed",
            "colour",
        )
        .rule("unknown_field"),
        bad(
            "unknown nested JSON field",
            M::POST,
            u,
            user("p1", json!({"departments": [{"dept": 3, "boss": true}]})),
            422,
            "validation_failed",
            "departments[0].boss",
        )
        .rule("unknown_field"),
        bad(
            "unknown patch field",
            M::PATCH,
            "/api/v1/users/bob",
            json!({"id": "robert"}),
            422,
            "validation_failed",
            "id",
        )
        .rule("unknown_field"),
        bad(
            "wrong type",
            M::POST,
            d,
            json!({"name": 5, "parent": 1}),
            422,
            "validation_failed",
            "name",
        )
        .rule("invalid_type"),
        bad(
            "null for a field that cannot be empty",
            M::PATCH,
            "/api/v1/departments/2",
            json!({"parent": null}),
            422,
            "validation_failed",
            "parent",
        )
        .rule("invalid_type"),
        bad(
            "wrong nested type",
            M::POST,
            u,
            user("p1", json!({"departments": [{"dept": "three"}]})),
            422,
            "validation_failed",
            "departments[0].dept",
        )
        .rule("invalid_type"),
        bad(
            "missing required field",
            M::POST,
            u,
            json!({"id": "p1", "departments": [{"dept": 3}]}),
            422,
            "validation_failed",
            "name",
        )
        .rule("required"),
        bad(
            "wrong state value",
            M::POST,
            u,
            user("p1", json!({"state": "retired"})),
            422,
            "validation_failed",
            "state",
        ),
        bad(
            "stale If-Match",
            M::PATCH,
            "/api/v1/departments/2",
            json!({"name": "Research"}),
            412,
            "precondition_failed",
            "If-Match",
        )
        .header("if-match", stale_etag),
        bad(
            "stale If-Match on delete",
            M::DELETE,
            "/api/v1/departments/3",
            Value::Null,
            412,
            "precondition_failed",
            "If-Match",
        )
        .header("if-match", "\"99\""),
        bad(
            "malformed If-Match",
            M::PATCH,
            "/api/v1/departments/2",
            json!({"name": "Research"}),
            400,
            "bad_request",
            "If-Match",
        )
        .header("if-match", "2"),
        bad(
            "unknown query parameter",
            M::DELETE,
            "/api/v1/departments/4?cascde=true",
            Value::Null,
            422,
            "validation_failed",
            "cascde",
        ),
        bad(
            "page size out of range",
            M::GET,
            "/api/v1/users?limit=5000",
            Value::Null,
            422,
            "validation_failed",
            "limit",
        ),
        bad(
            "unknown role group",
            M::POST,
            "/api/v1/roles",
            json!({"group": 42, "name": "R"}),
            422,
            "validation_failed",
            "group",
        ),
        bad(
            "negative id",
            M::POST,
            d,
            json!({"id": -3, "name": "N", "parent": 1}),
            422,
            "validation_failed",
            "id",
        ),
    ]
}

#[tokio::test]
async fn bad_input_is_refused_with_the_field_and_changes_nothing() {
    let app = App::sqlite().await;
    app.seed().await;
    // Make department 2's first ETag stale.
    let r = app
        .patch("/api/v1/departments/2", json!({"order": 9}))
        .await;
    assert_eq!(r.etag(), "\"2\"");
    let before = app.fingerprint().await;
    for case in bad_cases("\"1\"") {
        let body = (!case.body.is_null()).then_some(&case.body);
        let headers: Vec<(&str, &str)> =
            case.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = app
            .send(case.method.clone(), &case.path, body, &headers)
            .await;
        assert_eq!(
            r.status.as_u16(),
            case.status,
            "{}: {:#}",
            case.what,
            r.body
        );
        assert_eq!(r.code(), case.code, "{}: {:#}", case.what, r.body);
        let fields = r.fields();
        assert!(
            fields
                .iter()
                .any(|(f, rule)| f == case.field && case.rule.is_none_or(|want| want == rule)),
            "{}: expected field {:?} rule {:?}, got {fields:?}",
            case.what,
            case.field,
            case.rule
        );
        assert_eq!(
            app.fingerprint().await,
            before,
            "{}: the directory, outbox or change feed changed",
            case.what
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn postgres_bad_input_subset_changes_nothing() {
    let Some(app) = App::postgres().await else {
        return;
    };
    app.seed().await;
    let before = app.fingerprint().await;
    let wanted = [
        "unknown parent",
        "cycle by move",
        "delete with people",
        "duplicate sibling name",
        "duplicate mobile",
        "manager cycle",
        "stale If-Match",
    ];
    for case in bad_cases("\"0\"")
        .into_iter()
        .filter(|c| wanted.contains(&c.what))
    {
        let body = (!case.body.is_null()).then_some(&case.body);
        let headers: Vec<(&str, &str)> =
            case.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = app
            .send(case.method.clone(), &case.path, body, &headers)
            .await;
        assert_refused(&r, case.status, case.code, case.field);
        assert_eq!(app.fingerprint().await, before, "{}", case.what);
    }
    app.stop().await;
}

#[tokio::test]
async fn every_validation_problem_is_reported_at_once() {
    let app = App::sqlite().await;
    app.seed().await;
    let before = app.fingerprint().await;
    let r = app
        .post(
            "/api/v1/users",
            user(
                "p1",
                json!({"name": "n".repeat(81), "mobile": "12", "email": "nope",
                       "job_number": "j".repeat(51)}),
            ),
        )
        .await;
    assert_eq!(r.status.as_u16(), 422, "{:#}", r.body);
    let fields: BTreeSet<String> = r.fields().into_iter().map(|(f, _)| f).collect();
    for f in ["name", "mobile", "email", "job_number"] {
        assert!(fields.contains(f), "{f} missing from {fields:?}");
    }
    assert_eq!(app.fingerprint().await, before);
    app.stop().await;
}

#[tokio::test]
async fn bodies_must_be_small_json() {
    let app = App::sqlite().await;
    app.seed().await;
    let before = app.fingerprint().await;
    let huge = format!(
        "{{\"name\":\"{}\",\"parent\":1}}",
        "x".repeat(1024 * 1024 + 64 * 1024)
    );
    let r = app
        .raw(
            app.request(Method::POST, "/api/v1/departments")
                .bearer_auth(TOKEN)
                .header("content-type", "application/json")
                .body(huge),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{:#}", r.body);
    assert_eq!(r.code(), "payload_too_large");

    let r = app
        .raw(
            app.request(Method::POST, "/api/v1/departments")
                .bearer_auth(TOKEN)
                .header("content-type", "text/plain")
                .body(r#"{"name":"T","parent":1}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{:#}", r.body);
    assert_eq!(r.code(), "unsupported_media_type");

    let r = app
        .raw(
            app.request(Method::POST, "/api/v1/departments")
                .bearer_auth(TOKEN)
                .header("content-type", "application/json")
                .body(r#"{"name":"T","#),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:#}", r.body);
    assert_eq!(r.code(), "bad_request");
    assert_eq!(app.fingerprint().await, before);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Lists, filters, the change feed
// ---------------------------------------------------------------------------------------------

/// Follows `next` links from `first`, returning every item.
async fn collect_pages(app: &App, first: &str) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let mut next = Some(first.to_owned());
    while let Some(url) = next {
        let r = app.get(&url).await;
        assert_eq!(r.status, StatusCode::OK, "{url}: {:#}", r.body);
        pages += 1;
        items.extend(r.body["items"].as_array().cloned().unwrap_or_default());
        next = r.body["next"].as_str().map(str::to_owned);
        if let Some(n) = &next {
            assert_eq!(r.header("link"), format!("<{n}>; rel=\"next\""));
        }
        assert!(pages < 100, "paging does not terminate");
    }
    (items, pages)
}

#[tokio::test]
async fn paging_follows_next_links_and_filters_apply() {
    let app = App::sqlite().await;
    app.seed().await;
    app.clock.store(1_800_000_000_000, Ordering::SeqCst);
    for i in 0..25 {
        let r = app
            .post(
                "/api/v1/users",
                json!({"id": format!("s{i:02}"), "name": format!("Seller {i}"),
                       "departments": [{"dept": 3}], "job_number": format!("J{i}"),
                       "mobile": format!("139000000{i:02}")}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:#}", r.body);
    }
    let (items, pages) = collect_pages(&app, "/api/v1/users?department=3&limit=10").await;
    assert_eq!(pages, 3);
    let ids: Vec<&str> = items.iter().filter_map(|u| u["id"].as_str()).collect();
    let expected: Vec<String> = (0..25).map(|i| format!("s{i:02}")).collect();
    assert_eq!(ids, expected);

    let r = app.get("/api/v1/users?name=seller%201").await;
    assert_eq!(
        r.body["items"].as_array().map(Vec::len),
        Some(11),
        "Seller 1, 10-19"
    );
    let r = app.get("/api/v1/users?mobile=13900000007").await;
    assert_eq!(r.body["items"][0]["id"], "s07");
    let r = app.get("/api/v1/users?job_number=J12").await;
    assert_eq!(r.body["items"][0]["id"], "s12");
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(1));
    let r = app.get("/api/v1/users?updated_since=1800000000000").await;
    assert_eq!(
        r.body["items"].as_array().map(Vec::len),
        Some(25),
        "alice and bob were written before"
    );
    let r = app
        .send(
            Method::PATCH,
            "/api/v1/users/s03",
            Some(&json!({"state": "left"})),
            &[("if-match", "*")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:#}", r.body);
    let r = app.get("/api/v1/users?state=left").await;
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(r.body["items"][0]["id"], "s03");
    let r = app.get("/api/v1/users?department=4").await;
    assert_eq!(r.body["items"][0]["id"], "bob");
    assert_eq!(r.body["next"], Value::Null);

    let (depts, _) = collect_pages(&app, "/api/v1/departments?limit=1").await;
    assert_eq!(depts.len(), 4);
    let r = app.get("/api/v1/departments?parent=1").await;
    let names: Vec<&str> = r.body["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|d| d["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec!["R&D", "Sales"]);
    let r = app.get("/api/v1/departments?name=back").await;
    assert_eq!(r.body["items"][0]["id"], 4);
    let r = app
        .patch("/api/v1/departments/3", json!({"order": 7}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .get("/api/v1/departments?updated_since=1800000000000")
        .await;
    assert_eq!(
        r.body["items"].as_array().map(Vec::len),
        Some(1),
        "{:#}",
        r.body
    );
    assert_eq!(r.body["items"][0]["id"], 3);
    app.stop().await;
}

async fn change_feed_lists_every_change_in_order(app: App) {
    app.seed().await;
    // A change made on the DingTalk side (as the engine applies an event) joins the feed.
    let mut sales = app
        .store
        .get_department(OaDeptId(3))
        .await
        .expect("read")
        .expect("present")
        .entity;
    sales.name = "Sales & Marketing".into();
    app.store
        .save_department(
            &WriteCtx::dingtalk("engine", 1_700_000_000_500),
            sales,
            directory_store::Expect::Any,
        )
        .await
        .expect("DingTalk-side write");
    let r = app
        .patch("/api/v1/users/alice", json!({"job_number": "A2"}))
        .await;
    assert_eq!(r.status, StatusCode::OK);

    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let r = app
            .get(&format!("/api/v1/changes?after={after}&limit=3"))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:#}", r.body);
        let items = r.body["items"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            assert_eq!(
                r.body["next_after"], after,
                "an empty poll keeps the cursor"
            );
            break;
        }
        after = r.body["next_after"].as_i64().expect("cursor");
        assert_eq!(
            r.body["next"],
            format!("/api/v1/changes?after={after}&limit=3")
        );
        seen.extend(items);
    }
    let summary: Vec<(String, String, String, String)> = seen
        .iter()
        .map(|c| {
            (
                c["origin"].as_str().unwrap_or("").to_owned(),
                c["kind"].as_str().unwrap_or("").to_owned(),
                c["id"].as_str().unwrap_or("").to_owned(),
                c["op"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expect = |o: &str, k: &str, i: &str, op: &str| {
        (o.to_owned(), k.to_owned(), i.to_owned(), op.to_owned())
    };
    assert_eq!(
        summary,
        vec![
            expect("oa", "department", "1", "create"),
            expect("oa", "department", "2", "create"),
            expect("oa", "department", "3", "create"),
            expect("oa", "department", "4", "create"),
            expect("oa", "user", "alice", "create"),
            expect("oa", "user", "bob", "create"),
            expect("dingtalk", "department", "3", "update"),
            expect("oa", "user", "alice", "update"),
        ]
    );
    let seqs: Vec<i64> = seen.iter().filter_map(|c| c["seq"].as_i64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(seen[0]["actor"], "api:hr");
    assert_eq!(seen[6]["after"]["name"], "Sales & Marketing");
    // States come in the routes' shape, not the store's.
    assert_eq!(seen[4]["after"]["mobile"], "+86-13800000001");
    assert_eq!(seen[4]["before"], Value::Null);
    assert_eq!(seen[7]["before"]["job_number"], "A1");
    assert_eq!(seen[7]["after"]["job_number"], "A2");
    app.stop().await;
}

#[tokio::test]
async fn sqlite_change_feed_lists_every_change_in_order() {
    change_feed_lists_every_change_in_order(App::sqlite().await).await;
}

#[tokio::test]
async fn postgres_change_feed_lists_every_change_in_order() {
    if let Some(app) = App::postgres().await {
        change_feed_lists_every_change_in_order(app).await;
    }
}

#[tokio::test]
async fn concurrent_patches_without_if_match_lose_no_field() {
    let app = App::sqlite().await;
    app.seed().await;
    // Two writers patch different fields of the same department at the same time; the API
    // re-applies a patch whose read went stale, so both changes survive.
    let a = app.patch("/api/v1/departments/3", json!({"order": 42}));
    let b = app.patch("/api/v1/departments/3", json!({"hide": true}));
    let (ra, rb) = tokio::join!(a, b);
    assert_eq!(ra.status, StatusCode::OK, "{:#}", ra.body);
    assert_eq!(rb.status, StatusCode::OK, "{:#}", rb.body);
    let d: Department = app
        .store
        .get_department(OaDeptId(3))
        .await
        .expect("read")
        .expect("present")
        .entity;
    assert_eq!((d.order, d.hide), (42, true));
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Authentication, the OpenAPI document, metrics
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn no_or_unknown_token_gets_401_with_a_challenge() {
    let app = App::sqlite().await;
    let r = app
        .raw(app.request(Method::GET, "/api/v1/departments"))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "unauthorized");
    assert_eq!(r.header("www-authenticate"), "Bearer realm=\"dingsync\"");

    let r = app
        .raw(
            app.request(Method::POST, "/api/v1/departments")
                .bearer_auth("not-the-token-0123456789")
                .json(&json!({"name": "Acme"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header("www-authenticate").contains("invalid_token"));
    assert!(
        !r.body.to_string().contains("not-the-token"),
        "the presented token is not echoed"
    );
    assert_eq!(
        app.store.latest_seq().await.expect("seq"),
        0,
        "nothing written"
    );

    let r = app
        .raw(
            app.request(Method::GET, "/api/v1/changes")
                .header("authorization", format!("Basic {TOKEN}")),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "only the Bearer scheme counts"
    );

    let r = app
        .raw(app.request(Method::GET, "/api/v1/openapi.json"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "the document needs no token");

    let r = app
        .send(Method::PUT, "/api/v1/departments", Some(&json!({})), &[])
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.code(), "method_not_allowed");

    let r = app.get("/api/v1/nothing-here").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "not_found");
    let r = app
        .raw(app.request(Method::GET, "/api/v1/nothing-here"))
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "unknown API paths need a token too"
    );
    let r = app.raw(app.request(Method::GET, "/healthz")).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the service's own routes still work"
    );
    let r = app.raw(app.request(Method::GET, "/elsewhere")).await;
    assert_eq!(r.body, "service fallback", "and so does its fallback");
    app.stop().await;
}

#[tokio::test]
async fn server_failures_are_opaque_500s() {
    let app = App::sqlite().await;
    app.seed().await;
    // Closing the pool makes every store call fail the way a lost database would.
    app.store.close().await;
    let r = app.get("/api/v1/users").await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{:#}", r.body);
    assert_eq!(r.code(), "internal");
    let text = r.body.to_string().to_lowercase();
    for leak in ["pool", "sqlite", "sqlx", "directory.db"] {
        assert!(!text.contains(leak), "{leak} leaked into {text}");
    }
    app.stop().await;
}

#[tokio::test]
async fn openapi_document_lists_every_route_schema_and_error() {
    let app = App::sqlite().await;
    let r = app
        .raw(app.request(Method::GET, "/api/v1/openapi.json"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = r.body;
    let mut routes = BTreeSet::new();
    let mut admin = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            let route = format!("{} {path}", method.to_uppercase());
            // The admin console's API is served by the console's router (its own tests check
            // each listed route is served); here: every one of them is in the document.
            if path.starts_with("/api/v1/admin/") {
                assert_eq!(
                    item[method]["security"][0]
                        .as_object()
                        .map(|o| o.contains_key("console_session")),
                    Some(true),
                    "{route} names the console session as its credential"
                );
                admin.insert(route);
            } else {
                routes.insert(route);
            }
        }
    }
    let listed: BTreeSet<String> = console::ADMIN_API
        .iter()
        .map(|r| format!("{} {}", r.method.to_uppercase(), r.path))
        .collect();
    assert_eq!(admin, listed);
    assert!(admin.contains("POST /api/v1/admin/actions"));
    let expected: BTreeSet<String> = [
        "GET /api/v1/openapi.json",
        "GET /api/v1/departments",
        "POST /api/v1/departments",
        "GET /api/v1/departments/{id}",
        "PATCH /api/v1/departments/{id}",
        "DELETE /api/v1/departments/{id}",
        "GET /api/v1/users",
        "POST /api/v1/users",
        "GET /api/v1/users/{id}",
        "PATCH /api/v1/users/{id}",
        "DELETE /api/v1/users/{id}",
        "GET /api/v1/role-groups",
        "POST /api/v1/role-groups",
        "GET /api/v1/role-groups/{id}",
        "PATCH /api/v1/role-groups/{id}",
        "DELETE /api/v1/role-groups/{id}",
        "GET /api/v1/roles",
        "POST /api/v1/roles",
        "GET /api/v1/roles/{id}",
        "PATCH /api/v1/roles/{id}",
        "DELETE /api/v1/roles/{id}",
        "GET /api/v1/role-assignments",
        "POST /api/v1/role-assignments",
        "DELETE /api/v1/role-assignments/{role}/{user}",
        "GET /api/v1/changes",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(routes, expected);

    // Every documented route is really served (authenticated ones answer 401, not 404/405).
    for route in &routes {
        let (method, path) = route.split_once(' ').expect("method and path");
        let concrete = path
            .replace("{id}", "1")
            .replace("{role}", "1")
            .replace("{user}", "u");
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let r = app.raw(app.request(method, &concrete)).await;
        assert!(
            r.status == StatusCode::UNAUTHORIZED || path.ends_with("openapi.json"),
            "{route} answered {}",
            r.status
        );
    }

    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for s in [
        "ErrorBody",
        "FieldError",
        "DepartmentView",
        "NewDepartment",
        "DepartmentPatch",
        "UserView",
        "NewUser",
        "UserPatch",
        "RoleView",
        "ChangesPage",
    ] {
        assert!(schemas.contains_key(s), "schema {s} missing");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let post_users = &doc["paths"]["/api/v1/users"]["post"]["responses"];
    for status in ["201", "401", "409", "413", "415", "422"] {
        assert!(
            post_users.get(status).is_some(),
            "POST /users documents {status}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn requests_are_counted_per_route_template() {
    // One recorder per process; install it here (no other test in this binary needs one).
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .expect("install recorder");
    let app = App::sqlite().await;
    app.seed().await;
    // The recorder is process-wide and other tests run in parallel, so count a request no
    // other test makes: deleting a missing role group.
    assert_eq!(
        app.delete("/api/v1/role-groups/987654").await.status,
        StatusCode::NOT_FOUND
    );
    let text = handle.render();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("dingsync_api_requests_total")
                && l.contains("route=\"/api/v1/role-groups/{id}\"")
                && l.contains("method=\"DELETE\"")
                && l.contains("status=\"404\"")
        })
        .unwrap_or_else(|| panic!("no counter for DELETE /role-groups/{{id}} 404 in:\n{text}"));
    assert!(line.ends_with(" 1"), "{line}");
    assert!(!text.contains("987654"), "concrete ids never become labels");
    assert!(text.contains("dingsync_api_request_duration_seconds"));
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------------------------

/// OA API writes per second and their latency percentiles with concurrent clients.
async fn measure_writes(app: App, backend: &str) {
    const CLIENTS: usize = 16;
    const PER_CLIENT: usize = 250;
    let app = std::sync::Arc::new(app);
    app.seed().await;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(PER_CLIENT);
            for i in 0..PER_CLIENT {
                let n = c * PER_CLIENT + i;
                let t = Instant::now();
                let r = app
                    .post(
                        "/api/v1/users",
                        json!({"id": format!("load{n:06}"), "name": format!("Load {n}"),
                               "departments": [{"dept": 3}],
                               "mobile": format!("137{n:08}"),
                               "email": format!("load{n}@acme.example")}),
                    )
                    .await;
                assert_eq!(r.status, StatusCode::CREATED, "{:#}", r.body);
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut all: Vec<Duration> = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client"));
    }
    let elapsed = started.elapsed();
    all.sort();
    let p = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    let writes = all.len();
    println!(
        "OA API on {backend}: {writes} user creates by {CLIENTS} clients in {:.2}s = {:.0} \
         writes/s; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        elapsed.as_secs_f64(),
        writes as f64 / elapsed.as_secs_f64(),
        p(0.50).as_secs_f64() * 1e3,
        p(0.99).as_secs_f64() * 1e3,
        all[writes - 1].as_secs_f64() * 1e3,
    );
    let depth = app.store.outbox_depth().await.expect("depth");
    // The seed wrote 6 entities; each load write queued exactly one entry.
    assert_eq!(depth.pending, writes as i64 + 6, "every write queued once");
    if let Ok(app) = std::sync::Arc::try_unwrap(app) {
        app.stop().await;
    }
}

/// Run with `cargo test -p dingsync --test it oa_api::load -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "load measurement; run explicitly"]
async fn load_oa_api_writes_on_sqlite() {
    measure_writes(App::sqlite().await, "SQLite").await;
}

/// The same on PostgreSQL (`DINGSYNC_TEST_PG_URL`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "load measurement; run explicitly"]
async fn load_oa_api_writes_on_postgres() {
    if let Some(app) = App::postgres().await {
        measure_writes(app, "PostgreSQL").await;
    }
}
