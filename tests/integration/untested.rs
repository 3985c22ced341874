//! Issue 15: a credential this machine cannot test is not called wrong. On
//! the lab's TLS registry, with the right password and no CA given (as on a
//! laptop without the company's CA), `fix` says the credential could not be
//! tested from here and why, and tests it where it matters: a canary pod on
//! the node where the workload failed pulls the image with it (created and
//! deleted, per the audit log; only dry-run in a rehearsal). Without
//! permission for a canary it changes nothing and pages nobody, unless told
//! `--allow-untested`; with `--registry-ca` this machine tests it itself.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use crate::lab::{apply, delete_ns, env, json, scenario, wait_pull_error};

const NODE: &str = "lab-k133-cd21";

/// `fix deploy/checkout -n ns --yes` with the right password on stdin and
/// no registry configuration but `extra`.
fn fix(ns: &str, extra: &[&str]) -> (Output, String) {
    fix_with(ns, extra, &env("PULLFIX_LAB_REGISTRY_PASSWORD"))
}

/// [`fix`] with `password` on stdin.
fn fix_with(ns: &str, extra: &[&str], password: &str) -> (Output, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubectl-pullfix"))
        .args(crate::fix::fix_checkout_args(ns))
        .args(extra)
        .env_remove("PULLFIX_REGISTRY_HOSTS")
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let real_password = env("PULLFIX_LAB_REGISTRY_PASSWORD");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains(&real_password), "the password was printed");
    assert!(!text.contains(password), "the password was printed");
    (out, text)
}

fn secret_data(ns: &str) -> String {
    json(&["get", "secret", "regcred", "-n", ns])["data"].to_string()
}

/// The audit log's entries by `user` in `ns`: `verb resource/name`, with
/// ` (dry-run)` for server-side dry-runs.
fn audited(user: Option<&str>, ns: &str) -> Vec<String> {
    let log = std::fs::read_to_string(env("PULLFIX_LAB_AUDIT_LOG")).unwrap();
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["stage"] == "ResponseComplete")
        .filter(|e| e["objectRef"]["namespace"] == ns)
        .filter(|e| user.is_none_or(|u| e["user"]["username"] == u))
        .filter(|e| {
            e["userAgent"]
                .as_str()
                .is_some_and(|a| a.starts_with("kubectl-pullfix/"))
        })
        .filter(|e| {
            matches!(
                e["verb"].as_str(),
                Some("create" | "update" | "patch" | "delete")
            )
        })
        .map(|e| {
            format!(
                "{} {}/{}{}",
                e["verb"].as_str().unwrap_or("?"),
                e["objectRef"]["resource"].as_str().unwrap_or("?"),
                e["objectRef"]["name"].as_str().unwrap_or("?"),
                if e["requestURI"]
                    .as_str()
                    .unwrap_or("")
                    .contains("dryRun=All")
                {
                    " (dry-run)"
                } else {
                    ""
                }
            )
        })
        .collect()
}

#[test]
fn a_credential_this_machine_cannot_test_is_tested_by_a_canary_on_the_node() {
    let registry = env("PULLFIX_LAB_REGISTRY");
    let ns = scenario("rotated-password", Some(NODE));
    wait_pull_error(&ns, "checkout", false);
    let before = secret_data(&ns);

    // The rehearsal: the canary is dry-run, never created.
    let (out, t) = fix(&ns, &["--dry-run"]);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains(&format!(
            "could not be tested from here: this machine does not trust {registry}'s certificate"
        )),
        "{t}"
    );
    assert!(t.contains("--dry-run: the canary is not created"), "{t}");
    assert!(!t.contains("does not work"), "{t}");
    let writes = audited(None, &ns);
    assert!(
        writes.iter().all(|w| w.ends_with("(dry-run)")),
        "a rehearsal wrote: {writes:?}"
    );
    assert!(
        writes
            .iter()
            .any(|w| w.starts_with("create pods/pullfix-canary-")),
        "{writes:?}"
    );

    // A wrong password, no CA: the node's registry refuses it; nothing is
    // written but the canary, which is gone.
    let (out, t) = fix_with(&ns, &[], "not-the-password");
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains(&format!(
            "the registry refused the credential on node {NODE}"
        )),
        "{t}"
    );
    assert!(t.contains("canary deleted: pod and secret"), "{t}");
    assert_eq!(secret_data(&ns), before, "a refused credential was written");

    // For real, no CA given: the node tests it, then it is written.
    let (out, t) = fix(&ns, &[]);
    assert_eq!(out.status.code(), Some(0), "{t}");
    for want in [
        "kubectl equivalent: kubectl run pullfix-canary-",
        &format!("✔ tested on the cluster: node {NODE} pulled"),
        "canary deleted: pod and secret",
        "the credential was tested by a canary pull on the node",
    ] {
        assert!(t.contains(want), "missing {want:?}:\n{t}");
    }
    assert!(!t.contains("untested"), "{t}");
    assert!(!t.contains("escalate:"), "{t}");
    assert_ne!(secret_data(&ns), before);
    // The audit log: the canary's pod and secret created and deleted,
    // before the secret was written.
    let writes: Vec<String> = audited(None, &ns)
        .into_iter()
        .filter(|w| !w.ends_with("(dry-run)"))
        .collect();
    let at = |prefix: &str| {
        writes
            .iter()
            .position(|w| w.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {writes:?}"))
    };
    assert!(at("create secrets/pullfix-canary-") < at("create pods/pullfix-canary-"));
    assert!(at("create pods/pullfix-canary-") < at("delete pods/pullfix-canary-"));
    assert!(at("delete secrets/pullfix-canary-") < at("update secrets/regcred"));
    let left = crate::lab::kubectl_ok(&[
        "get",
        "pods,secrets",
        "-n",
        &ns,
        "-l",
        "pullfix.dev/canary",
        "-o",
        "name",
    ]);
    assert!(left.trim().is_empty(), "canary objects left: {left}");
    delete_ns(&ns);
}

#[test]
fn without_a_canary_a_credential_is_written_untested_only_on_purpose() {
    // An identity that may fix (update secrets, patch deployments) but not
    // create pods or secrets: no canary, and the credential is not called
    // wrong, not written, nobody paged.
    let ns = scenario("rotated-password", Some(NODE));
    wait_pull_error(&ns, "checkout", false);
    let dir = tempfile::tempdir().unwrap();
    let sa = "fixer-no-pods";
    let (kubeconfig, token) = crate::lab::service_account_kubeconfig(&ns, sa, dir.path());
    let role = format!("{ns}-no-pods");
    let rules = serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": role},
        "rules": [
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["update", "patch"]},
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["update", "patch"]},
        ],
    });
    apply(&rules);
    apply(&serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": role},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}],
    }));
    let before = secret_data(&ns);
    let kc = kubeconfig.to_str().unwrap();
    let (out, t) = fix(&ns, &["--kubeconfig", kc]);
    assert!(!t.contains(&token), "the token was printed");
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("no canary: no permission for the canary: create secrets"),
        "{t}"
    );
    assert!(
        t.contains("pass --allow-untested (--yes alone does not)"),
        "{t}"
    );
    assert!(!t.contains("does not work"), "{t}");
    assert!(!t.contains("escalate:"), "{t}");
    assert_eq!(secret_data(&ns), before, "written without a test");

    // On purpose: written, and marked untested everywhere.
    let (out, t) = fix(&ns, &["--kubeconfig", kc, "--allow-untested"]);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("yes (--allow-untested)"), "{t}");
    assert!(
        t.contains("credential untested: this machine does not trust"),
        "{t}"
    );
    assert!(t.contains("the credential was written untested"), "{t}");
    assert_ne!(secret_data(&ns), before);

    // With the nodes' CA instead, this machine tests it itself.
    let ns2 = scenario("rotated-password", Some(NODE));
    wait_pull_error(&ns2, "checkout", false);
    // (--probe-from-cluster: the node tests it even so; rehearsed here.)
    let (_, t) = fix(
        &ns2,
        &[
            "--registry-ca",
            &env("PULLFIX_LAB_CA"),
            "--probe-from-cluster",
            "--dry-run",
        ],
    );
    assert!(
        t.contains("to be tested on the cluster (--probe-from-cluster)"),
        "{t}"
    );
    assert!(t.contains("--dry-run: the canary is not created"), "{t}");
    let (out, t) = fix(&ns2, &["--registry-ca", &env("PULLFIX_LAB_CA")]);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("the image resolves"), "{t}");
    assert!(!t.contains("canary"), "{t}");
    let _ = Command::new("kubectl")
        .args([
            "delete",
            "clusterrole,clusterrolebinding",
            &role,
            "--wait=false",
        ])
        .output();
    delete_ns(&ns);
    delete_ns(&ns2);
}

#[test]
fn a_registry_only_the_nodes_resolve_is_tested_by_a_canary() {
    // `registry.internal.example` resolves for the nodes only (internal
    // DNS, a VPC endpoint): this machine cannot even look it up.
    let host = env("PULLFIX_LAB_INTERNAL_REGISTRY");
    let ns = crate::lab::unique_ns("internal");
    let auth = |password: &str| {
        use base64::Engine as _;
        let config = serde_json::json!({"auths": {&host: {
            "username": env("PULLFIX_LAB_REGISTRY_USER"), "password": password,
        }}});
        base64::engine::general_purpose::STANDARD.encode(config.to_string())
    };
    let objects = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
         "metadata": {"name": "regcred", "namespace": ns},
         "data": {".dockerconfigjson": auth("rotated-away")}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "checkout", "namespace": ns},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "checkout"}},
          "template": {"metadata": {"labels": {"app": "checkout"}}, "spec": {
            "nodeSelector": {"kubernetes.io/hostname": NODE},
            "imagePullSecrets": [{"name": "regcred"}],
            "containers": [{"name": "checkout", "imagePullPolicy": "Always",
                            "image": format!("{host}/team/checkout:v2.1.0")}]}}}},
    ]});
    apply(&objects);
    let (_, msg) = wait_pull_error(&ns, "checkout", false);
    assert!(
        msg.contains("401"),
        "the node reaches it and is refused: {msg}"
    );

    let (out, t) = fix(&ns, &[]);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("could not be tested from here"), "{t}");
    assert!(
        t.contains(&format!(
            "✔ tested on the cluster: node {NODE} pulled {host}/team/checkout:v2.1.0"
        )),
        "{t}"
    );
    assert!(t.contains("canary deleted: pod and secret"), "{t}");
    delete_ns(&ns);
}

#[test]
fn an_image_this_machine_cannot_check_is_checked_by_a_canary() {
    // `--image` is verified before it is set; from here it cannot be, so
    // the node pulls it with the failing pod's own pull secrets.
    let registry = env("PULLFIX_LAB_REGISTRY");
    let ns = scenario("wrong-tag", Some(NODE));
    wait_pull_error(&ns, "checkout", false);
    let missing = format!("{registry}/team/checkout:v9.9.9");
    let (out, t) = fix(&ns, &["--image", &missing]);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains(&format!(
            "{missing} does not pull on node {NODE} either (image-not-found"
        )),
        "{t}"
    );
    assert!(t.contains("canary deleted: pod "), "{t}");
    let image = format!("{registry}/team/checkout:v2.1.0");
    let (out, t) = fix(&ns, &["--image", &image]);
    assert_eq!(out.status.code(), Some(0), "{t}");
    for want in [
        &format!("{image} could not be checked from here: this machine does not trust"),
        &format!("pulls {image} with the failing pod's pull secrets"),
        &format!("✔ tested on the cluster: node {NODE} pulled {image}"),
    ] {
        assert!(t.contains(want.as_str()), "missing {want:?}:\n{t}");
    }
    delete_ns(&ns);
}

#[test]
fn a_registry_ca_that_is_not_a_certificate_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("ca.txt");
    std::fs::write(&junk, "not a certificate").unwrap();
    for (path, says) in [
        (junk.to_str().unwrap(), "not a PEM certificate"),
        ("/nonexistent/ca.pem", "no such file or directory"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_kubectl-pullfix"))
            .args(["diagnose", "--registry-ca", path, "-n", "default"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.starts_with(&format!("error: --registry-ca {path}: {says}")),
            "{err}"
        );
        assert!(err.contains("\nhelp: "), "{err}");
    }
}
