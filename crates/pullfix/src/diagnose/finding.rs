//! One finding per failing container image: the cause, how sure, the
//! evidence (including evidence that disagrees), and the next steps with the
//! exact commands. [`decide`] is pure: it weighs what the node reported, the
//! pull secrets, the registry probe and the ECR API.

use serde::Serialize;

use crate::diagnose::classify::Classified;
use crate::diagnose::secrets::{Analysis, Problem, SecretReport};
use crate::diagnose::{Cause, Confidence, Detail};
use crate::probe::{Attempt, ProbeResult, suggest_tags};
use crate::registry::client::PullFailure;
use crate::registry::reference::ImageRef;
use crate::scan::{Severity, Workload};

/// A piece of evidence and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// `kubelet`, `event`, `secret`, `registry`, `ecr`, `node`, `cronjob`, `rbac`, `api`.
    pub source: String,
    pub text: String,
    /// True when this piece contradicts the chosen cause.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub disagrees: bool,
}

/// A next step: what to do, and the command that does it (redacted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

/// What the ECR API said, when asked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EcrCheck {
    /// `DescribeImages` found the tag.
    pub image_exists: Option<bool>,
    /// `GetAuthorizationToken` succeeded with the operator's AWS identity.
    pub token_available: Option<bool>,
    /// The AWS error, when a call failed.
    pub error: Option<String>,
}

/// Context the decision needs beyond the container itself.
#[derive(Debug, Clone, Default)]
pub(crate) struct Context {
    pub namespace: String,
    pub workload: Option<Workload>,
    pub container: String,
    /// Registries the namespace's pull secrets have entries for.
    pub private_registries: Vec<String>,
    /// Nodes that hold the image, and nodes where the pod fails.
    pub nodes_with_image: Vec<String>,
    pub failing_nodes: Vec<String>,
    pub running_elsewhere: usize,
    /// An image reference verified to exist in the right registry (for
    /// wrong-registry), from a probe.
    pub verified_replacement: Option<String>,
}

/// The verdict for one container image.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub cause: Cause,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Detail>,
    pub confidence: Confidence,
    pub severity: Severity,
    pub namespace: String,
    pub workload: Option<Workload>,
    pub pod: String,
    pub pods: Vec<String>,
    /// The ServiceAccount the pods run as (where `fix` attaches a pull
    /// secret with `--attach-to service-account`).
    pub service_account: String,
    pub container: String,
    pub init_container: bool,
    pub image: String,
    pub summary: String,
    pub evidence: Vec<Evidence>,
    pub next_steps: Vec<Step>,
    pub secrets: Vec<SecretReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<ProbeResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ecr: Option<EcrCheck>,
    /// Tags verified to exist that are close to the missing one, best first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suggested_tags: Vec<String>,
    /// An image reference verified to exist in the right registry (wrong-registry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
    /// Pull secrets in the namespace, not used by this pod, whose `auths`
    /// match the image's registry (candidates to attach).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unused_matching_secrets: Vec<String>,
    /// How long the oldest failing pod of the group has been failing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_for_seconds: Option<i64>,
}

fn ev(source: &str, text: impl Into<String>) -> Evidence {
    Evidence {
        source: source.into(),
        text: text.into(),
        disagrees: false,
    }
}

fn step(text: impl Into<String>, command: Option<String>) -> Step {
    Step {
        text: text.into(),
        command,
    }
}

/// Weighs the evidence. Pure.
///
/// The steps, in order: the node's error and the secrets' evidence; an
/// unusable image reference or a cause no other evidence can change; a
/// Docker Hub image in a namespace whose secrets are for a private registry;
/// the pod's credentials; the ECR token's expiry; the ECR API; the registry
/// probe; the nodes that already hold the image.
#[allow(clippy::too_many_arguments)]
pub(crate) fn decide(
    image_text: &str,
    image: Option<&ImageRef>,
    classified: &Classified,
    secrets: &Analysis,
    probe: Option<&ProbeResult>,
    ecr: Option<&EcrCheck>,
    ctx: &Context,
) -> (Cause, Option<Detail>, Confidence, Vec<Evidence>) {
    let mut d = Decision {
        cause: classified.cause,
        detail: classified.detail,
        confidence: classified.confidence,
        evidence: Vec::new(),
    };
    d.evidence.extend(kubelet_evidence(classified));
    d.evidence.extend(secret_evidence(secrets));
    let Some(image) = image else {
        return (Cause::InvalidImageName, None, Confidence::High, d.evidence);
    };
    if matches!(d.cause, Cause::InvalidImageName | Cause::NeverPull) {
        return (d.cause, d.detail, Confidence::High, d.evidence);
    }
    if let Some(e) = wrong_registry_evidence(image_text, image, d.cause, ctx) {
        d.evidence.push(e);
        return (
            Cause::WrongRegistry,
            None,
            wrong_registry_confidence(probe),
            d.evidence,
        );
    }
    weigh_credentials(&mut d, image, secrets);
    weigh_ecr_token_expiry(&mut d, classified, secrets);
    if let Some(e) = ecr {
        weigh_ecr_api(&mut d, e);
    }
    if let Some(p) = probe {
        weigh_probe(&mut d, p, image, secrets);
    }
    d.evidence.extend(nodes_with_image_evidence(ctx));
    (d.cause, d.detail, d.confidence, d.evidence)
}

/// The decision so far: the cause, how sure, and the evidence gathered.
struct Decision {
    cause: Cause,
    detail: Option<Detail>,
    confidence: Confidence,
    evidence: Vec<Evidence>,
}

/// A piece of evidence that contradicts the chosen cause.
fn disagreeing(source: &str, text: impl Into<String>) -> Evidence {
    Evidence {
        disagrees: true,
        ..ev(source, text)
    }
}

/// What the node reported: the runtime's error and its signal, or that only the back-off is left.
fn kubelet_evidence(classified: &Classified) -> Option<Evidence> {
    if classified.backoff_only {
        Some(ev(
            "kubelet",
            "only `Back-off pulling image` is left (the pull events have expired); the registry probe decides",
        ))
    } else if !classified.error.is_empty() {
        Some(ev(
            "kubelet",
            format!("{}: {}", classified.signal, classified.error),
        ))
    } else {
        None
    }
}

/// Per pull secret: its problems, the tool that manages it, its ECR token's expiry.
fn secret_evidence(secrets: &Analysis) -> Vec<Evidence> {
    let mut evidence = Vec::new();
    for r in &secrets.reports {
        for p in &r.problems {
            evidence.push(ev("secret", p.describe(&r.name)));
        }
        if let Some(m) = &r.manager {
            evidence.push(ev(
                "secret",
                format!(
                    "secret `{}` is managed by {}{}: a live edit will be reverted",
                    r.name,
                    m.tool,
                    m.source
                        .as_ref()
                        .map(|s| format!(" ({s})"))
                        .unwrap_or_default()
                ),
            ));
        }
        if let Some(e) = &r.ecr {
            evidence.push(ev(
                "secret",
                format!(
                    "ECR token in `{}` {} at {} ({})",
                    r.name,
                    if e.expired { "expired" } else { "expires" },
                    e.expires_at.format("%Y-%m-%d %H:%M UTC"),
                    if e.basis == "token" {
                        "decoded from the token"
                    } else {
                        "estimated: last written + 12 h"
                    }
                ),
            ));
        }
    }
    evidence
}

/// Wrong registry: a Docker Hub image by default while the namespace's
/// secrets point at a private registry, with a cause that fits it.
fn wrong_registry_evidence(
    image_text: &str,
    image: &ImageRef,
    cause: Cause,
    ctx: &Context,
) -> Option<Evidence> {
    let fits = image.implicit_domain
        && !ctx.private_registries.is_empty()
        && matches!(
            cause,
            Cause::RepositoryNotFound
                | Cause::CredentialsMissing
                | Cause::ImageNotFound
                | Cause::Unknown
        );
    fits.then(|| {
        ev(
            "secret",
            format!(
                "`{image_text}` has no registry prefix, so it is pulled from Docker Hub; this namespace's pull secrets are for {}",
                ctx.private_registries.join(", ")
            ),
        )
    })
}

/// How sure a wrong-registry finding is: high with a registry probe, medium without.
fn wrong_registry_confidence(probe: Option<&ProbeResult>) -> Confidence {
    Confidence::High.min(if probe.is_some() {
        Confidence::High
    } else {
        Confidence::Medium
    })
}

/// The pod's credentials: unreadable secrets leave the node's error in
/// charge; no usable credential and an auth-looking failure (outside Docker
/// Hub) mean the credential is missing.
fn weigh_credentials(d: &mut Decision, image: &ImageRef, secrets: &Analysis) {
    let usable = !secrets.credentials.is_empty();
    if secrets.incomplete {
        // `rbac` only when a read was really denied (not timed out).
        let denied = secrets
            .reports
            .iter()
            .any(|r| r.problems.contains(&Problem::Unreadable));
        d.evidence.push(ev(
            if denied { "rbac" } else { "api" },
            "some pull secrets could not be read, so their credentials were not checked or tested; the cause rests on the node's error",
        ));
    } else if !usable
        && matches!(
            d.cause,
            Cause::CredentialsMissing
                | Cause::RepositoryNotFound
                | Cause::CredentialsRejected
                | Cause::Unknown
        )
        && !image.is_docker_hub()
    {
        d.cause = Cause::CredentialsMissing;
        d.confidence = d.confidence.max(if secrets.reports.is_empty() {
            Confidence::High
        } else {
            Confidence::Medium
        });
    }
}

/// The ECR token's expiry in the pull secrets: an expired one makes an
/// auth failure certainly "expired"; a young one says it is not.
fn weigh_ecr_token_expiry(d: &mut Decision, classified: &Classified, secrets: &Analysis) {
    let ecr_expired = secrets
        .reports
        .iter()
        .any(|r| r.ecr.as_ref().is_some_and(|e| e.expired));
    // ECR answers an expired token with a bare 403, which the classifier
    // already reads as "expired" on an ECR host; the decoded expiry makes
    // it certain either way.
    // Docker reports ECR's bare 403 as "denied: requested access to the
    // resource is denied", which reads as a repository it cannot see: with
    // an expired token, nothing is visible, so that is the same failure.
    if matches!(
        d.cause,
        Cause::CredentialsRejected
            | Cause::AccessDenied
            | Cause::CredentialsExpired
            | Cause::RepositoryNotFound
    ) && ecr_expired
    {
        d.cause = Cause::CredentialsExpired;
        d.confidence = Confidence::High;
    }
    // The classifier guesses "expired" for any auth failure on an ECR host;
    // a token that is still young says otherwise.
    let ecr_fresh = secrets
        .reports
        .iter()
        .any(|r| r.ecr.as_ref().is_some_and(|e| !e.expired));
    if d.cause == Cause::CredentialsExpired && !ecr_expired && ecr_fresh {
        d.cause = if classified.http_status == Some(403) {
            Cause::AccessDenied
        } else {
            Cause::CredentialsRejected
        };
        d.confidence = Confidence::Medium;
    }
}

/// What the ECR API said: whether the tag exists, and whether a fresh
/// token can be had (then a 403 is a stale token, not missing permissions).
fn weigh_ecr_api(d: &mut Decision, e: &EcrCheck) {
    if let Some(exists) = e.image_exists {
        d.evidence.push(ev(
            "ecr",
            if exists {
                "DescribeImages: the tag exists in ECR"
            } else {
                "DescribeImages: the tag does not exist in ECR"
            },
        ));
        if !exists && d.cause != Cause::ImageNotFound {
            d.evidence
                .push(disagreeing("ecr", "ECR says the tag is missing too"));
        }
    }
    if e.token_available == Some(true) {
        d.evidence.push(ev("ecr", "GetAuthorizationToken works with your AWS identity: permissions are fine, the secret's token is stale"));
        if d.cause == Cause::AccessDenied {
            d.cause = Cause::CredentialsExpired;
        }
    } else if e.token_available == Some(false) {
        d.evidence.push(ev(
            "ecr",
            format!(
                "GetAuthorizationToken failed: {}",
                e.error.clone().unwrap_or_default()
            ),
        ));
    }
}

/// The registry probe: its attempts as evidence, then, in order, a
/// registry unreachable from here too, an image that resolves from here,
/// or the registry's decisive failure.
fn weigh_probe(d: &mut Decision, p: &ProbeResult, image: &ImageRef, secrets: &Analysis) {
    d.evidence.extend(probe_evidence(p));
    let decisive = decisive_failure(p, secrets);
    let works = p
        .with_credential
        .as_ref()
        .map_or(p.anonymous.ok(), Attempt::ok);
    if p.unreachable_here {
        weigh_unreachable_here(d, decisive);
    } else if works {
        weigh_resolves_here(d);
    } else if let Some(f) = decisive {
        weigh_registry_failure(d, f, p, image);
    }
}

/// What the probe did: where it ran from, each attempt's outcome, the rate limit.
fn probe_evidence(p: &ProbeResult) -> Vec<Evidence> {
    let mut evidence = vec![ev("registry", format!("probed from {}", p.from))];
    if let Some(a) = &p.with_credential {
        evidence.push(ev(
            "registry",
            format!(
                "with `{}`: {}",
                p.username.clone().unwrap_or_default(),
                attempt_text(a)
            ),
        ));
    }
    evidence.push(ev(
        "registry",
        format!("anonymous: {}", attempt_text(&p.anonymous)),
    ));
    if let Some(r) = &p.rate_limit {
        evidence.push(ev(
            "registry",
            format!(
                "rate limit: {} remaining of {}{}",
                r.remaining.clone().unwrap_or_else(|| "?".into()),
                r.limit.clone().unwrap_or_else(|| "?".into()),
                r.retry_after
                    .as_ref()
                    .map(|s| format!(", retry after {s} s"))
                    .unwrap_or_default()
            ),
        ));
    }
    evidence
}

/// The probe failure that speaks for the pod: the credentialed one, else
/// the anonymous one when the pod has no credential (and every secret was read).
fn decisive_failure<'p>(p: &'p ProbeResult, secrets: &Analysis) -> Option<&'p PullFailure> {
    // Without the pod's credential (unreadable secrets) an anonymous
    // failure says nothing about it.
    let anonymous_decides = p.with_credential.is_none() && !secrets.incomplete;
    p.failure.as_ref().or(if anonymous_decides {
        p.anonymous_failure.as_ref()
    } else {
        None
    })
}

/// The registry is not reachable from here either: the node's view stands
/// (an unknown cause takes the probe's network failure, with low confidence).
fn weigh_unreachable_here(d: &mut Decision, decisive: Option<&PullFailure>) {
    d.evidence.push(ev(
        "registry",
        "inconclusive: the registry is not reachable from this machine either; the node's view stands",
    ));
    if matches!(d.cause, Cause::Unknown) {
        if let Some(f) = decisive {
            (d.cause, d.detail) = network_cause(f);
            d.confidence = Confidence::Low;
        }
    } else if matches!(d.cause, Cause::RegistryUnreachable | Cause::TlsError) {
        d.confidence = Confidence::High;
    }
}

/// The image resolves from here: the node's network, or a node-side
/// difference, is to blame (disagreeing evidence; low confidence for an auth or not-found cause).
fn weigh_resolves_here(d: &mut Decision) {
    if matches!(d.cause, Cause::RegistryUnreachable | Cause::TlsError) {
        d.evidence.push(disagreeing(
            "registry",
            "the image resolves from here: the problem is between the node and the registry (DNS, firewall, proxy, CA on the node)",
        ));
    } else if d.cause != Cause::PlatformMismatch && d.cause != Cause::RateLimited {
        d.evidence.push(disagreeing(
            "registry",
            "the image resolves from here with the same credential: the node saw something else (retry pending, node-level credentials, or a fix already applied)",
        ));
        d.confidence = Confidence::Low;
    }
}

/// The registry's failure: suggest near tags for a missing one; it confirms
/// the node's cause, decides an unknown one, or disagrees.
fn weigh_registry_failure(d: &mut Decision, f: &PullFailure, p: &ProbeResult, image: &ImageRef) {
    let (registry_cause, registry_detail) = probe_cause(f, p.with_credential.is_some());
    if registry_cause == Cause::ImageNotFound {
        d.evidence.extend(near_tags_evidence(p, image));
    }
    if d.cause == Cause::Unknown || d.cause == registry_cause {
        d.confidence = if d.cause == registry_cause {
            Confidence::High
        } else {
            Confidence::Medium
        };
        d.cause = registry_cause;
        d.detail = d.detail.or(registry_detail);
    } else if !consistent(d.cause, registry_cause) {
        d.evidence.push(disagreeing(
            "registry",
            format!(
                "the registry's answer points to {} instead",
                registry_cause.id()
            ),
        ));
    } else {
        d.confidence = Confidence::High;
    }
}

/// Tags the registry lists that are close to the missing one.
fn near_tags_evidence(p: &ProbeResult, image: &ImageRef) -> Option<Evidence> {
    let (Some(tags), Some(tag)) = (&p.tags, &image.tag) else {
        return None;
    };
    let near = suggest_tags(tag, tags);
    if near.is_empty() {
        return None;
    }
    Some(ev(
        "registry",
        format!(
            "tag `{tag}` does not exist; did you mean {}?",
            near.iter()
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ))
}

/// Replicas running on nodes that already hold the image (IfNotPresent skips the pull there).
fn nodes_with_image_evidence(ctx: &Context) -> Option<Evidence> {
    if ctx.nodes_with_image.is_empty() || ctx.running_elsewhere == 0 {
        return None;
    }
    Some(ev(
        "node",
        format!(
            "{} replica(s) run on {} which already hold the image (IfNotPresent skips the pull there); pods on {} must pull and fail",
            ctx.running_elsewhere,
            ctx.nodes_with_image.join(", "),
            if ctx.failing_nodes.is_empty() {
                "other nodes".to_string()
            } else {
                ctx.failing_nodes.join(", ")
            }
        ),
    ))
}

/// Whether a registry answer is what the node's cause would produce
/// (an expired token is rejected like a wrong one; a missing repository
/// answers 404 on some registries; no credential looks like "not yours").
fn consistent(cause: Cause, probe: Cause) -> bool {
    matches!(
        (cause, probe),
        (Cause::CredentialsExpired, Cause::CredentialsRejected)
            | (Cause::RepositoryNotFound, Cause::ImageNotFound)
            | (
                Cause::CredentialsMissing,
                Cause::CredentialsMissing | Cause::RepositoryNotFound
            )
    )
}

fn attempt_text(a: &Attempt) -> String {
    match a {
        Attempt::Ok { digest } => format!("resolves ({digest})"),
        Attempt::Failed { failure, .. } => failure.clone(),
        Attempt::TimedOut => "no answer in time".into(),
    }
}

fn network_cause(f: &PullFailure) -> (Cause, Option<Detail>) {
    match f {
        PullFailure::Dns { .. } => (Cause::RegistryUnreachable, Some(Detail::Dns)),
        PullFailure::Refused { .. } => (Cause::RegistryUnreachable, Some(Detail::Refused)),
        PullFailure::Timeout { .. } => (Cause::RegistryUnreachable, Some(Detail::Timeout)),
        PullFailure::Tls { detail, .. } if detail.contains("unknown authority") => {
            (Cause::TlsError, Some(Detail::UnknownAuthority))
        }
        PullFailure::Tls { detail, .. } if detail.contains("expired") => {
            (Cause::TlsError, Some(Detail::CertificateExpired))
        }
        PullFailure::Tls { .. } => (Cause::TlsError, None),
        _ => (Cause::Unknown, None),
    }
}

/// The cause a registry answer points to.
pub(crate) fn probe_cause(f: &PullFailure, with_credential: bool) -> (Cause, Option<Detail>) {
    match f {
        PullFailure::NotFound { .. } => (Cause::ImageNotFound, None),
        PullFailure::AccessDenied { .. } => (Cause::RepositoryNotFound, None),
        PullFailure::NoBasicCredentials { .. } => (Cause::CredentialsMissing, None),
        PullFailure::TokenFetch { status: 401, .. } | PullFailure::Status { status: 401, .. } => {
            if with_credential {
                (Cause::CredentialsRejected, None)
            } else {
                (Cause::CredentialsMissing, None)
            }
        }
        PullFailure::TokenFetch { status: 403, .. } | PullFailure::Status { status: 403, .. } => {
            (Cause::AccessDenied, None)
        }
        PullFailure::RateLimited { .. } => (Cause::RateLimited, None),
        PullFailure::PlatformMismatch { .. } => (Cause::PlatformMismatch, None),
        other => network_cause(other),
    }
}

/// Builds the next steps for a cause, with commands a person can copy.
/// Secrets never appear: `<password>` placeholders stand in. Pure.
pub(crate) fn next_steps(
    cause: Cause,
    image: Option<&ImageRef>,
    image_text: &str,
    ctx: &Context,
    secrets: &[SecretReport],
    probe: Option<&ProbeResult>,
) -> Vec<Step> {
    let ns = &ctx.namespace;
    let target = ctx.workload.as_ref().map(Workload::target);
    let mut steps = Vec::new();
    match cause {
        Cause::ImageNotFound => {
            let near = probe
                .and_then(|p| p.tags.as_ref())
                .zip(image.and_then(|i| i.tag.as_deref()))
                .map(|(tags, tag)| suggest_tags(tag, tags))
                .unwrap_or_default();
            if let (Some(t), Some(first), Some(img)) = (&target, near.first(), image) {
                steps.push(step(
                    format!("point the workload at a tag that exists (verified: `{first}`)"),
                    Some(format!("kubectl set image {t} {}={}/{}:{first} -n {ns}", ctx.container, img.domain, img.repository)),
                ));
            } else {
                steps.push(step("check the tag your pipeline pushed, then set it on the workload", target.as_ref().map(|t| format!("kubectl set image {t} {}=<image>:<tag> -n {ns}", ctx.container))));
            }
        }
        Cause::WrongRegistry => {
            if let (Some(t), Some(verified)) = (&target, &ctx.verified_replacement) {
                steps.push(step(
                    format!("use the private registry's copy (verified to exist: {verified})"),
                    Some(format!("kubectl set image {t} {}={verified} -n {ns}", ctx.container)),
                ));
            } else if let Some(reg) = ctx.private_registries.first() {
                let path = image.map(|i| i.repository.trim_start_matches("library/").to_string()).unwrap_or_default();
                steps.push(step(
                    format!("find the image in the private registry {reg} (not verified: {reg}/{path} was not found or not probed) and set the full reference"),
                    target.as_ref().map(|t| format!("kubectl set image {t} {}={reg}/{path}:<tag> -n {ns}", ctx.container)),
                ));
            }
        }
        // Rendered from the plan `fix` runs (`remediate::plan::advice`),
        // once the other namespaces' copies of the secret are known.
        Cause::CredentialsMissing | Cause::CredentialsRejected | Cause::CredentialsExpired => {}
        Cause::AccessDenied => steps.push(step(
            "the credential is valid but may not pull this repository: grant pull access in the registry (IAM policy, project membership, robot account scope)",
            None,
        )),
        Cause::RepositoryNotFound => steps.push(step(
            "check the repository path (and that the credential can see it); the registry does not tell missing from forbidden",
            Some(format!("kubectl get {} -n {ns} -o jsonpath='{{..image}}'", target.clone().unwrap_or_else(|| "pods".into()))),
        )),
        Cause::RegistryUnreachable => {
            let host = image.map(|i| i.api_host().to_string()).unwrap_or_default();
            steps.push(step("test from inside the cluster (DNS, then HTTPS)", Some(format!("kubectl run pullfix-nettest --rm -it --restart=Never --image=busybox:1.36 -n {ns} -- sh -c 'nslookup {host}; wget -S -O- https://{host}/v2/'"))));
            steps.push(step("if the registry is down for everyone, escalate to the registry owner; a DNS or firewall problem goes to the network team", None));
        }
        Cause::TlsError => steps.push(step(
            "the node does not trust the registry's certificate: install the registry CA on the nodes' runtime (containerd certs.d / CRI-O registries.d) or fix the certificate",
            None,
        )),
        Cause::RateLimited => {
            steps.push(step(
                "authenticate pulls from Docker Hub (higher limit) with a pull secret for index.docker.io",
                Some(format!("kubectl create secret docker-registry dockerhub --docker-server=https://index.docker.io/v1/ --docker-username=<user> --docker-password=<token> -n {ns}")),
            ));
            steps.push(step("longer term: mirror public images into your registry", None));
        }
        Cause::InvalidImageName => steps.push(step(
            format!("fix the reference `{image_text}` (lowercase repository, one tag, valid digest)"),
            target.as_ref().map(|t| format!("kubectl set image {t} {}=<valid image> -n {ns}", ctx.container)),
        )),
        Cause::NeverPull => steps.push(step(
            "imagePullPolicy is Never: preload the image on the nodes or set the policy to IfNotPresent",
            target.as_ref().map(|t| format!("kubectl patch {t} -n {ns} --type=json -p '[{{\"op\":\"replace\",\"path\":\"/spec/template/spec/containers/0/imagePullPolicy\",\"value\":\"IfNotPresent\"}}]'")),
        )),
        Cause::PlatformMismatch => steps.push(step(
            "build the image for the node's architecture (multi-arch), or keep the pods on nodes it supports",
            target.as_ref().map(|t| format!("kubectl patch {t} -n {ns} -p '{{\"spec\":{{\"template\":{{\"spec\":{{\"nodeSelector\":{{\"kubernetes.io/arch\":\"amd64\"}}}}}}}}}}'")),
        )),
        Cause::Unknown => steps.push(step(
            "read the full error and events",
            Some(format!("kubectl describe pod -n {ns} -l <selector>")),
        )),
    }
    if secrets.iter().any(|s| s.manager.is_some()) {
        steps.push(step("the secret is managed by a tool: make the change at its source of truth, or the edit will be reverted", None));
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::classify::classify_error;
    use crate::diagnose::secrets::{EcrExpiry, Origin};

    fn secrets_with_ecr_token(expired: bool) -> Analysis {
        Analysis {
            reports: vec![SecretReport {
                name: "regcred".into(),
                origin: Origin::PodSpec,
                problems: Vec::new(),
                matched_key: Some("123456789012.dkr.ecr.us-east-1.amazonaws.com".into()),
                username: Some("AWS".into()),
                age_seconds: Some(14 * 3600),
                manager: None,
                ecr: Some(EcrExpiry {
                    expires_at: chrono::Utc::now(),
                    expired,
                    basis: "token".into(),
                }),
            }],
            credentials: Vec::new(),
            incomplete: false,
        }
    }

    /// Docker words ECR's bare 403 as a repository it cannot see; with the
    /// pull secret's ECR token expired, the cause is the token (seen on the
    /// sandbox's docker node, where the verdict used to depend on which pod
    /// was read).
    #[test]
    fn docker_denied_on_ecr_with_an_expired_token_is_expired() {
        let text = "Error response from daemon: Head \"https://123456789012.dkr.ecr.us-east-1.amazonaws.com/v2/team/checkout/manifests/v2.1.0\": denied: requested access to the resource is denied";
        let classified = classify_error(text);
        assert_eq!(classified.cause, Cause::RepositoryNotFound);
        let mut d = Decision {
            cause: classified.cause,
            detail: classified.detail,
            confidence: classified.confidence,
            evidence: Vec::new(),
        };
        weigh_ecr_token_expiry(&mut d, &classified, &secrets_with_ecr_token(true));
        assert_eq!(d.cause, Cause::CredentialsExpired);
        assert_eq!(d.confidence, Confidence::High);

        // A young token leaves the node's reading alone.
        let mut d = Decision {
            cause: classified.cause,
            detail: classified.detail,
            confidence: classified.confidence,
            evidence: Vec::new(),
        };
        weigh_ecr_token_expiry(&mut d, &classified, &secrets_with_ecr_token(false));
        assert_eq!(d.cause, Cause::RepositoryNotFound);
    }
}
