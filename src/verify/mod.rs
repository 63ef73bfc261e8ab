//! `verify`: CloudTrail log file integrity validation, offline, from the digest files in a tree (as
//! `pull` writes it, or any copy of the bucket's keys). It does what `aws cloudtrail validate-logs`
//! does without AWS access: every log file a digest lists must be present with the SHA-256 of its
//! uncompressed content equal to `hashValue`; digests chain per trail and region through
//! `previousDigestHashValue`; hours without a digest are gaps; log files no digest lists are reported;
//! and with `--public-keys`, each digest's SHA256withRSA signature (saved by `pull` beside the digest
//! from the object metadata) is checked over AWS's data-signing string.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::signature::Verifier;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::ingest::decode;
use crate::layout::{chain_of, key_from_s3_object, key_of, log_file_time, DigestMetadata, METADATA_SUFFIX};
use crate::time::parse_instant;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogFileEntry {
    s3_object: String,
    hash_value: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DigestDoc {
    digest_start_time: String,
    digest_end_time: String,
    digest_s3_bucket: String,
    digest_s3_object: String,
    digest_public_key_fingerprint: Option<String>,
    previous_digest_s3_object: Option<String>,
    previous_digest_hash_value: Option<String>,
    previous_digest_signature: Option<String>,
    #[serde(default)]
    log_files: Vec<LogFileEntry>,
}

/// What a finding is: a problem, a note (outside the digests' time range) or a file not read.
/// Written in snake_case (`chain_break`) in every format.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A log file or digest that could not be read at all (exit code 2).
    Unreadable,
    /// A log file a digest lists is not in the tree.
    Missing,
    /// A log file whose hash differs from its digest's.
    Modified,
    /// A log file no digest lists.
    Unlisted,
    /// A digest whose previous-digest hash or signature does not match the previous digest.
    ChainBreak,
    /// Time between two digests that no digest covers.
    Gap,
    /// A digest whose signature does not verify with its public key.
    BadSignature,
    /// A digest without its signature (metadata).
    Unsigned,
    /// Note: a log file delivered after the newest digest of its region.
    NotYetDigested,
    /// Note: a log file delivered before the oldest digest of its region.
    BeforeFirstDigest,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::Unreadable,
        Kind::Missing,
        Kind::Modified,
        Kind::Unlisted,
        Kind::ChainBreak,
        Kind::Gap,
        Kind::BadSignature,
        Kind::Unsigned,
        Kind::NotYetDigested,
        Kind::BeforeFirstDigest,
    ];

    /// The name written in every format (the serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Unreadable => "unreadable",
            Kind::Missing => "missing",
            Kind::Modified => "modified",
            Kind::Unlisted => "unlisted",
            Kind::ChainBreak => "chain_break",
            Kind::Gap => "gap",
            Kind::BadSignature => "bad_signature",
            Kind::Unsigned => "unsigned",
            Kind::NotYetDigested => "not_yet_digested",
            Kind::BeforeFirstDigest => "before_first_digest",
        }
    }

    /// A problem makes verify fail; a note (outside the digests' time range) does not.
    pub fn is_problem(self) -> bool {
        !matches!(self, Kind::NotYetDigested | Kind::BeforeFirstDigest)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, so that `{:<20}` lines up the table.
        f.pad(self.as_str())
    }
}

/// One integrity problem (or note).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Finding {
    pub kind: Kind,
    pub path: String,
    pub digest: String,
    pub detail: String,
}

impl Finding {
    pub fn is_problem(&self) -> bool {
        self.kind.is_problem()
    }
}

/// The result of a verification.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub verdict: String,
    pub digests: u64,
    pub log_files: u64,
    pub log_files_verified: u64,
    pub signatures_checked: u64,
    pub problems: u64,
    pub findings: Vec<Finding>,
    /// Files that could not be read at all (exit code 2).
    pub unreadable: Vec<Finding>,
}

/// A public key from `aws cloudtrail list-public-keys`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PublicKeyEntry {
    value: String,
    fingerprint: String,
    validity_start_time: Option<String>,
    validity_end_time: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PublicKeyList {
    public_key_list: Vec<PublicKeyEntry>,
}

pub struct PublicKeys(Vec<(PublicKeyEntry, rsa::RsaPublicKey)>);

impl PublicKeys {
    pub fn load(path: &Path) -> Result<PublicKeys> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let list: PublicKeyList = serde_json::from_str(&text).map_err(|cause| Error::Json {
            context: format!("{}: not `aws cloudtrail list-public-keys` output", crate::fs::display_path(path)),
            cause,
        })?;
        use base64::Engine as _;
        let mut keys = Vec::new();
        for k in list.public_key_list {
            let der = base64::engine::general_purpose::STANDARD
                .decode(k.value.trim())
                .map_err(|e| Error::invalid_input(path, format!("key {}: bad base64: {e}", k.fingerprint)))?;
            let key = rsa::RsaPublicKey::from_pkcs1_der(&der).map_err(|e| {
                Error::invalid_input(path, format!("key {}: not an RSA public key: {e}", k.fingerprint))
            })?;
            keys.push((k, key));
        }
        Ok(PublicKeys(keys))
    }

    fn find(&self, fingerprint: &str, at_ms: Option<i64>) -> Option<&rsa::RsaPublicKey> {
        self.0
            .iter()
            .filter(|(k, _)| k.fingerprint.eq_ignore_ascii_case(fingerprint))
            .find(|(k, _)| {
                let Some(t) = at_ms else { return true };
                let ok_start =
                    k.validity_start_time.as_deref().and_then(|s| parse_instant(s).ok()).is_none_or(|s| s <= t);
                let ok_end = k.validity_end_time.as_deref().and_then(|s| parse_instant(s).ok()).is_none_or(|e| t <= e);
                ok_start && ok_end
            })
            .map(|(_, key)| key)
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

struct LocalDigest {
    key: String,
    path: PathBuf,
    sha256: String,
    doc: DigestDoc,
    metadata: Option<DigestMetadata>,
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::io(dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let ft = e.file_type().map_err(|err| Error::io(&p, err))?;
        if ft.is_dir() {
            walk(&p, out)?;
        } else if ft.is_file() {
            out.push(p);
        }
    }
    Ok(())
}

/// Verify the tree under `root`.
pub fn verify(root: &Path, keys: Option<&PublicKeys>, max_file_bytes: u64) -> Result<Report> {
    let mut files = Vec::new();
    if root.is_file() {
        files.push(root.to_path_buf());
    } else {
        walk(root, &mut files)?;
    }
    let mut report = Report::default();
    let mut buf = decode::DecodeBuffer::default();
    let mut digests: Vec<LocalDigest> = Vec::new();
    let mut logs: BTreeMap<String, PathBuf> = BTreeMap::new();
    for path in files {
        let Some(key) = key_of(&path) else { continue };
        let name = key.rsplit('/').next().unwrap_or("");
        if !name.ends_with(".json.gz") {
            continue;
        }
        if key.contains("/CloudTrail-Digest/") {
            let unreadable = |detail: String| Finding {
                kind: Kind::Unreadable,
                path: crate::fs::display_path(&path),
                digest: key.clone(),
                detail,
            };
            let content = match decode::read_content(&path, max_file_bytes, &mut buf) {
                Ok(c) => c,
                Err(e) => {
                    report.unreadable.push(unreadable(e.to_string()));
                    continue;
                }
            };
            let doc: DigestDoc = match serde_json::from_slice(&content) {
                Ok(d) => d,
                Err(e) => {
                    report.unreadable.push(unreadable(format!("not a digest file: {e}")));
                    continue;
                }
            };
            let meta_path = PathBuf::from(format!("{}{METADATA_SUFFIX}", path.display()));
            let metadata = std::fs::read_to_string(&meta_path).ok().and_then(|t| serde_json::from_str(&t).ok());
            digests.push(LocalDigest { sha256: sha256_hex(&content), key, path, doc, metadata });
        } else if key.contains("/CloudTrail/") {
            logs.insert(key, path);
        }
    }
    report.digests = digests.len() as u64;
    report.log_files = logs.len() as u64;
    let by_key: hashbrown::HashMap<&str, &LocalDigest> = digests.iter().map(|d| (d.key.as_str(), d)).collect();

    // Log files named by the digests.
    let mut listed: hashbrown::HashSet<String> = hashbrown::HashSet::new();
    for d in &digests {
        for lf in &d.doc.log_files {
            let key = key_from_s3_object(&lf.s3_object);
            listed.insert(key.clone());
            let Some(path) = logs.get(&key) else {
                report.findings.push(Finding {
                    kind: Kind::Missing,
                    path: key,
                    digest: d.key.clone(),
                    detail: "listed in the digest, not in the tree".into(),
                });
                continue;
            };
            match decode::read_content(path, max_file_bytes, &mut buf) {
                Ok(content) => {
                    let actual = sha256_hex(&content);
                    if actual.eq_ignore_ascii_case(&lf.hash_value) {
                        report.log_files_verified += 1;
                    } else {
                        report.findings.push(Finding {
                            kind: Kind::Modified,
                            path: crate::fs::display_path(path),
                            digest: d.key.clone(),
                            detail: format!("SHA-256 {actual}, digest says {}", lf.hash_value),
                        });
                    }
                }
                Err(e) => report.findings.push(Finding {
                    kind: Kind::Modified,
                    path: crate::fs::display_path(path),
                    digest: d.key.clone(),
                    detail: format!("cannot be read as delivered: {e}"),
                }),
            }
        }
    }

    // Chains: per trail and region, in time order.
    let mut chains: BTreeMap<String, Vec<&LocalDigest>> = BTreeMap::new();
    for d in &digests {
        chains.entry(chain_of(&d.key)).or_default().push(d);
    }
    let mut ranges: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for chain in chains.values_mut() {
        chain.sort_by(|a, b| a.doc.digest_end_time.cmp(&b.doc.digest_end_time));
        for (i, d) in chain.iter().enumerate() {
            // The region's delivery range, for telling pending files from unlisted ones.
            let region_key = d.key.split("/CloudTrail-Digest/").next().unwrap_or("").to_string()
                + "/"
                + d.key.split("/CloudTrail-Digest/").nth(1).and_then(|r| r.split('/').next()).unwrap_or("");
            let (s, e) = (parse_instant(&d.doc.digest_start_time).ok(), parse_instant(&d.doc.digest_end_time).ok());
            if let (Some(s), Some(e)) = (s, e) {
                let r = ranges.entry(region_key).or_insert((s, e));
                r.0 = r.0.min(s);
                r.1 = r.1.max(e);
            }
            let first = i == 0;
            match (&d.doc.previous_digest_s3_object, &d.doc.previous_digest_hash_value) {
                (Some(prev_obj), Some(prev_hash)) => {
                    let prev_key = key_from_s3_object(prev_obj);
                    match by_key.get(prev_key.as_str()) {
                        Some(prev) if !prev.sha256.eq_ignore_ascii_case(prev_hash) => report.findings.push(Finding {
                            kind: Kind::ChainBreak,
                            path: crate::fs::display_path(&prev.path),
                            digest: d.key.clone(),
                            detail: format!(
                                "previous digest's SHA-256 is {}, this digest says {prev_hash}",
                                prev.sha256
                            ),
                        }),
                        Some(_) => {}
                        None if first => {} // the pulled window starts after it
                        None => report.findings.push(Finding {
                            kind: Kind::ChainBreak,
                            path: prev_key,
                            digest: d.key.clone(),
                            detail: "previous digest is missing from the tree".into(),
                        }),
                    }
                }
                _ if !first => report.findings.push(Finding {
                    kind: Kind::Gap,
                    path: String::new(),
                    digest: d.key.clone(),
                    detail: "a starting digest: validation or logging was stopped and restarted before it".into(),
                }),
                _ => {}
            }
            if let Some(prev) = i.checked_sub(1).map(|j| chain[j]) {
                let prev_end = parse_instant(&prev.doc.digest_end_time).ok();
                let start = parse_instant(&d.doc.digest_start_time).ok();
                if let (Some(pe), Some(s)) = (prev_end, start) {
                    // Digests are hourly and each starts where the previous ended.
                    if s - pe > 60_000 {
                        report.findings.push(Finding {
                            kind: Kind::Gap,
                            path: String::new(),
                            digest: d.key.clone(),
                            detail: format!(
                                "no digest from {} to {} ({:.1} hours)",
                                prev.doc.digest_end_time,
                                d.doc.digest_start_time,
                                (s - pe) as f64 / 3.6e6
                            ),
                        });
                    }
                }
            }
            // Signatures.
            if let Some(keys) = keys {
                check_signature(d, keys, &mut report);
            }
        }
    }

    // Log files no digest lists.
    for (key, path) in &logs {
        if listed.contains(key) {
            continue;
        }
        let region_key = key.split("/CloudTrail/").next().unwrap_or("").to_string()
            + "/"
            + key.split("/CloudTrail/").nth(1).and_then(|r| r.split('/').next()).unwrap_or("");
        let t = log_file_time(key);
        let (kind, detail) = match (ranges.get(&region_key), t) {
            (Some(&(_, end)), Some(t)) if t >= end => {
                (Kind::NotYetDigested, "delivered after the newest digest of its region in the tree".to_string())
            }
            (Some(&(start, _)), Some(t)) if t < start - 3_600_000 => {
                (Kind::BeforeFirstDigest, "delivered before the oldest digest of its region in the tree".to_string())
            }
            (None, _) => (Kind::Unlisted, "no digest of its account and region in the tree".to_string()),
            _ => (Kind::Unlisted, "listed in no digest (delivered while validation was off, or planted)".to_string()),
        };
        report.findings.push(Finding { kind, path: crate::fs::display_path(path), digest: String::new(), detail });
    }
    report.problems = report.findings.iter().filter(|f| f.is_problem()).count() as u64;
    report.verdict = if !report.unreadable.is_empty() {
        format!("UNREADABLE: {} digest file(s) could not be read", report.unreadable.len())
    } else if report.digests == 0 {
        // Nothing was proven: never say OK (a tree pulled without --digests, or the wrong folder).
        report.problems += 1;
        format!(
            "NOTHING VERIFIED: no digest file under {} ({} log file(s) found); pull with the digests \
             (CloudTrail-Digest/) to validate",
            crate::fs::display_path(root),
            report.findings.len()
        )
    } else if report.problems > 0 {
        format!("FAILED: {} integrity problem(s)", report.problems)
    } else {
        format!(
            "OK: {} digests, {} log files verified{}",
            report.digests,
            report.log_files_verified,
            if keys.is_some() { ", signatures valid" } else { " (signatures not checked: no --public-keys)" }
        )
    };
    Ok(report)
}

/// AWS's data-signing string for a digest (see cloudtrail-log-file-custom-validation).
pub fn signing_string(
    end_time: &str,
    bucket: &str,
    object: &str,
    digest_sha256_hex: &str,
    previous_signature: Option<&str>,
) -> String {
    format!("{end_time}\n{bucket}/{object}\n{digest_sha256_hex}\n{}", previous_signature.unwrap_or("null"))
}

fn check_signature(d: &LocalDigest, keys: &PublicKeys, report: &mut Report) {
    let bad = |detail: String| Finding {
        kind: Kind::BadSignature,
        path: crate::fs::display_path(&d.path),
        digest: d.key.clone(),
        detail,
    };
    let Some(sig_hex) = d.metadata.as_ref().and_then(|m| m.signature.as_deref()) else {
        report.findings.push(Finding {
            kind: Kind::Unsigned,
            path: crate::fs::display_path(&d.path),
            digest: d.key.clone(),
            detail: format!("no signature metadata ({METADATA_SUFFIX} beside the digest; pull saves it)"),
        });
        return;
    };
    if let Some(alg) = d.metadata.as_ref().and_then(|m| m.signature_algorithm.as_deref()) {
        if alg != "SHA256withRSA" {
            report.findings.push(bad(format!("unsupported signature algorithm {alg}")));
            return;
        }
    }
    let fingerprint = d.doc.digest_public_key_fingerprint.as_deref().unwrap_or("");
    let Some(key) = keys.find(fingerprint, parse_instant(&d.doc.digest_end_time).ok()) else {
        report
            .findings
            .push(bad(format!("no public key with fingerprint {fingerprint} valid at {}", d.doc.digest_end_time)));
        return;
    };
    let Ok(sig_bytes) = hex::decode(sig_hex.trim()) else {
        report.findings.push(bad("signature is not hex".into()));
        return;
    };
    let Ok(signature) = rsa::pkcs1v15::Signature::try_from(sig_bytes.as_slice()) else {
        report.findings.push(bad("signature has the wrong shape".into()));
        return;
    };
    let message = signing_string(
        &d.doc.digest_end_time,
        &d.doc.digest_s3_bucket,
        &d.doc.digest_s3_object,
        &d.sha256,
        d.doc.previous_digest_signature.as_deref(),
    );
    let verifier = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key.clone());
    match verifier.verify(message.as_bytes(), &signature) {
        Ok(()) => report.signatures_checked += 1,
        Err(_) => report.findings.push(bad("SHA256withRSA signature does not match the digest".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Finding kinds are typed (#11, a `&str` before): each is written by serde as its `as_str`
    /// name, names are unique, and only the two notes are not problems.
    #[test]
    fn finding_kinds_are_named_once_and_alike_everywhere() {
        let mut seen = std::collections::HashSet::new();
        for k in Kind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), serde_json::json!(k.as_str()));
            assert_eq!(format!("{k:<20}|"), format!("{:<20}|", k.as_str()), "padded like a string");
            assert!(seen.insert(k.as_str()), "{k} twice");
        }
        let notes: Vec<Kind> = Kind::ALL.into_iter().filter(|k| !k.is_problem()).collect();
        assert_eq!(notes, [Kind::NotYetDigested, Kind::BeforeFirstDigest]);
    }

    #[test]
    fn chain_and_keys() {
        let k = "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_my_trail_us-east-2_20150817T150131Z.json.gz";
        assert_eq!(chain_of(k), "111122223333_CloudTrail-Digest_us-east-2_my_trail_us-east-2");
        assert_eq!(key_from_s3_object("prefix/AWSLogs/1/CloudTrail/x.json.gz"), "AWSLogs/1/CloudTrail/x.json.gz");
        assert_eq!(
            log_file_time(
                "AWSLogs/1/CloudTrail/us-east-1/2023/07/10/1_CloudTrail_us-east-1_20230710T1220Z_abc.json.gz"
            ),
            parse_instant("2023-07-10T12:20:00Z").ok()
        );
    }

    #[test]
    fn signing_string_matches_the_documented_layout() {
        let s = signing_string("2015-08-12T04:01:31Z", "b", "AWSLogs/x.json.gz", "ab", None);
        assert_eq!(s, "2015-08-12T04:01:31Z\nb/AWSLogs/x.json.gz\nab\nnull");
    }
}
