//! Prometheus metrics for one service.
//!
//! Each [`Application`](crate::server::Application) owns a [`Telemetry`], handed to every part
//! of it through its state, rather than one recorder installed for the whole process: tests
//! start several services in one process, and each should count only its own work. The
//! `metrics` facade's macros record into the *local* recorder of the current scope, so the
//! service runs its futures inside [`Telemetry::scope`], which enters that scope on every poll;
//! outside any scope the macros fall back to the process's global recorder (none, unless a
//! caller installed one). Metric names are documented in the README's "Operations" section.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

/// One service's metrics recorder; cheap to clone.
#[derive(Clone)]
pub struct Telemetry {
    /// Where the service's metrics go; `/metrics` renders it.
    recorder: Arc<PrometheusRecorder>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

impl Telemetry {
    /// A fresh, empty recorder.
    pub fn new() -> Self {
        Self {
            recorder: Arc::new(PrometheusBuilder::new().build_recorder()),
        }
    }

    /// The metrics in Prometheus' text format.
    pub fn render(&self) -> String {
        self.recorder.handle().render()
    }

    /// Runs `f` with this recorder as the metrics macros' target.
    pub fn record<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(self.recorder.as_ref(), f)
    }

    /// `future`, recording into this recorder whenever it runs.
    pub fn scope<F: Future>(&self, future: F) -> Scoped<F> {
        Scoped {
            future: Box::pin(future),
            telemetry: self.clone(),
        }
    }
}

/// A future that records its metrics into one [`Telemetry`] (see [`Telemetry::scope`]).
pub struct Scoped<F> {
    /// Boxed, so `Scoped` is `Unpin` without a pin-projection crate.
    future: Pin<Box<F>>,
    /// The recorder entered on each poll.
    telemetry: Telemetry,
}

impl<F> fmt::Debug for Scoped<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scoped").finish_non_exhaustive()
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let future = this.future.as_mut();
        this.telemetry.record(|| future.poll(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_telemetry_counts_only_what_ran_in_its_scope() {
        let (a, b) = (Telemetry::new(), Telemetry::new());
        a.scope(async {
            tokio::task::yield_now().await;
            metrics::counter!("dingsync_test_total").increment(2);
        })
        .await;
        assert!(
            a.render().contains("dingsync_test_total 2"),
            "{}",
            a.render()
        );
        assert!(!b.render().contains("dingsync_test_total"));
    }
}
