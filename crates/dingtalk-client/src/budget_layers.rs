//! Whose budget a call draws on: the app's, per API, and the egress IP's, over every API.
//!
//! DingTalk counts two things at once (`dingtalk-api.md` §4): calls **per app per API** (20 per
//! second on a standard edition, 90018 beyond) and calls **per egress IP over every API and
//! every app** (10,000 per 20 s; beyond it the IP is banned for 5 minutes). One deployment that
//! syncs several organizations runs one app per organization behind one IP, so:
//! - [`AppBudget`] names the app in every key it asks its inner budget for (`app:<client id>
//!   <api path>`). Two apps drawing on the same inner budget — one in-process budget, or the
//!   slots of one database — therefore never share a per-API window: one org throttled does
//!   not slow another.
//! - [`LayeredBudget`] makes every call also pass a second budget under the one key
//!   [`IP_KEY`]: the IP's budget, shared by every org of the process (and, when it lives in the
//!   database's slots, by every instance).
//!
//! The app's permit is taken first and the IP's second, so a call never holds IP capacity
//! while it waits for its app's window; both are held until the answer and released together.

use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::budget::{Permit, RateBudget};

/// The one key every call asks the IP budget for.
pub const IP_KEY: &str = "ip:*";

/// The key an app's call to `api` is counted under.
pub fn app_key(app: &str, api: &str) -> String {
    format!("app:{app} {api}")
}

/// A budget per app: every API path is counted under [`app_key`]`(app, api)`.
pub struct AppBudget {
    inner: Arc<dyn RateBudget>,
    app: String,
}

impl AppBudget {
    /// Counts the calls of `app` (its client id) in `inner`, apart from every other app's.
    pub fn new(inner: Arc<dyn RateBudget>, app: impl Into<String>) -> Self {
        Self {
            inner,
            app: app.into(),
        }
    }
}

impl fmt::Debug for AppBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppBudget")
            .field("app", &self.app)
            .field("inner", &self.inner)
            .finish()
    }
}

impl RateBudget for AppBudget {
    fn acquire<'a>(&'a self, api: &'a str) -> BoxFuture<'a, Permit> {
        Box::pin(async move {
            let key = app_key(&self.app, api);
            self.inner.acquire(&key).await
        })
    }
}

/// Two budgets every call must pass: the app's (per API) and the egress IP's (one key).
pub struct LayeredBudget {
    app: Arc<dyn RateBudget>,
    ip: Arc<dyn RateBudget>,
}

impl LayeredBudget {
    /// Calls pass `app` under their API path, then `ip` under [`IP_KEY`].
    pub fn new(app: Arc<dyn RateBudget>, ip: Arc<dyn RateBudget>) -> Self {
        Self { app, ip }
    }
}

impl fmt::Debug for LayeredBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayeredBudget")
            .field("app", &self.app)
            .field("ip", &self.ip)
            .finish()
    }
}

impl RateBudget for LayeredBudget {
    fn acquire<'a>(&'a self, api: &'a str) -> BoxFuture<'a, Permit> {
        Box::pin(async move {
            let app = self.app.acquire(api).await;
            let ip = self.ip.acquire(IP_KEY).await;
            Permit::new(move || {
                drop(ip);
                drop(app);
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;
    use crate::budget::SlidingWindowBudget;

    const W: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn two_apps_on_one_budget_have_their_own_windows() {
        let shared: Arc<dyn RateBudget> = Arc::new(SlidingWindowBudget::new(2, W));
        let a = AppBudget::new(shared.clone(), "app-a");
        let b = AppBudget::new(shared, "app-b");
        let t0 = Instant::now();
        let _a1 = a.acquire("/x").await;
        let _a2 = a.acquire("/x").await;
        // App a has used its window for /x; app b's is untouched.
        let _b1 = b.acquire("/x").await;
        let _b2 = b.acquire("/x").await;
        assert_eq!(Instant::now(), t0, "app b waited for app a's window");
        let third = tokio::time::timeout(Duration::from_millis(10), a.acquire("/x")).await;
        assert!(third.is_err(), "app a got a third call into a window of 2");
    }

    #[tokio::test(start_paused = true)]
    async fn the_ip_layer_caps_the_sum_of_the_apps() {
        let apps: Arc<dyn RateBudget> = Arc::new(SlidingWindowBudget::new(5, W));
        let ip: Arc<dyn RateBudget> = Arc::new(SlidingWindowBudget::new(3, W));
        let a = LayeredBudget::new(Arc::new(AppBudget::new(apps.clone(), "a")), ip.clone());
        let b = LayeredBudget::new(Arc::new(AppBudget::new(apps, "b")), ip);
        let t0 = Instant::now();
        let p1 = a.acquire("/x").await;
        let _p2 = a.acquire("/y").await;
        let _p3 = b.acquire("/x").await;
        assert_eq!(Instant::now(), t0);
        // Each app is far from its 5 per API, but the IP has given out its 3.
        let fourth = tokio::time::timeout(Duration::from_millis(10), b.acquire("/z")).await;
        assert!(fourth.is_err(), "a fourth call passed an IP budget of 3");
        let answered = Instant::now();
        drop(p1);
        let _p4 = b.acquire("/z").await;
        assert_eq!(
            Instant::now(),
            answered + W,
            "the IP slot frees a window after the answer"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_waiting_for_its_app_holds_no_ip_slot() {
        let apps: Arc<dyn RateBudget> = Arc::new(SlidingWindowBudget::new(1, W));
        let ip: Arc<dyn RateBudget> = Arc::new(SlidingWindowBudget::new(1, W));
        let a = Arc::new(LayeredBudget::new(
            Arc::new(AppBudget::new(apps.clone(), "a")),
            ip.clone(),
        ));
        let first = a.acquire("/x").await;
        // A second call of app a waits for its app's window, without an IP slot.
        let waiting = {
            let a = a.clone();
            tokio::spawn(async move { a.acquire("/x").await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiting.is_finished());
        drop(first);
        // The first call's IP slot cools for a window; then both the app and the IP free up.
        let _second = waiting.await.expect("second call");
    }
}
