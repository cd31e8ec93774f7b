//! Bearer-token authentication for the OA API.
//!
//! Why the tokens are kept only as SHA-256 digests: the process never needs a token back, only to
//! recognise one, so holding digests means a heap dump, a `Debug` print or a log line cannot leak
//! a usable token. Comparing digests also gives every comparison the same length, and the
//! comparison itself is constant-time (`subtle`) and visits every configured token, so response
//! timing tells an attacker nothing about how much of a guess was right.

use std::fmt;
use std::sync::{Arc, RwLock};

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ApiState;
use super::error::ApiError;

/// One accepted API token: a name for the audit log and the digest of the secret.
#[derive(Clone)]
pub struct ApiToken {
    /// Who holds the token; recorded as the actor (`api:<name>`) of every write made with it.
    name: String,
    /// SHA-256 of the token text; the token itself is not kept.
    digest: [u8; 32],
}

impl ApiToken {
    /// A token with an explicit name (for example the OA system it was issued to).
    pub fn new(name: impl Into<String>, token: &str) -> Self {
        Self {
            name: name.into(),
            digest: Sha256::digest(token.as_bytes()).into(),
        }
    }

    /// A token named by the first 8 hex digits of its digest: stable across config reorderings,
    /// distinct per token, and useless to an attacker (the token has ≥ 16 random characters).
    pub fn unnamed(token: &str) -> Self {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        Self {
            name: format!("token-{}", hex::encode(&digest[..4])),
            digest,
        }
    }

    /// The holder's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiToken")
            .field("name", &self.name)
            .field("digest", &"<redacted>")
            .finish()
    }
}

/// The accepted tokens, shared by every clone of the API's state and replaced as a whole when
/// `serve` reloads its configuration on SIGHUP (see `crate::reload`): a request checks the list
/// that is current when it arrives.
#[derive(Clone, Default)]
pub struct TokenList(Arc<RwLock<Arc<[ApiToken]>>>);

impl TokenList {
    /// A list holding `tokens`.
    pub fn new(tokens: Vec<ApiToken>) -> Self {
        Self(Arc::new(RwLock::new(tokens.into())))
    }

    /// The tokens accepted now.
    pub fn current(&self) -> Arc<[ApiToken]> {
        // A poisoned lock still holds a whole list (replacing is one assignment).
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Accepts `tokens` from now on, instead of the list before.
    pub fn replace(&self, tokens: Vec<ApiToken>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = tokens.into();
    }
}

impl fmt::Debug for TokenList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.current().iter()).finish()
    }
}

/// The authenticated caller, put into the request's extensions for handlers.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's name.
    pub name: String,
}

impl Caller {
    /// The actor recorded in the audit log for this caller's writes.
    pub fn actor(&self) -> String {
        format!("api:{}", self.name)
    }
}

/// Finds the token matching `presented`, comparing against every token in constant time.
pub fn authenticate<'a>(tokens: &'a [ApiToken], presented: &str) -> Option<&'a ApiToken> {
    let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    let mut found = None;
    for token in tokens {
        // No early exit: every token is compared whatever the outcome.
        if bool::from(token.digest.ct_eq(&digest)) {
            found = Some(token);
        }
    }
    found
}

/// Marks the `Authorization` header sensitive, so that any `Debug` print of the request (a
/// trace layer, an error report) shows `Sensitive` instead of the token. The router applies it
/// outermost; a service that logs requests before they reach the router must do the same.
pub async fn hide_credentials(mut request: Request, next: Next) -> Response {
    if let Some(value) = request.headers_mut().get_mut(header::AUTHORIZATION) {
        value.set_sensitive(true);
    }
    next.run(request).await
}

/// The middleware: 401 without a known bearer token, else records the [`Caller`].
pub async fn require_token(
    State(state): State<ApiState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        });
    let tokens = state.tokens.current();
    let none_configured = tokens.is_empty();
    let Some(presented) = presented else {
        return Err(ApiError::Unauthorized {
            presented: false,
            none_configured,
        });
    };
    let token = authenticate(&tokens, &presented).ok_or(ApiError::Unauthorized {
        presented: true,
        none_configured,
    })?;
    request.extensions_mut().insert(Caller {
        name: token.name().to_owned(),
    });
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_matching_token_only() {
        let tokens = vec![
            ApiToken::new("hr", "0123456789abcdef-hr"),
            ApiToken::new("erp", "0123456789abcdef-erp"),
        ];
        assert_eq!(
            authenticate(&tokens, "0123456789abcdef-erp").map(ApiToken::name),
            Some("erp")
        );
        assert!(authenticate(&tokens, "0123456789abcdef-er").is_none());
        assert!(authenticate(&tokens, "").is_none());
        assert!(authenticate(&[], "anything").is_none());
    }

    #[tokio::test]
    async fn credentials_are_hidden_from_debug_prints_of_the_request() {
        use axum::Router;
        use axum::body::Body;
        use axum::http::HeaderMap;
        use axum::routing::get;
        use tower::ServiceExt;

        let app = Router::new()
            .route(
                "/",
                get(|headers: HeaderMap| async move { format!("{headers:?}") }),
            )
            .layer(axum::middleware::from_fn(hide_credentials));
        let request = axum::http::Request::builder()
            .uri("/")
            .header(header::AUTHORIZATION, "Bearer very-secret-token-value")
            .body(Body::empty())
            .expect("request");
        let response = app.oneshot(request).await.expect("response");
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        let printed = String::from_utf8_lossy(&bytes);
        assert!(printed.contains("authorization"), "{printed}");
        assert!(!printed.contains("very-secret"), "{printed}");
    }

    #[test]
    fn debug_never_shows_the_token_or_digest() {
        let token = ApiToken::unnamed("super-secret-token-value");
        let text = format!("{token:?}");
        assert!(!text.contains("super-secret"), "{text}");
        assert!(!text.contains(&hex::encode(token.digest)), "{text}");
        assert!(token.name().starts_with("token-"));
    }
}
