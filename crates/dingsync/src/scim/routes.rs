//! The `/scim/v2` router: discovery, and one collection and one item handler for Users and
//! Groups that read, filter, page and project through the `scim` crate and write through
//! [`users`](super::users) / [`groups`](super::groups).

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use directory_store::ScimResource;
use scim::ScimError;
use scim::discovery::{self, ServiceConfig};
use scim::list::{Page, list_response};
use scim::meta::{Meta, Version, check_if_match, finish_resource};
use scim::project::Projection;
use scim::schema::{ResourceType, USER};
use serde_json::Value;

use super::http::{caller, err, ok, rfc3339, scim_json};
use super::settings::GroupsAs;
use super::{ScimState, groups, roles, users};

/// Where the router is mounted.
pub const PREFIX: &str = "/scim/v2";

type Params = HashMap<String, String>;

/// The SCIM service under [`PREFIX`]; merge it into the service's router.
pub fn router(state: ScimState) -> Router {
    let limit = state.settings.max_body_bytes;
    let scim = Router::new()
        .route("/ServiceProviderConfig", get(spc))
        .route("/ResourceTypes", get(rts))
        .route("/ResourceTypes/{name}", get(rt_one))
        .route("/Schemas", get(schemas))
        .route("/Schemas/{id}", get(schema_one))
        .route("/.search", post(search))
        .route("/{kind}", any(collection))
        .route("/{kind}/{id}", any(item))
        .fallback(|| async { err(ScimError::not_found("no such endpoint")) })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state);
    Router::new().nest(PREFIX, scim)
}

/// The protocol settings, with the base URL the client used.
fn service_config(state: &ScimState, headers: &HeaderMap) -> ServiceConfig {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    ServiceConfig {
        base_url: format!("http://{host}{PREFIX}"),
        max_results: state.settings.max_results,
        documentation_uri: None,
        catalog: state.settings.catalog,
    }
}

/// Runs `f` for an authenticated caller; discovery needs a token too (RFC 7644 §4 allows either;
/// dingsync publishes nothing to strangers).
fn guarded(
    state: &ScimState,
    h: &HeaderMap,
    f: impl FnOnce(ServiceConfig) -> Result<Value, ScimError>,
) -> Response {
    match caller(state, h).and_then(|_| f(service_config(state, h))) {
        Ok(v) => ok(&v),
        Err(e) => err(e),
    }
}

async fn spc(State(s): State<ScimState>, h: HeaderMap) -> Response {
    guarded(&s, &h, |c| Ok(discovery::service_provider_config(&c)))
}
async fn rts(State(s): State<ScimState>, h: HeaderMap) -> Response {
    guarded(&s, &h, |c| Ok(discovery::resource_types(&c)))
}
async fn rt_one(State(s): State<ScimState>, h: HeaderMap, Path(n): Path<String>) -> Response {
    guarded(&s, &h, |c| discovery::resource_type(&c, &n))
}
async fn schemas(State(s): State<ScimState>, h: HeaderMap) -> Response {
    guarded(&s, &h, |c| Ok(discovery::schemas(&c)))
}
async fn schema_one(State(s): State<ScimState>, h: HeaderMap, Path(n): Path<String>) -> Response {
    guarded(&s, &h, |c| discovery::schema(&c, &n))
}
async fn search() -> Response {
    err(ScimError::not_implemented(
        "searching several resource types at once is not supported",
    ))
}

fn rt_of(state: &ScimState, kind: &str) -> Result<&'static ResourceType, ScimError> {
    let catalog = &state.settings.catalog;
    match kind {
        "Users" => Ok(catalog.user),
        "Groups" => Ok(catalog.group),
        _ => Err(ScimError::not_found("no such endpoint")),
    }
}

/// The `scim_resources` kind of a resource type (Groups kept as roles have their own).
fn kind_of(state: &ScimState, rt: &ResourceType) -> &'static str {
    if rt.name == USER.name {
        users::KIND
    } else if state.settings.groups == GroupsAs::Roles {
        roles::KIND
    } else {
        groups::KIND
    }
}

/// A stored resource as the client sees it: its JSON with `id`, `schemas` and `meta`.
fn render(cfg: &ServiceConfig, rt: &ResourceType, r: &ScimResource) -> Result<Value, ScimError> {
    let mut v: Value = serde_json::from_str(&r.body_json)
        .map_err(|_| ScimError::status(500, "a stored resource is unreadable"))?;
    let meta = Meta {
        created: rfc3339(r.created_at_ms),
        last_modified: rfc3339(r.updated_at_ms),
        version: version(r),
    };
    finish_resource(&mut v, rt, &cfg.base_url, &r.id, &meta);
    Ok(v)
}

fn version(r: &ScimResource) -> Version {
    Version::from_revision(u64::try_from(r.rev).unwrap_or(0))
}

/// One resource in a response, projected, with `ETag` (and `Location` on 201).
fn respond(
    cfg: &ServiceConfig,
    rt: &ResourceType,
    r: &ScimResource,
    status: StatusCode,
    q: &Params,
) -> Result<Response, ScimError> {
    let full = render(cfg, rt, r)?;
    let proj = Projection::from_params(
        q.get("attributes").map(String::as_str),
        q.get("excludedAttributes").map(String::as_str),
        rt,
    )?;
    let mut extra = vec![(header::ETAG, version(r).as_str().to_owned())];
    if status == StatusCode::CREATED {
        let loc = full["meta"]["location"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        extra.push((header::LOCATION, loc));
    }
    Ok(scim_json(status, &proj.apply(&full, rt), &extra))
}

fn parse_body(body: &[u8]) -> Result<Value, ScimError> {
    serde_json::from_slice(body)
        .map_err(|e| ScimError::invalid_syntax(format!("the body is not JSON: {e}")))
}

async fn save(
    state: &ScimState,
    rt: &ResourceType,
    actor: &str,
    id: Option<&str>,
    resource: &Value,
) -> Result<ScimResource, ScimError> {
    if rt.name == USER.name {
        users::save(state, actor, id, resource).await
    } else if state.settings.groups == GroupsAs::Roles {
        roles::save(state, actor, id, resource).await
    } else {
        groups::save(state, actor, id, resource).await
    }
}

async fn collection(
    State(state): State<ScimState>,
    Path(kind): Path<String>,
    Query(q): Query<Params>,
    h: HeaderMap,
    method: Method,
    body: Bytes,
) -> Response {
    let run = async {
        let actor = caller(&state, &h)?;
        let rt = rt_of(&state, &kind)?;
        let cfg = service_config(&state, &h);
        match method {
            Method::POST => {
                let prepared = scim::write::prepare_create(&parse_body(&body)?, rt)?;
                let saved = save(&state, rt, &actor, None, &prepared.resource).await?;
                respond(&cfg, rt, &saved, StatusCode::CREATED, &q)
            }
            Method::GET => list(&state, &cfg, rt, &q).await,
            _ => Err(ScimError::status(405, "use GET or POST on a collection")),
        }
    };
    run.await.unwrap_or_else(err)
}

async fn list(
    state: &ScimState,
    cfg: &ServiceConfig,
    rt: &'static ResourceType,
    q: &Params,
) -> Result<Response, ScimError> {
    let param = |name: &str| q.get(name).map(String::as_str);
    let page = Page::from_params(param("startIndex"), param("count"), 100, cfg.max_results)?;
    let filter = param("filter")
        .map(scim::filter::parse_filter)
        .transpose()?;
    let proj = Projection::from_params(param("attributes"), param("excludedAttributes"), rt)?;
    let stored = state
        .store
        .scim_list(kind_of(state, rt))
        .await
        .map_err(super::http::store_error)?;
    let mut all = Vec::new();
    for r in &stored {
        let v = render(cfg, rt, r)?;
        if let Some(f) = &filter
            && !scim::filter::matches(f, &v, rt)?
        {
            continue;
        }
        all.push(v);
    }
    let items: Vec<Value> = page.slice(&all).iter().map(|v| proj.apply(v, rt)).collect();
    Ok(ok(&list_response(items, all.len(), page.start_index)))
}

async fn item(
    State(state): State<ScimState>,
    Path((kind, id)): Path<(String, String)>,
    Query(q): Query<Params>,
    h: HeaderMap,
    method: Method,
    body: Bytes,
) -> Response {
    let run = async {
        let actor = caller(&state, &h)?;
        let rt = rt_of(&state, &kind)?;
        let cfg = service_config(&state, &h);
        let cur = state
            .store
            .scim_get(kind_of(&state, rt), &id)
            .await
            .map_err(super::http::store_error)?
            .ok_or_else(|| ScimError::not_found(format!("no {} {id:?}", rt.name)))?;
        let if_match = h.get(header::IF_MATCH).and_then(|v| v.to_str().ok());
        match method {
            Method::GET => respond(&cfg, rt, &cur, StatusCode::OK, &q),
            Method::DELETE => {
                check_if_match(if_match, &version(&cur))?;
                if rt.name == USER.name {
                    users::delete(&state, &actor, &id).await?;
                } else if state.settings.groups == GroupsAs::Roles {
                    roles::delete(&state, &actor, &id).await?;
                } else {
                    groups::delete(&state, &actor, &id).await?;
                }
                Ok(StatusCode::NO_CONTENT.into_response())
            }
            Method::PUT | Method::PATCH => {
                check_if_match(if_match, &version(&cur))?;
                let body = parse_body(&body)?;
                let current = render(&cfg, rt, &cur)?;
                let new = if method == Method::PUT {
                    scim::write::prepare_replace(&current, &body, rt)?.resource
                } else {
                    let patched = scim::patch::apply_patch(&current, &body, rt)?;
                    scim::write::prepare_replace(&current, &patched, rt)?.resource
                };
                let mut new = new;
                if let Some(o) = new.as_object_mut() {
                    o.remove("id");
                    o.remove("meta");
                }
                let saved = save(&state, rt, &actor, Some(&id), &new).await?;
                respond(&cfg, rt, &saved, StatusCode::OK, &q)
            }
            _ => Err(ScimError::status(
                405,
                "use GET, PUT, PATCH or DELETE on a resource",
            )),
        }
    };
    run.await.unwrap_or_else(err)
}
