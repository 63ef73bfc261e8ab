//! Integration tests of the `trailscope` binary.
//!
//! This is the ONE integration-test crate (one link against the library's heavy dependencies, one test
//! binary to run). It holds the shared helpers; the tests live in one module per subcommand under
//! `tests/cli/`. To add a command's tests: create `tests/cli/<command>.rs` and add a line
//! `#[path = "cli/<command>.rs"] mod <command>;` below (the path is needed because this file is a
//! crate root, whose modules would otherwise be looked up in `tests/`, where cargo would also build
//! them as separate test crates).
//!
//! Expected values come from `testdata/golden/*.json`, computed by `scripts/golden.py` independently of
//! the Rust code, or from facts checked by hand against the input files; never from trailscope itself.

// The binary's clap definitions and commands, compiled here so that their tests (the clap consistency
// test, the question registry's) run with the others; the binary has no test harness.
#[path = "cli/access.rs"]
mod access;
#[allow(dead_code)]
#[path = "../src/bin/trailscope/cli.rs"]
mod cli_definition;
#[allow(dead_code)]
#[path = "../src/bin/trailscope/commands/mod.rs"]
mod commands;
// The binary's modules name each other `crate::cli`, `crate::commands`.
use cli_definition as cli;
#[path = "cli/hardening.rs"]
mod hardening;
#[path = "cli/hunt.rs"]
mod hunt;
#[path = "cli/lake.rs"]
mod lake;
#[path = "cli/memory.rs"]
mod memory;
#[path = "cli/output.rs"]
mod output;
#[path = "cli/pull.rs"]
mod pull;
#[path = "cli/questions.rs"]
mod questions;
#[path = "cli/report.rs"]
mod report;
#[path = "cli/scan.rs"]
mod scan;
#[path = "cli/unused.rs"]
mod unused;
#[path = "cli/verify.rs"]
mod verify;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The repository root: commands run here, so `testdata/...` paths print as they are written.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// One invocation of the binary under test, built up argument by argument.
#[derive(Debug, Clone)]
pub struct TestCommand {
    args: Vec<OsString>,
    dir: PathBuf,
    env: Vec<(OsString, OsString)>,
}

/// What a finished command printed and returned.
#[derive(Debug)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    /// The exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// The command line, for failure messages.
    pub cmdline: String,
}

impl TestCommand {
    /// `trailscope` with these first arguments (typically the subcommand), run in the repository root.
    pub fn new<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        TestCommand {
            args: args.into_iter().map(Into::into).collect(),
            dir: repo_root().to_path_buf(),
            env: Vec::new(),
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Set an environment variable for the run.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = dir.into();
        self
    }

    /// Run to completion, capturing stdout and stderr.
    pub fn run(&self) -> Output {
        let cmdline = format!(
            "trailscope {}",
            self.args.iter().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ")
        );
        let out = Command::new(env!("CARGO_BIN_EXE_trailscope"))
            .args(&self.args)
            .current_dir(&self.dir)
            .env_remove("RUST_LOG")
            .env_remove("COLUMNS")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cmdline}: {e}"));
        Output {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code(),
            cmdline,
        }
    }
}

impl Output {
    /// Assert the exit code, showing the command and its stderr if it differs.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "exit code of `{}`\nstderr:\n{}", self.cmdline, self.stderr);
        self
    }

    /// stdout parsed as one JSON document.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("stdout of `{}` is not JSON ({e}):\n{}\nstderr:\n{}", self.cmdline, self.stdout, self.stderr)
        })
    }
}

/// `testdata/golden/<name>.json` (see `scripts/golden.py`).
#[track_caller]
pub fn golden(name: &str) -> Value {
    let path = repo_root().join("testdata/golden").join(format!("{name}.json"));
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (run scripts/golden.py)", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `v[key]` as an unsigned number; panics if absent or of another type.
#[track_caller]
pub fn num(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or_else(|| panic!("no number {key:?} in {v:#}"))
}

/// `v[key]` as an array; panics if absent or of another type.
#[track_caller]
pub fn list<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    v.get(key).and_then(Value::as_array).unwrap_or_else(|| panic!("no list {key:?} in {v:#}"))
}

/// `v[key]` as a string; panics if absent or of another type.
#[track_caller]
pub fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_else(|| panic!("no string {key:?} in {v:#}"))
}

/// `--version` names the commit the binary was built from (#15), so a report can say which build
/// made it.
#[test]
fn version_names_the_commit() {
    let out = TestCommand::new(["--version"]).run();
    out.expect_code(0);
    let head = Command::new("git").args(["log", "-1", "--format=%h"]).current_dir(repo_root()).output();
    let head = head.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
    assert!(!head.is_empty(), "the tests run in a git checkout");
    assert!(
        out.stdout.starts_with(&format!("trailscope {} ({head} ", env!("CARGO_PKG_VERSION"))),
        "version line {:?} does not name commit {head}",
        out.stdout
    );
}
