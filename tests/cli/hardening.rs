//! Hostile input, hostile file systems, crashed writers (#13): each hole an adversarial run found,
//! pinned by a test that failed before its fix.

use std::fs;
use std::io::Write;

use crate::{num, Output, TestCommand};

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
