//! The deployment controller's planner.

use super::*;

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
        r["status"] = json!({"replicas": 0});
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

/// A Recreate rollout goes on once the old pods are gone, even when the
/// answer to deleting the last one is read after the watch reported it
/// gone. That answer used to bring the pod back into the snapshot for
/// good: the old pods stayed "running" and the new ReplicaSet never came
/// (`hostile_text::cluster_text_is_shown_escaped` timed out in CI with no
/// pod in the namespace).
#[test]
fn recreate_goes_on_after_a_late_delete_answer() {
    let mut d = deployment("checkout", 1, "registry.lab/app:v2");
    d["spec"]["strategy"] = json!({"type": "Recreate"});
    d["metadata"]["annotations"] = json!({REVISION_ANNOTATION: "1"});
    let old = rs_obj(
        "checkout-1",
        &d,
        0,
        "registry.lab/app:v1",
        1,
        json!({"replicas": 1}),
    );
    let mut p = pod("checkout-1-abcde", json!({"nodeName": "lab-1"}));
    p["metadata"]["ownerReferences"] = json!([owner_reference(Kind::ReplicaSet, &old)]);
    p["metadata"]["labels"] = old["spec"]["template"]["metadata"]["labels"].clone();
    p["metadata"]["resourceVersion"] = json!("5");
    p["status"] = json!({"phase": "Pending"});
    let mut snap = Snapshot::from_objects(vec![d, old, p.clone()]);
    let creates = |snap: &Snapshot| -> Vec<Value> {
        plan_deployments(snap, &clock())
            .into_iter()
            .filter_map(|a| match a {
                Action::Create { body, .. } => Some(body),
                _ => None,
            })
            .collect()
    };
    // The old ReplicaSet, scaled to 0, deletes its pod; the rollout waits.
    assert!(plan_replicasets(&snap, &clock()).iter().any(
        |a| matches!(a, Action::Delete { kind: Kind::Pod, name, .. } if name == "checkout-1-abcde")
    ));
    assert!(creates(&snap).is_empty());
    // The watch: terminating, then gone (the kubelet was quick); then the
    // DELETE's answer, the pod terminating.
    let mut terminating = p;
    terminating["metadata"]["resourceVersion"] = json!("6");
    terminating["metadata"]["deletionTimestamp"] = json!(NOW);
    snap.apply(Kind::Pod, terminating.clone());
    snap.remove(Kind::Pod, "shop", "checkout-1-abcde", Some(7));
    snap.delete_answer(Kind::Pod, "shop", "checkout-1-abcde", terminating);
    assert_eq!(snap.list(Kind::Pod).count(), 0);
    // The ReplicaSet's status follows.
    snap.update_local(Kind::ReplicaSet, "shop", "checkout-1", |r| {
        r["status"] = json!({});
    });
    let created = creates(&snap);
    assert_eq!(created.len(), 1, "{created:#?}");
    assert_eq!(created[0]["kind"], "ReplicaSet");
    assert_eq!(created[0]["spec"]["replicas"], 1);
}
