//! Asking the ECR API (with the operator's AWS identity) whether the tag
//! exists (`DescribeImages`) and whether a fresh token can be had
//! (`GetAuthorizationToken`): that tells an expired secret from a
//! permissions problem. Honours `AWS_ENDPOINT_URL` (the lab points it at
//! moto). Skipped when no AWS credentials are configured; the configuration
//! is loaded only when an ECR image is handled.

use aws_config::BehaviorVersion;
use aws_sdk_ecr::config::Region;
use aws_sdk_ecr::error::ProvideErrorMetadata;
use aws_sdk_ecr::types::ImageIdentifier;

use crate::diagnose::finding::EcrCheck;
use crate::diagnose::secrets::ecr_region;
use crate::registry::reference::ImageRef;

/// An ECR client for the operator's AWS identity. Creating one does no
/// I/O: the AWS configuration (profiles, SSO, the instance metadata
/// service) is loaded the first time an ECR image needs it, so commands
/// that never meet an ECR image never ask AWS anything.
#[derive(Default)]
pub(crate) struct EcrClient {
    config: tokio::sync::OnceCell<Option<aws_config::SdkConfig>>,
}

impl EcrClient {
    /// A client that loads the AWS configuration on first use.
    pub(crate) fn lazy() -> EcrClient {
        EcrClient::default()
    }

    /// True when AWS credentials are available (loads the configuration
    /// the first time).
    pub(crate) async fn available(&self) -> bool {
        self.config().await.is_some()
    }

    async fn config(&self) -> Option<&aws_config::SdkConfig> {
        self.config.get_or_init(load).await.as_ref()
    }

    /// A fresh registry token for the image's registry (the `aws ecr
    /// get-login-password` of the runbook), as a credential (user `AWS`).
    pub(crate) async fn login_password(
        &self,
        image: &ImageRef,
    ) -> anyhow::Result<crate::registry::keyring::Credential> {
        let client = self.client(image).await.ok_or_else(|| {
            anyhow::anyhow!(
                "no AWS credentials are configured (AWS_PROFILE, AWS_ACCESS_KEY_ID, SSO...)"
            )
        })?;
        let out = client
            .get_authorization_token()
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("ECR GetAuthorizationToken: {}", aws_message(&e)))?;
        let token = out
            .authorization_data()
            .first()
            .and_then(|d| d.authorization_token())
            .ok_or_else(|| anyhow::anyhow!("ECR GetAuthorizationToken returned no token"))?;
        let cred = crate::registry::keyring::decode_auth(token).ok_or_else(|| {
            anyhow::anyhow!("ECR returned a token that is not base64 of user:password")
        })?;
        Ok(cred)
    }

    async fn client(&self, image: &ImageRef) -> Option<aws_sdk_ecr::Client> {
        let config = self.config().await?;
        let region = ecr_region(&image.domain).unwrap_or_else(|| "us-east-1".into());
        let conf = aws_sdk_ecr::config::Builder::from(config)
            .region(Region::new(region))
            .build();
        Some(aws_sdk_ecr::Client::from_conf(conf))
    }

    /// `DescribeImages` for the tag and `GetAuthorizationToken`; `None`
    /// when no AWS credentials are available.
    pub(crate) async fn check(&self, image: &ImageRef) -> Option<EcrCheck> {
        let client = self.client(image).await?;
        let account = image
            .domain
            .split('.')
            .next()
            .unwrap_or_default()
            .to_string();
        let mut check = EcrCheck::default();
        let id = match (&image.digest, &image.tag) {
            (Some(d), _) => ImageIdentifier::builder().image_digest(d).build(),
            (None, Some(t)) => ImageIdentifier::builder().image_tag(t).build(),
            (None, None) => ImageIdentifier::builder().image_tag("latest").build(),
        };
        match client
            .describe_images()
            .registry_id(&account)
            .repository_name(&image.repository)
            .image_ids(id)
            .send()
            .await
        {
            Ok(out) => check.image_exists = Some(!out.image_details().is_empty()),
            Err(e) => match e.code() {
                Some("ImageNotFoundException" | "RepositoryNotFoundException") => {
                    check.image_exists = Some(false);
                }
                _ => check.error = Some(format!("DescribeImages: {}", aws_message(&e))),
            },
        }
        match client.get_authorization_token().send().await {
            Ok(_) => check.token_available = Some(true),
            Err(e) => {
                check.token_available = Some(false);
                check.error = Some(format!("GetAuthorizationToken: {}", aws_message(&e)));
            }
        }
        Some(check)
    }
}

/// The AWS configuration, when credentials can be had (within 5 s).
async fn load() -> Option<aws_config::SdkConfig> {
    let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let provider = config.credentials_provider()?;
    let creds =
        aws_credential_types::provider::ProvideCredentials::provide_credentials(provider.as_ref());
    tokio::time::timeout(std::time::Duration::from_secs(5), creds)
        .await
        .ok()?
        .ok()?;
    Some(config)
}

fn aws_message<E: ProvideErrorMetadata + std::fmt::Display>(e: &E) -> String {
    match (e.code(), e.message()) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_string(),
        _ => e.to_string(),
    }
}
