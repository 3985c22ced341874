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
//!
//! One file per controller (`namespace`, `scheduler`, `replicaset`,
//! `deployment/`, `job`, `gc`), the I/O in `runtime`; this file holds what
//! they share: kinds, actions, the snapshot, the clock and JSON accessors.

mod deployment;
mod gc;
mod job;
mod namespace;
mod replicaset;
mod runtime;
mod scheduler;
#[cfg(test)]
mod tests;

pub use deployment::*;
pub use gc::*;
pub use job::*;
pub use namespace::*;
pub use replicaset::*;
pub use runtime::*;
pub use scheduler::*;

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
/// Most tombstones kept (the oldest half goes beyond it): they only have to
/// outlive the answers still in flight.
const TOMBSTONE_LIMIT: usize = 4096;

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
    /// Deleted objects, by key, with the newest resourceVersion known of
    /// them (the deletion's, once the watch saw it): a late write answer
    /// carrying an older version does not bring them back.
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

    /// The answer to a write of an object we hold (patch, status, a
    /// graceful delete): kept like a watch event, but never brings back an
    /// object the snapshot no longer holds. The planner saw it, so if it is
    /// gone now, the watch saw it deleted (or a relist left it out) while
    /// the write was in flight: the answer is older than that news.
    fn apply_answer(&mut self, kind: Kind, v: Value) {
        if self.get(kind, namespace(&v), name(&v)).is_some() {
            self.apply(kind, v);
        }
    }

    /// The answer to our DELETE: an object still terminating (a bound pod's
    /// grace period, finalizers) is kept as the answer has it; one that is
    /// gone is forgotten.
    fn delete_answer(&mut self, kind: Kind, ns: &str, name: &str, answer: Value) {
        if !runtime::is_status(&answer) && deleting(&answer) {
            self.apply_answer(kind, answer);
        } else {
            self.forget(kind, ns, name);
        }
    }

    /// A watch's DELETED event; `rv` is the deletion's resourceVersion
    /// (newer than any the object had). The tombstone keeps the object gone
    /// against write answers still in flight (a pod's graceful-delete
    /// answer read after the kubelet already finished the deletion).
    fn remove(&mut self, kind: Kind, ns: &str, name: &str, rv: Option<u64>) {
        let key = object_key(ns, name);
        let held = self
            .objects
            .get_mut(&kind)
            .and_then(|m| m.remove(&key))
            .and_then(|old| resource_version(&old));
        if let Some(rv) = rv.max(held) {
            self.tombstone(kind, key, rv);
        }
    }

    /// We deleted it: forget it until a newer version shows up.
    fn forget(&mut self, kind: Kind, ns: &str, name: &str) {
        let key = object_key(ns, name);
        if let Some(old) = self.objects.get_mut(&kind).and_then(|m| m.remove(&key))
            && let Some(rv) = resource_version(&old)
        {
            self.tombstone(kind, key, rv);
        }
    }

    fn tombstone(&mut self, kind: Kind, key: String, rv: u64) {
        let t = self.tombstones.entry((kind, key)).or_insert(rv);
        *t = (*t).max(rv);
        if self.tombstones.len() > TOMBSTONE_LIMIT {
            let mut versions: Vec<u64> = self.tombstones.values().copied().collect();
            let (_, median, _) = versions.select_nth_unstable(TOMBSTONE_LIMIT / 2);
            let median = *median;
            self.tombstones.retain(|_, v| *v >= median);
        }
    }

    /// A (re)list: the objects of `kind` are exactly these. What it left
    /// out is gone: tombstoned at the version held.
    fn replace_all(&mut self, kind: Kind, objects: BTreeMap<String, Value>) {
        let old = self.objects.insert(kind, objects).unwrap_or_default();
        let listed = &self.objects[&kind];
        self.tombstones
            .retain(|(k, key), _| *k != kind || !listed.contains_key(key));
        let dropped: Vec<(String, u64)> = old
            .into_iter()
            .filter(|(key, _)| !listed.contains_key(key))
            .filter_map(|(key, v)| Some((key, resource_version(&v)?)))
            .collect();
        for (key, rv) in dropped {
            self.tombstone(kind, key, rv);
        }
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
