//! `[console]`: whether `serve` mounts the console, its session key, idle timeout, cookie
//! security and how long history is kept.
//!
//! The session key signs every session cookie and CSRF token. Several instances behind one
//! load balancer must share it, and a restart must not sign everyone out, so when neither the
//! file nor the environment gives one, a random key is generated once and kept in the database
//! (`sync_state`, key [`SESSION_KEY_STATE`]), where every instance finds the same one.

use std::path::PathBuf;

use anyhow::Context;
use console::ConsoleConfig;
use console::auth::SessionKey;
use directory_store::Store;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::config::Secret;

/// Where a generated session key is kept.
pub const SESSION_KEY_STATE: &str = "console.session_key";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleSection {
    /// Serve the console at `/console` and the admin API at `/api/v1/admin`.
    pub enabled: bool,
    /// Hex, 32 bytes or more; empty means generated and stored in the database.
    pub session_key: Secret,
    pub session_key_file: Option<PathBuf>,
    /// A session unused this long is over.
    pub idle_timeout_secs: u64,
    /// Mark cookies `Secure` (needs HTTPS in front). Off only for plain-HTTP loopback use.
    pub secure_cookies: bool,
    /// History (audit, runs, decided conflicts, resolved holds, pushed outbox entries) older
    /// than this is pruned in the background.
    pub history_retention_days: u32,
}

impl Default for ConsoleSection {
    fn default() -> Self {
        Self {
            enabled: true,
            session_key: Secret::default(),
            session_key_file: None,
            idle_timeout_secs: 30 * 60,
            secure_cookies: true,
            history_retention_days: 180,
        }
    }
}

impl ConsoleSection {
    /// What is wrong with the section, each problem naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.idle_timeout_secs < 60 {
            problems.push("console.idle_timeout_secs: must be at least 60".to_owned());
        }
        if self.history_retention_days == 0 {
            problems.push("console.history_retention_days: must be at least 1".to_owned());
        }
        if !self.session_key.is_empty() && key_from_hex(self.session_key.expose()).is_none() {
            problems.push(
                "console.session_key: must be hex of at least 32 bytes (64 hex digits)".to_owned(),
            );
        }
        problems
    }
}

fn key_from_hex(text: &str) -> Option<SessionKey> {
    let bytes = hex::decode(text.trim()).ok()?;
    SessionKey::from_bytes(&bytes).ok()
}

/// The key from the configuration, else the one kept in the database, else a new one stored
/// there (see the module doc).
async fn session_key(
    section: &ConsoleSection,
    store: &Store,
    now_ms: i64,
) -> anyhow::Result<SessionKey> {
    if !section.session_key.is_empty() {
        return key_from_hex(section.session_key.expose())
            .context("console.session_key: must be hex of at least 32 bytes");
    }
    if let Some(stored) = store.state_get(SESSION_KEY_STATE).await? {
        return key_from_hex(&stored)
            .context("the console session key stored in the database is damaged");
    }
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    store
        .state_set(SESSION_KEY_STATE, &hex::encode(bytes), now_ms)
        .await?;
    // Another instance may have stored its key at the same moment: everyone uses the stored one.
    let stored = store
        .state_get(SESSION_KEY_STATE)
        .await?
        .unwrap_or_default();
    key_from_hex(&stored).context("the console session key stored in the database is damaged")
}

/// The console's configuration from `[console]`.
pub async fn console_config(
    section: &ConsoleSection,
    store: &Store,
    now_ms: i64,
) -> anyhow::Result<ConsoleConfig> {
    let mut config = ConsoleConfig::new(session_key(section, store, now_ms).await?);
    config.secure_cookies = section.secure_cookies;
    config.idle_timeout_secs = section.idle_timeout_secs;
    Ok(config)
}
