//! What an attempt at one outbox entry came to, and how DingTalk's answers map onto it.
//!
//! Every per-kind push ends in a [`Step`]; the round in `mod.rs` turns it into a done mark, a
//! later retry, a blocked wait or a dead letter. Keeping the classification of DingTalk's
//! errors here means each kind's file only says which codes mean what *for that kind*.

use std::ops::ControlFlow;

use dingtalk_client::ClientError;
use dingtalk_proto as wire;

use super::Failpoint;

/// What to do with an entry after one attempt.
#[derive(Debug)]
pub(super) enum Step {
    /// DingTalk holds the entity's current state (or there was nothing to push).
    Done,
    /// Try again later: a transient failure or a dependency without a DingTalk id.
    Retry { error: String, throttled: bool },
    /// Retrying cannot help; park it for a human.
    Dead(String),
    /// A dependency is itself a dead letter: wait for the operator to fix and retry it,
    /// however long that takes, without ever becoming a dead letter (which would lose the
    /// order: the dependant could be retried before what it depends on).
    Blocked(String),
    /// A failpoint fired: leave the entry claimed, as a crashed process would.
    Crash(Failpoint),
    /// Not attempted: its round ran too close to the claim's lease end. It is ready again at
    /// once, for whichever worker claims it next.
    Unstarted,
}

/// Either the value a push goes on with, or the step it stops at.
pub(super) type Flow<T> = ControlFlow<Step, T>;

impl Step {
    pub(super) fn wait(why: impl Into<String>) -> Self {
        Self::Retry {
            error: why.into(),
            throttled: false,
        }
    }

    /// The step a DingTalk failure calls for.
    pub(super) fn from_client(error: &ClientError) -> Self {
        if error.is_retryable() {
            Self::Retry {
                error: error.to_string(),
                throttled: error.is_throttle(),
            }
        } else {
            Self::Dead(error.to_string())
        }
    }
}

/// Whether DingTalk answered with one of `codes`.
pub(super) fn is_code(error: &ClientError, codes: &[wire::ErrCode]) -> bool {
    error.errcode().is_some_and(|c| codes.contains(&c))
}

/// Whether DingTalk says the entity is unknown.
pub(super) fn is_not_found(error: &ClientError) -> bool {
    match error {
        ClientError::Api {
            errcode, sub_code, ..
        } => errcode.is_not_found(sub_code.as_deref()),
        _ => false,
    }
}

/// Whether an earlier attempt of this very call may have been processed (its answer was lost).
pub(super) fn prior_attempt_may_have_succeeded(error: &ClientError) -> bool {
    matches!(
        error,
        ClientError::Api {
            prior_attempt_may_have_succeeded: true,
            ..
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: i64, prior: bool) -> ClientError {
        ClientError::Api {
            api: "/topapi/v2/user/create",
            errcode: wire::ErrCode(code),
            sub_code: None,
            errmsg: "msg".into(),
            request_id: None,
            prior_attempt_may_have_succeeded: prior,
        }
    }

    #[test]
    fn dingtalk_errors_become_retries_or_dead_letters() {
        // A clash a retry cannot fix: dead letter, carrying the code.
        match Step::from_client(&api_error(60104, false)) {
            Step::Dead(msg) => assert!(msg.contains("60104"), "{msg}"),
            other => panic!("{other:?}"),
        }
        // Busy and throttled: later, throttles at least DingTalk's window.
        assert!(matches!(
            Step::from_client(&api_error(-1, false)),
            Step::Retry {
                throttled: false,
                ..
            }
        ));
        assert!(matches!(
            Step::from_client(&api_error(90018, false)),
            Step::Retry {
                throttled: true,
                ..
            }
        ));
        assert!(is_code(
            &api_error(60102, false),
            &[wire::ErrCode::USERID_EXISTS]
        ));
        assert!(is_not_found(&api_error(60121, false)));
        assert!(prior_attempt_may_have_succeeded(&api_error(60008, true)));
        assert!(!prior_attempt_may_have_succeeded(&api_error(60008, false)));
    }
}
