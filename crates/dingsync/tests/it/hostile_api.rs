//! Hostile requests against the OA API over real HTTP (issue 9 §4), the cases `oa_api.rs` does
//! not already cover: every write route without a token, with a wrong one and with a revoked
//! one; a body with no content type, one that is an array, one nested ten thousand deep, one
//! with a byte-order mark or trailing garbage, and one over the limit on every write route.
//! Each must be refused with the right status and a JSON error naming the field or reason, and
//! leave the directory, the outbox and the audit log / change feed exactly as they were.

use crate::common;

use common::{App, Reply, TOKEN, api};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

/// Every route that writes, with a body that would be accepted with a valid token.
fn writes() -> Vec<(Method, &'static str, Value)> {
    vec![
        (
            Method::POST,
            "/api/v1/departments",
            json!({"name": "Ops", "parent": 1}),
        ),
        (
            Method::PATCH,
            "/api/v1/departments/3",
            json!({"name": "Sales EMEA"}),
        ),
        (Method::DELETE, "/api/v1/departments/3", Value::Null),
        (
            Method::POST,
            "/api/v1/users",
            json!({"id": "eve", "name": "Eve", "mobile": "13900000077", "departments": [{"dept": 3}]}),
        ),
        (
            Method::PATCH,
            "/api/v1/users/alice",
            json!({"name": "Alicia"}),
        ),
        (Method::DELETE, "/api/v1/users/bob", Value::Null),
        (
            Method::POST,
            "/api/v1/role-groups",
            json!({"name": "Posts"}),
        ),
        (
            Method::POST,
            "/api/v1/role-assignments",
            json!({"user": "alice", "role": 1}),
        ),
    ]
}

fn assert_json_error(r: &Reply, status: StatusCode, code: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {:#}", r.body);
    assert_eq!(r.code(), code, "{what}: {:#}", r.body);
    assert!(
        !r.body["error"]["message"].as_str().unwrap_or("").is_empty(),
        "{what}: errors carry a message: {:#}",
        r.body
    );
}

#[tokio::test]
async fn writes_without_a_valid_token_are_refused_and_change_nothing() {
    let app = App::sqlite().await;
    app.seed().await;
    let before = app.fingerprint().await;
    for (method, path, body) in writes() {
        let with_body = |req: reqwest::RequestBuilder| {
            if body.is_null() { req } else { req.json(&body) }
        };
        let r = app.raw(with_body(app.request(method.clone(), path))).await;
        assert_json_error(&r, StatusCode::UNAUTHORIZED, "unauthorized", path);
        assert_eq!(r.header("www-authenticate"), "Bearer realm=\"dingsync\"");

        let wrong = format!("{TOKEN}x");
        let r = app
            .raw(with_body(
                app.request(method.clone(), path).bearer_auth(&wrong),
            ))
            .await;
        assert_json_error(&r, StatusCode::UNAUTHORIZED, "unauthorized", path);
        assert!(
            !r.body.to_string().contains(&wrong),
            "the token is not echoed"
        );

        // An empty bearer value and a token in the wrong scheme.
        let r = app
            .raw(with_body(
                app.request(method.clone(), path)
                    .header("authorization", "Bearer "),
            ))
            .await;
        assert_json_error(&r, StatusCode::UNAUTHORIZED, "unauthorized", path);
        let r = app
            .raw(with_body(
                app.request(method.clone(), path)
                    .header("authorization", format!("Token {TOKEN}")),
            ))
            .await;
        assert_json_error(&r, StatusCode::UNAUTHORIZED, "unauthorized", path);
    }
    assert_eq!(app.fingerprint().await, before, "nothing was written");
    app.stop().await;
}

#[tokio::test]
async fn a_revoked_token_no_longer_gets_in() {
    let app = App::sqlite().await;
    app.seed().await;
    let before = app.fingerprint().await;
    // The service restarted with a configuration that no longer lists the test token: the
    // same directory behind a router that only knows the new one.
    let rotated = api::router(api::ApiState::new(
        app.store.clone(),
        vec![api::ApiToken::new("hr", "rotated-token-9876543210")],
    ));
    for (method, path, body) in writes() {
        let request = axum::http::Request::builder()
            .method(method.as_str())
            .uri(path)
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(if body.is_null() {
                Vec::new()
            } else {
                body.to_string().into_bytes()
            }))
            .expect("request");
        let response = rotated.clone().oneshot(request).await.expect("answer");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        let v: Value = serde_json::from_slice(&bytes).expect("JSON error");
        assert_eq!(v["error"]["code"], "unauthorized", "{path}");
    }
    assert_eq!(app.fingerprint().await, before, "nothing was written");
    app.stop().await;
}

#[tokio::test]
async fn malformed_bodies_are_refused_with_the_reason_and_change_nothing() {
    let app = App::sqlite().await;
    app.seed().await;
    let before = app.fingerprint().await;
    let deep = format!("{}{}", "{\"name\":".repeat(10_000), "}".repeat(10_000));
    let huge = format!("{{\"name\":\"{}\"}}", "x".repeat(1024 * 1024 + 1));
    for (method, path, valid) in writes().into_iter().filter(|(_, _, b)| !b.is_null()) {
        let send = |content_type: Option<&str>, body: String| {
            let mut req = app.request(method.clone(), path).bearer_auth(TOKEN);
            if let Some(ct) = content_type {
                req = req.header("content-type", ct);
            }
            app.raw(req.body(body))
        };
        let json_ct = Some("application/json");

        let r = send(None, r#"{"name":"Ops","parent":1}"#.to_owned()).await;
        assert_json_error(
            &r,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            path,
        );

        let r = send(
            Some("application/x-www-form-urlencoded"),
            "name=Ops".to_owned(),
        )
        .await;
        assert_json_error(
            &r,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            path,
        );

        let r = send(json_ct, r#"["Ops", 1]"#.to_owned()).await;
        assert_json_error(
            &r,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            path,
        );
        assert!(
            r.fields().iter().any(|(f, _)| f == "body"),
            "{path}: {:#}",
            r.body
        );

        let r = send(json_ct, deep.clone()).await;
        assert!(
            matches!(r.status.as_u16(), 400 | 422),
            "{path}: deep JSON: {:#}",
            r.body
        );
        assert!(
            !r.fields().is_empty(),
            "{path}: deep JSON names a field: {:#}",
            r.body
        );

        let r = send(json_ct, "\u{feff}{\"name\":\"Ops\"}".to_owned()).await;
        assert_json_error(&r, StatusCode::BAD_REQUEST, "bad_request", path);
        assert!(
            r.fields().iter().any(|(f, _)| f == "body"),
            "{path}: {:#}",
            r.body
        );

        let r = send(json_ct, r#"{"name":"Ops"} {"name":"Again"}"#.to_owned()).await;
        // A second document after the first: refused (400), or the first's own problem (422).
        assert!(
            matches!(r.status.as_u16(), 400 | 422) && !r.fields().is_empty(),
            "{path}: trailing document: {:#}",
            r.body
        );

        let r = send(json_ct, huge.clone()).await;
        assert_json_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", path);

        let r = send(json_ct, {
            // The route's own valid body with one field more.
            let mut extra = valid.clone();
            extra["admin"] = json!(true);
            extra.to_string()
        })
        .await;
        assert_json_error(
            &r,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            path,
        );
        assert!(
            r.fields()
                .iter()
                .any(|(f, rule)| f == "admin" && rule == "unknown_field"),
            "{path}: {:#}",
            r.body
        );
    }
    assert_eq!(app.fingerprint().await, before, "nothing was written");
    app.stop().await;
}
