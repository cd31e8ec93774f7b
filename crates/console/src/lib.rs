//! dingsync's admin console: server-rendered pages at `/console` and the admin JSON API at
//! `/api/v1/admin`, one set of handlers over one backend trait.
//!
//! Administrators need to see and steer the sync from a browser: is it healthy, what is
//! waiting for a decision, and above all "what happened to this person, and why". The console
//! answers from the service's own records through [`AdminBackend`]; it owns presentation,
//! sessions and permissions, never data.
//!
//! # Layout
//! - `backend`: [`AdminBackend`], the single seam to the service, and [`BackendError`].
//! - `views/`: the admin model, one serde view struct per page; they are also the JSON API's
//!   bodies, and [`OperatorAction`] is the closed set of things an operator may do.
//! - `auth/`: [`Role`]s and [`ConsoleUser`]s, argon2 [`hash_password`], signed session
//!   cookies with their CSRF tokens, and the failed-login throttle.
//! - `routes/`: the axum [`router`]: `html` pages, `login`, `act` (the one form endpoint for
//!   operator actions), `api` (JSON), `assets`, and the `request` plumbing they share.
//! - `pages`: the askama page types; the templates are in `templates/`, the stylesheet and
//!   script in `assets/`, all compiled into the binary (no CDN, works air-gapped).
//! - `error`: [`ConsoleError`], the status and plain message for every failure.
//! - `config`: [`ConsoleConfig`] and the [`Clock`] sessions and throttling read.
//!
//! # Security
//! Users sign in with name and password (argon2 hashes, no default account). Sessions are
//! HMAC-SHA-256-signed cookies (`HttpOnly`, `SameSite=Strict`, `Secure` unless configured
//! off) with an idle timeout and a maximum age. Every form carries a CSRF token derived from
//! the session (the sign-in form from a short-lived signed cookie), checked on every `POST`.
//! Viewers see everything but secrets; only operators may act, and every action reaches the
//! backend with the user's name for the audit log. Failed sign-ins answer 401 with the form
//! and are throttled per name and per address. Errors are plain sentences; internal causes go
//! to the log only. Settings are redacted twice (backend and [`SettingsView::redacted`]).
//!
//! # Phase 2: plugging into `dingsync serve`
//! - Implement [`AdminBackend`] over the store, the sync context and the client (the store's
//!   audit log, holds, dead letters, runs and plan; `object` fetches DingTalk's side live
//!   within the budget). `perform` writes each action to the audit log with `actor.name`.
//! - Store console users in the database; `dingsync console add-user NAME
//!   [--password-stdin] [--role viewer|operator]` stores [`hash_password`]'s PHC string, and
//!   `console_user` loads it with [`PasswordHash::from_phc`].
//! - Build [`ConsoleConfig`] from the config file (a stable `session_key` of 32+ bytes,
//!   `secure_cookies`, timeouts) and merge [`router`] into the internal listener's router,
//!   served with `into_make_service_with_connect_info::<SocketAddr>()` so throttling sees
//!   client addresses.
//! - `.ci/run` must install Debian's `chromium` and `chromium-driver`; the browser tests then
//!   run for real (without `chromedriver` on `PATH` they skip, saying so, unless
//!   `CONSOLE_REQUIRE_BROWSER=1`).

mod backend;
mod config;
mod error;
mod pages;
mod routes;

pub mod auth;
pub mod views;

pub use auth::{ConsoleUser, PasswordHash, Role, hash_password};
pub use backend::{AdminBackend, BackendError};
pub use config::{Clock, ConsoleConfig, SystemClock};
pub use error::ConsoleError;
pub use routes::{ADMIN_API, ApiRoute, router};
/// The console's session cookie (the admin API's credential, documented in the OpenAPI
/// document).
pub const SESSION_COOKIE: &str = routes::SESSION_COOKIE_NAME;
pub use views::{OperatorAction, SettingsView};
