//! The fixtures every crate's integration tests share, so that "start a simulator", "give me a
//! fresh database" and "wait until the workers are done" are written once and behave the same
//! in every suite. Used only as a dev-dependency (`publish = false`).
//!
//! A crate's integration tests (`tests/it`) may use this crate even when it depends on that very
//! crate: integration tests see the crate as an ordinary library, so Cargo resolves the
//! dev-dependency cycle. Unit tests inside a crate's `src/` cannot (they would see two copies of
//! the crate's types).
//!
//! # Layout
//! - [`sim`] (feature `sim`): a simulator in-process on a port-0 listener, and the `/_sim`
//!   administrator calls tests use to look behind DingTalk's API.
//! - [`db`] (feature `db`): a fresh SQLite file or a fresh PostgreSQL database per test (server
//!   from `DINGSYNC_TEST_PG_URL`), dropped afterwards.
//! - [`drain`] (features `sim` + `db`): bounded waits until the service's inbox and outbox
//!   are empty and the simulator has nothing in flight, so results are deterministic.
//! - [`wait`]: polling with a deadline, for state that has no event to await.
//! - [`http`]: an HTTP client that ignores proxies from the environment.
//! - [`process`]: the real binary as a child process, with none of the test's `DINGSYNC_*`
//!   variables.
//! - [`secrets`]: the secret values the tests configure, which no test output may contain.

#[cfg(feature = "db")]
pub mod db;
#[cfg(all(feature = "sim", feature = "db"))]
pub mod drain;
pub mod http;
pub mod process;
pub mod secrets;
#[cfg(feature = "sim")]
pub mod sim;
pub mod wait;
