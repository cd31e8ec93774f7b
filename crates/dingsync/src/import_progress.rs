//! How `dingsync import` (and the demo) show the import's progress to a person.
//!
//! Why this exists apart from the engine's [`Progress`]: the engine reports snapshots that each
//! carry only what its phase knows (the link phase says nothing of users written, the users
//! phase nothing of departments), and it reports once per written batch. Rendered raw that read
//! "0/0 written" for the whole link phase, "0 departments" while departments existed, and, off a
//! terminal, nothing at all for as long as a phase took. [`ProgressView`] keeps what earlier
//! snapshots said, renders each phase in its own words with how long it has been running, and
//! [`LogLines`] prints a line when the phase changes, at most every [`LOG_EVERY`] otherwise,
//! and, through [`LogLines::heartbeat`], every [`LOG_EVERY`] while nothing is reported.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sync_engine::import::{ImportPhase, ImportProgress, Progress};
use tokio_util::sync::CancellationToken;

/// How often a line is printed when not on a terminal.
pub const LOG_EVERY: Duration = Duration::from_secs(5);

/// What the import has said so far, merged across phases.
#[derive(Debug)]
pub struct ProgressView {
    state: Mutex<ViewState>,
}

#[derive(Debug)]
struct ViewState {
    seen: Progress,
    phase_started: Instant,
}

impl Default for ProgressView {
    fn default() -> Self {
        Self {
            state: Mutex::new(ViewState {
                seen: Progress::default(),
                phase_started: Instant::now(),
            }),
        }
    }
}

impl ProgressView {
    /// Takes a snapshot in; returns whether it started a new phase.
    pub fn update(&self, p: &Progress) -> bool {
        let Ok(mut s) = self.state.lock() else {
            return false;
        };
        let new_phase = s.seen.phase != p.phase;
        if new_phase {
            s.phase_started = Instant::now();
        }
        let seen = &mut s.seen;
        seen.phase = p.phase;
        // A snapshot's zero means "this phase does not count that", not "none".
        seen.departments = seen.departments.max(p.departments);
        seen.users_listed = seen.users_listed.max(p.users_listed);
        if p.users_total > 0 || p.users_written > 0 {
            seen.users_written = p.users_written;
            seen.users_total = p.users_total;
        }
        new_phase
    }

    /// The current line.
    pub fn line(&self) -> String {
        match self.state.lock() {
            Ok(s) => render(&s.seen, s.phase_started.elapsed()),
            Err(_) => String::new(),
        }
    }
}

/// One phase in its own words.
pub fn render(p: &Progress, in_phase: Duration) -> String {
    let (d, listed) = (p.departments, p.users_listed);
    let secs = in_phase.as_secs();
    match p.phase {
        ImportPhase::Crawl => format!("reading DingTalk: {d} departments, {listed} users listed"),
        ImportPhase::Link => format!(
            "matching {d} departments and {listed} users to the OA directory, writing \
             departments ({secs}s)"
        ),
        ImportPhase::Users => format!(
            "users: {}/{} written ({d} departments)",
            p.users_written, p.users_total
        ),
        ImportPhase::Roles => format!("role groups, roles and assignments ({secs}s)"),
        ImportPhase::Deletions => format!("deletions ({secs}s)"),
        ImportPhase::Done => format!(
            "done: {d} departments, {}/{} users written",
            p.users_written, p.users_total
        ),
    }
}

/// Progress off a terminal (a pipe, a service manager's log): plain lines on stderr.
#[derive(Debug, Clone)]
pub struct LogLines {
    view: Arc<ProgressView>,
    last_line: Arc<Mutex<Instant>>,
    every: Duration,
}

impl LogLines {
    /// Lines at most every `every` (besides phase changes).
    pub fn new(every: Duration) -> Self {
        Self {
            view: Arc::new(ProgressView::default()),
            last_line: Arc::new(Mutex::new(Instant::now())),
            every,
        }
    }

    /// Prints the current line if nothing was printed for `every`; returns it when printed.
    fn maybe_print(&self, force: bool) -> Option<String> {
        let mut last = self.last_line.lock().ok()?;
        if !force && last.elapsed() < self.every {
            return None;
        }
        *last = Instant::now();
        let line = self.view.line();
        eprintln!("import: {line}");
        Some(line)
    }

    /// Prints the current line every `every` while nothing else does, until `stop` fires: a
    /// long phase (linking, a slow DingTalk) never goes silent.
    pub async fn heartbeat(self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.every);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => { self.maybe_print(false); }
            }
        }
    }
}

impl ImportProgress for LogLines {
    fn report(&self, p: &Progress) {
        let new_phase = self.view.update(p);
        self.maybe_print(new_phase);
    }
}

/// Progress on a terminal: the spinner's message, merged the same way.
#[derive(Debug)]
pub struct Spinner {
    bar: indicatif::ProgressBar,
    view: ProgressView,
}

impl Spinner {
    /// Renders into `bar`.
    pub fn new(bar: indicatif::ProgressBar) -> Self {
        Self {
            bar,
            view: ProgressView::default(),
        }
    }
}

impl ImportProgress for Spinner {
    fn report(&self, p: &Progress) {
        self.view.update(p);
        self.bar.set_message(self.view.line());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(phase: ImportPhase, d: usize, listed: usize, w: usize, t: usize) -> Progress {
        Progress {
            phase,
            departments: d,
            users_listed: listed,
            users_written: w,
            users_total: t,
        }
    }

    #[test]
    fn later_phases_keep_what_earlier_ones_counted() {
        let view = ProgressView::default();
        // The view starts in the crawl phase.
        assert!(!view.update(&snap(ImportPhase::Crawl, 40, 900, 0, 0)));
        assert!(view.update(&snap(ImportPhase::Link, 41, 1000, 0, 0)));
        let link = view.line();
        assert!(link.contains("41 departments and 1000 users"), "{link}");
        assert!(!link.contains("0/0"), "{link}");
        assert!(view.update(&snap(ImportPhase::Users, 0, 1000, 100, 1000)));
        let users = view.line();
        assert!(
            users.contains("100/1000 written (41 departments)"),
            "{users}"
        );
        assert!(!view.update(&snap(ImportPhase::Users, 0, 1000, 200, 1000)));
        assert!(view.update(&snap(ImportPhase::Roles, 0, 0, 0, 0)));
        assert!(view.update(&snap(ImportPhase::Done, 41, 1000, 1000, 1000)));
        assert_eq!(view.line(), "done: 41 departments, 1000/1000 users written");
    }

    #[tokio::test]
    async fn off_a_terminal_a_quiet_phase_still_prints_lines() {
        let lines = LogLines::new(Duration::from_millis(50));
        lines.report(&snap(ImportPhase::Link, 3, 30, 0, 0));
        // Within the interval and in the same phase: nothing new is printed…
        assert_eq!(lines.maybe_print(false), None);
        // …but the heartbeat prints while the phase stays silent.
        let before = *lines.last_line.lock().expect("lock");
        let stop = CancellationToken::new();
        let beat = tokio::spawn(lines.clone().heartbeat(stop.clone()));
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.cancel();
        beat.await.expect("heartbeat ends");
        let after = *lines.last_line.lock().expect("lock");
        assert!(after > before, "the heartbeat printed a line");
    }
}
