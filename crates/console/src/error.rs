//! `ConsoleError`: every way a console request can fail, with the status and the plain
//! message a person sees. Nothing here ever carries a stack trace or an internal error's text
//! to the page: `Backend(Internal)` is logged with its cause chain and shown as an opaque
//! sentence.

use axum::http::StatusCode;

use crate::backend::BackendError;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("sign in to use the console")]
    SignInRequired,
    #[error("your session ended after {idle_minutes} minutes without activity; sign in again")]
    SessionExpired { idle_minutes: u64 },
    #[error("your role ({role}) may look but not act: to {action} you need the operator role")]
    Forbidden { role: &'static str, action: String },
    #[error(
        "this form was not issued to your session (it may be from another tab, another site, or \
         older than your sign-in); nothing was changed — reload the page and try again"
    )]
    CsrfRejected,
    #[error("{field}: {message}")]
    BadInput { field: String, message: String },
    #[error("there is no {what} here")]
    NotFound { what: String },
    #[error("too many failed sign-ins; try again in {minutes} minutes")]
    Throttled { minutes: u64 },
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("the page could not be drawn")]
    Render(#[from] askama::Error),
}

impl ConsoleError {
    pub fn bad_input(field: &str, message: impl Into<String>) -> Self {
        ConsoleError::BadInput {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ConsoleError::SignInRequired | ConsoleError::SessionExpired { .. } => {
                StatusCode::UNAUTHORIZED
            }
            ConsoleError::Forbidden { .. } | ConsoleError::CsrfRejected => StatusCode::FORBIDDEN,
            ConsoleError::BadInput { .. } => StatusCode::BAD_REQUEST,
            ConsoleError::NotFound { .. } => StatusCode::NOT_FOUND,
            ConsoleError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            ConsoleError::Backend(BackendError::NotFound { .. }) => StatusCode::NOT_FOUND,
            ConsoleError::Backend(BackendError::Invalid { .. }) => StatusCode::BAD_REQUEST,
            ConsoleError::Backend(BackendError::Refused(_)) => StatusCode::CONFLICT,
            ConsoleError::Backend(BackendError::Internal(_)) | ConsoleError::Render(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// A stable machine-readable code for the JSON API.
    pub fn code(&self) -> &'static str {
        match self {
            ConsoleError::SignInRequired => "sign_in_required",
            ConsoleError::SessionExpired { .. } => "session_expired",
            ConsoleError::Forbidden { .. } => "forbidden",
            ConsoleError::CsrfRejected => "csrf_rejected",
            ConsoleError::BadInput { .. } | ConsoleError::Backend(BackendError::Invalid { .. }) => {
                "bad_input"
            }
            ConsoleError::NotFound { .. }
            | ConsoleError::Backend(BackendError::NotFound { .. }) => "not_found",
            ConsoleError::Throttled { .. } => "throttled",
            ConsoleError::Backend(BackendError::Refused(_)) => "refused",
            ConsoleError::Backend(BackendError::Internal(_)) | ConsoleError::Render(_) => {
                "internal"
            }
        }
    }

    /// The page's heading.
    pub fn title(&self) -> &'static str {
        match self.status() {
            StatusCode::UNAUTHORIZED => "Sign-in needed",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::BAD_REQUEST => "Check your input",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
            StatusCode::CONFLICT => "Not done",
            _ => "Something went wrong",
        }
    }

    /// The sentence shown to the person. Internal failures are logged here, once, with their
    /// whole cause chain, and shown without it.
    pub fn public_message(&self) -> String {
        match self {
            ConsoleError::Backend(BackendError::Internal(cause)) => {
                tracing::error!(error = %chain(cause.as_ref()), "console: backend failed");
                "The service could not complete this request. Nothing is lost; the details are \
                 in the service log. Try again, and if it persists, tell whoever runs dingsync."
                    .to_owned()
            }
            ConsoleError::Render(cause) => {
                tracing::error!(error = %chain(cause), "console: template failed");
                "This page could not be drawn. The details are in the service log.".to_owned()
            }
            other => {
                let mut message = other.to_string();
                if let Some(first) = message.get_mut(0..1) {
                    first.make_ascii_uppercase();
                }
                message
            }
        }
    }
}

/// `error: cause: cause…`, for the log.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
