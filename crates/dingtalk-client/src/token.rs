//! The access-token cache: one token for every task, refreshed by one task at a time.
//!
//! A crawl runs dozens of calls concurrently; if each noticed an expired token and fetched its
//! own, `gettoken` (itself rate-limited) would be hammered exactly when we can least afford it.
//! So readers take the cached token from a cheap mutex, and a refresh happens under a second,
//! async lock: the first task in fetches, the others wait and then find the fresh token
//! (single-flight). Invalidation names the token that failed, so a burst of tasks all rejected
//! with the same stale token causes one refresh, not one per task.

use std::{sync::Mutex, time::Duration};

use dingtalk_proto::Secret;
use tokio::time::Instant;

/// A token and when to stop using it.
#[derive(Debug, Clone)]
struct Cached {
    /// The token itself.
    token: Secret,
    /// When we refresh: the server's expiry minus a safety margin.
    refresh_at: Instant,
}

/// The shared token cache.
#[derive(Debug)]
pub(crate) struct TokenCache {
    /// The current token, if any; read on every call.
    current: Mutex<Option<Cached>>,
    /// Held while fetching, so only one task fetches at a time.
    refresh: tokio::sync::Mutex<()>,
    /// How long before expiry to refresh (capped at a quarter of the lifetime).
    margin: Duration,
}

/// When to refresh a token that lives `ttl` from `now`: `margin` early, but never more than a
/// quarter of its life early, so that short lifetimes (tests, odd servers) are still used.
pub(crate) fn refresh_at(now: Instant, ttl: Duration, margin: Duration) -> Instant {
    now + ttl.saturating_sub(margin.min(ttl / 4))
}

impl TokenCache {
    pub(crate) fn new(margin: Duration) -> Self {
        Self {
            current: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
            margin,
        }
    }

    fn fresh(&self, now: Instant) -> Option<Secret> {
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        current
            .as_ref()
            .filter(|c| now < c.refresh_at)
            .map(|c| c.token.clone())
    }

    /// Returns a usable token, calling `fetch` (token and lifetime) if none is cached. Concurrent
    /// callers share one fetch.
    pub(crate) async fn get<F, Fut, E>(&self, fetch: F) -> Result<Secret, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(Secret, Duration), E>>,
    {
        if let Some(token) = self.fresh(Instant::now()) {
            return Ok(token);
        }
        let _single_flight = self.refresh.lock().await;
        // Someone may have refreshed while we waited for the lock.
        if let Some(token) = self.fresh(Instant::now()) {
            return Ok(token);
        }
        let (token, ttl) = fetch().await?;
        let cached = Cached {
            token: token.clone(),
            refresh_at: refresh_at(Instant::now(), ttl, self.margin),
        };
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(cached);
        Ok(token)
    }

    /// Forgets `rejected` if it is still the cached token (a newer one is kept).
    pub(crate) fn invalidate(&self, rejected: &Secret) {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if current.as_ref().is_some_and(|c| &c.token == rejected) {
            *current = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    };

    use super::*;

    #[test]
    fn refresh_margin_is_capped_by_a_quarter_of_the_lifetime() {
        let now = Instant::now();
        let m = Duration::from_secs(300);
        assert_eq!(
            refresh_at(now, Duration::from_secs(7200), m),
            now + Duration::from_secs(6900)
        );
        assert_eq!(
            refresh_at(now, Duration::from_secs(4), m),
            now + Duration::from_secs(3)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_fetch() {
        let cache = Arc::new(TokenCache::new(Duration::from_secs(300)));
        let fetches = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let cache = cache.clone();
            let fetches = fetches.clone();
            tasks.push(tokio::spawn(async move {
                cache
                    .get(|| async {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Ok::<_, ()>((Secret::new("t1"), Duration::from_secs(7200)))
                    })
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().expose(), "t1");
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn expiry_and_invalidation_trigger_a_refresh() {
        let cache = TokenCache::new(Duration::from_secs(300));
        let fetch = |name: &'static str| {
            move || async move { Ok::<_, ()>((Secret::new(name), Duration::from_secs(7200))) }
        };
        assert_eq!(cache.get(fetch("t1")).await.unwrap().expose(), "t1");
        assert_eq!(
            cache.get(fetch("t2")).await.unwrap().expose(),
            "t1",
            "cached"
        );
        // A stale rejection of a token that is no longer cached changes nothing.
        cache.invalidate(&Secret::new("old"));
        assert_eq!(cache.get(fetch("t2")).await.unwrap().expose(), "t1");
        cache.invalidate(&Secret::new("t1"));
        assert_eq!(cache.get(fetch("t2")).await.unwrap().expose(), "t2");
        tokio::time::advance(Duration::from_secs(6900)).await;
        assert_eq!(
            cache.get(fetch("t3")).await.unwrap().expose(),
            "t3",
            "refreshed ahead of expiry"
        );
    }

    #[tokio::test]
    async fn a_failed_fetch_caches_nothing() {
        let cache = TokenCache::new(Duration::from_secs(300));
        let failed = cache
            .get(|| async { Err::<(Secret, Duration), _>("boom") })
            .await;
        assert_eq!(failed.unwrap_err(), "boom");
        let ok = cache
            .get(|| async { Ok::<_, &str>((Secret::new("t"), Duration::from_secs(60))) })
            .await;
        assert_eq!(ok.unwrap().expose(), "t");
    }
}
