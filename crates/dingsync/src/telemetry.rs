//! Prometheus metrics for the whole process.
//!
//! The `metrics` facade needs one global recorder per process; tests start several servers in one
//! process, so the recorder is installed once (on first use) and every server renders the same
//! handle at `/metrics`. Metric names are documented in the README's "Operations" section.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus handle, installing the recorder on first call.
pub fn prometheus() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Another recorder can only be present if a library installed one; ours then stays
        // unused and `/metrics` renders empty, which is visible rather than fatal.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
        }
        handle
    })
}
