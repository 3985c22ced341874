//! Secrets a real cluster accepts but no docker config looks like: an
//! `Opaque` secret whose `.dockerconfigjson` is `[1,2]`, as the pods' pull
//! secret. `diagnose` names the shape and `fix --yes` rewrites the
//! secret from scratch, saying so; neither panics (exit 101). Issue 16,
//! observation 1.

use std::process::Output;
use std::time::{Duration, Instant};

use crate::shell::{SandboxShell, text};

/// Exit 0 or 1 (a finding), never 101 (a panic) or 2; no panic text.
fn assert_no_panic(o: &Output, what: &str) {
    let all = text(o);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{what}: exit {:?}\n{all}",
        o.status.code()
    );
    assert!(!all.contains("panicked"), "{what}\n{all}");
}

#[test]
fn a_pull_secret_holding_a_json_array_is_a_finding_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let shell = SandboxShell::start("rotated-password", &dir.path().join("sb"));
    // The pods' own pull secret becomes the odd one (a rollout to a new
    // secret name would take a while on a busy machine).
    let o = shell.kubectl(&["delete", "secret", "regcred", "-n", "shop"], "");
    assert!(o.status.success(), "{}", text(&o));
    let secret = r#"{"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "regcred", "namespace": "shop"},
        "stringData": {".dockerconfigjson": "[1,2]"}}"#;
    let o = shell.kubectl(&["apply", "-f", "-"], secret);
    assert!(o.status.success(), "{}", text(&o));

    let tool = |args: &[&str]| {
        shell
            .tool(args)
            .args(["--no-color", "--probe-timeout", "3s"])
            .env("XDG_STATE_HOME", dir.path())
            .output()
            .unwrap()
    };
    let shape = "`regcred`'s `.dockerconfigjson` is a JSON array, not an object";
    let deadline = Instant::now() + Duration::from_secs(60);
    let diagnosed = loop {
        let o = tool(&["diagnose", "deploy/checkout", "-n", "shop", "--no-probe"]);
        assert_no_panic(&o, "diagnose");
        if text(&o).contains(shape) || Instant::now() > deadline {
            break o;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    assert!(text(&diagnosed).contains(shape), "{}", text(&diagnosed));

    let handover = shell.handover().display().to_string();
    let fix = |extra: &[&str]| {
        let mut args = vec![
            "fix",
            "deploy/checkout",
            "-n",
            "shop",
            "--yes",
            "--from-docker-config",
            &handover,
        ];
        args.extend(extra);
        tool(&args)
    };
    // The rehearsal, as JSON: a document on stdout, not an empty one.
    let o = fix(&["--dry-run", "-o", "json"]);
    assert_no_panic(&o, "fix --dry-run -o json");
    assert!(
        serde_json::from_slice::<serde_json::Value>(&o.stdout).is_ok(),
        "{}",
        text(&o)
    );
    let o = fix(&[]);
    assert_no_panic(&o, "fix --yes");
    let all = text(&o);
    assert!(
        all.contains(&format!(
            ".dockerconfigjson rewritten from scratch: {shape}"
        )),
        "{all}"
    );
    for s in shell.secrets() {
        assert!(!all.contains(&s), "a secret value was printed");
    }
    // The secret now holds a docker config of the right type.
    let o = shell.kubectl(
        &[
            "get",
            "secret",
            "regcred",
            "-n",
            "shop",
            "-o",
            "jsonpath={.type}",
        ],
        "",
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "kubernetes.io/dockerconfigjson",
        "{}",
        text(&o)
    );
}
