//! DingTalk's legacy callback-registration API (`/call_back/...`, `dingtalk-api.md` §5.6).
//!
//! These run behind the same gateway as every other oapi path (token, rate limit, faults) and
//! answer in the legacy envelope (no `request_id`). Registering or updating fires `check_url`
//! at the URL first, and refuses (71009) unless the URL acknowledges it correctly, as
//! DingTalk's registration does. Callbacks registered here encrypt with the CorpId as owner key.

use std::sync::Arc;

use axum::http::Method;
use serde_json::{Map, Value, json};

use super::pusher::check_url;
use super::subscription::{Kind, build_subscription};
use crate::envelope::Reply;
use crate::error::{Outcome, Rejection};
use crate::params::Params;
use crate::state::{Shared, lock};

/// The method each callback path takes, or `None` for a path DingTalk does not have.
pub(crate) fn method_of(path: &str) -> Option<Method> {
    match path {
        "/call_back/register_call_back" | "/call_back/update_call_back" => Some(Method::POST),
        "/call_back/get_call_back"
        | "/call_back/delete_call_back"
        | "/call_back/get_call_back_failed_result" => Some(Method::GET),
        _ => None,
    }
}

fn not_registered() -> Rejection {
    Rejection::new(71007, "回调未注册")
}

fn already_registered() -> Rejection {
    Rejection::new(71006, "回调地址已经注册")
}

/// Runs one callback endpoint (the gateway has already checked token, limit and faults).
pub(crate) async fn handle(shared: &Arc<Shared>, path: &str, p: &Params) -> Outcome<Reply> {
    match path {
        "/call_back/register_call_back" => register(shared, p, false).await,
        "/call_back/update_call_back" => register(shared, p, true).await,
        "/call_back/get_call_back" => {
            let state = lock(&shared.hub.state);
            let sub = state
                .subscription
                .as_ref()
                .filter(|s| s.kind == Kind::Registered)
                .ok_or_else(not_registered)?;
            let mut m = Map::new();
            m.insert("call_back_tag".into(), json!(sub.tags));
            m.insert("token".into(), json!(sub.token));
            m.insert("aes_key".into(), json!(sub.aes_key));
            m.insert("url".into(), json!(sub.url));
            Ok(Reply::Fields(m))
        }
        "/call_back/delete_call_back" => {
            let mut state = lock(&shared.hub.state);
            if state
                .subscription
                .as_ref()
                .is_none_or(|s| s.kind != Kind::Registered)
            {
                return Err(not_registered());
            }
            state.subscription = None;
            Ok(Reply::Nothing)
        }
        "/call_back/get_call_back_failed_result" => {
            let (list, has_more) = shared.hub.take_failed();
            let mut m = Map::new();
            m.insert("has_more".into(), json!(has_more));
            m.insert("failed_list".into(), Value::Array(list));
            Ok(Reply::Fields(m))
        }
        _ => Err(Rejection::new(404, "请求的URI地址不存在")),
    }
}

async fn register(shared: &Arc<Shared>, p: &Params, update: bool) -> Outcome<Reply> {
    let tags = p.array_list("call_back_tag")?.unwrap_or_default();
    let token = p.req_str("token")?;
    let aes_key = p.req_str("aes_key")?;
    let url = p.req_str("url")?;
    let exists = |shared: &Shared| lock(&shared.hub.state).subscription.is_some();
    let registered = |shared: &Shared| {
        lock(&shared.hub.state)
            .subscription
            .as_ref()
            .is_some_and(|s| s.kind == Kind::Registered)
    };
    if update && !registered(shared) {
        return Err(not_registered());
    }
    if !update && exists(shared) {
        return Err(already_registered());
    }
    let sub = build_subscription(
        Kind::Registered,
        &url,
        tags,
        &token,
        &aes_key,
        &shared.config.corp_id,
    )?;
    if let Err(reason) = check_url(shared, &sub).await {
        tracing::info!(%reason, "callback URL check failed");
        return Err(Rejection::new(71009, "返回文本非success"));
    }
    let mut state = lock(&shared.hub.state);
    // Someone may have registered while the URL was being checked.
    match (&state.subscription, update) {
        (Some(_), false) => return Err(already_registered()),
        (Some(s), true) if s.kind != Kind::Registered => return Err(not_registered()),
        (None, true) => return Err(not_registered()),
        _ => {}
    }
    state.subscription = Some(Arc::new(sub));
    Ok(Reply::Nothing)
}
