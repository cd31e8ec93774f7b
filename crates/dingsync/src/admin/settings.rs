//! `/console/settings`: the effective configuration, key by key, with where each value came
//! from. Secrets never leave: every key naming one (and any URL with a password) is shown only
//! as set / not set, here and again by the console (`SettingsView::redacted`).
//!
//! The source is read back from the result, not tracked while loading: a value whose
//! `DINGSYNC_<SECTION>__<KEY>` variable is set came from the environment, one equal to the
//! default is the default, anything else came from the file. The deletion threshold is the
//! exception: a SIGHUP changes it on the running service (`sync_engine::LiveThreshold`), so the
//! page shows the value in effect, marked as reloaded when it differs from the start-up one.

use console::views::{Setting, SettingSource, SettingValue, SettingsView, key_is_secret};
use serde_json::Value;

use crate::config::Config;

fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let dotted = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&dotted, inner, out);
            }
        }
        other => out.push((prefix.to_owned(), other.clone())),
    }
}

fn shown(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The effective configuration; `live` is the deletion threshold in effect now (a SIGHUP
/// replaces it without a restart, so the start-up file may say something else).
pub fn settings(config: &Config, live: Option<sync_engine::DeletionThreshold>) -> SettingsView {
    let mut effective = Vec::new();
    let mut defaults = Vec::new();
    flatten(
        "",
        &serde_json::to_value(config).unwrap_or(Value::Null),
        &mut effective,
    );
    flatten(
        "",
        &serde_json::to_value(Config::default()).unwrap_or(Value::Null),
        &mut defaults,
    );
    let started = crate::workers::deletion_threshold(config);
    let live = live.filter(|now| *now != started);
    let entries = effective
        .into_iter()
        .map(|(key, value)| {
            let reloaded = match (live, key.as_str()) {
                (Some(now), "sync.deletion_max_percent") => {
                    Some(Value::from((now.max_fraction * 100.0 * 1e6).round() / 1e6))
                }
                (Some(now), "sync.deletion_max_count") => Some(Value::from(now.max_count)),
                _ => None,
            };
            let env = format!("DINGSYNC_{}", key.replace('.', "__").to_uppercase());
            let source = if reloaded.is_some() {
                SettingSource::Reload
            } else if std::env::var_os(&env).is_some() {
                SettingSource::Environment
            } else if defaults.iter().any(|(k, v)| *k == key && *v == value) {
                SettingSource::Default
            } else {
                SettingSource::File
            };
            let text = shown(reloaded.as_ref().unwrap_or(&value));
            let value = if key_is_secret(&key) || key == "database.url" {
                SettingValue::Secret {
                    set: !text.is_empty() && text != "[]",
                }
            } else {
                SettingValue::Plain { value: text }
            };
            Setting { key, value, source }
        })
        .collect();
    SettingsView { entries }.redacted()
}

#[cfg(test)]
mod tests {
    use console::views::{SettingSource, SettingValue};

    use super::settings;
    use crate::config::Config;

    fn shown(view: &console::views::SettingsView, key: &str) -> (String, SettingSource) {
        let entry = view
            .entries
            .iter()
            .find(|e| e.key == key)
            .unwrap_or_else(|| panic!("no {key}"));
        match &entry.value {
            SettingValue::Plain { value } => (value.clone(), entry.source),
            SettingValue::Secret { .. } => panic!("{key} is not secret"),
        }
    }

    #[test]
    fn the_deletion_threshold_shown_is_the_one_in_effect_after_a_reload() {
        let config = Config::default();
        let started = crate::workers::deletion_threshold(&config);
        let view = settings(&config, Some(started));
        assert_eq!(
            shown(&view, "sync.deletion_max_count"),
            ("500".to_owned(), SettingSource::Default)
        );
        let reloaded = sync_engine::DeletionThreshold {
            max_fraction: 0.25,
            max_count: 40,
        };
        let view = settings(&config, Some(reloaded));
        assert_eq!(
            shown(&view, "sync.deletion_max_count"),
            ("40".to_owned(), SettingSource::Reload)
        );
        assert_eq!(
            shown(&view, "sync.deletion_max_percent"),
            ("25.0".to_owned(), SettingSource::Reload)
        );
    }
}
