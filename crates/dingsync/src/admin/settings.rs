//! `/console/settings`: the effective configuration, key by key, with where each value came
//! from. Secrets never leave: every key naming one (and any URL with a password) is shown only
//! as set / not set, here and again by the console (`SettingsView::redacted`).
//!
//! The source is read back from the result, not tracked while loading: a value whose
//! `DINGSYNC_<SECTION>__<KEY>` variable is set came from the environment, one equal to the
//! default is the default, anything else came from the file.

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

pub fn settings(config: &Config) -> SettingsView {
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
    let entries = effective
        .into_iter()
        .map(|(key, value)| {
            let env = format!("DINGSYNC_{}", key.replace('.', "__").to_uppercase());
            let source = if std::env::var_os(&env).is_some() {
                SettingSource::Environment
            } else if defaults.iter().any(|(k, v)| *k == key && *v == value) {
                SettingSource::Default
            } else {
                SettingSource::File
            };
            let text = shown(&value);
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
