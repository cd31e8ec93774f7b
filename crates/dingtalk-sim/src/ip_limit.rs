//! DingTalk's limit per egress IP: every call of every app and corp from one IP counts
//! together (`dingtalk-api.md` §4: 10,000 requests per 20 s; a violation bans the IP for
//! 5 minutes, and the answer is not a normal errcode body but the gateway's deny JSON
//! `{"status":1111,"wait":5,"source":"x5","punish":"deny","uuid":"…"}`).
//!
//! The fleet checks it before a request reaches its corp (`server::route_to_corp`), so every
//! DingTalk path counts: tokens, business calls, Stream registration. Knobs (`/_sim/ip`,
//! `dingsync sim --ip-qps`):
//! - `per_20s` (default DingTalk's 10,000) over a sliding 20 s window;
//! - `ip_qps` (default 0: off), a stricter sliding 1 s window for tests and demos that want to
//!   see several orgs' sum capped without sending 10,000 calls;
//! - `ban_secs` (default DingTalk's 300): how long an IP that went over is refused.
//!
//! Choices where the facts are silent (the stricter plausible behaviour):
//! - the deny comes with **HTTP 200**, so a client that reads only the status or only
//!   `errcode` (absent here, which most clients read as 0) takes it for a success;
//! - every call during the ban is refused and none of them counts toward the windows; the ban
//!   is not extended by calls made during it;
//! - `wait` is the ban's remaining minutes, rounded up (5 at its start, as observed).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The knobs, as `GET /_sim/ip` shows them and `POST /_sim/ip` changes them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IpLimitSettings {
    /// Calls per IP in any sliding 20 s (DingTalk: 10,000); 0 turns this window off.
    pub per_20s: u32,
    /// Calls per IP in any sliding second (0: off; DingTalk documents no such window).
    pub ip_qps: u32,
    /// How long an IP that went over is refused (DingTalk: 5 minutes).
    pub ban_secs: u64,
}

impl Default for IpLimitSettings {
    fn default() -> Self {
        Self {
            per_20s: 10_000,
            ip_qps: 0,
            ban_secs: 300,
        }
    }
}

/// A partial update, the body of `POST /_sim/ip`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpLimitPatch {
    pub per_20s: Option<u32>,
    pub ip_qps: Option<u32>,
    pub ban_secs: Option<u64>,
    /// `true` lifts every current ban.
    pub lift_bans: Option<bool>,
}

/// One IP's recent calls and ban.
#[derive(Debug, Default)]
struct IpState {
    /// Admitted calls of the last 20 s.
    last_20s: VecDeque<Instant>,
    /// Admitted calls of the last second.
    last_1s: VecDeque<Instant>,
    /// Refused until then.
    banned_until: Option<Instant>,
}

/// Counts for `GET /_sim/ip`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct IpCounts {
    /// Calls admitted.
    pub admitted: u64,
    /// Calls refused with the deny body.
    pub denied: u64,
    /// Bans imposed.
    pub bans: u64,
}

/// The per-IP limiter of the whole fleet.
#[derive(Debug, Default)]
pub struct IpLimiter {
    pub settings: IpLimitSettings,
    pub counts: IpCounts,
    ips: HashMap<IpAddr, IpState>,
}

/// Why a call was refused: the ban has this long left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denied {
    pub remaining: Duration,
}

impl Denied {
    /// The deny body's `wait`: the ban's remaining minutes, rounded up.
    pub fn wait_minutes(&self) -> u64 {
        self.remaining.as_secs().div_ceil(60).max(1)
    }
}

impl IpLimiter {
    pub fn new(settings: IpLimitSettings) -> Self {
        Self {
            settings,
            ..Self::default()
        }
    }

    /// Admits a call from `ip` at `now`, or refuses it (banning the IP when this call is the
    /// one over a window).
    pub fn admit(&mut self, ip: IpAddr, now: Instant) -> Result<(), Denied> {
        let s = self.settings.clone();
        let state = self.ips.entry(ip).or_default();
        if let Some(until) = state.banned_until {
            if now < until {
                self.counts.denied += 1;
                return Err(Denied {
                    remaining: until - now,
                });
            }
            state.banned_until = None;
        }
        trim(&mut state.last_20s, now, Duration::from_secs(20));
        trim(&mut state.last_1s, now, Duration::from_secs(1));
        let over_20s = s.per_20s > 0 && state.last_20s.len() >= s.per_20s as usize;
        let over_1s = s.ip_qps > 0 && state.last_1s.len() >= s.ip_qps as usize;
        if over_20s || over_1s {
            let ban = Duration::from_secs(s.ban_secs);
            state.banned_until = (!ban.is_zero()).then_some(now + ban);
            self.counts.denied += 1;
            self.counts.bans += 1;
            return Err(Denied { remaining: ban });
        }
        state.last_20s.push_back(now);
        state.last_1s.push_back(now);
        self.counts.admitted += 1;
        Ok(())
    }

    /// Applies a patch (and lifts the bans when asked).
    pub fn apply(&mut self, patch: &IpLimitPatch) {
        if let Some(v) = patch.per_20s {
            self.settings.per_20s = v;
        }
        if let Some(v) = patch.ip_qps {
            self.settings.ip_qps = v;
        }
        if let Some(v) = patch.ban_secs {
            self.settings.ban_secs = v;
        }
        if patch.lift_bans == Some(true) {
            for state in self.ips.values_mut() {
                state.banned_until = None;
            }
        }
    }

    /// Whether any IP is banned at `now`.
    pub fn any_banned(&self, now: Instant) -> bool {
        self.ips
            .values()
            .any(|s| s.banned_until.is_some_and(|u| now < u))
    }
}

fn trim(window: &mut VecDeque<Instant>, now: Instant, span: Duration) {
    while window
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= span)
    {
        window.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn over_the_second_window_bans_the_ip_for_ban_secs() {
        let mut l = IpLimiter::new(IpLimitSettings {
            ip_qps: 3,
            ..IpLimitSettings::default()
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.admit(IP, t0).is_ok());
        }
        let denied = l.admit(IP, t0).expect_err("the fourth call in a second");
        assert_eq!(denied.wait_minutes(), 5);
        // Another IP is not affected.
        assert!(l.admit(OTHER, t0).is_ok());
        // A second later the window is empty, but the ban holds for five minutes.
        let later = t0 + Duration::from_secs(2);
        assert!(l.admit(IP, later).is_err());
        assert!(l.admit(IP, t0 + Duration::from_secs(300)).is_ok());
        assert_eq!(
            l.counts,
            IpCounts {
                admitted: 5,
                denied: 2,
                bans: 1
            }
        );
    }

    #[test]
    fn dingtalks_twenty_second_window_is_on_by_default() {
        let mut l = IpLimiter::new(IpLimitSettings {
            per_20s: 10,
            ..IpLimitSettings::default()
        });
        let t0 = Instant::now();
        for i in 0..10 {
            assert!(l.admit(IP, t0 + Duration::from_secs(i)).is_ok());
        }
        assert!(l.admit(IP, t0 + Duration::from_secs(19)).is_err());
        assert_eq!(IpLimitSettings::default().per_20s, 10_000);
        assert_eq!(IpLimitSettings::default().ban_secs, 300);
    }

    #[test]
    fn lifting_bans_admits_again() {
        let mut l = IpLimiter::new(IpLimitSettings {
            ip_qps: 1,
            ..IpLimitSettings::default()
        });
        let t0 = Instant::now();
        assert!(l.admit(IP, t0).is_ok());
        assert!(l.admit(IP, t0).is_err());
        assert!(l.any_banned(t0));
        l.apply(&IpLimitPatch {
            lift_bans: Some(true),
            ..IpLimitPatch::default()
        });
        assert!(!l.any_banned(t0));
        assert!(l.admit(IP, t0 + Duration::from_secs(1)).is_ok());
    }
}
