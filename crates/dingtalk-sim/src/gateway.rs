//! What DingTalk's gateway does before a call reaches the business logic: access tokens, the
//! per-app per-API rate limit, injected faults, request ids and per-API call counts.
//!
//! Everything here is plain state with the current instant and the RNG passed in, so the rules
//! (a token's lifetime is extended on re-fetch, at most `qps` calls in any sliding second) are
//! unit-tested without a server or a real clock.
//!
//! Choices where DingTalk's behaviour is UNCONFIRMED:
//! - calls refused with 90018 do not use up the window (only admitted calls count), so a client
//!   that backs off one second always gets through again;
//! - an expired token answers the same as a garbage one (`88`/`40014` on topapi, `40014` on
//!   legacy oapi paths); a *missing* token on a legacy path answers `41001`, the documented
//!   "missing access_token" code;
//! - the simulator has one app, so "per app per API" is "per API path".
//! - the 90018 `errmsg` wording is not published; [`THROTTLED_MSG`] paraphrases the error table.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use rand::Rng;
use rand::rngs::StdRng;
use serde::Serialize;

/// `errmsg` of a 90018 answer.
pub const THROTTLED_MSG: &str = "应用调用该接口的频率超过了每秒的限流阈值，请稍后重试";

/// The one access token of the app and when it stops being valid.
#[derive(Default)]
pub struct TokenStore {
    /// The current token and its expiry; `None` before the first fetch or after expiry.
    current: Option<(String, Instant)>,
}

impl fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenStore")
            .field(
                "current",
                &self.current.as_ref().map(|(_, exp)| ("<redacted>", exp)),
            )
            .finish()
    }
}

/// What a presented token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCheck {
    Valid,
    /// Unknown, garbage or expired.
    Invalid,
    /// No token given.
    Missing,
}

impl TokenStore {
    /// Returns the token (the same one while still valid, its lifetime extended to `ttl` from
    /// now) and its remaining lifetime.
    pub fn issue(&mut self, now: Instant, ttl: Duration, rng: &mut StdRng) -> (String, Duration) {
        let token = match &self.current {
            Some((token, expiry)) if *expiry > now => token.clone(),
            _ => random_hex(rng, 32),
        };
        self.current = Some((token.clone(), now + ttl));
        (token, ttl)
    }

    /// Checks a presented token.
    pub fn check(&self, token: Option<&str>, now: Instant) -> TokenCheck {
        match token.map(str::trim).filter(|t| !t.is_empty()) {
            None => TokenCheck::Missing,
            Some(t) => match &self.current {
                Some((current, expiry)) if current == t && *expiry > now => TokenCheck::Valid,
                _ => TokenCheck::Invalid,
            },
        }
    }

    /// Whether `token` is the one this store issued (expired or not): the fleet routes a call
    /// to the corp whose token it carries, which then judges it.
    pub fn holds(&self, token: &str) -> bool {
        self.current
            .as_ref()
            .is_some_and(|(current, _)| current == token.trim())
    }

    /// Makes every issued token invalid now.
    pub fn expire_all(&mut self) {
        self.current = None;
    }
}

/// Sliding one-second windows of admitted calls, per API path.
#[derive(Debug, Default)]
pub struct RateLimiter {
    /// Instants of the calls admitted within the last second, per path.
    windows: HashMap<String, VecDeque<Instant>>,
}

impl RateLimiter {
    /// Admits the call unless `qps` calls to `path` were admitted in the second before `now`.
    /// `qps == 0` admits everything.
    pub fn admit(&mut self, path: &str, now: Instant, qps: u32) -> bool {
        if qps == 0 {
            return true;
        }
        let window = self.windows.entry(path.to_owned()).or_default();
        while let Some(front) = window.front() {
            if now.saturating_duration_since(*front) >= Duration::from_secs(1) {
                window.pop_front();
            } else {
                break;
            }
        }
        if window.len() >= qps as usize {
            return false;
        }
        window.push_back(now);
        true
    }
}

/// An injected failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `{"errcode":-1,"errmsg":"系统繁忙"}`; the call is not executed.
    SystemBusy,
    /// HTTP 502 from the gateway; the call is not executed.
    BadGateway,
    /// The call is executed but answered only after the slow-answer delay (past DingTalk's 3 s
    /// gateway timeout), so a client that gives up cannot know whether a write happened.
    Slow,
}

/// The gateway's verdict on an admitted call, before the operation runs.
#[derive(Debug)]
pub struct Pass {
    /// The fault drawn for this call, if any.
    pub fault: Option<Fault>,
    /// How long a slow fault holds the answer.
    pub slow: Duration,
}

/// Draws whether this call fails, and how (the three kinds in equal shares).
pub fn draw_fault(rng: &mut StdRng, rate: f64) -> Option<Fault> {
    if rate <= 0.0 || !rng.gen_bool(rate.min(1.0)) {
        return None;
    }
    Some(match rng.gen_range(0..3) {
        0 => Fault::SystemBusy,
        1 => Fault::BadGateway,
        _ => Fault::Slow,
    })
}

/// A `request_id` like DingTalk's: 13 lowercase base36 characters.
pub fn request_id(rng: &mut StdRng) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..13)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

pub(crate) fn random_hex(rng: &mut StdRng, len: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdef";
    (0..len)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

/// Counts of calls to one API path, served by `GET /_sim/calls`.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct CallCounts {
    /// Every call that reached the path.
    pub calls: u64,
    /// Answered `errcode: 0`.
    pub ok: u64,
    /// Answered with a business or auth error code (not counting 90018 and faults).
    pub errors: u64,
    /// Answered 90018 (or the new API's 403 throttle).
    pub throttled: u64,
    /// Answered with an injected fault.
    pub faulted: u64,
}

/// How one call ended, for the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    Ok,
    Error,
    Throttled,
    Faulted,
}

/// Per-path call counts.
#[derive(Debug, Default)]
pub struct CallStats {
    pub by_path: BTreeMap<String, CallCounts>,
}

impl CallStats {
    pub fn record(&mut self, path: &str, outcome: CallOutcome) {
        let counts = self.by_path.entry(path.to_owned()).or_default();
        counts.calls += 1;
        match outcome {
            CallOutcome::Ok => counts.ok += 1,
            CallOutcome::Error => counts.errors += 1,
            CallOutcome::Throttled => counts.throttled += 1,
            CallOutcome::Faulted => counts.faulted += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn token_is_reused_and_extended_while_valid_then_replaced() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut store = TokenStore::default();
        let t0 = Instant::now();
        let ttl = Duration::from_secs(10);
        let (a, _) = store.issue(t0, ttl, &mut rng);
        let (b, _) = store.issue(t0 + Duration::from_secs(8), ttl, &mut rng);
        assert_eq!(a, b);
        // Extended: still valid 17 s after the first fetch.
        assert_eq!(
            store.check(Some(&a), t0 + Duration::from_secs(17)),
            TokenCheck::Valid
        );
        assert_eq!(
            store.check(Some(&a), t0 + Duration::from_secs(18)),
            TokenCheck::Invalid
        );
        let (c, _) = store.issue(t0 + Duration::from_secs(30), ttl, &mut rng);
        assert_ne!(a, c);
        assert_eq!(store.check(None, t0), TokenCheck::Missing);
        assert!(!format!("{store:?}").contains(&c));
    }

    #[test]
    fn limiter_allows_qps_per_sliding_second() {
        let mut limiter = RateLimiter::default();
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(limiter.admit("/a", t0 + Duration::from_millis(i * 100), 3));
        }
        assert!(!limiter.admit("/a", t0 + Duration::from_millis(900), 3));
        assert!(limiter.admit("/b", t0 + Duration::from_millis(900), 3));
        assert!(limiter.admit("/a", t0 + Duration::from_millis(1000), 3));
        assert!(!limiter.admit("/a", t0 + Duration::from_millis(1050), 3));
        assert!(limiter.admit("/a", t0, 0));
    }

    #[test]
    fn faults_follow_the_rate_and_cover_all_kinds() {
        let mut rng = StdRng::seed_from_u64(3);
        assert!((0..100).all(|_| draw_fault(&mut rng, 0.0).is_none()));
        let drawn: Vec<Fault> = (0..300).filter_map(|_| draw_fault(&mut rng, 1.0)).collect();
        assert_eq!(drawn.len(), 300);
        for kind in [Fault::SystemBusy, Fault::BadGateway, Fault::Slow] {
            let n = drawn.iter().filter(|f| **f == kind).count();
            assert!(n > 50, "{kind:?} drawn {n} times");
        }
        let id = request_id(&mut rng);
        assert_eq!(id.len(), 13);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        );
    }
}
