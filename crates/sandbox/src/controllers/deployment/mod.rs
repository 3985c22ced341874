//! The Deployment controller: ReplicaSets named by `pod-template-hash`,
//! RollingUpdate and Recreate, proportional scaling, pause, revision
//! history, status and conditions as `kubectl rollout status` reads them.
//!
//! `sync`: one Deployment's sync ([`DeploymentSync`]).

mod sync;

use super::*;
use sync::DeploymentSync;

pub(super) const DEPLOYMENT_CONTROLLER: &str = "deployment-controller";
pub(super) const D_STATUS_FIELDS: &[&str] = &[
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

pub(super) fn fnv32a(bytes: &[u8], mut h: u32) -> u32 {
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(16_777_619);
    }
    h
}

/// Writes `v` as JSON with sorted keys and no nulls, whatever map order
/// serde_json was built with.
pub(super) fn canonical(v: &Value, out: &mut String) {
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
pub(super) fn normalized_template(template: &Value) -> Value {
    pub(super) fn prune(v: &Value) -> Option<Value> {
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

pub(super) fn templates_equal(a: &Value, b: &Value) -> bool {
    let (mut x, mut y) = (String::new(), String::new());
    canonical(&normalized_template(a), &mut x);
    canonical(&normalized_template(b), &mut y);
    x == y
}

/// What the deployment controller needs of one of its ReplicaSets (owned, so
/// the planner can scale it locally and carry on, as the real one does).
#[derive(Debug, Clone)]
pub(super) struct RsView {
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
    pub(super) fn new(obj: &Value) -> RsView {
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

    pub(super) fn annotation_int(&self, key: &str) -> Option<i32> {
        annotation(&self.obj, key).and_then(|v| v.parse().ok())
    }
}

pub(super) fn by_creation(a: &RsView, b: &RsView) -> std::cmp::Ordering {
    (a.created, &a.name).cmp(&(b.created, &b.name))
}

/// The Deployment status as the controller computes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct DStatus {
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
    pub(super) fn parse(s: &Value) -> DStatus {
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

    pub(super) fn to_map(&self) -> Map<String, Value> {
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

    pub(super) fn condition(&self, type_: &str) -> Option<&Value> {
        self.conditions
            .iter()
            .find(|c| c["type"].as_str() == Some(type_))
    }

    pub(super) fn remove_condition(&mut self, type_: &str) {
        self.conditions
            .retain(|c| c["type"].as_str() != Some(type_));
    }

    /// Go's `SetDeploymentCondition`.
    pub(super) fn set_condition(&mut self, mut c: Value) {
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

pub(super) fn dcondition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    clock: &Clock,
) -> Value {
    json!({
        "type": type_, "status": status,
        "lastUpdateTime": clock.stamp(), "lastTransitionTime": clock.stamp(),
        "reason": reason, "message": message,
    })
}

pub(super) const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub(super) const TIMED_OUT: &str = "ProgressDeadlineExceeded";

/// The Deployment's annotations the controller copies to its ReplicaSets.
pub(super) fn copied_annotations(d: &Value) -> Vec<(String, Value)> {
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
