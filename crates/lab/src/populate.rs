//! Bench population: thousands of realistic pods for `scripts/bench-scan`.
//!
//! [`populate`] creates `bench-NNN` namespaces (label
//! `lab.pullfix.dev/bench=true`) with plain Pods bound by `spec.nodeName` to
//! five bench nodes (`bench-node-N`, Node objects whose Ready condition is
//! written once and never again), then writes the pods' status as a kubelet
//! would: Running and Ready, except `failing` pods spread over the
//! namespaces whose `app` container waits in `ErrImagePull` or
//! `ImagePullBackOff`: most never started (phase Pending), about a quarter
//! ran before and cannot re-pull after a restart (phase Running, the image
//! gone, `imagePullPolicy: Always`). Each failing pod also gets the
//! kubelet's `Failed` and `BackOff` Warning events.
//!
//! Every [`OWNED_EVERY`]th namespace has the Deployment → ReplicaSet → Pod
//! shape instead (one paused Deployment, one ReplicaSet, all pods owned by
//! it), so grouping failures by owner can be benchmarked too.
//!
//! Things the control plane would otherwise do to these objects, and what
//! keeps them from happening:
//! - The node lifecycle controller marks the bench nodes `Unknown` ~40 s
//!   after their one status write and taints them `NoExecute`: every bench
//!   pod tolerates `node.kubernetes.io/not-ready` and `.../unreachable`
//!   (operator Exists, no `tolerationSeconds`), so none is ever evicted.
//! - On that transition it also sets `Ready=False` on every pod of the node
//!   that has a Ready condition (`MarkPodsNotReady`): pod statuses are
//!   written only once the bench nodes are no longer Ready.
//! - The ReplicaSet controller would create pods for a ReplicaSet short of
//!   replicas, or delete owned pods beyond them: the ReplicaSet asks for
//!   exactly the pods created here, and its template names a PriorityClass
//!   that does not exist, so whatever it tries to create is refused at
//!   admission (a few `FailedCreate` events while the pods are being made).
//!   The Deployment is paused, so it never makes a ReplicaSet of its own.
//! - The simulated kubelet only handles its own `lab-*` nodes.
//!
//! Idempotent: existing objects are kept (409 is fine), pods whose status
//! already looks as planned are not patched again, and bench nodes that
//! exist are not written (a second Ready write would make the node
//! lifecycle controller mark every pod NotReady again).
//!
//! Re-running with another `failing` count rewrites the lab in place: a
//! pod whose spec no longer is as planned (a failing pod names a tag that
//! was never pushed, and one that ran before has `imagePullPolicy:
//! Always`, which cannot be changed on a pod) is deleted at once and
//! created again, with its status and events; the events of a pod that no
//! longer fails (or was recreated, with a new uid) are deleted. Pods whose
//! failing state did not change are not touched, so going from 200 to
//! 2,000 failing rewrites about 2,000 pods, not 10,000.
//!
//! `prefix` names what one population owns (`bench-` by default: namespaces
//! `bench-NNN`, nodes `bench-node-N`), so a test can populate a small set of
//! its own next to other tests and [`depopulate`] only that.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Label on every bench namespace and node.
pub const BENCH_LABEL: &str = "lab.pullfix.dev/bench";
/// Prefix of the bench namespaces (`bench-000`, `bench-001`, ...).
pub const NAMESPACE_PREFIX: &str = "bench-";
/// How many bench nodes pods are spread over.
pub const NODES: usize = 5;
/// Every this-many-th namespace (0, 10, 20, ...) holds a Deployment and
/// ReplicaSet owning all its pods.
pub const OWNED_EVERY: usize = 10;
/// A PriorityClass that does not exist: pods the ReplicaSet controller
/// tries to create are refused by the Priority admission plugin.
pub const NO_SUCH_PRIORITY_CLASS: &str = "lab-bench-no-such-class";

/// What to create.
#[derive(Debug, Clone)]
pub struct PopulateOptions {
    /// Number of `bench-NNN` namespaces.
    pub namespaces: usize,
    /// Pods in each namespace.
    pub pods_per_namespace: usize,
    /// Pods failing to pull, spread over the namespaces (at most all pods).
    pub failing: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Longest wait for the bench nodes to leave Ready before pod statuses
    /// are written.
    pub node_wait: Duration,
    /// Prefix of the namespaces (`{prefix}NNN`) and nodes
    /// (`{prefix}node-N`): [`NAMESPACE_PREFIX`] by default.
    pub prefix: String,
}

impl Default for PopulateOptions {
    fn default() -> Self {
        PopulateOptions {
            namespaces: 200,
            pods_per_namespace: 50,
            failing: 200,
            concurrency: 16,
            node_wait: Duration::from_secs(120),
            prefix: NAMESPACE_PREFIX.to_string(),
        }
    }
}

/// What [`populate`] did.
#[derive(Debug, Clone, Default)]
pub struct PopulateReport {
    pub namespaces: usize,
    pub nodes_created: usize,
    pub replicasets: usize,
    pub pods: usize,
    pub pods_created: usize,
    pub pods_existing: usize,
    /// Existing pods deleted and created again (their spec was planned
    /// for another failing count).
    pub pods_recreated: usize,
    /// Events of pods that no longer fail, or were recreated, deleted.
    pub events_deleted: usize,
    pub statuses_patched: usize,
    pub events_created: usize,
    pub failing: usize,
    /// Time spent waiting for the bench nodes to leave Ready.
    pub node_wait: Duration,
    /// Time spent creating pods and patching their status.
    pub pods_elapsed: Duration,
    pub elapsed: Duration,
}

impl fmt::Display for PopulateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "populated {} namespaces, {} pods ({} created, {} existing, {} recreated), {} failing, \
             {} owned by {} ReplicaSets, {} statuses written, {} events created, {} events deleted, \
             {} bench nodes created; \
             pods {:.1} s, node wait {:.1} s, total {:.1} s",
            self.namespaces,
            self.pods,
            self.pods_created,
            self.pods_existing,
            self.pods_recreated,
            self.failing,
            self.owned_pods(),
            self.replicasets,
            self.statuses_patched,
            self.events_created,
            self.events_deleted,
            self.nodes_created,
            self.pods_elapsed.as_secs_f64(),
            self.node_wait.as_secs_f64(),
            self.elapsed.as_secs_f64(),
        )
    }
}

impl PopulateReport {
    fn owned_pods(&self) -> usize {
        self.replicasets * self.pods.checked_div(self.namespaces).unwrap_or(0)
    }
}

/// What [`depopulate`] did.
#[derive(Debug, Clone, Default)]
pub struct DepopulateReport {
    pub namespaces: usize,
    pub nodes: usize,
    pub elapsed: Duration,
}

impl fmt::Display for DepopulateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "deleted {} bench namespaces and {} bench nodes in {:.1} s",
            self.namespaces,
            self.nodes,
            self.elapsed.as_secs_f64()
        )
    }
}

// ------------------------------------------------------------------ plan --

/// How a failing pod fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// `ErrImagePull`, the tag does not exist.
    NotFound,
    /// `ErrImagePull`, the registry refuses the caller.
    Unauthorized,
    /// `ImagePullBackOff` after failed pulls.
    BackOff,
}

impl Failure {
    pub fn reason(self) -> &'static str {
        match self {
            Failure::NotFound | Failure::Unauthorized => "ErrImagePull",
            Failure::BackOff => "ImagePullBackOff",
        }
    }

    /// The container's waiting message, worded as containerd 1.7 and a
    /// 1.28 kubelet word it.
    pub fn message(self, image: &str) -> String {
        match self {
            Failure::NotFound => format!(
                "rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": \
                 failed to resolve reference \"{image}\": {image}: not found"
            ),
            Failure::Unauthorized => format!(
                "rpc error: code = Unknown desc = failed to pull and unpack image \"{image}\": \
                 failed to resolve reference \"{image}\": pull access denied, repository does \
                 not exist or may require authorization: server message: insufficient_scope: \
                 authorization failed"
            ),
            Failure::BackOff => format!("Back-off pulling image \"{image}\""),
        }
    }
}

/// One planned pod.
#[derive(Debug, Clone)]
pub struct PodPlan {
    pub name: String,
    pub app: &'static str,
    pub template_hash: String,
    pub node: String,
    /// Index over all pods (namespace-major).
    pub global: usize,
    pub failure: Option<Failure>,
    /// A failing pod that ran before: phase Running, its `app` container
    /// restarted and cannot pull its image again.
    pub restarted: bool,
}

/// One planned namespace.
#[derive(Debug, Clone)]
pub struct NamespacePlan {
    pub name: String,
    /// Deployment → ReplicaSet → pods, named after this app.
    pub owner: Option<&'static str>,
    pub pods: Vec<PodPlan>,
}

const APPS: [&str; 12] = [
    "checkout",
    "payments",
    "cart",
    "search",
    "inventory",
    "shipping",
    "notifications",
    "auth",
    "catalog",
    "recommendations",
    "orders",
    "pricing",
];
/// Pods per app in a namespace without an owner.
const PODS_PER_APP: usize = 10;
/// Characters Kubernetes uses for generated name suffixes.
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// `len` characters of the generated-name alphabet, fixed by `seed`.
fn suffix(seed: u64, len: usize) -> String {
    let mut x = splitmix(seed);
    (0..len)
        .map(|_| {
            let c = NAME_ALPHABET[(x % NAME_ALPHABET.len() as u64) as usize];
            x = splitmix(x);
            c as char
        })
        .collect()
}

fn hex_digest(seed: u64, bytes: usize) -> String {
    let mut x = seed;
    let mut out = String::with_capacity(bytes * 2);
    while out.len() < bytes * 2 {
        x = splitmix(x);
        out.push_str(&format!("{x:016x}"));
    }
    out.truncate(bytes * 2);
    out
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Which of `total` pods fail: exactly `failing` of them (capped at
/// `total`), spread pseudo-randomly but deterministically over all pods,
/// so most namespaces hold one or two and some none.
pub fn failing_set(total: usize, failing: usize) -> HashSet<usize> {
    let failing = failing.min(total);
    if failing == 0 {
        return HashSet::new();
    }
    // A bijection on 0..total (multiplication by a number coprime to
    // total), then every (total/failing)-th position of the permutation.
    let mut mult = 7919usize;
    while gcd(mult, total) != 1 {
        mult += 2;
    }
    (0..total)
        .filter(|&p| (p + 1) * failing / total > p * failing / total)
        .map(|p| (p * mult) % total)
        .collect()
}

/// The nodes' name prefix for a population's `prefix` (`bench-node-`).
pub fn node_prefix(prefix: &str) -> String {
    format!("{prefix}node-")
}

/// The namespaces and pods [`populate`] creates, without any I/O.
pub fn plan(opts: &PopulateOptions) -> Vec<NamespacePlan> {
    let nodes = node_prefix(&opts.prefix);
    let total = opts.namespaces * opts.pods_per_namespace;
    let failing = failing_set(total, opts.failing);
    let width = opts.namespaces.saturating_sub(1).to_string().len().max(3);
    (0..opts.namespaces)
        .map(|n| {
            let owner = (n % OWNED_EVERY == 0).then(|| APPS[n / OWNED_EVERY % APPS.len()]);
            let pods = (0..opts.pods_per_namespace)
                .map(|i| {
                    let global = n * opts.pods_per_namespace + i;
                    let (app, group) = match owner {
                        Some(app) => (app, 0),
                        None => {
                            let g = i / PODS_PER_APP;
                            (APPS[(n + g) % APPS.len()], g)
                        }
                    };
                    let template_hash = suffix((n as u64) << 20 | group as u64, 10);
                    let failure = failing.contains(&global).then_some(match global % 3 {
                        0 => Failure::NotFound,
                        1 => Failure::Unauthorized,
                        _ => Failure::BackOff,
                    });
                    let restarted =
                        failure.is_some() && splitmix(global as u64 ^ 0x5eed).is_multiple_of(4);
                    PodPlan {
                        name: format!("{app}-{template_hash}-{}", suffix(global as u64 ^ 0xb0b, 5)),
                        app,
                        template_hash,
                        node: format!("{nodes}{}", global % NODES + 1),
                        global,
                        failure,
                        restarted,
                    }
                })
                .collect();
            NamespacePlan {
                name: format!("{}{n:0width$}", opts.prefix),
                owner,
                pods,
            }
        })
        .collect()
}

// --------------------------------------------------------------- objects --

const ECR: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const PROXY_IMAGE: &str = "docker.io/envoyproxy/envoy:v1.29.1";

fn app_version(app: &str) -> String {
    let h = app
        .bytes()
        .fold(0u64, |a, b| a.wrapping_mul(31).wrapping_add(u64::from(b)));
    format!("v2.{}.{}", h % 7, h % 13)
}

fn app_image(app: &str, failure: Option<Failure>) -> String {
    let version = app_version(app);
    match failure {
        // A tag that was never pushed (a typo'd release).
        Some(_) => format!("{ECR}/team/{app}:{version}-rc1"),
        None => format!("{ECR}/team/{app}:{version}"),
    }
}

fn pod_labels(app: &str, ns: &str, template_hash: &str) -> Value {
    json!({
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/instance": format!("{app}-{ns}"),
        "app.kubernetes.io/version": app_version(app).trim_start_matches('v'),
        "app.kubernetes.io/component": "server",
        "app.kubernetes.io/part-of": "shop",
        "app.kubernetes.io/managed-by": "Helm",
        "pod-template-hash": template_hash,
        "team": "commerce",
        "tier": "backend",
        BENCH_LABEL: "true",
    })
}

fn selector_labels(app: &str, ns: &str) -> Value {
    json!({
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/instance": format!("{app}-{ns}"),
    })
}

/// A pod's spec as a Deployment template would have it (without
/// `nodeName`), ~3 KB of JSON with metadata, like real application pods.
fn pod_spec(app: &str, ns: &str, image: &str, seed: u64) -> Value {
    let env = |name: &str, value: &str| json!({"name": name, "value": value});
    let field = |name: &str, path: &str| json!({"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}});
    let upper = app.to_uppercase();
    json!({
        "containers": [
            {
                "name": "app",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "args": ["--config=/etc/app/config.yaml", "--log-format=json"],
                "ports": [
                    {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                    {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}
                ],
                "env": [
                    field("POD_NAME", "metadata.name"),
                    field("POD_NAMESPACE", "metadata.namespace"),
                    env("APP_ENV", "production"),
                    env(&format!("{upper}_DB_HOST"), &format!("{app}-db.{ns}.svc.cluster.local")),
                    env(&format!("{upper}_CACHE_URL"), &format!("redis://{app}-cache.{ns}.svc:6379/0")),
                    env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel-collector.observability.svc:4317"),
                    {"name": format!("{upper}_DB_PASSWORD"),
                     "valueFrom": {"secretKeyRef": {"name": format!("{app}-db"), "key": "password"}}},
                ],
                "resources": {
                    "requests": {"cpu": "250m", "memory": "256Mi"},
                    "limits": {"cpu": "1", "memory": "512Mi"}
                },
                "livenessProbe": {
                    "httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
                    "initialDelaySeconds": 10, "periodSeconds": 10, "timeoutSeconds": 1,
                    "failureThreshold": 3
                },
                "readinessProbe": {
                    "httpGet": {"path": "/ready", "port": "http", "scheme": "HTTP"},
                    "periodSeconds": 5, "timeoutSeconds": 1,
                    "failureThreshold": 3
                },
                "volumeMounts": [
                    {"name": "config", "mountPath": "/etc/app", "readOnly": true},
                    {"name": "tmp", "mountPath": "/tmp"},
                    {"name": format!("kube-api-access-{}", suffix(seed, 5)),
                     "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}
                ],
                "securityContext": {
                    "allowPrivilegeEscalation": false,
                    "readOnlyRootFilesystem": true,
                    "runAsNonRoot": true,
                    "runAsUser": 10001,
                    "capabilities": {"drop": ["ALL"]}
                }
            },
            {
                "name": "proxy",
                "image": PROXY_IMAGE,
                "imagePullPolicy": "IfNotPresent",
                "args": ["-c", "/etc/envoy/envoy.yaml", "--service-cluster", app, "--log-level", "warn"],
                "ports": [{"name": "admin", "containerPort": 15000, "protocol": "TCP"}],
                "env": [env("ENVOY_UID", "0")],
                "resources": {
                    "requests": {"cpu": "50m", "memory": "64Mi"},
                    "limits": {"cpu": "200m", "memory": "128Mi"}
                },
                "volumeMounts": [{"name": "envoy", "mountPath": "/etc/envoy", "readOnly": true}]
            }
        ],
        "volumes": [
            {"name": "config", "configMap": {"name": format!("{app}-config"), "defaultMode": 420}},
            {"name": "envoy", "configMap": {"name": format!("{app}-envoy"), "defaultMode": 420}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
            {"name": format!("kube-api-access-{}", suffix(seed, 5)), "projected": {
                "defaultMode": 420,
                "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace",
                        "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
                ]
            }}
        ],
        "imagePullSecrets": [{"name": "ecr-pull"}],
        "serviceAccountName": "default",
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "enableServiceLinks": false,
        "securityContext": {"fsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
        "tolerations": [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}
        ]
    })
}

fn pod_annotations(seed: u64) -> Value {
    json!({
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9090",
        "prometheus.io/path": "/metrics",
        "checksum/config": hex_digest(seed ^ 0xc0f, 32),
        "kubectl.kubernetes.io/default-container": "app",
        "cluster-autoscaler.kubernetes.io/safe-to-evict": "true",
    })
}

/// The pod as created (before its status is written).
pub fn pod_object(ns: &str, p: &PodPlan, owner: Option<&OwnerRef>) -> Value {
    let seed = p.global as u64;
    let image = app_image(p.app, p.failure);
    let mut spec = pod_spec(p.app, ns, &image, seed);
    spec["nodeName"] = json!(p.node);
    if p.restarted {
        spec["containers"][0]["imagePullPolicy"] = json!("Always");
    }
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": p.name,
            "namespace": ns,
            "labels": pod_labels(p.app, ns, &p.template_hash),
            "annotations": pod_annotations(seed),
        },
        "spec": spec,
    });
    if let Some(o) = owner {
        pod["metadata"]["ownerReferences"] = json!([{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": o.name, "uid": o.uid,
            "controller": true, "blockOwnerDeletion": true,
        }]);
    }
    pod
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn node_ip(node: &str) -> String {
    let n: u32 = node
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    format!("10.99.0.{}", 10 + n)
}

/// The merge patch for `pods/NAME/status`: what a kubelet reports.
pub fn pod_status(p: &PodPlan) -> Value {
    let now = chrono::Utc::now();
    let started = now - chrono::Duration::minutes(30 + (p.global % 600) as i64);
    let seed = p.global as u64;
    let image = app_image(p.app, p.failure);
    let container_id = |s: u64| format!("containerd://{}", hex_digest(s, 32));
    let proxy = json!({
        "name": "proxy",
        "image": PROXY_IMAGE,
        "imageID": format!("docker.io/envoyproxy/envoy@sha256:{}", hex_digest(0xe4, 32)),
        "containerID": container_id(seed ^ 0x9e),
        "ready": true,
        "started": true,
        "restartCount": 0,
        "lastState": {},
        "state": {"running": {"startedAt": rfc3339(started + chrono::Duration::seconds(3))}},
    });
    let cond = |t: &str, ok: bool, reason: Option<&str>, message: Option<String>| {
        let mut c = json!({
            "type": t,
            "status": if ok { "True" } else { "False" },
            "lastProbeTime": null,
            "lastTransitionTime": rfc3339(started),
        });
        if let Some(r) = reason {
            c["reason"] = json!(r);
        }
        if let Some(m) = message {
            c["message"] = json!(m);
        }
        c
    };
    let (phase, app, ready) = match p.failure {
        None => (
            "Running",
            json!({
                "name": "app",
                "image": image,
                "imageID": format!("{ECR}/team/{}@sha256:{}", p.app, hex_digest(p.app.len() as u64, 32)),
                "containerID": container_id(seed ^ 0xa9),
                "ready": true,
                "started": true,
                "restartCount": 0,
                "lastState": {},
                "state": {"running": {"startedAt": rfc3339(started + chrono::Duration::seconds(4))}},
            }),
            true,
        ),
        Some(f) if p.restarted => (
            "Running",
            json!({
                "name": "app",
                "image": image,
                "imageID": format!("{ECR}/team/{}@sha256:{}", p.app, hex_digest(seed ^ 0x01d, 32)),
                "containerID": container_id(seed ^ 0xa9),
                "ready": false,
                "started": false,
                "restartCount": 1 + p.global % 4,
                "lastState": {"terminated": {
                    "exitCode": 137, "reason": "OOMKilled",
                    "startedAt": rfc3339(started + chrono::Duration::seconds(4)),
                    "finishedAt": rfc3339(now - chrono::Duration::minutes(12)),
                    "containerID": container_id(seed ^ 0xa9),
                }},
                "state": {"waiting": {"reason": f.reason(), "message": f.message(&image)}},
            }),
            false,
        ),
        Some(f) => (
            "Pending",
            json!({
                "name": "app",
                "image": image,
                "imageID": "",
                "ready": false,
                "started": false,
                "restartCount": 0,
                "lastState": {},
                "state": {"waiting": {"reason": f.reason(), "message": f.message(&image)}},
            }),
            false,
        ),
    };
    let not_ready = (!ready).then(|| "containers with unready status: [app]".to_string());
    let reason = (!ready).then_some("ContainersNotReady");
    let pod_ip = format!("10.244.{}.{}", (p.global / 250) % 256, p.global % 250 + 2);
    json!({
        "status": {
            "phase": phase,
            "conditions": [
                cond("Initialized", true, None, None),
                cond("Ready", ready, reason, not_ready.clone()),
                cond("ContainersReady", ready, reason, not_ready),
                cond("PodScheduled", true, None, None),
            ],
            "hostIP": node_ip(&p.node),
            "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}],
            "startTime": rfc3339(started),
            "containerStatuses": [app, proxy],
        }
    })
}

/// Salts of the names of a failing pod's `Failed` and `BackOff` events.
const FAILED_SALT: u64 = 0xfa1;
const BACKOFF_SALT: u64 = 0xbac;

fn event_name(p: &PodPlan, salt: u64) -> String {
    format!("{}.{}", p.name, hex_digest(p.global as u64 ^ salt, 8))
}

/// The names [`pod_events`] gives a pod's events (were it failing).
pub fn event_names(p: &PodPlan) -> [String; 2] {
    [event_name(p, FAILED_SALT), event_name(p, BACKOFF_SALT)]
}

/// The kubelet's Warning events for a failing pod: `Failed` (the pull
/// error, renewed at every attempt) and `BackOff` (renewed while it waits).
pub fn pod_events(ns: &str, p: &PodPlan, uid: &str) -> Vec<Value> {
    let Some(f) = p.failure else {
        return Vec::new();
    };
    let now = chrono::Utc::now();
    let image = app_image(p.app, p.failure);
    let first = now
        - chrono::Duration::minutes(if p.restarted {
            12
        } else {
            30 + (p.global % 600) as i64
        });
    let last = now - chrono::Duration::seconds((p.global % 50) as i64);
    let pull_error = match f {
        // The BackOff status hides the error; the Failed event keeps it.
        Failure::BackOff => Failure::NotFound.message(&image),
        _ => f.message(&image),
    };
    let event = |reason: &str, message: String, count: usize, salt: u64| {
        json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": event_name(p, salt),
                "namespace": ns,
            },
            "involvedObject": {
                "apiVersion": "v1", "kind": "Pod", "namespace": ns, "name": p.name, "uid": uid,
                "fieldPath": "spec.containers{app}",
            },
            "reason": reason,
            "message": message,
            "source": {"component": "kubelet", "host": p.node},
            "firstTimestamp": rfc3339(first),
            "lastTimestamp": rfc3339(last),
            "count": count,
            "type": "Warning",
            "reportingComponent": "kubelet",
            "reportingInstance": p.node,
        })
    };
    vec![
        event(
            "Failed",
            format!("Failed to pull image \"{image}\": {pull_error}"),
            6 + p.global % 5,
            FAILED_SALT,
        ),
        event(
            "BackOff",
            format!("Back-off pulling image \"{image}\""),
            40 + p.global % 90,
            BACKOFF_SALT,
        ),
    ]
}

/// Whether an existing pod's spec is what [`pod_object`] makes for `p`: the
/// `app` container's image (a failing pod's tag was never pushed) and pull
/// policy (`Always` for a failing pod that ran before; immutable on a pod).
fn spec_as_planned(pod: &Pod, p: &PodPlan) -> bool {
    let Some(app) = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.iter().find(|c| c.name == "app"))
    else {
        return false;
    };
    let policy = if p.restarted {
        "Always"
    } else {
        "IfNotPresent"
    };
    app.image.as_deref() == Some(app_image(p.app, p.failure).as_str())
        && app.image_pull_policy.as_deref() == Some(policy)
}

/// Whether an existing pod's status already is what [`pod_status`] writes
/// (phase, readiness and the failing container's reason).
fn status_as_planned(pod: &Pod, p: &PodPlan) -> bool {
    let Some(status) = &pod.status else {
        return false;
    };
    let Some(containers) = &status.container_statuses else {
        return false;
    };
    let ready = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Ready")
        .is_some_and(|c| c.status == "True");
    let waiting = containers
        .iter()
        .find(|c| c.name == "app")
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.waiting.as_ref())
        .and_then(|w| w.reason.clone());
    match p.failure {
        None => ready && waiting.is_none() && status.phase.as_deref() == Some("Running"),
        Some(f) => {
            let phase = if p.restarted { "Running" } else { "Pending" };
            !ready
                && waiting.as_deref() == Some(f.reason())
                && status.phase.as_deref() == Some(phase)
        }
    }
}

/// A ReplicaSet pods point at.
#[derive(Debug, Clone)]
pub struct OwnerRef {
    pub name: String,
    pub uid: String,
}

fn workload_template(app: &str, ns: &str, template_hash: Option<&str>) -> Value {
    let mut labels = pod_labels(app, ns, template_hash.unwrap_or_default());
    if template_hash.is_none() {
        labels
            .as_object_mut()
            .map(|m| m.remove("pod-template-hash"));
    }
    let mut spec = pod_spec(app, ns, &app_image(app, None), 0);
    // Pods the ReplicaSet controller makes are refused at admission.
    spec["priorityClassName"] = json!(NO_SUCH_PRIORITY_CLASS);
    json!({
        "metadata": {"labels": labels, "annotations": pod_annotations(0)},
        "spec": spec,
    })
}

fn deployment_object(ns: &str, app: &str, replicas: usize) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": app,
            "namespace": ns,
            "labels": {"app.kubernetes.io/name": app, BENCH_LABEL: "true"},
        },
        "spec": {
            "replicas": replicas,
            // Paused: the Deployment controller never makes a ReplicaSet.
            "paused": true,
            "selector": {"matchLabels": selector_labels(app, ns)},
            "template": workload_template(app, ns, None),
        }
    })
}

fn replicaset_object(
    ns: &str,
    app: &str,
    hash: &str,
    replicas: usize,
    deployment: &OwnerRef,
) -> Value {
    let mut selector = selector_labels(app, ns);
    selector["pod-template-hash"] = json!(hash);
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": format!("{app}-{hash}"),
            "namespace": ns,
            // The Deployment's selector must match these, or its controller
            // releases the ReplicaSet (removes the ownerReference).
            "labels": pod_labels(app, ns, hash),
            "annotations": {
                "deployment.kubernetes.io/desired-replicas": replicas.to_string(),
                "deployment.kubernetes.io/max-replicas": (replicas + replicas.div_ceil(4)).to_string(),
                "deployment.kubernetes.io/revision": "1",
            },
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "Deployment", "name": deployment.name,
                "uid": deployment.uid, "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": workload_template(app, ns, Some(hash)),
        }
    })
}

fn node_object(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": "m5.4xlarge",
                BENCH_LABEL: "true",
            },
        },
        // Nothing is ever scheduled onto a bench node (bench pods are bound
        // by spec.nodeName): in a lab where other tests' pods are scheduled,
        // a bench node that is Ready for its first 40 s must not take any.
        "spec": {"taints": [{"key": BENCH_LABEL, "value": "true", "effect": "NoSchedule"}]},
    })
}

fn node_status(name: &str) -> Value {
    let now = rfc3339(chrono::Utc::now());
    let cond = |t: &str, status: &str, reason: &str, message: &str| {
        json!({"type": t, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    let resources =
        json!({"cpu": "16", "memory": "64Gi", "pods": "2500", "ephemeral-storage": "200Gi"});
    json!({
        "status": {
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": node_ip(name)},
                {"type": "Hostname", "address": name},
            ],
            "capacity": resources,
            "allocatable": resources,
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": hex_digest(name.len() as u64, 16),
                "systemUUID": hex_digest(name.len() as u64 ^ 1, 16),
                "bootID": hex_digest(name.len() as u64 ^ 2, 16),
                "kernelVersion": "6.1.0-18-amd64",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "containerRuntimeVersion": "containerd://1.7.13",
                "kubeletVersion": "v1.28.9",
                "kubeProxyVersion": "v1.28.9",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }
    })
}

// -------------------------------------------------------------------- io --

fn typed<T: DeserializeOwned>(v: Value, what: &str) -> anyhow::Result<T> {
    serde_json::from_value(v).with_context(|| format!("build {what}"))
}

/// Creates `object`; an existing one (409) counts as success. Returns
/// whether it was created.
async fn create<K>(api: &Api<K>, object: Value, what: &str) -> anyhow::Result<bool>
where
    K: kube::Resource + Clone + DeserializeOwned + serde::Serialize + fmt::Debug,
{
    let object: K = typed(object, what)?;
    match api.create(&PostParams::default(), &object).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e).with_context(|| format!("create {what}")),
    }
}

/// Creates `object` or reads the existing one, and returns its name and uid.
async fn create_or_get<K>(api: &Api<K>, object: Value, what: &str) -> anyhow::Result<OwnerRef>
where
    K: kube::Resource + Clone + DeserializeOwned + serde::Serialize + fmt::Debug,
{
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let typed_object: K = typed(object, what)?;
    let got = match api.create(&PostParams::default(), &typed_object).await {
        Ok(o) => o,
        Err(kube::Error::Api(s)) if s.code == 409 => api
            .get(&name)
            .await
            .with_context(|| format!("read {what}"))?,
        Err(e) => return Err(e).with_context(|| format!("create {what}")),
    };
    let uid = got.meta().uid.clone().unwrap_or_default();
    Ok(OwnerRef { name, uid })
}

fn node_is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

/// Waits until no bench node of `prefix` is Ready (the node lifecycle
/// controller has marked them Unknown), at most `limit`. Returns false on
/// timeout.
async fn wait_nodes_not_ready(
    client: &Client,
    prefix: &str,
    limit: Duration,
) -> anyhow::Result<bool> {
    let ours = node_prefix(prefix);
    let nodes: Api<Node> = Api::all(client.clone());
    let deadline = Instant::now() + limit;
    loop {
        let list = nodes
            .list(&ListParams::default().labels(&format!("{BENCH_LABEL}=true")))
            .await
            .context("list bench nodes")?;
        if !list
            .items
            .iter()
            .filter(|n| {
                n.metadata
                    .name
                    .as_deref()
                    .is_some_and(|m| m.starts_with(&ours))
            })
            .any(node_is_ready)
        {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Creates the bench nodes, namespaces, workloads and pods and writes pod
/// statuses; see the module documentation.
pub async fn populate(client: &Client, opts: &PopulateOptions) -> anyhow::Result<PopulateReport> {
    let started = Instant::now();
    let concurrency = opts.concurrency.max(1);
    let plans = plan(opts);
    let mut report = PopulateReport {
        namespaces: plans.len(),
        pods: plans.iter().map(|n| n.pods.len()).sum(),
        failing: plans
            .iter()
            .flat_map(|n| &n.pods)
            .filter(|p| p.failure.is_some())
            .count(),
        ..PopulateReport::default()
    };
    report.nodes_created = create_nodes(client, &opts.prefix).await?;
    create_namespaces(client, &plans, concurrency).await?;
    let owners = create_owners(client, &plans, concurrency).await?;
    report.replicasets = owners.len();

    let pods_started = Instant::now();
    let existing = list_pods(client, &plans, concurrency).await?;
    let (to_patch, uids) =
        create_pods(client, &plans, &existing, &owners, concurrency, &mut report).await?;
    // Statuses, once the node lifecycle controller is done with the nodes.
    if !to_patch.is_empty() {
        let waited = Instant::now();
        if !wait_nodes_not_ready(client, &opts.prefix, opts.node_wait).await? {
            tracing::warn!(
                "bench nodes still Ready after {:?}; the node lifecycle controller may mark pods NotReady later",
                opts.node_wait
            );
        }
        report.node_wait = waited.elapsed();
    }
    report.statuses_patched = patch_statuses(client, &to_patch, concurrency).await?;
    report.events_created = create_events(client, &plans, &uids, concurrency).await?;
    report.pods_elapsed = pods_started.elapsed().saturating_sub(report.node_wait);
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Nodes: created and marked Ready once; existing ones are left alone.
/// Returns how many were created.
async fn create_nodes(client: &Client, prefix: &str) -> anyhow::Result<usize> {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut created = 0;
    for i in 1..=NODES {
        let name = format!("{}{i}", node_prefix(prefix));
        if create(&nodes, node_object(&name), &format!("Node {name}")).await? {
            nodes
                .patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(node_status(&name)),
                )
                .await
                .with_context(|| format!("write the status of Node {name}"))?;
            created += 1;
        }
    }
    Ok(created)
}

async fn create_namespaces(
    client: &Client,
    plans: &[NamespacePlan],
    concurrency: usize,
) -> anyhow::Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    stream::iter(plans.iter().map(|n| {
        let namespaces = namespaces.clone();
        async move {
            let object = json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": n.name, "labels": {BENCH_LABEL: "true"}},
            });
            create(&namespaces, object, &format!("Namespace {}", n.name)).await
        }
    }))
    .buffer_unordered(concurrency)
    .try_collect::<Vec<_>>()
    .await?;
    Ok(())
}

/// Deployment → ReplicaSet in every OWNED_EVERY-th namespace; the
/// ReplicaSet that owns the pods, by namespace.
async fn create_owners(
    client: &Client,
    plans: &[NamespacePlan],
    concurrency: usize,
) -> anyhow::Result<HashMap<String, OwnerRef>> {
    stream::iter(plans.iter().filter_map(|n| {
        let app = n.owner?;
        let client = client.clone();
        let hash = n
            .pods
            .first()
            .map(|p| p.template_hash.clone())
            .unwrap_or_default();
        let replicas = n.pods.len();
        Some(async move {
            let deployments: Api<Deployment> = Api::namespaced(client.clone(), &n.name);
            let deployment = create_or_get(
                &deployments,
                deployment_object(&n.name, app, replicas),
                &format!("Deployment {}/{app}", n.name),
            )
            .await?;
            let replicasets: Api<ReplicaSet> = Api::namespaced(client, &n.name);
            let rs = create_or_get(
                &replicasets,
                replicaset_object(&n.name, app, &hash, replicas, &deployment),
                &format!("ReplicaSet {}/{app}-{hash}", n.name),
            )
            .await?;
            anyhow::Ok((n.name.clone(), rs))
        })
    }))
    .buffer_unordered(concurrency)
    .try_collect()
    .await
}

/// The pods that exist already, by namespace and name (one list per
/// namespace).
async fn list_pods(
    client: &Client,
    plans: &[NamespacePlan],
    concurrency: usize,
) -> anyhow::Result<HashMap<String, HashMap<String, Pod>>> {
    stream::iter(plans.iter().map(|n| {
        let api: Api<Pod> = Api::namespaced(client.clone(), &n.name);
        async move {
            let list = api
                .list(&ListParams::default())
                .await
                .with_context(|| format!("list pods in {}", n.name))?;
            let by_name = list
                .items
                .into_iter()
                .filter_map(|p| Some((p.metadata.name.clone()?, p)))
                .collect::<HashMap<_, _>>();
            anyhow::Ok((n.name.clone(), by_name))
        }
    }))
    .buffer_unordered(concurrency)
    .try_collect()
    .await
}

/// Pods to write a status for, and every bench pod's uid by
/// (namespace, name).
type PodsMade<'a> = (
    Vec<(&'a NamespacePlan, &'a PodPlan)>,
    HashMap<(String, String), String>,
);

/// Creates the planned pods that do not exist; counts created and existing
/// pods in `report`.
async fn create_pods<'a>(
    client: &Client,
    plans: &'a [NamespacePlan],
    existing: &HashMap<String, HashMap<String, Pod>>,
    owners: &HashMap<String, OwnerRef>,
    concurrency: usize,
    report: &mut PopulateReport,
) -> anyhow::Result<PodsMade<'a>> {
    let mut to_create = Vec::new();
    let mut to_patch = Vec::new();
    let mut to_recreate = Vec::new();
    for n in plans {
        let have = existing.get(&n.name);
        for p in &n.pods {
            match have.and_then(|h| h.get(&p.name)) {
                Some(pod) if spec_as_planned(pod, p) => {
                    report.pods_existing += 1;
                    if !status_as_planned(pod, p) {
                        to_patch.push((n, p));
                    }
                }
                Some(_) => {
                    to_recreate.push((n, p));
                    to_create.push((n, p));
                    to_patch.push((n, p));
                }
                None => {
                    to_create.push((n, p));
                    to_patch.push((n, p));
                }
            }
        }
    }
    // Planned for another failing count: deleted at once (no kubelet would
    // finish a graceful deletion on a bench node), with their events (they
    // name the old uid), and created again below.
    let now = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    stream::iter(to_recreate.iter().map(|&(n, p)| {
        let api: Api<Pod> = Api::namespaced(client.clone(), &n.name);
        let now = now.clone();
        async move {
            match api.delete(&p.name, &now).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                Err(e) => Err(e).with_context(|| format!("delete Pod {}/{}", n.name, p.name)),
            }
        }
    }))
    .buffer_unordered(concurrency)
    .try_collect::<Vec<()>>()
    .await?;
    report.pods_recreated = to_recreate.len();
    // Stale events: of every recreated pod, and of pods planned healthy.
    // One list of Warning events finds the ones that exist.
    let stale: HashSet<(&str, String)> = to_recreate
        .iter()
        .copied()
        .chain(
            plans
                .iter()
                .flat_map(|n| n.pods.iter().map(move |p| (n, p)))
                .filter(|(_, p)| p.failure.is_none()),
        )
        .flat_map(|(n, p)| {
            event_names(p)
                .into_iter()
                .map(move |e| (n.name.as_str(), e))
        })
        .collect();
    let warnings: Api<Event> = Api::all(client.clone());
    let present: Vec<(String, String)> = warnings
        .list(&ListParams::default().fields("type=Warning"))
        .await
        .context("list Warning events")?
        .items
        .into_iter()
        .filter_map(|e| Some((e.metadata.namespace?, e.metadata.name?)))
        .filter(|(ns, name)| stale.contains(&(ns.as_str(), name.clone())))
        .collect();
    let deleted: Vec<bool> = stream::iter(present.into_iter().map(|(ns, name)| {
        let api: Api<Event> = Api::namespaced(client.clone(), &ns);
        async move {
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
                Err(e) => Err(e).with_context(|| format!("delete Event {ns}/{name}")),
            }
        }
    }))
    .buffer_unordered(concurrency)
    .try_collect()
    .await?;
    report.events_deleted = deleted.iter().filter(|d| **d).count();
    let created: Vec<(String, String, Option<String>)> =
        stream::iter(to_create.iter().map(|&(n, p)| {
            let api: Api<Pod> = Api::namespaced(client.clone(), &n.name);
            let object = pod_object(&n.name, p, owners.get(&n.name));
            async move {
                let what = format!("Pod {}/{}", n.name, p.name);
                let pod: Pod = typed(object, &what)?;
                let uid = match api.create(&PostParams::default(), &pod).await {
                    Ok(created) => Some(created.metadata.uid.unwrap_or_default()),
                    Err(kube::Error::Api(s)) if s.code == 409 => None,
                    Err(e) => return Err(e).with_context(|| format!("create {what}")),
                };
                anyhow::Ok((n.name.clone(), p.name.clone(), uid))
            }
        }))
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    report.pods_created = created.iter().filter(|c| c.2.is_some()).count();
    report.pods_existing += created.len() - report.pods_created;
    let mut uids: HashMap<(String, String), String> = existing
        .iter()
        .flat_map(|(ns, pods)| {
            pods.iter().map(|(name, pod)| {
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                ((ns.clone(), name.clone()), uid)
            })
        })
        .collect();
    uids.extend(
        created
            .into_iter()
            .filter_map(|(ns, name, uid)| Some(((ns, name), uid?))),
    );
    Ok((to_patch, uids))
}

/// Writes the planned status of each pod; returns how many.
async fn patch_statuses(
    client: &Client,
    to_patch: &[(&NamespacePlan, &PodPlan)],
    concurrency: usize,
) -> anyhow::Result<usize> {
    let patched: Vec<()> = stream::iter(to_patch.iter().map(|&(n, p)| {
        let api: Api<Pod> = Api::namespaced(client.clone(), &n.name);
        async move {
            api.patch_status(
                &p.name,
                &PatchParams::default(),
                &Patch::Merge(pod_status(p)),
            )
            .await
            .with_context(|| format!("write the status of Pod {}/{}", n.name, p.name))?;
            anyhow::Ok(())
        }
    }))
    .buffer_unordered(concurrency)
    .try_collect()
    .await?;
    Ok(patched.len())
}

/// The kubelet's events for the failing pods (existing ones are kept);
/// returns how many were created.
async fn create_events(
    client: &Client,
    plans: &[NamespacePlan],
    uids: &HashMap<(String, String), String>,
    concurrency: usize,
) -> anyhow::Result<usize> {
    let events: Vec<(String, Value)> = plans
        .iter()
        .flat_map(|n| n.pods.iter().map(move |p| (n, p)))
        .filter(|(_, p)| p.failure.is_some())
        .flat_map(|(n, p)| {
            let uid = uids
                .get(&(n.name.clone(), p.name.clone()))
                .cloned()
                .unwrap_or_default();
            pod_events(&n.name, p, &uid)
                .into_iter()
                .map(|e| (n.name.clone(), e))
                .collect::<Vec<_>>()
        })
        .collect();
    let made: Vec<bool> = stream::iter(events.into_iter().map(|(ns, e)| {
        let api: Api<Event> = Api::namespaced(client.clone(), &ns);
        let what = format!(
            "Event {ns}/{}",
            e["metadata"]["name"].as_str().unwrap_or_default()
        );
        async move { create(&api, e, &what).await }
    }))
    .buffer_unordered(concurrency)
    .try_collect()
    .await?;
    Ok(made.iter().filter(|m| **m).count())
}

/// Deletes the bench namespaces (their pods first, at once: no kubelet
/// would ever finish a graceful deletion on a bench node) and the bench
/// nodes, and waits until the namespaces are gone (at most `limit`).
///
/// With `prefix`, only the bench namespaces and nodes whose names start
/// with it (`{prefix}NNN`, `{prefix}node-N`); without, every bench one.
pub async fn depopulate(client: &Client, prefix: Option<&str>) -> anyhow::Result<DepopulateReport> {
    depopulate_within(client, prefix, Duration::from_secs(600)).await
}

/// [`depopulate`] with a time limit for the namespaces to disappear.
pub async fn depopulate_within(
    client: &Client,
    prefix: Option<&str>,
    limit: Duration,
) -> anyhow::Result<DepopulateReport> {
    let ours = |name: &str| prefix.is_none_or(|p| name.starts_with(p));
    let started = Instant::now();
    let selector = ListParams::default().labels(&format!("{BENCH_LABEL}=true"));
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let names: Vec<String> = namespaces
        .list(&selector)
        .await
        .context("list bench namespaces")?
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .filter(|n| ours(n))
        .collect();
    let now = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    stream::iter(names.iter().map(|ns| {
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let namespaces = namespaces.clone();
        let now = now.clone();
        async move {
            pods.delete_collection(&now, &ListParams::default())
                .await
                .with_context(|| format!("delete the pods of {ns}"))?;
            match namespaces.delete(ns, &DeleteParams::default()).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
                Err(e) => Err(e).with_context(|| format!("delete namespace {ns}")),
            }
        }
    }))
    .buffer_unordered(8)
    .try_collect::<Vec<()>>()
    .await?;

    let nodes: Api<Node> = Api::all(client.clone());
    let node_names: Vec<String> = nodes
        .list(&selector)
        .await
        .context("list bench nodes")?
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .filter(|n| prefix.is_none_or(|p| n.starts_with(&node_prefix(p))))
        .collect();
    for name in &node_names {
        match nodes.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e).with_context(|| format!("delete node {name}")),
        }
    }

    let deadline = Instant::now() + limit;
    loop {
        let left = namespaces
            .list(&selector)
            .await
            .context("list bench namespaces")?
            .items
            .into_iter()
            .filter(|n| n.metadata.name.as_deref().is_some_and(ours))
            .count();
        if left == 0 {
            break;
        }
        if Instant::now() >= deadline {
            anyhow::bail!("{left} bench namespaces still terminating after {limit:?}");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(DepopulateReport {
        namespaces: names.len(),
        nodes: node_names.len(),
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(namespaces: usize, per: usize, failing: usize) -> PopulateOptions {
        PopulateOptions {
            namespaces,
            pods_per_namespace: per,
            failing,
            ..PopulateOptions::default()
        }
    }

    #[test]
    fn failing_count_is_exact_and_spread() {
        let plans = plan(&opts(200, 50, 200));
        let failing: Vec<usize> = plans
            .iter()
            .map(|n| n.pods.iter().filter(|p| p.failure.is_some()).count())
            .collect();
        assert_eq!(failing.iter().sum::<usize>(), 200);
        let with = failing.iter().filter(|c| **c > 0).count();
        assert!(with > 100, "failures spread over {with} namespaces only");
        assert!(failing.iter().all(|c| *c <= 5), "{failing:?}");
        assert_eq!(failing_set(10, 50).len(), 10);
        assert!(failing_set(10, 0).is_empty());
    }

    #[test]
    fn names_are_unique_and_valid() {
        let plans = plan(&opts(200, 50, 200));
        assert_eq!(plans[0].name, "bench-000");
        assert_eq!(plans[199].name, "bench-199");
        for n in &plans {
            let names: HashSet<_> = n.pods.iter().map(|p| &p.name).collect();
            assert_eq!(names.len(), n.pods.len(), "{}", n.name);
            for p in &n.pods {
                assert!(p.name.len() <= 63, "{}", p.name);
                assert!(
                    p.name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                );
            }
        }
        assert_eq!(plans.iter().filter(|n| n.owner.is_some()).count(), 20);
        assert_eq!(plan(&opts(1200, 1, 0))[0].name, "bench-0000");
    }

    #[test]
    fn objects_parse_and_are_realistic() {
        let plans = plan(&opts(20, 50, 20));
        let owner = OwnerRef {
            name: "checkout-abc".into(),
            uid: "00000000-0000-0000-0000-000000000001".into(),
        };
        let p = &plans[0].pods[0];
        let object = pod_object(&plans[0].name, p, Some(&owner));
        let size = serde_json::to_vec(&object).unwrap().len();
        assert!((3000..4200).contains(&size), "pod is {size} bytes");
        let pod: Pod = serde_json::from_value(object).unwrap();
        let tolerations = pod.spec.unwrap().tolerations.unwrap();
        assert!(tolerations.iter().all(|t| t.toleration_seconds.is_none()));
        let failing = plans
            .iter()
            .flat_map(|n| &n.pods)
            .find(|p| p.failure.is_some())
            .unwrap();
        let status = pod_status(failing);
        let mut pod: Pod = serde_json::from_value(pod_object("bench-001", failing, None)).unwrap();
        pod.status = Some(serde_json::from_value(status["status"].clone()).unwrap());
        assert!(status_as_planned(&pod, failing));
        assert!(!status_as_planned(&pod, p) || p.failure.is_some());
        let _: Deployment =
            serde_json::from_value(deployment_object("bench-000", "checkout", 50)).unwrap();
        let _: ReplicaSet = serde_json::from_value(replicaset_object(
            "bench-000",
            "checkout",
            "abc",
            50,
            &owner,
        ))
        .unwrap();
        let _: Node = serde_json::from_value(node_object("bench-node-1")).unwrap();
    }

    #[test]
    fn a_prefix_names_namespaces_and_nodes() {
        let plans = plan(&PopulateOptions {
            prefix: "outage-1-".into(),
            ..opts(6, 4, 4)
        });
        assert_eq!(plans[0].name, "outage-1-000");
        assert_eq!(plans[5].name, "outage-1-005");
        assert!(
            plans
                .iter()
                .flat_map(|n| &n.pods)
                .all(|p| p.node.starts_with("outage-1-node-"))
        );
        assert_eq!(node_ip("outage-1-node-3"), "10.99.0.13");
        assert_eq!(node_ip("bench-node-5"), "10.99.0.15");
        assert_eq!(plan(&opts(2, 1, 0))[0].pods[0].node, "bench-node-1");
    }

    #[test]
    fn another_failing_count_changes_the_spec_of_the_pods_it_flips() {
        let few = plan(&opts(20, 50, 20));
        let many = plan(&opts(20, 50, 500));
        let pairs: Vec<(&PodPlan, &PodPlan)> = few
            .iter()
            .zip(&many)
            .flat_map(|(a, b)| a.pods.iter().zip(&b.pods))
            .collect();
        let pod = |p: &PodPlan| -> Pod {
            serde_json::from_value(pod_object("bench-001", p, None)).unwrap()
        };
        let (a, b) = pairs
            .iter()
            .find(|(a, b)| a.failure.is_none() && b.failure.is_some())
            .unwrap();
        assert!(spec_as_planned(&pod(a), a));
        assert!(!spec_as_planned(&pod(a), b));
        assert!(!spec_as_planned(&pod(b), a));
        let (a, b) = pairs
            .iter()
            .find(|(a, b)| a.failure.is_some() && b.failure.is_some())
            .unwrap();
        assert!(
            spec_as_planned(&pod(a), b),
            "a pod failing at both counts is kept"
        );
        assert_eq!(
            event_names(a)[0],
            pod_events("bench-001", a, "u")[0]["metadata"]["name"]
        );
    }

    #[test]
    fn some_failing_pods_ran_before() {
        let plans = plan(&opts(200, 50, 200));
        let failing: Vec<&PodPlan> = plans
            .iter()
            .flat_map(|n| &n.pods)
            .filter(|p| p.failure.is_some())
            .collect();
        let restarted: Vec<&&PodPlan> = failing.iter().filter(|p| p.restarted).collect();
        assert!((30..80).contains(&restarted.len()), "{}", restarted.len());
        assert!(
            plans
                .iter()
                .flat_map(|n| &n.pods)
                .all(|p| !p.restarted || p.failure.is_some())
        );
        let p = restarted[0];
        let mut pod: Pod = serde_json::from_value(pod_object("bench-001", p, None)).unwrap();
        assert_eq!(
            pod.spec.as_ref().unwrap().containers[0]
                .image_pull_policy
                .as_deref(),
            Some("Always")
        );
        let status = pod_status(p);
        assert_eq!(status["status"]["phase"], "Running");
        pod.status = Some(serde_json::from_value(status["status"].clone()).unwrap());
        assert!(status_as_planned(&pod, p));
        let events = pod_events("bench-001", p, "uid-1");
        assert_eq!(events.len(), 2);
        for e in events {
            let e: Event = serde_json::from_value(e).unwrap();
            assert_eq!(e.type_.as_deref(), Some("Warning"));
            assert_eq!(e.involved_object.name.as_deref(), Some(p.name.as_str()));
        }
        assert!(
            pod_events("bench-001", &plans[0].pods[1], "u").is_empty()
                || plans[0].pods[1].failure.is_some()
        );
    }
}
