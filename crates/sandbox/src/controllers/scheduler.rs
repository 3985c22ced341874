//! The scheduler: binds pending `default-scheduler` pods to a fitting
//! node, fewest pods first, or reports why none fits.

use super::*;

pub(super) const SCHEDULER: &str = "default-scheduler";

pub(super) fn node_ready(node: &Value) -> bool {
    condition_true(&node["status"]["conditions"], "Ready")
}

/// Whether one of `tolerations` tolerates `taint` (the API's rules).
pub(super) fn tolerates(tolerations: &Value, taint: &Value) -> bool {
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

pub(super) fn requirement_matches(value: Option<&str>, operator: &str, values: &[&str]) -> bool {
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

pub(super) fn term_matches(term: &Value, node: &Value) -> bool {
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
pub(super) fn node_affinity_matches(pod: &Value, node: &Value) -> bool {
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
pub(super) fn node_fit(pod: &Value, node: &Value) -> Result<(), String> {
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
