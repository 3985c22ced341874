//! The scheduler's planner.

use super::*;

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
