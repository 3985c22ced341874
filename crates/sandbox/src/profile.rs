//! Kubelet × runtime message profiles: the exact texts a real node writes
//! into `state.waiting.message` and kubelet events for a failed pull.
//!
//! The simulated kubelet decides *what* happened by really talking to the
//! registry; this module decides *how a given kubelet version and container
//! runtime would word it* (see `shared/notes/pull-errors.md`). Pure code.

use std::fmt;
use std::str::FromStr;

use pullfix::registry::client::PullFailure;
use pullfix::registry::reference::ImageRef;

/// Kubelet versions whose wording differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KubeletVersion {
    /// 1.20 (the lab's real node): worded as 1.27, and no
    /// `FailedToRetrieveImagePullSecret` event (only a log line).
    V1_20,
    /// Before 1.28: every runtime error keeps its `rpc error: code = Unknown desc =` envelope.
    V1_27,
    /// 1.28 to 1.31: `code = Unknown` is stripped; `FailedToRetrieveImagePullSecret` events.
    V1_28,
    /// 1.32 and later: the BackOff message also carries the last error.
    V1_33,
}

/// Container runtimes whose wording differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// 1.6, as the lab's real node words it (Debian's 1.6.20).
    Containerd16,
    Containerd17,
    Containerd21,
    Crio,
    Docker,
}

/// One node's kubelet and runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    pub kubelet: KubeletVersion,
    pub runtime: Runtime,
}

/// The gRPC code a runtime's error carries to the kubelet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Code {
    Unknown,
    NotFound,
    DeadlineExceeded,
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Code::Unknown => "Unknown",
            Code::NotFound => "NotFound",
            Code::DeadlineExceeded => "DeadlineExceeded",
        })
    }
}

impl FromStr for KubeletVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim_start_matches('v') {
            "1.20" => Ok(KubeletVersion::V1_20),
            "1.27" => Ok(KubeletVersion::V1_27),
            "1.28" => Ok(KubeletVersion::V1_28),
            "1.33" => Ok(KubeletVersion::V1_33),
            other => Err(format!(
                "unknown kubelet version `{other}` (expected 1.20, 1.27, 1.28 or 1.33)"
            )),
        }
    }
}

impl FromStr for Runtime {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "containerd1.6" => Ok(Runtime::Containerd16),
            "containerd1.7" => Ok(Runtime::Containerd17),
            "containerd2.1" => Ok(Runtime::Containerd21),
            "crio" | "cri-o" => Ok(Runtime::Crio),
            "docker" => Ok(Runtime::Docker),
            other => Err(format!(
                "unknown runtime `{other}` (expected containerd1.6, containerd1.7, containerd2.1, crio or docker)"
            )),
        }
    }
}

impl KubeletVersion {
    /// `status.nodeInfo.kubeletVersion`.
    pub fn node_info(self) -> &'static str {
        match self {
            KubeletVersion::V1_20 => "v1.20.2",
            KubeletVersion::V1_27 => "v1.27.16",
            KubeletVersion::V1_28 => "v1.28.15",
            KubeletVersion::V1_33 => "v1.33.4",
        }
    }
}

impl Runtime {
    /// `status.nodeInfo.containerRuntimeVersion`.
    pub fn node_info(self) -> &'static str {
        match self {
            Runtime::Containerd16 => "containerd://1.6.20",
            Runtime::Containerd17 => "containerd://1.7.27",
            Runtime::Containerd21 => "containerd://2.1.4",
            Runtime::Crio => "cri-o://1.33.3",
            Runtime::Docker => "docker://24.0.9",
        }
    }
}

/// Docker's short ("familiar") form of a repository name.
fn familiar(image: &ImageRef) -> String {
    if image.is_docker_hub() {
        image
            .repository
            .strip_prefix("library/")
            .unwrap_or(&image.repository)
            .to_string()
    } else {
        format!("{}/{}", image.domain, image.repository)
    }
}

fn scheme(failure: &PullFailure) -> &'static str {
    match failure {
        PullFailure::Refused {
            plain_http: true, ..
        }
        | PullFailure::Timeout {
            plain_http: true, ..
        } => "http",
        _ => "https",
    }
}

impl Profile {
    /// The message of `ErrImagePull` (the runtime's error as the kubelet
    /// relays it) and of the `Failed to pull image "..."` event's tail.
    pub fn pull_error(&self, image: &ImageRef, failure: &PullFailure) -> String {
        let (code, text) = self.runtime_error(image, failure);
        match (self.kubelet, code) {
            (KubeletVersion::V1_20 | KubeletVersion::V1_27, _)
            | (_, Code::NotFound | Code::DeadlineExceeded) => {
                format!("rpc error: code = {code} desc = {text}")
            }
            (_, Code::Unknown) => text,
        }
    }

    /// The `ImagePullBackOff` waiting message.
    pub fn backoff_message(&self, spec_image: &str, last_error: &str) -> String {
        if self.kubelet >= KubeletVersion::V1_33 {
            format!("Back-off pulling image \"{spec_image}\": ErrImagePull: {last_error}")
        } else {
            format!("Back-off pulling image \"{spec_image}\"")
        }
    }

    /// Whether this kubelet emits `FailedToRetrieveImagePullSecret`.
    pub fn reports_missing_pull_secrets(&self) -> bool {
        self.kubelet >= KubeletVersion::V1_28
    }

    fn runtime_error(&self, image: &ImageRef, failure: &PullFailure) -> (Code, String) {
        match self.runtime {
            Runtime::Containerd16 => containerd16(self, image, failure),
            Runtime::Containerd17 | Runtime::Containerd21 => self.containerd(image, failure),
            Runtime::Crio => crio(image, failure),
            Runtime::Docker => docker(image, failure),
        }
    }

    fn containerd(&self, image: &ImageRef, failure: &PullFailure) -> (Code, String) {
        let r = image.to_string();
        let outer = format!("failed to pull and unpack image \"{r}\"");
        let resolve = match self.runtime {
            Runtime::Containerd16 | Runtime::Containerd17 => {
                format!("{outer}: failed to resolve reference \"{r}\"")
            }
            _ => format!("{outer}: failed to resolve image"),
        };
        let denied = "pull access denied, repository does not exist or may require authorization";
        match failure {
            PullFailure::NotFound { .. } => (Code::NotFound, format!("{resolve}: {r}: not found")),
            PullFailure::AccessDenied { .. } => (
                Code::Unknown,
                format!(
                    "{resolve}: {denied}: server message: insufficient_scope: authorization failed"
                ),
            ),
            PullFailure::NoBasicCredentials { .. } => (
                Code::Unknown,
                format!("{resolve}: {denied}: authorization failed: no basic auth credentials"),
            ),
            PullFailure::TokenFetch {
                url,
                status,
                anonymous,
            } => (
                Code::Unknown,
                format!(
                    "{resolve}: failed to authorize: failed to fetch {} token: unexpected status from GET request to {url}: {}",
                    if *anonymous { "anonymous" } else { "oauth" },
                    status_text(*status)
                ),
            ),
            PullFailure::Status {
                method,
                url,
                status,
            } => (
                Code::Unknown,
                format!(
                    "{resolve}: unexpected status from {method} request to {url}: {}",
                    status_text(*status)
                ),
            ),
            PullFailure::RateLimited { url, message, .. } => (
                Code::Unknown,
                format!(
                    "{outer}: failed to copy: httpReadSeeker: failed open: unexpected status code {url}: 429 Too Many Requests - Server message: toomanyrequests: {message}"
                ),
            ),
            PullFailure::Dns { url, host } => (
                Code::Unknown,
                format!(
                    "{resolve}: failed to do request: Head \"{url}\": dial tcp: lookup {host} on 127.0.0.53:53: no such host"
                ),
            ),
            PullFailure::Refused { url, addr, .. } => (
                Code::Unknown,
                format!(
                    "{resolve}: failed to do request: Head \"{url}\": dial tcp {addr}: connect: connection refused"
                ),
            ),
            PullFailure::Timeout { url, addr, .. } => (
                Code::DeadlineExceeded,
                format!(
                    "{resolve}: failed to do request: Head \"{url}\": dial tcp {addr}: i/o timeout"
                ),
            ),
            PullFailure::Tls { url, detail } => (
                Code::Unknown,
                format!(
                    "{resolve}: failed to do request: Head \"{url}\": tls: failed to verify certificate: {detail}"
                ),
            ),
            PullFailure::PlatformMismatch { .. } => (
                Code::NotFound,
                format!("{outer}: no match for platform in manifest: not found"),
            ),
            PullFailure::Other { detail } => (Code::Unknown, format!("{resolve}: {detail}")),
        }
    }
}

/// Containerd 1.6's words, as the lab's real node wrote them
/// (`tests/fixtures/real/kubelet-v1.20.2/containerd-1.6.20`), where they
/// differ from 1.7's: a registry's status is `pulling from host H failed
/// with status code [manifests REF]` with no URL, a token endpoint's
/// `unexpected status:` has none either, a silent server times the TLS
/// handshake out, and Go 1.19's x509 errors carry no `tls: failed to
/// verify certificate:`. The rest is worded as 1.7 words it.
fn containerd16(profile: &Profile, image: &ImageRef, failure: &PullFailure) -> (Code, String) {
    let r = image.to_string();
    let resolve =
        format!("failed to pull and unpack image \"{r}\": failed to resolve reference \"{r}\"");
    let status = |url: &str, status: u16| {
        format!(
            "{resolve}: pulling from host {} failed with status code [manifests {}]: {}",
            url_host(url).unwrap_or_else(|| image.api_host().to_string()),
            image.manifest_reference(),
            status_text(status)
        )
    };
    match failure {
        PullFailure::NoBasicCredentials { url } => (Code::Unknown, status(url, 401)),
        PullFailure::Status { url, status: s, .. } => (Code::Unknown, status(url, *s)),
        PullFailure::RateLimited { url, .. } => (Code::Unknown, status(url, 429)),
        PullFailure::TokenFetch {
            status: s,
            anonymous,
            ..
        } => (
            Code::Unknown,
            format!(
                "{resolve}: failed to authorize: failed to fetch {} token: unexpected status: {}",
                if *anonymous { "anonymous" } else { "oauth" },
                status_text(*s)
            ),
        ),
        // A server that accepts and never answers: the TLS handshake is what
        // times out (10 s, net/http's TLSHandshakeTimeout).
        PullFailure::Timeout {
            url,
            plain_http: false,
            ..
        } => (
            Code::Unknown,
            format!(
                "{resolve}: failed to do request: Head \"{url}\": net/http: TLS handshake timeout"
            ),
        ),
        PullFailure::Tls { url, detail } => (
            Code::Unknown,
            format!("{resolve}: failed to do request: Head \"{url}\": {detail}"),
        ),
        _ => profile.containerd(image, failure),
    }
}

/// `HOST[:PORT]` of an `https://HOST/…` URL.
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    Some(rest.split(['/', '?']).next()?.to_string())
}

fn crio(image: &ImageRef, failure: &PullFailure) -> (Code, String) {
    let src = format!("initializing source docker://{image}");
    let reading = format!(
        "{src}: reading manifest {} in {}/{}",
        image.manifest_reference(),
        image.domain,
        image.repository
    );
    let host = image.api_host();
    let ping = format!(
        "{src}: pinging container registry {host}: Get \"{}://{host}/v2/\"",
        scheme(failure)
    );
    let text = match failure {
        PullFailure::NotFound { .. } => format!("{reading}: manifest unknown"),
        PullFailure::AccessDenied { .. } => {
            format!("{reading}: requested access to the resource is denied")
        }
        PullFailure::NoBasicCredentials { .. } => {
            format!("{reading}: unauthorized: authentication required")
        }
        PullFailure::TokenFetch { status, .. } if *status == 401 => format!(
            "{src}: unable to retrieve auth token: invalid username/password: unauthorized: authentication required"
        ),
        PullFailure::TokenFetch { status, .. } | PullFailure::Status { status, .. } => {
            match *status {
                401 => format!("{reading}: unauthorized: authentication required"),
                403 => format!("{reading}: denied: requested access to the resource is denied"),
                s => format!(
                    "{reading}: received unexpected HTTP status: {}",
                    status_text(s)
                ),
            }
        }
        PullFailure::RateLimited { message, .. } => {
            format!("{reading}: toomanyrequests: {message}")
        }
        PullFailure::Dns { host, .. } => {
            format!("{ping}: dial tcp: lookup {host} on 127.0.0.53:53: no such host")
        }
        PullFailure::Refused { addr, .. } => {
            format!("{ping}: dial tcp {addr}: connect: connection refused")
        }
        PullFailure::Timeout { addr, .. } => format!("{ping}: dial tcp {addr}: i/o timeout"),
        PullFailure::Tls { detail, .. } => {
            format!("{ping}: tls: failed to verify certificate: {detail}")
        }
        PullFailure::PlatformMismatch { os, arch, variant } => format!(
            "choosing image instance: no image found in manifest list for architecture \"{arch}\", variant \"{}\", OS \"{os}\"",
            variant.as_deref().unwrap_or("")
        ),
        PullFailure::Other { detail } => format!("{src}: {detail}"),
    };
    (Code::Unknown, text)
}

fn docker(image: &ImageRef, failure: &PullFailure) -> (Code, String) {
    let daemon = "Error response from daemon";
    let name = familiar(image);
    let host = image.api_host();
    let ping = format!("{daemon}: Get \"{}://{host}/v2/\"", scheme(failure));
    let text = match failure {
        PullFailure::NotFound { .. } => format!(
            "{daemon}: manifest for {name}:{} not found: manifest unknown: manifest unknown",
            image.manifest_reference()
        ),
        PullFailure::AccessDenied { .. } => format!(
            "{daemon}: pull access denied for {name}, repository does not exist or may require 'docker login': denied: requested access to the resource is denied"
        ),
        PullFailure::NoBasicCredentials { url } => {
            format!("{daemon}: Get \"{url}\": no basic auth credentials")
        }
        PullFailure::TokenFetch { status, .. } if *status == 401 => {
            format!("{ping}: unauthorized: incorrect username or password")
        }
        PullFailure::TokenFetch { url, status, .. } | PullFailure::Status { url, status, .. } => {
            match *status {
                401 => format!("{daemon}: Head \"{url}\": unauthorized: authentication required"),
                403 => format!(
                    "{daemon}: Head \"{url}\": denied: requested access to the resource is denied"
                ),
                s => format!(
                    "{daemon}: Head \"{url}\": received unexpected HTTP status: {}",
                    status_text(s)
                ),
            }
        }
        PullFailure::RateLimited { message, .. } => format!("{daemon}: toomanyrequests: {message}"),
        PullFailure::Dns { host, .. } => {
            format!("{ping}: dial tcp: lookup {host} on 127.0.0.53:53: no such host")
        }
        PullFailure::Refused { addr, .. } => {
            format!("{ping}: dial tcp {addr}: connect: connection refused")
        }
        PullFailure::Timeout { addr, .. } => format!("{ping}: dial tcp {addr}: i/o timeout"),
        PullFailure::Tls { detail, .. } => {
            format!("{ping}: tls: failed to verify certificate: {detail}")
        }
        PullFailure::PlatformMismatch { os, arch, variant } => format!(
            "{daemon}: no matching manifest for {os}/{arch}{} in the manifest list entries",
            variant
                .as_deref()
                .map(|v| format!("/{v}"))
                .unwrap_or_default()
        ),
        PullFailure::Other { detail } => format!("{daemon}: {detail}"),
    };
    (Code::Unknown, text)
}

/// `401 Unauthorized`, as Go's `http.Response.Status` prints it.
pub fn status_text(status: u16) -> String {
    let reason = match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    };
    format!("{status} {reason}").trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(k: KubeletVersion, r: Runtime) -> Profile {
        Profile {
            kubelet: k,
            runtime: r,
        }
    }

    fn nginx99() -> ImageRef {
        ImageRef::parse("nginx:9.9").unwrap()
    }

    /// The kubelet 1.20 + containerd 1.6 profile says what the lab's real
    /// node said (`tests/fixtures/real/kubelet-v1.20.2/containerd-1.6.20`,
    /// recorded by the `real_node` integration tests), byte for byte once
    /// the recorded names are put back: the failure the simulated kubelet
    /// would see for each scenario, worded by the profile, against the
    /// real `Failed to pull image` text and the BackOff message.
    #[test]
    fn kubelet_1_20_containerd_1_6_matches_the_real_node() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/real/kubelet-v1.20.2/containerd-1.6.20");
        let reg = "127.0.0.1:5000";
        let names = [
            ("{registry}", reg),
            ("{untrusted_registry}", "127.0.0.1:5007"),
            ("{anon_registry}", "127.0.0.1:5003"),
            ("{ecr_registry}", "127.0.0.1:5006"),
            ("{hub_stub}", "127.0.0.1:5004"),
            ("{token_registry}", "127.0.0.1:5001"),
        ];
        let url = |host: &str, image: &ImageRef| {
            format!(
                "https://{host}/v2/{}/manifests/{}",
                image.repository,
                image.manifest_reference()
            )
        };
        let profile = p(KubeletVersion::V1_20, Runtime::Containerd16);
        let mut compared = 0;
        for (scenario, failure) in [
            ("wrong-tag", "not-found"),
            ("init-container", "not-found"),
            ("rotated-password", "401"),
            ("no-pull-secrets", "no-basic"),
            ("secret-missing", "no-basic"),
            ("access-denied", "403"),
            ("rate-limited", "429"),
            ("tls-unknown-ca", "tls"),
            ("unreachable-dns", "dns"),
            ("unreachable-refused", "refused"),
            ("unreachable-timeout", "timeout"),
            ("platform-mismatch", "platform"),
            ("token-anonymous", "insufficient-scope"),
            ("token-wrong-password", "oauth-401"),
        ] {
            let path = dir.join(format!("{scenario}.json"));
            let Ok(text) = std::fs::read_to_string(&path) else {
                panic!("{} is missing", path.display());
            };
            let mut text = text;
            for (k, v) in names {
                text = text.replace(k, v);
            }
            let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
            let real = doc["pull_error"].as_str().unwrap();
            // The spec's image: between the first pair of quotes of the
            // event that failed ("Failed to pull image \"X\": ...").
            let spec_image = doc["events"]
                .as_array()
                .unwrap()
                .iter()
                .find_map(|e| {
                    e["message"]
                        .as_str()?
                        .strip_prefix("Failed to pull image \"")?
                        .split_once('"')
                        .map(|(i, _)| i.to_string())
                })
                .unwrap();
            let image = ImageRef::parse(&spec_image).unwrap();
            // Where the real containerd connected: the mirror's address for
            // the lab's aliased names, with `?ns=` naming the original.
            let endpoint = |addr: &str| {
                format!(
                    "https://{addr}/v2/{}/manifests/{}?ns={}",
                    image.repository,
                    image.manifest_reference(),
                    image.domain
                )
            };
            let hub = "127.0.0.1:5004";
            let f = match failure {
                "not-found" => PullFailure::NotFound {
                    url: url(reg, &image),
                },
                "401" | "403" => PullFailure::Status {
                    method: "HEAD",
                    url: url(if failure == "401" { reg } else { hub }, &image),
                    status: failure.parse().unwrap(),
                },
                "no-basic" => PullFailure::NoBasicCredentials {
                    url: url(reg, &image),
                },
                "insufficient-scope" => PullFailure::AccessDenied {
                    url: url("127.0.0.1:5001", &image),
                },
                "oauth-401" => PullFailure::TokenFetch {
                    url: "https://127.0.0.1:5002/token".into(),
                    status: 401,
                    anonymous: false,
                },
                "429" => PullFailure::RateLimited {
                    url: url(hub, &image),
                    message: "x".into(),
                },
                "tls" => PullFailure::Tls {
                    url: url("127.0.0.1:5007", &image),
                    detail: "x509: certificate signed by unknown authority".into(),
                },
                "dns" => PullFailure::Dns {
                    url: url(&image.domain, &image),
                    host: image.domain.clone(),
                },
                "refused" => {
                    let addr = real
                        .split("dial tcp ")
                        .nth(1)
                        .unwrap()
                        .split(':')
                        .take(2)
                        .collect::<Vec<_>>()
                        .join(":");
                    PullFailure::Refused {
                        url: endpoint(&addr),
                        addr,
                        plain_http: false,
                    }
                }
                "timeout" => {
                    let addr = real
                        .split("Head \"https://")
                        .nth(1)
                        .unwrap()
                        .split('/')
                        .next()
                        .unwrap()
                        .to_string();
                    PullFailure::Timeout {
                        url: endpoint(&addr),
                        addr,
                        plain_http: false,
                    }
                }
                _ => PullFailure::PlatformMismatch {
                    os: "linux".into(),
                    arch: "amd64".into(),
                    variant: None,
                },
            };
            let ours = profile.pull_error(&image, &f);
            // The resolver is the machine's own.
            let real = match real.split_once(" on ") {
                Some((a, b)) if real.contains("no such host") => {
                    format!(
                        "{a} on 127.0.0.53:53{}",
                        &b[b.find(": no such host").unwrap()..]
                    )
                }
                _ => real.to_string(),
            };
            assert_eq!(ours, real, "{scenario}");
            assert_eq!(
                profile.backoff_message(&spec_image, &ours),
                format!("Back-off pulling image \"{spec_image}\""),
                "{scenario}"
            );
            compared += 1;
        }
        assert_eq!(compared, 14);
        assert!(!p(KubeletVersion::V1_20, Runtime::Containerd16).reports_missing_pull_secrets());
    }

    fn not_found() -> PullFailure {
        PullFailure::NotFound {
            url: "https://registry-1.docker.io/v2/library/nginx/manifests/9.9".into(),
        }
    }

    #[test]
    fn envelope_by_kubelet_version() {
        let denied = PullFailure::AccessDenied { url: String::new() };
        let old = p(KubeletVersion::V1_27, Runtime::Containerd17).pull_error(&nginx99(), &denied);
        assert!(old.starts_with("rpc error: code = Unknown desc = failed to pull and unpack image \"docker.io/library/nginx:9.9\": failed to resolve reference"), "{old}");
        let new = p(KubeletVersion::V1_28, Runtime::Containerd17).pull_error(&nginx99(), &denied);
        assert!(new.starts_with("failed to pull and unpack image"), "{new}");
        // NotFound keeps its envelope on every version.
        let nf =
            p(KubeletVersion::V1_33, Runtime::Containerd21).pull_error(&nginx99(), &not_found());
        assert_eq!(
            nf,
            "rpc error: code = NotFound desc = failed to pull and unpack image \"docker.io/library/nginx:9.9\": failed to resolve image: docker.io/library/nginx:9.9: not found"
        );
    }

    #[test]
    fn runtime_wordings_for_a_missing_tag() {
        let crio = p(KubeletVersion::V1_28, Runtime::Crio).pull_error(&nginx99(), &not_found());
        assert_eq!(
            crio,
            "initializing source docker://docker.io/library/nginx:9.9: reading manifest 9.9 in docker.io/library/nginx: manifest unknown"
        );
        let docker = p(KubeletVersion::V1_27, Runtime::Docker).pull_error(&nginx99(), &not_found());
        assert_eq!(
            docker,
            "rpc error: code = Unknown desc = Error response from daemon: manifest for nginx:9.9 not found: manifest unknown: manifest unknown"
        );
    }

    #[test]
    fn backoff_message_carries_cause_from_1_32() {
        let old = p(KubeletVersion::V1_28, Runtime::Containerd17).backoff_message("nginx:9.9", "x");
        assert_eq!(old, "Back-off pulling image \"nginx:9.9\"");
        let new = p(KubeletVersion::V1_33, Runtime::Containerd21).backoff_message("nginx:9.9", "x");
        assert_eq!(new, "Back-off pulling image \"nginx:9.9\": ErrImagePull: x");
    }

    #[test]
    fn platform_mismatch_wordings() {
        let f = PullFailure::PlatformMismatch {
            os: "linux".into(),
            arch: "arm64".into(),
            variant: Some("v8".into()),
        };
        let img = ImageRef::parse("reg.example.com/team/multi:1.0").unwrap();
        assert!(
            p(KubeletVersion::V1_28, Runtime::Docker)
                .pull_error(&img, &f)
                .ends_with("no matching manifest for linux/arm64/v8 in the manifest list entries")
        );
        assert!(
            p(KubeletVersion::V1_28, Runtime::Containerd17)
                .pull_error(&img, &f)
                .contains("no match for platform in manifest: not found")
        );
    }
}
