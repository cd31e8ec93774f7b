//! The full import: DingTalk's whole organisation into the OA directory.
//!
//! It runs in phases, each for a reason:
//!
//! 1. **Crawl** ([`crawl`]): the tree, every department in full, every department's members and
//!    the roles, all API families at once. Cheap next to phase 3 (one call per department or
//!    per 100 members), and it yields everyone's mobile, job number and email for linking.
//! 2. **Link** ([`link`]): decide which OA entity each DingTalk entity is (id map, userid, soft
//!    match), allocate OA ids for new departments and roles, record the links, write the
//!    departments. Deciding all links before writing any user is what lets soft matching see
//!    every claim at once, so an ambiguous match is reported instead of won by whoever came first.
//! 3. **Users**: with `user_details`, each user is read with `v2/user/get` (the only source of
//!    the manager and per-department titles), in userid order, converted and written in batches;
//!    after each batch the checkpoint records the last userid written. An interrupted import
//!    resumes after it: phases 1–2 are repeated (they are cheap and idempotent) and phase 3
//!    skips what was written.
//! 4. **Roles**: groups, roles and assignments.
//! 5. **Deletions**: only after a *complete* crawl (not one failed call), only of entities the
//!    id map links to DingTalk (an OA-only entity waiting to be pushed is not "missing"), and
//!    only under the policy's threshold; above it every deletion is held for confirmation
//!    (design invariant 6). A user missing from DingTalk is marked `Left`, not deleted.
//!
//! Writes mirror DingTalk (origin `import`): no outbox entries, and the base snapshot moves to
//! what was written. `dry_run` does every read and every decision and writes nothing; the
//! report is the same. The report also compares the calls made with the minimum the
//! organisation's size requires, and the wall time with what the rate limit allows.
//!
//! Files: `crawl` (phase 1), [`link`] (the pure linking decisions of phase 2), this file (the
//! run, phases 2–4, options and progress), `report` (the report types), `delete` (phase 5 and
//! approved deletions), `calls` (the call accounting).

mod calls;
mod crawl;
mod delete;
pub mod link;
mod report;
mod scoped;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Instant;

use dingtalk_proto::{ErrCode, user::User as WireUser};
use directory_model::{
    DingDeptId, DingRoleGroupId, DingRoleId, DingUserId, OaDeptId, OaRoleGroupId, OaRoleId,
    OaUserId, Snapshot, User,
};
use directory_store::{EntityKind, Expect, StoreError, WriteCtx};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::context::SyncContext;
use crate::translate::{self, ConvertError, IdMap, ding};
pub use delete::apply_approved_deletions;
pub(crate) use delete::{delete_departments, mark_left};
pub use link::{AmbiguousMatch, MatchedBy, SoftMatched};
pub use report::{CallReport, DeletionReport, ImportReport, KindCounts};

/// The checkpoint and lease name of the import.
pub const IMPORT_NAME: &str = "import";
/// How long the import lease lasts without renewal; renewed after every batch.
const LEASE_MS: i64 = 10 * 60 * 1000;

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Read and decide everything, write nothing.
    pub dry_run: bool,
    /// Read every user with `v2/user/get` (manager, per-department titles); one call per user.
    pub user_details: bool,
    /// Import role groups, roles and assignments.
    pub roles: bool,
    /// Calls in flight per API family (the rate budget still caps the rate).
    pub concurrency: usize,
    /// Users per write transaction and checkpoint.
    pub batch_size: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            user_details: true,
            roles: true,
            concurrency: 32,
            batch_size: 500,
        }
    }
}

/// Where an import is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportPhase {
    /// Reading DingTalk's tree, departments, members and roles.
    #[default]
    Crawl,
    /// Linking DingTalk entities to OA ones, writing departments.
    Link,
    /// Reading and writing users.
    Users,
    /// Writing role groups, roles and assignments.
    Roles,
    /// Mirroring deletions (or holding them).
    Deletions,
    /// Finished.
    Done,
}

/// A progress snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// The phase.
    pub phase: ImportPhase,
    /// Departments discovered.
    pub departments: usize,
    /// Users listed so far.
    pub users_listed: usize,
    /// Users converted and written (or, in a dry run, compared) so far.
    pub users_written: usize,
    /// Users to write in phase 3.
    pub users_total: usize,
}

/// Receives progress; the binary renders it (a progress bar on a terminal, log lines
/// otherwise). Called from the import's task, so it must be quick.
pub trait ImportProgress: Send + Sync {
    /// A new snapshot.
    fn report(&self, progress: &Progress);
}

/// Discards progress.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl ImportProgress for NoProgress {
    fn report(&self, _progress: &Progress) {}
}

/// The sink the phases report to.
pub(crate) struct ProgressSink<'a> {
    /// The receiver.
    sink: &'a dyn ImportProgress,
}

impl ProgressSink<'_> {
    pub(crate) fn emit(&self, progress: Progress) {
        self.sink.report(&progress);
    }
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The caller cancelled; the checkpoint lets the next run resume.
    #[error("the import was cancelled")]
    Cancelled,
    /// Another import (another instance) holds the lease.
    #[error("another import is running (lease held)")]
    Busy,
    /// The directory store failed.
    #[error("directory store failed during import")]
    Store(#[from] StoreError),
    /// A DingTalk entity could not be converted (a bug in linking: everything is linked first).
    #[error("could not convert a DingTalk entity")]
    Convert(#[from] ConvertError),
    /// The saved checkpoint is not readable.
    #[error("the import checkpoint is corrupt")]
    Checkpoint(#[source] serde_json::Error),
}

/// What the checkpoint holds between runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Checkpoint {
    /// Every user up to this userid (in byte order) is written.
    through: Option<String>,
    /// Users at or before `through` whose read failed; a resumed run reads them again.
    failed: Vec<String>,
}

/// What phase 3 has read so far.
struct BatchState {
    /// Every listed user was read.
    all_read: bool,
    /// The checkpoint the next batch write saves.
    checkpoint: Checkpoint,
    /// Users created, updated, unchanged.
    counts: KindCounts,
}

/// Runs a full import; see the module doc.
pub async fn import(
    ctx: &SyncContext,
    options: &ImportOptions,
    progress: &dyn ImportProgress,
    cancel: &CancellationToken,
) -> Result<ImportReport, ImportError> {
    let holder = format!("{}:import", ctx.actor);
    if !options.dry_run
        && !ctx
            .store
            .lease_acquire(IMPORT_NAME, &holder, ctx.now_ms(), LEASE_MS)
            .await?
    {
        return Err(ImportError::Busy);
    }
    let result = Importer {
        ctx,
        options,
        progress: ProgressSink { sink: progress },
        cancel,
        holder: &holder,
    }
    .run()
    .await;
    if !options.dry_run
        && let Err(error) = ctx.store.lease_release(IMPORT_NAME, &holder).await
    {
        tracing::warn!(%error, "could not release the import lease; it expires by itself");
    }
    result
}

/// One import run's borrowed inputs.
struct Importer<'a> {
    /// Store, client, policy and clock.
    ctx: &'a SyncContext,
    /// What the caller asked for.
    options: &'a ImportOptions,
    /// Where progress goes.
    progress: ProgressSink<'a>,
    /// Fires when the caller wants the import to stop (the checkpoint lets it resume).
    cancel: &'a CancellationToken,
    /// The lease holder name, renewed after every user batch.
    holder: &'a str,
}

impl Importer<'_> {
    fn write_ctx(&self) -> WriteCtx {
        WriteCtx::import(format!("{}:import", self.ctx.actor), self.ctx.now_ms())
    }

    async fn run(self) -> Result<ImportReport, ImportError> {
        let ctx = self.ctx;
        let started = Instant::now();
        let stats_before = ctx.client.stats();
        let mut report = ImportReport {
            dry_run: self.options.dry_run,
            ..ImportReport::default()
        };
        let checkpoint = self.checkpoint().await?;
        report.resumed_after.clone_from(&checkpoint.through);

        // Phase 1: crawl.
        let mut crawled = crawl::crawl(
            &ctx.client,
            &ctx.policy.scope,
            self.options.concurrency,
            self.options.roles,
            &self.progress,
            self.cancel,
        )
        .await?;
        report.failures.clone_from(&crawled.failures);
        if !self.options.dry_run {
            let (depts, complete) = (&crawled.depts, crawled.complete());
            crate::branch_copies::record_crawl(&ctx.store, depts, complete, ctx.now_ms()).await?;
        }

        // Phase 2: link and write departments.
        let (oa, mut ids, user_links) = self.link(&mut crawled, &mut report).await?;
        let departments = self
            .write_departments(&crawled, &ids, &oa, &mut report)
            .await?;

        // Phase 3: users.
        let users_ok = self
            .import_users(
                &crawled.users,
                &user_links.links,
                &ids,
                &oa,
                &checkpoint,
                &mut report,
            )
            .await?;
        self.dead_letter_mapping_failures(&report).await?;

        // Phase 4: roles.
        let roles_ok = if self.options.roles {
            self.import_roles(&crawled, &mut ids, &oa, &mut report)
                .await?
        } else {
            false
        };

        // Phase 5: deletions.
        self.progress.emit(Progress {
            phase: ImportPhase::Deletions,
            ..Progress::default()
        });
        if crawled.complete() && users_ok {
            self.deletions(
                &crawled,
                &user_links.links,
                &ids,
                &oa,
                roles_ok,
                &mut report,
            )
            .await?;
        } else {
            report.deletions.skipped_incomplete_crawl = true;
        }
        report.complete = report.failures.is_empty();
        if !self.options.dry_run {
            ctx.store.checkpoint_clear(IMPORT_NAME).await?;
        }

        self.finish(
            &mut report,
            started,
            &stats_before,
            &crawled,
            departments,
            &user_links,
        );
        Ok(report)
    }

    /// The run's call accounting and wall time, and the last progress report.
    fn finish(
        &self,
        report: &mut ImportReport,
        started: Instant,
        stats_before: &dingtalk_client::ClientStats,
        crawled: &crawl::Crawl,
        departments: usize,
        user_links: &link::UserLinks,
    ) {
        let details = if self.options.user_details {
            user_links.links.len() as u64
        } else {
            0
        };
        report.calls = calls::call_report(self.ctx, stats_before, crawled, details);
        report.wall_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.progress.emit(Progress {
            phase: ImportPhase::Done,
            departments,
            users_listed: crawled.users.len(),
            users_written: user_links.links.len(),
            users_total: user_links.links.len(),
        });
    }

    /// Where an interrupted run stopped (nothing in a dry run, which never writes one).
    async fn checkpoint(&self) -> Result<Checkpoint, ImportError> {
        if self.options.dry_run {
            return Ok(Checkpoint::default());
        }
        match self.ctx.store.checkpoint_get(IMPORT_NAME).await? {
            Some(text) => serde_json::from_str(&text).map_err(ImportError::Checkpoint),
            None => Ok(Checkpoint::default()),
        }
    }

    /// Phase 2, linking: the OA directory, the id map with every decided link, and the user
    /// links (saved unless a dry run). Departments are linked first, so `[scope.to_oa]` (see
    /// [`scoped`]) sees every user's in-scope departments before users are linked.
    async fn link(
        &self,
        crawled: &mut crawl::Crawl,
        report: &mut ImportReport,
    ) -> Result<(Snapshot, IdMap, link::UserLinks), ImportError> {
        let ctx = self.ctx;
        self.progress.emit(Progress {
            phase: ImportPhase::Link,
            departments: crawled.depts.len(),
            users_listed: crawled.users.len(),
            ..Progress::default()
        });
        let oa = ctx.store.snapshot().await?;
        let mut ids = IdMap::load_all(&ctx.store).await?;
        let rules = &ctx.policy.rules;
        // DingTalk's tree as crawled, before the scope takes departments out of it.
        let parents = crate::plan::DingParents::of(&crawled.depts);
        scoped::departments(crawled, &ids, rules, report);
        let dept_links = link::link_departments(&crawled.depts, &oa.departments, &ids);
        let fresh_depts = self
            .allocate(EntityKind::Department, dept_links.unlinked.len(), &oa)
            .await?;
        let mut new_dept_links: Vec<(OaDeptId, DingDeptId)> = dept_links.matched.clone();
        for (i, d) in dept_links.unlinked.iter().enumerate() {
            new_dept_links.push((OaDeptId(fresh_depts + i as i64), *d));
        }
        for (o, d) in &new_dept_links {
            ids.insert_dept(*o, *d);
        }
        scoped::users(crawled, &ids, rules, &parents, report);
        let user_links = link::link_users(
            &crawled.users,
            &oa.users,
            &ids,
            &ctx.policy.soft_match.order,
        );
        for (d, o) in &user_links.links {
            ids.insert_user(o.clone(), d.clone());
        }
        if !self.options.dry_run {
            ctx.store
                .id_map_put_many::<OaUserId>(&user_links.new_links)
                .await?;
            ctx.store.id_map_put_many(&new_dept_links).await?;
        }
        report.soft_matched = user_links
            .soft_matched
            .iter()
            .filter(|m| oa.users.contains_key(&m.oa))
            .cloned()
            .collect();
        report.ambiguous.clone_from(&user_links.ambiguous);
        if !self.options.dry_run {
            // Kept for an operator to decide (the console's attention page).
            let found: Vec<directory_store::NewSoftMatch> = user_links
                .ambiguous
                .iter()
                .map(|a| directory_store::NewSoftMatch {
                    ding_userid: a.ding.as_str().to_owned(),
                    ding_name: crawled
                        .users
                        .get(&ding::wire_user(&a.ding))
                        .map(|w| w.name.clone())
                        .unwrap_or_default(),
                    key: a.key.map(|k| k.label().to_owned()),
                    candidates: a.candidates.iter().map(|c| c.as_str().to_owned()).collect(),
                })
                .collect();
            ctx.store.soft_matches_replace(&found, ctx.now_ms()).await?;
        }
        Ok((oa, ids, user_links))
    }

    /// Phase 2, writing: every crawled department, converted; returns how many.
    async fn write_departments(
        &self,
        crawled: &crawl::Crawl,
        ids: &IdMap,
        oa: &Snapshot,
        report: &mut ImportReport,
    ) -> Result<usize, ImportError> {
        let mut depts = Vec::with_capacity(crawled.depts.len());
        for w in &crawled.depts {
            let mut w = w.clone();
            // A manager who is not imported (ambiguous, or outside the scope) cannot be
            // referenced; the rest of the department still is.
            if let Some(list) = &mut w.dept_manager_userid_list {
                list.retain(|u| ids.oa_user(&ding::user(u)).is_some());
            }
            let hint = ids
                .oa_dept(ding::dept(w.dept_id))
                .and_then(|id| oa.departments.get(&id));
            let dept = translate::department::from_wire(&w, ids, hint, &self.ctx.policy.rules)?;
            report.departments.count(hint, &dept);
            depts.push(dept);
        }
        if !self.options.dry_run {
            self.ctx
                .store
                .import_departments(&self.write_ctx(), &depts)
                .await?;
        }
        Ok(depts.len())
    }

    /// The first of `n` fresh OA ids of `kind` (in a dry run: above everything stored, without
    /// reserving them).
    async fn allocate(&self, kind: EntityKind, n: usize, oa: &Snapshot) -> Result<i64, StoreError> {
        if n == 0 {
            return Ok(0);
        }
        if self.options.dry_run {
            let max = match kind {
                EntityKind::Department => oa.departments.keys().last().map(|d| d.0),
                EntityKind::RoleGroup => oa.role_groups.keys().last().map(|d| d.0),
                _ => oa.roles.keys().last().map(|d| d.0),
            };
            return Ok(max.unwrap_or(0) + 1);
        }
        self.ctx.store.allocate_ids(kind, n as i64).await
    }

    /// Phase 3. Returns whether every user was read.
    async fn import_users(
        &self,
        listed: &BTreeMap<dingtalk_proto::DingUserId, WireUser>,
        links: &BTreeMap<DingUserId, OaUserId>,
        ids: &IdMap,
        oa: &Snapshot,
        checkpoint: &Checkpoint,
        report: &mut ImportReport,
    ) -> Result<bool, ImportError> {
        let ctx = self.ctx;
        let failed_before: HashSet<&str> = checkpoint.failed.iter().map(String::as_str).collect();
        let todo: Vec<&WireUser> = listed
            .values()
            .filter(|w| links.contains_key(&ding::user(&w.userid)))
            .filter(|w| match &checkpoint.through {
                Some(through) => {
                    w.userid.0.as_str() > through.as_str()
                        || failed_before.contains(w.userid.0.as_str())
                }
                None => true,
            })
            .collect();
        let total = todo.len();
        let mut written = 0usize;
        let mut read = BatchState {
            all_read: true,
            checkpoint: Checkpoint {
                through: checkpoint.through.clone(),
                failed: Vec::new(),
            },
            counts: KindCounts::default(),
        };
        let details = self.options.user_details;
        let client = ctx.client.clone();
        let mut fetched = futures::stream::iter(todo)
            .map(|listed_user| {
                let client = client.clone();
                async move {
                    let result = if details {
                        client.user_get(&listed_user.userid).await.map(|mut got| {
                            // `get` reports memberships of every department; the listing already
                            // knows which are in scope.
                            got.dept_id_list.clone_from(&listed_user.dept_id_list);
                            Some(got)
                        })
                    } else {
                        Ok(Some(listed_user.clone()))
                    };
                    (listed_user, result)
                }
            })
            .buffered(self.options.concurrency.max(1))
            .chunks(self.options.batch_size.max(1));
        loop {
            let batch = tokio::select! {
                () = self.cancel.cancelled() => return Err(ImportError::Cancelled),
                batch = fetched.next() => batch,
            };
            let Some(batch) = batch else { break };
            let users = self.convert_batch(batch, ids, oa, &mut read, report)?;
            written += users.len();
            self.write_batch(&users, &read.checkpoint).await?;
            self.progress.emit(Progress {
                phase: ImportPhase::Users,
                departments: 0,
                users_listed: listed.len(),
                users_written: written,
                users_total: total,
            });
        }
        report.users = read.counts;
        Ok(read.all_read)
    }

    /// Parks each user whose mapping failed as an inbox dead letter (a `user_modify_org` event
    /// for them), so the operator sees the reason with the other dead letters and, once the
    /// mapping is fixed, retrying it applies the user like any event.
    async fn dead_letter_mapping_failures(&self, report: &ImportReport) -> Result<(), ImportError> {
        if self.options.dry_run {
            return Ok(());
        }
        let now = self.ctx.now_ms();
        for (userid, reason) in &report.mapping_failures {
            let payload = serde_json::json!({"EventType": "user_modify_org", "UserId": [userid]});
            let event = directory_store::NewInboxEvent {
                dedupe_key: format!("mapping-failed:user:{userid}:{now}"),
                event_type: "user_modify_org".to_owned(),
                payload_json: payload.to_string(),
                received_at_ms: now,
            };
            let reason = format!("the mapping failed for this entity: {reason}");
            self.ctx.store.inbox_put_dead(event, &reason).await?;
        }
        Ok(())
    }

    /// Converts one batch of read users; records what could not be read.
    fn convert_batch(
        &self,
        batch: Vec<(
            &WireUser,
            Result<Option<WireUser>, dingtalk_client::ClientError>,
        )>,
        ids: &IdMap,
        oa: &Snapshot,
        read: &mut BatchState,
        report: &mut ImportReport,
    ) -> Result<Vec<User>, ImportError> {
        let mut users: Vec<User> = Vec::with_capacity(batch.len());
        for (listed_user, result) in batch {
            let got = match result {
                Ok(Some(u)) => u,
                Ok(None) => continue,
                Err(e) if e.errcode() == Some(ErrCode::USER_NOT_FOUND) => {
                    report.vanished += 1;
                    continue;
                }
                Err(e) => {
                    read.all_read = false;
                    report
                        .failures
                        .push(format!("reading user {}: {e}", listed_user.userid));
                    read.checkpoint.failed.push(listed_user.userid.0.clone());
                    continue;
                }
            };
            let converted = match self.convert_user(got, ids, oa) {
                Err(ConvertError::Mapping(e)) => {
                    // One user's failing expression never stops the import: the user is left
                    // out (so the crawl counts as incomplete and deletes nothing) and named.
                    read.all_read = false;
                    let reason = crate::error_chain(&e);
                    report.failures.push(format!(
                        "user {} not imported: the mapping failed: {reason}",
                        listed_user.userid
                    ));
                    report
                        .mapping_failures
                        .push((listed_user.userid.0.clone(), reason));
                    read.checkpoint.failed.push(listed_user.userid.0.clone());
                    continue;
                }
                other => other?,
            };
            let Some(user) = converted else {
                read.all_read = false;
                report.failures.push(format!(
                    "user {} not imported: none of its departments could be read",
                    listed_user.userid
                ));
                continue;
            };
            read.counts.count(oa.users.get(&user.id), &user);
            read.checkpoint.through = Some(listed_user.userid.0.clone());
            users.push(user);
        }
        Ok(users)
    }

    /// Writes one batch of users, then the checkpoint after it, and renews the lease.
    async fn write_batch(
        &self,
        users: &[User],
        checkpoint: &Checkpoint,
    ) -> Result<(), ImportError> {
        if self.options.dry_run {
            return Ok(());
        }
        let ctx = self.ctx;
        ctx.store.import_users(&self.write_ctx(), users).await?;
        let text = serde_json::to_string(checkpoint).map_err(ImportError::Checkpoint)?;
        ctx.store
            .checkpoint_set(IMPORT_NAME, &text, ctx.now_ms())
            .await?;
        ctx.store
            .lease_acquire(IMPORT_NAME, self.holder, ctx.now_ms(), LEASE_MS)
            .await?;
        Ok(())
    }

    /// The read user as an OA user, or `None` when none of its departments was imported (a
    /// user is never written department-less because a department read failed).
    fn convert_user(
        &self,
        mut got: WireUser,
        ids: &IdMap,
        oa: &Snapshot,
    ) -> Result<Option<User>, ConvertError> {
        if let Some(depts) = &mut got.dept_id_list {
            let had = !depts.is_empty();
            depts.retain(|d| ids.oa_dept(ding::dept(*d)).is_some());
            if had && depts.is_empty() {
                return Ok(None);
            }
        }
        if got
            .manager_userid
            .as_ref()
            .is_some_and(|m| ids.oa_user(&ding::user(m)).is_none())
        {
            // The manager is not imported (ambiguous or outside the scope).
            got.manager_userid = None;
        }
        let hint = ids
            .oa_user(&ding::user(&got.userid))
            .and_then(|id| oa.users.get(id));
        translate::user::from_wire(&got, ids, hint, &self.ctx.policy.rules).map(Some)
    }

    /// Phase 4. Returns whether the role listing was complete.
    async fn import_roles(
        &self,
        crawled: &crawl::Crawl,
        ids: &mut IdMap,
        oa: &Snapshot,
        report: &mut ImportReport,
    ) -> Result<bool, ImportError> {
        let ctx = self.ctx;
        self.progress.emit(Progress {
            phase: ImportPhase::Roles,
            ..Progress::default()
        });
        if crawled.role_groups.is_empty() && !crawled.roles_complete {
            return Ok(false);
        }
        self.link_roles(crawled, ids, oa).await?;
        let wctx = self.write_ctx();
        for g in &crawled.role_groups {
            let group = translate::role::group_from_wire(g, ids)?;
            report
                .role_groups
                .count(oa.role_groups.get(&group.id), &group);
            if !self.options.dry_run {
                ctx.store.save_role_group(&wctx, group, Expect::Any).await?;
            }
            for r in &g.roles {
                let role = translate::role::role_from_wire(r, g.group_id, ids)?;
                report.roles.count(oa.roles.get(&role.id), &role);
                if !self.options.dry_run {
                    ctx.store.save_role(&wctx, role, Expect::Any).await?;
                }
            }
        }
        self.import_assignments(crawled, ids, oa, report).await?;
        Ok(crawled.roles_complete)
    }
    /// Phase 4, linking: every crawled group and role to an OA id (saved unless a dry run).
    async fn link_roles(
        &self,
        crawled: &crawl::Crawl,
        ids: &mut IdMap,
        oa: &Snapshot,
    ) -> Result<(), ImportError> {
        let ctx = self.ctx;
        let (g_links, r_links) =
            link::link_roles(&crawled.role_groups, &oa.role_groups, &oa.roles, ids);
        let first_g = self
            .allocate(EntityKind::RoleGroup, g_links.unlinked.len(), oa)
            .await?;
        let first_r = self
            .allocate(EntityKind::Role, r_links.unlinked.len(), oa)
            .await?;
        let mut new_g: Vec<(OaRoleGroupId, DingRoleGroupId)> = g_links.matched.clone();
        for (i, d) in g_links.unlinked.iter().enumerate() {
            new_g.push((OaRoleGroupId(first_g + i as i64), *d));
        }
        let mut new_r: Vec<(OaRoleId, DingRoleId)> = r_links.matched.clone();
        for (i, d) in r_links.unlinked.iter().enumerate() {
            new_r.push((OaRoleId(first_r + i as i64), *d));
        }
        for (o, d) in &new_g {
            ids.insert_group(*o, *d);
        }
        for (o, d) in &new_r {
            ids.insert_role(*o, *d);
        }
        if !self.options.dry_run {
            ctx.store.id_map_put_many(&new_g).await?;
            ctx.store.id_map_put_many(&new_r).await?;
        }
        Ok(())
    }

    /// Phase 4, assignments: per role whose member listing succeeded.
    async fn import_assignments(
        &self,
        crawled: &crawl::Crawl,
        ids: &IdMap,
        oa: &Snapshot,
        report: &mut ImportReport,
    ) -> Result<(), ImportError> {
        let ctx = self.ctx;
        let wctx = self.write_ctx();
        // Assignments, per role whose member listing succeeded.
        for (role, members) in &crawled.role_members {
            let Some(oa_role) = ids.oa_role(ding::role(*role)) else {
                continue;
            };
            let want: BTreeSet<OaUserId> = members
                .iter()
                .filter_map(|m| ids.oa_user(&ding::user(&m.userid)).cloned())
                .collect();
            let have: BTreeSet<OaUserId> = oa
                .assignments
                .iter()
                .filter(|a| a.role == oa_role)
                .map(|a| a.user.clone())
                .collect();
            for u in want.difference(&have) {
                report.assignments_added += 1;
                if !self.options.dry_run {
                    ctx.store.assign_role(&wctx, u, oa_role).await?;
                }
            }
            for u in have.difference(&want) {
                // Only holders DingTalk knows about; an OA-only user's role waits for its push.
                if ids.ding_user(u).is_none() {
                    continue;
                }
                report.assignments_removed += 1;
                if !self.options.dry_run {
                    ctx.store.unassign_role(&wctx, u, oa_role).await?;
                }
            }
        }
        Ok(())
    }
}
