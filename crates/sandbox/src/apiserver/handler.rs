//! Request semantics: routing a path to a resource, authorization against
//! the caller's deny rules, and every verb on the in-memory store. Pure:
//! the caller passes the store, the clock and the random source; watches
//! come back as a [`WatchPlan`] for the server to stream.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use serde_json::{Value, json};

use super::errors::{ApiError, Cause, quote, success};
use super::objects::{self, ManagedWrite, timestamp};
use super::patch;
use super::protobuf;
use super::resources::{self, ResourceDef};
use super::select::{FieldSelector, LabelSelector};
use super::store::{Event, EventType, Store};
use super::table;

/// Namespaces that exist from the start and cannot be deleted (the last
/// one can, as in a real cluster, but the sandbox keeps it).
pub const INITIAL_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];
const UNDELETABLE: &[&str] = &["default", "kube-system", "kube-public"];

/// The ServiceAccount a pod that names none runs as.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";
/// Marks a static pod's mirror, which ServiceAccount admission leaves alone.
const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// A denial rule (see `super::Deny`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenyRule {
    pub verbs: Vec<String>,
    pub group: String,
    pub resource: String,
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub groups: Vec<String>,
    pub deny: Vec<DenyRule>,
    pub anonymous: bool,
}

/// A parsed HTTP request.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub content_type: String,
    pub accept: String,
    pub user_agent: String,
    pub body: Vec<u8>,
}

impl Request {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn wants_table(&self) -> bool {
        self.accept.contains("as=Table")
    }

    fn include_object(&self) -> &str {
        match self.param("includeObject") {
            Some(v @ ("None" | "Object" | "Metadata")) => v,
            _ => "Metadata",
        }
    }

    fn watch(&self) -> bool {
        matches!(self.param("watch"), Some("true" | "1"))
    }
}

/// Decodes a query string (`+` is a space, as Go's `url.ParseQuery`).
pub fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (pct_decode(k), pct_decode(v))
        })
        .collect()
}

fn pct_decode(s: &str) -> String {
    pullfix::encoding::form_decode(s)
}

/// What a path addresses.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Discovery, version, health, OpenAPI: answered by the server.
    NonResource,
    Resource(ResourceTarget),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceTarget {
    pub def: &'static ResourceDef,
    /// Namespace from the path ("" at the cluster scope).
    pub namespace: String,
    pub name: String,
    pub subresource: String,
    /// Legacy `/watch/` prefix.
    pub legacy_watch: bool,
}

/// Routes a path. `Ok(NonResource)` for anything not under a group version's
/// resources; `Err(404)` for an unknown resource.
pub fn route(path: &str) -> Result<Target, ApiError> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", "v1", rest @ ..] if !rest.is_empty() => ("", "v1", rest),
        ["apis", g, v, rest @ ..] if !rest.is_empty() => (*g, *v, rest),
        _ => return Ok(Target::NonResource),
    };
    if version != "v1" {
        return Err(ApiError::no_route());
    }
    let (legacy_watch, rest) = match rest {
        ["watch", r @ ..] if !r.is_empty() => (true, r),
        r => (false, r),
    };
    let (namespace, rest): (&str, &[&str]) = if rest.len() >= 3 && rest[0] == "namespaces" {
        match resources::find(group, rest[2]) {
            Some(d) if d.namespaced => (rest[1], &rest[2..]),
            // `/api/v1/namespaces/NAME/status`
            _ if group.is_empty() => ("", rest),
            _ => return Err(ApiError::no_route()),
        }
    } else {
        ("", rest)
    };
    let (plural, name, sub) = match rest {
        [p] => (*p, "", ""),
        [p, n] => (*p, *n, ""),
        [p, n, s] => (*p, *n, *s),
        _ => return Err(ApiError::no_route()),
    };
    let def = resources::find(group, plural).ok_or_else(ApiError::no_route)?;
    if !namespace.is_empty() && !def.namespaced {
        return Err(ApiError::no_route());
    }
    if !sub.is_empty() && !def.subresources.contains(&sub) {
        return Err(ApiError::no_route());
    }
    Ok(Target::Resource(ResourceTarget {
        def,
        namespace: namespace.to_string(),
        name: name.to_string(),
        subresource: sub.to_string(),
        legacy_watch,
    }))
}

/// The RBAC verb of a request.
pub fn verb(method: &str, target: &ResourceTarget, watch: bool) -> &'static str {
    let named = !target.name.is_empty();
    match method {
        "GET" | "HEAD" if watch || target.legacy_watch => "watch",
        "GET" | "HEAD" if named => "get",
        "GET" | "HEAD" => "list",
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" if named => "delete",
        "DELETE" => "deletecollection",
        _ => "",
    }
}

fn rule_allows(rule: &DenyRule, verb: &str, group: &str, resource: &str) -> bool {
    let any = |list: &[String], v: &str| list.iter().any(|x| x == "*" || x == v);
    !(any(&rule.verbs, verb)
        && (rule.group == "*" || rule.group == group)
        && (rule.resource == "*"
            || rule.resource == resource
            || rule
                .resource
                .strip_suffix("/*")
                .is_some_and(|base| resource.starts_with(&format!("{base}/")))))
}

/// Whether `caller` may do `verb` on `resource` (plural or plural/sub).
/// Every authenticated user may ask what it may do (the real cluster's
/// `system:basic-user` role), whatever its deny rules say.
pub fn allowed(caller: &Caller, verb: &str, group: &str, resource: &str) -> bool {
    let self_review = group == "authorization.k8s.io"
        && verb == "create"
        && matches!(
            resource,
            "selfsubjectaccessreviews" | "selfsubjectrulesreviews"
        );
    !caller.anonymous
        && (self_review
            || caller
                .deny
                .iter()
                .all(|r| rule_allows(r, verb, group, resource)))
}

/// The 403 for a denied resource request, if denied.
pub fn authorize(caller: &Caller, verb: &str, t: &ResourceTarget) -> Result<(), ApiError> {
    let full = if t.subresource.is_empty() {
        t.def.plural.to_string()
    } else {
        format!("{}/{}", t.def.plural, t.subresource)
    };
    if allowed(caller, verb, t.def.group, &full) {
        return Ok(());
    }
    // A namespace's own name is its namespace in RBAC terms.
    let ns = if t.def.kind == "Namespace" {
        t.name.as_str()
    } else {
        t.namespace.as_str()
    };
    Err(ApiError::forbidden(
        &caller.name,
        verb,
        t.def.plural,
        &t.subresource,
        t.def.group,
        ns,
        &t.name,
    ))
}

/// What a handler answers.
#[derive(Debug)]
pub enum Reply {
    Json(u16, Value),
    Text(u16, String),
    Watch(Box<WatchPlan>),
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Reply {
        Reply::Json(e.code, e.status())
    }
}

/// Which objects a list or watch selects.
#[derive(Debug, Clone)]
pub struct Selection {
    pub namespace: Option<String>,
    pub labels: Option<LabelSelector>,
    pub fields: Option<FieldSelector>,
}

impl Selection {
    pub fn matches(&self, obj: &Value) -> bool {
        let ns_ok = self
            .namespace
            .as_deref()
            .is_none_or(|ns| obj["metadata"]["namespace"].as_str().unwrap_or("") == ns);
        ns_ok
            && self
                .labels
                .as_ref()
                .is_none_or(|l| l.matches(&obj["metadata"]["labels"]))
            && self.fields.as_ref().is_none_or(|f| f.matches(obj))
    }
}

/// A watch to stream: initial events, then changes after `from_rv`.
#[derive(Debug)]
pub struct WatchPlan {
    pub def: &'static ResourceDef,
    pub selection: Selection,
    /// Initial ADDED objects (resourceVersion absent or "0").
    pub initial: Vec<Arc<Value>>,
    pub from_rv: u64,
    /// 410 Expired to send as an ERROR event, then end.
    pub expired: Option<ApiError>,
    pub timeout_secs: u64,
    pub bookmarks: bool,
    pub table: Option<String>,
}

/// Turns a store event into the watch line's (type, object) for a
/// selection, with selector transitions: an object that stops matching is
/// DELETED, one that starts matching is ADDED.
pub fn watch_event(sel: &Selection, e: &Event) -> Option<(&'static str, Arc<Value>)> {
    let now = sel.matches(&e.object);
    let before = e.prev.as_deref().is_some_and(|p| sel.matches(p));
    match e.kind {
        EventType::Added if now => Some(("ADDED", e.object.clone())),
        EventType::Modified if now && before => Some(("MODIFIED", e.object.clone())),
        EventType::Modified if now => Some(("ADDED", e.object.clone())),
        EventType::Modified if before => Some(("DELETED", e.object.clone())),
        EventType::Deleted if before || now => Some(("DELETED", e.object.clone())),
        _ => None,
    }
}

/// A watch event line's JSON (with the table conversion when asked).
pub fn event_json(
    def: &ResourceDef,
    ty: &str,
    obj: &Value,
    table_mode: Option<&str>,
    now: DateTime<Utc>,
) -> Value {
    let object = match table_mode {
        Some(include) => table::table(def.plural, std::slice::from_ref(obj), include, now),
        None => obj.clone(),
    };
    json!({"type": ty, "object": object})
}

/// Mutable server state the handlers work on.
#[derive(Debug, Default)]
pub struct State {
    pub store: Store,
    next_cluster_ip: u32,
}

impl State {
    pub fn new(now: DateTime<Utc>) -> State {
        let mut st = State {
            store: Store::new(),
            next_cluster_ip: 1,
        };
        let mut rng = rand::rng();
        if let Some(def) = resources::find("", "namespaces") {
            for ns in INITIAL_NAMESPACES {
                let body =
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
                let ctx = Ctx {
                    now,
                    manager: "kube-apiserver".to_string(),
                    dry_run: false,
                };
                let _ = st.create(def, "", body, &ctx, &mut rng);
            }
        }
        // The `default` ServiceAccount of each initial namespace, as the
        // controller manager of a running cluster has made it (the sandbox's
        // namespace controller makes it in namespaces created later), so a
        // pod created at once in `default` passes admission.
        if let Some(def) = resources::find("", "serviceaccounts") {
            for ns in INITIAL_NAMESPACES {
                let body = json!({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": DEFAULT_SERVICE_ACCOUNT, "namespace": ns}});
                let ctx = Ctx {
                    now,
                    manager: "kube-controller-manager".to_string(),
                    dry_run: false,
                };
                let _ = st.create(def, ns, body, &ctx, &mut rng);
            }
        }
        st
    }
}

/// Per-request context.
struct Ctx {
    now: DateTime<Utc>,
    manager: String,
    dry_run: bool,
}

fn parse_body(req: &Request, what: &str) -> Result<Value, ApiError> {
    let body = req.body.as_slice();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(format!(
            "{what}: request body is empty"
        )));
    }
    if req
        .content_type
        .starts_with("application/vnd.kubernetes.protobuf")
    {
        return protobuf::decode(body).map_err(|e| match e.strip_prefix("unsupported: ") {
            Some(m) => ApiError::unsupported_media(m),
            None => ApiError::bad_request(format!("{what}: {e}")),
        });
    }
    serde_json::from_slice(body).or_else(|e| {
        // kubectl and kube-rs send JSON; accept YAML too, as the server does.
        serde_saphyr::from_slice::<Value>(body)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| ApiError::bad_request(format!("{what}: {e}")))
    })
}

fn meta<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj["metadata"][field].as_str().unwrap_or("")
}

fn parse_dry_run(req: &Request, body: Option<&Value>) -> Result<bool, ApiError> {
    let mut values: Vec<String> = req
        .query
        .iter()
        .filter(|(k, _)| k == "dryRun")
        .map(|(_, v)| v.clone())
        .collect();
    if let Some(list) = body.and_then(|b| b["dryRun"].as_array()) {
        values.extend(list.iter().filter_map(|v| v.as_str().map(str::to_string)));
    }
    for v in &values {
        if v != "All" && !v.is_empty() {
            return Err(ApiError::bad_request(format!(
                "Invalid dryRun value: {v}, only All and empty are supported"
            )));
        }
    }
    Ok(values.iter().any(|v| v == "All"))
}

fn parse_u64_param(req: &Request, key: &str) -> Result<Option<u64>, ApiError> {
    match req.param(key) {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            ApiError::bad_request(format!("invalid {key} {}: not an integer", quote(v)))
        }),
    }
}

fn selection(
    req: &Request,
    def: &ResourceDef,
    namespace: &str,
    name: &str,
) -> Result<Selection, ApiError> {
    let labels = match req.param("labelSelector") {
        Some(s) if !s.trim().is_empty() => {
            Some(LabelSelector::parse(s).map_err(ApiError::bad_request)?)
        }
        _ => None,
    };
    let mut field = req.param("fieldSelector").unwrap_or("").to_string();
    if !name.is_empty() {
        let term = format!("metadata.name={name}");
        field = if field.is_empty() {
            term
        } else {
            format!("{field},{term}")
        };
    }
    let fields = if field.trim().is_empty() {
        None
    } else {
        Some(FieldSelector::parse(&field, def.kind).map_err(ApiError::bad_request)?)
    };
    Ok(Selection {
        namespace: (!namespace.is_empty()).then(|| namespace.to_string()),
        labels,
        fields,
    })
}

fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": [ns, name]});
    URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<(String, String), ApiError> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {}", quote(token)));
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    match (v["start"][0].as_str(), v["start"][1].as_str()) {
        (Some(ns), Some(name)) => Ok((ns.to_string(), name.to_string())),
        _ => Err(bad()),
    }
}

fn with_type_meta(def: &ResourceDef, obj: &mut Value) {
    obj["kind"] = json!(def.kind);
    obj["apiVersion"] = json!(def.api_version());
}

fn scale_view(def: &ResourceDef, obj: &Value) -> Value {
    let selector = obj["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let _ = def;
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta(obj, "name"),
            "namespace": meta(obj, "namespace"),
            "uid": meta(obj, "uid"),
            "resourceVersion": meta(obj, "resourceVersion"),
            "creationTimestamp": obj["metadata"]["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(0)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
    })
}

/// Everything that is not the spec's container images, for the pod
/// update rule.
fn pod_spec_without_mutables(spec: &Value) -> Value {
    let mut s = spec.clone();
    for key in ["containers", "initContainers"] {
        if let Some(cs) = s.get_mut(key).and_then(Value::as_array_mut) {
            for c in cs {
                if let Some(m) = c.as_object_mut() {
                    m.remove("image");
                }
            }
        }
    }
    if let Some(m) = s.as_object_mut() {
        m.remove("activeDeadlineSeconds");
        m.remove("tolerations");
    }
    s
}

const POD_UPDATE_RULE: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

impl State {
    /// Answers one non-watch resource request (the caller already
    /// authorized it), or returns the watch plan.
    pub fn handle(
        &mut self,
        req: &Request,
        t: &ResourceTarget,
        caller: &Caller,
        now: DateTime<Utc>,
    ) -> Reply {
        match self.dispatch(req, t, caller, now) {
            Ok(r) => r,
            Err(e) => e.into(),
        }
    }

    fn dispatch(
        &mut self,
        req: &Request,
        t: &ResourceTarget,
        caller: &Caller,
        now: DateTime<Utc>,
    ) -> Result<Reply, ApiError> {
        let def = t.def;
        let watch = req.watch() || t.legacy_watch;
        let verb = verb(&req.method, t, watch);
        if def.create_only {
            return match verb {
                "create" => self.access_review(req, caller),
                _ => Err(ApiError::method_not_allowed()),
            };
        }
        let mut rng = rand::rng();
        let body_value = if matches!(verb, "create" | "update" | "patch") {
            Some(parse_body(req, "the request body could not be decoded")?)
        } else if matches!(verb, "delete" | "deletecollection")
            && !req.body.iter().all(u8::is_ascii_whitespace)
        {
            Some(parse_body(req, "the DeleteOptions could not be decoded")?)
        } else {
            None
        };
        let dry_run = parse_dry_run(
            req,
            if matches!(verb, "delete" | "deletecollection") {
                body_value.as_ref()
            } else {
                None
            },
        )?;
        let ctx = Ctx {
            now,
            manager: objects::manager_name(req.param("fieldManager"), &req.user_agent),
            dry_run,
        };
        let ns = t.namespace.as_str();
        let sub = t.subresource.as_str();
        match (verb, sub) {
            ("watch", "") => self.watch(req, t).map(|p| Reply::Watch(Box::new(p))),
            ("list", "") => self.list(req, t, now),
            ("get", "log") => self.log(req, t),
            ("get", _) => self.get_reply(req, t, now),
            ("create", "binding") => self.bind(t, body_value.unwrap_or_default(), &ctx),
            ("create", "") => {
                let body = body_value.unwrap_or_default();
                if !t.name.is_empty() {
                    return Err(ApiError::method_not_allowed());
                }
                self.create(def, ns, body, &ctx, &mut rng)
                    .map(|o| Reply::Json(201, o))
            }
            ("update", "scale") | ("patch", "scale") => {
                self.scale(req, t, verb, body_value.unwrap_or_default(), &ctx)
            }
            ("update", _) => self.put(t, body_value.unwrap_or_default(), &ctx),
            ("patch", _) => {
                let body = body_value.unwrap_or_default();
                let old = self.get(def, ns, &t.name)?;
                let new = apply_patch(&req.content_type, &old, &body, def.kind)?;
                let out = self.update(def, &old, new, sub, &body, &ctx)?;
                Ok(Reply::Json(200, out))
            }
            ("delete", "") => {
                let opts = body_value.unwrap_or(Value::Null);
                if def.kind == "Namespace" {
                    return self.delete_namespace(&t.name, &opts, &ctx);
                }
                let grace = grace_period(req, &opts)?;
                self.delete(def, ns, &t.name, &opts, grace, &ctx)
                    .map(|(_, v)| Reply::Json(200, v))
            }
            ("deletecollection", "") => {
                self.delete_collection(req, t, body_value.unwrap_or(Value::Null), &ctx)
            }
            _ => Err(ApiError::method_not_allowed()),
        }
    }

    /// GET of one object (or its `scale`), as a Table when asked.
    fn get_reply(
        &self,
        req: &Request,
        t: &ResourceTarget,
        now: DateTime<Utc>,
    ) -> Result<Reply, ApiError> {
        let (def, ns, sub) = (t.def, t.namespace.as_str(), t.subresource.as_str());
        let obj = self.get(def, ns, &t.name)?;
        Ok(match sub {
            "scale" => Reply::Json(200, scale_view(def, &obj)),
            _ if req.wants_table() => {
                let mut tab = table::table(
                    def.plural,
                    std::slice::from_ref(&*obj),
                    req.include_object(),
                    now,
                );
                tab["metadata"]["resourceVersion"] = json!(meta(&obj, "resourceVersion"));
                Reply::Json(200, tab)
            }
            _ => Reply::Json(200, (*obj).clone()),
        })
    }

    /// PUT or PATCH of the `scale` subresource: only `spec.replicas` moves.
    fn scale(
        &mut self,
        req: &Request,
        t: &ResourceTarget,
        verb: &str,
        body: Value,
        ctx: &Ctx,
    ) -> Result<Reply, ApiError> {
        let (def, ns) = (t.def, t.namespace.as_str());
        let old = self.get(def, ns, &t.name)?;
        let view = scale_view(def, &old);
        let new_view = if verb == "update" {
            body.clone()
        } else {
            apply_patch(&req.content_type, &view, &body, "Scale")?
        };
        let rv = meta(&new_view, "resourceVersion");
        if !rv.is_empty() && rv != meta(&old, "resourceVersion") {
            return Err(ApiError::modified(def.plural, def.group, &t.name));
        }
        let replicas = new_view["spec"]["replicas"].as_i64().ok_or_else(|| {
            ApiError::invalid(
                "Scale",
                "autoscaling",
                &t.name,
                &[Cause::required("spec.replicas", "")],
            )
        })?;
        if replicas < 0 {
            return Err(ApiError::invalid(
                "Scale",
                "autoscaling",
                &t.name,
                &[Cause::invalid(
                    "spec.replicas",
                    &replicas.to_string(),
                    "must be greater than or equal to 0",
                )],
            ));
        }
        let mut new = (*old).clone();
        new["spec"]["replicas"] = json!(replicas);
        let patch_body = json!({"spec": {"replicas": replicas}});
        let out = self.update(def, &old, new, "", &patch_body, ctx)?;
        Ok(Reply::Json(200, scale_view(def, &out)))
    }

    /// PUT of an object (or of a subresource).
    fn put(&mut self, t: &ResourceTarget, body: Value, ctx: &Ctx) -> Result<Reply, ApiError> {
        let (def, ns, sub) = (t.def, t.namespace.as_str(), t.subresource.as_str());
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        let body_name = meta(&body, "name");
        if !body_name.is_empty() && body_name != t.name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({})",
                t.name
            )));
        }
        let body_ns = meta(&body, "namespace");
        if def.namespaced && !body_ns.is_empty() && body_ns != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let old = self.get(def, ns, &t.name)?;
        let out = self.update(def, &old, body.clone(), sub, &body, ctx)?;
        Ok(Reply::Json(200, out))
    }

    /// DELETE of a collection: every selected object, as a List.
    fn delete_collection(
        &mut self,
        req: &Request,
        t: &ResourceTarget,
        opts: Value,
        ctx: &Ctx,
    ) -> Result<Reply, ApiError> {
        let (def, ns) = (t.def, t.namespace.as_str());
        let grace = grace_period(req, &opts)?;
        let sel = selection(req, def, ns, "")?;
        let names: Vec<(String, String)> = self
            .store
            .list(&def.key(), sel.namespace.as_deref(), None)
            .filter(|o| sel.matches(o))
            .map(|o| {
                (
                    meta(o, "namespace").to_string(),
                    meta(o, "name").to_string(),
                )
            })
            .collect();
        let mut items = Vec::new();
        let no_pre = Value::Null;
        for (ons, oname) in names {
            if def.kind == "Namespace" {
                if let Ok(Reply::Json(_, v)) = self.delete_namespace(&oname, &no_pre, ctx) {
                    items.push(v);
                }
                continue;
            }
            let (obj, _) = self.delete(def, &ons, &oname, &no_pre, grace, ctx)?;
            items.push(obj);
        }
        Ok(Reply::Json(
            200,
            json!({
                "kind": format!("{}List", def.kind),
                "apiVersion": def.api_version(),
                "metadata": {"resourceVersion": self.store.rv().to_string()},
                "items": items,
            }),
        ))
    }

    fn get(&self, def: &ResourceDef, ns: &str, name: &str) -> Result<Arc<Value>, ApiError> {
        self.store
            .get(&def.key(), ns, name)
            .ok_or_else(|| ApiError::not_found(def.plural, def.group, name))
    }

    fn list(
        &self,
        req: &Request,
        t: &ResourceTarget,
        now: DateTime<Utc>,
    ) -> Result<Reply, ApiError> {
        let def = t.def;
        let sel = selection(req, def, &t.namespace, "")?;
        let limit = parse_u64_param(req, "limit")?.filter(|l| *l > 0);
        let after = match req.param("continue") {
            Some(c) if !c.is_empty() => Some(decode_continue(c)?),
            _ => None,
        };
        let rv = self.store.rv();
        let mut items: Vec<&Arc<Value>> = Vec::new();
        let mut more = false;
        // As kube-apiserver: how many items the next pages hold, for lists
        // without a selector.
        let counted = req.param("labelSelector").is_none_or(str::is_empty)
            && req.param("fieldSelector").is_none_or(str::is_empty);
        let mut remaining = 0u64;
        for o in self.store.list(&def.key(), sel.namespace.as_deref(), after) {
            if !sel.matches(o) {
                continue;
            }
            if limit.is_some_and(|l| items.len() as u64 >= l) {
                more = true;
                if !counted {
                    break;
                }
                remaining += 1;
                continue;
            }
            items.push(o);
        }
        let continue_token = if more {
            items
                .last()
                .map(|o| encode_continue(rv, meta(o, "namespace"), meta(o, "name")))
        } else {
            None
        };
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if let Some(c) = &continue_token {
            metadata["continue"] = json!(c);
            if counted {
                metadata["remainingItemCount"] = json!(remaining);
            }
        }
        if req.wants_table() {
            let values: Vec<Value> = items.iter().map(|o| (***o).clone()).collect();
            let mut tab = table::table(def.plural, &values, req.include_object(), now);
            tab["metadata"] = metadata;
            return Ok(Reply::Json(200, tab));
        }
        Ok(Reply::Json(
            200,
            json!({
                "kind": format!("{}List", def.kind),
                "apiVersion": def.api_version(),
                "metadata": metadata,
                "items": items.iter().map(|o| (***o).clone()).collect::<Vec<Value>>(),
            }),
        ))
    }

    fn watch(&self, req: &Request, t: &ResourceTarget) -> Result<WatchPlan, ApiError> {
        let def = t.def;
        let sel = selection(req, def, &t.namespace, &t.name)?;
        let timeout_secs = parse_u64_param(req, "timeoutSeconds")?
            .unwrap_or(1800)
            .min(3600);
        let bookmarks = matches!(req.param("allowWatchBookmarks"), Some("true" | "1"));
        let table = req.wants_table().then(|| req.include_object().to_string());
        let mut plan = WatchPlan {
            def,
            selection: sel,
            initial: Vec::new(),
            from_rv: self.store.rv(),
            expired: None,
            timeout_secs,
            bookmarks,
            table,
        };
        match req.param("resourceVersion").unwrap_or("") {
            "" | "0" => {
                plan.initial = self
                    .store
                    .list(&def.key(), plan.selection.namespace.as_deref(), None)
                    .filter(|o| plan.selection.matches(o))
                    .cloned()
                    .collect();
            }
            v => {
                let rv: u64 = v.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid resource version: {}", quote(v)))
                })?;
                match self.store.events_since(&def.key(), rv) {
                    Ok(_) => plan.from_rv = rv,
                    Err(oldest) => plan.expired = Some(ApiError::gone_expired(rv, oldest)),
                }
            }
        }
        Ok(plan)
    }

    fn namespace_check(&self, ns: &str) -> Result<(), ApiError> {
        match self.store.get("namespaces", "", ns) {
            None => Err(ApiError::not_found("namespaces", "", ns)),
            Some(n) if n["status"]["phase"] == "Terminating" => Err(ApiError::new(
                403,
                "Forbidden",
                format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                ),
            )),
            Some(_) => Ok(()),
        }
    }

    /// The ServiceAccount admission plugin on pod create (mirror pods
    /// excepted): an empty `spec.serviceAccountName` becomes `default`
    /// (`spec.serviceAccount` mirrors it), a pod without pull secrets gets
    /// the account's `imagePullSecrets`, and a pod whose ServiceAccount
    /// does not exist is refused with the plugin's 403. It runs before
    /// names are generated and before validation, as in the real server.
    fn admit_service_account(&self, ns: &str, pod: &mut Value) -> Result<(), ApiError> {
        if !pod["metadata"]["annotations"][MIRROR_POD_ANNOTATION].is_null() {
            return Ok(());
        }
        let sa = objects::service_account_of(&pod["spec"])
            .unwrap_or_else(|| DEFAULT_SERVICE_ACCOUNT.to_string());
        if let Some(spec) = pod["spec"].as_object_mut() {
            spec.insert("serviceAccountName".into(), json!(sa));
            spec.insert("serviceAccount".into(), json!(sa));
        }
        if let Some(account) = self.store.get("serviceaccounts", ns, &sa) {
            // A pod that names no pull secret gets its ServiceAccount's,
            // copied now: the kubelet reads only the pod's own list, so a
            // secret attached to the account later reaches new pods only.
            let none = pod["spec"]["imagePullSecrets"]
                .as_array()
                .is_none_or(|l| l.is_empty());
            let theirs = &account["imagePullSecrets"];
            if none && theirs.as_array().is_some_and(|l| !l.is_empty()) {
                pod["spec"]["imagePullSecrets"] = theirs.clone();
            }
            return Ok(());
        }
        let name = [meta(pod, "name"), meta(pod, "generateName")]
            .into_iter()
            .find(|n| !n.is_empty())
            .unwrap_or("Unknown");
        Err(ApiError::admission_forbidden(
            "pods",
            "",
            name,
            &format!(
                "error looking up service account {ns}/{sa}: serviceaccount {} not found",
                quote(&sa)
            ),
        ))
    }

    fn create(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        mut body: Value,
        ctx: &Ctx,
        rng: &mut impl Rng,
    ) -> Result<Value, ApiError> {
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        if let Some(kind) = body["kind"].as_str()
            && !kind.is_empty()
            && kind != def.kind
        {
            return Err(ApiError::bad_request(format!(
                "the kind of the object ({kind}) does not match the resource ({})",
                def.kind
            )));
        }
        if !body["metadata"].is_object() {
            body["metadata"] = json!({});
        }
        if def.namespaced {
            let body_ns = meta(&body, "namespace");
            if !body_ns.is_empty() && body_ns != ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            body["metadata"]["namespace"] = json!(ns);
            self.namespace_check(ns)?;
            if def.kind == "Pod" {
                self.admit_service_account(ns, &mut body)?;
            }
        } else if let Some(m) = body["metadata"].as_object_mut() {
            m.remove("namespace");
        }
        if meta(&body, "name").is_empty() {
            let prefix = meta(&body, "generateName").to_string();
            if !prefix.is_empty() {
                let mut name = format!("{prefix}{}", objects::name_suffix(rng));
                for _ in 0..8 {
                    if self.store.get(&def.key(), ns, &name).is_none() {
                        break;
                    }
                    name = format!("{prefix}{}", objects::name_suffix(rng));
                }
                body["metadata"]["name"] = json!(name);
            }
        }
        let sent = body.clone();
        if let Some(m) = body["metadata"].as_object_mut() {
            for k in [
                "uid",
                "resourceVersion",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "managedFields",
                "selfLink",
            ] {
                m.remove(k);
            }
        }
        with_type_meta(def, &mut body);
        if def.has_status() && !matches!(def.kind, "Node" | "Pod" | "Namespace") {
            body["status"] = json!({});
        }
        objects::apply_defaults(def, &mut body, true);
        if def.kind == "Service"
            && body["spec"]["clusterIP"].is_null()
            && body["spec"]["type"] != "ExternalName"
        {
            let n = self.next_cluster_ip;
            if !ctx.dry_run {
                self.next_cluster_ip += 1;
            }
            let ip = format!("10.96.{}.{}", n / 250, n % 250 + 1);
            body["spec"]["clusterIP"] = json!(ip);
            body["spec"]["clusterIPs"] = json!([ip]);
        }
        let name = meta(&body, "name").to_string();
        let causes = objects::validate(def, &body, None);
        if !causes.is_empty() {
            return Err(ApiError::invalid(def.kind, def.group, &name, &causes));
        }
        if self.store.get(&def.key(), ns, &name).is_some() {
            return Err(ApiError::already_exists(def.plural, def.group, &name));
        }
        body["metadata"]["uid"] = json!(objects::uuid_v4(rng));
        body["metadata"]["creationTimestamp"] = json!(timestamp(ctx.now));
        if def.has_spec() && def.kind != "Namespace" && !body["spec"].is_null() {
            body["metadata"]["generation"] = json!(1);
        }
        let api_version = def.api_version();
        objects::record_managed_fields(
            &mut body,
            &ManagedWrite {
                manager: &ctx.manager,
                operation: "Update",
                api_version: &api_version,
                subresource: "",
                body: &sent,
                now: ctx.now,
            },
        );
        if ctx.dry_run {
            return Ok(body);
        }
        Ok((*self.store.put(&def.key(), body)).clone())
    }

    /// PUT/PATCH core: `new` is the full intended object.
    fn update(
        &mut self,
        def: &ResourceDef,
        old: &Value,
        mut new: Value,
        sub: &str,
        sent: &Value,
        ctx: &Ctx,
    ) -> Result<Value, ApiError> {
        let name = meta(old, "name").to_string();
        if !new.is_object() {
            return Err(ApiError::bad_request("the object must be a JSON object"));
        }
        if !new["metadata"].is_object() {
            new["metadata"] = json!({});
        }
        let rv = meta(&new, "resourceVersion");
        if !rv.is_empty() && rv != meta(old, "resourceVersion") {
            return Err(ApiError::modified(def.plural, def.group, &name));
        }
        let uid = meta(&new, "uid");
        if !uid.is_empty() && uid != meta(old, "uid") {
            return Err(ApiError::conflict(
                def.plural,
                def.group,
                &name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta(old, "uid")
                ),
            ));
        }
        let mut out = if sub == "status" {
            let mut o = old.clone();
            o["status"] = new["status"].clone();
            o
        } else {
            if def.has_status()
                && let Some(m) = new.as_object_mut()
            {
                match old.get("status") {
                    Some(st) => m.insert("status".into(), st.clone()),
                    None => m.remove("status"),
                };
            }
            for k in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "namespace",
                "name",
                "generation",
            ] {
                match old["metadata"].get(k) {
                    Some(v) => new["metadata"][k] = v.clone(),
                    None => {
                        if let Some(m) = new["metadata"].as_object_mut() {
                            m.remove(k);
                        }
                    }
                }
            }
            new["metadata"]["managedFields"] = old["metadata"]["managedFields"].clone();
            objects::apply_defaults(def, &mut new, false);
            new
        };
        with_type_meta(def, &mut out);
        out["metadata"]["resourceVersion"] = json!(meta(old, "resourceVersion"));
        if let Some(m) = out["metadata"].as_object_mut()
            && m.get("managedFields").is_some_and(Value::is_null)
        {
            m.remove("managedFields");
        }
        let mut causes = objects::validate(def, &out, Some(old));
        if def.kind == "Pod"
            && sub.is_empty()
            && pod_spec_without_mutables(&out["spec"]) != pod_spec_without_mutables(&old["spec"])
        {
            causes.push(Cause::forbidden("spec", POD_UPDATE_RULE));
        }
        if !causes.is_empty() {
            return Err(ApiError::invalid(def.kind, def.group, &name, &causes));
        }
        if def.has_spec() && out["spec"] != old["spec"] {
            let gen_now = old["metadata"]["generation"].as_i64().unwrap_or(0);
            out["metadata"]["generation"] = json!(gen_now + 1);
        }
        if out == *old {
            // A no-op write changes nothing, not even the resourceVersion.
            return Ok(out);
        }
        let api_version = def.api_version();
        objects::record_managed_fields(
            &mut out,
            &ManagedWrite {
                manager: &ctx.manager,
                operation: "Update",
                api_version: &api_version,
                subresource: sub,
                body: sent,
                now: ctx.now,
            },
        );
        let finalized = def.kind != "Pod"
            && !out["metadata"]["deletionTimestamp"].is_null()
            && out["metadata"]["finalizers"]
                .as_array()
                .is_none_or(Vec::is_empty);
        if ctx.dry_run {
            return Ok(out);
        }
        if finalized {
            let ns = meta(&out, "namespace").to_string();
            self.store.put(&def.key(), out);
            return Ok(self
                .store
                .remove(&def.key(), &ns, &name)
                .map(|o| (*o).clone())
                .unwrap_or(Value::Null));
        }
        Ok((*self.store.put(&def.key(), out)).clone())
    }

    /// Deletes one object; returns (object, response body).
    fn delete(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        opts: &Value,
        grace: Option<i64>,
        ctx: &Ctx,
    ) -> Result<(Value, Value), ApiError> {
        let old = self.get(def, ns, name)?;
        let pre = &opts["preconditions"];
        if let Some(uid) = pre["uid"].as_str()
            && uid != meta(&old, "uid")
        {
            return Err(ApiError::conflict(
                def.plural,
                def.group,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta(&old, "uid")
                ),
            ));
        }
        if let Some(rv) = pre["resourceVersion"].as_str()
            && rv != meta(&old, "resourceVersion")
        {
            return Err(ApiError::conflict(
                def.plural,
                def.group,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta(&old, "resourceVersion")
                ),
            ));
        }
        let has_finalizers = old["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        let pod_grace = if def.kind == "Pod" {
            let terminal = matches!(
                old["status"]["phase"].as_str(),
                Some("Succeeded" | "Failed")
            );
            let bound = old["spec"]["nodeName"]
                .as_str()
                .is_some_and(|n| !n.is_empty());
            let g = grace.unwrap_or_else(|| {
                old["spec"]["terminationGracePeriodSeconds"]
                    .as_i64()
                    .unwrap_or(30)
            });
            (bound && !terminal && g > 0).then_some(g)
        } else {
            None
        };
        if pod_grace.is_some() || has_finalizers {
            let mut o = (*old).clone();
            let g = pod_grace.unwrap_or(0);
            let at = ctx.now + Duration::seconds(g);
            let existing = o["metadata"]["deletionTimestamp"]
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok());
            if existing.is_none_or(|e| at < e.with_timezone(&Utc)) {
                o["metadata"]["deletionTimestamp"] = json!(timestamp(at));
                o["metadata"]["deletionGracePeriodSeconds"] = json!(g);
            }
            if o == *old || ctx.dry_run {
                return Ok((o.clone(), o));
            }
            let stored = (*self.store.put(&def.key(), o)).clone();
            return Ok((stored.clone(), stored));
        }
        let gone = if ctx.dry_run {
            (*old).clone()
        } else {
            self.store
                .remove(&def.key(), ns, name)
                .map(|o| (*o).clone())
                .unwrap_or_default()
        };
        let body = if matches!(def.kind, "Pod" | "Service") {
            gone.clone()
        } else {
            success(name, def.group, def.plural, meta(&gone, "uid"))
        };
        Ok((gone, body))
    }

    fn delete_namespace(&mut self, name: &str, opts: &Value, ctx: &Ctx) -> Result<Reply, ApiError> {
        let old = self.get_ns(name)?;
        if UNDELETABLE.contains(&name) {
            return Err(ApiError {
                code: 403,
                reason: "Forbidden",
                message: format!(
                    "namespaces {} is forbidden: this namespace may not be deleted",
                    quote(name)
                ),
                details: Some(json!({"name": name, "kind": "namespaces"})),
            });
        }
        if let Some(uid) = opts["preconditions"]["uid"].as_str()
            && uid != meta(&old, "uid")
        {
            return Err(ApiError::conflict(
                "namespaces",
                "",
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta(&old, "uid")
                ),
            ));
        }
        let mut term = (*old).clone();
        if term["metadata"]["deletionTimestamp"].is_null() {
            term["metadata"]["deletionTimestamp"] = json!(timestamp(ctx.now));
            term["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        }
        term["status"]["phase"] = json!("Terminating");
        if ctx.dry_run {
            return Ok(Reply::Json(200, term));
        }
        let term = (*self.store.put("namespaces", term)).clone();
        // The namespace controller's work, done at once: every object in
        // the namespace, then the namespace.
        for (res, obj) in self.store.keys_in_namespace(name) {
            self.store.remove(&res, name, &obj);
        }
        self.store.remove("namespaces", "", name);
        Ok(Reply::Json(200, term))
    }

    fn get_ns(&self, name: &str) -> Result<Arc<Value>, ApiError> {
        self.store
            .get("namespaces", "", name)
            .ok_or_else(|| ApiError::not_found("namespaces", "", name))
    }

    fn bind(&mut self, t: &ResourceTarget, body: Value, ctx: &Ctx) -> Result<Reply, ApiError> {
        let def = t.def;
        let node = body["target"]["name"].as_str().unwrap_or("").to_string();
        if node.is_empty() {
            return Err(ApiError::invalid(
                "Binding",
                "",
                &t.name,
                &[Cause::required("target.name", "")],
            ));
        }
        let old = self.get(def, &t.namespace, &t.name)?;
        if let Some(current) = old["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
            return Err(ApiError::conflict(
                "pods/binding",
                "",
                &t.name,
                &format!(
                    "pod {} is already assigned to node {}",
                    t.name,
                    quote(current)
                ),
            ));
        }
        if !old["metadata"]["deletionTimestamp"].is_null() {
            return Err(ApiError::conflict(
                "pods/binding",
                "",
                &t.name,
                &format!(
                    "pod {} is being deleted, cannot be assigned to a host",
                    t.name
                ),
            ));
        }
        let mut new = (*old).clone();
        new["spec"]["nodeName"] = json!(node);
        let mut conditions = new["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        conditions.retain(|c| c["type"] != "PodScheduled");
        conditions.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": timestamp(ctx.now)}));
        new["status"]["conditions"] = Value::Array(conditions);
        if !ctx.dry_run {
            self.store.put(&def.key(), new);
        }
        Ok(Reply::Json(
            201,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        ))
    }

    fn log(&self, req: &Request, t: &ResourceTarget) -> Result<Reply, ApiError> {
        let pod = self.get(t.def, &t.namespace, &t.name)?;
        let names: Vec<&str> = pod["spec"]["containers"]
            .as_array()
            .map(|cs| cs.iter().filter_map(|c| c["name"].as_str()).collect())
            .unwrap_or_default();
        let init: Vec<&str> = pod["spec"]["initContainers"]
            .as_array()
            .map(|cs| cs.iter().filter_map(|c| c["name"].as_str()).collect())
            .unwrap_or_default();
        let container = match req.param("container") {
            Some(c) if !c.is_empty() => c.to_string(),
            _ if names.len() == 1 => names[0].to_string(),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {}, choose one of: [{}] or one of the init containers: [{}]",
                    t.name,
                    names.join(" "),
                    init.join(" ")
                )));
            }
        };
        if !names.contains(&container.as_str()) && !init.contains(&container.as_str()) {
            return Err(ApiError::bad_request(format!(
                "container {container} is not valid for pod {}",
                t.name
            )));
        }
        let status = ["containerStatuses", "initContainerStatuses"]
            .iter()
            .filter_map(|k| pod["status"][*k].as_array())
            .flatten()
            .find(|s| s["name"] == container.as_str());
        let waiting = |reason: &str| {
            let why = match reason {
                "ErrImagePull" => "image can't be pulled".to_string(),
                "ImagePullBackOff" => "trying and failing to pull image".to_string(),
                r => r.to_string(),
            };
            ApiError::bad_request(format!(
                "container {} in pod {} is waiting to start: {why}",
                quote(&container),
                quote(&t.name)
            ))
        };
        let state = status.map(|s| &s["state"]);
        let text = match state {
            None => return Err(waiting("ContainerCreating")),
            Some(s) if !s["waiting"].is_null() => {
                return Err(waiting(
                    s["waiting"]["reason"]
                        .as_str()
                        .unwrap_or("ContainerCreating"),
                ));
            }
            Some(s) => s["terminated"]["message"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        };
        let text = match parse_u64_param(req, "tailLines")? {
            Some(n) => {
                let lines: Vec<&str> = text.lines().collect();
                let start = lines.len().saturating_sub(n as usize);
                let mut t = lines[start..].join("\n");
                if !t.is_empty() {
                    t.push('\n');
                }
                t
            }
            None => text,
        };
        Ok(Reply::Text(200, text))
    }

    fn access_review(&self, req: &Request, caller: &Caller) -> Result<Reply, ApiError> {
        let body = parse_body(req, "the request body could not be decoded")?;
        let attrs = &body["spec"]["resourceAttributes"];
        let non_resource = &body["spec"]["nonResourceAttributes"];
        let mut out = body.clone();
        out["kind"] = json!("SelfSubjectAccessReview");
        out["apiVersion"] = json!("authorization.k8s.io/v1");
        if !out["metadata"].is_object() {
            out["metadata"] = json!({});
        }
        out["metadata"]["creationTimestamp"] = Value::Null;
        if attrs.is_null() && non_resource.is_null() {
            return Err(ApiError::invalid(
                "SelfSubjectAccessReview",
                "authorization.k8s.io",
                "",
                &[Cause::required(
                    "spec.resourceAttributes",
                    "exactly one of nonResourceAttributes or resourceAttributes must be specified",
                )],
            ));
        }
        if !attrs.is_null() {
            let s = |k: &str| attrs[k].as_str().unwrap_or("");
            let resource = if s("subresource").is_empty() {
                s("resource").to_string()
            } else {
                format!("{}/{}", s("resource"), s("subresource"))
            };
            let ok = allowed(caller, s("verb"), s("group"), &resource);
            out["status"] = if ok {
                json!({"allowed": true, "reason": "pullfix sandbox: no deny rule matches"})
            } else {
                // As RBAC: a denial carries no reason (`kubectl auth can-i`
                // prints a bare "no").
                json!({"allowed": false})
            };
        } else {
            out["status"] = json!({"allowed": !caller.anonymous});
        }
        Ok(Reply::Json(201, out))
    }
}

fn grace_period(req: &Request, opts: &Value) -> Result<Option<i64>, ApiError> {
    if let Some(g) = opts["gracePeriodSeconds"].as_i64() {
        return Ok(Some(g));
    }
    match req.param("gracePeriodSeconds") {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            ApiError::bad_request(format!(
                "invalid gracePeriodSeconds {}: not an integer",
                quote(v)
            ))
        }),
    }
}

/// Applies a PATCH body by content type.
pub fn apply_patch(
    content_type: &str,
    target: &Value,
    body: &Value,
    kind: &str,
) -> Result<Value, ApiError> {
    let ct = content_type.split(';').next().unwrap_or("").trim();
    let mapped = |e: patch::PatchError| {
        if e.bad_request {
            ApiError::bad_request(e.message)
        } else {
            ApiError::new(422, "Invalid", e.message)
        }
    };
    match ct {
        "application/merge-patch+json" => {
            if !body.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            Ok(patch::merge_patch(target, body))
        }
        "application/json-patch+json" => patch::json_patch(target, body).map_err(mapped),
        "application/strategic-merge-patch+json" => {
            if !body.is_object() {
                return Err(ApiError::bad_request(
                    "a strategic merge patch must be a JSON object",
                ));
            }
            patch::strategic_merge_patch(target, body, kind).map_err(mapped)
        }
        "application/apply-patch+yaml" | "application/apply-patch+cbor" => {
            Err(ApiError::unsupported_media(
                "the pullfix sandbox does not implement server-side apply (application/apply-patch+yaml); use a merge, JSON or strategic merge patch, or kubectl apply without --server-side",
            ))
        }
        other => Err(ApiError::unsupported_media(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml (got {})",
            quote(other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(path: &str) -> ResourceTarget {
        match route(path) {
            Ok(Target::Resource(t)) => t,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn routes_namespaced_cluster_and_subresource_paths() {
        let t = target("/api/v1/namespaces/shop/pods/p/log");
        assert_eq!(
            (
                t.def.plural,
                t.namespace.as_str(),
                t.name.as_str(),
                t.subresource.as_str()
            ),
            ("pods", "shop", "p", "log")
        );
        let t = target("/api/v1/namespaces/shop/status");
        assert_eq!(
            (
                t.def.plural,
                t.namespace.as_str(),
                t.name.as_str(),
                t.subresource.as_str()
            ),
            ("namespaces", "", "shop", "status")
        );
        let t = target("/apis/apps/v1/deployments");
        assert_eq!((t.def.kind, t.namespace.as_str()), ("Deployment", ""));
        let t = target("/api/v1/watch/namespaces/a/pods");
        assert!(t.legacy_watch);
        assert_eq!(route("/version"), Ok(Target::NonResource));
        assert_eq!(route("/apis/apps"), Ok(Target::NonResource));
        assert_eq!(
            route("/api/v1/namespaces/a/nodes").map_err(|e| e.code),
            Err(404)
        );
        assert_eq!(
            route("/api/v1/namespaces/a/pods/p/exec").map_err(|e| e.code),
            Err(404)
        );
        assert_eq!(
            route("/apis/apps/v2/deployments").map_err(|e| e.code),
            Err(404)
        );
    }

    #[test]
    fn verbs_and_deny_rules() {
        let pods = target("/api/v1/namespaces/a/pods");
        let pod = target("/api/v1/namespaces/a/pods/p");
        assert_eq!(verb("GET", &pods, false), "list");
        assert_eq!(verb("GET", &pods, true), "watch");
        assert_eq!(verb("GET", &pod, false), "get");
        assert_eq!(verb("DELETE", &pods, false), "deletecollection");
        assert_eq!(verb("OPTIONS", &pod, false), "");
        let caller = Caller {
            name: "oncall".into(),
            groups: vec![],
            deny: vec![DenyRule {
                verbs: vec!["*".into()],
                group: "apps".into(),
                resource: "deployments/*".into(),
            }],
            anonymous: false,
        };
        assert!(allowed(&caller, "patch", "apps", "deployments"));
        assert!(!allowed(&caller, "patch", "apps", "deployments/scale"));
        // Denying every write still lets a user review its own access.
        let read_only = Caller {
            deny: vec![DenyRule {
                verbs: vec!["create".into()],
                group: "*".into(),
                resource: "*".into(),
            }],
            ..caller.clone()
        };
        assert!(!allowed(&read_only, "create", "", "secrets"));
        assert!(allowed(
            &read_only,
            "create",
            "authorization.k8s.io",
            "selfsubjectaccessreviews"
        ));
        let ns = target("/api/v1/namespaces/shop");
        let anon = Caller {
            anonymous: true,
            name: "system:anonymous".into(),
            ..caller
        };
        let e = authorize(&anon, "get", &ns).expect_err("anonymous");
        assert_eq!(
            e.message,
            r#"namespaces "shop" is forbidden: User "system:anonymous" cannot get resource "namespaces" in API group "" in the namespace "shop""#
        );
    }

    #[test]
    fn query_decoding_and_continue_tokens() {
        let q = parse_query("fieldSelector=status.phase%21%3DRunning&labelSelector=a+in+(b)&watch");
        assert_eq!(
            q[0],
            ("fieldSelector".into(), "status.phase!=Running".into())
        );
        assert_eq!(q[1].1, "a in (b)");
        assert_eq!(q[2], ("watch".into(), String::new()));
        assert_eq!(pct_decode("100%"), "100%");
        let token = encode_continue(7, "ns", "name");
        assert_eq!(
            decode_continue(&token),
            Ok(("ns".to_string(), "name".to_string()))
        );
        assert_eq!(decode_continue("garbage!").map_err(|e| e.code), Err(400));
    }

    #[test]
    fn watch_events_follow_selector_transitions() {
        let sel = Selection {
            namespace: None,
            labels: Some(LabelSelector::parse("w=yes").expect("selector")),
            fields: None,
        };
        let obj = |w: &str| Arc::new(json!({"metadata": {"name": "a", "labels": {"w": w}}}));
        let ev = |kind, object, prev| Event {
            rv: 2,
            resource: "configmaps".into(),
            namespace: String::new(),
            kind,
            object,
            prev,
        };
        let ty = |e: Event| watch_event(&sel, &e).map(|(t, _)| t);
        assert_eq!(ty(ev(EventType::Added, obj("yes"), None)), Some("ADDED"));
        assert_eq!(ty(ev(EventType::Added, obj("no"), None)), None);
        assert_eq!(
            ty(ev(EventType::Modified, obj("yes"), Some(obj("yes")))),
            Some("MODIFIED")
        );
        assert_eq!(
            ty(ev(EventType::Modified, obj("yes"), Some(obj("no")))),
            Some("ADDED")
        );
        assert_eq!(
            ty(ev(EventType::Modified, obj("no"), Some(obj("yes")))),
            Some("DELETED")
        );
        assert_eq!(
            ty(ev(EventType::Deleted, obj("yes"), Some(obj("yes")))),
            Some("DELETED")
        );
    }

    #[test]
    fn patch_content_types() {
        let target = json!({"metadata": {"name": "x"}, "data": {"a": "1"}});
        let merged = apply_patch(
            "application/merge-patch+json",
            &target,
            &json!({"data": {"a": null, "b": "2"}}),
            "ConfigMap",
        )
        .expect("merge");
        assert_eq!(merged["data"], json!({"b": "2"}));
        let e = apply_patch(
            "application/apply-patch+yaml",
            &target,
            &json!({}),
            "ConfigMap",
        )
        .expect_err("ssa");
        assert_eq!((e.code, e.reason), (415, "UnsupportedMediaType"));
        let e = apply_patch("text/plain", &target, &json!({}), "ConfigMap").expect_err("unknown");
        assert_eq!(e.code, 415);
        let e = apply_patch(
            "application/merge-patch+json",
            &target,
            &json!([1]),
            "ConfigMap",
        )
        .expect_err("not an object");
        assert_eq!(e.code, 400);
    }
}
