//! Credentials and client configuration: the shared AWS config and credentials files, the S3 client.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::{BackoffConfig, ClientConfigKey, RetryConfig};

use super::credentials::SdkCredentials;
use super::PullOptions;
use crate::error::{Error, Result};
use crate::source::filter::Filter;

/// What trailscope reads itself from one profile of the shared config and credentials files: where
/// the bucket is. Credentials come from the AWS SDK's chain ([`super::credentials`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Profile {
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
}

pub(super) fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), crate::fs::home_dir()) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(p),
    }
}

/// The shared credentials and config files: `AWS_SHARED_CREDENTIALS_FILE` / `AWS_CONFIG_FILE`, else
/// `~/.aws/credentials` and `~/.aws/config`.
pub fn shared_files() -> (Option<PathBuf>, Option<PathBuf>) {
    let pick = |var: &str, default: &str| match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(expand_home(&v)),
        _ => crate::fs::home_dir().map(|h| h.join(".aws").join(default)),
    };
    (pick("AWS_SHARED_CREDENTIALS_FILE", "credentials"), pick("AWS_CONFIG_FILE", "config"))
}

/// The `key = value` pairs of section `[wanted]` of an INI text (keys lowercased), if it has one.
pub(super) fn ini_section(text: &str, wanted: &[String]) -> Option<HashMap<String, String>> {
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
    Some(Profile { region: get("region"), endpoint_url: get("endpoint_url") })
}

pub(super) fn retry_config() -> RetryConfig {
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
pub(super) struct ClientConfig {
    pub(super) builder: AmazonS3Builder,
    pub(super) bucket: String,
    pub(super) region: String,
    pub(super) endpoint: Option<String>,
    pub(super) virtual_hosted: bool,
    pub(super) skip_signature: bool,
    /// The credentials object_store signs with; the listing signs with the same.
    pub(super) credentials: Arc<SdkCredentials>,
}

pub(super) fn client_config(opts: &PullOptions, bucket: &str) -> Result<ClientConfig> {
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    let env_keys = builder.get_config_value(&AmazonS3ConfigKey::AccessKeyId).is_some();
    let env_profile = std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty());
    let named = opts.profile.clone().or(env_profile);
    let name = named.clone().unwrap_or_else(|| "default".into());
    let (cred_file, config_file) = shared_files();
    let profile = load_profile(&name, cred_file.as_deref(), config_file.as_deref());
    // A profile named by --profile, or by AWS_PROFILE when no keys are in the environment, must exist.
    if profile.is_none() && (opts.profile.is_some() || (named.is_some() && !env_keys)) {
        let files: Vec<String> =
            [&cred_file, &config_file].iter().filter_map(|f| f.as_ref().map(|p| p.display().to_string())).collect();
        return Err(Error::Usage(format!("profile {name:?} not found in {}", files.join(" or "))));
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
    // The SDK's chain, not object_store's: --profile reads that profile only (as `aws --profile`);
    // otherwise environment, AWS_PROFILE or the default profile, web identity, ECS, instance metadata.
    let credentials = Arc::new(SdkCredentials::new(opts.profile.clone(), region.clone()));
    builder = builder.with_credentials(credentials.clone());
    let flag = |k: AmazonS3ConfigKey| builder.get_config_value(&k).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let virtual_hosted = flag(AmazonS3ConfigKey::VirtualHostedStyleRequest);
    let skip_signature = flag(AmazonS3ConfigKey::SkipSignature);
    let builder =
        builder.with_retry(retry_config()).with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), "300s");
    Ok(ClientConfig {
        builder,
        bucket: bucket.to_string(),
        region,
        endpoint,
        virtual_hosted,
        skip_signature,
        credentials,
    })
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
    cfg.builder.with_region(region).build().map_err(|e| Error::network("cannot configure the S3 client", e))
}
