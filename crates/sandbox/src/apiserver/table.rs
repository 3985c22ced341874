//! `meta.k8s.io/v1` `Table` rendering (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`),
//! with the columns and cell logic of kube-apiserver's printers
//! (`pkg/printers/internalversion/printers.go`). The server always renders the wide
//! (priority 1) columns too; `kubectl get` hides them unless `-o wide`.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::select::LabelSelector;

const NAME_DOC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const AGE_DOC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// A column: (name, type, priority, description). `Name` columns get format "name".
type Col = (&'static str, &'static str, u8, &'static str);

const NAME: Col = ("Name", "string", 0, NAME_DOC);
const AGE: Col = ("Age", "string", 0, AGE_DOC);
const CONTAINERS: Col = (
    "Containers",
    "string",
    1,
    "Names of each container in the template.",
);
const IMAGES: Col = (
    "Images",
    "string",
    1,
    "Images referenced by each container in the template.",
);
const SELECTOR: Col = (
    "Selector",
    "string",
    1,
    "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
);

fn columns(resource: &str) -> Vec<Col> {
    match resource {
        "pods" => pods_columns(),
        "deployments" => deployments_columns(),
        "replicasets" => replicasets_columns(),
        "secrets" => vec![
            NAME,
            (
                "Type",
                "string",
                0,
                "Used to facilitate programmatic handling of secret data.",
            ),
            ("Data", "string", 0, "Data contains the secret data."),
            AGE,
        ],
        "serviceaccounts" => vec![
            NAME,
            (
                "Secrets",
                "string",
                0,
                "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.",
            ),
            AGE,
        ],
        "events" => events_columns(),
        "namespaces" => vec![
            NAME,
            ("Status", "string", 0, "The status of the namespace"),
            AGE,
        ],
        "nodes" => nodes_columns(),
        "jobs" => jobs_columns(),
        "cronjobs" => cronjobs_columns(),
        "configmaps" => vec![
            NAME,
            ("Data", "string", 0, "Data contains the configuration data."),
            AGE,
        ],
        "services" => services_columns(),
        "leases" => vec![
            NAME,
            (
                "Holder",
                "string",
                0,
                "holderIdentity contains the identity of the holder of a current lease.",
            ),
            AGE,
        ],
        "statefulsets" => vec![
            NAME,
            ("Ready", "string", 0, "Number of the pod with ready state"),
            AGE,
            CONTAINERS,
            IMAGES,
        ],
        "daemonsets" => daemonsets_columns(),
        _ => vec![NAME, AGE],
    }
}

/// The columns of `kubectl get pods`.
fn pods_columns() -> Vec<Col> {
    vec![
        NAME,
        (
            "Ready",
            "string",
            0,
            "The aggregate readiness state of this pod for accepting traffic.",
        ),
        (
            "Status",
            "string",
            0,
            "The aggregate status of the containers in this pod.",
        ),
        (
            "Restarts",
            "string",
            0,
            "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
        ),
        AGE,
        (
            "IP",
            "string",
            1,
            "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
        ),
        (
            "Node",
            "string",
            1,
            "NodeName indicates in which node this pod is scheduled.",
        ),
        (
            "Nominated Node",
            "string",
            1,
            "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods.",
        ),
        (
            "Readiness Gates",
            "string",
            1,
            "If specified, all readiness gates will be evaluated for pod readiness.",
        ),
    ]
}

/// The columns of `kubectl get deployments`.
fn deployments_columns() -> Vec<Col> {
    vec![
        NAME,
        ("Ready", "string", 0, "Number of the pod with ready state"),
        (
            "Up-to-date",
            "integer",
            0,
            "Total number of non-terminating pods targeted by this deployment that have the desired template spec.",
        ),
        (
            "Available",
            "integer",
            0,
            "Total number of available non-terminating pods (ready for at least minReadySeconds) targeted by this deployment.",
        ),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ]
}

/// The columns of `kubectl get replicasets`.
fn replicasets_columns() -> Vec<Col> {
    vec![
        NAME,
        (
            "Desired",
            "integer",
            0,
            "Replicas is the number of desired pods.",
        ),
        (
            "Current",
            "integer",
            0,
            "Replicas is the most recently observed number of non-terminating pods.",
        ),
        (
            "Ready",
            "integer",
            0,
            "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition.",
        ),
        AGE,
        CONTAINERS,
        IMAGES,
        (
            "Selector",
            "string",
            1,
            "Selector is a label query over pods that should match the replica count.",
        ),
    ]
}

/// The columns of `kubectl get events`.
fn events_columns() -> Vec<Col> {
    vec![
        (
            "Last Seen",
            "string",
            0,
            "The time at which the most recent occurrence of this event was recorded.",
        ),
        (
            "Type",
            "string",
            0,
            "Type of this event (Normal, Warning), new types could be added in the future",
        ),
        (
            "Reason",
            "string",
            0,
            "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
        ),
        (
            "Object",
            "string",
            0,
            "The object that this event is about.",
        ),
        (
            "Subobject",
            "string",
            1,
            "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2].",
        ),
        (
            "Source",
            "string",
            1,
            "The component reporting this event. Should be a short machine understandable string.",
        ),
        (
            "Message",
            "string",
            0,
            "A human-readable description of the status of this operation.",
        ),
        (
            "First Seen",
            "string",
            1,
            "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
        ),
        (
            "Count",
            "string",
            1,
            "The number of times this event has occurred.",
        ),
        ("Name", "string", 1, NAME_DOC),
    ]
}

/// The columns of `kubectl get nodes`.
fn nodes_columns() -> Vec<Col> {
    vec![
        NAME,
        ("Status", "string", 0, "The status of the node"),
        ("Roles", "string", 0, "The roles of the node"),
        AGE,
        (
            "Version",
            "string",
            0,
            "Kubelet Version reported by the node.",
        ),
        (
            "Internal-IP",
            "string",
            1,
            "List of addresses reachable to the node.",
        ),
        (
            "External-IP",
            "string",
            1,
            "List of addresses reachable to the node.",
        ),
        (
            "OS-Image",
            "string",
            1,
            "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
        ),
        (
            "Kernel-Version",
            "string",
            1,
            "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
        ),
        (
            "Container-Runtime",
            "string",
            1,
            "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
        ),
    ]
}

/// The columns of `kubectl get jobs`.
fn jobs_columns() -> Vec<Col> {
    vec![
        NAME,
        ("Status", "string", 0, "Status of the job."),
        (
            "Completions",
            "string",
            0,
            "The number of pods which reached phase Succeeded.",
        ),
        (
            "Duration",
            "string",
            0,
            "Time required to complete the job.",
        ),
        AGE,
        CONTAINERS,
        IMAGES,
        (
            "Selector",
            "string",
            1,
            "A label query over pods that should match the pod count.",
        ),
    ]
}

/// The columns of `kubectl get cronjobs`.
fn cronjobs_columns() -> Vec<Col> {
    vec![
        NAME,
        (
            "Schedule",
            "string",
            0,
            "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.",
        ),
        (
            "Timezone",
            "string",
            0,
            "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones.",
        ),
        (
            "Suspend",
            "boolean",
            0,
            "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.",
        ),
        (
            "Active",
            "integer",
            0,
            "A list of pointers to currently running jobs.",
        ),
        (
            "Last Schedule",
            "string",
            0,
            "Information when was the last time the job was successfully scheduled.",
        ),
        AGE,
        CONTAINERS,
        IMAGES,
        (
            "Selector",
            "string",
            1,
            "A label query over pods that should match the pod count.",
        ),
    ]
}

/// The columns of `kubectl get services`.
fn services_columns() -> Vec<Col> {
    vec![
        NAME,
        (
            "Type",
            "string",
            0,
            "type determines how the Service is exposed.",
        ),
        (
            "Cluster-IP",
            "string",
            0,
            "clusterIP is the IP address of the service and is usually assigned randomly.",
        ),
        (
            "External-IP",
            "string",
            0,
            "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
        ),
        (
            "Port(s)",
            "string",
            0,
            "The list of ports that are exposed by this service.",
        ),
        AGE,
        (
            "Selector",
            "string",
            1,
            "Route service traffic to pods with label keys and values matching this selector.",
        ),
    ]
}

/// The columns of `kubectl get daemonsets`.
fn daemonsets_columns() -> Vec<Col> {
    vec![
        NAME,
        (
            "Desired",
            "integer",
            0,
            "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod).",
        ),
        (
            "Current",
            "integer",
            0,
            "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod.",
        ),
        (
            "Ready",
            "integer",
            0,
            "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition.",
        ),
        (
            "Up-to-date",
            "integer",
            0,
            "The total number of nodes that are running updated daemon pod",
        ),
        (
            "Available",
            "integer",
            0,
            "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)",
        ),
        (
            "Node Selector",
            "string",
            0,
            "NodeSelector is a selector which must be true for the pod to fit on a node.",
        ),
        AGE,
        CONTAINERS,
        IMAGES,
        (
            "Selector",
            "string",
            1,
            "A label query over pods that are managed by the daemon set.",
        ),
    ]
}

// ---------------------------------------------------------------------------
// Small accessors
// ---------------------------------------------------------------------------

fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |cur, part| cur.get(part))
}

fn s<'a>(v: &'a Value, path: &str) -> &'a str {
    at(v, path).and_then(Value::as_str).unwrap_or("")
}

fn n(v: &Value, path: &str) -> i64 {
    at(v, path).and_then(Value::as_i64).unwrap_or(0)
}

fn arr<'a>(v: &'a Value, path: &str) -> &'a [Value] {
    at(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn time(v: &Value, path: &str) -> Option<DateTime<Utc>> {
    let text = s(v, path);
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn or_none(text: &str) -> String {
    if text.is_empty() {
        "<none>".to_string()
    } else {
        text.to_string()
    }
}

/// `duration.HumanDuration`.
pub fn human_duration(d: chrono::Duration) -> String {
    pullfix::duration::age(d.num_seconds())
}

/// `translateTimestampSince`: `<unknown>` for a missing timestamp.
fn since(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match t {
        Some(t) => human_duration(now - t),
        None => "<unknown>".to_string(),
    }
}

fn age(obj: &Value, now: DateTime<Utc>) -> Value {
    Value::from(since(time(obj, "metadata.creationTimestamp"), now))
}

fn name(obj: &Value) -> Value {
    Value::from(s(obj, "metadata.name"))
}

/// `layoutContainerCells`: comma-joined names and images.
fn container_cells(containers: &[Value]) -> (Value, Value) {
    let names: Vec<&str> = containers.iter().map(|c| s(c, "name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| s(c, "image")).collect();
    (Value::from(names.join(",")), Value::from(images.join(",")))
}

/// `metav1.FormatLabelSelector`.
fn format_selector(sel: Option<&Value>) -> Value {
    match LabelSelector::from_match(sel.unwrap_or(&Value::Null)) {
        Ok(sel) => Value::from(or_none(&sel.to_string())),
        Err(_) => Value::from("<error>"),
    }
}

/// `labels.FormatLabels`: `k=v,...` sorted, or `<none>`.
fn format_labels(map: Option<&Value>) -> Value {
    let mut pairs: Vec<String> = map
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    pairs.sort();
    Value::from(or_none(&pairs.join(",")))
}

fn condition_true(conditions: &[Value], kind: &str) -> bool {
    conditions
        .iter()
        .any(|c| s(c, "type") == kind && s(c, "status") == "True")
}

// ---------------------------------------------------------------------------
// Row printers
// ---------------------------------------------------------------------------

fn pod_cells(pod: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let init_specs = arr(pod, "spec.initContainers");
    let restartable = |cname: &str| {
        init_specs
            .iter()
            .any(|c| s(c, "name") == cname && s(c, "restartPolicy") == "Always")
    };
    let total = arr(pod, "spec.containers").len()
        + init_specs
            .iter()
            .filter(|c| s(c, "restartPolicy") == "Always")
            .count();
    let mut ready = 0usize;
    let mut restarts = 0i64;
    let mut sidecar_restarts = 0i64;
    let mut last_restart: Option<DateTime<Utc>> = None;
    let mut sidecar_last_restart: Option<DateTime<Utc>> = None;
    let later = |a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>| match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };

    let phase = s(pod, "status.phase");
    let mut reason = phase.to_string();
    if !s(pod, "status.reason").is_empty() {
        reason = s(pod, "status.reason").to_string();
    }
    let conditions = arr(pod, "status.conditions");
    if conditions
        .iter()
        .any(|c| s(c, "type") == "PodScheduled" && s(c, "reason") == "SchedulingGated")
    {
        reason = "SchedulingGated".to_string();
    }

    let mut initializing = false;
    for (i, c) in arr(pod, "status.initContainerStatuses").iter().enumerate() {
        restarts += n(c, "restartCount");
        let finished = time(c, "lastState.terminated.finishedAt");
        if at(c, "lastState.terminated").is_some() {
            last_restart = later(last_restart, finished);
        }
        let is_sidecar = restartable(s(c, "name"));
        if is_sidecar {
            sidecar_restarts += n(c, "restartCount");
            if at(c, "lastState.terminated").is_some() {
                sidecar_last_restart = later(sidecar_last_restart, finished);
            }
        }
        let terminated = at(c, "state.terminated").filter(|t| t.is_object());
        let waiting_reason = s(c, "state.waiting.reason");
        if terminated.is_some_and(|t| n(t, "exitCode") == 0) {
            continue;
        }
        if is_sidecar && at(c, "started").and_then(Value::as_bool) == Some(true) {
            if at(c, "ready").and_then(Value::as_bool) == Some(true) {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            reason = if !s(t, "reason").is_empty() {
                format!("Init:{}", s(t, "reason"))
            } else if n(t, "signal") != 0 {
                format!("Init:Signal:{}", n(t, "signal"))
            } else {
                format!("Init:ExitCode:{}", n(t, "exitCode"))
            };
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    if !initializing || condition_true(conditions, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = sidecar_last_restart;
        let mut has_running = false;
        for c in arr(pod, "status.containerStatuses").iter().rev() {
            restarts += n(c, "restartCount");
            if at(c, "lastState.terminated").is_some() {
                last_restart = later(last_restart, time(c, "lastState.terminated.finishedAt"));
            }
            let terminated = at(c, "state.terminated").filter(|t| t.is_object());
            if !s(c, "state.waiting.reason").is_empty() {
                reason = s(c, "state.waiting.reason").to_string();
            } else if let Some(t) = terminated {
                reason = if !s(t, "reason").is_empty() {
                    s(t, "reason").to_string()
                } else if n(t, "signal") != 0 {
                    format!("Signal:{}", n(t, "signal"))
                } else {
                    format!("ExitCode:{}", n(t, "exitCode"))
                };
            } else if at(c, "ready").and_then(Value::as_bool) == Some(true)
                && at(c, "state.running").is_some_and(Value::is_object)
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if condition_true(conditions, "Ready") {
                "Running".to_string()
            } else {
                "NotReady".to_string()
            };
        }
    }

    let deleting = at(pod, "metadata.deletionTimestamp").is_some_and(|v| !v.is_null());
    if deleting && s(pod, "status.reason") == "NodeLost" {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_string();
    }

    let restarts_text = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", human_duration(now - t)),
        _ => restarts.to_string(),
    };

    let pod_ip = arr(pod, "status.podIPs")
        .first()
        .map(|p| s(p, "ip"))
        .filter(|ip| !ip.is_empty())
        .unwrap_or_else(|| s(pod, "status.podIP"));
    let gates = arr(pod, "spec.readinessGates");
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let ok = gates
            .iter()
            .filter(|g| {
                conditions
                    .iter()
                    .find(|c| s(c, "type") == s(g, "conditionType"))
                    .is_some_and(|c| s(c, "status") == "True")
            })
            .count();
        format!("{ok}/{}", gates.len())
    };
    vec![
        name(pod),
        Value::from(format!("{ready}/{total}")),
        Value::from(reason),
        Value::from(restarts_text),
        age(pod, now),
        Value::from(or_none(pod_ip)),
        Value::from(or_none(s(pod, "spec.nodeName"))),
        Value::from(or_none(s(pod, "status.nominatedNodeName"))),
        Value::from(readiness_gates),
    ]
}

fn event_cells(ev: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let first = match time(ev, "firstTimestamp") {
        Some(t) => since(Some(t), now),
        None => since(time(ev, "eventTime"), now),
    };
    let mut last = match time(ev, "lastTimestamp") {
        Some(t) => since(Some(t), now),
        None => first.clone(),
    };
    let mut count = n(ev, "count");
    if at(ev, "series").is_some_and(Value::is_object) {
        last = since(time(ev, "series.lastObservedTime"), now);
        count = n(ev, "series.count");
    } else if count == 0 {
        count = 1;
    }
    let kind = s(ev, "involvedObject.kind").to_lowercase();
    let target = match s(ev, "involvedObject.name") {
        "" => kind,
        obj_name => format!("{kind}/{obj_name}"),
    };
    let component = match s(ev, "source.component") {
        "" => s(ev, "reportingController"),
        c => c,
    };
    let instance = match s(ev, "source.host") {
        "" => s(ev, "reportingInstance"),
        h => h,
    };
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        Value::from(last),
        Value::from(s(ev, "type")),
        Value::from(s(ev, "reason")),
        Value::from(target),
        Value::from(s(ev, "involvedObject.fieldPath")),
        Value::from(source),
        Value::from(s(ev, "message").trim()),
        Value::from(first),
        Value::from(count),
        name(ev),
    ]
}

fn node_cells(node: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut status: Vec<String> = Vec::new();
    // Like Go's map of conditions by type, the last Ready condition wins.
    if let Some(c) = arr(node, "status.conditions")
        .iter()
        .rev()
        .find(|c| s(c, "type") == "Ready")
    {
        status.push(if s(c, "status") == "True" {
            "Ready".into()
        } else {
            "NotReady".into()
        });
    }
    if status.is_empty() {
        status.push("Unknown".into());
    }
    if at(node, "spec.unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push("SchedulingDisabled".into());
    }
    let mut roles: Vec<String> = Vec::new();
    if let Some(labels) = at(node, "metadata.labels").and_then(Value::as_object) {
        for (k, v) in labels {
            let role = if let Some(r) = k.strip_prefix("node-role.kubernetes.io/") {
                r.to_string()
            } else if k == "kubernetes.io/role" {
                v.as_str().unwrap_or("").to_string()
            } else {
                continue;
            };
            if !role.is_empty() && !roles.contains(&role) {
                roles.push(role);
            }
        }
    }
    roles.sort();
    let address = |kind: &str| {
        arr(node, "status.addresses")
            .iter()
            .find(|a| s(a, "type") == kind)
            .map(|a| s(a, "address").to_string())
            .unwrap_or_else(|| "<none>".to_string())
    };
    let unknown = |p: &str| match s(node, p) {
        "" => "<unknown>".to_string(),
        v => v.to_string(),
    };
    vec![
        name(node),
        Value::from(status.join(",")),
        Value::from(or_none(&roles.join(","))),
        age(node, now),
        Value::from(s(node, "status.nodeInfo.kubeletVersion")),
        Value::from(address("InternalIP")),
        Value::from(address("ExternalIP")),
        Value::from(unknown("status.nodeInfo.osImage")),
        Value::from(unknown("status.nodeInfo.kernelVersion")),
        Value::from(unknown("status.nodeInfo.containerRuntimeVersion")),
    ]
}

fn job_cells(job: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let succeeded = n(job, "status.succeeded");
    let completions = match at(job, "spec.completions").and_then(Value::as_i64) {
        Some(c) => format!("{succeeded}/{c}"),
        None => {
            let parallelism = n(job, "spec.parallelism");
            if parallelism > 1 {
                format!("{succeeded}/1 of {parallelism}")
            } else {
                format!("{succeeded}/1")
            }
        }
    };
    let duration = match (
        time(job, "status.startTime"),
        time(job, "status.completionTime"),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(now - start),
        (Some(start), Some(end)) => human_duration(end - start),
    };
    let conds = arr(job, "status.conditions");
    let status = if condition_true(conds, "Complete") {
        "Complete"
    } else if condition_true(conds, "Failed") {
        "Failed"
    } else if at(job, "metadata.deletionTimestamp").is_some_and(|v| !v.is_null()) {
        "Terminating"
    } else if condition_true(conds, "Suspended") {
        "Suspended"
    } else if condition_true(conds, "FailureTarget") {
        "FailureTarget"
    } else if condition_true(conds, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    };
    let (names, images) = container_cells(arr(job, "spec.template.spec.containers"));
    vec![
        name(job),
        Value::from(status),
        Value::from(completions),
        Value::from(duration),
        age(job, now),
        names,
        images,
        format_selector(at(job, "spec.selector")),
    ]
}

fn service_cells(svc: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let svc_type = s(svc, "spec.type");
    let cluster_ip = arr(svc, "spec.clusterIPs")
        .first()
        .and_then(Value::as_str)
        .unwrap_or_else(|| s(svc, "spec.clusterIP"));
    let external_ips: Vec<&str> = arr(svc, "spec.externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let external = match svc_type {
        "ClusterIP" | "NodePort" | "" => or_none(&external_ips.join(",")),
        "LoadBalancer" => {
            let mut all: Vec<String> = arr(svc, "status.loadBalancer.ingress")
                .iter()
                .map(|i| match s(i, "ip") {
                    "" => s(i, "hostname").to_string(),
                    ip => ip.to_string(),
                })
                .filter(|x| !x.is_empty())
                .collect();
            all.extend(external_ips.iter().map(|x| x.to_string()));
            if all.is_empty() {
                "<pending>".to_string()
            } else {
                all.join(",")
            }
        }
        "ExternalName" => s(svc, "spec.externalName").to_string(),
        _ => "<unknown>".to_string(),
    };
    let ports: Vec<String> = arr(svc, "spec.ports")
        .iter()
        .map(|p| {
            let proto = match s(p, "protocol") {
                "" => "TCP",
                x => x,
            };
            match n(p, "nodePort") {
                0 => format!("{}/{proto}", n(p, "port")),
                np => format!("{}:{np}/{proto}", n(p, "port")),
            }
        })
        .collect();
    vec![
        name(svc),
        Value::from(svc_type),
        Value::from(or_none(cluster_ip)),
        Value::from(external),
        Value::from(or_none(&ports.join(","))),
        age(svc, now),
        format_labels(at(svc, "spec.selector")),
    ]
}

fn cells(resource: &str, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    match resource {
        "pods" => pod_cells(obj, now),
        "deployments" => deployment_cells(obj, now),
        "replicasets" => replicaset_cells(obj, now),
        "statefulsets" => statefulset_cells(obj, now),
        "daemonsets" => daemonset_cells(obj, now),
        "secrets" => {
            let data = at(obj, "data")
                .and_then(Value::as_object)
                .map_or(0, Map::len);
            vec![
                name(obj),
                Value::from(s(obj, "type")),
                Value::from(data as i64),
                age(obj, now),
            ]
        }
        "serviceaccounts" => {
            vec![
                name(obj),
                Value::from(arr(obj, "secrets").len() as i64),
                age(obj, now),
            ]
        }
        "events" => event_cells(obj, now),
        "namespaces" => vec![
            name(obj),
            Value::from(s(obj, "status.phase")),
            age(obj, now),
        ],
        "nodes" => node_cells(obj, now),
        "jobs" => job_cells(obj, now),
        "cronjobs" => cronjob_cells(obj, now),
        "configmaps" => {
            let count = |p: &str| at(obj, p).and_then(Value::as_object).map_or(0, Map::len);
            vec![
                name(obj),
                Value::from((count("data") + count("binaryData")) as i64),
                age(obj, now),
            ]
        }
        "services" => service_cells(obj, now),
        "leases" => {
            vec![
                name(obj),
                Value::from(s(obj, "spec.holderIdentity")),
                age(obj, now),
            ]
        }
        _ => vec![name(obj), age(obj, now)],
    }
}

/// The cells of one row of `kubectl get deployments`.
fn deployment_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = container_cells(arr(obj, "spec.template.spec.containers"));
    let desired = at(obj, "spec.replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    vec![
        name(obj),
        Value::from(format!("{}/{desired}", n(obj, "status.readyReplicas"))),
        Value::from(n(obj, "status.updatedReplicas")),
        Value::from(n(obj, "status.availableReplicas")),
        age(obj, now),
        names,
        images,
        format_selector(at(obj, "spec.selector")),
    ]
}

/// The cells of one row of `kubectl get replicasets`.
fn replicaset_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = container_cells(arr(obj, "spec.template.spec.containers"));
    let desired = at(obj, "spec.replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    vec![
        name(obj),
        Value::from(desired),
        Value::from(n(obj, "status.replicas")),
        Value::from(n(obj, "status.readyReplicas")),
        age(obj, now),
        names,
        images,
        format_selector(at(obj, "spec.selector")),
    ]
}

/// The cells of one row of `kubectl get statefulsets`.
fn statefulset_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = container_cells(arr(obj, "spec.template.spec.containers"));
    let desired = at(obj, "spec.replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    vec![
        name(obj),
        Value::from(format!("{}/{desired}", n(obj, "status.readyReplicas"))),
        age(obj, now),
        names,
        images,
    ]
}

/// The cells of one row of `kubectl get daemonsets`.
fn daemonset_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = container_cells(arr(obj, "spec.template.spec.containers"));
    vec![
        name(obj),
        Value::from(n(obj, "status.desiredNumberScheduled")),
        Value::from(n(obj, "status.currentNumberScheduled")),
        Value::from(n(obj, "status.numberReady")),
        Value::from(n(obj, "status.updatedNumberScheduled")),
        Value::from(n(obj, "status.numberAvailable")),
        format_labels(at(obj, "spec.template.spec.nodeSelector")),
        age(obj, now),
        names,
        images,
        format_selector(at(obj, "spec.selector")),
    ]
}

/// The cells of one row of `kubectl get cronjobs`.
fn cronjob_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let last = match time(obj, "status.lastScheduleTime") {
        Some(t) => since(Some(t), now),
        None => "<none>".to_string(),
    };
    let tz = match at(obj, "spec.timeZone").and_then(Value::as_str) {
        Some(tz) => tz.to_string(),
        None => "<none>".to_string(),
    };
    let suspend = match at(obj, "spec.suspend").and_then(Value::as_bool) {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    };
    let (names, images) =
        container_cells(arr(obj, "spec.jobTemplate.spec.template.spec.containers"));
    vec![
        name(obj),
        Value::from(s(obj, "spec.schedule")),
        Value::from(tz),
        Value::from(suspend),
        Value::from(arr(obj, "status.active").len() as i64),
        Value::from(last),
        age(obj, now),
        names,
        images,
        format_selector(at(obj, "spec.jobTemplate.spec.selector")),
    ]
}

/// Renders `items` (objects of the plural `resource`) as a `meta.k8s.io/v1` Table.
/// `include_object` is the `?includeObject=` value: "None", "Metadata" (the default
/// on a real server) or "Object".
pub fn table(
    resource: &str,
    items: &[Value],
    include_object: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Value {
    let column_definitions: Vec<Value> = columns(resource)
        .into_iter()
        .map(|(col, ty, priority, description)| {
            let format = if col == "Name" { "name" } else { "" };
            json!({
                "name": col,
                "type": ty,
                "format": format,
                "description": description,
                "priority": priority,
            })
        })
        .collect();
    let rows: Vec<Value> = items
        .iter()
        .map(|item| {
            let mut row = Map::new();
            row.insert("cells".into(), Value::Array(cells(resource, item, now)));
            match include_object {
                "None" => {}
                "Object" => {
                    row.insert("object".into(), item.clone());
                }
                _ => {
                    row.insert(
                        "object".into(),
                        json!({
                            "kind": "PartialObjectMetadata",
                            "apiVersion": "meta.k8s.io/v1",
                            "metadata": item.get("metadata").cloned().unwrap_or_else(|| json!({})),
                        }),
                    );
                }
            }
            Value::Object(row)
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": ""},
        "columnDefinitions": column_definitions,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
    }

    fn cells_of(resource: &str, obj: Value) -> Vec<Value> {
        let t = table(resource, &[obj], "None", now());
        t["rows"][0]["cells"].as_array().unwrap().clone()
    }

    fn headers(resource: &str, priority: u64) -> Vec<String> {
        let t = table(resource, &[], "None", now());
        t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["priority"] == priority)
            .map(|c| c["name"].as_str().unwrap().to_uppercase())
            .collect()
    }

    #[test]
    fn human_durations_match_kubectl() {
        let d = chrono::Duration::seconds;
        assert_eq!(human_duration(d(-5)), "<invalid>");
        assert_eq!(human_duration(d(-1)), "0s");
        assert_eq!(human_duration(d(45)), "45s");
        assert_eq!(human_duration(d(119)), "119s");
        assert_eq!(human_duration(d(5 * 60 + 3)), "5m3s");
        assert_eq!(human_duration(d(5 * 60)), "5m");
        assert_eq!(human_duration(d(42 * 60 + 10)), "42m");
        assert_eq!(human_duration(d(3 * 3600)), "3h");
        assert_eq!(human_duration(d(3 * 3600 + 25 * 60)), "3h25m");
        assert_eq!(human_duration(d(20 * 3600)), "20h");
        assert_eq!(human_duration(d((2 * 24 + 5) * 3600)), "2d5h");
        assert_eq!(human_duration(d(30 * 24 * 3600)), "30d");
        assert_eq!(human_duration(d((3 * 365 + 10) * 24 * 3600)), "3y10d");
    }

    #[test]
    fn headers_like_kubectl_get() {
        assert_eq!(
            headers("pods", 0),
            ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
        );
        assert_eq!(
            headers("pods", 1),
            ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
        );
        assert_eq!(
            headers("deployments", 0),
            ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
        );
        assert_eq!(
            headers("deployments", 1),
            ["CONTAINERS", "IMAGES", "SELECTOR"]
        );
        assert_eq!(
            headers("events", 0),
            ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
        );
        assert_eq!(
            headers("jobs", 0),
            ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
        );
        assert_eq!(
            headers("cronjobs", 0),
            [
                "NAME",
                "SCHEDULE",
                "TIMEZONE",
                "SUSPEND",
                "ACTIVE",
                "LAST SCHEDULE",
                "AGE"
            ]
        );
        assert_eq!(
            headers("nodes", 0),
            ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
        );
        assert_eq!(headers("secrets", 0), ["NAME", "TYPE", "DATA", "AGE"]);
        assert_eq!(headers("widgets", 0), ["NAME", "AGE"]);
        let t = table("pods", &[], "None", now());
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["columnDefinitions"][0]["format"], "name");
    }

    #[test]
    fn pod_in_image_pull_backoff() {
        let pod = json!({
            "metadata": {"name": "web-1", "creationTimestamp": "2024-05-01T11:55:00Z"},
            "spec": {"containers": [{"name": "app"}, {"name": "sidecar"}], "nodeName": "node-1"},
            "status": {"phase": "Pending", "podIPs": [{"ip": "10.1.0.7"}], "containerStatuses": [
                {"name": "app", "ready": false, "restartCount": 0,
                 "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}},
                {"name": "sidecar", "ready": true, "restartCount": 0, "state": {"running": {}}}
            ]}
        });
        let c = cells_of("pods", pod);
        assert_eq!(
            c,
            vec![
                json!("web-1"),
                json!("1/2"),
                json!("ImagePullBackOff"),
                json!("0"),
                json!("5m"),
                json!("10.1.0.7"),
                json!("node-1"),
                json!("<none>"),
                json!("<none>")
            ]
        );
    }

    #[test]
    fn pod_init_err_image_pull_and_init_progress() {
        let pod = json!({
            "metadata": {"name": "p", "creationTimestamp": "2024-05-01T11:59:15Z"},
            "spec": {"initContainers": [{"name": "init"}], "containers": [{"name": "app"}]},
            "status": {"phase": "Pending",
                "initContainerStatuses": [{"name": "init", "restartCount": 0, "state": {"waiting": {"reason": "ErrImagePull"}}}],
                "containerStatuses": [{"name": "app", "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]}
        });
        let c = cells_of("pods", pod);
        assert_eq!(c[1], "0/1");
        assert_eq!(c[2], "Init:ErrImagePull");
        assert_eq!(c[4], "45s");
        let pod = json!({
            "metadata": {"name": "p"},
            "spec": {"initContainers": [{"name": "a"}, {"name": "b"}], "containers": [{"name": "app"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [
                {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                {"name": "b", "state": {"running": {}}}
            ]}
        });
        let c = cells_of("pods", pod);
        assert_eq!(c[2], "Init:1/2");
        assert_eq!(c[4], "<unknown>");
        let pod = json!({
            "metadata": {"name": "p"},
            "spec": {"initContainers": [{"name": "a"}], "containers": [{"name": "app"}]},
            "status": {"phase": "Pending", "initContainerStatuses": [
                {"name": "a", "restartCount": 3, "state": {"terminated": {"exitCode": 1, "reason": "Error"}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:58:00Z"}}}
            ]}
        });
        let c = cells_of("pods", pod);
        assert_eq!(c[2], "Init:Error");
        assert_eq!(c[3], "3 (2m ago)");
    }

    #[test]
    fn pod_terminating_completed_error_and_restarts() {
        let base = |status: Value, deletion: Option<&str>| {
            let mut p = json!({"metadata": {"name": "p", "creationTimestamp": "2024-04-29T07:00:00Z"},
                               "spec": {"containers": [{"name": "app"}]}, "status": status});
            if let Some(d) = deletion {
                p["metadata"]["deletionTimestamp"] = json!(d);
            }
            p
        };
        let running = json!({"phase": "Running", "containerStatuses": [
            {"name": "app", "ready": true, "restartCount": 5, "state": {"running": {}},
             "lastState": {"terminated": {"exitCode": 137, "finishedAt": "2024-05-01T11:55:00Z"}}}]});
        let c = cells_of("pods", base(running.clone(), None));
        assert_eq!(c[1], "1/1");
        assert_eq!(c[2], "Running");
        assert_eq!(c[3], "5 (5m ago)");
        assert_eq!(c[4], "2d5h");
        let c = cells_of("pods", base(running, Some("2024-05-01T11:59:00Z")));
        assert_eq!(c[2], "Terminating");
        let done = json!({"phase": "Succeeded", "containerStatuses": [
            {"name": "app", "ready": false, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]});
        assert_eq!(cells_of("pods", base(done.clone(), None))[2], "Completed");
        assert_eq!(
            cells_of("pods", base(done, Some("2024-05-01T11:59:00Z")))[2],
            "Completed"
        );
        let failed = json!({"phase": "Failed", "containerStatuses": [
            {"name": "app", "state": {"terminated": {"exitCode": 2, "reason": "Error"}}}]});
        assert_eq!(cells_of("pods", base(failed, None))[2], "Error");
        let no_reason = json!({"phase": "Failed", "containerStatuses": [
            {"name": "app", "state": {"terminated": {"exitCode": 3}}}]});
        assert_eq!(cells_of("pods", base(no_reason, None))[2], "ExitCode:3");
        let creating = json!({"phase": "Pending", "containerStatuses": [
            {"name": "app", "state": {"waiting": {"reason": "ContainerCreating"}}}]});
        assert_eq!(
            cells_of("pods", base(creating, None))[2],
            "ContainerCreating"
        );
        assert_eq!(
            cells_of("pods", base(json!({"phase": "Pending"}), None))[2],
            "Pending"
        );
    }

    #[test]
    fn deployment_zero_of_five() {
        let d = json!({
            "metadata": {"name": "web", "creationTimestamp": "2024-05-01T11:00:00Z"},
            "spec": {"replicas": 5, "selector": {"matchLabels": {"app": "web", "tier": "fe"}},
                     "template": {"spec": {"containers": [{"name": "app", "image": "registry.example/web:1"}, {"name": "log", "image": "busybox"}]}}},
            "status": {"replicas": 5, "updatedReplicas": 5, "unavailableReplicas": 5}
        });
        assert_eq!(
            cells_of("deployments", d),
            vec![
                json!("web"),
                json!("0/5"),
                json!(5),
                json!(0),
                json!("60m"),
                json!("app,log"),
                json!("registry.example/web:1,busybox"),
                json!("app=web,tier=fe")
            ]
        );
    }

    #[test]
    fn events_like_kubectl_get_events() {
        let ev = json!({
            "metadata": {"name": "web-1.17c", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{app}"},
            "reason": "Failed", "type": "Warning",
            "message": "Failed to pull image \"registry.example/web:1\": unauthorized\n",
            "source": {"component": "kubelet", "host": "node-1"},
            "firstTimestamp": "2024-05-01T11:50:00Z", "lastTimestamp": "2024-05-01T11:59:30Z", "count": 7
        });
        assert_eq!(
            cells_of("events", ev),
            vec![
                json!("30s"),
                json!("Warning"),
                json!("Failed"),
                json!("pod/web-1"),
                json!("spec.containers{app}"),
                json!("kubelet, node-1"),
                json!("Failed to pull image \"registry.example/web:1\": unauthorized"),
                json!("10m"),
                json!(7),
                json!("web-1.17c")
            ]
        );
        // New-style event: eventTime only, reportingController as the source, no count.
        let ev = json!({"metadata": {"name": "e"}, "eventTime": "2024-05-01T11:59:58.123456Z",
                        "reportingController": "default-scheduler", "involvedObject": {"kind": "Pod", "name": "x"},
                        "type": "Normal", "reason": "Scheduled", "message": "ok"});
        let c = cells_of("events", ev);
        assert_eq!(c[0], "1s", "1.88s truncates like Go's int(d.Seconds())");
        assert_eq!(c[5], "default-scheduler");
        assert_eq!(c[8], 1);
    }

    #[test]
    fn jobs_cronjobs_nodes_secrets_services() {
        let job = json!({"metadata": {"name": "j", "creationTimestamp": "2024-05-01T11:00:00Z"},
            "spec": {"completions": 1, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
            "status": {"succeeded": 1, "startTime": "2024-05-01T11:00:00Z", "completionTime": "2024-05-01T11:00:42Z",
                       "conditions": [{"type": "Complete", "status": "True"}]}});
        let c = cells_of("jobs", job);
        assert_eq!(c[1..4], [json!("Complete"), json!("1/1"), json!("42s")]);
        let failed = json!({"metadata": {"name": "j"}, "spec": {"parallelism": 3},
            "status": {"conditions": [{"type": "Failed", "status": "True"}]}});
        let c = cells_of("jobs", failed);
        assert_eq!(c[1..3], [json!("Failed"), json!("0/1 of 3")]);
        let running =
            json!({"metadata": {"name": "j"}, "status": {"startTime": "2024-05-01T11:59:00Z"}});
        assert_eq!(
            cells_of("jobs", running)[1..4],
            [json!("Running"), json!("0/1"), json!("60s")]
        );

        let cj = json!({"metadata": {"name": "cj"}, "spec": {"schedule": "*/5 * * * *", "suspend": false},
            "status": {"active": [{"name": "x"}], "lastScheduleTime": "2024-05-01T11:55:00Z"}});
        assert_eq!(
            cells_of("cronjobs", cj)[..6],
            [
                json!("cj"),
                json!("*/5 * * * *"),
                json!("<none>"),
                json!("False"),
                json!(1),
                json!("5m")
            ]
        );

        let node = json!({"metadata": {"name": "n1", "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "True"}], "nodeInfo": {"kubeletVersion": "v1.33.0"},
                       "addresses": [{"type": "InternalIP", "address": "172.18.0.2"}]}});
        let c = cells_of("nodes", node);
        assert_eq!(
            c[1..3],
            [json!("Ready,SchedulingDisabled"), json!("control-plane")]
        );
        assert_eq!(c[4], "v1.33.0");
        assert_eq!(c[5..7], [json!("172.18.0.2"), json!("<none>")]);

        let secret = json!({"metadata": {"name": "regcred"}, "type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": "e30="}});
        assert_eq!(
            cells_of("secrets", secret)[..3],
            [
                json!("regcred"),
                json!("kubernetes.io/dockerconfigjson"),
                json!(1)
            ]
        );

        let svc = json!({"metadata": {"name": "web"}, "spec": {"type": "NodePort", "clusterIPs": ["10.96.0.10"],
            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}], "selector": {"app": "web"}}});
        let c = cells_of("services", svc);
        assert_eq!(
            c[1..5],
            [
                json!("NodePort"),
                json!("10.96.0.10"),
                json!("<none>"),
                json!("80:30080/TCP,53/UDP")
            ]
        );
        assert_eq!(c[6], "app=web");
    }

    #[test]
    fn include_object_modes() {
        let pod = json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p", "uid": "u1"}, "spec": {}});
        let none = table("pods", std::slice::from_ref(&pod), "None", now());
        assert!(none["rows"][0].get("object").is_none());
        let meta = table("pods", std::slice::from_ref(&pod), "Metadata", now());
        assert_eq!(
            meta["rows"][0]["object"],
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": {"name": "p", "uid": "u1"}})
        );
        let full = table("pods", std::slice::from_ref(&pod), "Object", now());
        assert_eq!(full["rows"][0]["object"], pod);
    }

    #[test]
    fn every_row_has_one_cell_per_column() {
        let weird = [
            json!(null),
            json!("x"),
            json!({"metadata": 5, "spec": [], "status": {"containerStatuses": "no"}}),
        ];
        for r in [
            "pods",
            "deployments",
            "replicasets",
            "secrets",
            "serviceaccounts",
            "events",
            "namespaces",
            "nodes",
            "jobs",
            "cronjobs",
            "configmaps",
            "services",
            "leases",
            "statefulsets",
            "daemonsets",
            "other",
        ] {
            let t = table(r, &weird, "Metadata", now());
            let cols = t["columnDefinitions"].as_array().unwrap().len();
            for row in t["rows"].as_array().unwrap() {
                assert_eq!(row["cells"].as_array().unwrap().len(), cols, "{r}");
            }
        }
    }
}
