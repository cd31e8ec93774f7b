//! The one-shot commands: `import`, `plan`, `reconcile`, `status` and `dead-letters`.
//!
//! Each opens the configured database and DingTalk client directly (no HTTP server), does one
//! thing, prints what it did, and exits. They share the service's database, so they can run
//! beside `dingsync serve`; import and reconcile take the same leases the service does, and
//! are recorded in the run history the console's runs page shows.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use directory_store::{QueueState, Store};
use indicatif::{ProgressBar, ProgressStyle};
use sync_engine::SyncContext;
use sync_engine::import::{ImportOptions, ImportReport, Progress};
use sync_engine::plan::{PlanOptions, plan, reconcile};
use sync_engine::push::{PushConfig, Pusher};
use tokio_util::sync::CancellationToken;

use crate::admin::runs::{self, Summary};
use crate::clock::{Clock as _, SystemClock};
use crate::config::Config;
use crate::{import_progress, server, workers};

/// The sync context the configuration describes.
pub async fn context(config: &Config) -> anyhow::Result<SyncContext> {
    config.validate()?;
    let store = server::open_store(config).await?;
    // A one-shot import or reconcile next to running instances draws on the same shared budget.
    let instance = server::instance_id();
    let client = server::dingtalk_client_for(config, &store, &instance).await?;
    Ok(SyncContext::new(store, client, workers::policy(config))
        .with_actor(format!("cli@{instance}")))
}

/// One line of import progress, for a spinner or a log line.
pub fn progress_line(p: &Progress) -> String {
    format!(
        "{:?}: {} departments, {} users listed, {}/{} written",
        p.phase, p.departments, p.users_listed, p.users_written, p.users_total
    )
}

/// What an import did, in a few lines.
pub fn import_summary(r: &ImportReport) -> String {
    let kind = |k: &sync_engine::import::KindCounts| {
        format!(
            "{} created, {} updated, {} unchanged",
            k.created, k.updated, k.unchanged
        )
    };
    let mut out = format!(
        "{}import {} in {:.1}s\n  departments: {}\n  users:       {}\n  role groups: {}\n  roles:       {}\n",
        if r.dry_run { "dry-run " } else { "" },
        if r.complete {
            "complete"
        } else {
            "INCOMPLETE (nothing deleted)"
        },
        r.wall_ms as f64 / 1000.0,
        kind(&r.departments),
        kind(&r.users),
        kind(&r.role_groups),
        kind(&r.roles),
    );
    let c = &r.calls;
    out.push_str(&format!(
        "  DingTalk calls: {} made, {} the minimum{}; {} throttled\n",
        c.total_made,
        c.total_minimum,
        c.min_wall_ms
            .map(|ms| format!(
                " (the rate limit allows it in {:.1}s at best)",
                ms as f64 / 1000.0
            ))
            .unwrap_or_default(),
        c.throttled
    ));
    if !r.soft_matched.is_empty() {
        out.push_str(&format!(
            "  linked to existing OA users: {}\n",
            r.soft_matched.len()
        ));
    }
    if !r.ambiguous.is_empty() {
        out.push_str(&format!(
            "  NOT imported, ambiguous matches: {} (see the log)\n",
            r.ambiguous.len()
        ));
    }
    let d = &r.deletions;
    if d.held > 0 {
        out.push_str(&format!(
            "  {} deletion(s) HELD: confirm with `dingsync reconcile --yes`\n",
            d.held
        ));
    }
    if !d.users_left.is_empty() || !d.departments_deleted.is_empty() {
        out.push_str(&format!(
            "  mirrored deletions: {} user(s) left, {} department(s) removed\n",
            d.users_left.len(),
            d.departments_deleted.len()
        ));
    }
    for f in &r.failures {
        out.push_str(&format!("  failed: {f}\n"));
    }
    out
}

/// Remembers the last import for `dingsync status`.
pub async fn record_import(store: &Store, report: &ImportReport) -> anyhow::Result<()> {
    if report.dry_run {
        return Ok(());
    }
    let now = SystemClock.now_ms();
    let line = format!(
        "{} ({}; {} users created, {} updated)",
        rfc3339(now),
        if report.complete {
            "complete"
        } else {
            "incomplete"
        },
        report.users.created,
        report.users.updated
    );
    store.state_set("import.last_finished", &line, now).await?;
    Ok(())
}

/// A moment as RFC 3339 in UTC, to the second (`2026-12-07T15:48:45Z`).
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms).map_or_else(
        || format!("{ms} ms after the epoch"),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

/// The last-import line as `status` prints it. Lines written before dates were recorded start
/// `unix time N`; they are shown with the date too.
pub fn last_import_line(stored: &str) -> String {
    let Some(rest) = stored.strip_prefix("unix time ") else {
        return stored.to_owned();
    };
    let (secs, tail) = rest.split_once(' ').unwrap_or((rest, ""));
    match secs.parse::<i64>() {
        Ok(secs) => format!("{} {tail}", rfc3339(secs.saturating_mul(1000)))
            .trim_end()
            .to_owned(),
        Err(_) => stored.to_owned(),
    }
}

/// The warning for an import that DingTalk throttled: the configured rate is above what
/// DingTalk grants this app, so every throttle cost a back-off (issue 18 B6).
pub fn throttle_warning(report: &ImportReport, qps: u32) -> Option<String> {
    (report.calls.throttled >= 3).then(|| {
        format!(
            "DingTalk throttled {} call(s) (errcode 90018): dingtalk.qps = {qps} is above what \
             DingTalk grants this app; lower it (try {}) so the import stops backing off",
            report.calls.throttled,
            (qps / 2).max(1)
        )
    })
}

/// What to do about a failed token fetch: a refused secret and an unreachable host need
/// different fixes, so they say different things (issue 18).
pub fn token_failure_hint(e: &dingtalk_client::ClientError) -> &'static str {
    use dingtalk_client::ClientError as E;
    match e {
        E::Auth { .. } => {
            "DingTalk refused the app credentials: check dingtalk.client_id and \
             dingtalk.client_secret (developer console > your app > Credentials)"
        }
        E::Transport { .. } | E::Timeout { .. } => {
            "the host did not answer: check dingtalk.base_url, DNS, proxies and the firewall"
        }
        E::Http { .. } | E::Decode { .. } => {
            "the host answered, but not as DingTalk does: check dingtalk.base_url"
        }
        _ => "check the dingtalk settings and that the host is reachable",
    }
}

/// The second half of `dingsync check`: can we reach what the configuration names?
pub async fn check_reachability(config: &Config) -> anyhow::Result<()> {
    let store = Store::connect(config.database.url.expose())
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}: check database.url, that the server is up and the \
             credentials are right",
                directory_store::DatabaseUrl::parse(config.database.url.expose())
                    .map(|u| u.to_string())
                    .unwrap_or_else(|_| "(unparsable URL)".into())
            )
        })?;
    let (depts, users) = store.counts().await?;
    crate::outln!("database: ok ({depts} departments, {users} users in the directory)");
    let client = server::dingtalk_client(config)?;
    if let Err(e) = client.ensure_token().await {
        let hint = token_failure_hint(&e);
        return Err(anyhow::Error::new(e).context(format!(
            "cannot get a DingTalk access token from {}: {hint}",
            config.dingtalk.base_url
        )));
    }
    crate::outln!("dingtalk: token ok ({})", config.dingtalk.base_url);
    let root = client
        .dept_get(dingtalk_proto::DingDeptId::ROOT)
        .await
        .context(
            "got a token but cannot read the root department: grant the app the \
                  contacts permission (qyapi_manage_addresslist) and set its contacts scope",
        )?;
    crate::outln!("dingtalk: root department {:?} readable", root.name);
    Ok(())
}

/// Runs an import and prints its summary. An import that did not finish (a DingTalk list that
/// failed, users missing) is an error, so scripts and service managers see it (issue 18 B6).
pub async fn import(config: &Config, dry_run: bool) -> anyhow::Result<()> {
    let ctx = context(config).await?;
    let fresh = crate::mapping_cmd::before_import(&ctx, dry_run).await?;
    if !dry_run {
        take_over_dead_import(&ctx.store).await?;
    }
    // A dry run changes nothing, so it is no run in the history.
    let run = if dry_run {
        None
    } else {
        runs::start_cli(&ctx.store, "import").await
    };
    let options = ImportOptions {
        dry_run,
        // Written (and reported) in hundreds, so progress moves in steps a person can follow.
        batch_size: 100,
        ..ImportOptions::default()
    };
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stop.cancel();
        }
    });
    let report = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        let spinner = import_progress::Spinner::new(bar.clone());
        let report = sync_engine::import::import(&ctx, &options, &spinner, &cancel).await;
        bar.finish_and_clear();
        report
    } else {
        let lines = import_progress::LogLines::new(import_progress::LOG_EVERY);
        let stop = CancellationToken::new();
        let beat = tokio::spawn(lines.clone().heartbeat(stop.clone()));
        let report = sync_engine::import::import(&ctx, &options, &lines, &cancel).await;
        stop.cancel();
        let _ = beat.await;
        report
    };
    let report = match report {
        Ok(report) => report,
        Err(sync_engine::import::ImportError::Busy) => {
            let error = lease_held(&ctx.store).await;
            runs::finish_cli(run, &Summary::default(), &[], Some(error.to_string())).await;
            return Err(error);
        }
        Err(e) => {
            let why = sync_engine::error_chain(&e);
            runs::finish_cli(run, &Summary::default(), &[], Some(why)).await;
            return Err(anyhow::Error::new(e)
                .context("the import failed (run it again: it resumes from its checkpoint)"));
        }
    };
    let mut run = run;
    if let Some(run) = run.as_mut() {
        run.log("info", import_summary(&report));
    }
    let mut failures = report.failures.clone();
    if !report.complete && failures.is_empty() {
        failures.push("the import is incomplete".to_owned());
    }
    runs::finish_cli(run, &Summary::of_import(&report), &failures, None).await;
    record_import(&ctx.store, &report).await?;
    if !dry_run {
        crate::mapping_cmd::after_import(&ctx, fresh, report.complete).await?;
    }
    crate::out!("{}", import_summary(&report));
    if let Some(warning) = throttle_warning(&report, config.dingtalk.qps) {
        tracing::warn!("{warning}");
        crate::outln!("  warning: {warning}");
    }
    if !report.complete {
        anyhow::bail!(
            "the import is INCOMPLETE ({} failure(s) above; nothing was deleted): fix the cause \
             and run it again, it resumes from its checkpoint",
            report.failures.len()
        );
    }
    Ok(())
}

/// The error for an import refused because another holds the lease: who holds it, until when,
/// and how to take over.
async fn lease_held(store: &Store) -> anyhow::Error {
    let holder = store
        .lease_holder(sync_engine::import::IMPORT_NAME)
        .await
        .ok()
        .flatten();
    match holder {
        Some((holder, until_ms)) => anyhow::anyhow!(
            "another import holds the import lease: {holder}, until {} (UTC). Wait for it to \
             finish; if that process is gone (on another host or container), its lease runs \
             out at that time and the import can be run again then",
            rfc3339(until_ms)
        ),
        None => anyhow::anyhow!(
            "another import held the import lease a moment ago and has released it; run the \
             import again"
        ),
    }
}

/// Frees the import lease when its holder is an import on this host that was killed, so that
/// running the import again resumes at once instead of waiting out the lease (see
/// [`server::holder_is_dead_local_process`]).
async fn take_over_dead_import(store: &Store) -> anyhow::Result<()> {
    if let Some((holder, _)) = store.lease_holder(sync_engine::import::IMPORT_NAME).await?
        && server::holder_is_dead_local_process(&holder)
    {
        store
            .lease_release(sync_engine::import::IMPORT_NAME, &holder)
            .await?;
        tracing::warn!(%holder, "took over the import lease of a process that no longer runs");
    }
    Ok(())
}

pub async fn plan_cmd(config: &Config, json: bool) -> anyhow::Result<bool> {
    let ctx = context(config).await?;
    let plan = plan(&ctx, PlanOptions::default())
        .await
        .context("cannot compute the plan")?;
    let note = crate::mapping_cmd::pending_note(&ctx).await?;
    if json {
        let json = serde_json::to_string_pretty(&plan.to_json())?;
        println!("{}", crate::term::escape_json(&json));
    } else {
        crate::out!("{}", plan.render_table());
        if let Some(note) = &note {
            crate::outln!("{note}");
        }
    }
    Ok(plan.items.is_empty() && note.is_none())
}

pub async fn reconcile_cmd(config: &Config, yes: bool) -> anyhow::Result<()> {
    let ctx = context(config).await?;
    let refused_holds = if yes {
        approve_oa_holds(&ctx.store, ctx.now_ms()).await?
    } else {
        0
    };
    let plan = plan(&ctx, PlanOptions::default())
        .await
        .context("cannot compute the plan")?;
    crate::out!("{}", plan.render_table());
    if let Some(note) = crate::mapping_cmd::pending_note(&ctx).await? {
        crate::outln!("{note}");
        if !yes {
            anyhow::bail!("a [mapping]/[scope] change waits for approval: nothing was applied");
        }
    }
    let run = runs::start_cli(&ctx.store, "reconcile").await;
    if plan.items.is_empty() {
        let mut run = run;
        if let Some(run) = run.as_mut() {
            run.log("info", "the plan was empty: both sides agree");
        }
        runs::finish_cli(run, &Summary::default(), &[], None).await;
        crate::mapping_cmd::after_reconcile(&ctx, yes, 0).await?;
        if refused_holds > 0 {
            anyhow::bail!("{refused_holds} held deletion(s) could not be applied");
        }
        return Ok(());
    }
    let calls_before = ctx.client.stats().total_calls();
    let throttles_before = ctx.client.stats().total_throttles();
    let pusher = Pusher::new(&ctx, rand::random(), PushConfig::default());
    let report = match reconcile(&ctx, &pusher, &plan, yes).await {
        Ok(report) => report,
        Err(e) => {
            let why = sync_engine::error_chain(&e);
            runs::finish_cli(run, &Summary::default(), &[], Some(why)).await;
            return Err(anyhow::Error::new(e).context("reconcile failed"));
        }
    };
    let mut run = run;
    if let Some(run) = run.as_mut() {
        run.log(
            "info",
            format!(
                "the plan had {} entries; applied {}; {} held deletion(s) skipped",
                plan.items.len(),
                report.applied,
                report.skipped_held
            ),
        );
    }
    let summary = Summary {
        counts: runs::plan_counts(&plan, &report),
        dingtalk_calls: ctx.client.stats().total_calls() - calls_before,
        throttles: ctx.client.stats().total_throttles() - throttles_before,
        progress: None,
    };
    runs::finish_cli(run, &summary, &report.failed, None).await;
    crate::outln!(
        "applied {} change(s); {} held deletion(s) skipped{}; {} failed",
        report.applied,
        report.skipped_held,
        if report.skipped_held > 0 && !yes {
            " (confirm with --yes)"
        } else {
            ""
        },
        report.failed.len()
    );
    for failure in &report.failed {
        crate::outln!("  failed: {failure}");
    }
    crate::mapping_cmd::after_reconcile(&ctx, yes, report.failed.len()).await?;
    if !report.failed.is_empty() || refused_holds > 0 {
        anyhow::bail!(
            "{} change(s) could not be applied",
            report.failed.len() + refused_holds
        );
    }
    Ok(())
}

/// `reconcile --yes` confirms the deletions the OA side asked for and the threshold held (a
/// SCIM client's mass deactivation): nothing in the plan shows them, since the OA user is still
/// there until the deletion is approved. Approving applies each in its own transaction (the
/// outbox then takes the person out of DingTalk); returns how many the directory refused (a
/// user who still manages others, say), which stay held and are listed.
async fn approve_oa_holds(store: &Store, now_ms: i64) -> anyhow::Result<usize> {
    let held = store
        .held_deletions(Some(directory_store::HoldState::Held))
        .await?;
    let (mut approved, mut refused) = (0, 0);
    for h in held
        .iter()
        .filter(|h| h.origin == directory_store::Origin::Oa)
    {
        match store
            .resolve_held_deletion(h.id, true, "reconcile --yes", now_ms)
            .await
        {
            Ok(_) => approved += 1,
            Err(e) if e.is_client_error() => {
                refused += 1;
                crate::outln!(
                    "  held deletion #{} ({} {}) stays held: {}",
                    h.id,
                    h.kind,
                    h.oa_id,
                    sync_engine::error_chain(&e)
                );
            }
            Err(e) => return Err(e.into()),
        }
    }
    if approved + refused > 0 {
        crate::outln!("approved {approved} deletion(s) held from the OA side; {refused} refused");
    }
    Ok(refused)
}

pub async fn status(config: &Config) -> anyhow::Result<()> {
    config.validate()?;
    let store = server::open_store(config).await?;
    let (depts, users) = store.counts().await?;
    let inbox = store.inbox_depth().await?;
    let outbox = store.outbox_depth().await?;
    let held = store
        .held_deletions(Some(directory_store::HoldState::Held))
        .await?;
    crate::outln!("database        {}", store.url());
    crate::outln!("directory       {depts} departments, {users} users");
    crate::outln!(
        "last import     {}",
        store
            .state_get("import.last_finished")
            .await?
            .map_or_else(|| "never".into(), |line| last_import_line(&line))
    );
    crate::outln!(
        "inbox           {} waiting, {} in progress, {} dead letters",
        inbox.pending,
        inbox.claimed,
        inbox.dead
    );
    crate::outln!(
        "outbox          {} waiting, {} in progress, {} dead letters",
        outbox.pending,
        outbox.claimed,
        outbox.dead
    );
    crate::outln!(
        "held deletions  {} (confirm with `dingsync reconcile --yes`)",
        held.len()
    );
    match store.state_get(crate::ops_stats::STATE_KEY).await? {
        Some(snapshot) => crate::out!(
            "{}",
            crate::ops_stats::render(&snapshot, SystemClock.now_ms())
        ),
        None => {
            crate::outln!(
                "service stats   none yet (`dingsync serve` writes them every few seconds)"
            )
        }
    }
    for dead in store.outbox_dead_letters(None, 20).await? {
        crate::outln!(
            "  dead letter #{} {} {}: {}",
            dead.id,
            dead.kind,
            dead.oa_id,
            dead.last_error.as_deref().unwrap_or("?")
        );
    }
    Ok(())
}

#[derive(Debug, Clone, Subcommand)]
pub enum DeadLetters {
    /// List OA changes DingTalk refused and events that could not be applied.
    List,
    /// Put a dead letter back in its queue (after fixing its cause).
    Retry {
        /// The dead letter's id, as `list` shows it.
        id: i64,
        /// It is an inbox (event) dead letter rather than an outbox (OA change) one.
        #[arg(long)]
        inbox: bool,
    },
    /// Drop a dead letter for good.
    Drop {
        id: i64,
        #[arg(long)]
        inbox: bool,
    },
}

pub async fn dead_letters(config: &Config, cmd: DeadLetters) -> anyhow::Result<()> {
    let store = server::open_store(config).await?;
    let now = SystemClock.now_ms();
    match cmd {
        DeadLetters::List => {
            let outbox = store
                .outbox_list(Some(QueueState::Dead), None, 1000)
                .await?;
            let inbox = store.inbox_list(Some(QueueState::Dead), None, 1000).await?;
            if outbox.is_empty() && inbox.is_empty() {
                crate::outln!("no dead letters");
            }
            for d in outbox {
                crate::outln!(
                    "outbox #{:<6} {} {} after {} attempt(s): {}",
                    d.id,
                    d.kind,
                    d.oa_id,
                    d.attempts,
                    d.last_error.as_deref().unwrap_or("?")
                );
            }
            for d in inbox {
                crate::outln!(
                    "inbox  #{:<6} {} after {} attempt(s): {}",
                    d.id,
                    d.event_type,
                    d.attempts,
                    d.last_error.as_deref().unwrap_or("?")
                );
            }
        }
        DeadLetters::Retry { id, inbox } => {
            if inbox {
                store.inbox_retry_dead(id, now).await?
            } else {
                store.outbox_retry_dead(id, now).await?
            }
            crate::outln!("dead letter #{id} queued again");
        }
        DeadLetters::Drop { id, inbox } => {
            if inbox {
                store.inbox_drop_dead(id).await?
            } else {
                store.outbox_drop_dead(id).await?
            }
            crate::outln!("dead letter #{id} dropped");
        }
    }
    Ok(())
}
