//! kubectl's conventions and the scope said out loud, against the sandbox
//! (no lab): `-vvv` logs carry no token and no colour codes; `scan -A`'s
//! counts hold together in text and JSON; a namespace that does not exist
//! is exit 2; a context without a namespace names `default` and suggests
//! `-A`; `-A` wins over `-n`; `--no-probe` and `--dry-run=server` are
//! accepted by the guided flow.

use std::process::{Command, Stdio};

use crate::shell::{BIN, SandboxShell, text};

#[test]
fn conventions_and_scope_on_the_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = SandboxShell::start("stale-secret-many-namespaces", &dir.path().join("sb"));
    let env = sandbox.env.clone();
    let secrets = sandbox.secrets();
    assert!(!secrets.is_empty(), "the sandbox has tokens and passwords");
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
    for secret in &secrets {
        assert_eq!(
            log.matches(secret.as_str()).count(),
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
    for secret in &secrets {
        assert!(!String::from_utf8_lossy(&out.stderr).contains(secret.as_str()));
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
