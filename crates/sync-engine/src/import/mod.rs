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

mod crawl;
pub mod link;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Instant;

use dingtalk_client::endpoints::paths;
use dingtalk_proto::{ErrCode, user::User as WireUser};
use directory_model::{
    DingDeptId, DingRoleGroupId, DingRoleId, DingUserId, OaDeptId, OaRoleGroupId, OaRoleId,
    OaUserId, Snapshot, User, UserState,
};
use directory_store::{
    AssignmentQuery, EntityKind, Expect, HoldState, Origin, StoreError, WriteCtx,
};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::context::SyncContext;
use crate::convert::{self, ConvertError, IdMap, ding};
pub use link::{AmbiguousMatch, MatchedBy, SoftMatched};

/// The checkpoint and lease name of the import.
const IMPORT_NAME: &str = "import";
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

/// Counts of one entity kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct KindCounts {
    /// New in OA.
    pub created: usize,
    /// Changed in OA.
    pub updated: usize,
    /// Already equal.
    pub unchanged: usize,
}

impl KindCounts {
    fn count<T: PartialEq>(&mut self, before: Option<&T>, after: &T) {
        match before {
            None => self.created += 1,
            Some(b) if b == after => self.unchanged += 1,
            Some(_) => self.updated += 1,
        }
    }
}

/// What the deletion phase did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeletionReport {
    /// Deletions were skipped because the crawl was incomplete.
    pub skipped_incomplete_crawl: bool,
    /// Users marked left (or that would be, in a dry run).
    pub users_left: Vec<OaUserId>,
    /// Departments deleted (or that would be).
    pub departments_deleted: Vec<OaDeptId>,
    /// Roles deleted (or that would be).
    pub roles_deleted: Vec<OaRoleId>,
    /// Role groups deleted (or that would be).
    pub role_groups_deleted: Vec<OaRoleGroupId>,
    /// Deletions held for confirmation because they crossed the threshold.
    pub held: usize,
}

/// Calls made against the minimum the organisation requires.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CallReport {
    /// Attempts per API path (retries included).
    pub made: BTreeMap<String, u64>,
    /// The fewest calls per API path that read the same data.
    pub minimum: BTreeMap<String, u64>,
    /// Sum of `made`.
    pub total_made: u64,
    /// Sum of `minimum`.
    pub total_minimum: u64,
    /// Throttle answers seen (should be 0: the budget paces calls).
    pub throttled: u64,
    /// The shortest wall time the per-API rate limit allows for the minimum calls, in ms
    /// (`None` when the client has no limit).
    pub min_wall_ms: Option<u64>,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Nothing was written.
    pub dry_run: bool,
    /// Every call succeeded.
    pub complete: bool,
    /// The failed calls, one line each.
    pub failures: Vec<String>,
    /// Resumed after this userid (an earlier run was interrupted).
    pub resumed_after: Option<String>,
    /// Departments.
    pub departments: KindCounts,
    /// Users.
    pub users: KindCounts,
    /// Role groups.
    pub role_groups: KindCounts,
    /// Roles.
    pub roles: KindCounts,
    /// Assignments added and removed.
    pub assignments_added: usize,
    /// Assignments removed.
    pub assignments_removed: usize,
    /// DingTalk users linked to OA users that existed before.
    pub soft_matched: Vec<SoftMatched>,
    /// DingTalk users not imported because their match was ambiguous.
    pub ambiguous: Vec<AmbiguousMatch>,
    /// Users listed but gone by the time they were read (they left during the import).
    pub vanished: usize,
    /// Deletions.
    pub deletions: DeletionReport,
    /// Calls.
    pub calls: CallReport,
    /// Wall time, ms.
    pub wall_ms: u64,
}

/// What the checkpoint holds between runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Checkpoint {
    /// Every user up to this userid (in byte order) is written.
    through: Option<String>,
    /// Users at or before `through` whose read failed; a resumed run reads them again.
    failed: Vec<String>,
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
    ctx: &'a SyncContext,
    options: &'a ImportOptions,
    progress: ProgressSink<'a>,
    cancel: &'a CancellationToken,
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
        let checkpoint: Checkpoint = if self.options.dry_run {
            Checkpoint::default()
        } else {
            match ctx.store.checkpoint_get(IMPORT_NAME).await? {
                Some(text) => serde_json::from_str(&text).map_err(ImportError::Checkpoint)?,
                None => Checkpoint::default(),
            }
        };
        report.resumed_after.clone_from(&checkpoint.through);

        // Phase 1: crawl.
        let crawled = crawl::crawl(
            &ctx.client,
            &ctx.policy.scope,
            self.options.concurrency,
            self.options.roles,
            &self.progress,
            self.cancel,
        )
        .await?;
        report.failures.clone_from(&crawled.failures);

        // Phase 2: link and write departments.
        self.progress.emit(Progress {
            phase: ImportPhase::Link,
            departments: crawled.depts.len(),
            users_listed: crawled.users.len(),
            ..Progress::default()
        });
        let oa = ctx.store.snapshot().await?;
        let mut ids = IdMap::load_all(&ctx.store).await?;
        let user_links = link::link_users(
            &crawled.users,
            &oa.users,
            &ids,
            &ctx.policy.soft_match.order,
        );
        for (d, o) in &user_links.links {
            ids.insert_user(o.clone(), d.clone());
        }
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
            let dept = convert::department(&w, &ids, hint)?;
            report.departments.count(hint, &dept);
            depts.push(dept);
        }
        if !self.options.dry_run {
            ctx.store
                .import_departments(&self.write_ctx(), &depts)
                .await?;
        }

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

        let details = if self.options.user_details {
            user_links.links.len() as u64
        } else {
            0
        };
        report.calls = call_report(ctx, &stats_before, &crawled, details);
        report.wall_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.progress.emit(Progress {
            phase: ImportPhase::Done,
            departments: depts.len(),
            users_listed: crawled.users.len(),
            users_written: user_links.links.len(),
            users_total: user_links.links.len(),
        });
        Ok(report)
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
        let mut all_read = true;
        let mut next_checkpoint = Checkpoint {
            through: checkpoint.through.clone(),
            failed: Vec::new(),
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
        let mut counts = KindCounts::default();
        loop {
            let batch = tokio::select! {
                () = self.cancel.cancelled() => return Err(ImportError::Cancelled),
                batch = fetched.next() => batch,
            };
            let Some(batch) = batch else { break };
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
                        all_read = false;
                        report
                            .failures
                            .push(format!("reading user {}: {e}", listed_user.userid));
                        next_checkpoint.failed.push(listed_user.userid.0.clone());
                        continue;
                    }
                };
                let user = self.convert_user(got, ids, oa)?;
                counts.count(oa.users.get(&user.id), &user);
                next_checkpoint.through = Some(listed_user.userid.0.clone());
                users.push(user);
            }
            written += users.len();
            if !self.options.dry_run {
                ctx.store.import_users(&self.write_ctx(), &users).await?;
                let text =
                    serde_json::to_string(&next_checkpoint).map_err(ImportError::Checkpoint)?;
                ctx.store
                    .checkpoint_set(IMPORT_NAME, &text, ctx.now_ms())
                    .await?;
                ctx.store
                    .lease_acquire(IMPORT_NAME, self.holder, ctx.now_ms(), LEASE_MS)
                    .await?;
            }
            self.progress.emit(Progress {
                phase: ImportPhase::Users,
                departments: 0,
                users_listed: listed.len(),
                users_written: written,
                users_total: total,
            });
        }
        report.users = counts;
        Ok(all_read)
    }

    fn convert_user(
        &self,
        mut got: WireUser,
        ids: &IdMap,
        oa: &Snapshot,
    ) -> Result<User, ConvertError> {
        if let Some(depts) = &mut got.dept_id_list {
            depts.retain(|d| ids.oa_dept(ding::dept(*d)).is_some());
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
        convert::user(&got, ids, hint)
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
        let role_failed = crawled.failures.iter().any(|f| f.contains("role"));
        if crawled.role_groups.is_empty() && role_failed {
            return Ok(false);
        }
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
        let wctx = self.write_ctx();
        for g in &crawled.role_groups {
            let group = convert::role_group(g, ids)?;
            report
                .role_groups
                .count(oa.role_groups.get(&group.id), &group);
            if !self.options.dry_run {
                ctx.store.save_role_group(&wctx, group, Expect::Any).await?;
            }
            for r in &g.roles {
                let role = convert::role(r, g.group_id, ids)?;
                report.roles.count(oa.roles.get(&role.id), &role);
                if !self.options.dry_run {
                    ctx.store.save_role(&wctx, role, Expect::Any).await?;
                }
            }
        }
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
        Ok(!role_failed)
    }

    /// Phase 5, after a complete crawl.
    async fn deletions(
        &self,
        crawled: &crawl::Crawl,
        links: &BTreeMap<DingUserId, OaUserId>,
        ids: &IdMap,
        oa: &Snapshot,
        roles_ok: bool,
        report: &mut ImportReport,
    ) -> Result<(), ImportError> {
        let ctx = self.ctx;
        let policy = &ctx.policy.deletions;
        let imported_depts: HashSet<OaDeptId> = crawled
            .depts
            .iter()
            .filter_map(|d| ids.oa_dept(ding::dept(d.dept_id)))
            .collect();
        let listed: HashSet<&OaUserId> = links.values().collect();
        let ambiguous: HashSet<&DingUserId> = report.ambiguous.iter().map(|a| &a.ding).collect();
        // Users: linked, active, in an imported department, and not listed anywhere.
        let gone_users: Vec<OaUserId> = oa
            .users
            .values()
            .filter(|u| u.state == UserState::Active)
            .filter(|u| !listed.contains(&u.id))
            .filter(|u| ids.ding_user(&u.id).is_some_and(|d| !ambiguous.contains(d)))
            .filter(|u| u.department_ids().any(|d| imported_depts.contains(&d)))
            .map(|u| u.id.clone())
            .collect();
        // Departments: linked and not seen by the walk (in scope or not).
        let gone_depts: Vec<OaDeptId> = oa
            .departments
            .values()
            .filter(|d| {
                ids.ding_dept(d.id)
                    .is_some_and(|dd| !crawled.seen_depts.contains(&ding::wire_dept(dd)))
            })
            .map(|d| d.id)
            .collect();
        let active_users = oa
            .users
            .values()
            .filter(|u| u.state == UserState::Active)
            .count();
        let hold_users = policy.must_hold(gone_users.len(), active_users);
        let hold_depts = policy.must_hold(gone_depts.len(), oa.departments.len());
        let wctx = self.write_ctx();
        let already_held: HashSet<(EntityKind, String)> = if self.options.dry_run {
            HashSet::new()
        } else {
            ctx.store
                .held_deletions(Some(HoldState::Held))
                .await?
                .into_iter()
                .map(|h| (h.kind, h.oa_id))
                .collect()
        };
        if hold_users {
            let reason = format!(
                "import: {} of {} active users missing from DingTalk exceeds the deletion threshold",
                gone_users.len(),
                active_users
            );
            for u in &gone_users {
                report.deletions.held += 1;
                if !self.options.dry_run && !already_held.contains(&(EntityKind::User, u.0.clone()))
                {
                    ctx.store
                        .hold_deletion(
                            EntityKind::User,
                            u.as_str(),
                            Origin::Import,
                            &reason,
                            ctx.now_ms(),
                        )
                        .await?;
                }
            }
        } else {
            for u in &gone_users {
                if !self.options.dry_run {
                    mark_left(ctx, &wctx, u).await?;
                }
            }
            report.deletions.users_left = gone_users;
        }
        if hold_depts {
            let reason = format!(
                "import: {} of {} departments missing from DingTalk exceeds the deletion threshold",
                gone_depts.len(),
                oa.departments.len()
            );
            for d in &gone_depts {
                report.deletions.held += 1;
                if !self.options.dry_run
                    && !already_held.contains(&(EntityKind::Department, d.to_string()))
                {
                    ctx.store
                        .hold_deletion(
                            EntityKind::Department,
                            &d.to_string(),
                            Origin::Import,
                            &reason,
                            ctx.now_ms(),
                        )
                        .await?;
                }
            }
        } else {
            if !self.options.dry_run {
                delete_departments(ctx, &wctx, &gone_depts).await?;
            }
            report.deletions.departments_deleted = gone_depts;
        }
        if roles_ok {
            let seen_roles: HashSet<DingRoleId> = crawled
                .role_groups
                .iter()
                .flat_map(|g| g.roles.iter().map(|r| ding::role(r.id)))
                .collect();
            let seen_groups: HashSet<DingRoleGroupId> = crawled
                .role_groups
                .iter()
                .map(|g| ding::group(g.group_id))
                .collect();
            for r in oa.roles.values() {
                if ids
                    .ding_role(r.id)
                    .is_some_and(|d| !seen_roles.contains(&d))
                {
                    report.deletions.roles_deleted.push(r.id);
                    if !self.options.dry_run {
                        ctx.store.delete_role(&wctx, r.id, None).await?;
                        ctx.store.id_map_remove(&r.id).await?;
                    }
                }
            }
            for g in oa.role_groups.values() {
                if ids
                    .ding_group(g.id)
                    .is_some_and(|d| !seen_groups.contains(&d))
                {
                    report.deletions.role_groups_deleted.push(g.id);
                    if !self.options.dry_run {
                        ctx.store.delete_role_group(&wctx, g.id, None).await?;
                        ctx.store.id_map_remove(&g.id).await?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Marks a user left (DingTalk no longer has them) and drops their roles, as DingTalk does; a
/// no-op if they are gone or left already.
pub(crate) async fn mark_left(
    ctx: &SyncContext,
    wctx: &WriteCtx,
    id: &OaUserId,
) -> Result<bool, StoreError> {
    let Some(current) = ctx.store.get_user(id).await? else {
        return Ok(false);
    };
    if current.entity.state == UserState::Left {
        return Ok(false);
    }
    let mut left = current.entity;
    left.state = UserState::Left;
    ctx.store
        .save_user(wctx, left, Expect::Version(current.version))
        .await?;
    // DingTalk drops a departed user's roles; so does the directory.
    let held = ctx
        .store
        .list_assignments(&AssignmentQuery {
            user: Some(id.clone()),
            limit: 1000,
            ..AssignmentQuery::default()
        })
        .await?;
    for a in held.items {
        ctx.store.unassign_role(wctx, id, a.role).await?;
    }
    Ok(true)
}

/// Deletes departments DingTalk no longer has (subtrees cascade; members move up), and forgets
/// their links.
pub(crate) async fn delete_departments(
    ctx: &SyncContext,
    wctx: &WriteCtx,
    gone: &[OaDeptId],
) -> Result<(), StoreError> {
    for d in gone {
        match ctx.store.delete_department(wctx, *d, None, true).await {
            Ok(r) => {
                for removed in r.departments {
                    ctx.store.id_map_remove(&removed).await?;
                }
            }
            // Already removed with an ancestor's subtree.
            Err(StoreError::NotFound { .. }) => {
                ctx.store.id_map_remove(d).await?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Applies held deletions an operator approved (`dingsync reconcile --yes`, the admin API).
/// Returns how many were applied; applying one twice is harmless.
pub async fn apply_approved_deletions(ctx: &SyncContext) -> Result<usize, StoreError> {
    let wctx = WriteCtx::import(format!("{}:confirmed-deletion", ctx.actor), ctx.now_ms());
    let approved = ctx.store.held_deletions(Some(HoldState::Approved)).await?;
    let mut applied = 0;
    for h in approved {
        if !matches!(
            h.origin,
            Origin::Import | Origin::DingTalk | Origin::Reconcile
        ) {
            continue;
        }
        match h.kind {
            EntityKind::User => {
                let left = mark_left(ctx, &wctx, &OaUserId::new(h.oa_id.as_str())).await?;
                applied += usize::from(left);
            }
            EntityKind::Department => {
                if let Ok(id) = h.oa_id.parse::<i64>()
                    && ctx.store.get_department(OaDeptId(id)).await?.is_some()
                {
                    delete_departments(ctx, &wctx, &[OaDeptId(id)]).await?;
                    applied += 1;
                }
            }
            _ => {}
        }
    }
    Ok(applied)
}

/// Compares the calls made with the minimum the crawled organisation needs.
fn call_report(
    ctx: &SyncContext,
    before: &dingtalk_client::ClientStats,
    crawled: &crawl::Crawl,
    user_gets: u64,
) -> CallReport {
    let after = ctx.client.stats();
    let mut made = BTreeMap::new();
    let mut throttled = 0;
    for (api, stats) in &after.endpoints {
        let prev = before.endpoint(api);
        let n = stats.calls.saturating_sub(prev.calls);
        throttled += stats.throttles.saturating_sub(prev.throttles);
        if n > 0 {
            made.insert((*api).to_owned(), n);
        }
    }
    let pages = |n: usize, size: usize| n.div_ceil(size).max(1) as u64;
    let mut minimum: BTreeMap<String, u64> = BTreeMap::new();
    minimum.insert(
        paths::DEPT_LISTSUB.to_owned(),
        crawled.seen_depts.len() as u64,
    );
    minimum.insert(paths::DEPT_GET.to_owned(), crawled.depts.len() as u64);
    minimum.insert(
        paths::USER_LIST.to_owned(),
        crawled
            .members_per_dept
            .values()
            .map(|n| pages(*n, 100))
            .sum(),
    );
    if user_gets > 0 {
        minimum.insert(paths::USER_GET.to_owned(), user_gets);
    }
    if !crawled.role_groups.is_empty() {
        minimum.insert(
            paths::ROLE_LIST.to_owned(),
            pages(crawled.role_groups.len(), 200),
        );
        minimum.insert(
            paths::ROLE_SIMPLELIST.to_owned(),
            crawled
                .role_members
                .values()
                .map(|m| pages(m.len(), 100))
                .sum(),
        );
    }
    // The token is fetched at most once per import (it lasts two hours).
    let token_calls = made.get(paths::GETTOKEN).copied().unwrap_or(0).min(1);
    if token_calls > 0 {
        minimum.insert(paths::GETTOKEN.to_owned(), token_calls);
    }
    let qps = u64::from(ctx.client.config().qps_per_api);
    let min_wall_ms = (qps > 0).then(|| {
        let per = |api: &str| minimum.get(api).copied().unwrap_or(0);
        // Phase 1 families run side by side (roles: the list, then the member pages); phase 3
        // follows it. Each family's calls take calls / qps seconds at best.
        let crawl = [
            per(paths::DEPT_LISTSUB),
            per(paths::DEPT_GET),
            per(paths::USER_LIST),
            per(paths::ROLE_LIST) + per(paths::ROLE_SIMPLELIST),
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        (crawl + per(paths::USER_GET)) * 1000 / qps
    });
    CallReport {
        total_made: made.values().sum(),
        total_minimum: minimum.values().sum(),
        made,
        minimum,
        throttled,
        min_wall_ms,
    }
}
