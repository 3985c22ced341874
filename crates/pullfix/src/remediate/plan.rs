//! From a finding to the steps that fix it, in the runbook's order: the
//! credentials (secret), where they are attached, the image reference, the
//! same stale secret elsewhere, the restart. Pure: no I/O, no prompts.
//! Only verified changes are planned: never a guessed tag.
//!
//! A plan is a small graph: each step lists the steps it needs
//! ([`PlannedStep::needs`]); a restart needs the change that makes it
//! useful. [`blocked`] tells, from what happened to those, whether a step
//! may still run and, if not, why — the same rule in a terminal and
//! without one.
//!
//! [`commands`] renders a step as the kubectl commands a person would run,
//! and [`advice`] renders a whole plan as `diagnose`'s next steps, so what
//! `diagnose` prints and what `fix` does come from the same facts.

use serde::Serialize;

use crate::diagnose::Cause;
use crate::diagnose::finding::{Finding, Step};
use crate::diagnose::run::OtherSecret;
use crate::diagnose::secrets::{Origin, Problem};
use crate::registry::reference::ImageRef;
use crate::remediate::Outcome;
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
    /// `kubectl rollout restart` of many workloads held back by one stale
    /// credential (an outage): one confirmation for the whole list, one
    /// request per workload, paced by `--qps`.
    RestartMany { workloads: Vec<Workload> },
    /// A bare pod must be recreated from its manifest; deleting it is the
    /// only in-cluster step, and it is destructive.
    DeleteBarePod { namespace: String, pod: String },
}

fn restart_command(workload: &Workload) -> String {
    format!(
        "kubectl rollout restart {} -n {}",
        workload.target(),
        workload.namespace
    )
}

/// A step as shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct PlannedStep {
    pub action: Action,
    pub title: String,
    pub why: String,
    /// Destructive steps ask with default No.
    pub destructive: bool,
    /// The steps (indices into the plan, all earlier) this one needs: it
    /// runs only when each of them was applied, rehearsed or found already
    /// in place. See [`blocked`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<usize>,
}

impl PlannedStep {
    /// ` (after 1 and 2)` (numbered from 1, `word` before the numbers),
    /// or nothing for a step that needs none.
    pub(crate) fn after(&self, word: &str) -> String {
        if self.needs.is_empty() {
            return String::new();
        }
        let numbers: Vec<String> = self.needs.iter().map(|n| (n + 1).to_string()).collect();
        format!(" (after {word}{})", numbers.join(" and "))
    }
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

impl PlanOptions {
    /// The options `fix` starts from for a finding when no flag is given:
    /// what `diagnose` renders its next steps from.
    pub(crate) fn for_finding(f: &Finding) -> PlanOptions {
        PlanOptions {
            service_account: f.service_account.clone(),
            ..PlanOptions::default()
        }
    }
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
        Cause::PullInterrupted => Some(
            "downloads are cut off between the node and the registry: that is fixed in the network or the proxy",
        ),
        Cause::LayerCorrupt => Some(
            "the registry (or a cache or proxy in between) serves content that does not match its digest: that is fixed there",
        ),
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

/// The steps of a plan as they are built, with the indices dependants name.
#[derive(Default)]
struct Builder {
    steps: Vec<PlannedStep>,
}

impl Builder {
    /// Adds a step that needs `needs`; returns its index.
    fn push(&mut self, mut step: PlannedStep, needs: &[usize]) -> usize {
        step.needs = needs.to_vec();
        self.steps.push(step);
        self.steps.len() - 1
    }
}

/// A step with no dependencies yet (the builder sets them).
fn step(action: Action, title: String, why: impl Into<String>, destructive: bool) -> PlannedStep {
    PlannedStep {
        action,
        title,
        why: why.into(),
        destructive,
        needs: Vec::new(),
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
    let mut b = Builder::default();
    let ns = f.namespace.clone();
    let workload = f.workload.clone();
    let image = ImageRef::parse(&f.image).ok();
    let server = image.as_ref().map(|i| i.domain.clone()).unwrap_or_default();
    // The steps that change what the pods pull with, without rolling them
    // out: a restart needs all of them.
    let mut restart_needs: Vec<usize> = Vec::new();
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
        let title = if choose_from.is_empty() {
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
        };
        let why = if !choose_from.is_empty() {
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
        };
        b.push(
            step(
                Action::SetImage {
                    workload: w.clone(),
                    container: f.container.clone(),
                    image: new.clone(),
                    choose_from: choose_from.clone(),
                },
                title,
                why,
                false,
            ),
            &[],
        );
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
    if f.credential_works_now() {
        if let Some(w) = workload.as_ref().filter(|w| restartable(w)) {
            b.push(
                step(
                    Action::Restart { workload: w.clone() },
                    format!("rollout restart {} -n {ns}", w.target()),
                    "the pull secret's credential already works against the registry; pods in backoff only retry after up to 5 minutes",
                    false,
                ),
                &[],
            );
        }
        return b.steps;
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
            let attach = b.push(attach_step(f, &secret, opts), &[]);
            if opts.attach_to == Some(AttachTo::ServiceAccount) || workload.is_none() {
                restart_needs.push(attach);
            } else {
                changed_template = true;
            }
        } else {
            // Which secret to write: one the kubelet cannot decode (it
            // fails every pull until it is repaired), else the referenced
            // one that should match.
            let target = referenced
                .iter()
                .find(|s| s.kubelet_refusal().is_some())
                .or_else(|| {
                    referenced
                        .iter()
                        .find(|s| s.matched_key.is_some() || !s.problems.is_empty())
                })
                .or(referenced.first());
            let undecodable = target.and_then(|s| s.kubelet_refusal()).map(|(entry, error)| match entry {
                Some(k) => format!("the kubelet cannot decode its entry `{k}` ({error}) and so fails every pull of the pod; it is rewritten without the entries it cannot decode, with a credential tested against the registry first"),
                None => format!("the kubelet cannot decode it ({error}) and so fails every pull of the pod; it is rewritten from scratch with a credential tested against the registry first"),
            });
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
            let write = b.push(
                step(
                    Action::WriteSecret {
                        namespace: ns.clone(),
                        name: name.clone(),
                        server: server.clone(),
                        exists,
                        recreate,
                    },
                    format!("{verb} pull secret {ns}/{name} for {server}"),
                    undecodable.unwrap_or_else(|| match f.cause {
                        Cause::CredentialsExpired => "the token in it has expired; a fresh one is tested against the registry before it is written".into(),
                        Cause::CredentialsRejected => "the registry rejects the credential in it; the new one is tested before it is written".into(),
                        _ => "no usable credential reaches the registry; the new one is tested before it is written".into(),
                    }),
                    recreate,
                ),
                &[],
            );
            restart_needs.push(write);
            if target.is_none() {
                let attach = b.push(attach_step(f, &name, opts), &[write]);
                if opts.attach_to == Some(AttachTo::ServiceAccount) || workload.is_none() {
                    restart_needs.push(attach);
                } else {
                    changed_template = true;
                }
            }
            let stale: Vec<(String, String)> = others
                .iter()
                .filter(|o| o.same_credential && o.registry == server)
                .map(|o| (o.namespace.clone(), o.name.clone()))
                .collect();
            if !stale.is_empty() && f.cause != Cause::CredentialsMissing {
                // Only once the new credential is tested and written here.
                let update = b.push(
                    step(
                        Action::UpdateOtherNamespaces {
                            server: server.clone(),
                            secrets: stale.clone(),
                        },
                        format!(
                            "update the same stale secret in {} other namespace(s)",
                            stale.len()
                        ),
                        format!(
                            "they hold the same credential: {}",
                            stale
                                .iter()
                                .map(|(n, s)| format!("{n}/{s}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        false,
                    ),
                    &[write],
                );
                // Their failing workloads are held back by the same credential.
                let mut held: Vec<&Workload> = others
                    .iter()
                    .filter(|o| o.same_credential && o.registry == server)
                    .flat_map(|o| &o.failing_workloads)
                    .filter(|w| restartable(w) && w.namespace != ns)
                    .collect();
                held.sort();
                held.dedup();
                if let [w] = held.as_slice() {
                    b.push(
                        step(
                            Action::Restart {
                                workload: (*w).clone(),
                            },
                            format!("rollout restart {} -n {}", w.target(), w.namespace),
                            "it fails on the same stale secret; new pods pull with the updated one now",
                            false,
                        ),
                        &[update],
                    );
                } else if !held.is_empty() {
                    b.push(
                        step(
                            Action::RestartMany {
                                workloads: held.iter().map(|w| (*w).clone()).collect(),
                            },
                            format!(
                                "rollout restart {} workloads in other namespaces",
                                held.len()
                            ),
                            format!(
                                "they fail on the same stale secret; new pods pull with the updated one now: {}",
                                held.iter()
                                    .map(|w| format!("{}/{}", w.namespace, w.target()))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                            false,
                        ),
                        &[update],
                    );
                }
            }
        }
    }

    // Restart, so pods in backoff pull now.
    if !restart_needs.is_empty() && !changed_template {
        match &workload {
            Some(w) if restartable(w) => {
                b.push(
                    step(
                        Action::Restart {
                            workload: w.clone(),
                        },
                        format!("rollout restart {} -n {ns}", w.target()),
                        "pods in backoff only retry after up to 5 minutes; new pods pull now",
                        false,
                    ),
                    &restart_needs,
                );
            }
            Some(_) => {}
            None => {
                b.push(
                    step(
                        Action::DeleteBarePod {
                            namespace: ns.clone(),
                            pod: f.pod.clone(),
                        },
                        format!("delete bare pod {ns}/{}", f.pod),
                        "a pod without a controller is not recreated: delete it only if you can recreate it from its manifest",
                        true,
                    ),
                    &restart_needs,
                );
            }
        }
    }
    b.steps
}

fn attach_step(f: &Finding, secret: &str, opts: &PlanOptions) -> PlannedStep {
    let ns = f.namespace.clone();
    match (opts.attach_to, &f.workload) {
        (Some(AttachTo::ServiceAccount), _) | (_, None) => step(
            Action::AttachToServiceAccount {
                namespace: ns.clone(),
                service_account: opts.service_account.clone(),
                secret: secret.to_string(),
            },
            format!(
                "attach {secret} to ServiceAccount {ns}/{}",
                opts.service_account
            ),
            "every pod running as this ServiceAccount gets the pull secret",
            false,
        ),
        (_, Some(w)) => step(
            Action::AttachToWorkload {
                workload: w.clone(),
                secret: secret.to_string(),
            },
            format!(
                "attach {secret} to the pod template of {} -n {ns}",
                w.target()
            ),
            "only this workload gets the pull secret (the change rolls out new pods)",
            false,
        ),
    }
}

/// Whether step `i` may run, given what happened to the steps before it
/// (`outcomes[j]` for each earlier step `j`; `None` when it did not run).
/// `None` when every step it needs was applied, rehearsed or already in
/// place; otherwise the reason it is skipped, naming the first step in the
/// way and what happened to it (through a chain of skipped steps, the one
/// that started it). Pure.
pub(crate) fn blocked(
    steps: &[PlannedStep],
    outcomes: &[Option<Outcome>],
    i: usize,
) -> Option<String> {
    let step = steps.get(i)?;
    step.needs.iter().find_map(|&d| {
        let what = match outcomes.get(d).and_then(Option::as_ref) {
            Some(
                Outcome::Applied { .. } | Outcome::Rehearsed { .. } | Outcome::Unchanged { .. },
            ) => {
                return None;
            }
            Some(Outcome::Declined) => "which you declined".to_string(),
            // Skipped for a step of its own: name that one (the root), not
            // the chain.
            Some(Outcome::Skipped { .. }) if blocked(steps, outcomes, d).is_some() => {
                return blocked(steps, outcomes, d);
            }
            Some(Outcome::Skipped { reason }) => {
                // The first clause is enough here; the step's own line has the rest.
                let short = reason.split([';', '—']).next().unwrap_or(reason).trim();
                format!("which was skipped ({short})")
            }
            Some(Outcome::NotPermitted { .. }) => "which you are not permitted to do".to_string(),
            Some(Outcome::Failed { .. }) => "which failed".to_string(),
            None => "which did not run".to_string(),
        };
        let title = steps.get(d).map_or("an earlier step", |s| s.title.as_str());
        Some(format!("depends on '{title}', {what}"))
    })
}

/// Facts a command needs beyond the planned action.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CommandFacts<'a> {
    /// The registry username written (the new credential's, or the
    /// existing secret's when only that is known).
    pub username: Option<&'a str>,
    /// The ServiceAccount's `imagePullSecrets` before the change (a merge
    /// patch replaces the whole list, so the command names them all).
    pub service_account_secrets: &'a [String],
    /// The other `auths` entries the secret keeps: a `kubectl create secret
    /// docker-registry` would drop them.
    pub other_entries: usize,
    /// A file (0600) holding the whole new secret, which `kubectl replace
    /// -f` (or `create -f`) writes as pullfix does, other entries included.
    pub object_file: Option<&'a str>,
}

/// The kubectl commands that do what `action` does (redacted: the password
/// is `<password>`, or the `aws ecr get-login-password` that makes an ECR
/// token). Pure: `fix` prints them as the "kubectl equivalent" and
/// `diagnose` as its next steps.
pub(crate) fn commands(action: &Action, facts: &CommandFacts<'_>) -> Vec<String> {
    match action {
        Action::WriteSecret {
            namespace,
            name,
            server,
            exists,
            recreate,
        } => secret_commands(namespace, name, server, facts, *exists && *recreate),
        Action::UpdateOtherNamespaces { server, secrets } => secrets
            .iter()
            .flat_map(|(ns, name)| secret_commands(ns, name, server, facts, false))
            .collect(),
        Action::AttachToServiceAccount {
            namespace,
            service_account,
            secret,
        } => {
            let mut names: Vec<&str> = facts
                .service_account_secrets
                .iter()
                .map(String::as_str)
                .collect();
            if !names.contains(&secret.as_str()) {
                names.push(secret);
            }
            let list: Vec<serde_json::Value> = names
                .iter()
                .map(|n| serde_json::json!({ "name": n }))
                .collect();
            vec![format!(
                "kubectl patch serviceaccount {service_account} -n {namespace} -p '{}'",
                serde_json::json!({ "imagePullSecrets": list })
            )]
        }
        Action::AttachToWorkload { workload, secret } => vec![format!(
            "kubectl patch {} -n {} -p '{}'",
            workload.target(),
            workload.namespace,
            serde_json::json!({"spec": {"template": {"spec": {"imagePullSecrets": [{"name": secret}]}}}})
        )],
        // A choice among several tags: one command per candidate.
        Action::SetImage {
            workload,
            container,
            image,
            choose_from,
        } => if choose_from.is_empty() {
            std::slice::from_ref(image)
        } else {
            choose_from.as_slice()
        }
        .iter()
        .map(|image| {
            format!(
                "kubectl set image {} {container}={image} -n {}",
                workload.target(),
                workload.namespace
            )
        })
        .collect(),
        Action::Restart { workload } => vec![restart_command(workload)],
        Action::RestartMany { workloads } => workloads.iter().map(restart_command).collect(),
        Action::DeleteBarePod { namespace, pod } => {
            vec![format!("kubectl delete pod {pod} -n {namespace}")]
        }
    }
}

/// `kubectl create secret docker-registry … | kubectl apply -f -` (after a
/// delete when the type must change). An ECR registry's password is a
/// fresh token from the AWS CLI; elsewhere it is `<password>`, and the
/// username is the known one or `$REGISTRY_USERNAME`.
///
/// That command writes a secret with one `auths` entry. When the secret
/// keeps others, the equivalent is `kubectl replace -f FILE` of the whole
/// new object pullfix wrote to a 0600 file (carrying the resourceVersion it
/// was based on, as pullfix's own write does); without such a file the
/// command says that it is not equivalent.
fn secret_commands(
    ns: &str,
    name: &str,
    server: &str,
    facts: &CommandFacts<'_>,
    delete_first: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    if delete_first {
        out.push(format!("kubectl delete secret {name} -n {ns}"));
    }
    if let Some(file) = facts.object_file {
        let file = shell_word(file);
        out.push(if delete_first {
            format!("kubectl create -f {file}")
        } else {
            format!("kubectl replace -f {file}")
        });
        return out;
    }
    let username = facts.username;
    let (user, password) = match crate::diagnose::secrets::ecr_region(server) {
        Some(region) if crate::diagnose::secrets::is_ecr_host(server) => (
            "AWS".to_string(),
            format!("\"$(aws ecr get-login-password --region {region})\""),
        ),
        _ => (
            username.map_or_else(|| "\"$REGISTRY_USERNAME\"".to_string(), shell_word),
            "<password>".to_string(),
        ),
    };
    let caveat = match facts.other_entries {
        0 => String::new(),
        n => format!(
            " # not equivalent: this secret has {n} other auths entr{} which this command drops; `kubectl pullfix fix` keeps them",
            if n == 1 { "y" } else { "ies" }
        ),
    };
    out.push(format!(
        "kubectl create secret docker-registry {name} --docker-server={server} --docker-username={user} --docker-password={password} -n {ns} --dry-run=client -o yaml | kubectl apply -f -{caveat}"
    ));
    out
}

/// A word as a shell reads it ([`crate::sanitize::shell_word`]): bare,
/// single-quoted, or `$'…'` when it holds control characters.
pub(crate) fn shell_word(s: &str) -> String {
    crate::sanitize::shell_word(s)
}

/// The facts `diagnose` knows for a finding's commands: the username in
/// the pull secret the plan writes, and the ServiceAccount's pull secrets.
fn finding_facts(f: &Finding) -> (Option<&str>, Vec<String>) {
    let username = f.secrets.iter().find_map(|s| s.username.as_deref());
    let sa_secrets = f
        .secrets
        .iter()
        .filter(
            |s| matches!(&s.origin, Origin::ServiceAccount { name } if *name == f.service_account),
        )
        .map(|s| s.name.clone())
        .collect();
    (username, sa_secrets)
}

/// `diagnose`'s next steps for a finding, rendered from the plan `fix`
/// would run with no flags (same objects, same ServiceAccount, same secret
/// and server): one step per planned step, with its command and the steps
/// it waits for. `None` for causes with no plan, whose next steps say who
/// fixes them. Pure.
pub(crate) fn advice(f: &Finding, others: &[OtherSecret]) -> Option<Vec<Step>> {
    let steps = plan(f, others, &PlanOptions::for_finding(f));
    let credential_cause = matches!(
        f.cause,
        Cause::CredentialsMissing | Cause::CredentialsRejected | Cause::CredentialsExpired
    );
    if steps.is_empty() && !credential_cause {
        return None;
    }
    let (username, sa_secrets) = finding_facts(f);
    let facts = CommandFacts {
        username,
        service_account_secrets: &sa_secrets,
        ..CommandFacts::default()
    };
    let mut out: Vec<Step> = steps
        .iter()
        .map(|s| {
            // The entries the written secret keeps, and the user its entry
            // for the registry names (another secret's user is no guess
            // for this one: a placeholder then), as diagnosed.
            let (kept, username) = match &s.action {
                Action::WriteSecret { name, .. } => f
                    .secrets
                    .iter()
                    .find(|r| r.name == *name)
                    .map_or((0, None), |r| (r.other_entries, r.username.as_deref())),
                _ => (0, facts.username),
            };
            let cmds = commands(
                &s.action,
                &CommandFacts {
                    other_entries: kept,
                    username,
                    ..facts
                },
            );
            let after = s.after("step ");
            // A choice among several tags is not one command: the guided
            // fix offers them as a menu, with digests and build dates.
            if let Action::SetImage {
                workload,
                choose_from,
                ..
            } = &s.action
                && !choose_from.is_empty()
            {
                return Step {
                    text: format!(
                        "{}: {}; the guided fix lists each with its digest and build date and sets the one you pick",
                        s.title, s.why
                    ),
                    command: Some(format!(
                        "kubectl pullfix fix {} -n {}",
                        workload.target(),
                        workload.namespace
                    )),
                };
            }
            let command = cmds.join(" && ");
            let set_user = if command.contains("$REGISTRY_USERNAME") {
                " — set REGISTRY_USERNAME to the registry's user name first"
            } else {
                ""
            };
            Step {
                text: format!("{}: {}{after}{set_user}", s.title, s.why),
                command: (!cmds.is_empty()).then_some(command),
            }
        })
        .collect();
    if steps.is_empty() {
        out.push(Step {
            text: "the pull secret's credential works from here now: the pod retries the pull by itself within 5 minutes (back-off)".into(),
            command: None,
        });
    }
    // The other place a pull secret can go, as `fix` offers it.
    if let Some(s) = steps.iter().find_map(|s| match &s.action {
        Action::AttachToWorkload { secret, .. } => Some(secret),
        _ => None,
    }) && let Some(w) = &f.workload
    {
        out.push(Step {
            text: format!(
                "or attach {s} to ServiceAccount {}/{} instead, for every pod running as it (then restart): kubectl pullfix fix {} -n {} --attach-to service-account",
                f.namespace,
                f.service_account,
                w.target(),
                f.namespace
            ),
            command: None,
        });
    }
    if steps
        .iter()
        .any(|s| matches!(s.action, Action::WriteSecret { .. }))
        && f.secrets.iter().any(|s| s.manager.is_some())
    {
        out.push(Step {
            text: "the secret is managed by a tool: make the change at its source of truth, or the edit will be reverted".into(),
            command: None,
        });
    }
    if f.cause == Cause::CredentialsExpired {
        out.push(Step {
            text: "then fix what should have refreshed it (the refresh CronJob, or move to IRSA / the kubelet credential provider)".into(),
            command: Some(format!("kubectl get cronjobs -n {}", f.namespace)),
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::secrets::{Origin, SecretReport};

    fn finding(cause: Cause, image: &str) -> Finding {
        let mut f = Finding::sample("shop", cause, image);
        f.decision.rule = "node-text";
        f
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
            other_entries: 0,
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
    fn an_outage_restarts_the_held_workloads_in_one_confirmed_step() {
        let mut f = finding(Cause::CredentialsExpired, "reg.example.com/team/app:v1");
        f.secrets = vec![report("regcred", vec![])];
        let others: Vec<OtherSecret> = (0..200)
            .map(|i| OtherSecret {
                namespace: format!("team-{i:03}"),
                name: "regcred".into(),
                registry: "reg.example.com".into(),
                same_credential: true,
                failing_workloads: vec![Workload {
                    kind: "Deployment".into(),
                    namespace: format!("team-{i:03}"),
                    name: "api".into(),
                }],
            })
            .collect();
        let steps = plan(&f, &others, &opts());
        // Write here, update the 200 copies, restart the 200 held back, and
        // restart this workload: four steps, not 202.
        assert_eq!(steps.len(), 4, "{steps:#?}");
        let Action::RestartMany { workloads } = &steps[2].action else {
            panic!("{:?}", steps[2].action)
        };
        assert_eq!(workloads.len(), 200);
        assert_eq!(
            steps[2].title,
            "rollout restart 200 workloads in other namespaces"
        );
        assert!(
            steps[2].why.contains("team-199/deploy/api"),
            "{}",
            steps[2].why
        );
        // Listed in full: one command per workload.
        let cmds = commands(&steps[2].action, &CommandFacts::default());
        assert_eq!(cmds.len(), 200);
        assert_eq!(cmds[0], "kubectl rollout restart deploy/api -n team-000");
        assert_eq!(steps[2].needs, [1], "after the copies are updated");
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
        // The graph: the other namespaces wait for the tested write, their
        // restarts for their update, this restart for the write.
        let needs: Vec<&[usize]> = steps.iter().map(|s| s.needs.as_slice()).collect();
        assert_eq!(needs, [&[][..], &[0], &[1], &[0]]);
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

    fn outcomes(list: &[Option<Outcome>]) -> Vec<Option<Outcome>> {
        list.to_vec()
    }

    /// The plan of a credential that must be created and attached to the
    /// ServiceAccount: write, attach (needs the write), restart (needs both).
    fn create_attach_restart() -> Vec<PlannedStep> {
        let f = finding(Cause::CredentialsMissing, "reg.example.com/team/app:v1");
        plan(
            &f,
            &[],
            &PlanOptions {
                attach_to: Some(AttachTo::ServiceAccount),
                ..opts()
            },
        )
    }

    #[test]
    fn every_dependency_points_back() {
        let steps = create_attach_restart();
        assert_eq!(steps.len(), 3);
        assert_eq!(steps[1].needs, [0]);
        assert_eq!(steps[2].needs, [0, 1]);
        for (i, s) in steps.iter().enumerate() {
            assert!(s.needs.iter().all(|&d| d < i), "{s:?}");
        }
    }

    #[test]
    fn a_declined_step_skips_its_dependants_with_the_reason() {
        let steps = create_attach_restart();
        let o = outcomes(&[Some(Outcome::Declined), None, None]);
        assert_eq!(blocked(&steps, &o, 0), None, "no dependencies");
        assert_eq!(
            blocked(&steps, &o, 1).as_deref(),
            Some(
                "depends on 'create pull secret shop/regcred for reg.example.com', which you declined"
            )
        );
        // The restart names the first step in the way.
        assert!(
            blocked(&steps, &o, 2).unwrap().contains(
                "'create pull secret shop/regcred for reg.example.com', which you declined"
            )
        );
    }

    #[test]
    fn skipped_and_failed_steps_block_too_and_the_chain_carries_on() {
        let steps = create_attach_restart();
        let pending = Outcome::Skipped {
            reason: "no terminal and no --yes: fix pending".into(),
        };
        let o = outcomes(&[Some(pending.clone()), None, None]);
        assert_eq!(
            blocked(&steps, &o, 1).as_deref(),
            Some(
                "depends on 'create pull secret shop/regcred for reg.example.com', which was skipped (no terminal and no --yes: fix pending)"
            )
        );
        // The attach was then skipped itself: the restart is blocked by it
        // as well as by the write (the write, first, is named).
        let o = outcomes(&[
            Some(pending.clone()),
            Some(Outcome::Skipped {
                reason: blocked(&steps, &o, 1).unwrap(),
            }),
            None,
        ]);
        assert!(
            blocked(&steps, &o, 2)
                .unwrap()
                .contains("'create pull secret")
        );
        // A step that needs only the skipped attach names the write that
        // started the chain, once.
        let mut only_attach = steps.clone();
        only_attach[2].needs = vec![1];
        assert_eq!(
            blocked(&only_attach, &o, 2).as_deref(),
            Some(
                "depends on 'create pull secret shop/regcred for reg.example.com', which was skipped (no terminal and no --yes: fix pending)"
            )
        );
        let o = outcomes(&[
            Some(Outcome::Applied {
                detail: String::new(),
            }),
            Some(Outcome::Failed {
                error: "conflict".into(),
            }),
            None,
        ]);
        assert_eq!(
            blocked(&steps, &o, 2).as_deref(),
            Some("depends on 'attach regcred to ServiceAccount shop/default', which failed")
        );
        let o = outcomes(&[
            Some(Outcome::Applied {
                detail: String::new(),
            }),
            Some(Outcome::NotPermitted {
                missing: "patch serviceaccounts".into(),
            }),
            None,
        ]);
        assert!(
            blocked(&steps, &o, 2)
                .unwrap()
                .ends_with("which you are not permitted to do")
        );
    }

    #[test]
    fn applied_rehearsed_or_already_in_place_lets_dependants_run() {
        let steps = create_attach_restart();
        for done in [
            Outcome::Applied {
                detail: String::new(),
            },
            Outcome::Rehearsed {
                detail: String::new(),
            },
        ] {
            let o = outcomes(&[
                Some(done.clone()),
                Some(Outcome::Unchanged {
                    detail: "regcred is already attached".into(),
                }),
                None,
            ]);
            assert_eq!(blocked(&steps, &o, 2), None, "{done:?}");
        }
        // A long skip reason is cut at its first clause.
        let o = outcomes(&[
            Some(Outcome::Skipped {
                reason: "the registry rejected the credential typed 3 times; the secret was not changed — get the current one".into(),
            }),
            None,
            None,
        ]);
        assert!(
            blocked(&steps, &o, 1).unwrap().ends_with(
                "which was skipped (the registry rejected the credential typed 3 times)"
            )
        );
    }

    /// `sa-secret-only`: regcred exists and `default` holds it, but the
    /// pods run as `checkout`. The advice names `checkout`, never `default`.
    #[test]
    fn advice_names_the_objects_the_plan_changes() {
        let mut f = finding(Cause::CredentialsMissing, "reg.example.com/team/app:v1");
        f.service_account = "checkout".into();
        f.unused_matching_secrets = vec!["regcred".into()];
        let steps = advice(&f, &[]).unwrap();
        let commands: Vec<&str> = steps.iter().filter_map(|s| s.command.as_deref()).collect();
        assert_eq!(
            commands,
            [
                r#"kubectl patch deploy/checkout -n shop -p '{"spec":{"template":{"spec":{"imagePullSecrets":[{"name":"regcred"}]}}}}'"#
            ]
        );
        let all = format!("{steps:?}");
        assert!(!all.contains("default"), "{all}");
        assert!(all.contains("ServiceAccount shop/checkout"), "{all}");
        // With the ServiceAccount chosen, the patch and the restart name it.
        let planned = plan(
            &f,
            &[],
            &PlanOptions {
                attach_to: Some(AttachTo::ServiceAccount),
                ..PlanOptions::for_finding(&f)
            },
        );
        let cmds: Vec<String> = planned.iter().flat_map(|s| commands_of(s, None)).collect();
        assert_eq!(
            cmds,
            [
                r#"kubectl patch serviceaccount checkout -n shop -p '{"imagePullSecrets":[{"name":"regcred"}]}'"#,
                "kubectl rollout restart deploy/checkout -n shop"
            ]
        );
    }

    fn commands_of(s: &PlannedStep, username: Option<&str>) -> Vec<String> {
        commands(
            &s.action,
            &CommandFacts {
                username,
                ..CommandFacts::default()
            },
        )
    }

    #[test]
    fn advice_says_when_create_secret_would_drop_other_entries() {
        let mut f = finding(Cause::CredentialsRejected, "reg.example.com/team/app:v1");
        f.secrets = vec![SecretReport {
            other_entries: 1,
            ..report("regcred", vec![])
        }];
        let steps = advice(&f, &[]).unwrap();
        let cmd = steps[0].command.as_deref().unwrap();
        assert!(
            cmd.ends_with("# not equivalent: this secret has 1 other auths entry which this command drops; `kubectl pullfix fix` keeps them"),
            "{cmd}"
        );
    }

    #[test]
    fn advice_for_a_rejected_secret_fills_the_username_and_every_namespace() {
        let mut f = finding(Cause::CredentialsRejected, "reg.example.com/team/app:v1");
        f.secrets = vec![report("regcred", vec![])];
        let others = vec![OtherSecret {
            namespace: "shop-c".into(),
            name: "regcred".into(),
            registry: "reg.example.com".into(),
            same_credential: true,
            failing_workloads: vec![Workload {
                kind: "Deployment".into(),
                namespace: "shop-c".into(),
                name: "checkout".into(),
            }],
        }];
        let steps = advice(&f, &others).unwrap();
        let commands: Vec<&str> = steps.iter().filter_map(|s| s.command.as_deref()).collect();
        assert_eq!(
            commands,
            [
                "kubectl create secret docker-registry regcred --docker-server=reg.example.com --docker-username=u --docker-password=<password> -n shop --dry-run=client -o yaml | kubectl apply -f -",
                "kubectl create secret docker-registry regcred --docker-server=reg.example.com --docker-username=u --docker-password=<password> -n shop-c --dry-run=client -o yaml | kubectl apply -f -",
                "kubectl rollout restart deploy/checkout -n shop-c",
                "kubectl rollout restart deploy/checkout -n shop",
            ]
        );
        assert!(
            steps[3].text.ends_with("(after step 1)"),
            "{}",
            steps[3].text
        );
        // No placeholder but the password.
        let all = format!("{steps:?}");
        assert_eq!(
            all.matches('<').count(),
            all.matches("<password>").count(),
            "{all}"
        );
    }

    #[test]
    fn secret_commands_for_unknown_users_ecr_and_wrong_types() {
        let write = |server: &str, exists, recreate| Action::WriteSecret {
            namespace: "shop".into(),
            name: "regcred".into(),
            server: server.into(),
            exists,
            recreate,
        };
        let none = CommandFacts::default();
        let c = commands(&write("reg.example.com", false, false), &none);
        assert_eq!(c.len(), 1);
        assert!(
            c[0].contains(r#"--docker-username="$REGISTRY_USERNAME""#),
            "{c:?}"
        );
        let c = commands(&write("reg.example.com", true, true), &none);
        assert_eq!(c[0], "kubectl delete secret regcred -n shop");
        let ecr = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
        let c = commands(&write(ecr, true, false), &none);
        assert!(
            c[0].contains(r#"--docker-username=AWS --docker-password="$(aws ecr get-login-password --region eu-west-1)""#),
            "{c:?}"
        );
        let odd = CommandFacts {
            username: Some("robot$ci"),
            ..none
        };
        let c = commands(&write("reg.example.com", true, false), &odd);
        assert!(c[0].contains("--docker-username='robot$ci'"), "{c:?}");
    }

    #[test]
    fn a_secret_with_other_entries_is_replaced_whole_or_says_it_is_not_equivalent() {
        let write = |recreate| Action::WriteSecret {
            namespace: "shop".into(),
            name: "regcred".into(),
            server: "reg.example.com".into(),
            exists: true,
            recreate,
        };
        let kept = CommandFacts {
            username: Some("u"),
            other_entries: 2,
            ..CommandFacts::default()
        };
        let c = commands(&write(false), &kept);
        assert_eq!(c.len(), 1);
        assert!(
            c[0].ends_with(" # not equivalent: this secret has 2 other auths entries which this command drops; `kubectl pullfix fix` keeps them"),
            "{c:?}"
        );
        let file = CommandFacts {
            object_file: Some("/b/20260101-shop-secret-regcred.new.yaml"),
            ..kept
        };
        assert_eq!(
            commands(&write(false), &file),
            ["kubectl replace -f /b/20260101-shop-secret-regcred.new.yaml"]
        );
        assert_eq!(
            commands(&write(true), &file),
            [
                "kubectl delete secret regcred -n shop",
                "kubectl create -f /b/20260101-shop-secret-regcred.new.yaml"
            ]
        );
        // One entry: the create | apply is the equivalent, with no caveat.
        let one = commands(&write(false), &CommandFacts::default());
        assert!(!one[0].contains('#'), "{one:?}");
    }

    #[test]
    fn the_service_account_patch_keeps_its_other_secrets() {
        let attach = Action::AttachToServiceAccount {
            namespace: "shop".into(),
            service_account: "checkout".into(),
            secret: "regcred".into(),
        };
        let before = vec!["other".to_string()];
        let c = commands(
            &attach,
            &CommandFacts {
                service_account_secrets: &before,
                ..CommandFacts::default()
            },
        );
        assert_eq!(
            c,
            [
                r#"kubectl patch serviceaccount checkout -n shop -p '{"imagePullSecrets":[{"name":"other"},{"name":"regcred"}]}'"#
            ]
        );
    }

    #[test]
    fn causes_without_a_plan_keep_their_own_advice() {
        let f = finding(Cause::RegistryUnreachable, "reg.example.com/team/app:v1");
        assert!(advice(&f, &[]).is_none());
        let f = finding(Cause::ImageNotFound, "reg.example.com/team/app:v9");
        assert!(
            advice(&f, &[]).is_none(),
            "no verified tag: nothing planned"
        );
    }
}
