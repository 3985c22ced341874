//! An embedded registry for the sandbox: the distribution API's read side
//! (`/v2/`, manifests, blobs, tags list) over plain HTTP on loopback, with
//! the answers real registries give (see `scripts/lab.d/tokenissuer.py` and
//! `scripts/lab.d/hubstub.py`): Basic auth, the Bearer token dance with a
//! token endpoint served by the same server, Docker Hub's
//! `insufficient_scope` for missing repositories, 403 DENIED and the pull
//! rate limit.
//!
//! HTTP/1.1 is hyper's, through the accept loop the API server and the ECR
//! API use ([`crate::server::serve_http1`], [`ServerTask`]); this module
//! answers GET, HEAD and `POST /token`. Content is generated, deterministic
//! and content-addressed: the same image added to two registries has the
//! same digest. Credentials, behaviours and content can change while it
//! runs.
//!
//! - `wire`: hyper requests in, replies out, and the request log;
//! - `routes`: the distribution API's routes and the per-repository
//!   behaviours (DENIED, rate limit, missing repositories);
//! - `auth`: Basic, Bearer and the token endpoint;
//! - `content`: the generated images (config, layer, manifests).

mod auth;
mod content;
mod routes;
mod wire;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::server::{ServerTask, serve_http1};
use pullfix::registry::client::RegistryConfig;

pub use content::sha256_digest;
use content::{build_single, canonical};

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
        let server = ServerTask::spawn(&runtime, |stopped| {
            serve_http1(listener, stopped, move |req, peer| {
                wire::serve(state.clone(), req, peer)
            })
        });
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
