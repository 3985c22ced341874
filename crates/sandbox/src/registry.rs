//! An embedded registry for the sandbox: the distribution API's read side
//! (`/v2/`, manifests, blobs, tags list) over plain HTTP on loopback, with
//! the answers real registries give (see `scripts/lab.d/tokenissuer.py` and
//! `scripts/lab.d/hubstub.py`): Basic auth, the Bearer token dance with a
//! token endpoint served by the same server, Docker Hub's
//! `insufficient_scope` for missing repositories, 403 DENIED and the pull
//! rate limit.
//!
//! The server is a small HTTP/1.1 implementation on tokio (GET, HEAD and
//! `POST /token`; keep-alive; no chunked request bodies), written before the
//! sandbox took hyper for its API server and ECR API
//! ([`crate::server::serve_http1`]); it shares their
//! [`ServerTask`] for start and stop. Content is generated, deterministic and
//! content-addressed: the same image added to two registries has the same
//! digest. Credentials, behaviours and content can change while it runs.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use crate::server::ServerTask;
use pullfix::registry::client::RegistryConfig;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Docker Hub's 429 message (the same text as the lab's hub stub).
pub const RATE_LIMIT_MESSAGE: &str = "You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit";
/// The window Docker Hub reports in `ratelimit-*` headers (`;w=21600`).
pub const RATE_LIMIT_WINDOW_SECS: u64 = 21600;
/// Token service name when none is configured.
pub const DEFAULT_SERVICE: &str = "pullfix-sandbox-registry";
/// Basic realm when none is configured.
pub const DEFAULT_REALM: &str = "pullfix sandbox registry";
/// Lifetime of issued tokens.
pub const TOKEN_TTL: Duration = Duration::from_secs(300);

const CREATED: &str = "2024-01-01T00:00:00Z";
const MTIME: u64 = 1_704_067_200;
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 1024 * 1024;
const IDLE: Duration = Duration::from_secs(60);
const LOG_CAP: usize = 10_000;

/// How callers authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// No authentication at all.
    #[default]
    Anonymous,
    /// `WWW-Authenticate: Basic`; every user may pull every repository.
    Basic,
    /// `WWW-Authenticate: Bearer` with the token endpoint at `/token`.
    /// Users get pull on what they ask for; anonymous callers get a token
    /// with pull on public repositories only.
    Bearer,
}

/// What a repository the registry does not hold answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingRepo {
    /// distribution: 404 NAME_UNKNOWN.
    #[default]
    NotFound,
    /// Docker Hub: 401 `error="insufficient_scope"` (missing and private
    /// look the same).
    InsufficientScope,
}

/// A behaviour injected for one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoBehavior {
    /// 403 DENIED for authenticated callers.
    Forbidden,
    /// Docker Hub's pull rate limit. Every manifest response carries
    /// `ratelimit-limit`/`ratelimit-remaining`/`docker-ratelimit-source`;
    /// each GET of a top-level manifest uses one pull; at zero, every
    /// request for the repository answers 429 TOOMANYREQUESTS with
    /// `Retry-After`.
    RateLimited {
        limit: u32,
        remaining: u32,
        retry_after: u64,
    },
    /// 401 `insufficient_scope` even with good credentials, as Docker Hub
    /// answers for a missing or someone else's private repository.
    MissingRepoAsScope,
}

/// A registry's configuration at start (all of it changeable later).
#[derive(Debug, Clone, Default)]
pub struct RegistryBehavior {
    pub auth: AuthMode,
    /// user → password, for Basic and for the token endpoint.
    pub users: BTreeMap<String, String>,
    /// Token service name (empty: [`DEFAULT_SERVICE`]).
    pub service: String,
    /// Basic realm (empty: [`DEFAULT_REALM`]).
    pub realm: String,
    pub missing_repo: MissingRepo,
    pub repos: HashMap<String, RepoBehavior>,
    /// Repositories anonymous Bearer callers may pull.
    pub public_repos: HashSet<String>,
    /// Server-side cap on a tags-list page (registries cap `n`).
    pub max_tags_per_page: Option<usize>,
    /// ECR's answer to credentials it does not accept (an expired token):
    /// 403 `DENIED` instead of a 401 challenge. Requests without
    /// credentials still get the challenge.
    pub reject_with_403: bool,
}

fn users(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(u, p)| (u.to_string(), p.to_string()))
        .collect()
}

impl RegistryBehavior {
    pub fn anonymous() -> RegistryBehavior {
        RegistryBehavior::default()
    }

    pub fn basic(pairs: &[(&str, &str)]) -> RegistryBehavior {
        RegistryBehavior {
            auth: AuthMode::Basic,
            users: users(pairs),
            ..Default::default()
        }
    }

    pub fn bearer(pairs: &[(&str, &str)]) -> RegistryBehavior {
        RegistryBehavior {
            auth: AuthMode::Bearer,
            users: users(pairs),
            ..Default::default()
        }
    }

    /// Missing repositories answer `insufficient_scope`, like Docker Hub.
    pub fn docker_hub_style(mut self) -> RegistryBehavior {
        self.missing_repo = MissingRepo::InsufficientScope;
        self
    }

    pub fn with_repo(mut self, repo: &str, behavior: RepoBehavior) -> RegistryBehavior {
        self.repos.insert(repo.to_string(), behavior);
        self
    }

    pub fn with_public(mut self, repo: &str) -> RegistryBehavior {
        self.public_repos.insert(repo.to_string());
        self
    }

    pub fn with_service(mut self, service: &str) -> RegistryBehavior {
        self.service = service.to_string();
        self
    }

    pub fn with_tags_page(mut self, max: usize) -> RegistryBehavior {
        self.max_tags_per_page = Some(max);
        self
    }
}

/// Digests of an added image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedImage {
    /// Digest the tag points to (the index's, for an index).
    pub digest: String,
    pub media_type: &'static str,
    /// One entry per platform: the platform manifest.
    pub platforms: Vec<PlatformImage>,
}

/// One platform's manifest of an added image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformImage {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
    pub digest: String,
    /// Config + layer bytes (what `Resolved::size` reports).
    pub size: u64,
}

/// One request the registry answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    /// Path with query.
    pub target: String,
    pub status: u16,
    /// The Basic user or the token's subject, when authenticated.
    pub user: Option<String>,
}

struct StoredManifest {
    media_type: &'static str,
    bytes: Vec<u8>,
}

#[derive(Default)]
struct Repo {
    tags: BTreeMap<String, String>,
    manifests: HashMap<String, StoredManifest>,
    blobs: HashSet<String>,
    /// Manifests referenced from an index (not counted as pulls).
    children: HashSet<String>,
}

struct Grant {
    sub: String,
    repos: HashSet<String>,
    expires: Instant,
}

#[derive(Default)]
struct State {
    behavior: RegistryBehavior,
    addr: Option<SocketAddr>,
    repos: BTreeMap<String, Repo>,
    blobs: HashMap<String, Vec<u8>>,
    tokens: HashMap<String, Grant>,
    log: VecDeque<RequestRecord>,
}

/// A handle on a registry's content and behaviour; cheap to clone, shared
/// with the server task.
#[derive(Clone, Default)]
pub struct EmbeddedRegistry {
    state: Arc<Mutex<State>>,
}

/// A serving registry. Dropping it (or [`RunningRegistry::shutdown`]) stops
/// the server and closes every connection.
pub struct RunningRegistry {
    pub addr: SocketAddr,
    pub registry: EmbeddedRegistry,
    server: ServerTask,
}

impl EmbeddedRegistry {
    /// A registry that is not serving yet.
    pub fn new(behavior: RegistryBehavior) -> EmbeddedRegistry {
        EmbeddedRegistry {
            state: Arc::new(Mutex::new(State {
                behavior,
                ..Default::default()
            })),
        }
    }

    /// Serves a new registry on `127.0.0.1:0`. Needs a tokio runtime.
    pub fn start(behavior: RegistryBehavior) -> anyhow::Result<RunningRegistry> {
        EmbeddedRegistry::new(behavior).serve(SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Serves this registry on `addr` (port 0: any free port).
    pub fn serve(&self, addr: SocketAddr) -> anyhow::Result<RunningRegistry> {
        let runtime = tokio::runtime::Handle::try_current()
            .context("the embedded registry needs a tokio runtime")?;
        let std_listener = std::net::TcpListener::bind(addr)
            .with_context(|| format!("bind the embedded registry to {addr}"))?;
        std_listener.set_nonblocking(true)?;
        let bound = std_listener.local_addr()?;
        let listener = {
            let _guard = runtime.enter();
            TcpListener::from_std(std_listener)?
        };
        self.lock().addr = Some(bound);
        let state = self.state.clone();
        let server = ServerTask::spawn(&runtime, |stopped| accept_loop(listener, state, stopped));
        Ok(RunningRegistry {
            addr: bound,
            registry: self.clone(),
            server,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `repo:tag` for the given `(os, arch)` platforms (`arch` may carry
    /// a variant: `arm/v7`). One platform: a schema-2 manifest; more: an OCI
    /// index of OCI manifests.
    pub fn add_image(&self, repo: &str, tag: &str, platforms: &[(&str, &str)]) -> AddedImage {
        self.add(repo, tag, platforms, platforms.len() > 1)
    }

    /// Adds `repo:tag` as an OCI index even for a single platform (like the
    /// lab's `team/multi:1.0`).
    pub fn add_index(&self, repo: &str, tag: &str, platforms: &[(&str, &str)]) -> AddedImage {
        self.add(repo, tag, platforms, true)
    }

    fn add(&self, repo: &str, tag: &str, platforms: &[(&str, &str)], index: bool) -> AddedImage {
        let platforms: &[(&str, &str)] = if platforms.is_empty() {
            &[("linux", "amd64")]
        } else {
            platforms
        };
        let mut st = self.lock();
        let st = &mut *st;
        let entry = st.repos.entry(repo.to_string()).or_default();
        let mut added = Vec::new();
        let mut descriptors = Vec::new();
        for (os, arch) in platforms {
            let (arch, variant) = match arch.split_once('/') {
                Some((a, v)) => (a, Some(v)),
                None => (*arch, None),
            };
            let built = build_single(repo, tag, os, arch, variant, index);
            for (digest, bytes) in built.blobs {
                entry.blobs.insert(digest.clone());
                st.blobs.insert(digest, bytes);
            }
            let digest = sha256_digest(&built.manifest);
            let mut platform = json!({"architecture": arch, "os": os});
            if let Some(v) = variant {
                platform["variant"] = json!(v);
            }
            descriptors.push(json!({
                "mediaType": built.media_type,
                "size": built.manifest.len(),
                "digest": digest,
                "platform": platform,
            }));
            if index {
                entry.children.insert(digest.clone());
            }
            entry.manifests.insert(
                digest.clone(),
                StoredManifest {
                    media_type: built.media_type,
                    bytes: built.manifest,
                },
            );
            added.push(PlatformImage {
                os: os.to_string(),
                arch: arch.to_string(),
                variant: variant.map(str::to_string),
                digest,
                size: built.size,
            });
        }
        let (digest, media_type) = if index {
            let bytes = canonical(&json!({
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": descriptors,
            }));
            let digest = sha256_digest(&bytes);
            entry.manifests.insert(
                digest.clone(),
                StoredManifest {
                    media_type: OCI_INDEX,
                    bytes,
                },
            );
            (digest, OCI_INDEX)
        } else {
            (added[0].digest.clone(), DOCKER_MANIFEST)
        };
        entry.tags.insert(tag.to_string(), digest.clone());
        AddedImage {
            digest,
            media_type,
            platforms: added,
        }
    }

    /// The images of docs/lab-contract.md (same repositories and tags; the
    /// bytes, and so the digests, are the sandbox's own).
    pub fn add_lab_images(&self) -> Vec<(String, AddedImage)> {
        let amd64: &[(&str, &str)] = &[("linux", "amd64")];
        let mut out = Vec::new();
        for (repo, tag) in [
            ("team/checkout", "v2.1.0"),
            ("team/checkout", "v2.0.3"),
            ("team/checkout", "v2.1.1"),
            ("team/checkout", "latest"),
            ("team/worker", "1.4.2"),
            ("library/busybox", "1.36"),
        ] {
            out.push((format!("{repo}:{tag}"), self.add_image(repo, tag, amd64)));
        }
        out.push((
            "team/multi:1.0".to_string(),
            self.add_index("team/multi", "1.0", amd64),
        ));
        out
    }

    /// Removes a tag (the manifest stays reachable by digest).
    pub fn remove_tag(&self, repo: &str, tag: &str) -> bool {
        self.lock()
            .repos
            .get_mut(repo)
            .is_some_and(|r| r.tags.remove(tag).is_some())
    }

    /// Removes a repository and everything in it.
    pub fn remove_repo(&self, repo: &str) -> bool {
        self.lock().repos.remove(repo).is_some()
    }

    /// Sets (or adds) a user's password, e.g. to simulate a rotation.
    /// Tokens already issued stay valid until they expire.
    pub fn set_password(&self, user: &str, password: &str) {
        self.lock()
            .behavior
            .users
            .insert(user.to_string(), password.to_string());
    }

    pub fn remove_user(&self, user: &str) -> bool {
        self.lock().behavior.users.remove(user).is_some()
    }

    pub fn set_auth(&self, auth: AuthMode) {
        self.lock().behavior.auth = auth;
    }

    pub fn set_missing_repo(&self, missing: MissingRepo) {
        self.lock().behavior.missing_repo = missing;
    }

    /// Injects (`Some`) or clears (`None`) a repository's behaviour.
    pub fn set_repo_behavior(&self, repo: &str, behavior: Option<RepoBehavior>) {
        let mut st = self.lock();
        match behavior {
            Some(b) => st.behavior.repos.insert(repo.to_string(), b),
            None => st.behavior.repos.remove(repo),
        };
    }

    pub fn set_public(&self, repo: &str, public: bool) {
        let mut st = self.lock();
        if public {
            st.behavior.public_repos.insert(repo.to_string());
        } else {
            st.behavior.public_repos.remove(repo);
        }
    }

    /// Invalidates every issued token (callers get `invalid_token`).
    pub fn revoke_tokens(&self) {
        self.lock().tokens.clear();
    }

    /// The current configuration.
    pub fn behavior(&self) -> RegistryBehavior {
        self.lock().behavior.clone()
    }

    /// Tags of a repository, sorted.
    pub fn tags(&self, repo: &str) -> Vec<String> {
        self.lock()
            .repos
            .get(repo)
            .map(|r| r.tags.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The most recent requests (up to 10 000), oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.lock().log.iter().cloned().collect()
    }

    pub fn clear_requests(&self) {
        self.lock().log.clear();
    }
}

impl RunningRegistry {
    /// `127.0.0.1:PORT`, as written in image references and `plain_http`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `HOST/repo:tag`.
    pub fn image(&self, repo_and_ref: &str) -> String {
        format!("{}/{repo_and_ref}", self.addr)
    }

    /// A client configuration that speaks plain HTTP to this registry.
    pub fn client_config(&self) -> RegistryConfig {
        RegistryConfig {
            plain_http: vec![self.host()],
            ..Default::default()
        }
    }

    /// Stops the server and waits until the listener is closed.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

impl Deref for RunningRegistry {
    type Target = EmbeddedRegistry;
    fn deref(&self) -> &EmbeddedRegistry {
        &self.registry
    }
}

// ---------------------------------------------------------------- server

async fn accept_loop(
    listener: TcpListener,
    state: Arc<Mutex<State>>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => {
                if let Ok((stream, peer)) = accepted {
                    conns.spawn(serve_conn(stream, peer, state.clone()));
                }
                while conns.try_join_next().is_some() {}
            }
        }
    }
    drop(listener);
    conns.shutdown().await;
}

struct Request {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    close: bool,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    user: Option<String>,
}

impl Reply {
    fn json(status: u16, body: &Value) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: serde_json::to_vec(body).unwrap_or_default(),
            user: None,
        }
    }

    fn error(status: u16, code: &str, message: &str, detail: Value) -> Reply {
        Reply::json(
            status,
            &json!({"errors": [{"code": code, "message": message, "detail": detail}]}),
        )
    }

    fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    fn encode(&self, head: bool, close: bool) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        out.push_str("Docker-Distribution-Api-Version: registry/2.0\r\n");
        out.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        if close {
            out.push_str("Connection: close\r\n");
        }
        for (k, v) in &self.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        if !head {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        _ => "Unknown",
    }
}

async fn serve_conn(mut stream: TcpStream, peer: SocketAddr, state: Arc<Mutex<State>>) {
    let mut buf = Vec::with_capacity(4096);
    loop {
        let req = match read_request(&mut stream, &mut buf).await {
            Ok(Some(req)) => req,
            Ok(None) => return,
            Err(status) => {
                let reply = Reply::error(status, "UNSUPPORTED", reason(status), Value::Null);
                let _ = stream.write_all(&reply.encode(false, true)).await;
                return;
            }
        };
        let reply = handle(&state, &req, peer);
        let bytes = reply.encode(req.method == "HEAD", req.close);
        if stream.write_all(&bytes).await.is_err() || req.close {
            return;
        }
    }
}

/// Reads one request; `Ok(None)` on a clean close or idle timeout,
/// `Err(status)` for a request this server will not read.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Option<Request>, u16> {
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        if buf.len() > MAX_HEAD {
            return Err(431);
        }
        match tokio::time::timeout(IDLE, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return Ok(None),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end + 4);
    let mut lines = head.split("\r\n");
    let mut parts = lines.next().unwrap_or_default().split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(400);
    };
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_ascii_lowercase())
    };
    if get("transfer-encoding").is_some() {
        return Err(501);
    }
    let length: usize = get("content-length")
        .map(|v| v.parse().map_err(|_| 400u16))
        .transpose()?
        .unwrap_or(0);
    if length > MAX_BODY {
        return Err(413);
    }
    while buf.len() < length {
        match tokio::time::timeout(IDLE, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return Ok(None),
        }
    }
    let body: Vec<u8> = buf.drain(..length).collect();
    let connection = get("connection").unwrap_or_default();
    let close = connection.contains("close")
        || (version == "HTTP/1.0" && !connection.contains("keep-alive"));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Ok(Some(Request {
        method: method.to_ascii_uppercase(),
        path: percent_decode(path, false),
        query: parse_form(query),
        target: target.to_string(),
        headers,
        body,
        close,
    }))
}

fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

fn percent_decode(s: &str, plus_is_space: bool) -> String {
    if plus_is_space {
        pullfix::encoding::form_decode(s)
    } else {
        pullfix::encoding::percent_decode(s)
    }
}

fn handle(state: &Mutex<State>, req: &Request, peer: SocketAddr) -> Reply {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let reply = route(&mut st, req, peer);
    if st.log.len() >= LOG_CAP {
        st.log.pop_front();
    }
    st.log.push_back(RequestRecord {
        method: req.method.clone(),
        target: req.target.clone(),
        status: reply.status,
        user: reply.user.clone(),
    });
    reply
}

enum Route<'a> {
    Manifest(&'a str),
    Blob(&'a str),
    Tags,
}

/// Who is calling, once authenticated.
enum Caller {
    Anonymous,
    User(String),
    Token { sub: String, repos: HashSet<String> },
}

impl Caller {
    fn name(&self) -> Option<String> {
        match self {
            Caller::Anonymous => None,
            Caller::User(u) => Some(u.clone()),
            Caller::Token { sub, .. } => (!sub.is_empty()).then(|| sub.clone()),
        }
    }

    fn may_pull(&self, repo: &str) -> bool {
        match self {
            Caller::Token { repos, .. } => repos.contains(repo),
            _ => true,
        }
    }
}

fn route(st: &mut State, req: &Request, peer: SocketAddr) -> Reply {
    if req.path == "/token" {
        return match req.method.as_str() {
            "GET" | "HEAD" => {
                let scopes: Vec<String> = req
                    .query
                    .iter()
                    .filter(|(k, _)| k == "scope")
                    .flat_map(|(_, v)| v.split(' ').map(str::to_string))
                    .filter(|s| !s.is_empty())
                    .collect();
                let creds = basic_credentials(req.header("authorization"));
                issue_token(st, creds, &scopes, false)
            }
            "POST" => {
                let form = parse_form(&String::from_utf8_lossy(&req.body));
                let field = |k: &str| {
                    form.iter()
                        .find(|(key, _)| key == k)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                if field("grant_type") != "password" {
                    return Reply::json(400, &json!({"error": "unsupported_grant_type"}));
                }
                let scopes: Vec<String> = form
                    .iter()
                    .filter(|(k, _)| k == "scope")
                    .flat_map(|(_, v)| v.split(' ').map(str::to_string))
                    .filter(|s| !s.is_empty())
                    .collect();
                let creds = Some(Some((field("username"), field("password"))));
                issue_token(st, creds, &scopes, true)
            }
            _ => unsupported(),
        };
    }
    if req.method != "GET" && req.method != "HEAD" {
        return unsupported();
    }
    if req.path == "/v2" || req.path == "/v2/" {
        return match authenticate(st, req, None) {
            Ok(caller) => {
                let mut r = Reply::json(200, &json!({}));
                r.user = caller.name();
                r
            }
            Err(r) => r,
        };
    }
    let Some(rest) = req.path.strip_prefix("/v2/") else {
        return not_found_route();
    };
    let (name, what) = if let Some(name) = rest.strip_suffix("/tags/list") {
        (name, Route::Tags)
    } else if let Some((name, reference)) = rest.rsplit_once("/manifests/") {
        (name, Route::Manifest(reference))
    } else if let Some((name, digest)) = rest.rsplit_once("/blobs/") {
        (name, Route::Blob(digest))
    } else {
        return not_found_route();
    };
    if !valid_name(name) {
        return Reply::error(
            400,
            "NAME_INVALID",
            "invalid repository name",
            json!({"Name": name}),
        );
    }
    let caller = match authenticate(st, req, Some(name)) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut reply = repo_route(st, req, peer, name, what, &caller);
    reply.user = caller.name();
    reply
}

fn repo_route(
    st: &mut State,
    req: &Request,
    peer: SocketAddr,
    name: &str,
    what: Route<'_>,
    caller: &Caller,
) -> Reply {
    let behavior = st.behavior.repos.get(name).cloned();
    match behavior {
        Some(RepoBehavior::Forbidden) => {
            return Reply::error(
                403,
                "DENIED",
                "requested access to the resource is denied",
                Value::Null,
            );
        }
        Some(RepoBehavior::MissingRepoAsScope) => return insufficient_scope(st, name),
        _ => {}
    }
    if !caller.may_pull(name) {
        return insufficient_scope(st, name);
    }
    if !st.repos.contains_key(name) {
        return match st.behavior.missing_repo {
            MissingRepo::InsufficientScope => insufficient_scope(st, name),
            MissingRepo::NotFound => Reply::error(
                404,
                "NAME_UNKNOWN",
                "repository name not known to registry",
                json!({"name": name}),
            ),
        };
    }
    let mut limit_headers = Vec::new();
    if let Some(RepoBehavior::RateLimited {
        limit,
        remaining,
        retry_after,
    }) = behavior
    {
        let w = RATE_LIMIT_WINDOW_SECS;
        let source = peer.ip().to_string();
        if remaining == 0 {
            return Reply::error(429, "TOOMANYREQUESTS", RATE_LIMIT_MESSAGE, Value::Null)
                .header("ratelimit-limit", format!("{limit};w={w}"))
                .header("ratelimit-remaining", format!("0;w={w}"))
                .header("docker-ratelimit-source", source)
                .header("Retry-After", retry_after.to_string());
        }
        if let Route::Manifest(reference) = what {
            let repo = &st.repos[name];
            let digest = repo.tags.get(reference).map_or(reference, String::as_str);
            let counted = req.method == "GET"
                && repo.manifests.contains_key(digest)
                && !repo.children.contains(digest);
            let left = if counted { remaining - 1 } else { remaining };
            if counted {
                st.behavior.repos.insert(
                    name.to_string(),
                    RepoBehavior::RateLimited {
                        limit,
                        remaining: left,
                        retry_after,
                    },
                );
            }
            limit_headers = vec![
                ("ratelimit-limit".to_string(), format!("{limit};w={w}")),
                ("ratelimit-remaining".to_string(), format!("{left};w={w}")),
                ("docker-ratelimit-source".to_string(), source),
            ];
        }
    }
    let mut reply = match what {
        Route::Manifest(reference) => manifest(st, name, reference),
        Route::Blob(digest) => blob(st, name, digest),
        Route::Tags => tags(st, req, name),
    };
    reply.headers.extend(limit_headers);
    reply
}

fn manifest(st: &State, name: &str, reference: &str) -> Reply {
    let repo = &st.repos[name];
    let digest = if reference.contains(':') {
        Some(reference)
    } else {
        repo.tags.get(reference).map(String::as_str)
    };
    let Some((digest, m)) = digest.and_then(|d| repo.manifests.get(d).map(|m| (d, m))) else {
        let detail = if reference.contains(':') {
            json!({"Digest": reference})
        } else {
            json!({"Tag": reference})
        };
        return Reply::error(404, "MANIFEST_UNKNOWN", "manifest unknown", detail);
    };
    Reply {
        status: 200,
        headers: vec![
            ("Content-Type".into(), m.media_type.to_string()),
            ("Docker-Content-Digest".into(), digest.to_string()),
            ("Etag".into(), format!("\"{digest}\"")),
        ],
        body: m.bytes.clone(),
        user: None,
    }
}

fn blob(st: &State, name: &str, digest: &str) -> Reply {
    let valid = digest
        .strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    if !valid {
        return Reply::error(
            400,
            "DIGEST_INVALID",
            "provided digest did not match uploaded content",
            Value::Null,
        );
    }
    let bytes = st.repos[name]
        .blobs
        .contains(digest)
        .then(|| st.blobs.get(digest))
        .flatten();
    let Some(bytes) = bytes else {
        return Reply::error(
            404,
            "BLOB_UNKNOWN",
            "blob unknown to registry",
            json!(digest),
        );
    };
    Reply {
        status: 200,
        headers: vec![
            ("Content-Type".into(), "application/octet-stream".into()),
            ("Docker-Content-Digest".into(), digest.to_string()),
            ("Etag".into(), format!("\"{digest}\"")),
        ],
        body: bytes.clone(),
        user: None,
    }
}

fn tags(st: &State, req: &Request, name: &str) -> Reply {
    let all = &st.repos[name].tags;
    let requested: Option<usize> = match req.query("n").map(str::parse) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => {
            return Reply::error(
                400,
                "PAGINATION_NUMBER_INVALID",
                "invalid number of results requested",
                json!({"n": req.query("n")}),
            );
        }
    };
    let n = match (requested, st.behavior.max_tags_per_page) {
        (Some(n), Some(max)) => Some(n.min(max)),
        (n, max) => n.or(max),
    };
    let last = req.query("last").unwrap_or("");
    let after: Vec<&String> = all.keys().filter(|t| t.as_str() > last).collect();
    let page: Vec<&String> = after
        .iter()
        .take(n.unwrap_or(usize::MAX))
        .copied()
        .collect();
    let mut reply = Reply::json(200, &json!({"name": name, "tags": page}));
    if let (Some(n), Some(last)) = (n, page.last())
        && after.len() > page.len()
    {
        reply = reply.header(
            "Link",
            format!("</v2/{name}/tags/list?last={last}&n={n}>; rel=\"next\""),
        );
    }
    reply
}

fn unsupported() -> Reply {
    Reply::error(
        405,
        "UNSUPPORTED",
        "The operation is unsupported.",
        Value::Null,
    )
}

fn not_found_route() -> Reply {
    Reply::error(404, "NOT_FOUND", "not found", Value::Null)
}

/// distribution's path-component grammar, loosely: lowercase alphanumerics
/// separated by `.`, `_`, `__`, `-`, joined with `/`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split('/').all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
                && c.as_bytes()[0].is_ascii_alphanumeric()
                && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
        })
}

// ---------------------------------------------------------------- auth

/// `None`: no Authorization header; `Some(None)`: not readable Basic;
/// `Some(Some((user, password)))`.
fn basic_credentials(header: Option<&str>) -> Option<Option<(String, String)>> {
    let header = header?;
    let (scheme, value) = header.trim().split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Some(None);
    }
    let decoded = STANDARD
        .decode(value.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    Some(decoded.and_then(|s| {
        s.split_once(':')
            .map(|(u, p)| (u.to_string(), p.to_string()))
    }))
}

fn check_password(st: &State, user: &str, password: &str) -> bool {
    st.behavior
        .users
        .get(user)
        .is_some_and(|p| constant_time_eq(p.as_bytes(), password.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn service(st: &State) -> &str {
    if st.behavior.service.is_empty() {
        DEFAULT_SERVICE
    } else {
        &st.behavior.service
    }
}

fn realm(st: &State) -> &str {
    if st.behavior.realm.is_empty() {
        DEFAULT_REALM
    } else {
        &st.behavior.realm
    }
}

fn token_realm(st: &State) -> String {
    match st.addr {
        Some(a) => format!("http://{a}/token"),
        None => "/token".to_string(),
    }
}

fn basic_challenge(st: &State, message: &str) -> Reply {
    Reply::error(401, "UNAUTHORIZED", message, Value::Null)
        .header("WWW-Authenticate", format!("Basic realm=\"{}\"", realm(st)))
}

fn bearer_challenge(st: &State, name: Option<&str>, error: Option<&str>) -> Reply {
    let mut challenge = format!(
        "Bearer realm=\"{}\",service=\"{}\"",
        token_realm(st),
        service(st)
    );
    if let Some(name) = name {
        challenge.push_str(&format!(",scope=\"repository:{name}:pull\""));
    }
    if let Some(error) = error {
        challenge.push_str(&format!(",error=\"{error}\""));
    }
    let detail = match name {
        Some(n) => json!([{"Type": "repository", "Name": n, "Action": "pull"}]),
        None => Value::Null,
    };
    Reply::error(401, "UNAUTHORIZED", "authentication required", detail)
        .header("WWW-Authenticate", challenge)
}

fn insufficient_scope(st: &State, name: &str) -> Reply {
    bearer_challenge(st, Some(name), Some("insufficient_scope"))
}

fn authenticate(st: &mut State, req: &Request, name: Option<&str>) -> Result<Caller, Reply> {
    match st.behavior.auth {
        AuthMode::Anonymous => Ok(Caller::Anonymous),
        AuthMode::Basic => match basic_credentials(req.header("authorization")) {
            Some(Some((user, password))) if check_password(st, &user, &password) => {
                Ok(Caller::User(user))
            }
            Some(Some(_)) if st.behavior.reject_with_403 => Err(Reply::error(
                403,
                "DENIED",
                "Your authorization token has expired. Reauthenticate and try again.",
                Value::Null,
            )),
            _ => Err(basic_challenge(st, "authentication required")),
        },
        AuthMode::Bearer => {
            let header = req.header("authorization").unwrap_or_default().trim();
            let Some(token) = header
                .split_once(' ')
                .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim())
            else {
                return Err(bearer_challenge(st, name, None));
            };
            let now = Instant::now();
            match st.tokens.get(token) {
                Some(g) if g.expires > now => Ok(Caller::Token {
                    sub: g.sub.clone(),
                    repos: g.repos.clone(),
                }),
                _ => Err(bearer_challenge(st, name, Some("invalid_token"))),
            }
        }
    }
}

fn issue_token(
    st: &mut State,
    creds: Option<Option<(String, String)>>,
    scopes: &[String],
    oauth: bool,
) -> Reply {
    let sub = match creds {
        None => String::new(),
        Some(Some((user, password))) if check_password(st, &user, &password) => user,
        Some(Some(_)) => return basic_challenge(st, "incorrect username or password"),
        Some(None) => return basic_challenge(st, "malformed credentials"),
    };
    let mut repos = HashSet::new();
    for scope in scopes {
        // repository:NAME:ACTIONS (the name is between the first and last colon)
        let Some((kind, rest)) = scope.split_once(':') else {
            continue;
        };
        let Some((name, actions)) = rest.rsplit_once(':') else {
            continue;
        };
        let wants_pull = actions.split(',').any(|a| a == "pull" || a == "*");
        let allowed = !sub.is_empty() || st.behavior.public_repos.contains(name);
        if kind == "repository" && wants_pull && allowed {
            repos.insert(name.to_string());
        }
    }
    let now = Instant::now();
    st.tokens.retain(|_, g| g.expires > now);
    let bytes: [u8; 24] = rand::random();
    let token = format!("sandbox-{}", hex::encode(bytes));
    st.tokens.insert(
        token.clone(),
        Grant {
            sub,
            repos,
            expires: now + TOKEN_TTL,
        },
    );
    let issued = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut body = json!({
        "token": token,
        "access_token": token,
        "expires_in": TOKEN_TTL.as_secs(),
        "issued_at": issued,
    });
    if oauth {
        body["scope"] = json!(scopes.join(" "));
    }
    Reply::json(200, &body)
}

// ---------------------------------------------------------------- content

struct Built {
    manifest: Vec<u8>,
    media_type: &'static str,
    blobs: Vec<(String, Vec<u8>)>,
    size: u64,
}

/// A tiny image: a config blob naming the ref and platform (so every tag
/// and platform has its own digest), one gzip'd tar layer, a manifest.
fn build_single(
    repo: &str,
    tag: &str,
    os: &str,
    arch: &str,
    variant: Option<&str>,
    oci: bool,
) -> Built {
    let reference = format!("{repo}:{tag}");
    let platform = match variant {
        Some(v) => format!("{os}/{arch}/{v}"),
        None => format!("{os}/{arch}"),
    };
    let content = format!("pullfix sandbox image {reference} {platform}\n");
    let tar = tar_file("etc/pullfix-sandbox-image", content.as_bytes());
    let diff_id = sha256_digest(&tar);
    let layer = gzip_stored(&tar);
    let mut config = json!({
        "architecture": arch,
        "os": os,
        "created": CREATED,
        "config": {
            "Cmd": ["/bin/true"],
            "Labels": {"io.pullfix.sandbox.ref": reference},
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": CREATED, "created_by": "pullfix sandbox registry"}],
    });
    if let Some(v) = variant {
        config["variant"] = json!(v);
    }
    let config = canonical(&config);
    let (media_type, config_type, layer_type) = if oci {
        (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER)
    } else {
        (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER)
    };
    let manifest = canonical(&json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": config_type, "size": config.len(), "digest": sha256_digest(&config)},
        "layers": [{"mediaType": layer_type, "size": layer.len(), "digest": sha256_digest(&layer)}],
    }));
    Built {
        manifest,
        media_type,
        size: (config.len() + layer.len()) as u64,
        blobs: vec![
            (sha256_digest(&config), config),
            (sha256_digest(&layer), layer),
        ],
    }
}

/// Compact JSON with sorted keys (serde_json's default map is sorted, and
/// `json!` objects are rebuilt through a `BTreeMap` to be sure).
fn canonical(v: &Value) -> Vec<u8> {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let sorted: BTreeMap<&String, Value> =
                    m.iter().map(|(k, v)| (k, sort(v))).collect();
                Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_vec(&sort(v)).unwrap_or_default()
}

pub use pullfix::encoding::sha256_digest;

/// A one-file ustar archive (deterministic: fixed mtime, owner 0).
fn tar_file(name: &str, content: &[u8]) -> Vec<u8> {
    fn octal(field: &mut [u8], value: u64) {
        let width = field.len() - 1;
        let s = format!("{value:0width$o}");
        field[..width].copy_from_slice(&s.as_bytes()[s.len() - width..]);
        field[width] = 0;
    }
    let mut h = [0u8; 512];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name.as_bytes()[..n]);
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], content.len() as u64);
    octal(&mut h[136..148], MTIME);
    h[148..156].fill(b' ');
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(content);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.resize(out.len() + 1024, 0);
    out
}

/// gzip with stored (uncompressed) deflate blocks: valid, deterministic and
/// needing no compression crate.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let chunks: Vec<&[u8]> = if data.is_empty() {
        vec![&[]]
    } else {
        data.chunks(65_535).collect()
    };
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.iter().enumerate() {
        out.push(u8::from(i == last));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use pullfix::registry::client::{Platform, PullFailure, RateLimit, RegistryClient};
    use pullfix::registry::keyring::Credential;
    use pullfix::registry::reference::ImageRef;

    fn client(reg: &RunningRegistry) -> RegistryClient {
        RegistryClient::new(&reg.client_config()).unwrap()
    }

    fn image(reg: &RunningRegistry, s: &str) -> ImageRef {
        ImageRef::parse(&reg.image(s)).unwrap()
    }

    fn cred(user: &str, password: &str) -> Credential {
        Credential {
            username: user.into(),
            password: password.into(),
        }
    }

    fn platform(arch: &str) -> Platform {
        Platform {
            os: "linux".into(),
            arch: arch.into(),
        }
    }

    const AMD64: &[(&str, &str)] = &[("linux", "amd64")];

    #[tokio::test]
    async fn basic_auth_and_rotation() {
        let reg = EmbeddedRegistry::start(RegistryBehavior::basic(&[("alice", "pw1")])).unwrap();
        let added = reg.add_image("team/app", "v1", AMD64);
        let (c, img, amd64) = (client(&reg), image(&reg, "team/app:v1"), platform("amd64"));

        let ok = c
            .resolve(&img, Some(&cred("alice", "pw1")), &amd64)
            .await
            .unwrap();
        assert_eq!(ok.digest, added.digest);
        assert_eq!(ok.size, added.platforms[0].size);

        let none = c.resolve(&img, None, &amd64).await.unwrap_err();
        assert!(
            matches!(none, PullFailure::NoBasicCredentials { .. }),
            "{none:?}"
        );

        let wrong = c
            .resolve(&img, Some(&cred("alice", "nope")), &amd64)
            .await
            .unwrap_err();
        assert!(
            matches!(
                wrong,
                PullFailure::Status {
                    status: 401,
                    method: "HEAD",
                    ..
                }
            ),
            "{wrong:?}"
        );

        reg.set_password("alice", "nope");
        c.resolve(&img, Some(&cred("alice", "nope")), &amd64)
            .await
            .unwrap();
        let old = c
            .resolve(&img, Some(&cred("alice", "pw1")), &amd64)
            .await
            .unwrap_err();
        assert!(
            matches!(old, PullFailure::Status { status: 401, .. }),
            "{old:?}"
        );
        assert!(
            reg.requests()
                .iter()
                .any(|r| r.status == 200 && r.user.as_deref() == Some("alice"))
        );
    }

    #[tokio::test]
    async fn bearer_token_dance() {
        let reg = EmbeddedRegistry::start(
            RegistryBehavior::bearer(&[("bob", "s3cret")]).with_public("library/busybox"),
        )
        .unwrap();
        reg.add_image("team/app", "v1", AMD64);
        reg.add_image("library/busybox", "1.36", AMD64);
        let (c, img, amd64) = (client(&reg), image(&reg, "team/app:v1"), platform("amd64"));

        let anon = c.resolve(&img, None, &amd64).await.unwrap_err();
        assert!(matches!(anon, PullFailure::AccessDenied { .. }), "{anon:?}");

        c.resolve(&img, Some(&cred("bob", "s3cret")), &amd64)
            .await
            .unwrap();

        let bad = c
            .resolve(&img, Some(&cred("bob", "wrong")), &amd64)
            .await
            .unwrap_err();
        match bad {
            PullFailure::TokenFetch {
                url,
                status,
                anonymous,
            } => {
                assert_eq!(status, 401);
                assert!(!anonymous);
                assert!(
                    url.starts_with(&format!("http://{}/token?", reg.addr)),
                    "{url}"
                );
                assert!(url.contains("service=pullfix-sandbox-registry"), "{url}");
            }
            other => panic!("{other:?}"),
        }

        // A public repository: anonymous pull works.
        let busybox = image(&reg, "library/busybox:1.36");
        c.resolve(&busybox, None, &amd64).await.unwrap();

        // The raw answers.
        let http = reqwest::Client::new();
        let v2 = http
            .get(format!("http://{}/v2/", reg.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(v2.status(), 401);
        assert_eq!(
            v2.headers()["www-authenticate"],
            format!(
                "Bearer realm=\"http://{}/token\",service=\"{DEFAULT_SERVICE}\"",
                reg.addr
            )
        );
        let t = http
            .get(format!(
                "http://{}/token?scope=repository:team/app:pull",
                reg.addr
            ))
            .basic_auth("bob", Some("wrong"))
            .send()
            .await
            .unwrap();
        assert_eq!(t.status(), 401);
        assert!(
            t.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic realm=")
        );
        let body: Value = t.json().await.unwrap();
        assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");

        // OAuth2 password grant (containerd's first try).
        let form = http
            .post(format!("http://{}/token", reg.addr))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("grant_type=password&username=bob&password=s3cret&service=x&scope=repository%3Ateam%2Fapp%3Apull")
            .send()
            .await
            .unwrap();
        assert_eq!(form.status(), 200);
        let body: Value = form.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap().to_string();
        let m = http
            .get(format!("http://{}/v2/team/app/manifests/v1", reg.addr))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(m.status(), 200);

        // Revoked tokens are invalid.
        reg.revoke_tokens();
        let m = http
            .get(format!("http://{}/v2/team/app/manifests/v1", reg.addr))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(m.status(), 401);
        assert!(
            m.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("error=\"invalid_token\"")
        );
    }

    #[tokio::test]
    async fn missing_tags_and_repositories() {
        let reg = EmbeddedRegistry::start(RegistryBehavior::anonymous()).unwrap();
        reg.add_image("team/app", "v1", AMD64);
        let (c, amd64) = (client(&reg), platform("amd64"));
        let tag = c
            .resolve(&image(&reg, "team/app:v9"), None, &amd64)
            .await
            .unwrap_err();
        assert!(matches!(tag, PullFailure::NotFound { .. }), "{tag:?}");
        let repo = c
            .resolve(&image(&reg, "team/gone:v1"), None, &amd64)
            .await
            .unwrap_err();
        assert!(matches!(repo, PullFailure::NotFound { .. }), "{repo:?}");
        let body: Value = reqwest::get(format!("http://{}/v2/team/gone/manifests/v1", reg.addr))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["errors"][0]["code"], "NAME_UNKNOWN");

        // Docker Hub style: a missing repository is insufficient_scope, even
        // with good credentials.
        let hub =
            EmbeddedRegistry::start(RegistryBehavior::bearer(&[("bob", "pw")]).docker_hub_style())
                .unwrap();
        hub.add_image("team/app", "v1", AMD64);
        let c = client(&hub);
        let gone = c
            .resolve(
                &image(&hub, "team/gone:v1"),
                Some(&cred("bob", "pw")),
                &amd64,
            )
            .await
            .unwrap_err();
        assert!(matches!(gone, PullFailure::AccessDenied { .. }), "{gone:?}");
        let tag = c
            .resolve(
                &image(&hub, "team/app:v9"),
                Some(&cred("bob", "pw")),
                &amd64,
            )
            .await
            .unwrap_err();
        assert!(matches!(tag, PullFailure::NotFound { .. }), "{tag:?}");

        // Per repository: private to someone else.
        hub.set_repo_behavior("team/app", Some(RepoBehavior::MissingRepoAsScope));
        let private = c
            .resolve(
                &image(&hub, "team/app:v1"),
                Some(&cred("bob", "pw")),
                &amd64,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(private, PullFailure::AccessDenied { .. }),
            "{private:?}"
        );
    }

    #[tokio::test]
    async fn platform_selection() {
        let reg = EmbeddedRegistry::start(RegistryBehavior::anonymous()).unwrap();
        let multi = reg.add_index("team/multi", "1.0", AMD64);
        assert_eq!(multi.media_type, OCI_INDEX);
        let c = client(&reg);
        let img = image(&reg, "team/multi:1.0");
        let arm = c.resolve(&img, None, &platform("arm64")).await.unwrap_err();
        assert_eq!(
            arm,
            PullFailure::PlatformMismatch {
                os: "linux".into(),
                arch: "arm64".into(),
                variant: Some("v8".into()),
            }
        );
        let amd = c.resolve(&img, None, &platform("amd64")).await.unwrap();
        assert_eq!(amd.digest, multi.platforms[0].digest);
        assert_ne!(amd.digest, multi.digest);

        let both = reg.add_image(
            "team/both",
            "1",
            &[("linux", "amd64"), ("linux", "arm64/v8")],
        );
        assert_eq!(both.media_type, OCI_INDEX);
        let img = image(&reg, "team/both:1");
        let a = c.resolve(&img, None, &platform("amd64")).await.unwrap();
        let b = c.resolve(&img, None, &platform("arm64")).await.unwrap();
        assert_eq!(a.digest, both.platforms[0].digest);
        assert_eq!(b.digest, both.platforms[1].digest);
        assert_ne!(a.digest, b.digest);
    }

    #[tokio::test]
    async fn rate_limit() {
        let reg = EmbeddedRegistry::start(RegistryBehavior::anonymous().with_repo(
            "library/busybox",
            RepoBehavior::RateLimited {
                limit: 100,
                remaining: 0,
                retry_after: 3600,
            },
        ))
        .unwrap();
        reg.add_image("library/busybox", "1.36", AMD64);
        let c = client(&reg);
        let img = image(&reg, "library/busybox:1.36");
        let err = c.resolve(&img, None, &platform("amd64")).await.unwrap_err();
        assert_eq!(
            err,
            PullFailure::RateLimited {
                url: format!("http://{}/v2/library/busybox/manifests/1.36", reg.addr),
                message: RATE_LIMIT_MESSAGE.into(),
            }
        );
        let rl = c.rate_limit(&img, None).await.unwrap().unwrap();
        assert_eq!(
            rl,
            RateLimit {
                limit: Some("100;w=21600".into()),
                remaining: Some("0;w=21600".into()),
                source: Some("127.0.0.1".into()),
                retry_after: Some("3600".into()),
            }
        );

        // Counting: HEAD is free, each GET of the manifest uses one pull.
        reg.set_repo_behavior(
            "library/busybox",
            Some(RepoBehavior::RateLimited {
                limit: 100,
                remaining: 2,
                retry_after: 60,
            }),
        );
        let amd64 = platform("amd64");
        assert_eq!(
            c.rate_limit(&img, None)
                .await
                .unwrap()
                .unwrap()
                .remaining_count(),
            Some(2)
        );
        c.resolve(&img, None, &amd64).await.unwrap();
        assert_eq!(
            c.rate_limit(&img, None)
                .await
                .unwrap()
                .unwrap()
                .remaining_count(),
            Some(1)
        );
        c.resolve(&img, None, &amd64).await.unwrap();
        let err = c.resolve(&img, None, &amd64).await.unwrap_err();
        assert!(matches!(err, PullFailure::RateLimited { .. }), "{err:?}");

        // Other repositories are not limited and carry no headers.
        reg.add_image("team/app", "v1", AMD64);
        assert_eq!(
            c.rate_limit(&image(&reg, "team/app:v1"), None)
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn forbidden() {
        let reg = EmbeddedRegistry::start(
            RegistryBehavior::basic(&[("alice", "pw")])
                .with_repo("team/app", RepoBehavior::Forbidden),
        )
        .unwrap();
        reg.add_image("team/app", "v1", AMD64);
        let c = client(&reg);
        let img = image(&reg, "team/app:v1");
        let alice = cred("alice", "pw");
        let err = c
            .resolve(&img, Some(&alice), &platform("amd64"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, PullFailure::Status { status: 403, .. }),
            "{err:?}"
        );
        let body: Value = reqwest::Client::new()
            .get(format!("http://{}/v2/team/app/manifests/v1", reg.addr))
            .basic_auth("alice", Some("pw"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["errors"][0]["code"], "DENIED");
        reg.set_repo_behavior("team/app", None);
        c.resolve(&img, Some(&alice), &platform("amd64"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn tags_list_pagination() {
        let reg =
            EmbeddedRegistry::start(RegistryBehavior::bearer(&[("bob", "pw")]).with_tags_page(2))
                .unwrap();
        for tag in ["v3", "v1", "v5", "v2", "v4"] {
            reg.add_image("team/app", tag, AMD64);
        }
        let c = client(&reg);
        let img = image(&reg, "team/app:v1");
        let bob = cred("bob", "pw");
        let all = c.list_tags(&img, Some(&bob), 100).await.unwrap();
        assert_eq!(all, ["v1", "v2", "v3", "v4", "v5"]);
        assert_eq!(
            c.list_tags(&img, Some(&bob), 3).await.unwrap(),
            ["v1", "v2", "v3"]
        );
        let anon = c.list_tags(&img, None, 100).await.unwrap_err();
        assert!(matches!(anon, PullFailure::AccessDenied { .. }), "{anon:?}");

        // The raw pages.
        reg.set_auth(AuthMode::Anonymous);
        let page = reqwest::get(format!(
            "http://{}/v2/team/app/tags/list?n=2&last=v1",
            reg.addr
        ))
        .await
        .unwrap();
        assert_eq!(
            page.headers()["link"],
            "</v2/team/app/tags/list?last=v3&n=2>; rel=\"next\""
        );
        let body: Value = page.json().await.unwrap();
        assert_eq!(body, json!({"name": "team/app", "tags": ["v2", "v3"]}));
        let last = reqwest::get(format!(
            "http://{}/v2/team/app/tags/list?n=2&last=v3",
            reg.addr
        ))
        .await
        .unwrap();
        assert!(last.headers().get("link").is_none());
        let body: Value = last.json().await.unwrap();
        assert_eq!(body["tags"], json!(["v4", "v5"]));
    }

    #[tokio::test]
    async fn content_is_addressed_and_stable() {
        let one = EmbeddedRegistry::start(RegistryBehavior::anonymous()).unwrap();
        let two = EmbeddedRegistry::start(RegistryBehavior::anonymous()).unwrap();
        let a = one.add_image("team/checkout", "v2.1.0", AMD64);
        let b = two.add_image("team/checkout", "v2.1.0", AMD64);
        assert_eq!(a, b);
        let other = one.add_image("team/checkout", "v2.0.3", AMD64);
        assert_ne!(a.digest, other.digest);
        let idx1 = one.add_index("team/multi", "1.0", AMD64);
        let idx2 = two.add_index("team/multi", "1.0", AMD64);
        assert_eq!(idx1, idx2);

        // The kubelet sees the same digest from both registries.
        let amd64 = platform("amd64");
        let r1 = client(&one)
            .resolve(&image(&one, "team/checkout:v2.1.0"), None, &amd64)
            .await
            .unwrap();
        let r2 = client(&two)
            .resolve(&image(&two, "team/checkout:v2.1.0"), None, &amd64)
            .await
            .unwrap();
        assert_eq!(r1, r2);
        assert_eq!(r1.digest, a.digest);

        let http = reqwest::Client::new();
        let base = format!("http://{}/v2/team/checkout", one.addr);
        let m = http
            .get(format!("{base}/manifests/{}", a.digest))
            .send()
            .await
            .unwrap();
        assert_eq!(m.status(), 200);
        assert_eq!(m.headers()["content-type"], DOCKER_MANIFEST);
        assert_eq!(m.headers()["docker-content-digest"], a.digest.as_str());
        let bytes = m.bytes().await.unwrap();
        assert_eq!(sha256_digest(&bytes), a.digest);
        let manifest: Value = serde_json::from_slice(&bytes).unwrap();
        for d in [&manifest["config"], &manifest["layers"][0]] {
            let digest = d["digest"].as_str().unwrap();
            let head = http
                .head(format!("{base}/blobs/{digest}"))
                .send()
                .await
                .unwrap();
            assert_eq!(head.status(), 200);
            assert_eq!(
                head.headers()["content-length"].to_str().unwrap(),
                d["size"].to_string()
            );
            let blob = http
                .get(format!("{base}/blobs/{digest}"))
                .send()
                .await
                .unwrap();
            assert_eq!(blob.headers()["docker-content-digest"], digest);
            let body = blob.bytes().await.unwrap();
            assert_eq!(sha256_digest(&body), digest);
            assert_eq!(body.len() as u64, d["size"].as_u64().unwrap());
        }
        let missing = http
            .get(format!("{base}/blobs/sha256:{}", "0".repeat(64)))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);
        // A blob of another repository is not served here.
        let worker = one.add_image("team/worker", "1.4.2", AMD64);
        let wm: Value = serde_json::from_slice(
            &http
                .get(format!(
                    "http://{}/v2/team/worker/manifests/{}",
                    one.addr, worker.digest
                ))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap(),
        )
        .unwrap();
        let foreign = wm["config"]["digest"].as_str().unwrap();
        let r = http
            .get(format!("{base}/blobs/{foreign}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }

    #[test]
    fn layer_is_a_valid_gzip_tar() {
        let tar = tar_file("etc/x", b"hello\n");
        assert_eq!(tar.len(), 512 * 4);
        assert_eq!(&tar[257..262], b"ustar");
        let gz = gzip_stored(&tar);
        assert_eq!(&gz[..3], &[0x1f, 0x8b, 8]);
        let n = gz.len();
        assert_eq!(
            u32::from_le_bytes(gz[n - 4..].try_into().unwrap()),
            tar.len() as u32
        );
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(&gz[15..15 + tar.len()], &tar[..]);
    }

    #[tokio::test]
    async fn shutdown_closes_the_port() {
        let reg = EmbeddedRegistry::start(RegistryBehavior::anonymous()).unwrap();
        reg.add_image("team/app", "v1", AMD64);
        let c = client(&reg);
        let img = image(&reg, "team/app:v1");
        c.resolve(&img, None, &platform("amd64")).await.unwrap();
        let handle = reg.registry.clone();
        reg.shutdown().await;
        let err = c.resolve(&img, None, &platform("amd64")).await.unwrap_err();
        assert!(
            matches!(
                err,
                PullFailure::Refused {
                    plain_http: true,
                    ..
                }
            ),
            "{err:?}"
        );
        // The content outlives the server and can be served again.
        let again = handle.serve(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let c = client(&again);
        c.resolve(&image(&again, "team/app:v1"), None, &platform("amd64"))
            .await
            .unwrap();
        let addr = again.addr;
        drop(again);
        let mut refused = false;
        for _ in 0..50 {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(refused, "the listener outlived the drop");
    }

    #[test]
    fn names_and_queries() {
        assert!(valid_name("team/app"));
        assert!(valid_name("a.b_c-d/e"));
        assert!(!valid_name("Team/app"));
        assert!(!valid_name("team//app"));
        assert!(!valid_name("-x"));
        assert_eq!(
            parse_form("scope=repository%3Ateam%2Fapp%3Apull&service=a+b"),
            [
                ("scope".to_string(), "repository:team/app:pull".to_string()),
                ("service".to_string(), "a b".to_string())
            ]
        );
        assert_eq!(percent_decode("%zz%4", false), "%zz%4");
    }
}
