//! Credentials from the AWS SDK's own chain (crate `aws-config`), adapted to object_store.
//!
//! The chain is the one the AWS CLI and SDKs follow: the environment (`AWS_ACCESS_KEY_ID`, ...), the
//! shared config and credentials files (static keys, IAM Identity Center / SSO with its token cache,
//! `role_arn` with `source_profile` or `credential_source` and `mfa_serial`, `credential_process`,
//! `web_identity_token_file`), web identity from the environment, ECS container credentials and EC2
//! instance metadata. An explicit `--profile` reads that profile only, as `aws --profile` does.
//!
//! The SDK's providers do not cache: object_store asks for a credential before every request, so the
//! adapter keeps the last one until five minutes before it expires (for ever when it never does).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use object_store::aws::AwsCredential;
use object_store::CredentialProvider;
use tokio::sync::{Mutex, OnceCell};

/// How long before its expiry a temporary credential is replaced.
const REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);

/// The SDK credential chain as an object_store credential provider. Built lazily, on the first
/// request, inside the runtime that makes it (the SDK's providers are async).
pub struct SdkCredentials {
    /// `--profile`: that profile alone; `None`: the default chain (which honours `AWS_PROFILE`).
    profile: Option<String>,
    /// The region STS and SSO are called in (the bucket's region as configured).
    region: String,
    chain: OnceCell<SharedCredentialsProvider>,
    cached: Mutex<Option<(Arc<AwsCredential>, Option<SystemTime>)>>,
}

impl fmt::Debug for SdkCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SdkCredentials").field("profile", &self.profile).field("region", &self.region).finish()
    }
}

impl SdkCredentials {
    pub fn new(profile: Option<String>, region: String) -> SdkCredentials {
        SdkCredentials { profile, region, chain: OnceCell::new(), cached: Mutex::new(None) }
    }

    async fn chain(&self) -> &SharedCredentialsProvider {
        self.chain
            .get_or_init(|| async {
                let http = aws_smithy_http_client::Builder::new()
                    .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
                    .build_https();
                let conf = ProviderConfig::without_region()
                    .with_http_client(http)
                    .with_behavior_version(Some(BehaviorVersion::latest()))
                    .with_region(Some(Region::new(self.region.clone())));
                match &self.profile {
                    Some(name) => SharedCredentialsProvider::new(
                        ProfileFileCredentialsProvider::builder().profile_name(name).configure(&conf).build(),
                    ),
                    // The region is given: the chain must not look for one (on a machine outside
                    // EC2 the metadata service would only time out).
                    None => SharedCredentialsProvider::new(
                        DefaultCredentialsChain::builder()
                            .region(Region::new(self.region.clone()))
                            .configure(conf)
                            .build()
                            .await,
                    ),
                }
            })
            .await
    }

    /// A credential from the chain, reused while it is valid for five more minutes.
    pub async fn credential(&self) -> Result<Arc<AwsCredential>, String> {
        let mut cached = self.cached.lock().await;
        if let Some((credential, expiry)) = cached.as_ref() {
            if expiry.is_none_or(|t| SystemTime::now() + REFRESH_BEFORE < t) {
                return Ok(credential.clone());
            }
        }
        let fresh = self.chain().await.provide_credentials().await.map_err(|e| {
            let mut reason = chain_error(&e);
            if reason.contains("SSO token") {
                let profile = self.profile.as_deref().map(|p| format!(" --profile {p}")).unwrap_or_default();
                reason.push_str(&format!(" (sign in first: `aws sso login{profile}`)"));
            }
            reason
        })?;
        let credential = Arc::new(AwsCredential {
            key_id: fresh.access_key_id().to_string(),
            secret_key: fresh.secret_access_key().to_string(),
            token: fresh.session_token().map(str::to_string),
        });
        *cached = Some((credential.clone(), fresh.expiry()));
        Ok(credential)
    }
}

/// The SDK's error with its causes, on one line (its Display names only the outermost).
fn chain_error(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

#[async_trait::async_trait]
impl CredentialProvider for SdkCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        self.credential().await.map_err(|reason| object_store::Error::Generic {
            store: "S3",
            source: format!("cannot get AWS credentials: {reason}").into(),
        })
    }
}
