//! The question commands (`root`, `activity`, `failures`, `timeline`, `detect`, `sql`) on real data: every
//! golden case (testdata/golden/questions, from scripts/golden_questions.py) compared row by row, then
//! hand-checked facts (from the input files and the README's examples), sections, output formats, errors,
//! and the same questions asked of a store.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::{list, num, repo_root, text, Output, TestCommand};

const INVICTUS: &str = "testdata/invictus-ir";
const STRATUS: &str = "testdata/stratus-red-team";
const AWSDOCS: &str = "testdata/awsdocs";

/// The columns of the events frame, as README.md ("The events frame") lists them.
const FRAME_COLUMNS: [&str; 41] = [
    "event_time",
    "event_version",
    "event_source",
    "event_name",
    "aws_region",
    "source_ip",
    "user_agent",
    "error_code",
    "error_message",
    "read_only",
    "event_type",
    "event_category",
    "management_event",
    "recipient_account_id",
    "event_id",
    "request_id",
    "shared_event_id",
    "vpc_endpoint_id",
    "identity_type",
    "principal_id",
    "arn",
    "account_id",
    "access_key_id",
    "user_name",
    "invoked_by",
    "session_issuer_type",
    "session_issuer_principal_id",
    "session_issuer_arn",
    "session_issuer_user_name",
    "session_mfa",
    "session_created",
    "source_identity",
    "console_login",
    "mfa_used",
    "tls_version",
    "request_parameters",
    "response_elements",
    "additional_event_data",
    "resources",
    "principal",
    "source_file",
];

/// The only Invictus IR principal with an event whose `userIdentity.accessKeyId` is "" (the console
/// sign-in step CheckMfa at 2023-07-10T12:27:31Z, eventID 74b4a7d6-..., which has no arn, so its
/// principal is its principalId): checked by hand in the file.
const EMPTY_KEY_PRINCIPAL: &str = "AIDATFQR7NSC5AU2ZV3IE";

// ---- running golden cases ----

/// `testdata/golden/questions/<case>.json` (see `scripts/golden_questions.py`).
#[track_caller]
fn golden_q(case: &str) -> Value {
    let path = repo_root().join("testdata/golden/questions").join(format!("{case}.json"));
    let text = fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/golden_questions.py)", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A golden case's command line (after `trailscope`).
#[track_caller]
fn golden_args(g: &Value) -> Vec<String> {
    list(g, "args").iter().map(|a| a.as_str().expect("args are strings").to_string()).collect()
}

/// Columns holding JSON text are compared as JSON: the golden files give them parsed.
fn normalize(v: Value) -> Value {
    match v {
        Value::Array(a) => Value::Array(a.into_iter().map(normalize).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("request_parameters", Value::String(s)) => {
                        let parsed = serde_json::from_str(&s)
                            .unwrap_or_else(|e| panic!("request_parameters is not JSON text ({e}): {s}"));
                        (k, parsed)
                    }
                    (_, v) => (k, normalize(v)),
                })
                .collect(),
        ),
        v => v,
    }
}

/// stdout as JSON Lines: one value per line.
#[track_caller]
fn json_lines(out: &Output) -> Vec<Value> {
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("`{}`: line is not JSON ({e}): {l}", out.cmdline)))
        .collect()
}

/// Run `trailscope ARGS... --quiet`, check the exit code, and return stdout parsed (and normalized).
#[track_caller]
pub(crate) fn answer(args: &[String], code: i32, format: &str) -> Value {
    let out = TestCommand::new(args).arg("--quiet").run();
    out.expect_code(code);
    let v = match format {
        "json" => out.json(),
        "jsonl" => Value::Array(json_lines(&out)),
        other => panic!("unknown golden format {other:?}"),
    };
    normalize(v)
}

/// Two lists of rows are equal; a difference is shown as the first row that differs.
#[track_caller]
fn assert_rows(actual: &[Value], expected: &[Value], what: &str) {
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(a == e, "{what}: row {i} differs\nactual:   {a:#}\nexpected: {e:#}");
    }
    assert_eq!(actual.len(), expected.len(), "{what}: number of rows");
}

/// An answer equals the expected one: an array of rows, or an object of such arrays keyed by section.
#[track_caller]
pub(crate) fn assert_answer(actual: &Value, expected: &Value, what: &str) {
    match (actual, expected) {
        (Value::Array(a), Value::Array(e)) => assert_rows(a, e, what),
        (Value::Object(a), Value::Object(e)) => {
            let keys = |m: &serde_json::Map<String, Value>| m.keys().cloned().collect::<Vec<_>>();
            assert_eq!(keys(a), keys(e), "{what}: sections");
            for (name, rows) in e {
                assert_answer(&a[name], rows, &format!("{what}, section {name}"));
            }
        }
        _ => panic!("{what}: shapes differ\nactual:   {actual:#}\nexpected: {expected:#}"),
    }
}

/// Run a golden case's command and compare its whole answer with the golden one.
fn check_case(case: &str) {
    let g = golden_q(case);
    let got = answer(&golden_args(&g), num(&g, "exit_code") as i32, text(&g, "format"));
    assert_answer(&got, &g["expect"], case);
}

/// The expected answer of a golden case.
#[track_caller]
fn expect(case: &str) -> Value {
    golden_q(case)["expect"].clone()
}

/// The rows of an answer (an array), or of one of its sections.
#[track_caller]
fn rows<'a>(v: &'a Value, section: Option<&str>) -> &'a Vec<Value> {
    let v = match section {
        Some(s) => v.get(s).unwrap_or_else(|| panic!("no section {s:?} in {v:#}")),
        None => v,
    };
    v.as_array().unwrap_or_else(|| panic!("not an array of rows: {v:#}"))
}

/// How many rows of `rows` have `field == value`.
fn count_where(rows: &[Value], field: &str, value: &str) -> usize {
    rows.iter().filter(|r| r[field] == value).count()
}

macro_rules! golden_cases {
    ($($(#[$meta:meta])* $test:ident => $case:literal,)*) => {
        /// The golden cases run whole by the tests below.
        const GOLDEN_CASES: &[&str] = &[$($case),*];
        $(
            $(#[$meta])*
            #[test]
            fn $test() {
                check_case($case);
            }
        )*
    };
}

golden_cases! {
    root_awsdocs_rows => "root-awsdocs",
    root_awsdocs_summary => "root-awsdocs-summary",
    root_invictus_has_no_root_events => "root-invictus",
    root_invictus_summary_of_nothing => "root-invictus-summary",
    activity_stratus_per_principal => "activity-stratus",
    activity_invictus_window => "activity-invictus-window",
    activity_s3_counts_each_redelivered_event_once => "activity-s3",
    activity_invictus_principal_benjamin_sections => "activity-invictus-benjamin",
    activity_stratus_principal_glob_sections => "activity-stratus-role-glob",
    failures_invictus_grouped => "failures-invictus",
    failures_invictus_denied_classified => "failures-invictus-denied",
    failures_stratus_grouped => "failures-stratus",
    failures_stratus_denied_classified => "failures-stratus-denied",
    failures_awsdocs_console_sign_in_failures => "failures-awsdocs",
    timeline_stratus_every_event => "timeline-stratus",
    timeline_source_ip_cidr_and_address => "timeline-invictus-cidr",
    timeline_event_name_globs => "timeline-invictus-event-name",
    timeline_errors_only_in_a_cidr => "timeline-invictus-errors-only",
    timeline_writes_only_by_source_and_principal => "timeline-invictus-writes-only",
    timeline_read_only_temporary_keys => "timeline-stratus-read-only-temporary-keys",
    timeline_session_pivot_assume_role => "timeline-stratus-session",
    timeline_session_pivot_federation_token => "timeline-stratus-session-federation",
    timeline_timesketch_format => "timeline-stratus-timesketch",
    detect_stratus_findings => "detect-stratus",
    detect_invictus_findings => "detect-invictus",
    detect_awsdocs_findings => "detect-awsdocs",
    detect_check_subset_case_insensitive => "detect-stratus-subset",
    sql_group_by_event_name => "sql-invictus-event-names",
    sql_errors_by_principal => "sql-stratus-errors",
}

/// Golden cases with tests of their own below (not run whole by `golden_cases!`).
const HAND_WRITTEN_CASES: &[&str] = &["activity-invictus"];

#[test]
fn every_question_golden_file_has_a_test() {
    let mut on_disk: Vec<String> = fs::read_dir(repo_root().join("testdata/golden/questions"))
        .expect("testdata/golden/questions")
        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
        .collect();
    on_disk.sort();
    let mut tested: Vec<String> = GOLDEN_CASES.iter().chain(HAND_WRITTEN_CASES).map(|s| s.to_string()).collect();
    tested.sort();
    assert_eq!(on_disk, tested);
}

// ---- root ----

#[test]
fn root_awsdocs_facts_checked_by_hand() {
    let rows = answer(&[String::from("root"), AWSDOCS.into(), "--format".into(), "json".into()], 2, "json");
    let rows = rows.as_array().expect("rows");
    // Five Root records in awsdocs_examples.jsonl; deb1e1f9-... is written twice (kept once). All at the
    // same second, so the order is by event_id.
    let ids: Vec<&str> = rows.iter().map(|r| text(r, "event_id")).collect();
    assert_eq!(
        ids,
        [
            "EXAMPLEb-7dae-48cb-895f-20e86EXAMPLE",
            "EXAMPLEd-244c-4044-abbf-21c64EXAMPLE",
            "a4fbbe77-91a0-4238-804a-64314184edb6",
            "deb1e1f9-c99b-4612-8e9f-21f93b5d79c0",
        ]
    );
    // The README's example summary.
    let summary = TestCommand::new(["root", AWSDOCS, "--summary", "--format", "json", "-q"]).run();
    let s = &summary.expect_code(2).json()[0];
    for (k, v) in [
        ("events", 4),
        ("console_logins", 2),
        ("console_login_success", 1),
        ("console_login_failure", 1),
        ("console_login_success_without_mfa", 1),
        ("access_key_events", 1),
        ("akia_key_events", 0),
        ("asia_key_events", 0),
        ("source_ips", 1),
    ] {
        assert_eq!(num(s, k), v, "summary {k}");
    }
    assert_eq!(text(s, "first_use"), "2022-11-10T16:24:34Z");
}

#[test]
fn json_is_the_default_off_a_terminal() {
    let out = TestCommand::new(["root", AWSDOCS, "--summary", "-q"]).run();
    assert_answer(&out.expect_code(2).json(), &expect("root-awsdocs-summary"), "root --summary, no --format");
    let out = TestCommand::new(["failures", INVICTUS, "--denied", "-q"]).run();
    assert_answer(&normalize(out.expect_code(0).json()), &expect("failures-invictus-denied"), "failures, no --format");
}

#[test]
fn root_table_view_closes_with_the_summary() {
    let out = TestCommand::new(["root", AWSDOCS, "--format", "table", "-q"]).run();
    out.expect_code(2);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"root events (4 rows)"), "{}", out.stdout);
    let at = lines.iter().position(|l| *l == "summary").unwrap_or_else(|| panic!("no summary:\n{}", out.stdout));
    let summary: Vec<Vec<&str>> = lines[at + 1..].iter().map(|l| l.split_whitespace().collect()).collect();
    assert!(summary.contains(&vec!["events", "4"]), "{}", out.stdout);
    assert!(summary.contains(&vec!["console_login_success_without_mfa", "1"]), "{}", out.stdout);
    assert!(serde_json::from_str::<Value>(&out.stdout).is_err(), "a table, not JSON");
}

// ---- activity ----

/// A row without the named field.
fn without(row: &Value, field: &str) -> Value {
    let mut r = row.clone();
    r.as_object_mut().expect("a row object").remove(field);
    r
}

/// Every column of every row, except `access_keys` of the one principal whose only key is "" (see the
/// next test).
#[test]
fn activity_invictus_per_principal() {
    let g = golden_q("activity-invictus");
    let got = answer(&golden_args(&g), 0, "json");
    let strip = |rows: &Vec<Value>| -> Vec<Value> {
        rows.iter()
            .map(|r| if r["principal"] == EMPTY_KEY_PRINCIPAL { without(r, "access_keys") } else { r.clone() })
            .collect()
    };
    assert_rows(&strip(rows(&got, None)), &strip(rows(&g["expect"], None)), "activity-invictus");
    // The README's example rows.
    let first = &rows(&got, None)[0];
    assert_eq!(text(first, "principal"), "arn:aws:iam::123837392027:user/bert-jan");
    assert_eq!((num(first, "events"), num(first, "errors")), (2641, 239));
    assert_eq!(text(first, "top_services"), "ec2 (837), ssm (467), iam (392)");
}

#[test]
fn activity_counts_only_non_empty_access_keys() {
    let g = golden_q("activity-invictus");
    let got = answer(&golden_args(&g), 0, "json");
    let pick = |v: &Value| {
        rows(v, None).iter().find(|r| r["principal"] == EMPTY_KEY_PRINCIPAL).cloned().expect("the principal's row")
    };
    assert_eq!(pick(&got), pick(&g["expect"]));
    assert_eq!(num(&pick(&got), "access_keys"), 0);
}

#[test]
fn activity_section_flag_writes_one_section() {
    let g = golden_q("activity-invictus-benjamin");
    for section in ["principals", "by_action", "by_source_ip", "by_day"] {
        let mut args = golden_args(&g);
        args.extend(["--section".into(), section.into()]);
        let got = answer(&args, 0, "json");
        assert_answer(&got, &g["expect"][section], &format!("--section {section}"));
    }
    // The README's example of by_source_ip.
    let mut args = golden_args(&g);
    args.extend(["--section".into(), "by_source_ip".into()]);
    let got = answer(&args, 0, "json");
    let by_ip: Vec<(&str, u64, u64)> =
        rows(&got, None).iter().map(|r| (text(r, "source_ip"), num(r, "events"), num(r, "errors"))).collect();
    assert_eq!(
        by_ip,
        [("10.107.112.14", 1, 0), ("10.248.16.43", 89, 14), ("AWS Internal", 3, 0), ("health.amazonaws.com", 12, 0)]
    );
}

#[test]
fn unknown_section_is_an_error() {
    let out = TestCommand::new(["activity", INVICTUS, "--section", "nope", "-q"]).run();
    out.expect_code(1);
    assert!(out.stderr.contains("no section named \"nope\""), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}

// ---- failures ----

#[test]
fn failures_denied_facts_checked_by_hand() {
    let got = expect("failures-stratus-denied");
    let failures = rows(&got, Some("failures"));
    // Messages that say "because no identity-based policy allows" are classified; "is not authorized to
    // perform: sts:AssumeRole on resource ..." (no reason) is not.
    let leave = failures.iter().find(|r| r["event_name"] == "LeaveOrganization").expect("LeaveOrganization");
    assert_eq!((text(leave, "denial"), text(leave, "policy_type")), ("no_allow", "identity"));
    for r in failures.iter().filter(|r| r["event_name"] == "AssumeRole") {
        assert_eq!((&r["denial"], &r["policy_type"]), (&Value::Null, &Value::Null), "{r:#}");
    }
    // And the command agrees.
    let out = TestCommand::new(["failures", STRATUS, "--denied", "--section", "failures", "-q"]).run();
    assert_answer(&out.expect_code(0).json(), &got["failures"], "failures --denied --section failures");
}

#[test]
fn console_sign_in_failures_section_alone() {
    let out = TestCommand::new(["failures", AWSDOCS, "--section", "console_sign_in_failures", "-q"]).run();
    let got = out.expect_code(2).json();
    assert_answer(&got, &expect("failures-awsdocs")["console_sign_in_failures"], "console_sign_in_failures");
    // Two failed sign-ins in the AWS docs examples: the root user's and anaya's (errorMessage
    // "Failed authentication").
    let ids: Vec<&str> = rows(&got, None).iter().map(|r| text(r, "event_id")).collect();
    assert_eq!(ids, ["a4fbbe77-91a0-4238-804a-64314184edb6", "d38ce1b3-4575-4cb8-a632-611b8243bfc3"]);
}

// ---- timeline ----

#[test]
fn session_pivot_facts_from_the_readme() {
    let got = expect("timeline-stratus-session");
    let rows = rows(&got, None);
    let first = &rows[0];
    assert_eq!(text(first, "pivot"), "issued ASIANQQHHS551LWULIWD");
    assert_eq!(text(first, "event_id"), "fd179e25-9f1a-406c-8d7d-62f9d4938ef6");
    assert_eq!(text(first, "principal"), "arn:aws:iam::457448411975:user/christophe");
    assert_eq!(text(first, "event_name"), "AssumeRole");
    assert!(rows[1..].iter().all(|r| r["pivot"] == "used" && r["access_key_id"] == "ASIANQQHHS551LWULIWD"));
    assert_eq!(text(&rows[1], "event_id"), "52242c8d-7ef7-4165-90cd-621ebe835388");
}

#[test]
fn timesketch_fields_lead_every_line() {
    let g = golden_q("timeline-stratus-timesketch");
    let out = TestCommand::new(golden_args(&g)).arg("-q").run();
    out.expect_code(0);
    for line in json_lines(&out) {
        let keys: Vec<&String> = line.as_object().expect("an object per line").keys().collect();
        for k in ["message", "datetime", "timestamp_desc", "event_time", "event_id"] {
            assert!(keys.iter().any(|x| *x == k), "no {k} in {line:#}");
        }
        assert_eq!(text(&line, "timestamp_desc"), "Event Time");
        // datetime is event_time with milliseconds.
        let t = text(&line, "event_time");
        assert_eq!(text(&line, "datetime"), format!("{}.000Z", t.trim_end_matches('Z')));
    }
}

#[test]
fn timesketch_writes_csv_when_the_output_ends_in_csv() {
    let g = golden_q("timeline-stratus-timesketch");
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("sketch.csv");
    let mut args = golden_args(&g);
    args.extend(["-o".into(), path_str(&file).into()]);
    let out = TestCommand::new(args).arg("-q").run();
    out.expect_code(0);
    assert!(out.stdout.is_empty(), "nothing on stdout with -o: {}", out.stdout);
    let table = parse_csv(&fs::read_to_string(&file).expect("-o file"));
    let header = &table[0];
    assert_eq!(header[..3], ["message", "datetime", "timestamp_desc"]);
    let want = rows(&g["expect"], None);
    assert_eq!(table.len() - 1, want.len(), "rows");
    for (line, w) in table[1..].iter().zip(want) {
        for name in ["message", "datetime", "event_id", "principal", "error_code"] {
            let at = header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}"));
            assert_eq!(line[at], cell_text(&w[name]), "{name}");
        }
    }
}

#[test]
fn bad_cidr_is_an_error() {
    let out = TestCommand::new(["timeline", INVICTUS, "--source-ip", "10.0.0.0/33", "-q"]).run();
    out.expect_code(1);
    assert!(out.stderr.contains("10.0.0.0/33"), "{}", out.stderr);
}

// ---- detect ----

/// Findings per check id, sorted by id.
fn per_check(findings: &[Value]) -> Vec<(String, usize)> {
    let mut n: std::collections::BTreeMap<String, usize> = Default::default();
    for f in findings {
        *n.entry(text(f, "check_id").to_string()).or_default() += 1;
    }
    n.into_iter().collect()
}

#[test]
fn detect_counts_per_check() {
    for (case, input) in [("detect-stratus", STRATUS), ("detect-invictus", INVICTUS), ("detect-awsdocs", AWSDOCS)] {
        let g = golden_q(case);
        let got = answer(&golden_args(&g), num(&g, "exit_code") as i32, "json");
        assert_eq!(per_check(rows(&got, None)), per_check(rows(&g["expect"], None)), "{input}: findings per check");
    }
    // Facts checked by hand: the three trail-tampering detonations of Stratus Red Team (the README example),
    // and the awsdocs root examples (four root events, CIS 4.3; two failed console sign-ins, CIS 4.6).
    let stratus = expect("detect-stratus");
    let tamper: Vec<&str> = rows(&stratus, None)
        .iter()
        .filter(|f| f["check_id"] == "TS-TRAIL-TAMPER")
        .map(|f| text(f, "event_name"))
        .collect();
    assert_eq!(tamper, ["DeleteTrail", "PutEventSelectors", "StopLogging"]);
    let docs = expect("detect-awsdocs");
    assert_eq!(count_where(rows(&docs, None), "check_id", "CIS-4.3"), 4);
    assert_eq!(count_where(rows(&docs, None), "check_id", "CIS-4.6"), 2);
    assert_eq!(count_where(rows(&docs, None), "check_id", "CIS-4.5"), 1);
}

#[test]
fn detect_list_names_every_check() {
    let out = TestCommand::new(["detect", "--list", "--format", "json", STRATUS]).run();
    let got = out.expect_code(0).json();
    let ids: Vec<&str> = rows(&got, None).iter().map(|r| text(r, "check_id")).collect();
    let mut want: Vec<String> = (1..=15).map(|i| format!("CIS-4.{i}")).collect();
    want.extend(
        [
            "TS-TRAIL-TAMPER",
            "TS-ROOT-ACCESS-KEY",
            "TS-CRED-FOR-OTHER-USER",
            "TS-DENIED-THEN-SUCCEEDED",
            "TS-NO-MFA-SESSION",
            "TS-SSM-SESSION",
            "TS-OUTSIDE-NETWORK",
            "TS-OUTSIDE-HOURS",
        ]
        .map(String::from),
    );
    assert_eq!(ids, want);
}

// ---- sql ----

#[test]
fn sql_error_names_the_columns_and_exits_1() {
    let out = TestCommand::new(["sql", INVICTUS, "--query", "SELECT no_such_column FROM events", "-q"]).run();
    out.expect_code(1);
    assert!(out.stdout.is_empty(), "no data on stdout: {}", out.stdout);
    assert!(out.stderr.contains("no_such_column"), "{}", out.stderr);
    let listed = out
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("table `events` has columns: "))
        .unwrap_or_else(|| panic!("no list of columns:\n{}", out.stderr));
    assert_eq!(listed.split(", ").collect::<Vec<_>>(), FRAME_COLUMNS);
}

// ---- output formats ----

/// RFC 4180 CSV: rows of fields (quoted fields may hold commas, quotes and newlines).
fn parse_csv(s: &str) -> Vec<Vec<String>> {
    let (mut table, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let mut chars = s.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                c => field.push(c),
            }
        } else {
            match c {
                '"' => quoted = true,
                ',' => row.push(std::mem::take(&mut field)),
                '\r' => {}
                '\n' => {
                    row.push(std::mem::take(&mut field));
                    table.push(std::mem::take(&mut row));
                }
                c => field.push(c),
            }
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        table.push(row);
    }
    table
}

/// A JSON cell as CSV writes it: null empty, strings as they are, numbers and booleans as text.
fn cell_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// `--format csv` has the JSON answer's columns as its header and its rows as text.
#[track_caller]
fn assert_csv_matches(case: &str, section: Option<&str>) {
    let g = golden_q(case);
    let mut args: Vec<String> = golden_args(&g).into_iter().take_while(|a| a != "--format").collect();
    args.extend(["--format".into(), "csv".into()]);
    let out = TestCommand::new(args).arg("-q").run();
    out.expect_code(num(&g, "exit_code") as i32);
    let table = parse_csv(&out.stdout);
    let want = rows(&g["expect"], section);
    let header: Vec<String> = want[0].as_object().expect("row").keys().cloned().collect();
    let mut got_header = table[0].clone();
    got_header.sort();
    let mut want_header = header.clone();
    want_header.sort();
    assert_eq!(got_header, want_header, "{case}: CSV header");
    assert_eq!(table.len() - 1, want.len(), "{case}: CSV rows");
    for (i, (line, w)) in table[1..].iter().zip(want).enumerate() {
        let expected: Vec<String> = table[0].iter().map(|h| cell_text(&w[h.as_str()])).collect();
        assert_eq!(line, &expected, "{case}: CSV row {i}");
    }
}

#[test]
fn csv_has_the_rows_of_the_json_answer() {
    assert_csv_matches("activity-stratus", None);
    // Multi-section answers write their first section.
    assert_csv_matches("failures-invictus", Some("failures"));
    assert_csv_matches("detect-invictus", None);
}

#[test]
fn csv_header_is_in_column_order() {
    let out = TestCommand::new(["failures", INVICTUS, "--denied", "--format", "csv", "-q"]).run();
    let header = out.expect_code(0).stdout.lines().next().unwrap_or_default().to_string();
    assert_eq!(
        header,
        "principal,event_source,event_name,error_code,denial,policy_type,count,first_seen,last_seen,sample_error_message"
    );
}

#[test]
fn jsonl_has_one_line_per_row() {
    let g = golden_q("timeline-stratus");
    let mut args: Vec<String> = golden_args(&g).into_iter().take_while(|a| a != "--format").collect();
    args.extend(["--format".into(), "jsonl".into()]);
    let out = TestCommand::new(args).arg("-q").run();
    out.expect_code(0);
    assert_eq!(out.stdout.lines().count(), 310, "one line per Stratus Red Team event");
    let got: Vec<Value> = json_lines(&out).into_iter().map(normalize).collect();
    assert_rows(&got, rows(&g["expect"], None), "timeline --format jsonl");
}

#[test]
fn parquet_needs_an_output_file_and_writes_one() {
    let out = TestCommand::new(["activity", STRATUS, "--format", "parquet", "-q"]).run();
    out.expect_code(1);
    assert!(out.stderr.contains("-o"), "{}", out.stderr);

    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("activity.parquet");
    let out = TestCommand::new(["activity", STRATUS, "--format", "parquet", "-o", path_str(&file), "-q"]).run();
    out.expect_code(0);
    assert!(out.stdout.is_empty(), "nothing on stdout with -o: {}", out.stdout);
    let bytes = fs::read(&file).expect("the parquet file");
    assert!(bytes.len() > 8, "{} bytes", bytes.len());
    assert_eq!(&bytes[..4], b"PAR1", "Parquet magic at the start");
    assert_eq!(&bytes[bytes.len() - 4..], b"PAR1", "Parquet magic at the end");
}

#[test]
fn json_output_to_a_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("failures.json");
    let out = TestCommand::new(["failures", STRATUS, "--format", "json", "-o", path_str(&file), "-q"]).run();
    out.expect_code(0);
    assert!(out.stdout.is_empty(), "nothing on stdout with -o: {}", out.stdout);
    let written: Value = serde_json::from_str(&fs::read_to_string(&file).expect("-o file")).expect("JSON");
    assert_answer(&written, &expect("failures-stratus"), "failures -o FILE");
}

// ---- the same questions from a store ----

#[test]
fn questions_answer_the_same_from_a_store() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = tmp.path().join("store");
    TestCommand::new(["scan", STRATUS, "--store", path_str(&store), "--format", "json", "-q"]).run().expect_code(0);
    for case in [
        "activity-stratus",
        "failures-stratus-denied",
        "timeline-stratus",
        "timeline-stratus-session",
        "detect-stratus",
        "sql-stratus-errors",
    ] {
        let g = golden_q(case);
        let args: Vec<String> =
            golden_args(&g).into_iter().map(|a| if a == STRATUS { path_str(&store).to_string() } else { a }).collect();
        let got = answer(&args, 0, text(&g, "format"));
        assert_answer(&got, &g["expect"], &format!("{case} from a store"));
    }
}

/// The questions that fold only the columns they read (`sessions`, `root --summary`, `failures`,
/// `activity`, also with the filters, whose columns are read for the filter; `detect`, which from a
/// store counts each principal's denials first) read only those from a store too, the rest left
/// null: same answers.
#[test]
fn folded_questions_read_their_columns_from_a_store() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = tmp.path().join("store");
    let files = "testdata/invictus-ir";
    TestCommand::new(["scan", files, "--store", path_str(&store), "-q"]).run().expect_code(0);
    for question in [
        &["sessions"][..],
        &["root", "--summary"],
        &["failures"],
        &["activity"],
        &["activity", "--account", "123837392027", "--region", "us-east-1"],
        &["detect"],
        // The Invictus IR sample has one principal denied five times, then succeeding.
        &["detect", "--check", "TS-DENIED-THEN-SUCCEEDED"],
        &["detect", "--check", "TS-DENIED-THEN-SUCCEEDED", "--account", "123837392027"],
    ] {
        let run = |input: &str| {
            let out = TestCommand::new(question.iter().copied().chain([input, "--format", "json", "-q"])).run();
            out.expect_code(0);
            out.json()
        };
        let (raw, stored) = (run(files), run(path_str(&store)));
        // A single section is a list of rows; several are an object of lists.
        let rows = match &raw {
            Value::Array(rows) => rows.len(),
            Value::Object(sections) => sections.values().filter_map(Value::as_array).map(Vec::len).sum(),
            _ => 0,
        };
        assert!(rows > 0, "{question:?}: {raw}");
        assert_eq!(stored, raw, "{question:?} from a store");
    }
}

#[test]
fn detect_unknown_check_id_is_an_error_naming_the_checks() {
    let out = TestCommand::new(["detect", "testdata/stratus-red-team", "--check", "NOPE", "--format", "json"]).run();
    out.expect_code(1);
    assert!(out.stderr.contains("NOPE") && out.stderr.contains("CIS-4.1"), "{}", out.stderr);
}

/// #12: calls a service made on a user's behalf (invokedBy) are not the user's calls without MFA
/// (bert-jan's 240 KMS calls by AWS services), and a tampering call that failed
/// (TrailNotFoundException) is an attempt with its own severity, not the act; every finding carries
/// its error code and outcome. Counts checked by hand against testdata/invictus-ir.
#[test]
fn detect_outcomes_attempts_and_service_calls() {
    let out = TestCommand::new(["detect", "testdata/invictus-ir", "--format", "json", "-q"]).run();
    out.expect_code(0);
    let rows = out.json();
    let rows = rows.as_array().expect("rows");
    assert!(!rows
        .iter()
        .any(|r| r["check_id"] == "TS-NO-MFA-SESSION" && text(r, "principal").ends_with("user/bert-jan")));
    let tamper: Vec<&serde_json::Value> = rows.iter().filter(|r| r["check_id"] == "TS-TRAIL-TAMPER").collect();
    assert_eq!(tamper.len(), 8);
    for r in &tamper {
        let failed = !r["error_code"].is_null();
        assert_eq!(text(r, "outcome"), if failed { "failed" } else { "succeeded" });
        assert_eq!(text(r, "severity"), if failed { "medium" } else { "critical" });
        assert_eq!(text(r, "title").starts_with("Attempted: "), failed);
    }
    assert_eq!(tamper.iter().filter(|r| r["error_code"] == "TrailNotFoundException").count(), 4);
}

/// SQL over `events` takes CloudTrail's own names, sums a literal per row (`sum(1)` is the row count),
/// and on a bad name lists the columns once (#11).
#[test]
fn sql_takes_cloudtrail_names_and_counts_right() {
    let q = "select eventName, count(*) n, sum(1) s from events where userIdentity.arn like '%benjamin' \
             group by eventName order by n desc, eventName limit 3";
    let out = TestCommand::new(["sql", "testdata/invictus-ir", "--format", "json", "-q", "--query", q]).run();
    out.expect_code(0);
    let rows = out.json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for r in rows {
        assert_eq!(r["n"], r["s"], "{r}");
        assert!(r.get("event_name").is_some(), "{r}");
    }
    let bad = TestCommand::new(["sql", "testdata/invictus-ir", "-q", "--query", "select nope from events"]).run();
    bad.expect_code(1);
    assert_eq!(bad.stderr.matches("event_source").count(), 1, "{}", bad.stderr);
}

/// `json_get(text, '$.path')` reads JSON fields such as `request_parameters` in SQL (#11); the
/// values are those of the records (checked by hand in the test data), CloudTrail's names work too.
#[test]
fn sql_json_get_reads_request_parameters() {
    let q = "select json_get(requestParameters, '$.roleSessionName') session, \
             json_get(request_parameters, '$.durationSeconds') seconds, json_get(request_parameters, '$.nope') nope \
             from events where event_id = 'd769ddfd-2cda-4cfa-b33f-05d3b886921d'";
    let out = TestCommand::new(["sql", "testdata/stratus-red-team", "--format", "json", "-q", "--query", q]).run();
    out.expect_code(0);
    assert_eq!(
        out.json(),
        serde_json::json!([{"session": "aws-go-sdk-1722375070115152000", "seconds": "900", "nope": null}])
    );
    let q = "select json_get(request_parameters, '$.bucketName') bucket, count(*) n from events \
             where event_id = 'b69c41d9-ccc8-41d7-82f1-d3f27cb2fb3c' group by bucket";
    let out = TestCommand::new(["sql", "testdata/invictus-ir", "--format", "json", "-q", "--query", q]).run();
    assert_eq!(out.json(), serde_json::json!([{"bucket": "baker221b-bucketsevidenceeeedc25d-1q9cl0tuy4gbm", "n": 1}]));
}

/// From raw files `sql` fills only the columns its query names (`query::sql::columns_read`): the
/// columns a query names, by any of their names, hold the values `select *` gives them, with the
/// events held in memory or spilled.
#[test]
fn sql_reads_the_columns_its_query_names() {
    let inputs = ["testdata/invictus-ir", "testdata/stratus-red-team"];
    let keys = ["event_id", "user_agent", "source_ip", "arn", "request_parameters"];
    let named =
        "select event_id, user_agent, e.source_ip, \"userIdentity.arn\", requestParameters from events e order by event_id";
    let every = "select * from events order by event_id";
    for limit in ["1GiB", "1"] {
        let run = |q: &str| {
            let out = TestCommand::new(["sql", "--format", "json", "-q", "--memory-limit", limit, "--query", q])
                .args(inputs)
                .run();
            out.expect_code(0);
            out.json().as_array().expect("rows").clone()
        };
        let (named, every) = (run(named), run(every));
        assert!(named.len() > 1000, "{} rows", named.len());
        assert_eq!(named.len(), every.len());
        let mut filled = [0; 5];
        for (a, b) in named.iter().zip(&every) {
            for (k, n) in keys.iter().zip(&mut filled) {
                assert_eq!(a[*k], b[*k], "{k} of {}", b["event_id"]);
                *n += usize::from(!a[*k].is_null());
            }
        }
        assert!(filled.iter().all(|n| *n > 100), "columns filled: {filled:?}");
    }
}
