//! The client core: one HTTP exchange (`attempt`), wrapped by the token (fetch, single-flight
//! refresh, replay once on 40014/42001) and by the retry loop (backoff with jitter on retryable
//! failures). Every attempt holds a permit of the rate budget until its answer is read, so
//! retries and token fetches count against DingTalk's limit like any other call.
//!
//! Typed endpoint methods live in `endpoints`; this file knows only "an API path, a JSON body,
//! an answer with an `errcode`".

use std::{
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use dingtalk_proto::{
    ApiStatus, HasStatus, Secret, TopResponse,
    token::{GetTokenResponse, NewApiError, OAuthTokenRequest, OAuthTokenResponse},
};
use rand::{SeedableRng, rngs::StdRng};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    ClientConfig, ClientError, ClientStats, RateBudget, SlidingWindowBudget, TokenEndpoint,
    stats::StatsRecorder, token::TokenCache,
};

/// The legacy token path.
pub(crate) const GETTOKEN: &str = "/gettoken";
/// The new token path.
pub(crate) const OAUTH_TOKEN: &str = "/v1.0/oauth2/accessToken";

/// A DingTalk API client. Cheap to clone (one `Arc`); clones share the token, the rate budget,
/// the jitter RNG and the counters, so give every task of the process a clone of one client.
#[derive(Debug, Clone)]
pub struct DingTalkClient {
    inner: Arc<Inner>,
}

/// The shared state behind every clone.
#[derive(Debug)]
struct Inner {
    /// Where and who we are, and the retry/limit knobs.
    config: ClientConfig,
    /// The connection pool.
    http: reqwest::Client,
    /// The one access token of this process.
    tokens: TokenCache,
    /// Permission to make a call, per API path.
    budget: Arc<dyn RateBudget>,
    /// Jitter for retry delays; seeded from the config so tests can replay a schedule.
    rng: Mutex<StdRng>,
    /// Counters per endpoint.
    stats: StatsRecorder,
}

/// How an attempt sends its parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Verb<'a> {
    /// `GET` with the parameters in the query only.
    Get,
    /// `POST` with a JSON body.
    Post(&'a [u8]),
}

impl DingTalkClient {
    /// A client with the in-process sliding-window budget of `config.qps_per_api`.
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        let budget = Arc::new(SlidingWindowBudget::new(
            config.qps_per_api,
            config.rate_window,
        ));
        Self::with_budget(config, budget)
    }

    /// A client drawing on a budget shared with others (e.g. across service instances).
    pub fn with_budget(
        config: ClientConfig,
        budget: Arc<dyn RateBudget>,
    ) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("dingsync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Build(e.without_url()))?;
        let rng = match config.rng_seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_entropy(),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                tokens: TokenCache::new(config.token_refresh_margin),
                config,
                http,
                budget,
                rng: Mutex::new(rng),
                stats: StatsRecorder::default(),
            }),
        })
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// A snapshot of the per-endpoint counters.
    pub fn stats(&self) -> ClientStats {
        self.inner.stats.snapshot()
    }

    /// Makes sure a valid token is cached (fetching one if needed); useful as a credentials
    /// check at start-up.
    pub async fn ensure_token(&self) -> Result<(), ClientError> {
        self.token().await.map(drop)
    }

    /// POSTs `body` as JSON to `api` with the token, and decodes the answer once its
    /// `errcode` is 0.
    pub(crate) async fn call<Req, Resp>(
        &self,
        api: &'static str,
        body: &Req,
    ) -> Result<Resp, ClientError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned + HasStatus,
    {
        let body =
            serde_json::to_vec(body).map_err(|source| ClientError::Encode { api, source })?;
        self.retrying(api, || self.authed_attempt(api, Verb::Post(&body)))
            .await
    }

    /// GETs `api` with the token in the query.
    pub(crate) async fn call_get<Resp>(&self, api: &'static str) -> Result<Resp, ClientError>
    where
        Resp: DeserializeOwned + HasStatus,
    {
        self.retrying(api, || self.authed_attempt(api, Verb::Get))
            .await
    }

    /// Like [`Self::call`] for `/topapi` answers, returning the `result` payload.
    pub(crate) async fn call_result<Req, T>(
        &self,
        api: &'static str,
        body: &Req,
    ) -> Result<T, ClientError>
    where
        Req: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        let resp: TopResponse<T> = self.call(api, body).await?;
        required(api, resp.result, "result")
    }

    /// One attempt with the cached token; replayed once with a fresh token if DingTalk says
    /// the token is invalid or expired.
    async fn authed_attempt<Resp>(
        &self,
        api: &'static str,
        verb: Verb<'_>,
    ) -> Result<Resp, ClientError>
    where
        Resp: DeserializeOwned + HasStatus,
    {
        let token = self.token().await?;
        let base = &self.inner.config.base_url;
        match self
            .oapi_attempt(api, base, verb, &[("access_token", token.expose())])
            .await
        {
            Err(err) if err.is_token_invalid() => {
                self.inner.stats.error(api, &err);
                self.inner.stats.token_replay(api);
                tracing::info!(api, error = %err, "access token rejected; refreshing and replaying once");
                self.inner.tokens.invalidate(&token);
                let token = self.token().await?;
                self.oapi_attempt(api, base, verb, &[("access_token", token.expose())])
                    .await
            }
            other => other,
        }
    }

    /// The cached token, fetched (once for all concurrent callers) when missing or due.
    async fn token(&self) -> Result<Secret, ClientError> {
        self.inner
            .tokens
            .get(|| async {
                let fetched = self.fetch_token().await?;
                self.inner.stats.token_fetch();
                Ok(fetched)
            })
            .await
    }

    /// Fetches a new token and its lifetime from the configured endpoint, with retries.
    async fn fetch_token(&self) -> Result<(Secret, Duration), ClientError> {
        let cfg = &self.inner.config;
        match cfg.token_endpoint {
            TokenEndpoint::Legacy => {
                let query = [
                    ("appkey", cfg.client_id.as_str()),
                    ("appsecret", cfg.client_secret.expose()),
                ];
                let resp: GetTokenResponse = self
                    .retrying(GETTOKEN, || {
                        self.oapi_attempt(GETTOKEN, &cfg.base_url, Verb::Get, &query)
                    })
                    .await
                    .map_err(credentials_error)?;
                let token = required(GETTOKEN, resp.access_token, "access_token")?;
                let ttl = required(GETTOKEN, resp.expires_in, "expires_in")?;
                Ok((token, Duration::from_secs(u64::try_from(ttl).unwrap_or(0))))
            }
            TokenEndpoint::OAuth2 => {
                let body = OAuthTokenRequest {
                    app_key: cfg.client_id.clone(),
                    app_secret: cfg.client_secret.clone(),
                };
                let body = serde_json::to_vec(&body).map_err(|source| ClientError::Encode {
                    api: OAUTH_TOKEN,
                    source,
                })?;
                let resp = self
                    .retrying(OAUTH_TOKEN, || self.oauth_attempt(&body))
                    .await?;
                Ok((
                    resp.access_token,
                    Duration::from_secs(u64::try_from(resp.expire_in).unwrap_or(0)),
                ))
            }
        }
    }

    /// Runs `op` until it succeeds, fails for good, or the retries run out.
    async fn retrying<T, F, Fut>(&self, api: &'static str, mut op: F) -> Result<T, ClientError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let mut retry = 0;
        let mut outcome_unknown = false;
        loop {
            let err = match op().await {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            if err.api().is_some_and(|failed| failed != api) {
                // The token fetch failed; it has its own retry loop and counters, so retrying
                // here would only multiply its attempts.
                return Err(err);
            }
            self.inner.stats.error(api, &err);
            if !err.is_retryable() || retry >= self.inner.config.max_retries {
                tracing::debug!(api, retries = retry, error = %err, "DingTalk call failed");
                return Err(if outcome_unknown {
                    err.after_unknown_outcome()
                } else {
                    err
                });
            }
            outcome_unknown |= err.outcome_unknown();
            let delay = {
                let mut rng = self.inner.rng.lock().unwrap_or_else(|p| p.into_inner());
                self.inner
                    .config
                    .backoff
                    .delay(retry, err.is_throttle(), &mut *rng)
            };
            tracing::debug!(api, retry, ?delay, error = %err, "retrying DingTalk call");
            self.inner.stats.retry(api);
            tokio::time::sleep(delay).await;
            retry += 1;
        }
    }

    /// One exchange with a legacy (oapi) endpoint: decode the status, then the answer.
    async fn oapi_attempt<Resp>(
        &self,
        api: &'static str,
        base: &str,
        verb: Verb<'_>,
        query: &[(&str, &str)],
    ) -> Result<Resp, ClientError>
    where
        Resp: DeserializeOwned + HasStatus,
    {
        let (status, bytes) = self.attempt(api, base, verb, query).await?;
        if !status.is_success() {
            return Err(ClientError::Http {
                api,
                status: status.as_u16(),
            });
        }
        let head: ApiStatus =
            serde_json::from_slice(&bytes).map_err(|source| ClientError::Decode { api, source })?;
        if !head.is_ok() {
            return Err(ClientError::from_status(api, &head));
        }
        serde_json::from_slice(&bytes).map_err(|source| ClientError::Decode { api, source })
    }

    /// One exchange with `POST /v1.0/oauth2/accessToken`, whose errors are HTTP statuses with a
    /// `{code, message}` body.
    async fn oauth_attempt(&self, body: &[u8]) -> Result<OAuthTokenResponse, ClientError> {
        let api = OAUTH_TOKEN;
        let base = &self.inner.config.api_base_url;
        let (status, bytes) = self.attempt(api, base, Verb::Post(body), &[]).await?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|source| ClientError::Decode { api, source });
        }
        match serde_json::from_slice::<NewApiError>(&bytes) {
            Ok(err) if status.is_client_error() && status.as_u16() != 429 => {
                Err(ClientError::Auth {
                    api,
                    code: err.code,
                    message: err.message,
                })
            }
            _ => Err(ClientError::Http {
                api,
                status: status.as_u16(),
            }),
        }
    }

    /// One HTTP exchange: take a budget permit, send, read the whole body.
    async fn attempt(
        &self,
        api: &'static str,
        base: &str,
        verb: Verb<'_>,
        query: &[(&str, &str)],
    ) -> Result<(reqwest::StatusCode, Vec<u8>), ClientError> {
        // Held until the answer is read: the budget counts the window from there.
        let _permit = self.inner.budget.acquire(api).await;
        self.inner.stats.call(api);
        let url = format!("{}{api}", base.trim_end_matches('/'));
        let request = match verb {
            Verb::Get => self.inner.http.get(url),
            Verb::Post(body) => self
                .inner
                .http
                .post(url)
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_vec()),
        };
        let timeout = self.inner.config.request_timeout;
        let response = request
            .header(ACCEPT, "application/json")
            .query(query)
            .send()
            .await
            .map_err(|e| ClientError::from_reqwest(api, timeout, e))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::from_reqwest(api, timeout, e))?;
        if let Some(denied) = crate::error::gateway_deny(api, &bytes) {
            return Err(denied);
        }
        Ok((status, bytes.to_vec()))
    }
}

/// Turns the token endpoint's "bad credentials" codes into [`ClientError::Auth`].
fn credentials_error(err: ClientError) -> ClientError {
    match err {
        ClientError::Api {
            api,
            errcode,
            errmsg,
            ..
        } if matches!(
            errcode,
            dingtalk_proto::ErrCode::INVALID_APP_CREDENTIALS
                | dingtalk_proto::ErrCode::INVALID_CORP_CREDENTIALS
                | dingtalk_proto::ErrCode::INVALID_CREDENTIAL
                | dingtalk_proto::ErrCode::ILLEGAL_PARAMETER
        ) =>
        {
            ClientError::Auth {
                api,
                code: errcode.to_string(),
                message: errmsg,
            }
        }
        other => other,
    }
}

/// Unwraps a field a successful answer must carry, or reports the answer as undecodable.
pub(crate) fn required<T>(
    api: &'static str,
    value: Option<T>,
    field: &'static str,
) -> Result<T, ClientError> {
    value.ok_or_else(|| ClientError::Decode {
        api,
        source: <serde_json::Error as serde::de::Error>::missing_field(field),
    })
}
