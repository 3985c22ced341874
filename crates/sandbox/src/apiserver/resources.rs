//! The resources the sandbox serves and their discovery documents (the
//! legacy `APIVersions` / `APIGroupList` / `APIResourceList` forms).

use serde_json::{Value, json};

/// One served resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceDef {
    /// API group, "" for core.
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// Served subresources: `status`, `scale`, `binding`, `log`.
    pub subresources: &'static [&'static str],
    /// Only `create` (SelfSubjectAccessReview): nothing is stored.
    pub create_only: bool,
}

const ALL: &[&str] = &["all"];
const STATUS: &[&str] = &["status"];
const SCALE: &[&str] = &["status", "scale"];

const fn def(
    group: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
) -> ResourceDef {
    ResourceDef {
        group,
        version: "v1",
        plural,
        singular,
        kind,
        namespaced,
        short_names: &[],
        categories: &[],
        subresources: &[],
        create_only: false,
    }
}

impl ResourceDef {
    const fn short(self, short_names: &'static [&'static str]) -> ResourceDef {
        ResourceDef {
            short_names,
            ..self
        }
    }

    const fn cats(self, categories: &'static [&'static str]) -> ResourceDef {
        ResourceDef { categories, ..self }
    }

    const fn subs(self, subresources: &'static [&'static str]) -> ResourceDef {
        ResourceDef {
            subresources,
            ..self
        }
    }
}

/// Every resource, in discovery order.
pub const RESOURCES: &[ResourceDef] = &[
    def("", "namespaces", "namespace", "Namespace", false)
        .short(&["ns"])
        .subs(STATUS),
    def("", "nodes", "node", "Node", false)
        .short(&["no"])
        .subs(STATUS),
    def("", "pods", "pod", "Pod", true)
        .short(&["po"])
        .cats(ALL)
        .subs(&["status", "binding", "log"]),
    def("", "secrets", "secret", "Secret", true),
    def(
        "",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
    )
    .short(&["sa"]),
    def("", "configmaps", "configmap", "ConfigMap", true).short(&["cm"]),
    def("", "services", "service", "Service", true)
        .short(&["svc"])
        .cats(ALL)
        .subs(STATUS),
    def("", "events", "event", "Event", true).short(&["ev"]),
    def("", "endpoints", "endpoints", "Endpoints", true).short(&["ep"]),
    def("coordination.k8s.io", "leases", "lease", "Lease", true),
    def("apps", "deployments", "deployment", "Deployment", true)
        .short(&["deploy"])
        .cats(ALL)
        .subs(SCALE),
    def("apps", "replicasets", "replicaset", "ReplicaSet", true)
        .short(&["rs"])
        .cats(ALL)
        .subs(SCALE),
    def("apps", "statefulsets", "statefulset", "StatefulSet", true)
        .short(&["sts"])
        .cats(ALL)
        .subs(SCALE),
    def("apps", "daemonsets", "daemonset", "DaemonSet", true)
        .short(&["ds"])
        .cats(ALL)
        .subs(STATUS),
    def("batch", "jobs", "job", "Job", true)
        .cats(ALL)
        .subs(STATUS),
    def("batch", "cronjobs", "cronjob", "CronJob", true)
        .short(&["cj"])
        .cats(ALL)
        .subs(STATUS),
    ResourceDef {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "selfsubjectaccessreviews",
        singular: "selfsubjectaccessreview",
        kind: "SelfSubjectAccessReview",
        namespaced: false,
        short_names: &[],
        categories: &[],
        subresources: &[],
        create_only: true,
    },
];

/// API groups in discovery order (core excluded).
pub const GROUPS: &[&str] = &[
    "apps",
    "batch",
    "coordination.k8s.io",
    "authorization.k8s.io",
];

impl ResourceDef {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The store's key for this resource: `pods`, `deployments.apps`.
    pub fn key(&self) -> String {
        super::errors::qualified(self.plural, self.group)
    }

    pub fn has_status(&self) -> bool {
        self.subresources.contains(&"status")
    }

    /// Kinds whose objects carry a `spec` (and so a `generation`).
    pub fn has_spec(&self) -> bool {
        !matches!(
            self.kind,
            "Secret" | "ServiceAccount" | "ConfigMap" | "Event" | "Endpoints"
        )
    }

    fn verbs(&self) -> Vec<&'static str> {
        if self.create_only {
            return vec!["create"];
        }
        vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }
}

/// Finds a resource by group and plural.
pub fn find(group: &str, plural: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.plural == plural)
}

/// Finds a resource by kind (for table columns, patch strategy, ...).
pub fn by_kind(group: &str, kind: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.kind == kind)
}

/// `GET /api`.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_entry(group: &str) -> Value {
    let gv = format!("{group}/v1");
    json!({
        "name": group,
        "versions": [{"groupVersion": gv, "version": "v1"}],
        "preferredVersion": {"groupVersion": gv, "version": "v1"},
    })
}

/// `GET /apis`.
pub fn api_group_list() -> Value {
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": GROUPS.iter().map(|g| group_entry(g)).collect::<Vec<_>>(),
    })
}

/// `GET /apis/GROUP`, or none for an unknown group.
pub fn api_group(group: &str) -> Option<Value> {
    if !GROUPS.contains(&group) {
        return None;
    }
    let mut g = group_entry(group);
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    Some(g)
}

/// `GET /api/v1` or `/apis/GROUP/v1`, or none for an unknown group/version.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    if version != "v1" || !(group.is_empty() || GROUPS.contains(&group)) {
        return None;
    }
    let mut out = Vec::new();
    for r in RESOURCES.iter().filter(|r| r.group == group) {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs(),
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        out.push(entry);
        for sub in r.subresources {
            let (kind, verbs, group_v): (&str, Vec<&str>, Option<(&str, &str)>) = match *sub {
                "status" => (r.kind, vec!["get", "patch", "update"], None),
                "scale" => (
                    "Scale",
                    vec!["get", "patch", "update"],
                    Some(("autoscaling", "v1")),
                ),
                "binding" => ("Binding", vec!["create"], None),
                _ => ("Pod", vec!["get"], None),
            };
            let mut e = json!({
                "name": format!("{}/{sub}", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": kind,
                "verbs": verbs,
            });
            if let Some((g, v)) = group_v {
                e["group"] = json!(g);
                e["version"] = json!(v);
            }
            out.push(e);
        }
    }
    let gv = if group.is_empty() {
        "v1".to_string()
    } else {
        format!("{group}/v1")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": out,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_resolves_and_keys_are_unique() {
        let mut keys: Vec<String> = RESOURCES.iter().map(|r| r.key()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), RESOURCES.len());
        assert_eq!(
            find("apps", "deployments").map(|r| r.kind),
            Some("Deployment")
        );
        assert_eq!(find("", "deployments"), None);
        assert_eq!(by_kind("", "Pod").map(|r| r.plural), Some("pods"));
    }

    #[test]
    fn discovery_carries_short_names_categories_and_subresources() {
        let core = resource_list("", "v1").expect("core");
        let res = core["resources"].as_array().expect("array");
        let pods = res.iter().find(|r| r["name"] == "pods").expect("pods");
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
        assert!(res.iter().any(|r| r["name"] == "pods/log"));
        let apps = resource_list("apps", "v1").expect("apps");
        let scale = apps["resources"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["name"] == "deployments/scale"))
            .expect("scale");
        assert_eq!(scale["group"], "autoscaling");
        assert!(resource_list("nope.io", "v1").is_none());
        assert!(resource_list("apps", "v2").is_none());
        let groups = api_group_list();
        assert_eq!(
            groups["groups"][0]["preferredVersion"]["groupVersion"],
            "apps/v1"
        );
    }
}
