//! The call log: when each admitted DingTalk business call started and was answered, as
//! positions in one sequence (`GET /_sim/calls/log`), and which entity it named (`userid`,
//! `dept_id`). Positions rather than times, so a test can tell from the simulator's own record
//! whether two calls overlapped (each started before the other was answered) or followed each
//! other, without timing anything. "Answered" is when the answer left, after `latency_ms`.
//!
//! Only the newest [`CAPACITY`] calls are kept, so a long benchmark does not grow the simulator.

use std::collections::VecDeque;

use serde::Serialize;

/// How many calls the log keeps (the oldest go first).
pub(crate) const CAPACITY: usize = 20_000;

/// One logged call.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct LoggedCall {
    /// The call's number (in arrival order, from 1).
    pub id: u64,
    /// The API path.
    pub path: String,
    /// The `userid` or `dept_id` parameter, if the call had one.
    pub subject: Option<String>,
    /// Position in the log's sequence when the call was admitted.
    pub started: u64,
    /// Position when its answer left (`None` while in flight).
    pub answered: Option<u64>,
}

/// The log of one corp.
#[derive(Debug, Default)]
pub(crate) struct CallLog {
    /// The last position handed out (starts and answers share one sequence).
    position: u64,
    /// The last call number handed out.
    last_id: u64,
    /// The newest calls, oldest first.
    calls: VecDeque<LoggedCall>,
}

/// Which logged call a response answers (carried in the response's extensions to the latency
/// layer, which marks it answered after the latency).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoggedCallId(pub u64);

impl CallLog {
    /// Logs the start of a call; returns its id.
    pub(crate) fn start(&mut self, path: &str, subject: Option<String>) -> LoggedCallId {
        self.position += 1;
        self.last_id += 1;
        if self.calls.len() >= CAPACITY {
            self.calls.pop_front();
        }
        self.calls.push_back(LoggedCall {
            id: self.last_id,
            path: path.to_owned(),
            subject,
            started: self.position,
            answered: None,
        });
        LoggedCallId(self.last_id)
    }

    /// Marks call `id` answered (a no-op if it has left the log).
    pub(crate) fn answered(&mut self, id: LoggedCallId) {
        self.position += 1;
        let position = self.position;
        let first = self.calls.front().map_or(0, |c| c.id);
        let index =
            id.0.checked_sub(first)
                .and_then(|i| usize::try_from(i).ok());
        if let Some(call) = index.and_then(|i| self.calls.get_mut(i))
            && call.id == id.0
        {
            call.answered = Some(position);
        }
    }

    /// The logged calls, oldest first.
    pub(crate) fn calls(&self) -> impl Iterator<Item = &LoggedCall> {
        self.calls.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_order_starts_and_answers() {
        let mut log = CallLog::default();
        let a = log.start("/a", Some("u1".into()));
        let b = log.start("/a", None);
        log.answered(a);
        log.answered(b);
        let calls: Vec<_> = log.calls().cloned().collect();
        assert_eq!(calls[0].started, 1);
        assert_eq!(calls[1].started, 2);
        assert_eq!(calls[0].answered, Some(3));
        assert_eq!(calls[1].answered, Some(4));
        assert_eq!(calls[0].subject.as_deref(), Some("u1"));
    }

    #[test]
    fn keeps_only_the_newest() {
        let mut log = CallLog::default();
        let first = log.start("/a", None);
        for _ in 0..CAPACITY {
            log.start("/b", None);
        }
        log.answered(first);
        assert_eq!(log.calls().count(), CAPACITY);
        assert!(log.calls().all(|c| c.path == "/b" && c.answered.is_none()));
    }
}
