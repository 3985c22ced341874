//! The simulated kubelet: nodes that register, heartbeat and really pull.
//!
//! Like kwok it works only through the Kubernetes API, so it runs against the
//! lab's real control plane (and later the sandbox). Unlike kwok it does not
//! pretend pulls succeed: for each container it resolves the pod's pull
//! credentials the way the kubelet does, talks to the registry (auth dance,
//! manifest, platform), honours `imagePullPolicy` against its node's image
//! cache, and reports the result with the reasons, messages and events of the
//! node's kubelet/runtime [`Profile`], backing off 10 s doubling to 300 s
//! (scaled by `time_scale`).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{SecondsFormat, Utc};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Container, Event, Node, Pod, Secret};
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::watcher;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::profile::Profile;
use pullfix::registry::client::{Platform, PullFailure, RegistryClient, RegistryConfig};
use pullfix::registry::keyring::{Credential, Keyring, kubelet_refusal, parse_pull_secret};
use pullfix::registry::reference::ImageRef;

/// Annotation on a Node listing images (comma-separated) the node already
/// holds, for `IfNotPresent` masking scenarios.
pub const PRELOAD_ANNOTATION: &str = "lab.pullfix.dev/preload";
/// Label carrying the node's profile, so scenarios can pin pods to one.
pub const PROFILE_LABEL: &str = "lab.pullfix.dev/profile";

const BACKOFF_START: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
const SYNC_PERIOD: Duration = Duration::from_secs(10);
const HEARTBEAT: Duration = Duration::from_secs(10);

/// One simulated node.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub name: String,
    pub arch: String,
    pub profile: Profile,
}

impl NodeSpec {
    /// Parses `NAME:ARCH:KUBELET:RUNTIME`, e.g. `node-a:amd64:1.33:containerd2.1`.
    pub fn parse(s: &str) -> Result<NodeSpec, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let [name, arch, kubelet, runtime] = parts[..] else {
            return Err(format!(
                "node `{s}` is not NAME:ARCH:KUBELET:RUNTIME (e.g. node-a:amd64:1.33:containerd2.1)"
            ));
        };
        if !matches!(arch, "amd64" | "arm64") {
            return Err(format!("node `{s}`: arch must be amd64 or arm64"));
        }
        Ok(NodeSpec {
            name: name.to_string(),
            arch: arch.to_string(),
            profile: Profile {
                kubelet: kubelet.parse()?,
                runtime: runtime.parse()?,
            },
        })
    }

    fn profile_label(&self) -> String {
        let k = self.profile.kubelet.node_info();
        let r = self.profile.runtime.node_info().replace("://", "-");
        format!("{}_{}", &k[1..5], r).replace(['.', '/'], "-")
    }
}

/// Settings for [`run`].
#[derive(Debug, Clone)]
pub struct KubeletOptions {
    pub nodes: Vec<NodeSpec>,
    /// Multiplies backoff and sync periods (0.1 makes 10 s into 1 s).
    pub time_scale: f64,
    /// Node taints: `NODE=KEY=VALUE:EFFECT`.
    pub taints: Vec<String>,
    pub registry: RegistryConfig,
}

/// Parses `NODE=KEY=VALUE:EFFECT` into (node, taint JSON).
pub fn parse_taint(s: &str) -> Result<(String, Value), String> {
    let err = || format!("taint `{s}` is not NODE=KEY=VALUE:EFFECT");
    let (node, rest) = s.split_once('=').ok_or_else(err)?;
    let (key, rest) = rest.split_once('=').ok_or_else(err)?;
    let (value, effect) = rest.split_once(':').ok_or_else(err)?;
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        return Err(err());
    }
    Ok((
        node.to_string(),
        json!({"key": key, "value": value, "effect": effect}),
    ))
}

#[derive(Debug, Clone)]
struct CachedImage {
    /// Normalized references naming it (`docker.io/library/nginx:1.25`, `...@sha256:...`).
    names: Vec<String>,
    size: u64,
}

struct Shared {
    client: Client,
    registry: RegistryClient,
    nodes: HashMap<String, NodeSpec>,
    images: Mutex<HashMap<String, Vec<CachedImage>>>,
    events: Mutex<HashMap<EventKey, (String, i32)>>,
    time_scale: f64,
    next_ip: AtomicU32,
}

#[derive(Hash, PartialEq, Eq, Clone)]
struct EventKey {
    namespace: String,
    pod_uid: String,
    field_path: String,
    reason: String,
    message: String,
}

impl Shared {
    fn scaled(&self, d: Duration) -> Duration {
        d.mul_f64(self.time_scale).max(Duration::from_millis(50))
    }

    fn has_image(&self, node: &str, image: &ImageRef) -> Option<String> {
        let want = image.to_string();
        let images = self.images.lock().expect("image cache lock");
        images.get(node).and_then(|list| {
            list.iter()
                .find(|c| c.names.contains(&want))
                .map(|c| c.names.last().cloned().unwrap_or_default())
        })
    }

    fn add_image(&self, node: &str, image: &ImageRef, digest: Option<&str>, size: u64) {
        let mut names = vec![image.to_string()];
        if let Some(d) = digest {
            names.push(format!("{}@{d}", image.name()));
        }
        let mut images = self.images.lock().expect("image cache lock");
        let list = images.entry(node.to_string()).or_default();
        if !list.iter().any(|c| c.names[0] == names[0]) {
            list.push(CachedImage { names, size });
        }
    }

    /// Records a kubelet event, folding repeats into `count` as the kubelet's
    /// event recorder does.
    async fn event(
        &self,
        pod: &Pod,
        field_path: Option<&str>,
        kind: &str,
        reason: &str,
        message: &str,
    ) {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let key = EventKey {
            namespace: ns.clone(),
            pod_uid: pod.metadata.uid.clone().unwrap_or_default(),
            field_path: field_path.unwrap_or_default().to_string(),
            reason: reason.to_string(),
            message: message.to_string(),
        };
        let now = now_rfc3339();
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        let existing = self.events.lock().expect("event lock").get(&key).cloned();
        if let Some((name, count)) = existing {
            let patch = json!({"count": count + 1, "lastTimestamp": now});
            if api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .is_ok()
            {
                self.events
                    .lock()
                    .expect("event lock")
                    .insert(key, (name, count + 1));
                return;
            }
        }
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        let name = format!(
            "{pod_name}.{:x}",
            Utc::now().timestamp_nanos_opt().unwrap_or_default()
        );
        let mut involved = json!({
            "kind": "Pod", "apiVersion": "v1", "namespace": ns, "name": pod_name,
            "uid": pod.metadata.uid,
        });
        if let Some(fp) = field_path {
            involved["fieldPath"] = json!(fp);
        }
        let body = json!({
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": involved,
            "reason": reason, "message": message, "type": kind,
            "source": {"component": "kubelet", "host": node},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "reportingComponent": "kubelet", "reportingInstance": node,
        });
        let Ok(event) = serde_json::from_value::<Event>(body) else {
            return;
        };
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => {
                self.events
                    .lock()
                    .expect("event lock")
                    .insert(key, (name, 1));
            }
            // A namespace being deleted refuses new events: expected, not news.
            Err(e) if e.to_string().contains("being terminated") => {
                tracing::debug!("record event {reason} for {ns}/{pod_name}: {e}");
            }
            Err(e) => tracing::warn!("record event {reason} for {ns}/{pod_name}: {e}"),
        }
    }
}

fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Runs the simulated kubelet until `shutdown` resolves.
pub async fn run(
    client: Client,
    options: KubeletOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let registry = RegistryClient::new(&options.registry).context("set up the registry client")?;
    let shared = Arc::new(Shared {
        client: client.clone(),
        registry,
        nodes: options
            .nodes
            .iter()
            .map(|n| (n.name.clone(), n.clone()))
            .collect(),
        images: Mutex::new(HashMap::new()),
        events: Mutex::new(HashMap::new()),
        time_scale: options.time_scale,
        next_ip: AtomicU32::new(2),
    });
    let taints = options
        .taints
        .iter()
        .map(|t| parse_taint(t).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for node in &options.nodes {
        let mine: Vec<Value> = taints
            .iter()
            .filter(|(n, _)| *n == node.name)
            .map(|(_, t)| t.clone())
            .collect();
        register_node(&shared, node, &mine)
            .await
            .with_context(|| format!("register node {}", node.name))?;
    }
    tracing::info!("registered {} nodes", options.nodes.len());
    let heartbeat = tokio::spawn(heartbeat_loop(shared.clone()));
    let pods = watch_pods(shared.clone());
    tokio::select! {
        r = pods => r?,
        () = shutdown => {}
    }
    heartbeat.abort();
    Ok(())
}

async fn register_node(shared: &Shared, node: &NodeSpec, taints: &[Value]) -> anyhow::Result<()> {
    let api: Api<Node> = Api::all(shared.client.clone());
    let mut labels = json!({
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": node.arch,
        "kubernetes.io/hostname": node.name,
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": node.arch,
        "node.kubernetes.io/instance-type": "lab",
        PROFILE_LABEL: node.profile_label(),
    });
    // A tainted pool is also a label, so scenarios can select it.
    for t in taints {
        if let (Some(k), Some(v)) = (t["key"].as_str(), t["value"].as_str()) {
            labels[k] = json!(v);
        }
    }
    if api.get_opt(&node.name).await?.is_none() {
        let body: Node = serde_json::from_value(json!({
            "metadata": {"name": node.name, "labels": labels},
            "spec": {"taints": taints},
        }))?;
        api.create(&PostParams::default(), &body).await?;
    } else {
        api.patch(
            &node.name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": labels}, "spec": {"taints": taints}})),
        )
        .await?;
    }
    post_node_status(shared, node).await
}

async fn post_node_status(shared: &Shared, node: &NodeSpec) -> anyhow::Result<()> {
    let api: Api<Node> = Api::all(shared.client.clone());
    // Images a scenario says this node already holds.
    if let Some(current) = api.get_opt(&node.name).await?
        && let Some(list) = current
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(PRELOAD_ANNOTATION))
    {
        for img in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if let Ok(r) = ImageRef::parse(img)
                && shared.has_image(&node.name, &r).is_none()
            {
                shared.add_image(&node.name, &r, None, 1024);
            }
        }
    }
    let now = now_rfc3339();
    let images: Vec<Value> = shared
        .images
        .lock()
        .expect("image cache lock")
        .get(&node.name)
        .map(|l| {
            l.iter()
                .map(|c| json!({"names": c.names, "sizeBytes": c.size}))
                .collect()
        })
        .unwrap_or_default();
    let cond = |t: &str, s: &str, reason: &str, msg: &str| {
        json!({"type": t, "status": s, "reason": reason, "message": msg,
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    let resources =
        json!({"cpu": "8", "memory": "32Gi", "pods": "1000", "ephemeral-storage": "100Gi"});
    let status = json!({"status": {
        "capacity": resources, "allocatable": resources,
        "conditions": [
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        ],
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": node.name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "machineID": node.name, "systemUUID": node.name, "bootID": node.name,
            "kernelVersion": "6.1.0-lab", "osImage": "pullfix lab node",
            "containerRuntimeVersion": node.profile.runtime.node_info(),
            "kubeletVersion": node.profile.kubelet.node_info(),
            "kubeProxyVersion": node.profile.kubelet.node_info(),
            "operatingSystem": "linux", "architecture": node.arch,
        },
        "images": images,
    }});
    api.patch_status(&node.name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    renew_lease(shared, &node.name).await
}

async fn renew_lease(shared: &Shared, node: &str) -> anyhow::Result<()> {
    let api: Api<Lease> = Api::namespaced(shared.client.clone(), "kube-node-lease");
    let renew = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
    let spec = json!({"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": renew});
    if api.get_opt(node).await?.is_some() {
        api.patch(
            node,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": spec})),
        )
        .await?;
    } else {
        let lease: Lease =
            serde_json::from_value(json!({"metadata": {"name": node}, "spec": spec}))?;
        api.create(&PostParams::default(), &lease).await?;
    }
    Ok(())
}

async fn heartbeat_loop(shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(HEARTBEAT).await;
        for node in shared.nodes.values() {
            if let Err(e) = post_node_status(&shared, node).await {
                tracing::warn!("heartbeat for node {}: {e:#}", node.name);
            }
        }
    }
}

async fn watch_pods(shared: Arc<Shared>) -> anyhow::Result<()> {
    let api: Api<Pod> = Api::all(shared.client.clone());
    let mut tasks: HashMap<String, watch::Sender<Pod>> = HashMap::new();
    let mut stream = watcher(api, watcher::Config::default()).boxed();
    while let Some(event) = stream.next().await {
        let pod = match event {
            Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => pod,
            Ok(watcher::Event::Delete(pod)) => {
                if let Some(uid) = &pod.metadata.uid {
                    tasks.remove(uid);
                }
                continue;
            }
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!("pod watch: {e}");
                continue;
            }
        };
        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) else {
            continue;
        };
        if !shared.nodes.contains_key(node) {
            continue;
        }
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        match tasks.get(&uid) {
            Some(tx) if !tx.is_closed() => {
                tx.send_replace(pod);
            }
            _ => {
                let (tx, rx) = watch::channel(pod);
                tasks.insert(uid, tx);
                tokio::spawn(pod_worker(shared.clone(), rx));
            }
        }
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Waiting {
        reason: String,
        message: String,
    },
    Running {
        since: String,
        image_id: String,
    },
    Completed {
        since: String,
        finished: String,
        image_id: String,
    },
    /// The process exited on its own (lab annotation `lab.pullfix.dev/exit-code`).
    Exited {
        since: String,
        code: i32,
        message: String,
        image_id: String,
    },
}

/// Pod annotation: the app containers exit with this code once started.
pub const EXIT_CODE_ANNOTATION: &str = "lab.pullfix.dev/exit-code";
/// Pod annotation: the termination message for [`EXIT_CODE_ANNOTATION`].
pub const EXIT_MESSAGE_ANNOTATION: &str = "lab.pullfix.dev/termination-message";

#[derive(Debug, Clone)]
struct ContainerRun {
    image: String,
    state: State,
    backoff: Duration,
    retry_at: Option<Instant>,
    last_error: String,
}

impl ContainerRun {
    fn new(image: &str, waiting_reason: &str) -> ContainerRun {
        ContainerRun {
            image: image.to_string(),
            state: State::Waiting {
                reason: waiting_reason.to_string(),
                message: String::new(),
            },
            backoff: Duration::ZERO,
            retry_at: None,
            last_error: String::new(),
        }
    }

    fn running(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }

    fn done(&self) -> bool {
        matches!(
            self.state,
            State::Running { .. } | State::Completed { .. } | State::Exited { .. }
        )
    }
}

struct PodRun {
    containers: HashMap<String, ContainerRun>,
    ip: String,
    start: String,
    last_status: Value,
    transitions: HashMap<String, (bool, String)>,
    warned_missing_secrets: bool,
}

async fn pod_worker(shared: Arc<Shared>, mut rx: watch::Receiver<Pod>) {
    let n = shared.next_ip.fetch_add(1, Ordering::Relaxed);
    let mut run = PodRun {
        containers: HashMap::new(),
        ip: format!("10.244.{}.{}", (n / 250) % 250, n % 250 + 2),
        start: now_rfc3339(),
        last_status: Value::Null,
        transitions: HashMap::new(),
        warned_missing_secrets: false,
    };
    loop {
        let pod = rx.borrow_and_update().clone();
        if pod.metadata.deletion_timestamp.is_some() {
            finish_deletion(&shared, &pod).await;
            return;
        }
        let wake = match sync_pod(&shared, &pod, &mut run).await {
            Ok(wake) => wake,
            Err(e) => {
                tracing::warn!(
                    "sync pod {}/{}: {e:#}",
                    pod.metadata.namespace.as_deref().unwrap_or_default(),
                    pod.metadata.name.as_deref().unwrap_or_default()
                );
                shared.scaled(SYNC_PERIOD)
            }
        };
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(wake) => {}
        }
    }
}

async fn finish_deletion(shared: &Shared, pod: &Pod) {
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(shared.client.clone(), ns);
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: pod.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    if let Err(e) = api.delete(name, &params).await {
        tracing::debug!("delete pod {ns}/{name}: {e}");
    }
}

/// What the pod's pull secrets give the kubelet for one image.
struct PullSecrets {
    /// The credentials it would try, in order.
    creds: Vec<Credential>,
    /// Pull secrets that could not be read.
    missing: Vec<String>,
    /// The decoder's error when a secret does not decode: the kubelet then
    /// fails the pull with it, before any request (`MakeDockerKeyring`).
    refusal: Option<String>,
}

/// The credentials the kubelet would try for an image, in order; the names
/// of pull secrets that could not be read.
async fn pull_credentials(
    shared: &Shared,
    pod: &Pod,
    image: &ImageRef,
) -> anyhow::Result<PullSecrets> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    let spec = pod.spec.as_ref().context("pod has no spec")?;
    // Only the pod's own list, as the real kubelet: its ServiceAccount's
    // secrets were copied into it at creation (ServiceAccount admission),
    // so one attached to the account later reaches new pods only.
    let mut names: Vec<String> = Vec::new();
    for r in spec.image_pull_secrets.iter().flatten() {
        if !names.contains(&r.name) {
            names.push(r.name.clone());
        }
    }
    let secrets: Api<Secret> = Api::namespaced(shared.client.clone(), ns);
    let mut keyring = Keyring::default();
    let mut missing = Vec::new();
    let mut refusal = None;
    for name in &names {
        match secrets.get_opt(name).await? {
            Some(secret) => {
                let data: BTreeMap<String, Vec<u8>> = secret
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .collect();
                let kind = secret.type_.as_deref().unwrap_or("Opaque");
                if let Some(r) = kubelet_refusal(kind, &data) {
                    refusal.get_or_insert(r.error);
                } else if let Ok(entries) = parse_pull_secret(kind, &data) {
                    keyring.add(name, &entries);
                }
            }
            None => missing.push(name.clone()),
        }
    }
    let creds = keyring
        .lookup(&image.name())
        .into_iter()
        .map(|(c, _)| c.clone())
        .collect();
    Ok(PullSecrets {
        creds,
        missing,
        refusal,
    })
}

fn effective_policy(c: &Container, image: &ImageRef) -> String {
    c.image_pull_policy.clone().unwrap_or_else(|| {
        if image.tag.as_deref() == Some("latest") && image.digest.is_none() {
            "Always".into()
        } else {
            "IfNotPresent".into()
        }
    })
}

/// Go's `utilerrors.NewAggregate(errs).Error()`.
fn aggregate(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

async fn sync_pod(shared: &Shared, pod: &Pod, run: &mut PodRun) -> anyhow::Result<Duration> {
    let spec = pod.spec.as_ref().context("pod has no spec")?;
    let node_name = spec.node_name.clone().unwrap_or_default();
    let node = shared
        .nodes
        .get(&node_name)
        .context("pod is not on one of our nodes")?
        .clone();
    let init = spec.init_containers.clone().unwrap_or_default();
    let mut blocked = false;
    for c in &init {
        if blocked {
            run.containers.entry(c.name.clone()).or_insert_with(|| {
                ContainerRun::new(c.image.as_deref().unwrap_or(""), "PodInitializing")
            });
            continue;
        }
        let path = format!("spec.initContainers{{{}}}", c.name);
        if !sync_container(shared, pod, &node, c, &path, true, run).await? {
            blocked = true;
        }
    }
    for c in &spec.containers {
        if blocked {
            let entry = run.containers.entry(c.name.clone()).or_insert_with(|| {
                ContainerRun::new(c.image.as_deref().unwrap_or(""), "PodInitializing")
            });
            entry.state = State::Waiting {
                reason: "PodInitializing".into(),
                message: String::new(),
            };
            continue;
        }
        let path = format!("spec.containers{{{}}}", c.name);
        sync_container(shared, pod, &node, c, &path, false, run).await?;
    }
    write_status(shared, pod, &init, &spec.containers, run).await?;
    let now = Instant::now();
    let next_retry = run
        .containers
        .values()
        .filter(|c| !c.done())
        .filter_map(|c| c.retry_at)
        .map(|t| t.saturating_duration_since(now))
        .min();
    Ok(next_retry
        .map_or(shared.scaled(SYNC_PERIOD), |d| {
            d.min(shared.scaled(SYNC_PERIOD))
        })
        .max(Duration::from_millis(50)))
}

/// Advances one container; returns true when it is running (or, for an init
/// container, completed).
async fn sync_container(
    shared: &Shared,
    pod: &Pod,
    node: &NodeSpec,
    c: &Container,
    field_path: &str,
    is_init: bool,
    run: &mut PodRun,
) -> anyhow::Result<bool> {
    let spec_image = c.image.clone().unwrap_or_default();
    let entry = run
        .containers
        .entry(c.name.clone())
        .or_insert_with(|| ContainerRun::new(&spec_image, "ContainerCreating"));
    if entry.image != spec_image {
        // `kubectl set image` on a pod: the container restarts with the new image.
        *entry = ContainerRun::new(&spec_image, "ContainerCreating");
    }
    if entry.done() {
        return Ok(true);
    }
    let fp = Some(field_path);
    let image = match ImageRef::parse(&spec_image) {
        Ok(r) => r,
        Err(e) => {
            let msg = format!(
                "Failed to apply default image tag \"{spec_image}\": couldn't parse image name \"{spec_image}\": {e}"
            );
            shared
                .event(pod, fp, "Warning", "InspectFailed", &msg)
                .await;
            shared
                .event(pod, fp, "Warning", "Failed", "Error: InvalidImageName")
                .await;
            let entry = run.containers.get_mut(&c.name).expect("entry exists");
            entry.state = State::Waiting {
                reason: "InvalidImageName".into(),
                message: msg,
            };
            return Ok(false);
        }
    };
    let policy = effective_policy(c, &image);
    let cached = shared.has_image(&node.name, &image);
    if policy == "Never" && cached.is_none() {
        let msg =
            format!("Container image \"{spec_image}\" is not present with pull policy of Never");
        shared
            .event(pod, fp, "Warning", "ErrImageNeverPull", &msg)
            .await;
        shared
            .event(pod, fp, "Warning", "Failed", "Error: ErrImageNeverPull")
            .await;
        let entry = run.containers.get_mut(&c.name).expect("entry exists");
        entry.state = State::Waiting {
            reason: "ErrImageNeverPull".into(),
            message: msg,
        };
        return Ok(false);
    }
    let image_id = if let (Some(id), true) = (&cached, policy != "Always") {
        let msg = format!("Container image \"{spec_image}\" already present on machine");
        shared.event(pod, fp, "Normal", "Pulled", &msg).await;
        id.clone()
    } else {
        let entry = run.containers.get_mut(&c.name).expect("entry exists");
        if let Some(at) = entry.retry_at
            && Instant::now() < at
        {
            let msg = node.profile.backoff_message(&spec_image, &entry.last_error);
            entry.state = State::Waiting {
                reason: "ImagePullBackOff".into(),
                message: msg,
            };
            shared
                .event(
                    pod,
                    fp,
                    "Normal",
                    "BackOff",
                    &format!("Back-off pulling image \"{spec_image}\""),
                )
                .await;
            shared
                .event(pod, fp, "Warning", "Failed", "Error: ImagePullBackOff")
                .await;
            return Ok(false);
        }
        shared
            .event(
                pod,
                fp,
                "Normal",
                "Pulling",
                &format!("Pulling image \"{spec_image}\""),
            )
            .await;
        let PullSecrets {
            creds,
            missing,
            refusal,
        } = pull_credentials(shared, pod, &image).await?;
        if !missing.is_empty()
            && node.profile.reports_missing_pull_secrets()
            && !run.warned_missing_secrets
        {
            run.warned_missing_secrets = true;
            let msg = format!(
                "Unable to retrieve some image pull secrets ({}); attempting to pull the image may not succeed.",
                missing.join(", ")
            );
            shared
                .event(
                    pod,
                    None,
                    "Warning",
                    "FailedToRetrieveImagePullSecret",
                    &msg,
                )
                .await;
        }
        let platform = Platform {
            os: "linux".into(),
            arch: node.arch.clone(),
        };
        let started = Instant::now();
        let result = match refusal {
            Some(error) => Err(error),
            None => pull_with(shared, &image, &creds, &platform)
                .await
                .map_err(|failures| {
                    let texts: Vec<String> = failures
                        .iter()
                        .map(|f| node.profile.pull_error(&image, f))
                        .collect();
                    aggregate(&texts)
                }),
        };
        let entry = run.containers.get_mut(&c.name).expect("entry exists");
        match result {
            Ok((digest, size)) => {
                let took = started.elapsed();
                shared.add_image(&node.name, &image, Some(&digest), size);
                let msg = format!(
                    "Successfully pulled image \"{spec_image}\" in {took:.0?} ({took:.0?} including waiting). Image size: {size} bytes."
                );
                shared.event(pod, fp, "Normal", "Pulled", &msg).await;
                entry.backoff = Duration::ZERO;
                entry.retry_at = None;
                format!("{}@{digest}", image.name())
            }
            Err(err) => {
                entry.backoff = if entry.backoff.is_zero() {
                    BACKOFF_START
                } else {
                    (entry.backoff * 2).min(BACKOFF_MAX)
                };
                entry.retry_at = Some(Instant::now() + shared.scaled(entry.backoff));
                entry.last_error = err.clone();
                entry.state = State::Waiting {
                    reason: "ErrImagePull".into(),
                    message: err.clone(),
                };
                shared
                    .event(
                        pod,
                        fp,
                        "Warning",
                        "Failed",
                        &format!("Failed to pull image \"{spec_image}\": {err}"),
                    )
                    .await;
                shared
                    .event(pod, fp, "Warning", "Failed", "Error: ErrImagePull")
                    .await;
                return Ok(false);
            }
        }
    };
    shared
        .event(
            pod,
            fp,
            "Normal",
            "Created",
            &format!("Created container {}", c.name),
        )
        .await;
    shared
        .event(
            pod,
            fp,
            "Normal",
            "Started",
            &format!("Started container {}", c.name),
        )
        .await;
    let now = now_rfc3339();
    let entry = run.containers.get_mut(&c.name).expect("entry exists");
    let annotations = pod.metadata.annotations.clone().unwrap_or_default();
    let exit = annotations
        .get(EXIT_CODE_ANNOTATION)
        .and_then(|c| c.parse::<i32>().ok());
    entry.state = if is_init {
        State::Completed {
            since: now.clone(),
            finished: now,
            image_id,
        }
    } else if let Some(code) = exit {
        State::Exited {
            since: now,
            code,
            message: annotations
                .get(EXIT_MESSAGE_ANNOTATION)
                .cloned()
                .unwrap_or_default(),
            image_id,
        }
    } else {
        State::Running {
            since: now,
            image_id,
        }
    };
    Ok(true)
}

/// Tries each matching credential in order (anonymous when none match), as
/// the kubelet does; returns every failure when all fail.
async fn pull_with(
    shared: &Shared,
    image: &ImageRef,
    creds: &[Credential],
    platform: &Platform,
) -> Result<(String, u64), Vec<PullFailure>> {
    if creds.is_empty() {
        return shared
            .registry
            .resolve(image, None, platform)
            .await
            .map(|r| (r.digest, r.size))
            .map_err(|e| vec![e]);
    }
    let mut failures = Vec::new();
    for cred in creds {
        match shared.registry.resolve(image, Some(cred), platform).await {
            Ok(r) => return Ok((r.digest, r.size)),
            Err(e) => failures.push(e),
        }
    }
    Err(failures)
}

fn container_status(c: &Container, run: &ContainerRun) -> Value {
    let (state, ready, started, image_id, cid) = match &run.state {
        State::Waiting { reason, message } => {
            let mut w = json!({"reason": reason});
            if !message.is_empty() {
                w["message"] = json!(message);
            }
            (json!({"waiting": w}), false, false, String::new(), None)
        }
        State::Running { since, image_id } => (
            json!({"running": {"startedAt": since}}),
            true,
            true,
            image_id.clone(),
            Some(container_id(&c.name, since)),
        ),
        State::Completed {
            since,
            finished,
            image_id,
        } => (
            json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": since, "finishedAt": finished}}),
            true,
            false,
            image_id.clone(),
            Some(container_id(&c.name, since)),
        ),
        State::Exited {
            since,
            code,
            message,
            image_id,
        } => (
            json!({"terminated": {"exitCode": code, "reason": if *code == 0 {"Completed"} else {"Error"},
                   "message": message, "startedAt": since, "finishedAt": since}}),
            false,
            false,
            image_id.clone(),
            Some(container_id(&c.name, since)),
        ),
    };
    let mut s = json!({
        "name": c.name, "image": c.image, "imageID": image_id, "ready": ready,
        "started": started, "restartCount": 0, "state": state, "lastState": {},
    });
    if let Some(id) = cid {
        s["containerID"] = json!(id);
    }
    s
}

fn container_id(name: &str, since: &str) -> String {
    use sha2::Digest;
    format!(
        "containerd://{}",
        hex::encode(sha2::Sha256::digest(format!("{name}{since}")))
    )
}

async fn write_status(
    shared: &Shared,
    pod: &Pod,
    init: &[Container],
    containers: &[Container],
    run: &mut PodRun,
) -> anyhow::Result<()> {
    let status_of = |c: &Container| {
        run.containers
            .get(&c.name)
            .map(|r| container_status(c, r))
            .unwrap_or(Value::Null)
    };
    let init_statuses: Vec<Value> = init.iter().map(status_of).collect();
    let statuses: Vec<Value> = containers.iter().map(status_of).collect();
    let initialized = init
        .iter()
        .all(|c| run.containers.get(&c.name).is_some_and(ContainerRun::done));
    let unready: Vec<&str> = containers
        .iter()
        .filter(|c| {
            !run.containers
                .get(&c.name)
                .is_some_and(ContainerRun::running)
        })
        .map(|c| c.name.as_str())
        .collect();
    let uninit: Vec<&str> = init
        .iter()
        .filter(|c| !run.containers.get(&c.name).is_some_and(ContainerRun::done))
        .map(|c| c.name.as_str())
        .collect();
    let ready = initialized && unready.is_empty();
    let any_running = initialized && unready.len() < containers.len();
    let now = now_rfc3339();
    let mut condition = |kind: &str, ok: bool, reason: &str, message: String| {
        let entry = run
            .transitions
            .entry(kind.to_string())
            .or_insert((ok, now.clone()));
        if entry.0 != ok {
            *entry = (ok, now.clone());
        }
        let mut c = json!({"type": kind, "status": if ok {"True"} else {"False"},
                           "lastProbeTime": null, "lastTransitionTime": entry.1});
        if !ok {
            c["reason"] = json!(reason);
            c["message"] = json!(message);
        }
        c
    };
    let conditions = vec![
        condition(
            "Initialized",
            initialized,
            "ContainersNotInitialized",
            format!("containers with incomplete status: [{}]", uninit.join(" ")),
        ),
        condition(
            "Ready",
            ready,
            "ContainersNotReady",
            format!("containers with unready status: [{}]", unready.join(" ")),
        ),
        condition(
            "ContainersReady",
            ready,
            "ContainersNotReady",
            format!("containers with unready status: [{}]", unready.join(" ")),
        ),
        condition("PodScheduled", true, "", String::new()),
    ];
    let exited: Vec<i32> = containers
        .iter()
        .filter_map(|c| match run.containers.get(&c.name).map(|r| &r.state) {
            Some(State::Exited { code, .. }) => Some(*code),
            _ => None,
        })
        .collect();
    let phase = if !containers.is_empty() && exited.len() == containers.len() {
        if exited.iter().all(|c| *c == 0) {
            "Succeeded"
        } else {
            "Failed"
        }
    } else if any_running {
        "Running"
    } else {
        "Pending"
    };
    let mut status = json!({
        "phase": phase,
        "conditions": conditions,
        "hostIP": "127.0.0.1",
        "podIP": run.ip, "podIPs": [{"ip": run.ip}],
        "startTime": run.start,
        "containerStatuses": statuses,
    });
    if !init.is_empty() {
        status["initContainerStatuses"] = json!(init_statuses);
    }
    if status == run.last_status {
        return Ok(());
    }
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(shared.client.clone(), ns);
    match api
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
    {
        Ok(_) => {
            run.last_status = status;
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e).with_context(|| format!("write status of pod {ns}/{name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_specs() {
        let n = NodeSpec::parse("n1:arm64:1.27:docker").unwrap();
        assert_eq!(n.arch, "arm64");
        assert_eq!(n.profile_label(), "1-27_docker-24-0-9");
        assert!(NodeSpec::parse("n1:amd64:1.99:docker").is_err());
        assert!(NodeSpec::parse("n1:mips:1.28:docker").is_err());
        assert!(NodeSpec::parse("n1").is_err());
    }

    #[test]
    fn aggregate_like_go() {
        assert_eq!(aggregate(&["a".into()]), "a");
        assert_eq!(aggregate(&["a".into(), "b".into()]), "[a, b]");
    }
}
