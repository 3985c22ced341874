//! Defaulting, validation and metadata bookkeeping done by the real API
//! server's registry strategies, for the fields kubectl shows and pullfix
//! reads. Pure functions.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat, Utc};
use rand::Rng;
use serde_json::{Map, Value, json};

use super::errors::Cause;
use super::resources::ResourceDef;

/// Characters of a generateName suffix (`k8s.io/apimachinery/pkg/util/rand`).
pub const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

const DNS1123_SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1123_LABEL: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_LABEL: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

pub fn timestamp(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A random version-4 UUID.
pub fn uuid_v4(rng: &mut impl Rng) -> String {
    let mut b: [u8; 16] = rng.random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The 5-character suffix generateName appends.
pub fn name_suffix(rng: &mut impl Rng) -> String {
    (0..5)
        .map(|_| NAME_ALPHABET[rng.random_range(0..NAME_ALPHABET.len())] as char)
        .collect()
}

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn is_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label)
}

/// Which name rule a kind follows.
fn name_rule(kind: &str) -> &'static str {
    match kind {
        "Namespace" => "label",
        "Service" => "1035",
        _ => "subdomain",
    }
}

/// The 422 cause for an invalid `metadata.name`, if any.
pub fn validate_name(kind: &str, name: &str) -> Option<Cause> {
    if name.is_empty() {
        return Some(Cause::required(
            "metadata.name",
            "name or generateName is required",
        ));
    }
    let (ok, msg, max) = match name_rule(kind) {
        "label" => (is_label(name), DNS1123_LABEL, 63),
        "1035" => (
            is_label(name) && name.as_bytes()[0].is_ascii_lowercase(),
            DNS1035_LABEL,
            63,
        ),
        _ => (is_subdomain(name), DNS1123_SUBDOMAIN, 253),
    };
    if name.len() > max {
        return Some(Cause::invalid(
            "metadata.name",
            name,
            &format!("must be no more than {max} characters"),
        ));
    }
    if ok {
        None
    } else {
        Some(Cause::invalid("metadata.name", name, msg))
    }
}

fn set_default(obj: &mut Value, key: &str, value: Value) {
    if let Some(m) = obj.as_object_mut()
        && m.get(key).is_none_or(Value::is_null)
    {
        m.insert(key.to_string(), value);
    }
}

fn obj_mut<'a>(parent: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    let m = parent.as_object_mut()?;
    let v = m.entry(key.to_string()).or_insert_with(|| json!({}));
    if v.is_null() {
        *v = json!({});
    }
    v.is_object().then_some(v)
}

/// The pull policy the API server defaults from the image reference.
pub fn default_pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) if tag != "latest" => "IfNotPresent",
        _ => "Always",
    }
}

fn default_container(c: &mut Value) {
    let image = c["image"].as_str().unwrap_or("").to_string();
    set_default(c, "imagePullPolicy", json!(default_pull_policy(&image)));
    set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(c, "terminationMessagePolicy", json!("File"));
    set_default(c, "resources", json!({}));
    if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports {
            set_default(p, "protocol", json!("TCP"));
        }
    }
}

/// The ServiceAccount a pod spec names: `serviceAccountName`, else the
/// deprecated `serviceAccount`; none when both are empty.
pub fn service_account_of(spec: &Value) -> Option<String> {
    ["serviceAccountName", "serviceAccount"]
        .iter()
        .filter_map(|k| spec[*k].as_str())
        .find(|s| !s.is_empty())
        .map(str::to_string)
}

/// Pod spec defaults (also for templates).
pub fn default_pod_spec(spec: &mut Value, restart_policy: &str) {
    if !spec.is_object() {
        return;
    }
    set_default(spec, "restartPolicy", json!(restart_policy));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "enableServiceLinks", json!(true));
    // `serviceAccount` is the deprecated alias of `serviceAccountName`: the
    // server's conversion fills each from the other. Defaulting the name to
    // `default` is the ServiceAccount admission plugin's, on pod create only
    // (`handler`), so a template that names none keeps none.
    if let Some(sa) = service_account_of(spec) {
        spec["serviceAccountName"] = json!(sa);
        spec["serviceAccount"] = json!(sa);
    }
    for key in ["containers", "initContainers"] {
        if let Some(cs) = spec.get_mut(key).and_then(Value::as_array_mut) {
            cs.iter_mut().for_each(default_container);
        }
    }
}

/// `BestEffort`, `Burstable` or `Guaranteed` from the containers' resources.
pub fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| spec[*k].as_array())
        .flatten()
        .collect();
    let any = containers.iter().any(|c| {
        ["requests", "limits"].iter().any(|k| {
            c["resources"][*k]
                .as_object()
                .is_some_and(|m| m.contains_key("cpu") || m.contains_key("memory"))
        })
    });
    if !any {
        return "BestEffort";
    }
    let guaranteed = containers.iter().all(|c| {
        ["cpu", "memory"].iter().all(|r| {
            let limit = &c["resources"]["limits"][*r];
            let request = &c["resources"]["requests"][*r];
            !limit.is_null() && (request.is_null() || request == limit)
        })
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn default_template(obj: &mut Value, path: &[&str], restart_policy: &str) {
    let mut cur = &mut *obj;
    for p in path {
        match obj_mut(cur, p) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(spec) = cur.get_mut("spec") {
        default_pod_spec(spec, restart_policy);
    }
    set_default(cur, "metadata", json!({}));
}

fn default_selector_from_template(spec: &mut Value) {
    if spec["selector"].is_null()
        && let Some(labels) = spec["template"]["metadata"]["labels"].as_object()
    {
        spec["selector"] = json!({"matchLabels": labels.clone()});
    }
}

/// Folds Secret `stringData` into base64 `data` and removes it.
pub fn fold_string_data(secret: &mut Value) {
    let Some(m) = secret.as_object_mut() else {
        return;
    };
    let Some(Value::Object(sd)) = m.remove("stringData") else {
        return;
    };
    let data = m.entry("data").or_insert_with(|| json!({}));
    if !data.is_object() {
        *data = json!({});
    }
    for (k, v) in sd {
        let text = v.as_str().unwrap_or("").to_string();
        data[k.as_str()] = json!(STANDARD.encode(text));
    }
}

/// Defaults an object of `def` as the API server does on create and
/// update (`creating`: also the fields only set on create, like a pod's
/// initial status).
pub fn apply_defaults(def: &ResourceDef, obj: &mut Value, creating: bool) {
    match def.kind {
        "Pod" => {
            if let Some(spec) = obj.get_mut("spec") {
                default_pod_spec(spec, "Always");
            }
            if creating {
                let qos = qos_class(&obj["spec"]);
                obj["status"] = json!({"phase": "Pending", "qosClass": qos});
            }
        }
        "Deployment" => default_deployment(obj),
        "ReplicaSet" | "StatefulSet" | "DaemonSet" => default_replicated(def.kind, obj),
        "Job" => {
            if let Some(spec) = obj_mut(obj, "spec") {
                set_default(spec, "backoffLimit", json!(6));
                set_default(spec, "completions", json!(1));
                set_default(spec, "parallelism", json!(1));
                set_default(spec, "completionMode", json!("NonIndexed"));
                set_default(spec, "suspend", json!(false));
            }
            default_template(obj, &["spec", "template"], "Never");
        }
        "CronJob" => {
            if let Some(spec) = obj_mut(obj, "spec") {
                set_default(spec, "concurrencyPolicy", json!("Allow"));
                set_default(spec, "suspend", json!(false));
                set_default(spec, "successfulJobsHistoryLimit", json!(3));
                set_default(spec, "failedJobsHistoryLimit", json!(1));
            }
            default_template(obj, &["spec", "jobTemplate", "spec", "template"], "Never");
        }
        "Secret" => {
            set_default(obj, "type", json!("Opaque"));
            fold_string_data(obj);
        }
        "Namespace" => default_namespace(obj, creating),
        "Service" => default_service(obj),
        _ => {}
    }
}

/// Deployment defaults: replicas, history, deadline, RollingUpdate, selector.
fn default_deployment(obj: &mut Value) {
    if let Some(spec) = obj_mut(obj, "spec") {
        set_default(spec, "replicas", json!(1));
        set_default(spec, "revisionHistoryLimit", json!(10));
        set_default(spec, "progressDeadlineSeconds", json!(600));
        if let Some(strategy) = obj_mut(spec, "strategy") {
            set_default(strategy, "type", json!("RollingUpdate"));
            if strategy["type"] == "RollingUpdate"
                && let Some(ru) = obj_mut(strategy, "rollingUpdate")
            {
                set_default(ru, "maxSurge", json!("25%"));
                set_default(ru, "maxUnavailable", json!("25%"));
            }
        }
        default_selector_from_template(spec);
    }
    default_template(obj, &["spec", "template"], "Always");
}

/// ReplicaSet, StatefulSet and DaemonSet defaults.
fn default_replicated(kind: &str, obj: &mut Value) {
    if let Some(spec) = obj_mut(obj, "spec") {
        if kind != "DaemonSet" {
            set_default(spec, "replicas", json!(1));
        }
        if kind != "ReplicaSet" {
            set_default(spec, "revisionHistoryLimit", json!(10));
        }
        default_selector_from_template(spec);
    }
    default_template(obj, &["spec", "template"], "Always");
}

/// Namespace defaults: the finalizer, the phase, the name label.
fn default_namespace(obj: &mut Value, creating: bool) {
    if creating {
        if let Some(spec) = obj_mut(obj, "spec") {
            set_default(spec, "finalizers", json!(["kubernetes"]));
        }
        obj["status"] = json!({"phase": "Active"});
    }
    // The namespace name label, as the real server sets it.
    if let Some(name) = obj["metadata"]["name"].as_str().map(str::to_string)
        && let Some(meta) = obj_mut(obj, "metadata")
        && let Some(labels) = obj_mut(meta, "labels")
    {
        labels["kubernetes.io/metadata.name"] = json!(name);
    }
}

/// Service defaults: type, session affinity, port protocols and targets.
fn default_service(obj: &mut Value) {
    if let Some(spec) = obj_mut(obj, "spec") {
        set_default(spec, "type", json!("ClusterIP"));
        set_default(spec, "sessionAffinity", json!("None"));
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for p in ports {
                set_default(p, "protocol", json!("TCP"));
                if p["targetPort"].is_null() {
                    p["targetPort"] = p["port"].clone();
                }
            }
        }
    }
}

fn validate_docker_secret(secret: &Value, key: &str, causes: &mut Vec<Cause>) {
    let field = format!("data[{key}]");
    let Some(b64) = secret["data"][key].as_str() else {
        causes.push(Cause::required(&field, ""));
        return;
    };
    let redacted = "<secret contents redacted>";
    match STANDARD.decode(b64) {
        Err(e) => causes.push(Cause::invalid(&field, redacted, &e.to_string())),
        Ok(bytes) => {
            if let Err(e) = serde_json::from_slice::<Value>(&bytes) {
                causes.push(Cause::invalid(&field, redacted, &e.to_string()));
            }
        }
    }
}

fn validate_pod_spec(spec: &Value, field: &str, causes: &mut Vec<Cause>) {
    match spec["containers"].as_array() {
        Some(cs) if !cs.is_empty() => {
            for (i, c) in cs.iter().enumerate() {
                let f = format!("{field}.containers[{i}]");
                match c["name"].as_str() {
                    None | Some("") => causes.push(Cause::required(&format!("{f}.name"), "")),
                    Some(n) if !is_label(n) => {
                        causes.push(Cause::invalid(&format!("{f}.name"), n, DNS1123_LABEL))
                    }
                    _ => {}
                }
                if c["image"].as_str().is_none_or(str::is_empty) {
                    causes.push(Cause::required(&format!("{f}.image"), ""));
                }
            }
        }
        _ => causes.push(Cause::required(&format!("{field}.containers"), "")),
    }
}

/// Validates an object about to be written (`old`: the stored version on
/// update). Returns the 422 causes.
pub fn validate(def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    if let Some(c) = validate_name(def.kind, name) {
        causes.push(c);
    }
    for key in ["labels", "annotations"] {
        let v = &obj["metadata"][key];
        if let Some(m) = v.as_object()
            && let Some((k, _)) = m.iter().find(|(_, v)| !v.is_string())
        {
            causes.push(Cause::invalid(
                &format!("metadata.{key}[{k}]"),
                "",
                "must be a string",
            ));
        }
    }
    match def.kind {
        "Pod" => validate_pod_spec(&obj["spec"], "spec", &mut causes),
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Job" => {
            validate_pod_spec(
                &obj["spec"]["template"]["spec"],
                "spec.template.spec",
                &mut causes,
            );
            if def.kind != "Job" && obj["spec"]["selector"].is_null() {
                causes.push(Cause::required("spec.selector", ""));
            }
        }
        "CronJob" => {
            if obj["spec"]["schedule"].as_str().is_none_or(str::is_empty) {
                causes.push(Cause::required("spec.schedule", ""));
            }
            validate_pod_spec(
                &obj["spec"]["jobTemplate"]["spec"]["template"]["spec"],
                "spec.jobTemplate.spec.template.spec",
                &mut causes,
            );
        }
        "Secret" => {
            let ty = obj["type"].as_str().unwrap_or("Opaque");
            if let Some(data) = obj["data"].as_object() {
                for (k, v) in data {
                    let ok = v.as_str().is_some_and(|s| STANDARD.decode(s).is_ok());
                    if !ok {
                        causes.push(Cause::invalid(
                            &format!("data[{k}]"),
                            "<secret contents redacted>",
                            "illegal base64 data",
                        ));
                    }
                }
            }
            match ty {
                "kubernetes.io/dockerconfigjson" => {
                    validate_docker_secret(obj, ".dockerconfigjson", &mut causes)
                }
                "kubernetes.io/dockercfg" => validate_docker_secret(obj, ".dockercfg", &mut causes),
                _ => {}
            }
            if let Some(old) = old {
                let old_ty = old["type"].as_str().unwrap_or("Opaque");
                if old_ty != ty {
                    causes.push(Cause::invalid("type", ty, "field is immutable"));
                }
                if old["immutable"] == json!(true) && old["data"] != obj["data"] {
                    causes.push(Cause::forbidden(
                        "data",
                        "field is immutable when `immutable` is set",
                    ));
                }
            }
        }
        _ => {}
    }
    causes
}

/// The fields a request set, as a rough `fieldsV1` (two levels deep).
pub fn fieldset(body: &Value, depth: usize) -> Value {
    let mut out = Map::new();
    if let Some(m) = body.as_object() {
        for (k, v) in m {
            if matches!(k.as_str(), "apiVersion" | "kind") && depth == 2 {
                continue;
            }
            if matches!(
                k.as_str(),
                "resourceVersion" | "uid" | "creationTimestamp" | "managedFields" | "generation"
            ) {
                continue;
            }
            let inner = if depth > 0 && v.is_object() {
                fieldset(v, depth - 1)
            } else {
                json!({})
            };
            out.insert(format!("f:{k}"), inner);
        }
    }
    Value::Object(out)
}

/// Records a write in `metadata.managedFields`: one entry per (manager,
/// operation, subresource), replaced on each write by the same.
pub struct ManagedWrite<'a> {
    pub manager: &'a str,
    pub operation: &'a str,
    pub api_version: &'a str,
    pub subresource: &'a str,
    /// What the request sent (object or patch).
    pub body: &'a Value,
    pub now: DateTime<Utc>,
}

pub fn record_managed_fields(obj: &mut Value, write: &ManagedWrite<'_>) {
    let mut entries: Vec<Value> = obj["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let same = |e: &Value| {
        e["manager"] == write.manager
            && e["operation"] == write.operation
            && e["subresource"].as_str().unwrap_or("") == write.subresource
    };
    let mut fields = fieldset(write.body, 2);
    if let Some(m) = fields.as_object_mut() {
        if write.subresource == "status" {
            m.retain(|k, _| k == "f:status");
        } else {
            m.remove("f:status");
        }
    }
    let mut entry = json!({
        "manager": write.manager,
        "operation": write.operation,
        "apiVersion": write.api_version,
        "time": timestamp(write.now),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    });
    if !write.subresource.is_empty() {
        entry["subresource"] = json!(write.subresource);
    }
    match entries.iter().position(same) {
        Some(i) => entries[i] = entry,
        None => entries.push(entry),
    }
    obj["metadata"]["managedFields"] = Value::Array(entries);
}

/// The manager name: `fieldManager`, else the User-Agent before '/'.
pub fn manager_name(field_manager: Option<&str>, user_agent: &str) -> String {
    match field_manager {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => user_agent.split('/').next().unwrap_or("").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources::find;

    fn def(group: &str, plural: &str) -> &'static ResourceDef {
        find(group, plural).expect("known resource")
    }

    #[test]
    fn uuid_and_suffix_have_the_right_shape() {
        let mut rng = rand::rng();
        let u = uuid_v4(&mut rng);
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
        let s = name_suffix(&mut rng);
        assert_eq!(s.len(), 5);
        assert!(s.bytes().all(|c| NAME_ALPHABET.contains(&c)));
    }

    #[test]
    fn pull_policy_follows_tag_and_digest() {
        assert_eq!(default_pull_policy("nginx"), "Always");
        assert_eq!(default_pull_policy("nginx:latest"), "Always");
        assert_eq!(default_pull_policy("localhost:5000/nginx"), "Always");
        assert_eq!(
            default_pull_policy("localhost:5000/nginx:1.2"),
            "IfNotPresent"
        );
        assert_eq!(default_pull_policy("nginx@sha256:abc"), "IfNotPresent");
    }

    #[test]
    fn pod_defaults_match_the_real_server() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "r/x:1"}]}});
        apply_defaults(def("", "pods"), &mut pod, true);
        assert_eq!(pod["spec"]["restartPolicy"], "Always");
        assert_eq!(pod["spec"]["terminationGracePeriodSeconds"], 30);
        // `default` is the admission plugin's, not defaulting's.
        assert!(pod["spec"]["serviceAccountName"].is_null());
        assert!(pod["spec"]["serviceAccount"].is_null());
        let mut named = json!({"spec": {"serviceAccount": "builder", "containers": []}});
        apply_defaults(def("", "pods"), &mut named, true);
        assert_eq!(named["spec"]["serviceAccountName"], "builder");
        assert_eq!(named["spec"]["serviceAccount"], "builder");
        assert_eq!(
            pod["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );
        assert_eq!(
            pod["spec"]["containers"][0]["terminationMessagePath"],
            "/dev/termination-log"
        );
        assert_eq!(
            pod["status"],
            json!({"phase": "Pending", "qosClass": "BestEffort"})
        );
    }

    #[test]
    fn deployment_and_job_defaults() {
        let mut d = json!({"metadata": {"name": "d"}, "spec": {"template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}});
        apply_defaults(def("apps", "deployments"), &mut d, true);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        let mut empty = json!({"spec": {"strategy": {}}});
        apply_defaults(def("apps", "deployments"), &mut empty, true);
        assert_eq!(empty["spec"]["strategy"]["type"], "RollingUpdate");
        assert_eq!(
            empty["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
            "25%"
        );
        assert_eq!(d["spec"]["selector"], json!({"matchLabels": {"a": "b"}}));
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "Always"
        );
        let mut j = json!({"metadata": {"name": "j"}, "spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "x"}]}}}});
        apply_defaults(def("batch", "jobs"), &mut j, true);
        assert_eq!(j["spec"]["backoffLimit"], 6);
        assert_eq!(j["spec"]["template"]["spec"]["restartPolicy"], "OnFailure");
    }

    #[test]
    fn secret_string_data_is_folded_and_docker_secrets_are_checked() {
        let mut s = json!({"metadata": {"name": "s"}, "stringData": {"k": "v"}});
        apply_defaults(def("", "secrets"), &mut s, true);
        assert_eq!(s["type"], "Opaque");
        assert_eq!(s["data"]["k"], "dg==");
        assert!(s.get("stringData").is_none());
        let bad = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": STANDARD.encode("nope")}});
        let causes = validate(def("", "secrets"), &bad, None);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "data[.dockerconfigjson]");
        assert!(
            causes[0]
                .message
                .starts_with("Invalid value: \"<secret contents redacted>\": ")
        );
        let missing = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/dockerconfigjson"});
        assert_eq!(
            validate(def("", "secrets"), &missing, None)[0].text(),
            "data[.dockerconfigjson]: Required value"
        );
        let old = json!({"metadata": {"name": "s"}, "type": "Opaque"});
        let new = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls"});
        assert_eq!(
            validate(def("", "secrets"), &new, Some(&old))[0].text(),
            r#"type: Invalid value: "kubernetes.io/tls": field is immutable"#
        );
    }

    #[test]
    fn names_follow_dns1123() {
        assert!(validate_name("Secret", "a.b-c").is_none());
        let c = validate_name("Secret", "Bad_Name").expect("invalid");
        assert!(c.text().starts_with(
            r#"metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain"#
        ));
        assert!(validate_name("Namespace", "a.b").is_some());
        assert_eq!(
            validate_name("Pod", "").map(|c| c.text()),
            Some("metadata.name: Required value: name or generateName is required".into())
        );
    }

    #[test]
    fn managed_fields_keep_one_entry_per_manager_and_operation() {
        let mut obj = json!({"metadata": {"name": "s"}});
        let body = json!({"data": {"a": "b"}, "metadata": {"labels": {"x": "y"}}});
        let mut w = ManagedWrite {
            manager: "kubectl-pullfix",
            operation: "Update",
            api_version: "v1",
            subresource: "",
            body: &body,
            now: Utc::now(),
        };
        record_managed_fields(&mut obj, &w);
        record_managed_fields(&mut obj, &w);
        w.manager = "kubectl";
        record_managed_fields(&mut obj, &w);
        let mf = obj["metadata"]["managedFields"].as_array().expect("array");
        assert_eq!(mf.len(), 2);
        assert_eq!(mf[0]["manager"], "kubectl-pullfix");
        assert_eq!(mf[0]["fieldsType"], "FieldsV1");
        assert_eq!(mf[0]["fieldsV1"]["f:data"]["f:a"], json!({}));
        assert_eq!(
            mf[0]["fieldsV1"]["f:metadata"]["f:labels"]["f:x"],
            json!({})
        );
        assert_eq!(
            manager_name(None, "kubectl/v1.32.4 (linux/amd64)"),
            "kubectl"
        );
        assert_eq!(manager_name(Some("m"), "kubectl/v1"), "m");
    }

    #[test]
    fn qos_class_from_resources() {
        let none = json!({"containers": [{"name": "c"}]});
        assert_eq!(qos_class(&none), "BestEffort");
        let burst = json!({"containers": [{"resources": {"requests": {"cpu": "1"}}}]});
        assert_eq!(qos_class(&burst), "Burstable");
        let g = json!({"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]});
        assert_eq!(qos_class(&g), "Guaranteed");
    }
}
