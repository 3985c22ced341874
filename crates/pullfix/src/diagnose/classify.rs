//! Classifying what the cluster says about a failed pull (the waiting
//! reason and message, the kubelet's events) into a [`Cause`], before any
//! registry probe.
//!
//! Pure code: no I/O. The rules match *stable* parts of the texts (HTTP
//! status codes, registry error codes such as `manifest unknown` or
//! `insufficient_scope`, Go's `net` and `crypto/x509` phrases), never whole
//! sentences, because the wording differs per kubelet version and runtime
//! (see `shared/notes/pull-errors.md`, the sandbox's `profile` module) and real clusters
//! show variants nobody listed. All matching is ASCII case-insensitive.
//!
//! The rules are one ordered table, `TEXT_RULES` (the first that matches
//! decides; its id is kept in [`Classified::rule`] so the decision's rules in
//! `decide` can tell ambiguous texts apart). The order matters; it is,
//! from first to last:
//!
//! 1. the reference itself (`invalid reference format`), pull policy Never,
//!    platform selection, and a pull secret the kubelet cannot decode (Go's
//!    `illegal base64 data`, `json: cannot unmarshal`): these end a pull
//!    before any request;
//! 2. the network (DNS, timeouts, refused and reset connections) and TLS:
//!    they explain why no registry answer exists, even when the text also
//!    names the auth step they interrupted (`failed to fetch oauth token:
//!    ... no such host`);
//! 3. rate limiting (429) and an explicitly expired token;
//! 4. explicit "repository unknown" and "manifest unknown" answers: when one
//!    credential was rejected and another reached a 404, the 404 is what
//!    matters;
//! 5. the auth family: missing credentials, rejected credentials, the
//!    ambiguous "pull access denied" family, then bare 401 / 403 statuses;
//! 6. weak leftovers (a bare `not found`, a 404), then `unknown`.
//!
//! What text cannot decide is left to the decision
//! ([`crate::diagnose::decide`]), which knows the pull secrets and the
//! registry's answers: see [`Classified::ambiguous_with`] and
//! `docs/causes.md`.

use crate::diagnose::{Cause, Confidence, Detail};
use Confidence::{High, Low, Medium};

/// One kubelet event about the container, newest first as the caller gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventText<'a> {
    pub reason: &'a str,
    pub message: &'a str,
    pub count: i32,
}

/// What the cluster's evidence says, before any registry probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    pub cause: Cause,
    pub detail: Option<Detail>,
    pub confidence: Confidence,
    /// HTTP status the text mentions (401, 403, 404, 429...), if any.
    pub http_status: Option<u16>,
    /// The registry host the text mentions (from a URL or a reference), if any.
    ///
    /// Preference: the host of the first registry API URL (`https://HOST/v2/...`),
    /// else the domain of the first image reference (Docker normalization, so a
    /// Docker Hub image gives `docker.io` while a Docker Hub API URL gives
    /// `registry-1.docker.io`), else the host of a token endpoint URL (which
    /// may be a separate auth server such as `auth.docker.io`). Documentation
    /// links in registry messages are ignored.
    pub host: Option<String>,
    /// The runtime error text the cause was read from (the part after `Failed to pull image "...": `, or the waiting message), trimmed of the `rpc error: code = X desc = ` envelope.
    pub error: String,
    /// The gRPC code when the envelope was present (Unknown, NotFound, DeadlineExceeded...).
    pub grpc_code: Option<String>,
    /// Short human label of the signal that decided (e.g. "HTTP 401 on the manifest", "no basic auth credentials", "x509: certificate signed by unknown authority").
    pub signal: String,
    /// The id of the text rule that matched (`TEXT_RULES`), `waiting-reason`
    /// when the waiting reason decided, `unrecognized`, `backoff-only` or
    /// `no-text`: the decision's rules tell ambiguous texts apart by it.
    pub rule: &'static str,
    /// True when only `Back-off pulling image "..."` (no cause) was available: events expired; the registry probe must decide.
    pub backoff_only: bool,
}

impl Classified {
    /// The causes the same text is also consistent with; the caller tells
    /// them apart with the pull secrets, the token's age or a registry probe.
    /// Empty when the text is unambiguous.
    #[cfg(test)]
    pub(crate) fn ambiguous_with(&self) -> &'static [Cause] {
        match self.cause {
            // The registry cannot tell "missing" from "not yours" (notes).
            Cause::RepositoryNotFound => &[
                Cause::CredentialsMissing,
                Cause::WrongRegistry,
                Cause::AccessDenied,
            ],
            // `unauthorized: authentication required` is also what a
            // Basic-auth registry answers to a wrong password; and a
            // credential for another host never reaches this one.
            Cause::CredentialsMissing => &[Cause::CredentialsRejected, Cause::WrongRegistry],
            // A bare 401 does not say whether a credential was sent at all:
            // containerd 1.6 writes the same `401 Unauthorized` for none and
            // for a wrong one (seen on the lab's real node).
            Cause::CredentialsRejected if self.rule == "auth-status" => {
                &[Cause::CredentialsExpired, Cause::CredentialsMissing]
            }
            // A rejected password and an expired token give the same 401.
            Cause::CredentialsRejected => &[Cause::CredentialsExpired],
            // Only the ECR guess (low confidence) is ambiguous; on a node
            // whose credential provider failed, nothing was sent at all.
            Cause::CredentialsExpired if self.confidence == Confidence::Low => &[
                Cause::AccessDenied,
                Cause::CredentialsRejected,
                Cause::CredentialsMissing,
            ],
            // GHCR's `denied: denied` often means a stale token; ECR's bare
            // 403 is usually an expired one; a 403 to an anonymous token
            // request (Artifact Registry) means no credential was sent.
            Cause::AccessDenied => &[
                Cause::CredentialsMissing,
                Cause::CredentialsExpired,
                Cause::CredentialsRejected,
            ],
            // The tag may exist in another registry the image should point at.
            Cause::ImageNotFound => &[Cause::WrongRegistry],
            _ => &[],
        }
    }
}

/// The waiting reasons of an image-pull failure.
pub(crate) const PULL_FAILURE_REASONS: [&str; 7] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "ImageInspectError",
    "RegistryUnavailable",
    "SignatureValidationFailed",
];

/// Is this waiting reason an image-pull failure? (ErrImagePull, ImagePullBackOff, InvalidImageName, ErrImageNeverPull, ImageInspectError, RegistryUnavailable, SignatureValidationFailed)
///
/// kubectl's display form with an `Init:` prefix is accepted too.
pub fn is_pull_failure_reason(reason: &str) -> bool {
    let reason = reason.trim();
    let reason = reason.strip_prefix("Init:").unwrap_or(reason);
    PULL_FAILURE_REASONS.contains(&reason)
}

/// Classifies one runtime error text (what follows `Failed to pull image "X": `, or an ErrImagePull message).
pub fn classify_error(text: &str) -> Classified {
    let (error, grpc_code) = strip_envelope(text);
    let lower = error.to_ascii_lowercase();
    let http_status = extract_status(&lower);
    let host = extract_host(&error);
    let ecr = host
        .as_deref()
        .is_some_and(crate::registry::ecr::is_private_host);
    let t = Text {
        lower: &lower,
        original: &error,
        grpc: grpc_code.as_deref(),
        status: http_status,
        ecr,
    };
    let (rule, v) = decide(&t);
    Classified {
        cause: v.cause,
        detail: v.detail,
        confidence: v.confidence,
        http_status,
        host,
        error,
        grpc_code,
        signal: v.signal,
        rule,
        backoff_only: false,
    }
}

/// Classifies a container from its waiting reason and message plus its kubelet events (may be empty: events expire after 1 h).
/// Uses, in order of preference: the InvalidImageName / ErrImageNeverPull reasons; an ErrImagePull message; a 1.32+ BackOff message carrying `: ErrImagePull: <err>`; the newest `Failed to pull image` event; then falls back to backoff_only with Cause::Unknown and Confidence::Low.
///
/// Other pull-failure reasons (`ImageInspectError`, `RegistryUnavailable`,
/// `SignatureValidationFailed`) have their message classified after the
/// events. The host falls back to the image named by the message or events
/// when the runtime's text names none.
pub fn classify_container(reason: &str, message: &str, events: &[EventText<'_>]) -> Classified {
    let reason = reason.trim();
    let reason = reason.strip_prefix("Init:").unwrap_or(reason);
    let outer_host = || {
        spec_image_host(message).or_else(|| events.iter().find_map(|e| spec_image_host(e.message)))
    };
    let finish = |mut c: Classified| {
        if c.host.is_none() {
            c.host = outer_host();
        }
        c
    };

    let forced = match reason {
        "InvalidImageName" => Some((Cause::InvalidImageName, "InspectFailed")),
        "ErrImageNeverPull" => Some((Cause::NeverPull, "ErrImageNeverPull")),
        _ => None,
    };
    if let Some((cause, event_reason)) = forced {
        let text = if message.trim().is_empty() {
            events
                .iter()
                .find(|e| e.reason == event_reason)
                .map_or("", |e| e.message)
        } else {
            message
        };
        let mut c = classify_error(text);
        if c.cause != cause {
            c.cause = cause;
            c.detail = None;
            c.signal = format!("waiting reason {reason}");
            c.rule = "waiting-reason";
        }
        c.confidence = Confidence::High;
        return finish(c);
    }

    if reason == "ErrImagePull" && !message.trim().is_empty() && !is_backoff_text(message) {
        return finish(classify_error(message));
    }
    if let Some(i) = message.find(": ErrImagePull: ") {
        return finish(classify_error(&message[i + ": ErrImagePull: ".len()..]));
    }
    for e in events {
        if let Some(tail) = failed_to_pull_tail(e.message) {
            return finish(classify_error(tail));
        }
        if matches!(e.reason, "InspectFailed" | "ErrImageNeverPull") && !e.message.is_empty() {
            return finish(classify_error(e.message));
        }
    }
    if !message.trim().is_empty() && !is_backoff_text(message) {
        return finish(classify_error(message));
    }

    let backoff_only = reason == "ImagePullBackOff"
        || is_backoff_text(message)
        || events
            .iter()
            .any(|e| e.reason == "BackOff" || is_backoff_text(e.message));
    let (error, grpc_code) = strip_envelope(message);
    Classified {
        cause: Cause::Unknown,
        detail: None,
        confidence: Confidence::Low,
        http_status: None,
        host: outer_host(),
        error,
        grpc_code,
        signal: if backoff_only {
            "only `Back-off pulling image` is left (events expired): probe the registry".into()
        } else {
            "no pull error text available".into()
        },
        rule: if backoff_only {
            "backoff-only"
        } else {
            "no-text"
        },
        backoff_only,
    }
}

// ---------------------------------------------------------------------------
// The decision.

struct Verdict {
    cause: Cause,
    detail: Option<Detail>,
    confidence: Confidence,
    signal: String,
}

fn verdict(
    cause: Cause,
    detail: Option<Detail>,
    confidence: Confidence,
    signal: impl Into<String>,
) -> Verdict {
    Verdict {
        cause,
        detail,
        confidence,
        signal: signal.into(),
    }
}

/// The first needle found in `hay`.
fn find_any<'n>(hay: &str, needles: &[&'n str]) -> Option<&'n str> {
    needles.iter().copied().find(|n| hay.contains(n))
}

/// Where the status was seen, for the signal label.
fn status_where(lower: &str) -> &'static str {
    if lower.contains("/manifests/") || lower.contains("[manifests ") {
        " on the manifest"
    } else if lower.contains("token") {
        " from the token endpoint"
    } else {
        ""
    }
}

/// What a text rule reads: the error (lowercased and as written), the gRPC
/// code, the HTTP status, whether the host is a private ECR registry.
struct Text<'a> {
    lower: &'a str,
    original: &'a str,
    grpc: Option<&'a str>,
    status: Option<u16>,
    ecr: bool,
}

/// One rule of the text classifier: its id (kept in [`Classified::rule`])
/// and the test that reads the text.
struct TextRule {
    id: &'static str,
    test: fn(&Text<'_>) -> Option<Verdict>,
}

/// The text rules, in the order of the module doc: the first that matches decides.
const TEXT_RULES: &[TextRule] = &[
    // 1. The reference, the pull policy, the platform.
    TextRule {
        id: "invalid-reference",
        test: |t| reference_texts(t.lower),
    },
    TextRule {
        id: "never-pull",
        test: |t| never_pull_text(t.lower),
    },
    TextRule {
        id: "platform",
        test: |t| platform_texts(t.lower),
    },
    TextRule {
        id: "secret-undecodable",
        test: |t| secret_undecodable_texts(t.lower, t.grpc),
    },
    TextRule {
        id: "layer-corrupt",
        test: |t| layer_corrupt_texts(t.lower),
    },
    // 2. The network and TLS: first a download cut off after the registry
    //    answered, then the failures to reach it at all.
    TextRule {
        id: "interrupted",
        test: |t| interrupted_texts(t.lower),
    },
    TextRule {
        id: "dns",
        test: |t| dns_texts(t.lower),
    },
    TextRule {
        id: "timeout",
        test: |t| timeout_signals(t.lower, t.grpc),
    },
    TextRule {
        id: "refused",
        test: |t| refused_texts(t.lower),
    },
    TextRule {
        id: "tls",
        test: |t| tls_texts(t.lower),
    },
    TextRule {
        id: "eof",
        test: |t| eof_texts(t.lower),
    },
    // 3. Rate limits; an explicitly expired token.
    TextRule {
        id: "rate-limit",
        test: |t| rate_limit_signals(t.lower, t.status),
    },
    TextRule {
        id: "token-expired",
        test: |t| expired_token_texts(t.lower),
    },
    // 4. Explicit answers: repository unknown, manifest unknown.
    TextRule {
        id: "repository-unknown",
        test: |t| repository_unknown_texts(t.lower, t.original),
    },
    TextRule {
        id: "manifest-unknown",
        test: |t| manifest_unknown_signals(t.lower, t.original, t.grpc),
    },
    // 5. Authentication and authorization.
    TextRule {
        id: "no-basic-auth",
        test: |t| no_basic_auth_text(t.lower),
    },
    TextRule {
        id: "rejected-credential",
        test: |t| rejected_credential_texts(t.lower, t.ecr),
    },
    TextRule {
        id: "anonymous-token-status",
        test: |t| anonymous_token_status(t.lower, t.status),
    },
    TextRule {
        id: "oauth-token-status",
        test: |t| oauth_token_status(t.lower, t.status, t.ecr),
    },
    TextRule {
        id: "anonymous-refused",
        test: |t| anonymous_refused_texts(t.lower),
    },
    TextRule {
        id: "pull-access-denied",
        test: |t| pull_access_denied_texts(t.lower),
    },
    TextRule {
        id: "authentication-required",
        test: |t| authentication_required_text(t.lower),
    },
    TextRule {
        id: "auth-status",
        test: |t| auth_status(t.lower, t.status, t.ecr),
    },
    TextRule {
        id: "denied",
        test: |t| denied_texts(t.lower, t.ecr),
    },
    TextRule {
        id: "unauthorized",
        test: |t| unauthorized_text(t.lower, t.ecr),
    },
    // 6. Weak leftovers.
    TextRule {
        id: "not-found",
        test: |t| weak_not_found(t.lower, t.status),
    },
    TextRule {
        id: "server-error",
        test: |t| server_error_status(t.status),
    },
];

/// The first text rule that matches, with its id; `unrecognized` when none does.
fn decide(t: &Text<'_>) -> (&'static str, Verdict) {
    TEXT_RULES
        .iter()
        .find_map(|r| (r.test)(t).map(|v| (r.id, v)))
        .unwrap_or_else(|| {
            (
                "unrecognized",
                verdict(Cause::Unknown, None, Low, "unrecognized runtime error"),
            )
        })
}

/// An auth failure on an ECR host: read as an expired token, with low confidence.
fn ecr_expired_guess(what: &str) -> Verdict {
    verdict(
        Cause::CredentialsExpired,
        None,
        Low,
        format!("{what} from ECR (an expired token looks like this; check the token's age)"),
    )
}

// 1. The reference, the pull policy, the platform.

/// The reference cannot be parsed (`invalid reference format`...).
fn reference_texts(lower: &str) -> Option<Verdict> {
    let n = find_any(
        lower,
        &[
            "invalid reference format",
            "couldn't parse image name",
            "invalid repository name",
            "repository name must not be more than",
        ],
    )?;
    Some(verdict(Cause::InvalidImageName, None, High, n))
}

/// The kubelet could not decode one of the pod's pull secrets: Go's JSON
/// or base64 decoder's own words, with no runtime (gRPC) envelope, since the
/// pull fails in the kubelet before the runtime is asked. No credential is
/// sent for any image of the pod.
fn secret_undecodable_texts(lower: &str, grpc: Option<&str>) -> Option<Verdict> {
    if grpc.is_some() {
        return None;
    }
    let t = lower.trim();
    let decoder = find_any(
        lower,
        &[
            "illegal base64 data at input byte",
            "unable to parse auth field",
            "into go value of type credentialprovider.",
            "into go struct field dockerconfigjson.",
            "into go struct field dockerconfigentrywithauth.",
        ],
    )
    .is_some()
        || t == "unexpected end of json input"
        || (t.starts_with("invalid character '") && t.ends_with("looking for beginning of value"));
    decoder.then(|| {
        verdict(
            Cause::CredentialsMissing,
            None,
            Medium,
            "the kubelet could not decode a pull secret",
        )
    })
}

/// `imagePullPolicy: Never` and the image is not on the node.
fn never_pull_text(lower: &str) -> Option<Verdict> {
    lower
        .contains("is not present with pull policy of never")
        .then(|| {
            verdict(
                Cause::NeverPull,
                None,
                High,
                "image not present with pull policy Never",
            )
        })
}

/// The image has no variant for the node's platform (`no match for platform in manifest`...).
fn platform_texts(lower: &str) -> Option<Verdict> {
    let n = find_any(
        lower,
        &[
            "no match for platform in manifest",
            "no matching manifest for",
            "no image found in manifest list for architecture",
            "no image found in image index for architecture",
            "does not match the specified platform",
            "cannot be used on this platform",
        ],
    )?;
    Some(verdict(Cause::PlatformMismatch, None, High, n))
}

// 2. The network and TLS.

/// Name resolution fails (`no such host`...), or the DNS server does not answer the lookup.
fn dns_texts(lower: &str) -> Option<Verdict> {
    if let Some(n) = find_any(
        lower,
        &[
            "no such host",
            "server misbehaving",
            "temporary failure in name resolution",
            "name or service not known",
        ],
    ) {
        return Some(verdict(
            Cause::RegistryUnreachable,
            Some(Detail::Dns),
            High,
            n,
        ));
    }
    // A resolver that does not answer (`lookup HOST on 10.96.0.10:53: read
    // udp ...: i/o timeout`) is a DNS problem, not the registry's.
    if lower.contains("lookup ")
        && find_any(
            lower,
            &[
                "i/o timeout",
                "connection refused",
                "network is unreachable",
            ],
        )
        .is_some()
        && (lower.contains(":53")
            || lower.contains("dial tcp: lookup")
            || lower.contains("dial udp"))
    {
        return Some(verdict(
            Cause::RegistryUnreachable,
            Some(Detail::Dns),
            High,
            "the DNS server does not answer the lookup",
        ));
    }
    None
}

/// A wait that ran out (`i/o timeout`, `context deadline exceeded`..., gRPC DeadlineExceeded).
fn timeout_signals(lower: &str, grpc: Option<&str>) -> Option<Verdict> {
    if let Some(n) = find_any(
        lower,
        &[
            "i/o timeout",
            "context deadline exceeded",
            "client.timeout exceeded",
            "tls handshake timeout",
            "timeout awaiting response headers",
            "connection timed out",
        ],
    ) {
        return Some(verdict(
            Cause::RegistryUnreachable,
            Some(Detail::Timeout),
            High,
            n,
        ));
    }
    if grpc.is_some_and(|c| c.eq_ignore_ascii_case("DeadlineExceeded")) {
        return Some(verdict(
            Cause::RegistryUnreachable,
            Some(Detail::Timeout),
            High,
            "gRPC DeadlineExceeded",
        ));
    }
    None
}

/// A connection refused (by the registry or the proxy), reset or unroutable.
fn refused_texts(lower: &str) -> Option<Verdict> {
    if lower.contains("connection refused") {
        let signal = if lower.contains("proxyconnect") {
            "connection refused (by the HTTP proxy)"
        } else {
            "connection refused"
        };
        return Some(verdict(
            Cause::RegistryUnreachable,
            Some(Detail::Refused),
            High,
            signal,
        ));
    }
    // Failures that come back at once (RST, ICMP unreachable) rather than
    // after a wait: grouped with Refused, since the fix is the same kind
    // (routing, firewall, proxy) and no wait is involved.
    let n = find_any(
        lower,
        &[
            "connection reset by peer",
            "no route to host",
            "network is unreachable",
            "host is unreachable",
        ],
    )?;
    Some(verdict(
        Cause::RegistryUnreachable,
        Some(Detail::Refused),
        Medium,
        n,
    ))
}

/// A blob whose bytes do not match its digest: containerd's `failed commit
/// on ref …: unexpected commit digest X, expected Y: failed precondition`
/// (seen on the lab's real node), containers/image's `Digest did not
/// match`, Docker's `filesystem layer verification failed`.
fn layer_corrupt_texts(lower: &str) -> Option<Verdict> {
    let n = find_any(
        lower,
        &[
            "unexpected commit digest",
            "digest did not match",
            "digest mismatch",
            "layer verification failed",
        ],
    )?;
    Some(verdict(
        Cause::LayerCorrupt,
        None,
        High,
        format!("`{n}` (the bytes received do not match the digest)"),
    ))
}

/// A download that broke off after the registry answered: containerd's
/// `failed to copy: …` (the blob copy; seen on the lab's real node as
/// `failed to copy: read tcp A->B: read: connection reset by peer`),
/// containers/image's `reading blob …`, with a reset, an EOF, a timeout or a
/// cancelled context. Not "unreachable": the connection was made.
fn interrupted_texts(lower: &str) -> Option<Verdict> {
    let copying = find_any(lower, &["failed to copy:", "reading blob ", "short read"])?;
    let n = find_any(
        lower,
        &[
            "connection reset by peer",
            "unexpected eof",
            "broken pipe",
            "i/o timeout",
            "context canceled",
            "context deadline exceeded",
            "stream error",
            "http2: ",
            "short read",
        ],
    )?;
    Some(verdict(
        Cause::PullInterrupted,
        None,
        High,
        format!(
            "`{}` while downloading (`{}`)",
            n,
            copying.trim_end_matches(':').trim_end()
        ),
    ))
}

/// The TLS handshake fails: unknown CA, expired or mismatched certificate, plain HTTP, other x509/tls errors.
fn tls_texts(lower: &str) -> Option<Verdict> {
    if let Some(n) = find_any(
        lower,
        &[
            "certificate signed by unknown authority",
            "unknown authority",
            "certificate is not trusted",
        ],
    ) {
        return Some(verdict(
            Cause::TlsError,
            Some(Detail::UnknownAuthority),
            High,
            format!("x509: {n}"),
        ));
    }
    if lower.contains("certificate has expired") || lower.contains("is not yet valid") {
        return Some(verdict(
            Cause::TlsError,
            Some(Detail::CertificateExpired),
            High,
            "x509: certificate has expired or is not yet valid",
        ));
    }
    if (lower.contains("x509") || lower.contains("certificate"))
        && let Some(n) = find_any(
            lower,
            &[
                "certificate is valid for",
                "not valid for",
                "doesn't match",
                "does not match",
                "legacy common name field",
            ],
        )
    {
        return Some(verdict(
            Cause::TlsError,
            Some(Detail::NameMismatch),
            High,
            format!("x509: {n}"),
        ));
    }
    if let Some(n) = find_any(
        lower,
        &[
            "server gave http response to https client",
            "first record does not look like a tls handshake",
        ],
    ) {
        return Some(verdict(Cause::TlsError, None, High, n));
    }
    let n = find_any(lower, &["x509:", "tls: ", "remote error: tls"])?;
    Some(verdict(Cause::TlsError, None, Medium, n.trim_end()))
}

/// The other end closed the connection (`unexpected EOF`, `: EOF`).
fn eof_texts(lower: &str) -> Option<Verdict> {
    (lower.contains("unexpected eof") || lower.contains(": eof") || lower.ends_with(" eof")).then(
        || {
            verdict(
                Cause::RegistryUnreachable,
                Some(Detail::Refused),
                Low,
                "connection closed by the other end (EOF)",
            )
        },
    )
}

// 3. Rate limits; an explicitly expired token.

/// HTTP 429 or a rate-limit text (`toomanyrequests`...).
fn rate_limit_signals(lower: &str, status: Option<u16>) -> Option<Verdict> {
    if status == Some(429) {
        return Some(verdict(
            Cause::RateLimited,
            None,
            High,
            "HTTP 429 Too Many Requests",
        ));
    }
    let n = find_any(
        lower,
        &[
            "toomanyrequests",
            "too many requests",
            "rate limit",
            "rate-limit",
        ],
    )?;
    Some(verdict(Cause::RateLimited, None, High, n))
}

/// The registry says the token has expired (`token has expired`...).
fn expired_token_texts(lower: &str) -> Option<Verdict> {
    let n = find_any(
        lower,
        &[
            "token has expired",
            "token is expired",
            "expiredtoken",
            "token expired",
        ],
    )?;
    Some(verdict(Cause::CredentialsExpired, None, High, n))
}

// 4. Explicit answers: repository unknown, manifest unknown.

/// The registry does not know the repository (`name unknown`, Harbor's `repository X not found`).
fn repository_unknown_texts(lower: &str, original: &str) -> Option<Verdict> {
    if let Some(n) = find_any(
        lower,
        &[
            "name unknown",
            "name_unknown",
            "does not exist in the registry with id",
        ],
    ) {
        return Some(verdict(
            Cause::RepositoryNotFound,
            None,
            High,
            format!("{n} (the registry does not know the repository)"),
        ));
    }
    let name = repository_named_not_found(lower).map(|(start, end)| &original[start..end])?;
    Some(verdict(
        Cause::RepositoryNotFound,
        None,
        High,
        format!("repository {name} not found (the registry does not know the repository)"),
    ))
}

/// The tag or digest does not exist (`manifest unknown`, `manifest for X not found`, `: not found`, gRPC NotFound).
fn manifest_unknown_signals(lower: &str, original: &str, grpc: Option<&str>) -> Option<Verdict> {
    if let Some(n) = find_any(
        lower,
        &[
            "manifest unknown",
            "manifest_unknown",
            "requested image not found",
        ],
    ) {
        return Some(verdict(
            Cause::ImageNotFound,
            None,
            High,
            format!("{n} (404 on the manifest)"),
        ));
    }
    if let Some((start, end)) = manifest_for_not_found(lower) {
        return Some(verdict(
            Cause::ImageNotFound,
            None,
            High,
            format!("manifest for {} not found", &original[start..end]),
        ));
    }
    if let Some(at) = lower.find(": not found") {
        // containerd names the reference it resolved: `REF: not found`.
        let before = &original[..at];
        let start = before
            .rfind(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '[' | ','))
            .map_or(0, |i| i + 1);
        let reference = &before[start..];
        let signal = if reference.is_empty() {
            "not found (404 on the manifest)".to_string()
        } else {
            format!("{reference}: not found (404 on the manifest)")
        };
        return Some(verdict(Cause::ImageNotFound, None, High, signal));
    }
    if grpc.is_some_and(|c| c.eq_ignore_ascii_case("NotFound")) {
        return Some(verdict(Cause::ImageNotFound, None, High, "gRPC NotFound"));
    }
    None
}

// 5. Authentication and authorization.

/// Docker's `no basic auth credentials`: nothing was sent.
fn no_basic_auth_text(lower: &str) -> Option<Verdict> {
    lower.contains("no basic auth credentials").then(|| {
        verdict(
            Cause::CredentialsMissing,
            None,
            Medium,
            "no basic auth credentials",
        )
    })
}

/// The registry rejects the user or password (`invalid username/password`...); on ECR, an expired token.
fn rejected_credential_texts(lower: &str, ecr: bool) -> Option<Verdict> {
    let n = find_any(
        lower,
        &[
            "invalid username/password",
            "incorrect username or password",
            "invalid username or password",
            "unauthorized: incorrect",
            "http basic: access denied",
            "invalid credentials",
            "bad credentials",
        ],
    )?;
    if ecr {
        return Some(ecr_expired_guess(n));
    }
    Some(verdict(Cause::CredentialsRejected, None, Medium, n))
}

/// A 401 or 403 on the anonymous token request (`failed to fetch anonymous token`).
fn anonymous_token_status(lower: &str, status: Option<u16>) -> Option<Verdict> {
    if !lower.contains("failed to fetch anonymous token") {
        return None;
    }
    match status {
        Some(401) => Some(verdict(
            Cause::CredentialsMissing,
            None,
            Medium,
            "401 on the anonymous token request (no credential sent)",
        )),
        Some(403) => Some(verdict(
            Cause::AccessDenied,
            None,
            Medium,
            "403 on the anonymous token request",
        )),
        _ => None,
    }
}

/// A 401 or 403 from the token endpoint with a credential (`failed to fetch oauth token`).
fn oauth_token_status(lower: &str, status: Option<u16>, ecr: bool) -> Option<Verdict> {
    if !lower.contains("failed to fetch oauth token") {
        return None;
    }
    match status {
        Some(401) if ecr => Some(ecr_expired_guess("HTTP 401 from the token endpoint")),
        Some(401) => Some(verdict(
            Cause::CredentialsRejected,
            None,
            Medium,
            "401 from the token endpoint (credential sent)",
        )),
        Some(403) => Some(verdict(
            Cause::AccessDenied,
            None,
            Medium,
            "403 from the token endpoint",
        )),
        _ => None,
    }
}

/// The registry refuses anonymous pulls (`unauthenticated request`...).
fn anonymous_refused_texts(lower: &str) -> Option<Verdict> {
    let n = find_any(
        lower,
        &["unauthenticated request", "anonymous access is not allowed"],
    )?;
    Some(verdict(Cause::CredentialsMissing, None, Medium, n))
}

/// The ambiguous "pull access denied" family (`insufficient_scope`...): missing, or not visible.
fn pull_access_denied_texts(lower: &str) -> Option<Verdict> {
    let n = find_any(
        lower,
        &[
            "pull access denied",
            "repository does not exist",
            "insufficient_scope",
            "requested access to the resource is denied",
            "access to the requested resource is not authorized",
            "unauthorized to access repository",
        ],
    )?;
    Some(verdict(
        Cause::RepositoryNotFound,
        None,
        Medium,
        format!("{n} (repository missing, or not visible without the right credentials)"),
    ))
}

/// `unauthorized: authentication required`: no credential sent, or not accepted.
fn authentication_required_text(lower: &str) -> Option<Verdict> {
    lower.contains("authentication required").then(|| {
        verdict(
            Cause::CredentialsMissing,
            None,
            Medium,
            "unauthorized: authentication required (401: no credential sent, or not accepted)",
        )
    })
}

/// A bare HTTP 401 or 403 (on ECR, an expired token).
fn auth_status(lower: &str, status: Option<u16>, ecr: bool) -> Option<Verdict> {
    match status {
        Some(401) if ecr => Some(ecr_expired_guess("HTTP 401")),
        Some(401) => Some(verdict(
            Cause::CredentialsRejected,
            None,
            Medium,
            format!("HTTP 401{}", status_where(lower)),
        )),
        Some(403) if ecr => Some(ecr_expired_guess("HTTP 403")),
        Some(403) => Some(verdict(
            Cause::AccessDenied,
            None,
            Medium,
            format!("HTTP 403 Forbidden{}", status_where(lower)),
        )),
        _ => None,
    }
}

/// The registry refuses this pull (`denied: `, `not authorized to perform`, `: forbidden`...).
fn denied_texts(lower: &str, ecr: bool) -> Option<Verdict> {
    if let Some(n) = find_any(
        lower,
        &[
            "not authorized to perform",
            "denied: ",
            "error from registry: denied",
            "permission denied for",
        ],
    ) {
        return Some(verdict(
            Cause::AccessDenied,
            None,
            Medium,
            format!("`{}` (the registry refuses this pull)", n.trim_end()),
        ));
    }
    if lower.ends_with(": denied")
        || lower.ends_with(": forbidden")
        || lower.contains(": forbidden")
    {
        if ecr {
            return Some(ecr_expired_guess("403 Forbidden"));
        }
        return Some(verdict(
            Cause::AccessDenied,
            None,
            Medium,
            "denied / forbidden by the registry",
        ));
    }
    None
}

/// A bare `unauthorized` (on ECR, an expired token).
fn unauthorized_text(lower: &str, ecr: bool) -> Option<Verdict> {
    if !lower.contains("unauthorized") {
        return None;
    }
    if ecr {
        return Some(ecr_expired_guess("401 Unauthorized"));
    }
    Some(verdict(
        Cause::CredentialsRejected,
        None,
        Medium,
        "unauthorized (401)",
    ))
}

// 6. Weak leftovers.

/// A bare 404 or ` not found`.
fn weak_not_found(lower: &str, status: Option<u16>) -> Option<Verdict> {
    (status == Some(404) || lower.contains(" not found"))
        .then(|| verdict(Cause::ImageNotFound, None, Medium, "not found"))
}

/// A 5xx status: a server-side error, cause unknown.
fn server_error_status(status: Option<u16>) -> Option<Verdict> {
    let s = status.filter(|s| *s >= 500)?;
    Some(verdict(
        Cause::Unknown,
        None,
        Low,
        format!("HTTP {s} from the registry (a server-side error)"),
    ))
}

/// Harbor's `unknown: repository library/x not found`: where the
/// repository's name is (byte range, the same in the original text).
fn repository_named_not_found(lower: &str) -> Option<(usize, usize)> {
    lower.match_indices("repository ").find_map(|(i, m)| {
        let start = i + m.len();
        let rest = &lower[start..];
        let word_end = rest.find([' ', ',', '"']).unwrap_or(rest.len());
        (word_end > 0 && rest[word_end..].starts_with(" not found"))
            .then_some((start, start + word_end))
    })
}

/// Docker's `manifest for nginx:9.9 not found`: where the reference is
/// (byte range, the same in the original text).
fn manifest_for_not_found(lower: &str) -> Option<(usize, usize)> {
    lower.match_indices("manifest for ").find_map(|(i, m)| {
        let start = i + m.len();
        let rest = &lower[start..];
        let word_end = rest.find(' ').unwrap_or(rest.len());
        rest[word_end..]
            .starts_with(" not found")
            .then_some((start, start + word_end))
    })
}

// ---------------------------------------------------------------------------
// Text surgery.

fn is_backoff_text(message: &str) -> bool {
    message.trim_start().starts_with("Back-off pulling image")
}

/// The runtime error after `Failed to pull image "X": `.
fn failed_to_pull_tail(message: &str) -> Option<&str> {
    const PREFIX: &str = "Failed to pull image \"";
    let i = message.find(PREFIX)?;
    let rest = &message[i + PREFIX.len()..];
    let j = rest.find("\": ")?;
    Some(&rest[j + 3..])
}

/// Removes `Failed to pull image "X": ` and every `rpc error: code = X desc = `
/// (aggregated errors carry one per attempt); returns the first code.
fn strip_envelope(text: &str) -> (String, Option<String>) {
    const RPC: &str = "rpc error: code = ";
    const DESC: &str = " desc = ";
    let mut s = failed_to_pull_tail(text).unwrap_or(text).trim().to_string();
    let mut first_code = None;
    let mut from = 0;
    while let Some(rel) = s[from..].find(RPC) {
        let start = from + rel;
        let after = start + RPC.len();
        let code_len = s[after..]
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        let code_end = after + code_len;
        if code_len == 0 || !s[code_end..].starts_with(DESC) {
            from = after;
            continue;
        }
        if first_code.is_none() {
            first_code = Some(s[after..code_end].to_string());
        }
        s.replace_range(start..code_end + DESC.len(), "");
        from = start;
    }
    (s.trim().to_string(), first_code)
}

/// Go's `http.StatusText` for the statuses registries send.
const STATUS_REASONS: &[(u16, &str)] = &[
    (400, "bad request"),
    (401, "unauthorized"),
    (403, "forbidden"),
    (404, "not found"),
    (405, "method not allowed"),
    (407, "proxy authentication required"),
    (408, "request timeout"),
    (409, "conflict"),
    (429, "too many requests"),
    (500, "internal server error"),
    (502, "bad gateway"),
    (503, "service unavailable"),
    (504, "gateway timeout"),
];

/// Finds `NNN <Reason>` (`401 Unauthorized`, `429 Too Many Requests`),
/// `status code NNN`, `status: NNN` or `error (NNN)` in lowercased text.
fn extract_status(lower: &str) -> Option<u16> {
    let b = lower.as_bytes();
    let mut i = 0;
    while let Some(digits) = b.get(i..i + 3) {
        let is_num = digits.iter().all(u8::is_ascii_digit);
        let before_ok = i.checked_sub(1).and_then(|p| b.get(p)).is_none_or(|&c| {
            !(c.is_ascii_alphanumeric() || matches!(c, b'.' | b':' | b'-' | b'_' | b'/'))
        });
        let after_ok = b.get(i + 3).is_none_or(|c| !c.is_ascii_alphanumeric());
        if is_num && before_ok && after_ok {
            // Three ASCII digits: a valid number and char boundaries.
            let n: u16 = lower[i..i + 3].parse().unwrap_or(0);
            if (100..600).contains(&n) {
                let after = &lower[i + 3..];
                let before = &lower[..i];
                let reason_follows = STATUS_REASONS.iter().any(|(code, r)| {
                    *code == n && after.strip_prefix(' ').is_some_and(|a| a.starts_with(r))
                });
                let prefixed = [
                    "status code ",
                    "status code: ",
                    "status code:",
                    "status: ",
                    "status ",
                    "http ",
                ]
                .iter()
                .any(|p| before.ends_with(p))
                    || (before.ends_with("error (") && after.starts_with(')'));
                if reason_follows || prefixed {
                    return Some(n);
                }
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    None
}

const HOST_END: &[char] = &[
    '/', '"', '\'', '`', '?', '#', ')', '(', ',', '>', '<', '\\', ';',
];

/// Registry API URLs first, then references, then any URL.
fn extract_host(text: &str) -> Option<String> {
    let urls = url_hosts(text);
    urls.iter()
        .find(|(_, path)| path.starts_with("/v2") || path.starts_with("/v1"))
        .map(|(h, _)| h.clone())
        .or_else(|| reference_host(text))
        // A token endpoint is usually the registry itself (`ghcr.io/token`,
        // `quay.io/v2/auth`), sometimes a separate server (`auth.docker.io`).
        // Other URLs (documentation links) name no registry.
        .or_else(|| {
            urls.into_iter()
                .find(|(_, path)| path.to_ascii_lowercase().contains("token"))
                .map(|(h, _)| h)
        })
}

/// `scheme://host[:port]` of the first registry API URL (`.../v2/...`) the
/// text names: where the node sent its request, as the node wrote it.
pub(crate) fn registry_base_url(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(rel) = lower[from..].find("://") {
        let at = from + rel;
        from = at + 3;
        let scheme = if lower[..at].ends_with("https") {
            "https"
        } else if lower[..at].ends_with("http") {
            "http"
        } else {
            continue;
        };
        let rest = &text[at + 3..];
        let end = rest
            .find(|c: char| c.is_whitespace() || HOST_END.contains(&c))
            .unwrap_or(rest.len());
        let authority = &rest[..end];
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        if host.is_empty()
            || !host.chars().all(is_host_char)
            || host.contains(']') && !host.starts_with('[')
        {
            continue;
        }
        let path = &rest[end..];
        if path.starts_with("/v2") || path.starts_with("/v1") {
            return Some(format!("{scheme}://{host}"));
        }
    }
    None
}

/// `(host, path)` of every `http(s)://` URL.
fn url_hosts(text: &str) -> Vec<(String, String)> {
    let lower = text.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(rel) = lower[from..].find("://") {
        let at = from + rel;
        from = at + 3;
        if !(lower[..at].ends_with("https") || lower[..at].ends_with("http")) {
            continue;
        }
        let rest = &text[at + 3..];
        let end = rest
            .find(|c: char| c.is_whitespace() || HOST_END.contains(&c))
            .unwrap_or(rest.len());
        let authority = &rest[..end];
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        // `]` closes an IPv6 literal, or an aggregate (`[err1, err2]`).
        let host = match host.find(']') {
            Some(i) if !host.starts_with('[') => &host[..i],
            _ => host,
        };
        if host.is_empty() || !host.chars().all(is_host_char) {
            continue;
        }
        let tail = &rest[end..];
        let path_end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | ',' | ')'))
            .unwrap_or(tail.len());
        out.push((host.to_string(), tail[..path_end].to_string()));
    }
    out
}

fn is_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_')
}

/// The domain of the first image reference the text names.
fn reference_host(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    // (marker, quoted)
    const MARKERS: &[(&str, bool)] = &[
        ("image \"", true),
        ("reference \"", true),
        ("docker://", false),
        ("pull access denied for ", false),
        ("manifest for ", false),
    ];
    let mut best: Option<(usize, &str)> = None;
    for (marker, quoted) in MARKERS {
        for (i, _) in lower.match_indices(marker) {
            if *marker == "manifest for " && lower[..i].ends_with("matching ") {
                continue;
            }
            let rest = &text[i + marker.len()..];
            let end = if *quoted {
                rest.find('"').unwrap_or(rest.len())
            } else {
                rest.find(|c: char| c.is_whitespace() || matches!(c, ',' | '"' | '\''))
                    .unwrap_or(rest.len())
            };
            let candidate = rest[..end].trim_end_matches(':');
            if !candidate.is_empty() && best.is_none_or(|(at, _)| i < at) {
                best = Some((i, candidate));
            }
            break;
        }
    }
    // CRI-O: `reading manifest TAG in REPO`.
    if let Some(i) = lower.find("reading manifest ") {
        let rest = &text[i + "reading manifest ".len()..];
        if let Some(j) = rest.find(" in ") {
            let repo = &rest[j + 4..];
            let end = repo
                .find(|c: char| c.is_whitespace() || c == ',' || c == '"')
                .unwrap_or(repo.len());
            let repo = repo[..end].trim_end_matches(':');
            if !repo.is_empty() && best.is_none_or(|(at, _)| i < at) {
                best = Some((i, repo));
            }
        }
    }
    best.and_then(|(_, r)| reference_domain(r))
}

/// Docker's `splitDockerDomain`, on a possibly invalid reference.
fn reference_domain(reference: &str) -> Option<String> {
    let name = reference.split('@').next().unwrap_or(reference);
    if name.is_empty() {
        return None;
    }
    let domain = match name.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => return Some(crate::registry::reference::DOCKER_HUB.to_string()),
    };
    if domain.is_empty() || !domain.chars().all(is_host_char) {
        return None;
    }
    if domain.eq_ignore_ascii_case("index.docker.io") {
        return Some(crate::registry::reference::DOCKER_HUB.to_string());
    }
    Some(domain.to_string())
}

/// The host of the spec image in `... image "X"...` messages.
fn spec_image_host(message: &str) -> Option<String> {
    let i = message.find("image \"")?;
    let rest = &message[i + "image \"".len()..];
    let end = rest.find('"')?;
    reference_domain(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    use Cause::*;

    /// Every text a real kubelet and runtime wrote in the lab
    /// (`tests/fixtures/real/kubelet-V/RUNTIME/SCENARIO.json`, recorded by
    /// the `real_node` integration tests) classifies to the cause the whole
    /// diagnosis gave, or to one the text alone cannot tell from it; never
    /// to `unknown`. Keeps the real node's proof where none runs.
    #[test]
    fn real_texts_classify() {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/real");
        let mut seen = 0;
        let mut failures = Vec::new();
        for kubelet in std::fs::read_dir(&root)
            .expect("tests/fixtures/real")
            .flatten()
        {
            for runtime in std::fs::read_dir(kubelet.path()).unwrap().flatten() {
                for file in std::fs::read_dir(runtime.path()).unwrap().flatten() {
                    let path = file.path();
                    let doc: serde_json::Value =
                        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                    let want = doc["cause"].as_str().unwrap();
                    let events: Vec<EventText<'_>> = doc["events"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .rev() // recorded oldest first; the classifier wants newest first
                        .map(|e| EventText {
                            reason: e["reason"].as_str().unwrap(),
                            message: e["message"].as_str().unwrap(),
                            count: 1,
                        })
                        .collect();
                    let c = classify_container(
                        doc["waiting"]["reason"].as_str().unwrap(),
                        doc["waiting"]["message"].as_str().unwrap(),
                        &events,
                    );
                    let consistent =
                        c.cause.id() == want || c.ambiguous_with().iter().any(|a| a.id() == want);
                    if c.cause == Unknown || !consistent {
                        failures.push(format!(
                            "{}: want {want}, the text gives {} ({}): {}",
                            path.display(),
                            c.cause.id(),
                            c.rule,
                            c.error
                        ));
                    }
                    // The event's text and the ErrImagePull message say the same.
                    if let Some(err) = doc["pull_error"].as_str().filter(|e| !e.is_empty()) {
                        assert_eq!(classify_error(err).cause, c.cause, "{}", path.display());
                    }
                    seen += 1;
                }
            }
        }
        assert!(
            seen >= 20,
            "only {seen} real fixtures under {}",
            root.display()
        );
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn a_pull_secret_the_kubelet_cannot_decode_is_read_from_go_s_words() {
        let c = classify_container("ErrImagePull", "illegal base64 data at input byte 3", &[]);
        assert_eq!(
            (c.cause, c.rule),
            (CredentialsMissing, "secret-undecodable")
        );
        let msg = "Failed to pull image \"reg.example.com/a:1\": json: cannot unmarshal array into Go value of type credentialprovider.DockerConfigJSON";
        let events = [EventText {
            reason: "Failed",
            message: msg,
            count: 4,
        }];
        let c = classify_container(
            "ImagePullBackOff",
            "Back-off pulling image \"reg.example.com/a:1\"",
            &events,
        );
        assert_eq!(
            (c.cause, c.rule),
            (CredentialsMissing, "secret-undecodable")
        );
        let c = classify_error("invalid character 'n' looking for beginning of value");
        assert_eq!(c.rule, "secret-undecodable");
        // From the runtime, the same words are about something else.
        let c =
            classify_error("rpc error: code = Unknown desc = illegal base64 data at input byte 3");
        assert_ne!(c.rule, "secret-undecodable");
    }

    #[test]
    fn newest_failed_event_wins_and_host_falls_back_to_the_spec_image() {
        let spec = "reg.example.com/team/multi:1.0";
        let newer = format!(
            "Failed to pull image \"{spec}\": choosing image instance: no image found in manifest list for architecture \"arm64\", variant \"v8\", OS \"linux\""
        );
        let older = format!(
            "Failed to pull image \"{spec}\": reading manifest 1.0 in reg.example.com/team/multi: manifest unknown"
        );
        let events = [
            EventText {
                reason: "Failed",
                message: &newer,
                count: 1,
            },
            EventText {
                reason: "Failed",
                message: &older,
                count: 3,
            },
        ];
        let c = classify_container(
            "ImagePullBackOff",
            "Back-off pulling image \"reg.example.com/team/multi:1.0\"",
            &events,
        );
        assert_eq!(c.cause, PlatformMismatch);
        assert_eq!(c.host.as_deref(), Some("reg.example.com"));
        assert!(
            c.error.starts_with("choosing image instance"),
            "{}",
            c.error
        );
    }

    #[test]
    fn reasons_decide_before_texts() {
        let inspect = "Failed to apply default image tag \"Team/App:v1\": couldn't parse image name \"Team/App:v1\": invalid reference format: repository name (Team/App) must be lowercase";
        let c = classify_container("InvalidImageName", inspect, &[]);
        assert_eq!(
            (c.cause, c.confidence),
            (InvalidImageName, Confidence::High)
        );
        assert_eq!(c.signal, "invalid reference format");
        // Message gone, event left.
        let events = [
            EventText {
                reason: "Failed",
                message: "Error: InvalidImageName",
                count: 3,
            },
            EventText {
                reason: "InspectFailed",
                message: inspect,
                count: 3,
            },
        ];
        let c = classify_container("InvalidImageName", "", &events);
        assert_eq!(c.cause, InvalidImageName);
        assert!(c.error.contains("must be lowercase"), "{}", c.error);
        // Nothing but the reason.
        let c = classify_container("InvalidImageName", "", &[]);
        assert_eq!(
            (c.cause, c.confidence),
            (InvalidImageName, Confidence::High)
        );
        assert_eq!(c.signal, "waiting reason InvalidImageName");

        let never = "Container image \"team/app:v1\" is not present with pull policy of Never";
        let c = classify_container("ErrImageNeverPull", never, &[]);
        assert_eq!((c.cause, c.confidence), (NeverPull, Confidence::High));
        assert_eq!(c.host.as_deref(), Some("docker.io"));
        let c = classify_container("ErrImageNeverPull", "", &[]);
        assert_eq!(c.cause, NeverPull);

        // ErrImagePull's message is the runtime's error.
        let c = classify_container(
            "ErrImagePull",
            "rpc error: code = Unknown desc = Error response from daemon: toomanyrequests: You have reached your pull rate limit.",
            &[],
        );
        assert_eq!(c.cause, RateLimited);
        assert_eq!(c.grpc_code.as_deref(), Some("Unknown"));

        // Init containers as kubectl shows them.
        let c = classify_container(
            "Init:ErrImagePull",
            "failed to pull and unpack image \"docker.io/library/busybox:9\": failed to resolve image: docker.io/library/busybox:9: not found",
            &[],
        );
        assert_eq!(c.cause, ImageNotFound);
        assert_eq!(c.host.as_deref(), Some("docker.io"));

        // A reason with no text at all.
        let c = classify_container("ErrImagePull", "", &[]);
        assert_eq!(
            (c.cause, c.confidence, c.backoff_only),
            (Unknown, Confidence::Low, false)
        );
    }

    #[test]
    fn pull_failure_reasons() {
        for r in PULL_FAILURE_REASONS {
            assert!(is_pull_failure_reason(r), "{r}");
        }
        assert!(is_pull_failure_reason("Init:ImagePullBackOff"));
        for r in [
            "",
            "CrashLoopBackOff",
            "ContainerCreating",
            "PodInitializing",
            "CreateContainerConfigError",
            "imagepullbackoff",
        ] {
            assert!(!is_pull_failure_reason(r), "{r}");
        }
    }

    /// (text, cause, detail). `shared/notes/pull-errors.md`'s examples with
    /// the placeholders filled, in its order.
    const NOTES: &[(&str, Cause, Option<Detail>)] = &[
        (
            "rpc error: code = NotFound desc = failed to pull and unpack image \"docker.io/library/nginx:9.9\": failed to resolve reference \"docker.io/library/nginx:9.9\": docker.io/library/nginx:9.9: not found",
            ImageNotFound,
            None,
        ),
        (
            "initializing source docker://docker.io/library/nginx:9.9: reading manifest 9.9 in docker.io/library/nginx: manifest unknown",
            ImageNotFound,
            None,
        ),
        (
            "Error response from daemon: manifest for nginx:9.9 not found: manifest unknown: manifest unknown",
            ImageNotFound,
            None,
        ),
        (
            "failed to pull and unpack image \"docker.io/acme/private:1\": failed to resolve reference \"docker.io/acme/private:1\": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed",
            RepositoryNotFound,
            None,
        ),
        (
            "Error response from daemon: pull access denied for acme/private, repository does not exist or may require 'docker login': denied: requested access to the resource is denied",
            RepositoryNotFound,
            None,
        ),
        (
            "failed to pull and unpack image \"reg.example.com/team/app:v1\": failed to resolve reference \"reg.example.com/team/app:v1\": pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials",
            CredentialsMissing,
            None,
        ),
        (
            "failed to authorize: failed to fetch oauth token: unexpected status from GET request to https://auth.docker.io/token?scope=repository%3Aacme%2Fprivate%3Apull&service=registry.docker.io: 401 Unauthorized",
            CredentialsRejected,
            None,
        ),
        (
            "unexpected status from HEAD request to https://reg.example.com/v2/team/app/manifests/v1: 401 Unauthorized",
            CredentialsRejected,
            None,
        ),
        (
            "initializing source docker://reg.example.com/team/app:v1: unable to retrieve auth token: invalid username/password: unauthorized: authentication required",
            CredentialsRejected,
            None,
        ),
        (
            "Error response from daemon: Get https://reg.example.com/v2/team/app/manifests/v1: no basic auth credentials",
            CredentialsMissing,
            None,
        ),
        (
            "failed to authorize: failed to fetch anonymous token: unexpected status from GET request to https://reg.example.com/token?scope=repository%3Ateam%2Fapp%3Apull: 403 Forbidden",
            AccessDenied,
            None,
        ),
        (
            "failed to resolve image: unexpected status from HEAD request to https://123456789012.dkr.ecr.us-east-1.amazonaws.com/v2/team/app/manifests/v1: 403 Forbidden",
            CredentialsExpired,
            None,
        ),
        (
            "DENIED: Your authorization token has expired. Reauthenticate and try again.",
            CredentialsExpired,
            None,
        ),
        (
            "failed to do request: Head \"https://reg.example.com/v2/team/app/manifests/v1\": dial tcp: lookup reg.example.com on 10.96.0.10:53: no such host",
            RegistryUnreachable,
            Some(Detail::Dns),
        ),
        (
            "rpc error: code = DeadlineExceeded desc = failed to pull and unpack image \"reg.example.com/team/app:v1\": failed to resolve reference \"reg.example.com/team/app:v1\": failed to do request: Head \"https://reg.example.com/v2/team/app/manifests/v1\": dial tcp 203.0.113.9:443: i/o timeout",
            RegistryUnreachable,
            Some(Detail::Timeout),
        ),
        (
            "failed to pull and unpack image \"reg.example.com/team/app:v1\": failed to resolve reference \"reg.example.com/team/app:v1\": failed to do request: Head \"https://reg.example.com/v2/team/app/manifests/v1\": dial tcp 10.1.2.3:443: connect: connection refused",
            RegistryUnreachable,
            Some(Detail::Refused),
        ),
        (
            "initializing source docker://reg.example.com/team/app:v1: pinging container registry reg.example.com: Get \"https://reg.example.com/v2/\": dial tcp: lookup reg.example.com on 10.96.0.10:53: no such host",
            RegistryUnreachable,
            Some(Detail::Dns),
        ),
        (
            "tls: failed to verify certificate: x509: certificate signed by unknown authority",
            TlsError,
            Some(Detail::UnknownAuthority),
        ),
        (
            "x509: certificate has expired or is not yet valid: current time 2025-03-01T10:00:00Z is after 2025-02-28T23:59:59Z",
            TlsError,
            Some(Detail::CertificateExpired),
        ),
        (
            "429 Too Many Requests - Server message: toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit",
            RateLimited,
            None,
        ),
        (
            "Error response from daemon: toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit",
            RateLimited,
            None,
        ),
        (
            "Failed to apply default image tag \"nginx::1\": couldn't parse image name \"nginx::1\": invalid reference format",
            InvalidImageName,
            None,
        ),
        (
            "Failed to apply default image tag \"Nginx:1.25\": couldn't parse image name \"Nginx:1.25\": invalid reference format: repository name (library/Nginx) must be lowercase",
            InvalidImageName,
            None,
        ),
        (
            "Container image \"team/app:v1\" is not present with pull policy of Never",
            NeverPull,
            None,
        ),
        (
            "failed to pull and unpack image \"reg.example.com/team/multi:1.0\": no match for platform in manifest: not found",
            PlatformMismatch,
            None,
        ),
        (
            "Error response from daemon: no matching manifest for linux/arm64/v8 in the manifest list entries",
            PlatformMismatch,
            None,
        ),
        (
            "choosing image instance: no image found in manifest list for architecture \"arm64\", variant \"v8\", OS \"linux\"",
            PlatformMismatch,
            None,
        ),
    ];

    /// Wordings real clusters show that the notes do not list.
    const VARIANTS: &[(&str, Cause, Option<Detail>)] = &[
        // GHCR with a stale token or no access.
        (
            "Error response from daemon: Head \"https://ghcr.io/v2/acme/app/manifests/latest\": denied: denied",
            AccessDenied,
            None,
        ),
        (
            "Error response from daemon: error from registry: denied\ndenied",
            AccessDenied,
            None,
        ),
        // Quay's anonymous or missing repository.
        (
            "initializing source docker://quay.io/acme/app:latest: reading manifest latest in quay.io/acme/app: unauthorized: access to the requested resource is not authorized",
            RepositoryNotFound,
            None,
        ),
        // Harbor.
        (
            "initializing source docker://harbor.example.com/library/app:v1: reading manifest v1 in harbor.example.com/library/app: unknown: repository library/app not found",
            RepositoryNotFound,
            None,
        ),
        (
            "Error response from daemon: unauthorized: unauthorized to access repository: library/app, action: pull: unauthorized to access repository: library/app, action: pull",
            RepositoryNotFound,
            None,
        ),
        // Artifact Registry / GCR.
        (
            "Error response from daemon: Head \"https://europe-west2-docker.pkg.dev/v2/proj/repo/app/manifests/1.0\": denied: Permission \"artifactregistry.repositories.downloadArtifacts\" denied on resource \"projects/proj/locations/europe-west2/repositories/repo\" (or it may not exist)",
            AccessDenied,
            None,
        ),
        (
            "reading manifest 1.0 in us-docker.pkg.dev/proj/repo/app: denied: Unauthenticated request. Unauthenticated requests do not have permission \"artifactregistry.repositories.downloadArtifacts\" on resource \"projects/proj/locations/us/repositories/repo\" (or it may not exist)",
            CredentialsMissing,
            None,
        ),
        (
            "Error response from daemon: Head \"https://europe-west3-docker.pkg.dev/v2/k8s-artifacts-prod/images/x/manifests/v4.0.0\": Forbidden",
            AccessDenied,
            None,
        ),
        (
            "Error response from daemon: manifest for gcr.io/proj/app:v9 not found: manifest unknown: Failed to fetch \"v9\" from request \"/v2/proj/app/manifests/v9\".",
            ImageNotFound,
            None,
        ),
        (
            "reading manifest v9 in registry.gitlab.com/acme/app: manifest unknown: manifest tagged by \"v9\" is not found",
            ImageNotFound,
            None,
        ),
        // ECR.
        (
            "Error response from daemon: Get \"https://123456789012.dkr.ecr.us-east-1.amazonaws.com/v2/team/app/manifests/v1\": no basic auth credentials",
            CredentialsMissing,
            None,
        ),
        (
            "failed to pull and unpack image \"123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:v1\": failed to resolve reference \"123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:v1\": pulling from host 123456789012.dkr.ecr.eu-west-1.amazonaws.com failed with status code [manifests v1]: 403 Forbidden",
            CredentialsExpired,
            None,
        ),
        (
            "initializing source docker://123456789012.dkr.ecr.us-east-1.amazonaws.com/app:v1: reading manifest v1 in 123456789012.dkr.ecr.us-east-1.amazonaws.com/app: name unknown: The repository with name 'app' does not exist in the registry with id '123456789012'",
            RepositoryNotFound,
            None,
        ),
        (
            "Error response from daemon: manifest for 123456789012.dkr.ecr.us-east-1.amazonaws.com/app:v9 not found: manifest unknown: Requested image not found",
            ImageNotFound,
            None,
        ),
        (
            "reading manifest v1 in 123456789012.dkr.ecr.us-east-1.amazonaws.com/app: denied: User: arn:aws:sts::123456789012:assumed-role/nodes/i-0abc is not authorized to perform: ecr:BatchGetImage on resource: arn:aws:ecr:us-east-1:123456789012:repository/app because no identity-based policy allows the ecr:BatchGetImage action",
            AccessDenied,
            None,
        ),
        (
            "reading manifest v1 in 123456789012.dkr.ecr.us-east-1.amazonaws.com/app: denied: Your authorization token has expired. Reauthenticate and try again.",
            CredentialsExpired,
            None,
        ),
        // ACR, GitLab, Docker Hub login.
        (
            "Error response from daemon: Head \"https://acme.azurecr.io/v2/app/manifests/v1\": unauthorized: authentication required, visit https://aka.ms/acr/authorization for more information.",
            CredentialsMissing,
            None,
        ),
        (
            "Error response from daemon: Get \"https://registry.gitlab.com/v2/\": unauthorized: HTTP Basic: Access denied",
            CredentialsRejected,
            None,
        ),
        (
            "Error response from daemon: Get \"https://registry-1.docker.io/v2/\": unauthorized: incorrect username or password",
            CredentialsRejected,
            None,
        ),
        (
            "failed to resolve reference \"reg.example.com/app:v1\": unexpected status code [manifests v1]: 401 Unauthorized",
            CredentialsRejected,
            None,
        ),
        // Podman-style multi-error from Docker Hub for a missing repository.
        (
            "initializing source docker://acme/app:latest: reading manifest latest in docker.io/acme/app: errors:\ndenied: requested access to the resource is denied\nunauthorized: authentication required",
            RepositoryNotFound,
            None,
        ),
        // Network.
        (
            "failed to do request: Head \"https://reg.example.com/v2/team/app/manifests/v1\": EOF",
            RegistryUnreachable,
            Some(Detail::Refused),
        ),
        (
            "failed to copy: read tcp 10.237.0.4:38070->52.38.0.9:443: read: connection reset by peer",
            PullInterrupted,
            None,
        ),
        (
            "failed to pull and unpack image \"r/a:1\": failed commit on ref \"config-sha256:7a\": unexpected commit digest sha256:03, expected sha256:7a: failed precondition",
            LayerCorrupt,
            None,
        ),
        (
            "failed to do request: Head \"https://reg.example.com/v2/app/manifests/v1\": dial tcp 10.1.2.3:443: connect: no route to host",
            RegistryUnreachable,
            Some(Detail::Refused),
        ),
        (
            "failed to do request: Head \"https://reg.example.com/v2/app/manifests/v1\": proxyconnect tcp: dial tcp 10.0.0.1:3128: connect: connection refused",
            RegistryUnreachable,
            Some(Detail::Refused),
        ),
        (
            "failed to do request: Head \"https://reg.example.com/v2/app/manifests/v1\": dial tcp: lookup reg.example.com: Temporary failure in name resolution",
            RegistryUnreachable,
            Some(Detail::Dns),
        ),
        (
            "failed to do request: Head \"https://reg.example.com/v2/app/manifests/v1\": dial tcp: lookup reg.example.com on 10.96.0.10:53: server misbehaving",
            RegistryUnreachable,
            Some(Detail::Dns),
        ),
        (
            "failed to do request: Head \"https://reg.example.com/v2/app/manifests/v1\": dial tcp: lookup reg.example.com on 10.96.0.10:53: read udp 10.244.1.5:40000->10.96.0.10:53: i/o timeout",
            RegistryUnreachable,
            Some(Detail::Dns),
        ),
        (
            "Error response from daemon: Get \"https://registry-1.docker.io/v2/\": net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)",
            RegistryUnreachable,
            Some(Detail::Timeout),
        ),
        (
            "Error response from daemon: Get \"https://reg.example.com/v2/\": net/http: TLS handshake timeout",
            RegistryUnreachable,
            Some(Detail::Timeout),
        ),
        (
            "rpc error: code = DeadlineExceeded desc = context deadline exceeded",
            RegistryUnreachable,
            Some(Detail::Timeout),
        ),
        // TLS.
        (
            "failed to do request: Head \"https://10.0.0.5:5000/v2/team/app/manifests/v1\": http: server gave HTTP response to HTTPS client",
            TlsError,
            None,
        ),
        (
            "failed to do request: Head \"https://reg.example.com/v2/app/manifests/v1\": tls: failed to verify certificate: x509: certificate is valid for ingress.local, not reg.example.com",
            TlsError,
            Some(Detail::NameMismatch),
        ),
        (
            "Get \"https://reg.example.com/v2/\": x509: certificate relies on legacy Common Name field, use SANs instead",
            TlsError,
            Some(Detail::NameMismatch),
        ),
        (
            "Get \"https://reg.example.com/v2/\": x509: certificate signed by unknown authority (possibly because of \"crypto/rsa: verification error\" while trying to verify candidate authority certificate \"lab-ca\")",
            TlsError,
            Some(Detail::UnknownAuthority),
        ),
        (
            "Get \"https://reg.example.com/v2/\": remote error: tls: handshake failure",
            TlsError,
            None,
        ),
        // Platform.
        (
            "choosing image instance: no image found in image index for architecture \"arm64\", variant \"v8\", OS \"linux\"",
            PlatformMismatch,
            None,
        ),
        (
            "Error response from daemon: image operating system \"windows\" cannot be used on this platform",
            PlatformMismatch,
            None,
        ),
        // Rate limits elsewhere.
        (
            "failed to pull and unpack image \"docker.io/library/app:1\": failed to copy: httpReadSeeker: failed open: unexpected status code https://registry-1.docker.io/v2/library/app/manifests/sha256:4291ab0c: 429 Too Many Requests - Server message: toomanyrequests: You have reached your pull rate limit.",
            RateLimited,
            None,
        ),
        (
            "reading manifest v1 in quay.io/acme/app: received unexpected HTTP status: 429 Too Many Requests",
            RateLimited,
            None,
        ),
        // Not ours to name.
        (
            "unexpected status from HEAD request to https://reg.example.com/v2/app/manifests/v1: 503 Service Unavailable",
            Unknown,
            None,
        ),
        (
            "failed to extract layer sha256:1b2c: write /var/lib/containerd/tmpmounts/x: no space left on device",
            Unknown,
            None,
        ),
        (
            "SignatureValidationFailed: Source image rejected: A signature was required, but no signature exists",
            Unknown,
            None,
        ),
        ("", Unknown, None),
    ];

    #[test]
    fn notes_examples() {
        for (text, cause, detail) in NOTES {
            let c = classify_error(text);
            assert_eq!((c.cause, c.detail), (*cause, *detail), "{text}\n{c:#?}");
        }
    }

    #[test]
    fn real_world_variants() {
        assert!(VARIANTS.len() >= 10);
        for (text, cause, detail) in VARIANTS {
            let c = classify_error(text);
            assert_eq!((c.cause, c.detail), (*cause, *detail), "{text}\n{c:#?}");
        }
    }

    #[test]
    fn confidences() {
        let conf = |t: &str| classify_error(t).confidence;
        assert_eq!(conf(NOTES[1].0), Confidence::High); // manifest unknown
        assert_eq!(conf(NOTES[4].0), Confidence::Medium); // pull access denied
        assert_eq!(conf(NOTES[7].0), Confidence::Medium); // 401
        assert_eq!(conf(NOTES[11].0), Confidence::Low); // bare 403 from ECR
        assert_eq!(conf(NOTES[12].0), Confidence::High); // token has expired
        assert_eq!(conf(NOTES[17].0), Confidence::High); // x509
        assert_eq!(conf(NOTES[19].0), Confidence::High); // 429
        assert_eq!(
            conf("failed to do request: Head \"https://r.example/v2/\": EOF"),
            Confidence::Low
        );
        assert_eq!(conf("something else entirely"), Confidence::Low);
    }

    #[test]
    fn ambiguity_is_reported() {
        let c = classify_error(NOTES[4].0);
        assert!(c.ambiguous_with().contains(&CredentialsMissing));
        assert!(c.ambiguous_with().contains(&WrongRegistry));
        assert!(c.signal.contains("pull access denied"), "{}", c.signal);
        let ecr = classify_error(NOTES[11].0);
        assert!(ecr.ambiguous_with().contains(&AccessDenied));
        assert!(classify_error(NOTES[12].0).ambiguous_with().is_empty());
        assert!(classify_error(NOTES[17].0).ambiguous_with().is_empty());
    }

    #[test]
    fn status_extraction() {
        let s = |t: &str| classify_error(t).http_status;
        assert_eq!(
            s(
                "unexpected status from HEAD request to https://r/v2/a/manifests/b: 401 Unauthorized"
            ),
            Some(401)
        );
        assert_eq!(
            s("pulling from host r failed with status code [manifests v1]: 403 Forbidden"),
            Some(403)
        );
        assert_eq!(
            s("429 Too Many Requests - Server message: toomanyrequests: slow down"),
            Some(429)
        );
        assert_eq!(
            s("GET https://r/v2/token: response status code 403: denied: nope"),
            Some(403)
        );
        assert_eq!(s("API error (404): repository r/app not found"), Some(404));
        assert_eq!(
            s("received unexpected HTTP status: 500 Internal Server Error"),
            Some(500)
        );
        assert_eq!(s("unexpected status code 502"), Some(502));
        // Ports, addresses and digests are not statuses.
        assert_eq!(s("dial tcp 10.1.2.3:443: i/o timeout"), None);
        assert_eq!(
            s("dial tcp 10.1.2.3:403: connect: connection refused"),
            None
        );
        assert_eq!(s("manifests/sha256:429abc401def: not found"), None);
        assert_eq!(s("layer 404 of 900 not found"), None);
        assert_eq!(s("unexpected status: 4010 Unauthorized"), None);
    }

    /// The signal names what the node looked for, never a template placeholder.
    #[test]
    fn signals_name_the_real_reference() {
        let c = classify_error(
            "failed to pull and unpack image \"127.0.0.1:40777/team/checkout:v2.1.9\": failed to resolve image: 127.0.0.1:40777/team/checkout:v2.1.9: not found",
        );
        assert_eq!(
            c.signal,
            "127.0.0.1:40777/team/checkout:v2.1.9: not found (404 on the manifest)"
        );
        assert_eq!(c.rule, "manifest-unknown");
        let c = classify_error("Error response from daemon: manifest for Team/App:V9 not found");
        assert_eq!(c.signal, "manifest for Team/App:V9 not found");
        let c = classify_error("unknown: repository library/ghost not found");
        assert!(
            c.signal.starts_with("repository library/ghost not found"),
            "{}",
            c.signal
        );
        for (text, _, _) in NOTES {
            let c = classify_error(text);
            assert!(!c.signal.contains('<'), "{}", c.signal);
        }
    }

    #[test]
    fn registry_base_urls() {
        assert_eq!(
            registry_base_url("failed to do request: Head \"http://registry.blackhole.example/v2/team/checkout/manifests/v2.1.0\": dial tcp 127.0.0.1:80: i/o timeout").as_deref(),
            Some("http://registry.blackhole.example")
        );
        assert_eq!(
            registry_base_url("Get \"https://user@reg.example.com:5000/v2/\": EOF").as_deref(),
            Some("https://reg.example.com:5000")
        );
        // A documentation link is not where the node connected.
        assert_eq!(
            registry_base_url(
                "unauthorized: authentication required, visit https://aka.ms/acr/authorization for more information."
            ),
            None
        );
    }

    #[test]
    fn host_extraction() {
        let h = |t: &str| classify_error(t).host;
        // A registry API URL wins over references and token URLs.
        assert_eq!(
            h("failed to resolve reference \"docker.io/library/nginx:1\": failed to do request: Head \"https://registry-1.docker.io/v2/library/nginx/manifests/1\": EOF").as_deref(),
            Some("registry-1.docker.io")
        );
        assert_eq!(
            h("failed to resolve reference \"reg.example.com/app:v1\": failed to authorize: failed to fetch oauth token: unexpected status from GET request to https://auth.example.com/token?scope=x: 401 Unauthorized").as_deref(),
            Some("reg.example.com")
        );
        // Only a token URL: its host.
        assert_eq!(h(NOTES[6].0).as_deref(), Some("auth.docker.io"));
        // References, Docker-normalized.
        assert_eq!(
            h("failed to pull and unpack image \"nginx:1.25\": x").as_deref(),
            Some("docker.io")
        );
        assert_eq!(h("initializing source docker://localhost:5000/app:v1: reading manifest v1 in localhost:5000/app: manifest unknown").as_deref(), Some("localhost:5000"));
        assert_eq!(h("Error response from daemon: pull access denied for gcr.io/proj/app, repository does not exist").as_deref(), Some("gcr.io"));
        assert_eq!(
            h("manifest for localhost/app:1 not found: manifest unknown").as_deref(),
            Some("localhost")
        );
        assert_eq!(
            h("manifest for acme/app:1 not found: manifest unknown").as_deref(),
            Some("docker.io")
        );
        assert_eq!(
            h("image \"index.docker.io/library/nginx\"").as_deref(),
            Some("docker.io")
        );
        assert_eq!(
            h("reading manifest v1 in quay.io/acme/app: unauthorized").as_deref(),
            Some("quay.io")
        );
        // URLs with credentials, ports, IPv6.
        assert_eq!(
            h("Get \"https://user@reg.example.com:5000/v2/\": EOF").as_deref(),
            Some("reg.example.com:5000")
        );
        assert_eq!(
            h("Get \"https://[fd00::1]:5000/v2/\": EOF").as_deref(),
            Some("[fd00::1]:5000")
        );
        assert_eq!(
            h("Get http://10.0.0.5:5000/v2/: connection refused").as_deref(),
            Some("10.0.0.5:5000")
        );
        // A platform name is not a reference; a documentation link is not a registry.
        assert_eq!(h(NOTES[25].0), None);
        assert_eq!(h(NOTES[20].0), None);
        assert_eq!(
            h(
                "unauthorized: authentication required, visit https://aka.ms/acr/authorization for more information."
            ),
            None
        );
    }

    #[test]
    fn envelope_stripping() {
        let c = classify_error(
            "rpc error: code = Unknown desc = Error response from daemon: manifest for nginx:9.9 not found: manifest unknown: manifest unknown",
        );
        assert_eq!(c.grpc_code.as_deref(), Some("Unknown"));
        assert_eq!(
            c.error,
            "Error response from daemon: manifest for nginx:9.9 not found: manifest unknown: manifest unknown"
        );
        assert_eq!(c.cause, ImageNotFound);

        let c = classify_error(
            "  Failed to pull image \"nginx:9.9\": rpc error: code = NotFound desc = failed to pull and unpack image \"docker.io/library/nginx:9.9\": failed to resolve image: docker.io/library/nginx:9.9: not found  ",
        );
        assert_eq!(c.grpc_code.as_deref(), Some("NotFound"));
        assert!(
            c.error.starts_with("failed to pull and unpack image"),
            "{}",
            c.error
        );
        assert!(c.error.ends_with("not found"), "{}", c.error);

        // Aggregated attempts (one per credential): every envelope goes.
        let c = classify_error(
            "[rpc error: code = Unknown desc = unexpected status from HEAD request to https://r.example/v2/a/manifests/b: 401 Unauthorized, rpc error: code = NotFound desc = r.example/a:b: not found]",
        );
        assert_eq!(c.grpc_code.as_deref(), Some("Unknown"));
        assert_eq!(
            c.error,
            "[unexpected status from HEAD request to https://r.example/v2/a/manifests/b: 401 Unauthorized, r.example/a:b: not found]"
        );
        // With a working credential the tag is still missing: that is what matters.
        assert_eq!(c.cause, ImageNotFound);

        // 1.28+: no envelope for Unknown.
        let c =
            classify_error("failed to pull and unpack image \"docker.io/library/nginx:9.9\": x");
        assert_eq!(c.grpc_code, None);
        // Not an envelope.
        let c = classify_error("rpc error: code = ");
        assert_eq!((c.grpc_code, c.error.as_str()), (None, "rpc error: code ="));
        let c = classify_error("rpc error: code = Not Found desc = x");
        assert_eq!(c.grpc_code, None);
    }

    /// No-panic properties, and the parsers' round trips.
    mod parser_properties {
        use std::collections::BTreeMap;

        use base64::Engine;
        use base64::engine::general_purpose::STANDARD;
        use proptest::prelude::*;

        use super::super::*;
        use crate::registry::keyring::{
            self, DOCKERCFG, DOCKERCONFIGJSON, Keyring, parse_pull_secret,
        };
        use crate::registry::reference::ImageRef;

        /// Pieces of real error texts, to reach deep into the rules.
        const FRAGMENTS: &[&str] = &[
            "rpc error: code = ",
            "Unknown",
            "NotFound",
            " desc = ",
            "Failed to pull image \"",
            "\": ",
            "failed to pull and unpack image \"docker.io/library/nginx:9.9\"",
            ": not found",
            "manifest unknown",
            "manifest for ",
            " not found",
            "pull access denied",
            "no basic auth credentials",
            "401 Unauthorized",
            "403 Forbidden",
            "429 Too Many Requests",
            "status code ",
            "error (",
            ")",
            "https://",
            "http://",
            "reg.example.com",
            ":5000",
            "/v2/",
            "/token?scope=",
            "docker://",
            "image \"",
            "reference \"",
            "reading manifest ",
            " in ",
            "x509: ",
            "tls: ",
            "no such host",
            "lookup ",
            ":53",
            "i/o timeout",
            "connection refused",
            "EOF",
            "denied: ",
            "unauthorized",
            "repository ",
            "name unknown",
            "no match for platform in manifest",
            "invalid reference format",
            "Back-off pulling image \"",
            ": ErrImagePull: ",
            "İ",
            "ß",
            "\u{0}",
            "é",
            "🦀",
            "\"",
            "@",
            "/",
            ":",
            " ",
            "\n",
            "[",
            "]",
        ];

        fn fragments() -> impl Strategy<Value = String> {
            prop::collection::vec(prop::sample::select(FRAGMENTS), 0..24).prop_map(|v| v.concat())
        }

        fn text() -> impl Strategy<Value = String> {
            prop_oneof![any::<String>(), "\\PC{0,300}", fragments()]
        }

        fn reason() -> impl Strategy<Value = String> {
            prop_oneof![
                prop::sample::select(&PULL_FAILURE_REASONS[..]).prop_map(str::to_string),
                Just("Init:ImagePullBackOff".to_string()),
                any::<String>(),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            #[test]
            fn classify_error_never_panics(t in text()) {
                let c = classify_error(&t);
                // The error is always a piece of the input, envelope removed.
                prop_assert!(c.error.len() <= t.len());
                prop_assert!(!c.signal.is_empty());
                prop_assert!(!c.backoff_only);
                if let Some(s) = c.http_status {
                    prop_assert!((100..600).contains(&s));
                }
            }

            #[test]
            fn classify_container_never_panics(
                r in reason(),
                m in text(),
                events in prop::collection::vec((reason(), text(), any::<i32>()), 0..6),
            ) {
                let evs: Vec<EventText<'_>> = events
                    .iter()
                    .map(|(r, m, n)| EventText { reason: r, message: m, count: *n })
                    .collect();
                let c = classify_container(&r, &m, &evs);
                if c.backoff_only {
                    prop_assert_eq!(c.cause, Cause::Unknown);
                    prop_assert_eq!(c.confidence, Confidence::Low);
                }
                let _ = is_pull_failure_reason(&r);
            }

            #[test]
            fn image_ref_parse_never_panics(s in prop_oneof![
                any::<String>(),
                "[a-zA-Z0-9._:/@\\-\\[\\]]{0,80}",
            ]) {
                if let Err(e) = ImageRef::parse(&s) {
                    prop_assert!(!e.to_string().is_empty());
                }
            }

            #[test]
            fn image_ref_display_round_trips(s in prop_oneof![
                // Plausible references: domain, path, tag, digest.
                "(([a-z0-9]{1,8}(\\.[a-z0-9-]{0,6}[a-z0-9]){0,2}|localhost|[A-Z][a-z]{1,5}|\\[[0-9a-f:]{2,12}\\])(:[0-9]{1,5})?/)?[a-z0-9]{1,8}([._-][a-z0-9]{1,5}){0,2}(/[a-z0-9]{1,8}(__[a-z0-9]{1,3})?){0,3}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,20})?(@sha256:[a-f0-9]{64})?",
                "[a-zA-Z0-9._:/@\\-]{1,60}",
            ]) {
                if let Ok(r) = ImageRef::parse(&s) {
                    let shown = r.to_string();
                    let again = ImageRef::parse(&shown);
                    prop_assert!(again.is_ok(), "{} -> {} -> {:?}", s, shown, again);
                    let again = again.unwrap();
                    // Display writes the implicit parts explicitly, so only the
                    // `implicit_*` flags may differ.
                    prop_assert_eq!(
                        ImageRef { implicit_tag: r.implicit_tag, implicit_domain: r.implicit_domain, ..again.clone() },
                        r.clone(),
                        "{} -> {}", s, shown
                    );
                    prop_assert!(!again.implicit_tag && !again.implicit_domain);
                    prop_assert_eq!(again.to_string(), shown);
                }
            }

            #[test]
            fn pull_secret_parse_never_panics(
                bytes in prop::collection::vec(any::<u8>(), 0..512),
                json_ish in fragments_json(),
            ) {
                for ty in [DOCKERCONFIGJSON, DOCKERCFG, "Opaque"] {
                    for key in [".dockerconfigjson", ".dockercfg"] {
                        for data in [&bytes, json_ish.as_bytes().to_vec().as_ref()] {
                            let map = BTreeMap::from([(key.to_string(), data.clone())]);
                            if let Err(e) = parse_pull_secret(ty, &map) {
                                prop_assert!(!e.to_string().is_empty());
                            }
                        }
                    }
                }
            }

            #[test]
            fn pull_secret_entries_decode(
                entries in prop::collection::btree_map(
                    "\\PC{0,30}",
                    (any::<String>(), any::<String>(), prop::option::of(any::<String>()), any::<bool>()),
                    0..6,
                ),
                nested in any::<bool>(),
            ) {
                let mut auths = serde_json::Map::new();
                for (key, (user, pass, raw_auth, with_fields)) in &entries {
                    let user = user.replace(':', "");
                    let mut e = serde_json::Map::new();
                    e.insert(
                        "auth".into(),
                        serde_json::Value::String(
                            raw_auth.clone().unwrap_or_else(|| STANDARD.encode(format!("{user}:{pass}"))),
                        ),
                    );
                    if *with_fields {
                        e.insert("username".into(), user.clone().into());
                        e.insert("password".into(), pass.clone().into());
                    }
                    auths.insert(key.clone(), e.into());
                }
                let (ty, key, doc) = if nested {
                    (DOCKERCONFIGJSON, ".dockerconfigjson", serde_json::json!({ "auths": auths }))
                } else {
                    (DOCKERCFG, ".dockercfg", serde_json::Value::Object(auths))
                };
                let data = BTreeMap::from([(key.to_string(), doc.to_string().into_bytes())]);
                let parsed = parse_pull_secret(ty, &data).unwrap();
                prop_assert_eq!(parsed.len(), entries.len());
                for entry in &parsed {
                    let (user, pass, raw_auth, _) = &entries[&entry.key];
                    if raw_auth.is_none() {
                        let cred = entry.credential.as_ref().unwrap();
                        prop_assert_eq!(&cred.username, &user.replace(':', ""));
                        prop_assert_eq!(&cred.password(), pass);
                    }
                }
                // The keyring takes whatever the secret holds.
                let mut ring = Keyring::default();
                ring.add("s", &parsed);
                for name in ["docker.io/library/nginx", "reg.example.com/team/app", "reg.example.com:5000/a"] {
                    let _ = ring.lookup(name);
                }
                for e in &parsed {
                    let _ = keyring::normalize_key(&e.key);
                }
            }
        }

        /// JSON-looking bytes: braces, quotes, keys, base64 and junk.
        fn fragments_json() -> impl Strategy<Value = String> {
            const PARTS: &[&str] = &[
                "{",
                "}",
                "[",
                "]",
                "\"",
                ":",
                ",",
                "\"auths\"",
                "\"auth\"",
                "\"username\"",
                "\"password\"",
                "\"https://index.docker.io/v1/\"",
                "\"reg.example.com\"",
                "\"YWxpY2U6czNjcmV0\"",
                "\"=\"",
                "null",
                "1e400",
                "-0",
                "true",
                "\"\\u0000\"",
                "\"\\ud800\"",
                "é",
                "🦀",
                " ",
            ];
            prop::collection::vec(prop::sample::select(PARTS), 0..40).prop_map(|v| v.concat())
        }
    }
}
