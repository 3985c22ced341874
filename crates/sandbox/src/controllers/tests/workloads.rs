//! The ReplicaSet and Job controllers and the garbage collector.

use super::*;

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
    o["metadata"]["ownerReferences"] =
        json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "gone", "uid": "rs-gone"}]);
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
