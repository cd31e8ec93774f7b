//! Event pushes: DingTalk's HTTP callback, from the sending side.
//!
//! A background pusher walks the event log (`crate::events`) with its own cursor. For each new
//! event whose tag the current subscription wants, it builds the plaintext in the configured
//! dialect, encrypts and signs it with `callback-crypto`, and POSTs
//! `url?signature&timestamp&nonce` (or `msg_signature`) with body `{"encrypt": …}`.
//!
//! A push counts as acknowledged only if the receiver answers HTTP 200 with the JSON
//! `{msg_signature, timeStamp, nonce, encrypt}`, the signature verifies with the subscription's
//! token, and `encrypt` decrypts (with the subscription's owner key) to exactly `success`.
//! Anything else — network error, timeout, other status, bad JSON, bad signature, other text —
//! is a failure. A failed push is retried after 10 s and again 30 s later (DingTalk's documented
//! schedule; a run-time `retry_scale` shrinks it for tests), then lands in the failed list that
//! `get_call_back_failed_result` serves.
//!
//! Events made while nothing is subscribed are not pushed later (DingTalk does not queue for
//! subscribers that did not exist). Without reordering, first attempts go out one at a time in
//! log order; retries run on their own so one failing event does not hold back the rest.
//! On request the pusher also duplicates pushes (same `eventId`), delays them, or reorders them
//! (each first attempt waits a random time within a window, so later events overtake earlier
//! ones). Every attempt is recorded with its outcome for `/_sim/pushes`.
//!
//! Choices where DingTalk's behaviour is UNCONFIRMED (the stricter plausible one): a push or
//! `check_url` must be answered within 1500 ms (the shorter of the two documented deadlines,
//! settable); the failed list is filled as soon as the last retry fails rather than 3–5 minutes
//! later; a failed `register_call_back`/`update_call_back` URL check answers 71009.

pub(crate) mod admin;
pub(crate) mod api;
mod payload;

use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use callback_crypto::CallbackCrypto;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use self::payload::Dialect;
use crate::events::{EventRecord, Origin};
use crate::server::{Shared, lock, wall_ms};

/// Every contacts event tag the simulator can push.
pub const ALL_TAGS: [&str; 10] = [
    "user_add_org",
    "user_modify_org",
    "user_leave_org",
    "org_dept_create",
    "org_dept_modify",
    "org_dept_remove",
    "label_user_change",
    "label_conf_add",
    "label_conf_del",
    "label_conf_modify",
];

/// How a subscription was made; it decides the owner key of the encryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `call_back/register_call_back`; owner key = CorpId.
    Registered,
    /// Developer-console HTTP push (`/_sim/callback`); owner key = Client ID.
    Console,
}

/// Where pushes go and how they are protected.
pub struct Subscription {
    pub kind: Kind,
    pub url: String,
    /// Tags to push; the others are dropped.
    pub tags: BTreeSet<String>,
    /// The signature token; secret, kept only to answer `get_call_back`.
    pub token: String,
    /// The EncodingAESKey; secret, kept only to answer `get_call_back`.
    pub aes_key: String,
    /// Signs, encrypts and checks replies.
    pub crypto: CallbackCrypto,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("tags", &self.tags)
            .field("token", &"<redacted>")
            .field("aes_key", &"<redacted>")
            .finish()
    }
}

impl Subscription {
    /// The public view served by `/_sim/callback` (no secrets).
    fn public_json(&self) -> Value {
        json!({"kind": self.kind, "url": self.url, "call_back_tag": self.tags})
    }
}

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
    fn apply(&mut self, p: &PushSettingsPatch) -> Result<(), String> {
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

/// One delivery attempt, for `/_sim/pushes`.
#[derive(Debug, Clone, Serialize)]
pub struct PushRecord {
    /// Identifies the delivery (all attempts of one push share it).
    pub push_id: u64,
    /// The event-log id, or `None` for a `check_url`.
    pub event_id: Option<u64>,
    pub event_type: String,
    /// 1 for the first attempt, 2 and 3 for the retries.
    pub attempt: u32,
    /// True for the extra copy sent by the duplicate setting.
    pub duplicate: bool,
    /// When the attempt was sent (Unix ms).
    pub at_ms: i64,
    /// Whether the receiver acknowledged it correctly.
    pub acked: bool,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// The decrypted body that was sent.
    pub plaintext: Value,
}

/// The pusher's mutable state.
#[derive(Debug)]
struct HubState {
    /// The one callback subscription of the app, if any.
    subscription: Option<Arc<Subscription>>,
    settings: PushSettings,
    /// Id of the last event the pusher has taken from the log.
    cursor: u64,
    /// Deliveries started but not yet final (acked or in the failed list).
    in_flight: usize,
    /// Next `push_id`.
    next_push_id: u64,
    /// Every attempt so far.
    records: Vec<PushRecord>,
    /// Pushes that failed every retry, oldest first, until read.
    failed: VecDeque<Value>,
    /// Seeds per-delivery RNGs (nonces, AES prefixes) so runs repeat; event ids come from
    /// `events::event_id`, shared with Stream.
    rng: StdRng,
}

/// The push machinery shared by the server, the admin routes and the background tasks.
#[derive(Debug)]
pub(crate) struct Hub {
    state: Mutex<HubState>,
    /// Wakes the pusher when events are recorded.
    wake: Notify,
    /// Bumped on every progress step, so waiters can re-check "idle".
    progress: watch::Sender<u64>,
    /// Every pusher and delivery task, so shutdown can wait for them.
    tracker: TaskTracker,
    /// Cancels every task on shutdown.
    stop: CancellationToken,
    /// The HTTP client pushes go out with.
    http: reqwest::Client,
}

impl Hub {
    pub(crate) fn new(seed: u64, stop: CancellationToken) -> Result<Self, crate::error::SimError> {
        let (progress, _) = watch::channel(0);
        // Pushes go straight to the subscribed URL: a proxy from the environment would turn
        // a loopback receiver into someone else's problem.
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(crate::error::SimError::HttpClient)?;
        Ok(Self {
            state: Mutex::new(HubState {
                subscription: None,
                settings: PushSettings::default(),
                cursor: 0,
                in_flight: 0,
                next_push_id: 1,
                records: Vec::new(),
                failed: VecDeque::new(),
                rng: StdRng::seed_from_u64(seed ^ 0xCA11_BAC4),
            }),
            wake: Notify::new(),
            progress,
            tracker: TaskTracker::new(),
            stop,
            http,
        })
    }

    fn bump(&self) {
        self.progress.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Closes the tracker and waits for every push task to end (they stop when cancelled).
    pub(crate) async fn wait_stopped(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// Tells the pusher that events were recorded.
pub(crate) fn wake(shared: &Shared) {
    shared.hub.wake.notify_one();
    shared.stream.wake();
}

/// Starts the background pusher.
pub(crate) fn spawn_pusher(shared: Arc<Shared>) {
    let tracker = shared.hub.tracker.clone();
    tracker.spawn(async move {
        loop {
            tokio::select! {
                () = shared.hub.stop.cancelled() => break,
                () = shared.hub.wake.notified() => {}
            }
            drain_log(&shared).await;
        }
    });
}

/// Waits until every recorded event has been taken and every delivery is final, or `timeout`
/// passes; returns whether it became idle.
pub(crate) async fn wait_idle(shared: &Shared, timeout: Duration) -> bool {
    let mut progress = shared.hub.progress.subscribe();
    let check = || {
        let logged = lock(&shared.events).entries.len() as u64;
        let state = lock(&shared.hub.state);
        state.cursor >= logged && state.in_flight == 0
    };
    let waited = tokio::time::timeout(timeout, async {
        loop {
            progress.borrow_and_update();
            if check() {
                return;
            }
            if progress.changed().await.is_err() {
                return;
            }
        }
    })
    .await;
    waited.is_ok() && check()
}

/// One delivery to make.
struct Job {
    push_id: u64,
    event: EventRecord,
    duplicate: bool,
    plaintext: Value,
    rng: StdRng,
    /// Wait before the first attempt (delay + reorder jitter).
    first_wait: Duration,
}

/// Takes every new event from the log and delivers it.
async fn drain_log(shared: &Arc<Shared>) {
    loop {
        let batch: Vec<EventRecord> = {
            let cursor = lock(&shared.hub.state).cursor;
            lock(&shared.events).since(cursor).to_vec()
        };
        let Some(last) = batch.last().map(|e| e.id) else {
            return;
        };
        let operator = admin_operator(shared);
        let (subscription, settings, jobs) = {
            let mut state = lock(&shared.hub.state);
            state.cursor = last;
            // With Stream-only delivery the pusher still moves its cursor, so switching back
            // to HTTP does not replay what Stream already carried.
            let subscription = state
                .subscription
                .clone()
                .filter(|_| shared.stream.delivers_http());
            let settings = state.settings.clone();
            let mut jobs = Vec::new();
            if let Some(sub) = &subscription {
                for event in batch {
                    if !sub.tags.contains(event.change.event_type()) {
                        continue;
                    }
                    let copies = if state.rng.gen_bool(settings.duplicate_rate.clamp(0.0, 1.0)) {
                        2
                    } else {
                        1
                    };
                    let event_id = crate::events::event_id(shared.config.seed, event.id);
                    let operator = (event.origin == Origin::Admin)
                        .then_some(operator.as_deref())
                        .flatten();
                    let plaintext = payload::plaintext(
                        &event.change,
                        &payload::Meta {
                            corp_id: &shared.config.corp_id,
                            time_ms: event.time_ms,
                            event_id: &event_id,
                            operator,
                        },
                        settings.dialect,
                    );
                    for copy in 0..copies {
                        let jitter = if settings.reorder_window_ms > 0 {
                            state.rng.gen_range(0..settings.reorder_window_ms)
                        } else {
                            0
                        };
                        let push_id = state.next_push_id;
                        state.next_push_id += 1;
                        state.in_flight += 1;
                        let seed = state.rng.r#gen();
                        jobs.push(Job {
                            push_id,
                            event: event.clone(),
                            duplicate: copy > 0,
                            plaintext: plaintext.clone(),
                            rng: StdRng::seed_from_u64(seed),
                            first_wait: Duration::from_millis(settings.delay_ms + jitter),
                        });
                    }
                }
            }
            (subscription, settings, jobs)
        };
        shared.hub.bump();
        let Some(subscription) = subscription else {
            continue;
        };
        for job in jobs {
            if settings.reorder_window_ms > 0 {
                let shared = Arc::clone(shared);
                let sub = Arc::clone(&subscription);
                shared.hub.tracker.clone().spawn(async move {
                    deliver_with_retries(&shared, &sub, job).await;
                });
            } else {
                first_then_retry_in_background(shared, &subscription, job).await;
            }
        }
    }
}

/// The userid shown as `OptStaffId` for administrator changes: the org's first admin.
fn admin_operator(shared: &Shared) -> Option<String> {
    let org = lock(&shared.org);
    org.users
        .values()
        .find(|u| u.admin)
        .map(|u| u.userid.clone())
}

/// Sends the first attempt now (in order), and leaves retries to a background task.
async fn first_then_retry_in_background(
    shared: &Arc<Shared>,
    sub: &Arc<Subscription>,
    mut job: Job,
) {
    if !sleep_or_stop(shared, job.first_wait).await {
        return;
    }
    if attempt(shared, sub, &mut job, 1).await {
        finish(shared, None);
        return;
    }
    let shared = Arc::clone(shared);
    let sub = Arc::clone(sub);
    shared.hub.tracker.clone().spawn(async move {
        retry(&shared, &sub, job).await;
    });
}

/// Sends every attempt of one delivery, with its waits.
async fn deliver_with_retries(shared: &Arc<Shared>, sub: &Arc<Subscription>, mut job: Job) {
    if !sleep_or_stop(shared, job.first_wait).await {
        return;
    }
    if attempt(shared, sub, &mut job, 1).await {
        finish(shared, None);
        return;
    }
    retry(shared, sub, job).await;
}

/// The two retries (after 10 s, then 30 s, scaled), then the failed list.
async fn retry(shared: &Arc<Shared>, sub: &Arc<Subscription>, mut job: Job) {
    for (number, base) in [(2u32, 10.0f64), (3, 30.0)] {
        let scale = lock(&shared.hub.state).settings.retry_scale;
        if !sleep_or_stop(shared, Duration::from_secs_f64(base * scale)).await {
            return;
        }
        if attempt(shared, sub, &mut job, number).await {
            finish(shared, None);
            return;
        }
    }
    let entry = payload::failed_entry(&job.event.change, &shared.config.corp_id, job.event.time_ms);
    finish(shared, Some(entry));
}

/// Sleeps unless the simulator stops first; returns false when stopping.
async fn sleep_or_stop(shared: &Shared, wait: Duration) -> bool {
    if wait.is_zero() {
        return !shared.hub.stop.is_cancelled();
    }
    tokio::select! {
        () = shared.hub.stop.cancelled() => false,
        () = tokio::time::sleep(wait) => true,
    }
}

/// Marks one delivery final (putting it in the failed list when it failed).
fn finish(shared: &Shared, failed: Option<Value>) {
    {
        let mut state = lock(&shared.hub.state);
        state.in_flight = state.in_flight.saturating_sub(1);
        if let Some(entry) = failed {
            state.failed.push_back(entry);
        }
    }
    shared.hub.bump();
}

/// One HTTP attempt; records it and returns whether it was acknowledged.
async fn attempt(shared: &Shared, sub: &Subscription, job: &mut Job, number: u32) -> bool {
    let (timeout, msg_signature) = {
        let state = lock(&shared.hub.state);
        (
            Duration::from_millis(state.settings.timeout_ms),
            state.settings.msg_signature,
        )
    };
    let at_ms = wall_ms();
    let result = send(
        &shared.hub.http,
        sub,
        &job.plaintext.to_string(),
        at_ms,
        msg_signature,
        timeout,
        &mut job.rng,
    )
    .await;
    let record = PushRecord {
        push_id: job.push_id,
        event_id: Some(job.event.id),
        event_type: job.event.change.event_type().to_owned(),
        attempt: number,
        duplicate: job.duplicate,
        at_ms,
        acked: result.is_ok(),
        error: result.as_ref().err().cloned(),
        plaintext: job.plaintext.clone(),
    };
    lock(&shared.hub.state).records.push(record);
    shared.hub.bump();
    result.is_ok()
}

/// POSTs one encrypted message and checks the reply; `Err` says why it does not count.
async fn send(
    http: &reqwest::Client,
    sub: &Subscription,
    message: &str,
    now_ms: i64,
    msg_signature: bool,
    timeout: Duration,
    rng: &mut StdRng,
) -> Result<(), String> {
    let encrypt = sub
        .crypto
        .encrypt(message, rng)
        .map_err(|e| format!("encrypting failed: {e}"))?;
    let timestamp = now_ms.to_string();
    let nonce: String = (0..16)
        .map(|_| char::from(rng.sample(rand::distributions::Alphanumeric)))
        .collect();
    let signature = sub.crypto.signature(&timestamp, &nonce, &encrypt);
    let signature_name = if msg_signature {
        "msg_signature"
    } else {
        "signature"
    };
    let response = http
        .post(&sub.url)
        .query(&[
            (signature_name, signature.as_str()),
            ("timestamp", &timestamp),
            ("nonce", &nonce),
        ])
        .json(&json!({"encrypt": encrypt}))
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP status {status}"));
    }
    let reply: Value = response
        .json()
        .await
        .map_err(|e| format!("reply is not JSON: {e}"))?;
    let field = |name: &str| reply.get(name).and_then(Value::as_str).map(str::to_owned);
    let (Some(sig), Some(ts), Some(nonce), Some(enc)) = (
        field("msg_signature"),
        field("timeStamp"),
        field("nonce"),
        field("encrypt"),
    ) else {
        return Err("reply lacks msg_signature, timeStamp, nonce or encrypt".to_owned());
    };
    sub.crypto
        .verify_signature(&sig, &ts, &nonce, &enc)
        .map_err(|e| format!("reply signature: {e}"))?;
    let text = sub
        .crypto
        .decrypt(&enc)
        .map_err(|e| format!("reply decrypt: {e}"))?;
    if text == "success" {
        Ok(())
    } else {
        Err(format!("reply text is {text:?}, not \"success\""))
    }
}

/// Sends `{"EventType":"check_url"}` to a subscription and records it; `Err` says why the URL
/// is not accepted.
pub(crate) async fn check_url(shared: &Shared, sub: &Subscription) -> Result<(), String> {
    let (timeout, msg_signature, seed, push_id) = {
        let mut state = lock(&shared.hub.state);
        let push_id = state.next_push_id;
        state.next_push_id += 1;
        let seed: u64 = state.rng.r#gen();
        (
            Duration::from_millis(state.settings.timeout_ms),
            state.settings.msg_signature,
            seed,
            push_id,
        )
    };
    let mut rng = StdRng::seed_from_u64(seed);
    let plaintext = json!({"EventType": "check_url"});
    let at_ms = wall_ms();
    let result = send(
        &shared.hub.http,
        sub,
        &plaintext.to_string(),
        at_ms,
        msg_signature,
        timeout,
        &mut rng,
    )
    .await;
    lock(&shared.hub.state).records.push(PushRecord {
        push_id,
        event_id: None,
        event_type: "check_url".to_owned(),
        attempt: 1,
        duplicate: false,
        at_ms,
        acked: result.is_ok(),
        error: result.as_ref().err().cloned(),
        plaintext,
    });
    shared.hub.bump();
    result
}

/// Validates subscription inputs and builds the subscription.
pub(crate) fn build_subscription(
    kind: Kind,
    url: &str,
    tags: Vec<String>,
    token: &str,
    aes_key: &str,
    owner_key: &str,
) -> Result<Subscription, crate::error::Rejection> {
    use crate::error::Rejection;
    let parsed = reqwest::Url::parse(url).map_err(|_| Rejection::param("url"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Rejection::param("url"));
    }
    // Token: letters and digits, 6–32 characters (satisfies both documented ranges).
    if !(6..=32).contains(&token.len()) || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Rejection::param("token"));
    }
    if aes_key.len() != 43 || !aes_key.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Rejection::new(900004, "不合法的aes key"));
    }
    let tags: BTreeSet<String> = tags.into_iter().collect();
    if tags.is_empty() || tags.iter().any(|t| !ALL_TAGS.contains(&t.as_str())) {
        return Err(Rejection::param("call_back_tag"));
    }
    let crypto = CallbackCrypto::new(token, aes_key, owner_key)
        .map_err(|e| Rejection::new(i64::from(e.code()), e.reason()))?;
    Ok(Subscription {
        kind,
        url: url.to_owned(),
        tags,
        token: token.to_owned(),
        aes_key: aes_key.to_owned(),
        crypto,
    })
}

/// Takes up to 200 entries from the failed list; returns them and whether more remain.
pub(crate) fn take_failed(shared: &Shared) -> (Vec<Value>, bool) {
    let mut state = lock(&shared.hub.state);
    let n = state.failed.len().min(200);
    let taken: Vec<Value> = state.failed.drain(..n).collect();
    (taken, !state.failed.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "1234567890123456789012345678901234567890123";

    #[test]
    fn subscription_inputs_are_validated_and_secrets_redacted() {
        let ok = build_subscription(
            Kind::Console,
            "http://127.0.0.1:9/cb",
            vec!["user_add_org".into()],
            "tokenabc",
            KEY,
            "owner",
        )
        .expect("valid");
        let text = format!("{ok:?}");
        assert!(!text.contains("tokenabc") && !text.contains(KEY));
        assert!(ok.tags.contains("user_add_org"));
        assert!(!ok.tags.contains("org_dept_create"));
        let code =
            |r: Result<Subscription, crate::error::Rejection>| r.map(|_| ()).map_err(|e| e.code);
        assert_eq!(
            code(build_subscription(
                Kind::Console,
                "nope",
                vec!["user_add_org".into()],
                "tokenabc",
                KEY,
                "o"
            )),
            Err(40035)
        );
        assert_eq!(
            code(build_subscription(
                Kind::Console,
                "http://x/",
                vec!["user_add_org".into()],
                "tok",
                KEY,
                "o"
            )),
            Err(40035)
        );
        assert_eq!(
            code(build_subscription(
                Kind::Console,
                "http://x/",
                vec!["user_add_org".into()],
                "tokenabc",
                "short",
                "o"
            )),
            Err(900004)
        );
        assert_eq!(
            code(build_subscription(
                Kind::Console,
                "http://x/",
                vec!["bogus".into()],
                "tokenabc",
                KEY,
                "o"
            )),
            Err(40035)
        );
    }

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
