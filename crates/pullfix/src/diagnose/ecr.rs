//! Asking the ECR API (with the operator's AWS identity) whether the tag
//! exists (`DescribeImages`) and whether a fresh token can be had
//! (`GetAuthorizationToken`): that tells an expired secret from a
//! permissions problem. Honours `AWS_ENDPOINT_URL` (the lab points it at
//! moto). Skipped when no AWS credentials are configured; the configuration
//! is loaded only when an ECR image is handled.

use std::time::Duration;

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
    /// One check per image, shared by every workload that has it (an
    /// outage puts one image in hundreds of workloads).
    checks: std::sync::Mutex<
        std::collections::HashMap<String, std::sync::Arc<tokio::sync::OnceCell<Option<EcrCheck>>>>,
    >,
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
        self.config
            .get_or_init(|| {
                crate::terminal::spin(
                    format!(
                        "looking for AWS credentials ({})",
                        crate::terminal::at_most(AWS_CREDENTIALS_TIMEOUT)
                    ),
                    load(),
                )
            })
            .await
            .as_ref()
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
        let out = ecr_call(
            "asking ECR for a token (GetAuthorizationToken)",
            client.get_authorization_token().send(),
        )
        .await?
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
    /// when no AWS credentials are available. Concurrent and later calls
    /// for the same image share one check.
    pub(crate) async fn check(&self, image: &ImageRef) -> Option<EcrCheck> {
        let cell = self
            .checks
            .lock()
            // A poisoned lock only means a check panicked; the cells are whole.
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(image.to_string())
            .or_default()
            .clone();
        cell.get_or_init(|| self.check_once(image)).await.clone()
    }

    async fn check_once(&self, image: &ImageRef) -> Option<EcrCheck> {
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
        let described = ecr_call(
            &format!(
                "asking ECR whether {}:{} exists (DescribeImages)",
                image.repository,
                image.manifest_reference()
            ),
            client
                .describe_images()
                .registry_id(&account)
                .repository_name(&image.repository)
                .image_ids(id)
                .send(),
        )
        .await;
        let described = match described {
            Ok(d) => d,
            Err(e) => {
                check.error = Some(format!("DescribeImages: {e}"));
                return Some(check);
            }
        };
        match described {
            Ok(out) => check.image_exists = Some(!out.image_details().is_empty()),
            Err(e) => match e.code() {
                Some("ImageNotFoundException" | "RepositoryNotFoundException") => {
                    check.image_exists = Some(false);
                }
                _ => check.error = Some(format!("DescribeImages: {}", aws_message(&e))),
            },
        }
        let token = ecr_call(
            "asking ECR for a token (GetAuthorizationToken)",
            client.get_authorization_token().send(),
        )
        .await;
        match token {
            Err(e) => check.error = Some(format!("GetAuthorizationToken: {e}")),
            Ok(Ok(_)) => check.token_available = Some(true),
            Ok(Err(e)) => {
                check.token_available = Some(false);
                check.error = Some(format!("GetAuthorizationToken: {}", aws_message(&e)));
            }
        }
        Some(check)
    }
}

/// How long finding AWS credentials may take (profiles, SSO, the instance
/// metadata service).
const AWS_CREDENTIALS_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one ECR API call may take.
const ECR_CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// One ECR API call, bounded in time and shown with a spinner while it
/// lasts; `Err` when ECR did not answer in time.
async fn ecr_call<T>(what: &str, call: impl std::future::Future<Output = T>) -> anyhow::Result<T> {
    let limit = crate::terminal::at_most(ECR_CALL_TIMEOUT);
    crate::terminal::spin(
        format!("{what} ({limit})"),
        tokio::time::timeout(ECR_CALL_TIMEOUT, call),
    )
    .await
    .map_err(|_| {
        anyhow::anyhow!(
            "ECR did not answer within {}",
            crate::duration::format(ECR_CALL_TIMEOUT)
        )
    })
}

/// The AWS configuration, when credentials can be had (within 5 s).
async fn load() -> Option<aws_config::SdkConfig> {
    let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let provider = config.credentials_provider()?;
    let creds =
        aws_credential_types::provider::ProvideCredentials::provide_credentials(provider.as_ref());
    tokio::time::timeout(AWS_CREDENTIALS_TIMEOUT, creds)
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
