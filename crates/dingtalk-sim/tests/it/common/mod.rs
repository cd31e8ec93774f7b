//! Test helpers: start a simulator on a port-0 listener and talk to it over real HTTP.

#![allow(dead_code)] // Each test module uses a different subset of the helpers.

use dingtalk_sim::{SimConfig, SimHandle};
use serde_json::{Value, json};

/// A running simulator plus an HTTP client and a fetched access token.
pub struct Sim {
    pub handle: SimHandle,
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Sim {
    /// Starts a simulator with `config` (qps 0 unless the test sets it, so ordinary tests are
    /// never throttled by accident) and fetches a token.
    pub async fn start(config: SimConfig) -> Sim {
        let handle = testkit::sim::start(config).await;
        let base = handle.base_url();
        let http = testkit::http::client();
        let mut sim = Sim {
            handle,
            http,
            base,
            token: String::new(),
        };
        sim.token = sim.fetch_token().await;
        sim
    }

    /// A simulator with `users`/`depts` generated and no rate limit.
    pub async fn with_org(users: usize, depts: usize) -> Sim {
        Sim::start(SimConfig {
            users,
            depts,
            qps: 0,
            ..SimConfig::default()
        })
        .await
    }

    pub async fn fetch_token(&self) -> String {
        testkit::sim::fetch_token(&self.http, &self.handle).await
    }

    /// POSTs a JSON body to a DingTalk path with the token in the query.
    pub async fn call(&self, path: &str, body: Value) -> Value {
        self.http
            .post(format!("{}{}", self.base, path))
            .query(&[("access_token", self.token.as_str())])
            .json(&body)
            .send()
            .await
            .expect("call answers")
            .json()
            .await
            .expect("JSON answer")
    }

    /// POSTs a form body (token included as a form field, like DingTalk's curl examples).
    pub async fn call_form(&self, path: &str, fields: &[(&str, &str)]) -> Value {
        let mut form: Vec<(&str, &str)> = vec![("access_token", self.token.as_str())];
        form.extend_from_slice(fields);
        self.http
            .post(format!("{}{}", self.base, path))
            .form(&form)
            .send()
            .await
            .expect("call answers")
            .json()
            .await
            .expect("JSON answer")
    }

    /// Calls and asserts success, returning the whole body.
    pub async fn ok(&self, path: &str, body: Value) -> Value {
        let answer = self.call(path, body.clone()).await;
        assert_eq!(answer["errcode"], 0, "{path} {body} -> {answer}");
        answer
    }

    /// Calls and returns only the errcode.
    pub async fn code(&self, path: &str, body: Value) -> i64 {
        let answer = self.call(path, body).await;
        answer["errcode"].as_i64().expect("numeric errcode")
    }

    /// An admin call; returns (HTTP status, body).
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let path = format!("/_sim{path}");
        let (status, body) =
            testkit::sim::request(&self.http, &self.base, method, &path, body.as_ref()).await;
        (status.as_u16(), body)
    }

    pub async fn state(&self) -> Value {
        self.admin(reqwest::Method::GET, "/state", None).await.1
    }

    pub async fn settings(&self, patch: Value) -> Value {
        let (status, body) = self
            .admin(reqwest::Method::POST, "/settings", Some(patch))
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Creates a department under `parent` and returns its id.
    pub async fn dept(&self, name: &str, parent: i64) -> i64 {
        let answer = self
            .ok(
                "/topapi/v2/department/create",
                json!({"name": name, "parent_id": parent}),
            )
            .await;
        answer["result"]["dept_id"].as_i64().expect("dept_id")
    }

    /// Creates a user with the given id and mobile in `depts`.
    pub async fn user(&self, userid: &str, mobile: &str, depts: &str) -> Value {
        self.ok(
            "/topapi/v2/user/create",
            json!({"userid": userid, "name": format!("User {userid}"), "mobile": mobile, "dept_id_list": depts}),
        )
        .await
    }
}
