//! Hostile input, hostile file systems, crashed writers (#13): each hole an adversarial run found,
//! pinned by a test that failed before its fix.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{list, num, text, Output, TestCommand};

/// `trailscope scan ARGS... --quiet --format json`, run in the repository root.
fn scan<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: Into<std::ffi::OsString>,
{
    TestCommand::new(["scan"]).args(args).args(["--quiet", "--format", "json"]).run()
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// One CloudTrail record with this id.
fn record(id: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.08","eventTime":"2024-03-05T10:00:00Z","eventID":"{id}","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","recipientAccountId":"123456789012"}}"#
    )
}

/// A delivery file of 5,000 one-record gzip members and a last member of 32 MiB (whitespace inside
/// the JSON): each member used to be given a zero-filled buffer of the last member's size, 160 GB of
/// memset for a 200 KB file. Now it reads in the time its bytes take, every record included.
#[test]
fn many_gzip_members_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("members.json.gz");
    let mut data = gz(b"{\"Records\":[");
    for i in 0..5_000 {
        let sep = if i == 0 { "" } else { "," };
        data.extend(gz(format!("{sep}{}", record(&format!("id-{i}"))).as_bytes()));
    }
    let mut tail = vec![b' '; 32 << 20];
    tail.extend_from_slice(b"]}");
    data.extend(gz(&tail));
    fs::write(&path, data).unwrap();
    let out = scan([&path]);
    out.expect_code(0);
    let v = out.json();
    assert_eq!(num(&v, "files"), 1);
    assert_eq!(num(&v, "records"), 5_000);
    assert_eq!(num(&v, "events"), 5_000);
}

/// Make a named pipe at `path`.
fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(rc, 0, "mkfifo {}: {}", path.display(), std::io::Error::last_os_error());
}

/// Should a reader block on one of these FIFOs (the bug), open it for writing now and then and close
/// it, so that the reader sees end of file and the test fails on its assertions instead of hanging.
fn unblock_later(fifos: Vec<PathBuf>) {
    std::thread::spawn(move || {
        for _ in 0..120 {
            std::thread::sleep(std::time::Duration::from_secs(1));
            for f in &fifos {
                use std::os::unix::fs::OpenOptionsExt;
                let _ = fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(f);
            }
        }
    });
}

/// The reason given for `path` in a summary's `field` list.
#[track_caller]
fn reason_of<'a>(v: &'a Value, field: &str, path: &Path) -> &'a str {
    let path = path.to_str().expect("UTF-8 test path");
    let hit = list(v, field).iter().find(|x| text(x, "path") == path);
    text(hit.unwrap_or_else(|| panic!("{path} not in {field}: {:#}", v[field])), "reason")
}

/// `mkfifo p.json; trailscope scan p.json` used to wait forever for a writer (#13); a FIFO, and a
/// link to a device, named on the command line are skipped with what they are.
#[test]
fn a_fifo_named_as_input_is_skipped_not_opened() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("p.json");
    mkfifo(&fifo);
    unblock_later(vec![fifo.clone()]);
    let null = dir.path().join("null.json");
    std::os::unix::fs::symlink("/dev/null", &null).unwrap();
    let out = scan([&fifo, &null]);
    out.expect_code(0);
    let v = out.json();
    assert_eq!((num(&v, "files"), num(&v, "files_skipped"), num(&v, "files_failed")), (0, 2, 0));
    assert!(reason_of(&v, "skipped", &fifo).contains("a named pipe (FIFO)"), "{v:#}");
    assert!(reason_of(&v, "skipped", &null).contains("a device"), "{v:#}");
}

/// FIFOs, sockets and links to them inside a directory used to vanish from the accounting (neither
/// read, skipped nor failed), and links to a FIFO or to /dev/null were called "symbolic link to a
/// directory" (#13). Every entry now ends in one bucket with a true reason.
#[test]
fn special_files_in_a_directory_are_each_accounted_for() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("good.json"), format!("{{\"Records\":[{}]}}", record("good"))).unwrap();
    let fifo = d.join("p.json");
    mkfifo(&fifo);
    unblock_later(vec![fifo.clone()]);
    let sock = d.join("s.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let to_fifo = d.join("to-fifo.json");
    std::os::unix::fs::symlink(&fifo, &to_fifo).unwrap();
    let to_null = d.join("to-null.json");
    std::os::unix::fs::symlink("/dev/null", &to_null).unwrap();
    let to_dir = d.join("to-dir");
    std::os::unix::fs::symlink(d, &to_dir).unwrap();
    let out = scan([d]);
    out.expect_code(0);
    let v = out.json();
    assert_eq!(num(&v, "files"), 1, "{v:#}");
    assert_eq!(num(&v, "events"), 1);
    assert_eq!(num(&v, "files_failed"), 0, "{v:#}");
    assert_eq!(num(&v, "files_skipped"), 5, "{v:#}");
    assert!(reason_of(&v, "skipped", &fifo).starts_with("a named pipe (FIFO)"));
    assert!(reason_of(&v, "skipped", &sock).starts_with("a socket"));
    assert!(reason_of(&v, "skipped", &to_fifo).starts_with("symbolic link to a named pipe (FIFO)"));
    assert!(reason_of(&v, "skipped", &to_null).starts_with("symbolic link to a device"));
    assert!(reason_of(&v, "skipped", &to_dir).starts_with("symbolic link to a directory"));
}

/// A path made of these bytes under `dir`.
fn raw_name(dir: &Path, name: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    dir.join(std::ffi::OsStr::from_bytes(name))
}

/// Write `text` to `path` with a fixed mtime, so that two files can agree on size and mtime.
fn write_at(path: &Path, text: &str, secs: u64) {
    fs::write(path, text).unwrap();
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    fs::File::options().write(true).open(path).unwrap().set_modified(t).unwrap();
}

/// `\xff.json` and `\xfe.json` (same size, same mtime) shared one store key, their lossy UTF-8 name:
/// ingesting one and then the directory stored 1 event of 2 with exit 0, and re-ingesting after a
/// touch dropped the other's rows as "superseded" (#13). Keys are the exact bytes now.
#[test]
fn names_that_are_not_utf8_are_kept_apart_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).unwrap();
    let ff = raw_name(&logs, b"\xff.json");
    let fe = raw_name(&logs, b"\xfe.json");
    write_at(&ff, &format!("{{\"Records\":[{}]}}", record("event-ff")), 1_700_000_000);
    write_at(&fe, &format!("{{\"Records\":[{}]}}", record("event-fe")), 1_700_000_000);
    let store = dir.path().join("store");
    let store_events = || {
        let out = scan([&store]);
        out.expect_code(0);
        num(&out.json(), "events")
    };
    scan([ff.as_os_str(), "--store".as_ref(), store.as_os_str()]).expect_code(0);
    let out = scan([logs.as_os_str(), "--store".as_ref(), store.as_os_str()]);
    out.expect_code(0);
    assert_eq!(num(&out.json(), "files_ingested"), 1, "the second name is a new file");
    assert_eq!(store_events(), 2);
    // A touched file is re-ingested; the other's rows stay.
    write_at(&fe, &format!("{{\"Records\":[{}]}}", record("event-fe")), 1_700_000_100);
    scan([logs.as_os_str(), "--store".as_ref(), store.as_os_str()]).expect_code(0);
    assert_eq!(store_events(), 2);
    // The manifests name both files, escaped.
    let manifests = fs::read_dir(store.join("_trailscope/manifest")).unwrap();
    let text: String = manifests.map(|m| fs::read_to_string(m.unwrap().path()).unwrap()).collect();
    assert!(text.contains(r#"logs/\\xff.json""#) && text.contains(r#"logs/\\xfe.json""#), "{text}");
}

/// A corrupt `*.json` whose name is not UTF-8 was "skipped" (exit 0) instead of failed, and two
/// such names printed alike (#13). Names are judged by their bytes and printed escaped: stderr,
/// JSON and the table each show two distinct failures.
#[test]
fn corrupt_files_with_names_that_are_not_utf8_fail_and_print_apart() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(raw_name(dir.path(), b"bad\xff.json"), "").unwrap();
    fs::write(raw_name(dir.path(), b"bad\xfe.json"), "garbage").unwrap();
    let root = dir.path().to_str().unwrap();
    let out = scan([dir.path()]);
    out.expect_code(2);
    let v = out.json();
    assert_eq!((num(&v, "files_failed"), num(&v, "files_skipped")), (2, 0), "{v:#}");
    let mut failed: Vec<&str> = list(&v, "failed").iter().map(|f| text(f, "path")).collect();
    failed.sort();
    assert_eq!(failed, [format!("{root}/bad\\xfe.json"), format!("{root}/bad\\xff.json")]);
    for name in ["bad\\xfe.json", "bad\\xff.json"] {
        assert!(out.stderr.contains(&format!("trailscope: {root}/{name}: ")), "{}", out.stderr);
    }
    let table = TestCommand::new(["scan", "--quiet", "--format", "table"]).arg(dir.path()).run();
    table.expect_code(2);
    assert!(table.stdout.contains("bad\\xfe.json: ") && table.stdout.contains("bad\\xff.json: "), "{}", table.stdout);
}

/// A file name holding a newline was printed raw, on stderr and in the table's failed list, so it
/// could forge a line of its own (a fake failure) (#13).
#[test]
fn a_newline_in_a_file_name_forges_no_line() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(raw_name(dir.path(), b"evil\ntrailscope: forged.json"), "").unwrap();
    let table = TestCommand::new(["scan", "--quiet", "--format", "table"]).arg(dir.path()).run();
    table.expect_code(2);
    for (what, text) in [("stderr", &table.stderr), ("table", &table.stdout)] {
        assert!(!text.lines().any(|l| l.trim_start().starts_with("trailscope: forged")), "{what}:\n{text}");
        assert!(text.contains("evil\\x0atrailscope: forged.json: empty file"), "{what}:\n{text}");
    }
}

/// ANSI and OSC escape sequences in log fields reached the terminal raw from `--format table` (#13):
/// they are written as visible escapes now; JSON keeps the field's exact text.
#[test]
fn escape_sequences_in_log_fields_never_reach_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ansi.json");
    let payload = "\u{1b}]0;pwned\u{7}\u{1b}[31mred\u{9b}2J";
    let mut rec: Value = serde_json::from_str(&record("ansi")).unwrap();
    rec["userAgent"] = payload.into();
    rec["eventName"] = format!("Get{payload}").into();
    fs::write(&path, serde_json::json!({ "Records": [rec] }).to_string()).unwrap();
    let out = TestCommand::new(["timeline", "--quiet", "--format", "table"]).arg(&path).run();
    out.expect_code(0);
    assert!(!out.stdout.contains(['\u{1b}', '\u{7}', '\u{9b}']), "raw control characters:\n{:?}", out.stdout);
    assert!(out.stdout.contains("\\x1b]0;pwned\\x07\\x1b[31mred\\u{9b}2J"), "{}", out.stdout);
    let json = TestCommand::new(["timeline", "--quiet", "--format", "json"]).arg(&path).run();
    assert_eq!(json.json()[0]["user_agent"], payload);
}

/// Cells starting with `=`, `+`, `-`, `@`, a tab or a CR were written as they are, so a log field
/// such as `=HYPERLINK("http://127.0.0.1/x","click")` became a live formula in a spreadsheet (#13).
/// Text cells get a leading `'` (OWASP), in CSV and in Timesketch's CSV.
#[test]
fn csv_cells_never_start_a_formula() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("formulas.json");
    let mut rec: Value = serde_json::from_str(&record("formula")).unwrap();
    rec["userAgent"] = r#"=HYPERLINK("http://127.0.0.1/x","click")"#.into();
    rec["eventName"] = "+Get".into();
    rec["errorMessage"] = "-2+3".into();
    rec["sourceIPAddress"] = "@SUM(1)".into();
    rec["userIdentity"] = serde_json::json!({"type": "IAMUser", "arn": "\tcmd"});
    fs::write(&path, serde_json::json!({ "Records": [rec] }).to_string()).unwrap();
    let out = TestCommand::new(["timeline", "--quiet", "--format", "csv"]).arg(&path).run();
    out.expect_code(0);
    let row = out.stdout.lines().nth(1).expect("one row");
    for cell in [r#""'=HYPERLINK(""http://127.0.0.1/x"",""click"")""#, ",'+Get,", ",'-2+3,", ",'@SUM(1),", ",'\tcmd,"] {
        assert!(row.contains(cell), "{cell} not in {row}");
    }
    let csv = dir.path().join("sketch.csv");
    TestCommand::new(["timeline", "--quiet", "--format", "timesketch", "-o"]).arg(&csv).arg(&path).run().expect_code(0);
    let sketch = fs::read_to_string(&csv).unwrap();
    let row = sketch.lines().nth(1).expect("one row");
    assert!(row.starts_with("'\tcmd s3.amazonaws.com:+Get from @SUM(1)"), "{row}");
    assert!(row.contains(r#""'=HYPERLINK("#), "{row}");
}

/// The organization trail's copies of two account-trail files (80 repeated events; testdata/README.md).
const ACCOUNT_TRAIL: &str = "testdata/s3/AWSLogs/123837392027";
const ORG_TRAIL: &str = "testdata/s3/AWSLogs/o-exampleorg1";

/// Rows in the store's Parquet files, read as another engine would: every `events/**/*.parquet`.
fn parquet_rows(store: &Path) -> usize {
    use polars::prelude::SerReader as _;
    parquet_files(store)
        .iter()
        .map(|f| polars::prelude::ParquetReader::new(fs::File::open(f).unwrap()).finish().unwrap().height())
        .sum()
}

fn compact(store: &Path) {
    TestCommand::new(["compact", "--format", "json"]).arg(store).run().expect_code(0);
}

/// Two `scan --store` runs at once over overlapping inputs (the account trail and the organization
/// trail's copy) both wrote the 80 shared events: 688 events for good, `compact` included (#13).
/// Readers now answer each event once, and `compact` leaves files that hold it once.
#[test]
fn concurrent_writers_leave_each_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let spawn = |input: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_trailscope"))
            .args(["scan", input, "--quiet", "--format", "json", "--store"])
            .arg(&store)
            .current_dir(crate::repo_root())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (spawn(ACCOUNT_TRAIL), spawn(ORG_TRAIL));
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    let events = || {
        let out = scan([&store]);
        out.expect_code(0);
        num(&out.json(), "events")
    };
    assert_eq!(events(), 608);
    compact(&store);
    assert_eq!(events(), 608);
    assert_eq!(parquet_rows(&store), 608);
}

/// The same, made deterministic: each trail ingested into a store of its own, then the second
/// store's committed batch copied into the first, as a writer running at the same time leaves it.
#[test]
fn a_second_writers_batches_repeating_events_are_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    for (store, input) in [(&first, ACCOUNT_TRAIL), (&second, ORG_TRAIL)] {
        scan([input.as_ref(), "--store".as_ref(), store.as_os_str()]).expect_code(0);
    }
    copy_tree(&second.join("events"), &first.join("events"));
    copy_tree(&second.join("_trailscope/manifest"), &first.join("_trailscope/manifest"));
    assert_eq!(parquet_rows(&first), 688, "both writers' rows are on disk");
    let out = scan([&first]);
    out.expect_code(0);
    assert_eq!(num(&out.json(), "events"), 608);
    compact(&first);
    assert_eq!(parquet_rows(&first), 608);
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// The Parquet files other engines would read (`events/**/*.parquet`).
fn parquet_files(store: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&store.join("events"), &mut files);
    files.sort();
    files
}

/// 12 of 20 `kill -9`s during `scan --store` left part files no manifest names under `events/`,
/// where other engines read them (one held 67,631 rows), and neither the next run nor `compact`
/// removed them (#13). Parts are staged under `_trailscope/tmp/<writer>/` now, moved into `events/`
/// only to be committed, and the next writer removes what a dead one left.
#[test]
fn a_crashed_writers_parts_are_never_read_and_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    scan([ACCOUNT_TRAIL.as_ref(), "--store".as_ref(), store.as_os_str()]).expect_code(0);
    let committed = parquet_files(&store);
    let part = &committed[0];
    // What a writer killed between moving a part into place and committing it leaves ...
    let stray = part.with_file_name("part-20240101T000000.000Z-999999-00000-0000.parquet");
    fs::copy(part, &stray).unwrap();
    // ... and one killed while staging: its lock file (no longer locked) and its staging folder.
    let tmp = store.join("_trailscope/tmp");
    let crashed = tmp.join("20240101T000000.000Z-999998");
    fs::create_dir_all(&crashed).unwrap();
    fs::write(tmp.join("20240101T000000.000Z-999998.lock"), "").unwrap();
    fs::copy(part, crashed.join("20240101T000000.000Z-999998-00000-0000.parquet")).unwrap();
    // Readers of the store never see the uncommitted part.
    let out = scan([&store]);
    out.expect_code(0);
    assert_eq!(num(&out.json(), "events"), 608);
    // The next writer removes both.
    scan([ORG_TRAIL.as_ref(), "--store".as_ref(), store.as_os_str()]).expect_code(0);
    assert!(!stray.exists(), "the uncommitted part is removed");
    assert!(!crashed.exists(), "the dead writer's staging folder is removed");
    assert_eq!(parquet_files(&store), committed, "only committed parts under events/");
    assert_eq!(parquet_rows(&store), 608);
    // And compact does too.
    fs::copy(part, &stray).unwrap();
    compact(&store);
    assert!(!stray.exists());
    assert_eq!(parquet_rows(&store), 608);
    assert!(fs::read_dir(&tmp).unwrap().next().is_none(), "no writer left anything behind");
}

/// `*.trailscope-tmp` files and `.trailscope-pull/` folders in an input tree were dropped without a
/// word (#13): they are counted as skipped, with what they are.
#[test]
fn trailscope_own_files_in_an_input_tree_are_skipped_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("good.json"), format!("{{\"Records\":[{}]}}", record("good"))).unwrap();
    fs::write(d.join(".x.json.gz.123.trailscope-tmp"), "partial").unwrap();
    fs::create_dir(d.join(".trailscope-pull")).unwrap();
    fs::write(d.join(".trailscope-pull/state.json"), "{}").unwrap();
    let out = scan([d]);
    out.expect_code(0);
    let v = out.json();
    assert_eq!((num(&v, "files"), num(&v, "files_skipped")), (1, 2), "{v:#}");
    assert!(reason_of(&v, "skipped", &d.join(".x.json.gz.123.trailscope-tmp")).contains("temporary file"));
    assert!(reason_of(&v, "skipped", &d.join(".trailscope-pull")).contains("resume state"));
}

/// `9999-12-31T23:59:60Z` (a leap second on the last day RFC 3339 can write) printed as
/// `+10000-01-01T00:00:00Z` (#13): such a record is rejected as having a bad eventTime.
#[test]
fn an_event_time_past_year_9999_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("late.json");
    let late = record("late").replace("2024-03-05T10:00:00Z", "9999-12-31T23:59:60Z");
    fs::write(&path, format!("{{\"Records\":[{},{}]}}", record("ok"), late)).unwrap();
    let out = scan([&path]);
    out.expect_code(2);
    let v = out.json();
    assert_eq!((num(&v, "events"), num(&v, "records_rejected")), (1, 1), "{v:#}");
    assert!(!out.stdout.contains("+10000"), "{}", out.stdout);
}
