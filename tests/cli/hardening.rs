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
