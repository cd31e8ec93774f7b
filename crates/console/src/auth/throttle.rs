//! Throttling of failed logins, per user name and per client address.
//!
//! Two keys because each stops a different attack: per name stops guessing one account's
//! password from many addresses, per address stops one client trying many names. After
//! `max_failures` failures within `window_secs` the key is locked for `lockout_secs`; a
//! successful login clears its name's count (not its address's, so a valid account cannot be
//! used to reset a spray). Time is passed in, so tests need no sleeping. The table is in memory
//! and bounded: when it grows past `max_keys`, stale entries are pruned.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    pub max_failures: u32,
    pub window_secs: u64,
    pub lockout_secs: u64,
    pub max_keys: usize,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            max_failures: 5,
            window_secs: 900,
            lockout_secs: 900,
            max_keys: 100_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Name(String),
    Addr(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    window_start: u64,
    locked_until: Option<u64>,
}

#[derive(Debug)]
pub struct LoginThrottle {
    policy: ThrottlePolicy,
    records: Mutex<HashMap<Key, Record>>,
}

impl LoginThrottle {
    pub fn new(policy: ThrottlePolicy) -> Self {
        LoginThrottle {
            policy,
            records: Mutex::new(HashMap::new()),
        }
    }

    fn keys(name: &str, addr: Option<IpAddr>) -> Vec<Key> {
        let mut keys = vec![Key::Name(name.trim().to_lowercase())];
        keys.extend(addr.map(Key::Addr));
        keys
    }

    /// `Err(seconds)` when the name or the address is locked, with how long it stays locked.
    pub fn check(&self, name: &str, addr: Option<IpAddr>, now: u64) -> Result<(), u64> {
        let records = self
            .records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let wait = Self::keys(name, addr)
            .iter()
            .filter_map(|key| records.get(key)?.locked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max();
        match wait {
            Some(secs) => Err(secs),
            None => Ok(()),
        }
    }

    pub fn record_failure(&self, name: &str, addr: Option<IpAddr>, now: u64) {
        let policy = self.policy;
        let mut records = self
            .records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if records.len() >= policy.max_keys {
            records.retain(|_, record| {
                record.locked_until.is_some_and(|until| until > now)
                    || now.saturating_sub(record.window_start) <= policy.window_secs
            });
        }
        for key in Self::keys(name, addr) {
            let record = records.entry(key).or_insert(Record {
                failures: 0,
                window_start: now,
                locked_until: None,
            });
            if now.saturating_sub(record.window_start) > policy.window_secs {
                *record = Record {
                    failures: 0,
                    window_start: now,
                    locked_until: None,
                };
            }
            record.failures += 1;
            if record.failures >= policy.max_failures {
                record.locked_until = Some(now + policy.lockout_secs);
                record.failures = 0;
                record.window_start = now;
            }
        }
    }

    pub fn record_success(&self, name: &str) {
        let mut records = self
            .records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        records.remove(&Key::Name(name.trim().to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ThrottlePolicy {
        ThrottlePolicy {
            max_failures: 3,
            window_secs: 60,
            lockout_secs: 300,
            max_keys: 10,
        }
    }

    #[test]
    fn a_name_locks_after_max_failures_from_any_address() {
        let throttle = LoginThrottle::new(policy());
        for i in 0..3u8 {
            assert!(
                throttle
                    .check("Ann", Some(IpAddr::from([10, 0, 0, i])), 100)
                    .is_ok()
            );
            throttle.record_failure("Ann", Some(IpAddr::from([10, 0, 0, i])), 100);
        }
        assert_eq!(
            throttle.check("ann", Some(IpAddr::from([10, 0, 0, 9])), 110),
            Err(290)
        );
        assert!(
            throttle
                .check("bob", Some(IpAddr::from([10, 0, 0, 9])), 110)
                .is_ok()
        );
        assert!(throttle.check("ann", None, 401).is_ok());
    }

    #[test]
    fn an_address_locks_after_max_failures_across_names() {
        let throttle = LoginThrottle::new(policy());
        let addr = Some(IpAddr::from([192, 0, 2, 1]));
        for name in ["a", "b", "c"] {
            throttle.record_failure(name, addr, 100);
        }
        assert!(throttle.check("d", addr, 101).is_err());
        assert!(
            throttle
                .check("d", Some(IpAddr::from([192, 0, 2, 2])), 101)
                .is_ok()
        );
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let throttle = LoginThrottle::new(policy());
        throttle.record_failure("ann", None, 0);
        throttle.record_failure("ann", None, 10);
        throttle.record_failure("ann", None, 100);
        assert!(throttle.check("ann", None, 100).is_ok());
    }

    #[test]
    fn success_clears_the_name_only() {
        let throttle = LoginThrottle::new(policy());
        let addr = Some(IpAddr::from([192, 0, 2, 1]));
        throttle.record_failure("ann", addr, 0);
        throttle.record_failure("ann", addr, 0);
        throttle.record_success("ann");
        throttle.record_failure("ann", addr, 0);
        assert!(throttle.check("ann", None, 1).is_ok());
        assert!(throttle.check("zed", addr, 1).is_err());
    }
}
