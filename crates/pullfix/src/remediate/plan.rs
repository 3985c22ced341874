//! From a finding to the steps that fix it, in the runbook's order: the
//! credentials (secret), where they are attached, the image reference, the
//! same stale secret elsewhere, the restart. Pure: no I/O, no prompts.
//! Only verified changes are planned: never a guessed tag.

use serde::Serialize;

use crate::diagnose::Cause;
use crate::diagnose::finding::Finding;
use crate::diagnose::run::OtherSecret;
use crate::diagnose::secrets::Problem;
use crate::registry::reference::ImageRef;
use crate::scan::Workload;

/// Where to attach a pull secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum AttachTo {
    /// The ServiceAccount the pods run as: every pod using it gets the secret.
    ServiceAccount,
    /// The workload's pod template (`imagePullSecrets`): only this workload.
    Workload,
}

/// One change to the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub(crate) enum Action {
    /// Create or update a `kubernetes.io/dockerconfigjson` secret with a
    /// tested credential for `server` (other `auths` entries are kept).
    /// `recreate`: the type is wrong and must change (delete + create).
    WriteSecret {
        namespace: String,
        name: String,
        server: String,
        exists: bool,
        recreate: bool,
    },
    /// Add a pull secret to a ServiceAccount's `imagePullSecrets`.
    AttachToServiceAccount {
        namespace: String,
        service_account: String,
        secret: String,
    },
    /// Add a pull secret to a workload's pod template.
    AttachToWorkload { workload: Workload, secret: String },
    /// `kubectl set image`, to a reference verified to exist. When several
    /// tags could replace a missing one, `image` is empty and `choose_from`
    /// holds them: the person picks one (or types another) at the terminal;
    /// without one, nothing is guessed.
    SetImage {
        workload: Workload,
        container: String,
        image: String,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        choose_from: Vec<String>,
    },
    /// The same stale secret in other namespaces: update them all (one
    /// confirmation for the list).
    UpdateOtherNamespaces {
        server: String,
        secrets: Vec<(String, String)>,
    },
    /// `kubectl rollout restart`.
    Restart { workload: Workload },
    /// A bare pod must be recreated from its manifest; deleting it is the
    /// only in-cluster step, and it is destructive.
    DeleteBarePod { namespace: String, pod: String },
}

/// A step as shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct PlannedStep {
    pub action: Action,
    pub title: String,
    pub why: String,
    /// Destructive steps ask with default No.
    pub destructive: bool,
}

/// Choices that shape the plan.
#[derive(Debug, Clone, Default)]
pub(crate) struct PlanOptions {
    /// Where a new secret is attached (None: ask; with --yes: the workload).
    pub attach_to: Option<AttachTo>,
    /// An explicit image to set (`--image`), overriding suggestions.
    pub image: Option<String>,
    /// Secret name for a new secret (`--secret-name`, default regcred).
    pub secret_name: Option<String>,
    /// The ServiceAccount the failing pods run as.
    pub service_account: String,
}

fn restartable(w: &Workload) -> bool {
    matches!(w.kind.as_str(), "Deployment" | "StatefulSet" | "DaemonSet")
}

/// Why nothing in the cluster can fix this cause (for causes with no plan).
pub(crate) fn no_plan_reason(cause: Cause) -> Option<&'static str> {
    match cause {
        Cause::RegistryUnreachable => Some(
            "the registry cannot be reached from the node: that is fixed outside the cluster (network, DNS, registry)",
        ),
        Cause::TlsError => Some(
            "the node does not trust the registry's certificate: that is fixed on the nodes or the registry",
        ),
        Cause::AccessDenied => {
            Some("the credential is valid but lacks pull rights: grant them in the registry")
        }
        Cause::RepositoryNotFound => Some(
            "the repository is missing or invisible to the credential: check the path with the image's owner",
        ),
        Cause::PlatformMismatch => Some(
            "the image has no build for the node's platform: rebuild it multi-arch or constrain scheduling",
        ),
        Cause::RateLimited => {
            Some("the registry is throttling: authenticate pulls or mirror the image")
        }
        Cause::NeverPull => {
            Some("imagePullPolicy is Never: preload the image or change the policy")
        }
        Cause::InvalidImageName | Cause::ImageNotFound | Cause::WrongRegistry => Some(
            "no verified replacement image is known: pass --image with a reference that exists",
        ),
        Cause::Unknown => Some("the cause is unknown: read the evidence and the events"),
        _ => None,
    }
}

/// The references to choose among when a tag is missing and several tags
/// that exist are close to it (none with `--image`, or with one candidate,
/// which is used as it is). Pure.
fn image_choices(f: &Finding, image: Option<&ImageRef>, opts: &PlanOptions) -> Vec<String> {
    match image {
        Some(i)
            if f.cause == Cause::ImageNotFound
                && opts.image.is_none()
                && f.suggested_tags.len() > 1 =>
        {
            f.suggested_tags
                .iter()
                .map(|t| format!("{}/{}:{t}", i.domain, i.repository))
                .collect()
        }
        _ => Vec::new(),
    }
}

/// Plans the steps for one finding. Pure.
pub(crate) fn plan(f: &Finding, others: &[OtherSecret], opts: &PlanOptions) -> Vec<PlannedStep> {
    let mut steps = Vec::new();
    let ns = f.namespace.clone();
    let workload = f.workload.clone();
    let image = ImageRef::parse(&f.image).ok();
    let server = image.as_ref().map(|i| i.domain.clone()).unwrap_or_default();
    let mut changed_secret = false;
    let mut changed_template = false;

    // The image reference: only a verified one, and never a guess among
    // several (those are offered as a choice).
    let choose_from = image_choices(f, image.as_ref(), opts);
    let new_image = if choose_from.is_empty() {
        opts.image.clone().or_else(|| match f.cause {
            Cause::ImageNotFound => image.as_ref().and_then(|i| {
                f.suggested_tags
                    .first()
                    .map(|t| format!("{}/{}:{t}", i.domain, i.repository))
            }),
            Cause::WrongRegistry => f.replacement.clone(),
            _ => None,
        })
    } else {
        Some(String::new())
    };
    if let (Some(new), Some(w)) = (&new_image, &workload)
        && matches!(
            f.cause,
            Cause::ImageNotFound
                | Cause::WrongRegistry
                | Cause::InvalidImageName
                | Cause::NeverPull
        ) | opts.image.is_some()
    {
        let tags: Vec<&str> = f.suggested_tags.iter().map(String::as_str).collect();
        steps.push(PlannedStep {
            action: Action::SetImage {
                workload: w.clone(),
                container: f.container.clone(),
                image: new.clone(),
                choose_from: choose_from.clone(),
            },
            title: if choose_from.is_empty() {
                format!(
                    "set image of {} container {} to {new}",
                    w.target(),
                    f.container
                )
            } else {
                format!(
                    "set image of {} container {} to a tag you choose ({})",
                    w.target(),
                    f.container,
                    tags.join(", ")
                )
            },
            why: if !choose_from.is_empty() {
                format!(
                    "`{}` does not exist; {} tags that do are close to it: pick one, or type another",
                    f.image,
                    choose_from.len()
                )
            } else if opts.image.is_some() {
                "the image you gave (--image); it is checked against the registry first".into()
            } else if f.cause == Cause::WrongRegistry {
                "the private registry has this image (verified from this machine)".into()
            } else {
                format!("`{}` does not exist; this tag does (verified)", f.image)
            },
            destructive: false,
        });
        changed_template = true;
    }

    // Credentials.
    let credential_cause = matches!(
        f.cause,
        Cause::CredentialsMissing | Cause::CredentialsRejected | Cause::CredentialsExpired
    );
    // The credential the pods use already works from here (fixed a moment
    // ago, or by someone else): pods in backoff only need a restart, and
    // nothing else is rewritten.
    let works_now = f
        .registry
        .as_ref()
        .and_then(|p| p.with_credential.as_ref())
        .is_some_and(crate::probe::Attempt::ok);
    if credential_cause && works_now {
        if let Some(w) = workload.as_ref().filter(|w| restartable(w)) {
            steps.push(PlannedStep {
                action: Action::Restart { workload: w.clone() },
                title: format!("rollout restart {} -n {ns}", w.target()),
                why: "the pull secret's credential already works against the registry; pods in backoff only retry after up to 5 minutes".into(),
                destructive: false,
            });
        }
        return steps;
    }
    if credential_cause {
        let referenced: Vec<_> = f.secrets.iter().collect();
        let usable_existing = f.unused_matching_secrets.first().cloned();
        if f.cause == Cause::CredentialsMissing
            && referenced.is_empty()
            && usable_existing.is_some()
        {
            // A matching secret exists in the namespace but is not attached.
            let secret = usable_existing.unwrap_or_default();
            steps.push(attach_step(f, &secret, opts));
            changed_template |= opts.attach_to != Some(AttachTo::ServiceAccount);
            changed_secret = true;
        } else {
            // Which secret to write: the referenced one that should match.
            let target = referenced
                .iter()
                .find(|s| s.matched_key.is_some() || !s.problems.is_empty())
                .or(referenced.first());
            let (name, exists, recreate) = match target {
                Some(s) => (
                    s.name.clone(),
                    !s.problems.contains(&Problem::Missing),
                    s.problems
                        .iter()
                        .any(|p| matches!(p, Problem::WrongType { .. })),
                ),
                None => (
                    opts.secret_name.clone().unwrap_or_else(|| "regcred".into()),
                    false,
                    false,
                ),
            };
            let verb = if recreate {
                "recreate (type must change)"
            } else if exists {
                "update"
            } else {
                "create"
            };
            steps.push(PlannedStep {
                action: Action::WriteSecret {
                    namespace: ns.clone(),
                    name: name.clone(),
                    server: server.clone(),
                    exists,
                    recreate,
                },
                title: format!("{verb} pull secret {ns}/{name} for {server}"),
                why: match f.cause {
                    Cause::CredentialsExpired => "the token in it has expired; a fresh one is tested against the registry before it is written".into(),
                    Cause::CredentialsRejected => "the registry rejects the credential in it; the new one is tested before it is written".into(),
                    _ => "no usable credential reaches the registry; the new one is tested before it is written".into(),
                },
                destructive: recreate,
            });
            changed_secret = true;
            if target.is_none() {
                steps.push(attach_step(f, &name, opts));
                changed_template |= opts.attach_to != Some(AttachTo::ServiceAccount);
            }
        }
        let stale: Vec<(String, String)> = others
            .iter()
            .filter(|o| o.same_credential && o.registry == server)
            .map(|o| (o.namespace.clone(), o.name.clone()))
            .collect();
        if !stale.is_empty() && f.cause != Cause::CredentialsMissing {
            steps.push(PlannedStep {
                title: format!(
                    "update the same stale secret in {} other namespace(s)",
                    stale.len()
                ),
                why: format!(
                    "they hold the same credential: {}",
                    stale
                        .iter()
                        .map(|(n, s)| format!("{n}/{s}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                action: Action::UpdateOtherNamespaces {
                    server: server.clone(),
                    secrets: stale,
                },
                destructive: false,
            });
            // Their failing workloads are held back by the same credential.
            let mut held: Vec<&Workload> = others
                .iter()
                .filter(|o| o.same_credential && o.registry == server)
                .flat_map(|o| &o.failing_workloads)
                .filter(|w| restartable(w) && w.namespace != ns)
                .collect();
            held.sort();
            held.dedup();
            for w in held {
                steps.push(PlannedStep {
                    action: Action::Restart {
                        workload: (*w).clone(),
                    },
                    title: format!("rollout restart {} -n {}", w.target(), w.namespace),
                    why:
                        "it fails on the same stale secret; new pods pull with the updated one now"
                            .into(),
                    destructive: false,
                });
            }
        }
    }

    // Restart, so pods in backoff pull now.
    if changed_secret && !changed_template {
        match &workload {
            Some(w) if restartable(w) => steps.push(PlannedStep {
                action: Action::Restart { workload: w.clone() },
                title: format!("rollout restart {} -n {ns}", w.target()),
                why: "pods in backoff only retry after up to 5 minutes; new pods pull now".into(),
                destructive: false,
            }),
            Some(_) => {}
            None => steps.push(PlannedStep {
                action: Action::DeleteBarePod {
                    namespace: ns.clone(),
                    pod: f.pod.clone(),
                },
                title: format!("delete bare pod {ns}/{}", f.pod),
                why: "a pod without a controller is not recreated: delete it only if you can recreate it from its manifest".into(),
                destructive: true,
            }),
        }
    }
    steps
}

fn attach_step(f: &Finding, secret: &str, opts: &PlanOptions) -> PlannedStep {
    let ns = f.namespace.clone();
    match (opts.attach_to, &f.workload) {
        (Some(AttachTo::ServiceAccount), _) | (_, None) => PlannedStep {
            action: Action::AttachToServiceAccount {
                namespace: ns.clone(),
                service_account: opts.service_account.clone(),
                secret: secret.to_string(),
            },
            title: format!(
                "attach {secret} to ServiceAccount {ns}/{}",
                opts.service_account
            ),
            why: "every pod running as this ServiceAccount gets the pull secret".into(),
            destructive: false,
        },
        (_, Some(w)) => PlannedStep {
            action: Action::AttachToWorkload {
                workload: w.clone(),
                secret: secret.to_string(),
            },
            title: format!(
                "attach {secret} to the pod template of {} -n {ns}",
                w.target()
            ),
            why: "only this workload gets the pull secret (the change rolls out new pods)".into(),
            destructive: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::Confidence;
    use crate::diagnose::secrets::{Origin, SecretReport};
    use crate::scan::Severity;

    fn finding(cause: Cause, image: &str) -> Finding {
        Finding {
            cause,
            detail: None,
            confidence: Confidence::High,
            severity: Severity::P1,
            namespace: "shop".into(),
            workload: Some(Workload {
                kind: "Deployment".into(),
                namespace: "shop".into(),
                name: "checkout".into(),
            }),
            pod: "checkout-1".into(),
            pods: vec!["checkout-1".into()],
            container: "app".into(),
            init_container: false,
            image: image.into(),
            summary: String::new(),
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

    fn report(name: &str, problems: Vec<Problem>) -> SecretReport {
        SecretReport {
            name: name.into(),
            origin: Origin::PodSpec,
            problems,
            matched_key: Some("reg.example.com".into()),
            username: Some("u".into()),
            age_seconds: None,
            manager: None,
            ecr: None,
        }
    }

    fn opts() -> PlanOptions {
        PlanOptions {
            service_account: "default".into(),
            ..PlanOptions::default()
        }
    }

    #[test]
    fn missing_tag_uses_only_a_verified_tag() {
        let mut f = finding(Cause::ImageNotFound, "reg.example.com/team/app:v2.1.9");
        assert!(plan(&f, &[], &opts()).is_empty(), "no suggestion, no guess");
        f.suggested_tags = vec!["v2.1.0".into()];
        let steps = plan(&f, &[], &opts());
        assert_eq!(steps.len(), 1);
        assert_eq!(
            steps[0].action,
            Action::SetImage {
                workload: f.workload.clone().unwrap(),
                container: "app".into(),
                image: "reg.example.com/team/app:v2.1.0".into(),
                choose_from: vec![],
            }
        );
    }

    #[test]
    fn several_close_tags_are_a_choice_not_a_guess() {
        let mut f = finding(Cause::ImageNotFound, "reg.example.com/team/app:v2.1.9");
        f.suggested_tags = vec!["v2.1.0".into(), "v2.1.1".into(), "v2.0.3".into()];
        let steps = plan(&f, &[], &opts());
        assert_eq!(steps.len(), 1);
        let Action::SetImage {
            image, choose_from, ..
        } = &steps[0].action
        else {
            panic!("{:?}", steps[0].action)
        };
        assert_eq!(image, "", "nothing picked for the user");
        assert_eq!(
            choose_from,
            &[
                "reg.example.com/team/app:v2.1.0",
                "reg.example.com/team/app:v2.1.1",
                "reg.example.com/team/app:v2.0.3"
            ]
        );
        assert!(
            steps[0]
                .title
                .contains("a tag you choose (v2.1.0, v2.1.1, v2.0.3)"),
            "{}",
            steps[0].title
        );
        // --image decides.
        let given = PlanOptions {
            image: Some("reg.example.com/team/app:v2.0.3".into()),
            ..opts()
        };
        let steps = plan(&f, &[], &given);
        assert!(matches!(
            &steps[0].action,
            Action::SetImage { image, choose_from, .. }
                if image == "reg.example.com/team/app:v2.0.3" && choose_from.is_empty()
        ));
    }

    #[test]
    fn rejected_credentials_update_secret_others_and_restart() {
        let mut f = finding(Cause::CredentialsRejected, "reg.example.com/team/app:v1");
        f.secrets = vec![report("regcred", vec![])];
        let others = vec![
            OtherSecret {
                namespace: "b".into(),
                name: "regcred".into(),
                registry: "reg.example.com".into(),
                same_credential: true,
                failing_workloads: vec![
                    Workload {
                        kind: "Deployment".into(),
                        namespace: "b".into(),
                        name: "app".into(),
                    },
                    Workload {
                        kind: "Job".into(),
                        namespace: "b".into(),
                        name: "once".into(),
                    },
                ],
            },
            OtherSecret {
                namespace: "c".into(),
                name: "regcred".into(),
                registry: "reg.example.com".into(),
                same_credential: false,
                failing_workloads: vec![],
            },
        ];
        let steps = plan(&f, &others, &opts());
        assert!(
            matches!(&steps[0].action, Action::WriteSecret { name, exists: true, recreate: false, .. } if name == "regcred")
        );
        assert_eq!(
            steps[1].action,
            Action::UpdateOtherNamespaces {
                server: "reg.example.com".into(),
                secrets: vec![("b".into(), "regcred".into())]
            }
        );
        // The other namespace's failing Deployment is restarted too (a Job
        // cannot be), then the workload itself.
        assert_eq!(steps.len(), 4, "{steps:#?}");
        assert!(
            matches!(&steps[2].action, Action::Restart { workload } if workload.namespace == "b" && workload.name == "app")
        );
        assert!(
            matches!(&steps[3].action, Action::Restart { workload } if workload.namespace != "b")
        );
    }

    #[test]
    fn wrong_type_is_recreated_and_destructive() {
        let mut f = finding(Cause::CredentialsMissing, "reg.example.com/team/app:v1");
        f.secrets = vec![report(
            "regcred",
            vec![Problem::WrongType {
                found: "Opaque".into(),
            }],
        )];
        let steps = plan(&f, &[], &opts());
        assert!(matches!(
            &steps[0].action,
            Action::WriteSecret {
                recreate: true,
                exists: true,
                ..
            }
        ));
        assert!(steps[0].destructive);
    }

    #[test]
    fn no_secret_at_all_creates_and_attaches() {
        let f = finding(Cause::CredentialsMissing, "reg.example.com/team/app:v1");
        let steps = plan(&f, &[], &opts());
        assert!(
            matches!(&steps[0].action, Action::WriteSecret { exists: false, name, .. } if name == "regcred")
        );
        assert!(
            matches!(&steps[1].action, Action::AttachToWorkload { secret, .. } if secret == "regcred")
        );
        let sa = plan(
            &f,
            &[],
            &PlanOptions {
                attach_to: Some(AttachTo::ServiceAccount),
                ..opts()
            },
        );
        assert!(
            matches!(&sa[1].action, Action::AttachToServiceAccount { service_account, .. } if service_account == "default")
        );
        assert!(
            matches!(sa[2].action, Action::Restart { .. }),
            "a ServiceAccount change needs a restart"
        );
    }

    #[test]
    fn existing_unattached_secret_is_attached_not_rewritten() {
        let mut f = finding(Cause::CredentialsMissing, "reg.example.com/team/app:v1");
        f.unused_matching_secrets = vec!["regcred".into()];
        let steps = plan(
            &f,
            &[],
            &PlanOptions {
                attach_to: Some(AttachTo::ServiceAccount),
                service_account: "checkout".into(),
                ..opts()
            },
        );
        assert!(
            matches!(&steps[0].action, Action::AttachToServiceAccount { service_account, secret, .. } if service_account == "checkout" && secret == "regcred")
        );
        assert!(matches!(steps[1].action, Action::Restart { .. }));
    }

    #[test]
    fn bare_pod_delete_is_destructive() {
        let mut f = finding(Cause::CredentialsRejected, "reg.example.com/team/app:v1");
        f.workload = None;
        f.secrets = vec![report("regcred", vec![])];
        let steps = plan(&f, &[], &opts());
        let last = steps.last().unwrap();
        assert!(matches!(last.action, Action::DeleteBarePod { .. }));
        assert!(last.destructive);
    }

    #[test]
    fn a_credential_that_works_now_only_needs_a_restart() {
        use crate::probe::{Attempt, ProbeResult};
        let mut f = finding(Cause::CredentialsRejected, "reg.example.com/team/app:v1");
        f.secrets = vec![report("regcred", vec![])];
        f.registry = Some(ProbeResult {
            registry: "reg.example.com".into(),
            from: "here",
            with_credential: Some(Attempt::Ok {
                digest: "sha256:x".into(),
            }),
            username: Some("u".into()),
            anonymous: Attempt::Failed {
                failure: "401".into(),
                status: Some(401),
            },
            tags: None,
            rate_limit: None,
            unreachable_here: false,
            failure: None,
            anonymous_failure: None,
        });
        let others = vec![OtherSecret {
            namespace: "b".into(),
            name: "regcred".into(),
            registry: "reg.example.com".into(),
            same_credential: true,
            failing_workloads: vec![],
        }];
        let steps = plan(&f, &others, &opts());
        assert_eq!(steps.len(), 1, "{steps:?}");
        assert!(matches!(steps[0].action, Action::Restart { .. }));
    }

    #[test]
    fn outages_have_no_plan() {
        let f = finding(Cause::RegistryUnreachable, "reg.example.com/team/app:v1");
        assert!(plan(&f, &[], &opts()).is_empty());
        assert!(no_plan_reason(Cause::RegistryUnreachable).is_some());
        assert!(no_plan_reason(Cause::CredentialsRejected).is_none());
    }
}
