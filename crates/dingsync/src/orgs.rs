//! Several DingTalk organizations in one service (issue 20): one runtime per `[[orgs]]` table.
//!
//! Each org runs the very code a single-org service runs — DingTalk client with its own token
//! cache, callback route, Stream connection, apply / push / catch-up / reconcile workers — built
//! from the org's derived configuration ([`Config::for_org`]) over the store scoped to the org
//! ([`Store::for_org`]: its id map, bases, queues, holds, leases and checkpoints). Nothing is
//! shared between two orgs' runtimes but the OA directory, the database pool and the HTTP
//! listeners, so one org's failure (a revoked secret, its corp unreachable, a hold) leaves the
//! others running: each worker already survives its own errors by restarting after a pause.
//!
//! Where an org's tree sits in the OA directory: its DingTalk root is linked, in its id map, to
//! an OA department — `oa_parent` when the org names one, otherwise a top-level department made
//! for it (named after the org until its first import brings the corp's own name). That link is
//! made before anything else runs for the org ([`ensure_root`]), so the import never has to
//! guess which OA root is whose. A configuration without `[[orgs]]` has no runtimes here: the
//! service runs its one org as it always did.

use std::sync::Arc;

use anyhow::Context;
use directory_model::{Department, DingDeptId, OaDeptId};
use directory_store::{EntityKind, Store, WriteCtx};
use tokio::sync::{Notify, watch};

use crate::config::{Config, EventsMode, OrgSection};
use crate::stream::StreamStatus;

/// The callback path of one org: `/callbacks/dingtalk/{org}`.
pub fn callback_path(org: &str) -> String {
    format!("{}/{org}", crate::callback::CALLBACK_PATH)
}

/// One org's share of a service (see the module doc).
pub struct OrgRuntime {
    /// The org's name (`[[orgs]] name`).
    pub name: String,
    /// The single-org configuration the org runs on.
    pub config: Config,
    /// The store scoped to the org.
    pub store: Store,
    /// The engine's context (client, policy, clock) for the org.
    pub sync: sync_engine::SyncContext,
    /// Where the org's Stream client publishes its state (Stream mode only).
    pub stream_status: Option<watch::Sender<StreamStatus>>,
    /// Its receiving side, for `/readyz`.
    pub stream_watch: Option<watch::Receiver<StreamStatus>>,
    /// Shared by the org's callback route and its apply worker.
    pub apply_wake: Arc<Notify>,
}

impl std::fmt::Debug for OrgRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrgRuntime")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// What one org's runtime is built with, besides its section.
pub struct Build<'a> {
    /// The whole configuration.
    pub config: &'a Config,
    /// The unscoped store.
    pub store: &'a Store,
    /// This instance's name.
    pub instance: &'a str,
    /// The rate budgets every org's client draws on (opened once, so the IP layer is shared).
    pub budgets: &'a crate::budgets::Budgets,
    /// The service's clock.
    pub clock: crate::clock::SharedClock,
    /// The deletion threshold SIGHUP replaces live (one for every org).
    pub deletions: sync_engine::LiveThreshold,
}

impl std::fmt::Debug for Build<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Build")
            .field("store", self.store)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl OrgRuntime {
    /// Builds `org`'s runtime (nothing runs yet).
    pub async fn build(org: &OrgSection, b: &Build<'_>) -> anyhow::Result<Self> {
        let config = b.config.for_org(org);
        let store = b.store.for_org(&org.name);
        let client = b
            .budgets
            .client(&config)
            .with_context(|| format!("org {}: the DingTalk client", org.name))?;
        let sync =
            sync_engine::SyncContext::new(store.clone(), client, crate::workers::policy(&config))
                .with_deletions(b.deletions.clone())
                .with_actor(format!("dingsync@{}/{}", b.instance, org.name))
                .with_clock(b.clock.clone());
        let (stream_status, stream_watch) = if config.events.mode == EventsMode::Stream {
            let (tx, rx) = watch::channel(StreamStatus::default());
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        Ok(Self {
            name: org.name.clone(),
            config,
            store,
            sync,
            stream_status,
            stream_watch,
            apply_wake: Arc::new(Notify::new()),
        })
    }
}

/// Links `org`'s DingTalk root to its OA department, unless already linked: `oa_parent` (which
/// must exist and be top-level), or a new top-level OA department named after the org. `store` is scoped to
/// the org. Returns the OA department.
pub async fn ensure_root(store: &Store, org: &OrgSection, now_ms: i64) -> anyhow::Result<OaDeptId> {
    if let Some(linked) = store.oa_id_of::<OaDeptId>(&DingDeptId::ROOT).await? {
        return Ok(linked);
    }
    let oa = match org.oa_parent {
        Some(id) => {
            let id = OaDeptId(id);
            match store.get_department(id).await? {
                None => anyhow::bail!(
                    "org {}: oa_parent: OA department {} does not exist",
                    org.name,
                    id.0
                ),
                // DingTalk's root has no parent, and the engine mirrors that onto the OA
                // department it is linked to: a department with a parent would be moved.
                Some(d) if d.entity.parent.is_some() => anyhow::bail!(
                    "org {}: oa_parent: OA department {} has a parent; an org's tree must be a \
                     top-level OA department",
                    org.name,
                    id.0
                ),
                Some(_) => id,
            }
        }
        None => {
            let id = OaDeptId(store.allocate_ids(EntityKind::Department, 1).await?);
            let ctx = WriteCtx::import(format!("dingsync:org:{}", org.name), now_ms);
            store
                .create_department(&ctx, Department::new(id, org.name.clone(), None))
                .await
                .with_context(|| format!("org {}: creating its OA department", org.name))?;
            id
        }
    };
    store.id_map_put(&oa, &DingDeptId::ROOT).await?;
    tracing::info!(org = %org.name, oa_dept = oa.0, "organization root linked");
    Ok(oa)
}

/// The orgs a command runs for: every org, or the one `--org` names (an unknown name is an
/// error listing the known ones).
pub fn selected(config: &Config, only: Option<&str>) -> anyhow::Result<Vec<OrgSection>> {
    let all = config.effective_orgs();
    match only {
        None => Ok(all),
        Some(name) => match all.iter().find(|o| o.name == name) {
            Some(o) => Ok(vec![o.clone()]),
            None => anyhow::bail!(
                "--org {name:?}: no such organization (configured: {})",
                all.iter()
                    .map(|o| o.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    }
}

/// Runs a one-shot command for each org `only` selects (every org by default), on the org's
/// derived configuration, under a heading naming the org when the configuration has
/// `[[orgs]]`. With `link_root`, the org's root is linked first ([`ensure_root`]; import and
/// reconcile write into its tree). One org failing does not stop the others; the failures are
/// reported together at the end. Without `[[orgs]]` it runs once, on `config` itself.
pub async fn for_each<T, F, Fut>(
    config: &Config,
    only: Option<&str>,
    link_root: bool,
    mut run: F,
) -> anyhow::Result<Vec<T>>
where
    F: FnMut(Config) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    if config.orgs.is_empty() {
        if let Some(name) = only.filter(|n| *n != directory_store::DEFAULT_ORG) {
            anyhow::bail!(
                "--org {name:?}: no such organization (this configuration has no [[orgs]]: its \
                 one organization is named default)"
            );
        }
        return Ok(vec![run(config.clone()).await?]);
    }
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for org in selected(config, only)? {
        println!("== org {} ==", org.name);
        let derived = config.for_org(&org);
        let outcome = async {
            if link_root {
                let store = crate::server::open_store(&derived).await?;
                ensure_root(&store, &org, crate::clock::system_clock().now_ms()).await?;
            }
            run(derived).await
        }
        .await;
        match outcome {
            Ok(v) => done.push(v),
            Err(e) => {
                eprintln!("org {}: {e:#}", org.name);
                failed.push(org.name);
            }
        }
    }
    if !failed.is_empty() {
        anyhow::bail!("failed for org(s): {}", failed.join(", "));
    }
    Ok(done)
}
