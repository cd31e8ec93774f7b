//! The full import: DingTalk's whole organisation into the OA directory.
//!
//! Everything runs at once, each API family on its own budget, joined by bounded channels:
//!
//! - **Walk** ([`crawl`]): the tree (`listsub`) and every department in full; each in-scope
//!   department goes to the listing the moment it is found. The roles and their members are
//!   read beside it.
//! - **Listing** ([`listing`]): every department's members; each person is handed on once.
//! - **People** ([`users`]): each listed person is read with `v2/user/get` (the only source of
//!   the manager and per-department titles) at once; when the walk is done, departments are
//!   linked (id map, `dingsync:` marker, name under the parent), allocated and written, and
//!   then people are scoped, linked (id map, userid, soft-match keys — a key match waits for
//!   the end so that an ambiguous one is reported, not won by whoever came first), converted
//!   and written in batches by a writer task ([`writer`]), while reading goes on.
//! - **Roles**: groups, roles and assignments, once the people are in.
//! - **Deletions** ([`delete`]): only after a *complete* crawl (not one failed call), only of
//!   entities the id map links to DingTalk (an OA-only entity waiting to be pushed is not
//!   "missing"), and only under the policy's threshold; above it every deletion is held for
//!   confirmation (design invariant 6). A user missing from DingTalk is marked `Left`.
//!
//! **Memory** does not grow with the organisation beyond the id map: people flow through the
//! channels in batches; what the whole run keeps is ids (the userids listed, for the deletion
//! phase; people left out; provisional manager links) and, on a first import into a directory
//! that already holds people, the soft-match keys of the OA users not linked yet. The OA
//! directory's people are read by batch and by page, never all at once.
//!
//! An interrupted import resumes: the checkpoint holds the run's start (its generation), and
//! the next run skips reading the people the interrupted one wrote (see [`users`]).
//!
//! Writes mirror DingTalk (origin `import`): no outbox entries, and the base snapshot moves to
//! what was written. `dry_run` does every read and every decision and writes nothing; the
//! report is the same. The report also compares the calls made with the minimum the
//! organisation's size requires, and the wall time with what the rate limit allows.
//!
//! Files: `crawl`, `listing`, `users`, `writer` (the stages above), [`link`] (the pure linking
//! decisions), `scoped` (`[scope.to_oa]`), `oa` (what is read of the OA directory), this file
//! (the run, departments, roles, options and progress), `report` (the report types), `delete`
//! (deletions and approved deletions), `calls` (the call accounting).

mod calls;
mod crawl;
mod delete;
pub mod link;
mod listing;
mod oa;
mod report;
mod scoped;
mod users;
mod writer;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use dingtalk_proto::user::User as WireUser;
use directory_model::{
    DingDeptId, DingRoleGroupId, DingRoleId, OaDeptId, OaRoleGroupId, OaRoleId, OaUserId, Snapshot,
    User,
};
use directory_store::{AssignmentQuery, EntityKind, Expect, StoreError, WriteCtx};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
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
    /// Users per batch (decisions and writes; queued batches are merged into one write).
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
    /// Users to write: those listed so far (the total once the listing is done).
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

/// The sink the stages report to, with the count of people listed so far (the listing and
/// the people stage run side by side).
pub(crate) struct ProgressSink<'a> {
    /// The receiver.
    sink: &'a dyn ImportProgress,
    /// People listed so far.
    listed: AtomicUsize,
}

impl ProgressSink<'_> {
    pub(crate) fn emit(&self, progress: Progress) {
        self.sink.report(&progress);
    }

    /// People listed so far.
    pub(crate) fn listed(&self) -> usize {
        self.listed.load(Ordering::Relaxed)
    }

    /// One more person listed.
    pub(crate) fn count_listed(&self) {
        self.listed.fetch_add(1, Ordering::Relaxed);
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
    /// The writer task stopped without a store error (it panicked or was aborted).
    #[error("the import's writer task failed: {0}")]
    Writer(String),
}

/// What the checkpoint holds between runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Checkpoint {
    /// When the interrupted import started (ms): the people whose rows changed since were
    /// written by it and are not read again. (A checkpoint of an older version has none.)
    #[serde(default)]
    generation: Option<i64>,
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
        progress: ProgressSink {
            sink: progress,
            listed: AtomicUsize::new(0),
        },
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
        let generation = checkpoint.generation.unwrap_or_else(|| ctx.now_ms());
        report.resumed_after = checkpoint.generation.map(|g| g.to_string());
        if !self.options.dry_run {
            let text = serde_json::to_string(&Checkpoint {
                generation: Some(generation),
            })
            .map_err(ImportError::Checkpoint)?;
            ctx.store
                .checkpoint_set(IMPORT_NAME, &text, ctx.now_ms())
                .await?;
        }
        let mut oa = oa::view(&ctx.store).await?;
        // Several orgs: only this org's part of OA is linked to its DingTalk (`org_scope`).
        crate::org_scope::restrict_to_org(&ctx.store, &mut oa).await?;
        let ids = IdMap::load_all(&ctx.store).await?;
        let skip = match checkpoint.generation {
            Some(g) => oa::written_since(&ctx.store, &ids, g).await?,
            None => std::collections::HashSet::new(),
        };

        let concurrency = self.options.concurrency.max(1);
        let batch = self.options.batch_size.max(1);
        let (dept_tx, dept_rx) = mpsc::unbounded_channel();
        let (listed_tx, listed_rx) = mpsc::channel(batch);
        let (read_tx, read_rx) = mpsc::channel(batch);
        let (tree_tx, tree_rx) = oneshot::channel();
        let walk = async {
            let tree = crawl::tree(
                &ctx.client,
                &ctx.policy.scope,
                concurrency,
                dept_tx,
                &self.progress,
                self.cancel,
            )
            .await?;
            // The people stage stopped only if the import is failing anyway.
            let _ = tree_tx.send(tree);
            Ok::<_, ImportError>(())
        };
        let list = async {
            Ok::<_, ImportError>(
                listing::list_members(
                    &ctx.client,
                    concurrency,
                    self.options.user_details,
                    dept_rx,
                    listed_tx,
                )
                .await,
            )
        };
        let read = users::read_users(
            &ctx.client,
            listed_rx,
            read_tx,
            self.options.user_details,
            concurrency,
            &skip,
            &self.progress,
        );
        let roles = async {
            Ok::<_, ImportError>(if self.options.roles {
                Some(crawl::roles(&ctx.client, concurrency).await)
            } else {
                None
            })
        };
        let people = users::Stage::new(&self, &oa, ids).run(tree_rx, read_rx, &mut report);
        let ((), listed, user_gets, role_part, (mut crawled, people)) =
            tokio::try_join!(walk, list, read, roles, people)?;
        drop(skip);
        crawled.members_per_dept = listed.members_per_dept;
        crawled.failures.extend(listed.failures);
        if let Some((groups, members, failures)) = role_part {
            crawled.role_groups = groups;
            crawled.role_members = members;
            crawled.roles_complete = failures.is_empty();
            crawled.failures.extend(failures);
        }
        if !self.options.dry_run {
            let (depts, complete) = (&crawled.depts, crawled.complete());
            crate::branch_copies::record_crawl(&ctx.store, depts, complete, ctx.now_ms()).await?;
        }
        let mut failures = crawled.failures.clone();
        failures.append(&mut report.failures);
        report.failures = failures;
        self.record_ambiguous(&people.ambiguous, &report).await?;
        self.dead_letter_mapping_failures(&report).await?;
        let mut ids = people.ids;

        // Roles.
        let roles_ok = if self.options.roles {
            self.import_roles(&crawled, &mut ids, &oa, &mut report)
                .await?
        } else {
            false
        };

        // Deletions.
        self.progress.emit(Progress {
            phase: ImportPhase::Deletions,
            ..Progress::default()
        });
        if crawled.complete() && people.all_read {
            let gone = delete::Listed {
                seen: &listed.seen,
                scoped_out: &people.scoped_out,
                ambiguous: &people.ambiguous,
            };
            self.deletions(&crawled, &gone, &ids, &oa, roles_ok, &mut report)
                .await?;
        } else {
            report.deletions.skipped_incomplete_crawl = true;
        }
        report.complete = report.failures.is_empty();
        if !self.options.dry_run {
            ctx.store.checkpoint_clear(IMPORT_NAME).await?;
        }
        report.calls = calls::call_report(ctx, &stats_before, &crawled, user_gets);
        report.wall_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let listed_n = self.progress.listed();
        self.progress.emit(Progress {
            phase: ImportPhase::Done,
            departments: crawled.depts.len(),
            users_listed: listed_n,
            users_written: people.written,
            users_total: listed_n.max(people.written),
        });
        Ok(report)
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

    /// Keeps the ambiguous soft matches for an operator to decide (the console's attention
    /// page).
    async fn record_ambiguous(
        &self,
        names: &std::collections::HashMap<directory_model::DingUserId, String>,
        report: &ImportReport,
    ) -> Result<(), ImportError> {
        if self.options.dry_run {
            return Ok(());
        }
        let found: Vec<directory_store::NewSoftMatch> = report
            .ambiguous
            .iter()
            .map(|a| directory_store::NewSoftMatch {
                ding_userid: a.ding.as_str().to_owned(),
                ding_name: names.get(&a.ding).cloned().unwrap_or_default(),
                key: a.key.map(|k| k.label().to_owned()),
                candidates: a.candidates.iter().map(|c| c.as_str().to_owned()).collect(),
            })
            .collect();
        self.ctx
            .store
            .soft_matches_replace(&found, self.ctx.now_ms())
            .await?;
        Ok(())
    }

    /// Departments, once the walk is done: links each crawled department (after
    /// `[scope.to_oa]`, see [`scoped`]) to an OA id, allocating fresh ones, and saves the new
    /// links unless a dry run.
    async fn link_departments(
        &self,
        crawled: &crawl::Crawl,
        ids: &mut IdMap,
        oa: &Snapshot,
    ) -> Result<(), ImportError> {
        let dept_links = link::link_departments(&crawled.depts, &oa.departments, ids);
        let fresh_depts = self
            .allocate(EntityKind::Department, dept_links.unlinked.len(), oa)
            .await?;
        let mut new_dept_links: Vec<(OaDeptId, DingDeptId)> = dept_links.matched.clone();
        for (i, d) in dept_links.unlinked.iter().enumerate() {
            new_dept_links.push((OaDeptId(fresh_depts + i as i64), *d));
        }
        for (o, d) in &new_dept_links {
            ids.insert_dept(*o, *d);
        }
        if !self.options.dry_run {
            self.ctx.store.id_map_put_many(&new_dept_links).await?;
        }
        Ok(())
    }

    /// Writes every crawled department, converted; returns how many. Counted in `report` if
    /// given (not when written again with the final manager links).
    async fn write_departments(
        &self,
        crawled: &crawl::Crawl,
        ids: &IdMap,
        oa: &Snapshot,
        mut report: Option<&mut ImportReport>,
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
            if let Some(report) = report.as_deref_mut() {
                report.departments.count(hint, &dept);
            }
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

    /// The read user as an OA user, or `None` when none of its departments was imported (a
    /// user is never written department-less because a department read failed).
    fn convert_user(
        &self,
        mut got: WireUser,
        ids: &IdMap,
        hint: Option<&User>,
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
        translate::user::from_wire(&got, ids, hint, &self.ctx.policy.rules).map(Some)
    }

    /// Roles. Returns whether the role listing was complete.
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
        self.import_assignments(crawled, ids, report).await?;
        Ok(crawled.roles_complete)
    }
    /// Roles, linking: every crawled group and role to an OA id (saved unless a dry run).
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

    /// Roles, assignments: per role whose member listing succeeded (its current holders read
    /// role by role, page by page).
    async fn import_assignments(
        &self,
        crawled: &crawl::Crawl,
        ids: &IdMap,
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
            let have = self.holders(oa_role).await?;
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

    /// The stored holders of one role.
    async fn holders(&self, role: OaRoleId) -> Result<BTreeSet<OaUserId>, StoreError> {
        let mut have = BTreeSet::new();
        let mut after = None;
        loop {
            let page = self
                .ctx
                .store
                .list_assignments(&AssignmentQuery {
                    role: Some(role),
                    after,
                    limit: 1000,
                    ..AssignmentQuery::default()
                })
                .await?;
            have.extend(page.items.iter().map(|a| a.user.clone()));
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(have),
            }
        }
    }
}
