//! Simulator configuration and the subset of it that can change at run time.
//!
//! [`SimConfig`] is what `dingsync sim`, the demo and tests pass to [`crate::start`]. A few knobs
//! (rate limit, latency, fault rate, token lifetime, the slow-answer delay) are copied into
//! [`Settings`] at start so `/_sim/settings` can change them while the simulator runs; the rest is
//! fixed for the life of the simulator.
//!
//! The client secret is a credential, so `SimConfig`'s `Debug` prints it redacted.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::SimError;

/// Everything a simulator needs to start.
#[derive(Clone)]
pub struct SimConfig {
    /// How many users the org generator creates (0: an org with only the root department).
    pub users: usize,
    /// How many departments the generator creates below the root.
    pub depts: usize,
    /// Seed of every random choice (org generation, generated ids, request ids, faults), so a
    /// run can be repeated exactly.
    pub seed: u64,
    /// At most this many calls per app per API path in any sliding 1 s window (DingTalk's
    /// standard-edition limit is 20). 0 disables the limit.
    pub qps: u32,
    /// Delay added to every DingTalk API answer, to make latency visible in benchmarks.
    pub latency_ms: u64,
    /// Probability (0.0–1.0) that a DingTalk API call is answered with an injected fault.
    pub fault_rate: f64,
    /// The app's Client ID (legacy name: AppKey).
    pub client_id: String,
    /// The app's Client Secret (legacy name: AppSecret). Redacted in `Debug`.
    pub client_secret: String,
    /// The org's CorpId; it is the owner key of callbacks registered through the API.
    pub corp_id: String,
    /// The org's name, shown as the name of root department 1.
    pub corp_name: String,
    /// Lifetime of an access token (DingTalk: 7200 s).
    pub token_ttl: Duration,
    /// Error code for a duplicate department name under one parent: 60008 (2016 doc, what
    /// clients in the wild handle) or 60021 (current error table).
    pub dup_dept_name_errcode: i64,
    /// How long a "slow answer" fault waits before answering; DingTalk's gateway times out at
    /// 3 s, so the default is past that.
    pub slow_answer: Duration,
    /// How many organizations (corps) the simulator serves (at least 1). Org 0 is the one the
    /// fields above describe; org `n > 0` is derived from it by [`SimConfig::for_org`] (its own
    /// credentials, corp id, name and seed; the same sizes and knobs).
    pub orgs: usize,
    /// Calls per second from one IP over every corp and API, a stricter window than DingTalk's
    /// 10,000 per 20 s (which always applies); over either, the IP is refused for 5 minutes
    /// (`ip_limit`). 0: only DingTalk's window.
    pub ip_qps: u32,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            users: 0,
            depts: 0,
            seed: 1,
            qps: 20,
            latency_ms: 0,
            fault_rate: 0.0,
            client_id: "dingsimclientid".to_owned(),
            client_secret: "dingsimclientsecret".to_owned(),
            corp_id: "dingsimcorpid".to_owned(),
            corp_name: "模拟科技有限公司".to_owned(),
            token_ttl: Duration::from_secs(7200),
            dup_dept_name_errcode: 60008,
            slow_answer: Duration::from_millis(3500),
            orgs: 1,
            ip_qps: 0,
        }
    }
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("users", &self.users)
            .field("depts", &self.depts)
            .field("seed", &self.seed)
            .field("qps", &self.qps)
            .field("latency_ms", &self.latency_ms)
            .field("fault_rate", &self.fault_rate)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("corp_id", &self.corp_id)
            .field("corp_name", &self.corp_name)
            .field("token_ttl", &self.token_ttl)
            .field("dup_dept_name_errcode", &self.dup_dept_name_errcode)
            .field("slow_answer", &self.slow_answer)
            .field("orgs", &self.orgs)
            .field("ip_qps", &self.ip_qps)
            .finish()
    }
}

impl SimConfig {
    /// Rejects settings the simulator cannot honour, so a typo fails at start, not mid-test.
    pub fn validate(&self) -> Result<(), SimError> {
        if !(0.0..=1.0).contains(&self.fault_rate) {
            return Err(SimError::InvalidConfig(format!(
                "fault_rate must be within 0.0..=1.0, got {}",
                self.fault_rate
            )));
        }
        if self.dup_dept_name_errcode != 60008 && self.dup_dept_name_errcode != 60021 {
            return Err(SimError::InvalidConfig(format!(
                "dup_dept_name_errcode must be 60008 or 60021, got {}",
                self.dup_dept_name_errcode
            )));
        }
        if self.client_id.is_empty() || self.client_secret.is_empty() || self.corp_id.is_empty() {
            return Err(SimError::InvalidConfig(
                "client_id, client_secret and corp_id must not be empty".to_owned(),
            ));
        }
        if !(1..=MAX_ORGS).contains(&self.orgs) {
            return Err(SimError::InvalidConfig(format!(
                "orgs must be within 1..={MAX_ORGS}, got {}",
                self.orgs
            )));
        }
        if self.token_ttl.is_zero() {
            return Err(SimError::InvalidConfig(
                "token_ttl must be positive".to_owned(),
            ));
        }
        Ok(())
    }
}

/// The most organizations one simulator serves (DingTalk allows 300 branches per trunk; a
/// simulator with more corps than this is a typo, and each corp runs its own tasks).
pub const MAX_ORGS: usize = 64;

impl SimConfig {
    /// The configuration of org `index`: org 0 is `self`; org `n > 0` appends `n` to the client
    /// id, client secret and corp id (`dingsimclientid` → `dingsimclientid2`), names the corp
    /// `<corp_name> <n>`, and takes its own seed, so its generated ids, tokens and request ids
    /// differ from org 0's while the sizes and knobs are the same. Ids of different corps may
    /// still coincide, as DingTalk's do (they are only unique within a corp).
    pub fn for_org(&self, index: usize) -> SimConfig {
        if index == 0 {
            return SimConfig {
                orgs: 1,
                ..self.clone()
            };
        }
        SimConfig {
            client_id: format!("{}{index}", self.client_id),
            client_secret: format!("{}{index}", self.client_secret),
            corp_id: format!("{}{index}", self.corp_id),
            corp_name: format!("{} {index}", self.corp_name),
            seed: self
                .seed
                .wrapping_add((index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            orgs: 1,
            ..self.clone()
        }
    }
}

/// The knobs `/_sim/settings` changes at run time (a copy of the matching `SimConfig` fields).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Settings {
    /// See [`SimConfig::qps`].
    pub qps: u32,
    /// See [`SimConfig::latency_ms`].
    pub latency_ms: u64,
    /// See [`SimConfig::fault_rate`].
    pub fault_rate: f64,
    /// See [`SimConfig::token_ttl`], in seconds.
    pub token_ttl_secs: u64,
    /// See [`SimConfig::slow_answer`], in milliseconds.
    pub slow_answer_ms: u64,
}

impl Settings {
    pub(crate) fn from_config(config: &SimConfig) -> Self {
        Self {
            qps: config.qps,
            latency_ms: config.latency_ms,
            fault_rate: config.fault_rate,
            token_ttl_secs: config.token_ttl.as_secs().max(1),
            slow_answer_ms: u64::try_from(config.slow_answer.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// A partial update of [`Settings`], the body of `POST /_sim/settings`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    pub qps: Option<u32>,
    pub latency_ms: Option<u64>,
    pub fault_rate: Option<f64>,
    pub token_ttl_secs: Option<u64>,
    pub slow_answer_ms: Option<u64>,
}

impl Settings {
    /// Applies a patch, refusing values the simulator cannot honour (nothing changes then).
    pub(crate) fn apply(&mut self, patch: &SettingsPatch) -> Result<(), String> {
        if let Some(rate) = patch.fault_rate
            && !(0.0..=1.0).contains(&rate)
        {
            return Err(format!("fault_rate must be within 0.0..=1.0, got {rate}"));
        }
        if patch.token_ttl_secs == Some(0) {
            return Err("token_ttl_secs must be positive".to_owned());
        }
        if let Some(v) = patch.qps {
            self.qps = v;
        }
        if let Some(v) = patch.latency_ms {
            self.latency_ms = v;
        }
        if let Some(v) = patch.fault_rate {
            self.fault_rate = v;
        }
        if let Some(v) = patch.token_ttl_secs {
            self.token_ttl_secs = v;
        }
        if let Some(v) = patch.slow_answer_ms {
            self.slow_answer_ms = v;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_secret() {
        let config = SimConfig {
            client_secret: "topsecretvalue".to_owned(),
            ..SimConfig::default()
        };
        let text = format!("{config:?}");
        assert!(!text.contains("topsecretvalue"));
        assert!(text.contains("<redacted>"));
    }

    #[test]
    fn validate_rejects_bad_fault_rate_and_dup_code() {
        let bad_rate = SimConfig {
            fault_rate: 1.5,
            ..SimConfig::default()
        };
        assert!(bad_rate.validate().is_err());
        let bad_code = SimConfig {
            dup_dept_name_errcode: 1,
            ..SimConfig::default()
        };
        assert!(bad_code.validate().is_err());
        assert!(SimConfig::default().validate().is_ok());
        let no_orgs = SimConfig {
            orgs: 0,
            ..SimConfig::default()
        };
        assert!(no_orgs.validate().is_err());
    }

    #[test]
    fn derived_orgs_have_their_own_credentials_and_seed() {
        let base = SimConfig {
            orgs: 3,
            ..SimConfig::default()
        };
        let zero = base.for_org(0);
        assert_eq!(zero.client_id, base.client_id);
        assert_eq!(zero.seed, base.seed);
        let two = base.for_org(2);
        assert_eq!(two.client_id, "dingsimclientid2");
        assert_eq!(two.corp_id, "dingsimcorpid2");
        assert_ne!(two.client_secret, base.client_secret);
        assert_ne!(two.seed, base.seed);
        assert_ne!(two.corp_name, base.corp_name);
        assert_eq!(two.orgs, 1);
    }

    #[test]
    fn settings_patch_is_all_or_nothing() {
        let mut settings = Settings::from_config(&SimConfig::default());
        let before = settings.clone();
        let patch = SettingsPatch {
            qps: Some(5),
            fault_rate: Some(2.0),
            ..SettingsPatch::default()
        };
        assert!(settings.apply(&patch).is_err());
        assert_eq!(settings, before);
        let ok = SettingsPatch {
            qps: Some(5),
            ..SettingsPatch::default()
        };
        assert!(settings.apply(&ok).is_ok());
        assert_eq!(settings.qps, 5);
    }
}
