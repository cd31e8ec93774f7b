//! The service started in-process against a simulator, on a free port: what `dingsync demo`
//! and `dingsync bench` run.
//!
//! Both stand up "a simulated DingTalk + a fresh directory + the service" through one piece of
//! code, the bench crate's `Rig`, which asks [`Local`] to start the service (see
//! `dingsync_bench::service` for why that is a trait). The configuration is [`Config::default`]
//! with only what a local run must change: the simulator's address and credentials, the rig's
//! random tokens, a port chosen by the OS, and no scheduled reconcile.

use anyhow::Context;
use dingsync_bench::{RunningService, Service, ServiceSpec};
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, EventsMode, Secret};
use crate::server::Application;

/// Starts [`Application`], the code `serve` runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Local;

impl Service for Local {
    fn start<'a>(
        &'a self,
        sim: &'a dingtalk_sim::SimHandle,
        spec: &'a ServiceSpec,
        stop: CancellationToken,
    ) -> BoxFuture<'a, anyhow::Result<RunningService>> {
        Box::pin(async move {
            let config = local_config(sim, spec)?;
            config.validate()?;
            let app = Application::build(&config).await?;
            let addr = app.local_addr();
            let ctx = app
                .sync_context()
                .cloned()
                .context("the service has no DingTalk client")?;
            let task = tokio::spawn(app.run_until_stopped(stop));
            Ok(RunningService {
                addr,
                callback_path: crate::callback::CALLBACK_PATH,
                ctx,
                task,
            })
        })
    }
}

/// The configuration of a service that talks to `sim`, with the `[mapping]` and `[scope]` of
/// the spec's file (compiled here, once).
fn local_config(sim: &dingtalk_sim::SimHandle, spec: &ServiceSpec) -> anyhow::Result<Config> {
    let mut config = Config::default();
    if let Some(path) = &spec.mapping {
        let (mapping, scope) = crate::config::mapping::read_file(path).map_err(|problems| {
            anyhow::anyhow!(
                "the mapping file {} is not valid:\n  {}",
                path.display(),
                problems.join("\n  ")
            )
        })?;
        config.mapping = mapping;
        config.scope = scope;
        config.rules = crate::config::mapping::compile(&config.mapping, &config.scope).map_err(
            |problems| {
                anyhow::anyhow!(
                    "the mapping file {} is not valid:\n  {}",
                    path.display(),
                    problems.join("\n  ")
                )
            },
        )?;
    }
    config.dingtalk.base_url = sim.base_url();
    config.dingtalk.client_id = sim.config().client_id.clone();
    config.dingtalk.client_secret = Secret::new(sim.config().client_secret.clone());
    config.dingtalk.corp_id = sim.config().corp_id.clone();
    config.dingtalk.qps = spec.qps;
    config.callback.token = Secret::new(spec.callback_token.expose());
    config.callback.aes_key = Secret::new(spec.aes_key.expose());
    config.database.url = Secret::new(spec.database_url.expose());
    config.server.listen = "127.0.0.1:0".into();
    config.api.tokens = vec![Secret::new(spec.api_token.expose())];
    // `bench scim` provisions as an IdP with a token of its own.
    config.scim.tokens = vec![Secret::new(spec.scim_token.expose())];
    // The local service is reached over plain-HTTP loopback: a Secure cookie would not be sent.
    config.console.secure_cookies = false;
    config.events.catchup_interval_secs = spec.catchup_interval_secs;
    if spec.stream_events {
        config.events.mode = EventsMode::Stream;
    }
    config.sync.reconcile_interval_secs = 0;
    config.sync.workers = spec.workers;
    Ok(config)
}
