//! Listing: signed ListObjectsV2 requests of our own and their XML answers.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::aws::{AmazonS3, AmazonS3ConfigKey, AwsAuthorizer};
use object_store::client::{HttpClient, HttpConnector, HttpRequest, HttpRequestBody, ReqwestConnector};
use object_store::{BackoffConfig, ClientConfigKey, ClientOptions};

use super::config::{retry_config, ClientConfig};
use crate::error::{Error, Result};

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
pub(super) enum ListError {
    /// The bucket is in another region (a redirect named it).
    Region(String),
    Fatal(String),
}

pub(super) struct S3 {
    pub(super) store: Arc<AmazonS3>,
    pub(super) http: HttpClient,
    pub(super) bucket: String,
    pub(super) bucket_url: String,
    pub(super) region: String,
    pub(super) skip_signature: bool,
    pub(super) list_requests: Arc<AtomicU64>,
}

impl S3 {
    pub(super) fn connect(cfg: &ClientConfig, region: &str, list_requests: Arc<AtomicU64>) -> Result<S3> {
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
    pub(super) async fn list(&self, prefix: &str, delimiter: bool) -> Result<ListPage, ListError> {
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

    pub(super) async fn list_page(
        &self,
        prefix: &str,
        delimiter: bool,
        token: Option<&str>,
    ) -> Result<ListPage, ListError> {
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
pub(super) struct Backoff {
    pub(super) init: f64,
    pub(super) max: f64,
    pub(super) base: f64,
    pub(super) next: f64,
    pub(super) seed: std::collections::hash_map::RandomState,
    pub(super) n: u64,
}

impl Backoff {
    pub(super) fn new(c: &BackoffConfig) -> Self {
        let init = c.init_backoff.as_secs_f64();
        Backoff { init, max: c.max_backoff.as_secs_f64(), base: c.base, next: init, seed: Default::default(), n: 0 }
    }

    pub(super) fn next(&mut self) -> Duration {
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
pub(super) fn error_text(body: &str) -> String {
    match (xml_first(body, "Code"), xml_first(body, "Message")) {
        (Some(c), Some(m)) => format!("{}: {}", xml_unescape(c), xml_unescape(m)),
        (Some(c), None) => xml_unescape(c),
        _ => body.chars().take(200).collect(),
    }
}

/// Percent-encode a query value (everything but RFC 3986 unreserved characters).
pub(super) fn query_encode(s: &str) -> String {
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
pub(super) fn url_decode(s: &str) -> std::result::Result<String, String> {
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

pub(super) fn xml_unescape(s: &str) -> String {
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
pub(super) fn xml_blocks<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
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

pub(super) fn xml_first<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
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
