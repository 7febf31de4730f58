//! A node's stdout: read on a thread of its own (so the node never blocks on a full pipe), kept in
//! memory for the tests that read what it printed, and appended to its log.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::process::ChildStdout;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// Lines kept per start; Relay prints a handful, so more means something is wrong.
const LINES_MAX: usize = 10_000;

#[derive(Default)]
pub(crate) struct Output {
    state: Mutex<Lines>,
    changed: Condvar,
}

#[derive(Default)]
struct Lines {
    lines: Vec<String>,
    /// The process closed its stdout (it exited).
    closed: bool,
}

impl Output {
    /// Starts the thread that drains `stdout` into a new `Output` and `log`.
    pub(crate) fn capture(stdout: ChildStdout, mut log: File) -> Arc<Output> {
        let output = Arc::new(Output::default());
        let shared = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = writeln!(log, "{line}");
                let mut state = shared.lock();
                if state.lines.len() < LINES_MAX {
                    state.lines.push(line);
                }
                shared.changed.notify_all();
            }
            shared.lock().closed = true;
            shared.changed.notify_all();
        });
        output
    }

    fn lock(&self) -> MutexGuard<'_, Lines> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn lines(&self) -> Vec<String> {
        self.lock().lines.clone()
    }

    /// What follows `prefix` on the first line that starts with it, if one was printed.
    pub(crate) fn line_after(&self, prefix: &str) -> Option<String> {
        find(&self.lock().lines, prefix)
    }

    /// Waits for a line starting with `prefix` and returns the rest of it; `Some(Err)` when the
    /// process exited first, `None` at the deadline.
    pub(crate) fn wait_for_line(&self, prefix: &str, deadline: Instant) -> Option<Result<String, ()>> {
        let mut state = self.lock();
        loop {
            if let Some(rest) = find(&state.lines, prefix) {
                return Some(Ok(rest));
            }
            if state.closed {
                return Some(Err(()));
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

fn find(lines: &[String], prefix: &str) -> Option<String> {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(prefix))
        .map(|rest| rest.trim().to_string())
}
