//! Listing: signed ListObjectsV2 requests of our own and their XML answers.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::aws::{AmazonS3, AmazonS3ConfigKey, AwsAuthorizer};
use object_store::client::{HttpClient, HttpConnector, HttpRequest, HttpRequestBody, ReqwestConnector};
use object_store::{BackoffConfig, ClientConfigKey, ClientOptions};

use super::config::{retry_config, ClientConfig};
use super::credentials::SdkCredentials;
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
    pub(super) credentials: Arc<SdkCredentials>,
    pub(super) list_requests: Arc<AtomicU64>,
}

impl S3 {
    pub(super) fn connect(cfg: &ClientConfig, region: &str, list_requests: Arc<AtomicU64>) -> Result<S3> {
        let builder = cfg.builder.clone().with_region(region);
        let store = builder.clone().build().map_err(|e| Error::network("cannot configure the S3 client", e))?;
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
            .map_err(|e| Error::network("cannot configure the HTTP client", e))?;
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
            credentials: cfg.credentials.clone(),
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
                    .credentials
                    .credential()
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
                    let named = region.or_else(|| error_region(&body));
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
    let (mut code, mut message) = (None, None);
    // A body that is not XML (a proxy's HTML page) is shown as it starts.
    let _ = xml_elements(body, |_, name, text| match name {
        "Code" if code.is_none() => code = Some(text.text.clone()),
        "Message" if message.is_none() => message = Some(text.text.clone()),
        _ => {}
    });
    match (code, message) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c,
        _ => body.chars().take(200).collect(),
    }
}

/// The `<Region>` an S3 error document names (a bucket in another region).
fn error_region(body: &str) -> Option<String> {
    let mut region = None;
    let _ = xml_elements(body, |_, name, text| {
        if name == "Region" && region.is_none() {
            region = Some(text.text.clone());
        }
    });
    region
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

/// The character data of one XML element, references resolved.
pub(super) struct XmlText {
    pub(super) text: String,
    /// A reference that is not XML's (`&nbsp;`, `&#0;`): kept as written, and why.
    pub(super) unresolved: Option<String>,
}

/// Read an XML document with quick-xml, calling `on_end(parent, name, text)` as each element
/// closes, with its own character data (not its children's). Fails only on malformed XML; an
/// unknown entity or bad character reference is kept as written and reported in the text, so one
/// hostile value cannot fail the document it is in.
pub(super) fn xml_elements(
    xml: &str,
    mut on_end: impl FnMut(Option<&str>, &str, &XmlText),
) -> std::result::Result<(), String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<String> = Vec::new();
    let mut text = XmlText { text: String::new(), unresolved: None };
    loop {
        let event =
            reader.read_event().map_err(|e| format!("malformed XML at byte {}: {e}", reader.error_position()))?;
        match event {
            Event::Start(e) => {
                stack.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
                text = XmlText { text: String::new(), unresolved: None };
            }
            Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                on_end(stack.last().map(String::as_str), &name, &XmlText { text: String::new(), unresolved: None });
            }
            Event::End(_) => {
                let name = stack.pop().unwrap_or_default();
                on_end(stack.last().map(String::as_str), &name, &text);
                text = XmlText { text: String::new(), unresolved: None };
            }
            Event::Text(t) => text.text.push_str(&t.decode().map_err(|e| format!("bad text in XML: {e}"))?),
            Event::CData(t) => text.text.push_str(&String::from_utf8_lossy(&t)),
            Event::GeneralRef(r) => {
                let name = String::from_utf8_lossy(&r).into_owned();
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => Some(c.to_string()),
                    Ok(None) => quick_xml::escape::resolve_predefined_entity(&name).map(str::to_string),
                    Err(_) => None,
                };
                match resolved {
                    Some(v) => text.text.push_str(&v),
                    None => {
                        text.text.push_str(&format!("&{name};"));
                        text.unresolved.get_or_insert_with(|| format!("the XML reference &{name}; cannot be resolved"));
                    }
                }
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
    }
}

/// Parse a ListObjectsV2 answer.
pub fn parse_list_xml(xml: &str) -> std::result::Result<ListPage, String> {
    if !xml.contains("<ListBucketResult") {
        return Err(format!("not a ListObjectsV2 answer: {}", xml.chars().take(200).collect::<String>()));
    }
    #[derive(Default)]
    struct Entry {
        key: Option<(String, Option<String>)>,
        size: Option<u64>,
        etag: String,
    }
    let mut entries: Vec<Entry> = Vec::new();
    let mut entry = Entry::default();
    let mut prefixes: Vec<(String, Option<String>)> = Vec::new();
    let (mut encoded, mut truncated, mut token) = (false, false, None);
    xml_elements(xml, |parent, name, t| match (parent, name) {
        (Some("Contents"), "Key") => entry.key = Some((t.text.clone(), t.unresolved.clone())),
        (Some("Contents"), "Size") => entry.size = t.text.trim().parse().ok(),
        (Some("Contents"), "ETag") => entry.etag = t.text.clone(),
        (Some("ListBucketResult"), "Contents") => entries.push(std::mem::take(&mut entry)),
        (Some("CommonPrefixes"), "Prefix") => prefixes.push((t.text.clone(), t.unresolved.clone())),
        (Some("ListBucketResult"), "EncodingType") => encoded = t.text.trim() == "url",
        (Some("ListBucketResult"), "IsTruncated") => truncated = t.text.trim() == "true",
        (Some("ListBucketResult"), "NextContinuationToken") => token = Some(t.text.clone()),
        _ => {}
    })?;
    // Keys and prefixes are URL-encoded only if the server says so (it may ignore encoding-type).
    let decode = |(text, unresolved): (String, Option<String>)| match unresolved {
        Some(why) => Err((text, why)),
        None if encoded => url_decode(&text).map_err(|e| (text, e)),
        None => Ok(text),
    };
    let mut page = ListPage::default();
    for e in entries {
        let raw = e.key.ok_or("an entry without <Key>")?;
        let size = e.size.ok_or("an entry without <Size>")?;
        let (key, undecodable) = match decode(raw) {
            Ok(k) => (k, None),
            Err((text, why)) => (text, Some(why)),
        };
        page.objects.push(Listed { key, size, etag: e.etag, undecodable });
    }
    // An undecodable prefix is kept raw: its segment is then refused like any unsafe one.
    page.prefixes = prefixes.into_iter().map(|p| decode(p).unwrap_or_else(|(text, _)| text)).collect();
    page.next_token = token.filter(|t| !t.is_empty());
    if truncated && page.next_token.is_none() {
        return Err("a truncated answer without NextContinuationToken".into());
    }
    if !truncated {
        page.next_token = None;
    }
    Ok(page)
}
