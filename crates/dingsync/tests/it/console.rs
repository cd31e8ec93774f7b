//! The admin console end to end: the real service (simulator, SQLite, an import done) in
//! Debian's chromium through chromedriver. Signs in (and fails to), finds a user by name,
//! opens their timeline, and photographs each page into `target/console-screenshots/`.
//! Skips, saying so, without chromedriver unless `CONSOLE_REQUIRE_BROWSER=1`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use dingsync::config::{Config, Secret};
use dingsync::server::Application;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const PASSWORD: &str = "correct horse battery";

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

async fn start_driver() -> Option<(Driver, u16)> {
    if Command::new("chromedriver")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        assert!(
            std::env::var("CONSOLE_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "chromedriver is not installed (apt-get install chromium chromium-driver)"
        );
        eprintln!("SKIPPED: chromedriver is not installed; the browser test did not run");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver(child);
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Some((driver, port));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not listen on port {port} within 10 s");
}

async fn browser(port: u16, profile: &std::path::Path) -> Client {
    let args = [
        "--headless".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--no-first-run".to_owned(),
        format!("--user-data-dir={}", profile.display()),
        "--window-size=1366,900".to_owned(),
    ];
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        json!({ "args": args, "binary": "/usr/bin/chromium" }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("WebDriver session")
}

async fn text(client: &Client) -> String {
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let ready = client.execute("return document.readyState", vec![]).await;
        if ready
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .as_deref()
            != Some("complete")
        {
            continue;
        }
        if let Ok(body) = client.find(Locator::Css("body")).await
            && let Ok(text) = body.text().await
        {
            return text;
        }
    }
    panic!("the page did not settle within 10 s");
}

async fn shoot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(screenshot_dir().join(format!("service-{name}.png")), png).expect("write");
}

async fn sign_in(client: &Client, base: &str, name: &str, password: &str) -> String {
    client
        .goto(&format!("{base}/console/login"))
        .await
        .expect("login page");
    for (id, value) in [("username", name), ("password", password)] {
        let field = client.find(Locator::Id(id)).await.expect("field");
        field.send_keys(value).await.expect("type");
    }
    let button = client
        .find(Locator::Css("button[type=submit]"))
        .await
        .expect("button");
    button.click().await.expect("click");
    text(client).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_the_real_service_finds_a_user_and_shows_their_timeline() {
    let Some((_driver, port)) = start_driver().await else {
        return;
    };
    let sim = testkit::sim::start(dingtalk_sim::SimConfig {
        users: 20,
        depts: 3,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::default();
    config.dingtalk.base_url = sim.base_url();
    config.dingtalk.client_id = sim.config().client_id.clone();
    config.dingtalk.client_secret = Secret::new(sim.config().client_secret.clone());
    config.database.url = Secret::new(format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("d.db").display()
    ));
    config.server.listen = "127.0.0.1:0".into();
    config.console.secure_cookies = false;
    config.sync.workers = false;
    dingsync::commands::import(&config, false)
        .await
        .expect("import");
    let app = Application::build(&config).await.expect("build");
    let base = format!("http://127.0.0.1:{}", app.port());
    let store = app.store().clone();
    let now = dingsync::clock::system_clock().now_ms();
    dingsync::admin::users::add_user(&store, "alice", console::Role::Operator, PASSWORD, now)
        .await
        .expect("add user");
    let stop = CancellationToken::new();
    let task = tokio::spawn(app.run_until_stopped(stop.clone()));
    let users = store
        .list_users(&directory_store::UserQuery {
            limit: 1,
            ..Default::default()
        })
        .await
        .expect("users");
    let user = users.items[0].entity.clone();

    let profile = tempfile::tempdir().expect("profile");
    let client = browser(port, profile.path()).await;
    let refused = sign_in(&client, &base, "alice", "wrong password!").await;
    assert!(refused.to_lowercase().contains("sign in"), "{refused}");
    assert!(
        !refused.contains("Overview"),
        "a wrong password must not sign in: {refused}"
    );
    let overview = sign_in(&client, &base, "alice", PASSWORD).await;
    assert!(overview.contains("alice"), "{overview}");
    assert!(
        overview.contains("outbox"),
        "the overview shows the backlogs: {overview}"
    );
    shoot(&client, "overview").await;

    let q: String = user.name.chars().take(3).collect();
    client
        .goto(&format!(
            "{base}/console/users?q={}",
            form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
        ))
        .await
        .expect("search");
    let found = text(&client).await;
    assert!(
        found.contains(&user.name),
        "search {q:?} finds {}: {found}",
        user.name
    );
    shoot(&client, "users").await;

    client
        .goto(&format!("{base}/console/users/{}", user.id.as_str()))
        .await
        .expect("user page");
    let detail = text(&client).await;
    assert!(
        detail.contains("import"),
        "the timeline shows the import: {detail}"
    );
    shoot(&client, "timeline").await;
    for page in ["departments", "attention", "runs", "audit", "settings"] {
        client
            .goto(&format!("{base}/console/{page}"))
            .await
            .expect("page");
        let body = text(&client).await;
        assert!(!body.contains("[object Object]"), "{page}: {body}");
        shoot(&client, page).await;
    }
    let _ = client.close().await;
    stop.cancel();
    let _ = task.await;
}
