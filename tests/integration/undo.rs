//! Issue 16, observations 4 and 6, on the sandbox: an undo that cannot
//! clobber (a backup's restore refuses when the object moved on, and a
//! write that did not happen offers none), and a kubectl equivalent that,
//! run as printed, writes what pullfix writes (other `auths` entries kept).

use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::shell::{SandboxShell, text};

/// `kubectl ARGS` against the sandbox.
/// A shell command line against the sandbox, as a person would paste it.
fn sh(shell: &SandboxShell, line: &str) -> std::process::Output {
    Command::new("sh")
        .args(["-c", line])
        .envs(shell.env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap()
}

fn secret(shell: &SandboxShell) -> Value {
    let out = shell.kubectl(
        &["get", "secret", "regcred", "-n", "shop", "-o", "json"],
        "",
    );
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The secret's docker config, decoded.
fn config(secret: &Value) -> Value {
    let d = secret["data"][".dockerconfigjson"].as_str().unwrap();
    serde_json::from_slice(&STANDARD.decode(d).unwrap()).unwrap()
}

/// The first path after `prefix` on a line of `t`.
fn path_after(t: &str, prefix: &str) -> Option<String> {
    t.lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .map(|rest| {
            rest.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string()
        })
}

fn docker_config(shell: &SandboxShell) -> String {
    shell.handover().display().to_string()
}

/// `fix deploy/checkout -n shop` with the handed-over credential (`mode`:
/// `--yes` or `--dry-run`), backups in `backups`, then `extra`.
fn fix_with_handover(
    shell: &SandboxShell,
    mode: &str,
    backups: &std::path::Path,
    extra: &[&str],
) -> Command {
    let handover = docker_config(shell);
    let mut args = vec![
        "fix",
        "deploy/checkout",
        "-n",
        "shop",
        mode,
        "--from-docker-config",
        &handover,
        "--backup-dir",
        backups.to_str().unwrap(),
    ];
    args.extend(extra);
    shell.tool(&args)
}

fn assert_no_secret(shell: &SandboxShell, t: &str) {
    for s in shell.secrets() {
        assert!(!t.contains(&s), "a secret value was printed: {t}");
    }
}

#[test]
fn restore_refuses_when_the_object_moved_on_and_restores_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let shell = SandboxShell::start("rotated-password", &dir.path().join("sb"));
    let before = config(&secret(&shell));
    let backups = dir.path().join("backups");
    let out = fix_with_handover(&shell, "--yes", &backups, &["--timeout", "90s"])
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    let backup = path_after(&t, "backup: ").expect("a backup line");
    assert!(backup.contains("-shop-secret-regcred"), "{t}");
    assert!(
        t.contains(&format!("restore with: kubectl replace -f {backup}")),
        "{t}"
    );
    let file = std::fs::read_to_string(&backup).unwrap();
    let rv = secret(&shell)["metadata"]["resourceVersion"].clone();
    assert!(
        file.contains(&format!("resourceVersion: '{}'", rv.as_str().unwrap()))
            || file.contains(&format!("resourceVersion: \"{}\"", rv.as_str().unwrap()))
            || file.contains(&format!("resourceVersion: {}", rv.as_str().unwrap())),
        "the backup is pinned to the version pullfix left ({rv}): {file}"
    );

    // Someone changes the secret: the printed restore and `restore` refuse.
    let a = shell.kubectl(
        &[
            "annotate",
            "secret",
            "regcred",
            "-n",
            "shop",
            "team=payments",
        ],
        "",
    );
    assert!(a.status.success(), "{}", text(&a));
    let r = shell.kubectl(&["replace", "-f", &backup], "");
    assert!(!r.status.success(), "kubectl replace overwrote a change");
    assert!(text(&r).contains("Conflict"), "{}", text(&r));
    let out = shell.tool(&["restore", &backup, "--yes"]).output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("refused: secret shop/regcred changed since pullfix wrote it"),
        "{t}"
    );
    assert!(t.contains("+ metadata.annotations.team: payments"), "{t}");
    assert!(t.contains("nothing was written"), "{t}");
    assert_no_secret(&shell, &t);
    assert_eq!(
        secret(&shell)["metadata"]["annotations"]["team"],
        "payments",
        "the other change survives"
    );

    // Without a change since, it restores (after a rehearsal that writes nothing).
    let a = shell.kubectl(
        &["annotate", "secret", "regcred", "-n", "shop", "team-"],
        "",
    );
    assert!(a.status.success(), "{}", text(&a));
    let out = shell
        .tool(&["restore", &backup, "--dry-run"])
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("password changed (not shown)"), "{t}");
    assert_ne!(config(&secret(&shell)), before, "the rehearsal wrote");
    let out = shell.tool(&["restore", &backup, "--yes"]).output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("✔ restored secret shop/regcred"), "{t}");
    assert_no_secret(&shell, &t);
    assert_eq!(config(&secret(&shell)), before);
}

#[test]
fn a_write_that_lost_a_conflict_offers_no_restore() {
    let dir = tempfile::tempdir().unwrap();
    let shell = SandboxShell::start("rotated-password", &dir.path().join("sb"));
    let backups = dir.path().join("backups");
    let out = fix_with_handover(&shell, "--yes", &backups, &[])
        .env(
            "PULLFIX_TEST_BEFORE_WRITE",
            "kubectl annotate secret regcred -n shop touched-by=someone-else --overwrite >/dev/null",
        )
        .output()
        .unwrap();
    let t = text(&out);
    assert!(
        t.contains("conflict: the object changed since pullfix read it"),
        "{t}"
    );
    assert!(
        !t.contains("restore with:"),
        "a restore for a write that did not happen: {t}"
    );
    let left: Vec<_> = std::fs::read_dir(&backups)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .ends_with("-secret-regcred.yaml")
        })
        .collect();
    assert!(
        left.is_empty(),
        "a backup of an unchanged secret is left: {left:?}"
    );
}

#[test]
fn the_kubectl_equivalent_keeps_the_other_registry_entry() {
    let dir = tempfile::tempdir().unwrap();
    let shell = SandboxShell::start("rotated-password", &dir.path().join("sb"));
    // A second registry's entry in the pull secret.
    let mut cfg = config(&secret(&shell));
    cfg["auths"]["other.example.com"] = serde_json::json!({
        "username": "bob", "password": "other-pass-1234",
        "auth": STANDARD.encode("bob:other-pass-1234"),
    });
    let patch = serde_json::json!([{"op": "replace", "path": "/data/.dockerconfigjson",
        "value": STANDARD.encode(cfg.to_string())}]);
    let p = shell.kubectl(
        &[
            "patch",
            "secret",
            "regcred",
            "-n",
            "shop",
            "--type=json",
            "-p",
            &patch.to_string(),
        ],
        "",
    );
    assert!(p.status.success(), "{}", text(&p));

    // The create | apply form (diagnose's next steps) says it is not
    // equivalent; the fix's own equivalent is a replace of the whole object.
    let backups = dir.path().join("backups");
    let out = fix_with_handover(&shell, "--dry-run", &backups, &[])
        .output()
        .unwrap();
    let t = text(&out);
    assert_no_secret(&shell, &t);
    for l in t
        .lines()
        .filter(|l| l.contains("kubectl create secret docker-registry"))
    {
        assert!(
            l.ends_with("# not equivalent: this secret has 1 other auths entry which this command drops; `kubectl pullfix fix` keeps them"),
            "a create | apply that drops the other entry and does not say so: {l}"
        );
    }
    let file = path_after(&t, "kubectl equivalent: kubectl replace -f ").expect("a replace -f");
    assert!(t.contains("holds the whole new secret"), "{t}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let written: Value = {
        let yaml = std::fs::read_to_string(&file).unwrap();
        let v: Value = serde_saphyr::from_str(&yaml).unwrap();
        config(&v)
    };

    // Run as printed: the secret is what pullfix would have written.
    let run = sh(&shell, &format!("kubectl replace -f {file}"));
    assert!(run.status.success(), "{}", text(&run));
    let now = config(&secret(&shell));
    assert_eq!(now, written);
    assert_eq!(
        now["auths"]["other.example.com"]["password"],
        "other-pass-1234"
    );
    let reg = shell
        .env
        .iter()
        .find(|(k, _)| k == "PULLFIX_LAB_REGISTRY")
        .map(|(_, v)| v.clone())
        .unwrap();
    let want = shell
        .env
        .iter()
        .find(|(k, _)| k == "PULLFIX_LAB_REGISTRY_PASSWORD")
        .map(|(_, v)| v.clone())
        .unwrap();
    assert_eq!(now["auths"][reg.as_str()]["password"], want.as_str());
}
