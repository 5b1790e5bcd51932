//! Progress reporting: a bar on a terminal, plain lines otherwise.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    label: String,
    total: u64,
    done: u64,
    last_line: Instant,
    start: Instant,
}

impl Progress {
    pub fn new(label: &str, total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            // A total of 0 means unknown: a counter instead of a bar.
            let (bar, template) = match total {
                0 => (
                    ProgressBar::new_spinner(),
                    "{spinner} {msg} {pos} ({per_sec})",
                ),
                _ => (
                    ProgressBar::new(total),
                    "{msg} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})",
                ),
            };
            bar.set_style(
                ProgressStyle::with_template(template)
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_message(label.to_string());
            bar
        });
        Progress {
            bar,
            label: label.to_string(),
            total,
            done: 0,
            last_line: Instant::now(),
            start: Instant::now(),
        }
    }

    pub fn inc(&mut self, n: u64) {
        self.done += n;
        match &self.bar {
            Some(bar) => bar.inc(n),
            None => {
                if self.last_line.elapsed().as_secs() >= 10 || self.done == self.total {
                    self.last_line = Instant::now();
                    // A total of 0 means unknown: the count alone, not "n/0".
                    let of = match self.total {
                        0 => String::new(),
                        t => format!("/{t}"),
                    };
                    eprintln!(
                        "{}: {}{of} ({:.0}s)",
                        self.label,
                        self.done,
                        self.start.elapsed().as_secs_f64()
                    );
                }
            }
        }
    }

    /// Moves to `done` (for work that reports where it is rather than how much it did).
    pub fn set_position(&mut self, done: u64) {
        if done > self.done {
            self.inc(done - self.done);
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
