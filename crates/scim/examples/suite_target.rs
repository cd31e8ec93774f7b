//! An in-memory SCIM server over this crate, so `scripts/scim-suites.sh` can run the two
//! third-party suites against the protocol layer alone, before (and apart from) the service.
//!
//! ```text
//! cargo run -p scim --example suite_target -- 0        # prints the base URL; token "t0ken"
//! scripts/scim-suites.sh http://127.0.0.1:PORT/scim/v2 t0ken
//! ```
//!
//! It is a test target, not a product: one fixed token, a map in a mutex, userName uniqueness
//! only. It also shows phase 2 the handler shapes the suites need (status codes, `ETag`,
//! `Location`, `application/scim+json`, 405 on discovery, 501 on `POST /.search`, SCIM 404s).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use scim::ScimError;
use scim::discovery::{self, ServiceConfig};
use scim::list::{Page, list_response};
use scim::meta::{Meta, Version, check_if_match, finish_resource};
use scim::project::Projection;
use scim::schema::{GROUP, ResourceType, USER};
use serde_json::Value;

struct Stored {
    body: Value,
    created: String,
    rev: u64,
}

#[derive(Default)]
struct Db {
    users: HashMap<String, Stored>,
    groups: HashMap<String, Stored>,
    next: u64,
    order: Vec<String>,
}

#[derive(Clone)]
struct App {
    db: Arc<Mutex<Db>>,
    cfg: ServiceConfig,
    token: String,
}

fn now(n: u64) -> String {
    format!("2026-12-07T10:{:02}:{:02}.000Z", (n / 60) % 60, n % 60)
}

fn scim_json(status: StatusCode, body: &Value, extra: &[(header::HeaderName, String)]) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/scim+json"),
    );
    for (k, v) in extra {
        if let Ok(v) = HeaderValue::from_str(v) {
            r.headers_mut().insert(k.clone(), v);
        }
    }
    r
}

fn err(e: ScimError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    scim_json(status, &e.to_json(), &[])
}

fn ok(body: Value) -> Response {
    scim_json(StatusCode::OK, &body, &[])
}

fn lock(db: &Mutex<Db>) -> std::sync::MutexGuard<'_, Db> {
    db.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn rt_of(kind: &str) -> Option<&'static ResourceType> {
    match kind {
        "Users" => Some(&USER),
        "Groups" => Some(&GROUP),
        _ => None,
    }
}

impl App {
    fn authorised(&self, h: &HeaderMap) -> bool {
        let want = format!("Bearer {}", self.token);
        h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) == Some(want.as_str())
    }

    fn render(&self, rt: &ResourceType, id: &str, s: &Stored) -> Value {
        let mut v = s.body.clone();
        let meta = Meta {
            created: s.created.clone(),
            last_modified: now(s.rev),
            version: Version::from_revision(s.rev),
        };
        finish_resource(&mut v, rt, &self.cfg.base_url, id, &meta);
        v
    }
}

fn table<'a>(db: &'a mut Db, rt: &ResourceType) -> &'a mut HashMap<String, Stored> {
    if rt.name == "User" {
        &mut db.users
    } else {
        &mut db.groups
    }
}

fn unique(
    db: &mut Db,
    rt: &ResourceType,
    body: &Value,
    except: Option<&str>,
) -> Result<(), ScimError> {
    if rt.name != "User" {
        return Ok(());
    }
    let name = body["userName"].as_str().unwrap_or("").to_lowercase();
    for (id, s) in &db.users {
        if Some(id.as_str()) != except
            && s.body["userName"].as_str().unwrap_or("").to_lowercase() == name
        {
            return Err(ScimError::uniqueness("userName is taken"));
        }
    }
    Ok(())
}

fn respond(
    app: &App,
    rt: &ResourceType,
    id: &str,
    s: &Stored,
    status: StatusCode,
    q: &HashMap<String, String>,
) -> Response {
    let full = app.render(rt, id, s);
    let proj = match Projection::from_params(
        q.get("attributes").map(String::as_str),
        q.get("excludedAttributes").map(String::as_str),
        rt,
    ) {
        Ok(p) => p,
        Err(e) => return err(e),
    };
    let v = proj.apply(&full, rt);
    let mut extra = vec![(
        header::ETAG,
        Version::from_revision(s.rev).as_str().to_owned(),
    )];
    if status == StatusCode::CREATED {
        extra.push((
            header::LOCATION,
            full["meta"]["location"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ));
    }
    scim_json(status, &v, &extra)
}

async fn collection(
    State(app): State<App>,
    Path(kind): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
    method: axum::http::Method,
    body: Bytes,
) -> Response {
    if !app.authorised(&h) {
        return err(ScimError::status(401, "missing or unknown bearer token"));
    }
    let Some(rt) = rt_of(&kind) else {
        return err(ScimError::not_found("no such endpoint"));
    };
    let result = if method == axum::http::Method::POST {
        create(&app, rt, &body, &q)
    } else {
        list(&app, rt, &q)
    };
    result.unwrap_or_else(err)
}

fn create(
    app: &App,
    rt: &'static ResourceType,
    body: &[u8],
    q: &HashMap<String, String>,
) -> Result<Response, ScimError> {
    let body = serde_json::from_slice::<Value>(body)
        .map_err(|e| ScimError::invalid_syntax(format!("the body is not JSON: {e}")))?;
    let prepared = scim::write::prepare_create(&body, rt)?;
    let mut db = lock(&app.db);
    unique(&mut db, rt, &prepared.resource, None)?;
    db.next += 1;
    let (id, rev) = (format!("{}-{}", rt.name.to_lowercase(), db.next), db.next);
    let s = Stored {
        body: prepared.resource,
        created: now(rev),
        rev,
    };
    let r = respond(app, rt, &id, &s, StatusCode::CREATED, q);
    db.order.push(id.clone());
    table(&mut db, rt).insert(id, s);
    Ok(r)
}

fn list(
    app: &App,
    rt: &'static ResourceType,
    q: &HashMap<String, String>,
) -> Result<Response, ScimError> {
    let param = |name: &str| q.get(name).map(String::as_str);
    let page = Page::from_params(
        param("startIndex"),
        param("count"),
        100,
        app.cfg.max_results,
    )?;
    let filter = param("filter")
        .map(scim::filter::parse_filter)
        .transpose()?;
    let proj = Projection::from_params(param("attributes"), param("excludedAttributes"), rt)?;
    let mut db = lock(&app.db);
    let order = db.order.clone();
    let t = table(&mut db, rt);
    let mut all = Vec::new();
    for id in &order {
        let Some(s) = t.get(id) else { continue };
        let v = app.render(rt, id, s);
        if let Some(f) = &filter
            && !scim::filter::matches(f, &v, rt)?
        {
            continue;
        }
        all.push(v);
    }
    let items: Vec<Value> = page.slice(&all).iter().map(|v| proj.apply(v, rt)).collect();
    Ok(ok(list_response(items, all.len(), page.start_index)))
}

async fn item(
    State(app): State<App>,
    Path((kind, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
    method: axum::http::Method,
    body: Bytes,
) -> Response {
    if !app.authorised(&h) {
        return err(ScimError::status(401, "missing or unknown bearer token"));
    }
    let Some(rt) = rt_of(&kind) else {
        return err(ScimError::not_found("no such endpoint"));
    };
    let mut db = lock(&app.db);
    db.next += 1;
    let rev = db.next;
    let Some(cur) = table(&mut db, rt)
        .get(&id)
        .map(|s| (app.render(rt, &id, s), s.created.clone(), s.rev))
    else {
        return err(ScimError::not_found(format!("no {} '{id}'", rt.name)));
    };
    let if_match = h.get(header::IF_MATCH).and_then(|v| v.to_str().ok());
    match method {
        axum::http::Method::GET => match table(&mut db, rt).get(&id) {
            Some(s) => respond(&app, rt, &id, s, StatusCode::OK, &q),
            None => err(ScimError::not_found(format!("no {} '{id}'", rt.name))),
        },
        axum::http::Method::DELETE => {
            if let Err(e) = check_if_match(if_match, &Version::from_revision(cur.2)) {
                return err(e);
            }
            table(&mut db, rt).remove(&id);
            StatusCode::NO_CONTENT.into_response()
        }
        axum::http::Method::PUT | axum::http::Method::PATCH => {
            if let Err(e) = check_if_match(if_match, &Version::from_revision(cur.2)) {
                return err(e);
            }
            let Ok(body) = serde_json::from_slice::<Value>(&body) else {
                return err(ScimError::invalid_syntax("bad JSON"));
            };
            let new = if method == axum::http::Method::PUT {
                scim::write::prepare_replace(&cur.0, &body, rt).map(|p| p.resource)
            } else {
                scim::patch::apply_patch(&cur.0, &body, rt)
                    .and_then(|v| scim::write::prepare_replace(&cur.0, &v, rt).map(|p| p.resource))
            };
            let mut new = match new {
                Ok(v) => v,
                Err(e) => return err(e),
            };
            if let Err(e) = unique(&mut db, rt, &new, Some(&id)) {
                return err(e);
            }
            if let Some(o) = new.as_object_mut() {
                o.remove("id");
                o.remove("meta");
            }
            let s = Stored {
                body: new,
                created: cur.1,
                rev,
            };
            let r = respond(&app, rt, &id, &s, StatusCode::OK, &q);
            table(&mut db, rt).insert(id, s);
            r
        }
        _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let cfg = ServiceConfig {
        base_url: format!("http://{addr}/scim/v2"),
        max_results: 200,
        documentation_uri: None,
    };
    let app = App {
        db: Arc::default(),
        cfg,
        token: "t0ken".into(),
    };
    let scim = Router::new()
        .route(
            "/ServiceProviderConfig",
            get(|State(app): State<App>| async move {
                ok(discovery::service_provider_config(&app.cfg))
            }),
        )
        .route(
            "/ResourceTypes",
            get(|State(app): State<App>| async move { ok(discovery::resource_types(&app.cfg)) }),
        )
        .route(
            "/ResourceTypes/{name}",
            get(|State(app): State<App>, Path(n): Path<String>| async move {
                discovery::resource_type(&app.cfg, &n)
                    .map(ok)
                    .unwrap_or_else(err)
            }),
        )
        .route(
            "/Schemas",
            get(|State(app): State<App>| async move { ok(discovery::schemas(&app.cfg)) }),
        )
        .route(
            "/Schemas/{id}",
            get(|State(app): State<App>, Path(n): Path<String>| async move {
                discovery::schema(&app.cfg, &n).map(ok).unwrap_or_else(err)
            }),
        )
        .route(
            "/.search",
            axum::routing::post(|| async {
                err(ScimError::not_implemented(
                    "searching several resource types at once is not supported",
                ))
            }),
        )
        .route("/{kind}", axum::routing::any(collection))
        .route("/{kind}/{id}", axum::routing::any(item))
        .fallback(|| async { err(ScimError::not_found("no such endpoint")) })
        .with_state(app);
    let router = Router::new().nest("/scim/v2", scim);
    println!("listening on http://{addr}/scim/v2");
    axum::serve(listener, router).await
}
