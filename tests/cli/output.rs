//! The output layer as a shell user meets it.

use std::io::Read;
use std::process::{Command, Stdio};

use crate::repo_root;

/// `trailscope timeline ... | head` (#11): when the reader goes away, every format exits 0 without a
/// word (it printed "Broken pipe (os error 32)" and exited 1 for JSON and JSON Lines).
#[test]
fn a_closed_pipe_ends_every_format_quietly() {
    for format in ["json", "jsonl", "csv", "table", "timesketch"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_trailscope"))
            .args(["timeline", "testdata/invictus-ir", "testdata/stratus-red-team", "-q", "--format", format])
            .current_dir(repo_root())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start trailscope");
        let mut first = [0u8; 64];
        child.stdout.as_mut().expect("stdout").read_exact(&mut first).expect("the first bytes");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "--format {format}: exit code; stderr: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "--format {format} complained: {stderr}");
    }
}

/// One exit-code scheme (#11): a mistyped flag, an unknown format or a missing INPUT stop the command
/// with 1, as README says (clap's default was 2, the code for "some input was bad"); --help is 0.
#[test]
fn usage_errors_exit_1() {
    for args in [
        &["activity", "testdata/invictus-ir", "--no-such-flag"][..],
        &["activity", "testdata/invictus-ir", "--format", "xlsx"],
        &["activity"],
        &["no-such-command"],
    ] {
        let out = crate::TestCommand::new(args.iter().copied()).run();
        assert_eq!(out.code, Some(1), "trailscope {args:?}: stderr {}", out.stderr);
        assert!(out.stderr.contains("error"), "trailscope {args:?} says why: {}", out.stderr);
    }
    crate::TestCommand::new(["activity", "--help"]).run().expect_code(0);
}
