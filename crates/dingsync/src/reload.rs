//! SIGHUP for `dingsync serve`: re-read the configuration, say what changed and what that
//! needs, and keep serving.
//!
//! Why: `kill -HUP` is how administrators and service managers (`systemctl reload`) ask a daemon
//! to pick up its configuration, and the default action of SIGHUP ends the process, so it used
//! to stop `serve` at once, dropping in-flight work (issue 18 B9). Handling the signal is what
//! keeps the service up; re-reading the file tells the administrator whether their edit is even
//! valid before they restart.
//!
//! What is applied live: nothing yet. The pieces built from the configuration (the API's token
//! list, the DingTalk client's budget, the workers' thresholds, the listener) are built once
//! at start, so each changed section is named in a warning with "restart to apply". A file
//! that does not load or validate is reported and the running configuration stays.

use std::path::PathBuf;

use crate::config::Config;

/// The top-level sections of the configuration whose values differ between `old` and `new`.
pub fn changed_sections(old: &Config, new: &Config) -> Vec<&'static str> {
    let (Ok(old), Ok(new)) = (serde_json::to_value(old), serde_json::to_value(new)) else {
        return Vec::new();
    };
    let sections = [
        "dingtalk", "callback", "database", "server", "api", "events", "sync",
    ];
    sections
        .into_iter()
        .filter(|s| old.get(s) != new.get(s))
        .collect()
}

/// What one SIGHUP does: the log lines it results in, as (is_warning, text).
pub fn on_hangup(running: &Config, path: Option<&std::path::Path>) -> (bool, String) {
    let loaded = Config::load(path)
        .map_err(anyhow::Error::from)
        .and_then(|c| {
            c.validate()?;
            Ok(c)
        });
    match loaded {
        Err(e) => (
            true,
            format!(
                "SIGHUP: the configuration does not load, so nothing changes and the service \
                 keeps running as it is: {e:#}"
            ),
        ),
        Ok(new) => {
            let changed = changed_sections(running, &new);
            if changed.is_empty() {
                (
                    false,
                    "SIGHUP: configuration re-read; nothing changed".to_owned(),
                )
            } else {
                (
                    true,
                    format!(
                        "SIGHUP: configuration re-read and valid; changed: [{}]. These take \
                         effect after a restart of `dingsync serve` (none is reloaded live); \
                         the service keeps running with the old values",
                        changed.join(", ")
                    ),
                )
            }
        }
    }
}

/// Installs the SIGHUP handler (at once, so a HUP right after start cannot end the process)
/// and answers every SIGHUP with [`on_hangup`] until the process ends.
#[cfg(unix)]
pub fn install(running: Config, path: Option<PathBuf>) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match on_hangup(&running, path.as_deref()) {
                (true, line) => tracing::warn!("{line}"),
                (false, line) => tracing::info!("{line}"),
            }
        }
    });
    Ok(())
}

/// Elsewhere there is no SIGHUP.
#[cfg(not(unix))]
pub fn install(_running: Config, _path: Option<PathBuf>) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_sections_are_named() {
        let old = Config::default();
        let mut new = old.clone();
        assert!(changed_sections(&old, &new).is_empty());
        new.dingtalk.qps = 7;
        new.api
            .tokens
            .push(crate::config::Secret::new("a-new-token-0123456789"));
        assert_eq!(changed_sections(&old, &new), vec!["dingtalk", "api"]);
    }
}
