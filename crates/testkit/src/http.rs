//! The tests' HTTP client.
//!
//! Why not `reqwest::Client::new()`: it honours `HTTP_PROXY` from the environment, and a CI
//! machine with a proxy configured would send requests for `127.0.0.1:PORT` through it.

/// An HTTP client that never goes through a proxy from the environment.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("HTTP client")
}
