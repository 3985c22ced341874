//! Issue 16, observation 5: text from the cluster never reaches the
//! terminal or the Markdown report raw. On the `rotated-password` sandbox,
//! the pull secret's username carries a screen clear and a forged line, a
//! second pull secret's only `auths` key (shown as the "closest key") sets
//! the terminal title, and an event's message carries an OSC sequence, a
//! C1 CSI, a bare carriage return, a bidi override and a newline; `scan`,
//! `diagnose`, `fix --dry-run --yes --report` must show them escaped.

use base64::Engine as _;
use serde_json::json;

use crate::shell::{SandboxShell, text};

const USER: &str = "evil\u{1b}[2J\u{1b}[31mFAKE-OK\nline2";
const KEY_SUFFIX: &str = "\u{1b}]0;TITLE\u{7}";
const EVENT: &str =
    "Failed to pull image: \u{1b}]0;PWNED\u{7} \u{9b}31m bare\rCR \u{202e}RTL\nFORGED-LINE";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn kubectl(sandbox: &SandboxShell, args: &[&str], stdin: Option<String>) {
    let out = sandbox.kubectl(args, stdin.as_deref().unwrap_or_default());
    assert!(out.status.success(), "kubectl {args:?}: {}", text(&out));
}

/// `kubectl get deploy checkout -n shop -o jsonpath=PATH`.
fn checkout_jsonpath(sandbox: &SandboxShell, path: &str) -> std::process::Output {
    let jsonpath = format!("jsonpath={path}");
    sandbox.kubectl(
        &["get", "deploy", "checkout", "-n", "shop", "-o", &jsonpath],
        "",
    )
}

/// The rollout as the cluster shows it, for a timeout's message: the
/// Deployment, its ReplicaSets and pods, and the Deployment's status (with
/// its conditions).
fn rollout_state(sandbox: &SandboxShell) -> String {
    let get = sandbox.kubectl(&["get", "deploy,rs,pods", "-n", "shop", "-o", "wide"], "");
    let status = checkout_jsonpath(sandbox, "{.status}");
    format!(
        "kubectl get deploy,rs,pods -n shop -o wide:\n{}\ndeploy/checkout status:\n{}",
        text(&get),
        text(&status)
    )
}

fn docker_secret(name: &str, auths: &serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": "shop"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": b64(&json!({"auths": auths}).to_string())},
    })
}

/// No control or format character other than a line feed.
fn raw_control(s: &str) -> Option<char> {
    s.chars().find(|&c| {
        c != '\n'
            && (c.is_control()
                || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2069}'))
    })
}

fn assert_inert(what: &str, s: &str) {
    if let Some(c) = raw_control(s) {
        panic!("{what}: raw {c:?} reached the output:\n{s}");
    }
    for l in s.lines() {
        assert!(
            !l.starts_with("line2") && !l.starts_with("FORGED-LINE"),
            "{what}: a value's newline forged a line:\n{s}"
        );
    }
}

#[test]
fn cluster_text_is_shown_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = SandboxShell::start("rotated-password", &dir.path().join("sb"));
    let registry = sandbox
        .env
        .iter()
        .find(|(k, _)| k == "PULLFIX_LAB_REGISTRY")
        .map(|(_, v)| v.clone())
        .expect("PULLFIX_LAB_REGISTRY");
    let user_secret = docker_secret(
        "regcred",
        &json!({ &registry: {
            "username": USER, "password": "not-the-password",
            "auth": b64(&format!("{USER}:not-the-password")),
        }}),
    );
    let near_key = format!("{registry}9{KEY_SUFFIX}");
    let key_secret = docker_secret(
        "evilkeys",
        &json!({ near_key: {"username": "u", "password": "p", "auth": b64("u:p")} }),
    );
    kubectl(
        &sandbox,
        &["delete", "secret", "regcred", "-n", "shop"],
        None,
    );
    kubectl(
        &sandbox,
        &["create", "--validate=false", "-f", "-"],
        Some(
            json!({"apiVersion": "v1", "kind": "List", "items": [user_secret, key_secret]})
                .to_string(),
        ),
    );
    kubectl(
        &sandbox,
        &[
            "patch",
            "deploy",
            "checkout",
            "-n",
            "shop",
            "--type=json",
            "-p",
            // Recreate: every pod then carries both pull secrets.
            &json!([
                {"op": "replace", "path": "/spec/strategy", "value": {"type": "Recreate"}},
                {"op": "replace", "path": "/spec/template/spec/imagePullSecrets",
                 "value": [{"name": "regcred"}, {"name": "evilkeys"}]},
            ])
            .to_string(),
        ],
        None,
    );
    // The new pods (with both pull secrets) fail in turn. Wait for all of
    // them: diagnose shows the events of the group's first pod by name,
    // and the hostile event below goes to that pod (taken while only one
    // new pod failed, it could be another one than diagnose later shows).
    let replicas = checkout_jsonpath(&sandbox, "{.spec.replicas}");
    let replicas: u64 = String::from_utf8_lossy(&replicas.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("replicas of deploy/checkout: {}", text(&replicas)));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let pod = loop {
        let out = sandbox
            .tool(&[
                "diagnose",
                "deploy/checkout",
                "-n",
                "shop",
                "--no-probe",
                "-o",
                "json",
            ])
            .output()
            .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let finding = &doc["findings"][0];
        let uses_both = finding["secrets"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["name"] == "evilkeys"));
        let all_failing = doc["failing_pods"].as_u64() == Some(replicas)
            && doc["pods_seen"].as_u64() == Some(replicas);
        if uses_both
            && all_failing
            && let Some(pod) = finding["pod"].as_str()
        {
            break pod.to_string();
        }
        if std::time::Instant::now() >= deadline {
            panic!(
                "the new pods never failed with both pull secrets within 90 s: {}\n{}",
                text(&out),
                rollout_state(&sandbox)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    // An event on that pod.
    kubectl(
        &sandbox,
        &["create", "--validate=false", "-f", "-"],
        Some(
            json!({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": "hostile-event", "namespace": "shop"},
                "involvedObject": {"kind": "Pod", "name": pod, "namespace": "shop"},
                "reason": "Failed", "type": "Warning", "count": 2, "message": EVENT,
            })
            .to_string(),
        ),
    );

    let scan = sandbox
        .tool(&["scan", "-A", "-o", "wide", "--no-color"])
        .output()
        .unwrap();
    assert_inert("scan", &text(&scan));

    let diagnose = sandbox
        .tool(&["diagnose", "deploy/checkout", "-n", "shop", "--no-color"])
        .output()
        .unwrap();
    let out = text(&diagnose);
    assert_inert("diagnose", &out);
    assert!(
        out.contains(r"evil\x1b[2J\x1b[31mFAKE-OK\nline2"),
        "the username is shown escaped:\n{out}"
    );
    assert!(
        out.contains(r"\x1b]0;TITLE\x07"),
        "the closest key is shown escaped:\n{out}"
    );
    assert!(
        out.contains(r"\x1b]0;PWNED\x07 \u{9b}31m bare\rCR \u{202e}RTL\nFORGED-LINE"),
        "the event is shown escaped:\n{out}"
    );
    // The printed command passes the same bytes when run (ANSI-C quoting).
    assert!(
        out.contains(r"--docker-username=$'evil\x1b[2J\x1b[31mFAKE-OK\x0aline2'"),
        "{out}"
    );

    let report = dir.path().join("report.md");
    let fix = sandbox
        .tool(&[
            "fix",
            "deploy/checkout",
            "-n",
            "shop",
            "--dry-run",
            "--yes",
            "--no-color",
            "--report",
        ])
        .arg(&report)
        .output()
        .unwrap();
    assert_inert("fix --dry-run", &text(&fix));
    let md = std::fs::read_to_string(&report).expect("the report is written");
    assert_inert("report", &md);
    assert!(md.contains(r"\x1b]0;TITLE\x07"), "{md}");

    // JSON keeps the values as they are: serde escapes C0 controls (C1
    // controls and bidi characters are valid JSON string content and stay).
    let json = sandbox
        .tool(&["diagnose", "deploy/checkout", "-n", "shop", "-o", "json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&json.stdout);
    assert!(!stdout.chars().any(|c| c != '\n' && c < ' '), "{stdout}");
    assert!(stdout.contains(r"\u001b]0;TITLE\u0007"), "{stdout}");
}
