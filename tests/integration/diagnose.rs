//! `kubectl pullfix scan` and `diagnose` against the lab: every cause and
//! secret problem, under two kubelet/runtime profiles, plus RBAC limits,
//! broken kubeconfigs, an unreachable apiserver and exec credential plugins.

use std::process::{Command, Output};

use serde_json::Value;

use crate::lab::{delete_ns, env, scenario, unique_ns, wait_pull_error, wait_waiting};

/// The two profiles every cause is checked under.
const PROFILES: [&str; 2] = ["lab-k128-cd21", "lab-k127-cd17"];

/// Runs the plugin with the lab's registry knobs (CA, DNS aliases, plain HTTP).
pub(crate) fn pullfix(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubectl-pullfix"))
        .args(args)
        .env("PULLFIX_REGISTRY_HOSTS", env("PULLFIX_LAB_REGISTRY_HOSTS"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run kubectl-pullfix")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `diagnose -n NS -o json`, asserting exit 1 (failures found) and that no
/// credential leaks into the output.
fn diagnose_json(ns: &str, extra: &[&str]) -> Value {
    let mut args = vec!["diagnose", "-n", ns, "-o", "json"];
    args.extend(extra);
    let out = pullfix(&args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "diagnose -n {ns}: {}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    for secret in [
        env("PULLFIX_LAB_REGISTRY_PASSWORD"),
        "old-password-".into(),
        env("PULLFIX_LAB_TOKEN_PASSWORD"),
    ] {
        assert!(
            !text.contains(&secret),
            "a password leaked into diagnose -n {ns} output"
        );
    }
    let v: Value = serde_json::from_str(&text).expect("diagnose -o json parses");
    assert_eq!(v["apiVersion"], "pullfix.dev/v1");
    assert_eq!(v["kind"], "Diagnosis");
    v
}

fn finding<'a>(report: &'a Value, container: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["container"] == container)
        .unwrap_or_else(|| panic!("no finding for container {container}: {report:#}"))
}

fn evidence_text(f: &Value) -> String {
    f["evidence"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["text"].as_str().unwrap_or_default().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn steps_text(f: &Value) -> String {
    f["next_steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            format!(
                "{} {}",
                s["text"].as_str().unwrap_or_default(),
                s["command"].as_str().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Sets up `id` on each profile node, waits for the pull to fail, diagnoses
/// and hands each report to `check`.
fn each_profile(id: &str, container: &str, mut check: impl FnMut(&str, &Value, &Value)) {
    let namespaces: Vec<(String, &str)> = PROFILES
        .iter()
        .map(|node| (scenario(id, Some(node)), *node))
        .collect();
    for (ns, node) in &namespaces {
        wait_pull_error(ns, container, false);
        let report = diagnose_json(ns, &[]);
        let f = finding(&report, container);
        check(node, &report, f);
        delete_ns(ns);
    }
}

#[test]
fn image_not_found_suggests_existing_tags() {
    let reg = env("PULLFIX_LAB_REGISTRY");
    each_profile("wrong-tag", "checkout", |node, _, f| {
        assert_eq!(f["cause"], "image-not-found", "{node}: {f:#}");
        assert_eq!(f["confidence"], "high", "{node}");
        assert_eq!(f["severity"], "P1");
        assert_eq!(f["workload"]["kind"], "Deployment");
        assert!(
            evidence_text(f).contains("did you mean `v2.1.0`"),
            "{node}: {f:#}"
        );
        // Three close tags exist: the advice is a choice (the guided fix's
        // menu), never one of them picked silently.
        let steps = steps_text(f);
        assert!(
            steps.contains("a tag you choose (v2.1.0, v2.1.1, v2.0.3)")
                && steps.contains("kubectl pullfix fix deploy/checkout"),
            "{f:#}"
        );
        assert!(
            !steps.contains(&format!("checkout={reg}/team/checkout:v2.1.0")),
            "{f:#}"
        );
    });
}

#[test]
fn wrong_registry_finds_the_private_copy() {
    let reg = env("PULLFIX_LAB_REGISTRY");
    each_profile("missing-prefix", "checkout", |node, _, f| {
        assert_eq!(f["cause"], "wrong-registry", "{node}: {f:#}");
        assert!(
            evidence_text(f).contains("exists in the private registry (verified"),
            "{f:#}"
        );
        assert!(
            steps_text(f).contains(&format!("checkout={reg}/team/checkout:v2.1.0")),
            "{f:#}"
        );
    });
}

#[test]
fn repository_not_found_and_access_denied() {
    each_profile("repo-not-found", "ghost", |node, _, f| {
        assert_eq!(f["cause"], "repository-not-found", "{node}: {f:#}");
    });
    each_profile("access-denied", "app", |node, _, f| {
        assert_eq!(f["cause"], "access-denied", "{node}: {f:#}");
    });
}

#[test]
fn missing_credentials_and_each_secret_problem() {
    let cases: [(&str, Option<&str>); 5] = [
        ("no-pull-secrets", None),
        ("secret-missing", Some("missing")),
        ("secret-opaque", Some("wrong-type")),
        ("wrong-registry-key", Some("no-matching-entry")),
        ("sa-secret-only", None),
    ];
    for (id, problem) in cases {
        each_profile(id, "checkout", |node, _, f| {
            assert_eq!(f["cause"], "credentials-missing", "{id} on {node}: {f:#}");
            if let Some(p) = problem {
                let problems: Vec<&str> = f["secrets"][0]["problems"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|x| x["problem"].as_str())
                    .collect();
                assert!(problems.contains(&p), "{id}: {problems:?}");
            }
            if id == "wrong-registry-key" {
                let reg = env("PULLFIX_LAB_REGISTRY");
                let host = reg.split(':').next().unwrap();
                assert_eq!(f["secrets"][0]["problems"][0]["closest"], host, "{f:#}");
            }
            if id == "sa-secret-only" {
                // regcred exists and `default` holds it; the pods run as
                // `checkout`: the advice is the plan's (attach regcred), and
                // never names `default` (issue 12).
                let steps = steps_text(f);
                assert!(
                    steps.contains("kubectl patch deploy/checkout")
                        && steps.contains("ServiceAccount")
                        && steps.contains("/checkout"),
                    "{f:#}"
                );
                assert!(!steps.contains("serviceaccount default"), "{f:#}");
            } else {
                assert!(
                    steps_text(f).contains("kubectl create secret docker-registry"),
                    "{f:#}"
                );
            }
        });
    }
}

#[test]
fn a_secret_the_kubelet_cannot_decode_is_named_with_its_entry() {
    each_profile("secret-undecodable", "checkout", |node, _, f| {
        assert_eq!(f["cause"], "credentials-missing", "{node}: {f:#}");
        assert_eq!(f["decision"]["rule"], "secret-undecodable", "{node}: {f:#}");
        assert_eq!(f["confidence"], "high", "{node}: {f:#}");
        let p = &f["secrets"][0]["problems"][0];
        assert_eq!(p["problem"], "kubelet-refuses", "{node}: {f:#}");
        assert_eq!(p["entry"], "mirror.internal.example", "{node}: {f:#}");
        assert_eq!(
            p["error"], "illegal base64 data at input byte 4",
            "{node}: {f:#}"
        );
        // The advice rewrites regcred, never attaches another secret; its
        // create | apply is equivalent (the only other entry is dropped).
        let steps = steps_text(f);
        assert!(
            steps.contains("kubectl create secret docker-registry regcred"),
            "{node}: {f:#}"
        );
        assert!(!steps.contains("not equivalent"), "{node}: {f:#}");
    });
}

#[test]
fn rejected_credentials_and_the_same_secret_elsewhere() {
    each_profile("rotated-password", "checkout", |node, _, f| {
        assert_eq!(f["cause"], "credentials-rejected", "{node}: {f:#}");
        assert_eq!(f["confidence"], "high", "{f:#}");
        assert_eq!(f["secrets"][0]["username"], "pullfix");
        assert_eq!(f["registry"]["with_credential"]["status"], 401, "{f:#}");
    });
    let ns = scenario("stale-secret-many-namespaces", Some(PROFILES[0]));
    wait_pull_error(&ns, "checkout", false);
    let report = diagnose_json(&ns, &[]);
    let others = report["other_namespaces"].as_array().unwrap();
    for sibling in [format!("{ns}-b"), format!("{ns}-c")] {
        assert!(
            others
                .iter()
                .any(|o| o["namespace"] == sibling.as_str() && o["same_credential"] == true),
            "{sibling} not reported: {others:?}"
        );
    }
    for t in [ns.clone(), format!("{ns}-b"), format!("{ns}-c")] {
        delete_ns(&t);
    }
}

#[test]
fn expired_ecr_token_with_failing_refresh_job() {
    for node in PROFILES {
        let ns = scenario("ecr-expired", Some(node));
        wait_pull_error(&ns, "checkout", false);
        // Both refresh Jobs must have failed before their evidence counts.
        crate::lab::wait_for("two failed refresh jobs", 120, || {
            let jobs = crate::lab::json(&["get", "jobs", "-n", &ns]);
            let failed = jobs["items"]
                .as_array()?
                .iter()
                .filter(|j| j["status"]["failed"].as_i64().unwrap_or(0) > 0)
                .count();
            (failed == 2).then_some(())
        });
        let report = diagnose_json(&ns, &[]);
        let f = finding(&report, "checkout");
        check_ecr(node, &report, f);
        delete_ns(&ns);
    }
}

fn check_ecr(node: &str, report: &Value, f: &Value) {
    assert_eq!(f["cause"], "credentials-expired", "{node}: {f:#}");
    assert_eq!(f["secrets"][0]["ecr"]["expired"], true);
    assert_eq!(f["secrets"][0]["ecr"]["basis"], "token");
    assert_eq!(f["ecr"]["image_exists"], true, "{f:#}");
    assert_eq!(f["ecr"]["token_available"], true, "{f:#}");
    let job = &report["refresh_jobs"][0];
    assert_eq!(job["name"], "ecr-token-refresh");
    assert_eq!(job["failed_jobs"].as_array().unwrap().len(), 2, "{job}");
    assert!(
        job["failure_tail"]
            .as_str()
            .unwrap()
            .contains("security token included in the request is expired")
    );
    assert!(steps_text(f).contains("aws ecr get-login-password --region us-east-1"));
}

#[test]
fn unreachable_registries_and_tls() {
    let cases = [
        ("unreachable-dns", "registry-unreachable", "dns"),
        ("unreachable-refused", "registry-unreachable", "refused"),
        ("unreachable-timeout", "registry-unreachable", "timeout"),
        ("tls-unknown-ca", "tls-error", "unknown-authority"),
    ];
    for (id, cause, detail) in cases {
        each_profile(id, "checkout", |node, _, f| {
            assert_eq!(f["cause"], cause, "{id} on {node}: {f:#}");
            assert_eq!(f["detail"], detail, "{id} on {node}: {f:#}");
            // Unreachable from this machine too: said once, as the decision's reason.
            assert_eq!(f["decision"]["rule"], "unreachable-from-both", "{f:#}");
            assert!(
                f["decision"]["because"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("this machine cannot reach the registry either"),
                "{f:#}"
            );
        });
    }
}

#[test]
fn rate_limit_reports_what_is_left() {
    each_profile("rate-limited", "web", |node, _, f| {
        assert_eq!(f["cause"], "rate-limited", "{node}: {f:#}");
        assert_eq!(
            f["registry"]["rate_limit"]["remaining"], "0;w=21600",
            "{f:#}"
        );
    });
}

#[test]
fn invalid_name_never_pull_platform_init_and_masking() {
    for node in PROFILES {
        let ns = scenario("invalid-name", Some(node));
        wait_waiting(&ns, "checkout", "InvalidImageName", false);
        assert_eq!(
            finding(&diagnose_json(&ns, &[]), "checkout")["cause"],
            "invalid-image-name"
        );
        delete_ns(&ns);
        let ns = scenario("never-pull", Some(node));
        wait_waiting(&ns, "worker", "ErrImageNeverPull", false);
        assert_eq!(
            finding(&diagnose_json(&ns, &[]), "worker")["cause"],
            "never-pull"
        );
        delete_ns(&ns);
        let ns = scenario("init-container", Some(node));
        wait_pull_error(&ns, "migrate", true);
        let report = diagnose_json(&ns, &[]);
        let f = finding(&report, "migrate");
        assert_eq!(f["cause"], "image-not-found");
        assert_eq!(f["init_container"], true);
        delete_ns(&ns);
    }
    let ns = scenario("platform-mismatch", None);
    wait_pull_error(&ns, "multi", false);
    assert_eq!(
        finding(&diagnose_json(&ns, &[]), "multi")["cause"],
        "platform-mismatch"
    );
    delete_ns(&ns);
    let ns = scenario("ifnotpresent-masking", None);
    wait_pull_error(&ns, "checkout", false);
    crate::lab::wait_for("the replica on lab-warm running", 120, || {
        let pods = crate::lab::json(&["get", "pods", "-n", &ns]);
        pods["items"]
            .as_array()?
            .iter()
            .find(|p| p["spec"]["nodeName"] == "lab-warm" && p["status"]["phase"] == "Running")?;
        let d = crate::lab::json(&["get", "deployment", "checkout", "-n", &ns]);
        (d["status"]["readyReplicas"].as_i64().unwrap_or(0) >= 1).then_some(())
    });
    let report = diagnose_json(&ns, &[]);
    let f = finding(&report, "checkout");
    assert_eq!(f["cause"], "credentials-rejected", "{f:#}");
    assert!(
        evidence_text(f).contains("lab-warm which already hold the image"),
        "{f:#}"
    );
    delete_ns(&ns);
}

#[test]
fn no_probe_uses_cluster_evidence_only() {
    let ns = scenario("wrong-tag", Some(PROFILES[0]));
    wait_pull_error(&ns, "checkout", false);
    let report = diagnose_json(&ns, &["--no-probe"]);
    let f = finding(&report, "checkout");
    assert_eq!(f["cause"], "image-not-found");
    assert!(
        f.get("registry").is_none(),
        "no probe result expected: {f:#}"
    );
    // Text output, for a person.
    let out = pullfix(&["diagnose", "-n", &ns, "deploy/checkout", "--no-probe"]);
    let text = stdout(&out);
    assert!(text.contains("cause: image-not-found"), "{text}");
    assert!(text.contains("next steps:"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "NO_COLOR output has no escape codes"
    );
    delete_ns(&ns);
}

#[test]
fn scan_groups_by_workload_with_severity() {
    let ns = scenario("ecr-expired", Some(PROFILES[0]));
    wait_pull_error(&ns, "checkout", false);
    let out = pullfix(&["scan", "-n", &ns, "-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["kind"], "Scan");
    let g = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["workload"]["name"] == "checkout")
        .expect("checkout group");
    assert_eq!(g["workload"]["kind"], "Deployment");
    assert_eq!(g["severity"], "P1");
    assert_eq!(g["desired"], 5);
    assert_eq!(g["ready"], 0);
    assert_eq!(g["failing_pods"], 5);
    let text = stdout(&pullfix(&["scan", "-n", &ns]));
    assert!(text.contains("deploy/checkout"), "{text}");
    assert!(
        text.contains("next: kubectl pullfix diagnose deploy/checkout -n"),
        "{text}"
    );
    delete_ns(&ns);
    // Nothing failing: exit 0.
    let empty = unique_ns("empty");
    crate::lab::kubectl_ok(&["create", "namespace", &empty]);
    let out = pullfix(&["scan", "-n", &empty]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("no pod is failing"));
    let out = pullfix(&["diagnose", "deploy/nope", "-n", &empty]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("Deployment") && stderr(&out).contains("not found"),
        "{}",
        stderr(&out)
    );
    delete_ns(&empty);
}

#[test]
fn oncall_without_secret_access_still_gets_a_diagnosis() {
    let ns = scenario("rotated-password", Some(PROFILES[0]));
    wait_pull_error(&ns, "checkout", false);
    let oncall = env("PULLFIX_LAB_KUBECONFIG_ONCALL");
    let out = pullfix(&["--kubeconfig", &oncall, "diagnose", "-n", &ns, "-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let warnings = v["warnings"].to_string();
    assert!(warnings.contains("get secrets"), "{warnings}");
    assert!(warnings.contains("escalate"), "{warnings}");
    assert_eq!(finding(&v, "checkout")["cause"], "credentials-rejected");
    delete_ns(&ns);
}

#[test]
fn broken_kubeconfig_and_unreachable_apiserver_exit_2_with_help() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage");
    std::fs::write(&garbage, "this: [is not: a kubeconfig").unwrap();
    let out = pullfix(&["--kubeconfig", garbage.to_str().unwrap(), "scan", "-A"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!(
            "error: kubeconfig {}: not a kubeconfig",
            garbage.display()
        )),
        "{err}"
    );
    assert!(err.contains("help:"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let missing = pullfix(&["--kubeconfig", "/nonexistent/kubeconfig", "scan"]);
    assert_eq!(missing.status.code(), Some(2));

    let down = dir.path().join("down");
    std::fs::write(
        &down,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n    insecure-skip-tls-verify: true\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\nusers:\n- name: u\n  user: {token: abc}\n",
    )
    .unwrap();
    let out = pullfix(&[
        "--kubeconfig",
        down.to_str().unwrap(),
        "--request-timeout",
        "5s",
        "scan",
        "-A",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("list pods all namespaces") || err.contains("list pods"),
        "{err}"
    );
    assert!(err.contains("help: the API server is unreachable"), "{err}");
}

#[test]
fn exec_credential_plugin_runs_once_per_invocation() {
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("count");
    let plugin = dir.path().join("get-token");
    let token = std::fs::read_to_string(env("PULLFIX_LAB_DIR") + "/tokens.csv")
        .unwrap()
        .lines()
        .find(|l| l.contains("lab-admin"))
        .and_then(|l| l.split(',').next())
        .unwrap()
        .to_string();
    std::fs::write(
        &plugin,
        format!(
            "#!/bin/sh\necho x >> {}\nprintf '{{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{token}\"}}}}'\n",
            counter.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .args(["+x", plugin.to_str().unwrap()])
        .status()
        .unwrap();
    let admin: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(env("KUBECONFIG")).unwrap()).unwrap();
    let cluster = &admin["clusters"][0]["cluster"];
    let kc = serde_json::json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "lab", "cluster": cluster}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "exec"}}],
        "current-context": "lab",
        "users": [{"name": "exec", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": plugin.to_str().unwrap(), "interactiveMode": "Never"}}}],
    });
    let path = dir.path().join("kubeconfig");
    std::fs::write(&path, serde_saphyr::to_string(&kc).unwrap()).unwrap();
    let ns = scenario("wrong-tag", Some(PROFILES[0]));
    wait_pull_error(&ns, "checkout", false);
    let out = pullfix(&[
        "--kubeconfig",
        path.to_str().unwrap(),
        "diagnose",
        "-n",
        &ns,
        "--no-probe",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let runs = std::fs::read_to_string(&counter).unwrap().lines().count();
    assert_eq!(runs, 1, "the exec plugin must run once per invocation");
    delete_ns(&ns);
}

#[test]
fn diagnose_and_scan_only_read() {
    let ns = scenario("rotated-password", Some(PROFILES[1]));
    wait_pull_error(&ns, "checkout", false);
    diagnose_json(&ns, &[]);
    assert_eq!(pullfix(&["scan", "-n", &ns]).status.code(), Some(1));
    let log = std::fs::read_to_string(env("PULLFIX_LAB_AUDIT_LOG")).unwrap();
    let ours: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| {
            e["userAgent"]
                .as_str()
                .is_some_and(|u| u.starts_with("kubectl-pullfix/"))
        })
        .filter(|e| e["objectRef"]["namespace"] == ns.as_str())
        .collect();
    assert!(
        !ours.is_empty(),
        "no audited request from kubectl-pullfix in {ns}"
    );
    for e in &ours {
        let verb = e["verb"].as_str().unwrap_or_default();
        assert!(
            matches!(verb, "get" | "list" | "watch"),
            "a write from diagnose/scan: {e}"
        );
    }
    delete_ns(&ns);
}

#[test]
fn scan_finds_running_pods_with_one_failing_container() {
    let ns = unique_ns("sidecar");
    crate::lab::kubectl_ok(&["create", "namespace", &ns]);
    let anon = env("PULLFIX_LAB_ANON_REGISTRY");
    let pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "two", "namespace": ns},
        "spec": {"nodeSelector": {"kubernetes.io/hostname": PROFILES[0]}, "containers": [
            {"name": "ok", "image": format!("{anon}/team/worker:1.4.2")},
            {"name": "bad", "image": format!("{anon}/team/worker:9.9.9")}]}});
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pod.json");
    std::fs::write(&file, pod.to_string()).unwrap();
    crate::lab::kubectl_ok(&["apply", "-f", file.to_str().unwrap()]);
    crate::lab::wait_for("pod Running with one container failing", 120, || {
        let p = crate::lab::json(&["get", "pod", "two", "-n", &ns]);
        let bad = p["status"]["containerStatuses"]
            .as_array()?
            .iter()
            .any(|c| c["name"] == "bad" && c["state"]["waiting"]["reason"] == "ImagePullBackOff");
        (p["status"]["phase"] == "Running" && bad).then_some(())
    });
    let out = pullfix(&["scan", "-A", "-o", "json"]);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let g = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["workload"]["namespace"] == ns.as_str())
        .unwrap_or_else(|| panic!("the Running pod is missing from scan: {v:#}"));
    assert_eq!(g["containers"][0], "bad");
    assert_eq!(
        g["cause"], "image-not-found",
        "classified from its events: {g}"
    );
    delete_ns(&ns);
}
