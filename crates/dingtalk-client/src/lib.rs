//! dingtalk-client: everything dingsync needs to talk to DingTalk's server API — the token,
//! every contacts endpoint, paging, the rate budget, retries and counters.
//!
//! One [`DingTalkClient`] is shared (cloned) by every task of the process. Each call:
//! takes a slot from the [`RateBudget`] of its API path (so a concurrent crawl never exceeds
//! DingTalk's per-API limit and never sees 90018 from a server that allows `qps` calls per
//! second), sends with the cached access token (fetched once for all tasks, refreshed ahead of
//! expiry, and replayed once when DingTalk says 40014/42001), and retries busy, throttled, 5xx,
//! timed-out and broken calls with jittered exponential backoff — never validation errors.
//! Failures come back as one [`ClientError`] that keeps DingTalk's `errcode`, `sub_code`,
//! `errmsg` and `request_id`. Secrets never appear in `Debug`, `Display` or logs.
//!
//! ```no_run
//! # async fn demo() -> Result<(), dingtalk_client::ClientError> {
//! use dingtalk_client::{ClientConfig, DingTalkClient};
//! use dingtalk_proto::DingDeptId;
//! let client = DingTalkClient::new(ClientConfig::new("dingappkey", "appsecret"))?;
//! let children = client.dept_list_sub(DingDeptId::ROOT).await?;
//! let members = client.user_list_all(DingDeptId::ROOT).await?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - `client` — the core: one attempt, the token wrapper, the retry loop; [`DingTalkClient`].
//! - [`endpoints`] — one typed method per DingTalk endpoint, and the API [`endpoints::paths`].
//! - `paging` — user / role / role-member listings as `Stream`s plus collectors.
//! - `crawl` — a concurrent full read of the organisation ([`OrgSnapshot`]).
//! - [`config`] — [`ClientConfig`] and its documented defaults.
//! - [`budget`] — [`RateBudget`], the seam for a shared budget, and the exact
//!   [`SlidingWindowBudget`].
//! - [`retry`] — [`Backoff`]: the pure backoff-with-jitter maths.
//! - `token` — the single-flight token cache.
//! - [`error`] — [`ClientError`] and its retry / token / validation predicates.
//! - [`stats`] — [`ClientStats`], counters per endpoint for metrics.

pub mod budget;
pub mod budget_layers;
mod client;
pub mod config;
mod crawl;
pub mod endpoints;
pub mod error;
mod paging;
pub mod retry;
pub mod stats;
mod token;

pub use budget::{RateBudget, SlidingWindowBudget};
pub use budget_layers::{AppBudget, IP_KEY, LayeredBudget};
pub use client::DingTalkClient;
pub use config::{ClientConfig, TokenEndpoint};
pub use crawl::{CrawlOptions, OrgSnapshot};
pub use error::ClientError;
pub use retry::Backoff;
pub use stats::{ClientStats, EndpointStats};
