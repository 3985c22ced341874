//! The planners against a fake API server (`Fake`); the controllers
//! together with the embedded API server in `sandbox`.

use super::*;

mod deployment;
mod sandbox;
mod scheduler;
mod workloads;

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
                    self.snap.remove(kind, &ns, &n, None);
                    if let Some(e) = event {
                        self.events.push(format!("{} {}", e.reason, e.message));
                    }
                }
                Action::Collect {
                    kind,
                    namespace: ns,
                    name: n,
                    ..
                } => self.snap.remove(kind, &ns, &n, None),
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
            d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("registry.lab/app:v1");
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
    f.snap.remove(Kind::Deployment, "shop", "checkout", None);
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

/// The race that stalled a Recreate rollout in CI (under load): the answer
/// to the controller's DELETE of a bound pod (the pod, terminating) was
/// written into the snapshot after the kubelet had finished the deletion
/// and the watch had reported the pod gone, which brought it back for good.
#[test]
fn late_answers_do_not_resurrect_deleted_objects() {
    let mut s = Snapshot::default();
    let mut running = pod("p", json!({"nodeName": "lab-1"}));
    running["metadata"]["resourceVersion"] = json!("5");
    s.apply(Kind::Pod, running.clone());
    let mut terminating = running.clone();
    terminating["metadata"]["resourceVersion"] = json!("6");
    terminating["metadata"]["deletionTimestamp"] = json!(NOW);
    // The watch: terminating, then gone at the deletion's version.
    s.apply(Kind::Pod, terminating.clone());
    s.remove(Kind::Pod, "shop", "p", Some(7));
    // Then the DELETE's answer, a patch's, a create's: all older.
    s.delete_answer(Kind::Pod, "shop", "p", terminating.clone());
    assert!(s.get(Kind::Pod, "shop", "p").is_none());
    s.apply_answer(Kind::Pod, terminating);
    s.apply(Kind::Pod, running);
    assert!(s.get(Kind::Pod, "shop", "p").is_none());
    // A new pod of that name is newer.
    let mut again = pod("p", json!({}));
    again["metadata"]["resourceVersion"] = json!("8");
    s.apply(Kind::Pod, again);
    assert!(s.get(Kind::Pod, "shop", "p").is_some());

    // A relist that leaves a pod out: a late answer does not bring it back.
    let mut q = pod("q", json!({"nodeName": "lab-1"}));
    q["metadata"]["resourceVersion"] = json!("10");
    s.apply(Kind::Pod, q.clone());
    s.replace_all(Kind::Pod, BTreeMap::new());
    let mut q_terminating = q.clone();
    q_terminating["metadata"]["resourceVersion"] = json!("11");
    q_terminating["metadata"]["deletionTimestamp"] = json!(NOW);
    s.delete_answer(Kind::Pod, "shop", "q", q_terminating);
    s.apply(Kind::Pod, q);
    assert_eq!(s.list(Kind::Pod).count(), 0);
}

#[test]
fn tombstones_are_bounded() {
    let mut s = Snapshot::default();
    for i in 0..3 * TOMBSTONE_LIMIT as u64 {
        s.remove(Kind::Pod, "shop", &format!("p{i}"), Some(i + 1));
    }
    assert!(s.tombstones.len() <= TOMBSTONE_LIMIT);
    // The newest are kept.
    let last = 3 * TOMBSTONE_LIMIT as u64 - 1;
    let mut p = pod(&format!("p{last}"), json!({}));
    p["metadata"]["resourceVersion"] = json!(last.to_string());
    s.apply(Kind::Pod, p);
    assert_eq!(s.list(Kind::Pod).count(), 0);
}
