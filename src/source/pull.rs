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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{Datelike, NaiveDate, Utc};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, AwsAuthorizer, AwsCredential};
use object_store::client::{HttpClient, HttpConnector, HttpRequest, HttpRequestBody, ReqwestConnector};
use object_store::path::Path as ObjectPath;
use object_store::{
    Attribute, BackoffConfig, ClientConfigKey, ClientOptions, GetOptions, ObjectStore, RetryConfig,
    StaticCredentialProvider,
};
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};
use crate::source::filter::Filter;
use crate::source::KeyInfo;
use crate::verify::{DigestMetadata, METADATA_SUFFIX};

/// Directory under DEST where `pull` keeps what it knows about the objects it wrote.
pub const STATE_DIR: &str = ".trailscope-pull";
/// The state file in [`STATE_DIR`]: one `<etag>\t<size>\t<key>` line per object, the last line wins.
const STATE_FILE: &str = "state";
const STATE_HEADER: &str = "# trailscope pull state v1: <etag>\\t<size>\\t<key>, the last line for a key wins";
/// Suffix of the temporary name an object is written to before it is renamed into place.
pub const TMP_SUFFIX: &str = ".trailscope-tmp";
/// A bounded window of at most this many days is listed day by day; longer ones walk years and months.
const DIRECT_DAYS: i64 = 62;
/// Whole-object attempts (each with object_store's own retries inside) before an object is failed.
const FETCH_ATTEMPTS: u32 = 3;

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

fn is_digest(key: &str) -> bool {
    key.split('/').any(|s| s == "CloudTrail-Digest")
}

fn sidecar_path(local: &Path) -> PathBuf {
    let mut s = local.as_os_str().to_owned();
    s.push(METADATA_SUFFIX);
    PathBuf::from(s)
}

fn tmp_path(local: &Path) -> PathBuf {
    let name = local.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    local.with_file_name(format!(".{name}{TMP_SUFFIX}"))
}

fn norm_etag(etag: &str) -> &str {
    etag.trim().trim_start_matches("W/").trim_matches('"')
}

// ---------------------------------------------------------------------------------------------------
// Credentials and configuration: the standard AWS chain.

/// The settings of one profile in the shared config and credentials files.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Profile {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    /// Settings that name a way to get credentials trailscope does not implement (role_arn, sso, ...).
    pub unsupported: Vec<String>,
}

fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE")).map(PathBuf::from)
}

fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), home_dir()) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(p),
    }
}

/// The shared credentials and config files: `AWS_SHARED_CREDENTIALS_FILE` / `AWS_CONFIG_FILE`, else
/// `~/.aws/credentials` and `~/.aws/config`.
pub fn shared_files() -> (Option<PathBuf>, Option<PathBuf>) {
    let pick = |var: &str, default: &str| match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(expand_home(&v)),
        _ => home_dir().map(|h| h.join(".aws").join(default)),
    };
    (pick("AWS_SHARED_CREDENTIALS_FILE", "credentials"), pick("AWS_CONFIG_FILE", "config"))
}

/// The `key = value` pairs of section `[wanted]` of an INI text (keys lowercased), if it has one.
fn ini_section(text: &str, wanted: &[String]) -> Option<HashMap<String, String>> {
    let mut found: Option<HashMap<String, String>> = None;
    let mut inside = false;
    for line in text.lines() {
        // Indented lines belong to a nested block (`s3 =` followed by settings): not ours.
        if line.starts_with([' ', '\t']) && !line.trim().is_empty() && inside {
            continue;
        }
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            inside = wanted.contains(&name);
            if inside {
                found.get_or_insert_with(HashMap::new);
            }
            continue;
        }
        if inside {
            if let Some((k, v)) = line.split_once('=') {
                let v = v.trim().trim_matches('"');
                found.get_or_insert_with(HashMap::new).insert(k.trim().to_ascii_lowercase(), v.to_string());
            }
        }
    }
    found
}

/// Read profile `name` from the credentials file (section `[name]`) and the config file (`[profile
/// name]`, or `[default]`); the credentials file wins. `None` if neither file has it.
pub fn load_profile(name: &str, credentials: Option<&Path>, config: Option<&Path>) -> Option<Profile> {
    let read = |p: Option<&Path>| p.and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
    let from_credentials = ini_section(&read(credentials), &[name.to_string()]);
    let mut config_names = vec![format!("profile {name}")];
    if name == "default" {
        config_names.push("default".into());
    }
    let from_config = ini_section(&read(config), &config_names);
    if from_credentials.is_none() && from_config.is_none() {
        return None;
    }
    let mut all = from_config.unwrap_or_default();
    all.extend(from_credentials.unwrap_or_default());
    let get = |k: &str| all.get(k).filter(|v| !v.is_empty()).cloned();
    let unsupported = ["role_arn", "sso_session", "sso_start_url", "credential_process", "web_identity_token_file"]
        .iter()
        .filter(|k| all.contains_key(**k))
        .map(|k| k.to_string())
        .collect();
    Some(Profile {
        access_key_id: get("aws_access_key_id"),
        secret_access_key: get("aws_secret_access_key"),
        session_token: get("aws_session_token").or_else(|| get("aws_security_token")),
        region: get("region"),
        endpoint_url: get("endpoint_url"),
        unsupported,
    })
}

fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(15),
            base: 2.0,
        },
        max_retries: 10,
        retry_timeout: Duration::from_secs(180),
    }
}

/// The resolved client configuration: everything but the region, which a redirect may change.
struct ClientConfig {
    builder: AmazonS3Builder,
    bucket: String,
    region: String,
    endpoint: Option<String>,
    virtual_hosted: bool,
    skip_signature: bool,
}

fn client_config(opts: &PullOptions, bucket: &str) -> Result<ClientConfig> {
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    let env_keys = builder.get_config_value(&AmazonS3ConfigKey::AccessKeyId).is_some();
    let env_web_identity = builder.get_config_value(&AmazonS3ConfigKey::WebIdentityTokenFile).is_some();
    let env_profile = std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty());
    let named = opts.profile.clone().or(env_profile);
    let name = named.clone().unwrap_or_else(|| "default".into());
    let (cred_file, config_file) = shared_files();
    let profile = load_profile(&name, cred_file.as_deref(), config_file.as_deref());
    let files = || {
        [&cred_file, &config_file]
            .iter()
            .filter_map(|f| f.as_ref().map(|p| p.display().to_string()))
            .collect::<Vec<_>>()
    };
    // An explicit --profile beats credentials in the environment; AWS_PROFILE and the default profile
    // come after them (and after web identity), before container and instance metadata.
    let use_profile = opts.profile.is_some() || (!env_keys && !env_web_identity);
    if use_profile {
        match &profile {
            None if named.is_some() => {
                return Err(Error::Usage(format!("profile {name:?} not found in {}", files().join(" or "))));
            }
            None => {}
            Some(p) => match (&p.access_key_id, &p.secret_access_key) {
                (Some(key_id), Some(secret)) => {
                    let credential = AwsCredential {
                        key_id: key_id.clone(),
                        secret_key: secret.clone(),
                        token: p.session_token.clone(),
                    };
                    builder = builder.with_credentials(Arc::new(StaticCredentialProvider::new(credential)));
                }
                _ if opts.profile.is_some() => {
                    let how = if p.unsupported.is_empty() {
                        "no aws_access_key_id and aws_secret_access_key".to_string()
                    } else {
                        format!("credentials by {} (not supported by trailscope)", p.unsupported.join(", "))
                    };
                    return Err(Error::Usage(format!(
                        "profile {name:?} has {how}; export credentials instead (e.g. `aws configure \
                         export-credentials --profile {name} --format env`)"
                    )));
                }
                _ => {}
            },
        }
    }
    if let Some(r) = &opts.s3_region {
        builder = builder.with_region(r);
    } else if builder.get_config_value(&AmazonS3ConfigKey::Region).is_none() {
        if let Some(r) = profile.as_ref().and_then(|p| p.region.clone()) {
            builder = builder.with_region(r);
        }
    }
    let env_endpoint = builder
        .get_config_value(&AmazonS3ConfigKey::S3Endpoint)
        .or_else(|| builder.get_config_value(&AmazonS3ConfigKey::Endpoint));
    let endpoint = opts
        .endpoint_url
        .clone()
        .or(env_endpoint)
        .or_else(|| profile.as_ref().and_then(|p| p.endpoint_url.clone()))
        .map(|e| e.trim_end_matches('/').to_string());
    if let Some(e) = &endpoint {
        if !(e.starts_with("http://") || e.starts_with("https://")) {
            return Err(Error::Usage(format!("bad endpoint URL {e:?}: expected http://HOST[:PORT] or https://...")));
        }
        builder = builder.with_config(AmazonS3ConfigKey::S3Endpoint, e).with_endpoint(e);
        if e.starts_with("http://") {
            builder = builder.with_allow_http(true);
        }
    }
    let region = builder.get_config_value(&AmazonS3ConfigKey::Region).unwrap_or_else(|| "us-east-1".into());
    let flag = |k: AmazonS3ConfigKey| builder.get_config_value(&k).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let virtual_hosted = flag(AmazonS3ConfigKey::VirtualHostedStyleRequest);
    let skip_signature = flag(AmazonS3ConfigKey::SkipSignature);
    let builder =
        builder.with_retry(retry_config()).with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), "300s");
    Ok(ClientConfig { builder, bucket: bucket.to_string(), region, endpoint, virtual_hosted, skip_signature })
}

/// An object_store S3 client for `bucket` with the same credential chain and endpoint rules as
/// `pull` (used by the S3 store, `--store s3://...`).
pub fn s3_client(
    bucket: &str,
    profile: Option<String>,
    s3_region: Option<String>,
    endpoint_url: Option<String>,
) -> Result<AmazonS3> {
    let opts = PullOptions {
        source: format!("s3://{bucket}"),
        dest: PathBuf::new(),
        filter: Filter::default(),
        digests: false,
        profile,
        s3_region,
        endpoint_url,
        jobs: 1,
        quiet: true,
    };
    let cfg = client_config(&opts, bucket)?;
    let region = cfg.region.clone();
    cfg.builder.with_region(region).build().map_err(|e| Error::Usage(format!("cannot configure the S3 client: {e}")))
}

// ---------------------------------------------------------------------------------------------------
// The S3 client: object_store for GET, our own signed ListObjectsV2 for listing.

/// One object as the listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    pub etag: String,
    /// Why the key could not be decoded, if it could not (then `key` is the raw listing text).
    pub undecodable: Option<String>,
}

/// One page of a ListObjectsV2 answer.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    pub objects: Vec<Listed>,
    pub prefixes: Vec<String>,
    pub next_token: Option<String>,
}

#[derive(Debug)]
enum ListError {
    /// The bucket is in another region (a redirect named it).
    Region(String),
    Fatal(String),
}

struct S3 {
    store: Arc<AmazonS3>,
    http: HttpClient,
    bucket: String,
    bucket_url: String,
    region: String,
    skip_signature: bool,
    list_requests: Arc<AtomicU64>,
}

impl S3 {
    fn connect(cfg: &ClientConfig, region: &str, list_requests: Arc<AtomicU64>) -> Result<S3> {
        let builder = cfg.builder.clone().with_region(region);
        let store =
            builder.clone().build().map_err(|e| Error::Usage(format!("cannot configure the S3 client: {e}")))?;
        let mut options = ClientOptions::new().with_timeout(Duration::from_secs(120));
        for key in [
            ClientConfigKey::AllowHttp,
            ClientConfigKey::AllowInvalidCertificates,
            ClientConfigKey::ProxyUrl,
            ClientConfigKey::ProxyCaCertificate,
            ClientConfigKey::ProxyExcludes,
            ClientConfigKey::ConnectTimeout,
        ] {
            if let Some(v) = builder.get_config_value(&AmazonS3ConfigKey::Client(key)) {
                options = options.with_config(key, v);
            }
        }
        let http = ReqwestConnector::default()
            .connect(&options)
            .map_err(|e| Error::Usage(format!("cannot configure the HTTP client: {e}")))?;
        let bucket = &cfg.bucket;
        // As object_store addresses the bucket (so listing and fetching go to the same place).
        let bucket_url = match (&cfg.endpoint, cfg.virtual_hosted) {
            (Some(e), true) => e.clone(),
            (Some(e), false) => format!("{e}/{bucket}"),
            (None, true) => format!("https://{bucket}.s3.{region}.amazonaws.com"),
            (None, false) => format!("https://s3.{region}.amazonaws.com/{bucket}"),
        };
        Ok(S3 {
            store: Arc::new(store),
            http,
            bucket: bucket.clone(),
            bucket_url,
            region: region.to_string(),
            skip_signature: cfg.skip_signature,
            list_requests,
        })
    }

    /// Every object and common prefix under `prefix` (all pages).
    async fn list(&self, prefix: &str, delimiter: bool) -> Result<ListPage, ListError> {
        let mut all = ListPage::default();
        let mut token: Option<String> = None;
        loop {
            let page = self.list_page(prefix, delimiter, token.as_deref()).await?;
            all.objects.extend(page.objects);
            all.prefixes.extend(page.prefixes);
            match page.next_token {
                Some(t) if token.as_deref() != Some(t.as_str()) => token = Some(t),
                Some(_) => return Err(ListError::Fatal(format!("listing {prefix}: the server repeated a page token"))),
                None => return Ok(all),
            }
        }
    }

    async fn list_page(&self, prefix: &str, delimiter: bool, token: Option<&str>) -> Result<ListPage, ListError> {
        self.list_requests.fetch_add(1, Ordering::Relaxed);
        let mut url = format!("{}?list-type=2&encoding-type=url&prefix={}", self.bucket_url, query_encode(prefix));
        if delimiter {
            url.push_str("&delimiter=%2F");
        }
        if let Some(t) = token {
            url.push_str("&continuation-token=");
            url.push_str(&query_encode(t));
        }
        let what = format!("listing s3://{}/{prefix}", self.bucket);
        let retry = retry_config();
        let start = Instant::now();
        let mut backoff = Backoff::new(&retry.backoff);
        let mut retries = 0;
        loop {
            let mut req = HttpRequest::new(HttpRequestBody::empty());
            *req.uri_mut() =
                url.parse().map_err(|e| ListError::Fatal(format!("{what}: bad request URL {url}: {e}")))?;
            if !self.skip_signature {
                let credential = self
                    .store
                    .credentials()
                    .get_credential()
                    .await
                    .map_err(|e| ListError::Fatal(format!("{what}: cannot get AWS credentials: {e}")))?;
                AwsAuthorizer::new(&credential, "s3", &self.region).authorize(&mut req, None);
            }
            let outcome = match self.http.execute(req).await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let bucket_region =
                        resp.headers().get("x-amz-bucket-region").and_then(|v| v.to_str().ok()).map(str::to_string);
                    match resp.into_body().bytes().await {
                        Ok(body) => Ok((status, bucket_region, String::from_utf8_lossy(&body).into_owned())),
                        Err(e) => Err(format!("reading the answer: {e}")),
                    }
                }
                Err(e) => Err(e.to_string()),
            };
            let transient = match outcome {
                Ok((200..=299, _, body)) => {
                    return parse_list_xml(&body).map_err(|e| ListError::Fatal(format!("{what}: {e}")));
                }
                Ok((status @ (301 | 307 | 400), region, body)) => {
                    let named = region.or_else(|| xml_first(&body, "Region").map(xml_unescape));
                    match named {
                        Some(r) if r != self.region => return Err(ListError::Region(r)),
                        _ => return Err(ListError::Fatal(format!("{what}: HTTP {status}: {}", error_text(&body)))),
                    }
                }
                Ok((status @ (408 | 429 | 500..=599), _, body)) => format!("HTTP {status}: {}", error_text(&body)),
                Ok((status, _, body)) => {
                    return Err(ListError::Fatal(format!("{what}: HTTP {status}: {}", error_text(&body))));
                }
                Err(e) => e,
            };
            if retries >= retry.max_retries || start.elapsed() >= retry.retry_timeout {
                return Err(ListError::Fatal(format!("{what}: {transient} (after {retries} retries)")));
            }
            retries += 1;
            tokio::time::sleep(backoff.next()).await;
        }
    }
}

/// Exponential backoff with decorrelated jitter, as object_store does it.
struct Backoff {
    init: f64,
    max: f64,
    base: f64,
    next: f64,
    seed: std::collections::hash_map::RandomState,
    n: u64,
}

impl Backoff {
    fn new(c: &BackoffConfig) -> Self {
        let init = c.init_backoff.as_secs_f64();
        Backoff { init, max: c.max_backoff.as_secs_f64(), base: c.base, next: init, seed: Default::default(), n: 0 }
    }

    fn next(&mut self) -> Duration {
        let mut h = self.seed.build_hasher();
        h.write_u64(self.n);
        self.n += 1;
        let unit = (h.finish() >> 11) as f64 / (1u64 << 53) as f64;
        let current = self.next;
        let hi = (current * self.base).max(self.init);
        self.next = (self.init + unit * (hi - self.init)).min(self.max);
        Duration::from_secs_f64(current)
    }
}

/// `Code: Message` of an S3 error document, else the start of the body.
fn error_text(body: &str) -> String {
    match (xml_first(body, "Code"), xml_first(body, "Message")) {
        (Some(c), Some(m)) => format!("{}: {}", xml_unescape(c), xml_unescape(m)),
        (Some(c), None) => xml_unescape(c),
        _ => body.chars().take(200).collect(),
    }
}

/// Percent-encode a query value (everything but RFC 3986 unreserved characters).
fn query_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Undo `encoding-type=url` (form encoding: `+` is a space, as botocore decodes it).
fn url_decode(s: &str) -> std::result::Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "the key is not valid UTF-8".to_string())
}

fn xml_unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let decoded = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .map(|h| u32::from_str_radix(h, 16))
                .or_else(|| entity.strip_prefix('#').map(str::parse::<u32>))
                .and_then(|n| n.ok())
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The text of each `<tag>...</tag>` in `xml`, in order (tags that do not nest in themselves).
fn xml_blocks<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        rest = &rest[i + open.len()..];
        let Some(j) = rest.find(&close) else { break };
        out.push(&rest[..j]);
        rest = &rest[j + close.len()..];
    }
    out
}

fn xml_first<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    xml_blocks(xml, tag).into_iter().next()
}

/// Parse a ListObjectsV2 answer.
pub fn parse_list_xml(xml: &str) -> std::result::Result<ListPage, String> {
    if !xml.contains("<ListBucketResult") {
        return Err(format!("not a ListObjectsV2 answer: {}", xml.chars().take(200).collect::<String>()));
    }
    // Keys and prefixes are URL-encoded only if the server says so (it may ignore encoding-type).
    let encoded = xml_first(xml, "EncodingType").is_some_and(|e| e.trim() == "url");
    let decode = |raw: &str| {
        let text = xml_unescape(raw);
        if encoded {
            url_decode(&text).map_err(|e| (text, e))
        } else {
            Ok(text)
        }
    };
    let mut page = ListPage::default();
    for c in xml_blocks(xml, "Contents") {
        let raw = xml_first(c, "Key").ok_or("an entry without <Key>")?;
        let size = xml_first(c, "Size").and_then(|s| s.trim().parse().ok()).ok_or("an entry without <Size>")?;
        let etag = xml_first(c, "ETag").map(xml_unescape).unwrap_or_default();
        let (key, undecodable) = match decode(raw) {
            Ok(k) => (k, None),
            Err((text, e)) => (text, Some(e)),
        };
        page.objects.push(Listed { key, size, etag, undecodable });
    }
    for p in xml_blocks(xml, "CommonPrefixes") {
        if let Some(raw) = xml_first(p, "Prefix") {
            // An undecodable prefix is kept raw: its segment is then refused like any unsafe one.
            page.prefixes.push(decode(raw).unwrap_or_else(|(text, _)| text));
        }
    }
    let truncated = xml_first(xml, "IsTruncated").is_some_and(|t| t.trim() == "true");
    page.next_token = xml_first(xml, "NextContinuationToken").map(xml_unescape).filter(|t| !t.is_empty());
    if truncated && page.next_token.is_none() {
        return Err("a truncated answer without NextContinuationToken".into());
    }
    if !truncated {
        page.next_token = None;
    }
    Ok(page)
}

// ---------------------------------------------------------------------------------------------------
// The walk over CloudTrail's layout.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `.../AWSLogs/`: organizations and accounts.
    AwsLogs,
    /// `AWSLogs/o-org/`: accounts.
    Org,
    /// `.../<account>/`: `CloudTrail/` and `CloudTrail-Digest/`.
    Account,
    /// `.../CloudTrail/`: regions.
    Trail,
    Region,
    Year(i32),
    Month(i32, u32),
    /// Everything below, listed without a delimiter.
    Leaf,
}

#[derive(Debug, Clone)]
struct Node {
    /// Ends with `/`.
    prefix: String,
    kind: Kind,
    /// Segments the URL's prefix fixed below this node, next one last.
    pinned: Vec<String>,
}

#[derive(Default)]
struct Expansion {
    children: Vec<Node>,
    objects: Vec<Listed>,
    refused: Vec<KeyProblem>,
}

/// What the filters let through, as ranges of delivery days.
struct Plan {
    filter: Filter,
    digests: bool,
    windowed: bool,
    /// First and last delivery day that may hold events of the window (`None`: unbounded).
    lo: Option<NaiveDate>,
    hi: Option<NaiveDate>,
}

enum Span {
    Outside,
    Inside,
    Partial,
}

fn date_of_ms(ms: i64) -> NaiveDate {
    chrono::DateTime::<Utc>::from_timestamp_millis(ms).map_or(NaiveDate::MIN, |t| t.date_naive())
}

impl Plan {
    fn new(filter: Filter, digests: bool) -> Self {
        let keep = |d: NaiveDate| filter.prunes_key(&KeyInfo { account: None, region: None, date: Some(d) }).is_none();
        let late_days = filter.late_delivery.unwrap_or(crate::source::filter::DEFAULT_LATE_DELIVERY).num_days() + 3;
        // Filter::prunes_key decides; these searches only find where its answer changes.
        let lo = filter.from_ms.map(|f| {
            let mut d = date_of_ms(f) - chrono::Days::new(3);
            for _ in 0..10 {
                if keep(d) {
                    break;
                }
                d = d.succ_opt().unwrap_or(d);
            }
            d
        });
        let hi = filter.to_ms.map(|t| {
            let mut d = date_of_ms(t) + chrono::Days::new(late_days.max(0) as u64);
            for _ in 0..(late_days + 10) {
                if keep(d) {
                    break;
                }
                d = d.pred_opt().unwrap_or(d);
            }
            d
        });
        let windowed = filter.from_ms.is_some() || filter.to_ms.is_some();
        Plan { filter, digests, windowed, lo, hi }
    }

    fn span(&self, first: NaiveDate, last: NaiveDate) -> Span {
        if !self.windowed {
            return Span::Inside;
        }
        let empty = matches!((self.lo, self.hi), (Some(lo), Some(hi)) if lo > hi);
        if empty || self.lo.is_some_and(|lo| last < lo) || self.hi.is_some_and(|hi| first > hi) {
            return Span::Outside;
        }
        if self.lo.is_none_or(|lo| first >= lo) && self.hi.is_none_or(|hi| last <= hi) {
            Span::Inside
        } else {
            Span::Partial
        }
    }

    fn account_selected(&self, a: &str) -> bool {
        self.filter.accounts.is_empty() || self.filter.accounts.iter().any(|x| x == a)
    }

    fn region_selected(&self, r: &str) -> bool {
        self.filter.regions.is_empty() || self.filter.regions.iter().any(|x| x == r)
    }

    /// The roots of the walk for the URL's prefix: `PREFIX/AWSLogs/`, or, when the prefix already
    /// reaches into the layout (`.../AWSLogs/123456789012/`), that node with its segments pinned.
    fn roots(&self, prefix: &str) -> Vec<Node> {
        let segments: Vec<&str> = prefix.split('/').filter(|s| !s.is_empty()).collect();
        match segments.iter().rposition(|s| *s == "AWSLogs") {
            None => vec![Node { prefix: format!("{prefix}AWSLogs/"), kind: Kind::AwsLogs, pinned: vec![] }],
            Some(i) => vec![Node {
                prefix: format!("{}/", segments[..=i].join("/")),
                kind: Kind::AwsLogs,
                pinned: segments[i + 1..].iter().rev().map(|s| s.to_string()).collect(),
            }],
        }
    }

    /// The node for child `seg` of `node`, `None` if the filters prune it.
    fn child(&self, node: &Node, seg: &str, pinned: Vec<String>) -> Option<Node> {
        let prefix = format!("{}{seg}/", node.prefix);
        let make = |kind| Some(Node { prefix: prefix.clone(), kind, pinned: pinned.clone() });
        match node.kind {
            Kind::AwsLogs if seg.starts_with("o-") => make(Kind::Org),
            Kind::AwsLogs | Kind::Org => self.account_selected(seg).then(|| make(Kind::Account)).flatten(),
            Kind::Account => {
                let wanted = seg == "CloudTrail" || (seg == "CloudTrail-Digest" && self.digests);
                // A prefix naming another folder (CloudTrail-Insight) is taken as asked.
                let pinned_other = node.pinned.last().is_some_and(|p| p == seg);
                (wanted || (pinned_other && seg != "CloudTrail-Digest")).then(|| make(Kind::Trail)).flatten()
            }
            // Without a window a region is listed whole.
            Kind::Trail if !self.windowed => self.region_selected(seg).then(|| make(Kind::Leaf)).flatten(),
            Kind::Trail => self.region_selected(seg).then(|| make(Kind::Region)).flatten(),
            Kind::Region | Kind::Year(_) | Kind::Month(..) if !self.windowed => make(Kind::Leaf),
            Kind::Region => {
                let y: i32 = number(seg, 4)?;
                let (first, last) = (NaiveDate::from_ymd_opt(y, 1, 1)?, NaiveDate::from_ymd_opt(y, 12, 31)?);
                match self.span(first, last) {
                    Span::Outside => None,
                    Span::Inside => make(Kind::Leaf),
                    Span::Partial => make(Kind::Year(y)),
                }
            }
            Kind::Year(y) => {
                let m: u32 = number(seg, 2)?;
                let first = NaiveDate::from_ymd_opt(y, m, 1)?;
                let last = first.checked_add_months(chrono::Months::new(1))?.pred_opt()?;
                match self.span(first, last) {
                    Span::Outside => None,
                    Span::Inside => make(Kind::Leaf),
                    Span::Partial => make(Kind::Month(y, m)),
                }
            }
            Kind::Month(y, m) => {
                let d = NaiveDate::from_ymd_opt(y, m, number(seg, 2)?)?;
                match self.span(d, d) {
                    Span::Outside => None,
                    _ => make(Kind::Leaf),
                }
            }
            Kind::Leaf => make(Kind::Leaf),
        }
    }

    /// Day prefixes of a bounded short window, listed directly instead of walking years and months.
    fn direct_days(&self, node: &Node) -> Option<Vec<Node>> {
        let (lo, hi) = (self.lo?, self.hi?);
        if (hi - lo).num_days() > DIRECT_DAYS {
            return None;
        }
        let days = lo.iter_days().take_while(|d| *d <= hi);
        Some(
            days.map(|d| Node {
                prefix: format!("{}{:04}/{:02}/{:02}/", node.prefix, d.year(), d.month(), d.day()),
                kind: Kind::Leaf,
                pinned: vec![],
            })
            .collect(),
        )
    }
}

/// `s` as a number if it is exactly `len` ASCII digits (`2024`, `03`).
fn number<T: std::str::FromStr>(s: &str, len: usize) -> Option<T> {
    (s.len() == len && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

/// Why a folder name found while walking cannot be a path segment, if it cannot.
fn unsafe_segment(seg: &str) -> Option<String> {
    if seg.contains('/') {
        return Some("empty path segment".into());
    }
    unsafe_key(seg)
}

async fn expand(s3: &S3, plan: &Plan, node: Node) -> Result<Expansion, ListError> {
    let mut out = Expansion::default();
    let mut pinned = node.pinned.clone();
    if let Some(seg) = pinned.pop() {
        if node.kind == Kind::Leaf {
            pinned.push(seg);
            let rest: Vec<String> = pinned.into_iter().rev().collect();
            let leaf = Node { prefix: format!("{}{}/", node.prefix, rest.join("/")), kind: Kind::Leaf, pinned: vec![] };
            out.children.push(leaf);
        } else {
            out.children.extend(plan.child(&node, &seg, pinned));
        }
        return Ok(out);
    }
    match node.kind {
        Kind::Leaf => {
            out.objects = s3.list(&node.prefix, false).await?.objects;
            // A zero-byte `folder/` marker is not an object to write.
            out.objects.retain(|o| !(o.key.ends_with('/') && o.size == 0 && o.undecodable.is_none()));
        }
        Kind::Account => {
            for seg in ["CloudTrail", "CloudTrail-Digest"] {
                out.children.extend(plan.child(&node, seg, vec![]));
            }
        }
        Kind::Region if plan.windowed && plan.direct_days(&node).is_some() => {
            out.children = plan.direct_days(&node).unwrap_or_default();
        }
        _ => {
            let page = s3.list(&node.prefix, true).await?;
            for p in page.prefixes {
                let Some(seg) = p.strip_prefix(&node.prefix).map(|s| s.strip_suffix('/').unwrap_or(s)) else {
                    continue;
                };
                match unsafe_segment(seg) {
                    Some(why) => {
                        out.refused.push(KeyProblem { key: p.clone(), reason: format!("prefix refused: {why}") })
                    }
                    None => out.children.extend(plan.child(&node, seg, vec![])),
                }
            }
        }
    }
    Ok(out)
}

/// List every object the plan selects, generation by generation, `jobs` requests at a time.
async fn walk(
    s3: &S3,
    plan: &Plan,
    roots: Vec<Node>,
    jobs: usize,
    bar: &ProgressBar,
) -> Result<(Vec<Listed>, Vec<KeyProblem>), ListError> {
    let mut frontier = roots;
    let mut objects = Vec::new();
    let mut refused = Vec::new();
    while !frontier.is_empty() {
        let mut results = futures::stream::iter(frontier.drain(..).map(|n| expand(s3, plan, n))).buffer_unordered(jobs);
        let mut next = Vec::new();
        while let Some(r) = results.next().await {
            let e = r?;
            next.extend(e.children);
            objects.extend(e.objects);
            refused.extend(e.refused);
            bar.set_message(format!("listing: {} objects", objects.len()));
        }
        drop(results);
        frontier = next;
    }
    objects.sort_by(|a: &Listed, b: &Listed| a.key.cmp(&b.key));
    objects.dedup_by(|a, b| a.key == b.key);
    Ok((objects, refused))
}

// ---------------------------------------------------------------------------------------------------
// Local state: what was written, by key.

struct State {
    path: PathBuf,
    entries: BTreeMap<String, (String, u64)>,
    journal: Option<std::fs::File>,
    dirty: bool,
}

impl State {
    fn load(dest: &Path) -> State {
        let path = dest.join(STATE_DIR).join(STATE_FILE);
        let mut entries = BTreeMap::new();
        if let Ok(text) = std::fs::read_to_string(&path) {
            for line in text.lines() {
                // A torn last line (killed mid-write) is ignored, like any malformed one.
                let mut parts = line.splitn(3, '\t');
                let (Some(etag), Some(size), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
                    continue;
                };
                if line.starts_with('#') || key.is_empty() {
                    continue;
                }
                if let Ok(size) = size.parse() {
                    entries.insert(key.to_string(), (etag.to_string(), size));
                }
            }
        }
        State { path, entries, journal: None, dirty: false }
    }

    fn is_current(&self, key: &str, etag: &str, size: u64) -> bool {
        let etag = norm_etag(etag);
        !etag.is_empty() && self.entries.get(key).is_some_and(|(e, s)| e == etag && *s == size)
    }

    /// Remember an object written; appended at once so a killed run keeps what it finished.
    fn record(&mut self, key: &str, etag: &str, size: u64) -> std::io::Result<()> {
        let etag = norm_etag(etag);
        if etag.is_empty() || etag.chars().any(|c| c.is_control()) {
            self.entries.remove(key);
            self.dirty = true;
            return Ok(());
        }
        self.entries.insert(key.to_string(), (etag.to_string(), size));
        self.dirty = true;
        if self.journal.is_none() {
            std::fs::create_dir_all(self.path.parent().expect("state file has a parent"))?;
            let fresh = !self.path.exists();
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
            if fresh {
                writeln!(f, "{STATE_HEADER}")?;
            }
            self.journal = Some(f);
        }
        let f = self.journal.as_mut().expect("opened above");
        f.write_all(format!("{etag}\t{size}\t{key}\n").as_bytes())
    }

    /// Rewrite the state file without superseded lines, atomically.
    fn compact(&mut self) -> std::io::Result<()> {
        self.journal = None;
        if !self.dirty {
            return Ok(());
        }
        std::fs::create_dir_all(self.path.parent().expect("state file has a parent"))?;
        let mut text = format!("{STATE_HEADER}\n");
        for (key, (etag, size)) in &self.entries {
            text.push_str(&format!("{etag}\t{size}\t{key}\n"));
        }
        write_atomically(&self.path, text.as_bytes())
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = tmp_path(path);
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

// ---------------------------------------------------------------------------------------------------
// Downloading.

struct Fetcher {
    store: Arc<AmazonS3>,
    dest: PathBuf,
    /// Directories under DEST known to be real directories (not links out of it).
    dirs: Mutex<HashSet<PathBuf>>,
    bar: ProgressBar,
}

struct FetchError {
    reason: String,
    retry: bool,
}

impl FetchError {
    fn io(what: &str, path: &Path, e: std::io::Error) -> Self {
        FetchError { reason: format!("{what} {}: {e}", path.display()), retry: false }
    }
}

impl Fetcher {
    /// Create the directories of `dir` below DEST one by one, refusing to go through a symbolic link
    /// or a file, so nothing is written outside DEST whatever the tree already holds.
    fn ensure_dir(&self, dir: &Path) -> Result<(), FetchError> {
        if self.dirs.lock().expect("lock").contains(dir) {
            return Ok(());
        }
        let rel =
            dir.strip_prefix(&self.dest).map_err(|_| FetchError { reason: "outside DEST".into(), retry: false })?;
        let mut cur = self.dest.clone();
        for c in rel.components() {
            cur.push(c);
            if self.dirs.lock().expect("lock").contains(&cur) {
                continue;
            }
            let check = |m: std::fs::Metadata| {
                if m.file_type().is_symlink() {
                    Err(FetchError {
                        reason: format!("{} is a symbolic link, not followed", cur.display()),
                        retry: false,
                    })
                } else if !m.is_dir() {
                    Err(FetchError { reason: format!("{} exists and is not a directory", cur.display()), retry: false })
                } else {
                    Ok(())
                }
            };
            match std::fs::symlink_metadata(&cur) {
                Ok(m) => check(m)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => match std::fs::create_dir(&cur) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        check(std::fs::symlink_metadata(&cur).map_err(|e| FetchError::io("cannot inspect", &cur, e))?)?
                    }
                    Err(e) => return Err(FetchError::io("cannot create", &cur, e)),
                },
                Err(e) => return Err(FetchError::io("cannot inspect", &cur, e)),
            }
            self.dirs.lock().expect("lock").insert(cur.clone());
        }
        Ok(())
    }

    /// Fetch one object into place; returns (ETag, size) of what was written.
    async fn fetch(&self, obj: &Listed, local: &Path) -> Result<(String, u64), String> {
        let parent = local.parent().expect("a key has a file name");
        self.ensure_dir(parent).map_err(|e| e.reason)?;
        let location = ObjectPath::parse(&obj.key).map_err(|e| format!("not a valid object path: {e}"))?;
        let mut backoff = Backoff::new(&retry_config().backoff);
        let mut attempt = 1;
        loop {
            match self.fetch_once(&location, local, is_digest(&obj.key)).await {
                Ok(done) => return Ok(done),
                Err(e) if e.retry && attempt < FETCH_ATTEMPTS => {
                    attempt += 1;
                    tokio::time::sleep(backoff.next()).await;
                }
                Err(e) => return Err(e.reason),
            }
        }
    }

    async fn fetch_once(&self, location: &ObjectPath, local: &Path, digest: bool) -> Result<(String, u64), FetchError> {
        let tmp = tmp_path(local);
        let mut written = 0u64;
        let result = self.fetch_to(location, local, &tmp, digest, &mut written).await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
            self.bar.dec(written);
        }
        result
    }

    async fn fetch_to(
        &self,
        location: &ObjectPath,
        local: &Path,
        tmp: &Path,
        digest: bool,
        written: &mut u64,
    ) -> Result<(String, u64), FetchError> {
        let got = self.store.get_opts(location, GetOptions::default()).await.map_err(store_error)?;
        let etag = got.meta.e_tag.clone().unwrap_or_default();
        let size = got.meta.size;
        let metadata = digest.then(|| {
            let attr = |name: &'static str| {
                got.attributes.get(&Attribute::Metadata(name.into())).map(|v| v.as_ref().to_string())
            };
            DigestMetadata { signature: attr("signature"), signature_algorithm: attr("signature-algorithm") }
        });
        // A stale temporary file (or anything planted under its name) is replaced, never followed.
        let _ = tokio::fs::remove_file(tmp).await;
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(tmp)
            .await
            .map_err(|e| FetchError::io("cannot create", tmp, e))?;
        let mut stream = got.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(store_error)?;
            file.write_all(&chunk).await.map_err(|e| FetchError::io("cannot write", tmp, e))?;
            *written += chunk.len() as u64;
            self.bar.inc(chunk.len() as u64);
        }
        file.flush().await.map_err(|e| FetchError::io("cannot write", tmp, e))?;
        file.sync_all().await.map_err(|e| FetchError::io("cannot sync", tmp, e))?;
        drop(file);
        if *written != size {
            return Err(FetchError { reason: format!("short read: {written} of {size} bytes"), retry: true });
        }
        if let Some(m) = metadata {
            let side = sidecar_path(local);
            let json = serde_json::to_vec_pretty(&m).expect("serializable");
            tokio::task::spawn_blocking(move || {
                write_atomically(&side, &json).map_err(|e| FetchError::io("cannot write", &side, e))
            })
            .await
            .map_err(|e| FetchError { reason: e.to_string(), retry: false })??;
        }
        tokio::fs::rename(tmp, local).await.map_err(|e| FetchError::io("cannot rename into", local, e))?;
        Ok((etag, size))
    }
}

fn store_error(e: object_store::Error) -> FetchError {
    let retry = matches!(e, object_store::Error::Generic { .. });
    let reason = match &e {
        object_store::Error::NotFound { .. } => "not found (deleted after it was listed?)".to_string(),
        _ => e.to_string(),
    };
    FetchError { reason, retry }
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
                return Err(Error::Usage(format!("cannot list: {e}")));
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
            <CommonPrefixes><Prefix>a/b%26c/</Prefix></CommonPrefixes>
            <NextContinuationToken>t+/=&amp;</NextContinuationToken><EncodingType>url</EncodingType></ListBucketResult>"#;
        let page = parse_list_xml(xml).unwrap();
        assert_eq!(page.objects[0].key, "a/sp ace+plus%.json.gz");
        assert_eq!(page.objects[0].etag, "\"abc\"");
        assert_eq!(page.objects[0].size, 12);
        assert_eq!(page.objects[1].key, "a/../../x");
        assert!(page.objects[2].undecodable.is_some());
        assert_eq!(page.prefixes, vec!["a/b&c/".to_string()]);
        assert_eq!(page.next_token.as_deref(), Some("t+/=&"));
        // Without EncodingType the text is taken as it is.
        let plain = "<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a+b%20</Key><Size>1</Size></Contents></ListBucketResult>";
        let page = parse_list_xml(plain).unwrap();
        assert_eq!(page.objects[0].key, "a+b%20");
        assert_eq!(page.next_token, None);
        assert!(parse_list_xml("<Error><Code>AccessDenied</Code></Error>").is_err());
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
        assert_eq!(p.access_key_id.as_deref(), Some("AKIDPROD"));
        assert_eq!(p.session_token.as_deref(), Some("tok"));
        assert_eq!(p.region.as_deref(), Some("ap-south-1"));
        let d = load_profile("default", Some(&creds), Some(&config)).unwrap();
        assert_eq!((d.access_key_id.as_deref(), d.region.as_deref()), (Some("AKIDDEFAULT"), Some("eu-west-1")));
        let s = load_profile("sso", Some(&creds), Some(&config)).unwrap();
        assert_eq!((s.access_key_id, s.unsupported), (None, vec!["sso_session".to_string()]));
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
