//! The people of the import, as a stream: each listed person is read (`v2/user/get`) as soon
//! as the listing hands them on, then scoped, linked, converted and written in bounded batches.
//! Nothing holds the whole organisation; what must outlive a batch is kept as ids.
//!
//! Three stages, each behind a bounded channel, so a slow stage holds the ones before it back
//! instead of piling people up in memory:
//!
//! 1. **Reads** ([`read_users`]): up to `concurrency` `v2/user/get` calls in flight, started the
//!    moment a person is listed, so the read budget works while the tree is still walked and
//!    departments still listed.
//! 2. **Decisions** ([`Stage`]): waits for the walk (a user is converted against the linked
//!    departments), then per batch: `[scope.to_oa]`, linking (id map, userid, soft-match keys —
//!    see [`link::StreamLinker`]), conversion with the batch's existing rows as hints.
//! 3. **Writes** ([`super::writer`]): its own task; reading goes on while a batch commits.
//!
//! **Managers.** A person's manager may be listed after them. A manager not linked yet is linked
//! provisionally to the OA id they will have if nothing else decides it (their userid: a new
//! person, or a userid match). When their own turn decides otherwise (a soft match by key, an
//! ambiguity, out of scope, never listed), the provisional link is dropped and, at the end, the
//! people and departments that named them are corrected in one more write. Managers a soft
//! match is still pending for are filled in the same way.
//!
//! **Resuming.** An interrupted import leaves its start time (the generation) in the
//! checkpoint. The next run reads again only the people whose rows did not change since: the
//! ones the interrupted run wrote are linked and skipped (no `v2/user/get`).

use std::collections::{HashMap, HashSet};

use dingtalk_client::{ClientError, DingTalkClient};
use dingtalk_proto::{ErrCode, user::User as WireUser};
use directory_model::{DingUserId, OaUserId, Snapshot, User};
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};

use super::link::{Decision, StreamLinker};
use super::writer::{Lease, WriteJob, Writer};
use super::{
    IMPORT_NAME, ImportError, ImportPhase, ImportReport, Importer, KindCounts, LEASE_MS, Progress,
    ProgressSink, crawl, oa, scoped,
};
use crate::plan::DingParents;
use crate::translate::{IdMap, ding};

/// How long a batch waits to fill up before it is decided and written anyway.
const FILL_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// One listed person after the read.
pub(super) struct Read {
    /// As listed (memberships of the listed departments).
    listed: WireUser,
    /// What the read gave.
    got: Got,
}

/// The outcome of one read.
enum Got {
    /// The interrupted run wrote this person; not read again.
    Skipped,
    /// Read in full (`v2/user/get`).
    Details(Box<WireUser>),
    /// No details asked for: the listing is the person.
    Listed,
    /// The read failed.
    Failed(ClientError),
    /// The read's task ended without an answer (it panicked).
    Lost(String),
}

/// Runs one DingTalk call in a task of its own (aborted if dropped). An in-flight call may hold
/// the shared rate budget's database lock between two statements; in a task it finishes even
/// while the stage that started it waits for room downstream — polled in place, it would wait
/// too, and hold everyone else's budget with it.
pub(super) async fn detached<T: Send + 'static>(
    call: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, String> {
    tokio_util::task::AbortOnDropHandle::new(tokio::spawn(call))
        .await
        .map_err(|e| e.to_string())
}

/// Reads every person arriving on `listed` (see the module doc); returns the `v2/user/get`
/// calls made.
pub(super) async fn read_users(
    client: &DingTalkClient,
    listed: mpsc::Receiver<WireUser>,
    out: mpsc::Sender<Read>,
    details: bool,
    concurrency: usize,
    skip: &HashSet<dingtalk_proto::DingUserId>,
    progress: &ProgressSink<'_>,
) -> Result<u64, ImportError> {
    let incoming =
        futures::stream::unfold(
            listed,
            |mut rx| async move { rx.recv().await.map(|u| (u, rx)) },
        );
    let calls = std::sync::atomic::AtomicU64::new(0);
    let reads = incoming
        .map(|listed| {
            progress.count_listed();
            let skipped = skip.contains(&listed.userid);
            let read = details && !skipped;
            calls.fetch_add(u64::from(read), std::sync::atomic::Ordering::Relaxed);
            let client = client.clone();
            async move {
                let got = if skipped {
                    Got::Skipped
                } else if read {
                    let userid = listed.userid.clone();
                    match detached(async move { client.user_get(&userid).await }).await {
                        Ok(Ok(u)) => Got::Details(Box::new(u)),
                        Ok(Err(e)) => Got::Failed(e),
                        Err(e) => Got::Lost(e),
                    }
                } else {
                    Got::Listed
                };
                Read { listed, got }
            }
        })
        .buffer_unordered(concurrency.max(1));
    let mut reads = std::pin::pin!(reads);
    while let Some(read) = reads.next().await {
        if out.send(read).await.is_err() {
            break;
        }
    }
    Ok(calls.load(std::sync::atomic::Ordering::Relaxed))
}

/// What the people stage leaves for the phases after it.
pub(super) struct UsersOutcome {
    /// The id map with every link decided.
    pub ids: IdMap,
    /// Every listed person was read, scoped and converted (else nothing is deleted).
    pub all_read: bool,
    /// Listed people `[scope.to_oa]` left out (their OA users left the scope).
    pub scoped_out: HashSet<DingUserId>,
    /// Listed people left out because their match was ambiguous, with their names.
    pub ambiguous: HashMap<DingUserId, String>,
    /// People written (or, in a dry run, compared).
    pub written: usize,
}

/// The decisions stage; see the module doc.
pub(super) struct Stage<'i, 'a> {
    /// The run.
    imp: &'i Importer<'a>,
    /// Departments, role groups and roles of the OA directory.
    oa: &'i Snapshot,
    /// The id map, growing with every decision.
    ids: IdMap,
    /// Soft matching.
    linker: StreamLinker,
    /// DingTalk's tree as crawled, before `[scope.to_oa]` (for the users' scope).
    parents: DingParents,
    /// Provisional manager links (see the module doc).
    tentative: HashSet<DingUserId>,
    /// Provisional links that did not hold; their people and departments are corrected.
    misresolved: Vec<DingUserId>,
    /// (person, manager) whose manager waited for a soft match or had no provisional id.
    late_managers: Vec<(OaUserId, DingUserId)>,
    /// A department manager waited for a decision: departments are written again at the end.
    departments_wait: bool,
    /// Listed people out of scope.
    scoped_out: HashSet<DingUserId>,
    /// Listed people whose match was ambiguous, with their names.
    ambiguous: HashMap<DingUserId, String>,
    /// Every person read, scoped and converted so far.
    all_read: bool,
    /// Users created, updated, unchanged.
    counts: KindCounts,
    /// Users the writer committed (in a dry run: converted).
    written: usize,
}

impl<'i, 'a> Stage<'i, 'a> {
    /// A stage for one run.
    pub(super) fn new(imp: &'i Importer<'a>, oa: &'i Snapshot, ids: IdMap) -> Self {
        Self {
            imp,
            oa,
            ids,
            linker: StreamLinker::new(&imp.ctx.policy.soft_match.order),
            parents: DingParents::default(),
            tentative: HashSet::new(),
            misresolved: Vec::new(),
            late_managers: Vec::new(),
            departments_wait: false,
            scoped_out: HashSet::new(),
            ambiguous: HashMap::new(),
            all_read: true,
            counts: KindCounts::default(),
            written: 0,
        }
    }

    /// Runs the stage: waits for the walk, then takes batches from `reads` until it closes.
    /// Returns the crawl (departments, scope) and the outcome.
    pub(super) async fn run(
        mut self,
        tree: oneshot::Receiver<crawl::Crawl>,
        mut reads: mpsc::Receiver<Read>,
        report: &mut ImportReport,
    ) -> Result<(crawl::Crawl, UsersOutcome), ImportError> {
        let imp = self.imp;
        let mut crawled = tokio::select! {
            () = imp.cancel.cancelled() => return Err(ImportError::Cancelled),
            tree = tree => tree.map_err(|_| ImportError::Cancelled)?,
        };
        let departments = self.tree_ready(&mut crawled, report).await?;
        let mut writer = self.start_writer();
        let batch_size = imp.options.batch_size.max(1);
        let mut buf: Vec<Read> = Vec::with_capacity(batch_size);
        loop {
            // Fill a batch, or take what there is once the reads have nothing more for now.
            let n = tokio::select! {
                () = imp.cancel.cancelled() => return Err(ImportError::Cancelled),
                n = reads.recv_many(&mut buf, batch_size) => n,
                Some(n) = recv_ack(&mut writer) => {
                    self.written += n;
                    self.emit(departments);
                    continue;
                }
            };
            if n == 0 {
                break;
            }
            // Top the batch up for a moment: one write per few people would cost a commit each
            // (and the lease renewal), where the reads deliver a batch in well under a second.
            let deadline = tokio::time::Instant::now() + FILL_WAIT;
            while buf.len() < batch_size {
                let room = batch_size - buf.len();
                let more = reads.recv_many(&mut buf, room);
                match tokio::time::timeout_at(deadline, more).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            let job = self
                .batch(std::mem::take(&mut buf), &crawled, report)
                .await?;
            self.send(&mut writer, job).await?;
            self.emit(departments);
        }
        let job = self.settle(report).await?;
        self.send(&mut writer, job).await?;
        if let Some(w) = &mut writer {
            w.finish().await?;
            while let Ok(n) = w.acks.try_recv() {
                self.written += n;
            }
        }
        self.emit(departments);
        self.correct_managers(&crawled).await?;
        report.users = self.counts;
        let ambiguous = self.ambiguous;
        Ok((
            crawled,
            UsersOutcome {
                ids: self.ids,
                all_read: self.all_read,
                scoped_out: self.scoped_out,
                ambiguous,
                written: self.written,
            },
        ))
    }

    /// Once the walk is done: `[scope.to_oa.departments]`, the department links, the
    /// departments written, and the key index for soft matching. Returns the departments
    /// written.
    async fn tree_ready(
        &mut self,
        crawled: &mut crawl::Crawl,
        report: &mut ImportReport,
    ) -> Result<usize, ImportError> {
        let imp = self.imp;
        imp.progress.emit(Progress {
            phase: ImportPhase::Link,
            departments: crawled.depts.len(),
            users_listed: imp.progress.listed(),
            ..Progress::default()
        });
        let rules = &imp.ctx.policy.rules;
        // DingTalk's tree as crawled, before the scope takes departments out of it.
        self.parents = DingParents::of(&crawled.depts);
        scoped::departments(crawled, &self.ids, rules);
        imp.link_departments(crawled, &mut self.ids, self.oa)
            .await?;
        // The key index, before any provisional link makes an OA user look linked.
        if !imp.ctx.policy.soft_match.order.is_empty()
            && oa::has_unlinked_users(&imp.ctx.store, &self.ids).await?
        {
            // Several orgs: only people with a membership in this org's part of OA may be
            // soft-matched (`org_scope`), never another corp's.
            let several_orgs = imp.ctx.store.org_roots().await?.len() > 1;
            let (ids, linker, oa) = (&self.ids, &mut self.linker, self.oa);
            oa::each_user(&imp.ctx.store, None, None, |u| {
                let in_org =
                    !several_orgs || u.department_ids().any(|d| oa.departments.contains_key(&d));
                if in_org && ids.ding_user(&u.id).is_none() {
                    linker.offer(&u);
                }
            })
            .await?;
        }
        self.provisional_department_managers(crawled);
        let n = imp
            .write_departments(crawled, &self.ids, self.oa, Some(report))
            .await?;
        Ok(n)
    }

    /// The writer task (none in a dry run).
    fn start_writer(&self) -> Option<Writer> {
        let imp = self.imp;
        if imp.options.dry_run {
            return None;
        }
        let clock = imp.ctx.clock.clone();
        let batch = imp.options.batch_size.max(1);
        Some(Writer::start(
            imp.ctx.store.clone(),
            imp.write_ctx(),
            Lease {
                name: IMPORT_NAME,
                holder: imp.holder.to_owned(),
                ms: LEASE_MS,
            },
            move || clock.now_ms(),
            4,
            batch,
        ))
    }

    /// Queues a job (in a dry run: counts it as written).
    async fn send(
        &mut self,
        writer: &mut Option<Writer>,
        job: WriteJob,
    ) -> Result<(), ImportError> {
        match writer {
            None => {
                self.written += job.users.len();
                Ok(())
            }
            Some(_) if job.users.is_empty() && job.links.is_empty() => Ok(()),
            Some(w) => {
                if w.send(job).await {
                    return Ok(());
                }
                // The writer stopped: its error says why.
                w.finish().await?;
                Err(ImportError::Writer("the writer stopped".to_owned()))
            }
        }
    }

    fn emit(&self, departments: usize) {
        let listed = self.imp.progress.listed();
        self.imp.progress.emit(Progress {
            phase: ImportPhase::Users,
            departments,
            users_listed: listed,
            users_written: self.written,
            users_total: listed.max(self.written),
        });
    }

    /// Scopes, links and converts one batch of reads.
    async fn batch(
        &mut self,
        reads: Vec<Read>,
        crawled: &crawl::Crawl,
        report: &mut ImportReport,
    ) -> Result<WriteJob, ImportError> {
        let mut ready: Vec<WireUser> = Vec::with_capacity(reads.len());
        for Read { listed, got } in reads {
            let Some(listed) = self.scope(listed, crawled, report) else {
                continue;
            };
            match got {
                Got::Skipped => {}
                Got::Listed => ready.push(listed),
                Got::Details(mut u) => {
                    // `get` reports memberships of every department; the listing already
                    // knows which are in scope.
                    u.dept_id_list.clone_from(&listed.dept_id_list);
                    ready.push(*u);
                }
                Got::Failed(e) if e.errcode() == Some(ErrCode::USER_NOT_FOUND) => {
                    report.vanished += 1;
                }
                Got::Failed(e) => {
                    self.all_read = false;
                    report
                        .failures
                        .push(format!("reading user {}: {e}", listed.userid));
                }
                Got::Lost(e) => {
                    self.all_read = false;
                    report
                        .failures
                        .push(format!("reading user {}: {e}", listed.userid));
                }
            }
        }
        let rows = self.existing_rows(&ready).await?;
        let mut linked = Vec::with_capacity(ready.len());
        for u in ready {
            if let Some(oa_id) = self.link(&u, &rows) {
                linked.push((u, oa_id));
            }
        }
        self.write_job(linked, &rows, report)
    }

    /// `[scope.to_oa]` for one listed person; `None` (recorded) when out of it.
    fn scope(
        &mut self,
        listed: WireUser,
        crawled: &crawl::Crawl,
        report: &mut ImportReport,
    ) -> Option<WireUser> {
        let d = ding::user(&listed.userid);
        let Some(listed) = scoped::memberships(listed, crawled) else {
            self.scoped_out.insert(d);
            return None;
        };
        let rules = &self.imp.ctx.policy.rules;
        match scoped::user(&listed, &self.ids, rules, &self.parents) {
            Ok(true) => Some(listed),
            Ok(false) => {
                self.scoped_out.insert(d);
                None
            }
            Err(reason) => {
                // Nothing is deleted on the strength of this import.
                self.all_read = false;
                report.failures.push(format!(
                    "user {} not imported: the scope failed: {reason}",
                    listed.userid
                ));
                report
                    .mapping_failures
                    .push((listed.userid.0.clone(), reason));
                self.scoped_out.insert(d);
                None
            }
        }
    }

    /// The stored rows a batch may link to: each person's linked OA user and the OA user with
    /// their userid as id.
    async fn existing_rows(
        &self,
        users: &[WireUser],
    ) -> Result<HashMap<OaUserId, User>, ImportError> {
        let mut want: Vec<String> = Vec::with_capacity(users.len() * 2);
        for u in users {
            let d = ding::user(&u.userid);
            if let Some(o) = self.linked(&d) {
                want.push(o.as_str().to_owned());
            }
            want.push(d.as_str().to_owned());
        }
        want.sort();
        want.dedup();
        Ok(self
            .imp
            .ctx
            .store
            .users_by_ids(&want)
            .await?
            .into_iter()
            .map(|v| (v.entity.id.clone(), v.entity))
            .collect())
    }

    /// The id map's link of `d`, unless only provisional.
    fn linked(&self, d: &DingUserId) -> Option<&OaUserId> {
        if self.tentative.contains(d) {
            return None;
        }
        self.ids.oa_user(d)
    }

    /// Links one person; `None` when left out (ambiguous) or waiting for the soft-match
    /// settlement.
    fn link(&mut self, u: &WireUser, rows: &HashMap<OaUserId, User>) -> Option<OaUserId> {
        let d = ding::user(&u.userid);
        if let Some(o) = self.linked(&d) {
            return Some(o.clone());
        }
        let same_id = OaUserId::new(d.as_str());
        let taken = self.ids.ding_user(&same_id).is_some_and(|x| x != &d);
        match self.linker.decide(u, rows.contains_key(&same_id), taken) {
            Decision::To(oa_id) => {
                self.confirm(&d, &oa_id);
                Some(oa_id)
            }
            Decision::Ambiguous => {
                self.leave_out(&d, &u.name);
                None
            }
            Decision::Deferred => None,
        }
    }

    /// Records `d`'s link, dropping a provisional one that said otherwise.
    fn confirm(&mut self, d: &DingUserId, oa_id: &OaUserId) {
        if self.tentative.remove(d) && oa_id.as_str() != d.as_str() {
            self.misresolved.push(d.clone());
        }
        self.ids.insert_user(oa_id.clone(), d.clone());
    }

    /// `d` is not imported (ambiguous); a provisional link to it is dropped.
    fn leave_out(&mut self, d: &DingUserId, name: &str) {
        self.ambiguous.insert(d.clone(), name.to_owned());
        if self.tentative.remove(d) {
            self.ids.remove_user(d);
            self.misresolved.push(d.clone());
        }
    }

    /// Links a manager not decided yet provisionally (see the module doc); `false` when that
    /// is not possible (the manager's fate is pending or their userid is another's OA id).
    fn provisional(&mut self, m: &DingUserId) -> bool {
        if self.ids.oa_user(m).is_some() {
            return true;
        }
        if self.scoped_out.contains(m) || self.ambiguous.contains_key(m) {
            // Not imported: the reference is dropped, as it stays.
            return true;
        }
        let id = OaUserId::new(m.as_str());
        if self.linker.is_deferred(&oa::wire(m)) || self.ids.ding_user(&id).is_some() {
            return false;
        }
        self.ids.insert_user(id, m.clone());
        self.tentative.insert(m.clone());
        true
    }

    /// Provisional links for the departments' managers, before the departments are written.
    fn provisional_department_managers(&mut self, crawled: &crawl::Crawl) {
        for d in &crawled.depts {
            for m in d.dept_manager_userid_list.iter().flatten() {
                if !self.provisional(&ding::user(m)) {
                    self.departments_wait = true;
                }
            }
        }
    }

    /// Converts one linked person; `None` (recorded) when it cannot be.
    /// The write of linked people: the links made since the last job, and each person
    /// converted (`hint`: their stored row).
    fn write_job(
        &mut self,
        linked: Vec<(WireUser, OaUserId)>,
        rows: &HashMap<OaUserId, User>,
        report: &mut ImportReport,
    ) -> Result<WriteJob, ImportError> {
        let mut job = WriteJob {
            links: std::mem::take(&mut self.linker.out.new_links),
            users: Vec::with_capacity(linked.len()),
        };
        for (u, oa_id) in linked {
            if let Some(user) = self.convert(u, &oa_id, rows.get(&oa_id), report)? {
                job.users.push(user);
            }
        }
        Ok(job)
    }

    fn convert(
        &mut self,
        u: WireUser,
        oa_id: &OaUserId,
        hint: Option<&User>,
        report: &mut ImportReport,
    ) -> Result<Option<User>, ImportError> {
        if let Some(m) = &u.manager_userid {
            let m = ding::user(m);
            if !self.provisional(&m) {
                self.late_managers.push((oa_id.clone(), m));
            }
        }
        let userid = u.userid.0.clone();
        let converted = match self.imp.convert_user(u, &self.ids, hint) {
            Err(crate::translate::ConvertError::Mapping(e)) => {
                // One user's failing expression never stops the import: the user is left out
                // (so the crawl counts as incomplete and deletes nothing) and named.
                self.all_read = false;
                let reason = crate::error_chain(&e);
                report.failures.push(format!(
                    "user {userid} not imported: the mapping failed: {reason}"
                ));
                report.mapping_failures.push((userid, reason));
                return Ok(None);
            }
            other => other?,
        };
        let Some(user) = converted else {
            self.all_read = false;
            report.failures.push(format!(
                "user {userid} not imported: none of its departments could be read"
            ));
            return Ok(None);
        };
        self.counts.count(hint, &user);
        Ok(Some(user))
    }

    /// Decides the soft matches that waited for everyone to be listed, and converts them.
    async fn settle(&mut self, report: &mut ImportReport) -> Result<WriteJob, ImportError> {
        let settled = self.linker.settle();
        let want: Vec<String> = settled
            .iter()
            .filter_map(|(_, o)| o.as_ref().map(|o| o.as_str().to_owned()))
            .collect();
        let rows: HashMap<OaUserId, User> = self
            .imp
            .ctx
            .store
            .users_by_ids(&want)
            .await?
            .into_iter()
            .map(|v| (v.entity.id.clone(), v.entity))
            .collect();
        let mut linked = Vec::new();
        for (u, oa_id) in settled {
            let d = ding::user(&u.userid);
            match oa_id {
                Some(oa_id) => {
                    self.confirm(&d, &oa_id);
                    linked.push((u, oa_id));
                }
                None => self.leave_out(&d, &u.name),
            }
        }
        // Provisional links nobody confirmed: never listed (or their read failed).
        for d in std::mem::take(&mut self.tentative) {
            self.ids.remove_user(&d);
            self.misresolved.push(d);
        }
        let job = self.write_job(linked, &rows, report)?;
        // Managers still pending now are not imported; `convert` dropped them.
        self.tentative.clear();
        report.soft_matched = self.linker.out.soft_matched.clone();
        report.ambiguous = self.linker.out.ambiguous.clone();
        Ok(job)
    }

    /// Corrects the people and departments that named a provisional manager who turned out
    /// otherwise, or whose manager waited for a soft match (see the module doc).
    async fn correct_managers(&mut self, crawled: &crawl::Crawl) -> Result<(), ImportError> {
        if self.misresolved.is_empty() && self.late_managers.is_empty() && !self.departments_wait {
            return Ok(());
        }
        let imp = self.imp;
        let store = &imp.ctx.store;
        let mut fixes: HashMap<OaUserId, Option<OaUserId>> = HashMap::new();
        if !self.misresolved.is_empty() {
            let named: Vec<OaUserId> = self
                .misresolved
                .iter()
                .map(|d| OaUserId::new(d.as_str()))
                .collect();
            let managed = store.user_ids_managed_by(&named).await?;
            let misresolved: HashSet<&str> =
                self.misresolved.iter().map(DingUserId::as_str).collect();
            let managed: Vec<String> = managed.iter().map(|m| m.as_str().to_owned()).collect();
            for v in store.users_by_ids(&managed).await? {
                // Only people this import links (an OA-only person's manager is the OA's).
                if self.ids.ding_user(&v.entity.id).is_none() {
                    continue;
                }
                if let Some(m) = v
                    .entity
                    .manager
                    .as_ref()
                    .filter(|m| misresolved.contains(m.as_str()))
                {
                    let m = DingUserId::new(m.as_str());
                    fixes.insert(v.entity.id.clone(), self.ids.oa_user(&m).cloned());
                }
            }
        }
        for (user, m) in std::mem::take(&mut self.late_managers) {
            fixes.insert(user, self.ids.oa_user(&m).cloned());
        }
        let ids: Vec<String> = fixes.keys().map(|k| k.as_str().to_owned()).collect();
        let mut users = Vec::new();
        if !imp.options.dry_run {
            for v in store.users_by_ids(&ids).await? {
                let mut u = v.entity;
                if let Some(manager) = fixes.get(&u.id) {
                    if u.manager == *manager {
                        continue;
                    }
                    u.manager.clone_from(manager);
                    users.push(u);
                }
            }
            for chunk in users.chunks(imp.options.batch_size.max(1)) {
                store.import_users(&imp.write_ctx(), chunk).await?;
            }
        }
        // Departments that named one of them (or waited) are written again with the final
        // links; unchanged ones are not touched.
        imp.write_departments(crawled, &self.ids, self.oa, None)
            .await?;
        Ok(())
    }
}

/// The next acknowledgement of the writer, or never (in a dry run).
async fn recv_ack(writer: &mut Option<Writer>) -> Option<usize> {
    match writer {
        Some(w) => w.acks.recv().await,
        None => std::future::pending().await,
    }
}
