//! The API gateway's errors end to end, without the lab: a tiny HTTP
//! server on 127.0.0.1 plays the API server (through a kubeconfig in a temp
//! dir) and answers everything but what a case breaks: secret reads that
//! never answer, a 403 with a real Kubernetes Status body, a 500. The
//! built plugin runs against it with `--request-timeout 2s`, and what it
//! says must fit what happened: a timeout is a timeout, only a 403 is RBAC.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// What the fake API server breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Break {
    /// Secret reads (get and list) never answer.
    SecretsHang,
    /// Secret reads are denied by RBAC (403 with a Status body).
    SecretsForbidden,
    /// Secret reads fail with a 500.
    SecretsFail,
    /// Nothing answers at all (connections are accepted, then silence).
    EverythingHangs,
    /// Listing pods is denied.
    PodsForbidden,
    /// Every request is rejected: the token expired.
    Unauthorized,
}

const IMAGE: &str = "registry.example.com/shop/web:v1";

/// Starts the server; returns its address. The listener lives on in a
/// thread until the test process ends.
fn fake_apiserver(mode: Break) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for sock in listener.incoming().flatten() {
            std::thread::spawn(move || serve(sock, mode));
        }
    });
    addr
}

fn serve(mut sock: TcpStream, mode: Break) {
    let mut reader = BufReader::new(sock.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    let _ = reader.read_exact(&mut body);
    let target = request_line.split_whitespace().nth(1).unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let Some((code, body)) = answer(mode, path, query) else {
        // Never answer: hold the connection open past any client timeout.
        std::thread::sleep(Duration::from_secs(60));
        return;
    };
    let body = body.to_string();
    let _ = write!(
        sock,
        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn status(code: u16, reason: &str, message: &str, details: Value) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "details": details, "code": code,
    })
}

fn list(items: Vec<Value>) -> Value {
    json!({"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items})
}

fn pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-abc", "namespace": "shop", "uid": "u1",
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"nodeName": "node-1", "serviceAccountName": "default",
                 "imagePullSecrets": [{"name": "regcred"}],
                 "containers": [{"name": "web", "image": IMAGE}]},
        "status": {"phase": "Pending", "startTime": "2026-01-01T00:00:00Z",
                   "containerStatuses": [{"name": "web", "image": IMAGE, "ready": false,
                     "state": {"waiting": {"reason": "ImagePullBackOff",
                       "message": format!("Back-off pulling image \"{IMAGE}\": ErrImagePull: failed to pull and unpack image \"{IMAGE}\": failed to resolve reference \"{IMAGE}\": failed to authorize: failed to fetch anonymous token: unexpected status: 401 Unauthorized")}}}]},
    })
}

/// The answer to one request; `None` to never answer.
fn answer(mode: Break, path: &str, query: &str) -> Option<(u16, Value)> {
    if mode == Break::EverythingHangs {
        return None;
    }
    if mode == Break::Unauthorized {
        return Some((401, status(401, "Unauthorized", "Unauthorized", json!({}))));
    }
    let secrets = path.starts_with("/api/v1/namespaces/shop/secrets") || path == "/api/v1/secrets";
    if secrets {
        let name = path.rsplit('/').next().unwrap_or("");
        let named = !path.ends_with("/secrets");
        return match mode {
            Break::SecretsHang => None,
            Break::SecretsForbidden => {
                let (message, details) = if named {
                    (
                        format!(
                            "secrets \"{name}\" is forbidden: User \"oncall\" cannot get resource \"secrets\" in API group \"\" in the namespace \"shop\""
                        ),
                        json!({"name": name, "kind": "secrets"}),
                    )
                } else {
                    (
                        "secrets is forbidden: User \"oncall\" cannot list resource \"secrets\" in API group \"\" in the namespace \"shop\"".to_string(),
                        json!({"kind": "secrets"}),
                    )
                };
                Some((403, status(403, "Forbidden", &message, details)))
            }
            Break::SecretsFail => Some((
                500,
                status(
                    500,
                    "InternalError",
                    "Internal error occurred: etcdserver: leader changed",
                    json!({}),
                ),
            )),
            _ => Some((200, list(Vec::new()))),
        };
    }
    if path == "/api/v1/namespaces/shop/pods" || path == "/api/v1/pods" {
        if mode == Break::PodsForbidden {
            return Some((
                403,
                status(
                    403,
                    "Forbidden",
                    "pods is forbidden: User \"oncall\" cannot list resource \"pods\" in API group \"\" in the namespace \"shop\"",
                    json!({"kind": "pods"}),
                ),
            ));
        }
        let running = query.contains("status.phase%3DRunning") && !query.contains("%21");
        return Some((200, list(if running { Vec::new() } else { vec![pod()] })));
    }
    if path == "/api/v1/namespaces/shop" {
        return Some((
            200,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
        ));
    }
    if path == "/api/v1/namespaces/shop/pods/web-abc" {
        return Some((200, pod()));
    }
    if path == "/api/v1/namespaces/shop/serviceaccounts/default" {
        return Some((
            200,
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "shop"}}),
        ));
    }
    if path == "/apis/batch/v1" {
        return Some((
            200,
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "batch/v1", "resources": [
                {"name": "cronjobs", "singularName": "cronjob", "namespaced": true, "kind": "CronJob", "verbs": ["get", "list"]},
                {"name": "jobs", "singularName": "job", "namespaced": true, "kind": "Job", "verbs": ["get", "list"]},
            ]}),
        ));
    }
    if path.ends_with("/events")
        || path == "/api/v1/nodes"
        || path.ends_with("/cronjobs")
        || path.ends_with("/jobs")
    {
        return Some((200, list(Vec::new())));
    }
    Some((
        404,
        status(404, "NotFound", &format!("{path} not found"), json!({})),
    ))
}

/// A kubeconfig for the fake server in `dir`.
fn kubeconfig(dir: &std::path::Path, addr: &str) -> String {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{addr}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: oncall, namespace: shop}}\ncurrent-context: fake\nusers:\n- name: oncall\n  user: {{token: not-a-real-token}}\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// Runs the plugin against a fake API server broken as `mode`.
fn pullfix_against(mode: Break, args: &[&str]) -> (Output, String, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let config = kubeconfig(dir.path(), &fake_apiserver(mode));
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-pullfix"))
        .args(["--kubeconfig", &config, "--request-timeout", "2s"])
        .args(args)
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1")
        .env("HOME", dir.path())
        .output()
        .expect("run kubectl-pullfix");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text, started.elapsed())
}

const DIAGNOSE: [&str; 4] = ["diagnose", "-n", "shop", "--no-probe"];

/// No advice about permissions, and no escalation to someone who can read
/// secrets: what a timeout or a 500 must never produce.
fn assert_no_rbac_advice(text: &str) {
    for rbac in [
        "get secrets` permission",
        "auth can-i",
        "lacks `get secrets`",
        "someone who can read secrets",
        "cluster-wide `list secrets`",
        "rbac     ",
    ] {
        assert!(!text.contains(rbac), "unexpected `{rbac}` in:\n{text}");
    }
}

#[test]
fn a_secret_read_that_times_out_is_reported_as_a_timeout_not_rbac() {
    let (out, text, took) = pullfix_against(Break::SecretsHang, &DIAGNOSE);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("secret `regcred` could not be read (timed out)"),
        "{text}"
    );
    assert!(
        text.contains("secret shop/regcred could not be read (timed out)"),
        "{text}"
    );
    assert!(text.contains("--request-timeout"), "{text}");
    assert_no_rbac_advice(&text);
    assert!(took < Duration::from_secs(40), "took {took:?}");
}

#[test]
fn a_forbidden_secret_read_is_reported_as_rbac() {
    let (out, text, _) = pullfix_against(Break::SecretsForbidden, &DIAGNOSE);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("secret `regcred` could not be read (no `get secrets` permission)"),
        "{text}"
    );
    assert!(
        text.contains("kubectl auth can-i get secrets -n shop"),
        "{text}"
    );
    assert!(text.contains("someone who can read secrets"), "{text}");
    assert!(
        text.contains("rbac     some pull secrets could not be read"),
        "{text}"
    );
    assert!(!text.contains("timed out"), "{text}");
}

#[test]
fn a_failing_secret_read_is_a_server_error_not_rbac() {
    let (out, text, _) = pullfix_against(Break::SecretsFail, &DIAGNOSE);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("secret `regcred` could not be read (API server error 500)"),
        "{text}"
    );
    assert_no_rbac_advice(&text);
}

#[test]
fn an_api_server_that_never_answers_times_out_with_help() {
    let (out, text, took) = pullfix_against(Break::EverythingHangs, &["scan", "-n", "shop"]);
    assert_eq!(out.status.code(), Some(2), "{text}");
    // The first request is the check that the namespace exists.
    assert!(text.contains("error: get namespace shop"), "{text}");
    assert!(
        text.contains("timed out waiting for the API server"),
        "{text}"
    );
    assert!(
        text.contains("help: the API server did not answer in time"),
        "{text}"
    );
    assert!(text.contains("--request-timeout"), "{text}");
    assert_no_rbac_advice(&text);
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

#[test]
fn a_forbidden_list_names_the_permission_to_ask_for() {
    let (out, text, _) = pullfix_against(Break::PodsForbidden, &["scan", "-n", "shop"]);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("error: list pods in namespace shop (status.phase!=Running,status.phase!=Succeeded): forbidden: pods is forbidden"),
        "{text}"
    );
    assert!(
        text.contains("help: your identity may not list pods in namespace shop; check with `kubectl auth can-i list pods -n shop`"),
        "{text}"
    );
    assert!(!text.contains("timed out"), "{text}");
}

#[test]
fn fix_asks_aws_nothing_before_the_cluster_is_read() {
    // Nothing listens on this port: the cluster is unreachable.
    let dir = tempfile::tempdir().unwrap();
    let config = kubeconfig(dir.path(), "127.0.0.1:1");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kubectl-pullfix"));
    cmd.args(["--kubeconfig", &config, "--request-timeout", "2s"])
        .args(["fix", "deploy/x", "-n", "shop", "--dry-run", "--yes"])
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1")
        .env("HOME", dir.path())
        .env("RUST_LOG", "warn");
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output().expect("run kubectl-pullfix");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("help: the API server is unreachable"), "{err}");
    assert!(!err.contains("ServiceError"), "{err}");
    for aws in ["aws_config", "imds", "IMDS", "credentials"] {
        assert!(
            !err.contains(aws),
            "AWS was asked before the cluster: {err}"
        );
    }
}

#[test]
fn rejected_credentials_say_log_in_again() {
    let (out, text, _) = pullfix_against(Break::Unauthorized, &["scan", "-n", "shop"]);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("error: get namespace shop"), "{text}");
    assert!(text.contains("unauthorized: Unauthorized"), "{text}");
    assert!(
        text.contains("help: the cluster rejected your credentials: log in again"),
        "{text}"
    );
    assert_no_rbac_advice(&text);
    assert!(!text.contains("timed out"), "{text}");
}
