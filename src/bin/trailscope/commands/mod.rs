//! One module per subcommand; each takes its parsed arguments and a writer for its data. The
//! questions (`root`, `activity`, ...) are registered once, below, in [`QUESTIONS`], from which
//! `questions` builds their subcommands and runs them.

pub mod closing;
pub mod compact;
pub mod pull;
pub mod questions;
pub mod report;
pub mod scan;
pub mod sql_pack;
pub mod verify;

/// Declares each question's module (`commands/<name>.rs`, holding its `QUESTION`) and lists them,
/// in the order given, in `QUESTIONS`: a question's registry line is the only line it needs here.
macro_rules! questions {
    ($($name:ident),+ $(,)?) => {
        $(mod $name;)+

        /// Every question, in the order `--help` lists them (after `scan`): the question registry.
        pub static QUESTIONS: &[&dyn questions::Asks] = &[$(&$name::QUESTION),+];
    };
}

// The question registry: one line per question (its place is its place in `--help`).
questions! {
    root,
    activity,
    failures,
    timeline,
    detect,
    hunt,
    sql,
    unused,
    sessions,
}

pub use trailscope::output::open_output;

/// Report bad input on stderr (the summary has it too) and say whether the exit code should be 2.
pub fn warn_bad_input(stats: &trailscope::ingest::pipeline::ReadStats) -> bool {
    // Paths are escaped already (`fs::display_path`); reasons are ours, escaped all the same.
    use trailscope::fs::printable;
    for f in &stats.failed {
        eprintln!("trailscope: {}: {}", f.path, printable(&f.reason));
    }
    for r in &stats.rejected {
        eprintln!("trailscope: {}: {} records rejected: {}", r.path, r.records, printable(&r.reason));
    }
    stats.files_failed > 0 || stats.records_rejected > 0
}
