//! The console's own settings and its clock.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::auth::{SessionKey, ThrottlePolicy};

/// Where the console reads the time: sessions and throttling use it, and tests replace it.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Unix seconds.
    fn now(&self) -> u64;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs())
    }
}

#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// Signs session cookies and CSRF tokens. Keep it stable across restarts (from the config
    /// or the database) so a restart does not sign everyone out.
    pub session_key: SessionKey,
    /// Mark cookies `Secure`. On whenever the console is reached over HTTPS; off only for
    /// plain-HTTP loopback use (tests, `dingsync demo`).
    pub secure_cookies: bool,
    /// A session unused this long is over.
    pub idle_timeout_secs: u64,
    /// A session this old is over, however busy.
    pub max_session_secs: u64,
    pub throttle: ThrottlePolicy,
    pub clock: Arc<dyn Clock>,
}

impl ConsoleConfig {
    /// Defaults: secure cookies, 30 minutes idle, 12 hours at most, 5 failures per 15 minutes.
    pub fn new(session_key: SessionKey) -> Self {
        ConsoleConfig {
            session_key,
            secure_cookies: true,
            idle_timeout_secs: 30 * 60,
            max_session_secs: 12 * 3600,
            throttle: ThrottlePolicy::default(),
            clock: Arc::new(SystemClock),
        }
    }
}
