//! `pull`: download CloudTrail archives from S3 into a local tree that the other commands read, keys
//! mapped to paths one to one (`DEST/<key>`).
//!
//! **Listing only what is needed.** The walk follows CloudTrail's layout,
//! `PREFIX/AWSLogs/[o-org/]<account>/CloudTrail[-Digest]/<region>/YYYY/MM/DD/`, listing with a delimiter
//! to discover organizations, accounts and regions (pruned by `--account`/`--region`), then only the
//! day prefixes the `--from`/`--to` window needs, as `Filter::prunes_key` decides for `scan` (the day of
//! `--from`, and the days after `--to` within the late-delivery margin). Long or open windows walk
//! years and months with a delimiter and list a whole year or month at once when it lies entirely
//! inside the window. Without a window each region prefix is listed whole.
//!
//! The listing is done with signed ListObjectsV2 requests of our own (object_store's listing turns a
//! whole page into an error when one key is not a valid `object_store` path, e.g. has a `..` segment,
//! and silently strips leading and trailing slashes), so that every key is seen exactly as S3 stores it
//! and an unsafe one is refused and reported while the rest of its page is downloaded. Objects are
//! fetched with object_store (`get_opts`), which retries throttling (503 SlowDown), server errors and
//! broken connections with backoff.
//!
//! **Writing.** Each object is streamed to a temporary name in its final directory, fsynced, and
//! renamed, so a partial download never sits under the final name. A digest's signature metadata goes
//! beside it (`verify::METADATA_SUFFIX`). The size and ETag of every object written are kept in
//! `DEST/.trailscope-pull/state` (appended as objects land, rewritten atomically at the end), and an
//! object whose local copy has the listed size and whose recorded ETag equals the listed one is not
//! fetched again.

mod config;
mod credentials;
mod fetch;
mod list;
mod plan;
mod state;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::layout::METADATA_SUFFIX;
use crate::layout::{STATE_DIR, TMP_SUFFIX};
use crate::source::filter::Filter;

pub use config::{load_profile, s3_client, shared_files, Profile};
pub use list::{parse_list_xml, ListPage, Listed};

use config::*;
use fetch::*;
use list::*;
use plan::*;
use state::*;

/// What to pull and how.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// `s3://BUCKET[/PREFIX]`.
    pub source: String,
    pub dest: PathBuf,
    /// Date window, accounts and regions; prunes prefixes by the S3 key layout.
    pub filter: Filter,
    /// Fetch `CloudTrail-Digest/` too.
    pub digests: bool,
    /// Named profile of the shared config and credentials files.
    pub profile: Option<String>,
    /// Region of the S3 client.
    pub s3_region: Option<String>,
    /// An S3-compatible endpoint instead of AWS.
    pub endpoint_url: Option<String>,
    /// Parallel requests.
    pub jobs: usize,
    /// No progress bar.
    pub quiet: bool,
}

/// A key that was not written, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyProblem {
    pub key: String,
    pub reason: String,
}

/// What a pull did. `objects_listed = downloaded + already_present + refused objects + failed`.
#[derive(Debug, Default, Serialize)]
pub struct PullSummary {
    pub source: String,
    pub dest: String,
    /// Objects found under the prefixes the filters selected.
    pub objects_listed: u64,
    /// Objects fetched in this run.
    pub downloaded: u64,
    /// Objects not fetched because DEST has them with the same size and ETag.
    pub already_present: u64,
    /// Keys (and prefixes) refused because they would not map to a path inside DEST.
    pub refused: u64,
    /// Objects that could not be fetched or written.
    pub failed: u64,
    /// Bytes fetched in this run.
    pub bytes: u64,
    /// Bytes of all listed objects.
    pub bytes_listed: u64,
    /// ListObjectsV2 requests made (retries not counted).
    pub list_requests: u64,
    pub elapsed_seconds: f64,
    pub refused_keys: Vec<KeyProblem>,
    pub failed_keys: Vec<KeyProblem>,
}

/// `s3://BUCKET[/PREFIX]`, the prefix normalized to end with `/` (or empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    pub prefix: String,
}

/// Parse and check `s3://BUCKET[/PREFIX]`.
pub fn parse_s3_url(url: &str) -> Result<S3Url> {
    let bad = |why: &str| Error::Usage(format!("bad S3 URL {url:?}: {why} (expected s3://BUCKET[/PREFIX])"));
    let rest = url.strip_prefix("s3://").ok_or_else(|| bad("it does not start with s3://"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(bad("no bucket"));
    }
    if !bucket.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_') {
        return Err(bad("the bucket name may only have letters, digits, '.', '-' and '_'"));
    }
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        return Ok(S3Url { bucket: bucket.to_string(), prefix: String::new() });
    }
    if let Some(why) = unsafe_key(prefix) {
        return Err(bad(&format!("the prefix cannot map to a local path: {why}")));
    }
    Ok(S3Url { bucket: bucket.to_string(), prefix: format!("{prefix}/") })
}

/// Why `key` cannot be written as `DEST/<key>`, if it cannot: it must be a relative path of non-empty
/// segments other than `.` and `..`, without backslashes or control characters, and not collide with
/// the files `pull` itself writes.
pub fn unsafe_key(key: &str) -> Option<String> {
    if key.is_empty() {
        return Some("empty key".into());
    }
    if key.starts_with('/') {
        return Some("absolute path (starts with '/')".into());
    }
    if let Some(c) = key.chars().find(|c| c.is_control()) {
        return Some(format!("control character U+{:04X}", c as u32));
    }
    if key.contains('\\') {
        return Some("backslash".into());
    }
    if cfg!(windows) {
        if let Some(c) = key.chars().find(|c| matches!(c, ':' | '<' | '>' | '"' | '|' | '?' | '*')) {
            return Some(format!("character {c:?} is not allowed in Windows file names"));
        }
    }
    let segments: Vec<&str> = key.split('/').collect();
    for s in &segments {
        match *s {
            "" => return Some("empty path segment ('//' or a trailing '/')".into()),
            "." | ".." => return Some(format!("'{s}' path segment")),
            _ => {}
        }
    }
    if segments[0] == STATE_DIR {
        return Some(format!("collides with pull's state directory {STATE_DIR}"));
    }
    let name = segments[segments.len() - 1];
    if name.ends_with(TMP_SUFFIX) {
        return Some(format!("collides with pull's temporary files (*{TMP_SUFFIX})"));
    }
    if is_digest(key) && name.ends_with(METADATA_SUFFIX) {
        return Some(format!("collides with the digest metadata files pull writes (*{METADATA_SUFFIX})"));
    }
    None
}

/// `DEST/<key>` for a key [`unsafe_key`] accepted.
pub fn local_path(dest: &Path, key: &str) -> PathBuf {
    let mut p = dest.to_path_buf();
    p.extend(key.split('/'));
    p
}

pub(super) fn is_digest(key: &str) -> bool {
    key.split('/').any(|s| s == "CloudTrail-Digest")
}

pub(super) fn sidecar_path(local: &Path) -> PathBuf {
    let mut s = local.as_os_str().to_owned();
    s.push(METADATA_SUFFIX);
    PathBuf::from(s)
}

pub(super) fn tmp_path(local: &Path) -> PathBuf {
    let name = local.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    local.with_file_name(format!(".{name}{TMP_SUFFIX}"))
}

pub(super) fn norm_etag(etag: &str) -> &str {
    etag.trim().trim_start_matches("W/").trim_matches('"')
}

fn progress_bar(quiet: bool) -> ProgressBar {
    use std::io::IsTerminal;
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}").expect("valid template"));
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

enum Outcome {
    Present,
    Refused(String),
    Fetched { size: u64 },
    Failed(String),
}

/// Pull: list, then fetch what is missing or changed. Errors are fatal (bad URL or configuration, a
/// listing that fails after retries); single objects that fail are counted in the summary.
pub fn pull(opts: &PullOptions) -> Result<PullSummary> {
    if opts.jobs == 0 {
        return Err(Error::Usage("--jobs must be at least 1".into()));
    }
    let url = parse_s3_url(&opts.source)?;
    let cfg = client_config(opts, &url.bucket)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("<tokio runtime>", e))?;
    runtime.block_on(pull_async(opts, &url, &cfg))
}

async fn pull_async(opts: &PullOptions, url: &S3Url, cfg: &ClientConfig) -> Result<PullSummary> {
    let start = Instant::now();
    let list_requests = Arc::new(AtomicU64::new(0));
    let mut s3 = S3::connect(cfg, &cfg.region, list_requests.clone())?;
    let plan = Plan::new(opts.filter.clone(), opts.digests);
    let bar = progress_bar(opts.quiet);
    bar.set_message("listing");
    let mut redirected = false;
    let (objects, refused_prefixes) = loop {
        match walk(&s3, &plan, plan.roots(&url.prefix), opts.jobs, &bar).await {
            Ok(found) => break found,
            // Like the AWS SDKs: a bucket in another region is listed there (AWS endpoints only).
            Err(ListError::Region(r)) if cfg.endpoint.is_none() && !redirected => {
                if !opts.quiet {
                    bar.suspend(|| eprintln!("trailscope: bucket {} is in region {r}; using it", url.bucket));
                }
                redirected = true;
                s3 = S3::connect(cfg, &r, list_requests.clone())?;
            }
            Err(ListError::Region(r)) => {
                bar.finish_and_clear();
                return Err(Error::Usage(format!(
                    "bucket {} is in region {r}, not {} (use --s3-region {r})",
                    url.bucket, s3.region
                )));
            }
            Err(ListError::Fatal(e)) => {
                bar.finish_and_clear();
                return Err(Error::Network { context: "cannot list".into(), cause: e.into() });
            }
        }
    };

    let dest = &opts.dest;
    std::fs::create_dir_all(dest).map_err(|e| Error::io(dest, e))?;
    let mut state = State::load(dest);
    let mut summary = PullSummary {
        source: opts.source.clone(),
        dest: dest.display().to_string(),
        objects_listed: objects.len() as u64,
        bytes_listed: objects.iter().map(|o| o.size).sum(),
        ..Default::default()
    };
    for p in refused_prefixes {
        summary.refused += 1;
        summary.refused_keys.push(p);
    }

    // What is already there, what cannot be written, what to fetch.
    let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(objects.len());
    let mut todo: Vec<(usize, PathBuf)> = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        if let Some(why) = o.undecodable.clone().or_else(|| unsafe_key(&o.key)) {
            outcomes.push(Some(Outcome::Refused(why)));
            continue;
        }
        let local = local_path(dest, &o.key);
        let on_disk = std::fs::symlink_metadata(&local).is_ok_and(|m| m.is_file() && m.len() == o.size);
        let sidecar_ok = !is_digest(&o.key) || sidecar_path(&local).is_file();
        if on_disk && sidecar_ok && state.is_current(&o.key, &o.etag, o.size) {
            outcomes.push(Some(Outcome::Present));
        } else {
            outcomes.push(None);
            todo.push((i, local));
        }
    }

    let total: u64 = todo.iter().map(|(i, _)| objects[*i].size).sum();
    if !bar.is_hidden() {
        bar.set_length(total);
        bar.set_position(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} {msg} (eta {eta})",
            )
            .expect("valid template"),
        );
        bar.set_message(format!("0/{} objects", todo.len()));
    }
    let fetcher =
        Fetcher { store: s3.store.clone(), dest: dest.clone(), dirs: Mutex::new(HashSet::new()), bar: bar.clone() };
    let n_todo = todo.len();
    let mut done = 0usize;
    let mut state_error: Option<std::io::Error> = None;
    {
        let fetcher = &fetcher;
        let objects = &objects;
        let mut results = futures::stream::iter(todo.into_iter().map(|(i, local)| async move {
            let r = fetcher.fetch(&objects[i], &local).await;
            (i, r)
        }))
        .buffer_unordered(opts.jobs);
        while let Some((i, r)) = results.next().await {
            done += 1;
            bar.set_message(format!("{done}/{n_todo} objects"));
            outcomes[i] = Some(match r {
                Ok((etag, size)) => {
                    if let Err(e) = state.record(&objects[i].key, &etag, size) {
                        state_error.get_or_insert(e);
                    }
                    Outcome::Fetched { size }
                }
                Err(reason) => Outcome::Failed(reason),
            });
        }
    }
    bar.finish_and_clear();
    let compacted = state.compact();
    if let Some(e) = state_error.or(compacted.err()) {
        return Err(Error::io(&state.path, e));
    }

    for (o, outcome) in objects.iter().zip(outcomes) {
        match outcome.expect("every object has an outcome") {
            Outcome::Present => summary.already_present += 1,
            Outcome::Refused(reason) => {
                summary.refused += 1;
                summary.refused_keys.push(KeyProblem { key: o.key.clone(), reason });
            }
            Outcome::Fetched { size, .. } => {
                summary.downloaded += 1;
                summary.bytes += size;
            }
            Outcome::Failed(reason) => {
                summary.failed += 1;
                summary.failed_keys.push(KeyProblem { key: o.key.clone(), reason });
            }
        }
    }
    summary.list_requests = list_requests.load(Ordering::Relaxed);
    summary.elapsed_seconds = (start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn parses_urls() {
        assert_eq!(parse_s3_url("s3://b").unwrap(), S3Url { bucket: "b".into(), prefix: String::new() });
        assert_eq!(parse_s3_url("s3://b/").unwrap().prefix, "");
        assert_eq!(parse_s3_url("s3://b/x/y//").unwrap().prefix, "x/y/");
        for bad in ["b/x", "s3://", "s3:///x", "s3://b/../x", "s3://b/x//y", "http://b", "s3://b c/x"] {
            assert!(parse_s3_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_keys_that_escape() {
        for bad in [
            "",
            "/etc/passwd",
            "a/../../b",
            "..",
            "a/./b",
            "a//b",
            "a/b/",
            "a\\b",
            "a/\0b",
            "a/b\nc",
            "a/\u{7f}",
            "a/\u{85}",
            ".trailscope-pull/state",
            "a/.x.trailscope-tmp",
            "AWSLogs/1/CloudTrail-Digest/r/2024/01/01/x.json.gz.metadata.json",
        ] {
            assert!(unsafe_key(bad).is_some(), "{bad:?}");
        }
        for good in ["a", "AWSLogs/123/CloudTrail/us-east-1/2024/01/01/x.json.gz", "a/..b/c..", "sp ace+plus%/é"] {
            assert_eq!(unsafe_key(good), None, "{good:?}");
        }
        assert_eq!(local_path(Path::new("/d"), "a/b/c"), Path::new("/d/a/b/c"));
    }

    #[test]
    fn parses_list_answers() {
        let xml = r#"<?xml version="1.0"?><ListBucketResult><IsTruncated>true</IsTruncated>
            <Contents><Key>a/sp+ace%2Bplus%25.json.gz</Key><ETag>&quot;abc&quot;</ETag><Size>12</Size></Contents>
            <Contents><Key>a/..%2F..%2Fx</Key><ETag>"d"</ETag><Size>0</Size></Contents>
            <Contents><Key>a/%FF</Key><ETag>"d"</ETag><Size>1</Size></Contents>
            <Contents><Key>a/&bogus;&#0;</Key><ETag>"d"</ETag><Size>1</Size></Contents>
            <Contents><Key>a/b%3Cc%3E&#x26;</Key><ETag><![CDATA["e"]]></ETag><Size>3</Size></Contents>
            <CommonPrefixes><Prefix>a/b%26c/</Prefix></CommonPrefixes>
            <NextContinuationToken>t+/=&amp;</NextContinuationToken><EncodingType>url</EncodingType></ListBucketResult>"#;
        let page = parse_list_xml(xml).unwrap();
        assert_eq!(page.objects[0].key, "a/sp ace+plus%.json.gz");
        assert_eq!(page.objects[0].etag, "\"abc\"");
        assert_eq!(page.objects[0].size, 12);
        assert_eq!(page.objects[1].key, "a/../../x");
        assert!(page.objects[2].undecodable.is_some());
        // A reference XML does not define fails its key, not its page.
        assert_eq!(page.objects[3].key, "a/&bogus;&#0;");
        assert!(page.objects[3].undecodable.as_deref().unwrap().contains("&bogus;"), "{:?}", page.objects[3]);
        assert_eq!((page.objects[4].key.as_str(), page.objects[4].etag.as_str()), ("a/b<c>&", "\"e\""));
        assert_eq!(page.objects.len(), 5);
        assert_eq!(page.prefixes, vec!["a/b&c/".to_string()]);
        assert_eq!(page.next_token.as_deref(), Some("t+/=&"));
        // Without EncodingType the text is taken as it is.
        let plain = "<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a+b%20</Key><Size>1</Size></Contents></ListBucketResult>";
        let page = parse_list_xml(plain).unwrap();
        assert_eq!(page.objects[0].key, "a+b%20");
        assert_eq!(page.next_token, None);
        assert!(parse_list_xml("<Error><Code>AccessDenied</Code></Error>").is_err());
        // Malformed XML (a cut answer) fails the page, with the reason.
        let cut = parse_list_xml("<ListBucketResult><Contents><Key>a</Contents>").unwrap_err();
        assert!(cut.contains("malformed XML"), "{cut}");
        assert_eq!(error_text("<Error><Code>SlowDown</Code><Message>a &amp; b</Message></Error>"), "SlowDown: a & b");
        assert_eq!(error_text("<html>bad gateway"), "<html>bad gateway");
        assert_eq!(query_encode("a/b c+~"), "a%2Fb%20c%2B~");
    }

    #[test]
    fn reads_profiles() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("credentials");
        let config = dir.path().join("config");
        std::fs::write(&creds, "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key=s1\n\n[prod]\n# c\naws_access_key_id=AKIDPROD\naws_secret_access_key = s2\naws_session_token = tok\n").unwrap();
        std::fs::write(&config, "[default]\nregion = eu-west-1\n[profile prod]\nregion=ap-south-1\ns3 =\n  region = nested\n[profile sso]\nsso_session = x\n").unwrap();
        let p = load_profile("prod", Some(&creds), Some(&config)).unwrap();
        assert_eq!(p.region.as_deref(), Some("ap-south-1"));
        let d = load_profile("default", Some(&creds), Some(&config)).unwrap();
        assert_eq!(d.region.as_deref(), Some("eu-west-1"));
        // A profile only in the config file, with no keys (its credentials come from SSO), is found.
        let s = load_profile("sso", Some(&creds), Some(&config)).unwrap();
        assert_eq!(s, Profile::default());
        let c = load_profile("prod", Some(&creds), None).unwrap();
        assert_eq!(c, Profile::default(), "the credentials file alone names the profile");
        assert_eq!(load_profile("nope", Some(&creds), Some(&config)), None);
    }

    fn plan(from: Option<&str>, to: Option<&str>) -> Plan {
        Plan::new(Filter::new(from, to, vec![], vec![]).unwrap(), true)
    }

    #[test]
    fn window_days_follow_prunes_key() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let p = plan(Some("2024-03-10T12:00:00Z"), Some("2024-03-11T00:00:00Z"));
        assert_eq!((p.lo, p.hi), (Some(d("2024-03-10")), Some(d("2024-03-11"))));
        // Midnight --from: the day before may hold events of the window's first hour (clock skew).
        let p = plan(Some("2024-03-10"), Some("2024-03-12T06:00:00Z"));
        assert_eq!((p.lo, p.hi), (Some(d("2024-03-09")), Some(d("2024-03-13"))));
        let p = plan(None, Some("2024-03-12"));
        assert_eq!((p.lo, p.hi), (None, Some(d("2024-03-12"))));
        let region = Node { prefix: "AWSLogs/1/CloudTrail/r/".into(), kind: Kind::Region, pinned: vec![] };
        assert!(p.direct_days(&region).is_none());
        let leaf = p.child(&region, "2023", vec![]).unwrap();
        assert_eq!((leaf.kind, leaf.prefix.as_str()), (Kind::Leaf, "AWSLogs/1/CloudTrail/r/2023/"));
        assert_eq!(p.child(&region, "2024", vec![]).unwrap().kind, Kind::Year(2024));
        assert!(p.child(&region, "2025", vec![]).is_none());
        assert!(p.child(&region, "x", vec![]).is_none());
        let p = plan(Some("2024-03-10T12:00:00Z"), Some("2024-03-11T00:00:00Z"));
        let days: Vec<String> = p.direct_days(&region).unwrap().into_iter().map(|n| n.prefix).collect();
        assert_eq!(days, ["AWSLogs/1/CloudTrail/r/2024/03/10/", "AWSLogs/1/CloudTrail/r/2024/03/11/"]);
    }

    #[test]
    fn roots_pin_the_url_prefix() {
        let p = plan(None, None);
        let r = p.roots("logs/");
        assert_eq!((r[0].prefix.as_str(), r[0].kind), ("logs/AWSLogs/", Kind::AwsLogs));
        let r = p.roots("x/AWSLogs/o-1/123456789012/");
        assert_eq!(r[0].prefix, "x/AWSLogs/");
        assert_eq!(r[0].pinned, vec!["123456789012".to_string(), "o-1".to_string()]);
    }

    #[test]
    fn backoff_grows_within_bounds() {
        let mut b = Backoff::new(&retry_config().backoff);
        let first = b.next();
        assert_eq!(first, Duration::from_millis(100));
        for _ in 0..50 {
            let d = b.next();
            assert!(d >= Duration::from_millis(100) && d <= Duration::from_secs(15), "{d:?}");
        }
    }
}
