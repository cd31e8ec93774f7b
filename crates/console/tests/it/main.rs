//! The console crate's integration tests: the router driven with an in-memory backend
//! (`helpers`), over requests in process (`auth`, `pages`) and through a real headless
//! Chromium (`browser`).

mod auth;
mod browser;
mod helpers;
mod pages;
