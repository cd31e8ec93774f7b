//! Every page renders from the backend's views; bad input and failures become messages.

use std::sync::atomic::Ordering;

use axum::http::StatusCode;

use crate::helpers::{Client, app};

#[tokio::test]
async fn every_page_renders_with_the_chrome() {
    let app = app();
    let mut client = Client::new(&app);
    client.sign_in("olga").await;
    let pages = [
        ("/console", "DingTalk budget by API"),
        ("/console/users", "Zhang Min"),
        ("/console/users?q=wang&state=conflicted", "Wang Fang"),
        ("/console/departments", "Head office"),
        ("/console/departments?under=d-2", "Platform"),
        ("/console/users/u-1003", "Senior Engineer"),
        ("/console/departments/d-2", "Id mapping"),
        ("/console/roles", "Finance approver"),
        ("/console/roles/71", "Timeline"),
        ("/console/role-groups/71", "Id mapping"),
        ("/console/attention", "mobile number already exists"),
        ("/console/plan", "Lead Analyst"),
        ("/console/runs", "crawling users"),
        ("/console/runs/r-42", "dead-lettered"),
        ("/console/audit", "hr-sync"),
        ("/console/settings", "history.keep_days"),
    ];
    for (path, expected) in pages {
        let page = client.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        assert!(page.body.contains(expected), "{path} lacks {expected:?}");
        assert!(
            page.body.contains("Skip to content"),
            "{path} has the skip link"
        );
        assert!(
            page.body.contains("Attention") && page.body.contains("aria-label=\"5 waiting\""),
            "{path} nav count"
        );
        assert!(!page.body.contains("[object Object]"));
    }
}

#[tokio::test]
async fn the_object_page_marks_differing_fields_and_shows_the_merge() {
    let app = app();
    let mut client = Client::new(&app);
    client.sign_in("olga").await;
    let page = client.get("/console/users/u-1003").await.body;
    assert_eq!(
        page.matches("class=\"differs\"").count(),
        2,
        "title and email differ"
    );
    assert!(page.contains("OA is authoritative for title"));
    assert!(page.contains("value=\"push_now\"") && page.contains("value=\"refetch\""));
}

#[tokio::test]
async fn the_api_serves_the_same_views_as_json() {
    let app = app();
    let mut client = Client::new(&app);
    client.sign_in("olga").await;
    let me: serde_json::Value =
        serde_json::from_str(&client.get("/api/v1/admin/me").await.body).expect("json");
    assert_eq!(me["role"], "operator");
    let users: serde_json::Value =
        serde_json::from_str(&client.get("/api/v1/admin/users?state=held").await.body)
            .expect("json");
    assert_eq!(users["total"], 1);
    assert_eq!(users["rows"][0]["state"], "held");
    let csrf = me["csrf_token"].as_str().expect("token").to_owned();
    let reply = client
        .post_json(
            "/api/v1/admin/actions",
            &csrf,
            r#"{"action":"push_now","kind":"user","id":"u-1002"}"#,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.body.contains("push user u-1002 now"));
}

#[tokio::test]
async fn secrets_are_redacted_on_the_page_and_in_the_api() {
    let app = app();
    let mut client = Client::new(&app);
    client.sign_in("victor").await;
    let page = client.get("/console/settings").await.body;
    let api = client.get("/api/v1/admin/settings").await.body;
    for body in [&page, &api] {
        assert!(!body.contains("AESKEY-SHOULD-NEVER-SHOW"));
        assert!(!body.contains("DBPASS-NEVER"));
        assert!(body.contains("dingabc123"), "plain values stay");
    }
    assert!(page.contains("(set, hidden)"));
}

#[tokio::test]
async fn bad_input_gives_a_message_naming_the_field() {
    let app = app();
    let mut client = Client::new(&app);
    let csrf = client.sign_in("olga").await;
    let state = client.get("/console/users?state=happy").await;
    assert_eq!(state.status, StatusCode::BAD_REQUEST);
    assert!(
        state
            .body
            .contains("State: &#34;happy&#34; is not a sync state")
            || state
                .body
                .contains("State: &quot;happy&quot; is not a sync state"),
        "{}",
        state.body
    );
    let date = client.get("/console/audit?from=yesterday").await;
    assert_eq!(date.status, StatusCode::BAD_REQUEST);
    assert!(date.body.contains("is not a date"));
    let action = client
        .post_form(
            "/console/act",
            &[("action", "retry_dead_letter"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(action.status, StatusCode::BAD_REQUEST);
    assert!(
        action.body.contains("Dead_letter: is required"),
        "{}",
        action.body
    );
    let plan = client
        .post_form(
            "/console/act",
            &[
                ("action", "apply_plan"),
                ("scope", "selected"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert!(plan.body.contains("select at least one plan entry"));
    let api = client.get("/api/v1/admin/users?page=minus").await;
    assert_eq!(api.status, StatusCode::BAD_REQUEST);
    assert!(
        api.body.contains("\"code\":\"bad_input\"")
            && api.body.contains("Page: must be a whole number")
    );
}

#[tokio::test]
async fn unknown_objects_and_pages_are_404_with_a_message() {
    let app = app();
    let mut client = Client::new(&app);
    client.sign_in("olga").await;
    let user = client.get("/console/users/u-9").await;
    assert_eq!(user.status, StatusCode::NOT_FOUND);
    assert!(user.body.contains("User u-9 was not found"));
    let page = client.get("/console/nowhere").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let api = client.get("/api/v1/admin/nowhere").await;
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    assert!(api.body.contains("not_found"));
}

#[tokio::test]
async fn a_refused_action_and_an_internal_failure_read_as_plain_sentences() {
    let app = app();
    let mut client = Client::new(&app);
    let csrf = client.sign_in("olga").await;
    let refused = client
        .post_form(
            "/console/act",
            &[("action", "apply_plan"), ("scope", "all"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(
        refused
            .body
            .contains("2 deletions exceed the threshold of 1; confirm them to apply")
    );
    app.backend.fail_overview.store(true, Ordering::SeqCst);
    let failed = client.get("/console").await;
    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        failed
            .body
            .contains("The service could not complete this request")
    );
    assert!(
        !failed.body.contains("hunter2") && !failed.body.contains("postgres://"),
        "no cause on the page"
    );
}

#[tokio::test]
async fn applying_a_selection_sends_exactly_the_chosen_entries() {
    let app = app();
    let mut client = Client::new(&app);
    let csrf = client.sign_in("olga").await;
    let reply = client
        .post_form(
            "/console/act",
            &[
                ("action", "apply_plan"),
                ("scope", "selected"),
                ("entry", "p1"),
                ("entry", "p4"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let performed = app.backend.performed.lock().expect("lock").clone();
    assert_eq!(
        performed[0].1,
        console::OperatorAction::ApplyPlan {
            entries: Some(vec!["p1".to_owned(), "p4".to_owned()]),
            confirm_deletions: false
        }
    );
}

#[tokio::test]
async fn pages_carry_security_headers_and_assets_are_embedded() {
    let app = app();
    let mut client = Client::new(&app);
    let css = client.get("/console/assets/console.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.body.contains(".badge"));
    let js = client.get("/console/assets/console.js").await;
    assert!(js.body.contains("data-confirm"));
    let request = axum::http::Request::get("/console/login")
        .body(axum::body::Body::empty())
        .expect("request");
    let response = tower::ServiceExt::oneshot(app.router.clone(), request)
        .await
        .expect("infallible");
    let csp = response
        .headers()
        .get("content-security-policy")
        .expect("csp")
        .to_str()
        .expect("ascii");
    assert!(csp.contains("default-src 'self'"));
    assert_eq!(
        response.headers().get("x-frame-options").expect("xfo"),
        "DENY"
    );
}

/// Every route the OpenAPI document lists for the admin API is served: signed in, each GET
/// answers its view as JSON, and the POST an action's outcome.
#[tokio::test]
async fn every_listed_admin_api_route_is_served() {
    let app = app();
    let mut client = Client::new(&app);
    client.sign_in("olga").await;
    let me: serde_json::Value =
        serde_json::from_str(&client.get("/api/v1/admin/me").await.body).expect("json");
    let csrf = me["csrf_token"].as_str().expect("token").to_owned();
    for route in console::ADMIN_API {
        // Ids the test backend knows, so every route must answer 200.
        let id = match route.path.split('/').nth(4) {
            Some("users") => "u-1003",
            Some("departments") => "d-2",
            Some("runs") => "r-42",
            _ => "71",
        };
        let path = route.path.replace("{id}", id);
        let reply = match route.method {
            "get" => client.get(&path).await,
            "post" => {
                client
                    .post_json(&path, &csrf, r#"{"action":"start_import"}"#)
                    .await
            }
            other => panic!("{other} is no method the table may list"),
        };
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{} {path}: {}",
            route.method,
            reply.body
        );
        let json: serde_json::Value = serde_json::from_str(&reply.body)
            .unwrap_or_else(|e| panic!("{path} answered no JSON ({e}): {}", reply.body));
        // A view may carry an `error` field of its own (the plan's last computation): only a
        // value there is one.
        assert!(
            json.get("error").is_none_or(serde_json::Value::is_null),
            "{path}: {json}"
        );
    }
}
