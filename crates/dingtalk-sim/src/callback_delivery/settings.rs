//! Run-time behaviour of callback delivery (`/_sim/push-settings`) and its validated patch.

use serde::{Deserialize, Serialize};

use super::payload::Dialect;

/// Run-time push behaviour (`/_sim/push-settings`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PushSettings {
    /// Plaintext dialect.
    pub dialect: Dialect,
    /// Send the signature as `msg_signature` instead of `signature`.
    pub msg_signature: bool,
    /// Deadline of one push or `check_url`, in ms.
    pub timeout_ms: u64,
    /// Multiplies the 10 s / 30 s retry delays (1.0 = DingTalk's schedule).
    pub retry_scale: f64,
    /// Probability that a push is sent twice.
    pub duplicate_rate: f64,
    /// Extra wait before every first attempt, in ms.
    pub delay_ms: u64,
    /// When positive, each first attempt waits a random 0..window ms and they run
    /// concurrently, so events arrive out of order.
    pub reorder_window_ms: u64,
}

impl Default for PushSettings {
    fn default() -> Self {
        Self {
            dialect: Dialect::Legacy,
            msg_signature: false,
            timeout_ms: 1500,
            retry_scale: 1.0,
            duplicate_rate: 0.0,
            delay_ms: 0,
            reorder_window_ms: 0,
        }
    }
}

/// A partial update of [`PushSettings`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushSettingsPatch {
    pub dialect: Option<Dialect>,
    pub msg_signature: Option<bool>,
    pub timeout_ms: Option<u64>,
    pub retry_scale: Option<f64>,
    pub duplicate_rate: Option<f64>,
    pub delay_ms: Option<u64>,
    pub reorder_window_ms: Option<u64>,
}

impl PushSettings {
    pub(crate) fn apply(&mut self, p: &PushSettingsPatch) -> Result<(), String> {
        if let Some(rate) = p.duplicate_rate
            && !(0.0..=1.0).contains(&rate)
        {
            return Err(format!(
                "duplicate_rate must be within 0.0..=1.0, got {rate}"
            ));
        }
        if let Some(scale) = p.retry_scale
            && !(scale.is_finite() && scale >= 0.0)
        {
            return Err(format!(
                "retry_scale must be a non-negative number, got {scale}"
            ));
        }
        if p.timeout_ms == Some(0) {
            return Err("timeout_ms must be positive".to_owned());
        }
        if let Some(v) = p.dialect {
            self.dialect = v;
        }
        if let Some(v) = p.msg_signature {
            self.msg_signature = v;
        }
        if let Some(v) = p.timeout_ms {
            self.timeout_ms = v;
        }
        if let Some(v) = p.retry_scale {
            self.retry_scale = v;
        }
        if let Some(v) = p.duplicate_rate {
            self.duplicate_rate = v;
        }
        if let Some(v) = p.delay_ms {
            self.delay_ms = v;
        }
        if let Some(v) = p.reorder_window_ms {
            self.reorder_window_ms = v;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback_delivery::payload::Dialect;

    #[test]
    fn push_settings_patch_validates() {
        let mut s = PushSettings::default();
        assert!(
            s.apply(&PushSettingsPatch {
                duplicate_rate: Some(2.0),
                ..Default::default()
            })
            .is_err()
        );
        assert!(
            s.apply(&PushSettingsPatch {
                retry_scale: Some(-1.0),
                ..Default::default()
            })
            .is_err()
        );
        assert!(
            s.apply(&PushSettingsPatch {
                dialect: Some(Dialect::New),
                retry_scale: Some(0.01),
                ..Default::default()
            })
            .is_ok()
        );
        assert_eq!(s.dialect, Dialect::New);
    }
}
