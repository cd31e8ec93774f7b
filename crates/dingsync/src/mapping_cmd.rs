//! `[mapping]` / `[scope]` at the edge: `dingsync mapping test`, and the approval of a changed
//! mapping (see `sync_engine::approval`): the gate that holds `serve`'s writing workers while
//! a change waits, and the hooks `import` and `reconcile` call.
//!
//! Why a gate and not the old rules: the service only knows the rules it was started with, so
//! running on with the approved ones is impossible; and writing with the new ones before anyone
//! looked at what they change is what the issue forbids. So nothing is written until the
//! operator has seen `dingsync plan` and said `dingsync reconcile --yes`; events and OA writes
//! wait durably in the inbox and outbox meanwhile.

use std::time::Duration;

use anyhow::Context as _;
use directory_model::{Department, DingDeptId, DingUserId, FieldAccess, OaDeptId, OaUserId};
use sync_engine::SyncContext;
use sync_engine::approval;
use sync_engine::translate::{self, IdMap, ding};
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// How often a held worker looks whether the change was approved.
const POLL: Duration = Duration::from_secs(1);

/// Holds a writing worker while the running rules are not the approved ones.
#[derive(Debug, Clone)]
pub struct Gate {
    ctx: SyncContext,
}

impl Gate {
    /// A gate over the context's store and rules.
    pub fn new(ctx: &SyncContext) -> Self {
        Self { ctx: ctx.clone() }
    }

    /// Returns `true` once the running rules are approved, `false` if `cancel` fired first.
    pub async fn wait(&self, cancel: &CancellationToken) -> anyhow::Result<bool> {
        let rules = &self.ctx.policy.rules;
        let mut warned = false;
        loop {
            if !approval::pending(&self.ctx.store, rules).await? {
                if warned {
                    tracing::info!("mapping change approved; the workers go on");
                }
                return Ok(true);
            }
            if !warned {
                let approved = approval::approved(&self.ctx.store).await?;
                tracing::warn!(
                    fingerprint = approval::fingerprint_of(rules),
                    approved,
                    "[mapping]/[scope] changed since they were approved: nothing is synced \
                     until the change is approved. Preview it with `dingsync plan`, approve it \
                     with `dingsync reconcile --yes`"
                );
                metrics::gauge!("dingsync_mapping_change_held").set(1.0);
                warned = true;
            }
            tokio::select! {
                () = cancel.cancelled() => return Ok(false),
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

/// Before an import: refuses while a mapping change waits and the directory holds data (the
/// import would rewrite it with the new rules unseen). Returns whether the directory is empty.
pub async fn before_import(ctx: &SyncContext, dry_run: bool) -> anyhow::Result<bool> {
    let (depts, users) = ctx.store.counts().await?;
    let fresh = depts <= 1 && users == 0;
    if !dry_run && !fresh && approval::pending(&ctx.store, &ctx.policy.rules).await? {
        anyhow::bail!(
            "[mapping]/[scope] changed since they were approved, and an import would rewrite \
             the directory with them unseen: preview the change with `dingsync plan` and \
             approve it with `dingsync reconcile --yes`"
        );
    }
    Ok(fresh)
}

/// After a complete import into an empty directory: its rules are the approved ones.
pub async fn after_import(ctx: &SyncContext, fresh: bool, complete: bool) -> anyhow::Result<()> {
    if fresh && complete {
        approval::approve(&ctx.store, &ctx.policy.rules, ctx.now_ms()).await?;
    }
    Ok(())
}

/// The line `plan` and `reconcile` print when a mapping change waits, if one does.
pub async fn pending_note(ctx: &SyncContext) -> anyhow::Result<Option<String>> {
    if !approval::pending(&ctx.store, &ctx.policy.rules).await? {
        return Ok(None);
    }
    Ok(Some(format!(
        "[mapping]/[scope] changed since they were approved ({} -> {}): the plan above is what \
         the change implies; `dingsync reconcile --yes` applies it and approves the change",
        short(&approval::approved(&ctx.store).await?),
        short(&approval::fingerprint_of(&ctx.policy.rules)),
    )))
}

/// After reconcile: with `--yes` and nothing failed, the running rules are approved.
pub async fn after_reconcile(ctx: &SyncContext, yes: bool, failed: usize) -> anyhow::Result<()> {
    if yes && failed == 0 && approval::pending(&ctx.store, &ctx.policy.rules).await? {
        approval::approve(&ctx.store, &ctx.policy.rules, ctx.now_ms()).await?;
        crate::outln!("the [mapping]/[scope] change is approved; held workers go on");
    }
    Ok(())
}

fn short(fingerprint: &str) -> &str {
    fingerprint.get(..12).unwrap_or(fingerprint)
}

/// `dingsync mapping ...`.
#[derive(Debug, clap::Subcommand)]
pub enum MappingCmd {
    /// For one real entity: both sides' values before and after the mapping, and which scope
    /// rules it matches.
    Test {
        /// A user, by OA id (= DingTalk userid).
        #[arg(
            long,
            conflicts_with = "department",
            required_unless_present = "department"
        )]
        user: Option<String>,
        /// A department, by OA id.
        #[arg(long)]
        department: Option<i64>,
    },
}

/// Runs a `mapping` subcommand.
pub async fn run(config: &Config, cmd: MappingCmd) -> anyhow::Result<()> {
    let ctx = crate::commands::context(config).await?;
    match cmd {
        MappingCmd::Test { user: Some(id), .. } => test_user(&ctx, &id).await,
        MappingCmd::Test {
            department: Some(id),
            ..
        } => test_department(&ctx, OaDeptId(id)).await,
        MappingCmd::Test { .. } => anyhow::bail!("give --user ID or --department ID"),
    }
}

async fn test_user(ctx: &SyncContext, id: &str) -> anyhow::Result<()> {
    let rules = &ctx.policy.rules;
    let oa_id = OaUserId::new(id);
    let oa = ctx.store.get_user(&oa_id).await?.map(|v| v.entity);
    let userid = ctx
        .store
        .ding_id_of(&oa_id)
        .await?
        .unwrap_or_else(|| DingUserId::new(id));
    let wire = match ctx.client.user_get(&ding::wire_user(&userid)).await {
        Ok(w) => Some(w),
        Err(e) if e.errcode() == Some(dingtalk_proto::ErrCode::USER_NOT_FOUND) => None,
        Err(e) => return Err(e).context("reading the user from DingTalk"),
    };
    if oa.is_none() && wire.is_none() {
        anyhow::bail!("user {id}: neither OA nor DingTalk has it");
    }
    crate::outln!("user {id}   (mapping {})", approval::fingerprint_of(rules));
    if let Some(oa) = &oa {
        let mapped = rules.user_to_dingtalk(oa);
        crate::outln!("\nOA -> DingTalk");
        match &mapped {
            Ok(m) => fields_table(oa, &m.entity),
            Err(e) => crate::outln!("  mapping FAILED: {}", sync_engine::error_chain(e)),
        }
        let mut ancestors = Vec::new();
        for m in &oa.departments {
            for d in oa_chain(ctx, m.dept).await? {
                if !ancestors.contains(&d) {
                    ancestors.push(d);
                }
            }
        }
        if let Some(l) = rules.loaded() {
            scope_lines(
                "scope.to_dingtalk.users",
                l.scope.includes_oa_user(oa, &ancestors),
            );
        }
    }
    if let Some(wire) = &wire {
        let ids = IdMap::load_all(&ctx.store).await?;
        let read = translate::user::read_wire(wire, &ids, oa.as_ref(), rules)
            .context("translating DingTalk's user")?;
        crate::outln!("\nDingTalk -> OA");
        match rules.user_to_oa(read.dingtalk.clone(), oa.as_ref(), read.expected.clone()) {
            Ok(after) => fields_table(&read.dingtalk, &after),
            Err(e) => crate::outln!("  mapping FAILED: {}", sync_engine::error_chain(&e)),
        }
        let chains = ctx.client.dept_list_parents_by_user(&wire.userid).await?;
        let mut ancestors: Vec<DingDeptId> = Vec::new();
        for d in chains.into_iter().flatten().map(ding::dept) {
            if !ancestors.contains(&d) {
                ancestors.push(d);
            }
        }
        if let Some(l) = rules.loaded() {
            scope_lines(
                "scope.to_oa.users",
                l.scope.includes_dingtalk_user(&read.dingtalk, &ancestors),
            );
        }
    }
    Ok(())
}

async fn test_department(ctx: &SyncContext, id: OaDeptId) -> anyhow::Result<()> {
    let rules = &ctx.policy.rules;
    let oa = ctx.store.get_department(id).await?.map(|v| v.entity);
    let ding_id = ctx.store.ding_id_of(&id).await?;
    let wire = match ding_id {
        Some(d) => Some(
            ctx.client
                .dept_get(ding::wire_dept(d))
                .await
                .context("reading the department from DingTalk")?,
        ),
        None => None,
    };
    if oa.is_none() && wire.is_none() {
        anyhow::bail!("department {id}: neither OA nor DingTalk has it");
    }
    crate::outln!(
        "department {id}   (mapping {})",
        approval::fingerprint_of(rules)
    );
    if let Some(oa) = &oa {
        crate::outln!("\nOA -> DingTalk");
        match rules.department_to_dingtalk(oa) {
            Ok(m) => fields_table(oa, &m.entity),
            Err(e) => crate::outln!("  mapping FAILED: {}", sync_engine::error_chain(&e)),
        }
        if let Some(l) = rules.loaded() {
            let chain = oa_chain(ctx, id).await?;
            scope_lines(
                "scope.to_dingtalk.departments",
                l.scope.includes_oa_department(oa, &chain),
            );
        }
    }
    if let (Some(wire), Some(d)) = (&wire, ding_id) {
        let ids = IdMap::load_all(&ctx.store).await?;
        let values = translate::department::scope_view(wire, &ids);
        crate::outln!("\nDingTalk -> OA");
        match rules.department_to_oa(values.clone(), oa.as_ref()) {
            Ok(after) => fields_table(&values, &after),
            Err(e) => crate::outln!("  mapping FAILED: {}", sync_engine::error_chain(&e)),
        }
        if let Some(l) = rules.loaded() {
            let chain: Vec<DingDeptId> = ctx
                .client
                .dept_list_parents(ding::wire_dept(d))
                .await?
                .into_iter()
                .map(ding::dept)
                .collect();
            scope_lines(
                "scope.to_oa.departments",
                l.scope.includes_dingtalk_department(&values, &chain),
            );
        }
    }
    Ok(())
}

/// One line per field: the value before, the value after, `*` where they differ.
fn fields_table<E: FieldAccess>(before: &E, after: &E) {
    crate::outln!("  {:<16} {:<32} {}", "field", "before", "after");
    for f in E::all_fields() {
        let (b, a) = (before.field_json(*f), after.field_json(*f));
        let mark = if b == a { " " } else { "*" };
        crate::outln!(
            "{mark} {:<16} {:<32} {}",
            E::field_name(*f),
            clip(&b.to_string()),
            clip(&a.to_string())
        );
    }
}

fn scope_lines(section: &str, decision: Result<mapping::ScopeDecision, mapping::MapError>) {
    match decision {
        Ok(d) => {
            crate::outln!(
                "  [{section}]: {}",
                if d.included {
                    "IN scope"
                } else {
                    "OUT of scope"
                }
            );
            for r in d.rules {
                crate::outln!(
                    "    {} {}",
                    if r.matched {
                        "matches    "
                    } else {
                        "NOT matched"
                    },
                    r.name
                );
            }
        }
        Err(e) => crate::outln!("  [{section}]: FAILED: {}", sync_engine::error_chain(&e)),
    }
}

fn clip(text: &str) -> String {
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

async fn oa_chain(ctx: &SyncContext, id: OaDeptId) -> anyhow::Result<Vec<OaDeptId>> {
    let mut chain = vec![id];
    let mut parent = ctx
        .store
        .get_department(id)
        .await?
        .and_then(|d: directory_store::Versioned<Department>| d.entity.parent);
    while let Some(p) = parent {
        if chain.contains(&p) || chain.len() > 10_000 {
            break;
        }
        chain.push(p);
        parent = ctx
            .store
            .get_department(p)
            .await?
            .and_then(|d| d.entity.parent);
    }
    Ok(chain)
}
