//! Starts and stops the sandbox's whole cluster inside this process: the
//! embedded API server, its controllers, the simulated kubelet with the
//! lab's nine nodes, the registries the lab has (Basic, Bearer, anonymous,
//! a Docker-Hub-like one with its rate limit, an ECR-paired one and its ECR
//! API), and the unreachable hosts (no DNS record, nothing listening, a
//! server that never answers).
//!
//! Everything listens on 127.0.0.1 on ports the OS picks. [`Cluster::exports`]
//! gives the environment a second terminal (or a test) needs to use it: the
//! kubeconfig, the registry knobs the tool reads, the AWS endpoint, and the
//! same `PULLFIX_LAB_*` variables `scripts/lab env` prints, so the lab's
//! test suite runs unchanged against the sandbox.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use kube::Client;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::apiserver::{self, ApiServer, Deny, User};
use crate::ecr::{self, EcrEndpoint, EcrOptions};
use crate::kubelet::{self, KubeletOptions, NodeSpec};
use crate::registry::{
    AuthMode, EmbeddedRegistry, MissingRepo, RegistryBehavior, RepoBehavior, RunningRegistry,
};
use crate::scenarios::{ECR_HOST, LabEnv, NXDOMAIN_HOST, REFUSED_HOST, TIMEOUT_HOST};
use pullfix::registry::client::{Alias, RegistryConfig};

/// The nodes the lab simulates (`scripts/lab`): NAME:ARCH:KUBELET:RUNTIME.
pub const LAB_NODES: &[&str] = &[
    "lab-k133-cd21:amd64:1.33:containerd2.1",
    "lab-k128-cd21:amd64:1.28:containerd2.1",
    "lab-k127-cd17:amd64:1.27:containerd1.7",
    "lab-k128-cd17:amd64:1.28:containerd1.7",
    "lab-k127-docker:amd64:1.27:docker",
    "lab-k128-crio:amd64:1.28:crio",
    "lab-arm64:arm64:1.33:containerd2.1",
    "lab-warm:amd64:1.33:containerd2.1",
    "lab-fresh:amd64:1.33:containerd2.1",
];
/// The taints that keep the masking pair for the `IfNotPresent` scenario.
pub const LAB_TAINTS: &[&str] = &[
    "lab-warm=lab.pullfix.dev/pool=masking:NoSchedule",
    "lab-fresh=lab.pullfix.dev/pool=masking:NoSchedule",
];
/// The user ECR tokens are issued for.
pub const ECR_USER: &str = "AWS";
const ECR_ACCOUNT: &str = "123456789012";
const ECR_REGION: &str = "us-east-1";
/// Most connections the never-answering server holds open.
const BLACKHOLE_CAP: usize = 256;

/// How to start the cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Where kubeconfigs, the audit log and the environment file go.
    pub dir: PathBuf,
    /// Kubelet backoff and sync periods are multiplied by this.
    pub time_scale: f64,
}

/// The running sandbox cluster. Dropping it stops everything.
pub struct Cluster {
    pub dir: PathBuf,
    /// Registry addresses and credentials, in the shape lab scenarios take.
    pub env: LabEnv,
    /// The admin's kubeconfig.
    pub kubeconfig: PathBuf,
    pub audit_log: PathBuf,
    apiserver: Option<ApiServer>,
    registries: Vec<RunningRegistry>,
    ecr: Option<EcrEndpoint>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    exports: Vec<(String, String)>,
    /// Keeps `registry.unreachable.example`'s port refusing connections.
    _refused: tokio::net::TcpSocket,
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn random_secret(len: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// [`pullfix::write_private`], with the path in the error.
pub fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    pullfix::write_private(path, contents).with_context(|| format!("write {}", path.display()))
}

/// The on-call identity can read everything but secrets and write nothing;
/// the secrets reader can read everything and write nothing (as the lab's
/// RBAC roles).
fn users() -> Vec<User> {
    let writes = || {
        ["create", "update", "patch", "delete", "deletecollection"]
            .map(String::from)
            .to_vec()
    };
    let deny = |verbs: Vec<String>, group: &str, resource: &str| Deny {
        verbs,
        group: group.into(),
        resource: resource.into(),
    };
    vec![
        User {
            name: "sandbox-admin".into(),
            token: random_secret(32),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
            deny: vec![],
        },
        User {
            name: "oncall".into(),
            token: random_secret(32),
            groups: vec!["lab:oncall".into(), "system:authenticated".into()],
            deny: vec![
                deny(writes(), "*", "*"),
                deny(
                    ["get", "list", "watch"].map(String::from).to_vec(),
                    "",
                    "secrets",
                ),
            ],
        },
        User {
            name: "secrets-reader".into(),
            token: random_secret(32),
            groups: vec!["lab:secrets-reader".into(), "system:authenticated".into()],
            deny: vec![deny(writes(), "*", "*")],
        },
    ]
}

/// A server that accepts connections and never answers (a registry behind
/// a firewall that drops packets), holding at most [`BLACKHOLE_CAP`].
async fn blackhole(listener: TcpListener, mut stop: watch::Receiver<bool>) {
    let held = Arc::new(AtomicUsize::new(0));
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((sock, _)) = accepted else { continue };
                if held.load(Ordering::Relaxed) >= BLACKHOLE_CAP {
                    continue;
                }
                held.fetch_add(1, Ordering::Relaxed);
                let held = held.clone();
                let mut stop = stop.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(600), stop.changed()).await;
                    drop(sock);
                    held.fetch_sub(1, Ordering::Relaxed);
                });
            }
            _ = stop.changed() => return,
        }
    }
}

/// A loopback port where nothing listens: a socket bound to it and never
/// put in listening state, so connections are refused and, as long as the
/// socket is kept, no other server (another sandbox's registry, say) can
/// take the port.
fn closed_port() -> anyhow::Result<(SocketAddr, tokio::net::TcpSocket)> {
    let socket = tokio::net::TcpSocket::new_v4().context("reserve a closed port")?;
    socket.bind(loopback()).context("reserve a closed port")?;
    let addr = socket.local_addr().context("reserve a closed port")?;
    Ok((addr, socket))
}

impl Cluster {
    /// Starts every part and waits until the nodes are registered.
    pub async fn start(options: ClusterOptions) -> anyhow::Result<Cluster> {
        let dir = options.dir.clone();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("create the sandbox directory {}", dir.display()))?;
        let (shutdown, stop) = watch::channel(false);

        // Registries, with the lab's images and behaviours.
        let passwords = Passwords {
            basic: random_secret(20),
            token: random_secret(20),
            ecr: format!("{ECR_ACCOUNT}-{}", random_secret(24)),
        };
        let registries = Registries::start(&passwords)?;
        let ecr = ecr::start(
            loopback(),
            EcrOptions {
                account: ECR_ACCOUNT.into(),
                region: ECR_REGION.into(),
                registry: (*registries.ecr).clone(),
                deny_token: false,
            },
        )
        .await
        .context("start the embedded ECR API")?;

        // The unreachable hosts: nothing listening, and a server that never
        // answers.
        let (refused, refused_socket) = closed_port()?;
        let hole = TcpListener::bind(loopback())
            .await
            .context("start the never-answering server")?;
        let hole_addr = hole.local_addr()?;
        let mut tasks = vec![tokio::spawn(blackhole(hole, stop.clone()))];
        let registry_config = registries.client_config(refused, hole_addr);

        // The API server and its identities.
        let audit_log = fresh_audit_log(&dir)?;
        let apiserver = apiserver::start(
            loopback(),
            apiserver::Options {
                users: users(),
                audit_log: Some(audit_log.clone()),
            },
        )
        .await
        .context("start the embedded API server")?;
        let kubeconfigs = Kubeconfigs::write(&dir, &apiserver)?;
        let client = lab_client(&kubeconfigs.admin).await?;

        // Controllers and the kubelet.
        tasks.push(spawn_controllers(
            client.clone(),
            stop.clone(),
            options.time_scale,
        ));
        let kubelet_options = KubeletOptions {
            nodes: LAB_NODES
                .iter()
                .map(|s| NodeSpec::parse(s).map_err(anyhow::Error::msg))
                .collect::<anyhow::Result<Vec<_>>>()?,
            time_scale: options.time_scale,
            taints: LAB_TAINTS.iter().map(|s| s.to_string()).collect(),
            registry: registry_config.clone(),
        };
        tasks.push(spawn_kubelet(client.clone(), stop.clone(), kubelet_options));

        let env = registries.env(&passwords);
        let registry_hosts = dir.join("registry-hosts");
        write_registry_hosts(&registry_hosts, &registry_config)?;
        let exports = exports(&Exported {
            registry_hosts: &registry_hosts,
            dir: &dir,
            kubeconfigs: &kubeconfigs,
            audit_log: &audit_log,
            registry_config: &registry_config,
            ecr_url: ecr.url(),
            env: &env,
            registries: &registries,
            passwords: &passwords,
        });
        let cluster = Cluster {
            dir,
            env,
            kubeconfig: kubeconfigs.admin,
            audit_log,
            apiserver: Some(apiserver),
            registries: registries.into_vec(),
            ecr: Some(ecr),
            shutdown,
            tasks,
            exports,
            _refused: refused_socket,
        };
        cluster.wait_for_nodes(&client).await?;
        Ok(cluster)
    }

    async fn wait_for_nodes(&self, client: &Client) -> anyhow::Result<()> {
        let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client.clone());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let n = nodes
                .list_metadata(&Default::default())
                .await
                .map(|l| l.items.len())
                .unwrap_or(0);
            if n >= LAB_NODES.len() {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!(
                    "the sandbox's nodes did not register within 20 s ({n}/{} so far)\nhelp: run with -v to see the kubelet's log",
                    LAB_NODES.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A client for the admin (user agent of the lab's tools, so audit
    /// filters on `kubectl-pullfix/` skip the sandbox's own requests).
    pub async fn client(&self) -> anyhow::Result<Client> {
        lab_client(&self.kubeconfig).await
    }

    /// The environment for a second terminal or a child process.
    pub fn exports(&self) -> &[(String, String)] {
        &self.exports
    }

    /// `export K='V'` lines (single-quoted for sh).
    ///
    /// The last line puts this executable's directory first on `PATH`, so
    /// `kubectl pullfix` finds this very build as a plugin.
    pub fn export_lines(&self) -> String {
        let quote = |v: &str| format!("'{}'", v.replace('\'', r"'\''"));
        let mut out: String = self
            .exports
            .iter()
            .map(|(k, v)| format!("export {k}={}\n", quote(v)))
            .collect();
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(|d| d.display().to_string()))
        {
            out.push_str(&format!("export PATH={}:\"$PATH\"\n", quote(&dir)));
        }
        out
    }

    /// The API server's URL.
    pub fn url(&self) -> String {
        self.apiserver.as_ref().map(|a| a.url()).unwrap_or_default()
    }

    /// Stops the kubelet, the controllers and every server.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
        if let Some(a) = self.apiserver.take() {
            a.shutdown().await;
        }
        if let Some(e) = self.ecr.take() {
            e.shutdown().await;
        }
        for r in self.registries.drain(..) {
            r.shutdown().await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The registries' passwords (random per cluster, never printed).
struct Passwords {
    basic: String,
    token: String,
    ecr: String,
}

/// The lab's registries, serving.
struct Registries {
    /// Basic auth (`pullfix`).
    basic: RunningRegistry,
    /// The Bearer token dance (`tokenuser`).
    token: RunningRegistry,
    anon: RunningRegistry,
    /// Docker Hub: its rate limit, `insufficient_scope`, a DENIED repository.
    hub: RunningRegistry,
    /// The ECR-paired registry.
    ecr: RunningRegistry,
}

impl Registries {
    fn start(passwords: &Passwords) -> anyhow::Result<Registries> {
        let basic =
            EmbeddedRegistry::start(RegistryBehavior::basic(&[("pullfix", &passwords.basic)]))?;
        let token = EmbeddedRegistry::start(
            RegistryBehavior::bearer(&[("tokenuser", &passwords.token)])
                .with_service("pullfix-lab-registry"),
        )?;
        let anon = EmbeddedRegistry::start(RegistryBehavior::anonymous())?;
        let hub = EmbeddedRegistry::start(
            RegistryBehavior {
                auth: AuthMode::Bearer,
                missing_repo: MissingRepo::InsufficientScope,
                ..RegistryBehavior::default()
            }
            .with_service("registry.docker.io")
            .with_public("library/nginx")
            .with_repo("forbidden/app", RepoBehavior::Forbidden)
            .with_repo(
                "library/nginx",
                RepoBehavior::RateLimited {
                    limit: 100,
                    remaining: 0,
                    retry_after: 3600,
                },
            ),
        )?;
        // Like ECR: a token it no longer accepts gets 403, not a challenge.
        let ecr = EmbeddedRegistry::start(RegistryBehavior {
            reject_with_403: true,
            ..RegistryBehavior::basic(&[(ECR_USER, &passwords.ecr)])
        })?;
        for r in [&basic, &token, &anon, &ecr] {
            r.add_lab_images();
        }
        hub.add_image("library/nginx", "1.25", &[("linux", "amd64")]);
        Ok(Registries {
            basic,
            token,
            anon,
            hub,
            ecr,
        })
    }

    /// How the kubelet (and the tool) reach them: Docker Hub's and ECR's
    /// names map to the stubs, the unreachable hosts to `refused` (nothing
    /// listens), `hole` (never answers) and no DNS record; all plain HTTP.
    fn client_config(&self, refused: SocketAddr, hole: SocketAddr) -> RegistryConfig {
        let mut aliases: Vec<(String, Alias)> = [
            "docker.io",
            "registry-1.docker.io",
            "index.docker.io",
            "auth.docker.io",
        ]
        .iter()
        .map(|h| (h.to_string(), Alias::Addr(self.hub.addr)))
        .collect();
        aliases.push((ECR_HOST.into(), Alias::Addr(self.ecr.addr)));
        aliases.push((REFUSED_HOST.into(), Alias::Addr(refused)));
        aliases.push((TIMEOUT_HOST.into(), Alias::Addr(hole)));
        aliases.push((NXDOMAIN_HOST.into(), Alias::NoSuchHost));
        let mut plain_http: Vec<String> =
            [&self.basic, &self.token, &self.anon, &self.hub, &self.ecr]
                .iter()
                .map(|r| r.host())
                .collect();
        plain_http.extend(
            [
                "docker.io",
                "registry-1.docker.io",
                "index.docker.io",
                ECR_HOST,
                REFUSED_HOST,
                TIMEOUT_HOST,
                NXDOMAIN_HOST,
            ]
            .map(String::from),
        );
        RegistryConfig {
            hosts: None,
            ca_pem: Vec::new(),
            aliases,
            plain_http,
            timeout: Some(Duration::from_secs(3)),
        }
    }

    /// The registries in the shape lab scenarios take.
    fn env(&self, passwords: &Passwords) -> LabEnv {
        LabEnv {
            registry: self.basic.host(),
            user: "pullfix".into(),
            password: passwords.basic.clone(),
            token_registry: self.token.host(),
            token_user: "tokenuser".into(),
            token_password: passwords.token.clone(),
            anon_registry: self.anon.host(),
            // No TLS in the sandbox: the untrusted-CA scenario is lab-only.
            untrusted_registry: self.anon.host(),
            ecr_password: passwords.ecr.clone(),
        }
    }

    fn into_vec(self) -> Vec<RunningRegistry> {
        vec![self.basic, self.token, self.anon, self.hub, self.ecr]
    }
}

/// A new cluster, a new audit log: a reused `--dir` would keep the old one
/// otherwise, and the goal checks count writes in it.
fn fresh_audit_log(dir: &Path) -> anyhow::Result<PathBuf> {
    let audit_log = dir.join("audit.log");
    match std::fs::remove_file(&audit_log) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e)
                .with_context(|| format!("remove the previous sandbox's {}", audit_log.display()));
        }
    }
    Ok(audit_log)
}

/// The kubeconfigs of the sandbox's identities, written to the directory.
struct Kubeconfigs {
    admin: PathBuf,
    oncall: PathBuf,
    secrets_reader: PathBuf,
}

impl Kubeconfigs {
    fn write(dir: &Path, apiserver: &ApiServer) -> anyhow::Result<Kubeconfigs> {
        let k = Kubeconfigs {
            admin: dir.join("kubeconfig"),
            oncall: dir.join("kubeconfig-oncall"),
            secrets_reader: dir.join("kubeconfig-secrets-reader"),
        };
        write_private(&k.admin, &apiserver.kubeconfig("sandbox-admin", None))?;
        write_private(&k.oncall, &apiserver.kubeconfig("oncall", None))?;
        write_private(
            &k.secrets_reader,
            &apiserver.kubeconfig("secrets-reader", None),
        )?;
        Ok(k)
    }
}

fn spawn_controllers(
    client: Client,
    stop: watch::Receiver<bool>,
    time_scale: f64,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let opts = crate::controllers::Options { time_scale };
        if let Err(e) = crate::controllers::run(client, opts, stop).await {
            tracing::error!("sandbox controllers stopped: {e:#}");
        }
    })
}

fn spawn_kubelet(
    client: Client,
    mut stop: watch::Receiver<bool>,
    options: KubeletOptions,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.changed().await;
        };
        if let Err(e) = kubelet::run(client, options, shutdown).await {
            tracing::error!("sandbox kubelet stopped: {e:#}");
        }
    })
}

/// What [`exports`] describes.
struct Exported<'a> {
    dir: &'a Path,
    registry_hosts: &'a Path,
    kubeconfigs: &'a Kubeconfigs,
    audit_log: &'a Path,
    registry_config: &'a RegistryConfig,
    ecr_url: String,
    env: &'a LabEnv,
    registries: &'a Registries,
    passwords: &'a Passwords,
}

/// The environment a second terminal (or a test) needs: the kubeconfig,
/// the registry routing the tool takes (`PULLFIX_REGISTRY_HOSTS`, as
/// `--registry-hosts`), the AWS endpoint and the
/// `PULLFIX_LAB_*` variables `scripts/lab env` prints.
fn exports(x: &Exported<'_>) -> Vec<(String, String)> {
    let aliases_spec = alias_spec(&x.registry_config.aliases);
    let plain = x.registry_config.plain_http.join(",");
    let path = |p: &Path| p.display().to_string();
    [
        ("KUBECONFIG", path(&x.kubeconfigs.admin)),
        ("PULLFIX_REGISTRY_HOSTS", path(x.registry_hosts)),
        ("PULLFIX_LAB_REGISTRY_HOSTS", path(x.registry_hosts)),
        ("AWS_ENDPOINT_URL", x.ecr_url.clone()),
        ("AWS_ACCESS_KEY_ID", "AKIDPULLFIXSANDBOX".into()),
        ("AWS_SECRET_ACCESS_KEY", "sandbox-not-a-secret".into()),
        ("AWS_REGION", ECR_REGION.into()),
        ("AWS_DEFAULT_REGION", ECR_REGION.into()),
        ("PULLFIX_LAB_BACKEND", "sandbox".into()),
        ("PULLFIX_LAB_DIR", path(x.dir)),
        ("PULLFIX_LAB_AUDIT_LOG", path(x.audit_log)),
        ("PULLFIX_LAB_KUBECONFIG_ONCALL", path(&x.kubeconfigs.oncall)),
        (
            "PULLFIX_LAB_KUBECONFIG_SECRETS_READER",
            path(&x.kubeconfigs.secrets_reader),
        ),
        ("PULLFIX_LAB_REGISTRY", x.env.registry.clone()),
        ("PULLFIX_LAB_REGISTRY_USER", x.env.user.clone()),
        ("PULLFIX_LAB_REGISTRY_PASSWORD", x.passwords.basic.clone()),
        ("PULLFIX_LAB_TOKEN_REGISTRY", x.env.token_registry.clone()),
        ("PULLFIX_LAB_TOKEN_USER", x.env.token_user.clone()),
        ("PULLFIX_LAB_TOKEN_PASSWORD", x.passwords.token.clone()),
        ("PULLFIX_LAB_ANON_REGISTRY", x.env.anon_registry.clone()),
        (
            "PULLFIX_LAB_UNTRUSTED_REGISTRY",
            x.env.untrusted_registry.clone(),
        ),
        ("PULLFIX_LAB_HUB_STUB", x.registries.hub.host()),
        ("PULLFIX_LAB_ECR_REGISTRY", x.registries.ecr.host()),
        ("PULLFIX_LAB_ECR_PASSWORD", x.passwords.ecr.clone()),
        ("PULLFIX_LAB_HOST_ALIASES", aliases_spec),
        ("PULLFIX_LAB_PLAIN_HTTP", plain),
        ("PULLFIX_LAB_CA", String::new()),
        ("PULLFIX_LAB_NODES", LAB_NODES.join(" ")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The sandbox's registry routing as the nodes' containerd would have it
/// configured (a `certs.d` directory), for `kubectl pullfix
/// --registry-hosts`: every aliased name is served from its address, plain
/// HTTP where the sandbox speaks it. A name without DNS gets no entry, so a
/// probe looks it up for real and finds nothing.
fn write_registry_hosts(dir: &Path, config: &RegistryConfig) -> anyhow::Result<()> {
    let mut entries: Vec<(String, String)> = Vec::new();
    for (host, alias) in &config.aliases {
        if let Alias::Addr(addr) = alias {
            let scheme = if config.plain_http.iter().any(|h| h == host) {
                "http"
            } else {
                "https"
            };
            entries.push((host.clone(), format!("{scheme}://{addr}")));
        }
    }
    for host in &config.plain_http {
        if !config.aliases.iter().any(|(h, _)| h == host) {
            entries.push((host.clone(), format!("http://{host}")));
        }
    }
    for (host, server) in entries {
        let sub = dir.join(&host);
        std::fs::create_dir_all(&sub).with_context(|| format!("create {}", sub.display()))?;
        let file = sub.join("hosts.toml");
        std::fs::write(&file, format!("server = \"{server}\"\n"))
            .with_context(|| format!("write {}", file.display()))?;
    }
    Ok(())
}

fn alias_spec(aliases: &[(String, Alias)]) -> String {
    aliases
        .iter()
        .map(|(h, a)| match a {
            Alias::Addr(addr) => format!("{h}={addr}"),
            Alias::NoSuchHost => format!("{h}=nxdomain"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A client for the sandbox's own parts from one of its kubeconfigs, with
/// the lab tools' user agent (audit filters on `kubectl-pullfix/` skip it).
async fn lab_client(kubeconfig: &Path) -> anyhow::Result<Client> {
    pullfix::kubeconfig::KubeFlags {
        kubeconfig: Some(kubeconfig.to_path_buf()),
        ..Default::default()
    }
    .lab_client()
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_spec_round_trips_through_the_parser() {
        let aliases = vec![
            (
                "docker.io".to_string(),
                Alias::Addr("127.0.0.1:5000".parse().unwrap()),
            ),
            ("registry.nxdomain.example".to_string(), Alias::NoSuchHost),
        ];
        let spec = alias_spec(&aliases);
        assert_eq!(
            spec,
            "docker.io=127.0.0.1:5000,registry.nxdomain.example=nxdomain"
        );
        let parsed = pullfix::registry::client::parse_aliases(&spec).unwrap();
        assert_eq!(parsed.len(), 2);
    }

    #[test]
    fn lab_nodes_parse_and_taints_name_lab_nodes() {
        for n in LAB_NODES {
            NodeSpec::parse(n).unwrap();
        }
        for t in LAB_TAINTS {
            let (node, _) = kubelet::parse_taint(t).unwrap();
            assert!(LAB_NODES.iter().any(|n| n.starts_with(&format!("{node}:"))));
        }
    }

    #[test]
    fn on_call_may_not_read_secrets_or_write() {
        let users = users();
        let oncall = users.iter().find(|u| u.name == "oncall").unwrap();
        assert!(
            oncall
                .deny
                .iter()
                .any(|d| d.resource == "secrets" && d.verbs.iter().any(|v| v == "get"))
        );
        assert!(
            oncall
                .deny
                .iter()
                .any(|d| d.resource == "*" && d.verbs.iter().any(|v| v == "patch"))
        );
        let tokens: std::collections::BTreeSet<_> = users.iter().map(|u| &u.token).collect();
        assert_eq!(tokens.len(), users.len(), "tokens are distinct");
    }
}
