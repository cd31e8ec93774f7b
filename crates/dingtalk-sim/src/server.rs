//! The HTTP face of the simulator: DingTalk's own paths plus the `/_sim` admin routes.
//!
//! Every DingTalk call takes the same trip a real one does, in this order: find the endpoint
//! (unknown topapi method → 22, unknown path → 404 body), read the parameters from query and
//! body, check the access token, apply the per-API rate limit (90018), maybe inject a fault, run
//! the operation under the org lock, record the resulting changes as events, and hold a
//! slow-faulted answer back. A layer adds `latency_ms` to every DingTalk answer, errors included. Locks are never held across an
//! `.await`.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::rngs::StdRng;
use serde_json::{Map, Value, json};

use crate::api::{self, Family, Reply};
use crate::config::{Settings, SimConfig};
use crate::error::Rejection;
use crate::events::{EventLog, Origin};
use crate::gateway::{self, CallOutcome, CallStats, Fault, RateLimiter, TokenCheck, TokenStore};
use crate::org::Org;
use crate::params::Params;

/// State shared by every request.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The configuration the simulator started with (credentials, corp id, seed).
    pub config: SimConfig,
    /// The org; one lock, because DingTalk's writes are atomic per call.
    pub org: Mutex<Org>,
    /// Gateway state, separate from the org so throttled calls never wait for the org lock.
    pub gate: Mutex<Gate>,
    /// Every change, in order, as contacts events.
    pub events: Mutex<EventLog>,
    /// The callback subscription and the pusher's state.
    pub hub: crate::push::Hub,
    /// Stream mode: tickets, connections and the event dispatcher.
    pub stream: crate::stream::StreamHub,
}

/// The gateway's mutable state.
#[derive(Debug)]
pub(crate) struct Gate {
    /// Run-time settings (`/_sim/settings`).
    pub settings: Settings,
    /// The app's access token.
    pub tokens: TokenStore,
    /// Per-path sliding windows.
    pub limiter: RateLimiter,
    /// Per-path counts for `/_sim/calls`.
    pub stats: CallStats,
    /// Source of tokens, request ids and fault draws (seeded, so runs repeat).
    pub rng: StdRng,
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it (the simulator's state
/// stays consistent because every operation validates before it mutates).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Milliseconds since the Unix epoch, for event timestamps.
pub(crate) fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The complete router.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    // Every DingTalk answer (success, error, throttle or fault) waits `latency_ms`; the admin
    // routes do not.
    let dingtalk = Router::new()
        .route("/gettoken", get(get_token))
        .route("/v1.0/oauth2/accessToken", post(new_token))
        .route(
            "/v1.0/gateway/connections/open",
            post(crate::stream::routes::open),
        )
        .fallback(dingtalk_call)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            add_latency,
        ));
    Router::new()
        .nest(
            "/_sim",
            crate::admin::routes()
                .merge(crate::push::admin::routes())
                .merge(crate::stream::admin::routes()),
        )
        .route("/connect", get(crate::stream::routes::connect))
        .merge(dingtalk)
        .with_state(shared)
}

/// Delays the answer by the current `latency_ms`.
async fn add_latency(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let latency = Duration::from_millis(lock(&shared.gate).settings.latency_ms);
    let response = next.run(request).await;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    response
}

/// The gateway's verdict before the operation runs.
struct Pass {
    fault: Option<Fault>,
    /// How long a slow fault holds the answer.
    slow: Duration,
}

/// Applies the rate limit (counting a refusal) and draws a fault; `None` means throttled.
fn gate_pass(shared: &Shared, path: &str, now: Instant) -> Option<Pass> {
    let mut gate = lock(&shared.gate);
    let qps = gate.settings.qps;
    if !gate.limiter.admit(path, now, qps) {
        gate.stats.record(path, CallOutcome::Throttled);
        return None;
    }
    let rate = gate.settings.fault_rate;
    let fault = gateway::draw_fault(&mut gate.rng, rate);
    Some(Pass {
        fault,
        slow: Duration::from_millis(gate.settings.slow_answer_ms),
    })
}

fn new_request_id(shared: &Shared) -> String {
    gateway::request_id(&mut lock(&shared.gate).rng)
}

fn record(shared: &Shared, path: &str, outcome: CallOutcome) {
    lock(&shared.gate).stats.record(path, outcome);
}

/// A JSON answer with DingTalk's content type for the family.
fn json_response(status: StatusCode, family: Family, body: Value) -> Response {
    let content_type = match family {
        Family::Top => "application/json;charset=UTF-8",
        Family::Legacy => "application/json",
    };
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
        .headers_mut()
        .insert(header::SERVER, HeaderValue::from_static("DingTalk/1.0.0"));
    response
}

fn bad_gateway() -> Response {
    let mut response = (
        StatusCode::BAD_GATEWAY,
        "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>",
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    response
}

/// An error body in the family's shape.
fn error_body(family: Family, code: i64, msg: &str, request_id: Option<String>) -> Value {
    let mut m = Map::new();
    m.insert("errcode".into(), json!(code));
    m.insert("errmsg".into(), json!(msg));
    if let (Family::Top, Some(id)) = (family, request_id) {
        m.insert("request_id".into(), json!(id));
    }
    Value::Object(m)
}

fn throttled(shared: &Shared, family: Family) -> Response {
    let id = new_request_id(shared);
    json_response(
        StatusCode::OK,
        family,
        error_body(family, 90018, gateway::THROTTLED_MSG, Some(id)),
    )
}

/// Holds a slow-faulted answer back past DingTalk's gateway timeout (the latency layer adds
/// `latency_ms` to every answer separately).
async fn delayed(pass: &Pass, response: Response) -> Response {
    if pass.fault == Some(Fault::Slow) && !pass.slow.is_zero() {
        tokio::time::sleep(pass.slow).await;
    }
    response
}

/// `GET /gettoken?appkey=&appsecret=` (also the older `corpid`/`corpsecret` pair).
async fn get_token(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    const PATH: &str = "/gettoken";
    let params = Params::parse(uri.query(), None, b"").unwrap_or_default();
    let Some(pass) = gate_pass(&shared, PATH, Instant::now()) else {
        return throttled(&shared, Family::Legacy);
    };
    let legacy = |code: i64, msg: &str| {
        json_response(
            StatusCode::OK,
            Family::Legacy,
            error_body(Family::Legacy, code, msg, None),
        )
    };
    let (response, outcome) = match pass.fault {
        Some(Fault::SystemBusy) => (legacy(-1, "系统繁忙"), CallOutcome::Faulted),
        Some(Fault::BadGateway) => (bad_gateway(), CallOutcome::Faulted),
        _ => {
            let config = &shared.config;
            let verdict = match (params.str("appkey"), params.str("corpid")) {
                (Some(key), _) => (key == config.client_id
                    && params.str("appsecret").as_deref() == Some(config.client_secret.as_str()))
                .then_some(())
                .ok_or((40096, "不合法的appKey或appSecret")),
                (None, Some(corp)) => (corp == config.corp_id
                    && params.str("corpsecret").as_deref() == Some(config.client_secret.as_str()))
                .then_some(())
                .ok_or((40089, "不合法的corpId或corpSecret")),
                (None, None) => Err((40035, "缺少参数 corpid or appkey")),
            };
            match verdict {
                Ok(()) => {
                    let mut gate = lock(&shared.gate);
                    let ttl = Duration::from_secs(gate.settings.token_ttl_secs);
                    let Gate { tokens, rng, .. } = &mut *gate;
                    let (token, ttl) = tokens.issue(Instant::now(), ttl, rng);
                    drop(gate);
                    let body = json!({"errcode": 0, "access_token": token, "errmsg": "ok", "expires_in": ttl.as_secs()});
                    (
                        json_response(StatusCode::OK, Family::Legacy, body),
                        CallOutcome::Ok,
                    )
                }
                Err((code, msg)) => (legacy(code, msg), CallOutcome::Error),
            }
        }
    };
    record(&shared, PATH, outcome);
    delayed(&pass, response).await
}

/// An error of the new API (`api.dingtalk.com`): HTTP status + `{requestid, code, message}`.
pub(crate) fn new_api_error(
    shared: &Shared,
    status: StatusCode,
    code: &str,
    message: &str,
) -> Response {
    let id = new_request_id(shared).to_uppercase();
    json_response(
        status,
        Family::Legacy,
        json!({"requestid": id, "code": code, "message": message}),
    )
}

/// `POST /v1.0/oauth2/accessToken` with JSON `{appKey, appSecret}`.
async fn new_token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    const PATH: &str = "/v1.0/oauth2/accessToken";
    let Some(pass) = gate_pass(&shared, PATH, Instant::now()) else {
        return new_api_error(
            &shared,
            StatusCode::FORBIDDEN,
            "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
            "应用调用该接口的QPS超过限制",
        );
    };
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/json"));
    let (response, outcome) = match pass.fault {
        Some(Fault::SystemBusy) => (
            new_api_error(
                &shared,
                StatusCode::INTERNAL_SERVER_ERROR,
                "unknownError",
                "未知错误",
            ),
            CallOutcome::Faulted,
        ),
        Some(Fault::BadGateway) => (bad_gateway(), CallOutcome::Faulted),
        _ if !is_json => (
            new_api_error(
                &shared,
                StatusCode::BAD_REQUEST,
                "MissingParameter",
                "body is mandatory",
            ),
            CallOutcome::Error,
        ),
        _ => {
            let parsed: Option<Value> = serde_json::from_slice(&body).ok();
            let field = |name: &str| {
                parsed
                    .as_ref()
                    .and_then(|v| v.get(name))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            match (field("appKey"), field("appSecret")) {
                (Some(key), Some(secret))
                    if key == shared.config.client_id && secret == shared.config.client_secret =>
                {
                    let mut gate = lock(&shared.gate);
                    let ttl = Duration::from_secs(gate.settings.token_ttl_secs);
                    let Gate { tokens, rng, .. } = &mut *gate;
                    let (token, ttl) = tokens.issue(Instant::now(), ttl, rng);
                    drop(gate);
                    (
                        json_response(
                            StatusCode::OK,
                            Family::Legacy,
                            json!({"accessToken": token, "expireIn": ttl.as_secs()}),
                        ),
                        CallOutcome::Ok,
                    )
                }
                (Some(_), Some(_)) => (
                    new_api_error(
                        &shared,
                        StatusCode::BAD_REQUEST,
                        "invalidClientIdOrSecret",
                        "无效的clientId或者clientSecret",
                    ),
                    CallOutcome::Error,
                ),
                _ => (
                    new_api_error(
                        &shared,
                        StatusCode::BAD_REQUEST,
                        "MissingParameter",
                        "缺少参数 appKey 或 appSecret",
                    ),
                    CallOutcome::Error,
                ),
            }
        }
    };
    record(&shared, PATH, outcome);
    delayed(&pass, response).await
}

/// Every other path: the DingTalk business endpoints.
async fn dingtalk_call(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let body = match axum::body::to_bytes(body, 4 * 1024 * 1024).await {
        Ok(bytes) => bytes,
        Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let is_top = path.starts_with("/topapi/");

    let route = api::route(&path);
    let callback_method = crate::push::api::method_of(&path);
    if route.is_none() && callback_method.is_none() {
        let (family, body_json) = if is_top {
            let method = api::top_method_name(&path);
            let sub_msg = format!("不合法ApiName，ApiName = {method}");
            (
                Family::Top,
                json!({
                    "errcode": 22,
                    "sub_msg": sub_msg,
                    "errmsg": format!("Invalid method[submsg={sub_msg}]"),
                    "request_id": new_request_id(&shared),
                }),
            )
        } else {
            (
                Family::Legacy,
                json!({"errcode": 404, "errmsg": "请求的URI地址不存在"}),
            )
        };
        record(&shared, &path, CallOutcome::Error);
        return json_response(StatusCode::OK, family, body_json);
    }
    let family = route.map_or(Family::Legacy, |r| r.family);
    let request_id = || (family == Family::Top).then(|| new_request_id(&shared));
    let reject = |r: Rejection| {
        json_response(
            StatusCode::OK,
            family,
            error_body(family, r.code, &r.msg, request_id()),
        )
    };

    let wanted_method = callback_method.unwrap_or(Method::POST);
    if parts.method != wanted_method {
        record(&shared, &path, CallOutcome::Error);
        return if wanted_method == Method::GET {
            reject(Rejection::new(43001, "需要GET请求"))
        } else {
            reject(Rejection::new(43002, "需要POST请求"))
        };
    }
    let Ok(params) = Params::parse(parts.uri.query(), content_type.as_deref(), &body) else {
        record(&shared, &path, CallOutcome::Error);
        return reject(Rejection::param("body"));
    };

    let token_state = lock(&shared.gate)
        .tokens
        .check(params.str("access_token").as_deref(), Instant::now());
    if token_state != TokenCheck::Valid {
        record(&shared, &path, CallOutcome::Error);
        let body_json = match (family, token_state) {
            (Family::Top, TokenCheck::Missing) => json!({
                "errcode": 88, "sub_code": "40000", "sub_msg": "access_token is blank",
                "errmsg": "ding talk error[subcode=40000,submsg=access_token is blank]",
                "request_id": new_request_id(&shared),
            }),
            (Family::Top, _) => json!({
                "errcode": 88, "sub_code": "40014", "sub_msg": "不合法的access_token",
                "errmsg": "ding talk error[subcode=40014,submsg=不合法的access_token]",
                "request_id": new_request_id(&shared),
            }),
            (Family::Legacy, TokenCheck::Missing) => {
                json!({"errcode": 41001, "errmsg": "缺少参数access_token"})
            }
            (Family::Legacy, _) => json!({"errcode": 40014, "errmsg": "不合法的access_token"}),
        };
        return json_response(StatusCode::OK, family, body_json);
    }

    let Some(pass) = gate_pass(&shared, &path, Instant::now()) else {
        return throttled(&shared, family);
    };
    match pass.fault {
        Some(Fault::SystemBusy) => {
            record(&shared, &path, CallOutcome::Faulted);
            let response = reject(Rejection::new(-1, "系统繁忙"));
            return delayed(&pass, response).await;
        }
        Some(Fault::BadGateway) => {
            record(&shared, &path, CallOutcome::Faulted);
            return delayed(&pass, bad_gateway()).await;
        }
        _ => {}
    }

    let result = match route {
        Some(route) => run(&shared, route.handler, &params, Origin::Api),
        None => crate::push::api::handle(&shared, &path, &params).await,
    };
    let outcome = match (&result, pass.fault) {
        (_, Some(Fault::Slow)) => CallOutcome::Faulted,
        (Ok(_), _) => CallOutcome::Ok,
        (Err(_), _) => CallOutcome::Error,
    };
    record(&shared, &path, outcome);
    let response = match result {
        Ok(reply) => json_response(
            StatusCode::OK,
            family,
            success_body(family, reply, request_id()),
        ),
        Err(rejection) => reject(rejection),
    };
    delayed(&pass, response).await
}

/// Runs an operation under the org lock and records its changes as events.
pub(crate) fn run(
    shared: &Shared,
    handler: api::Handler,
    params: &Params,
    origin: Origin,
) -> Result<Reply, Rejection> {
    let (result, changes) = {
        let mut org = lock(&shared.org);
        let result = handler(&mut org, params);
        (result, org.take_changes())
    };
    if !changes.is_empty() {
        lock(&shared.events).record(changes, origin, wall_ms());
        crate::push::wake(shared);
    }
    result
}

/// The success envelope of the family.
pub(crate) fn success_body(family: Family, reply: Reply, request_id: Option<String>) -> Value {
    let mut m = Map::new();
    m.insert("errcode".into(), json!(0));
    m.insert("errmsg".into(), json!("ok"));
    match reply {
        Reply::Result(v) => {
            m.insert("result".into(), v);
        }
        Reply::Nothing => {}
        Reply::Fields(fields) => m.extend(fields),
    }
    if let (Family::Top, Some(id)) = (family, request_id) {
        m.insert("request_id".into(), json!(id));
    }
    Value::Object(m)
}
