//! SIGHUP for `dingsync serve`: re-read the configuration, apply what can change live, name
//! every other changed key as needing a restart, and keep serving.
//!
//! Why: `kill -HUP` is how administrators and service managers (`systemctl reload`) ask a daemon
//! to pick up its configuration, and the default action of SIGHUP ends the process, so it used
//! to stop `serve` at once, dropping in-flight work (issue 18 B9). Handling the signal keeps the
//! service up; re-reading the file tells the administrator whether their edit is even valid
//! before they restart.
//!
//! What is applied live ([`LIVE_KEYS`]): `api.tokens`, the OA API's accepted tokens (adding a
//! client's token or revoking a leaked one must not wait for a restart); a request checks the
//! list current when it arrives. `sync.deletion_max_percent` and `sync.deletion_max_count`, the
//! deletion threshold (an administrator who sees deletions held, or expects a large clean-up,
//! adjusts it on a running service); the next plan, scheduled reconcile, import and SCIM
//! deactivation decide by the new one ([`sync_engine::LiveThreshold`]). Everything else is
//! built once at start (the listeners, the database pool, the DingTalk client and its budget,
//! the workers' schedules, the callback keys, the rest of SCIM), so each changed key is named
//! in a warning with "restart to apply", and until then the service keeps the old value. The log level is not in
//! the configuration (it comes from `-v` / `RUST_LOG` at start). A file that does not load or
//! validate is reported with the keys its errors name, and the running configuration stays.
//! Only key names are logged, never values (tokens and secrets are keys too).

use std::path::PathBuf;

use crate::api::{ApiToken, TokenList};
use crate::config::Config;

/// The keys a SIGHUP applies without a restart.
pub const LIVE_KEYS: &[&str] = &[
    "api.tokens",
    "sync.deletion_max_count",
    "sync.deletion_max_percent",
];

/// The handles a SIGHUP changes in the running service (shared with what reads them).
#[derive(Debug, Clone)]
pub struct Live {
    /// The OA API's accepted tokens.
    pub tokens: TokenList,
    /// The deletion threshold of the engine and of SCIM.
    pub deletions: sync_engine::LiveThreshold,
}

/// What one SIGHUP did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// The file did not load or validate; nothing changed. The error names the keys.
    Invalid(String),
    /// The file is valid: keys applied live and keys that need a restart.
    Valid {
        live: Vec<String>,
        restart: Vec<String>,
    },
}

impl Reload {
    /// The log line, and whether it is a warning.
    pub fn line(&self) -> (bool, String) {
        match self {
            Reload::Invalid(e) => (
                true,
                format!(
                    "SIGHUP: the configuration does not load, so nothing changes and the service \
                     keeps running as it is: {e}"
                ),
            ),
            Reload::Valid { live, restart } if live.is_empty() && restart.is_empty() => (
                false,
                "SIGHUP: configuration re-read; nothing changed".to_owned(),
            ),
            Reload::Valid { live, restart } => {
                let mut line = "SIGHUP: configuration re-read and valid".to_owned();
                if !live.is_empty() {
                    line.push_str(&format!("; applied live: [{}]", live.join(", ")));
                }
                if !restart.is_empty() {
                    line.push_str(&format!(
                        "; need a restart of `dingsync serve` to take effect (the service keeps \
                         the old values until then): [{}]",
                        restart.join(", ")
                    ));
                }
                (!restart.is_empty(), line)
            }
        }
    }
}

/// The dotted keys (`dingtalk.qps`, `api.tokens`) whose values differ between `old` and `new`:
/// tables are followed, anything else (lists included) compared whole.
pub fn changed_keys(old: &Config, new: &Config) -> Vec<String> {
    let (Ok(old), Ok(new)) = (serde_json::to_value(old), serde_json::to_value(new)) else {
        return Vec::new();
    };
    let mut keys = Vec::new();
    diff_keys("", &old, &new, &mut keys);
    keys
}

fn diff_keys(
    prefix: &str,
    old: &serde_json::Value,
    new: &serde_json::Value,
    out: &mut Vec<String>,
) {
    use serde_json::Value;
    let null = Value::Null;
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                diff_keys(
                    &path,
                    a.get(k).unwrap_or(&null),
                    b.get(k).unwrap_or(&null),
                    out,
                );
            }
        }
        (a, b) if a != b => out.push(prefix.to_owned()),
        _ => {}
    }
}

/// The top-level sections of the configuration whose values differ between `old` and `new`.
pub fn changed_sections(old: &Config, new: &Config) -> Vec<String> {
    let mut sections: Vec<String> = changed_keys(old, new)
        .into_iter()
        .map(|k| k.split('.').next().unwrap_or_default().to_owned())
        .collect();
    sections.dedup();
    sections
}

/// One SIGHUP: re-reads `path`; when valid applies the [`LIVE_KEYS`] to `live` and to
/// `running` (so the next SIGHUP compares with what is in effect) and names the other changed
/// keys; when not, changes nothing.
pub fn on_hangup(running: &mut Config, path: Option<&std::path::Path>, live: &Live) -> Reload {
    let loaded = Config::load(path)
        .map_err(anyhow::Error::from)
        .and_then(|c| {
            c.validate()?;
            Ok(c)
        });
    let new = match loaded {
        Err(e) => return Reload::Invalid(format!("{e:#}")),
        Ok(new) => new,
    };
    let (changed, restart): (Vec<String>, Vec<String>) = changed_keys(running, &new)
        .into_iter()
        .partition(|k| LIVE_KEYS.contains(&k.as_str()));
    if changed.iter().any(|k| k == "api.tokens") {
        live.tokens.replace(
            new.api
                .tokens
                .iter()
                .map(|t| ApiToken::unnamed(t.expose()))
                .collect(),
        );
        running.api.tokens = new.api.tokens.clone();
    }
    if changed.iter().any(|k| k.starts_with("sync.deletion_max_")) {
        running.sync.deletion_max_percent = new.sync.deletion_max_percent;
        running.sync.deletion_max_count = new.sync.deletion_max_count;
        live.deletions
            .set(crate::workers::deletion_threshold(running));
    }
    Reload::Valid {
        live: changed,
        restart,
    }
}

/// Installs the SIGHUP handler (at once, so a HUP right after start cannot end the process)
/// and answers every SIGHUP with [`on_hangup`] until the process ends.
#[cfg(unix)]
pub fn install(running: Config, path: Option<PathBuf>, live: Live) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        let mut running = running;
        while hangups.recv().await.is_some() {
            match on_hangup(&mut running, path.as_deref(), &live).line() {
                (true, line) => tracing::warn!("{line}"),
                (false, line) => tracing::info!("{line}"),
            }
        }
    });
    Ok(())
}

/// Elsewhere there is no SIGHUP.
#[cfg(not(unix))]
pub fn install(_running: Config, _path: Option<PathBuf>, _live: Live) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_keys_are_named_and_sorted_into_live_and_restart() {
        let old = Config::default();
        let mut new = old.clone();
        assert!(changed_keys(&old, &new).is_empty());
        new.dingtalk.qps = 7;
        new.api
            .tokens
            .push(crate::config::Secret::new("a-new-token-0123456789"));
        assert_eq!(changed_keys(&old, &new), vec!["api.tokens", "dingtalk.qps"]);
        assert_eq!(changed_sections(&old, &new), vec!["api", "dingtalk"]);
        let line = Reload::Valid {
            live: vec!["api.tokens".into()],
            restart: vec!["dingtalk.qps".into()],
        }
        .line();
        assert!(line.0, "a key that needs a restart is a warning");
        assert!(
            line.1.contains("applied live: [api.tokens]") && line.1.contains("[dingtalk.qps]"),
            "{}",
            line.1
        );
        assert!(!line.1.contains("a-new-token"), "{}", line.1);
    }

    #[test]
    fn the_deletion_threshold_is_applied_live() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        let mut running = Config::default();
        running.dingtalk.client_id = "app".into();
        running.dingtalk.client_secret = crate::config::Secret::new("app-secret");
        let live = Live {
            tokens: TokenList::new(Vec::new()),
            deletions: sync_engine::LiveThreshold::new(crate::workers::deletion_threshold(
                &running,
            )),
        };
        let mut new = running.clone();
        new.sync.deletion_max_count = 3;
        new.sync.deletion_max_percent = 50.0;
        new.dingtalk.qps = 7;
        std::fs::write(&path, toml::to_string(&new).expect("toml")).expect("write");
        let reload = on_hangup(&mut running, Some(&path), &live);
        assert_eq!(
            reload,
            Reload::Valid {
                live: vec![
                    "sync.deletion_max_count".into(),
                    "sync.deletion_max_percent".into()
                ],
                restart: vec!["dingtalk.qps".into()],
            }
        );
        let now = live.deletions.get();
        assert_eq!(now.max_count, 3);
        assert!((now.max_fraction - 0.5).abs() < 1e-9, "{now:?}");
        assert!(now.must_hold(4, 100) && !now.must_hold(3, 100));
        // What is in effect is what the next SIGHUP compares with.
        assert_eq!(running.sync.deletion_max_count, 3);
        assert_eq!(
            running.dingtalk.qps, 20,
            "a restart key keeps its old value"
        );
    }
}
