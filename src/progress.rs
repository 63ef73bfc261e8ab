//! Progress on stderr (files, MB, events/s), shown only on a terminal and without `--quiet`, so
//! stdout carries data only. Passed down as a value; no globals.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    events: AtomicU64,
    bytes: AtomicU64,
}

impl Progress {
    /// A bar over `files` files of `bytes` bytes in all, if stderr is a terminal and not `quiet`.
    pub fn new(files: u64, bytes: u64, quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal() && files > 0).then(|| {
            let bar = ProgressBar::with_draw_target(Some(files), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} files {msg} (eta {eta})",
                )
                .expect("valid template"),
            );
            bar.set_message(format!("0/{} MB", bytes >> 20));
            bar
        });
        Progress { bar, events: AtomicU64::new(0), bytes: AtomicU64::new(0) }
    }

    /// No output at all.
    pub fn hidden() -> Self {
        Progress { bar: None, events: AtomicU64::new(0), bytes: AtomicU64::new(0) }
    }

    pub fn file_done(&self, bytes: u64, events: u64) {
        let Some(bar) = &self.bar else { return };
        let b = self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let e = self.events.fetch_add(events, Ordering::Relaxed) + events;
        let secs = bar.elapsed().as_secs_f64().max(1e-3);
        bar.set_message(format!("{} MB, {:.0} events/s", b >> 20, e as f64 / secs));
        bar.inc(1);
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
