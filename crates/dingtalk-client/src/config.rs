//! Client configuration: where DingTalk is, who we are, and how hard we may push it.
//!
//! Defaults follow DingTalk's documented limits (20 calls per second per app per API, 7200 s
//! tokens, a 3 s gateway timeout) so that a default client is a well-behaved one.

use std::time::Duration;

use dingtalk_proto::Secret;

use crate::retry::Backoff;

/// Which endpoint issues access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenEndpoint {
    /// `GET {base_url}/gettoken?appkey=…&appsecret=…` (the legacy endpoint; the default).
    #[default]
    Legacy,
    /// `POST {api_base_url}/v1.0/oauth2/accessToken` with `{appKey, appSecret}`.
    OAuth2,
}

/// Everything a [`crate::DingTalkClient`] needs. `Debug` never shows the secret.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The legacy API host (`https://oapi.dingtalk.com`), no trailing slash needed.
    pub base_url: String,
    /// The new API host (`https://api.dingtalk.com`), used only for [`TokenEndpoint::OAuth2`].
    pub api_base_url: String,
    /// The app's Client ID (AppKey).
    pub client_id: String,
    /// The app's Client Secret (AppSecret).
    pub client_secret: Secret,
    /// Which endpoint issues tokens.
    pub token_endpoint: TokenEndpoint,
    /// Calls per API path allowed in any sliding window of [`Self::rate_window`] (DingTalk: 20
    /// per second for a standard-edition org). 0 means unlimited.
    pub qps_per_api: u32,
    /// The window the budget counts in, from each call's answer (see `budget`): DingTalk's 1 s
    /// plus a small margin for clock granularity.
    pub rate_window: Duration,
    /// How many times a failed call is retried (so at most `max_retries + 1` attempts).
    pub max_retries: u32,
    /// Backoff between retries.
    pub backoff: Backoff,
    /// Timeout of one HTTP exchange. DingTalk's gateway gives up after 3 s, so waiting much
    /// longer only delays the retry.
    pub request_timeout: Duration,
    /// Timeout of establishing a connection.
    pub connect_timeout: Duration,
    /// Refresh a token this long before it expires (capped at a quarter of its lifetime, so
    /// short test lifetimes still get used).
    pub token_refresh_margin: Duration,
    /// Seed of the jitter RNG; `None` seeds from the OS. Tests set it to replay the same delays.
    pub rng_seed: Option<u64>,
}

impl ClientConfig {
    /// DingTalk's production hosts.
    pub const DEFAULT_BASE_URL: &'static str = "https://oapi.dingtalk.com";
    /// DingTalk's new-API host.
    pub const DEFAULT_API_BASE_URL: &'static str = "https://api.dingtalk.com";

    /// A configuration for production DingTalk with the documented defaults.
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> Self {
        Self {
            base_url: Self::DEFAULT_BASE_URL.to_owned(),
            api_base_url: Self::DEFAULT_API_BASE_URL.to_owned(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            token_endpoint: TokenEndpoint::Legacy,
            qps_per_api: 20,
            rate_window: Duration::from_millis(1010),
            max_retries: 5,
            backoff: Backoff::default(),
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(3),
            token_refresh_margin: Duration::from_secs(300),
            rng_seed: None,
        }
    }

    /// The same configuration pointed at another host for both APIs (a simulator, a proxy).
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        let base_url = base_url.into();
        self.api_base_url.clone_from(&base_url);
        self.base_url = base_url;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_secret() {
        let cfg = ClientConfig::new("dingid", "very-secret-value");
        let printed = format!("{cfg:?}");
        assert!(printed.contains("dingid"));
        assert!(!printed.contains("very-secret-value"), "{printed}");
    }

    #[test]
    fn with_base_url_moves_both_hosts() {
        let cfg = ClientConfig::new("a", "b").with_base_url("http://127.0.0.1:9");
        assert_eq!(cfg.base_url, "http://127.0.0.1:9");
        assert_eq!(cfg.api_base_url, "http://127.0.0.1:9");
    }
}
