//! `kubectl pullfix diagnose`: gathers the evidence for each failing
//! workload (pod, events, pull secrets, ServiceAccount, nodes, refresh
//! CronJobs, the registry, ECR) and hands it to the pure decision code.
//! Read-only: nothing here writes to the cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::Utc;
use kube::Client;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use futures::StreamExt as _;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod, Secret};

use crate::api::{self, ApiError, ListQuery};
use crate::collect::{self, EventLite, Meta, Scope, Spread};
use crate::diagnose::Cause;
use crate::diagnose::classify::{Classified, EventText, classify_container};
use crate::diagnose::decide::{self, Facts};
use crate::diagnose::finding::{self, Context, EcrCheck, Evidence, Finding};
use crate::diagnose::gather;
use crate::diagnose::secrets::{self, Lookup, Origin, SecretRef, SecretView};
use crate::probe::Prober;
use crate::registry::reference::ImageRef;
use crate::scan::{self, FailingPod, Group};

/// Groups diagnosed at once (their registry probes run meanwhile).
const GROUPS_IN_FLIGHT: usize = 16;

pub use crate::target::Target;

/// Options for a diagnosis.
#[derive(Debug, Clone)]
pub struct Options {
    /// Probe registries (and the ECR API) from this machine.
    pub probe: bool,
    pub probe_timeout: Duration,
    /// `--registry-hosts`: where the nodes' containerd sends each registry's
    /// requests.
    pub registry_hosts: Option<crate::registry::hosts::RegistryHosts>,
    /// `--registry-ca`: CA certificates (PEM) this machine trusts for every
    /// registry, as the nodes do.
    pub registry_ca: Vec<Vec<u8>>,
}

/// The result of `diagnose`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// Things that limited the diagnosis (RBAC, unreachable AWS, ...).
    pub warnings: Vec<String>,
    /// Scope notes from the assessment.
    pub notes: Vec<String>,
    /// Many workloads failing on one registry for one cause (from the
    /// assessment, with the copies of one refused credential counted).
    pub outages: Vec<crate::scan::Outage>,
    /// Refresh automation found for the affected secrets.
    pub refresh_jobs: Vec<RefreshJob>,
    /// The same registry's pull secrets in other namespaces.
    pub other_namespaces: Vec<OtherSecret>,
    /// What the scan behind the diagnosis looked at (the namespaces, the
    /// pods counted).
    #[serde(flatten)]
    pub scanned: crate::scan::Scanned,
}

/// A CronJob that looks like it refreshes a pull secret.
#[derive(Debug, Clone, Serialize)]
pub struct RefreshJob {
    pub namespace: String,
    pub name: String,
    pub schedule: String,
    pub last_schedule: Option<String>,
    pub last_successful: Option<String>,
    pub failed_jobs: Vec<String>,
    /// The tail of the newest failed pod's log (or termination message).
    pub failure_tail: Option<String>,
}

/// A pull secret for the same registry elsewhere.
#[derive(Debug, Clone, Serialize)]
pub struct OtherSecret {
    pub namespace: String,
    pub name: String,
    pub registry: String,
    /// Same credential as the failing namespace's secret.
    pub same_credential: bool,
    /// Workloads in that namespace failing to pull from the same registry
    /// (restarted after the secret is updated); filled for stale copies.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failing_workloads: Vec<crate::scan::Workload>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct NodeLite {
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    status: NodeStatusLite,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodeStatusLite {
    #[serde(default)]
    images: Vec<NodeImage>,
    #[serde(default)]
    node_info: serde_json::Value,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct NodeImage {
    #[serde(default)]
    names: Vec<String>,
}

/// Why a read failed, for a warning: the missing permission only for a
/// real 403 (`no `list nodes` permission`), else what happened.
fn why_unread(e: &ApiError, permission: &str) -> String {
    if e.is_forbidden() {
        format!("no `{permission}` permission")
    } else {
        e.short()
    }
}

/// Runs the diagnosis.
pub async fn run(
    client: &Client,
    scope: &Scope,
    target: &Target,
    opts: &Options,
) -> anyhow::Result<Report> {
    let (assessment, failing) = scan::survey(client, scope).await?;
    let groups: Vec<&Group> = assessment
        .groups
        .iter()
        .filter(|g| target.matches(g))
        .collect();
    let mut warnings = Vec::new();
    if groups.is_empty() {
        if let Target::Named { kind, name } = target {
            check_target_exists(client, scope, kind, name).await?;
        }
        return Ok(Report {
            findings: Vec::new(),
            warnings,
            notes: assessment.notes,
            outages: assessment.outages,
            refresh_jobs: Vec::new(),
            other_namespaces: Vec::new(),
            scanned: assessment.scanned,
        });
    }
    // Each group is diagnosed from its first pod, as the scan read it; what
    // those pods need (events, ServiceAccounts, secrets) is read at once.
    let by_name: BTreeMap<(&str, &str), &FailingPod> = failing
        .iter()
        .map(|p| ((p.namespace.as_str(), p.name.as_str()), p))
        .collect();
    let chosen: Vec<(&Group, &FailingPod)> = groups
        .iter()
        .filter_map(|g| {
            let pod = g.pods.first()?;
            Some((
                *g,
                *by_name.get(&(g.workload.namespace.as_str(), pod.as_str()))?,
            ))
        })
        .collect();
    let diagnosed: Vec<&FailingPod> = chosen.iter().map(|(_, p)| *p).collect();
    let gathered = gather::gather(client, scope, &diagnosed).await;
    for (ns, e) in &gathered.events_unread {
        warnings.push(format!(
            "events in {ns} could not be read ({})",
            why_unread(e, "list events")
        ));
    }
    let prober = if opts.probe {
        let config = crate::probe::config(
            opts.probe_timeout,
            opts.registry_hosts.as_ref(),
            &opts.registry_ca,
        );
        Some(Prober::new(&config, opts.probe_timeout)?)
    } else {
        None
    };
    let nodes: Option<Vec<NodeLite>> =
        match api::list_all_as::<Node, NodeLite>(client, None, &ListQuery::default()).await {
            Ok(n) => Some(n),
            Err(e) => {
                warnings.push(format!(
                    "nodes could not be listed ({}): node image caches not checked",
                    why_unread(&e, "list nodes")
                ));
                None
            }
        };
    // AWS is asked only when an ECR image is diagnosed.
    let ecr = opts.probe.then(crate::diagnose::ecr::EcrClient::lazy);
    let mut findings = Vec::new();
    let mut secret_names: BTreeSet<(String, String)> = BTreeSet::new();
    let mut registries: BTreeSet<String> = BTreeSet::new();
    // A bounded number of groups at a time: in an outage there are
    // thousands, and they share a few registries (probes are shared too).
    let futures = chosen.iter().map(|(g, pod)| {
        diagnose_group(
            g,
            pod,
            &gathered,
            nodes.as_deref(),
            prober.as_ref(),
            ecr.as_ref(),
            opts.registry_hosts.as_ref(),
        )
    });
    let results: Vec<_> = futures::stream::iter(futures)
        .buffered(GROUPS_IN_FLIGHT)
        .collect()
        .await;
    for (finding, mut w) in results {
        warnings.append(&mut w);
        for s in &finding.secrets {
            secret_names.insert((finding.namespace.clone(), s.name.clone()));
        }
        if let Ok(img) = ImageRef::parse(&finding.image) {
            registries.insert(img.domain.clone());
        }
        findings.push(finding);
    }
    // Credentials the registry refuses (rejected or expired), to find the
    // same copies elsewhere: only those are "likely failing too". A secret
    // of the wrong type, or a wrong tag, says nothing about other
    // namespaces holding the same credential.
    let stale_secrets: BTreeSet<(String, String)> = findings
        .iter()
        .filter(|f| {
            matches!(
                f.cause,
                Cause::CredentialsRejected | Cause::CredentialsExpired
            )
        })
        .flat_map(|f| {
            f.secrets
                .iter()
                .map(|s| (f.namespace.clone(), s.name.clone()))
        })
        .collect();
    let failing_creds = credential_digests(&gathered, &stale_secrets);
    let refresh_jobs = refresh_jobs(client, scope, &secret_names, &mut warnings).await;
    // A failing refresh job is evidence for the credential findings it feeds.
    add_refresh_evidence(&mut findings, &refresh_jobs);
    let other_namespaces = other_namespaces(
        client,
        scope,
        &assessment,
        &gathered,
        &stale_secrets,
        &registries,
        &failing_creds,
        &mut warnings,
    )
    .await;
    // The next steps of a cause `fix` can act on are its plan, rendered
    // from the same facts (the other namespaces' copies included).
    for f in &mut findings {
        if let Some(steps) = crate::remediate::plan::advice(f, &other_namespaces) {
            f.next_steps = steps;
        }
    }
    warnings.sort();
    warnings.dedup();
    // The outages as the findings say (diagnose's causes can differ from
    // the scan's, which reads no secret and asks no registry).
    let outages = count_copies(outages(&findings), &findings, &failing_creds);
    Ok(Report {
        findings,
        warnings,
        outages,
        notes: assessment.notes,
        refresh_jobs,
        other_namespaces,
        scanned: assessment.scanned,
    })
}

/// `namespace/name` → digest of each readable secret's docker config.
fn credential_digests(
    gathered: &gather::Gathered,
    secret_names: &BTreeSet<(String, String)>,
) -> BTreeMap<String, String> {
    let mut failing_creds = BTreeMap::new();
    for (ns, name) in secret_names {
        if let Lookup::Found(v) = gathered.secret(ns, name)
            && let Some(d) = v
                .data
                .get(".dockerconfigjson")
                .or_else(|| v.data.get(".dockercfg"))
        {
            failing_creds.insert(format!("{ns}/{name}"), digest(d));
        }
    }
    failing_creds
}

/// The outages among the findings. Pure.
fn outages(findings: &[Finding]) -> Vec<crate::scan::Outage> {
    let registries: Vec<String> = findings
        .iter()
        .map(|f| {
            ImageRef::parse(&f.image)
                .map(|i| i.domain)
                .unwrap_or_else(|_| "(invalid reference)".into())
        })
        .collect();
    crate::scan::outages_of(findings.iter().zip(&registries).map(|(f, registry)| {
        crate::scan::Member {
            registry,
            cause: f.cause,
            workload: f.workload.clone().unwrap_or_else(|| crate::scan::Workload {
                kind: "Pod".into(),
                namespace: f.namespace.clone(),
                name: f.pod.clone(),
            }),
            pods: &f.pods,
            image: &f.image,
            pull_secrets: f.secrets.iter().map(|s| s.name.as_str()).collect(),
            network: matches!(f.cause, Cause::RegistryUnreachable | Cause::TlsError),
        }
    }))
}

/// Each credential outage's largest set of pull-secret copies that hold
/// one and the same refused credential (by digest), among its findings'
/// secrets. Pure.
fn count_copies(
    mut outages: Vec<crate::scan::Outage>,
    findings: &[Finding],
    digests: &BTreeMap<String, String>,
) -> Vec<crate::scan::Outage> {
    for o in outages.iter_mut().filter(|o| o.cause.is_credential()) {
        let mut copies: BTreeMap<&String, BTreeSet<String>> = BTreeMap::new();
        for f in findings.iter().filter(|f| {
            f.cause == o.cause && ImageRef::parse(&f.image).is_ok_and(|i| i.domain == o.registry)
        }) {
            for s in &f.secrets {
                let key = format!("{}/{}", f.namespace, s.name);
                if let Some(d) = digests.get(&key) {
                    copies.entry(d).or_default().insert(key);
                }
            }
        }
        o.same_credential = copies.into_values().max_by_key(BTreeSet::len).map(|keys| {
            let mut names: BTreeMap<&str, usize> = BTreeMap::new();
            for k in &keys {
                let name = k.split_once('/').map_or(k.as_str(), |(_, n)| n);
                *names.entry(name).or_default() += 1;
            }
            crate::scan::SameCredential {
                copies: keys.len(),
                secret: names
                    .into_iter()
                    .max_by_key(|(_, n)| *n)
                    .map(|(name, _)| name.to_string())
                    .unwrap_or_default(),
            }
        });
    }
    outages
}

/// A failing refresh CronJob, as evidence for the credential findings of
/// its namespace.
fn add_refresh_evidence(findings: &mut [Finding], refresh_jobs: &[RefreshJob]) {
    for f in findings {
        if !matches!(
            f.cause,
            crate::diagnose::Cause::CredentialsExpired
                | crate::diagnose::Cause::CredentialsRejected
        ) {
            continue;
        }
        for j in refresh_jobs
            .iter()
            .filter(|j| j.namespace == f.namespace && !j.failed_jobs.is_empty())
        {
            f.evidence.push(Evidence {
                source: "cronjob".into(),
                text: format!(
                    "`{}`: last scheduled {}, {} failed Job(s){}",
                    j.name,
                    j.last_schedule.as_deref().unwrap_or("never"),
                    j.failed_jobs.len(),
                    j.failure_tail
                        .as_ref()
                        .map(|t| format!("; last failure: {t}"))
                        .unwrap_or_default()
                ),
            });
        }
    }
}

fn digest(b: &[u8]) -> String {
    crate::encoding::sha256_hex(b)
}

async fn check_target_exists(
    client: &Client,
    scope: &Scope,
    kind: &str,
    name: &str,
) -> anyhow::Result<()> {
    let Scope::Namespace(ns) = scope else {
        return Ok(());
    };
    use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
    use k8s_openapi::api::batch::v1::Job;
    type Any = serde::de::IgnoredAny;
    let ns = ns.as_str();
    let found = match kind {
        "Pod" => api::get_opt_as::<Pod, Any>(client, Some(ns), name).await,
        "Deployment" => api::get_opt_as::<Deployment, Any>(client, Some(ns), name).await,
        "StatefulSet" => api::get_opt_as::<StatefulSet, Any>(client, Some(ns), name).await,
        "DaemonSet" => api::get_opt_as::<DaemonSet, Any>(client, Some(ns), name).await,
        "Job" => api::get_opt_as::<Job, Any>(client, Some(ns), name).await,
        _ => return Ok(()),
    }?;
    if found.is_none() {
        anyhow::bail!(
            "{kind} {ns}/{name} not found\nhelp: check the name and the namespace (-n), or run `kubectl pullfix scan -A`"
        );
    }
    Ok(())
}

async fn diagnose_group(
    g: &Group,
    pod: &FailingPod,
    gathered: &gather::Gathered,
    nodes: Option<&[NodeLite]>,
    prober: Option<&Prober>,
    ecr: Option<&crate::diagnose::ecr::EcrClient>,
    registry_hosts: Option<&crate::registry::hosts::RegistryHosts>,
) -> (Finding, Vec<String>) {
    let mut warnings = Vec::new();
    let ns = &g.workload.namespace;
    let pe = pod_evidence(g, pod, gathered);
    let image = ImageRef::parse(&g.image).ok();
    // Pull secrets: the pod's, then its ServiceAccount's.
    let refs = pull_secret_refs(ns, pe.pod, gathered, &mut warnings);
    let now = Utc::now();
    let analysis = match &image {
        Some(img) => secrets::analyze(&refs, img, now),
        None => secrets::Analysis {
            reports: Vec::new(),
            credentials: Vec::new(),
            incomplete: false,
        },
    };
    // Nodes: which hold the image, where the failing pods are.
    let node_name = pe.pod.node.clone().unwrap_or_default();
    let (arch, nodes_with_image) = node_facts(nodes, image.as_ref(), &g.image, &node_name);
    let (probe, ecr_check) = registry_checks(
        prober,
        ecr,
        image.as_ref(),
        &pe.classified,
        &analysis,
        &arch,
    )
    .await;
    let mut ctx = context(
        g,
        &pe,
        private_registries(&analysis, &refs),
        nodes_with_image,
        node_name,
    );
    // Where the node sends its requests: as its error wrote it, else as
    // --registry-hosts says the nodes' containerd is configured.
    ctx.registry_base =
        crate::diagnose::classify::registry_base_url(&pe.classified.error).or_else(|| {
            let domain = &image.as_ref()?.domain;
            Some(registry_hosts?.endpoint(domain)?.base_url(domain))
        });
    let facts = Facts {
        image_text: &g.image,
        image: image.as_ref(),
        node: &pe.classified,
        secrets: decide::Secrets::Read(&analysis),
        probe: probe.as_ref(),
        ecr: ecr_check.as_ref(),
        private_registries: &ctx.private_registries,
    };
    let verdict = decide::decide(&facts);
    let mut evidence = finding::evidence(&facts, &ctx);
    let cause = verdict.cause;
    // Wrong registry: look for the same path and tag in the namespace's
    // private registries, with the credentials the kubelet would use there.
    if cause == crate::diagnose::Cause::WrongRegistry
        && let (Some(p), Some(img)) = (prober, &image)
        && let Some((candidate, found)) =
            verified_replacement(p, img, &ctx.private_registries, &refs, &arch, now).await
    {
        evidence.push(found);
        ctx.verified_replacement = Some(candidate);
    }
    evidence.extend(event_evidence(&pe.events));
    let next_steps = finding::next_steps(
        cause,
        image.as_ref(),
        &g.image,
        &ctx,
        &analysis.reports,
        probe.as_ref(),
    );
    let unused_matching_secrets = match &image {
        Some(img) => unused_matching(gathered, ns, img, &refs),
        None => Vec::new(),
    };
    (
        Finding {
            cause,
            detail: verdict.detail,
            confidence: verdict.confidence,
            severity: g.severity,
            namespace: ns.clone(),
            workload: Some(g.workload.clone()).filter(|w| w.kind != "Pod"),
            pod: pe.pod_name,
            pods: g.pods.clone(),
            service_account: pe
                .pod
                .service_account
                .clone()
                .unwrap_or_else(|| "default".into()),
            container: pe.container,
            init_container: pe.init,
            image: g.image.clone(),
            summary: cause.summary().to_string(),
            decision: verdict.decision,
            evidence,
            next_steps,
            secrets: analysis.reports,
            suggested_tags: suggested_tags(probe.as_ref(), image.as_ref()),
            registry: probe,
            ecr: ecr_check,
            replacement: ctx.verified_replacement.clone(),
            unused_matching_secrets,
            failing_for_seconds: g.oldest_failure_seconds,
        },
        warnings,
    )
}

/// The registry probe (from this machine) and the ECR check, when asked
/// for and when they make sense for the image.
async fn registry_checks(
    prober: Option<&Prober>,
    ecr: Option<&crate::diagnose::ecr::EcrClient>,
    image: Option<&ImageRef>,
    classified: &Classified,
    analysis: &secrets::Analysis,
    arch: &str,
) -> (Option<crate::probe::ProbeResult>, Option<EcrCheck>) {
    let probe = match (prober, image) {
        (Some(p), Some(img))
            if !matches!(classified.cause, crate::diagnose::Cause::InvalidImageName) =>
        {
            let cred = analysis.credentials.first().map(|(c, _, _)| c);
            Some(p.probe(img, cred, arch).await)
        }
        _ => None,
    };
    let ecr_check: Option<EcrCheck> = match (ecr, image) {
        (Some(e), Some(img)) if secrets::is_ecr_host(&img.domain) => e.check(img).await,
        _ => None,
    };
    (probe, ecr_check)
}

/// What the decision needs beyond the container itself.
fn context(
    g: &Group,
    pe: &PodEvidence,
    private_registries: Vec<String>,
    nodes_with_image: Vec<String>,
    node_name: String,
) -> Context {
    Context {
        namespace: g.workload.namespace.clone(),
        workload: Some(g.workload.clone()).filter(|w| w.kind != "Pod"),
        pod: pe.pod_name.clone(),
        container: pe.container.clone(),
        init_container: pe.init,
        registry_base: None,
        private_registries,
        nodes_with_image,
        failing_nodes: Some(node_name)
            .filter(|n| !n.is_empty())
            .into_iter()
            .collect(),
        running_elsewhere: (g.ready.max(0)) as usize,
        verified_replacement: None,
    }
}

/// The pod's side of one failing container: its waiting state and its
/// events, classified.
struct PodEvidence<'a> {
    pod_name: String,
    pod: &'a FailingPod,
    container: String,
    init: bool,
    /// The container's events (those about the whole pod included).
    events: Vec<EventLite>,
    classified: Classified,
}

fn pod_evidence<'a>(
    g: &Group,
    pod: &'a FailingPod,
    gathered: &gather::Gathered,
) -> PodEvidence<'a> {
    let ns = &g.workload.namespace;
    let container = g.containers.first().cloned().unwrap_or_default();
    let failing = pod
        .containers
        .iter()
        .find(|c| c.name == container)
        .or_else(|| pod.containers.iter().find(|c| c.image == g.image));
    let container = failing.map_or(container, |c| c.name.clone());
    let init = failing.is_some_and(|c| c.init);
    let (reason, message) =
        failing.map_or_else(Default::default, |c| (c.reason.clone(), c.message.clone()));
    let path_prefix = if init {
        "spec.initContainers"
    } else {
        "spec.containers"
    };
    let events: Vec<EventLite> = gathered
        .events(ns, &pod.name)
        .iter()
        .filter(|e| {
            e.involved_object
                .field_path
                .as_deref()
                .is_none_or(|p| p == format!("{path_prefix}{{{container}}}"))
        })
        .cloned()
        .collect();
    let texts: Vec<EventText<'_>> = events.iter().map(EventLite::text).collect();
    let classified = classify_container(&reason, &message, &texts);
    PodEvidence {
        pod_name: pod.name.clone(),
        pod,
        container,
        init,
        events,
        classified,
    }
}

/// The pull secrets that apply to the pod (its own, then its
/// ServiceAccount's), each as read, with warnings for what could not be.
fn pull_secret_refs(
    ns: &str,
    pod: &FailingPod,
    gathered: &gather::Gathered,
    warnings: &mut Vec<String>,
) -> Vec<SecretRef> {
    let mut refs = Vec::new();
    for name in &pod.pull_secrets {
        refs.push(SecretRef {
            name: name.clone(),
            origin: Origin::PodSpec,
            lookup: gathered.secret(ns, name),
        });
    }
    let sa = pod
        .service_account
        .clone()
        .unwrap_or_else(|| "default".into());
    match gathered.service_account(ns, &sa) {
        gather::SaLookup::Found(names) => {
            for name in names {
                if !refs.iter().any(|x: &SecretRef| x.name == name) {
                    let lookup = gathered.secret(ns, &name);
                    refs.push(SecretRef {
                        name,
                        origin: Origin::ServiceAccount { name: sa.clone() },
                        lookup,
                    });
                }
            }
        }
        gather::SaLookup::NotFound => {
            warnings.push(format!("ServiceAccount {ns}/{sa} does not exist"));
        }
        gather::SaLookup::Unread => {
            warnings.push(format!("ServiceAccount {ns}/{sa} could not be read"));
        }
    }
    if refs.iter().any(|r| matches!(r.lookup, Lookup::Forbidden)) {
        warnings.push(format!(
            "secrets in {ns} could not be read: your identity lacks `get secrets` there (check: kubectl auth can-i get secrets -n {ns}); the registry and cluster evidence below still apply — escalate to someone who can read secrets if the cause is a credential"
        ));
    }
    // Not a permission problem: say what happened, and no RBAC advice.
    for r in &refs {
        if let Lookup::Failed(why) = &r.lookup {
            warnings.push(format!(
                "secret {ns}/{} could not be read ({why}); the registry and cluster evidence below still apply — run again once the API server answers (--request-timeout allows it longer)",
                r.name
            ));
        }
    }
    refs
}

/// Registries the namespace's secrets are for (the wrong-registry check).
fn private_registries(analysis: &secrets::Analysis, refs: &[SecretRef]) -> Vec<String> {
    analysis
        .reports
        .iter()
        .filter_map(|r| r.matched_key.clone())
        .chain(refs.iter().filter_map(|r| {
            match &r.lookup {
                Lookup::Found(v) => crate::registry::keyring::parse_pull_secret(
                    crate::registry::keyring::DOCKERCONFIGJSON,
                    &v.data,
                )
                .ok()
                .and_then(|e| e.first().map(|e| e.key.clone())),
                _ => None,
            }
        }))
        .filter_map(|k| crate::registry::keyring::normalize_key(&k))
        .filter(|k| !k.starts_with("index.docker.io") && !k.starts_with("docker.io"))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The failing node's architecture (`amd64` when unknown) and the nodes
/// that hold the image.
fn node_facts(
    nodes: Option<&[NodeLite]>,
    image: Option<&ImageRef>,
    image_text: &str,
    node_name: &str,
) -> (String, Vec<String>) {
    let mut arch = "amd64".to_string();
    let mut nodes_with_image = Vec::new();
    if let (Some(nodes), Some(img)) = (nodes, image) {
        let wanted = img.to_string();
        for n in nodes {
            if n.metadata.name == node_name {
                arch = n
                    .status
                    .node_info
                    .get("architecture")
                    .and_then(Value::as_str)
                    .unwrap_or("amd64")
                    .to_string();
            }
            if n.status.images.iter().any(|i| {
                i.names
                    .iter()
                    .any(|x| *x == wanted || x.as_str() == image_text)
            }) {
                nodes_with_image.push(n.metadata.name.clone());
            }
        }
    }
    (arch, nodes_with_image)
}

/// The same path and tag in one of the namespace's private registries,
/// verified from here with the credentials the kubelet would use there.
async fn verified_replacement(
    p: &Prober,
    img: &ImageRef,
    private_registries: &[String],
    refs: &[SecretRef],
    arch: &str,
    now: chrono::DateTime<Utc>,
) -> Option<(String, Evidence)> {
    let path = img.repository.trim_start_matches("library/");
    for reg in private_registries {
        let candidate_text = format!("{reg}/{path}:{}", img.manifest_reference());
        let Ok(candidate) = ImageRef::parse(&candidate_text) else {
            continue;
        };
        let creds = secrets::analyze(refs, &candidate, now);
        let result = p
            .probe(
                &candidate,
                creds.credentials.first().map(|(c, _, _)| c),
                arch,
            )
            .await;
        if result
            .with_credential
            .as_ref()
            .unwrap_or(&result.anonymous)
            .ok()
        {
            let found = Evidence {
                source: "registry".into(),
                text: format!(
                    "{candidate_text} exists in the private registry (verified from this machine)"
                ),
            };
            return Some((candidate_text, found));
        }
    }
    None
}

/// The container's newest warnings, as evidence.
fn event_evidence(events: &[EventLite]) -> Vec<Evidence> {
    events
        .iter()
        .filter(|e| e.type_ == "Warning")
        .take(6)
        .map(|e| Evidence {
            source: "event".into(),
            text: format!("{} (x{}): {}", e.reason, e.count.unwrap_or(1), e.message),
        })
        .collect()
}

/// Tags close to the missing one, from the registry's tag list.
fn suggested_tags(
    probe: Option<&crate::probe::ProbeResult>,
    image: Option<&ImageRef>,
) -> Vec<String> {
    match (probe, image.and_then(|i| i.tag.clone())) {
        (Some(p), Some(tag)) => p
            .tags
            .as_ref()
            .map(|t| crate::probe::suggest_tags(&tag, t))
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Pull secrets in the namespace whose keys match the image's registry and
/// that the pod does not reference (empty when they cannot be listed).
fn unused_matching(
    gathered: &gather::Gathered,
    ns: &str,
    image: &ImageRef,
    refs: &[SecretRef],
) -> Vec<String> {
    let Some(all) = gathered.pull_secrets_in(ns) else {
        return Vec::new();
    };
    all.iter()
        .filter(|v| !refs.iter().any(|r| r.name == v.name))
        .filter(|v| {
            crate::registry::keyring::parse_pull_secret(&v.type_, &v.data)
                .is_ok_and(|entries| entries.iter().any(|e| secrets::key_matches(&e.key, image)))
        })
        .map(|v| v.name.clone())
        .collect()
}

#[derive(Debug, Clone, Default, Deserialize)]
struct CronJobLite {
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    spec: serde_json::Value,
    #[serde(default)]
    status: serde_json::Value,
}

/// The CronJobs of the namespaces: one list per namespace, or one
/// cluster-wide list when there are many (falling back to per-namespace
/// lists when RBAC refuses the cluster-wide one). A namespace whose list
/// failed maps to `None`.
async fn cronjobs_in(
    client: &Client,
    scope: &Scope,
    namespaces: &BTreeSet<String>,
) -> BTreeMap<String, Option<Vec<CronJobLite>>> {
    let mut out: BTreeMap<String, Option<Vec<CronJobLite>>> = BTreeMap::new();
    if Spread::over(scope, namespaces.clone(), collect::NAMESPACE_LISTS) == Spread::Cluster {
        match api::list_cronjobs::<CronJobLite>(client, None).await {
            Ok(all) => {
                for ns in namespaces {
                    out.insert(ns.clone(), Some(Vec::new()));
                }
                for cj in all {
                    if let Some(Some(list)) = out.get_mut(&cj.metadata.namespace) {
                        list.push(cj);
                    }
                }
                return out;
            }
            Err(e) if !e.is_forbidden() => {
                return namespaces.iter().map(|ns| (ns.clone(), None)).collect();
            }
            Err(_) => {}
        }
    }
    for ns in namespaces {
        out.insert(
            ns.clone(),
            api::list_cronjobs::<CronJobLite>(client, Some(ns))
                .await
                .ok(),
        );
    }
    out
}

async fn refresh_jobs(
    client: &Client,
    scope: &Scope,
    secrets: &BTreeSet<(String, String)>,
    warnings: &mut Vec<String>,
) -> Vec<RefreshJob> {
    let mut out = Vec::new();
    let namespaces: BTreeSet<String> = secrets.iter().map(|(ns, _)| ns.clone()).collect();
    for (ns, cronjobs) in cronjobs_in(client, scope, &namespaces).await {
        let ns = &ns;
        let names: Vec<&String> = secrets
            .iter()
            .filter(|(n, _)| n == ns)
            .map(|(_, s)| s)
            .collect();
        let Some(cronjobs) = cronjobs else {
            warnings.push(format!(
                "CronJobs in {ns} could not be listed: refresh automation not checked"
            ));
            continue;
        };
        for cj in cronjobs {
            let template = cj
                .spec
                .get("jobTemplate")
                .map(Value::to_string)
                .unwrap_or_default();
            let looks = cj.metadata.name.contains("refresh")
                || cj.metadata.name.contains("ecr")
                || template.contains("get-login-password")
                || template.contains("ecr")
                || names.iter().any(|n| mentions_name(&template, n));
            if !looks {
                continue;
            }
            let jobs: Vec<collect::WorkloadLite> =
                api::list_all_as::<Job, _>(client, Some(ns), &ListQuery::default())
                    .await
                    .unwrap_or_default();
            let mut failed: Vec<&collect::WorkloadLite> = jobs
                .iter()
                .filter(|j| {
                    j.metadata
                        .owner_references
                        .iter()
                        .any(|o| o.kind == "CronJob" && o.name == cj.metadata.name)
                })
                .filter(|j| j.status.get("failed").and_then(Value::as_i64).unwrap_or(0) > 0)
                .collect();
            failed.sort_by(|a, b| {
                b.metadata
                    .creation_timestamp
                    .cmp(&a.metadata.creation_timestamp)
            });
            let failure_tail = match failed.first() {
                Some(j) => failure_tail(client, ns, &j.metadata.name).await,
                None => None,
            };
            out.push(RefreshJob {
                namespace: ns.clone(),
                name: cj.metadata.name.clone(),
                schedule: cj
                    .spec
                    .get("schedule")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                last_schedule: cj
                    .status
                    .get("lastScheduleTime")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                last_successful: cj
                    .status
                    .get("lastSuccessfulTime")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                failed_jobs: failed.iter().map(|j| j.metadata.name.clone()).collect(),
                failure_tail,
            });
        }
    }
    out
}

async fn failure_tail(client: &Client, ns: &str, job: &str) -> Option<String> {
    let pods: Vec<serde_json::Value> = api::list_all_as::<Pod, _>(
        client,
        Some(ns),
        &ListQuery::labels(&format!("job-name={job}")),
    )
    .await
    .ok()?;
    let pod = pods.first()?;
    let name = pod.pointer("/metadata/name").and_then(Value::as_str)?;
    if let Ok(text) = api::pod_log_tail(client, ns, name, 5).await
        && !text.trim().is_empty()
    {
        return Some(text.trim().to_string());
    }
    pod.pointer("/status/containerStatuses")
        .and_then(|cs| cs.get(0))
        .and_then(|c| c.pointer("/state/terminated/message"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The entries of one pull secret elsewhere that name a failing registry,
/// one per registry. An entry with no usable credential is no "different
/// credential" and is left out, unless the secret is a copy of the failing
/// one (`same_credential`: it is stale and is fixed with it). Pure.
fn other_secret_entries(
    v: &SecretView,
    registries: &BTreeSet<String>,
    same_credential: bool,
) -> Vec<OtherSecret> {
    let Ok(entries) = crate::registry::keyring::parse_pull_secret(
        crate::registry::keyring::DOCKERCONFIGJSON,
        &v.data,
    ) else {
        return Vec::new();
    };
    let mut hosts = BTreeSet::new();
    let mut out = Vec::new();
    for e in entries {
        if e.credential.is_none() && !same_credential {
            continue;
        }
        let Some(k) = crate::registry::keyring::normalize_key(&e.key) else {
            continue;
        };
        let host = k.split('/').next().unwrap_or(&k).to_string();
        // `reg` and `https://reg/v1/` in one secret are one secret.
        if registries.contains(&host) && hosts.insert(host.clone()) {
            out.push(OtherSecret {
                namespace: v.namespace.clone(),
                name: v.name.clone(),
                registry: host,
                same_credential,
                failing_workloads: Vec::new(),
            });
        }
    }
    out
}

/// [`other_secret_entries`] both ways, for the property tests.
#[cfg(test)]
pub(crate) fn other_secret_entries_for_tests(
    v: &SecretView,
    registries: &BTreeSet<String>,
) -> Vec<OtherSecret> {
    let mut out = other_secret_entries(v, registries, false);
    out.extend(other_secret_entries(v, registries, true));
    out
}

#[allow(clippy::too_many_arguments)]
async fn other_namespaces(
    client: &Client,
    scope: &Scope,
    assessment: &scan::Assessment,
    gathered: &gather::Gathered,
    secrets: &BTreeSet<(String, String)>,
    registries: &BTreeSet<String>,
    failing: &BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) -> Vec<OtherSecret> {
    if secrets.is_empty() {
        return Vec::new();
    }
    // The cluster-wide pull-secret list diagnose already holds, else one.
    let listed: Vec<SecretView>;
    let all: Vec<&SecretView> = match gathered.all_pull_secrets() {
        Some(all) => all.collect(),
        None => {
            listed = match api::list_all_as::<Secret, gather::SecretLite>(
                client,
                None,
                &gather::pull_secrets(),
            )
            .await
            {
                Ok(v) => v.into_iter().map(gather::SecretLite::view).collect(),
                Err(e) if e.is_forbidden() => {
                    warnings.push("pull secrets in other namespaces could not be listed (no cluster-wide `list secrets`)".into());
                    return Vec::new();
                }
                Err(e) => {
                    warnings.push(format!(
                        "pull secrets in other namespaces could not be listed ({})",
                        e.short()
                    ));
                    return Vec::new();
                }
            };
            listed.iter().collect()
        }
    };
    let failing_digests: BTreeSet<&String> = failing.values().collect();
    let mut out = Vec::new();
    for v in all {
        let key = format!("{}/{}", v.namespace, v.name);
        if failing.contains_key(&key) {
            continue;
        }
        let Some(raw) = v.data.get(".dockerconfigjson") else {
            continue;
        };
        let same_credential = failing_digests.contains(&digest(raw));
        out.extend(other_secret_entries(v, registries, same_credential));
    }
    // The workloads the stale copies hold back, so the fix can restart
    // them too: from the assessment in hand when it covered every
    // namespace, else one assessment (per namespace for a few, one
    // cluster-wide for many); a failure leaves them out.
    let stale_namespaces: BTreeSet<String> = out
        .iter()
        .filter(|o| o.same_credential)
        .map(|o| o.namespace.clone())
        .collect();
    let mut assessments: Vec<scan::Assessment> = Vec::new();
    let held: Vec<&scan::Assessment> = if *scope == Scope::All {
        vec![assessment]
    } else {
        match Spread::over(
            &Scope::All,
            stale_namespaces.clone(),
            collect::NAMESPACE_LISTS,
        ) {
            Spread::Cluster => assessments.extend(scan::run(client, &Scope::All).await.ok()),
            Spread::Namespaces(set) => {
                for ns in set {
                    assessments.extend(scan::run(client, &Scope::Namespace(ns)).await.ok());
                }
            }
        }
        assessments.iter().collect()
    };
    for o in out.iter_mut().filter(|o| o.same_credential) {
        // Held back by the credential: failing to authenticate, not
        // for a reason of their own (a wrong tag, say).
        o.failing_workloads = held
            .iter()
            .flat_map(|a| &a.groups)
            .filter(|g| {
                g.workload.namespace == o.namespace
                    && g.registry == o.registry
                    && g.cause.is_credential()
            })
            .map(|g| g.workload.clone())
            .collect();
        o.failing_workloads.dedup();
    }
    out
}

/// Whether `text` holds `name` as a whole object name: not inside a
/// longer name (`regcred` is not in `regcred-old`, `a` is not in `image`).
fn mentions_name(text: &str, name: &str) -> bool {
    let part = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
    !name.is_empty()
        && text.match_indices(name).any(|(at, _)| {
            let before = text.get(..at).and_then(|t| t.chars().next_back());
            let after = text.get(at + name.len()..).and_then(|t| t.chars().next());
            !before.is_some_and(part) && !after.is_some_and(part)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_secrets_without_a_usable_credential_are_not_a_different_credential() {
        let secret = |name: &str, json: &str| SecretView {
            name: name.into(),
            namespace: "other".into(),
            type_: crate::registry::keyring::DOCKERCONFIGJSON.into(),
            data: BTreeMap::from([(".dockerconfigjson".into(), json.as_bytes().to_vec())]),
            ..SecretView::default()
        };
        let regs = BTreeSet::from(["reg.io".to_string()]);
        // usable (two keys for one registry: one line)
        let good = secret(
            "good",
            r#"{"auths":{"reg.io":{"username":"u","password":"p"},"https://reg.io/v1/":{"username":"u","password":"p"}}}"#,
        );
        assert_eq!(other_secret_entries(&good, &regs, false).len(), 1);
        // not base64, no credential at all: not counted
        for json in [
            r#"{"auths":{"reg.io":{"auth":"not base64!!"}}}"#,
            r#"{"auths":{"reg.io":{}}}"#,
        ] {
            assert!(other_secret_entries(&secret("bad", json), &regs, false).is_empty());
        }
        // a copy of the failing secret is stale whatever it holds
        let copy = secret("copy", r#"{"auths":{"reg.io":{}}}"#);
        assert_eq!(other_secret_entries(&copy, &regs, true).len(), 1);
        // wrong shapes: nothing, no panic
        for json in ["[1,2]", r#"{"auths":7}"#, "null"] {
            assert!(other_secret_entries(&secret("x", json), &regs, false).is_empty());
        }
    }

    #[test]
    fn a_refresh_job_names_the_secret_as_a_whole_name() {
        assert!(mentions_name(
            r#"{"args":["create secret docker-registry regcred --x"]}"#,
            "regcred"
        ));
        assert!(mentions_name(r#"{"name":"regcred"}"#, "regcred"));
        assert!(!mentions_name(r#"{"name":"regcred-old"}"#, "regcred"));
        assert!(!mentions_name("null", "l"));
        assert!(!mentions_name("", ""));
    }

    #[test]
    fn targets() {
        assert_eq!(
            Target::parse("deploy/checkout").unwrap(),
            Target::Named {
                kind: "Deployment".into(),
                name: "checkout".into()
            }
        );
        assert_eq!(
            Target::parse("web-1").unwrap(),
            Target::Named {
                kind: "Pod".into(),
                name: "web-1".into()
            }
        );
        assert!(
            Target::parse("svc/x")
                .unwrap_err()
                .to_string()
                .contains("unsupported target kind `svc`")
        );
        assert!(Target::parse("deploy/").is_err());
    }
}
