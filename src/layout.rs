//! CloudTrail's S3 layout and trailscope's on-disk names, in one place: what a key says
//! (`[prefix/]AWSLogs/[o-org/]<account>/CloudTrail/<region>/YYYY/MM/DD/<file>`), how digests name
//! their chains and log files, and the names `pull` and the store leave beside the logs.

use std::path::Path;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::time::parse_instant;

/// What the S3 key layout says about a log file:
/// `[prefix/]AWSLogs/[o-org/]<account>/CloudTrail/<region>/YYYY/MM/DD/<file>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyInfo {
    pub account: Option<String>,
    pub region: Option<String>,
    /// UTC day of delivery (the folder date). Events in the file are from that day or shortly before.
    pub date: Option<NaiveDate>,
}

/// Read the layout from the path's segments; only a complete `AWSLogs/...` layout is trusted.
pub fn parse_key(segments: &[&str]) -> KeyInfo {
    let Some(i) = segments.iter().rposition(|s| *s == "AWSLogs") else {
        return KeyInfo::default();
    };
    let mut rest = &segments[i + 1..];
    if rest.first().is_some_and(|s| s.starts_with("o-")) {
        rest = &rest[1..];
    }
    // <account>/CloudTrail/<region>/YYYY/MM/DD/<file>
    if rest.len() < 7 || rest[1] != "CloudTrail" {
        return KeyInfo::default();
    }
    let account = rest[0];
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return KeyInfo::default();
    }
    let date = (|| {
        let y = rest[3].parse().ok()?;
        let m = rest[4].parse().ok()?;
        let d = rest[5].parse().ok()?;
        NaiveDate::from_ymd_opt(y, m, d)
    })();
    KeyInfo { account: Some(account.to_string()), region: Some(rest[2].to_string()), date }
}

/// Suffix of the file `pull` writes beside each digest with its S3 object metadata.
pub const METADATA_SUFFIX: &str = ".metadata.json";

/// The object metadata CloudTrail sets on a digest (`x-amz-meta-signature`, ...).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct DigestMetadata {
    #[serde(rename = "signature")]
    pub signature: Option<String>,
    #[serde(rename = "signature-algorithm")]
    pub signature_algorithm: Option<String>,
}

/// The S3 key of a local file, from `AWSLogs/` on (the bucket and any prefix are ignored, so a tree
/// pulled with or without its prefix matches the keys the digests name).
pub fn key_of(path: &Path) -> Option<String> {
    let s = path.to_string_lossy().replace('\\', "/");
    let i = s.find("AWSLogs/")?;
    Some(s[i..].to_string())
}

pub fn key_from_s3_object(obj: &str) -> String {
    match obj.find("AWSLogs/") {
        Some(i) => obj[i..].to_string(),
        None => obj.to_string(),
    }
}

/// (account, region, trail) of a digest: its chain.
pub fn chain_of(key: &str) -> String {
    let name = key.rsplit('/').next().unwrap_or(key);
    // <acct>_CloudTrail-Digest_<region>_<trail>_<home-region>_<timestamp>.json.gz
    let stem = name.rsplit_once('_').map_or(name, |(a, _)| a);
    let org = key.split('/').nth(1).filter(|s| s.starts_with("o-")).unwrap_or("");
    format!("{org}{stem}")
}

/// Timestamp of a log file from its name (`..._20230710T1220Z_xxxx.json.gz`), in ms.
pub fn log_file_time(key: &str) -> Option<i64> {
    let name = key.rsplit('/').next()?;
    let stamp = name.split('_').find(|p| p.len() == 14 && p.as_bytes()[8] == b'T' && p.ends_with('Z'))?;
    let iso = format!("{}-{}-{}T{}:{}:00Z", &stamp[0..4], &stamp[4..6], &stamp[6..8], &stamp[9..11], &stamp[11..13]);
    parse_instant(&iso).ok()
}

/// Directory under DEST where `pull` keeps what it knows about the objects it wrote.
pub const STATE_DIR: &str = ".trailscope-pull";
/// Suffix of the temporary names files are written under before they are renamed into place
/// (defined with the atomic write, `fs`).
pub use crate::fs::TMP_SUFFIX;

/// The folder of a store's own files (marker, manifests), beside its `events/` tree.
pub const STORE_META_DIR: &str = "_trailscope";
/// The marker file that makes a directory a trailscope store: `<dir>/_trailscope/store.json`.
pub const STORE_MARKER: &str = "store.json";

/// Whether `dir` is a trailscope store (it holds the marker file).
pub fn is_store(dir: &Path) -> bool {
    dir.join(STORE_META_DIR).join(STORE_MARKER).is_file()
}

/// The key under which an input path is remembered: absolute, so runs from other directories match,
/// and exact: its bytes escaped by [`crate::fs::display_path`] (bytes that are not UTF-8 as `\xNN`, a
/// backslash as `\\`), so two names never share a key (#13) and a key is valid JSON text.
pub fn input_key(p: &Path) -> String {
    crate::fs::display_path(&std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(p: &str) -> Vec<&str> {
        p.split('/').collect()
    }

    #[test]
    fn parses_plain_and_org_layouts() {
        let k = parse_key(&segs("bucket/x/AWSLogs/123456789012/CloudTrail/eu-west-1/2024/03/05/f.json.gz"));
        assert_eq!(k.account.as_deref(), Some("123456789012"));
        assert_eq!(k.region.as_deref(), Some("eu-west-1"));
        assert_eq!(k.date, NaiveDate::from_ymd_opt(2024, 3, 5));
        let o = parse_key(&segs("AWSLogs/o-abc123/123456789012/CloudTrail/us-east-1/2024/12/31/f.json.gz"));
        assert_eq!(o.region.as_deref(), Some("us-east-1"));
        assert_eq!(o.date, NaiveDate::from_ymd_opt(2024, 12, 31));
    }

    #[test]
    fn untrusted_layouts_say_nothing() {
        assert_eq!(parse_key(&segs("logs/123456789012_CloudTrail_us-east-1_x.json")), KeyInfo::default());
        assert_eq!(parse_key(&segs("AWSLogs/1234/CloudTrail/us-east-1/2024/01/01/f")), KeyInfo::default());
        assert_eq!(parse_key(&segs("AWSLogs/123456789012/CloudTrail/us-east-1/f")), KeyInfo::default());
    }
}
