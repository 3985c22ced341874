//! The lab's real node, `lab-real` (a kubelet built from Debian's
//! kubernetes source on Debian's containerd and runc): every cause the lab
//! knows is pulled for real; `diagnose` must name it from what the real
//! kubelet and runtime wrote, and `fix --yes` must take the workload to
//! Available as the real kubelet reports it.
//!
//! With `PULLFIX_RECORD_FIXTURES=1` each scenario's real texts are written
//! to `tests/fixtures/real/…` (the unit test `fixtures::real_texts_classify`
//! keeps the proof where no real node runs). When the lab was brought up
//! with `PULLFIX_LAB_REAL_NODE=0`, each test says it was skipped, and
//! `scripts/test` says so in its summary.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::fix::text;
use crate::lab::{
    delete_ns, env, events_for, json, kubectl, kubectl_ok, scenario, unique_ns, wait_for,
};

const NODE: &str = "lab-real";

/// The real node's name, or None (and a line on stderr) when the lab was
/// brought up without it.
fn real_node() -> Option<&'static str> {
    let v = env("PULLFIX_LAB_REAL_NODE");
    if v == "skipped" {
        eprintln!("SKIPPED: the lab runs without its real node (PULLFIX_LAB_REAL_NODE=0)");
        return None;
    }
    assert_eq!(v, NODE, "PULLFIX_LAB_REAL_NODE");
    Some(NODE)
}

/// The plugin with the lab's registry routing, `stdin` fed in.
fn pullfix(args: &[&str], stdin: &str) -> Output {
    crate::fix::pullfix_in(args, stdin, &[])
}

/// What the real node wrote for one failing container.
struct Real {
    pod: String,
    /// The `Failed to pull image "…": ` event's tail (the ErrImagePull text).
    pull_error: String,
    /// The waiting reason and message when last read.
    waiting: (String, String),
    events: Vec<(String, String)>,
}

/// Waits (real backoff: up to 150 s) until a pod in `ns` has `container`
/// waiting on a pull failure, and reads what the real kubelet wrote.
fn real_failure(ns: &str, container: &str, init: bool, reasons: &[&str]) -> Real {
    real_failure_where(NODE, ns, None, container, init, reasons)
}

/// The same on another (simulated) node.
fn real_failure_on(ns: &str, node: &str, container: &str) -> Real {
    real_failure_where(
        node,
        ns,
        None,
        container,
        false,
        &["ErrImagePull", "ImagePullBackOff"],
    )
}

/// The same, for the pods of Deployment `app` (label `app=<app>`).
fn real_failure_of(ns: &str, app: &str, container: &str) -> Real {
    real_failure_where(
        NODE,
        ns,
        Some(app),
        container,
        false,
        &["ErrImagePull", "ImagePullBackOff"],
    )
}

fn real_failure_where(
    node: &str,
    ns: &str,
    app: Option<&str>,
    container: &str,
    init: bool,
    reasons: &[&str],
) -> Real {
    let key = if init {
        "initContainerStatuses"
    } else {
        "containerStatuses"
    };
    let path = if init {
        format!("spec.initContainers{{{container}}}")
    } else {
        format!("spec.containers{{{container}}}")
    };
    wait_for(
        &format!("{ns}: {container} on {node} waiting {reasons:?}"),
        150,
        || {
            let selector = app.map(|a| format!("app={a}")).unwrap_or_default();
            let pods = json(&["get", "pods", "-n", ns, "-l", &selector]);
            for pod in pods["items"].as_array()? {
                let name = pod["metadata"]["name"].as_str()?;
                if pod["spec"]["nodeName"] != node {
                    continue;
                }
                let Some(cs) = pod["status"][key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|cs| cs["name"] == container)
                else {
                    continue;
                };
                let w = &cs["state"]["waiting"];
                let reason = w["reason"].as_str().unwrap_or_default();
                if !reasons.contains(&reason) {
                    continue;
                }
                let all_events = events_for(ns, name);
                let events: Vec<(String, String)> = all_events
                    .iter()
                    .filter(|e| e["source"]["component"] == "kubelet")
                    .map(|e| {
                        (
                            e["reason"].as_str().unwrap_or_default().to_string(),
                            e["message"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect();
                let pull_error = all_events
                    .iter()
                    .filter(|e| {
                        e["reason"] == "Failed" && e["involvedObject"]["fieldPath"] == path.as_str()
                    })
                    .filter_map(|e| {
                        let m = e["message"].as_str()?;
                        m.strip_prefix("Failed to pull image \"")?
                            .split_once("\": ")
                            .map(|(_, err)| err.to_string())
                    })
                    .next();
                // ErrImagePull's own text is in the event; the others (InvalidImageName,
                // ErrImageNeverPull) have none.
                let pull_error = match pull_error {
                    Some(e) => e,
                    None if reason == "ErrImagePull" || reason == "ImagePullBackOff" => continue,
                    None => String::new(),
                };
                return Some(Real {
                    pod: name.to_string(),
                    pull_error,
                    waiting: (
                        reason.to_string(),
                        w["message"].as_str().unwrap_or_default().to_string(),
                    ),
                    events,
                });
            }
            None
        },
    )
}

/// Names that change per run (namespace, pod, registry ports) as
/// placeholders (`{ns}`, `{pod}`, `{registry}`...).
fn scrubber(pod: &str, ns: &str) -> impl Fn(&str) -> String {
    let mut names: Vec<(String, &'static str)> =
        vec![(pod.to_string(), "{pod}"), (ns.to_string(), "{ns}")];
    for (var, placeholder) in [
        ("PULLFIX_LAB_REGISTRY", "{registry}"),
        ("PULLFIX_LAB_TOKEN_REGISTRY", "{token_registry}"),
        ("PULLFIX_LAB_ANON_REGISTRY", "{anon_registry}"),
        ("PULLFIX_LAB_UNTRUSTED_REGISTRY", "{untrusted_registry}"),
        ("PULLFIX_LAB_ECR_REGISTRY", "{ecr_registry}"),
        ("PULLFIX_LAB_HUB_STUB", "{hub_stub}"),
        ("PULLFIX_LAB_TOKEN_ISSUER", "{token_issuer}"),
    ] {
        if let Ok(v) = std::env::var(var) {
            names.push((v, placeholder));
        }
    }
    // Longest first, so a registry's address is replaced before a prefix of it.
    names.sort_by_key(|(v, _)| std::cmp::Reverse(v.len()));
    move |s: &str| {
        let mut s = s.to_string();
        for (v, p) in &names {
            s = s.replace(v.as_str(), p);
        }
        s
    }
}

/// Writes the real texts as a fixture when PULLFIX_RECORD_FIXTURES=1, with
/// [`scrubber`]'s placeholders.
fn record(id: &str, ns: &str, cause: &str, real: &Real) {
    if std::env::var("PULLFIX_RECORD_FIXTURES").as_deref() != Ok("1") {
        return;
    }
    let scrub = scrubber(&real.pod, ns);
    let node = json(&["get", "node", NODE]);
    let kubelet = node["status"]["nodeInfo"]["kubeletVersion"]
        .as_str()
        .unwrap_or("unknown")
        .to_string();
    let runtime = node["status"]["nodeInfo"]["containerRuntimeVersion"]
        .as_str()
        .unwrap_or("unknown")
        .replace("://", "-");
    // The kubelet's own log lines about this pod's pulls, without klog's
    // time and thread header.
    let log = std::fs::read_to_string(format!("{}/logs/kubelet-real.log", env("PULLFIX_LAB_DIR")))
        .unwrap_or_default();
    let mut kubelet_log: Vec<String> = Vec::new();
    let image = real
        .pull_error
        .split('"')
        .nth(1)
        .map(|i| i.rsplit_once(':').map_or(i, |(repo, _)| repo).to_string())
        .unwrap_or_default();
    for line in log.lines() {
        let lower = line.to_ascii_lowercase();
        let about_pod = line.contains(real.pod.as_str())
            && (lower.contains("failed to pull")
                || lower.contains("pull secret")
                || lower.contains("errimagepull"));
        let provider = id.starts_with("provider-")
            && lower.contains("credential provider")
            && (line.contains(&image) || lower.contains("stderr:"));
        if !(about_pod || provider) {
            continue;
        }
        let mut body = line.split_once("] ").map_or(line, |(_, b)| b).to_string();
        // The container's whole spec, dumped by kuberuntime: not the point.
        if let (Some(i), Some(j)) = (
            body.find("&Container{"),
            body.find("} start failed in pod "),
        ) {
            body = format!("{}&Container{{…}}{}", &body[..i], &body[j + 1..]);
        }
        let body = body.as_str();
        let level = line.chars().next().unwrap_or('?');
        let l = format!("{level} {}", scrub(body));
        if !kubelet_log.contains(&l) {
            kubelet_log.push(l);
        }
    }
    kubelet_log.truncate(6);
    let doc = json!({
        "scenario": id,
        "kubelet_log": kubelet_log,
        "node": {"kubeletVersion": kubelet, "containerRuntimeVersion": runtime},
        "cause": cause,
        "pull_error": scrub(&real.pull_error),
        "waiting": {"reason": real.waiting.0, "message": scrub(&real.waiting.1)},
        "events": real.events.iter().map(|(r, m)| json!({"reason": r, "message": scrub(m)})).collect::<Vec<_>>(),
    });
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/real")
        .join(format!("kubelet-{kubelet}"))
        .join(runtime);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("{id}.json")),
        serde_json::to_string_pretty(&doc).unwrap() + "\n",
    )
    .unwrap();
}

/// `diagnose -n NS -o json` (exit 1: failures found); `no_probe` keeps it to
/// what the cluster shows, so the cause comes from the real node's texts.
fn diagnose(ns: &str, no_probe: bool) -> Value {
    let mut args = vec!["diagnose", "-n", ns, "-o", "json"];
    if no_probe {
        args.push("--no-probe");
    }
    let out = pullfix(&args, "");
    assert_eq!(
        out.status.code(),
        Some(1),
        "diagnose -n {ns}:\n{}",
        text(&out)
    );
    serde_json::from_slice(&out.stdout).expect("diagnose -o json")
}

fn finding<'a>(report: &'a Value, container: &str) -> &'a Value {
    finding_where(report, |f| f["container"] == container, container)
}

/// The finding of the workload named `name`.
fn finding_of<'a>(report: &'a Value, name: &str) -> &'a Value {
    finding_where(report, |f| f["workload"]["name"] == name, name)
}

fn finding_where<'a>(report: &'a Value, is: impl Fn(&Value) -> bool, what: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| is(f))
        .unwrap_or_else(|| panic!("no finding for {what}: {report:#}"))
}

/// Runs `fix --yes` and waits until the Deployment is Available with every
/// replica ready on the real node.
fn fix_on_real_node(ns: &str, deploy: &str, extra: &[&str], stdin: &str) {
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    let target = format!("deploy/{deploy}");
    let mut args = vec![
        "fix",
        target.as_str(),
        "-n",
        ns,
        "--yes",
        "--timeout",
        "150s",
        "--backup-dir",
        backups.to_str().unwrap(),
    ];
    args.extend(extra);
    let out = pullfix(&args, stdin);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "fix {target} -n {ns}:\n{t}");
    assert!(t.contains("resolved:"), "{t}");
    let d = json(&["get", "deployment", deploy, "-n", ns]);
    let want = d["spec"]["replicas"].as_i64().unwrap_or(1);
    assert_eq!(d["status"]["availableReplicas"], want, "{d:#}");
    let pods = json(&["get", "pods", "-n", ns, "-l", &format!("app={deploy}")]);
    let running: Vec<&Value> = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p["spec"]["nodeName"] == NODE
                && p["status"]["phase"] == "Running"
                && p["metadata"]["deletionTimestamp"].is_null()
        })
        .collect();
    assert!(
        running.len() as i64 >= want,
        "the real kubelet runs the fixed pods: {pods:#}"
    );
}

/// One lab scenario on the real node: the cause from the real texts (with
/// and without probes), recorded, then fixed when `fix` says how.
fn case(id: &str, container: &str, init: bool, cause: &str, fix: Option<(&str, &[&str])>) {
    let ns = scenario(id, Some(NODE));
    let real = real_failure(&ns, container, init, &["ErrImagePull", "ImagePullBackOff"]);
    record(id, &ns, cause, &real);
    let f = finding(&diagnose(&ns, true), container).clone();
    assert_eq!(
        f["cause"], cause,
        "{id}: from the real node's text {:?}: {f:#}",
        real.pull_error
    );
    let f = finding(&diagnose(&ns, false), container).clone();
    assert_eq!(f["cause"], cause, "{id} (with probes): {f:#}");
    if let Some((deploy, extra)) = fix {
        let password = env("PULLFIX_LAB_REGISTRY_PASSWORD") + "\n";
        fix_on_real_node(&ns, deploy, extra, &password);
    }
    delete_ns(&ns);
}

const CREDENTIALS: &[&str] = &["--username", "pullfix", "--password-stdin"];

#[test]
fn real_wrong_tag_and_missing_repository() {
    if real_node().is_none() {
        return;
    }
    let reg = env("PULLFIX_LAB_REGISTRY");
    let image = format!("--image={reg}/team/checkout:v2.1.0");
    case(
        "wrong-tag",
        "checkout",
        false,
        "image-not-found",
        Some(("checkout", &[image.as_str()])),
    );
    case(
        "init-container",
        "migrate",
        true,
        "image-not-found",
        Some(("checkout", &[])),
    );
    case(
        "repo-not-found",
        "ghost",
        false,
        "repository-not-found",
        None,
    );
}

#[test]
fn real_credentials() {
    if real_node().is_none() {
        return;
    }
    case(
        "no-pull-secrets",
        "checkout",
        false,
        "credentials-missing",
        Some(("checkout", CREDENTIALS)),
    );
    case(
        "rotated-password",
        "checkout",
        false,
        "credentials-rejected",
        Some(("checkout", CREDENTIALS)),
    );
    case(
        "secret-missing",
        "checkout",
        false,
        "credentials-missing",
        Some(("checkout", CREDENTIALS)),
    );
    case(
        "wrong-registry-key",
        "checkout",
        false,
        "credentials-missing",
        Some(("checkout", CREDENTIALS)),
    );
    case(
        "sa-secret-only",
        "checkout",
        false,
        "credentials-missing",
        Some(("checkout", &["--attach-to", "service-account"])),
    );
    case("access-denied", "app", false, "access-denied", None);
}

#[test]
fn real_expired_ecr_token() {
    if real_node().is_none() {
        return;
    }
    case(
        "ecr-expired",
        "checkout",
        false,
        "credentials-expired",
        Some(("checkout", &[])),
    );
}

#[test]
fn real_unreachable_and_tls() {
    if real_node().is_none() {
        return;
    }
    case(
        "unreachable-dns",
        "checkout",
        false,
        "registry-unreachable",
        None,
    );
    case(
        "unreachable-refused",
        "checkout",
        false,
        "registry-unreachable",
        None,
    );
    case(
        "unreachable-timeout",
        "checkout",
        false,
        "registry-unreachable",
        None,
    );
    case("tls-unknown-ca", "checkout", false, "tls-error", None);
    case("rate-limited", "web", false, "rate-limited", None);
}

#[test]
fn real_invalid_name_and_never_policy() {
    if real_node().is_none() {
        return;
    }
    let ns = scenario("invalid-name", Some(NODE));
    let real = real_failure(&ns, "checkout", false, &["InvalidImageName"]);
    record("invalid-name", &ns, "invalid-image-name", &real);
    assert_eq!(
        finding(&diagnose(&ns, true), "checkout")["cause"],
        "invalid-image-name"
    );
    delete_ns(&ns);
    let ns = scenario("never-pull", Some(NODE));
    let real = real_failure(&ns, "worker", false, &["ErrImageNeverPull"]);
    record("never-pull", &ns, "never-pull", &real);
    assert_eq!(
        finding(&diagnose(&ns, true), "worker")["cause"],
        "never-pull"
    );
    delete_ns(&ns);
}

/// A Deployment of one replica on the real node, from a raw pod spec.
fn deployment(ns: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": spec,
            },
        },
    })
}

fn pinned(mut spec: Value) -> Value {
    spec["nodeSelector"] = json!({"kubernetes.io/hostname": NODE});
    spec["tolerations"] =
        json!([{"key": "lab.pullfix.dev/real", "operator": "Exists", "effect": "NoSchedule"}]);
    spec["terminationGracePeriodSeconds"] = json!(2);
    spec
}

/// Applies the objects as one `List`.
fn apply(objects: &[Value]) {
    crate::lab::apply(&json!({"apiVersion": "v1", "kind": "List", "items": objects}));
}

fn docker_secret(ns: &str, name: &str, host: &str, user: &str, password: &str) -> Value {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let config = json!({"auths": {host: {"username": user, "password": password, "auth": b64(&format!("{user}:{password}"))}}});
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": name, "namespace": ns},
        "data": {".dockerconfigjson": b64(&config.to_string())},
    })
}

#[test]
fn real_platform_mismatch() {
    if real_node().is_none() {
        return;
    }
    let ns = unique_ns("real-platform");
    kubectl_ok(&["create", "namespace", &ns]);
    let image = format!("{}/team/armonly:1.0", env("PULLFIX_LAB_ANON_REGISTRY"));
    apply(&[deployment(
        &ns,
        "armonly",
        pinned(
            json!({"containers": [{"name": "armonly", "image": image, "imagePullPolicy": "Always"}]}),
        ),
    )]);
    let real = real_failure(&ns, "armonly", false, &["ErrImagePull", "ImagePullBackOff"]);
    record("platform-mismatch", &ns, "platform-mismatch", &real);
    assert_eq!(
        finding(&diagnose(&ns, true), "armonly")["cause"],
        "platform-mismatch",
        "{}",
        real.pull_error
    );
    delete_ns(&ns);
}

/// The image is cached on the real node: a pod with `IfNotPresent` runs
/// even though its pull secret no longer works, one with `Always` fails;
/// and a Running pod whose container restarts cannot pull it again.
#[test]
fn real_cached_image_masks_a_broken_secret() {
    if real_node().is_none() {
        return;
    }
    let reg = env("PULLFIX_LAB_REGISTRY");
    let password = env("PULLFIX_LAB_REGISTRY_PASSWORD");
    let ns = unique_ns("real-cache");
    kubectl_ok(&["create", "namespace", &ns]);
    // v2.1.1 is pulled by no other real-node test: this one owns its cache state.
    let image = format!("{reg}/team/checkout:v2.1.1");
    let spec = |policy: &str| {
        pinned(json!({
            "imagePullSecrets": [{"name": "regcred"}],
            "containers": [{"name": "checkout", "image": image, "imagePullPolicy": policy}],
        }))
    };
    apply(&[
        docker_secret(&ns, "regcred", &reg, "pullfix", &password),
        deployment(&ns, "first", spec("Always")),
    ]);
    wait_for("the first pull on the real node", 150, || {
        let d = json(&["get", "deployment", "first", "-n", &ns]);
        (d["status"]["availableReplicas"] == 1).then_some(())
    });
    // The password rotates; the secret keeps the old one.
    apply(&[docker_secret(
        &ns,
        "regcred",
        &reg,
        "pullfix",
        "rotated-away",
    )]);
    apply(&[
        deployment(&ns, "cached", spec("IfNotPresent")),
        deployment(&ns, "always", spec("Always")),
    ]);
    wait_for(
        "the IfNotPresent pod running from the node's cache",
        150,
        || {
            let d = json(&["get", "deployment", "cached", "-n", &ns]);
            (d["status"]["availableReplicas"] == 1).then_some(())
        },
    );
    let real = real_failure_of(&ns, "always", "checkout");
    record("ifnotpresent-masking", &ns, "credentials-rejected", &real);
    let report = diagnose(&ns, true);
    let f = finding_of(&report, "always");
    assert_eq!(f["cause"], "credentials-rejected", "{f:#}");

    // The first pod's container exits (its process gets SIGTERM from the
    // node): the kubelet restarts it, must pull (Always), and cannot.
    let pods = json(&["get", "pods", "-n", &ns, "-l", "app=first"]);
    let pod = pods["items"][0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let id = pods["items"][0]["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .unwrap()
        .trim_start_matches("containerd://")
        .to_string();
    let runc_root = format!("{}/real/runc/k8s.io", env("PULLFIX_LAB_DIR"));
    let out = Command::new("runc")
        .args(["--root", &runc_root, "kill", &id, "TERM"])
        .output()
        .unwrap();
    assert!(out.status.success(), "runc kill: {}", text(&out));
    wait_for("the restarted container failing to pull", 150, || {
        let p = json(&["get", "pod", &pod, "-n", &ns]);
        let cs = &p["status"]["containerStatuses"][0];
        (p["status"]["phase"] == "Running"
            && matches!(
                cs["state"]["waiting"]["reason"].as_str(),
                Some("ErrImagePull" | "ImagePullBackOff")
            ))
        .then_some(())
    });
    let out = pullfix(&["scan", "-n", &ns, "-o", "json"], "");
    let scan: Value = serde_json::from_slice(&out.stdout).expect("scan -o json");
    let names: Vec<&str> = scan["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["workload"]["name"].as_str())
        .collect();
    assert!(
        names.contains(&"first"),
        "the Running pod is found: {scan:#}"
    );
    let _ = kubectl(&["delete", "namespace", &ns, "--wait=false"]);
}

/// The node's credential provider (the kubelet's exec plugin, in the role
/// of ecr-credential-provider) pulls from the lab's ECR host with no pull
/// secret anywhere; when the provider is denied or fails, the kubelet
/// pulls anonymously and the registry answers 401.
#[test]
fn real_node_credential_provider() {
    if real_node().is_none() {
        return;
    }
    let ns = unique_ns("real-provider");
    kubectl_ok(&["create", "namespace", &ns]);
    let ecr_host = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
    let spec = |repo: &str, tag: &str| {
        // Always: another test's pull may have cached the image on the node.
        pinned(
            json!({"containers": [{"name": "app", "image": format!("{ecr_host}/{repo}:{tag}"), "imagePullPolicy": "Always"}]}),
        )
    };
    // The lab's provider: team/worker gets a token, team/multi is denied,
    // anything else finds no AWS endpoint (scripts/lab.d/realnode.sh).
    apply(&[
        deployment(&ns, "works", spec("team/worker", "1.4.2")),
        deployment(&ns, "denied", spec("team/multi", "1.0")),
        deployment(&ns, "fails", spec("team/checkout", "v2.1.0")),
    ]);
    wait_for("the provider's token pulling for real", 150, || {
        let d = json(&["get", "deployment", "works", "-n", &ns]);
        (d["status"]["availableReplicas"] == 1).then_some(())
    });
    for (deploy, id) in [("denied", "provider-denied"), ("fails", "provider-fails")] {
        let real = real_failure_of(&ns, deploy, "app");
        record(id, &ns, "credentials-missing", &real);
        assert!(
            real.pull_error.contains("401 Unauthorized"),
            "{id}: the kubelet pulls anonymously: {}",
            real.pull_error
        );
    }
    delete_ns(&ns);
}

/// The simulated kubelet's `kubelet 1.20 + containerd 1.6` profile
/// (node lab-k120-cd16) writes what the real node wrote, byte for byte
/// apart from names: the host containerd connected to and the endpoint a URL names (the real containerd goes to
/// the lab's mirror address, `?ns=` naming the original host), the dialed
/// address and the resolver. Needs no real node: it reads the fixtures.
#[test]
fn the_simulated_1_20_containerd_1_6_profile_says_what_the_real_node_said() {
    let normalize = |s: &str| {
        let mut out = String::new();
        let mut rest = s;
        // `Head "https://HOST/v2/…?ns=…"` → `Head "https://{endpoint}/v2/…"`
        while let Some(i) = rest.find("Head \"https://") {
            let (a, b) = rest.split_at(i + "Head \"https://".len());
            out.push_str(a);
            out.push_str("{endpoint}");
            let b = &b[b.find('/').unwrap_or(0)..];
            let end = b.find('"').unwrap_or(b.len());
            let path = &b[..end];
            out.push_str(path.split('?').next().unwrap_or(path));
            rest = &b[end..];
        }
        out.push_str(rest);
        let mut s = out;
        for (marker, end, placeholder) in [
            ("dial tcp ", ": connect", "{addr}"),
            ("pulling from host ", " failed with status code", "{host}"),
            (" on ", ":53: no such host", "{resolver}"),
        ] {
            if let (Some(i), Some(j)) = (s.find(marker), s.find(end))
                && i + marker.len() <= j
            {
                s = format!("{}{marker}{placeholder}{}", &s[..i], &s[j..]);
            }
        }
        s
    };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/real/kubelet-v1.20.2/containerd-1.6.20");
    let cases = [
        ("wrong-tag", "checkout"),
        ("rotated-password", "checkout"),
        ("no-pull-secrets", "checkout"),
        ("secret-missing", "checkout"),
        ("access-denied", "app"),
        ("rate-limited", "web"),
        ("tls-unknown-ca", "checkout"),
        ("unreachable-dns", "checkout"),
        ("unreachable-refused", "checkout"),
        ("unreachable-timeout", "checkout"),
        ("ecr-expired", "checkout"),
    ];
    let namespaces: Vec<(String, &str, &str)> = cases
        .iter()
        .map(|(id, c)| (scenario(id, Some("lab-k120-cd16")), *id, *c))
        .collect();
    let mut differ = Vec::new();
    for (ns, id, container) in &namespaces {
        let sim = real_failure_on(ns, "lab-k120-cd16", container);
        let scrub = scrubber(&sim.pod, ns);
        let fixture: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{id}.json"))).expect("fixture"),
        )
        .unwrap();
        let real = normalize(fixture["pull_error"].as_str().unwrap());
        let ours = normalize(&scrub(&sim.pull_error));
        if ours != real {
            differ.push(format!("{id}:\n  real:      {real}\n  simulated: {ours}"));
        }
        let backoff = scrub(&sim.waiting.1);
        if sim.waiting.0 == "ImagePullBackOff" {
            assert_eq!(
                backoff,
                fixture["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|e| e["reason"] == "BackOff")
                    .and_then(|e| e["message"].as_str())
                    .map_or(backoff.clone(), str::to_string),
                "{id}"
            );
        }
        delete_ns(ns);
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}

/// The token registry (a bearer-token dance through the lab's issuer): an
/// anonymous pull of its private repository, a wrong password, and the
/// right one, on the real node.
#[test]
fn real_token_registry() {
    if real_node().is_none() {
        return;
    }
    let reg = env("PULLFIX_LAB_TOKEN_REGISTRY");
    let user = env("PULLFIX_LAB_TOKEN_USER");
    let ns = unique_ns("real-token");
    kubectl_ok(&["create", "namespace", &ns]);
    let image = format!("{reg}/team/worker:1.4.2");
    let spec = |secret: Option<&str>| {
        let mut s = pinned(
            json!({"containers": [{"name": "app", "image": image, "imagePullPolicy": "Always"}]}),
        );
        if let Some(name) = secret {
            s["imagePullSecrets"] = json!([{"name": name}]);
        }
        s
    };
    apply(&[
        docker_secret(&ns, "wrong", &reg, &user, "not-the-password"),
        docker_secret(&ns, "good", &reg, &user, &env("PULLFIX_LAB_TOKEN_PASSWORD")),
        deployment(&ns, "anon", spec(None)),
        deployment(&ns, "wrongpass", spec(Some("wrong"))),
        deployment(&ns, "good", spec(Some("good"))),
    ]);
    wait_for(
        "the token registry pulling with the right password",
        150,
        || {
            let d = json(&["get", "deployment", "good", "-n", &ns]);
            (d["status"]["availableReplicas"] == 1).then_some(())
        },
    );
    for (deploy, id, cause, text) in [
        (
            "anon",
            "token-anonymous",
            "credentials-missing",
            "insufficient_scope: authorization failed",
        ),
        (
            "wrongpass",
            "token-wrong-password",
            "credentials-rejected",
            "failed to fetch oauth token: unexpected status: 401 Unauthorized",
        ),
    ] {
        let real = real_failure_of(&ns, deploy, "app");
        record(id, &ns, cause, &real);
        assert!(real.pull_error.contains(text), "{id}: {}", real.pull_error);
        let r = diagnose(&ns, true);
        let f = finding_of(&r, deploy);
        assert_eq!(f["cause"], cause, "{id}: {f:#}");
    }
    delete_ns(&ns);
}

/// containers/image (the pull library CRI-O uses), run for real with
/// Debian's `skopeo` against the lab's registries: its texts for the same
/// causes are recorded (`tests/fixtures/real/skopeo-1.9.3/containers-image`)
/// for the classifier's unit test, and their stable signals checked here.
/// Needs no real node.
#[test]
fn containers_image_texts_from_skopeo() {
    if Command::new("skopeo").arg("--version").output().is_err() {
        panic!("skopeo is missing: scripts/lab up installs it (LAB_RN_PACKAGES)");
    }
    let certs = tempfile::tempdir().unwrap();
    std::fs::copy(env("PULLFIX_LAB_CA"), certs.path().join("ca.crt")).unwrap();
    let reg = env("PULLFIX_LAB_REGISTRY");
    let token = env("PULLFIX_LAB_TOKEN_REGISTRY");
    let password = env("PULLFIX_LAB_REGISTRY_PASSWORD");
    let good = format!("pullfix:{password}");
    // The address nothing listens on, as the lab maps registry.unreachable.example.
    let refused = env("PULLFIX_LAB_HOST_ALIASES")
        .split(',')
        .find_map(|p| p.strip_prefix("registry.unreachable.example="))
        .expect("registry.unreachable.example in PULLFIX_LAB_HOST_ALIASES")
        .to_string();
    let cases: Vec<(&str, String, Option<String>, &str, &str)> = vec![
        (
            "wrong-tag",
            format!("{reg}/team/checkout:v2.1.9"),
            Some(good),
            "image-not-found",
            "manifest unknown",
        ),
        (
            "no-pull-secrets",
            format!("{reg}/team/checkout:v2.1.0"),
            None,
            "credentials-missing",
            "unauthorized: authentication required",
        ),
        (
            "rotated-password",
            format!("{reg}/team/checkout:v2.1.0"),
            Some("pullfix:wrong".into()),
            "credentials-rejected",
            "unauthorized: authentication required",
        ),
        (
            "token-anonymous",
            format!("{token}/team/worker:1.4.2"),
            None,
            "credentials-missing",
            "denied: requested access to the resource is denied",
        ),
        (
            "token-wrong-password",
            format!("{token}/team/worker:1.4.2"),
            Some("tokenuser:wrong".into()),
            "credentials-rejected",
            "unable to retrieve auth token: invalid username/password",
        ),
        (
            "tls-unknown-ca",
            format!(
                "{}/team/checkout:v2.1.0",
                env("PULLFIX_LAB_UNTRUSTED_REGISTRY")
            ),
            None,
            "tls-error",
            "x509: certificate signed by unknown authority",
        ),
        (
            "unreachable-refused",
            format!("{refused}/team/checkout:v2.1.0"),
            None,
            "registry-unreachable",
            "connect: connection refused",
        ),
        (
            "unreachable-dns",
            "registry.nxdomain.example/team/checkout:v2.1.0".into(),
            None,
            "registry-unreachable",
            "no such host",
        ),
    ];
    let version = String::from_utf8_lossy(
        &Command::new("skopeo")
            .arg("--version")
            .output()
            .unwrap()
            .stdout,
    )
    .split_whitespace()
    .nth(2)
    .unwrap_or("unknown")
    .to_string();
    let scrub = scrubber("-", "-");
    for (id, image, creds, cause, signal) in cases {
        let mut cmd = Command::new("timeout");
        cmd.args(["20", "skopeo", "inspect", "--cert-dir"])
            .arg(certs.path())
            .arg(format!("docker://{image}"));
        if let Some(c) = &creds {
            cmd.args(["--creds", c]);
        }
        let out = cmd.output().unwrap();
        assert!(
            !out.status.success(),
            "{id}: skopeo inspect {image} succeeded"
        );
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            !stderr.contains(&password),
            "{id}: skopeo printed the password"
        );
        // logrus: time="…" level=fatal msg="Error parsing image name \"docker://R\": TEXT"
        let msg = stderr
            .split_once("msg=\"")
            .map(|(_, m)| m.trim_end().trim_end_matches('"').to_string())
            .unwrap_or(stderr.clone());
        let msg = msg.replace("\\n", "\n").replace("\\\"", "\"");
        let text = msg
            .split_once("\": ")
            .filter(|(head, _)| head.starts_with("Error parsing image name"))
            .map_or(msg.clone(), |(_, t)| t.to_string());
        assert!(text.contains(signal), "{id}: {text}");
        if std::env::var("PULLFIX_RECORD_FIXTURES").as_deref() == Ok("1") {
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!(
                "tests/fixtures/real/skopeo-{version}/containers-image"
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let doc = json!({
                "scenario": id,
                "cause": cause,
                "source": format!("skopeo {version} inspect (containers/image); skopeo's own `Error parsing image name \"docker://R\": ` removed"),
                "pull_error": scrub(&text),
                "waiting": {"reason": "ErrImagePull", "message": scrub(&text)},
                "events": [],
            });
            std::fs::write(
                dir.join(format!("{id}.json")),
                serde_json::to_string_pretty(&doc).unwrap() + "\n",
            )
            .unwrap();
        }
    }
}

/// Pull faults that are not the registry's answer, on the real node,
/// through the lab's fault proxy (`scripts/lab.d/faultproxy.py`): a layer
/// cut off mid-download, and one that does not match its digest. Neither is
/// a credential or an unreachable registry.
#[test]
fn real_pull_faults() {
    if real_node().is_none() {
        return;
    }
    let proxy = env("PULLFIX_LAB_FAULT_REGISTRY");
    let ns = unique_ns("real-faults");
    kubectl_ok(&["create", "namespace", &ns]);
    let spec = |repo: &str| {
        pinned(
            json!({"containers": [{"name": "app", "image": format!("{proxy}/{repo}:1.0"), "imagePullPolicy": "Always"}]}),
        )
    };
    apply(&[
        deployment(&ns, "cut", spec("faults/cut/app")),
        deployment(&ns, "corrupt", spec("faults/corrupt/app")),
    ]);
    for (deploy, id, cause, text) in [
        (
            "cut",
            "pull-cut-off",
            "pull-interrupted",
            "connection reset by peer",
        ),
        (
            "corrupt",
            "layer-corrupt",
            "layer-corrupt",
            "unexpected commit digest",
        ),
    ] {
        let real = real_failure_of(&ns, deploy, "app");
        record(id, &ns, cause, &real);
        assert!(real.pull_error.contains(text), "{id}: {}", real.pull_error);
        for no_probe in [true, false] {
            let r = diagnose(&ns, no_probe);
            let f = finding_of(&r, deploy);
            assert_eq!(f["cause"], cause, "{id} (no probe: {no_probe}): {f:#}");
        }
    }
    // Nothing in the cluster fixes them: fix says so and writes nothing.
    let out = pullfix(&["fix", "deploy/corrupt", "-n", &ns, "--yes"], "");
    let t = text(&out);
    assert_ne!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("layer-corrupt"), "{t}");
    delete_ns(&ns);
}

/// A registry that speaks only plain HTTP while the node is configured for
/// HTTPS (`registry.plainhttp.example` in the lab's registry routing: the
/// anonymous registry, told `https`): the real containerd's text and the
/// cause.
#[test]
fn real_plain_http_registry() {
    if real_node().is_none() {
        return;
    }
    let ns = unique_ns("real-plain");
    kubectl_ok(&["create", "namespace", &ns]);
    apply(&[deployment(
        &ns,
        "plain",
        pinned(
            json!({"containers": [{"name": "app", "image": "registry.plainhttp.example/team/checkout:v2.1.0", "imagePullPolicy": "Always"}]}),
        ),
    )]);
    let real = real_failure_of(&ns, "plain", "app");
    record("plain-http", &ns, "tls-error", &real);
    assert!(
        real.pull_error
            .contains("http: server gave HTTP response to HTTPS client"),
        "{}",
        real.pull_error
    );
    for no_probe in [true, false] {
        let f = finding(&diagnose(&ns, no_probe), "app").clone();
        assert_eq!(f["cause"], "tls-error", "no probe: {no_probe}: {f:#}");
    }
    delete_ns(&ns);
}
