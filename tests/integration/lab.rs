//! Tests of the lab itself: the real control plane, the registries and the
//! simulated kubelet produce what a real cluster shows for each failure, and
//! the seeds' plain-kubectl fixes make `kubectl rollout status` succeed.
//!
//! Needs the lab (`scripts/test` brings it up). Each test works in its own
//! namespaces, so they run in parallel.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The lab's helper binary (`pullfix-lab`, a workspace member), built next
/// to the plugin by `cargo build --workspace` (the README test command).
pub(crate) fn lab_bin() -> std::path::PathBuf {
    let bin =
        std::path::Path::new(env!("CARGO_BIN_EXE_kubectl-pullfix")).with_file_name("pullfix-lab");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build --workspace` (scripts/test does)",
        bin.display()
    );
    bin
}

pub(crate) fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: lab tests need the lab; run scripts/test (or scripts/lab up && eval \"$(scripts/lab env)\")")
    })
}

pub(crate) fn unique_ns(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id() % 10000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub(crate) fn kubectl(args: &[&str]) -> Output {
    Command::new("kubectl")
        .args(args)
        .output()
        .expect("run kubectl")
}

pub(crate) fn kubectl_ok(args: &[&str]) -> String {
    let out = kubectl(args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn sh(cmd: &str) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .expect("run sh")
}

/// `kubectl apply -f -` of `doc` (an object or a `List`), as the admin;
/// asserts it succeeded, with kubectl's words when it did not.
pub(crate) fn apply(doc: &Value) {
    use std::io::Write as _;
    let mut child = Command::new("kubectl")
        .args(["apply", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run kubectl apply");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(doc.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kubectl apply: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub(crate) fn json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&kubectl_ok(&all)).expect("kubectl -o json")
}

/// Sets up a scenario in a fresh namespace, optionally pinned to a node.
pub(crate) fn scenario(id: &str, node: Option<&str>) -> String {
    let ns = unique_ns(id);
    let mut cmd = Command::new(lab_bin());
    cmd.args(["scenario", id, "-n", &ns]);
    if let Some(node) = node {
        cmd.args(["--node", node]);
    }
    let out = cmd.output().expect("run pullfix-lab scenario");
    assert!(
        out.status.success(),
        "pullfix-lab scenario {id}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ns
}

pub(crate) fn fix(id: &str, ns: &str) {
    let out = Command::new(crate::lab::lab_bin())
        .args(["scenario", id, "-n", ns, "--print-fix"])
        .output()
        .expect("print fix");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let r = sh(line);
        assert!(
            r.status.success(),
            "fix step failed: {line}\n{}{}",
            String::from_utf8_lossy(&r.stdout),
            String::from_utf8_lossy(&r.stderr)
        );
    }
}

/// Polls until `check` returns Some, or panics after `secs`.
pub(crate) fn wait_for<T>(what: &str, secs: u64, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The first pod (in `ns`) whose container `container` waits with `reason`;
/// returns (pod name, message).
pub(crate) fn wait_waiting(
    ns: &str,
    container: &str,
    reason: &str,
    init: bool,
) -> (String, String) {
    let key = if init {
        "initContainerStatuses"
    } else {
        "containerStatuses"
    };
    wait_for(&format!("{ns}: {container} waiting {reason}"), 120, || {
        let pods = json(&["get", "pods", "-n", ns]);
        for pod in pods["items"].as_array()? {
            for cs in pod["status"][key].as_array().into_iter().flatten() {
                let w = &cs["state"]["waiting"];
                if cs["name"] == container && w["reason"] == reason {
                    return Some((
                        pod["metadata"]["name"].as_str()?.to_string(),
                        w["message"].as_str().unwrap_or_default().to_string(),
                    ));
                }
            }
        }
        None
    })
}

/// Waits until a pod in `ns` has container `container` failing to pull
/// (waiting `ErrImagePull` or `ImagePullBackOff`), and returns (pod, the
/// pull error). The error is read from the kubelet's `Failed to pull image`
/// event, which is exactly the `ErrImagePull` message (that state lasts only
/// until the next sync, so polling it directly races).
pub(crate) fn wait_pull_error(ns: &str, container: &str, init: bool) -> (String, String) {
    let key = if init {
        "initContainerStatuses"
    } else {
        "containerStatuses"
    };
    wait_for(&format!("{ns}: {container} failing to pull"), 120, || {
        let pods = json(&["get", "pods", "-n", ns]);
        for pod in pods["items"].as_array()? {
            let name = pod["metadata"]["name"].as_str()?;
            let failing = pod["status"][key]
                .as_array()
                .into_iter()
                .flatten()
                .any(|cs| {
                    cs["name"] == container
                        && matches!(
                            cs["state"]["waiting"]["reason"].as_str(),
                            Some("ErrImagePull" | "ImagePullBackOff")
                        )
                });
            if !failing {
                continue;
            }
            let path = if init {
                format!("spec.initContainers{{{container}}}")
            } else {
                format!("spec.containers{{{container}}}")
            };
            for e in events_for(ns, name) {
                let msg = e["message"].as_str().unwrap_or_default();
                if e["reason"] == "Failed"
                    && e["involvedObject"]["fieldPath"] == path.as_str()
                    && msg.starts_with("Failed to pull image \"")
                {
                    let (_, err) = msg.split_once("\": ")?;
                    return Some((name.to_string(), err.to_string()));
                }
            }
        }
        None
    })
}

pub(crate) fn events_for(ns: &str, pod: &str) -> Vec<Value> {
    let ev = json(&[
        "get",
        "events",
        "-n",
        ns,
        "--field-selector",
        &format!("involvedObject.name={pod}"),
    ]);
    ev["items"].as_array().cloned().unwrap_or_default()
}

pub(crate) fn has_event(events: &[Value], reason: &str, message_part: &str) -> bool {
    events.iter().any(|e| {
        e["reason"] == reason
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains(message_part))
    })
}

/// Creates ServiceAccount `sa` in `ns` and writes a kubeconfig for it
/// (mode 0600) into `dir`: the admin kubeconfig's cluster, the account's
/// token (returned too: it must never be printed), `ns` as the namespace.
/// What it may do is up to the caller's bindings.
pub(crate) fn service_account_kubeconfig(
    ns: &str,
    sa: &str,
    dir: &std::path::Path,
) -> (std::path::PathBuf, String) {
    kubectl_ok(&["create", "serviceaccount", sa, "-n", ns]);
    let token = kubectl_ok(&["create", "token", sa, "-n", ns, "--duration", "1h"])
        .trim()
        .to_string();
    assert!(token.len() > 100, "a ServiceAccount token");
    let mut kc: Value = serde_json::from_str(&kubectl_ok(&[
        "config",
        "view",
        "--raw",
        "--minify",
        "--flatten",
        "-o",
        "json",
    ]))
    .expect("the admin kubeconfig");
    kc["users"][0]["user"] = serde_json::json!({"token": token});
    kc["contexts"][0]["context"]["namespace"] = serde_json::json!(ns);
    let path = dir.join(format!("kubeconfig-{sa}"));
    std::fs::write(&path, kc.to_string()).unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    (path, token)
}

pub(crate) fn delete_ns(ns: &str) {
    let _ = kubectl(&["delete", "namespace", ns, "--wait=false"]);
}

#[test]
fn nodes_register_with_profiles_and_stay_ready() {
    let nodes = json(&["get", "nodes"]);
    let items = nodes["items"].as_array().expect("nodes");
    let names: Vec<&str> = items
        .iter()
        .filter_map(|n| n["metadata"]["name"].as_str())
        .collect();
    for want in [
        "lab-k133-cd21",
        "lab-k128-cd17",
        "lab-k127-docker",
        "lab-k128-crio",
        "lab-arm64",
    ] {
        assert!(names.contains(&want), "node {want} missing: {names:?}");
    }
    let arm = items
        .iter()
        .find(|n| n["metadata"]["name"] == "lab-arm64")
        .unwrap();
    assert_eq!(arm["metadata"]["labels"]["kubernetes.io/arch"], "arm64");
    let crio = items
        .iter()
        .find(|n| n["metadata"]["name"] == "lab-k128-crio")
        .unwrap();
    assert_eq!(
        crio["status"]["nodeInfo"]["containerRuntimeVersion"],
        "cri-o://1.33.3"
    );
    assert_eq!(crio["status"]["nodeInfo"]["kubeletVersion"], "v1.28.15");
    for n in items {
        let ready = n["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert_eq!(ready["status"], "True", "{}", n["metadata"]["name"]);
    }
    // Heartbeats keep coming: the lease is renewed.
    let lease = |_: ()| {
        json(&["get", "lease", "lab-k133-cd21", "-n", "kube-node-lease"])["spec"]["renewTime"]
            .clone()
    };
    let first = lease(());
    wait_for("lease renewal", 30, || (lease(()) != first).then_some(()));
}

#[test]
fn wrong_tag_on_containerd_1_7_kubelet_1_28_then_set_image_fixes_it() {
    let reg = env("PULLFIX_LAB_REGISTRY");
    let ns = scenario("wrong-tag", Some("lab-k128-cd17"));
    let image = format!("{reg}/team/checkout:v2.1.9");
    let (pod, msg) = wait_pull_error(&ns, "checkout", false);
    assert_eq!(
        msg,
        format!(
            "rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": {image}: not found"
        )
    );
    let (_, backoff) = wait_waiting(&ns, "checkout", "ImagePullBackOff", false);
    assert_eq!(backoff, format!("Back-off pulling image \"{image}\""));
    let events = wait_for("BackOff event", 30, || {
        let ev = events_for(&ns, &pod);
        has_event(&ev, "BackOff", "Back-off pulling image").then_some(ev)
    });
    assert!(has_event(
        &events,
        "Pulling",
        &format!("Pulling image \"{image}\"")
    ));
    assert!(has_event(
        &events,
        "Failed",
        &format!("Failed to pull image \"{image}\": rpc error: code = NotFound")
    ));
    assert!(has_event(&events, "Failed", "Error: ErrImagePull"));
    assert!(has_event(&events, "Failed", "Error: ImagePullBackOff"));
    let ev = events.iter().find(|e| e["reason"] == "Pulling").unwrap();
    assert_eq!(ev["source"]["component"], "kubelet");
    assert_eq!(
        ev["involvedObject"]["fieldPath"],
        "spec.containers{checkout}"
    );
    // Repeated attempts fold into one event with a count.
    wait_for("Pulling count > 1", 60, || {
        let ev = events_for(&ns, &pod);
        ev.iter()
            .any(|e| e["reason"] == "Pulling" && e["count"].as_i64().unwrap_or(0) > 1)
            .then_some(())
    });
    fix("wrong-tag", &ns);
    let d = json(&["get", "deployment", "checkout", "-n", &ns]);
    assert_eq!(d["status"]["readyReplicas"], 2);
    delete_ns(&ns);
}

#[test]
fn rotated_password_on_kubelet_1_33_shows_cause_in_backoff_then_secret_and_restart_fix_it() {
    let reg = env("PULLFIX_LAB_REGISTRY");
    let ns = scenario("rotated-password", Some("lab-k133-cd21"));
    let (_, msg) = wait_pull_error(&ns, "checkout", false);
    let image = format!("{reg}/team/checkout:v2.1.0");
    let expected = format!(
        "failed to pull and unpack image \"{image}\": failed to resolve image: unexpected status from HEAD request to https://{reg}/v2/team/checkout/manifests/v2.1.0: 401 Unauthorized"
    );
    assert_eq!(msg, expected);
    let (_, backoff) = wait_waiting(&ns, "checkout", "ImagePullBackOff", false);
    assert_eq!(
        backoff,
        format!("Back-off pulling image \"{image}\": ErrImagePull: {expected}")
    );
    fix("rotated-password", &ns);
    let d = json(&["get", "deployment", "checkout", "-n", &ns]);
    assert_eq!(d["status"]["availableReplicas"], 2);
    delete_ns(&ns);
}

#[test]
fn missing_secret_on_crio_reports_failed_to_retrieve_then_creating_it_fixes() {
    let reg = env("PULLFIX_LAB_REGISTRY");
    let ns = scenario("secret-missing", Some("lab-k128-crio"));
    let (pod, msg) = wait_pull_error(&ns, "checkout", false);
    assert_eq!(
        msg,
        format!(
            "initializing source docker://{reg}/team/checkout:v2.1.0: reading manifest v2.1.0 in {reg}/team/checkout: unauthorized: authentication required"
        )
    );
    let events = wait_for("FailedToRetrieveImagePullSecret", 30, || {
        let ev = events_for(&ns, &pod);
        has_event(&ev, "FailedToRetrieveImagePullSecret", "(regcred)").then_some(ev)
    });
    assert!(has_event(
        &events,
        "FailedToRetrieveImagePullSecret",
        "Unable to retrieve some image pull secrets (regcred); attempting to pull the image may not succeed."
    ));
    fix("secret-missing", &ns);
    delete_ns(&ns);
}

#[test]
fn missing_prefix_on_docker_1_27_pulls_from_hub_and_is_denied() {
    let ns = scenario("missing-prefix", Some("lab-k127-docker"));
    let (_, msg) = wait_pull_error(&ns, "checkout", false);
    assert_eq!(
        msg,
        "rpc error: code = Unknown desc = Error response from daemon: pull access denied for team/checkout, repository does not exist or may require 'docker login': denied: requested access to the resource is denied"
    );
    fix("missing-prefix", &ns);
    delete_ns(&ns);
}

#[test]
fn docker_hub_rate_limit_surfaces_429() {
    let ns = scenario("rate-limited", Some("lab-k133-cd21"));
    let (_, msg) = wait_pull_error(&ns, "web", false);
    assert!(
        msg.starts_with("failed to pull and unpack image \"docker.io/library/nginx:1.25\": failed to copy: httpReadSeeker: failed open: unexpected status code https://registry-1.docker.io/v2/library/nginx/manifests/1.25: 429 Too Many Requests - Server message: toomanyrequests: You have reached your pull rate limit."),
        "{msg}"
    );
    delete_ns(&ns);
}

#[test]
fn expired_ecr_token_then_fresh_token_fixes() {
    let ns = scenario("ecr-expired", Some("lab-k133-cd21"));
    let (_, msg) = wait_pull_error(&ns, "checkout", false);
    assert!(
        msg.contains(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/v2/team/checkout/manifests/v2.1.0: 40"
        ),
        "{msg}"
    );
    // The refresh CronJob's Jobs fail.
    wait_for("failed refresh job", 60, || {
        let job = json(&["get", "job", "ecr-token-refresh-1", "-n", &ns]);
        (job["status"]["failed"].as_i64().unwrap_or(0) >= 1).then_some(())
    });
    let job = json(&["get", "job", "ecr-token-refresh-2", "-n", &ns]);
    assert_eq!(job["metadata"]["ownerReferences"][0]["kind"], "CronJob");
    assert_eq!(
        job["metadata"]["ownerReferences"][0]["name"],
        "ecr-token-refresh"
    );
    let pods = json(&[
        "get",
        "pods",
        "-n",
        &ns,
        "-l",
        "job-name=ecr-token-refresh-1",
    ]);
    let term = &pods["items"][0]["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(term["exitCode"], 1);
    assert!(
        term["message"]
            .as_str()
            .unwrap_or_default()
            .contains("security token included in the request is expired")
    );
    let cj = json(&["get", "cronjob", "ecr-token-refresh", "-n", &ns]);
    assert!(cj["status"]["lastScheduleTime"].is_string(), "{cj}");
    fix("ecr-expired", &ns);
    let d = json(&["get", "deployment", "checkout", "-n", &ns]);
    assert_eq!(d["status"]["readyReplicas"], 5);
    delete_ns(&ns);
}

#[test]
fn platform_mismatch_on_arm64() {
    let ns = scenario("platform-mismatch", None);
    let (_, msg) = wait_pull_error(&ns, "multi", false);
    assert!(
        msg.ends_with("no match for platform in manifest: not found"),
        "{msg}"
    );
    delete_ns(&ns);
}

#[test]
fn ifnotpresent_masks_broken_credentials_on_the_warm_node() {
    let ns = scenario("ifnotpresent-masking", None);
    let (pod, msg) = wait_pull_error(&ns, "checkout", false);
    assert!(msg.contains("401 Unauthorized"), "{msg}");
    let pods = json(&["get", "pods", "-n", &ns]);
    let failing = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["metadata"]["name"] == pod.as_str())
        .unwrap();
    assert_eq!(failing["spec"]["nodeName"], "lab-fresh");
    wait_for("pod running on lab-warm", 60, || {
        let pods = json(&["get", "pods", "-n", &ns]);
        pods["items"]
            .as_array()?
            .iter()
            .find(|p| p["spec"]["nodeName"] == "lab-warm" && p["status"]["phase"] == "Running")?;
        Some(())
    });
    let warm = json(&["get", "node", "lab-warm"]);
    let names = warm["status"]["images"].to_string();
    assert!(names.contains("team/checkout:v2.1.0"), "{names}");
    delete_ns(&ns);
}

#[test]
fn failing_init_container_blocks_the_app() {
    let ns = scenario("init-container", Some("lab-k133-cd21"));
    let (_, msg) = wait_pull_error(&ns, "migrate", true);
    assert!(msg.contains("team/worker:1.4.3: not found"), "{msg}");
    wait_waiting(&ns, "checkout", "PodInitializing", false);
    fix("init-container", &ns);
    delete_ns(&ns);
}

#[test]
fn invalid_image_name() {
    let reg = env("PULLFIX_LAB_REGISTRY");
    let ns = scenario("invalid-name", Some("lab-k133-cd21"));
    let (pod, msg) = wait_waiting(&ns, "checkout", "InvalidImageName", false);
    let image = format!("{reg}/Team/Checkout:v2.1.0");
    assert_eq!(
        msg,
        format!(
            "Failed to apply default image tag \"{image}\": couldn't parse image name \"{image}\": invalid reference format: repository name (Team/Checkout) must be lowercase"
        )
    );
    let events = events_for(&ns, &pod);
    assert!(has_event(
        &events,
        "InspectFailed",
        "invalid reference format"
    ));
    fix("invalid-name", &ns);
    delete_ns(&ns);
}

#[test]
fn unreachable_registries_and_tls() {
    let cases = [
        (
            "unreachable-dns",
            "dial tcp: lookup registry.nxdomain.example on 127.0.0.53:53: no such host",
        ),
        ("unreachable-refused", "connect: connection refused"),
        ("unreachable-timeout", "i/o timeout"),
        (
            "tls-unknown-ca",
            "tls: failed to verify certificate: x509: certificate signed by unknown authority",
        ),
    ];
    let namespaces: Vec<(String, &str)> = cases
        .iter()
        .map(|(id, want)| (scenario(id, Some("lab-k128-cd17")), *want))
        .collect();
    for (ns, want) in &namespaces {
        let (_, msg) = wait_pull_error(ns, "checkout", false);
        assert!(msg.contains(want), "{ns}: {msg}");
        delete_ns(ns);
    }
}

#[test]
fn credentials_the_kubelet_ignores_then_fixes() {
    // Each of these leaves the kubelet with no usable credential for the
    // registry: a Basic challenge answered with nothing.
    for (id, node) in [
        ("secret-opaque", "lab-k128-cd17"),
        ("wrong-registry-key", "lab-k128-cd17"),
        ("no-pull-secrets", "lab-k133-cd21"),
        ("sa-secret-only", "lab-k133-cd21"),
    ] {
        let ns = scenario(id, Some(node));
        let (_, msg) = wait_pull_error(&ns, "checkout", false);
        assert!(
            msg.contains("pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials"),
            "{id}: {msg}"
        );
        fix(id, &ns);
        delete_ns(&ns);
    }
}

#[test]
fn a_secret_the_kubelet_cannot_decode_fails_every_pull_then_fixes() {
    // Its credential for the registry is right: the kubelet never sends
    // it, and says so in Go's base64 decoder's words, with no runtime
    // envelope (the runtime is never asked).
    for node in ["lab-k133-cd21", "lab-k127-docker"] {
        let ns = scenario("secret-undecodable", Some(node));
        let (_, msg) = wait_pull_error(&ns, "checkout", false);
        assert_eq!(msg, "illegal base64 data at input byte 4", "{node}");
        fix("secret-undecodable", &ns);
        delete_ns(&ns);
    }
}

#[test]
fn stale_secret_in_three_namespaces() {
    let ns = scenario("stale-secret-many-namespaces", Some("lab-k133-cd21"));
    for target in [ns.clone(), format!("{ns}-b"), format!("{ns}-c")] {
        let (_, msg) = wait_pull_error(&target, "checkout", false);
        assert!(msg.contains("401 Unauthorized"), "{target}: {msg}");
    }
    fix("stale-secret-many-namespaces", &ns);
    for target in [ns.clone(), format!("{ns}-b"), format!("{ns}-c")] {
        delete_ns(&target);
    }
}

#[test]
fn token_registry_pulls_with_good_credentials_only() {
    let reg = env("PULLFIX_LAB_TOKEN_REGISTRY");
    let user = env("PULLFIX_LAB_TOKEN_USER");
    let pass = env("PULLFIX_LAB_TOKEN_PASSWORD");
    let ns = unique_ns("token");
    kubectl_ok(&["create", "namespace", &ns]);
    let image = format!("{reg}/team/worker:1.4.2");
    // No credentials: the issuer hands out a token without pull rights.
    kubectl_ok(&[
        "run",
        "anon",
        "-n",
        &ns,
        "--image",
        &image,
        "--image-pull-policy=Always",
        "--overrides",
        r#"{"spec":{"nodeSelector":{"kubernetes.io/hostname":"lab-k133-cd21"}}}"#,
    ]);
    let (_, msg) = wait_pull_error(&ns, "anon", false);
    assert!(
        msg.contains("insufficient_scope: authorization failed"),
        "{msg}"
    );
    // Good credentials: the pod runs.
    kubectl_ok(&[
        "create",
        "secret",
        "docker-registry",
        "tok",
        "-n",
        &ns,
        &format!("--docker-server={reg}"),
        &format!("--docker-username={user}"),
        &format!("--docker-password={pass}"),
    ]);
    kubectl_ok(&[
        "run",
        "authed",
        "-n",
        &ns,
        "--image",
        &image,
        "--image-pull-policy=Always",
        "--overrides",
        r#"{"spec":{"imagePullSecrets":[{"name":"tok"}],"nodeSelector":{"kubernetes.io/hostname":"lab-k133-cd21"}}}"#,
    ]);
    wait_for("authed pod Running", 60, || {
        let p = json(&["get", "pod", "authed", "-n", &ns]);
        (p["status"]["phase"] == "Running").then_some(())
    });
    delete_ns(&ns);
}

#[test]
fn audit_log_records_dry_run_and_real_writes() {
    let log = env("PULLFIX_LAB_AUDIT_LOG");
    let ns = unique_ns("audit");
    kubectl_ok(&["create", "namespace", &ns]);
    kubectl_ok(&[
        "create",
        "configmap",
        "dry",
        "-n",
        &ns,
        "--from-literal=a=b",
        "--dry-run=server",
    ]);
    kubectl_ok(&[
        "create",
        "configmap",
        "real",
        "-n",
        &ns,
        "--from-literal=a=b",
    ]);
    let text = std::fs::read_to_string(&log).expect("read audit log");
    let creates: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| {
            e["verb"] == "create"
                && e["user"]["username"] == "lab-admin"
                && e["objectRef"]["namespace"] == ns.as_str()
                && e["objectRef"]["resource"] == "configmaps"
        })
        .collect();
    let dry: Vec<_> = creates
        .iter()
        .filter(|e| {
            e["requestURI"]
                .as_str()
                .unwrap_or("")
                .contains("dryRun=All")
        })
        .collect();
    assert_eq!(dry.len(), 1, "{creates:?}");
    assert_eq!(creates.len(), 2, "{creates:?}");
    delete_ns(&ns);
}

#[test]
fn restricted_identities() {
    let oncall = env("PULLFIX_LAB_KUBECONFIG_ONCALL");
    let reader = env("PULLFIX_LAB_KUBECONFIG_SECRETS_READER");
    let can = |kc: &str, args: &[&str]| {
        let mut all = vec!["--kubeconfig", kc, "auth", "can-i"];
        all.extend(args);
        String::from_utf8_lossy(&kubectl(&all).stdout)
            .trim()
            .to_string()
    };
    assert_eq!(can(&oncall, &["list", "pods", "-A"]), "yes");
    assert_eq!(can(&oncall, &["get", "events", "-n", "default"]), "yes");
    assert_eq!(can(&oncall, &["get", "secrets", "-n", "default"]), "no");
    assert_eq!(can(&reader, &["get", "secrets", "-n", "default"]), "yes");
    assert_eq!(
        can(&reader, &["patch", "deployments", "-n", "default"]),
        "no"
    );
}
