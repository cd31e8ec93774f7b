//! A small round-robin HTTP forwarder, standing in for the load balancer in front of several
//! `dingsync serve` instances.
//!
//! Why it exists: DingTalk pushes every event to one URL, and an OA system talks to one URL, so a
//! deployment of several instances needs something that spreads those requests over them. The
//! tests must see what such a deployment sees: consecutive pushes and writes landing on different
//! instances, and an instance that was SIGKILLed being skipped (as a load balancer's health check
//! would take it out of rotation) instead of every request to it failing.
//!
//! Behaviour, as a plain L7 balancer without retries of sent requests:
//! - each request goes to the next backend in turn;
//! - a backend that refuses the connection is skipped and the next one tried (nothing was sent,
//!   so trying elsewhere cannot duplicate anything); every backend refusing answers 503;
//! - any other failure after the request may have been sent (the instance died mid-request)
//!   answers 502, and the caller decides whether to retry, exactly as DingTalk and an OA client
//!   would have to behind a real balancer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The largest body forwarded (pushes and OA writes are a few kB).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// What the forwarder did, for the test's summary and assertions.
#[derive(Debug, Default)]
pub struct LbCounts {
    /// Requests answered by each backend, by index.
    pub forwarded: Vec<AtomicU64>,
    /// Connection attempts refused (a dead backend skipped).
    pub skipped: AtomicU64,
    /// Requests that failed after they may have reached a backend (answered 502).
    pub broken: AtomicU64,
}

/// The state every forwarded request shares.
struct Shared {
    /// The instances' base URLs (`http://127.0.0.1:PORT`), in rotation order.
    backends: Vec<String>,
    /// The next backend to try; only ever incremented, taken modulo the backend count.
    next: AtomicUsize,
    /// One pooled client for every backend.
    http: reqwest::Client,
    /// What happened so far.
    counts: LbCounts,
}

/// A running forwarder.
pub struct Balancer {
    /// Where it listens.
    addr: SocketAddr,
    /// Shared with the request handler, for the counts.
    shared: Arc<Shared>,
    /// Stops the server.
    stop: CancellationToken,
    /// The server task.
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Balancer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Balancer")
            .field("addr", &self.addr)
            .field("backends", &self.shared.backends)
            .finish_non_exhaustive()
    }
}

impl Balancer {
    /// Starts forwarding to `backends` on a free loopback port.
    pub async fn start(backends: Vec<String>) -> Balancer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the balancer on port 0");
        let addr = listener.local_addr().expect("balancer address");
        let http = reqwest::Client::builder()
            .no_proxy()
            // A killed instance's pooled connections die with it; a short idle time keeps the
            // pool from holding many of them.
            .pool_idle_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .expect("balancer HTTP client");
        let counts = LbCounts {
            forwarded: backends.iter().map(|_| AtomicU64::new(0)).collect(),
            ..LbCounts::default()
        };
        let shared = Arc::new(Shared {
            backends,
            next: AtomicUsize::new(0),
            http,
            counts,
        });
        let app = Router::new()
            .fallback(forward)
            .with_state(Arc::clone(&shared));
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stopped.cancelled().await })
                .await;
        });
        Balancer {
            addr,
            shared,
            stop,
            task,
        }
    }

    /// `http://127.0.0.1:PORT` of the forwarder.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What the forwarder did so far.
    pub fn counts(&self) -> &LbCounts {
        &self.shared.counts
    }

    /// A one-line summary of the counts.
    pub fn summary(&self) -> String {
        let c = &self.shared.counts;
        let per: Vec<u64> = c
            .forwarded
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .collect();
        format!(
            "forwarded per instance {per:?}, dead backend skipped {} times, {} requests broken \
             mid-flight",
            c.skipped.load(Ordering::Relaxed),
            c.broken.load(Ordering::Relaxed)
        )
    }

    /// Stops the forwarder.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Headers that describe one hop's connection, not the message; never forwarded.
fn is_hop_by_hop(name: &header::HeaderName) -> bool {
    [
        header::CONNECTION,
        header::HOST,
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::TE,
        header::TRAILER,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
    ]
    .contains(name)
        || name.as_str().eq_ignore_ascii_case("keep-alive")
}

fn copy_headers(from: &HeaderMap) -> HeaderMap {
    from.iter()
        .filter(|(name, _)| !is_hop_by_hop(name))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response();
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let headers = copy_headers(&parts.headers);
    let n = shared.backends.len();
    for _ in 0..n {
        let index = shared.next.fetch_add(1, Ordering::Relaxed) % n;
        let url = format!("{}{path}", shared.backends[index]);
        let sent = shared
            .http
            .request(parts.method.clone(), url)
            .headers(headers.clone())
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(answer) => {
                shared.counts.forwarded[index].fetch_add(1, Ordering::Relaxed);
                return relay(answer).await;
            }
            Err(error) if error.is_connect() => {
                shared.counts.skipped.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                shared.counts.broken.fetch_add(1, Ordering::Relaxed);
                return (StatusCode::BAD_GATEWAY, "the instance failed mid-request")
                    .into_response();
            }
        }
    }
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "no instance accepts connections",
    )
        .into_response()
}

/// The backend's answer, passed on (a body that breaks off mid-way becomes a 502).
async fn relay(answer: reqwest::Response) -> Response {
    let status = answer.status();
    let headers = copy_headers(answer.headers());
    let body: Bytes = match answer.bytes().await {
        Ok(body) => body,
        Err(_) => {
            return (StatusCode::BAD_GATEWAY, "the instance failed mid-answer").into_response();
        }
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}
