//! The sandbox's embedded Kubernetes API server: an HTTP/1.1 server (hyper)
//! on loopback, plain HTTP, serving the REST API with the real server's
//! semantics for what pullfix, the simulated kubelet, the sandbox
//! controllers and everyday kubectl commands need. Everything is in memory.
//!
//! - [`handler`]: routing, authorization, every verb (pure);
//! - [`store`]: objects, the global resourceVersion, watch history;
//! - [`objects`]: defaulting, validation, managedFields;
//! - [`resources`]: the served resources and discovery;
//! - [`openapi`]: the little OpenAPI kubectl needs;
//! - [`errors`]: `Status` failures;
//! - [`protobuf`]: the protobuf request bodies kubectl 1.32+ sends;
//! - [`patch`], [`select`], [`table`]: patches, selectors, Table output.
//!
//! This module does the I/O: sockets, bearer-token authentication, request
//! bodies (3 MiB at most), watch streaming and the audit log.

pub mod errors;
pub mod handler;
pub mod objects;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod resources;
pub mod select;
pub mod store;
pub mod table;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Response, StatusCode};
use serde_json::{Value, json};

use crate::server::{ServerTask, serve_http1};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;

use errors::ApiError;
use handler::{Caller, DenyRule, Reply, Request, ResourceTarget, State, Target, WatchPlan};

/// Largest request body accepted (413 above).
pub const MAX_BODY: usize = 3 * 1024 * 1024;
/// The version `/version` reports.
pub const GIT_VERSION: &str = "v1.33.0-pullfix-sandbox";
/// Interval between BOOKMARK events on watches that allow them.
const BOOKMARK_EVERY: Duration = Duration::from_secs(60);
/// Name of the cluster, context and user in generated kubeconfigs.
pub const KUBECONFIG_NAME: &str = "pullfix-sandbox";

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Server configuration.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub users: Vec<User>,
    /// Where to append audit.k8s.io/v1 events (one JSON line per request).
    pub audit_log: Option<PathBuf>,
}

/// A user known by bearer token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub token: String,
    pub groups: Vec<String>,
    pub deny: Vec<Deny>,
}

/// A denial rule: any verb in `verbs` on `resource` (plural, optionally
/// "/subresource") of API `group` ("" core); "*" wildcards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deny {
    pub verbs: Vec<String>,
    pub group: String,
    pub resource: String,
}

impl Deny {
    pub fn new(verbs: &[&str], group: &str, resource: &str) -> Deny {
        Deny {
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
            group: group.to_string(),
            resource: resource.to_string(),
        }
    }
}

struct Shared {
    state: Mutex<State>,
    users: Vec<User>,
    audit: Option<Mutex<std::fs::File>>,
    /// The store's resourceVersion after the latest write (wakes watches).
    rv: watch::Sender<u64>,
    url: String,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every write
        // is one `Store::put`/`remove`), so keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn notify(&self, rv: u64) {
        self.rv.send_if_modified(|cur| {
            let changed = *cur != rv;
            *cur = rv;
            changed
        });
    }
}

/// A running API server. Dropping it (or [`ApiServer::shutdown`]) stops it.
pub struct ApiServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: ServerTask,
}

/// Starts the server on `addr` (port 0: any free port).
pub async fn start(addr: SocketAddr, options: Options) -> anyhow::Result<ApiServer> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("apiserver: bind {addr}"))?;
    let addr = listener
        .local_addr()
        .context("apiserver: read the bound address")?;
    let audit = match &options.audit_log {
        Some(p) => Some(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("apiserver: open the audit log {}", p.display()))?,
        )),
        None => None,
    };
    let state = State::new(Utc::now());
    let (rv, _) = watch::channel(state.store.rv());
    let shared = Arc::new(Shared {
        state: Mutex::new(state),
        users: options.users,
        audit,
        rv,
        url: format!("http://{addr}"),
    });
    let serving = shared.clone();
    let server = ServerTask::spawn(&tokio::runtime::Handle::current(), |stopped| {
        serve_http1(listener, stopped, move |req, peer| {
            serve(serving.clone(), req, peer)
        })
    });
    Ok(ApiServer {
        addr,
        shared,
        server,
    })
}

impl ApiServer {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.shared.url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig for `user` (bearer token; no token for an unknown user,
    /// who is then anonymous), cluster/context/user named `pullfix-sandbox`.
    pub fn kubeconfig(&self, user: &str, namespace: Option<&str>) -> String {
        let token = self
            .shared
            .users
            .iter()
            .find(|u| u.name == user)
            .map(|u| u.token.clone())
            .unwrap_or_default();
        kubeconfig_yaml(&self.url(), &token, namespace)
    }

    /// The server URL a user's kubectl uses: `URL/u/TOKEN` (see
    /// [`kubeconfig_yaml`]).
    pub fn user_url(&self, user: &str) -> String {
        let token = self
            .shared
            .users
            .iter()
            .find(|u| u.name == user)
            .map(|u| u.token.as_str())
            .unwrap_or("");
        server_url(&self.url(), token)
    }

    /// Number of stored objects (for tests and status lines).
    pub fn object_count(&self) -> usize {
        self.shared.state().store.len()
    }

    /// Stops accepting, closes every connection (and watch) and waits.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// The path prefix that carries a token: kubectl (client-go) sends no
/// credentials to a plain-HTTP server, so the kubeconfig's server URL
/// names the user as `/u/TOKEN` (client-go and kube-rs keep a server URL's
/// path as a prefix). The server strips it; an `Authorization: Bearer`
/// header, when present, wins.
pub const TOKEN_PREFIX: &str = "/u/";

fn server_url(url: &str, token: &str) -> String {
    if token.is_empty() {
        return url.to_string();
    }
    let safe: String = token
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("{url}{TOKEN_PREFIX}{safe}")
}

/// Splits `/u/TOKEN/rest` into (token, `/rest`).
fn split_token_prefix(path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix(TOKEN_PREFIX)?;
    let (token, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let decoded = handler::parse_query(&format!("t={}", token.replace('+', "%2B")));
    let token = decoded.first().map(|(_, v)| v.clone()).unwrap_or_default();
    Some((token, tail.to_string()))
}

/// The kubeconfig YAML (pure): the bearer token, and the same token in the
/// server URL's path for kubectl (see [`TOKEN_PREFIX`]).
pub fn kubeconfig_yaml(url: &str, token: &str, namespace: Option<&str>) -> String {
    let url = server_url(url, token);
    let url = url.as_str();
    let mut context = json!({"cluster": KUBECONFIG_NAME, "user": KUBECONFIG_NAME});
    if let Some(ns) = namespace {
        context["namespace"] = json!(ns);
    }
    let user = if token.is_empty() {
        json!({})
    } else {
        json!({"token": token})
    };
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": KUBECONFIG_NAME, "cluster": {"server": url}}],
        "contexts": [{"name": KUBECONFIG_NAME, "context": context}],
        "current-context": KUBECONFIG_NAME,
        "users": [{"name": KUBECONFIG_NAME, "user": user}],
        "preferences": {},
    });
    serde_saphyr::to_string(&doc).unwrap_or_default()
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

fn respond(code: u16, content_type: &str, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}

fn json_response(code: u16, v: &Value) -> Response<Body> {
    respond(
        code,
        "application/json",
        full(serde_json::to_vec(v).unwrap_or_default()),
    )
}

/// What the audit line says about a request.
struct AuditInfo {
    id: String,
    received: DateTime<Utc>,
    uri: String,
    verb: String,
    user: (String, Vec<String>),
    user_agent: String,
    source: String,
    object_ref: Option<Value>,
}

impl AuditInfo {
    fn line(&self, code: u16, error: Option<&ApiError>) -> Value {
        let mut status = json!({"metadata": {}, "code": code});
        if let Some(e) = error {
            status["status"] = json!("Failure");
            status["reason"] = json!(e.reason);
            status["message"] = json!(e.message);
        }
        let mut ev = json!({
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "Metadata",
            "auditID": self.id,
            "stage": "ResponseComplete",
            "requestURI": self.uri,
            "verb": self.verb,
            "user": {"username": self.user.0, "groups": self.user.1},
            "sourceIPs": [self.source],
            "userAgent": self.user_agent,
            "responseStatus": status,
            "requestReceivedTimestamp": self.received.to_rfc3339_opts(SecondsFormat::Micros, true),
            "stageTimestamp": Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
        });
        if let Some(r) = &self.object_ref {
            ev["objectRef"] = r.clone();
        }
        ev
    }
}

fn write_audit(shared: &Shared, line: &Value) {
    if let Some(file) = &shared.audit {
        let mut text = line.to_string();
        text.push('\n');
        let mut f = file.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = f.write_all(text.as_bytes()) {
            tracing::warn!("apiserver: write the audit log: {e}");
        }
    }
}

/// Writes the audit line of a watch when its stream ends.
struct AuditOnDrop {
    shared: Arc<Shared>,
    info: AuditInfo,
}

impl Drop for AuditOnDrop {
    fn drop(&mut self) {
        write_audit(&self.shared, &self.info.line(200, None));
    }
}

fn object_ref(t: &ResourceTarget) -> Value {
    let mut r = json!({"resource": t.def.plural, "apiVersion": t.def.version});
    let ns = if t.def.kind == "Namespace" {
        &t.name
    } else {
        &t.namespace
    };
    if !ns.is_empty() {
        r["namespace"] = json!(ns);
    }
    if !t.name.is_empty() {
        r["name"] = json!(t.name);
    }
    if !t.def.group.is_empty() {
        r["apiGroup"] = json!(t.def.group);
    }
    if !t.subresource.is_empty() {
        r["subresource"] = json!(t.subresource);
    }
    r
}

fn authenticate(shared: &Shared, header: Option<&str>) -> Result<Caller, ApiError> {
    let Some(h) = header else {
        return Ok(Caller {
            name: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
            deny: Vec::new(),
            anonymous: true,
        });
    };
    let token = h
        .strip_prefix("Bearer ")
        .or_else(|| h.strip_prefix("bearer "))
        .map(str::trim)
        .ok_or_else(ApiError::unauthorized)?;
    let user = shared
        .users
        .iter()
        .find(|u| !u.token.is_empty() && u.token == token)
        .ok_or_else(ApiError::unauthorized)?;
    let mut groups = user.groups.clone();
    if !groups.iter().any(|g| g == "system:authenticated") {
        groups.push("system:authenticated".into());
    }
    Ok(Caller {
        name: user.name.clone(),
        groups,
        deny: user
            .deny
            .iter()
            .map(|d| DenyRule {
                verbs: d.verbs.clone(),
                group: d.group.clone(),
                resource: d.resource.clone(),
            })
            .collect(),
        anonymous: false,
    })
}

async fn serve(
    shared: Arc<Shared>,
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    let received = Utc::now();
    let header = |name: http::header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let method = req.method().as_str().to_string();
    let mut path = req.uri().path().to_string();
    let raw_query = req.uri().query().unwrap_or("").to_string();
    let path_token = split_token_prefix(&path).map(|(token, rest)| {
        path = rest;
        token
    });
    let uri = if raw_query.is_empty() {
        path.clone()
    } else {
        format!("{path}?{raw_query}")
    };
    let content_type = header(http::header::CONTENT_TYPE);
    let accept = header(http::header::ACCEPT);
    let user_agent = header(http::header::USER_AGENT);
    let authz = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| path_token.map(|t| format!("Bearer {t}")));
    let mut audit = AuditInfo {
        id: objects::uuid_v4(&mut rand::rng()),
        received,
        uri,
        verb: method.to_lowercase(),
        user: (String::new(), Vec::new()),
        user_agent: user_agent.clone(),
        source: peer.ip().to_string(),
        object_ref: None,
    };
    let caller = match authenticate(&shared, authz.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            write_audit(&shared, &audit.line(e.code, Some(&e)));
            return json_response(e.code, &e.status());
        }
    };
    audit.user = (caller.name.clone(), caller.groups.clone());
    let query = handler::parse_query(&raw_query);
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(e) => {
            let err = if e.is::<http_body_util::LengthLimitError>() {
                ApiError::too_large()
            } else {
                ApiError::bad_request(format!("reading the request body: {e}"))
            };
            write_audit(&shared, &audit.line(err.code, Some(&err)));
            return json_response(err.code, &err.status());
        }
    };
    let request = Request {
        method,
        path,
        query,
        content_type,
        accept,
        user_agent,
        body,
    };
    let (response, error, code) = match handler::route(&request.path) {
        Err(e) => (json_response(e.code, &e.status()), Some(e.clone()), e.code),
        Ok(Target::NonResource) => {
            let (code, ct, text) = non_resource(&shared, &request);
            (respond(code, ct, full(text)), None, code)
        }
        Ok(Target::Resource(t)) => {
            let watch = matches!(request.param("watch"), Some("true" | "1")) || t.legacy_watch;
            let verb = handler::verb(&request.method, &t, watch);
            audit.verb = verb.to_string();
            audit.object_ref = Some(object_ref(&t));
            if verb.is_empty() {
                let e = ApiError::method_not_allowed();
                (json_response(e.code, &e.status()), Some(e.clone()), e.code)
            } else if let Err(e) = handler::authorize(&caller, verb, &t) {
                (json_response(e.code, &e.status()), Some(e.clone()), e.code)
            } else {
                let reply = {
                    let mut st = shared.state();
                    let reply = st.handle(&request, &t, &caller, Utc::now());
                    shared.notify(st.store.rv());
                    reply
                };
                match reply {
                    Reply::Json(code, v) => {
                        let error = (code >= 400).then(|| ApiError {
                            code,
                            reason: reason_of(&v),
                            message: v["message"].as_str().unwrap_or("").to_string(),
                            details: None,
                        });
                        (json_response(code, &v), error, code)
                    }
                    Reply::Text(code, text) => {
                        (respond(code, "text/plain", full(text)), None, code)
                    }
                    Reply::Watch(plan) => {
                        let guard = AuditOnDrop {
                            shared: shared.clone(),
                            info: audit,
                        };
                        return watch_response(shared.clone(), *plan, guard);
                    }
                }
            }
        }
    };
    write_audit(&shared, &audit.line(code, error.as_ref()));
    response
}

fn reason_of(status: &Value) -> &'static str {
    const REASONS: &[&str] = &[
        "NotFound",
        "AlreadyExists",
        "Conflict",
        "Invalid",
        "Forbidden",
        "Unauthorized",
        "BadRequest",
        "MethodNotAllowed",
        "Gone",
        "Expired",
        "UnsupportedMediaType",
        "NotAcceptable",
        "RequestEntityTooLarge",
    ];
    let r = status["reason"].as_str().unwrap_or("");
    REASONS.iter().find(|x| **x == r).copied().unwrap_or("")
}

/// Discovery, version, health and OpenAPI: (code, content type, body).
fn non_resource(shared: &Shared, req: &Request) -> (u16, &'static str, Vec<u8>) {
    let json_ok = |v: Value| {
        (
            200,
            "application/json",
            serde_json::to_vec(&v).unwrap_or_default(),
        )
    };
    let not_found = || {
        (
            404,
            "text/plain; charset=utf-8",
            b"404 page not found\n".to_vec(),
        )
    };
    if req.method != "GET" && req.method != "HEAD" {
        let e = ApiError::method_not_allowed();
        return (
            e.code,
            "application/json",
            serde_json::to_vec(&e.status()).unwrap_or_default(),
        );
    }
    let path = req.path.trim_end_matches('/');
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segs.as_slice() {
        ["version"] => json_ok(json!({
            "major": "1",
            "minor": "33",
            "gitVersion": GIT_VERSION,
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2025-01-01T00:00:00Z",
            "goVersion": "go1.24.0",
            "compiler": "gc",
            "platform": format!("{}/{}", std::env::consts::OS, go_arch()),
        })),
        ["healthz"] | ["livez"] | ["readyz"] => (200, "text/plain; charset=utf-8", b"ok".to_vec()),
        ["api"] => json_ok(resources::api_versions(
            shared.url.trim_start_matches("http://"),
        )),
        ["apis"] => json_ok(resources::api_group_list()),
        ["api", v] => resources::resource_list("", v)
            .map(json_ok)
            .unwrap_or_else(not_found),
        ["apis", g] => resources::api_group(g)
            .map(json_ok)
            .unwrap_or_else(not_found),
        ["apis", g, v] => resources::resource_list(g, v)
            .map(json_ok)
            .unwrap_or_else(not_found),
        ["openapi", rest @ ..] => match openapi::document(rest) {
            Some(v) => json_ok(v),
            None => not_found(),
        },
        _ => not_found(),
    }
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Streams a watch: initial ADDED events, then changes, as JSON lines.
struct WatchStream {
    shared: Arc<Shared>,
    plan: WatchPlan,
    last_rv: u64,
    rv_rx: watch::Receiver<u64>,
    pending: VecDeque<Bytes>,
    deadline: Instant,
    next_bookmark: Instant,
    done: bool,
    _audit: AuditOnDrop,
}

fn line(v: &Value) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

impl WatchStream {
    fn collect(&mut self) {
        let now = Utc::now();
        let st = self.shared.state();
        let key = self.plan.def.key();
        match st.store.events_since(&key, self.last_rv) {
            Ok(events) => {
                for e in events {
                    if let Some((ty, obj)) = handler::watch_event(&self.plan.selection, &e) {
                        let ev = handler::event_json(
                            self.plan.def,
                            ty,
                            &obj,
                            self.plan.table.as_deref(),
                            now,
                        );
                        self.pending.push_back(line(&ev));
                    }
                }
                self.last_rv = st.store.rv();
            }
            Err(oldest) => {
                let e = ApiError::gone_expired(self.last_rv, oldest);
                self.pending
                    .push_back(line(&json!({"type": "ERROR", "object": e.status()})));
                self.done = true;
            }
        }
    }

    fn bookmark(&mut self) {
        let rv = self.shared.state().store.rv().max(self.last_rv);
        let obj = json!({
            "kind": self.plan.def.kind,
            "apiVersion": self.plan.def.api_version(),
            "metadata": {"resourceVersion": rv.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}},
        });
        self.pending
            .push_back(line(&json!({"type": "BOOKMARK", "object": obj})));
    }

    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(b) = self.pending.pop_front() {
                return Some(b);
            }
            if self.done {
                return None;
            }
            let bookmarks = self.plan.bookmarks && self.plan.table.is_none();
            tokio::select! {
                _ = tokio::time::sleep_until(self.deadline) => self.done = true,
                _ = tokio::time::sleep_until(self.next_bookmark), if bookmarks => {
                    self.next_bookmark += BOOKMARK_EVERY;
                    self.bookmark();
                }
                changed = self.rv_rx.changed() => match changed {
                    Ok(()) => self.collect(),
                    Err(_) => self.done = true,
                },
            }
        }
    }
}

fn watch_response(shared: Arc<Shared>, plan: WatchPlan, audit: AuditOnDrop) -> Response<Body> {
    let now = Utc::now();
    let mut pending = VecDeque::new();
    let mut done = false;
    if let Some(e) = &plan.expired {
        pending.push_back(line(&json!({"type": "ERROR", "object": e.status()})));
        done = true;
    }
    for obj in &plan.initial {
        let ev = handler::event_json(plan.def, "ADDED", obj, plan.table.as_deref(), now);
        pending.push_back(line(&ev));
    }
    let mut rv_rx = shared.rv.subscribe();
    rv_rx.mark_changed();
    let start = Instant::now();
    let stream = WatchStream {
        last_rv: plan.from_rv,
        deadline: start + Duration::from_secs(plan.timeout_secs),
        next_bookmark: start + BOOKMARK_EVERY,
        shared,
        plan,
        rv_rx,
        pending,
        done,
        _audit: audit,
    };
    let frames = futures::stream::unfold(stream, |mut s| async move {
        let b = s.next().await?;
        Some((Ok::<_, Infallible>(Frame::data(b)), s))
    });
    respond(
        200,
        "application/json",
        StreamBody::new(frames).boxed_unsync(),
    )
}
