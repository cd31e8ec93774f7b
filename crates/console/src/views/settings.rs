//! `/console/settings`: the effective configuration and where each value came from.
//!
//! Secrets never leave the service: a [`SettingValue::Secret`] carries only whether it is
//! set, and [`SettingsView::redacted`] (applied by the console to whatever the backend
//! returns, before rendering or serialising) also hides any plain value whose key names a
//! secret, so one mislabelled key in the backend cannot leak onto a page.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsView {
    pub entries: Vec<Setting>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    /// Dotted key as in the config file (`dingtalk.app_key`).
    pub key: String,
    pub value: SettingValue,
    pub source: SettingSource,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SettingValue {
    Plain {
        value: String,
    },
    /// A secret: only whether it is set is ever shown.
    Secret {
        set: bool,
    },
}

impl SettingValue {
    /// What a page shows.
    pub fn display(&self) -> String {
        match self {
            SettingValue::Plain { value } => value.clone(),
            SettingValue::Secret { set: true } => "•••• (set, hidden)".to_owned(),
            SettingValue::Secret { set: false } => "(not set)".to_owned(),
        }
    }

    pub fn is_secret(&self) -> bool {
        matches!(self, SettingValue::Secret { .. })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettingSource {
    Default,
    File,
    Environment,
    /// Changed on the running service by a reload (SIGHUP) since it started.
    Reload,
}

impl SettingSource {
    pub fn label(&self) -> &'static str {
        match self {
            SettingSource::Default => "default",
            SettingSource::File => "file",
            SettingSource::Environment => "environment",
            SettingSource::Reload => "reload (SIGHUP)",
        }
    }
}

/// Key fragments that mark a value as secret whatever the backend said.
const SECRET_MARKERS: [&str; 7] = [
    "secret",
    "password",
    "token",
    "aes_key",
    "private",
    "credential",
    "session_key",
];

/// Whether a key names a secret (`dingtalk.app_secret`, `callback.aes_key`, a database URL).
pub fn key_is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_MARKERS.iter().any(|marker| key.contains(marker))
}

/// A URL's password (`postgres://user:pw@host/db`), if it has one.
fn url_has_password(value: &str) -> bool {
    let Some((_, rest)) = value.split_once("://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    authority
        .split_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

impl SettingsView {
    /// Hides every value that is or looks secret: keys naming a secret, and URLs with a
    /// password in them.
    pub fn redacted(mut self) -> Self {
        for entry in &mut self.entries {
            if let SettingValue::Plain { value } = &entry.value
                && (key_is_secret(&entry.key) || url_has_password(value))
            {
                entry.value = SettingValue::Secret {
                    set: !value.is_empty(),
                };
            }
        }
        self
    }
}
