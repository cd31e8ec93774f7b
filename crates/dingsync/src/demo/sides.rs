//! The two sides as the demo drives them: the OA system calling the OA API ([`Oa`]) and a
//! DingTalk administrator using the simulator's `/_sim` routes ([`Admin`]). Both are thin views
//! over the rig's HTTP helpers, adding "fail unless 2xx" and the few lookups the demo's steps
//! need.

use anyhow::{Context, bail};
use dingsync_bench::rig::Rig;
use reqwest::Method;
use serde_json::Value;

/// The OA API, as the OA system would call it.
pub(super) struct Oa<'a>(pub(super) &'a Rig);

impl Oa<'_> {
    /// Sends a write and fails unless the API answers 2xx.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let what = format!("{method} {path}");
        let (status, body) = self
            .0
            .oa_send(method, path, body)
            .await
            .context(what.clone())?;
        if !status.is_success() {
            bail!("{what}: HTTP {status}: {body}");
        }
        Ok(body)
    }
    pub(super) async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(Method::POST, path, Some(&body)).await
    }
    pub(super) async fn patch(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(Method::PATCH, path, Some(&body)).await
    }
    pub(super) async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.send(Method::DELETE, path, None).await
    }
    /// Reads `path`; `None` when it does not exist (404).
    pub(super) async fn get(&self, path: &str) -> anyhow::Result<Option<Value>> {
        let (status, body) = self.0.oa_send(Method::GET, path, None).await?;
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            bail!("GET {path}: HTTP {status}: {body}");
        }
        Ok(Some(body))
    }
    pub(super) async fn user(&self, id: &str) -> anyhow::Result<Option<Value>> {
        self.get(&format!("/users/{id}")).await
    }
    pub(super) async fn any_active_user(&self) -> anyhow::Result<String> {
        let list = self
            .get("/users?limit=5&state=active")
            .await?
            .context("user list")?;
        list["items"]
            .as_array()
            .and_then(|us| us.first())
            .and_then(|u| u["id"].as_str())
            .map(str::to_owned)
            .context("the OA directory has no users after the import")
    }
}

/// The simulator's admin surface, acting as a DingTalk administrator.
pub(super) struct Admin<'a>(pub(super) &'a Rig);

impl Admin<'_> {
    pub(super) async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.0.sim_send(Method::POST, path, Some(body)).await
    }
    pub(super) async fn patch(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.0.sim_send(Method::PATCH, path, Some(body)).await
    }
    pub(super) async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.0.sim_send(Method::DELETE, path, None).await
    }
    /// The simulator's whole organization (`/_sim/state`).
    pub(super) async fn state(&self) -> anyhow::Result<Value> {
        self.0.sim_send(Method::GET, "/_sim/state", None).await
    }
    /// The call counters (`/_sim/calls`).
    pub(super) async fn calls(&self) -> anyhow::Result<Value> {
        self.0.sim_send(Method::GET, "/_sim/calls", None).await
    }
}

/// Department `id` in a `/_sim/state` snapshot.
pub(super) fn dept(state: &Value, id: i64) -> Option<&Value> {
    state["departments"]
        .as_array()?
        .iter()
        .find(|d| d["dept_id"] == id)
}

/// A department without children directly under the root (not `avoid`).
pub(super) fn leaf_department_under_root(state: &Value, avoid: i64) -> anyhow::Result<i64> {
    state["departments"]
        .as_array()
        .and_then(|ds| {
            ds.iter().find(|d| {
                d["parent_id"] == 1
                    && d["dept_id"] != avoid
                    && d["child_dept_ids"].as_array().is_some_and(Vec::is_empty)
            })
        })
        .and_then(|d| d["dept_id"].as_i64())
        .context("the sample organization has no leaf department under the root")
}

/// Another top-level department to move `moving` under.
pub(super) fn other_top_department(state: &Value, moving: i64) -> anyhow::Result<i64> {
    state["departments"]
        .as_array()
        .and_then(|ds| {
            ds.iter()
                .find(|d| d["parent_id"] == 1 && d["dept_id"] != moving)
        })
        .and_then(|d| d["dept_id"].as_i64())
        .context("the sample organization has a single top-level department")
}
