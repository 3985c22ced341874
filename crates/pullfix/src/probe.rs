//! Asking the registry, from the operator's machine: does the tag exist,
//! do the pull secret's credentials work, are anonymous pulls allowed, how
//! much rate limit is left, is there a build for the node's platform.
//!
//! Probes are deduplicated per registry/repository/reference/credential/
//! platform, run concurrently, and bounded in time. A probe that cannot reach
//! the registry from here does not override what the kubelet saw on the
//! node: the caller reports it as inconclusive.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::OnceCell;

use crate::registry::client::{Platform, PullFailure, RateLimit, RegistryClient, RegistryConfig};
use crate::registry::hosts::RegistryHosts;
use crate::registry::keyring::Credential;
use crate::registry::reference::ImageRef;

/// The registry configuration for probes from this machine: the system's
/// trust store and the `--registry-ca` certificates (`ca_pem`), plus what
/// `--registry-hosts` says about mirrors, plain HTTP and extra CAs (as the
/// nodes' containerd is configured).
pub(crate) fn config(
    timeout: Duration,
    hosts: Option<&RegistryHosts>,
    ca_pem: &[Vec<u8>],
) -> RegistryConfig {
    RegistryConfig {
        hosts: hosts.cloned(),
        ca_pem: ca_pem.to_vec(),
        timeout: Some(timeout),
        ..RegistryConfig::default()
    }
}

/// Why a probe from this machine says nothing about the credential, with
/// what to do about it: the failure is this machine's (it does not trust
/// the registry's CA, cannot resolve or reach it), which the nodes may not
/// share.
pub(crate) fn local_failure(
    host: &str,
    failure: Option<&crate::registry::client::PullFailure>,
) -> String {
    use crate::registry::client::PullFailure;
    let host = crate::sanitize::line(host).into_owned();
    match failure {
        Some(PullFailure::Tls { detail, .. }) => format!(
            "this machine does not trust {host}'s certificate ({}): pass its CA with --registry-ca FILE, or the nodes' certs.d with --registry-hosts DIR",
            crate::sanitize::line(detail)
        ),
        Some(PullFailure::Dns { .. }) => format!(
            "{host} does not resolve from this machine (the nodes may resolve it: internal DNS, a VPC endpoint); --registry-hosts DIR can say where the nodes reach it"
        ),
        Some(PullFailure::Refused { addr, .. }) => format!(
            "this machine cannot connect to {host} ({}: connection refused; the nodes may reach it through their own network or proxy)",
            crate::sanitize::line(addr)
        ),
        _ => format!(
            "this machine gets no answer from {host} in time (the nodes may reach it through their own network or proxy)"
        ),
    }
}

/// What one attempt to resolve the image gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Attempt {
    Ok {
        digest: String,
    },
    Failed {
        failure: String,
        status: Option<u16>,
    },
    /// No answer within the probe's time bound.
    TimedOut,
}

impl Attempt {
    fn from(r: Result<String, PullFailure>) -> (Attempt, Option<PullFailure>) {
        match r {
            Ok(digest) => (Attempt::Ok { digest }, None),
            Err(f) => (
                Attempt::Failed {
                    failure: describe_failure(&f),
                    status: failure_status(&f),
                },
                Some(f),
            ),
        }
    }

    /// True when the registry answered OK.
    pub(crate) fn ok(&self) -> bool {
        matches!(self, Attempt::Ok { .. })
    }
}

/// The HTTP status behind a failure, when there is one.
pub(crate) fn failure_status(f: &PullFailure) -> Option<u16> {
    match f {
        PullFailure::NotFound { .. } => Some(404),
        PullFailure::AccessDenied { .. } | PullFailure::NoBasicCredentials { .. } => Some(401),
        PullFailure::TokenFetch { status, .. } | PullFailure::Status { status, .. } => {
            Some(*status)
        }
        PullFailure::RateLimited { .. } => Some(429),
        _ => None,
    }
}

/// One line for a registry failure, as seen from here.
pub(crate) fn describe_failure(f: &PullFailure) -> String {
    match f {
        PullFailure::NotFound { url } => format!("404 manifest unknown ({url})"),
        PullFailure::AccessDenied { .. } => {
            "401 insufficient_scope: repository missing or not visible to this identity".into()
        }
        PullFailure::NoBasicCredentials { .. } => "401: the registry requires credentials".into(),
        PullFailure::TokenFetch {
            url,
            status,
            anonymous,
        } => format!(
            "token endpoint answered {status} to {} request ({url})",
            if *anonymous {
                "an anonymous"
            } else {
                "an authenticated"
            }
        ),
        PullFailure::Status {
            method,
            url,
            status,
        } => format!("{method} {url}: HTTP {status}"),
        PullFailure::RateLimited { message, .. } => format!("429 toomanyrequests: {message}"),
        PullFailure::Dns { host, .. } => format!("{host} does not resolve from here"),
        PullFailure::Refused { addr, .. } => format!("connection to {addr} refused"),
        PullFailure::Timeout { addr, .. } => format!("no answer from {addr} in time"),
        PullFailure::Tls { detail, .. } => format!("TLS: {detail}"),
        PullFailure::PlatformMismatch { os, arch, .. } => {
            format!("no {os}/{arch} build in the image index")
        }
        PullFailure::Other { detail } => detail.clone(),
    }
}

/// Everything a probe learned about one image and credential.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeResult {
    pub registry: String,
    /// Always stated: the probe ran here, not on the node.
    pub from: &'static str,
    /// With the credential the kubelet would use (absent when none applies).
    pub with_credential: Option<Attempt>,
    /// The credential's username (never the password).
    pub username: Option<String>,
    /// Without credentials.
    pub anonymous: Attempt,
    /// Tags, listed when the tag was missing (for suggestions).
    pub tags: Option<Vec<String>>,
    pub rate_limit: Option<RateLimit>,
    /// True when the registry could not be reached from here at all.
    pub unreachable_here: bool,
    #[serde(skip)]
    pub failure: Option<PullFailure>,
    #[serde(skip)]
    pub anonymous_failure: Option<PullFailure>,
}

#[derive(Hash, PartialEq, Eq, Clone)]
struct Key {
    image: String,
    user: Option<String>,
    pass_digest: Option<String>,
    arch: String,
}

/// A deduplicating, time-bounded prober.
#[derive(Clone)]
pub(crate) struct Prober {
    client: RegistryClient,
    timeout: Duration,
    cache: Arc<std::sync::Mutex<HashMap<Key, Arc<OnceCell<ProbeResult>>>>>,
}

impl Prober {
    pub fn new(config: &RegistryConfig, timeout: Duration) -> anyhow::Result<Prober> {
        Ok(Prober {
            client: RegistryClient::new(config)?,
            timeout,
            cache: Arc::default(),
        })
    }

    /// Probes an image with a credential for a platform; concurrent calls
    /// with the same inputs share one probe.
    pub(crate) async fn probe(
        &self,
        image: &ImageRef,
        credential: Option<&Credential>,
        arch: &str,
    ) -> ProbeResult {
        let key = Key {
            image: image.to_string(),
            user: credential.map(|c| c.username.clone()),
            pass_digest: credential.map(|c| crate::encoding::sha256_hex(c.password().as_bytes())),
            arch: arch.to_string(),
        };
        let cell = self
            .cache
            .lock()
            // A poisoned lock only means a probe panicked; the cells are whole.
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(key)
            .or_default()
            .clone();
        cell.get_or_init(|| self.run(image, credential, arch))
            .await
            .clone()
    }

    /// A candidate tag's digest and build date, for a menu (`None` when the
    /// registry did not answer in time or refused).
    pub(crate) async fn tag_info(
        &self,
        image: &ImageRef,
        credential: Option<&Credential>,
    ) -> Option<crate::registry::client::TagInfo> {
        self.bounded(self.client.tag_info(image, credential))
            .await
            .and_then(Result::ok)
    }

    async fn bounded<T>(&self, f: impl std::future::Future<Output = T>) -> Option<T> {
        tokio::time::timeout(self.timeout, f).await.ok()
    }

    async fn run(
        &self,
        image: &ImageRef,
        credential: Option<&Credential>,
        arch: &str,
    ) -> ProbeResult {
        let platform = Platform {
            os: "linux".into(),
            arch: arch.into(),
        };
        let resolve = |cred: Option<&Credential>| {
            let client = self.client.clone();
            let image = image.clone();
            let platform = platform.clone();
            let cred = cred.cloned();
            async move {
                client
                    .resolve(&image, cred.as_ref(), &platform)
                    .await
                    .map(|r| r.digest)
            }
        };
        let at_most = crate::terminal::at_most(self.timeout);
        let (with, anon) = crate::terminal::spin(
            format!(
                "probing {} for {}:{} ({at_most})",
                image.domain,
                image.repository,
                image.manifest_reference()
            ),
            async {
                tokio::join!(
                    async {
                        match credential {
                            Some(c) => Some(self.bounded(resolve(Some(c))).await),
                            None => None,
                        }
                    },
                    self.bounded(resolve(None))
                )
            },
        )
        .await;
        let (with_credential, failure) = match with {
            None => (None, None),
            Some(None) => (Some(Attempt::TimedOut), None),
            Some(Some(r)) => {
                let (a, f) = Attempt::from(r);
                (Some(a), f)
            }
        };
        let (anonymous, anonymous_failure) = match anon {
            None => (Attempt::TimedOut, None),
            Some(r) => Attempt::from(r),
        };
        let decisive = failure.as_ref().or(if credential.is_none() {
            anonymous_failure.as_ref()
        } else {
            None
        });
        let unreachable_here = matches!(
            (&with_credential, &anonymous),
            (Some(Attempt::TimedOut) | None, Attempt::TimedOut)
        ) || matches!(
            decisive,
            Some(
                PullFailure::Dns { .. }
                    | PullFailure::Refused { .. }
                    | PullFailure::Timeout { .. }
                    | PullFailure::Tls { .. }
            )
        );
        let tag_missing = matches!(decisive, Some(PullFailure::NotFound { .. }));
        let tags = if tag_missing && image.tag.is_some() {
            crate::terminal::spin(
                format!(
                    "listing the tags of {}/{} ({at_most})",
                    image.domain, image.repository
                ),
                self.bounded(self.client.list_tags(image, credential, 500)),
            )
            .await
            .and_then(Result::ok)
        } else {
            None
        };
        let rate_limit = if unreachable_here {
            None
        } else {
            crate::terminal::spin(
                format!("reading {}'s rate limit ({at_most})", image.domain),
                self.bounded(self.client.rate_limit(image, credential)),
            )
            .await
            .and_then(Result::ok)
            .flatten()
        };
        ProbeResult {
            registry: image.domain.clone(),
            from: "this machine (not the node)",
            with_credential,
            username: credential.map(|c| c.username.clone()),
            anonymous,
            tags,
            rate_limit,
            unreachable_here,
            failure,
            anonymous_failure,
        }
    }
}

/// Tags close to `wanted` that exist, best first (for "did you mean").
pub(crate) fn suggest_tags(wanted: &str, tags: &[String]) -> Vec<String> {
    let mut scored: Vec<(usize, &String)> = tags
        .iter()
        .filter(|t| t.as_str() != wanted)
        .map(|t| (crate::diagnose::secrets::levenshtein(wanted, t), t))
        .filter(|(d, t)| *d <= wanted.len().max(t.len()) / 2)
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, t)| t.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_suggestions() {
        let tags: Vec<String> = ["v2.0.3", "v2.1.0", "v2.1.1", "latest"]
            .map(String::from)
            .to_vec();
        assert_eq!(suggest_tags("v2.1.9", &tags)[0], "v2.1.0");
        assert!(suggest_tags("v2.1.9", &tags).len() <= 3);
        assert!(!suggest_tags("v2.1.9", &tags).contains(&"latest".to_string()));
        assert!(suggest_tags("zzzzzzzzzz", &tags).is_empty());
    }
}
