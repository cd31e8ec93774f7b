//! Signing in, throttling, sessions, CSRF and roles.

use axum::http::StatusCode;

use crate::helpers::{Client, PASSWORD, app};

#[tokio::test]
async fn sign_in_works_and_sets_a_strict_http_only_cookie() {
    let app = app();
    let mut client = Client::new(&app);
    let form = client.get("/console/login").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("name=\"username\"") && form.body.contains("name=\"password\""));
    let csrf = Client::csrf_in(&form.body);
    let reply = client
        .post_form(
            "/console/login",
            &[
                ("username", "olga"),
                ("password", PASSWORD),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.location.as_deref(), Some("/console"));
    let session = reply
        .set_cookies
        .iter()
        .find(|c| c.starts_with("dingsync_session="))
        .expect("session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    let page = client.get("/console").await;
    assert!(page.body.contains("Signed in as <strong>olga</strong>"));
    assert!(page.body.contains(">operator<"));
}

#[tokio::test]
async fn a_failed_sign_in_answers_401_with_the_form_again() {
    let app = app();
    let mut client = Client::new(&app);
    let csrf = Client::csrf_in(&client.get("/console/login").await.body);
    let reply = client
        .post_form(
            "/console/login",
            &[
                ("username", "olga"),
                ("password", "wrong password"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.body.contains("The user name or password is wrong."));
    assert!(
        reply.body.contains("name=\"password\""),
        "the form comes back"
    );
    assert!(reply.body.contains("value=\"olga\""), "the name is kept");
    assert!(!client.cookies.contains_key("dingsync_session"));
    // An unknown name gets the same answer: names are not revealed.
    let csrf = Client::csrf_in(&reply.body);
    let unknown = client
        .post_form(
            "/console/login",
            &[("username", "nobody"), ("password", "x"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert!(unknown.body.contains("The user name or password is wrong."));
}

#[tokio::test]
async fn repeated_failures_are_throttled_even_with_the_right_password() {
    let app = app();
    let mut client = Client::new(&app);
    let mut csrf = Client::csrf_in(&client.get("/console/login").await.body);
    for _ in 0..3 {
        let reply = client
            .post_form(
                "/console/login",
                &[("username", "olga"), ("password", "guess"), ("csrf", &csrf)],
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        csrf = Client::csrf_in(&reply.body);
    }
    let locked = client
        .post_form(
            "/console/login",
            &[
                ("username", "olga"),
                ("password", PASSWORD),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        locked
            .body
            .contains("Too many failed sign-ins; try again in 10 minutes"),
        "{}",
        locked.body
    );
    app.clock.advance(601);
    let csrf = Client::csrf_in(&locked.body);
    let ok = client
        .post_form(
            "/console/login",
            &[
                ("username", "olga"),
                ("password", PASSWORD),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_sign_in_without_the_form_token_is_refused() {
    let app = app();
    let mut client = Client::new(&app);
    client.get("/console/login").await;
    let reply = client
        .post_form(
            "/console/login",
            &[
                ("username", "olga"),
                ("password", PASSWORD),
                ("csrf", "forged"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.body.contains("form was not issued to your session"));
}

#[tokio::test]
async fn pages_need_a_session() {
    let app = app();
    let mut client = Client::new(&app);
    let reply = client.get("/console/attention").await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.location.as_deref(), Some("/console/login"));
    let api = client.get("/api/v1/admin/overview").await;
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);
    assert!(api.body.contains("\"code\":\"sign_in_required\""));
}

#[tokio::test]
async fn an_idle_session_expires_and_activity_keeps_it_alive() {
    let app = app();
    let mut client = Client::new(&app);
    client.sign_in("olga").await;
    app.clock.advance(500);
    assert_eq!(
        client.get("/console/runs").await.status,
        StatusCode::OK,
        "within the idle timeout"
    );
    app.clock.advance(500);
    assert_eq!(
        client.get("/console/runs").await.status,
        StatusCode::OK,
        "activity refreshed it"
    );
    app.clock.advance(601);
    let reply = client.get("/console/runs").await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.location.as_deref(), Some("/console/login?expired=1"));
    let form = client.get("/console/login?expired=1").await;
    assert!(
        form.body
            .contains("Your session ended after 10 minutes without activity")
    );
}

#[tokio::test]
async fn an_action_without_the_csrf_token_is_refused_with_403() {
    let app = app();
    let mut client = Client::new(&app);
    client.sign_in("olga").await;
    let reply = client
        .post_form(
            "/console/act",
            &[
                ("action", "retry_dead_letter"),
                ("dead_letter", "d1"),
                ("csrf", "0000"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.body.contains("Not allowed"));
    assert!(reply.body.contains("nothing was changed"));
    let missing = client
        .post_form(
            "/console/act",
            &[("action", "retry_dead_letter"), ("dead_letter", "d1")],
        )
        .await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    let api = client
        .post_json(
            "/api/v1/admin/actions",
            "nope",
            r#"{"action":"start_import"}"#,
        )
        .await;
    assert_eq!(api.status, StatusCode::FORBIDDEN);
    assert!(api.body.contains("csrf_rejected"));
    assert!(app.backend.performed.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn a_viewer_is_refused_operator_actions_with_a_clear_message() {
    let app = app();
    let mut client = Client::new(&app);
    let csrf = client.sign_in("victor").await;
    let attention = client.get("/console/attention").await;
    assert!(
        !attention.body.contains("value=\"retry_dead_letter\""),
        "no action buttons for viewers"
    );
    let reply = client
        .post_form(
            "/console/act",
            &[
                ("action", "retry_dead_letter"),
                ("dead_letter", "d1"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.body.contains("Your role (viewer) may look but not act: to retry dead letter d1 you need the operator role"), "{}", reply.body);
    let api = client
        .post_json(
            "/api/v1/admin/actions",
            &csrf,
            r#"{"action":"start_import"}"#,
        )
        .await;
    assert_eq!(api.status, StatusCode::FORBIDDEN);
    assert!(app.backend.performed.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn an_operator_action_reaches_the_backend_with_the_users_name() {
    let app = app();
    let mut client = Client::new(&app);
    let csrf = client.sign_in("olga").await;
    let reply = client
        .post_form(
            "/console/act",
            &[
                ("action", "retry_dead_letter"),
                ("dead_letter", "d1"),
                ("csrf", &csrf),
                ("return_to", "/console/attention"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.location.as_deref(), Some("/console/attention"));
    let performed = app.backend.performed.lock().expect("lock").clone();
    assert_eq!(performed.len(), 1);
    assert_eq!(performed[0].0, "olga");
    let page = client.get("/console/attention").await;
    assert!(
        page.body.contains("retry dead letter d1 (olga)."),
        "the notice shows once"
    );
    let again = client.get("/console/attention").await;
    assert!(!again.body.contains("retry dead letter d1 (olga)."));
}

#[tokio::test]
async fn return_to_never_leaves_the_console() {
    let app = app();
    let mut client = Client::new(&app);
    let csrf = client.sign_in("olga").await;
    let reply = client
        .post_form(
            "/console/act",
            &[
                ("action", "start_import"),
                ("csrf", &csrf),
                ("return_to", "//evil.example/console"),
            ],
        )
        .await;
    assert_eq!(reply.location.as_deref(), Some("/console"));
}

#[tokio::test]
async fn sign_out_ends_the_session() {
    let app = app();
    let mut client = Client::new(&app);
    let csrf = client.sign_in("olga").await;
    let reply = client
        .post_form("/console/logout", &[("csrf", &csrf)])
        .await;
    assert_eq!(reply.location.as_deref(), Some("/console/login"));
    assert_eq!(client.get("/console").await.status, StatusCode::SEE_OTHER);
}
