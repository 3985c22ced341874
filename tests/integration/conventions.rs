//! kubectl's conventions and the scope said out loud, against the sandbox
//! (no lab): `-vvv` logs carry no token and no colour codes; `scan -A`'s
//! counts hold together in text and JSON; a namespace that does not exist
//! is exit 2; a context without a namespace names `default` and suggests
//! `-A`; `-A` wins over `-n`; `--no-probe` and `--dry-run=server` are
//! accepted by the guided flow.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-pullfix");

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `sandbox SCENARIO --shell` and returns it with the environment
/// its env file exports.
fn shell(scenario: &str, dir: &Path) -> (KillOnDrop, Vec<(String, String)>) {
    let env_file = dir.join("env");
    let child = Command::new(BIN)
        .args(["sandbox", scenario, "--shell", "--no-color", "--env-file"])
        .arg(&env_file)
        .arg("--dir")
        .arg(dir.join("sb"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let guard = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&env_file).map_or(true, |s| s.is_empty()) {
        assert!(Instant::now() < deadline, "no env file");
        std::thread::sleep(Duration::from_millis(100));
    }
    let env = std::fs::read_to_string(&env_file)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| *k != "PATH")
        .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
        .collect();
    (guard, env)
}

fn text(o: &Output) -> String {
    format!(
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The secrets in the sandbox kubeconfig: the bearer token and the token
/// in the server URL's path.
fn kubeconfig_secrets(env: &[(String, String)]) -> Vec<String> {
    let path = &env.iter().find(|(k, _)| k == "KUBECONFIG").unwrap().1;
    let kc = std::fs::read_to_string(path).unwrap();
    let mut secrets = Vec::new();
    for line in kc.lines().map(str::trim) {
        if let Some(t) = line.strip_prefix("token:") {
            secrets.push(t.trim().trim_matches(['\'', '"']).to_string());
        }
        if let Some(url) = line.strip_prefix("server:") {
            let url = url.trim().trim_matches(['\'', '"']);
            let path = url.splitn(4, '/').nth(3).unwrap_or_default();
            secrets.extend(
                path.split('/')
                    .filter(|s| s.len() >= 16)
                    .map(str::to_string),
            );
        }
    }
    assert!(!secrets.is_empty(), "the sandbox kubeconfig has a token");
    secrets
}

#[test]
fn conventions_and_scope_on_the_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let (_sandbox, env) = shell("stale-secret-many-namespaces", dir.path());
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };

    // -vvv: many lines, no token, no colour codes (stderr is a file here).
    let out = run(&["diagnose", "-A", "-vvv"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.lines().count() > 50, "a trace log: {log}");
    assert!(log.contains("[redacted]"), "the URL's token is masked");
    for secret in kubeconfig_secrets(&env) {
        assert_eq!(
            log.matches(&secret).count(),
            0,
            "the kubeconfig token leaked into the log"
        );
    }
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a log that is not a terminal"
    );
    // kubectl's -v=N form logs the same way.
    let out = run(&["scan", "-A", "-v=6"]);
    assert!(out.status.code() == Some(1), "{}", text(&out));
    for secret in kubeconfig_secrets(&env) {
        assert!(!String::from_utf8_lossy(&out.stderr).contains(&secret));
    }

    // scan -A: the counts hold together, in text and in JSON.
    let out = run(&["scan", "-A", "--no-color"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let out = run(&["scan", "-A", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k}: {v}"));
    assert!(n("failing_pods") <= n("pods_seen"), "{v}");
    assert_eq!(n("failing_pods"), 3, "{v}");
    assert_eq!(n("failing_workloads"), 3, "{v}");
    let groups = v["groups"].as_array().unwrap();
    let sum: u64 = groups
        .iter()
        .map(|g| g["failing_pods"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, n("failing_pods"), "groups add up: {v}");
    assert_eq!(v["scope"]["all_namespaces"], true);
    assert_eq!(
        v["namespaces"],
        serde_json::json!(["shop", "shop-b", "shop-c"])
    );
    let summary = format!(
        "{} failing workload(s), {} failing pod(s) of {} pods scanned in all namespaces; failures in 3 namespace(s): shop, shop-b, shop-c",
        n("failing_workloads"),
        n("failing_pods"),
        n("pods_seen")
    );
    assert!(table.contains(&summary), "{summary}\n{table}");
    assert_eq!(
        table.lines().filter(|l| l.starts_with("P1 ")).count(),
        groups.len()
    );

    // A namespace that does not exist: exit 2, with the hint.
    let out = run(&["scan", "-n", "nosuchns"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(out.stdout.is_empty(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("namespace `nosuchns` (-n) not found"), "{err}");
    assert!(err.contains("kubectl get namespaces"), "{err}");
    let out = run(&["scan", "-n", "shop-d"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("`shop-b`, `shop-c`"),
        "{}",
        text(&out)
    );

    // The sandbox's context has no namespace: `default`, named, and -A offered.
    for args in [
        &["--no-color"][..],
        &["scan", "--no-color"],
        &["diagnose", "--no-color"],
    ] {
        let out = run(args);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {t}");
        assert!(
            t.contains("(0 pods scanned in namespace default)"),
            "{args:?}: {t}"
        );
        assert!(t.contains("-A looks in every namespace"), "{args:?}: {t}");
    }

    // -A wins over -n (a note says so); -o name as kubectl prints it.
    let out = run(&["scan", "-A", "-n", "shop", "-o", "name"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "deployment.apps/checkout\n".repeat(3)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("-n shop is ignored"),
        "{}",
        text(&out)
    );
    let out = run(&["scan", "-n", "shop-b", "-o", "wide", "--no-color"]);
    let t = String::from_utf8_lossy(&out.stdout);
    let header = t.lines().next().unwrap();
    assert!(
        header.contains(" NODES ") && header.ends_with(" PULL SECRETS"),
        "{t}"
    );

    // --no-probe and --dry-run=server on the guided flow and on fix.
    for args in [
        &[
            "-n",
            "shop",
            "--no-probe",
            "--dry-run=server",
            "--yes",
            "--no-color",
        ][..],
        &[
            "fix",
            "deploy/checkout",
            "-n",
            "shop-b",
            "--no-probe",
            "--dry-run",
            "--yes",
            "--no-color",
        ],
    ] {
        let out = run(args);
        let t = text(&out);
        assert_ne!(out.status.code(), Some(2), "{args:?}: {t}");
        assert!(t.contains("Diagnosis of deploy/checkout"), "{args:?}: {t}");
        assert!(
            !t.contains("registry checks ran from this machine"),
            "no probe ran: {t}"
        );
    }
}
