//! Bad input on the command line, run through the built binary: every flag
//! and argument that cannot be used ends with exit code 2, one `error:` line
//! and one `help:` line on stderr, never a panic, and never a wait past
//! `--request-timeout`. No cluster needed: the kubeconfigs point at
//! loopback ports this test owns.

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-pullfix");

pub(crate) struct Outcome {
    pub(crate) code: Option<i32>,
    pub(crate) stderr: String,
    pub(crate) elapsed: Duration,
}

/// Runs the plugin with no ambient kubeconfig or AWS settings and a hard
/// limit on wall time (the child is killed past it).
pub(crate) fn run_with(args: &[&str], home: &Path, limit: Duration) -> Outcome {
    run_env(args, home, limit, None)
}

fn run_env(args: &[&str], home: &Path, limit: Duration, rust_log: Option<&str>) -> Outcome {
    let start = Instant::now();
    let mut cmd = Command::new(BIN);
    if let Some(filter) = rust_log {
        cmd.env("RUST_LOG", filter);
    } else {
        cmd.env_remove("RUST_LOG");
    }
    let mut child = cmd
        .args(args)
        .env_remove("KUBECONFIG")
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kubectl-pullfix");
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Outcome {
        code,
        stderr: reader.join().unwrap(),
        elapsed: start.elapsed(),
    }
}

/// Asserts the error contract and returns stderr.
fn bad(args: &[&str], home: &Path) -> String {
    let out = run_with(args, home, Duration::from_secs(30));
    let err = &out.stderr;
    assert!(!err.contains("panicked"), "{args:?} panicked:\n{err}");
    assert_eq!(out.code, Some(2), "{args:?} exit code, stderr:\n{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines.len(),
        2,
        "{args:?}: want `error:` + `help:`, got:\n{err}"
    );
    assert!(lines[0].starts_with("error: "), "{args:?}:\n{err}");
    // No empty argument name (`error: : ...`).
    assert!(!lines[0].starts_with("error: :"), "{args:?}:\n{err}");
    assert!(lines[1].starts_with("help: "), "{args:?}:\n{err}");
    assert!(
        lines[0].len() < 300,
        "{args:?}: error line too long:\n{err}"
    );
    err.clone()
}

fn home() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// A kubeconfig whose only cluster is `server`.
fn kubeconfig(dir: &Path, server: &str) -> PathBuf {
    let p = dir.join("kubeconfig");
    std::fs::write(
        &p,
        format!(
            "apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: c1
  cluster: {{server: '{server}', insecure-skip-tls-verify: true}}
users:
- name: u1
  user: {{token: not-a-real-token}}
contexts:
- name: dev
  context: {{cluster: c1, user: u1, namespace: shop}}
- name: staging
  context: {{cluster: c1, user: u1}}
"
        ),
    )
    .unwrap();
    p
}

#[test]
fn durations() {
    let h = home();
    let h = h.path();
    for value in [
        "100000000000000000000s",
        "100000000000000000000",
        "-1s",
        "-5",
        "NaN",
        "inf",
        "",
        "soon",
        "3d",
        "1h30",
        "1e3s",
    ] {
        let err = bad(&["scan", "--request-timeout", value], h);
        assert!(err.contains("--request-timeout"), "{value:?}: {err}");
        bad(&["fix", "--timeout", value], h);
        bad(&["diagnose", "--probe-timeout", value], h);
    }
    let err = bad(&["scan", "--request-timeout=-1s"], h);
    assert!(err.contains("negative"), "{err}");
}

#[test]
fn kubeconfigs() {
    let h = home();
    let h = h.path();
    let err = bad(&["--kubeconfig", "/nonexistent", "scan"], h);
    assert!(
        err.starts_with("error: kubeconfig /nonexistent: no such file\n"),
        "{err}"
    );
    let not_yaml = h.join("not-yaml");
    std::fs::write(&not_yaml, "{{{ this: is: not [ yaml").unwrap();
    let err = bad(&["--kubeconfig", not_yaml.to_str().unwrap(), "scan"], h);
    assert!(err.contains("not a kubeconfig"), "{err}");
    let binary = h.join("binary");
    std::fs::write(&binary, [0u8, 0xff, 0xfe, 7]).unwrap();
    bad(&["--kubeconfig", binary.to_str().unwrap(), "scan"], h);
    bad(&["--kubeconfig", h.to_str().unwrap(), "scan"], h);

    let kc = kubeconfig(h, "https://127.0.0.1:1");
    let kc = kc.to_str().unwrap();
    let err = bad(&["--kubeconfig", kc, "--context", "nope", "scan"], h);
    assert!(err.contains("context `nope`"), "{err}");
    assert!(err.contains("dev, staging"), "lists the contexts: {err}");
    let err = bad(&["--kubeconfig", kc, "--cluster", "nope", "scan"], h);
    assert!(err.contains("c1"), "{err}");
    let err = bad(&["--kubeconfig", kc, "--user", "nope", "scan"], h);
    assert!(err.contains("u1"), "{err}");
    // No kubeconfig anywhere and not in a cluster.
    let err = bad(&["scan"], h);
    assert!(err.contains("no kubeconfig"), "{err}");
}

#[test]
fn targets_and_namespaces() {
    let h = home();
    let h = h.path();
    let long = "a".repeat(300);
    let long_deploy = format!("deploy/{long}");
    for (target, want) in [
        ("deploy/", "no name"),
        ("deploy/checkout/", "more than one"),
        ("deploy/checkout?x=1", "`?`"),
        ("deploy/checkout#x", "`#`"),
        ("deploy/checkout/status", "more than one"),
        ("deploy/../secrets/regcred", "more than one"),
        ("deploy/Checkout", "uppercase"),
        ("deploy/check_out", "`_`"),
        (long.as_str(), "300 characters"),
        (long_deploy.as_str(), "300 characters"),
        ("svc/web", "unsupported target kind `svc`"),
        ("", "empty"),
    ] {
        for cmd in ["diagnose", "fix"] {
            let err = bad(&[cmd, target], h);
            assert!(err.contains(want), "{cmd} {target:?}: {err}");
        }
    }
    let err = bad(&["diagnose", "svc/web"], h);
    for kind in [
        "pod",
        "deploy",
        "sts",
        "ds",
        "job",
        "cronjob (cj)",
        "deployments.apps",
    ] {
        assert!(err.contains(kind), "lists {kind}: {err}");
    }
    for ns in ["Shop", "shop_1", "-shop", "a.b", "shop\n", &"n".repeat(64)] {
        let err = bad(&["scan", &format!("--namespace={ns}")], h);
        assert!(err.contains("namespace"), "{ns:?}: {err}");
    }
    bad(&["scan", "-n"], h);
    bad(&["fix", "--from-secret", "regcred"], h);
    bad(&["fix", "--from-secret", "shop/../../x"], h);
    bad(&["fix", "--secret-name", "Bad_Name"], h);
    bad(&["fix", "--image", "UPPER/x:@@"], h);
    bad(
        &["fix", "--from-docker-config", "/nonexistent/config.json"],
        h,
    );
    bad(&["fix", "--from-docker-config", h.to_str().unwrap()], h);
    bad(&["fix", "--report", "/nonexistent-dir/incident.md"], h);
    bad(&["fix", "--username", "", "--password-stdin"], h);
    bad(&["fix", "--username", "a"], h);
    bad(&["diagnose", "--probe-timeout", "0"], h);
    bad(&["sandbox", "--time-scale", "nan"], h);
    bad(&["sandbox", "--time-scale", "-1"], h);
    bad(&["sandbox", "--env-file", "x"], h);
}

/// `-n ""` is the context's namespace (kubectl), never every namespace:
/// the request that fails names it.
#[test]
fn empty_namespace_is_the_contexts() {
    let h = home();
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let kc = kubeconfig(h.path(), &format!("http://127.0.0.1:{port}"));
    let err = bad(
        &["--kubeconfig", kc.to_str().unwrap(), "scan", "-n", ""],
        h.path(),
    );
    assert!(err.contains("shop"), "{err}");
}

#[test]
fn output_flags_and_unknown_arguments() {
    let h = home();
    let h = h.path();
    let err = bad(&["scan", "-o", "xml"], h);
    for f in ["text", "json", "yaml"] {
        assert!(err.contains(f), "{err}");
    }
    bad(&["scan", "--bogus"], h);
    bad(&["diagnose", "a", "b"], h);
    bad(&["nosuchcommand"], h);
    bad(&["fix", "--attach-to", "node"], h);
}

/// kubectl's flag forms that cannot be used say so the same way.
#[test]
fn kubectl_flag_forms_that_cannot_be_used() {
    let h = home();
    let h = h.path();
    let err = bad(&["fix", "--dry-run=client"], h);
    assert!(err.contains("client dry-run is not supported"), "{err}");
    assert!(err.contains("help: use --dry-run"), "{err}");
    bad(&["fix", "--dry-run=maybe"], h);
    bad(&["sandbox", "--dry-run=client"], h);
    let err = bad(&["scan", "--all-namespaces=maybe"], h);
    assert!(err.contains("true or false"), "{err}");
    let err = bad(&["scan", "-v=x"], h);
    assert!(err.contains("log level"), "{err}");
    bad(&["scan", "-o", "table"], h);
}

/// Canned answers by request path (without the query): status and body.
type Routes = fn(&str) -> (u16, String);

/// An API server on a loopback port that answers from `routes`, one
/// connection at a time, `Connection: close`.
fn fake_api(routes: Routes) -> u16 {
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(&conn);
                let mut first = String::new();
                if reader.read_line(&mut first).is_err() {
                    return;
                }
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                let target = first.split_whitespace().nth(1).unwrap_or("/");
                let path = target.split('?').next().unwrap_or(target);
                let (code, body) = routes(path);
                let mut conn = &conn;
                let _ = write!(
                    conn,
                    "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    port
}

fn status(code: u16, reason: &str, message: &str) -> (u16, String) {
    (
        code,
        serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code,
        })
        .to_string(),
    )
}

fn empty_list(kind: &str) -> (u16, String) {
    (
        200,
        serde_json::json!({"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": []})
            .to_string(),
    )
}

/// Runs the plugin against a kubeconfig and returns exit code, stdout and
/// stderr.
fn run_against(kc: &Path, args: &[&str], home: &Path) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .arg("--kubeconfig")
        .arg(kc)
        .args(args)
        .env_remove("KUBECONFIG")
        .env_remove("RUST_LOG")
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run kubectl-pullfix");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A namespace that does not exist is an error (exit 2) naming the close
/// names; one that RBAC will not let us `get` is scanned anyway, said at -v.
#[test]
fn namespaces_that_do_not_exist_and_namespaces_we_may_not_get() {
    let port = fake_api(|path| match path {
        "/api/v1/namespaces/shpo" => status(404, "NotFound", "namespaces \"shpo\" not found"),
        "/api/v1/namespaces" => (
            200,
            serde_json::json!({"kind": "NamespaceList", "apiVersion": "v1", "metadata": {},
                "items": [{"metadata": {"name": "default"}}, {"metadata": {"name": "shop"}},
                          {"metadata": {"name": "payments"}}]})
            .to_string(),
        ),
        "/api/v1/namespaces/shop" => status(
            403,
            "Forbidden",
            "namespaces \"shop\" is forbidden: User \"oncall\" cannot get resource \"namespaces\" in API group \"\" in the namespace \"shop\"",
        ),
        p if p.ends_with("/pods") => empty_list("PodList"),
        p if p.ends_with("/events") => empty_list("EventList"),
        _ => status(404, "NotFound", "not found"),
    });
    let h = home();
    let kc = kubeconfig(h.path(), &format!("http://127.0.0.1:{port}"));
    let (code, out, err) = run_against(&kc, &["scan", "-n", "shpo"], h.path());
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(out.is_empty(), "nothing on stdout: {out}");
    assert_eq!(
        err,
        "error: namespace `shpo` (-n) not found\nhelp: did you mean `shop`? kubectl get namespaces lists them; -A looks in every namespace\n"
    );
    for cmd in [
        &["diagnose", "-n", "shpo"][..],
        &["fix", "-n", "shpo"],
        &["-n", "shpo"],
    ] {
        let (code, _, err) = run_against(&kc, cmd, h.path());
        assert_eq!(code, Some(2), "{cmd:?}: {err}");
        assert!(err.contains("did you mean `shop`?"), "{cmd:?}: {err}");
    }
    // The context's namespace (shop) may not be read: the scan goes ahead.
    let (code, out, err) = run_against(&kc, &["scan", "-v"], h.path());
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.starts_with(
            "ok: no pod is failing to pull its image (0 pods scanned in namespace shop)"
        ),
        "{out}"
    );
    assert!(out.contains("-A looks in every namespace"), "{out}");
    assert!(
        err.contains("cannot check that namespace shop exists (no `get namespaces` permission)"),
        "{err}"
    );
    let (code, out, _) = run_against(&kc, &["scan", "-o", "json"], h.path());
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["scope"]["namespace"], "shop");
    assert_eq!(v["scope"]["all_namespaces"], false);
    assert_eq!(v["pods_seen"], 0);
}

/// An API server that accepts and never answers ends at
/// `--request-timeout`, for plain HTTP and for TLS (the handshake).
#[test]
fn silent_server_ends_at_the_request_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            keep.lock().unwrap().push(conn);
        }
    });
    let h = home();
    for scheme in ["http", "https"] {
        let dir = h.path().join(scheme);
        std::fs::create_dir(&dir).unwrap();
        let kc = kubeconfig(&dir, &format!("{scheme}://127.0.0.1:{port}"));
        let out = run_with(
            &[
                "--kubeconfig",
                kc.to_str().unwrap(),
                "scan",
                "--request-timeout",
                "2s",
            ],
            h.path(),
            Duration::from_secs(60),
        );
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        assert_eq!(out.code, Some(2), "{scheme}: {}", out.stderr);
        assert!(
            out.elapsed < Duration::from_secs(15),
            "{scheme}: took {:?}",
            out.elapsed
        );
        assert!(out.stderr.contains("\nhelp: "), "{}", out.stderr);
    }
}

/// A port nobody listens on: a prompt error, not a hang.
#[test]
fn unreachable_server() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let h = home();
    let kc = kubeconfig(h.path(), &format!("https://127.0.0.1:{port}"));
    let err = bad(&["--kubeconfig", kc.to_str().unwrap(), "scan"], h.path());
    assert!(err.contains("unreachable"), "{err}");
}

/// Library log lines (AWS SDK, hyper, kube) stay off the terminal without -v.
#[test]
fn no_library_logs_without_verbose() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let h = home();
    let kc = kubeconfig(h.path(), &format!("https://127.0.0.1:{port}"));
    let out = run_with(
        &["--kubeconfig", kc.to_str().unwrap(), "scan"],
        h.path(),
        Duration::from_secs(30),
    );
    for noisy in ["WARN", "ERROR", "aws_", "kube_client", "hyper"] {
        assert!(!out.stderr.contains(noisy), "{noisy}: {}", out.stderr);
    }
    // RUST_LOG still turns them on.
    let out = run_env(
        &["--kubeconfig", kc.to_str().unwrap(), "scan"],
        h.path(),
        Duration::from_secs(30),
        Some("kube_client=debug"),
    );
    assert!(out.stderr.contains("kube_client"), "{}", out.stderr);
}
