//! The output layer as a shell user meets it.

use std::io::Read;
use std::process::{Command, Stdio};

use crate::{repo_root, TestCommand};

/// `trailscope timeline ... | head` (#11): when the reader goes away, every format exits 0 without a
/// word (it printed "Broken pipe (os error 32)" and exited 1 for JSON and JSON Lines).
/// Run trailscope with `args`, read its first 64 bytes of output, close the pipe: it must exit 0
/// without a word about the broken pipe.
fn ends_quietly_when_the_reader_goes(args: &[&str]) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_trailscope"))
        .args(args)
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
    assert_eq!(out.status.code(), Some(0), "{args:?}: exit code; stderr: {stderr}");
    assert!(!stderr.contains("Broken pipe"), "{args:?} complained: {stderr}");
}

#[test]
fn a_closed_pipe_ends_every_format_quietly() {
    for format in ["json", "jsonl", "csv", "table", "timesketch"] {
        ends_quietly_when_the_reader_goes(&[
            "timeline",
            "testdata/invictus-ir",
            "testdata/stratus-red-team",
            "-q",
            "--format",
            format,
        ]);
    }
}

/// The commands that write one JSON document (report, scan, verify, ...) end as quietly when the
/// reader goes away mid-document (#11: serde_json's write error became a usage error, so `report
/// --format json | head -c 64` said "Broken pipe (os error 32)" and exited 1).
#[test]
fn a_closed_pipe_ends_a_json_document_quietly() {
    ends_quietly_when_the_reader_goes(&["report", "testdata/stratus-red-team", "--format", "json", "-q"]);
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

/// The formats `trailscope QUESTION -h` offers for `--format` (its possible values).
fn offered_formats(question: &str) -> Vec<String> {
    let help = TestCommand::new([question, "-h"]).run();
    help.expect_code(0);
    let line = help.stdout.lines().find(|l| l.trim_start().starts_with("--format ")).unwrap_or_else(|| {
        panic!("{question} -h has no --format:\n{}", help.stdout);
    });
    let values = line.split("[possible values: ").nth(1).and_then(|v| v.split(']').next());
    let values = values.unwrap_or_else(|| panic!("{question} -h: no possible values for --format: {line}"));
    values.split(", ").map(str::to_string).collect()
}

/// Each question offers exactly the formats it writes (#11: `--format timesketch` on activity or
/// failures failed after reading the input): every format its `--help` offers writes the answer on
/// the shipped data; any other is refused by the command line (exit 1, clap's "invalid value",
/// nothing written).
#[test]
fn each_question_offers_the_formats_it_writes() {
    use crate::commands::QUESTIONS;
    let every = ["table", "csv", "json", "jsonl", "parquet", "timesketch"];
    let dir = tempfile::tempdir().unwrap();
    let mut refused = Vec::new();
    for question in QUESTIONS.iter().map(|q| q.name()) {
        let offered = offered_formats(question);
        assert!(offered.iter().all(|f| every.contains(&f.as_str())), "{question}: {offered:?}");
        for format in every {
            let out = dir.path().join(format!("{question}-{format}.out"));
            let mut cmd = TestCommand::new([question, "testdata/invictus-ir", "-q", "--format", format]);
            cmd = match question {
                "sql" => cmd.args(["--query", "select * from events"]),
                "unused" => cmd.args(["--iam", "testdata/iam/invictus-authz.json"]),
                _ => cmd,
            };
            let run = cmd.arg("-o").arg(&out).run();
            if offered.iter().any(|f| f == format) {
                assert!(
                    matches!(run.code, Some(0 | 2)),
                    "{question} offers --format {format}: it must write it; exit {:?}: {}",
                    run.code,
                    run.stderr
                );
                assert!(out.exists(), "{question} --format {format} wrote nothing");
            } else {
                assert_eq!(run.code, Some(1), "{question} --format {format}: {}", run.stderr);
                assert!(run.stderr.contains(&format!("invalid value '{format}'")), "{question}: {}", run.stderr);
                assert!(run.stderr.contains("[possible values: "), "the refusal lists the formats: {}", run.stderr);
                assert!(!out.exists(), "{question} --format {format} wrote {}", out.display());
                refused.push(format!("{question} {format}"));
            }
        }
    }
    // Timesketch takes events: the questions whose rows are not events do not offer it.
    for question in ["activity", "failures", "unused", "sessions"] {
        assert!(refused.contains(&format!("{question} timesketch")), "{question} offers timesketch: {refused:?}");
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

/// `timeline --format table` reads like a log (#11): time, principal (short), service:event, source
/// IP, outcome (`ok` or the error code), and the request's parameters in brief; one line per event.
/// The rows below are read by hand from `testdata/stratus-red-team` (event d769ddfd..., the
/// AssumeRole that issued ASIANQQHHS551LWULIWD, and the denied GetPasswordData calls it made).
#[test]
fn timeline_table_reads_like_a_log() {
    let out = TestCommand::new(["timeline", "testdata/stratus-red-team", "--format", "table", "--wide", "-q"]).run();
    out.expect_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let titles: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(titles, ["time", "principal", "event", "source_ip", "outcome", "request"]);
    assert_eq!(lines.len(), 2 + crate::num(&crate::golden("stratus"), "events") as usize, "a line per event");
    let words = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(
        words(lines[2]),
        ["2024-07-30T21:31:10Z", "christophe", "sts:AssumeRole", "200.249.253.51", "AccessDenied"],
        "a failed call without parameters"
    );
    let issued = words(lines[4]);
    assert_eq!(
        issued,
        [
            "2024-07-30T21:31:15Z",
            "christophe",
            "sts:AssumeRole",
            "200.249.253.51",
            "ok",
            "durationSeconds=900",
            "roleArn=arn:aws:iam::457448411975:role/stratus-red-team-ec2-get-password-data-role",
            "roleSessionName=aws-go-sdk-1722375070115152000"
        ]
    );
    let denied = words(lines[6]);
    assert_eq!(
        denied[1..],
        [
            "role/stratus-red-team-ec2-get-password-data-role",
            "ec2:GetPasswordData",
            "200.249.253.51",
            "Client.UnauthorizedOperation",
            "instanceId=i-gspajwz8z9wrutsz"
        ]
    );
    // Fitted to a terminal, every column starts where its title does, line after line (fixed
    // widths, written as the rows come); `--wide` cuts nothing, so a long cell pushes its line on.
    let fitted = TestCommand::new(["timeline", "testdata/stratus-red-team", "--format", "table", "-q"])
        .env("COLUMNS", "150")
        .run();
    let lines: Vec<&str> = fitted.stdout.lines().collect();
    let at = lines[0].find("source_ip").unwrap();
    let aligned = |l: &&str| {
        let c: Vec<char> = l.chars().collect();
        c[at - 2] == ' ' && c[at - 1] == ' ' && c[at].is_ascii_digit()
    };
    assert!(lines[2..].iter().all(aligned), "aligned:\n{}", fitted.stdout);
    assert!(lines.iter().all(|l| l.chars().count() <= 150));
    // `--columns` asks for the rows' own columns: the generic table.
    let chosen = TestCommand::new(["timeline", "testdata/stratus-red-team", "--format", "table", "-q"])
        .args(["--columns", "event_id,event_name"])
        .run();
    assert_eq!(
        chosen.stdout.lines().next().map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["event_id", "event_name"])
    );
}

/// `--tz OFFSET` and `--localtime` show table times in that zone, RFC 3339 with the offset (#11);
/// every data format stays UTC, byte for byte; a bad offset is a usage error.
#[test]
fn tz_and_localtime_change_table_times_only() {
    let table = |extra: &[&str], env: (&str, &str)| {
        let out = TestCommand::new(["timeline", "testdata/stratus-red-team", "--format", "table", "--wide", "-q"])
            .args(extra)
            .env(env.0, env.1)
            .run();
        out.expect_code(0);
        out.stdout.lines().nth(2).unwrap_or_default().split_whitespace().next().unwrap_or_default().to_string()
    };
    assert_eq!(table(&[], ("TZ", "Asia/Kolkata")), "2024-07-30T21:31:10Z", "UTC by default");
    assert_eq!(table(&["--tz", "+02:00"], ("TZ", "UTC")), "2024-07-30T23:31:10+02:00");
    assert_eq!(table(&["--tz", "-05:30"], ("TZ", "UTC")), "2024-07-30T16:01:10-05:30");
    assert_eq!(table(&["--localtime"], ("TZ", "Asia/Kolkata")), "2024-07-31T03:01:10+05:30");
    // Other tables too: activity's first_seen.
    let activity = TestCommand::new(["activity", "testdata/stratus-red-team", "--format", "table", "--wide", "-q"])
        .args(["--tz", "+01:00"])
        .run();
    assert!(activity.stdout.contains("2024-07-30T22:31:10+01:00"), "{}", activity.stdout);
    for format in ["json", "csv", "jsonl"] {
        let utc = TestCommand::new(["timeline", "testdata/stratus-red-team", "--format", format, "-q"]).run();
        let tz =
            TestCommand::new(["timeline", "testdata/stratus-red-team", "--format", format, "-q", "--tz", "+02:00"])
                .run();
        assert_eq!(utc.stdout, tz.stdout, "--format {format} stays UTC");
    }
    for bad in ["5", "+15:00", "CET"] {
        let out = TestCommand::new(["timeline", "testdata/stratus-red-team", "--tz", bad]).run();
        out.expect_code(1);
        assert!(out.stderr.contains("is not a UTC offset"), "{}", out.stderr);
    }
}

/// `--format parquet` is written as the rows come (it held the whole answer: 5.2 GB for a timeline
/// of 10 M events): the file holds the rows, columns and types of the JSON answer, in its order,
/// with the events held in memory and spilled, for each question that lists rows.
#[test]
fn parquet_answers_are_the_json_answers_written_as_they_come() {
    use polars::prelude::{ParquetReader, SerReader};
    let dir = tempfile::tempdir().unwrap();
    let inputs = ["testdata/s3", "testdata/awsdocs", "testdata/stratus-red-team", "testdata/invictus-ir"];
    let questions: [&[&str]; 5] = [
        &["timeline"],
        &["timeline", "--session", "ASIANQQHHS551LWULIWD"],
        &["detect"],
        &["hunt"],
        &["sql", "--query", "select event_time, event_name, principal from events order by event_time, event_id"],
    ];
    for question in questions {
        for limit in ["1GiB", "1"] {
            let file = dir.path().join("answer.parquet");
            let run = |format: &str| {
                let mut cmd = TestCommand::new(question.iter().copied()).args(inputs);
                cmd = cmd.args(["-q", "--memory-limit", limit, "--format", format]);
                if format == "parquet" {
                    cmd = cmd.arg("-o").arg(&file);
                }
                let out = cmd.run();
                assert!(matches!(out.code, Some(0 | 2)), "{question:?} {format}: {}", out.stderr);
                out
            };
            let json: serde_json::Value = serde_json::from_str(&run("json").stdout).expect("JSON answer");
            run("parquet");
            let df = ParquetReader::new(std::fs::File::open(&file).unwrap()).finish().expect("a whole Parquet file");
            let rows: Vec<serde_json::Value> =
                trailscope::output::rows_json(&df).unwrap().into_iter().map(serde_json::Value::Object).collect();
            let json = json.as_array().expect("rows");
            assert!(!json.is_empty(), "{question:?}: no rows to compare");
            assert_eq!(rows.len(), json.len(), "{question:?} --memory-limit {limit}");
            assert!(rows == *json, "{question:?} --memory-limit {limit}: Parquet rows differ from the JSON answer");
        }
    }
}

/// `sql`'s final ORDER BY is done out of core (`query::sort`) past a sixteenth of the limit: with
/// every batch a sorted run of its own (`--memory-limit 1`) and held, the answer has the rows of
/// Polars' own sort (the same query with a LIMIT, which Polars sorts itself) and their keys in the
/// same sequence (rows with equal keys may come in any order: Polars' sort does not keep them in
/// order either), for keys of several types and directions, nulls first or last, an expression,
/// and a group-by's answer.
#[test]
fn sql_order_by_is_sorted_out_of_core_as_polars_sorts() {
    let inputs = ["testdata/s3", "testdata/awsdocs", "testdata/stratus-red-team", "testdata/invictus-ir"];
    let queries: [(&str, &[&str]); 5] = [
        (
            "select event_time, event_name, principal, event_id from events \
             order by principal, event_time desc, event_id",
            &["principal", "event_time", "event_id"],
        ),
        (
            "select event_name, upper(principal) as who, event_id from events order by who nulls first, event_id desc",
            &["who", "event_id"],
        ),
        (
            "select source_ip, error_code, event_id from events order by error_code desc nulls last, source_ip, event_id",
            &["error_code", "source_ip", "event_id"],
        ),
        ("select event_name, count(*) as n from events group by event_name order by n desc, event_name", &["n", "event_name"]),
        ("select * from events order by read_only, event_time, event_id", &["read_only", "event_time", "event_id"]),
    ];
    for (query, keys) in queries {
        let run = |query: &str, limit: &str| {
            let out = TestCommand::new(["sql", "-q", "--format", "jsonl", "--memory-limit", limit, "--query", query])
                .args(inputs)
                .run();
            assert!(matches!(out.code, Some(0 | 2)), "{query}: {}", out.stderr);
            let rows: Vec<serde_json::Value> = out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            let keys: Vec<Vec<serde_json::Value>> =
                rows.iter().map(|r| keys.iter().map(|k| r[*k].clone()).collect()).collect();
            let mut lines: Vec<String> = out.stdout.lines().map(str::to_string).collect();
            lines.sort_unstable();
            (keys, lines)
        };
        let polars = run(&format!("{query} limit 1000000"), "1GiB");
        assert!(polars.0.len() > 20, "{query}: too few rows to tell");
        for limit in ["1", "1GiB"] {
            let ours = run(query, limit);
            assert!(ours.0 == polars.0, "{query} --memory-limit {limit}: the keys are not in Polars' order");
            assert!(ours.1 == polars.1, "{query} --memory-limit {limit}: not the same rows");
        }
    }
}
