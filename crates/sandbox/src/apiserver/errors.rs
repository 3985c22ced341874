//! `Status` failures shaped like the real API server's (`k8s.io/apimachinery`
//! `errors` package): same reasons, codes, messages and `details`.

use serde_json::{Map, Value, json};

/// A failed request: becomes a `Status` body with `code`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `details` (name, group, kind, causes, ...), or none.
    pub details: Option<Value>,
}

/// One `details.causes` entry of a 422 Invalid.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueForbidden`, ...
    pub reason: &'static str,
    /// e.g. `Invalid value: "x": field is immutable`
    pub message: String,
    pub field: String,
}

impl Cause {
    pub fn invalid(field: &str, value: &str, detail: &str) -> Cause {
        Cause {
            reason: "FieldValueInvalid",
            message: format!("Invalid value: {}: {detail}", quote(value)),
            field: field.to_string(),
        }
    }

    pub fn required(field: &str, detail: &str) -> Cause {
        let message = if detail.is_empty() {
            "Required value".to_string()
        } else {
            format!("Required value: {detail}")
        };
        Cause {
            reason: "FieldValueRequired",
            message,
            field: field.to_string(),
        }
    }

    pub fn forbidden(field: &str, detail: &str) -> Cause {
        Cause {
            reason: "FieldValueForbidden",
            message: format!("Forbidden: {detail}"),
            field: field.to_string(),
        }
    }

    /// `field: message`, as the aggregate message shows it.
    pub fn text(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }
}

/// Go's `%q` for the ASCII strings used here.
pub fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

fn details(name: &str, group: &str, kind: &str) -> Value {
    let mut d = Map::new();
    if !name.is_empty() {
        d.insert("name".into(), json!(name));
    }
    if !group.is_empty() {
        d.insert("group".into(), json!(group));
    }
    if !kind.is_empty() {
        d.insert("kind".into(), json!(kind));
    }
    Value::Object(d)
}

/// `deployments.apps` / `pods`: how the server names a resource in messages.
pub fn qualified(resource: &str, group: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    pub fn not_found(resource: &str, group: &str, name: &str) -> ApiError {
        ApiError {
            code: 404,
            reason: "NotFound",
            message: format!("{} {} not found", qualified(resource, group), quote(name)),
            details: Some(details(name, group, resource)),
        }
    }

    /// 404 for a path no resource serves.
    pub fn no_route() -> ApiError {
        ApiError {
            code: 404,
            reason: "NotFound",
            message: "the server could not find the requested resource".into(),
            details: Some(json!({})),
        }
    }

    pub fn already_exists(resource: &str, group: &str, name: &str) -> ApiError {
        ApiError {
            code: 409,
            reason: "AlreadyExists",
            message: format!(
                "{} {} already exists",
                qualified(resource, group),
                quote(name)
            ),
            details: Some(details(name, group, resource)),
        }
    }

    /// 409 Conflict with the server's wording for a stale resourceVersion
    /// (`detail` = "the object has been modified; please apply ...").
    pub fn conflict(resource: &str, group: &str, name: &str, detail: &str) -> ApiError {
        ApiError {
            code: 409,
            reason: "Conflict",
            message: format!(
                "Operation cannot be fulfilled on {} {}: {detail}",
                qualified(resource, group),
                quote(name)
            ),
            details: Some(details(name, group, resource)),
        }
    }

    pub fn modified(resource: &str, group: &str, name: &str) -> ApiError {
        ApiError::conflict(
            resource,
            group,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 Invalid: `Kind "name" is invalid: [a, b]` (one cause: no brackets).
    pub fn invalid(kind: &str, group: &str, name: &str, causes: &[Cause]) -> ApiError {
        let texts: Vec<String> = causes.iter().map(Cause::text).collect();
        let summary = match texts.len() {
            0 => String::new(),
            1 => texts[0].clone(),
            _ => format!("[{}]", texts.join(", ")),
        };
        let mut d = details(name, group, kind);
        d["causes"] = Value::Array(
            causes
                .iter()
                .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                .collect(),
        );
        ApiError {
            code: 422,
            reason: "Invalid",
            message: format!("{kind} {} is invalid: {summary}", quote(name)),
            details: Some(d),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn method_not_allowed() -> ApiError {
        ApiError {
            code: 405,
            reason: "MethodNotAllowed",
            message: "the server does not allow this method on the requested resource".into(),
            details: Some(json!({})),
        }
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }

    /// 403 with RBAC's wording. `name` empty for list/create/collections;
    /// `namespace` empty at the cluster scope.
    pub fn forbidden(
        user: &str,
        verb: &str,
        resource: &str,
        subresource: &str,
        group: &str,
        namespace: &str,
        name: &str,
    ) -> ApiError {
        let full = if subresource.is_empty() {
            resource.to_string()
        } else {
            format!("{resource}/{subresource}")
        };
        let subject = if name.is_empty() {
            qualified(resource, group)
        } else {
            format!("{} {}", qualified(resource, group), quote(name))
        };
        let scope = if namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace {}", quote(namespace))
        };
        ApiError {
            code: 403,
            reason: "Forbidden",
            message: format!(
                "{subject} is forbidden: User {} cannot {verb} resource {} in API group {} {scope}",
                quote(user),
                quote(&full),
                quote(group)
            ),
            details: Some(details(name, group, resource)),
        }
    }

    /// 403 from an admission plugin (`admission.NewForbidden`): `pods "p" is
    /// forbidden: ERR`. `name` is the object's name, else its
    /// `generateName` (names are generated after admission), else `Unknown`.
    pub fn admission_forbidden(resource: &str, group: &str, name: &str, err: &str) -> ApiError {
        ApiError {
            code: 403,
            reason: "Forbidden",
            message: format!(
                "{} {} is forbidden: {err}",
                qualified(resource, group),
                quote(name)
            ),
            details: Some(details(name, group, resource)),
        }
    }

    /// 403 for a non-resource path.
    pub fn forbidden_path(user: &str, verb: &str, path: &str) -> ApiError {
        ApiError {
            code: 403,
            reason: "Forbidden",
            message: format!(
                "forbidden: User {} cannot {verb} path {}",
                quote(user),
                quote(path)
            ),
            details: Some(json!({})),
        }
    }

    pub fn gone_expired(requested: u64, oldest: u64) -> ApiError {
        ApiError::new(
            410,
            "Expired",
            format!("too old resource version: {requested} ({oldest})"),
        )
    }

    pub fn too_large() -> ApiError {
        ApiError::new(
            413,
            "RequestEntityTooLarge",
            "the server has received a request that is too large",
        )
    }

    pub fn unsupported_media(message: impl Into<String>) -> ApiError {
        ApiError::new(415, "UnsupportedMediaType", message)
    }

    /// The `Status` body.
    pub fn status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

/// `Status` Success (deleted without returning the object).
pub fn success(name: &str, group: &str, resource: &str, uid: &str) -> Value {
    let mut d = details(name, group, resource);
    if !uid.is_empty() {
        d["uid"] = json!(uid);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": d})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_names_the_group_qualified_resource() {
        let e = ApiError::not_found("deployments", "apps", "web");
        assert_eq!(e.message, r#"deployments.apps "web" not found"#);
        let s = e.status();
        assert_eq!(s["code"], 404);
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(
            s["details"],
            json!({"name": "web", "group": "apps", "kind": "deployments"})
        );
        assert_eq!(
            ApiError::not_found("pods", "", "p").status()["details"],
            json!({"name": "p", "kind": "pods"})
        );
    }

    #[test]
    fn forbidden_wording_matches_rbac() {
        let e = ApiError::forbidden("oncall", "get", "secrets", "", "", "ns", "x");
        assert_eq!(
            e.message,
            r#"secrets "x" is forbidden: User "oncall" cannot get resource "secrets" in API group "" in the namespace "ns""#
        );
        let e = ApiError::forbidden("oncall", "list", "nodes", "", "", "", "");
        assert_eq!(
            e.message,
            r#"nodes is forbidden: User "oncall" cannot list resource "nodes" in API group "" at the cluster scope"#
        );
        let e = ApiError::forbidden("u", "patch", "deployments", "scale", "apps", "n", "d");
        assert!(
            e.message
                .contains(r#"cannot patch resource "deployments/scale" in API group "apps""#)
        );
    }

    #[test]
    fn admission_forbidden_wording_matches_the_service_account_plugin() {
        let e = ApiError::admission_forbidden(
            "pods",
            "",
            "web-5d4f8b7c9-",
            r#"error looking up service account shop/builder: serviceaccount "builder" not found"#,
        );
        assert_eq!(
            e.message,
            r#"pods "web-5d4f8b7c9-" is forbidden: error looking up service account shop/builder: serviceaccount "builder" not found"#
        );
        let s = e.status();
        assert_eq!(
            (s["code"].as_u64(), s["reason"].as_str()),
            (Some(403), Some("Forbidden"))
        );
        assert_eq!(
            s["details"],
            json!({"name": "web-5d4f8b7c9-", "kind": "pods"})
        );
    }

    #[test]
    fn invalid_lists_causes_like_the_aggregate() {
        let one = ApiError::invalid(
            "Secret",
            "",
            "x",
            &[Cause::invalid("type", "Opaque", "field is immutable")],
        );
        assert_eq!(
            one.message,
            r#"Secret "x" is invalid: type: Invalid value: "Opaque": field is immutable"#
        );
        assert_eq!(one.status()["details"]["causes"][0]["field"], "type");
        let two = ApiError::invalid(
            "Pod",
            "",
            "p",
            &[Cause::required("a", ""), Cause::required("b", "")],
        );
        assert_eq!(
            two.message,
            r#"Pod "p" is invalid: [a: Required value, b: Required value]"#
        );
    }
}
