//! One finding per failing container image: the cause, how sure and why
//! (decided by [`crate::diagnose::decide`]), the evidence gathered, and the
//! next steps with the exact commands. Pure.

use serde::Serialize;

use crate::diagnose::classify::Classified;
use crate::diagnose::decide::{Decision, Facts, Secrets};
use crate::diagnose::secrets::{Analysis, Problem, SecretReport};
use crate::diagnose::{Cause, Confidence, Detail};
use crate::probe::{Attempt, ProbeResult, suggest_tags};
use crate::registry::reference::ImageRef;
use crate::scan::{Severity, Workload};

/// A piece of evidence and where it came from: a fact, not a judgement
/// (how the pieces weigh is [`Finding::decision`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// `kubelet`, `event`, `secret`, `registry`, `ecr`, `node`, `cronjob`, `rbac`, `api`.
    pub source: String,
    pub text: String,
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
    /// The failing pod the evidence was read from.
    pub pod: String,
    pub container: String,
    pub init_container: bool,
    /// `scheme://host[:port]` the node sent its requests to: from the
    /// node's error text, else from `--registry-hosts` (for commands that
    /// test the connection the way the node makes it).
    pub registry_base: Option<String>,
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
    /// How the cause was decided: the rule, why in words, each source's reading.
    pub decision: Decision,
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

impl Finding {
    /// A credential failure whose pull secret's credential works against
    /// the registry now (fixed a moment ago, or by someone else): the pods
    /// in backoff only need a restart.
    pub(crate) fn credential_works_now(&self) -> bool {
        self.cause.is_credential()
            && self
                .registry
                .as_ref()
                .and_then(|p| p.with_credential.as_ref())
                .is_some_and(crate::probe::Attempt::ok)
    }
}

#[cfg(test)]
impl Finding {
    /// A finding for tests: `deploy/checkout` in `namespace`, pod
    /// `checkout-1` running as `default`, container `app`, nothing else
    /// gathered; tests set what they need with `..Finding::sample(..)`.
    pub(crate) fn sample(namespace: &str, cause: Cause, image: &str) -> Finding {
        Finding {
            cause,
            detail: None,
            confidence: Confidence::High,
            severity: Severity::P1,
            namespace: namespace.into(),
            workload: Some(Workload {
                kind: "Deployment".into(),
                namespace: namespace.into(),
                name: "checkout".into(),
            }),
            pod: "checkout-1".into(),
            pods: vec!["checkout-1".into()],
            service_account: "default".into(),
            container: "app".into(),
            init_container: false,
            image: image.into(),
            summary: String::new(),
            decision: Decision {
                rule: "registry-agrees",
                because: String::new(),
                readings: Vec::new(),
            },
            evidence: vec![],
            next_steps: vec![],
            secrets: vec![],
            registry: None,
            ecr: None,
            suggested_tags: vec![],
            replacement: None,
            unused_matching_secrets: vec![],
            failing_for_seconds: None,
        }
    }
}

fn ev(source: &str, text: impl Into<String>) -> Evidence {
    Evidence {
        source: source.into(),
        text: text.into(),
    }
}

fn step(text: impl Into<String>, command: Option<String>) -> Step {
    Step {
        text: text.into(),
        command,
    }
}

/// What was gathered, as evidence lines: the node's error, the secrets'
/// problems, the ECR API's and the registry's answers, the nodes that hold
/// the image. Facts only: how they weigh against each other is the
/// decision's ([`crate::diagnose::decide`]), said once in its `because`.
/// Pure.
pub(crate) fn evidence(facts: &Facts<'_>, ctx: &Context) -> Vec<Evidence> {
    let mut evidence = Vec::new();
    evidence.extend(kubelet_evidence(facts.node));
    if let Secrets::Read(secrets) = facts.secrets {
        evidence.extend(secret_evidence(secrets));
        evidence.extend(unread_secrets_evidence(secrets));
    }
    if let Some(e) = facts.ecr {
        evidence.extend(ecr_api_evidence(e));
    }
    if let Some(p) = facts.probe {
        evidence.extend(probe_evidence(p));
        if let Some(image) = facts.image {
            evidence.extend(near_tags_evidence(p, image));
        }
    }
    evidence.extend(nodes_with_image_evidence(ctx));
    evidence
}

/// What the node reported: the runtime's error and its signal, or that only the back-off is left.
fn kubelet_evidence(classified: &Classified) -> Option<Evidence> {
    if classified.backoff_only {
        Some(ev(
            "kubelet",
            "only `Back-off pulling image` is left (the pull events have expired)",
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

/// Secrets that could not be read: `rbac` only when a read was really
/// denied (not timed out).
fn unread_secrets_evidence(secrets: &Analysis) -> Option<Evidence> {
    if !secrets.incomplete {
        return None;
    }
    let denied = secrets
        .reports
        .iter()
        .any(|r| r.problems.contains(&Problem::Unreadable));
    Some(ev(
        if denied { "rbac" } else { "api" },
        "some pull secrets could not be read, so their credentials were not checked or tested",
    ))
}

/// What the ECR API said: whether the tag exists, whether your AWS identity gets a token.
fn ecr_api_evidence(e: &EcrCheck) -> Vec<Evidence> {
    let mut evidence = Vec::new();
    if let Some(exists) = e.image_exists {
        evidence.push(ev(
            "ecr",
            if exists {
                "DescribeImages: the tag exists in ECR"
            } else {
                "DescribeImages: the tag does not exist in ECR"
            },
        ));
    }
    match e.token_available {
        Some(true) => evidence.push(ev(
            "ecr",
            "GetAuthorizationToken works with your AWS identity",
        )),
        Some(false) => evidence.push(ev(
            "ecr",
            format!(
                "GetAuthorizationToken failed: {}",
                e.error.clone().unwrap_or_default()
            ),
        )),
        None => {}
    }
    evidence
}

/// What the probe did: where it ran from, each attempt's outcome, the rate limit.
fn probe_evidence(p: &ProbeResult) -> Vec<Evidence> {
    let mut evidence = vec![ev("registry", format!("probed from {}", p.from))];
    if p.unreachable_here {
        evidence.push(ev(
            "registry",
            format!(
                "not a verdict on the pull: {}; `kubectl pullfix fix` tests a credential on the node instead, with a canary pod",
                crate::probe::local_failure(
                    &p.registry,
                    p.failure.as_ref().or(p.anonymous_failure.as_ref())
                )
            ),
        ));
    }
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

fn attempt_text(a: &Attempt) -> String {
    match a {
        Attempt::Ok { digest } => format!("resolves ({digest})"),
        Attempt::Failed { failure, .. } => failure.clone(),
        Attempt::TimedOut => "no answer in time".into(),
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
                let repo = image.map_or_else(|| image_text.to_string(), |i| format!("{}/{}", i.domain, i.repository));
                steps.push(step(format!("check which tag your pipeline pushed to `{repo}` (none close to the missing one is listed there), then point the workload at it: kubectl pullfix fix --image sets it after checking it exists"), None));
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
                    target.as_ref().map(|t| format!("kubectl set image {t} {}={reg}/{path}:{} -n {ns}", ctx.container, image.map_or("latest", ImageRef::manifest_reference))),
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
            // The scheme and host the node used, so the test makes the same request.
            let base = ctx.registry_base.clone().unwrap_or_else(|| {
                format!("https://{}", image.map(|i| i.api_host().to_string()).unwrap_or_default())
            });
            let (scheme, host) = scheme_and_host(&base);
            steps.push(step(
                format!("test from inside the cluster (DNS, then {}) the way the node connects", scheme.to_ascii_uppercase()),
                Some(format!("kubectl run pullfix-nettest --rm -it --restart=Never --image=busybox:1.36 -n {ns} -- sh -c 'nslookup {host}; wget -S -O- {base}/v2/'")),
            ));
            steps.push(step("if the registry is down for everyone, escalate to the registry owner; a DNS or firewall problem goes to the network team", None));
        }
        Cause::TlsError => steps.push(step(
            "the node does not trust the registry's certificate: install the registry CA on the nodes' runtime (containerd certs.d / CRI-O registries.d) or fix the certificate",
            None,
        )),
        Cause::RateLimited => {
            steps.push(step(
                "authenticate pulls from Docker Hub (higher limit) with a pull secret for index.docker.io",
                Some(format!("kubectl create secret docker-registry dockerhub --docker-server=https://index.docker.io/v1/ --docker-username=\"$DOCKERHUB_USER\" --docker-password=\"$DOCKERHUB_TOKEN\" -n {ns}   # set DOCKERHUB_USER and DOCKERHUB_TOKEN (an access token) first")),
            ));
            steps.push(step("longer term: mirror public images into your registry", None));
        }
        Cause::InvalidImageName => match (&target, lowercase_candidate(image_text)) {
            (Some(t), Some(candidate)) => steps.push(step(
                format!("fix the reference `{image_text}`: repository names are lowercase; `{candidate}` parses (not checked against the registry)"),
                Some(format!("kubectl set image {t} {}={candidate} -n {ns}", ctx.container)),
            )),
            _ => steps.push(step(
                format!("fix the reference `{image_text}` in the workload's source (lowercase repository, one tag, valid digest)"),
                None,
            )),
        },
        Cause::NeverPull => steps.push(step(
            "imagePullPolicy is Never: preload the image on the nodes or set the policy to IfNotPresent",
            target.as_ref().map(|t| format!("kubectl patch {t} -n {ns} -p '{{\"spec\":{{\"template\":{{\"spec\":{{\"{}\":[{{\"name\":\"{}\",\"imagePullPolicy\":\"IfNotPresent\"}}]}}}}}}}}'", if ctx.init_container {"initContainers"} else {"containers"}, ctx.container)),
        )),
        Cause::PlatformMismatch => steps.push(step(
            "build the image for the node's architecture (multi-arch), or keep the pods on nodes it supports",
            target.as_ref().map(|t| format!("kubectl patch {t} -n {ns} -p '{{\"spec\":{{\"template\":{{\"spec\":{{\"nodeSelector\":{{\"kubernetes.io/arch\":\"amd64\"}}}}}}}}}}'")),
        )),
        Cause::PullInterrupted => {
            steps.push(step(
                "the registry answered but the download broke off: check what sits between the node and the registry (proxy, NAT gateway, firewall idle timeouts, MTU); the kubelet retries on its own, so a one-off blip heals itself",
                Some(format!("kubectl get events -n {ns} --field-selector involvedObject.name={}", ctx.pod)),
            ));
            steps.push(step(
                "if it keeps failing on large images, the node may hit the runtime's pull deadline: mirror the image closer to the cluster",
                None,
            ));
        }
        Cause::LayerCorrupt => steps.push(step(
            "the bytes the node received do not match the image's digest: purge the image from any pull-through cache or proxy, or re-push it to the registry; retrying does not help while the registry serves the same content",
            None,
        )),
        Cause::Unknown => steps.push(step(
            "read the full error and events",
            Some(format!("kubectl describe pod {} -n {ns}", ctx.pod)),
        )),
    }
    if secrets.iter().any(|s| s.manager.is_some()) {
        steps.push(step("the secret is managed by a tool: make the change at its source of truth, or the edit will be reverted", None));
    }
    steps
}

/// `(scheme, host)` of `scheme://host[:port]`; the host without its port (for DNS).
fn scheme_and_host(base: &str) -> (&str, &str) {
    let (scheme, authority) = base.split_once("://").unwrap_or(("https", base));
    let host = match authority.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => authority.split(':').next().unwrap_or(authority),
    };
    (scheme, host)
}

/// The reference with its repository lowercased, when that alone makes it
/// parse (the commonest invalid reference: `Team/App`).
fn lowercase_candidate(image_text: &str) -> Option<String> {
    let text = image_text.trim();
    // Keep the tag and digest as written: only the name must be lowercase.
    let name_end = text
        .find('@')
        .unwrap_or(text.len())
        .min(match text.rfind(':') {
            Some(i) if !text[i..].contains('/') => i,
            _ => text.len(),
        });
    let candidate = format!(
        "{}{}",
        text[..name_end].to_ascii_lowercase(),
        &text[name_end..]
    );
    (candidate != text && ImageRef::parse(&candidate).is_ok()).then_some(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercase_candidates() {
        assert_eq!(
            lowercase_candidate("127.0.0.1:44861/Team/Checkout:v2.1.0").as_deref(),
            Some("127.0.0.1:44861/team/checkout:v2.1.0")
        );
        assert_eq!(
            lowercase_candidate("Reg.Example.com/App:V1").as_deref(),
            Some("reg.example.com/app:V1")
        );
        assert_eq!(lowercase_candidate("nginx::1"), None);
        assert_eq!(lowercase_candidate("nginx:1.25"), None);
    }

    fn ctx(base: Option<&str>) -> Context {
        Context {
            namespace: "shop".into(),
            pod: "checkout-1".into(),
            container: "checkout".into(),
            registry_base: base.map(str::to_string),
            ..Context::default()
        }
    }

    /// The connection test makes the request the node made: its scheme and host.
    #[test]
    fn the_connection_test_uses_the_nodes_scheme() {
        let img = ImageRef::parse("registry.blackhole.example/team/checkout:v2.1.0").unwrap();
        let steps = next_steps(
            Cause::RegistryUnreachable,
            Some(&img),
            "registry.blackhole.example/team/checkout:v2.1.0",
            &ctx(Some("http://registry.blackhole.example")),
            &[],
            None,
        );
        let cmd = steps[0].command.as_deref().unwrap();
        assert!(
            cmd.contains("nslookup registry.blackhole.example;"),
            "{cmd}"
        );
        assert!(
            cmd.contains("wget -S -O- http://registry.blackhole.example/v2/"),
            "{cmd}"
        );
        assert!(steps[0].text.contains("then HTTP)"), "{}", steps[0].text);
        let steps = next_steps(
            Cause::RegistryUnreachable,
            Some(&img),
            "registry.blackhole.example/team/checkout:v2.1.0",
            &ctx(Some("https://10.0.0.5:5000")),
            &[],
            None,
        );
        let cmd = steps[0].command.as_deref().unwrap();
        assert!(cmd.contains("nslookup 10.0.0.5;"), "{cmd}");
        assert!(cmd.contains("https://10.0.0.5:5000/v2/"), "{cmd}");
    }

    /// No `<…>` placeholder but `<password>` in the steps of causes with no plan.
    #[test]
    fn steps_without_a_plan_have_no_placeholders() {
        let img = ImageRef::parse("reg.example.com/team/app:v1").unwrap();
        let mut c = ctx(None);
        c.workload = Some(Workload {
            kind: "Deployment".into(),
            namespace: "shop".into(),
            name: "app".into(),
        });
        for cause in [
            Cause::AccessDenied,
            Cause::RepositoryNotFound,
            Cause::RegistryUnreachable,
            Cause::TlsError,
            Cause::RateLimited,
            Cause::InvalidImageName,
            Cause::NeverPull,
            Cause::PlatformMismatch,
            Cause::Unknown,
            Cause::ImageNotFound,
        ] {
            for s in next_steps(
                cause,
                Some(&img),
                "reg.example.com/Team/App:v1",
                &c,
                &[],
                None,
            ) {
                let all = format!("{} {}", s.text, s.command.unwrap_or_default());
                let stripped = all.replace("<password>", "");
                assert!(!stripped.contains('<'), "{}: {all}", cause.id());
            }
        }
    }
}
