//! `kubectl pullfix scan`: the runbook's quick assessment. One paged pod
//! list across the scope, the failing containers kept, grouped the way a
//! responder thinks (by owning workload, then image and registry), with
//! severity and a classified cause per group.
//!
//! [`extract_failing`], [`group`] and [`assess`] are pure; [`run`] does the
//! I/O (the pod pages, then one GET per failing ReplicaSet/Job owner and per
//! workload — never one per pod).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Event;
use kube::Client;
use serde::Serialize;

use crate::api::{self, ListQuery};

use crate::collect::{self, OwnerRef, PodLite, Scope, WorkloadLite};
use crate::diagnose::Cause;
use crate::diagnose::classify::{classify_container, is_pull_failure_reason};
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
    pub since: Option<DateTime<Utc>>,
    pub containers: Vec<FailingContainer>,
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
        node: pod.spec.node_name,
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
    pub reason: String,
    pub failing_pods: usize,
    pub oldest_failure_seconds: Option<i64>,
    pub pods: Vec<String>,
    pub containers: Vec<String>,
}

/// The whole assessment.
#[derive(Debug, Clone, Serialize)]
pub struct Assessment {
    pub pods_seen: usize,
    pub failing_pods: usize,
    pub groups: Vec<Group>,
    pub namespaces: Vec<String>,
    pub notes: Vec<String>,
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
            let mut causes: BTreeMap<Cause, usize> = BTreeMap::new();
            for (_, c) in &members {
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
                *causes.entry(classified.cause).or_default() += 1;
            }
            let cause = causes
                .iter()
                .max_by_key(|(cause, n)| (**n, **cause != Cause::Unknown))
                .map_or(Cause::Unknown, |(c, _)| *c);
            let pods: BTreeSet<String> = members.iter().map(|(p, _)| p.name.clone()).collect();
            let containers: BTreeSet<String> =
                members.iter().map(|(_, c)| c.name.clone()).collect();
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
                reason: members[0].1.reason.clone(),
                failing_pods: pods.len(),
                oldest_failure_seconds: oldest,
                pods: pods.into_iter().collect(),
                containers: containers.into_iter().collect(),
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
/// behind every failure. Pure.
pub(crate) fn assess(pods_seen: usize, pods: &[FailingPod], groups: Vec<Group>) -> Assessment {
    let namespaces: BTreeSet<String> = pods.iter().map(|p| p.namespace.clone()).collect();
    let registries: BTreeSet<&str> = groups.iter().map(|g| g.registry.as_str()).collect();
    let mut notes = Vec::new();
    if namespaces.len() >= 3 && registries.len() == 1 {
        notes.push(format!(
            "failures in {} namespaces all pull from {}: possible registry outage or cluster networking issue",
            namespaces.len(),
            registries.iter().next().unwrap_or(&"")
        ));
    } else if namespaces.len() >= 5 {
        notes.push(format!(
            "failures span {} namespaces: possible registry outage or cluster networking issue",
            namespaces.len()
        ));
    }
    Assessment {
        pods_seen,
        failing_pods: pods.len(),
        groups,
        namespaces: namespaces.into_iter().collect(),
        notes,
    }
}

fn replicas_of(kind: &str, w: &WorkloadLite) -> Replicas {
    let int = |v: &serde_json::Value| v.as_i64().unwrap_or(0);
    let s = &w.status;
    match kind {
        "Deployment" => {
            let desired = w.spec["replicas"].as_i64().unwrap_or(1);
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
            desired: w.spec["replicas"].as_i64().unwrap_or(1),
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

/// Reads a workload controller (the kinds pods are owned by); `Ok(None)`
/// for other kinds and for objects that do not exist.
async fn get_workload(
    client: &Client,
    kind: &str,
    ns: &str,
    name: &str,
) -> Result<Option<WorkloadLite>, crate::api::ApiError> {
    use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
    use k8s_openapi::api::batch::v1::Job;
    let ns = Some(ns);
    match kind {
        "Deployment" => api::get_opt_as::<Deployment, _>(client, ns, name).await,
        "StatefulSet" => api::get_opt_as::<StatefulSet, _>(client, ns, name).await,
        "DaemonSet" => api::get_opt_as::<DaemonSet, _>(client, ns, name).await,
        "ReplicaSet" => api::get_opt_as::<ReplicaSet, _>(client, ns, name).await,
        "Job" => api::get_opt_as::<Job, _>(client, ns, name).await,
        _ => Ok(None),
    }
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
///    names them, and only their namespaces' Running pods are listed.
///
/// Requests grow with namespaces that hold such pods, never with pods.
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
            let known = failing
                .iter()
                .any(|p| p.namespace == e.metadata.namespace && p.name == e.involved_object.name);
            if pull && !known {
                namespaces.insert(e.metadata.namespace.clone());
            }
        }
    }
    let running = ListQuery::fields("status.phase=Running").cached();
    let scopes: Vec<Scope> = if namespaces.contains("") {
        vec![scope.clone()]
    } else {
        namespaces.into_iter().map(Scope::Namespace).collect()
    };
    for s in scopes {
        let (more, _) = collect::list_pods_filtered(client, &s, &running, extract_failing).await?;
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
    let seen = collect::count_pods(client, scope)
        .await
        .unwrap_or(failing.len());
    Ok((failing, seen))
}

/// Runs the assessment against the cluster.
pub async fn run(client: &Client, scope: &Scope) -> anyhow::Result<Assessment> {
    let (failing, seen) = collect_failing(client, scope).await?;
    // Owners one level up: ReplicaSet -> Deployment, Job -> CronJob.
    let mut owners = BTreeMap::new();
    let direct: BTreeSet<(String, String, String)> = failing
        .iter()
        .filter_map(|p| {
            p.owner
                .as_ref()
                .map(|o| (p.namespace.clone(), o.kind.clone(), o.name.clone()))
        })
        .collect();
    let mut replicas = BTreeMap::new();
    for (ns, kind, name) in &direct {
        let Ok(Some(obj)) = get_workload(client, kind, ns, name).await else {
            continue;
        };
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
                kind: kind.clone(),
                namespace: ns.clone(),
                name: name.clone(),
            },
        };
        if workload.kind == *kind {
            replicas.insert(workload.clone(), replicas_of(kind, &obj));
        }
        owners.insert((ns.clone(), kind.clone(), name.clone()), workload);
    }
    // Counts of the top-level workloads that are Deployments.
    let tops: BTreeSet<Workload> = owners
        .values()
        .filter(|w| w.kind == "Deployment")
        .cloned()
        .collect();
    for w in tops {
        if let Ok(Some(obj)) = get_workload(client, "Deployment", &w.namespace, &w.name).await {
            replicas.insert(w, replicas_of("Deployment", &obj));
        }
    }
    let groups = group(&failing, &owners, &replicas, Utc::now());
    Ok(assess(seen, &failing, groups))
}
