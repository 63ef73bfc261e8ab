//! The output layer as a shell user meets it.

use std::io::Read;
use std::process::{Command, Stdio};

use crate::{repo_root, TestCommand};

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

/// The commands that write one JSON document (report, scan, verify, ...) end as quietly when the
/// reader goes away mid-document (#11: serde_json's write error became a usage error, so `report
/// --format json | head -c 64` said "Broken pipe (os error 32)" and exited 1).
#[test]
fn a_closed_pipe_ends_a_json_document_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_trailscope"))
        .args(["report", "testdata/stratus-red-team", "--format", "json", "-q"])
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
    assert_eq!(out.status.code(), Some(0), "exit code; stderr: {stderr}");
    assert!(!stderr.contains("Broken pipe"), "complained: {stderr}");
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

/// Tables fit the terminal (`COLUMNS`), long cells cut with an ellipsis; `--wide` shows them whole
/// (#11: activity, detect, failures and timeline printed lines of 249-499 characters at any width).
#[test]
fn tables_fit_the_terminal_unless_wide() {
    for cmd in ["activity", "detect", "failures", "timeline", "hunt"] {
        let fitted =
            TestCommand::new([cmd, "testdata/invictus-ir", "--format", "table", "-q"]).env("COLUMNS", "80").run();
        fitted.expect_code(0);
        let widest = fitted.stdout.lines().map(|l| l.chars().count()).max().unwrap_or(0);
        assert!(widest <= 80, "{cmd}: a line of {widest} characters at COLUMNS=80");
        assert!(fitted.stdout.contains('…'), "{cmd}: long cells are cut with an ellipsis");
        let wide = TestCommand::new([cmd, "testdata/invictus-ir", "--format", "table", "-q", "--wide"])
            .env("COLUMNS", "80")
            .run();
        let widest = wide.stdout.lines().map(|l| l.chars().count()).max().unwrap_or(0);
        assert!(widest > 80, "{cmd} --wide: lines as wide as their cells");
    }
}

/// `--columns` chooses columns, in order, in every format; a column that does not exist is a usage
/// error naming the ones that do.
#[test]
fn columns_choose_what_is_written() {
    let csv =
        TestCommand::new(["activity", "testdata/invictus-ir", "--format", "csv", "--columns", "events,principal"])
            .run();
    csv.expect_code(0);
    assert_eq!(csv.stdout.lines().next(), Some("events,principal"));
    let json =
        TestCommand::new(["detect", "testdata/invictus-ir", "--format", "jsonl", "--columns", "check_id,outcome"])
            .run();
    for line in json.stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v.as_object().unwrap().keys().cloned().collect::<Vec<_>>(), ["check_id", "outcome"]);
    }
    let bad = TestCommand::new(["activity", "testdata/invictus-ir", "--format", "json", "--columns", "nope"]).run();
    bad.expect_code(1);
    assert!(bad.stderr.contains("nope") && bad.stderr.contains("principal"), "{}", bad.stderr);
    assert!(bad.stdout.is_empty(), "nothing is written before the error");
}

/// Timesketch is offered where rows are events; elsewhere it is a usage error, not an internal one.
#[test]
fn timesketch_only_where_rows_are_events() {
    for cmd in ["activity", "failures"] {
        let out = TestCommand::new([cmd, "testdata/invictus-ir", "--format", "timesketch"]).run();
        out.expect_code(1);
        assert!(out.stderr.contains("timesketch writes events"), "{}", out.stderr);
    }
    let detect = TestCommand::new(["detect", "testdata/invictus-ir", "--format", "timesketch", "-q"]).run();
    detect.expect_code(0);
    let first: serde_json::Value = serde_json::from_str(detect.stdout.lines().next().unwrap()).unwrap();
    assert!(first["message"].as_str().unwrap().starts_with(first["title"].as_str().unwrap()), "{first}");
}

/// Empty answers say why: no CloudTrail file in the input, an IAM snapshot that is a CloudTrail
/// file, a tree without digests (never "OK").
#[test]
fn empty_answers_say_what_was_not_found() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a log").unwrap();
    let out = TestCommand::new(["activity", "--format", "json"]).arg(dir.path()).run();
    out.expect_code(0);
    assert!(out.stderr.contains("no CloudTrail log file found"), "{}", out.stderr);
    let authz =
        TestCommand::new(["unused", "--iam", "testdata/awsdocs/awsdocs_examples.jsonl", "testdata/invictus-ir"]).run();
    authz.expect_code(1);
    assert!(authz.stderr.contains("not an authorization-details file"), "{}", authz.stderr);
    let verify = TestCommand::new(["verify", "testdata/invictus-ir", "--format", "table"]).run();
    verify.expect_code(1);
    assert!(verify.stdout.starts_with("NOTHING VERIFIED"), "{}", verify.stdout);
}

/// On a terminal, stderr closes with a summary: events, files read, skipped, failed, time (#11). Run
/// under `script`, which gives the command a terminal; not printed with `-q` or to a pipe.
#[test]
fn a_closing_summary_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let run = |quiet: &str| {
        let cmd = format!(
            "{} activity testdata/invictus-ir --format json -o {} {quiet}",
            env!("CARGO_BIN_EXE_trailscope"),
            out.display()
        );
        let o = Command::new("script").args(["-qec", &cmd, "/dev/null"]).current_dir(repo_root()).output();
        String::from_utf8_lossy(&o.expect("script (util-linux) gives the command a terminal").stdout).into_owned()
    };
    let shown = run("");
    assert!(shown.contains("events read from") && shown.contains("skipped") && shown.contains(" s"), "{shown}");
    assert!(!run("-q").contains("events read from"));
    let piped = TestCommand::new(["activity", "testdata/invictus-ir", "--format", "json"]).run();
    assert!(!piped.stderr.contains("events read from"), "{}", piped.stderr);
}
