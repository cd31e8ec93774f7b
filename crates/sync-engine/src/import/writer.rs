//! The import's writes, in their own task behind a bounded channel, so that reading DingTalk
//! goes on while a batch commits (on PostgreSQL a commit waits for the write lock and an
//! fsync; inline, every read stalled behind it).
//!
//! Each job is a batch of users and the id-map links they need. Jobs that queued up while the
//! previous one committed are merged into one transaction (up to a cap), so a slow commit is
//! paid once for several batches instead of once each. The id-map links go first: a user row
//! is never written without its link (a crash in between leaves a link to a user the next
//! import writes). After each write the lease is renewed and the count of users written is
//! reported back, so progress shows what is committed, not what is queued.

use directory_model::{DingUserId, OaUserId, User};
use directory_store::{BatchReport, Store, StoreError, WriteCtx};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::ImportError;

/// One batch for the writer.
#[derive(Debug, Default)]
pub(super) struct WriteJob {
    /// Id-map links new in this batch.
    pub links: Vec<(OaUserId, DingUserId)>,
    /// Users to upsert (the mirror write: no outbox entries).
    pub users: Vec<User>,
}

impl WriteJob {
    fn merge(&mut self, mut other: Self) {
        self.links.append(&mut other.links);
        self.users.append(&mut other.users);
    }
}

/// The lease the writer renews after every write.
#[derive(Debug, Clone)]
pub(super) struct Lease {
    /// The lease name.
    pub name: &'static str,
    /// Its holder.
    pub holder: String,
    /// How long one renewal lasts.
    pub ms: i64,
}

/// The writer task: the sending side, the acknowledgements and the task itself. Dropping it
/// aborts the task (a batch in flight rolls back), so a cancelled import stops writing.
pub(super) struct Writer {
    /// Jobs in; closed by [`Self::finish`].
    jobs: Option<mpsc::Sender<WriteJob>>,
    /// Users committed per write.
    pub acks: mpsc::UnboundedReceiver<usize>,
    /// The task.
    task: Option<JoinHandle<Result<(), StoreError>>>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl Writer {
    /// Starts the writer: `depth` jobs may queue; merged writes hold at most `max_users`.
    pub fn start(
        store: Store,
        wctx: WriteCtx,
        lease: Lease,
        now_ms: impl Fn() -> i64 + Send + 'static,
        depth: usize,
        max_users: usize,
    ) -> Self {
        let (jobs_tx, mut jobs) = mpsc::channel::<WriteJob>(depth.max(1));
        let (acks_tx, acks) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Some(mut job) = jobs.recv().await {
                while job.users.len() < max_users {
                    match jobs.try_recv() {
                        Ok(more) => job.merge(more),
                        Err(_) => break,
                    }
                }
                write(&store, &wctx, &job).await?;
                store
                    .lease_acquire(lease.name, &lease.holder, now_ms(), lease.ms)
                    .await?;
                // The importer stopped listening only if it is failing anyway.
                let _ = acks_tx.send(job.users.len());
            }
            Ok(())
        });
        Self {
            jobs: Some(jobs_tx),
            acks,
            task: Some(task),
        }
    }

    /// Queues a job; waits while the queue is full. `false`: the writer has stopped (its
    /// error comes from [`Self::finish`]).
    pub async fn send(&self, job: WriteJob) -> bool {
        match &self.jobs {
            Some(tx) => tx.send(job).await.is_ok(),
            None => false,
        }
    }

    /// Closes the queue, waits for every queued job, and returns the writer's error if any.
    pub async fn finish(&mut self) -> Result<(), ImportError> {
        self.jobs = None;
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        match task.await {
            Ok(result) => Ok(result?),
            Err(e) => Err(ImportError::Writer(e.to_string())),
        }
    }
}

/// One merged job in one transaction (plus the id-map links before it).
async fn write(store: &Store, wctx: &WriteCtx, job: &WriteJob) -> Result<BatchReport, StoreError> {
    if !job.links.is_empty() {
        store.id_map_put_many::<OaUserId>(&job.links).await?;
    }
    store.import_users(wctx, &job.users).await
}
