//! The `trailscope` binary: parse arguments, run the command, map errors to exit codes
//! (0 ok, 1 error, 2 some input was bad but the results were printed), ripgrep style.

use std::process::ExitCode;

use clap::Parser;
mod cli;
mod commands;

use cli::{Cli, Command};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (see mimalloc.h).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // Hand freed memory back to the OS only after it has lain unused for half a second (mimalloc's
    // default is 10 ms). Returned pages come back zeroed by the kernel when touched again: at 10 ms
    // that doubled the time of a scan of many small files (6.9 s -> 4.7 s for 9,191 files without
    // purging). Never purging cost memory instead: pages freed on one thread and not reused by
    // another piled up over a run, and `scan` over 10 M events rose to 0.44 GB where 1 M took
    // 0.28-0.32 GB. At 500 ms it stays at 0.31 GB, 2% slower on large files (README, Memory).
    // SAFETY: a plain option setter, called before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 500) };
    // No transparent huge pages (mimalloc asks for them on the arenas it maps, from before main):
    // the kernel zeroed each 2 MiB page whole on its first touch, 12% of `hunt`'s CPU (perf);
    // without them system time fell from 2.3-3.0 s to 0.9-1.0 s and peak RSS by 7-12% (1 M
    // events, measured with `MIMALLOC_ALLOW_THP=0`). The flag applies to mappings made before it.
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with an integer option and integer arguments touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
    // A usage error (unknown flag, bad value, missing INPUT) exits 1 like every error that stops a
    // command; clap's own default, 2, means "some input was bad" here. --help and --version exit 0.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 1 } else { 0 });
        }
    };
    if let Some(n) = cli.threads {
        // Before any pool exists: rayon's (reading) and Polars' (queries) both take it.
        // SAFETY (edition 2021: a safe call): no other thread has started yet.
        std::env::set_var("POLARS_MAX_THREADS", n.to_string());
        let _ = rayon::ThreadPoolBuilder::new().num_threads(usize::from(n)).build_global();
    }
    let started = std::time::Instant::now();
    let result = match &cli.command {
        Command::Scan(args) => commands::scan::run(args),
        Command::Question(asked) => asked.run(),
        Command::Pull(args) => commands::pull::run(args),
        Command::Report(args) => commands::report::run(args),
        Command::Compact(args) => commands::compact::run(args),
        Command::SqlPack(args) => commands::sql_pack::run(args),
        // verify has its own exit codes: 1 for integrity problems, 2 for unreadable input.
        Command::Verify(args) => match commands::verify::run(args) {
            Ok(code) => return ExitCode::from(code),
            Err(e) => Err(e),
        },
    };
    if result.is_ok() {
        commands::closing::print(started);
    }
    match result {
        Ok(false) => ExitCode::SUCCESS,
        Ok(true) => ExitCode::from(2),
        Err(e) => {
            if e.is_broken_pipe() {
                return ExitCode::SUCCESS;
            }
            let err = anyhow::Error::from(e);
            // The message can quote input (a name, a value): never raw control characters (#13).
            // Its own line breaks stay (an SQL error lists the columns on a line of its own).
            let msg = format!("{err:#}");
            let lines: Vec<_> = msg.split('\n').map(trailscope::fs::printable).collect();
            eprintln!("trailscope: {}", lines.join("\n"));
            ExitCode::from(1)
        }
    }
}
