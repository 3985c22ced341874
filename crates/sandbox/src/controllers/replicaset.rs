//! The ReplicaSet controller: pods from the template, deletion ranking,
//! status.

use super::*;

pub(super) const RS_CONTROLLER: &str = "replicaset-controller";
pub(super) const RS_STATUS_FIELDS: &[&str] = &[
    "replicas",
    "fullyLabeledReplicas",
    "readyReplicas",
    "availableReplicas",
    "observedGeneration",
];

/// Deletion order: unscheduled, pending, not ready, most restarts, newest first.
pub(super) fn deletion_rank(p: &Value) -> impl Ord {
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
