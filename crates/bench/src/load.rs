//! A closed-loop load generator: `concurrency` requests in flight until `total` are done, each
//! timed from send to its checked answer.
//!
//! Closed loop (a new request only when one finishes) measures what the server sustains without
//! building an unbounded queue in the client; the latencies are then the server's, not the
//! generator's backlog.

use std::future::Future;
use std::time::{Duration, Instant};

use futures::StreamExt;

use super::stats::Latencies;

/// What a load run measured.
#[derive(Debug)]
pub struct LoadResult {
    /// From the first send to the last answer.
    pub wall: Duration,
    /// One sample per request.
    pub latencies: Latencies,
}

impl LoadResult {
    /// Requests per second.
    pub fn per_s(&self) -> f64 {
        let secs = self.wall.as_secs_f64();
        if secs > 0.0 {
            super::stats::round2(self.latencies.len() as f64 / secs)
        } else {
            0.0
        }
    }
}

/// Runs `request(i)` for `i in 0..total`, `concurrency` at a time. The first failed request
/// stops the run with its error: a figure over failed requests would be meaningless.
pub async fn run<F, Fut>(total: usize, concurrency: usize, request: F) -> anyhow::Result<LoadResult>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let started = Instant::now();
    let mut latencies = Latencies::default();
    let request = &request;
    let mut answers = futures::stream::iter(0..total)
        .map(|i| async move {
            let sent = Instant::now();
            request(i).await.map(|()| sent.elapsed())
        })
        .buffer_unordered(concurrency.max(1));
    while let Some(answer) = answers.next().await {
        latencies.record(answer?);
    }
    Ok(LoadResult {
        wall: started.elapsed(),
        latencies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_request_runs_once_and_is_timed() {
        let seen = std::sync::Mutex::new(Vec::new());
        let result = run(50, 4, |i| {
            let seen = &seen;
            async move {
                seen.lock()
                    .map_err(|_| anyhow::anyhow!("poisoned"))?
                    .push(i);
                Ok(())
            }
        })
        .await
        .expect("no request fails");
        assert_eq!(result.latencies.len(), 50);
        let mut seen = seen.into_inner().expect("not poisoned");
        seen.sort_unstable();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_failure_stops_the_run() {
        let result = run(10, 2, |i| async move {
            anyhow::ensure!(i != 3, "request 3 failed");
            Ok(())
        })
        .await;
        assert!(result.is_err_and(|e| e.to_string().contains("request 3")));
    }
}
