//! `kubectl pullfix scan`: the runbook's quick assessment. One paged pod
//! list across the scope, the failing containers kept, grouped the way a
//! responder thinks (by owning workload, then image and registry), with
//! severity and a classified cause per group.
//!
//! [`extract_failing`], [`group`], [`outages`] and [`assess`] are pure;
//! [`run`] does the I/O: field-selected pod and event lists, then one list
//! per owner kind (per namespace for a few namespaces, cluster-wide for
//! many: [`Spread`]) — never a request per pod or per workload.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{Event, Namespace, Pod};
use kube::Client;
use serde::Serialize;

use crate::api::{self, ListQuery};

use crate::collect::{self, OwnerRef, PodLite, Scope, Spread, WorkloadLite};
use crate::diagnose::classify::{classify_container, is_pull_failure_reason};
use crate::diagnose::decide::{Facts, Secrets, decide};
use crate::diagnose::{Cause, Confidence};
use crate::registry::reference::ImageRef;

/// One container that cannot get its image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct FailingContainer {
    pub name: String,
    pub image: String,
    pub init: bool,
    pub reason: String,
    pub message: String,
    /// The kubelet's pull events for this container (reason, message),
    /// newest first: they carry the cause when the waiting message does not.
    #[serde(skip)]
    pub events: Vec<(String, String)>,
}

/// A pod with at least one such container.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FailingPod {
    pub namespace: String,
    pub name: String,
    #[serde(skip)]
    pub owner: Option<OwnerRef>,
    pub node: Option<String>,
    /// The pod spec's `imagePullSecrets` (the ServiceAccount's are not read
    /// by the scan).
    #[serde(skip)]
    pub pull_secrets: Vec<String>,
    #[serde(skip)]
    pub service_account: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub containers: Vec<FailingContainer>,
    /// The pod names pull secrets (its own or, copied in at creation, its
    /// ServiceAccount's): scan does not read them, but it tells an auth
    /// text that fits a refused credential from one where none was sent.
    #[serde(skip)]
    pub names_pull_secrets: bool,
}

/// Keeps a pod when a container or init container waits for a pull reason,
/// including Running pods with one such container. Pure.
pub(crate) fn extract_failing(pod: PodLite) -> Option<FailingPod> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let mut containers = Vec::new();
    let statuses = pod
        .status
        .init_container_statuses
        .iter()
        .map(|s| (s, true))
        .chain(pod.status.container_statuses.iter().map(|s| (s, false)));
    for (s, init) in statuses {
        let Some(w) = &s.state.waiting else { continue };
        let reason = w.reason.clone().unwrap_or_default();
        if !is_pull_failure_reason(&reason) {
            continue;
        }
        let spec_image = pod
            .spec
            .containers
            .iter()
            .chain(&pod.spec.init_containers)
            .find(|c| c.name == s.name)
            .map_or_else(|| s.image.clone(), |c| c.image.clone());
        containers.push(FailingContainer {
            name: s.name.clone(),
            image: spec_image,
            init,
            reason,
            message: w.message.clone().unwrap_or_default(),
            events: Vec::new(),
        });
    }
    if containers.is_empty() {
        return None;
    }
    let since = pod
        .status
        .start_time
        .as_deref()
        .or(pod.metadata.creation_timestamp.as_deref())
        .and_then(parse_time);
    Some(FailingPod {
        namespace: pod.metadata.namespace,
        name: pod.metadata.name,
        owner: pod
            .metadata
            .owner_references
            .into_iter()
            .find(|o| o.controller.unwrap_or(false)),
        names_pull_secrets: !pod.spec.image_pull_secrets.is_empty(),
        node: pod.spec.node_name,
        pull_secrets: pod
            .spec
            .image_pull_secrets
            .into_iter()
            .map(|s| s.name)
            .filter(|n| !n.is_empty())
            .collect(),
        service_account: pod.spec.service_account_name,
        since,
        containers,
    })
}

/// Parses an RFC 3339 API timestamp.
pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The workload a responder acts on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Workload {
    /// Deployment, StatefulSet, DaemonSet, CronJob, Job, ReplicaSet, Pod.
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl Workload {
    /// `deploy/checkout`, the form kubectl and `diagnose` accept.
    pub(crate) fn target(&self) -> String {
        let short = match self.kind.as_str() {
            "Deployment" => "deploy",
            "StatefulSet" => "sts",
            "DaemonSet" => "ds",
            "CronJob" => "cronjob",
            "Job" => "job",
            "ReplicaSet" => "rs",
            _ => "pod",
        };
        format!("{short}/{}", self.name)
    }
}

impl Workload {
    /// The name `kubectl get -o name` prints: `deployment.apps/checkout`,
    /// `pod/checkout-7d9f`.
    pub fn kubectl_name(&self) -> String {
        let resource = match self.kind.as_str() {
            "Deployment" => "deployment.apps",
            "StatefulSet" => "statefulset.apps",
            "DaemonSet" => "daemonset.apps",
            "ReplicaSet" => "replicaset.apps",
            "CronJob" => "cronjob.batch",
            "Job" => "job.batch",
            _ => "pod",
        };
        format!("{resource}/{}", self.name)
    }
}

/// Replica counts of a workload controller.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Replicas {
    pub ready: i64,
    pub desired: i64,
    /// A Deployment rollout that cannot progress (new pods failing).
    pub rollout_blocked: bool,
}

/// P1: a workload with no ready replica or a blocked rollout; P2: less.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Severity {
    P1,
    P2,
}

/// The severity of a failing workload: P1 when no replica is ready or its
/// rollout is blocked, P2 otherwise. Scan and the training's alerts use it.
pub fn severity(ready: i64, rollout_blocked: bool) -> Severity {
    if ready == 0 || rollout_blocked {
        Severity::P1
    } else {
        Severity::P2
    }
}

/// One group in the assessment.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub workload: Workload,
    pub severity: Severity,
    pub ready: i64,
    pub desired: i64,
    pub image: String,
    pub registry: String,
    pub cause: Cause,
    /// How sure, from the node's text alone (diagnose weighs the secrets
    /// and the registry too): `low` when the cause is a guess.
    pub confidence: Confidence,
    pub reason: String,
    pub failing_pods: usize,
    pub oldest_failure_seconds: Option<i64>,
    pub pods: Vec<String>,
    pub containers: Vec<String>,
    /// The nodes the failing pods are scheduled on (`-o wide`).
    pub nodes: Vec<String>,
    /// The failing pods' own `imagePullSecrets` (`-o wide`); the
    /// ServiceAccount's are read by `diagnose`.
    pub pull_secrets: Vec<String>,
    /// The ServiceAccounts the failing pods run as.
    pub service_accounts: Vec<String>,
    /// The failure is the network's or the registry's own (unreachable,
    /// TLS, a 5xx): what an outage looks like.
    #[serde(skip)]
    pub network: bool,
}

/// The namespaces a command looked in, said in every result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Looked {
    /// `-A`: every namespace.
    pub all_namespaces: bool,
    /// The one namespace, otherwise.
    pub namespace: Option<String>,
}

impl Looked {
    pub fn of(scope: &Scope) -> Looked {
        Looked {
            all_namespaces: scope.namespace().is_none(),
            namespace: scope.namespace().map(str::to_string),
        }
    }

    /// `namespace shop`, `all namespaces`.
    pub fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) if !self.all_namespaces => format!("namespace {ns}"),
            _ => "all namespaces".into(),
        }
    }
}

/// What a scan looked at and what it found, counted in one place
/// ([`Scanned::count`]) for the table, the summary line, `-o json` and
/// the diagnosis alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scanned {
    pub scope: Looked,
    /// Pods in scope (at least every failing pod).
    pub pods_seen: usize,
    /// Distinct pods with a container or init container failing to pull.
    pub failing_pods: usize,
    /// Distinct workloads with such a pod.
    pub failing_workloads: usize,
    /// Namespaces with failures, sorted.
    pub namespaces: Vec<String>,
}

impl Scanned {
    /// Counts from the failing pods (deduplicated by namespace and name)
    /// and the groups. `pods_in_scope` is the API server's count, read
    /// apart from the lists: a pod seen failing was in scope, so the count
    /// is never below the failing ones. Pure.
    pub(crate) fn count(
        scope: &Scope,
        pods_in_scope: usize,
        pods: &[FailingPod],
        groups: &[Group],
    ) -> Scanned {
        let distinct: BTreeSet<(&str, &str)> = pods
            .iter()
            .map(|p| (p.namespace.as_str(), p.name.as_str()))
            .collect();
        let workloads: BTreeSet<&Workload> = groups.iter().map(|g| &g.workload).collect();
        let namespaces: BTreeSet<&str> = distinct.iter().map(|(ns, _)| *ns).collect();
        Scanned {
            scope: Looked::of(scope),
            pods_seen: pods_in_scope.max(distinct.len()),
            failing_pods: distinct.len(),
            failing_workloads: workloads.len(),
            namespaces: namespaces.into_iter().map(str::to_string).collect(),
        }
    }
}

/// The whole assessment.
#[derive(Debug, Clone, Serialize)]
pub struct Assessment {
    #[serde(flatten)]
    pub scanned: Scanned,
    pub groups: Vec<Group>,
    pub notes: Vec<String>,
    /// Many workloads failing on one registry for one cause: said first.
    pub outages: Vec<Outage>,
}

/// Many workloads that fail on one registry for one cause: one problem
/// behind many rows (an expired credential copied everywhere, a registry
/// down), said before the detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outage {
    pub registry: String,
    pub cause: Cause,
    pub workloads: usize,
    pub namespaces: usize,
    pub pods: usize,
    /// Images involved (distinct references).
    pub images: usize,
    /// Pull secrets the failing pods name, with the number of namespaces
    /// each name is in; most common first.
    pub pull_secrets: Vec<NamedIn>,
    /// Every failure is a network one (unreachable, TLS, 5xx).
    pub network: bool,
    /// Filled by diagnose: the largest set of pull-secret copies holding
    /// one and the same refused credential (`None` from scan, which does
    /// not read secrets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub same_credential: Option<SameCredential>,
}

/// A pull secret's name and the number of namespaces it is named in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamedIn {
    pub name: String,
    pub namespaces: usize,
}

/// Copies of one credential, in pull secrets of many namespaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SameCredential {
    /// How many secrets hold it.
    pub copies: usize,
    /// Their most common name.
    pub secret: String,
}

/// The fewest workloads that make an outage, when they span
/// [`OUTAGE_NAMESPACES`] namespaces; or [`OUTAGE_WORKLOADS`] in any number.
const OUTAGE_NAMESPACES: usize = 3;
const OUTAGE_WORKLOADS: usize = 10;

/// One failing workload's image, as the outage grouping sees it (from a
/// scan group or a diagnose finding).
pub(crate) struct Member<'a> {
    pub registry: &'a str,
    pub cause: Cause,
    pub workload: Workload,
    pub pods: &'a [String],
    pub image: &'a str,
    pub pull_secrets: Vec<&'a str>,
    pub network: bool,
}

impl<'a> Member<'a> {
    fn of_group(g: &'a Group) -> Member<'a> {
        Member {
            registry: &g.registry,
            cause: g.cause,
            workload: g.workload.clone(),
            pods: &g.pods,
            image: &g.image,
            pull_secrets: g.pull_secrets.iter().map(String::as_str).collect(),
            network: g.network,
        }
    }
}

/// The outages among the groups: (registry, cause) shared by many
/// workloads, largest first. Pure.
pub(crate) fn outages(groups: &[Group]) -> Vec<Outage> {
    outages_of(groups.iter().map(Member::of_group))
}

/// The outages among any failing workloads' images. Pure.
pub(crate) fn outages_of<'a>(members: impl Iterator<Item = Member<'a>>) -> Vec<Outage> {
    let mut by: BTreeMap<(&str, Cause), Vec<Member<'a>>> = BTreeMap::new();
    for m in members {
        by.entry((m.registry, m.cause)).or_default().push(m);
    }
    let mut out: Vec<Outage> = by
        .into_iter()
        .filter_map(|((registry, cause), members)| {
            let workloads: BTreeSet<&Workload> = members.iter().map(|m| &m.workload).collect();
            let namespaces: BTreeSet<&str> = members
                .iter()
                .map(|m| m.workload.namespace.as_str())
                .collect();
            let many = (workloads.len() >= OUTAGE_NAMESPACES
                && namespaces.len() >= OUTAGE_NAMESPACES)
                || workloads.len() >= OUTAGE_WORKLOADS;
            if !many {
                return None;
            }
            let mut secrets: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
            for m in &members {
                for s in &m.pull_secrets {
                    secrets
                        .entry(s)
                        .or_default()
                        .insert(m.workload.namespace.as_str());
                }
            }
            let mut pull_secrets: Vec<NamedIn> = secrets
                .into_iter()
                .map(|(name, ns)| NamedIn {
                    name: name.to_string(),
                    namespaces: ns.len(),
                })
                .collect();
            pull_secrets.sort_by(|a, b| {
                b.namespaces
                    .cmp(&a.namespaces)
                    .then_with(|| a.name.cmp(&b.name))
            });
            let pods: BTreeSet<(&str, &str)> = members
                .iter()
                .flat_map(|m| {
                    m.pods
                        .iter()
                        .map(|p| (m.workload.namespace.as_str(), p.as_str()))
                })
                .collect();
            let images: BTreeSet<&str> = members.iter().map(|m| m.image).collect();
            Some(Outage {
                registry: registry.to_string(),
                cause,
                workloads: workloads.len(),
                namespaces: namespaces.len(),
                pods: pods.len(),
                images: images.len(),
                pull_secrets,
                network: members.iter().all(|m| m.network),
                same_credential: None,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.workloads
            .cmp(&a.workloads)
            .then_with(|| a.registry.cmp(&b.registry))
    });
    out
}

impl Outage {
    /// One line: how many fail, where, why; and the one thing to fix. Raw
    /// text from the cluster: render it through `sanitize::line`.
    pub fn headline(&self) -> String {
        let mut s = format!(
            "{} workload(s) in {} namespace(s) fail on {}: {}",
            thousands(self.workloads),
            thousands(self.namespaces),
            self.registry,
            self.cause.id()
        );
        if self.network {
            s.push_str(" — one registry or network problem, not one per workload");
        }
        match (&self.same_credential, self.pull_secrets.first()) {
            (Some(c), _) if c.copies > 1 && self.cause.is_credential() => s.push_str(&format!(
                "; {} copies of pull secret `{}` hold the same refused credential: every copy needs the new one",
                thousands(c.copies),
                c.secret
            )),
            (_, Some(named)) if named.namespaces > 1 && self.cause.is_credential() => {
                s.push_str(&format!(
                    "; their pods name pull secret `{}` in {} namespace(s)",
                    named.name,
                    thousands(named.namespaces)
                ));
            }
            _ => {}
        }
        s
    }
}

/// `1840` as `1,840`.
pub(crate) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Groups failing pods by workload, image and registry. `owners` maps a
/// pod's direct owner to the workload above it (ReplicaSet → Deployment,
/// Job → CronJob); `replicas` gives each workload's counts. Pure.
pub(crate) fn group(
    pods: &[FailingPod],
    owners: &BTreeMap<(String, String, String), Workload>,
    replicas: &BTreeMap<Workload, Replicas>,
    now: DateTime<Utc>,
) -> Vec<Group> {
    let mut groups: BTreeMap<(Workload, String), Vec<(&FailingPod, &FailingContainer)>> =
        BTreeMap::new();
    for pod in pods {
        let workload = workload_of(pod, owners);
        for c in &pod.containers {
            groups
                .entry((workload.clone(), c.image.clone()))
                .or_default()
                .push((pod, c));
        }
    }
    let mut out: Vec<Group> = groups
        .into_iter()
        .map(|((workload, image), members)| {
            let r = replicas.get(&workload).copied().unwrap_or(Replicas {
                ready: 0,
                desired: 1,
                rollout_blocked: false,
            });
            // The same rules as diagnose, with what scan knows: the node's
            // text and whether the pod names pull secrets.
            let parsed = ImageRef::parse(&image).ok();
            let mut causes: BTreeMap<Cause, (usize, Confidence, bool)> = BTreeMap::new();
            for (pod, c) in &members {
                let events: Vec<crate::diagnose::classify::EventText<'_>> = c
                    .events
                    .iter()
                    .map(|(reason, message)| crate::diagnose::classify::EventText {
                        reason,
                        message,
                        count: 1,
                    })
                    .collect();
                let classified = classify_container(&c.reason, &c.message, &events);
                let verdict = decide(&Facts {
                    image_text: &image,
                    image: parsed.as_ref(),
                    node: &classified,
                    secrets: Secrets::Unread {
                        named: pod.names_pull_secrets,
                    },
                    probe: None,
                    ecr: None,
                    private_registries: &[],
                });
                let network = matches!(verdict.cause, Cause::RegistryUnreachable | Cause::TlsError)
                    || (verdict.cause == Cause::Unknown && classified.rule == "server-error");
                let e = causes
                    .entry(verdict.cause)
                    .or_insert((0, verdict.confidence, network));
                e.0 += 1;
                e.1 = e.1.max(verdict.confidence);
                e.2 |= network;
            }
            let (cause, (_, confidence, network)) = causes
                .iter()
                .max_by_key(|(cause, (n, _, _))| (*n, **cause != Cause::Unknown))
                .map_or((Cause::Unknown, (0, Confidence::Low, false)), |(c, v)| {
                    (*c, *v)
                });
            let pods: BTreeSet<String> = members.iter().map(|(p, _)| p.name.clone()).collect();
            let containers: BTreeSet<String> =
                members.iter().map(|(_, c)| c.name.clone()).collect();
            let nodes: BTreeSet<String> =
                members.iter().filter_map(|(p, _)| p.node.clone()).collect();
            let pull_secrets: BTreeSet<String> = members
                .iter()
                .flat_map(|(p, _)| p.pull_secrets.iter().cloned())
                .collect();
            let service_accounts: BTreeSet<String> = members
                .iter()
                .map(|(p, _)| {
                    p.service_account
                        .clone()
                        .unwrap_or_else(|| "default".into())
                })
                .collect();
            let oldest = members
                .iter()
                .filter_map(|(p, _)| p.since)
                .min()
                .map(|t| (now - t).num_seconds());
            let severity = severity(r.ready, r.rollout_blocked);
            Group {
                registry: ImageRef::parse(&image)
                    .map(|i| i.domain)
                    .unwrap_or_else(|_| "(invalid reference)".into()),
                severity,
                ready: r.ready,
                desired: r.desired,
                cause,
                confidence,
                network,
                reason: members
                    .first()
                    .map(|(_, c)| c.reason.clone())
                    .unwrap_or_default(),
                failing_pods: pods.len(),
                oldest_failure_seconds: oldest,
                pods: pods.into_iter().collect(),
                containers: containers.into_iter().collect(),
                nodes: nodes.into_iter().collect(),
                pull_secrets: pull_secrets.into_iter().collect(),
                service_accounts: service_accounts.into_iter().collect(),
                image,
                workload,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (a.severity, &a.workload.namespace, &a.workload.name).cmp(&(
            b.severity,
            &b.workload.namespace,
            &b.workload.name,
        ))
    });
    out
}

fn workload_of(
    pod: &FailingPod,
    owners: &BTreeMap<(String, String, String), Workload>,
) -> Workload {
    match &pod.owner {
        Some(o) => owners
            .get(&(pod.namespace.clone(), o.kind.clone(), o.name.clone()))
            .cloned()
            .unwrap_or(Workload {
                kind: o.kind.clone(),
                namespace: pod.namespace.clone(),
                name: o.name.clone(),
            }),
        None => Workload {
            kind: "Pod".into(),
            namespace: pod.namespace.clone(),
            name: pod.name.clone(),
        },
    }
}

/// Notes on scope, as the runbook asks: many namespaces, or one registry
/// behind every failure. An outage is suggested only when every failure
/// is a network one (unreachable, TLS, the registry's 5xx); the same
/// credential failure across namespaces is said as such. Pure.
pub(crate) fn assess(
    scope: &Scope,
    pods_seen: usize,
    pods: &[FailingPod],
    groups: Vec<Group>,
) -> Assessment {
    let scanned = Scanned::count(scope, pods_seen, pods, &groups);
    let namespaces: BTreeSet<String> = pods.iter().map(|p| p.namespace.clone()).collect();
    let registries: BTreeSet<&str> = groups.iter().map(|g| g.registry.as_str()).collect();
    let causes: BTreeSet<Cause> = groups.iter().map(|g| g.cause).collect();
    let all_network = !groups.is_empty() && groups.iter().all(|g| g.network);
    // One credential that no longer works, in every namespace.
    let stale_credential = causes.len() == 1
        && causes
            .iter()
            .all(|c| matches!(c, Cause::CredentialsRejected | Cause::CredentialsExpired));
    let registry = registries.iter().next().copied().unwrap_or_default();
    let n = namespaces.len();
    let mut notes = Vec::new();
    if all_network && n >= 3 && registries.len() == 1 {
        notes.push(format!(
            "failures in {n} namespaces all pull from {registry}: possible registry outage or cluster networking issue"
        ));
    } else if all_network && n >= 5 {
        notes.push(format!(
            "failures span {n} namespaces: possible registry outage or cluster networking issue"
        ));
    } else if stale_credential && n >= 3 && registries.len() == 1 {
        notes.push(format!(
            "failures in {n} namespaces all pull from {registry} and all read {}: likely one credential copied into each namespace's pull secret: every copy needs the new one",
            causes.iter().next().map_or("", |c| c.id())
        ));
    } else if n >= 5 {
        notes.push(format!(
            "failures span {n} namespaces, with {} different cause(s): diagnose each group",
            causes.len()
        ));
    }
    Assessment {
        scanned,
        outages: outages(&groups),
        groups,
        notes,
    }
}

fn replicas_of(kind: &str, w: &WorkloadLite) -> Replicas {
    let int = |v: &serde_json::Value| v.as_i64().unwrap_or(0);
    let s = &w.status;
    let spec_replicas = w
        .spec
        .get("replicas")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(1);
    match kind {
        "Deployment" => {
            let desired = spec_replicas;
            let progressing_failed = s["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Progressing" && c["status"] == "False")
            });
            let updated = int(&s["updatedReplicas"]);
            let available_new = int(&s["availableReplicas"]);
            Replicas {
                ready: int(&s["readyReplicas"]),
                desired,
                rollout_blocked: progressing_failed
                    || (updated > 0
                        && available_new < desired
                        && int(&s["unavailableReplicas"]) > 0),
            }
        }
        "StatefulSet" | "ReplicaSet" => Replicas {
            ready: int(&s["readyReplicas"]),
            desired: spec_replicas,
            rollout_blocked: false,
        },
        "DaemonSet" => Replicas {
            ready: int(&s["numberReady"]),
            desired: int(&s["desiredNumberScheduled"]),
            rollout_blocked: false,
        },
        _ => Replicas {
            ready: 0,
            desired: 1,
            rollout_blocked: false,
        },
    }
}

/// A workload controller's key: (namespace, kind, name).
type OwnerKey = (String, String, String);

/// Lists the workload controllers of one kind that are wanted (by
/// namespace and name), over as few requests as [`Spread`] allows; a list
/// that fails leaves them out (the pods are then grouped by their direct
/// owner's name, as when the owner is gone).
async fn list_workloads(
    client: &Client,
    scope: &Scope,
    kind: &str,
    wanted: &BTreeSet<(String, String)>,
) -> Vec<WorkloadLite> {
    use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
    use k8s_openapi::api::batch::v1::Job;
    if wanted.is_empty() {
        return Vec::new();
    }
    let spread = Spread::over(
        scope,
        wanted.iter().map(|(ns, _)| ns.clone()).collect(),
        collect::NAMESPACE_LISTS,
    );
    // From etcd, not the watch cache: the fix's rounds read counts they
    // have just changed.
    let query = ListQuery::default();
    let keep = |w: WorkloadLite| {
        wanted
            .contains(&(w.metadata.namespace.clone(), w.metadata.name.clone()))
            .then_some(w)
    };
    let listed = match kind {
        "Deployment" => {
            collect::list_spread::<Deployment, _, _>(client, &spread, &query, keep).await
        }
        "StatefulSet" => {
            collect::list_spread::<StatefulSet, _, _>(client, &spread, &query, keep).await
        }
        "DaemonSet" => collect::list_spread::<DaemonSet, _, _>(client, &spread, &query, keep).await,
        "ReplicaSet" => {
            collect::list_spread::<ReplicaSet, _, _>(client, &spread, &query, keep).await
        }
        "Job" => collect::list_spread::<Job, _, _>(client, &spread, &query, keep).await,
        _ => Ok(Vec::new()),
    };
    listed.unwrap_or_default()
}

/// The workload above each failing pod's direct owner (ReplicaSet →
/// Deployment, Job → CronJob) and the counts of the top-level workloads:
/// one list per owner kind (a few per namespace, or one cluster-wide),
/// never one GET per workload.
async fn owners_of(
    client: &Client,
    scope: &Scope,
    failing: &[FailingPod],
) -> (BTreeMap<OwnerKey, Workload>, BTreeMap<Workload, Replicas>) {
    let direct: BTreeSet<OwnerKey> = failing
        .iter()
        .filter_map(|p| {
            p.owner
                .as_ref()
                .map(|o| (p.namespace.clone(), o.kind.clone(), o.name.clone()))
        })
        .collect();
    let kinds: BTreeSet<&str> = direct.iter().map(|(_, k, _)| k.as_str()).collect();
    let mut owners = BTreeMap::new();
    let mut replicas = BTreeMap::new();
    for kind in kinds {
        let wanted: BTreeSet<(String, String)> = direct
            .iter()
            .filter(|(_, k, _)| k == kind)
            .map(|(ns, _, name)| (ns.clone(), name.clone()))
            .collect();
        for obj in list_workloads(client, scope, kind, &wanted).await {
            let (ns, name) = (obj.metadata.namespace.clone(), obj.metadata.name.clone());
            let parent = obj.metadata.owner_references.iter().find(|o| {
                o.controller.unwrap_or(false) && matches!(o.kind.as_str(), "Deployment" | "CronJob")
            });
            let workload = match parent {
                Some(p) => Workload {
                    kind: p.kind.clone(),
                    namespace: ns.clone(),
                    name: p.name.clone(),
                },
                None => Workload {
                    kind: kind.to_string(),
                    namespace: ns.clone(),
                    name: name.clone(),
                },
            };
            if workload.kind == kind {
                replicas.insert(workload.clone(), replicas_of(kind, &obj));
            }
            owners.insert((ns, kind.to_string(), name), workload);
        }
    }
    // Counts of the top-level workloads that are Deployments.
    let tops: BTreeSet<(String, String)> = owners
        .values()
        .filter(|w| w.kind == "Deployment")
        .map(|w| (w.namespace.clone(), w.name.clone()))
        .collect();
    for obj in list_workloads(client, scope, "Deployment", &tops).await {
        let w = Workload {
            kind: "Deployment".into(),
            namespace: obj.metadata.namespace.clone(),
            name: obj.metadata.name.clone(),
        };
        replicas.insert(w, replicas_of("Deployment", &obj));
    }
    (owners, replicas)
}

/// What one more request costs the API server, in pods encoded: measured
/// on the lab's 1.20 API server (`docs/performance.md`, design
/// measurements), 200 lists of 50 pods took 5.07 s of its CPU against 1.83
/// s for the same 10,000 pods in one response: about 16 ms a request
/// against 0.18 ms a pod.
const REQUEST_IN_PODS: usize = 90;

/// How many namespaces to list one by one before one cluster-wide list of
/// `pods` (in `namespaces`) costs less: `k` namespace lists cost `k ×
/// (REQUEST_IN_PODS + pods per namespace)`, the cluster-wide list its pages
/// plus every pod. Never below [`collect::NAMESPACE_LISTS`]. Pure.
pub(crate) fn namespace_lists_limit(pods: usize, namespaces: usize) -> usize {
    let per_namespace = pods / namespaces.max(1);
    let pages = pods.div_ceil(api::PAGE_SIZE as usize);
    let cluster = pages * REQUEST_IN_PODS + pods;
    (cluster / (REQUEST_IN_PODS + per_namespace)).max(collect::NAMESPACE_LISTS)
}

/// (namespace, pod, fieldPath) of a container.
type ContainerKey = (String, String, String);
/// (time, reason, message) of an event.
type TimedEvent = (String, String, String);

/// Finds the failing pods without reading every pod:
/// 1. pods not Running (nor Succeeded) — where pull failures almost always
///    are — in one field-selected list served from the API server's watch
///    cache (`resourceVersion=0`);
/// 2. Running pods with a container that cannot re-pull: the kubelet keeps
///    renewing their `BackOff` / `Failed` pull events, so one event list
///    names them, and only their namespaces' Running pods are listed — or,
///    when those namespaces outnumber the pages of one cluster-wide list,
///    every Running pod once, page by page, keeping only the failing ones.
///
/// Requests are bounded by list pages, never by pods or failures.
/// Returns the failing pods and the number of pods in scope.
pub(crate) async fn collect_failing(
    client: &Client,
    scope: &Scope,
) -> anyhow::Result<(Vec<FailingPod>, usize)> {
    let not_running = ListQuery::fields("status.phase!=Running,status.phase!=Succeeded").cached();
    let (mut failing, _) =
        collect::list_pods_filtered(client, scope, &not_running, extract_failing).await?;
    let mut namespaces: BTreeSet<String> = BTreeSet::new();
    let mut pull_events: BTreeMap<ContainerKey, Vec<TimedEvent>> = BTreeMap::new();
    // (namespace, name) of the pods found so far: one lookup per event, not a
    // scan of every failing pod (thousands of events × thousands of pods).
    let known_pods: BTreeSet<(String, String)> = failing
        .iter()
        .map(|p| (p.namespace.clone(), p.name.clone()))
        .collect();
    for reason in ["BackOff", "Failed"] {
        let query = ListQuery::fields(&format!("reason={reason},involvedObject.kind=Pod")).cached();
        let events: Vec<collect::EventLite> =
            match api::list_all_as::<Event, _>(client, scope.namespace(), &query).await {
                Ok(e) => e,
                // Without events (RBAC), fall back to every Running pod in scope.
                Err(_) => {
                    namespaces.insert(String::new());
                    break;
                }
            };
        for e in events {
            let pull = e.message.starts_with("Back-off pulling image")
                || e.message.starts_with("Failed to pull image");
            if pull {
                let key = (
                    e.metadata.namespace.clone(),
                    e.involved_object.name.clone(),
                    e.involved_object.field_path.clone().unwrap_or_default(),
                );
                let at = e
                    .last_timestamp
                    .clone()
                    .or_else(|| e.event_time.clone())
                    .unwrap_or_default();
                pull_events
                    .entry(key)
                    .or_default()
                    .push((at, e.reason.clone(), e.message.clone()));
            }
            if pull
                && !known_pods
                    .contains(&(e.metadata.namespace.clone(), e.involved_object.name.clone()))
            {
                namespaces.insert(e.metadata.namespace.clone());
            }
        }
    }
    // One list per namespace the events name, or every Running pod once,
    // page by page: whichever costs the API server less (see
    // `namespace_lists_limit`), from the pods and namespaces in scope.
    let counted = collect::count_pods(client, scope).await;
    let spread = if namespaces.contains("") {
        Spread::whole(scope)
    } else {
        let limit = match (scope, counted) {
            (Scope::All, Some(pods)) => {
                let all_namespaces = api::count::<Namespace>(client, None).await;
                namespace_lists_limit(pods, all_namespaces.unwrap_or(1))
            }
            _ => collect::NAMESPACE_LISTS,
        };
        Spread::over(scope, namespaces, limit)
    };
    if !spread.is_empty() {
        // A few namespaces: small lists, from the watch cache. Cluster-wide:
        // pages of 500 from etcd (the watch cache of older API servers
        // answers `resourceVersion=0` with every pod at once, ignoring the
        // limit: 100 MB held at once for 10,000 pods), only failing pods
        // kept.
        let running = ListQuery::fields("status.phase=Running");
        let running = if spread == Spread::Cluster {
            running
        } else {
            running.cached()
        };
        let more =
            collect::list_spread::<Pod, _, _>(client, &spread, &running, extract_failing).await?;
        failing.extend(more);
    }
    // Hand each container its pull events, newest first.
    for pod in &mut failing {
        for c in &mut pod.containers {
            let path = format!(
                "spec.{}{{{}}}",
                if c.init {
                    "initContainers"
                } else {
                    "containers"
                },
                c.name
            );
            if let Some(list) =
                pull_events.get_mut(&(pod.namespace.clone(), pod.name.clone(), path))
            {
                list.sort_by(|a, b| b.0.cmp(&a.0));
                c.events = list
                    .iter()
                    .map(|(_, r, m)| (r.clone(), m.clone()))
                    .collect();
            }
        }
    }
    // A pod that turned Running between the two lists is in both.
    let mut distinct = BTreeSet::new();
    failing.retain(|p| distinct.insert((p.namespace.clone(), p.name.clone())));
    let seen = match counted {
        Some(n) => n,
        // The server did not say: count the pages (rare; the API server
        // gives `remainingItemCount` for unfiltered lists).
        None => {
            collect::list_pods_filtered(client, scope, &ListQuery::default(), |_| None::<()>)
                .await?
                .1
        }
    };
    Ok((failing, seen))
}

/// Runs the assessment against the cluster.
pub async fn run(client: &Client, scope: &Scope) -> anyhow::Result<Assessment> {
    Ok(survey(client, scope).await?.0)
}

/// The assessment and the failing pods behind it (what diagnose reads
/// further, without asking the API server for them again).
pub(crate) async fn survey(
    client: &Client,
    scope: &Scope,
) -> anyhow::Result<(Assessment, Vec<FailingPod>)> {
    let (failing, seen) = collect_failing(client, scope).await?;
    let (owners, replicas) = owners_of(client, scope, &failing).await;
    let groups = group(&failing, &owners, &replicas, Utc::now());
    Ok((assess(scope, seen, &failing, groups), failing))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(ns: &str, name: &str, owner: &str, images: &[&str]) -> FailingPod {
        FailingPod {
            namespace: ns.into(),
            name: name.into(),
            owner: Some(OwnerRef {
                kind: "ReplicaSet".into(),
                name: format!("{owner}-7d9f"),
                controller: Some(true),
            }),
            node: Some("node-1".into()),
            pull_secrets: vec!["regcred".into()],
            service_account: None,
            since: None,
            names_pull_secrets: true,
            containers: images
                .iter()
                .enumerate()
                .map(|(i, image)| FailingContainer {
                    name: format!("c{i}"),
                    image: (*image).into(),
                    init: false,
                    reason: "ImagePullBackOff".into(),
                    message: "Back-off pulling image".into(),
                    events: Vec::new(),
                })
                .collect(),
        }
    }

    fn owners(pods: &[FailingPod]) -> BTreeMap<(String, String, String), Workload> {
        pods.iter()
            .filter_map(|p| {
                let o = p.owner.as_ref()?;
                Some((
                    (p.namespace.clone(), o.kind.clone(), o.name.clone()),
                    Workload {
                        kind: "Deployment".into(),
                        namespace: p.namespace.clone(),
                        name: o.name.trim_end_matches("-7d9f").into(),
                    },
                ))
            })
            .collect()
    }

    fn assessment(scope: &Scope, server_count: usize, pods: &[FailingPod]) -> Assessment {
        let groups = group(pods, &owners(pods), &BTreeMap::new(), Utc::now());
        assess(scope, server_count, pods, groups)
    }

    /// The invariants every scan holds, whatever the cluster said.
    fn check_invariants(a: &Assessment) {
        let s = &a.scanned;
        assert!(s.failing_pods <= s.pods_seen, "{s:?}");
        let mut pods: BTreeSet<(&str, &str)> = BTreeSet::new();
        for g in &a.groups {
            for p in &g.pods {
                pods.insert((&g.workload.namespace, p));
            }
        }
        assert_eq!(
            pods.len(),
            s.failing_pods,
            "the groups hold every failing pod once"
        );
        let workloads: BTreeSet<&Workload> = a.groups.iter().map(|g| &g.workload).collect();
        assert_eq!(workloads.len(), s.failing_workloads);
        let namespaces: BTreeSet<&str> = a
            .groups
            .iter()
            .map(|g| g.workload.namespace.as_str())
            .collect();
        assert_eq!(namespaces.into_iter().collect::<Vec<_>>(), s.namespaces);
        for g in &a.groups {
            assert_eq!(g.failing_pods, g.pods.len(), "{g:?}");
        }
    }

    /// A pod whose `app` container is refused by the registry.
    fn refused(ns: &str, workload: &str, image: &str) -> FailingPod {
        let mut p = pod(ns, &format!("{workload}-x1"), workload, &[image]);
        for c in &mut p.containers {
            c.reason = "ErrImagePull".into();
            c.message = format!(
                "failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": failed to authorize: failed to fetch oauth token: unexpected status: 401 Unauthorized"
            );
        }
        p
    }

    #[test]
    fn many_workloads_on_one_registry_and_cause_are_one_outage_said_first() {
        let mut pods: Vec<FailingPod> = (0..12)
            .map(|i| {
                refused(
                    &format!("team-{}", i % 4),
                    &format!("app{i}"),
                    "reg.example.com/team/app:1",
                )
            })
            .collect();
        // Noise: one wrong tag elsewhere does not hide the outage.
        pods.push(pod("other", "web-a", "web", &["ghcr.io/x/web:nope"]));
        let a = assessment(&Scope::All, 100, &pods);
        check_invariants(&a);
        assert_eq!(a.outages.len(), 1, "{:?}", a.outages);
        let o = &a.outages[0];
        assert_eq!(o.registry, "reg.example.com");
        assert!(o.cause.is_credential(), "{:?}", o.cause);
        assert_eq!(
            (o.workloads, o.namespaces, o.pods, o.images),
            (12, 4, 12, 1)
        );
        assert_eq!(
            o.pull_secrets,
            vec![NamedIn {
                name: "regcred".into(),
                namespaces: 4
            }]
        );
        let line = o.headline();
        assert!(
            line.starts_with(
                "12 workload(s) in 4 namespace(s) fail on reg.example.com: credentials-"
            ),
            "{line}"
        );
        assert!(
            line.contains("pull secret `regcred` in 4 namespace(s)"),
            "{line}"
        );
        // With the copies counted (diagnose), the line says to update each.
        let mut o = o.clone();
        o.same_credential = Some(SameCredential {
            copies: 1840,
            secret: "regcred".into(),
        });
        assert!(
            o.headline()
                .contains("1,840 copies of pull secret `regcred` hold the same refused credential"),
            "{}",
            o.headline()
        );
        // Text output: the outage line comes before the table.
        let mut out = Vec::new();
        crate::render::scan_text(&mut out, &a, &crate::render::Palette::new(false)).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("outage: 12 workload(s)"), "{text}");
    }

    #[test]
    fn a_few_failures_are_no_outage() {
        let pods = vec![
            refused("a", "one", "reg.example.com/team/app:1"),
            refused("b", "two", "reg.example.com/team/app:1"),
        ];
        assert!(assessment(&Scope::All, 10, &pods).outages.is_empty());
        // Ten workloads in one namespace are one, though.
        let pods: Vec<FailingPod> = (0..10)
            .map(|i| refused("a", &format!("w{i}"), "reg.example.com/team/app:1"))
            .collect();
        assert_eq!(assessment(&Scope::All, 10, &pods).outages.len(), 1);
    }

    #[test]
    fn namespaces_are_listed_one_by_one_while_that_costs_less() {
        // The bench: 10,000 pods in 200 namespaces. 46 namespaces (200
        // failing) are listed one by one; 185 (2,000 failing) are not.
        let limit = namespace_lists_limit(10_000, 200);
        assert!((46..185).contains(&limit), "{limit}");
        assert_eq!(limit, (20 * 90 + 10_000) / (90 + 50));
        // Small clusters: at least the usual eight.
        assert_eq!(namespace_lists_limit(40, 4), 8);
        assert_eq!(namespace_lists_limit(0, 0), 8);
        // Many pods per namespace: a namespace list costs nearly a page.
        assert!(namespace_lists_limit(100_000, 20) < 30);
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn counts_hold_when_the_server_undercounts_and_lists_overlap() {
        let pods = vec![
            pod("shop", "checkout-a", "checkout", &["r/checkout:v2"]),
            pod("shop-b", "checkout-b", "checkout", &["r/checkout:v2"]),
            pod("shop-c", "checkout-c", "checkout", &["r/checkout:v2"]),
            // The same pod from both lists (it turned Running in between).
            pod("shop-c", "checkout-c", "checkout", &["r/checkout:v2"]),
        ];
        // The server said 1 (the old `3 pod(s) of 1 scanned`).
        let a = assessment(&Scope::All, 1, &pods);
        check_invariants(&a);
        assert_eq!(a.scanned.failing_pods, 3);
        assert_eq!(a.scanned.pods_seen, 3);
        assert_eq!(a.scanned.failing_workloads, 3);
        assert_eq!(a.scanned.namespaces, ["shop", "shop-b", "shop-c"]);
        assert!(a.scanned.scope.all_namespaces);
        let group_sum: usize = a.groups.iter().map(|g| g.failing_pods).sum();
        assert_eq!(group_sum, a.scanned.failing_pods);
    }

    #[test]
    fn a_pod_failing_on_two_images_counts_once_at_the_top() {
        let pods = vec![
            pod("shop", "web-a", "web", &["r/web:1", "r/sidecar:9"]),
            pod("shop", "web-b", "web", &["r/web:1"]),
        ];
        let a = assessment(&Scope::Namespace("shop".into()), 10, &pods);
        check_invariants(&a);
        assert_eq!(a.groups.len(), 2, "one group per image");
        assert_eq!(a.scanned.failing_pods, 2);
        assert_eq!(a.scanned.failing_workloads, 1);
        assert_eq!(a.scanned.pods_seen, 10);
        assert_eq!(a.scanned.scope.describe(), "namespace shop");
    }

    #[test]
    fn nothing_failing_still_names_the_scope() {
        let a = assessment(&Scope::Namespace("default".into()), 0, &[]);
        check_invariants(&a);
        let mut text = Vec::new();
        crate::render::scan_text(&mut text, &a, &crate::render::Palette::new(false)).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.starts_with(
                "ok: no pod is failing to pull its image (0 pods scanned in namespace default)\n"
            ),
            "{text}"
        );
        assert!(text.contains("-A looks in every namespace"), "{text}");
        let a = assessment(&Scope::All, 12, &[]);
        let mut text = Vec::new();
        crate::render::scan_text(&mut text, &a, &crate::render::Palette::new(false)).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert_eq!(
            text,
            "ok: no pod is failing to pull its image (12 pods scanned in all namespaces)\n"
        );
    }

    /// The text summary and `-o json` say the same numbers.
    #[test]
    fn text_and_json_agree() {
        let pods = vec![
            pod("shop", "checkout-a", "checkout", &["r/checkout:v2"]),
            pod("shop", "checkout-b", "checkout", &["r/checkout:v2"]),
            pod("shop-b", "api-a", "api", &["r/api:v1"]),
        ];
        let a = assessment(&Scope::All, 40, &pods);
        check_invariants(&a);
        let mut text = Vec::new();
        crate::render::scan_text(&mut text, &a, &crate::render::Palette::new(false)).unwrap();
        let text = String::from_utf8(text).unwrap();
        let mut json = Vec::new();
        crate::render::structured(&mut json, crate::render::Format::Json, "Scan", &a).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let summary = format!(
            "{} failing workload(s), {} failing pod(s) of {} pods scanned in all namespaces; failures in {} namespace(s): shop, shop-b",
            v["failing_workloads"],
            v["failing_pods"],
            v["pods_seen"],
            v["namespaces"].as_array().unwrap().len()
        );
        assert!(text.contains(&summary), "{summary}\n{text}");
        assert_eq!(v["scope"]["all_namespaces"], true);
        assert_eq!(v["failing_pods"], 3);
        assert_eq!(v["failing_workloads"], 2);
        let group_sum: u64 = v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["failing_pods"].as_u64().unwrap())
            .sum();
        assert_eq!(group_sum, 3);
    }

    #[test]
    fn wide_and_name_outputs() {
        let mut p = pod("shop", "checkout-a", "checkout", &["r/checkout:v2"]);
        p.pull_secrets.clear();
        p.service_account = Some("checkout".into());
        let a = assessment(&Scope::Namespace("shop".into()), 4, &[p]);
        let mut text = Vec::new();
        crate::render::scan_wide(&mut text, &a, &crate::render::Palette::new(false)).unwrap();
        let text = String::from_utf8(text).unwrap();
        let header = text.lines().next().unwrap();
        for col in ["REASON", "PODS", "NODES", "PULL SECRETS"] {
            assert!(header.contains(col), "{text}");
        }
        let row = text.lines().nth(1).unwrap();
        assert!(
            row.contains("ImagePullBackOff") && row.contains("node-1"),
            "{row}"
        );
        assert!(row.ends_with("(sa checkout)"), "{row}");
        let mut names = Vec::new();
        crate::render::names(&mut names, a.groups.iter().map(|g| &g.workload)).unwrap();
        assert_eq!(
            String::from_utf8(names).unwrap(),
            "deployment.apps/checkout\n"
        );
        for (kind, want) in [
            ("StatefulSet", "statefulset.apps/x"),
            ("DaemonSet", "daemonset.apps/x"),
            ("CronJob", "cronjob.batch/x"),
            ("Job", "job.batch/x"),
            ("Pod", "pod/x"),
        ] {
            let w = Workload {
                kind: kind.into(),
                namespace: "n".into(),
                name: "x".into(),
            };
            assert_eq!(w.kubectl_name(), want);
        }
    }
}

#[cfg(test)]
mod decide_tests {
    use super::*;

    const CONTAINERD_401: &str = "failed to pull and unpack image \"reg.example.com/team/checkout:v2\": failed to resolve image: unexpected status from HEAD request to http://reg.example.com/v2/team/checkout/manifests/v2: 401 Unauthorized";
    const DOCKER_401: &str = "Error response from daemon: Head \"http://reg.example.com/v2/team/checkout/manifests/v2\": unauthorized: authentication required";
    const TIMEOUT: &str = "failed to pull and unpack image \"reg.example.com/team/checkout:v2\": failed to resolve image: failed to do request: Head \"http://reg.example.com/v2/team/checkout/manifests/v2\": dial tcp 10.0.0.5:80: i/o timeout";

    fn pod(ns: &str, message: &str, names_pull_secrets: bool) -> FailingPod {
        FailingPod {
            namespace: ns.into(),
            name: format!("checkout-{ns}"),
            owner: None,
            node: Some("node-1".into()),
            pull_secrets: Vec::new(),
            service_account: None,
            since: None,
            containers: vec![FailingContainer {
                name: "checkout".into(),
                image: "reg.example.com/team/checkout:v2".into(),
                init: false,
                reason: "ErrImagePull".into(),
                message: message.into(),
                events: Vec::new(),
            }],
            names_pull_secrets,
        }
    }

    fn assessment(pods: &[FailingPod]) -> Assessment {
        let groups = group(pods, &BTreeMap::new(), &BTreeMap::new(), Utc::now());
        assess(&Scope::All, pods.len(), pods, groups)
    }

    /// stale-secret-many-namespaces: a Docker node words the refused
    /// credential `authentication required`; with a pull secret named, scan
    /// gives the same cause as the containerd namespaces, as a low-confidence guess.
    #[test]
    fn the_same_stale_credential_reads_the_same_in_every_namespace() {
        let a = assessment(&[
            pod("shop", CONTAINERD_401, true),
            pod("shop-b", CONTAINERD_401, true),
            pod("shop-c", DOCKER_401, true),
        ]);
        let causes: Vec<(Cause, Confidence)> =
            a.groups.iter().map(|g| (g.cause, g.confidence)).collect();
        assert_eq!(
            causes,
            vec![
                (Cause::CredentialsRejected, Confidence::Medium),
                (Cause::CredentialsRejected, Confidence::Medium),
                (Cause::CredentialsRejected, Confidence::Low),
            ]
        );
        assert!(
            !a.notes.iter().any(|n| n.contains("outage")),
            "{:?}",
            a.notes
        );
        assert!(
            a.notes.iter().any(|n| n.contains("one credential copied")),
            "{:?}",
            a.notes
        );
    }

    /// Without a pull secret named, Docker's `authentication required` is
    /// a missing credential.
    #[test]
    fn authentication_required_without_a_secret_is_missing() {
        let a = assessment(&[pod("shop", DOCKER_401, false)]);
        assert_eq!(a.groups[0].cause, Cause::CredentialsMissing);
    }

    #[test]
    fn an_outage_is_suggested_for_network_failures_only() {
        let a = assessment(&[
            pod("a", TIMEOUT, true),
            pod("b", TIMEOUT, true),
            pod("c", TIMEOUT, true),
        ]);
        assert_eq!(
            a.notes,
            vec![
                "failures in 3 namespaces all pull from reg.example.com: possible registry outage or cluster networking issue"
                    .to_string()
            ]
        );
        // One credential failure among them: not an outage.
        let a = assessment(&[
            pod("a", TIMEOUT, true),
            pod("b", TIMEOUT, true),
            pod("c", CONTAINERD_401, true),
        ]);
        assert!(a.notes.is_empty(), "{:?}", a.notes);
    }
}
