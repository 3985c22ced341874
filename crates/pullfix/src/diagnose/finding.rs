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
pub struct Context {
    pub namespace: String,
    pub workload: Option<Workload>,
    pub container: String,
    pub init: bool,
    /// Registries the namespace's pull secrets have entries for.
    pub private_registries: Vec<String>,
    /// Nodes that hold the image, and nodes where the pod fails.
    pub nodes_with_image: Vec<String>,
    pub failing_nodes: Vec<String>,
    pub running_elsewhere: usize,
    /// A `ready/desired` count for severity.
    pub ready: i64,
    pub desired: i64,
    pub rollout_blocked: bool,
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
#[allow(clippy::too_many_arguments)]
pub fn decide(
    image_text: &str,
    image: Option<&ImageRef>,
    classified: &Classified,
    secrets: &Analysis,
    probe: Option<&ProbeResult>,
    ecr: Option<&EcrCheck>,
    ctx: &Context,
) -> (Cause, Option<Detail>, Confidence, Vec<Evidence>) {
    let mut cause = classified.cause;
    let mut detail = classified.detail;
    let mut confidence = classified.confidence;
    let mut evidence = Vec::new();
    if classified.backoff_only {
        evidence.push(ev(
            "kubelet",
            "only `Back-off pulling image` is left (the pull events have expired); the registry probe decides",
        ));
    } else if !classified.error.is_empty() {
        evidence.push(ev(
            "kubelet",
            format!("{}: {}", classified.signal, classified.error),
        ));
    }
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
    let Some(image) = image else {
        return (Cause::InvalidImageName, None, Confidence::High, evidence);
    };
    if matches!(cause, Cause::InvalidImageName | Cause::NeverPull) {
        return (cause, detail, Confidence::High, evidence);
    }
    let usable = !secrets.credentials.is_empty();
    let ecr_expired = secrets
        .reports
        .iter()
        .any(|r| r.ecr.as_ref().is_some_and(|e| e.expired));

    // Wrong registry: Docker Hub by default while the namespace's secrets
    // point at a private registry.
    if image.implicit_domain
        && !ctx.private_registries.is_empty()
        && matches!(
            cause,
            Cause::RepositoryNotFound
                | Cause::CredentialsMissing
                | Cause::ImageNotFound
                | Cause::Unknown
        )
    {
        evidence.push(ev(
            "secret",
            format!(
                "`{image_text}` has no registry prefix, so it is pulled from Docker Hub; this namespace's pull secrets are for {}",
                ctx.private_registries.join(", ")
            ),
        ));
        return (
            Cause::WrongRegistry,
            None,
            Confidence::High.min(if probe.is_some() {
                Confidence::High
            } else {
                Confidence::Medium
            }),
            evidence,
        );
    }

    // No usable credential and an auth-looking failure (only when every
    // referenced secret could be read: otherwise the credential may exist).
    if secrets.incomplete {
        // `rbac` only when a read was really denied (not timed out).
        let denied = secrets
            .reports
            .iter()
            .any(|r| r.problems.contains(&Problem::Unreadable));
        evidence.push(ev(
            if denied { "rbac" } else { "api" },
            "some pull secrets could not be read, so their credentials were not checked or tested; the cause rests on the node's error",
        ));
    } else if !usable
        && matches!(
            cause,
            Cause::CredentialsMissing
                | Cause::RepositoryNotFound
                | Cause::CredentialsRejected
                | Cause::Unknown
        )
        && !image.is_docker_hub()
    {
        cause = Cause::CredentialsMissing;
        confidence = confidence.max(if secrets.reports.is_empty() {
            Confidence::High
        } else {
            Confidence::Medium
        });
    }

    // ECR answers an expired token with a bare 403, which the classifier
    // already reads as "expired" on an ECR host; the decoded expiry makes
    // it certain either way.
    if matches!(
        cause,
        Cause::CredentialsRejected | Cause::AccessDenied | Cause::CredentialsExpired
    ) && ecr_expired
    {
        cause = Cause::CredentialsExpired;
        confidence = Confidence::High;
    }
    // The classifier guesses "expired" for any auth failure on an ECR host;
    // a token that is still young says otherwise.
    let ecr_fresh = secrets
        .reports
        .iter()
        .any(|r| r.ecr.as_ref().is_some_and(|e| !e.expired));
    if cause == Cause::CredentialsExpired && !ecr_expired && ecr_fresh {
        cause = if classified.http_status == Some(403) {
            Cause::AccessDenied
        } else {
            Cause::CredentialsRejected
        };
        confidence = Confidence::Medium;
    }
    if let Some(e) = ecr {
        if let Some(exists) = e.image_exists {
            evidence.push(ev(
                "ecr",
                if exists {
                    "DescribeImages: the tag exists in ECR"
                } else {
                    "DescribeImages: the tag does not exist in ECR"
                },
            ));
            if !exists && cause != Cause::ImageNotFound {
                evidence.push(Evidence {
                    disagrees: true,
                    ..ev("ecr", "ECR says the tag is missing too")
                });
            }
        }
        if e.token_available == Some(true) {
            evidence.push(ev("ecr", "GetAuthorizationToken works with your AWS identity: permissions are fine, the secret's token is stale"));
            if cause == Cause::AccessDenied {
                cause = Cause::CredentialsExpired;
            }
        } else if e.token_available == Some(false) {
            evidence.push(ev(
                "ecr",
                format!(
                    "GetAuthorizationToken failed: {}",
                    e.error.clone().unwrap_or_default()
                ),
            ));
        }
    }

    if let Some(p) = probe {
        evidence.push(ev("registry", format!("probed from {}", p.from)));
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
        // Without the pod's credential (unreadable secrets) an anonymous
        // failure says nothing about it.
        let anonymous_decides = p.with_credential.is_none() && !secrets.incomplete;
        let decisive = p.failure.as_ref().or(if anonymous_decides {
            p.anonymous_failure.as_ref()
        } else {
            None
        });
        let works = p
            .with_credential
            .as_ref()
            .map_or(p.anonymous.ok(), Attempt::ok);
        if p.unreachable_here {
            evidence.push(ev(
                "registry",
                "inconclusive: the registry is not reachable from this machine either; the node's view stands",
            ));
            if matches!(cause, Cause::Unknown) {
                if let Some(f) = decisive {
                    (cause, detail) = network_cause(f);
                    confidence = Confidence::Low;
                }
            } else if matches!(cause, Cause::RegistryUnreachable | Cause::TlsError) {
                confidence = Confidence::High;
            }
        } else if works {
            if matches!(cause, Cause::RegistryUnreachable | Cause::TlsError) {
                evidence.push(Evidence {
                    disagrees: true,
                    ..ev("registry", "the image resolves from here: the problem is between the node and the registry (DNS, firewall, proxy, CA on the node)")
                });
            } else if cause != Cause::PlatformMismatch && cause != Cause::RateLimited {
                evidence.push(Evidence {
                    disagrees: true,
                    ..ev("registry", "the image resolves from here with the same credential: the node saw something else (retry pending, node-level credentials, or a fix already applied)")
                });
                confidence = Confidence::Low;
            }
        } else if let Some(f) = decisive {
            let (probe_cause, probe_detail) = probe_cause(f, p.with_credential.is_some());
            if probe_cause == Cause::ImageNotFound
                && let (Some(tags), Some(tag)) = (&p.tags, &image.tag)
            {
                let near = suggest_tags(tag, tags);
                if !near.is_empty() {
                    evidence.push(ev(
                        "registry",
                        format!(
                            "tag `{tag}` does not exist; did you mean {}?",
                            near.iter()
                                .map(|t| format!("`{t}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
            }
            if cause == Cause::Unknown || cause == probe_cause {
                confidence = if cause == probe_cause {
                    Confidence::High
                } else {
                    Confidence::Medium
                };
                cause = probe_cause;
                detail = detail.or(probe_detail);
            } else if !consistent(cause, probe_cause) {
                evidence.push(Evidence {
                    disagrees: true,
                    ..ev(
                        "registry",
                        format!(
                            "the registry's answer points to {} instead",
                            probe_cause.id()
                        ),
                    )
                });
            } else {
                confidence = Confidence::High;
            }
        }
    }
    if !ctx.nodes_with_image.is_empty() && ctx.running_elsewhere > 0 {
        evidence.push(ev(
            "node",
            format!(
                "{} replica(s) run on {} which already hold the image (IfNotPresent skips the pull there); pods on {} must pull and fail",
                ctx.running_elsewhere,
                ctx.nodes_with_image.join(", "),
                if ctx.failing_nodes.is_empty() { "other nodes".to_string() } else { ctx.failing_nodes.join(", ") }
            ),
        ));
    }
    (cause, detail, confidence, evidence)
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
pub fn probe_cause(f: &PullFailure, with_credential: bool) -> (Cause, Option<Detail>) {
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
pub fn next_steps(
    cause: Cause,
    image: Option<&ImageRef>,
    image_text: &str,
    ctx: &Context,
    secrets: &[SecretReport],
    probe: Option<&ProbeResult>,
) -> Vec<Step> {
    let ns = &ctx.namespace;
    let target = ctx.workload.as_ref().map(Workload::target);
    let restart = |t: &Option<String>| {
        t.as_ref()
            .filter(|t| {
                !t.starts_with("pod/") && !t.starts_with("job/") && !t.starts_with("cronjob/")
            })
            .map(|t| {
                step(
                    "restart so new pods pull now (pods in backoff wait up to 5 minutes otherwise)",
                    Some(format!("kubectl rollout restart {t} -n {ns}")),
                )
            })
    };
    let registry = image.map(|i| i.domain.clone()).unwrap_or_default();
    let secret_name = secrets
        .first()
        .map_or("regcred".to_string(), |s| s.name.clone());
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
        Cause::CredentialsMissing => {
            let problem_types: Vec<&Problem> = secrets.iter().flat_map(|s| &s.problems).collect();
            if problem_types.iter().any(|p| matches!(p, Problem::WrongType { .. })) {
                steps.push(step("the secret has the wrong type: recreate it as a docker-registry secret", Some(format!("kubectl delete secret {secret_name} -n {ns}"))));
            }
            steps.push(step(
                "create (or replace) the pull secret with working credentials",
                Some(format!("kubectl create secret docker-registry {secret_name} --docker-server={registry} --docker-username=<user> --docker-password=<password> -n {ns} --dry-run=client -o yaml | kubectl apply -f -")),
            ));
            if secrets.iter().all(|s| s.problems.contains(&Problem::Missing)) || secrets.is_empty() {
                steps.push(step(
                    "attach it to the ServiceAccount the pods run as (or to the pod template's imagePullSecrets)",
                    Some(format!("kubectl patch serviceaccount default -n {ns} -p '{{\"imagePullSecrets\":[{{\"name\":\"{secret_name}\"}}]}}'")),
                ));
            }
            steps.extend(restart(&target));
        }
        Cause::CredentialsRejected => {
            steps.push(step(
                format!("the registry rejects `{secret_name}`: get the current password (was it rotated?) and test it before updating"),
                Some(format!("kubectl create secret docker-registry {secret_name} --docker-server={registry} --docker-username=<user> --docker-password=<password> -n {ns} --dry-run=client -o yaml | kubectl apply -f -")),
            ));
            steps.extend(restart(&target));
        }
        Cause::CredentialsExpired => {
            let region = crate::diagnose::secrets::ecr_region(&registry).unwrap_or_else(|| "<region>".into());
            steps.push(step(
                "refresh the ECR token (valid 12 hours) into the secret",
                Some(format!("kubectl create secret docker-registry {secret_name} --docker-server={registry} --docker-username=AWS --docker-password=\"$(aws ecr get-login-password --region {region})\" -n {ns} --dry-run=client -o yaml | kubectl apply -f -")),
            ));
            steps.extend(restart(&target));
            steps.push(step("then fix what should have refreshed it (the refresh CronJob, or move to IRSA / the kubelet credential provider)", Some(format!("kubectl get cronjobs -n {ns}"))));
        }
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
