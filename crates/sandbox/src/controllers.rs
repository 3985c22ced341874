//! Minimal controllers for the practice sandbox.
//!
//! The embedded cluster needs what kube-controller-manager and
//! kube-scheduler do for the objects the runbook touches. Like the simulated
//! kubelet (and kwok), everything here works only through the Kubernetes API
//! with a [`kube::Client`], so it runs unchanged against a real control plane:
//!
//! - namespace: every Active namespace gets a `default` ServiceAccount;
//! - scheduler: binds pending `default-scheduler` pods to a Ready,
//!   schedulable node matching `nodeSelector`, required node affinity and
//!   taints, fewest pods first; otherwise `PodScheduled=False/Unschedulable`
//!   and a `FailedScheduling` event with the real message;
//! - deployment: ReplicaSets named by `pod-template-hash`, RollingUpdate (with
//!   the cleanup of unhealthy old replicas) and Recreate, proportional
//!   scaling, pause, revision history, status and conditions as `kubectl
//!   rollout status` reads them, `ScalingReplicaSet` events;
//! - replicaset: pods from the template, deletion ranking, status;
//! - job: pods, backoff limit with exponential delay, status and conditions
//!   (CronJobs are left alone);
//! - garbage collector: dependents of vanished owners (background), and the
//!   `foregroundDeletion` / `orphan` finalizers.
//!
//! Each controller is a pure `plan_*` function from a [`Snapshot`] of the
//! watched objects (raw JSON) and a [`Clock`] to a list of [`Action`]s. [`run`]
//! keeps the snapshot current with watch streams, plans after a short
//! debounce (or a slow resync, or when a planner asked to be woken) and
//! executes the actions, writing each answer back into the snapshot so the
//! next round never acts twice on a stale view.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt;
use kube::Client;
use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions,
    PropagationPolicy,
};
use kube::core::{ApiResource, Request};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Map, Value, json};
use tokio::sync::{Notify, watch};

/// Label the deployment controller adds to its ReplicaSets and their pods.
pub const TEMPLATE_HASH_LABEL: &str = "pod-template-hash";
/// Revision annotation on Deployments and their ReplicaSets.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
const REVISION_HISTORY_ANNOTATION: &str = "deployment.kubernetes.io/revision-history";
const DESIRED_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/max-replicas";

const DEBOUNCE: Duration = Duration::from_millis(25);
const RESYNC: Duration = Duration::from_secs(30);
const RETRY: Duration = Duration::from_secs(1);
/// Longest we wait for every watch to list before planning anyway (a kind
/// the server does not serve stays unsynced; nothing is collected for it).
const INITIAL_SYNC: Duration = Duration::from_secs(5);

/// Settings for [`run`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Multiplies the controllers' clocks (progress deadlines,
    /// `minReadySeconds`, job backoff), like the kubelet's: 1.0 is real time.
    pub time_scale: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options { time_scale: 1.0 }
    }
}

// ---------------------------------------------------------------------------
// Kinds, actions, snapshot
// ---------------------------------------------------------------------------

/// The kinds the controllers read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Namespace,
    ServiceAccount,
    Node,
    Pod,
    ReplicaSet,
    Deployment,
    Job,
    CronJob,
    Event,
}

impl Kind {
    /// The kinds watched into the [`Snapshot`].
    pub const WATCHED: [Kind; 8] = [
        Kind::Namespace,
        Kind::ServiceAccount,
        Kind::Node,
        Kind::Pod,
        Kind::ReplicaSet,
        Kind::Deployment,
        Kind::Job,
        Kind::CronJob,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::ServiceAccount => "ServiceAccount",
            Kind::Node => "Node",
            Kind::Pod => "Pod",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::Deployment => "Deployment",
            Kind::Job => "Job",
            Kind::CronJob => "CronJob",
            Kind::Event => "Event",
        }
    }

    pub fn api_version(self) -> &'static str {
        match self {
            Kind::ReplicaSet | Kind::Deployment => "apps/v1",
            Kind::Job | Kind::CronJob => "batch/v1",
            _ => "v1",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Kind::Namespace => "namespaces",
            Kind::ServiceAccount => "serviceaccounts",
            Kind::Node => "nodes",
            Kind::Pod => "pods",
            Kind::ReplicaSet => "replicasets",
            Kind::Deployment => "deployments",
            Kind::Job => "jobs",
            Kind::CronJob => "cronjobs",
            Kind::Event => "events",
        }
    }

    fn namespaced(self) -> bool {
        !matches!(self, Kind::Namespace | Kind::Node)
    }

    /// The kind named by an object's (or owner reference's) `apiVersion` and `kind`.
    pub fn of(api_version: &str, kind: &str) -> Option<Kind> {
        [Kind::Event]
            .into_iter()
            .chain(Kind::WATCHED)
            .find(|k| k.name() == kind && k.api_version() == api_version)
    }

    fn collection_path(self, namespace: &str) -> String {
        let base = match self.api_version() {
            "v1" => "/api/v1".to_string(),
            gv => format!("/apis/{gv}"),
        };
        if self.namespaced() {
            format!("{base}/namespaces/{namespace}/{}", self.plural())
        } else {
            format!("{base}/{}", self.plural())
        }
    }

    fn api_resource(self) -> ApiResource {
        let (group, version) = match self.api_version().split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), self.api_version().to_string()),
        };
        ApiResource {
            group,
            version,
            api_version: self.api_version().to_string(),
            kind: self.name().to_string(),
            plural: self.plural().to_string(),
        }
    }
}

/// A core/v1 Event to record (folded into `count` when it repeats).
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub namespace: String,
    /// The `involvedObject`.
    pub involved: Value,
    /// `Normal` or `Warning`.
    pub kind: &'static str,
    pub reason: String,
    /// `{name}` is replaced by the name of the object a [`Action::Create`] made.
    pub message: String,
    /// `source.component` and `reportingComponent`.
    pub component: &'static str,
}

/// One write a planner asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// POST `body`; `event` is recorded once it exists (`FailedCreate` when a
    /// pod is refused).
    Create {
        kind: Kind,
        namespace: String,
        body: Value,
        event: Option<EventRecord>,
    },
    /// JSON merge patch of the object.
    Patch {
        kind: Kind,
        namespace: String,
        name: String,
        patch: Value,
    },
    /// JSON merge patch of the `status` subresource.
    PatchStatus {
        kind: Kind,
        namespace: String,
        name: String,
        patch: Value,
    },
    /// DELETE with background propagation and a UID precondition.
    Delete {
        kind: Kind,
        namespace: String,
        name: String,
        uid: String,
        event: Option<EventRecord>,
    },
    /// Garbage collection: delete a dependent once a GET confirms that every
    /// owner (kind, name, uid) is gone.
    Collect {
        kind: Kind,
        namespace: String,
        name: String,
        uid: String,
        owners: Vec<(Kind, String, String)>,
    },
    /// POST `pods/NAME/binding`.
    Bind {
        namespace: String,
        pod: String,
        node: String,
        event: Option<EventRecord>,
    },
    Event(EventRecord),
    /// Plan again after this long (progress deadlines, minReadySeconds, backoff).
    RequeueAfter(Duration),
}

/// The controllers' view of the cluster: watched objects as raw JSON.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    objects: HashMap<Kind, BTreeMap<String, Value>>,
    synced: HashSet<Kind>,
    /// Objects we deleted, by key, with the resourceVersion they had: late
    /// watch events for them are not resurrected.
    tombstones: HashMap<(Kind, String), u64>,
}

fn object_key(ns: &str, name: &str) -> String {
    format!("{ns}/{name}")
}

fn resource_version(v: &Value) -> Option<u64> {
    v["metadata"]["resourceVersion"].as_str()?.parse().ok()
}

impl Snapshot {
    /// A snapshot holding these objects (by their `apiVersion`/`kind`), with
    /// every kind counted as listed. For tests and tools; objects of kinds
    /// the controllers do not watch are left out.
    pub fn from_objects(objects: impl IntoIterator<Item = Value>) -> Snapshot {
        let mut s = Snapshot::default();
        for o in objects {
            let Some(kind) = Kind::of(str_at(&o, &["apiVersion"]), str_at(&o, &["kind"])) else {
                continue;
            };
            s.put(kind, o);
        }
        s.synced.extend(Kind::WATCHED);
        s
    }

    /// Inserts or replaces an object regardless of versions.
    pub fn put(&mut self, kind: Kind, v: Value) {
        self.objects
            .entry(kind)
            .or_default()
            .insert(object_key(namespace(&v), name(&v)), v);
    }

    pub fn get(&self, kind: Kind, ns: &str, name: &str) -> Option<&Value> {
        self.objects.get(&kind)?.get(&object_key(ns, name))
    }

    pub fn list(&self, kind: Kind) -> impl Iterator<Item = &Value> {
        self.objects.get(&kind).into_iter().flat_map(|m| m.values())
    }

    pub fn is_synced(&self, kind: Kind) -> bool {
        self.synced.contains(&kind)
    }

    /// A watch event or a write's answer: kept unless we already hold this
    /// version or a newer one.
    fn apply(&mut self, kind: Kind, mut v: Value) {
        strip(&mut v);
        let key = object_key(namespace(&v), name(&v));
        let incoming = resource_version(&v);
        if let (Some(dead), Some(rv)) = (self.tombstones.get(&(kind, key.clone())), incoming)
            && rv <= *dead
        {
            return;
        }
        let map = self.objects.entry(kind).or_default();
        if let (Some(old), Some(rv)) = (map.get(&key).and_then(resource_version), incoming)
            && rv <= old
        {
            return;
        }
        map.insert(key, v);
    }

    fn remove(&mut self, kind: Kind, ns: &str, name: &str) {
        let key = object_key(ns, name);
        self.tombstones.remove(&(kind, key.clone()));
        if let Some(m) = self.objects.get_mut(&kind) {
            m.remove(&key);
        }
    }

    /// We deleted it: forget it until a newer version shows up.
    fn forget(&mut self, kind: Kind, ns: &str, name: &str) {
        let key = object_key(ns, name);
        if let Some(old) = self.objects.get_mut(&kind).and_then(|m| m.remove(&key))
            && let Some(rv) = resource_version(&old)
        {
            self.tombstones.insert((kind, key), rv);
        }
    }

    fn replace_all(&mut self, kind: Kind, objects: BTreeMap<String, Value>) {
        self.objects.insert(kind, objects);
        self.tombstones.retain(|(k, _), _| *k != kind);
        self.synced.insert(kind);
    }

    fn update_local(&mut self, kind: Kind, ns: &str, name: &str, f: impl FnOnce(&mut Value)) {
        if let Some(v) = self
            .objects
            .get_mut(&kind)
            .and_then(|m| m.get_mut(&object_key(ns, name)))
        {
            f(v);
        }
    }
}

/// Drops what the controllers never read, to keep the snapshot small.
fn strip(v: &mut Value) {
    if let Some(m) = v["metadata"].as_object_mut() {
        m.remove("managedFields");
    }
    if let Some(a) = v["metadata"]["annotations"].as_object_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// Now and the time scale, for the planners.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub now: DateTime<Utc>,
    pub time_scale: f64,
}

impl Clock {
    pub fn new(now: DateTime<Utc>, time_scale: f64) -> Clock {
        Clock { now, time_scale }
    }

    /// `secs` of cluster time, in real time.
    fn scaled(&self, secs: f64) -> chrono::Duration {
        chrono::Duration::milliseconds((secs * self.time_scale * 1000.0).round() as i64)
    }

    fn stamp(&self) -> String {
        rfc3339(self.now)
    }

    /// A requeue for when `at` is reached (at least 50 ms from now).
    fn wake_at(&self, at: DateTime<Utc>) -> Action {
        let ms = (at - self.now).num_milliseconds().max(50) as u64;
        Action::RequeueAfter(Duration::from_millis(ms))
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

// ---------------------------------------------------------------------------
// JSON accessors
// ---------------------------------------------------------------------------

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .fold(v, |v, p| &v[*p])
        .as_str()
        .unwrap_or_default()
}

fn name(v: &Value) -> &str {
    str_at(v, &["metadata", "name"])
}

fn namespace(v: &Value) -> &str {
    str_at(v, &["metadata", "namespace"])
}

fn uid(v: &Value) -> &str {
    str_at(v, &["metadata", "uid"])
}

fn deleting(v: &Value) -> bool {
    !v["metadata"]["deletionTimestamp"].is_null()
}

fn time_of(v: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn created(v: &Value) -> Option<DateTime<Utc>> {
    time_of(&v["metadata"]["creationTimestamp"])
}

fn int(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

fn int32(v: &Value, default: i32) -> i32 {
    int(v).map_or(default, |n| n as i32)
}

fn annotation<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v["metadata"]["annotations"][key].as_str()
}

fn labels_of(v: &Value) -> Map<String, Value> {
    v["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default()
}

/// The UID of the object's controller (the owner reference with `controller: true`).
fn controller_uid(v: &Value) -> Option<&str> {
    v["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"].as_bool() == Some(true))
        .and_then(|r| r["uid"].as_str())
}

fn owner_reference(kind: Kind, owner: &Value) -> Value {
    json!({
        "apiVersion": kind.api_version(), "kind": kind.name(),
        "name": name(owner), "uid": uid(owner),
        "controller": true, "blockOwnerDeletion": true,
    })
}

fn involved(kind: Kind, v: &Value) -> Value {
    let mut o = json!({
        "kind": kind.name(), "apiVersion": kind.api_version(),
        "name": name(v), "uid": uid(v),
    });
    if kind.namespaced() {
        o["namespace"] = json!(namespace(v));
    }
    if let Some(rv) = v["metadata"]["resourceVersion"].as_str() {
        o["resourceVersion"] = json!(rv);
    }
    o
}

fn event(
    kind: Kind,
    obj: &Value,
    type_: &'static str,
    reason: &str,
    message: String,
    component: &'static str,
) -> EventRecord {
    EventRecord {
        namespace: namespace(obj).to_string(),
        involved: involved(kind, obj),
        kind: type_,
        reason: reason.to_string(),
        message,
        component,
    }
}

fn condition<'a>(conditions: &'a Value, type_: &str) -> Option<&'a Value> {
    conditions
        .as_array()?
        .iter()
        .find(|c| c["type"].as_str() == Some(type_))
}

fn condition_true(conditions: &Value, type_: &str) -> bool {
    condition(conditions, type_).is_some_and(|c| c["status"].as_str() == Some("True"))
}

/// Pods by the UID of their controller.
fn pods_by_controller(snap: &Snapshot) -> HashMap<&str, Vec<&Value>> {
    let mut map: HashMap<&str, Vec<&Value>> = HashMap::new();
    for p in snap.list(Kind::Pod) {
        if let Some(u) = controller_uid(p) {
            map.entry(u).or_default().push(p);
        }
    }
    map
}

fn pod_phase(p: &Value) -> &str {
    str_at(p, &["status", "phase"])
}

fn pod_terminal(p: &Value) -> bool {
    matches!(pod_phase(p), "Succeeded" | "Failed")
}

/// Counts toward a controller's replicas: not terminal, not being deleted.
fn pod_active(p: &Value) -> bool {
    !deleting(p) && !pod_terminal(p)
}

fn pod_ready(p: &Value) -> bool {
    condition_true(&p["status"]["conditions"], "Ready")
}

/// Ready for at least `min_ready` seconds (scaled); otherwise when it will be.
fn pod_available(p: &Value, min_ready: i64, clock: &Clock) -> Result<(), Option<DateTime<Utc>>> {
    if !pod_ready(p) {
        return Err(None);
    }
    if min_ready <= 0 {
        return Ok(());
    }
    let since = condition(&p["status"]["conditions"], "Ready")
        .and_then(|c| time_of(&c["lastTransitionTime"]))
        .unwrap_or(clock.now);
    let at = since + clock.scaled(min_ready as f64);
    if at <= clock.now {
        Ok(())
    } else {
        Err(Some(at))
    }
}

fn restarts(p: &Value) -> i64 {
    p["status"]["containerStatuses"].as_array().map_or(0, |l| {
        l.iter().filter_map(|c| c["restartCount"].as_i64()).sum()
    })
}

/// A pod object from a template, owned by `owner`.
fn pod_from_template(
    template: &Value,
    owner_kind: Kind,
    owner: &Value,
    extra_labels: &[(&str, &str)],
) -> Value {
    let mut meta = json!({
        "generateName": format!("{}-", name(owner)),
        "namespace": namespace(owner),
        "ownerReferences": [owner_reference(owner_kind, owner)],
    });
    let mut labels = template["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (k, v) in extra_labels {
        labels.insert((*k).to_string(), json!(v));
    }
    if !labels.is_empty() {
        meta["labels"] = Value::Object(labels);
    }
    for field in ["annotations", "finalizers"] {
        let v = &template["metadata"][field];
        if !v.is_null() {
            meta[field] = v.clone();
        }
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"]})
}

/// A JSON merge patch of `fields` of a status: zero and empty values are
/// removed (`omitempty`), so the patch carries `null` for them.
fn status_patch(status: &Map<String, Value>, fields: &[&str]) -> Value {
    let mut out = Map::new();
    for f in fields {
        let v = status.get(*f).cloned().unwrap_or(Value::Null);
        out.insert((*f).to_string(), if is_empty(&v) { Value::Null } else { v });
    }
    json!({"status": out})
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Number(n) => n.as_i64() == Some(0),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::String(s) => s.is_empty(),
        Value::Bool(_) => false,
    }
}

/// Whether `current` status differs from `desired` in any of `fields`
/// (missing, null and zero are the same).
fn status_differs(current: &Value, desired: &Map<String, Value>, fields: &[&str]) -> bool {
    fields.iter().any(|f| {
        let a = &current[*f];
        let b = desired.get(*f).unwrap_or(&Value::Null);
        !(a == b || (is_empty(a) && is_empty(b)))
    })
}

// ---------------------------------------------------------------------------
// Namespace controller
// ---------------------------------------------------------------------------

/// Every Active namespace gets a `default` ServiceAccount (no token secret,
/// as since 1.24).
pub fn plan_namespaces(snap: &Snapshot) -> Vec<Action> {
    if !snap.is_synced(Kind::ServiceAccount) {
        return Vec::new();
    }
    snap.list(Kind::Namespace)
        .filter(|ns| !deleting(ns))
        .filter(|ns| matches!(str_at(ns, &["status", "phase"]), "" | "Active"))
        .filter(|ns| {
            snap.get(Kind::ServiceAccount, name(ns), "default")
                .is_none()
        })
        .map(|ns| Action::Create {
            kind: Kind::ServiceAccount,
            namespace: name(ns).to_string(),
            body: json!({
                "apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "default", "namespace": name(ns)},
            }),
            event: None,
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Scheduler
// ---------------------------------------------------------------------------

const SCHEDULER: &str = "default-scheduler";

fn node_ready(node: &Value) -> bool {
    condition_true(&node["status"]["conditions"], "Ready")
}

/// Whether one of `tolerations` tolerates `taint` (the API's rules).
fn tolerates(tolerations: &Value, taint: &Value) -> bool {
    tolerations.as_array().is_some_and(|list| {
        list.iter().any(|t| {
            let effect = str_at(t, &["effect"]);
            if !effect.is_empty() && effect != str_at(taint, &["effect"]) {
                return false;
            }
            let key = str_at(t, &["key"]);
            let op = str_at(t, &["operator"]);
            if key.is_empty() {
                return op == "Exists";
            }
            if key != str_at(taint, &["key"]) {
                return false;
            }
            match op {
                "Exists" => true,
                "" | "Equal" => str_at(t, &["value"]) == str_at(taint, &["value"]),
                _ => false,
            }
        })
    })
}

fn requirement_matches(value: Option<&str>, operator: &str, values: &[&str]) -> bool {
    match operator {
        "In" => value.is_some_and(|v| values.contains(&v)),
        "NotIn" => value.is_none_or(|v| !values.contains(&v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

fn term_matches(term: &Value, node: &Value) -> bool {
    let exprs = term["matchExpressions"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    let fields = term["matchFields"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = &node["metadata"]["labels"];
    let check = |e: &Value, value: Option<&str>| {
        let values: Vec<&str> = e["values"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        requirement_matches(value, str_at(e, &["operator"]), &values)
    };
    exprs
        .iter()
        .all(|e| check(e, labels[str_at(e, &["key"])].as_str()))
        && fields.iter().all(|e| {
            let value = (str_at(e, &["key"]) == "metadata.name").then(|| name(node));
            check(e, value)
        })
}

/// `nodeSelector` and required node affinity.
fn node_affinity_matches(pod: &Value, node: &Value) -> bool {
    let labels = &node["metadata"]["labels"];
    if let Some(sel) = pod["spec"]["nodeSelector"].as_object()
        && !sel.iter().all(|(k, v)| labels[k] == *v)
    {
        return false;
    }
    let required =
        &pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"];
    match required["nodeSelectorTerms"].as_array() {
        None => true,
        Some(terms) => terms.iter().any(|t| term_matches(t, node)),
    }
}

/// The scheduler's filters, in the default profile's order; the first
/// failing one's reason.
fn node_fit(pod: &Value, node: &Value) -> Result<(), String> {
    let tolerations = &pod["spec"]["tolerations"];
    if node["spec"]["unschedulable"].as_bool() == Some(true)
        && !tolerates(
            tolerations,
            &json!({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}),
        )
    {
        return Err("node(s) were unschedulable".into());
    }
    // The node lifecycle controller taints nodes that are not Ready.
    let mut taints = Vec::new();
    if !node_ready(node) {
        taints.push(json!({"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}));
    }
    taints.extend(
        node["spec"]["taints"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    );
    for t in &taints {
        if matches!(str_at(t, &["effect"]), "NoSchedule" | "NoExecute")
            && !tolerates(tolerations, t)
        {
            return Err(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                str_at(t, &["key"]),
                str_at(t, &["value"])
            ));
        }
    }
    if !node_affinity_matches(pod, node) {
        return Err("node(s) didn't match Pod's node affinity/selector".into());
    }
    Ok(())
}

/// The scheduler's `FitError` message.
pub fn unschedulable_message(nodes: usize, reasons: &BTreeMap<String, usize>) -> String {
    if nodes == 0 {
        return "no nodes available to schedule pods".into();
    }
    let mut parts: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
    parts.sort();
    format!("0/{nodes} nodes are available: {}.", parts.join(", "))
}

/// Binds pending pods, spreading by fewest pods per node; marks the rest
/// Unschedulable. Re-evaluated every round, so node changes retry them.
pub fn plan_scheduler(snap: &Snapshot, clock: &Clock) -> Vec<Action> {
    let mut out = Vec::new();
    let nodes: Vec<&Value> = snap.list(Kind::Node).collect();
    let mut load: HashMap<&str, usize> = HashMap::new();
    let mut pending = Vec::new();
    for p in snap.list(Kind::Pod) {
        let node = str_at(p, &["spec", "nodeName"]);
        if !node.is_empty() {
            if !pod_terminal(p) {
                *load.entry(node).or_default() += 1;
            }
            continue;
        }
        let scheduler = str_at(p, &["spec", "schedulerName"]);
        let gated = p["spec"]["schedulingGates"]
            .as_array()
            .is_some_and(|g| !g.is_empty());
        if (scheduler.is_empty() || scheduler == SCHEDULER)
            && !gated
            && !deleting(p)
            && !pod_terminal(p)
        {
            pending.push(p);
        }
    }
    pending.sort_by_key(|p| {
        (
            Reverse(int(&p["spec"]["priority"]).unwrap_or(0)),
            created(p),
            namespace(p).to_string(),
            name(p).to_string(),
        )
    });
    for pod in pending {
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        let mut best: Option<(usize, &str)> = None;
        for node in &nodes {
            match node_fit(pod, node) {
                Ok(()) => {
                    let candidate = (load.get(name(node)).copied().unwrap_or(0), name(node));
                    if best.is_none_or(|b| candidate < b) {
                        best = Some(candidate);
                    }
                }
                Err(r) => *reasons.entry(r).or_default() += 1,
            }
        }
        if let Some((_, node)) = best {
            *load.entry(node).or_default() += 1;
            let msg = format!(
                "Successfully assigned {}/{} to {node}",
                namespace(pod),
                name(pod)
            );
            out.push(Action::Bind {
                namespace: namespace(pod).to_string(),
                pod: name(pod).to_string(),
                node: node.to_string(),
                event: Some(event(Kind::Pod, pod, "Normal", "Scheduled", msg, SCHEDULER)),
            });
            continue;
        }
        let msg = unschedulable_message(nodes.len(), &reasons);
        let conditions = &pod["status"]["conditions"];
        let current = condition(conditions, "PodScheduled");
        if current.is_some_and(|c| {
            str_at(c, &["status"]) == "False"
                && str_at(c, &["reason"]) == "Unschedulable"
                && str_at(c, &["message"]) == msg
        }) {
            continue;
        }
        let since = current
            .filter(|c| str_at(c, &["status"]) == "False")
            .map_or_else(|| json!(clock.stamp()), |c| c["lastTransitionTime"].clone());
        let mut list: Vec<Value> = conditions
            .as_array()
            .map(|l| {
                l.iter()
                    .filter(|c| str_at(c, &["type"]) != "PodScheduled")
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        list.push(json!({
            "type": "PodScheduled", "status": "False", "lastProbeTime": null,
            "lastTransitionTime": since, "reason": "Unschedulable", "message": msg,
        }));
        let mut status = json!({"conditions": list});
        if pod_phase(pod).is_empty() {
            status["phase"] = json!("Pending");
        }
        out.push(Action::PatchStatus {
            kind: Kind::Pod,
            namespace: namespace(pod).to_string(),
            name: name(pod).to_string(),
            patch: json!({ "status": status }),
        });
        out.push(Action::Event(event(
            Kind::Pod,
            pod,
            "Warning",
            "FailedScheduling",
            msg,
            SCHEDULER,
        )));
    }
    out
}

// ---------------------------------------------------------------------------
// ReplicaSet controller
// ---------------------------------------------------------------------------

const RS_CONTROLLER: &str = "replicaset-controller";
const RS_STATUS_FIELDS: &[&str] = &[
    "replicas",
    "fullyLabeledReplicas",
    "readyReplicas",
    "availableReplicas",
    "observedGeneration",
];

/// Deletion order: unscheduled, pending, not ready, most restarts, newest first.
fn deletion_rank(p: &Value) -> impl Ord {
    let phase = match pod_phase(p) {
        "Pending" | "" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 3,
    };
    (
        !str_at(p, &["spec", "nodeName"]).is_empty(),
        phase,
        pod_ready(p),
        Reverse(restarts(p)),
        Reverse(created(p)),
        Reverse(name(p).to_string()),
    )
}

/// Creates and deletes pods toward `spec.replicas`, and writes the status.
pub fn plan_replicasets(snap: &Snapshot, clock: &Clock) -> Vec<Action> {
    let by_owner = pods_by_controller(snap);
    let mut out = Vec::new();
    for rs in snap.list(Kind::ReplicaSet) {
        let pods: Vec<&Value> = by_owner
            .get(uid(rs))
            .map(|l| l.iter().copied().filter(|p| pod_active(p)).collect())
            .unwrap_or_default();
        let replicas = int32(&rs["spec"]["replicas"], 1).max(0) as usize;
        let min_ready = int(&rs["spec"]["minReadySeconds"]).unwrap_or(0);
        let template = &rs["spec"]["template"];
        let template_labels = template["metadata"]["labels"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let mut ready = 0;
        let mut available = 0;
        let mut fully_labeled = 0;
        let mut wake: Option<DateTime<Utc>> = None;
        for p in &pods {
            let labels = labels_of(p);
            if template_labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
            {
                fully_labeled += 1;
            }
            if pod_ready(p) {
                ready += 1;
            }
            match pod_available(p, min_ready, clock) {
                Ok(()) => available += 1,
                Err(Some(at)) => wake = Some(wake.map_or(at, |w| w.min(at))),
                Err(None) => {}
            }
        }
        let mut status = Map::new();
        status.insert("replicas".into(), json!(pods.len()));
        status.insert("fullyLabeledReplicas".into(), json!(fully_labeled));
        status.insert("readyReplicas".into(), json!(ready));
        status.insert("availableReplicas".into(), json!(available));
        status.insert(
            "observedGeneration".into(),
            json!(int(&rs["metadata"]["generation"]).unwrap_or(0)),
        );
        if status_differs(&rs["status"], &status, RS_STATUS_FIELDS) {
            let mut patch = status_patch(&status, RS_STATUS_FIELDS);
            patch["status"]["replicas"] = json!(pods.len());
            out.push(Action::PatchStatus {
                kind: Kind::ReplicaSet,
                namespace: namespace(rs).to_string(),
                name: name(rs).to_string(),
                patch,
            });
        }
        if let Some(at) = wake {
            out.push(clock.wake_at(at));
        }
        if deleting(rs) {
            continue;
        }
        if pods.len() < replicas {
            for _ in pods.len()..replicas.min(pods.len() + 500) {
                out.push(Action::Create {
                    kind: Kind::Pod,
                    namespace: namespace(rs).to_string(),
                    body: pod_from_template(template, Kind::ReplicaSet, rs, &[]),
                    event: Some(event(
                        Kind::ReplicaSet,
                        rs,
                        "Normal",
                        "SuccessfulCreate",
                        "Created pod: {name}".into(),
                        RS_CONTROLLER,
                    )),
                });
            }
        } else if pods.len() > replicas {
            let mut ranked = pods.clone();
            ranked.sort_by_cached_key(|p| deletion_rank(p));
            for p in ranked.into_iter().take(pods.len() - replicas) {
                out.push(Action::Delete {
                    kind: Kind::Pod,
                    namespace: namespace(p).to_string(),
                    name: name(p).to_string(),
                    uid: uid(p).to_string(),
                    event: Some(event(
                        Kind::ReplicaSet,
                        rs,
                        "Normal",
                        "SuccessfulDelete",
                        format!("Deleted pod: {}", name(p)),
                        RS_CONTROLLER,
                    )),
                });
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Deployment controller
// ---------------------------------------------------------------------------

const DEPLOYMENT_CONTROLLER: &str = "deployment-controller";
const D_STATUS_FIELDS: &[&str] = &[
    "observedGeneration",
    "replicas",
    "updatedReplicas",
    "readyReplicas",
    "availableReplicas",
    "unavailableReplicas",
    "conditions",
    "collisionCount",
];

/// Go's `intstr.GetScaledValueFromIntOrPercent`: an int, or a percent of
/// `total` rounded up or down.
pub fn scaled_int_or_percent(v: &Value, default: &str, total: i32, round_up: bool) -> i32 {
    let v = if v.is_null() { &json!(default) } else { v };
    if let Some(n) = v.as_i64() {
        return n as i32;
    }
    let s = v.as_str().unwrap_or_default();
    match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
        Some(p) => {
            let x = p * i64::from(total);
            (if round_up {
                (x + 99).div_euclid(100)
            } else {
                x.div_euclid(100)
            }) as i32
        }
        None => s.parse().unwrap_or(0),
    }
}

/// Go's `ResolveFenceposts`: (maxSurge, maxUnavailable) for `desired`
/// replicas; both zero becomes maxUnavailable 1.
pub fn resolve_fenceposts(max_surge: &Value, max_unavailable: &Value, desired: i32) -> (i32, i32) {
    let surge = scaled_int_or_percent(max_surge, "25%", desired, true);
    let unavailable = scaled_int_or_percent(max_unavailable, "25%", desired, false);
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

fn fnv32a(bytes: &[u8], mut h: u32) -> u32 {
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(16_777_619);
    }
    h
}

/// Writes `v` as JSON with sorted keys and no nulls, whatever map order
/// serde_json was built with.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().filter(|k| !m[*k].is_null()).collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                canonical(&m[*k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The `pod-template-hash` of a template: FNV-32a of its canonical JSON
/// (and the collision count), rendered as the real controller renders its
/// hash (`rand.SafeEncodeString` of the decimal value).
pub fn pod_template_hash(template: &Value, collision_count: Option<i64>) -> String {
    let mut text = String::new();
    canonical(&normalized_template(template), &mut text);
    let mut h = fnv32a(text.as_bytes(), 2_166_136_261);
    if let Some(c) = collision_count {
        h = fnv32a(&(c as u32).to_le_bytes(), h);
    }
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    h.to_string()
        .bytes()
        .map(|b| ALPHANUMS[b as usize % ALPHANUMS.len()] as char)
        .collect()
}

/// A template without the hash label, nulls and empty maps or lists, so
/// templates compare equal across defaulting and round trips.
fn normalized_template(template: &Value) -> Value {
    fn prune(v: &Value) -> Option<Value> {
        match v {
            Value::Null => None,
            Value::Object(m) => {
                let out: Map<String, Value> = m
                    .iter()
                    .filter_map(|(k, v)| prune(v).map(|v| (k.clone(), v)))
                    .collect();
                (!out.is_empty()).then_some(Value::Object(out))
            }
            Value::Array(a) => (!a.is_empty())
                .then(|| Value::Array(a.iter().map(|x| prune(x).unwrap_or(Value::Null)).collect())),
            other => Some(other.clone()),
        }
    }
    let mut t = template.clone();
    if let Some(l) = t["metadata"]["labels"].as_object_mut() {
        l.remove(TEMPLATE_HASH_LABEL);
    }
    prune(&t).unwrap_or(Value::Null)
}

fn templates_equal(a: &Value, b: &Value) -> bool {
    let (mut x, mut y) = (String::new(), String::new());
    canonical(&normalized_template(a), &mut x);
    canonical(&normalized_template(b), &mut y);
    x == y
}

/// What the deployment controller needs of one of its ReplicaSets (owned, so
/// the planner can scale it locally and carry on, as the real one does).
#[derive(Debug, Clone)]
struct RsView {
    obj: Value,
    name: String,
    replicas: i32,
    status_replicas: i32,
    ready: i32,
    available: i32,
    revision: i64,
    created: Option<DateTime<Utc>>,
}

impl RsView {
    fn new(obj: &Value) -> RsView {
        RsView {
            name: name(obj).to_string(),
            replicas: int32(&obj["spec"]["replicas"], 1),
            status_replicas: int32(&obj["status"]["replicas"], 0),
            ready: int32(&obj["status"]["readyReplicas"], 0),
            available: int32(&obj["status"]["availableReplicas"], 0),
            revision: annotation(obj, REVISION_ANNOTATION)
                .and_then(|r| r.parse().ok())
                .unwrap_or(0),
            created: created(obj),
            obj: obj.clone(),
        }
    }

    fn annotation_int(&self, key: &str) -> Option<i32> {
        annotation(&self.obj, key).and_then(|v| v.parse().ok())
    }
}

fn by_creation(a: &RsView, b: &RsView) -> std::cmp::Ordering {
    (a.created, &a.name).cmp(&(b.created, &b.name))
}

/// The Deployment status as the controller computes it.
#[derive(Debug, Clone, Default, PartialEq)]
struct DStatus {
    observed_generation: i64,
    replicas: i32,
    updated: i32,
    ready: i32,
    available: i32,
    unavailable: i32,
    conditions: Vec<Value>,
    collision_count: Option<i64>,
}

impl DStatus {
    fn parse(s: &Value) -> DStatus {
        DStatus {
            observed_generation: int(&s["observedGeneration"]).unwrap_or(0),
            replicas: int32(&s["replicas"], 0),
            updated: int32(&s["updatedReplicas"], 0),
            ready: int32(&s["readyReplicas"], 0),
            available: int32(&s["availableReplicas"], 0),
            unavailable: int32(&s["unavailableReplicas"], 0),
            conditions: s["conditions"].as_array().cloned().unwrap_or_default(),
            collision_count: int(&s["collisionCount"]),
        }
    }

    fn to_map(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("observedGeneration".into(), json!(self.observed_generation));
        m.insert("replicas".into(), json!(self.replicas));
        m.insert("updatedReplicas".into(), json!(self.updated));
        m.insert("readyReplicas".into(), json!(self.ready));
        m.insert("availableReplicas".into(), json!(self.available));
        m.insert("unavailableReplicas".into(), json!(self.unavailable));
        m.insert("conditions".into(), json!(self.conditions));
        if let Some(c) = self.collision_count {
            m.insert("collisionCount".into(), json!(c));
        }
        m
    }

    fn condition(&self, type_: &str) -> Option<&Value> {
        self.conditions
            .iter()
            .find(|c| c["type"].as_str() == Some(type_))
    }

    fn remove_condition(&mut self, type_: &str) {
        self.conditions
            .retain(|c| c["type"].as_str() != Some(type_));
    }

    /// Go's `SetDeploymentCondition`.
    fn set_condition(&mut self, mut c: Value) {
        let type_ = str_at(&c, &["type"]).to_string();
        if let Some(cur) = self.condition(&type_) {
            if cur["status"] == c["status"] && cur["reason"] == c["reason"] {
                return;
            }
            if cur["status"] == c["status"] {
                c["lastTransitionTime"] = cur["lastTransitionTime"].clone();
            }
        }
        self.remove_condition(&type_);
        self.conditions.push(c);
    }
}

fn dcondition(type_: &str, status: &str, reason: &str, message: &str, clock: &Clock) -> Value {
    json!({
        "type": type_, "status": status,
        "lastUpdateTime": clock.stamp(), "lastTransitionTime": clock.stamp(),
        "reason": reason, "message": message,
    })
}

const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
const TIMED_OUT: &str = "ProgressDeadlineExceeded";

/// One deployment's sync, mirroring `syncDeployment` in simplified form.
struct DeploymentSync<'a> {
    d: &'a Value,
    clock: &'a Clock,
    kind_pods: &'a HashMap<&'a str, Vec<&'a Value>>,
    replicas: i32,
    recreate: bool,
    max_surge: i32,
    max_unavailable: i32,
    progress_deadline: Option<i64>,
    rss: Vec<RsView>,
    new_rs: Option<usize>,
    /// The stored status (what progress is measured against).
    stored: DStatus,
    /// The status being built (conditions set along the way).
    status: DStatus,
    actions: Vec<Action>,
}

impl<'a> DeploymentSync<'a> {
    fn new(
        d: &'a Value,
        owned: Vec<&Value>,
        kind_pods: &'a HashMap<&'a str, Vec<&'a Value>>,
        clock: &'a Clock,
    ) -> Self {
        let spec = &d["spec"];
        let replicas = int32(&spec["replicas"], 1);
        let recreate = str_at(spec, &["strategy", "type"]) == "Recreate";
        let rolling = &spec["strategy"]["rollingUpdate"];
        let (max_surge, max_unavailable) = if recreate {
            (0, 0)
        } else {
            resolve_fenceposts(&rolling["maxSurge"], &rolling["maxUnavailable"], replicas)
        };
        let progress_deadline = match int(&spec["progressDeadlineSeconds"]) {
            None => Some(600),
            Some(s) if s == i64::from(i32::MAX) => None,
            Some(s) => Some(s),
        };
        let stored = DStatus::parse(&d["status"]);
        let mut rss: Vec<RsView> = owned.into_iter().map(RsView::new).collect();
        rss.sort_by(by_creation);
        DeploymentSync {
            d,
            clock,
            kind_pods,
            replicas,
            recreate,
            max_surge,
            max_unavailable,
            progress_deadline,
            rss,
            new_rs: None,
            status: stored.clone(),
            stored,
            actions: Vec::new(),
        }
    }

    fn ns(&self) -> &str {
        namespace(self.d)
    }

    fn name(&self) -> &str {
        name(self.d)
    }

    fn event(&mut self, type_: &'static str, reason: &str, message: String) {
        self.actions.push(Action::Event(event(
            Kind::Deployment,
            self.d,
            type_,
            reason,
            message,
            DEPLOYMENT_CONTROLLER,
        )));
    }

    /// Go's `deploymentutil.MaxUnavailable`.
    fn max_unavailable_for_status(&self) -> i32 {
        if self.recreate || self.replicas == 0 {
            0
        } else {
            self.max_unavailable.min(self.replicas)
        }
    }

    fn old_indices(&self) -> Vec<usize> {
        (0..self.rss.len())
            .filter(|i| Some(*i) != self.new_rs)
            .collect()
    }

    fn sum(&self, idx: &[usize], f: impl Fn(&RsView) -> i32) -> i32 {
        idx.iter().map(|i| f(&self.rss[*i])).sum()
    }

    fn all_indices(&self) -> Vec<usize> {
        (0..self.rss.len()).collect()
    }

    /// Go's `getAllReplicaSetsAndSyncRevision`: finds (or creates) the new
    /// ReplicaSet and keeps revisions in step.
    fn sync_revision(&mut self, create: bool) {
        let template = &self.d["spec"]["template"];
        self.new_rs = self
            .rss
            .iter()
            .position(|rs| templates_equal(&rs.obj["spec"]["template"], template));
        let max_old = self
            .old_indices()
            .iter()
            .map(|i| self.rss[*i].revision)
            .max()
            .unwrap_or(0);
        let new_revision = max_old + 1;
        if let Some(i) = self.new_rs {
            let mut annotations = Map::new();
            let rs = &self.rss[i];
            for (k, v) in copied_annotations(self.d) {
                if rs.obj["metadata"]["annotations"][&k] != v {
                    annotations.insert(k, v);
                }
            }
            if rs.revision < new_revision {
                annotations.insert(REVISION_ANNOTATION.into(), json!(new_revision.to_string()));
                if rs.revision > 0 {
                    let history = match annotation(&rs.obj, REVISION_HISTORY_ANNOTATION) {
                        Some(h) if !h.is_empty() => format!("{h},{}", rs.revision),
                        _ => rs.revision.to_string(),
                    };
                    annotations.insert(REVISION_HISTORY_ANNOTATION.into(), json!(history));
                }
            }
            let min_ready = int(&self.d["spec"]["minReadySeconds"]).unwrap_or(0);
            let min_ready_differs =
                int(&rs.obj["spec"]["minReadySeconds"]).unwrap_or(0) != min_ready;
            if !annotations.is_empty() || min_ready_differs {
                let mut patch = json!({"metadata": {"annotations": annotations}});
                if min_ready_differs {
                    patch["spec"] = json!({"minReadySeconds": min_ready});
                }
                self.actions.push(Action::Patch {
                    kind: Kind::ReplicaSet,
                    namespace: self.ns().to_string(),
                    name: rs.name.clone(),
                    patch,
                });
                if rs.revision < new_revision {
                    self.rss[i].revision = new_revision;
                }
            }
            let revision = self.rss[i].revision.to_string();
            self.set_deployment_revision(&revision);
            if self.progress_deadline.is_some() && self.status.condition("Progressing").is_none() {
                let msg = format!("Found new replica set \"{}\"", self.rss[i].name);
                let c = dcondition(
                    "Progressing",
                    "True",
                    "FoundNewReplicaSet",
                    &msg,
                    self.clock,
                );
                self.status.set_condition(c);
            }
            return;
        }
        if !create {
            return;
        }
        let hash = pod_template_hash(template, self.status.collision_count);
        let rs_name = format!("{}-{hash}", self.name());
        if self.rss.iter().any(|r| r.name == rs_name) {
            // A hash collision with one of ours that has another template.
            self.status.collision_count = Some(self.status.collision_count.unwrap_or(0) + 1);
            return;
        }
        let mut new_template = template.clone();
        new_template["metadata"]["labels"][TEMPLATE_HASH_LABEL] = json!(hash);
        let mut selector = self.d["spec"]["selector"].clone();
        selector["matchLabels"][TEMPLATE_HASH_LABEL] = json!(hash);
        let mut labels = template["metadata"]["labels"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        labels.insert(TEMPLATE_HASH_LABEL.into(), json!(hash));
        let mut annotations: Map<String, Value> = copied_annotations(self.d).into_iter().collect();
        annotations.insert(REVISION_ANNOTATION.into(), json!(new_revision.to_string()));
        annotations.insert(
            DESIRED_REPLICAS_ANNOTATION.into(),
            json!(self.replicas.to_string()),
        );
        annotations.insert(
            MAX_REPLICAS_ANNOTATION.into(),
            json!((self.replicas + self.max_surge).to_string()),
        );
        let all = self.all_indices();
        let replicas = self.new_rs_replicas(&all, 0);
        let body = json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {
                "name": rs_name, "namespace": self.ns(), "labels": labels,
                "annotations": annotations,
                "ownerReferences": [owner_reference(Kind::Deployment, self.d)],
            },
            "spec": {
                "replicas": replicas,
                "minReadySeconds": int(&self.d["spec"]["minReadySeconds"]).unwrap_or(0),
                "selector": selector,
                "template": new_template,
            },
        });
        self.actions.push(Action::Create {
            kind: Kind::ReplicaSet,
            namespace: self.ns().to_string(),
            body: body.clone(),
            event: None,
        });
        if replicas > 0 {
            self.event(
                "Normal",
                "ScalingReplicaSet",
                format!("Scaled up replica set {rs_name} to {replicas}"),
            );
        }
        let mut view = RsView::new(&body);
        view.created = Some(self.clock.now);
        self.rss.push(view);
        self.new_rs = Some(self.rss.len() - 1);
        self.set_deployment_revision(&new_revision.to_string());
        if self.progress_deadline.is_some() {
            let msg = format!("Created new replica set \"{rs_name}\"");
            let c = dcondition(
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                &msg,
                self.clock,
            );
            self.status.set_condition(c);
        }
    }

    fn set_deployment_revision(&mut self, revision: &str) {
        if annotation(self.d, REVISION_ANNOTATION) != Some(revision) {
            self.actions.push(Action::Patch {
                kind: Kind::Deployment,
                namespace: self.ns().to_string(),
                name: self.name().to_string(),
                patch: json!({"metadata": {"annotations": {REVISION_ANNOTATION: revision}}}),
            });
        }
    }

    /// Go's `NewRSNewReplicas`.
    fn new_rs_replicas(&self, all: &[usize], new_current: i32) -> i32 {
        if self.recreate {
            return self.replicas;
        }
        let current = self.sum(all, |r| r.replicas);
        let max_total = self.replicas + self.max_surge;
        if current >= max_total {
            return new_current;
        }
        let up = (max_total - current).min(self.replicas - new_current);
        new_current + up
    }

    /// Go's `scaleReplicaSet`: a new size (and the replica annotations);
    /// true when the size changed.
    fn scale(&mut self, i: usize, to: i32) -> bool {
        let from = self.rss[i].replicas;
        let desired = self.replicas.to_string();
        let max = (self.replicas + self.max_surge).to_string();
        let annotations_stale = annotation(&self.rss[i].obj, DESIRED_REPLICAS_ANNOTATION)
            != Some(desired.as_str())
            || annotation(&self.rss[i].obj, MAX_REPLICAS_ANNOTATION) != Some(max.as_str());
        if from == to && !annotations_stale {
            return false;
        }
        let name = self.rss[i].name.clone();
        self.actions.push(Action::Patch {
            kind: Kind::ReplicaSet,
            namespace: self.ns().to_string(),
            name: name.clone(),
            patch: json!({
                "metadata": {"annotations": {
                    DESIRED_REPLICAS_ANNOTATION: desired, MAX_REPLICAS_ANNOTATION: max,
                }},
                "spec": {"replicas": to},
            }),
        });
        let rs = &mut self.rss[i];
        rs.replicas = to;
        let ann = &mut rs.obj["metadata"]["annotations"];
        if !ann.is_object() {
            *ann = json!({});
        }
        ann[DESIRED_REPLICAS_ANNOTATION] = json!(desired);
        ann[MAX_REPLICAS_ANNOTATION] = json!(max);
        if from == to {
            return false;
        }
        let op = if to > from { "up" } else { "down" };
        self.event(
            "Normal",
            "ScalingReplicaSet",
            format!("Scaled {op} replica set {name} to {to} from {from}"),
        );
        true
    }

    /// Go's `isScalingEvent`.
    fn is_scaling_event(&self) -> bool {
        self.rss.iter().filter(|r| r.replicas > 0).any(|r| {
            r.annotation_int(DESIRED_REPLICAS_ANNOTATION)
                .is_some_and(|d| d != self.replicas)
        })
    }

    /// Go's `DeploymentController.scale`: one active ReplicaSet takes the
    /// whole size; otherwise proportional scaling across active ones.
    fn proportional_scale(&mut self) {
        let mut olds = self.old_indices();
        olds.sort_by(|a, b| by_creation(&self.rss[*b], &self.rss[*a]));
        let mut active: Vec<usize> = olds
            .iter()
            .copied()
            .chain(self.new_rs)
            .filter(|i| self.rss[*i].replicas > 0)
            .collect();
        let target = match active.len() {
            0 => self.new_rs.or(olds.first().copied()),
            1 => Some(active[0]),
            _ => None,
        };
        if let Some(i) = target {
            // Unlike the real controller, stale replica annotations are
            // refreshed even when the size is right, so that a hand-made
            // ReplicaSet cannot leave the Deployment in a scaling event.
            self.scale(i, self.replicas);
            return;
        }
        if let Some(n) = self.new_rs {
            let rs = &self.rss[n];
            if rs.replicas == self.replicas
                && rs.annotation_int(DESIRED_REPLICAS_ANNOTATION) == Some(self.replicas)
                && rs.available == self.replicas
            {
                for i in olds {
                    if self.rss[i].replicas > 0 {
                        self.scale(i, 0);
                    }
                }
                return;
            }
        }
        if self.recreate {
            return;
        }
        let current = self.sum(&active, |r| r.replicas);
        let allowed = if self.replicas > 0 {
            self.replicas + self.max_surge
        } else {
            0
        };
        let to_add = allowed - current;
        if to_add > 0 {
            active.sort_by(|a, b| {
                let (x, y) = (&self.rss[*a], &self.rss[*b]);
                y.replicas.cmp(&x.replicas).then(by_creation(y, x))
            });
        } else if to_add < 0 {
            active.sort_by(|a, b| {
                let (x, y) = (&self.rss[*a], &self.rss[*b]);
                y.replicas.cmp(&x.replicas).then(by_creation(x, y))
            });
        }
        let mut added = 0;
        let mut sizes: Vec<i32> = Vec::new();
        for i in &active {
            let rs = &self.rss[*i];
            if to_add == 0 || rs.replicas == 0 || to_add == added {
                sizes.push(rs.replicas);
                continue;
            }
            let fraction = if self.replicas == 0 {
                -rs.replicas
            } else {
                let before = rs
                    .annotation_int(MAX_REPLICAS_ANNOTATION)
                    .filter(|m| *m != 0)
                    .unwrap_or(self.stored.replicas);
                if before == 0 {
                    0
                } else {
                    let size = f64::from(rs.replicas) * f64::from(allowed) / f64::from(before);
                    size.round() as i32 - rs.replicas
                }
            };
            let left = to_add - added;
            let proportion = if to_add > 0 {
                fraction.min(left)
            } else {
                fraction.max(left)
            };
            sizes.push(rs.replicas + proportion);
            added += proportion;
        }
        if let Some(first) = sizes.first_mut()
            && to_add != 0
        {
            *first = (*first + to_add - added).max(0);
        }
        for (i, size) in active.into_iter().zip(sizes) {
            self.scale(i, size);
        }
    }

    /// Go's `cleanupDeployment`: old, empty ReplicaSets beyond
    /// `revisionHistoryLimit`, oldest revision first.
    fn cleanup(&mut self) {
        let limit = int(&self.d["spec"]["revisionHistoryLimit"])
            .unwrap_or(10)
            .max(0) as usize;
        let mut cleanable: Vec<usize> = self
            .old_indices()
            .into_iter()
            .filter(|i| !deleting(&self.rss[*i].obj))
            .collect();
        if cleanable.len() <= limit {
            return;
        }
        cleanable.sort_by(|a, b| {
            let (x, y) = (&self.rss[*a], &self.rss[*b]);
            x.revision.cmp(&y.revision).then(by_creation(x, y))
        });
        let diff = cleanable.len() - limit;
        for i in cleanable.into_iter().take(diff) {
            let rs = &self.rss[i];
            let generation = int(&rs.obj["metadata"]["generation"]).unwrap_or(0);
            let observed = int(&rs.obj["status"]["observedGeneration"]).unwrap_or(0);
            if rs.status_replicas != 0 || rs.replicas != 0 || generation > observed {
                continue;
            }
            self.actions.push(Action::Delete {
                kind: Kind::ReplicaSet,
                namespace: self.ns().to_string(),
                name: rs.name.clone(),
                uid: uid(&rs.obj).to_string(),
                event: None,
            });
        }
    }

    /// Go's `calculateStatus`.
    fn calculate_status(&mut self) {
        let all = self.all_indices();
        let available = self.sum(&all, |r| r.available);
        let total = self.sum(&all, |r| r.replicas);
        self.status.observed_generation = int(&self.d["metadata"]["generation"]).unwrap_or(0);
        self.status.replicas = self.sum(&all, |r| r.status_replicas);
        self.status.updated = self.new_rs.map_or(0, |i| self.rss[i].status_replicas);
        self.status.ready = self.sum(&all, |r| r.ready);
        self.status.available = available;
        self.status.unavailable = (total - available).max(0);
        let c = if available >= self.replicas - self.max_unavailable_for_status() {
            dcondition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                self.clock,
            )
        } else {
            dcondition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                self.clock,
            )
        };
        self.status.set_condition(c);
    }

    /// Go's `DeploymentComplete` on a status.
    fn complete(&self, s: &DStatus) -> bool {
        s.updated == self.replicas
            && s.replicas == self.replicas
            && s.available == self.replicas
            && s.observed_generation >= int(&self.d["metadata"]["generation"]).unwrap_or(0)
    }

    /// Go's `syncRolloutStatus`: the status plus the Progressing condition.
    fn rollout_status(&mut self) {
        self.calculate_status();
        let Some(deadline) = self.progress_deadline else {
            self.status.remove_condition("Progressing");
            return;
        };
        let current = self.status.condition("Progressing").cloned();
        let complete_deployment = self.status.replicas == self.status.updated
            && current
                .as_ref()
                .is_some_and(|c| str_at(c, &["reason"]) == NEW_RS_AVAILABLE);
        if complete_deployment {
            return;
        }
        let rs_name = self.new_rs.map(|i| self.rss[i].name.clone());
        let subject = |what: &str| match &rs_name {
            Some(n) => format!("ReplicaSet \"{n}\" {what}"),
            None => format!("Deployment \"{}\" {what}", name(self.d)),
        };
        let (s, old) = (&self.status, &self.stored);
        let progressing = s.updated > old.updated
            || (s.replicas - s.updated) < (old.replicas - old.updated)
            || s.ready > old.ready
            || s.available > old.available;
        if self.complete(&self.status) {
            let msg = subject("has successfully progressed.");
            let c = dcondition("Progressing", "True", NEW_RS_AVAILABLE, &msg, self.clock);
            self.status.set_condition(c);
        } else if progressing {
            let msg = subject("is progressing.");
            let mut c = dcondition("Progressing", "True", "ReplicaSetUpdated", &msg, self.clock);
            if let Some(cur) = current {
                if str_at(&cur, &["status"]) == "True" {
                    c["lastTransitionTime"] = cur["lastTransitionTime"].clone();
                }
                self.status.remove_condition("Progressing");
            }
            self.status.set_condition(c);
        } else if let Some(cur) = current
            && !matches!(str_at(&cur, &["reason"]), NEW_RS_AVAILABLE | TIMED_OUT)
            && let Some(from) = time_of(&cur["lastUpdateTime"])
        {
            // Go's `DeploymentTimedOut`, and `requeueStuckDeployment`.
            let at = from + self.clock.scaled(deadline as f64);
            if at < self.clock.now {
                let msg = subject("has timed out progressing.");
                let c = dcondition("Progressing", "False", TIMED_OUT, &msg, self.clock);
                self.status.set_condition(c);
            } else {
                let wake = self.clock.wake_at(at + chrono::Duration::milliseconds(500));
                self.actions.push(wake);
            }
        }
    }

    /// Go's `rolloutRolling`.
    fn rolling(&mut self) {
        self.sync_revision(true);
        let Some(n) = self.new_rs else {
            // A collision: try again with the new count.
            return;
        };
        let all = self.all_indices();
        // reconcileNewReplicaSet
        let new_replicas = self.rss[n].replicas;
        if new_replicas != self.replicas {
            let to = if new_replicas > self.replicas {
                self.replicas
            } else {
                self.new_rs_replicas(&all, new_replicas)
            };
            if self.scale(n, to) {
                return self.rollout_status();
            }
        }
        // reconcileOldReplicaSets
        if self.scale_down_old() {
            return self.rollout_status();
        }
        if self.complete(&self.stored) {
            self.cleanup();
        }
        self.rollout_status();
    }

    /// Go's `reconcileOldReplicaSets` (with `cleanupUnhealthyReplicas` and
    /// `scaleDownOldReplicaSetsForRollingUpdate`).
    fn scale_down_old(&mut self) -> bool {
        let Some(n) = self.new_rs else { return false };
        let mut olds: Vec<usize> = self
            .old_indices()
            .into_iter()
            .filter(|i| self.rss[*i].replicas > 0)
            .collect();
        if olds.is_empty() {
            return false;
        }
        olds.sort_by(|a, b| by_creation(&self.rss[*a], &self.rss[*b]));
        let all = self.all_indices();
        let all_pods = self.sum(&all, |r| r.replicas);
        let min_available = self.replicas - self.max_unavailable_for_status();
        let new_unavailable = self.rss[n].replicas - self.rss[n].available;
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return false;
        }
        // Unhealthy old replicas go first: they cannot make things worse.
        let mut cleaned = 0;
        for &i in &olds {
            if cleaned >= max_scaled_down {
                break;
            }
            let rs = &self.rss[i];
            if rs.replicas == 0 || rs.replicas == rs.available {
                continue;
            }
            let down = (max_scaled_down - cleaned).min(rs.replicas - rs.available);
            let to = rs.replicas - down;
            self.scale(i, to);
            cleaned += down;
        }
        // Then healthy ones, keeping minAvailable.
        let available = self.sum(&all, |r| r.available);
        let mut scaled = 0;
        if available > min_available {
            let total = available - min_available;
            for &i in &olds {
                if scaled >= total {
                    break;
                }
                let r = self.rss[i].replicas;
                if r == 0 {
                    continue;
                }
                let down = r.min(total - scaled);
                self.scale(i, r - down);
                scaled += down;
            }
        }
        cleaned + scaled > 0
    }

    /// Go's `rolloutRecreate`.
    fn recreate(&mut self) {
        self.sync_revision(false);
        let olds = self.old_indices();
        let mut scaled = false;
        for i in olds.iter().copied() {
            if self.rss[i].replicas > 0 {
                scaled |= self.scale(i, 0);
            }
        }
        if scaled {
            return self.rollout_status();
        }
        let old_running = self.sum(&olds, |r| r.status_replicas) > 0
            || olds.iter().any(|i| {
                self.kind_pods
                    .get(uid(&self.rss[*i].obj))
                    .is_some_and(|pods| pods.iter().any(|p| !pod_terminal(p)))
            });
        if old_running {
            return self.rollout_status();
        }
        if self.new_rs.is_none() {
            self.sync_revision(true);
        }
        if let Some(n) = self.new_rs {
            self.scale(n, self.replicas);
        }
        if self.complete(&self.stored) {
            self.cleanup();
        }
        self.rollout_status();
    }

    /// Go's `sync` (paused, or a scaling event).
    fn sync_scaling(&mut self, paused: bool) {
        self.sync_revision(false);
        self.proportional_scale();
        if paused {
            self.cleanup();
        }
        self.calculate_status();
    }

    fn run(mut self) -> Vec<Action> {
        let paused = self.d["spec"]["paused"].as_bool() == Some(true);
        if deleting(self.d) {
            self.sync_revision(false);
            self.calculate_status();
        } else {
            // checkPausedConditions
            if self.progress_deadline.is_some() {
                let reason = self
                    .status
                    .condition("Progressing")
                    .map(|c| str_at(c, &["reason"]).to_string());
                if paused && reason.as_deref() != Some("DeploymentPaused") {
                    let c = dcondition(
                        "Progressing",
                        "Unknown",
                        "DeploymentPaused",
                        "Deployment is paused",
                        self.clock,
                    );
                    self.status.set_condition(c);
                } else if !paused && reason.as_deref() == Some("DeploymentPaused") {
                    let c = dcondition(
                        "Progressing",
                        "Unknown",
                        "DeploymentResumed",
                        "Deployment is resumed",
                        self.clock,
                    );
                    self.status.set_condition(c);
                }
            }
            let scaling = {
                let mut probe = self.clone_light();
                probe.sync_revision(false);
                probe.is_scaling_event()
            };
            if paused || scaling {
                self.sync_scaling(paused);
            } else if self.recreate {
                self.recreate();
            } else {
                self.rolling();
            }
        }
        let desired = self.status.to_map();
        if status_differs(&self.d["status"], &desired, D_STATUS_FIELDS) {
            self.actions.push(Action::PatchStatus {
                kind: Kind::Deployment,
                namespace: self.ns().to_string(),
                name: self.name().to_string(),
                patch: status_patch(&desired, D_STATUS_FIELDS),
            });
        }
        self.actions
    }

    fn clone_light(&self) -> DeploymentSync<'a> {
        DeploymentSync {
            d: self.d,
            clock: self.clock,
            kind_pods: self.kind_pods,
            replicas: self.replicas,
            recreate: self.recreate,
            max_surge: self.max_surge,
            max_unavailable: self.max_unavailable,
            progress_deadline: self.progress_deadline,
            rss: self.rss.clone(),
            new_rs: self.new_rs,
            stored: self.stored.clone(),
            status: self.status.clone(),
            actions: Vec::new(),
        }
    }
}

/// The Deployment's annotations the controller copies to its ReplicaSets.
fn copied_annotations(d: &Value) -> Vec<(String, Value)> {
    const SKIP: &[&str] = &[
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION_ANNOTATION,
        REVISION_HISTORY_ANNOTATION,
        DESIRED_REPLICAS_ANNOTATION,
        MAX_REPLICAS_ANNOTATION,
        "deprecated.deployment.rollback.to",
    ];
    d["metadata"]["annotations"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !SKIP.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Deployments → ReplicaSets: rollouts, scaling, history, status.
pub fn plan_deployments(snap: &Snapshot, clock: &Clock) -> Vec<Action> {
    let pods = pods_by_controller(snap);
    let mut owned: HashMap<&str, Vec<&Value>> = HashMap::new();
    for rs in snap.list(Kind::ReplicaSet) {
        if let Some(u) = controller_uid(rs) {
            owned.entry(u).or_default().push(rs);
        }
    }
    let mut out = Vec::new();
    for d in snap.list(Kind::Deployment) {
        let rss = owned.remove(uid(d)).unwrap_or_default();
        out.extend(DeploymentSync::new(d, rss, &pods, clock).run());
    }
    out
}

// ---------------------------------------------------------------------------
// Job controller
// ---------------------------------------------------------------------------

const JOB_CONTROLLER: &str = "job-controller";
const JOB_STATUS_FIELDS: &[&str] = &[
    "active",
    "ready",
    "succeeded",
    "failed",
    "startTime",
    "completionTime",
    "conditions",
    "uncountedTerminatedPods",
];
const JOB_BACKOFF: f64 = 10.0;
const JOB_BACKOFF_MAX: f64 = 360.0;

fn job_condition(type_: &str, reason: &str, message: &str, clock: &Clock) -> Value {
    json!({
        "type": type_, "status": "True",
        "lastProbeTime": clock.stamp(), "lastTransitionTime": clock.stamp(),
        "reason": reason, "message": message,
    })
}

/// When a failed pod failed: its containers' `finishedAt`, else its last
/// condition change, else its creation.
fn failed_at(p: &Value) -> Option<DateTime<Utc>> {
    let finished = p["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| time_of(&c["state"]["terminated"]["finishedAt"]))
        .max();
    finished
        .or_else(|| {
            p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| time_of(&c["lastTransitionTime"]))
                .max()
        })
        .or_else(|| created(p))
}

/// Jobs → pods: parallelism and completions, backoff limit, status.
/// Finished jobs, and jobs managed by someone else (`spec.managedBy`), are
/// left alone.
pub fn plan_jobs(snap: &Snapshot, clock: &Clock) -> Vec<Action> {
    let by_owner = pods_by_controller(snap);
    let mut out = Vec::new();
    for job in snap.list(Kind::Job) {
        let managed_by = str_at(job, &["spec", "managedBy"]);
        let conditions = &job["status"]["conditions"];
        if (!managed_by.is_empty() && managed_by != "kubernetes.io/job-controller")
            || condition_true(conditions, "Complete")
            || condition_true(conditions, "Failed")
            || deleting(job)
        {
            continue;
        }
        out.extend(plan_job(
            job,
            by_owner.get(uid(job)).map_or(&[][..], Vec::as_slice),
            clock,
        ));
    }
    out
}

fn plan_job(job: &Value, pods: &[&Value], clock: &Clock) -> Vec<Action> {
    let mut out = Vec::new();
    let spec = &job["spec"];
    let ns = namespace(job).to_string();
    let parallelism = int32(&spec["parallelism"], 1).max(0);
    let completions = int(&spec["completions"]).map(|c| c as i32);
    let backoff_limit = int32(&spec["backoffLimit"], 6);
    let suspended = spec["suspend"].as_bool() == Some(true);
    let active: Vec<&Value> = pods.iter().copied().filter(|p| pod_active(p)).collect();
    let ready = active.iter().filter(|p| pod_ready(p)).count() as i32;
    let status = &job["status"];
    let count = |phase: &str| pods.iter().filter(|p| pod_phase(p) == phase).count() as i32;
    let succeeded = count("Succeeded").max(int32(&status["succeeded"], 0));
    let failed_pods: Vec<&Value> = pods
        .iter()
        .copied()
        .filter(|p| pod_phase(p) == "Failed")
        .collect();
    let failed = (failed_pods.len() as i32).max(int32(&status["failed"], 0));
    let mut conditions: Vec<Value> = status["conditions"].as_array().cloned().unwrap_or_default();
    let start = status["startTime"]
        .as_str()
        .map_or_else(|| clock.stamp(), str::to_string);
    let mut completion_time = status["completionTime"].clone();
    let delete_active = |out: &mut Vec<Action>| {
        for p in &active {
            out.push(Action::Delete {
                kind: Kind::Pod,
                namespace: ns.clone(),
                name: name(p).to_string(),
                uid: uid(p).to_string(),
                event: Some(event(
                    Kind::Job,
                    job,
                    "Normal",
                    "SuccessfulDelete",
                    format!("Deleted pod: {}", name(p)),
                    JOB_CONTROLLER,
                )),
            });
        }
    };
    let deadline = int(&spec["activeDeadlineSeconds"])
        .and_then(|s| time_of(&json!(start)).map(|t| t + clock.scaled(s as f64)));
    let complete = match completions {
        Some(c) => succeeded >= c,
        None => succeeded >= 1 && active.is_empty(),
    };
    let mut active_count = active.len() as i32;
    let mut ready_count = ready;
    let mut failure: Option<(&str, &str)> = None;
    if complete {
        conditions.push(job_condition(
            "SuccessCriteriaMet",
            "CompletionsReached",
            "Reached expected number of succeeded pods",
            clock,
        ));
        conditions.push(job_condition(
            "Complete",
            "CompletionsReached",
            "Reached expected number of succeeded pods",
            clock,
        ));
        completion_time = json!(clock.stamp());
        delete_active(&mut out);
        active_count = 0;
        ready_count = 0;
        out.push(Action::Event(event(
            Kind::Job,
            job,
            "Normal",
            "Completed",
            "Job completed".into(),
            JOB_CONTROLLER,
        )));
    } else if failed > backoff_limit {
        failure = Some((
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
        ));
    } else if deadline.is_some_and(|d| d <= clock.now) && !suspended {
        failure = Some((
            "DeadlineExceeded",
            "Job was active longer than specified deadline",
        ));
    } else if suspended {
        if !condition_true(&Value::Array(conditions.clone()), "Suspended") {
            conditions.retain(|c| str_at(c, &["type"]) != "Suspended");
            conditions.push(job_condition(
                "Suspended",
                "JobSuspended",
                "Job suspended",
                clock,
            ));
            out.push(Action::Event(event(
                Kind::Job,
                job,
                "Normal",
                "Suspended",
                "Job suspended".into(),
                JOB_CONTROLLER,
            )));
        }
        delete_active(&mut out);
        active_count = 0;
        ready_count = 0;
    } else {
        if condition_true(&Value::Array(conditions.clone()), "Suspended") {
            conditions.retain(|c| str_at(c, &["type"]) != "Suspended");
            let mut c = job_condition("Suspended", "JobResumed", "Job resumed", clock);
            c["status"] = json!("False");
            conditions.push(c);
            out.push(Action::Event(event(
                Kind::Job,
                job,
                "Normal",
                "Resumed",
                "Job resumed".into(),
                JOB_CONTROLLER,
            )));
        }
        if let Some(d) = deadline {
            out.push(clock.wake_at(d));
        }
        let wanted = match completions {
            Some(c) => parallelism.min((c - succeeded).max(0)),
            None if succeeded == 0 => parallelism,
            None => 0,
        };
        let missing = wanted - active.len() as i32;
        if missing > 0 {
            // Exponential backoff after failures: 10 s doubling, at most 6 min.
            let retry_at = failed_pods
                .iter()
                .filter_map(|p| failed_at(p))
                .max()
                .map(|last| {
                    let exp = (failed_pods.len() as i32 - 1).clamp(0, 16);
                    let delay = (JOB_BACKOFF * 2f64.powi(exp)).min(JOB_BACKOFF_MAX);
                    last + clock.scaled(delay)
                });
            match retry_at {
                Some(at) if at > clock.now => out.push(clock.wake_at(at)),
                _ => {
                    let job_name = name(job);
                    let job_uid = uid(job);
                    let labels = [
                        ("batch.kubernetes.io/controller-uid", job_uid),
                        ("batch.kubernetes.io/job-name", job_name),
                        ("controller-uid", job_uid),
                        ("job-name", job_name),
                    ];
                    for _ in 0..missing {
                        out.push(Action::Create {
                            kind: Kind::Pod,
                            namespace: ns.clone(),
                            body: pod_from_template(&spec["template"], Kind::Job, job, &labels),
                            event: Some(event(
                                Kind::Job,
                                job,
                                "Normal",
                                "SuccessfulCreate",
                                "Created pod: {name}".into(),
                                JOB_CONTROLLER,
                            )),
                        });
                    }
                }
            }
        } else if missing < 0 {
            let mut extra = active.clone();
            extra.sort_by_cached_key(|p| deletion_rank(p));
            for p in extra.into_iter().take((-missing) as usize) {
                out.push(Action::Delete {
                    kind: Kind::Pod,
                    namespace: ns.clone(),
                    name: name(p).to_string(),
                    uid: uid(p).to_string(),
                    event: None,
                });
            }
        }
    }
    if let Some((reason, message)) = failure {
        conditions.push(job_condition("FailureTarget", reason, message, clock));
        conditions.push(job_condition("Failed", reason, message, clock));
        out.push(Action::Event(event(
            Kind::Job,
            job,
            "Warning",
            reason,
            message.into(),
            JOB_CONTROLLER,
        )));
        delete_active(&mut out);
        active_count = 0;
        ready_count = 0;
    }
    let mut desired = Map::new();
    desired.insert("active".into(), json!(active_count));
    desired.insert("ready".into(), json!(ready_count));
    desired.insert("succeeded".into(), json!(succeeded));
    desired.insert("failed".into(), json!(failed));
    if !(suspended && status["startTime"].is_null()) {
        desired.insert("startTime".into(), json!(start));
    }
    desired.insert("completionTime".into(), completion_time);
    desired.insert("conditions".into(), json!(conditions));
    desired.insert("uncountedTerminatedPods".into(), json!({}));
    if status_differs(status, &desired, JOB_STATUS_FIELDS) {
        let mut patch = status_patch(&desired, JOB_STATUS_FIELDS);
        patch["status"]["ready"] = json!(ready_count);
        patch["status"]["uncountedTerminatedPods"] = json!({});
        out.push(Action::PatchStatus {
            kind: Kind::Job,
            namespace: ns,
            name: name(job).to_string(),
            patch,
        });
    }
    out
}

// ---------------------------------------------------------------------------
// Garbage collector
// ---------------------------------------------------------------------------

const OWNER_KINDS: [Kind; 4] = [Kind::Deployment, Kind::ReplicaSet, Kind::Job, Kind::CronJob];
const DEPENDENT_KINDS: [Kind; 3] = [Kind::Pod, Kind::ReplicaSet, Kind::Job];

/// Dependents whose owners are all gone are deleted (background
/// propagation); owners being deleted with the `foregroundDeletion`
/// finalizer lose their dependents first, with `orphan` they let them go.
pub fn plan_gc(snap: &Snapshot) -> Vec<Action> {
    let mut out = Vec::new();
    let mut owners: HashSet<(&str, &str)> = HashSet::new();
    for k in OWNER_KINDS {
        for o in snap.list(k) {
            owners.insert((namespace(o), uid(o)));
        }
    }
    let mut dependents: HashMap<&str, Vec<(Kind, &Value)>> = HashMap::new();
    for k in DEPENDENT_KINDS {
        for obj in snap.list(k) {
            let Some(refs) = obj["metadata"]["ownerReferences"].as_array() else {
                continue;
            };
            if refs.is_empty() {
                continue;
            }
            for r in refs {
                dependents
                    .entry(str_at(r, &["uid"]))
                    .or_default()
                    .push((k, obj));
            }
            if deleting(obj) {
                continue;
            }
            let mut gone = Vec::new();
            for r in refs {
                let kind = Kind::of(str_at(r, &["apiVersion"]), str_at(r, &["kind"]))
                    .filter(|k| OWNER_KINDS.contains(k) && snap.is_synced(*k));
                let Some(kind) = kind else {
                    gone.clear();
                    break;
                };
                if owners.contains(&(namespace(obj), str_at(r, &["uid"]))) {
                    gone.clear();
                    break;
                }
                gone.push((
                    kind,
                    str_at(r, &["name"]).to_string(),
                    str_at(r, &["uid"]).to_string(),
                ));
            }
            if !gone.is_empty() {
                out.push(Action::Collect {
                    kind: k,
                    namespace: namespace(obj).to_string(),
                    name: name(obj).to_string(),
                    uid: uid(obj).to_string(),
                    owners: gone,
                });
            }
        }
    }
    for k in OWNER_KINDS {
        for owner in snap.list(k).filter(|o| deleting(o)) {
            let finalizers: Vec<&str> = owner["metadata"]["finalizers"]
                .as_array()
                .map(|f| f.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mine: Vec<(Kind, &Value)> = dependents.get(uid(owner)).cloned().unwrap_or_default();
            let mut done = Vec::new();
            if finalizers.contains(&"foregroundDeletion") {
                for (dk, dep) in &mine {
                    if !deleting(dep) {
                        out.push(Action::Delete {
                            kind: *dk,
                            namespace: namespace(dep).to_string(),
                            name: name(dep).to_string(),
                            uid: uid(dep).to_string(),
                            event: None,
                        });
                    }
                }
                if mine.is_empty() {
                    done.push("foregroundDeletion");
                }
            }
            if finalizers.contains(&"orphan") {
                for (dk, dep) in &mine {
                    let rest: Vec<&Value> = dep["metadata"]["ownerReferences"]
                        .as_array()
                        .map(|l| {
                            l.iter()
                                .filter(|r| str_at(r, &["uid"]) != uid(owner))
                                .collect()
                        })
                        .unwrap_or_default();
                    out.push(Action::Patch {
                        kind: *dk,
                        namespace: namespace(dep).to_string(),
                        name: name(dep).to_string(),
                        patch: json!({"metadata": {"ownerReferences": rest}}),
                    });
                }
                if mine.is_empty() {
                    done.push("orphan");
                }
            }
            if !done.is_empty() {
                let rest: Vec<&str> = finalizers
                    .into_iter()
                    .filter(|f| !done.contains(f))
                    .collect();
                out.push(Action::Patch {
                    kind: k,
                    namespace: namespace(owner).to_string(),
                    name: name(owner).to_string(),
                    patch: json!({"metadata": {"finalizers": rest}}),
                });
            }
        }
    }
    out
}

/// Every controller's plan for one round.
pub fn plan_all(snap: &Snapshot, clock: &Clock) -> Vec<Action> {
    let mut out = plan_namespaces(snap);
    out.extend(plan_scheduler(snap, clock));
    out.extend(plan_deployments(snap, clock));
    out.extend(plan_replicasets(snap, clock));
    out.extend(plan_jobs(snap, clock));
    out.extend(plan_gc(snap));
    out
}

// ---------------------------------------------------------------------------
// I/O: watches, the loop, the executor
// ---------------------------------------------------------------------------

/// (namespace, involved uid, reason, message).
type EventKey = (String, String, String, String);

struct Shared {
    client: Client,
    snapshot: Mutex<Snapshot>,
    changed: Notify,
    /// Recorded events → (name, count).
    events: Mutex<HashMap<EventKey, (String, i64)>>,
}

/// Runs the controllers until `shutdown` becomes true (or its sender is dropped).
pub async fn run(
    client: Client,
    options: Options,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let shared = Arc::new(Shared {
        client: client.clone(),
        snapshot: Mutex::new(Snapshot::default()),
        changed: Notify::new(),
        events: Mutex::new(HashMap::new()),
    });
    let watches: Vec<_> = Kind::WATCHED
        .into_iter()
        .map(|k| tokio::spawn(watch_kind(shared.clone(), k)))
        .collect();
    let result = control_loop(&shared, &options, &mut shutdown).await;
    for w in watches {
        w.abort();
    }
    result
}

async fn control_loop(
    shared: &Arc<Shared>,
    options: &Options,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let stopped = |s: &watch::Receiver<bool>| *s.borrow();
    // Wait for the first lists (bounded: a kind the server lacks never lists).
    let started = tokio::time::Instant::now();
    loop {
        let synced = {
            let snap = shared.snapshot.lock().expect("snapshot lock");
            Kind::WATCHED.iter().all(|k| snap.is_synced(*k))
        };
        if synced || started.elapsed() >= INITIAL_SYNC || stopped(shutdown) {
            break;
        }
        tokio::select! {
            () = shared.changed.notified() => {}
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
            r = shutdown.changed() => if r.is_err() { return Ok(()) },
        }
    }
    let mut wake: Option<tokio::time::Instant> = None;
    let mut warned: HashSet<String> = HashSet::new();
    loop {
        if stopped(shutdown) {
            return Ok(());
        }
        tokio::time::sleep(DEBOUNCE).await;
        let actions = {
            let snap = shared.snapshot.lock().expect("snapshot lock");
            plan_all(&snap, &Clock::new(Utc::now(), options.time_scale))
        };
        let writes = actions
            .iter()
            .filter(|a| !matches!(a, Action::RequeueAfter(_)))
            .count();
        if writes > 0 {
            tracing::debug!("controllers: {writes} writes");
        }
        let now = tokio::time::Instant::now();
        let mut next = now + RESYNC;
        if let Some(w) = wake.filter(|w| *w > now) {
            next = next.min(w);
        }
        let mut failed = false;
        for action in actions {
            if let Action::RequeueAfter(d) = action {
                next = next.min(now + d);
                continue;
            }
            if let Err(e) = execute(shared, action).await {
                // The same failure again (retried every second) is logged once.
                failed = true;
                let text = format!("{e:#}");
                if warned.insert(text.clone()) {
                    tracing::warn!("controllers: {text}");
                } else {
                    tracing::debug!("controllers: {text}");
                }
                next = next.min(tokio::time::Instant::now() + RETRY);
            }
        }
        if !failed {
            warned.clear();
        }
        wake = Some(next);
        tokio::select! {
            () = shared.changed.notified() => {}
            () = tokio::time::sleep_until(next) => {}
            r = shutdown.changed() => if r.is_err() { return Ok(()) },
        }
    }
}

async fn watch_kind(shared: Arc<Shared>, kind: Kind) {
    let api: Api<DynamicObject> = Api::all_with(shared.client.clone(), &kind.api_resource());
    let mut stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut buffer: Option<BTreeMap<String, Value>> = None;
    let mut failures = 0u32;
    while let Some(event) = stream.next().await {
        let to_value = |o: DynamicObject| -> Option<Value> {
            let mut v = serde_json::to_value(o).ok()?;
            strip(&mut v);
            Some(v)
        };
        match event {
            Ok(watcher::Event::Init) => buffer = Some(BTreeMap::new()),
            Ok(watcher::Event::InitApply(o)) => {
                if let (Some(b), Some(v)) = (buffer.as_mut(), to_value(o)) {
                    b.insert(object_key(namespace(&v), name(&v)), v);
                }
            }
            Ok(watcher::Event::InitDone) => {
                failures = 0;
                let objects = buffer.take().unwrap_or_default();
                shared
                    .snapshot
                    .lock()
                    .expect("snapshot lock")
                    .replace_all(kind, objects);
                shared.changed.notify_one();
            }
            Ok(watcher::Event::Apply(o)) => {
                if let Some(v) = to_value(o) {
                    shared
                        .snapshot
                        .lock()
                        .expect("snapshot lock")
                        .apply(kind, v);
                    shared.changed.notify_one();
                }
            }
            Ok(watcher::Event::Delete(o)) => {
                let (ns, n) = (
                    o.metadata.namespace.clone().unwrap_or_default(),
                    o.metadata.name.clone().unwrap_or_default(),
                );
                shared
                    .snapshot
                    .lock()
                    .expect("snapshot lock")
                    .remove(kind, &ns, &n);
                shared.changed.notify_one();
            }
            Err(e) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!("controllers: watch {}: {e}", kind.plural());
                } else {
                    tracing::debug!("controllers: watch {}: {e}", kind.plural());
                }
            }
        }
    }
}

fn is_status(v: &Value) -> bool {
    v["kind"].as_str() == Some("Status")
}

/// Errors that are part of normal operation: the object is gone, already
/// exists, or its namespace is going away.
fn expected(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => {
            s.code == 404
                || s.code == 409
                || s.message.contains("being terminated")
                || s.message.contains("already assigned")
        }
        _ => false,
    }
}

async fn request(shared: &Shared, req: http::Request<Vec<u8>>) -> Result<Value, kube::Error> {
    shared.client.request::<Value>(req).await
}

async fn execute(shared: &Shared, action: Action) -> anyhow::Result<()> {
    let result = execute_inner(shared, &action).await;
    match result {
        Err(e) if expected(&e) => {
            tracing::debug!("controllers: {action:?}: {e}");
            Ok(())
        }
        Err(e) => Err(anyhow::anyhow!("{}: {e}", describe(&action))),
        Ok(()) => Ok(()),
    }
}

fn describe(a: &Action) -> String {
    match a {
        Action::Create {
            kind,
            namespace,
            body,
            ..
        } => format!(
            "create {} {namespace}/{}",
            kind.name(),
            if name(body).is_empty() {
                str_at(body, &["metadata", "generateName"])
            } else {
                name(body)
            }
        ),
        Action::Patch {
            kind,
            namespace,
            name,
            ..
        } => format!("patch {} {namespace}/{name}", kind.name()),
        Action::PatchStatus {
            kind,
            namespace,
            name,
            ..
        } => {
            format!("update status of {} {namespace}/{name}", kind.name())
        }
        Action::Delete {
            kind,
            namespace,
            name,
            ..
        }
        | Action::Collect {
            kind,
            namespace,
            name,
            ..
        } => {
            format!("delete {} {namespace}/{name}", kind.name())
        }
        Action::Bind {
            namespace,
            pod,
            node,
            ..
        } => format!("bind pod {namespace}/{pod} to {node}"),
        Action::Event(e) => format!("record event {} in {}", e.reason, e.namespace),
        Action::RequeueAfter(_) => "requeue".into(),
    }
}

fn delete_params(uid: &str) -> DeleteParams {
    DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        preconditions: Some(Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    }
}

async fn execute_inner(shared: &Shared, action: &Action) -> Result<(), kube::Error> {
    let pp = PostParams::default();
    let patch_params = PatchParams::default();
    match action {
        Action::Create {
            kind,
            namespace,
            body,
            event,
        } => {
            let req = Request::new(kind.collection_path(namespace))
                .create(
                    &pp,
                    serde_json::to_vec(body).map_err(kube::Error::SerdeError)?,
                )
                .map_err(kube::Error::BuildRequest)?;
            match request(shared, req).await {
                Ok(created) => {
                    let created_name = name(&created).to_string();
                    shared
                        .snapshot
                        .lock()
                        .expect("snapshot lock")
                        .apply(*kind, created);
                    if let Some(e) = event {
                        let mut e = e.clone();
                        e.message = e.message.replace("{name}", &created_name);
                        record(shared, &e).await;
                    }
                    Ok(())
                }
                Err(err) => {
                    if let (Some(e), kube::Error::Api(s), Kind::Pod) = (event, &err, kind)
                        && !s.message.contains("being terminated")
                    {
                        let mut e = e.clone();
                        e.kind = "Warning";
                        e.reason = "FailedCreate".into();
                        e.message = format!("Error creating: {}", s.message);
                        record(shared, &e).await;
                    }
                    Err(err)
                }
            }
        }
        Action::Patch {
            kind,
            namespace,
            name,
            patch,
        } => {
            let req = Request::new(kind.collection_path(namespace))
                .patch(name, &patch_params, &Patch::Merge(patch))
                .map_err(kube::Error::BuildRequest)?;
            let v = request(shared, req).await?;
            shared
                .snapshot
                .lock()
                .expect("snapshot lock")
                .apply(*kind, v);
            Ok(())
        }
        Action::PatchStatus {
            kind,
            namespace,
            name,
            patch,
        } => {
            let req = Request::new(kind.collection_path(namespace))
                .patch_subresource("status", name, &patch_params, &Patch::Merge(patch))
                .map_err(kube::Error::BuildRequest)?;
            let v = request(shared, req).await?;
            shared
                .snapshot
                .lock()
                .expect("snapshot lock")
                .apply(*kind, v);
            Ok(())
        }
        Action::Delete {
            kind,
            namespace,
            name: n,
            uid,
            event,
        } => {
            delete(shared, *kind, namespace, n, uid).await?;
            if let Some(e) = event {
                record(shared, e).await;
            }
            Ok(())
        }
        Action::Collect {
            kind,
            namespace,
            name: n,
            uid,
            owners,
        } => {
            for (okind, oname, ouid) in owners {
                let req = Request::new(okind.collection_path(namespace))
                    .get(oname, &Default::default())
                    .map_err(kube::Error::BuildRequest)?;
                match request(shared, req).await {
                    Ok(o) if self::uid(&o) == ouid => return Ok(()),
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
            tracing::debug!("controllers: collecting {} {namespace}/{n}", kind.name());
            delete(shared, *kind, namespace, n, uid).await
        }
        Action::Bind {
            namespace,
            pod,
            node,
            event,
        } => {
            let body = json!({
                "apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": pod},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            });
            let req = Request::new(Kind::Pod.collection_path(namespace))
                .create_subresource(
                    "binding",
                    pod,
                    &pp,
                    serde_json::to_vec(&body).map_err(kube::Error::SerdeError)?,
                )
                .map_err(kube::Error::BuildRequest)?;
            request(shared, req).await?;
            shared.snapshot.lock().expect("snapshot lock").update_local(
                Kind::Pod,
                namespace,
                pod,
                |p| {
                    p["spec"]["nodeName"] = json!(node);
                },
            );
            if let Some(e) = event {
                record(shared, e).await;
            }
            Ok(())
        }
        Action::Event(e) => {
            record(shared, e).await;
            Ok(())
        }
        Action::RequeueAfter(_) => Ok(()),
    }
}

async fn delete(
    shared: &Shared,
    kind: Kind,
    namespace: &str,
    n: &str,
    uid: &str,
) -> Result<(), kube::Error> {
    let req = Request::new(kind.collection_path(namespace))
        .delete(n, &delete_params(uid))
        .map_err(kube::Error::BuildRequest)?;
    let v = request(shared, req).await?;
    let mut snap = shared.snapshot.lock().expect("snapshot lock");
    if !is_status(&v) && deleting(&v) {
        snap.apply(kind, v);
    } else {
        snap.forget(kind, namespace, n);
    }
    Ok(())
}

/// Records an event, folding a repeat into `count` like the event recorder.
async fn record(shared: &Shared, e: &EventRecord) {
    let key = (
        e.namespace.clone(),
        str_at(&e.involved, &["uid"]).to_string(),
        e.reason.clone(),
        e.message.clone(),
    );
    let now = Utc::now();
    let stamp = rfc3339(now);
    let path = Kind::Event.collection_path(&e.namespace);
    let seen = shared.events.lock().expect("event lock").get(&key).cloned();
    if let Some((event_name, count)) = seen {
        let patch = json!({"count": count + 1, "lastTimestamp": stamp});
        if let Ok(req) =
            Request::new(&path).patch(&event_name, &PatchParams::default(), &Patch::Merge(&patch))
            && request(shared, req).await.is_ok()
        {
            shared
                .events
                .lock()
                .expect("event lock")
                .insert(key, (event_name, count + 1));
            return;
        }
    }
    let event_name = format!(
        "{}.{:x}",
        str_at(&e.involved, &["name"]),
        now.timestamp_nanos_opt().unwrap_or_default()
    );
    let mut body = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": event_name, "namespace": e.namespace},
        "involvedObject": e.involved,
        "reason": e.reason, "message": e.message, "type": e.kind,
        "source": {"component": e.component},
        "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
        "reportingComponent": e.component, "reportingInstance": "",
    });
    if e.component == SCHEDULER {
        // The scheduler writes events.k8s.io events: eventTime and action.
        body["eventTime"] = json!(now.to_rfc3339_opts(SecondsFormat::Micros, true));
        body["action"] = json!(if e.reason == "Scheduled" {
            "Binding"
        } else {
            "Scheduling"
        });
        body["reportingInstance"] = json!("default-scheduler-pullfix-sandbox");
    }
    let Ok(bytes) = serde_json::to_vec(&body) else {
        return;
    };
    let Ok(req) = Request::new(&path).create(&PostParams::default(), bytes) else {
        return;
    };
    match request(shared, req).await {
        Ok(_) => {
            let mut events = shared.events.lock().expect("event lock");
            if events.len() > 4096 {
                events.clear();
            }
            events.insert(key, (event_name, 1));
        }
        Err(err) if expected(&err) => {
            tracing::debug!("controllers: record event {}: {err}", e.reason)
        }
        Err(err) => tracing::warn!(
            "controllers: record event {} in {}: {err}",
            e.reason,
            e.namespace
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2025-03-01T12:00:00Z";

    fn at(s: &str) -> DateTime<Utc> {
        time_of(&json!(s)).unwrap()
    }

    fn clock() -> Clock {
        Clock::new(at(NOW), 1.0)
    }

    /// RFC 7386 JSON merge patch.
    fn merge(target: &mut Value, patch: &Value) {
        match patch {
            Value::Object(p) => {
                if !target.is_object() {
                    *target = json!({});
                }
                let t = target.as_object_mut().unwrap();
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
            other => *target = other.clone(),
        }
    }

    /// A fake API server for the planners' actions.
    struct Fake {
        snap: Snapshot,
        next: u64,
        events: Vec<String>,
        clock: Clock,
    }

    impl Fake {
        fn new(objects: Vec<Value>) -> Fake {
            Fake {
                snap: Snapshot::from_objects(objects),
                next: 0,
                events: Vec::new(),
                clock: clock(),
            }
        }

        fn tick(&mut self, secs: i64) {
            self.clock.now += chrono::Duration::seconds(secs);
        }

        fn apply(&mut self, actions: Vec<Action>) -> usize {
            let mut writes = 0;
            for a in actions {
                if !matches!(a, Action::RequeueAfter(_)) {
                    writes += 1;
                }
                match a {
                    Action::Create {
                        kind,
                        namespace: ns,
                        mut body,
                        event,
                    } => {
                        self.next += 1;
                        if name(&body).is_empty() {
                            let generated = format!(
                                "{}{:05}",
                                str_at(&body, &["metadata", "generateName"]),
                                self.next
                            );
                            body["metadata"]["name"] = json!(generated);
                        }
                        body["metadata"]["uid"] = json!(format!("uid-{}", self.next));
                        body["metadata"]["namespace"] = json!(ns);
                        body["metadata"]["creationTimestamp"] = json!(self.clock.stamp());
                        body["metadata"]["generation"] = json!(1);
                        if let Some(e) = event {
                            self.events.push(format!(
                                "{} {}",
                                e.reason,
                                e.message.replace("{name}", name(&body))
                            ));
                        }
                        self.snap.put(kind, body);
                    }
                    Action::Patch {
                        kind,
                        namespace: ns,
                        name: n,
                        patch,
                    } => self.snap.update_local(kind, &ns, &n, |o| {
                        let spec_before = o["spec"].clone();
                        merge(o, &patch);
                        if o["spec"] != spec_before {
                            let g = int(&o["metadata"]["generation"]).unwrap_or(0);
                            o["metadata"]["generation"] = json!(g + 1);
                        }
                    }),
                    Action::PatchStatus {
                        kind,
                        namespace: ns,
                        name: n,
                        patch,
                    } => self.snap.update_local(kind, &ns, &n, |o| {
                        merge(&mut o["status"], &patch["status"]);
                    }),
                    Action::Delete {
                        kind,
                        namespace: ns,
                        name: n,
                        event,
                        ..
                    } => {
                        self.snap.remove(kind, &ns, &n);
                        if let Some(e) = event {
                            self.events.push(format!("{} {}", e.reason, e.message));
                        }
                    }
                    Action::Collect {
                        kind,
                        namespace: ns,
                        name: n,
                        ..
                    } => self.snap.remove(kind, &ns, &n),
                    Action::Bind {
                        namespace: ns,
                        pod,
                        node,
                        ..
                    } => self.snap.update_local(Kind::Pod, &ns, &pod, |p| {
                        p["spec"]["nodeName"] = json!(node);
                    }),
                    Action::Event(e) => self.events.push(format!("{} {}", e.reason, e.message)),
                    Action::RequeueAfter(_) => {}
                }
            }
            writes
        }

        /// The kubelet, in one step: bound pods of a good image are Running
        /// and Ready, a `missing` tag waits in ImagePullBackOff.
        fn kubelet(&mut self) {
            let pods: Vec<Value> = self.snap.list(Kind::Pod).cloned().collect();
            for mut p in pods {
                if str_at(&p, &["spec", "nodeName"]).is_empty() || !p["status"]["phase"].is_null() {
                    continue;
                }
                let image = str_at(&p, &["spec", "containers"]).to_string()
                    + p["spec"]["containers"][0]["image"]
                        .as_str()
                        .unwrap_or_default();
                let ok = !image.contains("missing");
                p["status"] = if ok {
                    json!({"phase": "Running", "conditions": [
                        {"type": "Ready", "status": "True", "lastTransitionTime": self.clock.stamp()}]})
                } else {
                    json!({"phase": "Pending", "conditions": [
                        {"type": "Ready", "status": "False", "lastTransitionTime": self.clock.stamp()}],
                        "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0,
                            "state": {"waiting": {"reason": "ImagePullBackOff"}}}]})
                };
                self.snap.put(Kind::Pod, p);
            }
        }

        /// Rounds of every controller plus the kubelet until nothing is written.
        fn settle(&mut self, max_rounds: usize) -> usize {
            for round in 0..max_rounds {
                let actions = plan_all(&self.snap, &self.clock);
                let writes = self.apply(actions);
                self.kubelet();
                self.tick(1);
                if writes == 0 {
                    return round;
                }
            }
            panic!(
                "no steady state after {max_rounds} rounds; events: {:#?}",
                self.events
            );
        }

        fn get(&self, kind: Kind, n: &str) -> &Value {
            self.snap
                .get(kind, "shop", n)
                .unwrap_or_else(|| panic!("no {} {n}", kind.name()))
        }

        fn replica_sets(&self) -> Vec<&Value> {
            self.snap.list(Kind::ReplicaSet).collect()
        }
    }

    fn namespace_obj(n: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "uid": format!("ns-{n}")},
               "status": {"phase": "Active"}})
    }

    fn node(n: &str, labels: Value, taints: Value, ready: bool) -> Value {
        let mut l = json!({"kubernetes.io/hostname": n});
        merge(&mut l, &labels);
        json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": n, "uid": format!("node-{n}"), "labels": l},
            "spec": {"taints": taints},
            "status": {"conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]},
        })
    }

    fn pod(n: &str, spec: Value) -> Value {
        let mut s = json!({"containers": [{"name": "app", "image": "registry.lab/app:v1"}]});
        merge(&mut s, &spec);
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": n, "namespace": "shop", "uid": format!("pod-{n}"),
                         "creationTimestamp": "2025-03-01T11:00:00Z"},
            "spec": s,
        })
    }

    fn deployment(n: &str, replicas: i64, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": n, "namespace": "shop", "uid": format!("d-{n}"), "generation": 1,
                         "creationTimestamp": "2025-03-01T11:00:00Z"},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": n}},
                "template": {
                    "metadata": {"labels": {"app": n}},
                    "spec": {"containers": [{"name": "app", "image": image}]},
                },
            },
        })
    }

    fn nine_nodes() -> Vec<Value> {
        let mut nodes: Vec<Value> = (1..=7)
            .map(|i| node(&format!("lab-{i}"), json!({}), json!([]), true))
            .collect();
        for i in 1..=2 {
            nodes.push(node(
                &format!("mask-{i}"),
                json!({"lab.pullfix.dev/pool": "masking"}),
                json!([{"key": "lab.pullfix.dev/pool", "value": "masking", "effect": "NoSchedule"}]),
                true,
            ));
        }
        nodes
    }

    fn binds(actions: &[Action]) -> Vec<(String, String)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Bind { pod, node, .. } => Some((pod.clone(), node.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn fenceposts_round_surge_up_and_unavailable_down() {
        assert_eq!(resolve_fenceposts(&Value::Null, &Value::Null, 5), (2, 1));
        assert_eq!(resolve_fenceposts(&Value::Null, &Value::Null, 10), (3, 2));
        assert_eq!(resolve_fenceposts(&Value::Null, &Value::Null, 1), (1, 0));
        assert_eq!(resolve_fenceposts(&json!("30%"), &json!("30%"), 3), (1, 0));
        assert_eq!(resolve_fenceposts(&json!(0), &json!("10%"), 5), (0, 1));
        assert_eq!(resolve_fenceposts(&json!(3), &json!(2), 5), (3, 2));
        assert_eq!(resolve_fenceposts(&json!("100%"), &json!(0), 4), (4, 0));
        assert_eq!(scaled_int_or_percent(&json!("50%"), "25%", 3, true), 2);
        assert_eq!(scaled_int_or_percent(&json!("50%"), "25%", 3, false), 1);
    }

    #[test]
    fn template_hash_is_stable_and_safe() {
        let d = deployment("checkout", 2, "registry.lab/app:v1");
        let t = &d["spec"]["template"];
        let h = pod_template_hash(t, None);
        assert_eq!(h, pod_template_hash(t, None));
        assert!(!h.is_empty() && h.len() <= 10, "{h}");
        assert!(
            h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)),
            "{h}"
        );
        let mut labelled = t.clone();
        labelled["metadata"]["labels"][TEMPLATE_HASH_LABEL] = json!(h);
        labelled["metadata"]["creationTimestamp"] = Value::Null;
        assert_eq!(pod_template_hash(&labelled, None), h);
        assert!(templates_equal(&labelled, t));
        let other = deployment("checkout", 2, "registry.lab/app:v2");
        assert_ne!(pod_template_hash(&other["spec"]["template"], None), h);
        assert!(!templates_equal(&other["spec"]["template"], t));
        assert_ne!(pod_template_hash(t, Some(1)), h);
    }

    #[test]
    fn namespaces_get_a_default_service_account() {
        let snap = Snapshot::from_objects(vec![
            namespace_obj("shop"),
            namespace_obj("pay"),
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": "default", "namespace": "pay"}}),
            json!({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": "gone", "deletionTimestamp": NOW},
                   "status": {"phase": "Terminating"}}),
        ]);
        let actions = plan_namespaces(&snap);
        assert_eq!(actions.len(), 1, "{actions:?}");
        let Action::Create {
            kind,
            namespace,
            body,
            ..
        } = &actions[0]
        else {
            panic!("{actions:?}")
        };
        assert_eq!((*kind, namespace.as_str()), (Kind::ServiceAccount, "shop"));
        assert_eq!(body["metadata"]["name"], "default");
        assert!(body.get("secrets").is_none());
    }

    #[test]
    fn scheduler_message_counts_reasons_like_the_real_one() {
        let mut objects = nine_nodes();
        objects.push(pod(
            "masked",
            json!({"nodeSelector": {"lab.pullfix.dev/pool": "masking"}}),
        ));
        let snap = Snapshot::from_objects(objects);
        let actions = plan_scheduler(&snap, &clock());
        assert!(binds(&actions).is_empty());
        let Action::PatchStatus { patch, .. } = &actions[0] else {
            panic!("{actions:?}")
        };
        let c = &patch["status"]["conditions"][0];
        let msg = "0/9 nodes are available: 2 node(s) had untolerated taint {lab.pullfix.dev/pool: masking}, 7 node(s) didn't match Pod's node affinity/selector.";
        assert_eq!(c["type"], "PodScheduled");
        assert_eq!(c["status"], "False");
        assert_eq!(c["reason"], "Unschedulable");
        assert_eq!(c["message"], msg);
        assert_eq!(c["lastTransitionTime"], NOW);
        let Action::Event(e) = &actions[1] else {
            panic!("{actions:?}")
        };
        assert_eq!(
            (e.kind, e.reason.as_str(), e.message.as_str()),
            ("Warning", "FailedScheduling", msg)
        );
        assert_eq!(e.component, "default-scheduler");
        assert_eq!(e.involved["kind"], "Pod");

        // Written once: the same verdict is not written again.
        let mut f = Fake::new(
            snap.list(Kind::Node)
                .chain(snap.list(Kind::Pod))
                .cloned()
                .collect(),
        );
        f.apply(plan_scheduler(&f.snap, &f.clock));
        assert!(plan_scheduler(&f.snap, &f.clock).is_empty());
        // A node change retries: untaint a masking node and the pod binds there.
        f.snap.update_local(Kind::Node, "", "mask-2", |n| {
            n["spec"]["taints"] = json!([])
        });
        assert_eq!(
            binds(&plan_scheduler(&f.snap, &f.clock)),
            [("masked".to_string(), "mask-2".to_string())]
        );
    }

    #[test]
    fn scheduler_filters_taints_affinity_readiness_and_spreads() {
        let mut objects = nine_nodes();
        objects.push(node("down", json!({}), json!([]), false));
        objects.push(node("cordoned", json!({}), json!([]), true));
        objects[10]["spec"]["unschedulable"] = json!(true);
        // A tolerating pod restricted to the masking pool by affinity.
        objects.push(pod(
            "tolerant",
            json!({
                "tolerations": [{"key": "lab.pullfix.dev/pool", "operator": "Exists"}],
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [
                        {"key": "lab.pullfix.dev/pool", "operator": "In", "values": ["masking"]},
                        {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["mask-1"]},
                    ]}]}}},
            }),
        ));
        // Three plain pods spread over the seven plain nodes.
        for i in 0..3 {
            objects.push(pod(&format!("plain-{i}"), json!({})));
        }
        // lab-1 already runs two pods.
        objects.push(pod("busy-a", json!({"nodeName": "lab-1"})));
        objects.push(pod("busy-b", json!({"nodeName": "lab-1"})));
        // Someone else's scheduler, and a pod that only fits nowhere.
        objects.push(pod("custom", json!({"schedulerName": "other"})));
        objects.push(pod(
            "nowhere",
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "gpu", "operator": "Exists"}]}]}}}}),
        ));
        let snap = Snapshot::from_objects(objects);
        let actions = plan_scheduler(&snap, &clock());
        let b = binds(&actions);
        assert!(b.contains(&("tolerant".into(), "mask-2".into())), "{b:?}");
        let plain: Vec<&str> = b
            .iter()
            .filter(|(p, _)| p.starts_with("plain"))
            .map(|(_, n)| n.as_str())
            .collect();
        assert_eq!(plain, ["lab-2", "lab-3", "lab-4"]);
        assert!(!b.iter().any(|(p, _)| p == "custom" || p == "nowhere"));
        let msg = actions
            .iter()
            .find_map(|a| match a {
                Action::Event(e) if e.reason == "FailedScheduling" => Some(e.message.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            msg,
            "0/11 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, \
             1 node(s) were unschedulable, 2 node(s) had untolerated taint {lab.pullfix.dev/pool: masking}, \
             7 node(s) didn't match Pod's node affinity/selector."
        );
        let Action::Bind { event: Some(e), .. } = actions
            .iter()
            .find(|a| matches!(a, Action::Bind { .. }))
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(e.reason, "Scheduled");
        assert!(
            e.message.starts_with("Successfully assigned shop/"),
            "{}",
            e.message
        );

        // Operators one by one.
        let n = node("x", json!({"zone": "a", "size": "8"}), json!([]), true);
        let expr = |e: Value| {
            pod(
                "p",
                json!({"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [e]}]}}}}),
            )
        };
        assert!(node_affinity_matches(
            &expr(json!({"key": "zone", "operator": "In", "values": ["a", "b"]})),
            &n
        ));
        assert!(!node_affinity_matches(
            &expr(json!({"key": "zone", "operator": "NotIn", "values": ["a"]})),
            &n
        ));
        assert!(node_affinity_matches(
            &expr(json!({"key": "gpu", "operator": "NotIn", "values": ["a"]})),
            &n
        ));
        assert!(node_affinity_matches(
            &expr(json!({"key": "zone", "operator": "Exists"})),
            &n
        ));
        assert!(node_affinity_matches(
            &expr(json!({"key": "gpu", "operator": "DoesNotExist"})),
            &n
        ));
        assert!(!node_affinity_matches(
            &expr(json!({"key": "zone", "operator": "DoesNotExist"})),
            &n
        ));
        assert!(node_affinity_matches(
            &expr(json!({"key": "size", "operator": "Gt", "values": ["4"]})),
            &n
        ));
        assert!(!node_affinity_matches(
            &pod("p", json!({"nodeSelector": {"zone": "b"}})),
            &n
        ));
        // Tolerations: Equal needs the value, an empty key with Exists tolerates all.
        let taint = json!({"key": "k", "value": "v", "effect": "NoExecute"});
        assert!(tolerates(&json!([{"key": "k", "value": "v"}]), &taint));
        assert!(!tolerates(&json!([{"key": "k", "value": "w"}]), &taint));
        assert!(!tolerates(
            &json!([{"key": "k", "operator": "Exists", "effect": "NoSchedule"}]),
            &taint
        ));
        assert!(tolerates(&json!([{"operator": "Exists"}]), &taint));
        // PreferNoSchedule does not filter.
        let soft = node(
            "soft",
            json!({}),
            json!([{"key": "k", "value": "v", "effect": "PreferNoSchedule"}]),
            true,
        );
        assert!(node_fit(&pod("p", json!({})), &soft).is_ok());
        assert_eq!(
            unschedulable_message(0, &BTreeMap::new()),
            "no nodes available to schedule pods"
        );
    }

    fn rs_obj(
        n: &str,
        owner: &Value,
        replicas: i64,
        image: &str,
        revision: i64,
        status: Value,
    ) -> Value {
        let mut template = owner["spec"]["template"].clone();
        template["spec"]["containers"][0]["image"] = json!(image);
        let hash = pod_template_hash(&template, None);
        template["metadata"]["labels"][TEMPLATE_HASH_LABEL] = json!(hash);
        let desired = int32(&owner["spec"]["replicas"], 1);
        let (surge, _) = resolve_fenceposts(&Value::Null, &Value::Null, desired);
        json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {
                "name": n, "namespace": "shop", "uid": format!("rs-{n}"), "generation": 1,
                "creationTimestamp": "2025-03-01T11:00:00Z",
                "labels": template["metadata"]["labels"],
                "annotations": {REVISION_ANNOTATION: revision.to_string(),
                                DESIRED_REPLICAS_ANNOTATION: desired.to_string(),
                                MAX_REPLICAS_ANNOTATION: (desired + surge).to_string()},
                "ownerReferences": [owner_reference(Kind::Deployment, owner)],
            },
            "spec": {"replicas": replicas, "selector": {"matchLabels": template["metadata"]["labels"]},
                     "template": template},
            "status": status,
        })
    }

    /// The scaling steps, with the RS controller and kubelet reduced to a
    /// rule: the old pods never become available, the new ones at once.
    #[test]
    fn rolling_update_away_from_image_pull_backoff() {
        let mut d = deployment("checkout", 5, "registry.lab/app:v2");
        d["metadata"]["generation"] = json!(2);
        d["metadata"]["annotations"] = json!({REVISION_ANNOTATION: "1"});
        d["status"] = json!({
            "observedGeneration": 1, "replicas": 5, "updatedReplicas": 5, "unavailableReplicas": 5,
            "conditions": [
                {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
                 "message": "Deployment does not have minimum availability.",
                 "lastUpdateTime": "2025-03-01T11:00:00Z", "lastTransitionTime": "2025-03-01T11:00:00Z"},
                {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                 "message": "ReplicaSet \"checkout-old\" is progressing.",
                 "lastUpdateTime": "2025-03-01T11:59:00Z", "lastTransitionTime": "2025-03-01T11:00:00Z"},
            ],
        });
        let old = rs_obj(
            "checkout-old",
            &d,
            5,
            "registry.lab/app:missing",
            1,
            json!({"replicas": 5, "observedGeneration": 1}),
        );
        let mut f = Fake::new(vec![d, old]);
        let mut steps = Vec::new();
        for _ in 0..12 {
            let actions = plan_deployments(&f.snap, &f.clock);
            f.apply(actions);
            // The ReplicaSet controller and kubelet: new pods are available at once.
            let sets: Vec<Value> = f.replica_sets().into_iter().cloned().collect();
            for mut rs in sets {
                let r = rs["spec"]["replicas"].clone();
                let good = !str_at(&rs["spec"]["template"]["spec"]["containers"][0], &["image"])
                    .contains("missing");
                rs["status"] = json!({"replicas": r, "observedGeneration": rs["metadata"]["generation"],
                                      "readyReplicas": if good { r.clone() } else { json!(0) },
                                      "availableReplicas": if good { r } else { json!(0) }});
                f.snap.put(Kind::ReplicaSet, rs);
            }
            let mut sizes: Vec<(String, i64)> = f
                .replica_sets()
                .iter()
                .map(|rs| (name(rs).to_string(), int(&rs["spec"]["replicas"]).unwrap()))
                .collect();
            sizes.sort();
            steps.push(sizes);
            f.tick(1);
        }
        let new_name = f
            .replica_sets()
            .iter()
            .map(|rs| name(rs).to_string())
            .find(|n| n != "checkout-old")
            .unwrap();
        let sizes: Vec<(i64, i64)> = steps
            .iter()
            .map(|s| {
                let get = |n: &str| s.iter().find(|(x, _)| x == n).map_or(0, |(_, r)| *r);
                (get("checkout-old"), get(&new_name))
            })
            .collect();
        // maxSurge 2 (25% of 5 up), maxUnavailable 1 (down): the unhealthy old
        // replicas are cleaned up without waiting for the new ones.
        assert_eq!(
            &sizes[..5],
            [(4, 2), (4, 3), (1, 3), (1, 5), (0, 5)],
            "{steps:?}"
        );
        assert_eq!(
            &f.events[..3],
            [
                format!("ScalingReplicaSet Scaled up replica set {new_name} to 2"),
                "ScalingReplicaSet Scaled down replica set checkout-old to 4 from 5".to_string(),
                format!("ScalingReplicaSet Scaled up replica set {new_name} to 3 from 2"),
            ]
        );
        let d = f.get(Kind::Deployment, "checkout");
        let s = &d["status"];
        assert_eq!(s["observedGeneration"], 2);
        assert_eq!(
            (s["replicas"].clone(), s["updatedReplicas"].clone()),
            (json!(5), json!(5))
        );
        assert_eq!(
            (s["readyReplicas"].clone(), s["availableReplicas"].clone()),
            (json!(5), json!(5))
        );
        assert!(s.get("unavailableReplicas").is_none(), "{s}");
        let progressing = condition(&s["conditions"], "Progressing").unwrap();
        assert_eq!(progressing["reason"], "NewReplicaSetAvailable");
        assert_eq!(
            progressing["message"],
            format!("ReplicaSet \"{new_name}\" has successfully progressed.")
        );
        let available = condition(&s["conditions"], "Available").unwrap();
        assert_eq!(available["status"], "True");
        assert_eq!(available["message"], "Deployment has minimum availability.");
        assert_eq!(annotation(d, REVISION_ANNOTATION), Some("2"));
        let new_rs = f.get(Kind::ReplicaSet, &new_name);
        assert_eq!(annotation(new_rs, REVISION_ANNOTATION), Some("2"));
        assert_eq!(annotation(new_rs, DESIRED_REPLICAS_ANNOTATION), Some("5"));
        assert_eq!(annotation(new_rs, MAX_REPLICAS_ANNOTATION), Some("7"));
        assert!(new_name.starts_with("checkout-"));
        let hash = &new_name["checkout-".len()..];
        assert_eq!(
            new_rs["spec"]["selector"]["matchLabels"][TEMPLATE_HASH_LABEL],
            hash
        );
        assert_eq!(
            new_rs["spec"]["template"]["metadata"]["labels"][TEMPLATE_HASH_LABEL],
            hash
        );
        assert_eq!(new_rs["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(
            new_rs["metadata"]["ownerReferences"][0]["blockOwnerDeletion"],
            true
        );
        // Steady: nothing more to write.
        let writes: Vec<Action> = plan_deployments(&f.snap, &f.clock)
            .into_iter()
            .filter(|a| !matches!(a, Action::RequeueAfter(_)))
            .collect();
        assert!(writes.is_empty(), "{writes:?}");
    }

    #[test]
    fn deployment_status_and_conditions_through_a_first_rollout() {
        let mut objects = nine_nodes();
        objects.push(deployment("checkout", 2, "registry.lab/app:v1"));
        let mut f = Fake::new(objects);
        // Round 1: the ReplicaSet, the condition NewReplicaSetCreated.
        let actions = plan_deployments(&f.snap, &f.clock);
        f.apply(actions);
        let rs_name = f.replica_sets()[0]["metadata"]["name"]
            .as_str()
            .unwrap()
            .to_string();
        let s = &f.get(Kind::Deployment, "checkout")["status"];
        let p = condition(&s["conditions"], "Progressing").unwrap();
        assert_eq!(
            (p["reason"].as_str(), p["message"].as_str()),
            (
                Some("NewReplicaSetCreated"),
                Some(format!("Created new replica set \"{rs_name}\"").as_str())
            )
        );
        let a = condition(&s["conditions"], "Available").unwrap();
        assert_eq!(a["reason"], "MinimumReplicasUnavailable");
        assert_eq!(
            f.events,
            [format!(
                "ScalingReplicaSet Scaled up replica set {rs_name} to 2"
            )]
        );
        f.settle(20);
        let d = f.get(Kind::Deployment, "checkout");
        let s = &d["status"];
        assert_eq!(s["availableReplicas"], 2, "{s}");
        assert_eq!(s["updatedReplicas"], 2);
        assert_eq!(
            condition(&s["conditions"], "Progressing").unwrap()["reason"],
            "NewReplicaSetAvailable"
        );
        assert_eq!(
            condition(&s["conditions"], "Available").unwrap()["reason"],
            "MinimumReplicasAvailable"
        );
        // Available comes before Progressing, as in the real objects.
        assert_eq!(s["conditions"][0]["type"], "Available");
        let pods: Vec<&Value> = f.snap.list(Kind::Pod).collect();
        assert_eq!(pods.len(), 2);
        for p in &pods {
            assert!(name(p).starts_with(&format!("{rs_name}-")));
            assert_eq!(p["metadata"]["labels"]["app"], "checkout");
            assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
            assert!(!str_at(p, &["spec", "nodeName"]).is_empty());
        }
        let rs = f.get(Kind::ReplicaSet, &rs_name);
        assert_eq!(rs["status"]["readyReplicas"], 2);
        assert_eq!(rs["status"]["fullyLabeledReplicas"], 2);
        assert!(
            f.events
                .iter()
                .any(|e| e.starts_with(&format!("SuccessfulCreate Created pod: {rs_name}-")))
        );

        // A new image that does not exist: the rollout stalls and times out.
        f.snap
            .update_local(Kind::Deployment, "shop", "checkout", |d| {
                d["spec"]["template"]["spec"]["containers"][0]["image"] =
                    json!("registry.lab/app:missing");
                d["metadata"]["generation"] = json!(2);
            });
        f.settle(20);
        let s = f.get(Kind::Deployment, "checkout")["status"].clone();
        assert_eq!(
            condition(&s["conditions"], "Progressing").unwrap()["reason"],
            "ReplicaSetUpdated"
        );
        let stuck: Vec<&Value> = f
            .snap
            .list(Kind::Pod)
            .filter(|p| {
                str_at(p, &["status", "containerStatuses"]).is_empty()
                    && !p["status"]["containerStatuses"].is_null()
            })
            .collect();
        assert_eq!(stuck.len(), 1, "one surge pod stuck in ImagePullBackOff");
        assert_eq!(s["availableReplicas"], 2);
        // The old pods stay: maxUnavailable rounds down to 0 for 2 replicas.
        f.tick(601);
        let actions = plan_deployments(&f.snap, &f.clock);
        f.apply(actions);
        let s = &f.get(Kind::Deployment, "checkout")["status"];
        let p = condition(&s["conditions"], "Progressing").unwrap();
        assert_eq!(p["status"], "False");
        assert_eq!(p["reason"], "ProgressDeadlineExceeded");
        let new_rs = f
            .replica_sets()
            .into_iter()
            .find(|r| name(r) != rs_name)
            .map(|r| name(r).to_string())
            .unwrap();
        assert_eq!(
            p["message"],
            format!("ReplicaSet \"{new_rs}\" has timed out progressing.")
        );
    }

    #[test]
    fn progress_deadline_is_scaled_and_requeued() {
        let mut d = deployment("api", 1, "registry.lab/app:v1");
        d["status"] = json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "unavailableReplicas": 1,
            "conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                            "message": "x", "lastUpdateTime": "2025-03-01T11:59:10Z",
                            "lastTransitionTime": "2025-03-01T11:59:10Z"}]});
        let rs = rs_obj(
            "api-1",
            &d,
            1,
            "registry.lab/app:v1",
            1,
            json!({"replicas": 1}),
        );
        let snap = Snapshot::from_objects(vec![d, rs]);
        // 50 s without progress: 600 s scaled by 0.1 is 60 s, not yet.
        let c = Clock::new(at(NOW), 0.1);
        let actions = plan_deployments(&snap, &c);
        let wake = actions
            .iter()
            .find_map(|a| match a {
                Action::RequeueAfter(d) => Some(*d),
                _ => None,
            })
            .unwrap();
        assert!(
            wake > Duration::from_secs(9) && wake < Duration::from_secs(12),
            "{wake:?}"
        );
        let c = Clock::new(at("2025-03-01T12:00:11Z"), 0.1);
        let actions = plan_deployments(&snap, &c);
        let Some(Action::PatchStatus { patch, .. }) = actions
            .iter()
            .find(|a| matches!(a, Action::PatchStatus { .. }))
        else {
            panic!("{actions:?}")
        };
        let p = condition(&patch["status"]["conditions"], "Progressing").unwrap();
        assert_eq!(p["reason"], "ProgressDeadlineExceeded");
        assert_eq!(
            p["message"],
            "ReplicaSet \"api-1\" has timed out progressing."
        );
        assert_eq!(p["lastTransitionTime"], "2025-03-01T12:00:11Z");
    }

    #[test]
    fn paused_deployment_makes_no_replica_set() {
        let mut d = deployment("web", 2, "registry.lab/app:v2");
        d["spec"]["paused"] = json!(true);
        let rs = rs_obj(
            "web-1",
            &d,
            2,
            "registry.lab/app:v1",
            1,
            json!({"replicas": 2, "availableReplicas": 2, "readyReplicas": 2}),
        );
        let snap = Snapshot::from_objects(vec![d, rs]);
        let actions = plan_deployments(&snap, &clock());
        assert!(
            !actions.iter().any(|a| matches!(a, Action::Create { .. })),
            "{actions:?}"
        );
        let Some(Action::PatchStatus { patch, .. }) = actions
            .iter()
            .find(|a| matches!(a, Action::PatchStatus { .. }))
        else {
            panic!("{actions:?}")
        };
        let p = condition(&patch["status"]["conditions"], "Progressing").unwrap();
        assert_eq!(
            (p["status"].as_str(), p["reason"].as_str()),
            (Some("Unknown"), Some("DeploymentPaused"))
        );
        assert!(patch["status"]["updatedReplicas"].is_null());
    }

    #[test]
    fn scaling_a_deployment_scales_its_only_replica_set() {
        let mut d = deployment("web", 4, "registry.lab/app:v1");
        d["metadata"]["annotations"] = json!({REVISION_ANNOTATION: "1"});
        let mut rs = rs_obj(
            "web-1",
            &d,
            5,
            "registry.lab/app:v1",
            1,
            json!({"replicas": 5, "availableReplicas": 5}),
        );
        rs["metadata"]["annotations"][DESIRED_REPLICAS_ANNOTATION] = json!("5");
        let snap = Snapshot::from_objects(vec![d, rs]);
        let actions = plan_deployments(&snap, &clock());
        let patch = actions
            .iter()
            .find_map(|a| match a {
                Action::Patch {
                    kind: Kind::ReplicaSet,
                    patch,
                    ..
                } => Some(patch),
                _ => None,
            })
            .unwrap();
        assert_eq!(patch["spec"]["replicas"], 4);
        assert_eq!(
            patch["metadata"]["annotations"][DESIRED_REPLICAS_ANNOTATION],
            "4"
        );
        assert_eq!(
            patch["metadata"]["annotations"][MAX_REPLICAS_ANNOTATION],
            "5"
        );
        assert!(actions.iter().any(|a| matches!(a, Action::Event(e) if e.message == "Scaled down replica set web-1 to 4 from 5")));
    }

    #[test]
    fn recreate_scales_old_down_before_creating_new() {
        let mut d = deployment("db", 2, "registry.lab/app:v2");
        d["spec"]["strategy"] = json!({"type": "Recreate"});
        d["metadata"]["annotations"] = json!({REVISION_ANNOTATION: "1"});
        let old = rs_obj(
            "db-1",
            &d,
            2,
            "registry.lab/app:v1",
            1,
            json!({"replicas": 2, "availableReplicas": 2}),
        );
        let mut f = Fake::new(vec![d, old]);
        let actions = plan_deployments(&f.snap, &f.clock);
        assert!(!actions.iter().any(|a| matches!(a, Action::Create { .. })));
        f.apply(actions);
        assert_eq!(f.get(Kind::ReplicaSet, "db-1")["spec"]["replicas"], 0);
        // Old pods still reported: wait.
        assert!(
            !plan_deployments(&f.snap, &f.clock)
                .iter()
                .any(|a| matches!(a, Action::Create { .. }))
        );
        f.snap.update_local(Kind::ReplicaSet, "shop", "db-1", |r| {
            r["status"] = json!({"replicas": 0})
        });
        let actions = plan_deployments(&f.snap, &f.clock);
        let created = actions
            .iter()
            .find_map(|a| match a {
                Action::Create { body, .. } => Some(body),
                _ => None,
            })
            .unwrap();
        assert_eq!(created["spec"]["replicas"], 2);
        assert_eq!(annotation(created, REVISION_ANNOTATION), Some("2"));
    }

    #[test]
    fn revision_history_limit_deletes_oldest_empty_sets() {
        let mut d = deployment("web", 1, "registry.lab/app:v4");
        d["spec"]["revisionHistoryLimit"] = json!(1);
        d["metadata"]["annotations"] = json!({REVISION_ANNOTATION: "4"});
        d["status"] = json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1, "readyReplicas": 1});
        let mut objects = vec![d.clone()];
        for (i, image) in ["v1", "v2", "v3"].iter().enumerate() {
            objects.push(rs_obj(
                &format!("web-{i}"),
                &d,
                0,
                &format!("registry.lab/app:{image}"),
                i as i64 + 1,
                json!({"observedGeneration": 1}),
            ));
        }
        objects.push(rs_obj(
            "web-new",
            &d,
            1,
            "registry.lab/app:v4",
            4,
            json!({"replicas": 1, "availableReplicas": 1, "readyReplicas": 1}),
        ));
        let snap = Snapshot::from_objects(objects);
        let deleted: Vec<String> = plan_deployments(&snap, &clock())
            .into_iter()
            .filter_map(|a| match a {
                Action::Delete { name, .. } => Some(name),
                _ => None,
            })
            .collect();
        assert_eq!(deleted, ["web-0", "web-1"]);
    }

    #[test]
    fn replica_sets_create_delete_and_report() {
        let d = deployment("web", 3, "registry.lab/app:v1");
        let mut rs = rs_obj("web-1", &d, 1, "registry.lab/app:v1", 1, json!({}));
        rs["spec"]["minReadySeconds"] = json!(30);
        let owned = |n: &str, spec: Value, status: Value, created: &str| {
            let mut p = pod(n, spec);
            p["metadata"]["ownerReferences"] = json!([owner_reference(Kind::ReplicaSet, &rs)]);
            p["metadata"]["labels"] = rs["spec"]["template"]["metadata"]["labels"].clone();
            p["metadata"]["creationTimestamp"] = json!(created);
            p["status"] = status;
            p
        };
        let ready = |since: &str| json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": since}]});
        let objects = vec![
            rs.clone(),
            owned(
                "old-ready",
                json!({"nodeName": "n"}),
                ready("2025-03-01T11:00:00Z"),
                "2025-03-01T10:00:00Z",
            ),
            owned(
                "new-ready",
                json!({"nodeName": "n"}),
                ready("2025-03-01T11:59:50Z"),
                "2025-03-01T11:00:00Z",
            ),
            owned(
                "not-ready",
                json!({"nodeName": "n"}),
                json!({"phase": "Pending"}),
                "2025-03-01T09:00:00Z",
            ),
            owned(
                "unscheduled",
                json!({}),
                json!({"phase": "Pending"}),
                "2025-03-01T08:00:00Z",
            ),
            owned(
                "done",
                json!({"nodeName": "n"}),
                json!({"phase": "Failed"}),
                "2025-03-01T08:00:00Z",
            ),
        ];
        let snap = Snapshot::from_objects(objects);
        let actions = plan_replicasets(&snap, &clock());
        let deleted: Vec<&str> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Delete { name, .. } => Some(name.as_str()),
                _ => None,
            })
            .collect();
        // Unscheduled, then not ready, then the newest ready one.
        assert_eq!(deleted, ["unscheduled", "not-ready", "new-ready"]);
        let Some(Action::PatchStatus { patch, .. }) = actions.first() else {
            panic!("{actions:?}")
        };
        let s = &patch["status"];
        assert_eq!(
            (
                s["replicas"].clone(),
                s["readyReplicas"].clone(),
                s["availableReplicas"].clone()
            ),
            (json!(4), json!(2), json!(1))
        );
        assert_eq!(s["fullyLabeledReplicas"], 4);
        assert_eq!(s["observedGeneration"], 1);
        // The pod ready for 10 s becomes available after 30: a wake-up in 20 s.
        assert!(
            actions.contains(&Action::RequeueAfter(Duration::from_secs(20))),
            "{actions:?}"
        );
        assert!(actions.iter().any(|a| matches!(a, Action::Delete { event: Some(e), .. } if e.message == "Deleted pod: unscheduled" && e.reason == "SuccessfulDelete")));

        // Short of replicas: pods from the template, owned, named after the set.
        let mut rs3 = rs.clone();
        rs3["spec"]["replicas"] = json!(2);
        let actions = plan_replicasets(&Snapshot::from_objects(vec![rs3]), &clock());
        let created: Vec<&Value> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Create { body, .. } => Some(body),
                _ => None,
            })
            .collect();
        assert_eq!(created.len(), 2);
        assert_eq!(created[0]["metadata"]["generateName"], "web-1-");
        assert_eq!(
            created[0]["metadata"]["labels"],
            rs["spec"]["template"]["metadata"]["labels"]
        );
        assert_eq!(
            created[0]["metadata"]["ownerReferences"][0]["uid"],
            "rs-web-1"
        );
        assert_eq!(
            created[0]["spec"]["containers"][0]["image"],
            "registry.lab/app:v1"
        );
    }

    fn job(n: &str, backoff_limit: i64) -> Value {
        json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": n, "namespace": "shop", "uid": format!("job-{n}"), "creationTimestamp": "2025-03-01T11:00:00Z"},
            "spec": {"backoffLimit": backoff_limit, "template": {
                "metadata": {"annotations": {"lab.pullfix.dev/exit-code": "1"}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "refresh", "image": "registry.lab/tool:v1"}]}}},
        })
    }

    fn job_pod(j: &Value, n: &str, phase: &str, finished: &str) -> Value {
        let mut p = pod(n, json!({"nodeName": "n"}));
        p["metadata"]["ownerReferences"] = json!([owner_reference(Kind::Job, j)]);
        p["status"] = json!({"phase": phase, "containerStatuses": [{"name": "refresh", "state": {"terminated": {"exitCode": 1, "finishedAt": finished}}}]});
        p
    }

    #[test]
    fn job_pods_backoff_and_failure() {
        let j = job("refresh", 2);
        // No pods: one is created with the job labels, and the start time is set.
        let actions = plan_jobs(&Snapshot::from_objects(vec![j.clone()]), &clock());
        let Some(Action::Create {
            body,
            event: Some(e),
            ..
        }) = actions.iter().find(|a| matches!(a, Action::Create { .. }))
        else {
            panic!("{actions:?}")
        };
        assert_eq!(body["metadata"]["generateName"], "refresh-");
        let labels = &body["metadata"]["labels"];
        assert_eq!(labels["job-name"], "refresh");
        assert_eq!(labels["batch.kubernetes.io/job-name"], "refresh");
        assert_eq!(labels["controller-uid"], "job-refresh");
        assert_eq!(labels["batch.kubernetes.io/controller-uid"], "job-refresh");
        assert_eq!(
            body["metadata"]["annotations"]["lab.pullfix.dev/exit-code"],
            "1"
        );
        assert_eq!(
            (e.reason.as_str(), e.message.as_str(), e.component),
            ("SuccessfulCreate", "Created pod: {name}", "job-controller")
        );
        let status = actions
            .iter()
            .find_map(|a| match a {
                Action::PatchStatus { patch, .. } => Some(&patch["status"]),
                _ => None,
            })
            .unwrap();
        assert_eq!(status["startTime"], NOW);
        assert_eq!(status["active"], Value::Null);

        // One failure 5 s ago: the next pod waits for the 10 s backoff.
        let objects = vec![
            j.clone(),
            job_pod(&j, "refresh-a", "Failed", "2025-03-01T11:59:55Z"),
        ];
        let actions = plan_jobs(&Snapshot::from_objects(objects.clone()), &clock());
        assert!(
            !actions.iter().any(|a| matches!(a, Action::Create { .. })),
            "{actions:?}"
        );
        assert!(
            actions.contains(&Action::RequeueAfter(Duration::from_secs(5))),
            "{actions:?}"
        );
        let later = Clock::new(at("2025-03-01T12:00:06Z"), 1.0);
        assert!(
            plan_jobs(&Snapshot::from_objects(objects), &later)
                .iter()
                .any(|a| matches!(a, Action::Create { .. }))
        );

        // Three failures with backoffLimit 2: Failed.
        let objects = vec![
            j.clone(),
            job_pod(&j, "refresh-a", "Failed", "2025-03-01T11:50:00Z"),
            job_pod(&j, "refresh-b", "Failed", "2025-03-01T11:51:00Z"),
            job_pod(&j, "refresh-c", "Failed", "2025-03-01T11:53:00Z"),
        ];
        let actions = plan_jobs(&Snapshot::from_objects(objects), &clock());
        assert!(!actions.iter().any(|a| matches!(a, Action::Create { .. })));
        let status = actions
            .iter()
            .find_map(|a| match a {
                Action::PatchStatus { patch, .. } => Some(&patch["status"]),
                _ => None,
            })
            .unwrap();
        assert_eq!(status["failed"], 3);
        let failed = condition(&status["conditions"], "Failed").unwrap();
        assert_eq!(failed["reason"], "BackoffLimitExceeded");
        assert_eq!(
            failed["message"],
            "Job has reached the specified backoff limit"
        );
        assert!(status["completionTime"].is_null());
        assert!(actions.iter().any(|a| matches!(a, Action::Event(e) if e.reason == "BackoffLimitExceeded" && e.kind == "Warning")));

        // A finished job (as scenarios write them) is left alone.
        let mut done = j.clone();
        done["status"] = json!({"failed": 3, "conditions": [{"type": "Failed", "status": "True"}]});
        assert!(plan_jobs(&Snapshot::from_objects(vec![done]), &clock()).is_empty());
        let mut other = j;
        other["spec"]["managedBy"] = json!("lab.pullfix.dev/scenario");
        assert!(plan_jobs(&Snapshot::from_objects(vec![other]), &clock()).is_empty());
    }

    #[test]
    fn job_completes() {
        let j = job("once", 6);
        let mut p = job_pod(&j, "once-a", "Succeeded", "2025-03-01T11:59:00Z");
        p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] = json!(0);
        let actions = plan_jobs(&Snapshot::from_objects(vec![j, p]), &clock());
        let status = actions
            .iter()
            .find_map(|a| match a {
                Action::PatchStatus { patch, .. } => Some(&patch["status"]),
                _ => None,
            })
            .unwrap();
        assert_eq!(status["succeeded"], 1);
        assert_eq!(status["completionTime"], NOW);
        assert_eq!(
            condition(&status["conditions"], "Complete").unwrap()["status"],
            "True"
        );
        assert!(!actions.iter().any(|a| matches!(a, Action::Create { .. })));
    }

    #[test]
    fn garbage_collector_deletes_orphans_only() {
        let d = deployment("web", 1, "registry.lab/app:v1");
        let rs = rs_obj("web-1", &d, 1, "registry.lab/app:v1", 1, json!({}));
        let mut kept = pod("kept", json!({}));
        kept["metadata"]["ownerReferences"] = json!([owner_reference(Kind::ReplicaSet, &rs)]);
        let mut orphan = pod("orphan", json!({}));
        orphan["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "gone", "uid": "rs-gone", "controller": true}]);
        let mut foreign = pod("foreign", json!({}));
        foreign["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "example.com/v1", "kind": "Thing", "name": "x", "uid": "t-1"}]);
        // The Deployment is gone: its ReplicaSet is collected, then its pods.
        let snap = Snapshot::from_objects(vec![rs, kept, orphan, foreign]);
        let collected: Vec<(Kind, String)> = plan_gc(&snap)
            .into_iter()
            .filter_map(|a| match a {
                Action::Collect {
                    kind, name, owners, ..
                } => {
                    assert!(!owners.is_empty());
                    Some((kind, name))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            collected,
            [
                (Kind::Pod, "orphan".to_string()),
                (Kind::ReplicaSet, "web-1".to_string())
            ]
        );

        // An unlisted owner kind is never judged.
        let mut snap = Snapshot::from_objects(vec![]);
        let mut o = pod("o", json!({}));
        o["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "gone", "uid": "rs-gone"}]);
        snap.put(Kind::Pod, o);
        snap.synced.remove(&Kind::ReplicaSet);
        assert!(plan_gc(&snap).is_empty());
    }

    #[test]
    fn foreground_deletion_waits_for_dependents() {
        let mut d = deployment("web", 1, "registry.lab/app:v1");
        d["metadata"]["deletionTimestamp"] = json!(NOW);
        d["metadata"]["finalizers"] = json!(["foregroundDeletion"]);
        let rs = rs_obj("web-1", &d, 1, "registry.lab/app:v1", 1, json!({}));
        let actions = plan_gc(&Snapshot::from_objects(vec![d.clone(), rs]));
        assert!(
            matches!(
                &actions[..],
                [Action::Delete {
                    kind: Kind::ReplicaSet,
                    ..
                }]
            ),
            "{actions:?}"
        );
        let actions = plan_gc(&Snapshot::from_objects(vec![d]));
        let [Action::Patch { patch, .. }] = &actions[..] else {
            panic!("{actions:?}")
        };
        assert_eq!(patch["metadata"]["finalizers"], json!([]));
    }

    /// Every controller together on the fake server: deploy, break the
    /// image, fix it, and delete.
    #[test]
    fn controllers_together_roll_out_and_collect() {
        let mut objects = nine_nodes();
        objects.push(namespace_obj("shop"));
        objects.push(deployment("checkout", 3, "registry.lab/app:missing"));
        let mut f = Fake::new(objects);
        f.settle(30);
        assert!(
            f.snap
                .get(Kind::ServiceAccount, "shop", "default")
                .is_some()
        );
        let pods: Vec<&Value> = f.snap.list(Kind::Pod).collect();
        assert_eq!(pods.len(), 3);
        assert!(pods.iter().all(|p| !pod_ready(p)));
        let s = &f.get(Kind::Deployment, "checkout")["status"];
        assert_eq!(s["unavailableReplicas"], 3);
        assert_eq!(
            condition(&s["conditions"], "Available").unwrap()["status"],
            "False"
        );

        // The fix: a good image. Unhealthy old pods go at once.
        f.snap
            .update_local(Kind::Deployment, "shop", "checkout", |d| {
                d["spec"]["template"]["spec"]["containers"][0]["image"] =
                    json!("registry.lab/app:v1");
                d["metadata"]["generation"] = json!(2);
            });
        let rounds = f.settle(30);
        assert!(rounds < 25, "{rounds} rounds: {:#?}", f.events);
        let sets = f.replica_sets();
        assert_eq!(sets.len(), 2);
        let sizes: Vec<i64> = sets
            .iter()
            .map(|r| int(&r["spec"]["replicas"]).unwrap())
            .collect();
        assert!(sizes.contains(&0) && sizes.contains(&3), "{sizes:?}");
        let pods: Vec<&Value> = f.snap.list(Kind::Pod).collect();
        assert_eq!(pods.len(), 3);
        assert!(pods.iter().all(|p| pod_ready(p)));
        let s = &f.get(Kind::Deployment, "checkout")["status"];
        assert_eq!(
            condition(&s["conditions"], "Progressing").unwrap()["reason"],
            "NewReplicaSetAvailable"
        );
        assert_eq!(s["observedGeneration"], 2);

        // Delete the Deployment: its ReplicaSets, then their pods, go.
        f.snap.remove(Kind::Deployment, "shop", "checkout");
        f.settle(10);
        assert_eq!(f.snap.list(Kind::ReplicaSet).count(), 0);
        assert_eq!(f.snap.list(Kind::Pod).count(), 0);
    }

    #[test]
    fn snapshot_ignores_stale_versions() {
        let mut s = Snapshot::default();
        let mut v = pod("p", json!({}));
        v["metadata"]["resourceVersion"] = json!("5");
        s.apply(Kind::Pod, v.clone());
        let mut old = v.clone();
        old["metadata"]["resourceVersion"] = json!("4");
        old["spec"]["nodeName"] = json!("stale");
        s.apply(Kind::Pod, old);
        assert!(s.get(Kind::Pod, "shop", "p").unwrap()["spec"]["nodeName"].is_null());
        s.forget(Kind::Pod, "shop", "p");
        s.apply(Kind::Pod, v.clone());
        assert!(s.get(Kind::Pod, "shop", "p").is_none());
        v["metadata"]["resourceVersion"] = json!("6");
        s.apply(Kind::Pod, v);
        assert!(s.get(Kind::Pod, "shop", "p").is_some());
    }

    // -----------------------------------------------------------------------
    // With the embedded API server, the simulated kubelet and a registry.
    // -----------------------------------------------------------------------

    use crate::apiserver;
    use crate::kubelet::{self, KubeletOptions, NodeSpec};
    use crate::registry::{EmbeddedRegistry, RegistryBehavior, RunningRegistry};
    use kube::api::ListParams;

    struct Cluster {
        client: Client,
        registry: RunningRegistry,
        stop: watch::Sender<bool>,
        tasks: Vec<tokio::task::JoinHandle<()>>,
        _server: apiserver::ApiServer,
    }

    impl Cluster {
        async fn start() -> Cluster {
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_test_writer()
                .try_init();
            let server = apiserver::start(
                "127.0.0.1:0".parse().unwrap(),
                apiserver::Options {
                    users: vec![apiserver::User {
                        name: "admin".into(),
                        token: "admin-token".into(),
                        groups: vec!["system:masters".into()],
                        deny: vec![],
                    }],
                    audit_log: None,
                },
            )
            .await
            .unwrap();
            let kubeconfig =
                kube::config::Kubeconfig::from_yaml(&server.kubeconfig("admin", None)).unwrap();
            let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .unwrap();
            let client = Client::try_from(config).unwrap();
            let registry = EmbeddedRegistry::start(RegistryBehavior::anonymous()).unwrap();
            registry.add_image("team/app", "v1", &[("linux", "amd64")]);
            registry.add_image("team/app", "v2", &[("linux", "amd64")]);
            let (stop, rx) = watch::channel(false);
            let mut tasks = Vec::new();
            let kubelet_options = KubeletOptions {
                nodes: vec![
                    NodeSpec::parse("lab-a:amd64:1.33:containerd2.1").unwrap(),
                    NodeSpec::parse("lab-b:amd64:1.33:containerd2.1").unwrap(),
                ],
                time_scale: 0.05,
                taints: vec![],
                registry: registry.client_config(),
            };
            let (c, mut krx) = (client.clone(), rx.clone());
            tasks.push(tokio::spawn(async move {
                let stopped = async move {
                    let _ = krx.wait_for(|s| *s).await;
                };
                if let Err(e) = kubelet::run(c, kubelet_options, stopped).await {
                    panic!("kubelet: {e:#}");
                }
            }));
            let c = client.clone();
            tasks.push(tokio::spawn(async move {
                run(c, Options { time_scale: 0.05 }, rx).await.unwrap();
            }));
            Cluster {
                client,
                registry,
                stop,
                tasks,
                _server: server,
            }
        }

        async fn get(&self, kind: Kind, ns: &str, n: &str) -> Option<Value> {
            let req = Request::new(kind.collection_path(ns))
                .get(n, &Default::default())
                .unwrap();
            self.client.request::<Value>(req).await.ok()
        }

        async fn list(&self, kind: Kind, ns: &str, selector: &str) -> Vec<Value> {
            let req = Request::new(kind.collection_path(ns))
                .list(&ListParams::default().labels(selector))
                .unwrap();
            let list: Value = self.client.request(req).await.unwrap();
            list["items"].as_array().cloned().unwrap_or_default()
        }

        async fn create(&self, kind: Kind, ns: &str, body: Value) -> Value {
            let req = Request::new(kind.collection_path(ns))
                .create(&PostParams::default(), serde_json::to_vec(&body).unwrap())
                .unwrap();
            self.client.request(req).await.unwrap()
        }

        async fn patch(&self, kind: Kind, ns: &str, n: &str, patch: Patch<Value>) {
            let req = Request::new(kind.collection_path(ns))
                .patch(n, &PatchParams::default(), &patch)
                .unwrap();
            self.client.request::<Value>(req).await.unwrap();
        }

        async fn stop(self) {
            self.stop.send_replace(true);
            for t in self.tasks {
                let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
            }
            self.registry.shutdown().await;
        }
    }

    /// Polls `check` every 100 ms for up to 60 s.
    async fn wait_for<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(v) = check().await {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn app_deployment(n: &str, replicas: i64, image: &str) -> Value {
        let mut d = deployment(n, replicas, image);
        for k in ["uid", "generation", "creationTimestamp"] {
            d["metadata"].as_object_mut().unwrap().remove(k);
        }
        d
    }

    /// `kubectl rollout status` says it rolled out.
    fn rolled_out(d: &Value) -> bool {
        let s = &d["status"];
        let want = int(&d["spec"]["replicas"]).unwrap_or(1);
        int(&d["metadata"]["generation"]) <= int(&s["observedGeneration"])
            && int(&s["updatedReplicas"]).unwrap_or(0) == want
            && int(&s["replicas"]).unwrap_or(0) == want
            && int(&s["availableReplicas"]).unwrap_or(0) == want
            && condition(&s["conditions"], "Progressing")
                .is_some_and(|c| c["reason"] == NEW_RS_AVAILABLE)
    }

    async fn wait_rolled_out(c: &Cluster, n: &str) -> Value {
        wait_for(&format!("deployment {n} rolled out"), async || {
            c.get(Kind::Deployment, "shop", n).await.filter(rolled_out)
        })
        .await
    }

    async fn waiting_reasons(c: &Cluster, selector: &str) -> Vec<String> {
        c.list(Kind::Pod, "shop", selector)
            .await
            .iter()
            .filter(|p| !deleting(p))
            .map(|p| {
                str_at(
                    &p["status"]["containerStatuses"][0],
                    &["state", "waiting", "reason"],
                )
                .to_string()
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sandbox_deployments_roll_out_and_are_collected() {
        let c = Cluster::start().await;
        c.create(
            Kind::Namespace,
            "",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
        )
        .await;
        wait_for("the default ServiceAccount", async || {
            c.get(Kind::ServiceAccount, "shop", "default").await
        })
        .await;

        // An existing image: 2/2 ready.
        let good = c.registry.image("team/app:v1");
        c.create(Kind::Deployment, "shop", app_deployment("web", 2, &good))
            .await;
        let d = wait_rolled_out(&c, "web").await;
        assert_eq!(
            condition(&d["status"]["conditions"], "Available").unwrap()["status"],
            "True"
        );
        assert_eq!(annotation(&d, REVISION_ANNOTATION), Some("1"));
        let pods = c.list(Kind::Pod, "shop", "app=web").await;
        assert_eq!(pods.len(), 2);
        assert!(pods.iter().all(pod_ready));

        // A missing tag: ImagePullBackOff.
        c.create(
            Kind::Deployment,
            "shop",
            app_deployment("broken", 2, &c.registry.image("team/app:missing")),
        )
        .await;
        wait_for("pods in ImagePullBackOff", async || {
            let reasons = waiting_reasons(&c, "app=broken").await;
            (reasons.len() == 2 && reasons.iter().all(|r| r == "ImagePullBackOff")).then_some(())
        })
        .await;
        let d = c.get(Kind::Deployment, "shop", "broken").await.unwrap();
        assert_eq!(
            condition(&d["status"]["conditions"], "Available").unwrap()["status"],
            "False"
        );

        // The fix, as `kubectl set image` sends it: a strategic merge patch.
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": good}]}}}});
        c.patch(Kind::Deployment, "shop", "broken", Patch::Strategic(patch))
            .await;
        let d = wait_rolled_out(&c, "broken").await;
        assert_eq!(annotation(&d, REVISION_ANNOTATION), Some("2"));
        let sets = c.list(Kind::ReplicaSet, "shop", "app=broken").await;
        assert_eq!(sets.len(), 2);
        let old = sets
            .iter()
            .find(|r| annotation(r, REVISION_ANNOTATION) == Some("1"))
            .unwrap();
        assert_eq!(old["spec"]["replicas"], 0);
        wait_for("old pods gone", async || {
            let pods = c.list(Kind::Pod, "shop", "app=broken").await;
            (pods.len() == 2 && pods.iter().all(pod_ready)).then_some(())
        })
        .await;
        let events = c.list(Kind::Event, "shop", "").await;
        let scaled: Vec<&str> = events
            .iter()
            .filter(|e| {
                e["reason"] == "ScalingReplicaSet" && e["involvedObject"]["name"] == "broken"
            })
            .filter_map(|e| e["message"].as_str())
            .collect();
        assert!(
            scaled
                .iter()
                .any(|m| m.starts_with("Scaled up replica set broken-")),
            "{scaled:?}"
        );
        assert!(events.iter().any(
            |e| e["reason"] == "SuccessfulCreate" && e["source"]["component"] == RS_CONTROLLER
        ));
        assert!(
            events
                .iter()
                .any(|e| e["reason"] == "Scheduled" && e["reportingComponent"] == SCHEDULER)
        );

        // `kubectl rollout restart`: a template annotation, a new ReplicaSet.
        let restart = json!({"spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": "2025-03-01T12:00:00Z"}}}}});
        c.patch(Kind::Deployment, "shop", "web", Patch::Strategic(restart))
            .await;
        wait_for("web restarted", async || {
            let d = c.get(Kind::Deployment, "shop", "web").await?;
            (annotation(&d, REVISION_ANNOTATION) == Some("2") && rolled_out(&d)).then_some(())
        })
        .await;

        // Unschedulable: the scheduler's condition and message.
        let mut p = pod("pinned", json!({"nodeSelector": {"disk": "ssd"}}));
        p["spec"]["containers"][0]["image"] = json!(good);
        for k in ["uid", "creationTimestamp"] {
            p["metadata"].as_object_mut().unwrap().remove(k);
        }
        c.create(Kind::Pod, "shop", p).await;
        let cond = wait_for("PodScheduled=False", async || {
            let p = c.get(Kind::Pod, "shop", "pinned").await?;
            condition(&p["status"]["conditions"], "PodScheduled").cloned()
        })
        .await;
        assert_eq!(cond["reason"], "Unschedulable");
        assert_eq!(
            cond["message"],
            "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."
        );

        // Deleting a Deployment collects its ReplicaSets and pods.
        let req = Request::new(Kind::Deployment.collection_path("shop"))
            .delete("broken", &DeleteParams::default())
            .unwrap();
        c.client.request::<Value>(req).await.unwrap();
        wait_for("broken collected", async || {
            let sets = c.list(Kind::ReplicaSet, "shop", "app=broken").await;
            let pods = c.list(Kind::Pod, "shop", "app=broken").await;
            (sets.is_empty() && pods.is_empty()).then_some(())
        })
        .await;
        assert_eq!(c.list(Kind::Pod, "shop", "app=web").await.len(), 2);
        c.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sandbox_failing_job_reaches_failed() {
        let c = Cluster::start().await;
        let mut j = job("refresh", 1);
        j["metadata"] = json!({"name": "refresh", "namespace": "default"});
        j["spec"]["template"]["spec"]["containers"][0]["image"] =
            json!(c.registry.image("team/app:v1"));
        c.create(Kind::Job, "default", j).await;
        let status = wait_for("the job failed", async || {
            let j = c.get(Kind::Job, "default", "refresh").await?;
            condition_true(&j["status"]["conditions"], "Failed").then(|| j["status"].clone())
        })
        .await;
        let failed = condition(&status["conditions"], "Failed").unwrap();
        assert_eq!(failed["reason"], "BackoffLimitExceeded");
        assert_eq!(
            failed["message"],
            "Job has reached the specified backoff limit"
        );
        assert_eq!(status["failed"], 2);
        assert!(status["startTime"].is_string());
        let pods = c.list(Kind::Pod, "default", "job-name=refresh").await;
        assert_eq!(pods.len(), 2);
        assert!(pods.iter().all(|p| pod_phase(p) == "Failed"));
        // Deleting the Job collects its pods.
        let req = Request::new(Kind::Job.collection_path("default"))
            .delete("refresh", &DeleteParams::default())
            .unwrap();
        c.client.request::<Value>(req).await.unwrap();
        wait_for("job pods collected", async || {
            c.list(Kind::Pod, "default", "job-name=refresh")
                .await
                .is_empty()
                .then_some(())
        })
        .await;
        c.stop().await;
    }

    /// `kubectl create namespace fresh; kubectl create deployment ...`: no
    /// serviceAccountName anywhere, and no waiting for the namespace's
    /// `default` ServiceAccount. The pods run as `default` and are pulled.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sandbox_deployment_without_service_account_runs_as_default() {
        let c = Cluster::start().await;
        c.create(
            Kind::Namespace,
            "",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fresh"}}),
        )
        .await;
        let mut d = app_deployment("web", 2, &c.registry.image("team/app:v1"));
        d["metadata"]["namespace"] = json!("fresh");
        c.create(Kind::Deployment, "fresh", d).await;
        let d = wait_for("deployment web rolled out in fresh", async || {
            c.get(Kind::Deployment, "fresh", "web")
                .await
                .filter(rolled_out)
        })
        .await;
        // The template keeps no name: `default` is admission's, per pod.
        assert!(d["spec"]["template"]["spec"]["serviceAccountName"].is_null());
        let pods = c.list(Kind::Pod, "fresh", "app=web").await;
        assert_eq!(pods.len(), 2);
        for p in &pods {
            assert_eq!(p["spec"]["serviceAccountName"], "default", "{p}");
            assert_eq!(p["spec"]["serviceAccount"], "default", "{p}");
            assert!(pod_ready(p), "{p}");
        }
        c.stop().await;
    }
}
