//! A progress bar for long command-line work, drawn on stderr: redrawn in place on a
//! terminal, one plain line every few seconds when stderr is a file or a pipe (CI logs).

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WIDTH: usize = 30;
const PLAIN_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct ProgressBar {
    what: &'static str,
    terminal: bool,
    last_plain: Mutex<Option<Instant>>,
}

impl ProgressBar {
    pub fn new(what: &'static str) -> Self {
        Self {
            what,
            terminal: std::io::stderr().is_terminal(),
            last_plain: Mutex::new(None),
        }
    }

    /// The bar's text: `[#######.......] 120/1200 (20.0/s) ok 118`.
    pub fn render(what: &str, done: u64, total: u64, ok: u64, elapsed: Duration) -> String {
        let filled = if total == 0 {
            WIDTH
        } else {
            ((done as f64 / total as f64) * WIDTH as f64).round() as usize
        }
        .min(WIDTH);
        let rate = done as f64 / elapsed.as_secs_f64().max(1e-3);
        format!(
            "[{}{}] {done}/{total} {what} ({rate:.1}/s) ok {ok}",
            "#".repeat(filled),
            ".".repeat(WIDTH - filled)
        )
    }

    pub fn update(&self, done: u64, total: u64, ok: u64, elapsed: Duration) {
        let line = Self::render(self.what, done, total, ok, elapsed);
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let end = if done >= total { "\n" } else { "" };
            let _ = write!(err, "\r{line}{end}");
            let _ = err.flush();
        } else {
            let mut last = self.last_plain.lock().expect("progress lock");
            if done >= total || last.is_none_or(|t| t.elapsed() >= PLAIN_EVERY) {
                let _ = writeln!(err, "{line}");
                *last = Some(Instant::now());
            }
        }
    }
}

impl crate::simulate::Progress for ProgressBar {
    fn update(&self, done: u64, total: u64, accepted: u64, elapsed: Duration) {
        ProgressBar::update(self, done, total, accepted, elapsed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_with_the_work() {
        let s = ProgressBar::render("messages", 15, 30, 14, Duration::from_secs(3));
        assert_eq!(
            s,
            "[###############...............] 15/30 messages (5.0/s) ok 14"
        );
        let done = ProgressBar::render("messages", 30, 30, 30, Duration::from_secs(3));
        assert!(done.starts_with(&format!("[{}]", "#".repeat(WIDTH))));
    }
}
