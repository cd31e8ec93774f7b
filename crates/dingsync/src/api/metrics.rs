//! Request metrics for the OA API.
//!
//! Labelled by the route *template* (`/api/v1/users/{id}`), never the concrete path: user ids in
//! label values would grow the metric set without bound and put personal data into monitoring.
//!
//! - `dingsync_api_requests_total{route,method,status}`: a counter per answered request.
//! - `dingsync_api_request_duration_seconds{route,method}`: a latency histogram.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

/// The middleware: times the request and counts its outcome.
pub async fn record(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(
        "dingsync_api_requests_total",
        "route" => route.clone(),
        "method" => method.clone(),
        "status" => status
    )
    .increment(1);
    metrics::histogram!(
        "dingsync_api_request_duration_seconds",
        "route" => route,
        "method" => method
    )
    .record(started.elapsed().as_secs_f64());
    response
}
