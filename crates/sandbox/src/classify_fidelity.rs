//! The product's classifier against every kubelet/runtime profile of the
//! simulated kubelet: each failure, in each profile's wording, must come
//! back with the cause the profile means. Lives here, not in the product,
//! because the product never depends on the sandbox.

use pullfix::diagnose::classify::*;
use pullfix::diagnose::*;
use pullfix::registry::client::PullFailure;
use pullfix::registry::reference::ImageRef;

use crate::profile::{KubeletVersion, Profile, Runtime};

use Cause::*;

const KUBELETS: [KubeletVersion; 3] = [
    KubeletVersion::V1_27,
    KubeletVersion::V1_28,
    KubeletVersion::V1_33,
];
const RUNTIMES: [Runtime; 4] = [
    Runtime::Containerd17,
    Runtime::Containerd21,
    Runtime::Crio,
    Runtime::Docker,
];

fn profiles() -> Vec<Profile> {
    KUBELETS
        .iter()
        .flat_map(|&kubelet| {
            RUNTIMES
                .iter()
                .map(move |&runtime| Profile { kubelet, runtime })
        })
        .collect()
}

fn manifest_url(image: &ImageRef) -> String {
    format!(
        "https://{}/v2/{}/manifests/{}",
        image.api_host(),
        image.repository,
        image.manifest_reference()
    )
}

/// Every PullFailure variant, with realistic fields for this image.
fn failures(image: &ImageRef) -> Vec<(&'static str, PullFailure)> {
    let url = manifest_url(image);
    let host = image.api_host().to_string();
    let token_url = if image.is_docker_hub() {
        format!(
            "https://auth.docker.io/token?scope=repository%3A{}%3Apull&service=registry.docker.io",
            pullfix::encoding::percent_encode(&image.repository)
        )
    } else {
        format!("https://{host}/token?scope=repository%3Ateam%2Fcheckout%3Apull&service={host}")
    };
    vec![
            ("not-found", PullFailure::NotFound { url: url.clone() }),
            ("access-denied", PullFailure::AccessDenied { url: url.clone() }),
            ("no-basic", PullFailure::NoBasicCredentials { url: url.clone() }),
            (
                "token-401",
                PullFailure::TokenFetch {
                    url: token_url.clone(),
                    status: 401,
                    anonymous: false,
                },
            ),
            (
                "token-403-anon",
                PullFailure::TokenFetch {
                    url: token_url.clone(),
                    status: 403,
                    anonymous: true,
                },
            ),
            (
                "status-401",
                PullFailure::Status {
                    method: "HEAD",
                    url: url.clone(),
                    status: 401,
                },
            ),
            (
                "status-403",
                PullFailure::Status {
                    method: "HEAD",
                    url: url.clone(),
                    status: 403,
                },
            ),
            (
                "status-500",
                PullFailure::Status {
                    method: "GET",
                    url: url.clone(),
                    status: 500,
                },
            ),
            (
                "rate-limited",
                PullFailure::RateLimited {
                    url: url.clone(),
                    message: "You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit".into(),
                },
            ),
            ("dns", PullFailure::Dns { url: url.clone(), host: host.clone() }),
            (
                "refused",
                PullFailure::Refused {
                    url: url.clone(),
                    addr: "10.1.2.3:443".into(),
                    plain_http: false,
                },
            ),
            (
                "refused-http",
                PullFailure::Refused {
                    url: url.replace("https://", "http://"),
                    addr: "10.1.2.3:5000".into(),
                    plain_http: true,
                },
            ),
            (
                "timeout",
                PullFailure::Timeout {
                    url: url.clone(),
                    addr: "203.0.113.9:443".into(),
                    plain_http: false,
                },
            ),
            (
                "tls-unknown-ca",
                PullFailure::Tls {
                    url: url.clone(),
                    detail: "x509: certificate signed by unknown authority".into(),
                },
            ),
            (
                "tls-expired",
                PullFailure::Tls {
                    url: url.clone(),
                    detail: "x509: certificate has expired or is not yet valid".into(),
                },
            ),
            (
                "tls-name",
                PullFailure::Tls {
                    url: url.clone(),
                    detail: format!("x509: certificate is not valid for {host}"),
                },
            ),
            (
                "tls-not-trusted",
                PullFailure::Tls {
                    url: url.clone(),
                    detail: "x509: certificate is not trusted".into(),
                },
            ),
            (
                "platform",
                PullFailure::PlatformMismatch {
                    os: "linux".into(),
                    arch: "arm64".into(),
                    variant: Some("v8".into()),
                },
            ),
            (
                "platform-no-variant",
                PullFailure::PlatformMismatch {
                    os: "linux".into(),
                    arch: "s390x".into(),
                    variant: None,
                },
            ),
            (
                "other",
                PullFailure::Other {
                    detail: format!("failed to decode manifest from {url}: expected value at line 1 column 1"),
                },
            ),
        ]
}

/// What each generated text must classify as.
fn expected(runtime: Runtime, case: &str, ecr: bool) -> (Cause, Option<Detail>, Confidence) {
    use Confidence::{High, Low, Medium};
    let containerd = matches!(runtime, Runtime::Containerd17 | Runtime::Containerd21);
    match case {
        "not-found" => (ImageNotFound, None, High),
        "access-denied" => (RepositoryNotFound, None, Medium),
        "no-basic" => (CredentialsMissing, None, Medium),
        // ECR passwords are 12 h tokens: a rejected one is most likely expired.
        "token-401" if ecr => (CredentialsExpired, None, Low),
        "token-401" => (CredentialsRejected, None, Medium),
        // containerd says 403; CRI-O and Docker only relay the registry's
        // `denied: requested access to the resource is denied`, the same
        // words Docker Hub uses for a missing repository.
        "token-403-anon" if containerd => (AccessDenied, None, Medium),
        "token-403-anon" => (RepositoryNotFound, None, Medium),
        // CRI-O and Docker word a 401 on the manifest as
        // `unauthorized: authentication required`, exactly like a missing
        // credential (the generator uses the same text for both).
        "status-401" if !containerd => (CredentialsMissing, None, Medium),
        "status-401" if ecr => (CredentialsExpired, None, Low),
        "status-401" => (CredentialsRejected, None, Medium),
        "status-403" if !containerd => (RepositoryNotFound, None, Medium),
        "status-403" if ecr => (CredentialsExpired, None, Low),
        "status-403" => (AccessDenied, None, Medium),
        "status-500" | "other" => (Unknown, None, Low),
        "rate-limited" => (RateLimited, None, High),
        "dns" => (RegistryUnreachable, Some(Detail::Dns), High),
        "refused" | "refused-http" => (RegistryUnreachable, Some(Detail::Refused), High),
        "timeout" => (RegistryUnreachable, Some(Detail::Timeout), High),
        "tls-unknown-ca" | "tls-not-trusted" => (TlsError, Some(Detail::UnknownAuthority), High),
        "tls-expired" => (TlsError, Some(Detail::CertificateExpired), High),
        "tls-name" => (TlsError, Some(Detail::NameMismatch), High),
        "platform" | "platform-no-variant" => (PlatformMismatch, None, High),
        other => panic!("no expectation for {other}"),
    }
}

#[test]
fn every_profile_and_failure_classifies() {
    let images = [
        "nginx:9.9",
        "reg.example.com:5000/team/checkout:v2.1.0",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/checkout:v2.1.0",
    ];
    let mut checked = 0;
    for spec in images {
        let image = ImageRef::parse(spec).unwrap();
        let ecr = pullfix::registry::ecr::is_private_host(&image.domain);
        for profile in profiles() {
            for (case, failure) in failures(&image) {
                let text = profile.pull_error(&image, &failure);
                let c = classify_error(&text);
                let want = expected(profile.runtime, case, ecr);
                assert_eq!(
                    (c.cause, c.detail, c.confidence),
                    want,
                    "{case} on {profile:?} for {spec}:\n  text: {text}\n  got: {c:#?}"
                );
                // The envelope is gone and its code kept.
                assert!(!c.error.contains("rpc error"), "{text}");
                assert_eq!(
                    c.grpc_code.is_some(),
                    text.starts_with("rpc error: code = "),
                    "{text}"
                );
                if profile.kubelet == KubeletVersion::V1_27 {
                    assert!(c.grpc_code.is_some(), "{text}");
                }
                // The host, when the text names one, is the registry's
                // (or for a bare token URL, the auth server's).
                if let Some(h) = &c.host {
                    assert!(
                        [image.domain.as_str(), image.api_host(), "auth.docker.io"]
                            .contains(&h.as_str()),
                        "host {h} from {text}"
                    );
                } else {
                    assert!(
                        matches!(profile.runtime, Runtime::Crio | Runtime::Docker)
                            && matches!(case, "platform" | "platform-no-variant" | "rate-limited"),
                        "no host in {case} on {profile:?}: {text}"
                    );
                }
                match case {
                    "rate-limited"
                        if matches!(
                            profile.runtime,
                            Runtime::Containerd17 | Runtime::Containerd21
                        ) =>
                    {
                        assert_eq!(c.http_status, Some(429), "{text}")
                    }
                    "status-500" => assert_eq!(c.http_status, Some(500), "{text}"),
                    "status-401" | "status-403" | "token-401" | "token-403-anon"
                        if matches!(
                            profile.runtime,
                            Runtime::Containerd17 | Runtime::Containerd21
                        ) =>
                    {
                        assert!(matches!(c.http_status, Some(401 | 403)), "{text}")
                    }
                    "dns" | "refused" | "timeout" | "tls-unknown-ca" | "not-found" => {
                        assert_eq!(c.http_status, None, "{text}")
                    }
                    _ => {}
                }
                assert!(!c.backoff_only);
                assert!(!c.signal.is_empty());
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 3 * 12 * 20);
}

#[test]
fn backoff_messages_per_kubelet_version() {
    let image = ImageRef::parse("reg.example.com/team/checkout:v9").unwrap();
    let failure = PullFailure::NotFound {
        url: manifest_url(&image),
    };
    let spec = "reg.example.com/team/checkout:v9";

    // 1.33: the BackOff message carries the last error.
    let p133 = Profile {
        kubelet: KubeletVersion::V1_33,
        runtime: Runtime::Containerd21,
    };
    let err = p133.pull_error(&image, &failure);
    let msg = p133.backoff_message(spec, &err);
    let c = classify_container("ImagePullBackOff", &msg, &[]);
    assert_eq!(c.cause, ImageNotFound, "{c:#?}");
    assert_eq!(c.confidence, Confidence::High);
    assert!(!c.backoff_only);
    assert_eq!(c.grpc_code.as_deref(), Some("NotFound"));
    assert_eq!(c.host.as_deref(), Some("reg.example.com"));
    assert!(c.error.ends_with(": not found"), "{}", c.error);

    // 1.28: only `Back-off pulling image`, no events: the probe decides.
    let p128 = Profile {
        kubelet: KubeletVersion::V1_28,
        runtime: Runtime::Crio,
    };
    let err = p128.pull_error(&image, &failure);
    let msg = p128.backoff_message(spec, &err);
    let c = classify_container("ImagePullBackOff", &msg, &[]);
    assert_eq!(c.cause, Unknown);
    assert_eq!(c.confidence, Confidence::Low);
    assert!(c.backoff_only);
    assert_eq!(c.host.as_deref(), Some("reg.example.com"));
    assert_eq!(c.error, msg);

    // 1.28 with the events still there (newest first, as a real kubelet
    // leaves them): the newest `Failed to pull image` decides.
    let failed = format!("Failed to pull image \"{spec}\": {err}");
    let backoff = format!("Back-off pulling image \"{spec}\"");
    let pulling = format!("Pulling image \"{spec}\"");
    let events = [
        EventText {
            reason: "Failed",
            message: "Error: ImagePullBackOff",
            count: 40,
        },
        EventText {
            reason: "BackOff",
            message: &backoff,
            count: 40,
        },
        EventText {
            reason: "Failed",
            message: "Error: ErrImagePull",
            count: 5,
        },
        EventText {
            reason: "Failed",
            message: &failed,
            count: 5,
        },
        EventText {
            reason: "Pulling",
            message: &pulling,
            count: 5,
        },
    ];
    let c = classify_container("ImagePullBackOff", &msg, &events);
    assert_eq!(c.cause, ImageNotFound, "{c:#?}");
    assert!(!c.backoff_only);
    assert_eq!(c.error, err);

    // Only BackOff events left: still backoff_only.
    let c = classify_container("ImagePullBackOff", &msg, &events[..2]);
    assert!(c.backoff_only);
    assert_eq!(c.cause, Unknown);
}
