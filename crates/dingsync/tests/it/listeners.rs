//! `[server] listen` and `internal_listen`: split, the public listener serves the callback route
//! and the probes only, and the internal one the OA API, `/metrics` and OpenAPI; unsplit, one
//! address serves everything (issue 18, "Listeners").

use dingsync::config::{Config, Secret};
use dingsync::server::Application;
use tokio_util::sync::CancellationToken;

fn config(dir: &tempfile::TempDir, internal: &str) -> Config {
    let mut c = Config::default();
    // No DingTalk call is made: the workers are off and nothing asks for readiness here.
    c.dingtalk.base_url = "http://127.0.0.1:9".into();
    c.dingtalk.client_id = "listenersapp".into();
    c.dingtalk.client_secret = Secret::new("listeners-client-secret");
    c.callback.token = Secret::new("listenertoken");
    c.callback.aes_key = Secret::new("a".repeat(43));
    c.api.tokens = vec![Secret::new("listeners-api-token-0123456789")];
    c.sync.workers = false;
    c.database.url = Secret::new(format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("d.db").display()
    ));
    c.server.listen = "127.0.0.1:0".into();
    c.server.internal_listen = internal.into();
    c
}

/// Status of `method path` on `addr`.
async fn status(
    http: &reqwest::Client,
    method: &str,
    addr: std::net::SocketAddr,
    path: &str,
) -> u16 {
    let url = format!("http://{addr}{path}");
    let request = match method {
        "POST" => http.post(url).body("{}"),
        _ => http.get(url),
    };
    request.send().await.expect("request").status().as_u16()
}

#[tokio::test]
async fn split_listeners_keep_the_oa_api_off_the_public_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = Application::build(&config(&dir, "127.0.0.1:0"))
        .await
        .expect("build");
    assert!(app.is_split());
    let (public, internal) = (app.local_addr(), app.internal_addr());
    assert_ne!(public, internal);
    let stop = CancellationToken::new();
    let task = tokio::spawn(app.run_until_stopped(stop.clone()));
    let http = testkit::http::client();

    // Public: the callback route answers (refusing an unsigned push), the OA API does not exist.
    let callback = status(&http, "POST", public, "/callbacks/dingtalk").await;
    assert_ne!(callback, 404, "the callback must be on the public listener");
    for path in ["/api/v1/users", "/api/v1/openapi.json", "/metrics"] {
        assert_eq!(
            status(&http, "GET", public, path).await,
            404,
            "{path} on the public listener"
        );
    }
    assert_eq!(status(&http, "GET", public, "/healthz").await, 200);

    // Internal: the OA API (asking for a token), OpenAPI, metrics; no callback route.
    assert_eq!(status(&http, "GET", internal, "/api/v1/users").await, 401);
    assert_eq!(
        status(&http, "GET", internal, "/api/v1/openapi.json").await,
        200
    );
    assert_eq!(status(&http, "GET", internal, "/metrics").await, 200);
    assert_eq!(status(&http, "GET", internal, "/healthz").await, 200);
    assert_eq!(
        status(&http, "POST", internal, "/callbacks/dingtalk").await,
        404
    );

    stop.cancel();
    task.await.expect("join").expect("clean stop");
}

#[tokio::test]
async fn one_address_serves_everything_by_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = Application::build(&config(&dir, "")).await.expect("build");
    assert!(!app.is_split());
    let addr = app.local_addr();
    assert_eq!(app.internal_addr(), addr);
    let stop = CancellationToken::new();
    let task = tokio::spawn(app.run_until_stopped(stop.clone()));
    let http = testkit::http::client();
    assert_ne!(
        status(&http, "POST", addr, "/callbacks/dingtalk").await,
        404
    );
    assert_eq!(status(&http, "GET", addr, "/api/v1/users").await, 401);
    assert_eq!(status(&http, "GET", addr, "/metrics").await, 200);
    stop.cancel();
    task.await.expect("join").expect("clean stop");
}
