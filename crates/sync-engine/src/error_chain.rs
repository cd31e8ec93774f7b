//! One line for an error and every cause behind it.
//!
//! The engine's errors wrap their causes (`#[source]`), and `Display` shows only the outermost
//! one, so a log line or an inbox's `last_error` that printed `{error}` would read "directory
//! store failed" and lose why. This is the single place that walks the chain; the binary uses
//! it too, so every surface spells a cause chain the same way.

/// An error with its causes, outermost first, joined by `": "`.
///
/// Never holds secrets as long as the errors do not: the client's errors are built without them.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner")]
    struct Inner(#[source] std::io::Error);

    #[test]
    fn every_cause_is_on_the_line_outermost_first() {
        let e = Outer(Inner(std::io::Error::other("disk gone")));
        assert_eq!(error_chain(&e), "outer: inner: disk gone");
        assert_eq!(error_chain(&std::io::Error::other("alone")), "alone");
    }
}
