//! The import's call accounting: calls made per API path against the fewest that read the
//! same organisation, and the shortest wall time DingTalk's per-API rate limit allows for them.
//! This is how the import shows it is bounded by the rate limit and not by itself.

use std::collections::BTreeMap;

use dingtalk_client::endpoints::paths;

use super::{CallReport, crawl};
use crate::context::SyncContext;

/// Compares the calls made with the minimum the crawled organisation needs.
pub(super) fn call_report(
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
        // Every family runs side by side (the user reads start as the listing hands people
        // on; roles: the list, then the member pages), each on its own budget: the slowest
        // family's calls / qps is the bound.
        let slowest = [
            per(paths::DEPT_LISTSUB),
            per(paths::DEPT_GET),
            per(paths::USER_LIST),
            per(paths::USER_GET),
            per(paths::ROLE_LIST) + per(paths::ROLE_SIMPLELIST),
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        slowest * 1000 / qps
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
