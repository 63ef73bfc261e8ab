//! The closing summary a command prints on stderr when stderr is a terminal (as Hayabusa and
//! chainsaw do): events, files read, skipped and failed, and the time taken. Commands that load
//! events record what they read here; `main` prints it after the answer.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Instant;

use trailscope::ingest::pipeline::ReadStats;

struct Closing {
    events: u64,
    files: u64,
    skipped: u64,
    failed: u64,
    rejected: u64,
    stores: usize,
    quiet: bool,
}

static CLOSING: Mutex<Option<Closing>> = Mutex::new(None);

/// Remember what a command read (the last call wins; a command loads its input once).
pub fn record(stats: &ReadStats, stores: usize, quiet: bool) {
    let c = Closing {
        events: stats.records,
        files: stats.files,
        skipped: stats.files_skipped,
        failed: stats.files_failed,
        rejected: stats.records_rejected,
        stores,
        quiet,
    };
    if let Ok(mut slot) = CLOSING.lock() {
        *slot = Some(c);
    }
}

/// The summary line, when a command recorded one.
fn line(started: Instant) -> Option<String> {
    let c = CLOSING.lock().ok()?.take()?;
    if c.quiet {
        return None;
    }
    let mut parts = vec![format!("{} events read from {} files", c.events, c.files)];
    if c.stores > 0 {
        parts[0] = format!("{} store(s) and {} files read ({} events from the files)", c.stores, c.files, c.events);
    }
    parts.push(format!("{} skipped", c.skipped));
    parts.push(format!("{} failed", c.failed));
    if c.rejected > 0 {
        parts.push(format!("{} records rejected", c.rejected));
    }
    Some(format!("trailscope: {} in {:.1} s", parts.join(", "), started.elapsed().as_secs_f64()))
}

/// Print the summary on stderr if it is a terminal (`TRAILSCOPE_SUMMARY=always` prints it anyway,
/// `never` not at all).
pub fn print(started: Instant) {
    let wanted = match std::env::var("TRAILSCOPE_SUMMARY").as_deref() {
        Ok("always") => true,
        Ok("never") => false,
        _ => std::io::stderr().is_terminal(),
    };
    if let (true, Some(l)) = (wanted, line(started)) {
        eprintln!("{l}");
    }
}
