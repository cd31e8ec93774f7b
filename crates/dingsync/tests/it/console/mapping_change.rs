//! A changed `[mapping]` waiting for approval, through the admin JSON API of the real service
//! (no browser): the attention page lists it with both fingerprints; a viewer, a request
//! without the CSRF token and an approval naming another fingerprint are refused and change
//! nothing; an operator's approval applies the implied plan (DingTalk's job numbers gain their
//! prefix, read from the simulator), approves the change and is audited with their name.

use dingsync::config::{Config, Secret};
use dingsync::server::Application;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::PASSWORD;

/// A console session over plain HTTP: the session cookie and the CSRF token.
struct Session {
    http: reqwest::Client,
    base: String,
    cookie: String,
    csrf: String,
}

fn cookie_value(reply: &reqwest::Response, name: &str) -> Option<String> {
    reply
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
}

impl Session {
    async fn sign_in(base: &str, name: &str) -> Session {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let form = http
            .get(format!("{base}/console/login"))
            .send()
            .await
            .expect("login page");
        let login_cookie = cookie_value(&form, "dingsync_login").expect("login cookie");
        let body = form.text().await.expect("body");
        let csrf = body
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("csrf field")
            .to_owned();
        let reply = http
            .post(format!("{base}/console/login"))
            .header(header::COOKIE, login_cookie)
            .form(&[("username", name), ("password", PASSWORD), ("csrf", &csrf)])
            .send()
            .await
            .expect("sign in");
        let cookie = cookie_value(&reply, "dingsync_session").expect("session cookie");
        let mut session = Session {
            http,
            base: base.to_owned(),
            cookie,
            csrf: String::new(),
        };
        let (_, me) = session
            .call(Method::GET, "/api/v1/admin/me", None, false)
            .await;
        session.csrf = me["csrf_token"].as_str().expect("csrf token").to_owned();
        session
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        with_csrf: bool,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(header::COOKIE, &self.cookie);
        if with_csrf {
            request = request.header("x-csrf-token", &self.csrf);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply = request.send().await.expect("admin API");
        let status = reply.status();
        (status, reply.json().await.unwrap_or(Value::Null))
    }

    async fn approve(&self, fingerprint: &str, with_csrf: bool) -> (StatusCode, Value) {
        let action = json!({"action": "approve_mapping_change", "fingerprint": fingerprint});
        self.call(
            Method::POST,
            "/api/v1/admin/actions",
            Some(action),
            with_csrf,
        )
        .await
    }
}

async fn sim_job_numbers(sim: &dingtalk_sim::SimHandle) -> Vec<String> {
    let state = testkit::sim::state(&reqwest::Client::new(), &sim.base_url()).await;
    state["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["job_number"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_approves_a_mapping_change_through_the_admin_api() {
    let sim = testkit::sim::start(dingtalk_sim::SimConfig {
        users: 25,
        depts: 3,
        qps: 0,
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
    config.sync.reconcile_interval_secs = 0;
    config.api.tokens = vec![Secret::new(super::API_TOKEN)];
    // The directory is imported with no mapping: the identity is approved.
    dingsync::commands::import(&config, false)
        .await
        .expect("import");

    // Restarted with a mapping: DingTalk's job numbers carry an "E".
    let text = r#"
[mapping.users.fields.job_number]
to_dingtalk = 'user.job_number == null ? null : "E" + user.job_number'
to_oa = 'user.job_number != null && user.job_number.startsWith("E") ? user.job_number.substring(1) : user.job_number'
owner = "oa"
"#;
    let path = dir.path().join("mapping.toml");
    std::fs::write(&path, text).expect("write");
    let (mapping, scope) = dingsync::config::mapping::read_file(&path).expect("reads");
    config.mapping = mapping;
    config.scope = scope;
    config.rules = dingsync::config::mapping::compile(&config.mapping, &config.scope).expect("ok");
    let running = sync_engine::approval::fingerprint_of(&config.rules);
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
    let before = sim_job_numbers(&sim).await;
    assert!(before.iter().all(|j| !j.starts_with('E')));

    let olga = Session::sign_in(&base, "olga").await;
    let (status, attention) = olga
        .call(Method::GET, "/api/v1/admin/attention", None, false)
        .await;
    assert_eq!(status, StatusCode::OK, "{attention}");
    assert_eq!(attention["mapping_change"]["running"], running.as_str());
    assert_eq!(attention["mapping_change"]["approved"], "identity");
    let (_, overview) = olga
        .call(Method::GET, "/api/v1/admin/overview", None, false)
        .await;
    assert!(
        overview["attention_count"].as_u64().is_some_and(|n| n >= 1),
        "{overview}"
    );

    // Refused: a viewer, a request without the CSRF token, another fingerprint.
    let vera = Session::sign_in(&base, "vera").await;
    let (status, body) = vera.approve(&running, true).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = olga.approve(&running, false).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "csrf_rejected");
    let (status, body) = olga.approve("0123456789abcdef", true).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        sync_engine::approval::pending(&store, &config.rules)
            .await
            .expect("state")
    );
    assert_eq!(sim_job_numbers(&sim).await, before, "nothing applied");

    // Approved by the operator.
    let (status, body) = olga.approve(&running, true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("approved")),
        "{body}"
    );
    assert!(
        !sync_engine::approval::pending(&store, &config.rules)
            .await
            .expect("state")
    );
    let after = sim_job_numbers(&sim).await;
    assert_eq!(after.len(), before.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(a, &format!("E{b}"));
    }
    let (_, attention) = olga
        .call(Method::GET, "/api/v1/admin/attention", None, false)
        .await;
    assert!(attention["mapping_change"].is_null(), "{attention}");
    // Audited with the person's name, refused attempts too.
    let actions = store
        .operator_actions_search(None, None, None, None, 100)
        .await
        .expect("audit");
    let approvals: Vec<_> = actions
        .iter()
        .filter(|a| a.action.starts_with("approve the mapping change"))
        .collect();
    assert!(
        approvals
            .iter()
            .any(|a| a.actor == "olga" && !a.outcome.starts_with("refused"))
    );
    assert!(
        approvals
            .iter()
            .any(|a| a.actor == "olga" && a.outcome.starts_with("refused"))
    );
    stop.cancel();
    let _ = task.await;
    sim.shutdown().await;
}
