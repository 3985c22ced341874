//! Diagnosis: from what the cluster shows (waiting reasons, messages,
//! kubelet events, pull secrets, nodes) and what the registry answers, to one
//! cause per failing container, with its evidence and the next steps.
//!
//! The pure parts (classification, secret analysis, planning the next steps)
//! live here and in the submodules; the code that talks to the cluster and
//! registries lives in `collect` and `probe`.

pub mod classify;
pub mod decide;
pub mod ecr;
pub mod finding;
pub(crate) mod gather;
pub mod run;
pub mod secrets;

use serde::Serialize;

/// Why an image does not pull. The ids are stable (documented in
/// `docs/causes.md`): tools parse them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// The tag or digest does not exist in the repository.
    ImageNotFound,
    /// The repository does not exist (or is not visible with these credentials).
    RepositoryNotFound,
    /// The image points at the wrong registry (e.g. Docker Hub instead of the private one).
    WrongRegistry,
    /// No usable credential reached the registry.
    CredentialsMissing,
    /// The registry rejected the credential (wrong user or password).
    CredentialsRejected,
    /// The credential was valid once and has expired (ECR tokens last 12 h).
    CredentialsExpired,
    /// Authenticated, but not allowed to pull this repository (403).
    AccessDenied,
    /// The registry cannot be reached (see [`Detail`]).
    RegistryUnreachable,
    /// The TLS handshake failed (unknown CA, expired or mismatched certificate).
    TlsError,
    /// The registry throttled pulls (429).
    RateLimited,
    /// The image reference cannot be parsed.
    InvalidImageName,
    /// `imagePullPolicy: Never` and the image is not on the node.
    NeverPull,
    /// The image has no variant for the node's OS/architecture.
    PlatformMismatch,
    /// The registry answered, but a download was cut off mid-transfer
    /// (connection reset, unexpected EOF): the network or a proxy between
    /// the node and the registry.
    PullInterrupted,
    /// A downloaded blob does not match its digest: the registry's storage,
    /// a pull-through cache or a proxy altered it.
    LayerCorrupt,
    /// None of the above: the raw text is shown.
    Unknown,
}

impl Cause {
    /// A failure to authenticate: no credential, or one the registry
    /// refuses (rejected, expired).
    pub fn is_credential(self) -> bool {
        matches!(
            self,
            Cause::CredentialsMissing | Cause::CredentialsRejected | Cause::CredentialsExpired
        )
    }

    /// The stable id (`image-not-found`).
    pub fn id(self) -> &'static str {
        match self {
            Cause::ImageNotFound => "image-not-found",
            Cause::RepositoryNotFound => "repository-not-found",
            Cause::WrongRegistry => "wrong-registry",
            Cause::CredentialsMissing => "credentials-missing",
            Cause::CredentialsRejected => "credentials-rejected",
            Cause::CredentialsExpired => "credentials-expired",
            Cause::AccessDenied => "access-denied",
            Cause::RegistryUnreachable => "registry-unreachable",
            Cause::TlsError => "tls-error",
            Cause::RateLimited => "rate-limited",
            Cause::InvalidImageName => "invalid-image-name",
            Cause::NeverPull => "never-pull",
            Cause::PlatformMismatch => "platform-mismatch",
            Cause::PullInterrupted => "pull-interrupted",
            Cause::LayerCorrupt => "layer-corrupt",
            Cause::Unknown => "unknown",
        }
    }

    /// One line a person under pressure can act on.
    pub(crate) fn summary(self) -> &'static str {
        match self {
            Cause::ImageNotFound => "the image tag or digest does not exist in the registry",
            Cause::RepositoryNotFound => {
                "the repository does not exist, or these credentials cannot see it"
            }
            Cause::WrongRegistry => "the image points at the wrong registry",
            Cause::CredentialsMissing => "no pull credential reaches the registry",
            Cause::CredentialsRejected => "the registry rejects the pull secret's credentials",
            Cause::CredentialsExpired => "the pull secret's credentials have expired",
            Cause::AccessDenied => "the credentials are valid but not allowed to pull this image",
            Cause::RegistryUnreachable => "the registry cannot be reached from the node",
            Cause::TlsError => "the TLS connection to the registry fails",
            Cause::RateLimited => "the registry is rate limiting pulls",
            Cause::InvalidImageName => "the image reference is not valid",
            Cause::NeverPull => "imagePullPolicy is Never and the image is not on the node",
            Cause::PlatformMismatch => "the image has no build for the node's platform",
            Cause::PullInterrupted => {
                "the registry answered, but the download was cut off before it finished"
            }
            Cause::LayerCorrupt => "a downloaded layer does not match its digest",
            Cause::Unknown => "the pull fails for a reason pullfix does not recognize",
        }
    }
}

/// Refines [`Cause::RegistryUnreachable`] and [`Cause::TlsError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Detail {
    Dns,
    Timeout,
    Refused,
    UnknownAuthority,
    CertificateExpired,
    NameMismatch,
}

/// How sure a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Confidence {
    /// A guess from weak signals (e.g. only `Back-off pulling image` is left).
    Low,
    /// One clear signal (the runtime's error text).
    Medium,
    /// Two signals agree (the node's error and the registry's answer).
    High,
}
