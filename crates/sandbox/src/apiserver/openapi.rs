//! The OpenAPI the sandbox serves, generated from the resource table: the
//! minimum kubectl needs, found by running kubectl 1.32/1.33 against it.
//!
//! - `/openapi/v3`: the index (`paths` → `serverRelativeURL` with a hash).
//! - `/openapi/v3/api/v1`, `/openapi/v3/apis/GROUP/v1`: per group version,
//!   one `patch` operation per resource, tagged with
//!   `x-kubernetes-group-version-kind` and declaring the `fieldValidation`
//!   query parameter. kubectl's default `--validate=strict` asks exactly
//!   this ("does the server validate fields?"); with the answer yes it sends
//!   `fieldValidation=Strict` and skips client-side schema validation, so
//!   `kubectl apply` needs no schema. The operations declare no
//!   strategic-merge request body, so `kubectl apply` computes its patches
//!   from its compiled-in types, as it does for built-in kinds anyway.
//!   `components.schemas` holds one schema per kind with only a description
//!   and the GVK: `kubectl explain KIND` prints the kind and says that the
//!   sandbox has no field documentation; `kubectl explain KIND.FIELD` fails
//!   with kubectl's "field does not exist".
//! - `/openapi/v2`: 404 (kubectl only falls back to it).

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::resources::{GROUPS, RESOURCES, ResourceDef};

const NO_DOCS: &str = "Served by the pullfix sandbox, which has no field documentation: see https://kubernetes.io/docs/reference/kubernetes-api/ for this kind's fields.";

fn gv_path(group: &str) -> String {
    if group.is_empty() {
        "api/v1".to_string()
    } else {
        format!("apis/{group}/v1")
    }
}

fn schema_name(def: &ResourceDef) -> String {
    let pkg = match def.group {
        "" => "core".to_string(),
        g => g.split('.').next().unwrap_or(g).to_string(),
    };
    format!("io.k8s.api.{pkg}.{}.{}", def.version, def.kind)
}

/// The document of one group version (`group` "" = core).
pub fn group_version_doc(group: &str) -> Option<Value> {
    if !(group.is_empty() || GROUPS.contains(&group)) {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for def in RESOURCES.iter().filter(|r| r.group == group) {
        let gvk = json!({"group": def.group, "version": def.version, "kind": def.kind});
        schemas.insert(
            schema_name(def),
            json!({
                "description": NO_DOCS,
                "type": "object",
                "x-kubernetes-group-version-kind": [gvk.clone()],
            }),
        );
        if def.create_only {
            continue;
        }
        let ns = if def.namespaced {
            "namespaces/{namespace}/"
        } else {
            ""
        };
        let path = format!("/{}/{ns}{}/{{name}}", gv_path(group), def.plural);
        paths.insert(
            path,
            json!({"patch": {
                "operationId": format!("patch{}", def.kind),
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": gvk,
                "parameters": [
                    {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                    {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                    {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                ],
                "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{}", schema_name(def))}}}}},
            }}),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (pullfix sandbox)", "version": super::GIT_VERSION},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

fn hash(v: &Value) -> String {
    let digest = Sha256::digest(v.to_string().as_bytes());
    hex::encode(digest).to_uppercase()
}

/// The index at `/openapi/v3`.
pub fn index() -> Value {
    let mut paths = Map::new();
    for group in std::iter::once("").chain(GROUPS.iter().copied()) {
        if let Some(doc) = group_version_doc(group) {
            let p = gv_path(group);
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", hash(&doc))}),
            );
        }
    }
    json!({"paths": paths})
}

/// The document at `/openapi/<rest>`, or none (404).
pub fn document(rest: &[&str]) -> Option<Value> {
    match rest {
        ["v3"] => Some(index()),
        ["v3", "api", "v1"] => group_version_doc(""),
        ["v3", "apis", group, "v1"] => group_version_doc(group),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_points_at_every_group_version_with_a_hash() {
        let idx = index();
        let url = idx["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .expect("apps");
        assert!(url.starts_with("/openapi/v3/apis/apps/v1?hash="));
        assert!(idx["paths"]["api/v1"].is_object());
        assert!(document(&["v2"]).is_none());
        assert!(document(&["v3", "apis", "nope.io", "v1"]).is_none());
    }

    #[test]
    fn patch_operations_declare_field_validation() {
        let doc = group_version_doc("apps").expect("apps");
        let op = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(op["x-kubernetes-group-version-kind"]["kind"], "Deployment");
        let params = op["parameters"].as_array().expect("params");
        assert!(
            params
                .iter()
                .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
        );
        let core = group_version_doc("").expect("core");
        assert!(core["paths"]["/api/v1/nodes/{name}"]["patch"].is_object());
        assert!(core["components"]["schemas"]["io.k8s.api.core.v1.Secret"].is_object());
    }
}
