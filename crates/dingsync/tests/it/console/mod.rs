//! The admin console end to end: the real service (simulator, SQLite, workers when a test
//! wants them) in Debian's chromium through chromedriver. Each test photographs the pages it
//! visits into `target/console-screenshots/service-*.png`.
//!
//! Skips, saying so, without chromedriver unless `CONSOLE_REQUIRE_BROWSER=1`.
//!
//! - `browse`: sign in (and fail to), find a user, their timeline after a DingTalk change and
//!   an OA change (both shown), every page free of `[object Object]`.
//! - `decide`: approve a held deletion and see it applied, retry a dead letter after fixing
//!   its cause and see the user in the simulator.
//! - `plan`: apply part of a plan; a viewer refused an operator action; a form without its
//!   CSRF token refused.
//! - `steer`: an import and a reconcile started from the runs page, with live progress; a
//!   conflict turned around with "apply the other side".

mod browse;
mod decide;
mod mapping_change;
mod plan;
mod steer;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use dingsync::config::{Config, Secret};
use dingsync::server::Application;
use directory_store::Store;
use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::Method;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub const PASSWORD: &str = "correct horse battery";
pub const API_TOKEN: &str = "console-test-api-token-0123456789";
const CALLBACK_TOKEN: &str = "consoletesttoken";
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

/// Stops chromedriver (and its browser) however the test ends.
pub struct Driver(Child);

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

pub async fn start_driver() -> Option<(Driver, u16)> {
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

pub async fn browser(port: u16, profile: &std::path::Path) -> Client {
    let args = [
        "--headless".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--no-first-run".to_owned(),
        "--disable-background-networking".to_owned(),
        format!("--user-data-dir={}", profile.display()),
        "--window-size=1366,900".to_owned(),
        "--lang=en-US".to_owned(),
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

/// The page's text once it has loaded.
pub async fn text(client: &Client) -> String {
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

pub async fn shoot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(screenshot_dir().join(format!("service-{name}.png")), png).expect("write");
}

/// Opens `path` (below the service's base) and answers its text.
pub async fn open(client: &Client, base: &str, path: &str) -> String {
    client
        .goto(&format!("{base}{path}"))
        .await
        .expect("navigate");
    text(client).await
}

pub async fn sign_in(client: &Client, base: &str, name: &str, password: &str) -> String {
    client
        .goto(&format!("{base}/console/login"))
        .await
        .expect("login page");
    for (id, value) in [("username", name), ("password", password)] {
        let field = client.find(Locator::Id(id)).await.expect("field");
        field.send_keys(value).await.expect("type");
    }
    click(client, "button[type=submit]").await
}

/// Clicks the element `css` finds and answers the text of the page it leads to.
pub async fn click(client: &Client, css: &str) -> String {
    let button = client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    button.click().await.expect("click");
    text(client).await
}

/// Polls `check` every 100 ms for up to 30 s; fails the test with `what` otherwise.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not happen within 30 s");
}

/// What a test wants of the service.
#[derive(Clone, Copy)]
pub struct Setup {
    pub users: usize,
    pub depts: usize,
    /// Background workers (apply, push, catch-up) on.
    pub workers: bool,
    /// The simulator pushes events to the service's callback URL.
    pub callback: bool,
}

/// The real service over SQLite against the simulator, imported once, with console users
/// `olga` (operator) and `vera` (viewer).
pub struct Service {
    pub sim: dingtalk_sim::SimHandle,
    pub base: String,
    pub store: Store,
    pub http: reqwest::Client,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Service {
    pub async fn start(setup: Setup) -> Service {
        let sim = testkit::sim::start(dingtalk_sim::SimConfig {
            users: setup.users,
            depts: setup.depts,
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
        config.sync.workers = setup.workers;
        config.sync.reconcile_interval_secs = 0;
        config.api.tokens = vec![Secret::new(API_TOKEN)];
        if setup.callback {
            config.callback.token = Secret::new(CALLBACK_TOKEN);
            config.callback.aes_key = Secret::new(AES_KEY);
        }
        dingsync::commands::import(&config, false)
            .await
            .expect("import");
        let app = Application::build(&config).await.expect("build");
        let base = format!("http://127.0.0.1:{}", app.port());
        let store = app.store().clone();
        let now = dingsync::clock::system_clock().now_ms();
        for (name, role) in [
            ("olga", console::Role::Operator),
            ("vera", console::Role::Viewer),
        ] {
            dingsync::admin::users::add_user(&store, name, role, PASSWORD, now)
                .await
                .expect("add user");
        }
        let stop = CancellationToken::new();
        let task = tokio::spawn(app.run_until_stopped(stop.clone()));
        let service = Service {
            sim,
            base,
            store,
            http: reqwest::Client::new(),
            stop,
            task,
            _dir: dir,
        };
        if setup.callback {
            service
                .sim_call(
                    Method::POST,
                    "/_sim/callback",
                    json!({"url": format!("{}/callbacks/dingtalk", service.base),
                           "token": CALLBACK_TOKEN, "aes_key": AES_KEY}),
                )
                .await;
        }
        service
    }

    /// A simulator administrator route (what a DingTalk administrator does in its console).
    pub async fn sim_call(&self, method: Method, path: &str, body: Value) -> Value {
        testkit::sim::call(&self.http, &self.sim.base_url(), method, path, Some(&body)).await
    }

    /// The simulator's whole org.
    pub async fn sim_state(&self) -> Value {
        testkit::sim::state(&self.http, &self.sim.base_url()).await
    }

    /// The simulator's user `userid`, if it is in the org.
    pub async fn sim_user(&self, userid: &str) -> Option<Value> {
        let state = self.sim_state().await;
        state["users"]
            .as_array()
            .expect("users")
            .iter()
            .find(|u| u["userid"] == userid)
            .cloned()
    }

    /// An OA API call with the test token; answers the status and body.
    pub async fn oa(&self, method: Method, path: &str, body: Value) -> (u16, Value) {
        let reply = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(API_TOKEN)
            .header("if-match", "*")
            .json(&body)
            .send()
            .await
            .expect("OA API");
        let status = reply.status().as_u16();
        (status, reply.json().await.unwrap_or(Value::Null))
    }

    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
        self.sim.shutdown().await;
    }
}
