//! The DingTalk rate budgets of this process, and the clients built on them: one per org.
//!
//! DingTalk counts calls per app per API and, over every app and API, per egress IP
//! (`dingtalk_client::budget_layers`). A deployment serving several orgs (`[[orgs]]`) runs one
//! app per org behind one IP, so [`Budgets`] holds:
//! - one **app layer** (`[dingtalk] qps` per API), in which each org's client counts under its
//!   own client id, so one org's throttled import never slows another's;
//! - one **IP layer** (`[dingtalk] ip_budget` over everything), which every org's calls also
//!   pass.
//!
//! Both are kept where `[dingtalk] rate_budget` says: in the database's rate slots (shared with
//! every instance on PostgreSQL, and with a one-shot command beside `serve` on SQLite) or in this
//! process. Build [`Budgets`] once per process and every org's client with
//! [`Budgets::client_for`]: clients built from two `Budgets` would not share the IP layer.

use std::sync::Arc;

use anyhow::Context;
use dingtalk_client::{AppBudget, DingTalkClient, LayeredBudget, RateBudget, SlidingWindowBudget};
use directory_store::{Store, StoreOptions};

use crate::config::{Config, OrgSection};
use crate::server::{BUDGET_CONNECTIONS, shares_budget};

/// The two layers every DingTalk call of this process passes.
#[derive(Debug, Clone)]
pub struct Budgets {
    /// Calls per app per API; every org counts under its client id.
    app: Arc<dyn RateBudget>,
    /// Calls over every app and API; `None` when `ip_budget = 0`.
    ip: Option<Arc<dyn RateBudget>>,
}

impl Budgets {
    /// The budgets as configured: in the database's rate slots when [`shares_budget`] says so
    /// (a small pool of their own), else — and for an in-memory SQLite database, which no other
    /// process can open — in this process. `instance` names this process in the slots.
    pub async fn open(config: &Config, store: &Store, instance: &str) -> anyhow::Result<Self> {
        if !shares_budget(config) {
            return Ok(Self::local(config));
        }
        let slots = Store::connect_rate_slots(
            store.url(),
            StoreOptions {
                max_connections: BUDGET_CONNECTIONS,
                ..StoreOptions::default()
            },
        )
        .await
        .context(
            "cannot open the shared rate budget (on PostgreSQL the database of database.url; on \
             SQLite the file beside it named like the database with -budget appended: check that \
             its directory is writable)",
        )?;
        let Some(slots) = slots else {
            return Ok(Self::local(config));
        };
        let d = &config.dingtalk;
        let cfg = crate::server::client_config(config);
        let shared = |qps: u32| -> Arc<dyn RateBudget> {
            Arc::new(sync_engine::SharedBudget::new(
                slots.clone(),
                qps,
                cfg.rate_window,
                cfg.request_timeout,
                instance,
            ))
        };
        tracing::info!(
            qps = d.qps,
            ip_budget = d.ip_budget,
            "DingTalk rate budgets (per app and API, and per egress IP) shared with every process on this database"
        );
        Ok(Self {
            app: shared(d.qps),
            ip: (d.ip_budget > 0).then(|| shared(d.ip_budget)),
        })
    }

    /// The budgets of this process only (`rate_budget = "local"`).
    pub fn local(config: &Config) -> Self {
        let d = &config.dingtalk;
        let window = crate::server::client_config(config).rate_window;
        Self {
            app: Arc::new(SlidingWindowBudget::new(d.qps, window)),
            ip: (d.ip_budget > 0)
                .then(|| Arc::new(SlidingWindowBudget::new(d.ip_budget, window)) as _),
        }
    }

    /// The budget of one app (its client id): its own per-API windows, then the IP's.
    pub fn for_app(&self, client_id: &str) -> Arc<dyn RateBudget> {
        let app: Arc<dyn RateBudget> = Arc::new(AppBudget::new(self.app.clone(), client_id));
        match &self.ip {
            Some(ip) => Arc::new(LayeredBudget::new(app, ip.clone())),
            None => app,
        }
    }

    /// The DingTalk client of `org` (its app's credentials, `[dingtalk]`'s host and limits),
    /// drawing on these budgets under the org's client id.
    pub fn client_for(&self, config: &Config, org: &OrgSection) -> anyhow::Result<DingTalkClient> {
        let mut cfg = crate::server::client_config(config);
        cfg.client_id.clone_from(&org.client_id);
        cfg.client_secret = org.client_secret.expose().to_owned().into();
        DingTalkClient::with_budget(cfg, self.for_app(&org.client_id))
            .with_context(|| format!("cannot build the DingTalk client of org {}", org.name))
    }

    /// The client of the one org of `[dingtalk]` (a configuration without `[[orgs]]`).
    pub fn client(&self, config: &Config) -> anyhow::Result<DingTalkClient> {
        let cfg = crate::server::client_config(config);
        let budget = self.for_app(&cfg.client_id);
        DingTalkClient::with_budget(cfg, budget).context("cannot build the DingTalk client")
    }
}
