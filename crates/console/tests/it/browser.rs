//! The console in a real browser: Debian's `chromium` driven through `chromedriver`
//! (WebDriver, via `fantoccini`), against the router served on a real socket. Each page's
//! screenshot goes to `target/console-screenshots/` for a person to look at.
//!
//! Without `chromedriver` on `PATH` the test says so and skips, unless
//! `CONSOLE_REQUIRE_BROWSER=1` (CI sets it once `.ci/run` installs the packages).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::helpers::{MemoryBackend, PASSWORD, TestClock, config};

/// Stops chromedriver (and so its browser) when the test ends, however it ends.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

async fn start_driver() -> Option<(Driver, u16)> {
    let found = Command::new("chromedriver")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var("CONSOLE_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "chromedriver is not installed (apt-get install chromium chromium-driver)"
        );
        eprintln!("SKIPPED: chromedriver is not installed; the browser test did not run");
        return None;
    }
    let port = free_port();
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
        "--disable-quic".to_owned(),
        "--no-first-run".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        format!("--user-data-dir={}", profile.display()),
        "--window-size=1366,900".to_owned(),
    ];
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        json!({ "args": args, "binary": "/usr/bin/chromium" }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("WebDriver session")
}

async fn serve() -> SocketAddr {
    let backend = Arc::new(MemoryBackend::default());
    let clock = Arc::new(TestClock(std::sync::atomic::AtomicU64::new(
        console::Clock::now(&console::SystemClock),
    )));
    let router = console::router(backend, config(clock));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        let _ = axum::serve(listener, service).await;
    });
    addr
}

async fn shoot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(screenshot_dir().join(format!("{name}.png")), png).expect("write screenshot");
}

async fn sign_in(client: &Client, base: &str, name: &str, password: &str) {
    client
        .goto(&format!("{base}/console/login"))
        .await
        .expect("login page");
    client
        .find(Locator::Id("username"))
        .await
        .expect("name")
        .send_keys(name)
        .await
        .expect("type");
    client
        .find(Locator::Id("password"))
        .await
        .expect("pw")
        .send_keys(password)
        .await
        .expect("type");
    client
        .find(Locator::Css("button[type=submit]"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
}

/// The page's text, once the navigation a click started has settled (reading while the old
/// page is torn down fails with a stale or missing element, so retry briefly).
async fn text(client: &Client) -> String {
    for _ in 0..50 {
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
    panic!("the page did not settle within 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_chromium_and_every_page_is_photographed() {
    let Some((_driver, port)) = start_driver().await else {
        return;
    };
    let profile = tempfile::tempdir().expect("profile dir");
    let addr = serve().await;
    let base = format!("http://{addr}");
    let client = browser(port, profile.path()).await;

    client
        .goto(&format!("{base}/console/login"))
        .await
        .expect("login");
    shoot(&client, "login").await;
    sign_in(&client, &base, "olga", "not the password").await;
    assert!(
        text(&client)
            .await
            .contains("The user name or password is wrong.")
    );
    shoot(&client, "login-failed").await;

    sign_in(&client, &base, "olga", PASSWORD).await;
    assert!(text(&client).await.contains("Signed in as olga"));
    let pages = [
        ("overview", "/console"),
        ("users", "/console/users?q=wang"),
        ("departments", "/console/departments?under=d-1"),
        ("roles", "/console/roles"),
        ("timeline", "/console/users/u-1003"),
        ("attention", "/console/attention"),
        ("plan", "/console/plan"),
        ("runs", "/console/runs"),
        ("run", "/console/runs/r-42"),
        ("audit", "/console/audit"),
        ("settings", "/console/settings"),
        ("bad-input", "/console/users?state=happy"),
    ];
    for (name, path) in pages {
        client.goto(&format!("{base}{path}")).await.expect("page");
        assert!(!text(&client).await.contains("[object Object]"));
        shoot(&client, name).await;
    }

    // Approve one held deletion by its button; the page comes back with the notice.
    client
        .goto(&format!("{base}/console/attention"))
        .await
        .expect("attention");
    let approve = client
        .find(Locator::Css(
            "button[aria-label='Approve deleting Zhao Lei (u-1006)']",
        ))
        .await
        .expect("approve button");
    approve.click().await.expect("click");
    let after = text(&client).await;
    assert!(
        after.contains("approve held deletion h1-e2 of hold h1 (olga)."),
        "{after}"
    );
    assert!(
        !after.contains("Zhao Lei"),
        "the approved entry left the list"
    );
    shoot(&client, "attention-after-approve").await;

    // 200% zoom: half the CSS width; the navigation wraps above the content.
    client.set_window_size(683, 900).await.expect("resize");
    client
        .goto(&format!("{base}/console"))
        .await
        .expect("overview");
    shoot(&client, "overview-zoom200").await;
    client.set_window_size(1366, 900).await.expect("resize");

    // A viewer sees no action buttons.
    client.delete_all_cookies().await.expect("sign out");
    sign_in(&client, &base, "victor", PASSWORD).await;
    client
        .goto(&format!("{base}/console/attention"))
        .await
        .expect("attention");
    assert!(
        client
            .find_all(Locator::Css("button.danger"))
            .await
            .expect("query")
            .is_empty()
    );
    shoot(&client, "attention-viewer").await;
    client.close().await.expect("close");
}
