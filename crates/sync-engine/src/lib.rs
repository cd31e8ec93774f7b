//! sync-engine (skeleton; see ARCHITECTURE.md)
//!
//! OA → DingTalk and both ways: the [`push`] module drains the outbox into DingTalk in
//! dependency order, idempotently (a crash between DingTalk's acceptance and saving the id map
//! never creates a duplicate: creates look before they create on retry), with backoff and dead
//! letters; the [`plan`] module snapshots both sides, compares them with the base three ways,
//! prints what reconcile would change on each side (table or JSON, with the same validation as
//! a real run and the deletion threshold) and applies it on request.
//!
//! # Layout
//! - [`push`]: the outbox pusher ([`push::Pusher`]), its clock seam, failpoints for crash
//!   tests, and `push::build`, the pure model → DingTalk request builders.
//! - [`plan`]: [`plan::plan`] and [`plan::reconcile`], and `plan::view`, DingTalk's crawl
//!   translated into the OA model through the id map.

pub mod plan;
pub mod push;
