//! `trailscope scan`: every golden case (testdata/golden, from scripts/golden.py), then hand-checked facts
//! about duplicates, filters and pruning by S3 key, bad input, the store, and the output formats.

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::{golden, list, num, repo_root, text, Output, TestCommand};

const INVICTUS: &str = "testdata/invictus-ir";
const S3: &str = "testdata/s3";
const AWSDOCS: &str = "testdata/awsdocs";
const STRATUS: &str = "testdata/stratus-red-team";
const MALFORMED: &str = "testdata/malformed";
/// The organization trail's copies of two files the account trail also delivered (scripts/make-test-cases).
const ORG_TRAIL: &str = "testdata/s3/AWSLogs/o-exampleorg1";
const ACCOUNT_TRAIL: &str = "testdata/s3/AWSLogs/123837392027";
/// How by_account/by_region spell an event without account or region (Hive's null partition name).
const NULL_KEY: &str = "__HIVE_DEFAULT_PARTITION__";

/// Every malformed file that must fail, and a phrase its reason must contain.
const BAD_FILES: [(&str, &str); 7] = [
    ("testdata/malformed/generated/bomb.json.gz", "decompressed size exceeds"),
    ("testdata/malformed/generated/empty.json", "empty file"),
    ("testdata/malformed/generated/invalid.json", "EOF while parsing"),
    ("testdata/malformed/generated/not-utf8.json", "unicode"),
    ("testdata/malformed/generated/truncated.json.gz", "truncated gzip"),
    ("testdata/malformed/generated/wrong-shape.json", "expected a sequence"),
    ("testdata/malformed/traildiscover/CreateApiKey.json", "key must be a string"),
];

/// `trailscope scan ARGS... --quiet`, run in the repository root.
fn scan<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: Into<std::ffi::OsString>,
{
    TestCommand::new(["scan"]).args(args).arg("--quiet").run()
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// by_account/by_region/by_day as (key, events), a missing key as `None`.
#[track_caller]
fn keyed(v: &Value, field: &str) -> Vec<(Option<String>, u64)> {
    list(v, field)
        .iter()
        .map(|c| {
            let key = match c.get("key") {
                Some(Value::String(s)) if s != NULL_KEY => Some(s.clone()),
                Some(Value::String(_)) | Some(Value::Null) => None,
                other => panic!("{field}: bad key {other:?}"),
            };
            (key, num(c, "events"))
        })
        .collect()
}

/// The sorted `path`s of a skipped/failed/rejected list.
#[track_caller]
fn paths(v: &Value, field: &str) -> Vec<String> {
    let mut p: Vec<String> = list(v, field).iter().map(|x| text(x, "path").to_string()).collect();
    p.sort();
    p
}

/// The reason given for `path` in a skipped/failed list.
#[track_caller]
fn reason<'a>(v: &'a Value, field: &str, path: &str) -> &'a str {
    let hit = list(v, field).iter().find(|x| text(x, "path") == path);
    text(hit.unwrap_or_else(|| panic!("{path} not in {field}: {:#}", v[field])), "reason")
}

/// The events of a summary equal the expected ones: count, first/last time, by account, region, day.
#[track_caller]
fn assert_events_match(out: &Value, want: &Value, what: &str) {
    assert_eq!(num(out, "events"), num(want, "events"), "{what}: events");
    for k in ["first_event_time", "last_event_time"] {
        assert_eq!(out.get(k), want.get(k), "{what}: {k}");
    }
    for k in ["by_account", "by_region", "by_day"] {
        assert_eq!(keyed(out, k), keyed(want, k), "{what}: {k}");
    }
}

const READ_FIELDS: [&str; 7] =
    ["files", "files_skipped", "files_failed", "records", "records_rejected", "records_without_event_id", "duplicates"];

/// A golden case's flags (its arguments after `scan INPUT...`), to ask a store the same question.
#[track_caller]
fn golden_flags(g: &Value) -> Vec<String> {
    let args = list(g, "args").iter().map(|a| a.as_str().expect("args are strings").to_string());
    args.skip(1).skip_while(|a| !a.starts_with("--")).collect()
}

/// `scan STORE FLAGS...`.
fn scan_store(store: &Path, flags: &[String]) -> Output {
    let mut args = vec![path_str(store).to_string()];
    args.extend(flags.iter().cloned());
    scan(args)
}

/// Run a golden case's command and compare everything the golden file records.
fn check_golden(case: &str) {
    let g = golden(case);
    let args: Vec<&str> = list(&g, "args").iter().map(|a| a.as_str().expect("args are strings")).collect();
    assert_eq!(args.first(), Some(&"scan"), "{case}: golden args");
    let run = TestCommand::new(args.iter().copied()).arg("--quiet").run();
    run.expect_code(num(&g, "exit_code") as i32);
    let out = run.json();
    for k in READ_FIELDS {
        assert_eq!(num(&out, k), num(&g, k), "{case}: {k}");
    }
    assert_events_match(&out, &g, case);
    assert_eq!(paths(&out, "skipped"), paths(&g, "skipped"), "{case}: skipped files");
    assert_eq!(paths(&out, "failed"), paths(&g, "failed"), "{case}: failed files");
    let rejected = |v: &Value| {
        let mut r: Vec<(String, u64)> =
            list(v, "rejected").iter().map(|x| (text(x, "path").to_string(), num(x, "records"))).collect();
        r.sort();
        r
    };
    assert_eq!(rejected(&out), rejected(&g), "{case}: rejected records");
}

macro_rules! golden_cases {
    ($($(#[$meta:meta])* $test:ident => $case:literal,)*) => {
        const GOLDEN_CASES: &[&str] = &[$($case),*];
        $(
            $(#[$meta])*
            #[test]
            fn $test() {
                check_golden($case);
            }
        )*
    };
}

golden_cases! {
    golden_invictus => "invictus",
    golden_invictus_window => "invictus-window",
    golden_stratus => "stratus",
    golden_stratus_region => "stratus-region",
    golden_s3 => "s3",
    golden_s3_window => "s3-window",
    golden_plaso => "plaso",
    golden_awsdocs => "awsdocs",
    golden_awsdocs_account => "awsdocs-account",
    golden_trailscraper => "trailscraper",
    golden_malformed => "malformed",
    golden_otrf => "otrf",
    golden_panther => "panther",
    golden_all => "all",
}

#[test]
fn every_golden_file_has_a_test() {
    let mut on_disk: Vec<String> = fs::read_dir(repo_root().join("testdata/golden"))
        .expect("testdata/golden")
        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
        .collect();
    on_disk.sort();
    let mut tested: Vec<String> = GOLDEN_CASES.iter().map(|s| s.to_string()).collect();
    tested.sort();
    assert_eq!(on_disk, tested);
}

/// Files under `dir` (repository-relative), sorted.
fn files_under(dir: &str) -> Vec<String> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(p).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(&p, out)
            } else {
                out.push(p)
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo_root().join(dir), &mut out);
    let mut rel: Vec<String> = out
        .iter()
        .map(|p| p.strip_prefix(repo_root()).expect("under the repo").to_string_lossy().into_owned())
        .collect();
    rel.sort();
    rel
}

/// The records of a CloudTrail delivery file (`{"Records":[...]}`, plain or gzipped), read with
/// serde_json and flate2 rather than trailscope.
fn records_in(path: &Path) -> Vec<Value> {
    let raw = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut out).expect("gunzip");
        out
    } else {
        raw
    };
    let v: Value = serde_json::from_slice(&bytes).expect("JSON");
    v["Records"].as_array().expect("a Records array").clone()
}

/// The S3 log files (not digest, not Insights) of testdata/s3.
fn s3_log_files() -> Vec<String> {
    let files: Vec<String> = files_under(S3).into_iter().filter(|p| p.contains("/CloudTrail/")).collect();
    assert_eq!(files.len(), 7, "5 account-trail files and 2 org-trail copies: {files:?}");
    files
}

#[test]
fn s3_org_trail_redelivery_is_counted_as_duplicates() {
    let out = scan([S3]).expect_code(0).json();
    assert_eq!(num(&out, "files"), 7);
    assert_eq!(num(&out, "files_skipped"), 2);
    let digest = files_under(S3).into_iter().find(|p| p.contains("/CloudTrail-Digest/")).expect("a digest file");
    let insight = files_under(S3).into_iter().find(|p| p.contains("/CloudTrail-Insight/")).expect("an Insights file");
    assert!(reason(&out, "skipped", &digest).contains("digest"), "{}", reason(&out, "skipped", &digest));
    assert!(reason(&out, "skipped", &insight).contains("Insights"), "{}", reason(&out, "skipped", &insight));

    // Every event of the org trail's two files is one the account trail delivered too.
    let ids = |dir: &str| -> Vec<String> {
        files_under(dir)
            .iter()
            .filter(|p| p.contains("/CloudTrail/"))
            .flat_map(|p| records_in(&repo_root().join(p)))
            .map(|r| r["eventID"].as_str().expect("eventID").to_string())
            .collect()
    };
    let redelivered = ids(ORG_TRAIL);
    let account: HashSet<String> = ids(ACCOUNT_TRAIL).into_iter().collect();
    assert_eq!(redelivered.len(), 29 + 51, "records of the two copied files");
    assert!(redelivered.iter().all(|id| account.contains(id)));
    assert_eq!(num(&out, "duplicates"), redelivered.len() as u64);
    assert_eq!(num(&out, "events"), num(&out, "records") - redelivered.len() as u64);
    assert_eq!(num(&out, "events"), account.len() as u64);

    // Without the org trail: the same events and no duplicates.
    let alone = scan([ACCOUNT_TRAIL]).expect_code(0).json();
    assert_eq!(num(&alone, "files"), 5);
    assert_eq!(num(&alone, "duplicates"), 0);
    assert_events_match(&alone, &out, "account trail alone");
}

#[test]
fn window_outside_the_data_prunes_every_file_by_its_s3_key() {
    // All of testdata/s3 was delivered on 2023-07-10 (folder date), its events are from 11:42-11:59 UTC.
    for (flag, when) in [("--from", "2023-08-01"), ("--to", "2023-07-01")] {
        let out = scan([S3, flag, when]).expect_code(0).json();
        assert_eq!(num(&out, "files"), 0, "{flag} {when}");
        assert_eq!(num(&out, "records"), 0, "{flag} {when}");
        assert_eq!(num(&out, "events"), 0, "{flag} {when}");
        assert_eq!(out["first_event_time"], Value::Null);
        assert_eq!(num(&out, "files_skipped"), 9, "7 pruned + digest + Insights");
        for f in s3_log_files() {
            let why = reason(&out, "skipped", &f);
            assert!(why.contains("S3 key") && why.contains(flag), "{flag} {when}: {f}: {why}");
        }
    }
}

#[test]
fn account_or_region_not_in_the_s3_key_prunes_files() {
    for (flag, value, says) in
        [("--account", "111111111111", "account 123837392027"), ("--region", "eu-west-1", "region us-east-1")]
    {
        let out = scan([S3, flag, value]).expect_code(0).json();
        assert_eq!(num(&out, "files"), 0, "{flag}");
        assert_eq!(num(&out, "events"), 0, "{flag}");
        assert_eq!(num(&out, "files_skipped"), 9, "{flag}");
        for f in s3_log_files() {
            let why = reason(&out, "skipped", &f);
            assert!(why.contains("S3 key") && why.contains(says), "{flag}: {f}: {why}");
        }
    }
    // The account and region the keys name select everything.
    let all = scan([S3, "--account", "123837392027", "--region", "us-east-1"]).expect_code(0).json();
    assert_eq!(num(&all, "files"), 7);
    assert_events_match(&all, &golden("s3"), "s3 with its own account and region");
}

#[test]
fn account_and_region_filters_combine() {
    // Counted by hand in awsdocs_examples.jsonl: account 123456789012 (recipientAccountId, or
    // userIdentity.accountId for the five 2014 EC2/IAM examples) in us-east-2 = 5 from 2014, UpdateTrail
    // (2016-07-14) and RotateKey (2019-06-02). The later record reusing RotateKey's eventID is in
    // us-east-1 for another account, so no duplicate is selected.
    let out = scan([AWSDOCS, "--account", "123456789012", "--region", "us-east-2"]).expect_code(2).json();
    assert_eq!(num(&out, "events"), 7);
    assert_eq!(num(&out, "duplicates"), 0);
    assert_eq!(keyed(&out, "by_account"), vec![(Some("123456789012".to_string()), 7)]);
    assert_eq!(keyed(&out, "by_region"), vec![(Some("us-east-2".to_string()), 7)]);
    assert_eq!(text(&out, "first_event_time"), "2014-03-06T17:10:34Z");
    assert_eq!(text(&out, "last_event_time"), "2019-06-02T00:06:08Z");
}

#[test]
fn repeated_account_flags_select_the_union() {
    let g = golden("stratus");
    let (a, b) = ("017622104382", "056392974792");
    let want: Vec<(Option<String>, u64)> = keyed(&g, "by_account")
        .into_iter()
        .filter(|(k, _)| k.as_deref() == Some(a) || k.as_deref() == Some(b))
        .collect();
    assert_eq!(want.len(), 2, "both accounts are in the stratus data");
    let out = scan([STRATUS, "--account", a, "--account", b]).expect_code(0).json();
    assert_eq!(keyed(&out, "by_account"), want);
    assert_eq!(num(&out, "events"), want.iter().map(|(_, n)| n).sum::<u64>());
}

#[test]
fn malformed_directory_reports_every_bad_file_and_exits_2() {
    let run = scan([MALFORMED, "--max-file-mb", "16"]);
    run.expect_code(2);
    let out = run.json(); // the results are printed all the same
    let mut want: Vec<String> = BAD_FILES.iter().map(|(p, _)| p.to_string()).collect();
    want.sort();
    assert_eq!(paths(&out, "failed"), want);
    for (path, phrase) in BAD_FILES {
        let why = reason(&out, "failed", path);
        assert!(why.contains(phrase), "{path}: {why:?} should mention {phrase:?}");
        assert!(run.stderr.contains(path), "stderr names {path}:\n{}", run.stderr);
    }
    assert_eq!(num(&out, "events"), num(&golden("malformed"), "events"));
}

#[test]
fn each_malformed_file_fails_on_its_own() {
    for (path, phrase) in BAD_FILES {
        let run = scan([path, "--max-file-mb", "16"]);
        run.expect_code(2);
        let out = run.json();
        assert_eq!(num(&out, "files"), 0, "{path}");
        assert_eq!(num(&out, "files_failed"), 1, "{path}");
        assert_eq!(num(&out, "events"), 0, "{path}");
        let why = reason(&out, "failed", path);
        assert!(why.contains(phrase), "{path}: {why:?} should mention {phrase:?}");
    }
}

#[test]
fn bomb_is_read_under_the_default_cap() {
    // 64 MiB of spaces after a valid document of 3 real events (scripts/make-test-cases).
    let out = scan(["testdata/malformed/generated/bomb.json.gz"]).expect_code(0).json();
    assert_eq!(num(&out, "files"), 1);
    assert_eq!(num(&out, "files_failed"), 0);
    assert_eq!(num(&out, "records"), 3);
    assert_eq!(num(&out, "events"), 3);
    let capped = scan(["testdata/malformed/generated/bomb.json.gz", "--max-file-mb", "16"]).expect_code(2).json();
    let why = reason(&capped, "failed", "testdata/malformed/generated/bomb.json.gz");
    assert!(why.contains("--max-file-mb"), "the reason says how to raise the cap: {why}");
}

#[test]
fn missing_fields_rejects_one_record_and_keeps_one_without_event_id() {
    // Three real events: the first without eventTime, the second without eventID (make-test-cases).
    let path = "testdata/malformed/generated/missing-fields.json";
    let run = scan([path]);
    run.expect_code(2);
    let out = run.json();
    assert_eq!(num(&out, "files"), 1);
    assert_eq!(num(&out, "records"), 2);
    assert_eq!(num(&out, "records_rejected"), 1);
    assert_eq!(num(&out, "records_without_event_id"), 1);
    assert_eq!(num(&out, "events"), 2);
    let rejected = list(&out, "rejected");
    assert_eq!(rejected.len(), 1);
    assert_eq!(text(&rejected[0], "path"), path);
    assert_eq!(num(&rejected[0], "records"), 1);
    assert!(text(&rejected[0], "reason").contains("eventTime"), "{}", rejected[0]);
    assert!(run.stderr.contains(path), "stderr names the file:\n{}", run.stderr);
}

#[test]
fn text_file_is_skipped_not_failed() {
    let out = scan(["testdata/malformed/generated/notes.txt"]).expect_code(0).json();
    assert_eq!(num(&out, "files"), 0);
    assert_eq!(num(&out, "files_failed"), 0);
    assert_eq!(num(&out, "files_skipped"), 1);
    let why = reason(&out, "skipped", "testdata/malformed/generated/notes.txt");
    assert!(why.contains("not JSON"), "{why}");
}

#[test]
fn empty_json_array_is_a_file_without_events() {
    let out = scan(["testdata/malformed/traildiscover/PutEventSelectors.json"]).expect_code(0).json();
    assert_eq!(num(&out, "files"), 1);
    assert_eq!(num(&out, "files_failed"), 0);
    assert_eq!(num(&out, "records"), 0);
    assert_eq!(num(&out, "events"), 0);
}

#[test]
fn table_format_lists_events_by_account_region_and_day() {
    let out = scan([INVICTUS, "--format", "table"]);
    out.expect_code(0);
    for s in ["events by account", "events by region", "events by day", "123837392027", "us-east-1", "2900"] {
        assert!(out.stdout.contains(s), "table lacks {s:?}:\n{}", out.stdout);
    }
    assert!(serde_json::from_str::<Value>(&out.stdout).is_err(), "a table, not JSON");
}

#[test]
fn json_is_the_default_off_a_terminal_and_output_goes_to_a_file() {
    let g = golden("plaso");
    let piped = scan(["testdata/plaso"]).expect_code(0).json();
    assert_events_match(&piped, &g, "default format");
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("summary.json");
    let run = scan(["testdata/plaso", "--format", "json", "-o", path_str(&file)]);
    run.expect_code(0);
    assert!(run.stdout.is_empty(), "nothing on stdout with -o: {}", run.stdout);
    let written: Value = serde_json::from_str(&fs::read_to_string(&file).expect("-o file")).expect("JSON");
    assert_events_match(&written, &g, "-o file");
}

// ---- the store ----

/// `scan INPUT... --store STORE --format json`.
fn ingest(inputs: &[&str], store: &Path) -> Output {
    let mut args: Vec<&str> = inputs.to_vec();
    args.extend(["--store", path_str(store), "--format", "json"]);
    scan(args)
}

#[test]
fn store_ingest_then_rerun_reads_nothing_unchanged() {
    let g = golden("invictus");
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = tmp.path().join("store");

    let first = ingest(&[INVICTUS], &store).expect_code(0).json();
    assert_eq!(num(&first, "files_ingested"), num(&g, "files"));
    assert_eq!(num(&first, "files_ingested"), 55);
    assert_eq!(num(&first, "files_unchanged"), 0);
    assert_eq!(num(&first, "events_written"), num(&g, "events"));
    assert_eq!(text(&first, "store"), path_str(&store));
    assert_events_match(&first, &g, "first ingest");

    let second = ingest(&[INVICTUS], &store).expect_code(0).json();
    assert_eq!(num(&second, "files_ingested"), 0);
    assert_eq!(num(&second, "events_written"), 0);
    assert_eq!(num(&second, "files"), 0, "nothing re-read");
    assert_eq!(num(&second, "records"), 0, "nothing re-read");
    assert_events_match(&second, &g, "second ingest");

    // Inputs are remembered by absolute path: the same files named from another directory are unchanged.
    let third = TestCommand::new(["scan", "invictus-ir", "--quiet", "--format", "json", "--store", path_str(&store)])
        .current_dir(repo_root().join("testdata"))
        .run();
    let third = third.expect_code(0).json();
    assert_eq!(num(&third, "files_ingested"), 0);
    assert_eq!(num(&third, "events_written"), 0);
}

#[test]
fn store_rerun_counts_the_ingested_files_as_unchanged() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = tmp.path().join("store");
    let first = ingest(&[INVICTUS], &store).expect_code(0).json();
    let second = ingest(&[INVICTUS], &store).expect_code(0).json();
    assert_eq!(num(&second, "files_unchanged"), num(&first, "files_ingested"));
    assert_eq!(num(&second, "files_unchanged"), 55);
}

#[test]
fn store_as_input_matches_the_raw_scan() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = tmp.path().join("store");
    ingest(&[INVICTUS], &store).expect_code(0);
    let out = scan([path_str(&store), "--format", "json"]).expect_code(0).json();
    assert_eq!(num(&out, "files"), 0, "a store is not re-read as files");
    assert_eq!(num(&out, "duplicates"), 0);
    assert_events_match(&out, &golden("invictus"), "store as input");
}

#[test]
fn store_as_input_with_a_time_window() {
    let g = golden("invictus-window");
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = tmp.path().join("store");
    ingest(&[INVICTUS], &store).expect_code(0);
    let flags = golden_flags(&g);
    assert!(flags.iter().any(|f| f == "--from") && flags.iter().any(|f| f == "--to"), "{flags:?}");
    let out = scan_store(&store, &flags).expect_code(0).json();
    assert_events_match(&out, &g, "store with --from/--to");
    // A window with no events prunes every partition.
    let none = scan([path_str(&store), "--format", "json", "--from", "2023-07-11"]).expect_code(0).json();
    assert_eq!(num(&none, "events"), 0);
    assert_eq!(none["first_event_time"], Value::Null);
}

#[test]
fn store_answers_filters_like_the_golden_cases() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Region filter (partition pruning by region) on the Stratus Red Team data.
    let stratus = tmp.path().join("stratus");
    ingest(&[STRATUS], &stratus).expect_code(0);
    let g = golden("stratus-region");
    let out = scan_store(&stratus, &golden_flags(&g)).expect_code(0).json();
    assert_events_match(&out, &g, "store --region");
    // Account filter on the AWS docs examples (one account comes from userIdentity.accountId only).
    let docs = tmp.path().join("docs");
    ingest(&[AWSDOCS], &docs).expect_code(2); // one record without eventTime
    let all = scan([path_str(&docs), "--format", "json"]).expect_code(0).json();
    assert_events_match(&all, &golden("awsdocs"), "store of awsdocs");
    let g = golden("awsdocs-account");
    let out = scan_store(&docs, &golden_flags(&g)).expect_code(0).json();
    assert_events_match(&out, &g, "store --account");
}

#[test]
fn store_and_raw_files_together_are_deduplicated() {
    // testdata/s3 holds gzipped copies of the first five Invictus IR files (scripts/make-test-cases), so
    // every one of its rows is a duplicate of an event already in the store.
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = tmp.path().join("store");
    ingest(&[INVICTUS], &store).expect_code(0);
    let out = scan([path_str(&store), S3, "--format", "json"]).expect_code(0).json();
    assert_eq!(num(&out, "files"), 7);
    assert_eq!(num(&out, "duplicates"), num(&golden("s3"), "records"));
    assert_events_match(&out, &golden("invictus"), "store + s3");
}

#[test]
fn store_reingests_only_a_touched_or_rewritten_file() {
    let g = golden("invictus");
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = tmp.path().join("in");
    fs::create_dir(&input).expect("mkdir");
    let mut names: Vec<String> = files_under("testdata/invictus-ir/CloudTrail");
    names.sort();
    for n in &names {
        let p = repo_root().join(n);
        fs::copy(&p, input.join(p.file_name().expect("name"))).expect("copy");
    }
    assert_eq!(names.len(), 55);
    let store = tmp.path().join("store");
    let first = ingest(&[path_str(&input)], &store).expect_code(0).json();
    assert_eq!(num(&first, "files_ingested"), 55);
    assert_eq!(num(&first, "events_written"), num(&g, "events"));

    // Touch: same bytes, another modification time.
    let touched = input.join("218007301253_CloudTrail_us-east-1_20230710T1200Z_iLj9fb7yyUG9X4Bf.json");
    let f = fs::File::options().write(true).open(&touched).expect("open");
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000)).expect("set mtime");
    drop(f);
    let n = records_in(&touched).len() as u64;
    assert!(n > 0);
    let out = ingest(&[path_str(&input)], &store).expect_code(0).json();
    assert_eq!(num(&out, "files_ingested"), 1);
    assert_eq!(num(&out, "files_unchanged"), 54);
    assert_eq!(num(&out, "records"), n);
    // A changed file is ingested again whole; its new rows replace its earlier ones.
    assert_eq!(num(&out, "duplicates"), 0);
    assert_eq!(num(&out, "events_written"), n);
    assert_events_match(&out, &g, "after touch");

    // Rewrite another file: same events, one byte longer.
    let rewritten = input.join("218007301253_CloudTrail_us-east-1_20230710T1145Z_7xgocspSowgK0Gto.json");
    let mut bytes = fs::read(&rewritten).expect("read");
    bytes.push(b'\n');
    fs::write(&rewritten, bytes).expect("write");
    let out = ingest(&[path_str(&input)], &store).expect_code(0).json();
    assert_eq!(num(&out, "files_ingested"), 1);
    assert_eq!(num(&out, "files_unchanged"), 54);
    assert_eq!(num(&out, "events_written"), records_in(&rewritten).len() as u64);
    assert_eq!(num(&out, "duplicates"), 0);

    let stored = scan([path_str(&store), "--format", "json"]).expect_code(0).json();
    assert_events_match(&stored, &g, "store after re-ingesting two files");
}

#[test]
fn store_reingest_of_a_touched_file_keeps_events_without_event_id_once() {
    let g = golden("awsdocs");
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = tmp.path().join("in");
    fs::create_dir(&input).expect("mkdir");
    let file = input.join("awsdocs_examples.jsonl");
    fs::copy(repo_root().join("testdata/awsdocs/awsdocs_examples.jsonl"), &file).expect("copy");
    let store = tmp.path().join("store");
    let first = ingest(&[path_str(&input)], &store).expect_code(2).json();
    let f = fs::File::options().write(true).open(&file).expect("open");
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000)).expect("set mtime");
    drop(f);
    let again = ingest(&[path_str(&input)], &store).expect_code(2).json();
    assert_eq!(num(&again, "files_ingested"), 1);
    // The changed file is ingested again whole and replaces its earlier rows.
    assert_eq!(num(&again, "events_written"), num(&first, "events_written"));
    let stored = scan([path_str(&store), "--format", "json"]).expect_code(0).json();
    assert_events_match(&stored, &g, "store after touching a file with events without eventID");
}

#[test]
fn store_ingest_retries_failed_files() {
    let g = golden("malformed");
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = tmp.path().join("store");
    let mut want: Vec<String> = BAD_FILES.iter().map(|(p, _)| p.to_string()).collect();
    want.sort();
    let args = [MALFORMED, "--max-file-mb", "16", "--store", path_str(&store), "--format", "json"];
    let first = scan(args).expect_code(2).json();
    assert_eq!(paths(&first, "failed"), want);
    assert_eq!(num(&first, "events_written"), num(&g, "events"));
    assert_events_match(&first, &g, "first ingest of malformed");
    // Failed files are not recorded as ingested: the next run tries them again and still reports them.
    let second = scan(args).expect_code(2).json();
    assert_eq!(paths(&second, "failed"), want);
    assert_eq!(num(&second, "files_ingested"), 0);
    assert_eq!(num(&second, "events_written"), 0);
    assert_events_match(&second, &g, "second ingest of malformed");
}

#[test]
fn store_refuses_a_non_empty_directory_that_is_not_a_store() {
    let tmp = tempfile::tempdir().expect("tempdir");
    fs::write(tmp.path().join("notes.md"), "mine").expect("write");
    let run = ingest(&["testdata/plaso"], tmp.path());
    run.expect_code(1);
    assert!(run.stderr.contains("not a trailscope store"), "{}", run.stderr);
    let left: Vec<_> = fs::read_dir(tmp.path()).expect("read_dir").collect();
    assert_eq!(left.len(), 1, "nothing written into the directory");
}

/// A duplicate is the same eventID at the same eventTime in the same account and region: a record
/// that copies an event's id and time into another account or region is another event, whether the
/// events are read at once, out of core, or through the store.
#[test]
fn a_copied_id_and_time_in_another_account_or_region_is_another_event() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = tmp.path().join("in");
    fs::create_dir(&input).expect("mkdir");
    let event = |account: &str, region: &str| {
        serde_json::json!({"eventVersion": "1.08", "eventTime": "2024-03-10T12:00:00Z", "eventSource": "s3.amazonaws.com",
            "eventName": "ListBuckets", "awsRegion": region, "eventID": "11111111-2222-3333-4444-555555555555",
            "recipientAccountId": account, "userIdentity": {"type": "IAMUser", "accountId": account}})
    };
    let records = [
        event("111111111111", "us-east-1"),
        event("111111111111", "us-east-1"), // a redelivery: dropped
        event("222222222222", "us-east-1"),
        event("111111111111", "eu-west-1"),
    ];
    fs::write(input.join("a.json"), serde_json::json!({"Records": records}).to_string()).expect("write");
    let dir = path_str(&input);
    for limit in [None, Some("1")] {
        let mut args = vec![dir, "--format", "json"];
        if let Some(l) = limit {
            args.extend(["--memory-limit", l]);
        }
        let out = scan(&args).expect_code(0).json();
        assert_eq!((num(&out, "events"), num(&out, "duplicates")), (3, 1), "limit {limit:?}: {out:#}");
    }
    let store = tmp.path().join("store");
    let out = ingest(&[dir], &store).expect_code(0).json();
    assert_eq!(num(&out, "events_written"), 3, "{out:#}");
    let out = scan([path_str(&store), "--format", "json"]).expect_code(0).json();
    assert_eq!(num(&out, "events"), 3, "{out:#}");
    // The store and the raw file together: every raw row is now a repeat.
    let out = scan([path_str(&store), dir, "--format", "json"]).expect_code(0).json();
    assert_eq!((num(&out, "events"), num(&out, "duplicates")), (3, 4), "{out:#}");
}
