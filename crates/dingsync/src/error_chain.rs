//! `error: cause: cause…` — an error with its whole source chain on one line, for log lines and
//! the operations snapshot. The binary's one copy (the callback receiver, the OA API, readiness
//! and the stats writer all use it).

/// The error and all its sources, joined by `: `.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
