//! Errors: [`SimError`] for the library boundary (starting the simulator) and [`Rejection`], the
//! DingTalk error code a rule answers with.
//!
//! A `Rejection` is not a Rust failure: it is the simulated server's normal "no" (`errcode` +
//! `errmsg` in an HTTP 200 body), so it carries exactly what goes on the wire and nothing else.

use std::borrow::Cow;

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A `SimConfig` value the simulator cannot honour.
    #[error("invalid simulator configuration: {0}")]
    InvalidConfig(String),
    /// The listener handed to `start` has no usable local address.
    #[error("cannot read the listener's local address")]
    Listener(#[source] std::io::Error),
    /// The HTTP client that sends event pushes could not be built.
    #[error("cannot build the HTTP client for event pushes")]
    HttpClient(#[source] reqwest::Error),
    /// The task generating the sample org panicked or was cancelled.
    #[error("the org generation task failed")]
    Generation(#[source] tokio::task::JoinError),
}

/// A DingTalk business error: the `errcode`/`errmsg` pair of an HTTP 200 answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// DingTalk's numeric `errcode`.
    pub code: i64,
    /// DingTalk's `errmsg` text (the documented Chinese wording where one is known).
    pub msg: Cow<'static, str>,
}

impl Rejection {
    pub(crate) fn new(code: i64, msg: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            msg: msg.into(),
        }
    }

    /// 40035: a parameter is missing or malformed.
    pub(crate) fn param(name: &str) -> Self {
        Self::new(40035, format!("缺少参数或参数不合法 {name}"))
    }
}

/// Shorthand for operations that either succeed or are rejected with a DingTalk code.
pub(crate) type Outcome<T> = Result<T, Rejection>;
